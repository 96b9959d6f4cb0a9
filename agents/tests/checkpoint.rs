//! Checkpoints: exact round trip and resumption, atomic writes, and a typed error (never a panic) for every way a
//! file can be wrong.

use rand::RngExt;
use rebel_agents::adam::{Adam, AdamConfig};
use rebel_agents::checkpoint::{Checkpoint, CheckpointError, CheckpointMeta, FORMAT_VERSION};
use rebel_agents::seeding::{stream, Domain};
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use tch::{Device, Kind, Tensor};

fn cfg() -> PolicyConfig {
    PolicyConfig { hidden: vec![8, 8], log_std_init: -0.5, ..PolicyConfig::new(4, 2) }
}

fn train_steps(policy: &GaussianPolicy, adam: &mut Adam, n: usize, seed: u64) {
    let mut rng = stream(seed, Domain::Train, 0);
    let o: Vec<f32> = (0..64).map(|_| rng.random::<f32>() - 0.5).collect();
    let a: Vec<f32> = (0..32).map(|_| rng.random::<f32>() - 0.5).collect();
    let obs = Tensor::from_slice(&o).view([16, 4]);
    let act = Tensor::from_slice(&a).view([16, 2]);
    for _ in 0..n {
        adam.zero_grad();
        let loss = -policy.log_prob(&obs, &act).mean(Kind::Float);
        loss.backward();
        adam.step();
    }
}

fn meta() -> CheckpointMeta {
    let mut m = CheckpointMeta::new("Swimmer-v5", "rebel", 17, "abc123");
    m.counters.insert("iteration".into(), 5);
    m.counters.insert("env_steps".into(), 40_000);
    m.extra = serde_json::json!({"note": "test"});
    m.env_options.insert("solver_iterations".into(), toml::Value::Integer(2));
    m.env_options.insert("healthy_z_range".into(), toml::Value::String("0.8,inf".into()));
    m.env_options.insert("ctrl_cost_weight".into(), toml::Value::Float(0.5));
    m
}

fn save_trained(path: &std::path::Path) -> (GaussianPolicy, Adam) {
    let policy = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Float, 1);
    let mut adam = Adam::new(policy.named_parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    train_steps(&policy, &mut adam, 3, 9);
    let mut ck = Checkpoint::new(meta());
    ck.add_policy("policy", &policy).unwrap();
    ck.add_adam("optim", &adam).unwrap();
    ck.save(path).unwrap();
    (policy, adam)
}

/// `meta()` with what saving adds (the policy's config and the Adam step count), to compare a loaded meta whole.
fn meta_with_policy_and_steps(loaded: &CheckpointMeta) -> CheckpointMeta {
    let mut m = meta();
    m.policy = loaded.policy.clone();
    m.counters.insert("optim.adam_step".into(), loaded.counters["optim.adam_step"]);
    m
}

#[test]
fn metadata_written_before_env_options_were_recorded_reads_with_none() {
    let mut json = serde_json::to_value(meta()).unwrap();
    json.as_object_mut().unwrap().remove("env_options");
    let old: CheckpointMeta = serde_json::from_value(json).unwrap();
    assert!(old.env_options.is_empty());
    assert_eq!(CheckpointMeta { env_options: meta().env_options, ..old }, meta());
    // and a meta without options writes no key (files of runs without options are as before)
    let plain = CheckpointMeta::new("Swimmer-v5", "rebel", 1, "");
    assert!(serde_json::to_value(&plain).unwrap().get("env_options").is_none());
}

#[test]
fn round_trip_is_exact_and_resumption_continues_identically() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt").join("iter_5.safetensors"); // parent created by save
    let (policy, mut adam) = save_trained(&path);

    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.meta.format_version, FORMAT_VERSION);
    assert_eq!(ck.meta.policy.as_ref(), Some(&cfg()));
    assert_eq!(ck.meta.env_id, "Swimmer-v5");
    assert_eq!(ck.meta.counters["iteration"], 5);
    assert_eq!(ck.meta.counters["optim.adam_step"], 3);
    assert_eq!(ck.meta.extra["note"], "test");
    assert_eq!(ck.meta.config_hash, "abc123");
    assert_eq!(ck.meta, meta_with_policy_and_steps(&ck.meta), "the environment options come back as written");

    let mut restored = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Float, 99);
    assert!(!restored.flat_params().equal(&policy.flat_params()));
    ck.restore_policy("policy", &mut restored).unwrap();
    assert!(restored.flat_params().equal(&policy.flat_params()));
    let mut adam2 = Adam::new(restored.named_parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    ck.restore_adam("optim", &mut adam2).unwrap();
    assert_eq!(adam2.step_count(), 3);
    for ((n1, m1), (n2, m2)) in adam.named_state().iter().zip(adam2.named_state().iter()) {
        assert_eq!(n1, n2);
        assert!(m1.equal(m2), "moment {n1} differs after restore");
    }

    // Continuing from the checkpoint gives exactly what continuing without interruption gives.
    train_steps(&policy, &mut adam, 2, 10);
    train_steps(&restored, &mut adam2, 2, 10);
    assert!(restored.flat_params().equal(&policy.flat_params()));

    // build_policy reconstructs from the stored config
    let built = ck.build_policy("policy", Device::Cpu, Kind::Float).unwrap();
    let mut before_continue = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Float, 0);
    ck.restore_policy("policy", &mut before_continue).unwrap();
    assert!(built.flat_params().equal(&before_continue.flat_params()));

    // no temporary files left behind; overwriting works
    ck.save(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("iter_5.safetensors")]);
}

