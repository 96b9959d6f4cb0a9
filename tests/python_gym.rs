//! The Python side of `serve-env`: `scripts/rebel_gym.py` run against this build's `rebel` by
//! `tests/python/rebel_gym_check.py` (Gymnasium's `check_env` through `gym.make("rebel/ID")`, same seed same
//! numbers, the picture, bad actions, the end of an episode, the time limit, unknown names and options).
//!
//! Needs the Python of the managed venv with Gymnasium (`scripts/setup.sh --test` installs `gymnasium==1.4.0`
//! there): `REBEL_PYTHON`, else `${REBEL_CACHE:-$HOME/.cache/rebel-rs}/torch-2.11.0/bin/python`. Without it the
//! test fails, unless `REBEL_SKIP_PYTHON_TESTS=1`.

use std::path::Path;
use std::process::Command;

mod common;

#[test]
fn rebel_gym_is_a_gymnasium_env_over_serve_env() {
    let py = common::managed_python();
    let has_gym = Command::new(&py).args(["-c", "import gymnasium"]).status().is_ok_and(|s| s.success());
    if !has_gym {
        if std::env::var("REBEL_SKIP_PYTHON_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("skipped: no Python with gymnasium at {} (REBEL_SKIP_PYTHON_TESTS=1)", py.display());
            return;
        }
        panic!(
            "no Python with gymnasium at {}: run scripts/setup.sh --test (or set REBEL_PYTHON to a Python that has \
             gymnasium 1.4.0, or REBEL_SKIP_PYTHON_TESTS=1 to skip this test)",
            py.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rebel_gym_check.py");
    let out = Command::new(&py)
        .arg(&script)
        .env("REBEL_BIN", env!("CARGO_BIN_EXE_rebel"))
        .output()
        .expect("run the Python check");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} failed:\n{stdout}\n{stderr}", script.display());
    assert_eq!(stdout.lines().last(), Some("ok"), "{stdout}\n{stderr}");
}
