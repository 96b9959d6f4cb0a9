//! Simulated teachers (statistics of each B-Pref behaviour), the dataset file (round trip; corrupt, truncated,
//! foreign, wrong-version, wrong-shape and incomplete files) and collection on Swimmer.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rebel_agents::seeding::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rebel_agents::checkpoint::{Checkpoint, CheckpointMeta};
use rebel_agents::losses::bradley_terry_loss;
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::preferences::{
    collect_preferences, sigmoid, CollectConfig, DatasetMeta, PolicySource, PreferenceDataset, PreferenceError,
    PreferencePair, TeacherConfig, TeacherKind, DATASET_VERSION,
};
use rebel_agents::rollout::Segment;
use rebel_envs::vec_env::VecEnv;
use rebel_envs::EnvConfig;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

// ───────────── teachers ─────────────

#[test]
fn oracle_prefers_the_larger_return_and_ties_are_half() {
    let t = TeacherConfig::preset(TeacherKind::Oracle);
    let mut r = rng(0);
    assert_eq!(t.label(&[1.0, 2.0], &[0.5, 2.0], &mut r), Some(1.0));
    assert_eq!(t.label(&[1.0, 2.0], &[3.5, 0.0], &mut r), Some(0.0));
    assert_eq!(t.label(&[1.0, 2.0], &[2.0, 1.0], &mut r), Some(0.5));
    // unequal lengths compare sums
    assert_eq!(t.label(&[1.0; 5], &[2.0, 2.0], &mut r), Some(1.0));
}

#[test]
fn mistake_flips_about_eps_of_the_labels() {
    let t = TeacherConfig::preset(TeacherKind::Mistake);
    assert_eq!(t.eps, 0.1);
    let mut r = rng(1);
    let n = 20_000;
    let mut flipped = 0;
    for i in 0..n {
        let (a, b) = if i % 2 == 0 { (vec![1.0], vec![0.0]) } else { (vec![0.0], vec![1.0]) };
        let truth = if i % 2 == 0 { 1.0 } else { 0.0 };
        let y = t.label(&a, &b, &mut r).expect("mistake never skips");
        if y != truth {
            flipped += 1;
        }
    }
    let f = flipped as f64 / n as f64;
    // standard error sqrt(0.09/20000) = 0.0021; allow 4 of them
    assert!((f - 0.1).abs() < 0.0085, "flipped fraction {f}");
}

#[test]
fn skip_drops_pairs_whose_best_return_is_below_the_threshold() {
    let mut t = TeacherConfig::preset(TeacherKind::Skip);
    assert_eq!(t.skip_threshold, Some(0.0));
    let mut r = rng(2);
    assert_eq!(t.label(&[-1.0, 0.5], &[-3.0], &mut r), None); // max −0.5 ≤ 0
    assert_eq!(t.label(&[0.0], &[-3.0], &mut r), None); // max 0 ≤ 0
    assert_eq!(t.label(&[0.1], &[-3.0], &mut r), Some(1.0));
    t.skip_threshold = Some(5.0);
    let mut kept = 0;
    for _ in 0..1000 {
        let (a, b): (f64, f64) = (r.random::<f64>() * 10.0, r.random::<f64>() * 10.0);
        match t.label(&[a], &[b], &mut r) {
            Some(y) => {
                assert!(a.max(b) > 5.0);
                assert_eq!(y, if a > b { 1.0 } else { 0.0 });
                kept += 1;
            }
            None => assert!(a.max(b) <= 5.0),
        }
    }
    // P(max of two U(0,10) > 5) = 0.75
    assert!((700..800).contains(&kept), "kept {kept}");
}

