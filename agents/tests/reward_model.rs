//! The reward-model ensemble: it learns a known linear reward from synthetic preferences, its file round trip
//! and errors, determinism, the Scorer contract, and the evaluation metrics on hand-worked cases.

use rebel_agents::seeding::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rebel_agents::checkpoint::{Checkpoint, CheckpointError, CheckpointMeta};
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::preferences::{
    DatasetMeta, PolicySource, PreferenceDataset, PreferencePair, TeacherConfig, TeacherKind, DATASET_VERSION,
};
use rebel_agents::reward_model::{evaluate, spearman, train, RewardEnsemble, RewardModelConfig, RewardModelError};
use rebel_agents::rollout::Segment;
use rebel_agents::scorer::{Scorer, TrueReward};
use tch::{Device, Kind, Tensor};

const OD: usize = 3;
const AD: usize = 1;
/// The true reward: r(s, a) = W · [s, a] + 0.3.
const W: [f64; 4] = [1.0, -2.0, 0.5, 1.5];

fn true_r(o: &[f32], a: &[f32]) -> f64 {
    o.iter().chain(a).zip(W).map(|(x, w)| *x as f64 * w).sum::<f64>() + 0.3
}

#[allow(clippy::field_reassign_with_default)]
fn piece(rng: &mut ChaCha8Rng, len: usize) -> Segment {
    let mut s = Segment::default();
    // inputs with different scales and offsets, so that the input normalisation matters
    s.obs = (0..len * OD)
        .map(|i| {
            let z: f64 = StandardNormal.sample(rng);
            (z * [1.0, 0.3, 3.0][i % OD] + [0.0, 1.0, -2.0][i % OD]) as f32
        })
        .collect();
    s.act = (0..len * AD).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    s.rewards = (0..len).map(|t| true_r(&s.obs[t * OD..(t + 1) * OD], &s.act[t * AD..(t + 1) * AD])).collect();
    s.response_len = len;
    s
}

/// `n` pairs of 8-step pieces labelled by `teacher` from the linear reward.
fn linear_dataset(n: usize, seed: u64, teacher: &TeacherConfig) -> PreferenceDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pairs = Vec::with_capacity(n);
    while pairs.len() < n {
        let (a, b) = (piece(&mut rng, 8), piece(&mut rng, 8));
        if let Some(label) = teacher.label(&a.rewards, &b.rewards, &mut rng) {
            pairs.push(PreferencePair { a, b, label });
        }
    }
    PreferenceDataset {
        meta: DatasetMeta {
            format_version: DATASET_VERSION,
            env_id: "Linear-v0".into(),
            obs_dim: OD,
            act_dim: AD,
            teacher: teacher.clone(),
            policy: PolicySource { path: "synthetic".into(), hash: String::new() },
            seed,
            segment_len: Some(8),
            same_start: false,
            queries: n as u64,
            simulated_env_steps: 0,
        },
        pairs,
    }
}

fn small_cfg() -> RewardModelConfig {
    RewardModelConfig { epochs: 25, hidden: vec![32, 32], ..RewardModelConfig::default() }
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}

#[test]
fn learns_a_known_linear_reward_from_preferences() {
    tch::set_num_threads(1);
    let oracle = TeacherConfig::preset(TeacherKind::Oracle);
    let train_ds = linear_dataset(400, 1, &oracle);
    let (model, report) = train(&train_ds, &small_cfg()).unwrap();
    assert_eq!((report.train_pairs, report.holdout_pairs), (360, 40));
    assert!(report.holdout_accuracy >= 0.85, "{report:?}");

    // fresh pairs from another seed
    let test = linear_dataset(300, 2, &oracle);
    let r = evaluate(&model, &test);
    assert_eq!(r.pairs, 300);
    assert!(r.accuracy >= 0.9 && r.spearman >= 0.95, "{r:?}");

    // per step, the learned reward is an increasing affine function of the true one
    let batch = test.segment_batch();
    let t = batch.to_tensors(Device::Cpu);
    let steps = model.step_scores(&t).to_kind(Kind::Double).view([-1]);
    let learned = Vec::<f64>::try_from(steps).unwrap();
    let truth: Vec<f64> = batch.segments.iter().flat_map(|s| s.rewards.clone()).collect();
    let c = pearson(&learned, &truth);
    assert!(c > 0.97, "per-step correlation {c}");

    // a constant-reward scorer has no preference: accuracy ½ on every decisive pair, Spearman 0
    struct Flat;
    impl Scorer for Flat {
        fn step_scores(&self, t: &rebel_agents::rollout::SegmentTensors) -> tch::Tensor {
            t.rewards.ones_like()
        }
    }
    let r0 = evaluate(&Flat, &test);
    assert_eq!(r0.accuracy, 0.5);
    assert_eq!(r0.spearman, 0.0);
}

