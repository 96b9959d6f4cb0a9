//! The baselines' update steps (PPO, REINFORCE, RLOO, DPO) on small problems whose right answer is
//! known: each step must move the policy the way its estimator says, and rollouts must carry what
//! PPO's bootstrapping needs.

use rebel_agents::seeding::ChaCha8Rng;
use rand::SeedableRng;
use rebel_agents::adam::{Adam, AdamConfig};
use rebel_agents::algorithm::{parse_section, AlgoConfig};
use rebel_agents::algos::dpo::{self, DpoConfig, DpoData, DpoLoss};
use rebel_agents::algos::ppo::{self, PpoConfig, RewardScaler, ValueNet};
use rebel_agents::algos::reinforce::{self, ReinforceConfig};
use rebel_agents::algos::rloo::{self, RlooConfig};
use rebel_dist::Collective;
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::preferences::{DatasetMeta, PolicySource, PreferenceDataset, PreferencePair, TeacherConfig};
use rebel_agents::rollout::{collect_groups, segment_log_prob, PairSpec, Segment, SegmentBatch};
use rebel_envs::vec_env::VecEnv;
use rebel_envs::EnvConfig;
use tch::{Device, Kind, Tensor};

fn policy(seed: u64) -> GaussianPolicy {
    let cfg = PolicyConfig { hidden: vec![8], log_std_init: -0.5, ..PolicyConfig::new(2, 1) };
    GaussianPolicy::new(cfg, Device::Cpu, Kind::Float, seed)
}

fn adam(p: &GaussianPolicy, lr: f64) -> Adam {
    Adam::new(p.named_parameters(), AdamConfig { lr, ..AdamConfig::default() })
}

/// `n` one-step segments at observation (1, 0); segment i's action is `acts[i]`.
fn one_step_batch(acts: &[f32]) -> SegmentBatch {
    let segments = acts
        .iter()
        .enumerate()
        .map(|(i, &a)| Segment {
            obs: vec![1.0, 0.0],
            act: vec![a],
            rewards: vec![a as f64],
            truncated: true,
            group: i,
            response_len: 1,
            final_obs: vec![1.0, 0.0],
            ..Segment::default()
        })
        .collect();
    SegmentBatch { obs_dim: 2, act_dim: 1, k: 1, segments, env_steps: acts.len() as u64, episode_returns: vec![] }
}

fn mean_action(p: &GaussianPolicy) -> f64 {
    p.act_mean(&[1.0, 0.0])[0] as f64
}

#[test]
fn reinforce_moves_the_mean_towards_the_better_actions_and_advances_the_baseline() {
    let p = policy(0);
    let mut opt = adam(&p, 1e-2);
    let acts = [-1.0f32, -0.5, 0.5, 1.0];
    let t = one_step_batch(&acts).to_tensors(Device::Cpu);
    let returns = Tensor::from_slice(&[-1.0f32, -0.5, 0.5, 1.0]); // reward = action
    let mut baseline = None;
    let before = mean_action(&p);
    let cfg = ReinforceConfig { epochs: 5, ..ReinforceConfig::default() };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let st = reinforce::update(&p, &mut opt, &t, &returns, &mut baseline, &cfg, &mut rng).unwrap();
    assert!(mean_action(&p) > before + 1e-3, "{before} → {}", mean_action(&p));
    assert_eq!(st.baseline, 0.0, "the first batch's baseline is its own mean");
    assert_eq!(baseline, Some(0.0));
    // a second batch with mean 2 moves the baseline by decay·(2 − 0)
    let returns2 = Tensor::from_slice(&[1.0f32, 1.5, 2.5, 3.0]);
    reinforce::update(&p, &mut opt, &t, &returns2, &mut baseline, &cfg, &mut rng).unwrap();
    assert!((baseline.unwrap() - 0.2).abs() < 1e-6, "{baseline:?}");
}

