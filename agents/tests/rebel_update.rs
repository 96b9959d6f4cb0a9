//! The REBEL update on a synthetic batch: it moves the policy towards the higher-reward member of
//! each pair, and `target_kl` ends an iteration's epochs early.

use rand::SeedableRng;
use rebel_agents::adam::{Adam, AdamConfig};
use rebel_agents::algos::rebel::{update, update_shared, RebelConfig};
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::rollout::{segment_log_prob, SegmentTensors};
use tch::{Device, Kind, Tensor};

/// 16 pairs of 5-step segments from a 3-d state; the pair member with the larger first action
/// coordinate gets reward 1, the other 0.
fn batch(policy: &GaussianPolicy) -> (SegmentTensors, Tensor) {
    tch::manual_seed(0);
    let (s, l) = (32i64, 5i64);
    let obs = Tensor::randn([s, l, 3], (Kind::Float, Device::Cpu));
    let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(1);
    let act = policy.sample(&obs, &mut rng);
    let mask = Tensor::ones([s, l], (Kind::Float, Device::Cpu));
    let score = act.select(2, 0).sum_dim_intlist([1i64].as_slice(), false, Kind::Float).view([s / 2, 2]);
    let r = score.select(1, 0).gt_tensor(&score.select(1, 1)).to_kind(Kind::Float);
    let rewards = Tensor::stack(&[r.shallow_clone(), 1.0 - r], 1).view([s]);
    let t = SegmentTensors { obs, act, mask: mask.shallow_clone(), rewards: rewards.shallow_clone(), logp_mask: mask };
    (t, rewards)
}

