//! `mpirun -np 2 swimmer compare`: the runs are spread over the two ranks and rank 0 writes the
//! same results as one process. Built only with the `mpi` feature (`.ci/run` runs it).
#![cfg(feature = "mpi")]

mod common;
use common::*;

use std::process::Command;

fn untimed_rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["rows"].as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for k in ["wall_time_s", "learner_s_per_1k_steps", "learner_mem_mb", "peak_rss_mb"] {
                r.as_object_mut().unwrap().remove(k);
            }
            r
        })
        .collect()
}

#[test]
fn two_mpi_ranks_give_the_results_of_one_process() {
    let d = tempfile::tempdir().unwrap();
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    let mut args = tiny_compare(&one, 1, 1000);
    args.extend(["--set".to_string(), "parallel=1".to_string()]);
    let o = swimmer(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));

    let mut args = tiny_compare(&two, 1, 1000);
    args.extend(["--set".to_string(), "parallel=1".to_string()]);
    let o = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_swimmer")])
        .args(&args)
        .output()
        .expect("mpirun not found: install openmpi-bin (Debian) to run the MPI tests");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("rank 1 of 2:"), "rank 1 ran its share: {err}");
    let tuning = |p: &std::path::Path| std::fs::read_to_string(p.join("tuning.json")).unwrap();
    assert_eq!(tuning(&two), tuning(&one), "the same tuning table");
    assert_eq!(untimed_rows(&two.join("results.json")), untimed_rows(&one.join("results.json")));
}