#[test]
fn double_policy_round_trips_and_loads_into_float() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.safetensors");
    let p = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Double, 4);
    let mut ck = Checkpoint::new(meta());
    ck.add_policy("policy", &p).unwrap();
    ck.save(&path).unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    let q = ck.build_policy("policy", Device::Cpu, Kind::Double).unwrap();
    assert!(q.flat_params().equal(&p.flat_params()));
    let f = ck.build_policy("policy", Device::Cpu, Kind::Float).unwrap();
    assert_eq!(f.kind(), Kind::Float);
    assert!(f.flat_params().allclose(&p.flat_params().to_kind(Kind::Float), 0.0, 0.0, false));
}

#[test]
fn missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let e = Checkpoint::load(dir.path().join("nope.safetensors")).unwrap_err();
    assert!(matches!(e, CheckpointError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("check the path"));
}

#[test]
fn truncated_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    save_trained(&path);
    let bytes = std::fs::read(&path).unwrap();
    for keep in [0usize, 5, 8, 40, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let e = Checkpoint::load(&path).unwrap_err();
        assert!(matches!(e, CheckpointError::Corrupt { .. }), "truncated to {keep}: {e}");
        assert!(e.to_string().contains("earlier checkpoint"));
    }
}

#[test]
fn flipped_bytes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    save_trained(&path);
    let bytes = std::fs::read(&path).unwrap();
    // one byte in the tensor data (the end of the file): only the checksum can see it
    let mut data_flip = bytes.clone();
    let last = data_flip.len() - 3;
    data_flip[last] ^= 0x40;
    std::fs::write(&path, &data_flip).unwrap();
    let e = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(&e, CheckpointError::Corrupt { reason, .. } if reason.contains("checksum")), "{e}");
    // garbage in the JSON header
    let mut header_flip = bytes.clone();
    header_flip[9] = b'#';
    header_flip[12] = 0xff;
    std::fs::write(&path, &header_flip).unwrap();
    let e = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(e, CheckpointError::Corrupt { .. }), "{e}");
    // not a safetensors file at all
    std::fs::write(&path, b"hello, this is not a checkpoint at all, just text").unwrap();
    let e = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(e, CheckpointError::Corrupt { .. }), "{e}");
}

#[test]
fn other_architecture_is_a_typed_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    save_trained(&path);
    let ck = Checkpoint::load(&path).unwrap();
    for other in [
        PolicyConfig { hidden: vec![16, 8], ..cfg() },
        PolicyConfig { hidden: vec![8], ..cfg() },
        PolicyConfig { obs_dim: 5, ..cfg() },
        PolicyConfig { act_dim: 3, ..cfg() },
    ] {
        let mut p = GaussianPolicy::new(other.clone(), Device::Cpu, Kind::Float, 3);
        let before = p.flat_params();
        let e = ck.restore_policy("policy", &mut p).unwrap_err();
        assert!(matches!(e, CheckpointError::Architecture { .. }), "{other:?}: {e}");
        assert!(e.to_string().contains("build_policy"), "{e}");
        assert!(p.flat_params().equal(&before), "a failed restore must not modify the policy");
    }
    // Tensor-level checks (bypassing the config check): a wrong shape, a missing and an extra tensor.
    let wrong_shape = vec![("layer0.weight".to_string(), Tensor::zeros([8, 5], (Kind::Float, Device::Cpu)))];
    let e = ck.restore_tensors("policy", &wrong_shape).unwrap_err();
    assert!(e.to_string().contains("shape [8, 4], expected [8, 5]"), "{e}");
    let missing = vec![("layer9.weight".to_string(), Tensor::zeros([1], (Kind::Float, Device::Cpu)))];
    assert!(ck.restore_tensors("policy", &missing).unwrap_err().to_string().contains("missing"));
    let subset = vec![("layer0.weight".to_string(), Tensor::zeros([8, 4], (Kind::Float, Device::Cpu)))];
    let e = ck.restore_tensors("policy", &subset).unwrap_err();
    assert!(e.to_string().contains("which the network lacks"), "{e}");
    // Adam state for a different parameter set
    let small = GaussianPolicy::new(PolicyConfig { hidden: vec![4], ..cfg() }, Device::Cpu, Kind::Float, 0);
    let mut adam = Adam::new(small.named_parameters(), AdamConfig::default());
    assert!(matches!(ck.restore_adam("optim", &mut adam), Err(CheckpointError::Architecture { .. })));
    assert_eq!(adam.step_count(), 0);
}

