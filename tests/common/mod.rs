//! Helpers shared by the command-line tests: run a binary, read its output.
#![allow(dead_code)] // each test file uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `swimmer` binary with `args`.
pub fn swimmer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swimmer")).args(args).output().expect("run swimmer")
}

/// Runs the generic `rebel` binary with `args`.
pub fn rebel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rebel")).args(args).output().expect("run rebel")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last stdout line, parsed as JSON (panics with stderr when there is none).
pub fn last_json(o: &Output) -> serde_json::Value {
    let out = stdout(o);
    let line = out.lines().last().unwrap_or_else(|| panic!("no stdout; stderr: {}", stderr(o)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

/// The shipped reference policy.
pub fn reference() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/swimmer/reference_policy.safetensors").display().to_string()
}
