//! A full disk, simulated by a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so that a write
//! past it fails with EFBIG as a write to a full disk fails with ENOSPC): a checkpoint, a preference
//! dataset and a compare result either complete or fail with a clear error, and the previous good
//! file is intact.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `swimmer` binary with `args`, no file it writes allowed past `limit` bytes.
fn swimmer_limited(limit: u64, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swimmer"));
    cmd.args(args);
    limit_file_size(&mut cmd, limit);
    cmd.output().expect("run swimmer")
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walk(dir).into_iter().map(|p| (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap())).collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// No `*.tmp` file (an atomic write's temporary) anywhere below `dir`.
fn no_tmp(dir: &Path) -> bool {
    walk(dir).iter().all(|p| !p.to_string_lossy().ends_with(".tmp"))
}

fn says_full(o: &Output) -> bool {
    let e = stderr(o);
    !o.status.success() && e.contains("File too large") && e.contains("free space") && !e.contains("panicked")
}


#[test]
fn a_checkpoint_write_on_a_full_disk_fails_clearly_and_keeps_the_last_good_one() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let mut args = vec!["train"];
    args.extend_from_slice(TINY_TRAIN);
    args.extend(["--env-steps", "2000", "--run-dir", run.to_str().unwrap()]);
    assert!(swimmer(&args).status.success());
    let ck = run.join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    // room for the logs, not for another checkpoint
    let o = swimmer_limited(before.len() as u64 / 2, &["train", "--quiet", "--resume", run.to_str().unwrap(), "--env-steps", "4000"]);
    assert!(says_full(&o), "{}", stderr(&o));
    assert!(std::fs::read(&ck).unwrap() == before, "the last good checkpoint is intact");
    assert!(no_tmp(&run), "no temporary file left");
    // and the run goes on once there is room
    let o = swimmer(&["train", "--quiet", "--resume", run.to_str().unwrap(), "--env-steps", "4000"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_dataset_write_on_a_full_disk_fails_clearly_and_keeps_the_previous_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("prefs.st");
    let r = reference();
    let args = ["prefs", "collect", "--policy", &r, "--labels", "60", "--seed", "4", "--out", out.to_str().unwrap()];
    assert!(swimmer(&args).status.success());
    let before = std::fs::read(&out).unwrap();
    let mut more = args.to_vec();
    more[5] = "120";
    let o = swimmer_limited(before.len() as u64, &more);
    assert!(says_full(&o), "{}", stderr(&o));
    assert!(std::fs::read(&out).unwrap() == before, "the previous dataset is intact");
    assert!(no_tmp(d.path()), "no temporary file left");
}

#[test]
fn compare_results_on_a_full_disk_fail_clearly_and_keep_the_previous_ones() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmp");
    let args = tiny_compare(&out, 1, 1000);
    let args = strs(&args);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = files(&out);
    // every cell is finished, so the rerun only rewrites the results: the table and the curves'
    // picture do not fit under 4 KB
    let o = swimmer_limited(4096, &args);
    assert!(says_full(&o), "{}", stderr(&o));
    let after = files(&out);
    let changed: Vec<&String> = before.iter().zip(&after).filter(|(a, b)| a != b).map(|(a, _)| &a.0).collect();
    assert_eq!(before.len(), after.len(), "no file added or lost");
    // the small files were rewritten whole (new timings), the picture that did not fit is the old one
    assert!(
        changed.iter().all(|f| f.ends_with("train.log") || ["compare.toml", "results.json", "results.md"].contains(&f.as_str())),
        "changed: {changed:?}"
    );
    let rows = |f: &[(String, Vec<u8>)]| -> Vec<String> {
        let (_, b) = f.iter().find(|(n, _)| n == "results.json").unwrap();
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v["rows"].as_array().unwrap().iter().map(|r| r["row"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(rows(&before), rows(&after), "results.json is a complete table");
    assert!(!changed.iter().any(|f| f.as_str() == "learning_curves.png"));
}