#[test]
fn other_version_is_a_version_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.safetensors");
    let p = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Float, 0);
    let mut m = meta();
    m.format_version = FORMAT_VERSION + 1;
    let mut ck = Checkpoint::new(m);
    ck.add_policy("policy", &p).unwrap();
    ck.save(&path).unwrap();
    let e = Checkpoint::load(&path).unwrap_err();
    assert!(
        matches!(e, CheckpointError::Version { found, supported, .. } if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
        "{e}"
    );
}

#[test]
fn foreign_safetensors_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vs.safetensors");
    let p = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Float, 0);
    p.var_store().save(&path).unwrap(); // tch's own safetensors writer: no rebel-rs metadata
    let e = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(e, CheckpointError::Foreign { .. }), "{e}");
}

#[test]
fn unsupported_kind_is_rejected_on_save() {
    let mut ck = Checkpoint::new(meta());
    let ints = vec![("n".to_string(), Tensor::from_slice(&[1i64, 2]))];
    assert!(matches!(ck.add_tensors("x", &ints), Err(CheckpointError::UnsupportedKind { .. })));
}

#[test]
fn derived_rngs_are_reproducible_and_distinct() {
    let a: Vec<u64> = (0..4).map(|_| 0).scan(stream(1, Domain::Train, 2), |r, _| Some(r.random::<u64>())).collect();
    let b: Vec<u64> = (0..4).map(|_| 0).scan(stream(1, Domain::Train, 2), |r, _| Some(r.random::<u64>())).collect();
    let c: Vec<u64> = (0..4).map(|_| 0).scan(stream(1, Domain::Train, 3), |r, _| Some(r.random::<u64>())).collect();
    let d: Vec<u64> = (0..4).map(|_| 0).scan(stream(2, Domain::Train, 2), |r, _| Some(r.random::<u64>())).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
}

/// Issue 16: a checkpoint whose metadata claimed a hidden width of 1e9, with a consistent checksum (only the JSON
/// lies), aborted the process with a 64 GB allocation when the policy was built from it. It must be a clear
/// error, before anything is allocated.
#[test]
fn issue16_checkpoint_with_absurd_hidden_width_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ck.safetensors");
    save_trained(&p);
    for hidden in [vec![1_000_000_000usize, 8], vec![8, 8, 1_000_000_000]] {
        let mut ck = Checkpoint::load(&p).unwrap();
        ck.meta.policy.as_mut().unwrap().hidden = hidden.clone();
        let crafted = dir.path().join("crafted.safetensors");
        ck.save(&crafted).unwrap(); // recomputes the checksum: the file itself is consistent
        let back = Checkpoint::load(&crafted).unwrap();
        let e = back.build_policy("policy", Device::Cpu, Kind::Float).map(|_| ()).unwrap_err();
        assert!(matches!(e, CheckpointError::Architecture { .. }), "{hidden:?}: {e}");
        assert!(e.to_string().contains("1000000000"), "the message names the absurd size: {e}");
    }
    let mut ck = Checkpoint::load(&p).unwrap();
    ck.meta.policy.as_mut().unwrap().obs_dim = 1_000_000_000;
    ck.save(&p).unwrap();
    let e = Checkpoint::load(&p).unwrap().build_policy("policy", Device::Cpu, Kind::Float).map(|_| ()).unwrap_err();
    assert!(matches!(e, CheckpointError::Architecture { .. }), "{e}");
}

#[test]
fn shipped_reference_policy_still_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/swimmer/reference_policy.safetensors");
    let ck = Checkpoint::load(&path).unwrap();
    let p = ck.build_policy("policy", Device::Cpu, Kind::Float).unwrap();
    assert_eq!((p.obs_dim(), p.act_dim()), (8, 2));
    assert_eq!(rebel_agents::checkpoint::policy_shapes(p.config()).len(), p.named_parameters().len());
}