#[test]
fn members_are_normalised_over_the_training_steps() {
    tch::set_num_threads(1);
    let ds = linear_dataset(120, 3, &TeacherConfig::preset(TeacherKind::Oracle));
    let cfg = RewardModelConfig { epochs: 5, ..small_cfg() };
    let (model, _) = train(&ds, &cfg).unwrap();
    let m = model.meta();
    let norm = model.member_normalisation();
    assert_eq!(norm.len(), 3);
    assert!(norm.iter().all(|(_, s)| *s > 0.0));
    // the ensemble's per-step output over all steps: mean ≈ 0 (training split is 90% of them)
    let t = ds.segment_batch().to_tensors(Device::Cpu);
    let s = model.step_scores(&t).to_kind(Kind::Double);
    let mean = s.mean(Kind::Double).double_value(&[]);
    assert!(mean.abs() < 0.2, "ensemble step mean {mean}");
    assert_eq!(model.labels_used(), 120);
    assert_eq!(m.labels_train, 108);
}

/// The members' raw returns agree with the ensemble's scores, and the query scores of active querying follow
/// their definitions (per-member Bradley–Terry probabilities: their spread, their mean entropy), computed here
/// by hand from those returns; the ranking puts the highest score first.
#[test]
fn member_returns_and_query_scores_follow_their_definitions() {
    use rebel_agents::preferences::query::{query_scores, select, QueryMode};
    tch::set_num_threads(1);
    let ds = linear_dataset(150, 5, &TeacherConfig::preset(TeacherKind::Oracle));
    let (model, _) = train(&ds, &RewardModelConfig { epochs: 5, ..small_cfg() }).unwrap();
    let test = linear_dataset(40, 6, &TeacherConfig::preset(TeacherKind::Oracle));
    let t = test.segment_batch().to_tensors(Device::Cpu);
    let r = model.member_returns(&t).to_kind(Kind::Double);
    assert_eq!(r.size(), [3, 80]);
    let r: Vec<Vec<f64>> = (0..3).map(|m| Vec::<f64>::try_from(r.get(m)).unwrap()).collect();
    // the ensemble's segment score is the mean over members of (R_m − L·μ_m)/σ_m
    let scores = Vec::<f64>::try_from(model.segment_scores(&t).to_kind(Kind::Double)).unwrap();
    let norm = model.member_normalisation();
    for (s, score) in scores.iter().enumerate() {
        let want = (0..3).map(|m| (r[m][s] - 8.0 * norm[m].0) / norm[m].1).sum::<f64>() / 3.0;
        assert!((score - want).abs() < 1e-3 * (1.0 + want.abs()), "segment {s}: {score} vs {want}");
    }
    let pairs: Vec<_> = test.pairs.iter().map(|p| (p.a.clone(), p.b.clone())).collect();
    let dis = query_scores(&model, &pairs, QueryMode::Disagreement);
    let ent = query_scores(&model, &pairs, QueryMode::Entropy);
    for i in 0..pairs.len() {
        let p: Vec<f64> = (0..3).map(|m| 1.0 / (1.0 + (-(r[m][2 * i] - r[m][2 * i + 1])).exp())).collect();
        let mean = p.iter().sum::<f64>() / 3.0;
        let sd = (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let h = p.iter().map(|&x| -(x * x.max(1e-12).ln() + (1.0 - x) * (1.0 - x).max(1e-12).ln())).sum::<f64>() / 3.0;
        assert!((dis[i] - sd).abs() < 1e-6, "pair {i}: disagreement {} vs {sd}", dis[i]);
        assert!((ent[i] - h).abs() < 1e-6, "pair {i}: entropy {} vs {h}", ent[i]);
        assert!((0.0..=std::f64::consts::LN_2 + 1e-9).contains(&ent[i]));
    }
    let mut rng = rebel_agents::seeding::stream(1, rebel_agents::seeding::Domain::Preferences, 3);
    for (mode, s) in [(QueryMode::Disagreement, &dis), (QueryMode::Entropy, &ent)] {
        let order = select(mode, Some(&model), &pairs, &mut rng);
        assert_eq!(order.len(), pairs.len());
        assert!(order.windows(2).all(|w| s[w[0]] >= s[w[1]]), "{mode:?} ranks by its score");
    }
    // not every pair is equally worth asking about
    assert!(dis.iter().cloned().fold(0.0, f64::max) > dis.iter().cloned().fold(1.0, f64::min));
}

#[test]
fn training_is_deterministic_for_a_seed() {
    tch::set_num_threads(1);
    let ds = linear_dataset(60, 4, &TeacherConfig::preset(TeacherKind::Bt));
    let cfg = RewardModelConfig { epochs: 3, ..small_cfg() };
    let t = ds.segment_batch().to_tensors(Device::Cpu);
    let s1 = train(&ds, &cfg).unwrap().0.segment_scores(&t);
    let s2 = train(&ds, &cfg).unwrap().0.segment_scores(&t);
    assert!(s1.equal(&s2));
    let s3 = train(&ds, &RewardModelConfig { seed: 1, ..cfg }).unwrap().0.segment_scores(&t);
    assert!(!s1.equal(&s3));
}

#[test]
fn save_load_round_trip_and_errors() {
    tch::set_num_threads(1);
    let ds = linear_dataset(50, 5, &TeacherConfig::preset(TeacherKind::Oracle));
    let (model, _) = train(&ds, &RewardModelConfig { epochs: 2, ..small_cfg() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rm.safetensors");
    model.save(&p, "Linear-v0").unwrap();
    let (back, env) = RewardEnsemble::load(&p).unwrap();
    assert_eq!(env, "Linear-v0");
    assert_eq!(back.meta(), model.meta());
    assert_eq!(back.member_normalisation(), model.member_normalisation());
    let t = ds.segment_batch().to_tensors(Device::Cpu);
    assert!(back.step_scores(&t).equal(&model.step_scores(&t)));
    assert_eq!(back.labels_used(), 50);

    // truncated and flipped files
    let bytes = std::fs::read(&p).unwrap();
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(matches!(RewardEnsemble::load(&p), Err(RewardModelError::Checkpoint(CheckpointError::Corrupt { .. }))));
    }
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x10;
    std::fs::write(&p, &flipped).unwrap();
    assert!(matches!(RewardEnsemble::load(&p), Err(RewardModelError::Checkpoint(CheckpointError::Corrupt { .. }))));

    // a policy checkpoint is not a reward model
    let mut ck = Checkpoint::new(CheckpointMeta::new("Swimmer-v5", "rebel", 0, ""));
    ck.add_policy("policy", &GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 0)).unwrap();
    ck.save(&p).unwrap();
    assert!(matches!(RewardEnsemble::load(&p), Err(RewardModelError::NotARewardModel { .. })));
    // a reward-model checkpoint whose metadata disagrees with its tensors
    let mut ck = Checkpoint::new(CheckpointMeta::new("Linear-v0", "reward_model", 0, ""));
    let mut meta = serde_json::to_value(model.meta()).unwrap();
    meta["config"]["hidden"] = serde_json::json!([16]);
    ck.meta.extra = meta;
    ck.add_tensors("rm", &[("input.mean".to_string(), Tensor::zeros([4], (Kind::Float, Device::Cpu)))]).unwrap();
    ck.save(&p).unwrap();
    assert!(matches!(RewardEnsemble::load(&p), Err(RewardModelError::Checkpoint(CheckpointError::Architecture { .. }))));
    assert!(matches!(
        RewardEnsemble::load(dir.path().join("none")),
        Err(RewardModelError::Checkpoint(CheckpointError::NotFound { .. }))
    ));
}

#[test]
fn config_is_validated() {
    let ds = linear_dataset(10, 6, &TeacherConfig::preset(TeacherKind::Oracle));
    for bad in [
        RewardModelConfig { members: 0, ..small_cfg() },
        RewardModelConfig { batch: 0, ..small_cfg() },
        RewardModelConfig { holdout: 1.0, ..small_cfg() },
        RewardModelConfig { eps_random: 1.0, ..small_cfg() },
        RewardModelConfig { lr: -1.0, ..small_cfg() },
    ] {
        assert!(matches!(train(&ds, &bad), Err(RewardModelError::Config(_))), "{bad:?}");
    }
}

#[test]
fn evaluation_metrics_on_hand_worked_cases() {
    // Spearman: identical order 1, reversed −1; ties averaged: x = [1, 2, 2, 3] → ranks [1, 2.5, 2.5, 4],
    // y = [1, 3, 2, 4] → Pearson of ranks = 4.5 / sqrt(4.5 · 5) = 0.9486832980505138.
    assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    assert!((spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]) - 0.9486832980505138).abs() < 1e-12);

    // the true reward scores pieces exactly: Spearman 1 and true-order accuracy 1; against a mistaken
    // teacher's labels its accuracy is the teacher's own agreement with the truth
    let mistake = TeacherConfig { eps: 0.2, ..TeacherConfig::preset(TeacherKind::Mistake) };
    let ds = linear_dataset(400, 7, &mistake);
    let r = evaluate(&TrueReward, &ds);
    assert!((r.spearman - 1.0).abs() < 1e-6, "{r:?}");
    assert_eq!(r.true_accuracy, 1.0);
    assert!((r.accuracy - r.teacher_true_accuracy).abs() < 1e-12);
    assert!((r.accuracy - 0.8).abs() < 0.06, "{r:?}");

    // equal labels are not counted in the accuracy
    let eq = TeacherConfig { equal_threshold: Some(2.0), ..TeacherConfig::preset(TeacherKind::Equal) };
    let ds = linear_dataset(200, 8, &eq);
    let r = evaluate(&TrueReward, &ds);
    assert!(r.decisive_pairs < r.pairs);
    assert_eq!(r.accuracy, 1.0);
}