#[test]
fn equal_gives_half_on_near_ties_only() {
    let t = TeacherConfig::preset(TeacherKind::Equal);
    let d = t.equal_threshold.expect("equal preset has a threshold");
    let mut r = rng(3);
    assert_eq!(t.label(&[10.0], &[10.0 + 0.9 * d], &mut r), Some(0.5));
    assert_eq!(t.label(&[10.0 + 0.5 * d], &[10.0], &mut r), Some(0.5));
    assert_eq!(t.label(&[10.0 + 1.1 * d], &[10.0], &mut r), Some(1.0));
    assert_eq!(t.label(&[10.0], &[10.0 + 2.0 * d], &mut r), Some(0.0));
    // equal overrides mistakes and Boltzmann noise (B-Pref order)
    let noisy = TeacherConfig { eps: 0.5, beta: Some(1.0), ..t.clone() };
    for _ in 0..200 {
        assert_eq!(noisy.label(&[3.0], &[3.0 + 0.5 * d], &mut r), Some(0.5));
    }
}

#[test]
fn myopic_weights_recent_steps_by_gamma_powers() {
    let t = TeacherConfig::preset(TeacherKind::Myopic);
    assert_eq!(t.gamma, 0.9);
    // step t of T weighs 0.9^(T−1−t): [1, 2, 3] → 0.81·1 + 0.9·2 + 3 = 5.61
    assert!((t.weighted_return(&[1.0, 2.0, 3.0]) - 5.61).abs() < 1e-12);
    let mut a = vec![0.0; 10];
    a[0] = 10.0; // early reward: weight 0.9^9 ≈ 0.387 → 3.87
    let mut b = vec![0.0; 10];
    b[9] = 6.0; // late reward: weight 1
    let mut r = rng(4);
    assert_eq!(TeacherConfig::preset(TeacherKind::Oracle).label(&a, &b, &mut r), Some(1.0));
    assert_eq!(t.label(&a, &b, &mut r), Some(0.0));
    assert_eq!(t.label(&b, &a, &mut r), Some(1.0));
}

#[test]
fn boltzmann_frequency_matches_sigmoid_of_beta_delta() {
    let beta = 0.7;
    let t = TeacherConfig { beta: Some(beta), ..TeacherConfig::preset(TeacherKind::Bt) };
    let mut r = rng(5);
    let n = 20_000;
    for delta in [-3.0, -0.5, 0.0, 1.0, 2.5] {
        let wins = (0..n).filter(|_| t.label(&[delta, 0.0], &[0.0], &mut r) == Some(1.0)).count();
        let f = wins as f64 / n as f64;
        let p = sigmoid(beta * delta);
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((f - p).abs() < 4.0 * se + 1e-3, "Δ = {delta}: frequency {f}, σ(βΔ) = {p}");
    }
}

#[test]
fn bt_teacher_probability_is_the_loss_likelihood() {
    // Hand-worked: β = 0.5, R_a = 3, R_b = 1 → P(a ≻ b) = σ(1) = 0.7310585786300049,
    // −ln P = 0.31326168751822286, −ln(1 − P) = 1.3132616875182228.
    let p = sigmoid(0.5 * (3.0 - 1.0));
    assert!((p - 0.7310585786300049).abs() < 1e-15);
    let sa = Tensor::from_slice(&[0.5 * 3.0, 0.5 * 3.0]);
    let sb = Tensor::from_slice(&[0.5 * 1.0, 0.5 * 1.0]);
    let y = Tensor::from_slice(&[1.0, 0.0]);
    let l = bradley_terry_loss(&sa, &sb, &y, 0.0).double_value(&[]);
    assert!((l - (0.31326168751822286 + 1.3132616875182228) / 2.0).abs() < 1e-12, "{l}");
    // the teacher's expected loss at the true scores is the binary entropy of P (the minimum over scores)
    let expected = -(p * p.ln() + (1.0 - p) * (1.0 - p).ln());
    let y = Tensor::from_slice(&[p]);
    let at_truth = bradley_terry_loss(&Tensor::from_slice(&[1.5]), &Tensor::from_slice(&[0.5]), &y, 0.0).double_value(&[]);
    assert!((at_truth - expected).abs() < 1e-12);
    let off = bradley_terry_loss(&Tensor::from_slice(&[2.5]), &Tensor::from_slice(&[0.5]), &y, 0.0).double_value(&[]);
    assert!(off > at_truth + 0.05);
}

