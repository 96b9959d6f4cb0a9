//! Environments from MJCF files through the command line: a four-segment Swimmer written as an
//! MJCF file (`experiments/swimmer4.xml`, via `xml_file` in `experiments/swimmer4.toml`) and
//! InvertedDoublePendulum-v5 train end to end; a bad `xml_file` is one clear error.

mod common;
use common::*;

#[test]
fn four_segment_swimmer_trains_from_its_mjcf_file() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("swimmer4");
    let o = rebel(&[
        "train", "--config", "experiments/swimmer4.toml", "--env-steps", "4000", "--run-dir", run.to_str().unwrap(), "--quiet",
        "--set", "threads=1", "--set", "eval.episodes=2", "--set", "eval.every_iters=1",
        "--set", "rebel.groups=2", "--set", "rebel.branch_len=20", "--set", "rebel.tail_len=20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = last_json(&o);
    assert_eq!(s["env"], "Swimmer-v5");
    assert!(s["eval_true_return_mean"].as_f64().unwrap().is_finite(), "{s}");
    // the checkpoint's policy sees the four-segment observation (10) and drives 3 joints
    let ck = run.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap_or_else(|e| panic!("{}: {e}", ck.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["policy.layer0.weight"]["shape"][1], 10, "{}", header["policy.layer0.weight"]);
    assert_eq!(header["policy.log_std"]["shape"][0], 3);
}

#[test]
fn inverted_double_pendulum_trains_and_bad_xml_files_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("idp");
    let o = rebel(&[
        "--env", "InvertedDoublePendulum-v5", "train", "--env-steps", "1500", "--run-dir", run.to_str().unwrap(), "--quiet",
        "--set", "threads=1", "--set", "eval.episodes=2", "--set", "eval.every_iters=1",
        "--set", "rebel.groups=2", "--set", "rebel.branch_len=10", "--set", "rebel.tail_len=10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["env"], "InvertedDoublePendulum-v5");
    let o = rebel(&["--env", "Swimmer-v5", "--env-opt", "xml_file=no/such/model.xml", "bench", "--steps", "10"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("no/such/model.xml") && e.contains("swimmer.xml"), "{e}");
}