#[test]
fn observation_statistics_and_activation_round_trip_and_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("norm.safetensors");
    let c = PolicyConfig { activation: rebel_agents::mlp::Activation::Relu, normalize_obs: true, ortho_init: false, ..cfg() };
    let policy = GaussianPolicy::new(c.clone(), Device::Cpu, Kind::Float, 4);
    let rms = rebel_agents::util::RunningMeanStd { mean: vec![0.5, -1.0, 2.0, 3.0], var: vec![2.0, 0.5, 1.0, 9.0], count: 1234.0 };
    policy.set_obs_rms(&rms).unwrap();
    let mut ck = Checkpoint::new(meta());
    ck.add_policy("policy", &policy).unwrap();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap().build_policy("policy", Device::Cpu, Kind::Float).unwrap();
    assert_eq!(back.config(), &c);
    let got = back.obs_rms().unwrap();
    assert_eq!((got.mean, got.var, got.count), (rms.mean.clone(), rms.var.clone(), rms.count));
    let obs = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 4]);
    assert_eq!(Vec::<f32>::try_from(back.mean(&obs).reshape([-1])).unwrap(), Vec::<f32>::try_from(policy.mean(&obs).reshape([-1])).unwrap());
    // a policy without the statistics (or with tanh) is another architecture: a typed error naming both
    let mut plain = GaussianPolicy::new(cfg(), Device::Cpu, Kind::Float, 0);
    let e = Checkpoint::load(&path).unwrap().restore_policy("policy", &mut plain).unwrap_err();
    assert!(matches!(e, CheckpointError::Architecture { .. }) && e.to_string().contains("normalize_obs true"), "{e}");
    // a crafted file whose statistics have the wrong length is refused before anything is built
    let mut bad = Checkpoint::new(meta());
    bad.add_policy("policy", &GaussianPolicy::new(PolicyConfig { normalize_obs: false, ..c.clone() }, Device::Cpu, Kind::Float, 4)).unwrap();
    bad.meta.policy = Some(c);
    bad.add_tensors("policy", &[("obs_mean".into(), Tensor::zeros([3], (Kind::Float, Device::Cpu))), ("obs_var".into(), Tensor::ones([4], (Kind::Float, Device::Cpu))), ("obs_count".into(), Tensor::ones([1], (Kind::Float, Device::Cpu)))]).unwrap();
    let bad_path = dir.path().join("bad.safetensors");
    bad.save(&bad_path).unwrap();
    let e = Checkpoint::load(&bad_path).unwrap().build_policy("policy", Device::Cpu, Kind::Float).unwrap_err();
    assert!(e.to_string().contains("obs_mean"), "{e}");
}

/// The floats an algorithm keeps in the metadata (PPO's running statistics, REINFORCE's baseline) come back with the
/// same bits: a resumed run must continue from exactly the state it saved. serde_json's default float parser is off by
/// one ulp for some 17-digit numbers (its `float_roundtrip` feature fixes that), which made a resumed PPO run drift
/// from the uninterrupted one in the last digit.
#[test]
fn metadata_floats_round_trip_bit_for_bit() {
    let mut rng = stream(5, Domain::Train, 0);
    let xs: Vec<f64> = (0..20_000)
        .map(|i| match i % 4 {
            0 => rng.random::<f64>(),
            1 => rng.random::<f64>() * 1e6 - 5e5,
            2 => f64::from_bits(rng.random::<u64>() & !(0x7ff << 52) | (((rng.random::<u64>() % 200) + 923) << 52)),
            _ => 1.0 / (rng.random::<f64>() + 1e-3).sqrt(),
        })
        .collect();
    let mut m = meta();
    m.extra = serde_json::json!({ "xs": xs });
    let p = std::path::Path::new("in-memory.safetensors");
    let back = Checkpoint::from_bytes(&Checkpoint::new(m).to_bytes(p).unwrap(), p).unwrap();
    let ys: Vec<f64> = serde_json::from_value(back.meta.extra["xs"].clone()).unwrap();
    let wrong: Vec<(f64, f64)> = xs.iter().zip(&ys).filter(|(x, y)| x.to_bits() != y.to_bits()).map(|(x, y)| (*x, *y)).take(3).collect();
    assert!(wrong.is_empty(), "{} of {} floats came back changed, e.g. {wrong:?}", xs.iter().zip(&ys).filter(|(x, y)| x.to_bits() != y.to_bits()).count(), xs.len());
}