#[test]
fn teachers_are_deterministic_for_a_seed() {
    let t = TeacherConfig { eps: 0.2, beta: Some(0.3), ..TeacherConfig::preset(TeacherKind::Noisy) };
    let draw = |seed| {
        let mut r = rng(seed);
        (0..200).map(|i| t.label(&[i as f64 * 0.01], &[1.0], &mut r)).collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}

#[test]
fn teacher_config_validates_and_rejects_unknown_fields() {
    for k in ["bt", "oracle", "noisy", "mistake", "myopic", "skip", "equal"] {
        TeacherConfig::preset(TeacherKind::parse(k).unwrap()).validate().unwrap();
    }
    assert!(TeacherKind::parse("sage").is_err());
    let bad = [
        TeacherConfig { beta: Some(0.0), ..Default::default() },
        TeacherConfig { beta: Some(f64::NAN), ..Default::default() },
        TeacherConfig { eps: 1.5, ..Default::default() },
        TeacherConfig { gamma: 0.0, ..Default::default() },
        TeacherConfig { equal_threshold: Some(-1.0), ..Default::default() },
    ];
    for b in bad {
        assert!(matches!(b.validate(), Err(PreferenceError::Teacher(_))), "{b:?}");
    }
    let ok: TeacherConfig = serde_json::from_str(r#"{"kind": "myopic", "gamma": 0.8}"#).unwrap();
    assert_eq!(ok.gamma, 0.8);
    assert_eq!(ok.eps, 0.0);
    assert!(serde_json::from_str::<TeacherConfig>(r#"{"kind": "myopic", "gama": 0.8}"#).is_err());
}

// ───────────── the dataset file ─────────────

#[allow(clippy::field_reassign_with_default)]
fn seg(rng: &mut ChaCha8Rng, len: usize, od: usize, ad: usize) -> Segment {
    let mut s = Segment::default();
    s.obs = (0..len * od).map(|_| rng.random::<f32>() - 0.5).collect();
    s.act = (0..len * ad).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    s.rewards = (0..len).map(|_| rng.random::<f64>() - 0.5).collect();
    s.response_len = len;
    s
}

fn synthetic(n: usize) -> PreferenceDataset {
    let mut r = rng(11);
    let pairs = (0..n)
        .map(|i| {
            let mut a = seg(&mut r, 3 + i % 4, 3, 2);
            let mut b = seg(&mut r, 5, 3, 2);
            a.group = i;
            b.group = i;
            b.truncated = i % 3 == 0;
            a.terminated = i % 5 == 0;
            PreferencePair { a, b, label: [0.0, 0.5, 1.0][i % 3] }
        })
        .collect();
    PreferenceDataset {
        meta: DatasetMeta {
            format_version: DATASET_VERSION,
            env_id: "Synthetic-v0".into(),
            obs_dim: 3,
            act_dim: 2,
            teacher: TeacherConfig::preset(TeacherKind::Bt),
            policy: PolicySource { path: "random:0".into(), hash: String::new() },
            seed: 3,
            segment_len: None,
            same_start: false,
            queries: n as u64 + 2,
            simulated_env_steps: 0,
        },
        pairs,
    }
}

#[test]
fn dataset_round_trip_is_exact() {
    let ds = synthetic(7);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub/prefs.safetensors");
    ds.save(&p).unwrap();
    let back = PreferenceDataset::load(&p).unwrap();
    assert_eq!(back, ds);
    // no temporary file is left behind
    let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // the file is a standard safetensors file with the documented tensors and dtypes
    let bytes = std::fs::read(&p).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("obs_a").unwrap().shape(), &[7, 6, 3]);
    assert_eq!(st.tensor("act_b").unwrap().shape(), &[7, 6, 2]);
    assert_eq!(st.tensor("mask_a").unwrap().dtype(), Dtype::U8);
    assert_eq!(st.tensor("true_rewards_a").unwrap().dtype(), Dtype::F64);
    assert_eq!(st.tensor("labels").unwrap().shape(), &[7]);
}

fn expect_err(bytes: &[u8]) -> PreferenceError {
    match PreferenceDataset::from_bytes(bytes, Path::new("test.safetensors")) {
        Ok(_) => panic!("a damaged file loaded"),
        Err(e) => e,
    }
}

#[test]
fn truncated_files_are_corrupt_errors() {
    let bytes = synthetic(5).to_bytes().unwrap();
    for cut in [0, 1, 7, 8, 9, 50, bytes.len() / 3, bytes.len() / 2, bytes.len() - 8, bytes.len() - 1] {
        let e = expect_err(&bytes[..cut]);
        assert!(matches!(e, PreferenceError::Corrupt { .. }), "cut at {cut}: {e}");
        assert!(e.to_string().contains("prefs collect"), "the message says what to do: {e}");
    }
}

#[test]
fn flipped_bytes_are_errors_not_panics() {
    let bytes = synthetic(5).to_bytes().unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // in the data: the checksum catches it
    for pos in [8 + header_len, 8 + header_len + 17, bytes.len() - 3] {
        let mut b = bytes.clone();
        b[pos] ^= 0x55;
        let e = expect_err(&b);
        assert!(matches!(e, PreferenceError::Corrupt { ref reason, .. } if reason.contains("checksum")), "{pos}: {e}");
    }
    // anywhere else (header length, header JSON): some error, never a panic or a silent success
    let mut r = rng(9);
    for _ in 0..300 {
        let mut b = bytes.clone();
        let pos = r.random_range(0..8 + header_len);
        b[pos] ^= 1 << r.random_range(0..8u32);
        if let Ok(ds) = PreferenceDataset::from_bytes(&b, Path::new("x")) {
            // a flip inside a JSON string of the metadata may still parse; then the pairs must be intact
            assert_eq!(ds.pairs, synthetic(5).pairs, "flip at {pos} changed the data silently");
        }
    }
}

#[test]
fn wrong_version_foreign_and_missing_files_have_their_own_errors() {
    let mut ds = synthetic(3);
    ds.meta.format_version = DATASET_VERSION + 1;
    let e = expect_err(&ds.to_bytes().unwrap());
    assert!(matches!(e, PreferenceError::Version { found, supported, .. } if found == DATASET_VERSION + 1 && supported == DATASET_VERSION), "{e}");

    // a policy checkpoint is a safetensors file, but not a dataset
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ck.safetensors");
    let mut ck = Checkpoint::new(CheckpointMeta::new("Swimmer-v5", "rebel", 0, ""));
    ck.add_policy("policy", &GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 0)).unwrap();
    ck.save(&p).unwrap();
    assert!(matches!(PreferenceDataset::load(&p), Err(PreferenceError::Foreign { .. })));
    assert!(matches!(PreferenceDataset::load(dir.path().join("nope")), Err(PreferenceError::NotFound { .. })));
}

type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

// Rebuilds a file from named tensors with the documented checksum (FNV-1a 64 over name, dtype, shape, bytes,
// tensors in name order), so that shape checks are reached.
fn rebuild(tensors: Tensors, meta: &str) -> Vec<u8> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut fnv = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, (dtype, shape, data)) in &tensors {
        fnv(name.as_bytes());
        fnv(match dtype {
            Dtype::F32 => b"F32".as_slice(),
            Dtype::F64 => b"F64".as_slice(),
            Dtype::U8 => b"U8".as_slice(),
            _ => b"other".as_slice(),
        });
        for d in shape {
            fnv(&(*d as u64).to_le_bytes());
        }
        fnv(data);
    }
    let mut info = HashMap::new();
    info.insert("format".to_string(), "rebel-rs-preferences".to_string());
    info.insert("meta".to_string(), meta.to_string());
    info.insert("checksum".to_string(), format!("{h:016x}"));
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, &Some(info)).unwrap()
}

