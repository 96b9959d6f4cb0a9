//! The REBEL update on a synthetic batch: it moves the policy towards the higher-reward member of
//! each pair, and `target_kl` ends an iteration's epochs early.

use rand::SeedableRng;
use rebel_agents::adam::{Adam, AdamConfig};
use rebel_agents::algos::rebel::{update, RebelConfig};
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