/// Issue 16: a file whose metadata claims absurd sizes, with a consistent checksum (only the JSON lies), aborted
/// the process with a huge allocation. It must be a clear error, before anything is allocated.
#[test]
fn issue16_reward_model_with_absurd_metadata_is_an_error_not_an_abort() {
    tch::set_num_threads(1);
    let ds = linear_dataset(20, 5, &TeacherConfig::preset(TeacherKind::Oracle));
    let (model, _) = train(&ds, &RewardModelConfig { epochs: 1, ..small_cfg() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rm.safetensors");
    model.save(&p, "Linear-v0").unwrap();
    for key in ["hidden", "members"] {
        let mut ck = Checkpoint::load(&p).unwrap();
        match key {
            "hidden" => ck.meta.extra["config"]["hidden"][0] = serde_json::json!(1_000_000_000u64),
            _ => ck.meta.extra["config"]["members"] = serde_json::json!(1_000_000_000u64),
        }
        let crafted = dir.path().join(format!("crafted-{key}.safetensors"));
        ck.save(&crafted).unwrap(); // recomputes the checksum: the file itself is consistent
        let e = RewardEnsemble::load(&crafted).map(|_| ()).unwrap_err();
        assert!(
            matches!(e, RewardModelError::Checkpoint(CheckpointError::Architecture { .. }) | RewardModelError::BadMeta { .. }),
            "{key}: {e}"
        );
        assert!(e.to_string().contains("1000000000"), "{key}: the message names the absurd size: {e}");
    }
    // obs_dim: the input layer would be [hidden, 1e9]
    let mut ck = Checkpoint::load(&p).unwrap();
    ck.meta.extra["obs_dim"] = serde_json::json!(1_000_000_000u64);
    ck.save(&p).unwrap();
    let e = RewardEnsemble::load(&p).map(|_| ()).unwrap_err();
    assert!(matches!(e, RewardModelError::Checkpoint(CheckpointError::Architecture { .. })), "{e}");
}

#[test]
fn a_diverging_reward_net_is_an_error_not_a_nan_model() {
    let ds = linear_dataset(64, 3, &TeacherConfig::preset(TeacherKind::Oracle));
    let cfg = RewardModelConfig { lr: 1e30, epochs: 5, ..small_cfg() };
    let t = ds.segment_batch().to_tensors(Device::Cpu);
    match train(&ds, &cfg) {
        Err(RewardModelError::Diverged(msg)) => assert!(msg.contains("learning rate"), "{msg}"),
        Err(e) => panic!("expected Diverged, got {e}"),
        Ok((m, _)) => panic!("a model was returned from lr = 1e30: scores {:?}", m.segment_scores(&t)),
    }
}