fn run(target_kl: f64) -> (f64, f64) {
    let policy = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let (t, rewards) = batch(&policy);
    let before = segment_log_prob(&policy, &t).detach();
    let mut adam = Adam::new(policy.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
    let cfg = RebelConfig { epochs: 30, minibatches: 1, target_kl, ..RebelConfig::default() };
    let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(2);
    let stats = update(&policy, &mut adam, &t, &rewards, None, &cfg, &mut rng).unwrap();
    // log-ratio of the preferred member minus the other's: REBEL raises the preferred one
    let lr = (segment_log_prob(&policy, &t) - before).view([16, 2]);
    let r = rewards.view([16, 2]);
    let gap = f64::try_from(((lr.select(1, 0) - lr.select(1, 1)) * (r.select(1, 0) - r.select(1, 1))).mean(Kind::Float)).unwrap();
    (stats.approx_kl, gap)
}

#[test]
fn rebel_favours_the_preferred_member_and_target_kl_stops_early() {
    let (kl_full, gap_full) = run(0.0);
    assert!(gap_full > 0.0, "the preferred segments gain log-probability: {gap_full}");
    let (kl_stopped, gap_stopped) = run(1e-6);
    assert!(gap_stopped > 0.0, "{gap_stopped}");
    assert!(kl_stopped < kl_full / 3.0, "early stop keeps the step small: {kl_stopped} vs {kl_full}");
}

#[test]
fn a_ragged_batch_is_an_error_not_a_panic() {
    let policy = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let (t, rewards) = batch(&policy);
    let mut adam = Adam::new(policy.named_parameters(), AdamConfig::default());
    // 32 segments are not groups of 3
    let cfg = RebelConfig { k: 3, ..RebelConfig::default() };
    let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(2);
    let e = update(&policy, &mut adam, &t, &rewards, None, &cfg, &mut rng).unwrap_err();
    assert!(e.contains("groups of 3"), "{e}");
}

#[test]
fn the_response_cut_keeps_every_log_probability() {
    let policy = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let (mut t, _) = batch(&policy);
    // a 2-step response followed by a 3-step reward-only tail
    let l = t.logp_mask.size()[1];
    t.logp_mask = Tensor::cat(&[Tensor::ones([32, 2], (Kind::Float, Device::Cpu)), Tensor::zeros([32, l - 2], (Kind::Float, Device::Cpu))], 1);
    let r = t.response();
    assert_eq!(r.obs.size(), vec![32, 2, 3]);
    assert_eq!(r.act.size(), vec![32, 2, 2]);
    let (full, cut) = (segment_log_prob(&policy, &t), segment_log_prob(&policy, &r));
    assert!(full.allclose(&cut, 1e-6, 1e-6, false), "{full} vs {cut}");
    // nothing to cut: the same tensors
    t.logp_mask = Tensor::ones([32, l], (Kind::Float, Device::Cpu));
    assert_eq!(t.response().obs.size(), t.obs.size());
}

/// Runs `f(rank)` on each rank of an `n`-rank thread group; results in rank order.
fn on_ranks<T: Send + 'static>(n: usize, f: impl Fn(&dyn rebel_dist::Collective) -> T + Send + Sync + Clone + 'static) -> Vec<T> {
    let handles: Vec<_> = rebel_dist::ThreadGroup::new(n)
        .into_iter()
        .map(|r| {
            let f = f.clone();
            std::thread::spawn(move || f(&r))
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("rank thread panicked")).collect()
}

/// Rank `rank` of `n`'s share of the batch's 16 pairs: pairs `rank, rank + n, …` (round robin, as `train` shares
/// the groups of an iteration).
fn shard(t: &SegmentTensors, rewards: &Tensor, rank: usize, n: usize) -> (SegmentTensors, Tensor) {
    let idx: Vec<i64> = (rank as i64..16).step_by(n).flat_map(|g| [2 * g, 2 * g + 1]).collect();
    let idx = Tensor::from_slice(&idx);
    (t.select(&idx), rewards.index_select(0, &idx))
}

fn params(p: &GaussianPolicy) -> Vec<f32> {
    Vec::<f32>::try_from(p.flat_params()).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Issue 14's test: two ranks holding half the pairs each take the update one process takes on all pairs (full
/// batch, standardised rewards: the reward statistics and the gradients are reduced over the ranks).
#[test]
fn two_ranks_with_half_the_pairs_each_update_like_one_process_with_all() {
    let cfg = RebelConfig { epochs: 3, minibatches: 1, ..RebelConfig::default() };
    let p0 = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let (t, rewards) = batch(&p0);
    let start = params(&p0);
    let one = p0.try_clone().unwrap();
    let mut adam = Adam::new(one.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
    let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(2);
    update(&one, &mut adam, &t, &rewards, None, &cfg, &mut rng).unwrap();
    let one = params(&one);

    let shards: Vec<_> = (0..2).map(|r| Some(shard(&t, &rewards, r, 2))).collect();
    let (c, sh) = (cfg.clone(), std::sync::Arc::new(std::sync::Mutex::new(shards)));
    let ranks = on_ranks(2, move |w| {
        let (t, r) = sh.lock().unwrap()[w.rank()].take().unwrap();
        let p = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
        let mut adam = Adam::new(p.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
        let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(10 + w.rank() as u64);
        update_shared(&p, &mut adam, &t, &r, None, &c, &mut rng, w).unwrap();
        params(&p)
    });
    assert_eq!(ranks[0], ranks[1], "both ranks hold the same bits");
    let moved = max_abs_diff(&one, &start);
    let err = max_abs_diff(&ranks[0], &one);
    assert!(moved > 1e-2, "the update moves the policy: {moved}");
    assert!(err < 1e-5, "two ranks vs one process: max |Δθ| = {err} (the update moved θ by {moved})");

    // the control: a rank alone on its half (no reduction) takes a visibly different step
    let (t0, r0) = shard(&t, &rewards, 0, 2);
    let alone = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let mut adam = Adam::new(alone.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
    update(&alone, &mut adam, &t0, &r0, None, &cfg, &mut rng).unwrap();
    let apart = max_abs_diff(&params(&alone), &one);
    assert!(apart > 100.0 * err.max(1e-7), "half the pairs alone: {apart}, two ranks: {err}");
}

/// With several minibatches, uneven shares and `target_kl`, the ranks still take the same number of steps
/// (a rank may hold none of a minibatch) and end with the same bits.
#[test]
fn three_ranks_with_uneven_shares_stay_equal() {
    let p0 = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let (t, rewards) = batch(&p0);
    let shards: Vec<_> = (0..3).map(|r| Some(shard(&t, &rewards, r, 3))).collect(); // 6, 5 and 5 pairs
    let sh = std::sync::Arc::new(std::sync::Mutex::new(shards));
    let out = on_ranks(3, move |w| {
        let (t, r) = sh.lock().unwrap()[w.rank()].take().unwrap();
        let cfg = RebelConfig { epochs: 6, minibatches: 8, target_kl: 1e-4, ..RebelConfig::default() };
        let p = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
        let mut adam = Adam::new(p.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
        let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(w.rank() as u64);
        update_shared(&p, &mut adam, &t, &r, None, &cfg, &mut rng, w).unwrap();
        (params(&p), adam.step_count())
    });
    assert!(out.iter().all(|o| o == &out[0]), "every rank holds the same parameters and step count");
    // 16 pairs in minibatches of 2: 8 steps per epoch; target_kl stops after the first epochs
    assert!(out[0].1 % 8 == 0 && out[0].1 >= 8 && out[0].1 < 48, "{} steps", out[0].1);
}

/// `rebel.grad_chunks`: each minibatch's gradient computed in pieces of its groups, one piece's autograd graph at a
/// time, takes the minibatch's step up to float rounding, on one process (even pieces, uneven ones, more pieces asked
/// for than the minibatch has groups) and on two ranks; 0 pieces is refused.
#[test]
fn a_minibatch_in_pieces_takes_the_step_of_the_whole() {
    use rebel_agents::algorithm::AlgoConfig;
    let p0 = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
    let (t, rewards) = batch(&p0);
    let start = params(&p0);
    let cfg = |chunks: usize| RebelConfig { epochs: 3, minibatches: 2, grad_chunks: chunks, ..RebelConfig::default() };
    let run = |chunks: usize| {
        let p = p0.try_clone().unwrap();
        let mut adam = Adam::new(p.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
        let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(2);
        let st = update(&p, &mut adam, &t, &rewards, None, &cfg(chunks), &mut rng).unwrap();
        (params(&p), st.loss)
    };
    let (whole, loss) = run(1);
    let moved = max_abs_diff(&whole, &start);
    assert!(moved > 1e-2, "the update moves the policy: {moved}");
    // 8 groups per minibatch: pieces of 2, of 3-3-2, of 1, and 100 asked for (8 taken)
    for chunks in [4, 3, 8, 100] {
        let (pieces, l) = run(chunks);
        let err = max_abs_diff(&pieces, &whole);
        assert!(err < 1e-5 && (l - loss).abs() < 1e-5 * loss.abs().max(1.0), "{chunks} pieces: max |Δθ| {err}, loss {l} vs {loss}");
    }
    let shards: Vec<_> = (0..2).map(|r| Some(shard(&t, &rewards, r, 2))).collect();
    let sh = std::sync::Arc::new(std::sync::Mutex::new(shards));
    let ranks = on_ranks(2, move |w| {
        let (t, r) = sh.lock().unwrap()[w.rank()].take().unwrap();
        let c = RebelConfig { epochs: 3, minibatches: 1, grad_chunks: 3, ..RebelConfig::default() };
        let p = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Float, 7);
        let mut adam = Adam::new(p.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
        let mut rng = rebel_agents::seeding::ChaCha8Rng::seed_from_u64(10 + w.rank() as u64);
        update_shared(&p, &mut adam, &t, &r, None, &c, &mut rng, w).unwrap();
        params(&p)
    });
    let one = {
        let p = p0.try_clone().unwrap();
        let mut adam = Adam::new(p.named_parameters(), AdamConfig { lr: 1e-2, ..AdamConfig::default() });
        let c = RebelConfig { epochs: 3, minibatches: 1, ..RebelConfig::default() };
        update(&p, &mut adam, &t, &rewards, None, &c, &mut rebel_agents::seeding::ChaCha8Rng::seed_from_u64(2)).unwrap();
        params(&p)
    };
    assert_eq!(ranks[0], ranks[1], "both ranks hold the same bits");
    assert!(max_abs_diff(&ranks[0], &one) < 1e-5, "two ranks in pieces vs one process whole: {}", max_abs_diff(&ranks[0], &one));
    let e = cfg(0).validate().unwrap_err();
    assert!(e.contains("rebel.grad_chunks"), "{e}");
}