fn parts(bytes: &[u8]) -> (Tensors, String) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let tensors = st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    (tensors, header.metadata().as_ref().unwrap()["meta"].clone())
}

#[test]
fn rebuilt_file_with_the_documented_checksum_loads() {
    // guards the helper: an unmodified rebuild must load, so the failures below are about the modification
    let bytes = synthetic(4).to_bytes().unwrap();
    let (t, meta) = parts(&bytes);
    assert_eq!(PreferenceDataset::from_bytes(&rebuild(t, &meta), Path::new("x")).unwrap(), synthetic(4));
}

#[test]
fn missing_extra_and_misshapen_tensors_are_shape_errors() {
    let bytes = synthetic(4).to_bytes().unwrap();
    let (t, meta) = parts(&bytes);

    let mut missing = t.clone();
    missing.remove("labels");
    let e = expect_err(&rebuild(missing, &meta));
    assert!(matches!(e, PreferenceError::Shape { ref reason, .. } if reason.contains("labels")), "{e}");

    let mut extra = t.clone();
    extra.insert("junk".into(), (Dtype::F32, vec![1], vec![0; 4]));
    assert!(matches!(expect_err(&rebuild(extra, &meta)), PreferenceError::Shape { .. }));

    // obs_dim in the metadata no longer matches the tensors
    let e = expect_err(&rebuild(t.clone(), &meta.replace("\"obs_dim\":3", "\"obs_dim\":4")));
    assert!(matches!(e, PreferenceError::Shape { ref reason, .. } if reason.contains("obs_a")), "{e}");

    // one tensor with a different N
    let mut short = t.clone();
    let (d, s, b) = short["act_b"].clone();
    let row = s[1] * s[2] * 4;
    short.insert("act_b".into(), (d, vec![s[0] - 1, s[1], s[2]], b[..b.len() - row].to_vec()));
    assert!(matches!(expect_err(&rebuild(short, &meta)), PreferenceError::Shape { .. }));

    // wrong dtype
    let mut f64_labels = t.clone();
    f64_labels.insert("labels".into(), (Dtype::F64, vec![4], vec![0; 32]));
    assert!(matches!(expect_err(&rebuild(f64_labels, &meta)), PreferenceError::Shape { .. }));

    // a mask with a hole, and an invalid label, are corrupt
    let mut holes = t.clone();
    holes.get_mut("mask_b").unwrap().2[1] = 0;
    assert!(matches!(expect_err(&rebuild(holes, &meta)), PreferenceError::Corrupt { .. }));
    let mut lab = t.clone();
    lab.get_mut("labels").unwrap().2[..4].copy_from_slice(&0.25f32.to_le_bytes());
    assert!(matches!(expect_err(&rebuild(lab, &meta)), PreferenceError::Corrupt { .. }));
    // unknown metadata fields are rejected
    let e = expect_err(&rebuild(t, &meta.replace("\"same_start\"", "\"surprise\":1,\"same_start\"")));
    assert!(matches!(e, PreferenceError::Corrupt { .. }), "{e}");
}