#[test]
fn rloo_ignores_a_shift_shared_by_a_group_and_follows_the_differences() {
    // two groups of k = 2: in both, the larger action has the larger return; group 1 is shifted by +100
    let acts = [-0.5f32, 0.5, -0.5, 0.5];
    let t = one_step_batch(&acts).to_tensors(Device::Cpu);
    let cfg = RlooConfig { normalize: false, ..RlooConfig::default() };
    let run = |returns: &[f32]| {
        let p = policy(1);
        let mut opt = adam(&p, 1e-2);
        rloo::update(&p, &mut opt, &t, &Tensor::from_slice(returns), &cfg, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        mean_action(&p)
    };
    let before = mean_action(&policy(1));
    let a = run(&[0.0, 1.0, 0.0, 1.0]);
    let b = run(&[0.0, 1.0, 100.0, 101.0]);
    assert!(a > before + 1e-4, "{before} → {a}");
    assert!((a - b).abs() < 1e-6, "a constant per group changes nothing: {a} vs {b}");
    let bad = rloo::update(&policy(1), &mut adam(&policy(1), 1e-2), &one_step_batch(&acts[..3]).to_tensors(Device::Cpu), &Tensor::from_slice(&[0.0f32, 1.0, 2.0]), &cfg, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(bad.is_err(), "3 segments are not groups of 2");
}

#[test]
fn importance_weights_leave_a_first_step_unchanged_and_reweight_later_ones() {
    let acts = [-0.5f32, 0.5, -0.3, 0.7];
    let t = one_step_batch(&acts).to_tensors(Device::Cpu);
    let returns = Tensor::from_slice(&[0.0f32, 1.0, 0.2, 1.0]);
    let run = |cfg: &RlooConfig| {
        let p = policy(3);
        let mut opt = adam(&p, 1e-2);
        rloo::update(&p, &mut opt, &t, &returns, cfg, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        p.parameters().iter().map(|x| x.flatten(0, -1)).collect::<Vec<_>>()
    };
    let same = |a: &[Tensor], b: &[Tensor]| a.iter().zip(b).all(|(x, y)| x.equal(y));
    let one = RlooConfig::default();
    // one step: the ratio is exactly 1, so the weighted step is the plain one, bit for bit
    assert!(same(&run(&one), &run(&RlooConfig { importance_clip: 2.0, ..one.clone() })));
    // several steps: after the first, the ratios differ from 1 and the steps differ
    let many = RlooConfig { epochs: 4, minibatches: 2, ..one.clone() };
    let weighted = RlooConfig { importance_clip: 2.0, ..many.clone() };
    assert!(!same(&run(&many), &run(&weighted)));
    // and the weighted update still moves the mean towards the better actions
    let p = policy(3);
    let before = mean_action(&p);
    rloo::update(&p, &mut adam(&p, 1e-2), &t, &returns, &weighted, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert!(mean_action(&p) > before + 1e-3, "{before} → {}", mean_action(&p));
    assert!(RlooConfig { importance_clip: f64::NAN, ..one.clone() }.validate().unwrap_err().contains("rloo.importance_clip"));
    assert!(ReinforceConfig { importance_clip: -1.0, ..ReinforceConfig::default() }.validate().unwrap_err().contains("reinforce.importance_clip"));
}

#[test]
fn ppo_raises_the_probability_of_advantaged_actions_and_fits_the_values() {
    let p = policy(2);
    let mut opt = adam(&p, 3e-3);
    let mut value = ValueNet::new(2, &[16], rebel_agents::mlp::Activation::Tanh, false, Device::Cpu, 0);
    let mut vopt = Adam::new(value.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
    let mut scaler = RewardScaler::default();
    let acts = [-1.0f32, -0.5, 0.5, 1.0];
    let batch = one_step_batch(&acts);
    let t = batch.to_tensors(Device::Cpu);
    let r = t.rewards.shallow_clone();
    // γ = 0: the return of each step is its reward; the value of (1, 0) should fit their mean, 0
    let cfg = PpoConfig { gamma: 0.0, gae_lambda: 1.0, epochs: 30, batch: 4, normalize_obs: false, normalize_rewards: false, ..PpoConfig::default() };
    let lp_before = tch::no_grad(|| segment_log_prob(&p, &t));
    let st = ppo::update(&p, &mut opt, &mut value, &mut vopt, &mut scaler, &batch, &t, &r, None, &cfg, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let lp_after = tch::no_grad(|| segment_log_prob(&p, &t));
    let d = Vec::<f32>::try_from(lp_after - lp_before).unwrap();
    assert!(d[3] > 0.0 && d[0] < 0.0, "the best action gains, the worst loses: {d:?}");
    assert!(st.clip_fraction >= 0.0 && st.approx_kl.is_finite());
    let v = tch::no_grad(|| value.forward(&Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2])));
    assert!(f64::try_from(v.squeeze()).unwrap().abs() < 0.1, "value fits the mean return 0");
    // segments without a final observation are refused
    let mut no_final = batch.clone();
    no_final.segments[0].final_obs.clear();
    assert!(ppo::update(&p, &mut opt, &mut value, &mut vopt, &mut scaler, &no_final, &t, &r, None, &cfg, &mut ChaCha8Rng::seed_from_u64(0)).is_err());
}

#[test]
fn whole_episode_rollouts_keep_the_true_final_observation() {
    let mut cfg = EnvConfig::new();
    cfg.set("max_episode_steps", rebel_envs::ConfigValue::Int(30));
    let mut venv = VecEnv::make("Swimmer-v5", &cfg, 2, 1).unwrap();
    let p = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 0);
    let b = collect_groups(&mut venv, &p, &[5, 6], PairSpec { k: 1, branch_len: None, tail_len: 0 }, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert_eq!(b.segments.len(), 2);
    for s in &b.segments {
        assert_eq!(s.len(), 30);
        assert!(s.truncated && !s.terminated);
        assert_eq!(s.final_obs.len(), 8);
        assert_ne!(s.final_obs, s.obs[29 * 8..], "the final observation follows the last recorded one");
    }
}

fn pair(a_act: f32, b_act: f32, label: f32) -> PreferencePair {
    let seg = |a: f32| Segment { obs: vec![1.0, 0.0, 0.0, 1.0], act: vec![a, a], rewards: vec![a as f64; 2], response_len: 2, ..Segment::default() };
    PreferencePair { a: seg(a_act), b: seg(b_act), label }
}

fn dataset(pairs: Vec<PreferencePair>) -> PreferenceDataset {
    PreferenceDataset {
        meta: DatasetMeta {
            format_version: rebel_agents::preferences::DATASET_VERSION,
            env_id: "test".into(),
            obs_dim: 2,
            act_dim: 1,
            teacher: TeacherConfig::default(),
            policy: PolicySource { path: "test".into(), hash: String::new() },
            seed: 0,
            segment_len: Some(2),
            same_start: false,
            queries: pairs.len() as u64,
            simulated_env_steps: 0,
        },
        pairs,
    }
}

#[test]
fn dpo_prefers_the_winners_drops_ties_and_both_losses_work() {
    // larger actions are preferred, whichever side they are on; one tie
    let ds = dataset(vec![pair(0.8, -0.8, 1.0), pair(-0.6, 0.6, 0.0), pair(0.4, -0.2, 1.0), pair(0.3, 0.1, 0.5)]);
    for loss in [DpoLoss::Logistic, DpoLoss::Square] {
        let p = policy(3);
        let reference = p.try_clone().unwrap();
        let data = DpoData::new(&ds, &reference, Device::Cpu).unwrap();
        assert_eq!(data.len(), 3, "the tie is left out");
        let cfg = DpoConfig { dataset: "x".into(), loss, beta: 1.0, lr: 1e-2, epochs: 20, batch: 2, ..DpoConfig::default() };
        let before = mean_action(&p);
        let st = dpo::update(&p, &mut adam(&p, 1e-2), &data, &cfg, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert!(st.margin > 0.0 && st.accuracy == 1.0, "{loss:?}: {st:?}");
        assert!(mean_action(&p) > before, "{loss:?}: the mean moves towards the preferred actions");
    }
    // the square loss stops near its target margin z/β; the logistic one keeps pushing
    let p = policy(3);
    let data = DpoData::new(&ds, &p.try_clone().unwrap(), Device::Cpu).unwrap();
    let cfg = DpoConfig { dataset: "x".into(), loss: DpoLoss::Square, beta: 1.0, square_target: 0.5, lr: 1e-2, epochs: 300, batch: 3, ..DpoConfig::default() };
    let st = dpo::update(&p, &mut adam(&p, 1e-2), &data, &cfg, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert!((st.margin - 0.5).abs() < 0.1, "{st:?}");
    let only_ties = dataset(vec![pair(0.3, 0.1, 0.5)]);
    assert!(DpoData::new(&only_ties, &p, Device::Cpu).is_none());
}

#[test]
fn configs_reject_bad_values_by_key() {
    assert!(PpoConfig { clip: 1.5, ..PpoConfig::default() }.validate().unwrap_err().contains("ppo.clip"));
    assert!(RlooConfig { k: 1, ..RlooConfig::default() }.validate().unwrap_err().contains("rloo.k"));
    assert!(ReinforceConfig { baseline_decay: 0.0, ..ReinforceConfig::default() }.validate().unwrap_err().contains("baseline_decay"));
    assert!(DpoConfig::default().validate().unwrap_err().contains("dpo.dataset"));
    let hinge: toml::Table = toml::from_str("dataset = \"x\"\nloss = \"hinge\"").unwrap();
    assert!(parse_section::<DpoConfig>(&hinge).unwrap_err().contains("dpo.loss"));
}

/// Data parallelism for the policy-gradient baselines: two ranks with half the groups each take one process's
/// full-batch update (RLOO with normalised returns; REINFORCE with its moving baseline, equal on both ranks).
#[test]
fn rloo_and_reinforce_on_two_ranks_update_like_one_process() {
    let acts: Vec<f32> = (0..16).map(|i| ((i * 7) % 16) as f32 / 8.0 - 1.0).collect();
    let returns: Vec<f32> = acts.iter().map(|a| a * 2.0 + 0.3).collect();
    // groups of 2 consecutive segments; rank r holds groups r, r + 2, … (as `train` shares them)
    let shard = |rank: usize| -> (Vec<f32>, Vec<f32>) {
        (0..8).filter(|g| g % 2 == rank).flat_map(|g| [2 * g, 2 * g + 1]).map(|i| (acts[i], returns[i])).unzip()
    };
    fn params(p: &GaussianPolicy) -> Vec<f32> {
        Vec::<f32>::try_from(p.flat_params()).unwrap()
    }
    fn run(acts: &[f32], rets: &[f32], world: &dyn rebel_dist::Collective) -> (Vec<f32>, Vec<f32>) {
        let t = one_step_batch(acts).to_tensors(Device::Cpu);
        let r = Tensor::from_slice(rets);
        let (a, b) = (policy(3), policy(3));
        let cfg = RlooConfig { k: 2, epochs: 3, minibatches: 1, ..RlooConfig::default() };
        rloo::update_shared(&a, &mut adam(&a, 1e-2), &t, &r, &cfg, &mut ChaCha8Rng::seed_from_u64(world.rank() as u64), world).unwrap();
        let cfg = ReinforceConfig { epochs: 3, minibatches: 1, ..ReinforceConfig::default() };
        let mut baseline = Some(0.1);
        reinforce::update_shared(&b, &mut adam(&b, 1e-2), &t, &r, &mut baseline, &cfg, &mut ChaCha8Rng::seed_from_u64(0), world).unwrap();
        (params(&a), params(&b))
    }
    let one = run(&acts, &returns, &rebel_dist::SingleProcess);
    let handles: Vec<_> = rebel_dist::ThreadGroup::new(2)
        .into_iter()
        .map(|w| {
            let (a, r) = shard(w.rank());
            std::thread::spawn(move || run(&a, &r, &w))
        })
        .collect();
    let ranks: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ranks[0], ranks[1], "both ranks hold the same bits");
    let start = params(&policy(3));
    let d = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    for (name, got, want) in [("RLOO", &ranks[0].0, &one.0), ("REINFORCE", &ranks[0].1, &one.1)] {
        let (err, moved) = (d(got, want), d(want, &start));
        assert!(moved > 1e-2 && err < 1e-5, "{name}: two ranks vs one process max |Δθ| = {err}, the update moved θ by {moved}");
    }
}

/// Terminating Hopper episodes of different lengths (whole episodes, as PPO collects them).
fn hopper_episodes(n: usize) -> SegmentBatch {
    let mut cfg = EnvConfig::new();
    cfg.set("max_episode_steps", rebel_envs::ConfigValue::Int(80));
    let mut venv = VecEnv::make("Hopper-v5", &cfg, n, 1).unwrap();
    let p = GaussianPolicy::new(PolicyConfig::new(11, 3), Device::Cpu, Kind::Float, 0);
    let starts: Vec<u64> = (1..=n as u64).collect();
    collect_groups(&mut venv, &p, &starts, PairSpec { k: 1, branch_len: None, tail_len: 0 }, &mut ChaCha8Rng::seed_from_u64(0)).unwrap()
}

/// Episodes `rank, rank + n, …` of the batch (round robin, as `train` shares an iteration's start states).
fn episodes_of(b: &SegmentBatch, rank: usize, n: usize) -> SegmentBatch {
    let segments: Vec<Segment> = b.segments.iter().skip(rank).step_by(n).cloned().collect();
    SegmentBatch { env_steps: segments.iter().map(|s| s.len() as u64).sum(), segments, ..b.clone() }
}

/// After one PPO update from the same start on `batch`: the policy's and the value net's parameters, the
/// observation and return statistics, the approximate KL, the explained variance and the Adam step count.
fn ppo_run(batch: &SegmentBatch, cfg: &PpoConfig, world: &dyn rebel_dist::Collective) -> (Vec<f32>, Vec<f32>, Vec<f64>, [f64; 4]) {
    let t = batch.to_tensors(Device::Cpu);
    let r = t.rewards.shallow_clone();
    let p = GaussianPolicy::new(PolicyConfig::new(11, 3), Device::Cpu, Kind::Float, 5);
    let mut opt = adam(&p, 1e-2);
    let mut value = ValueNet::new(11, &[16], rebel_agents::mlp::Activation::Tanh, true, Device::Cpu, 1);
    let mut vopt = Adam::new(value.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
    let mut scaler = RewardScaler::default();
    let mut rng = ChaCha8Rng::seed_from_u64(world.rank() as u64);
    let nets = ppo::Nets { policy: &p, adam: &mut opt, value: &mut value, vadam: &mut vopt, scaler: &mut scaler };
    let st = ppo::update_shared(nets, batch, &t, &r, None, cfg, &mut rng, world).unwrap();
    let flat = |ps: Vec<(String, Tensor)>| ps.iter().flat_map(|(_, x)| Vec::<f32>::try_from(x.reshape([-1])).unwrap()).collect::<Vec<f32>>();
    let mut stats = value.obs_rms.mean.clone();
    stats.extend(&value.obs_rms.var);
    stats.extend([value.obs_rms.count, scaler.ret_rms.var[0], scaler.ret_rms.count]);
    (flat(p.named_parameters()), flat(value.named_parameters()), stats, [st.approx_kl, st.explained_variance, st.clip_fraction, opt.step_count() as f64])
}

type PpoOut = (Vec<f32>, Vec<f32>, Vec<f64>, [f64; 4]);

fn ppo_on_ranks(batch: &SegmentBatch, cfg: &PpoConfig, n: usize) -> Vec<PpoOut> {
    let handles: Vec<_> = rebel_dist::ThreadGroup::new(n)
        .into_iter()
        .map(|w| {
            let (b, c) = (episodes_of(batch, w.rank(), n), cfg.clone());
            std::thread::spawn(move || ppo_run(&b, &c, &w))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Issue 14 for PPO: two ranks holding every other episode (of different lengths, some terminated) take the update
/// one process takes on all of them when an epoch is one minibatch: observation and return statistics, advantage
/// standardisation and both nets' gradients are reduced over the ranks.
#[test]
fn ppo_on_two_ranks_updates_like_one_process() {
    let batch = hopper_episodes(4);
    let lens: Vec<usize> = batch.segments.iter().map(|s| s.len()).collect();
    assert!(lens.iter().any(|&l| l != lens[0]) && batch.segments.iter().any(|s| s.terminated), "uneven, terminating episodes: {lens:?}");
    let cfg = PpoConfig { epochs: 3, batch: 10_000, vf_hidden: vec![16], ..PpoConfig::default() };
    let one = ppo_run(&batch, &cfg, &rebel_dist::SingleProcess);
    let ranks = ppo_on_ranks(&batch, &cfg, 2);
    assert_eq!(ranks[0], ranks[1], "both ranks hold the same bits");
    let d = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let start = ppo_run(&batch, &PpoConfig { epochs: 0, ..cfg.clone() }, &rebel_dist::SingleProcess);
    let (moved, err) = (d(&one.0, &start.0), d(&ranks[0].0, &one.0));
    assert!(moved > 1e-2 && err < 1e-5, "policy: two ranks vs one process max |Δθ| = {err}, the update moved θ by {moved}");
    let (vmoved, verr) = (d(&one.1, &start.1), d(&ranks[0].1, &one.1));
    assert!(vmoved > 1e-2 && verr < 1e-5, "value net: max |Δ| = {verr}, moved {vmoved}");
    for (a, b) in ranks[0].2.iter().zip(&one.2) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "running statistics: {:?} vs {:?}", ranks[0].2, one.2);
    }
    for (a, b) in ranks[0].3.iter().zip(&one.3) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-3), "KL, explained variance, clip fraction, steps: {:?} vs {:?}", ranks[0].3, one.3);
    }
    // the control: a rank alone on its episodes takes a visibly different step
    let alone = ppo_run(&episodes_of(&batch, 0, 2), &cfg, &rebel_dist::SingleProcess);
    let apart = d(&alone.0, &one.0);
    assert!(apart > 100.0 * err.max(1e-7), "half the episodes alone: {apart}, two ranks: {err}");
}

/// With minibatches of `batch` steps, uneven shares (5 episodes on 3 ranks) and `target_kl`, every rank takes the
/// same steps (a rank may hold none of a minibatch) and ends with the same bits.
#[test]
fn ppo_on_three_uneven_ranks_stays_equal() {
    let batch = hopper_episodes(5);
    let cfg = PpoConfig { epochs: 8, batch: 32, target_kl: 2e-3, vf_hidden: vec![16], ..PpoConfig::default() };
    let out = ppo_on_ranks(&batch, &cfg, 3);
    assert!(out.iter().all(|o| o == &out[0]), "every rank holds the same parameters, statistics and step count");
    let total: usize = batch.segments.iter().map(|s| s.len()).sum();
    let per_epoch = total.div_ceil(32) as f64;
    let steps = out[0].3[3];
    assert!(steps % per_epoch == 0.0 && steps >= per_epoch && steps < 8.0 * per_epoch, "{steps} steps, {per_epoch} per epoch: target_kl stops early");
}

/// Issue 14 for DPO: ranks holding every other (winner, loser) pair take one process's update on all pairs when an
/// epoch is one minibatch, and report the statistics of all pairs; with several minibatches and uneven shares
/// every rank still ends with the same bits.
#[test]
fn dpo_on_ranks_updates_like_one_process() {
    let pairs: Vec<PreferencePair> = (0..7).map(|i| pair(0.1 * i as f32 - 0.2, 0.35 - 0.12 * i as f32, (i % 3 != 1) as u8 as f32)).collect();
    let ds = dataset(pairs);
    let p0 = policy(4);
    let data = DpoData::new(&ds, &p0, Device::Cpu).unwrap();
    fn run(data: Option<&DpoData>, cfg: &DpoConfig, world: &dyn rebel_dist::Collective) -> (Vec<f32>, [f64; 4]) {
        let p = policy(4);
        let mut rng = ChaCha8Rng::seed_from_u64(world.rank() as u64);
        let st = dpo::update_shared(&p, &mut adam(&p, 1e-2), data, cfg, &mut rng, world).unwrap();
        (Vec::<f32>::try_from(p.flat_params()).unwrap(), [st.accuracy, st.margin, st.logratio_w, st.loss])
    }
    let on_ranks = |n: usize, cfg: &DpoConfig| -> Vec<(Vec<f32>, [f64; 4])> {
        let handles: Vec<_> = rebel_dist::ThreadGroup::new(n)
            .into_iter()
            .map(|w| {
                let (shard, c) = (data.shard(w.rank(), n), cfg.clone());
                std::thread::spawn(move || run(shard.as_ref(), &c, &w))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    };
    let cfg = DpoConfig { dataset: "x".into(), beta: 1.0, epochs: 3, batch: 100, ..DpoConfig::default() };
    let one = run(Some(&data), &cfg, &rebel_dist::SingleProcess);
    let ranks = on_ranks(2, &cfg);
    assert_eq!(ranks[0], ranks[1], "both ranks hold the same bits");
    let d = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let start = Vec::<f32>::try_from(p0.flat_params()).unwrap();
    let (moved, err) = (d(&one.0, &start), d(&ranks[0].0, &one.0));
    assert!(moved > 1e-2 && err < 1e-5, "two ranks vs one process max |Δθ| = {err}, the update moved θ by {moved}");
    for (a, b) in ranks[0].1.iter().zip(&one.1) {
        assert!((a - b).abs() < 1e-5, "accuracy, margin, log-ratio, loss over all pairs: {:?} vs {:?}", ranks[0].1, one.1);
    }
    let alone = run(data.shard(0, 2).as_ref(), &cfg, &rebel_dist::SingleProcess);
    assert!(d(&alone.0, &one.0) > 100.0 * err.max(1e-7), "half the pairs alone differ");
    // 7 pairs on 4 ranks in minibatches of 2: rank 3 holds one, and none of most minibatches
    assert_eq!(data.len(), 7);
    let out = on_ranks(4, &DpoConfig { batch: 2, ..cfg });
    assert!(out.iter().all(|o| o == &out[0]), "every rank holds the same bits");
    assert!(data.shard(7, 8).is_none(), "a rank beyond the pairs holds none");
}

/// A policy that standardises its input (`policy.normalize_obs`, SB3's `VecNormalize`): PPO's update refreshes its
/// statistics from the batch (the same as the value net's, from the same observations), on one rank and on two.
#[test]
fn ppo_keeps_the_policy_observation_statistics() {
    let batch = hopper_episodes(4);
    let steps: usize = batch.segments.iter().map(|s| s.len()).sum();
    let t = batch.to_tensors(Device::Cpu);
    let pc = PolicyConfig { normalize_obs: true, ..PolicyConfig::new(11, 3) };
    let cfg = PpoConfig { epochs: 2, batch: 64, vf_hidden: vec![16], ..PpoConfig::default() };
    let run = move |b: &SegmentBatch, world: &dyn Collective| {
        let p = GaussianPolicy::new(pc.clone(), Device::Cpu, Kind::Float, 5);
        let mut opt = adam(&p, 1e-3);
        let mut value = ValueNet::new(11, &[16], rebel_agents::mlp::Activation::Relu, true, Device::Cpu, 1);
        let mut vopt = Adam::new(value.named_parameters(), AdamConfig { lr: 1e-3, ..AdamConfig::default() });
        let mut scaler = RewardScaler::default();
        let t = b.to_tensors(Device::Cpu);
        let nets = ppo::Nets { policy: &p, adam: &mut opt, value: &mut value, vadam: &mut vopt, scaler: &mut scaler };
        ppo::update_shared(nets, b, &t, &t.rewards.shallow_clone(), None, &cfg, &mut ChaCha8Rng::seed_from_u64(0), world).unwrap();
        (p.obs_rms().unwrap(), value.obs_rms.clone())
    };
    let (pol, val) = run(&batch, &rebel_dist::SingleProcess);
    assert!((pol.count - (steps as f64 + 1e-4)).abs() < 1e-3, "{} after {steps} steps", pol.count);
    let obs = Vec::<f32>::try_from(t.obs.reshape([-1])).unwrap();
    let mask = Vec::<f32>::try_from(t.mask.reshape([-1])).unwrap();
    let mean0: f64 = (0..mask.len()).filter(|&i| mask[i] > 0.5).map(|i| obs[i * 11] as f64).sum::<f64>() / steps as f64;
    assert!((pol.mean[0] - mean0).abs() < 1e-4 * (1.0 + mean0.abs()), "{} vs {mean0}", pol.mean[0]);
    for (a, b) in pol.mean.iter().chain(&pol.var).zip(val.mean.iter().chain(&val.var)) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "policy and value statistics agree: {a} vs {b}");
    }
    // two ranks holding every other episode end with the statistics of all of them
    let handles: Vec<_> = rebel_dist::ThreadGroup::new(2)
        .into_iter()
        .map(|w| {
            let b = episodes_of(&batch, w.rank(), 2);
            let run = run.clone();
            std::thread::spawn(move || run(&b, &w).0)
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert!((r.count - pol.count).abs() < 1e-6 && r.mean.iter().zip(&pol.mean).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}

/// `ppo.ent_coef` pushes the (state-independent) standard deviation up against the same update without it.
#[test]
fn ppo_entropy_bonus_raises_the_standard_deviation() {
    let batch = hopper_episodes(4);
    let t = batch.to_tensors(Device::Cpu);
    let log_std_after = |ent_coef: f64| {
        let p = GaussianPolicy::new(PolicyConfig::new(11, 3), Device::Cpu, Kind::Float, 5);
        let mut opt = adam(&p, 1e-2);
        let mut value = ValueNet::new(11, &[16], rebel_agents::mlp::Activation::Tanh, true, Device::Cpu, 1);
        let mut vopt = Adam::new(value.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
        let mut scaler = RewardScaler::default();
        let cfg = PpoConfig { epochs: 3, batch: 64, vf_hidden: vec![16], ent_coef, ..PpoConfig::default() };
        let nets = ppo::Nets { policy: &p, adam: &mut opt, value: &mut value, vadam: &mut vopt, scaler: &mut scaler };
        ppo::update(nets.policy, nets.adam, nets.value, nets.vadam, nets.scaler, &batch, &t, &t.rewards.shallow_clone(), None, &cfg, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        p.log_std().mean(Kind::Float).double_value(&[])
    };
    let (without, with) = (log_std_after(0.0), log_std_after(1.0));
    assert!(with > without + 0.01, "log_std {with} with the bonus, {without} without");
}