// ───────────── collection on Swimmer ─────────────

fn swimmer(n: usize) -> VecEnv {
    VecEnv::make("Swimmer-v5", &EnvConfig::new(), n, 2).unwrap()
}

#[test]
fn collection_is_deterministic_and_labels_follow_the_true_reward() {
    tch::set_num_threads(1);
    let mut venv = swimmer(4);
    let policy = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 0);
    let src = PolicySource { path: "random:0".into(), hash: String::new() };
    let cfg = CollectConfig { n_labels: 30, segment_len: Some(25), same_start: false, seed: 5 };
    let oracle = TeacherConfig::preset(TeacherKind::Oracle);
    let a = collect_preferences(&mut venv, &policy, src.clone(), &cfg, &oracle).unwrap();
    let b = collect_preferences(&mut venv, &policy, src.clone(), &cfg, &oracle).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 30);
    assert_eq!(a.meta.env_id, "Swimmer-v5");
    for p in &a.pairs {
        assert_eq!((p.a.len(), p.b.len()), (25, 25));
        let (ra, rb) = (p.a.true_return(), p.b.true_return());
        assert_eq!(p.label, if ra > rb { 1.0 } else { 0.0 });
        // different episodes: different start observations
        assert_ne!(p.a.obs[..8], p.b.obs[..8]);
    }
    let c = collect_preferences(&mut venv, &policy, src, &CollectConfig { seed: 6, ..cfg }, &oracle).unwrap();
    assert_ne!(a.pairs[0].a.obs, c.pairs[0].a.obs);
}

#[test]
fn same_start_pairs_share_their_first_observation_and_whole_episodes_work() {
    tch::set_num_threads(1);
    let mut venv = swimmer(4);
    let policy = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 1);
    let src = PolicySource { path: "random:1".into(), hash: String::new() };
    let skip = TeacherConfig::preset(TeacherKind::Skip);
    let cfg = CollectConfig { n_labels: 10, segment_len: Some(40), same_start: true, seed: 1 };
    let ds = collect_preferences(&mut venv, &policy, src.clone(), &cfg, &skip).unwrap();
    assert_eq!(ds.len(), 10);
    assert!(ds.meta.queries >= 10);
    for p in &ds.pairs {
        assert_eq!(p.a.obs[..8], p.b.obs[..8]);
        assert_ne!(p.a.act, p.b.act);
        assert!(p.a.true_return().max(p.b.true_return()) > 0.0, "skip keeps pairs with a forward piece only");
    }
    let whole = CollectConfig { n_labels: 2, segment_len: None, same_start: true, seed: 1 };
    let ds = collect_preferences(&mut venv, &policy, src.clone(), &whole, &skip.clone()).unwrap_or_else(|e| panic!("{e}"));
    for p in &ds.pairs {
        assert_eq!((p.a.len(), p.b.len()), (1000, 1000));
        assert!(p.a.truncated && p.b.truncated);
    }
    // an odd number of envs cannot hold same-start pairs
    let mut odd = swimmer(3);
    assert!(matches!(
        collect_preferences(&mut odd, &policy, src, &cfg, &skip),
        Err(PreferenceError::Collect(_))
    ));
}

/// Issue 16: a dataset whose metadata claims absurd sizes, with a consistent checksum (only the JSON lies), must
/// be a clear error before anything is allocated from those sizes.
#[test]
fn issue16_dataset_with_absurd_metadata_is_an_error_not_an_abort() {
    let bytes = synthetic(4).to_bytes().unwrap();
    let (t, meta) = parts(&bytes);
    for (field, name) in [("\"obs_dim\":3", "obs_a"), ("\"act_dim\":2", "act_a")] {
        let key = field.split(':').next().unwrap();
        let absurd = meta.replace(field, &format!("{key}:1000000000"));
        assert_ne!(absurd, meta, "the metadata holds {field}");
        let e = expect_err(&rebuild(t.clone(), &absurd));
        assert!(matches!(e, PreferenceError::Shape { ref reason, .. } if reason.contains(name) && reason.contains("1000000000")), "{e}");
    }
    // a stored shape whose element count overflows, or exceeds the file, is refused by the container itself
    for shape in [serde_json::json!([u64::MAX / 2, 3]), serde_json::json!([1_000_000_000u64, 1_000_000_000u64])] {
        let header = serde_json::json!({
            "__metadata__": {"format": "rebel-rs-preferences", "meta": meta, "checksum": "0"},
            "labels": {"dtype": "F32", "shape": shape, "data_offsets": [0, 16]},
        })
        .to_string();
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[0u8; 16]);
        assert!(matches!(expect_err(&file), PreferenceError::Corrupt { .. }), "{shape}");
    }
}
