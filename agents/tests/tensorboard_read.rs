//! Real TensorBoard (its Python `EventAccumulator`, through `scripts/read_tb.py`) reads the event files that
//! `MetricsLogger` writes: every tag, step and f32 value exactly, across a resumed second segment, with
//! non-finite values left out, and the config text.
//!
//! Needs the Python of the managed venv (`scripts/setup.sh` installs tensorboard there): `REBEL_PYTHON`, else
//! `${REBEL_CACHE:-$HOME/.cache/rebel-rs}/torch-2.11.0/bin/python`. Without it the test fails, unless
//! `REBEL_SKIP_PYTHON_TESTS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rebel_agents::logging::{MetricsLogger, RunDir};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("REBEL_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("REBEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is not set"))
                .join(".cache/rebel-rs")
        });
    cache.join("torch-2.11.0/bin/python")
}

/// The Python to use, or None when the test should be skipped (REBEL_SKIP_PYTHON_TESTS=1).
fn python_with_tensorboard() -> Option<PathBuf> {
    let skip = std::env::var("REBEL_SKIP_PYTHON_TESTS").is_ok_and(|v| v == "1");
    let py = python();
    let ok = py.exists()
        && Command::new(&py)
            .args([
                "-c",
                "import tensorboard.backend.event_processing.event_accumulator",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        Some(py)
    } else if skip {
        eprintln!(
            "skipped: no Python with tensorboard at {} (REBEL_SKIP_PYTHON_TESTS=1)",
            py.display()
        );
        None
    } else {
        panic!(
            "no Python with tensorboard at {}: run scripts/setup.sh (or set REBEL_PYTHON to a Python that has \
             tensorboard, or REBEL_SKIP_PYTHON_TESTS=1 to skip this test)",
            py.display()
        );
    }
}

fn read_tb(py: &Path, dir: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/read_tb.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(dir)
        .output()
        .expect("run read_tb.py");
    assert!(
        out.status.success(),
        "read_tb.py failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "read_tb.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The f32 TensorBoard holds for `v`.
fn as_tb(v: f64) -> f32 {
    v as f32
}

#[test]
fn tensorboard_reads_scalars_and_text_exactly() {
    let Some(py) = python_with_tensorboard() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::create(tmp.path(), "Swimmer-v5", "rebel", 7).unwrap();

    // Values that are not exact in f32 (0.1), negative, tiny, huge, subnormal, and -0.
    let value = |i: u64| match i % 6 {
        0 => 0.1 * i as f64,
        1 => -1234.5678 / (i as f64 + 1.0),
        2 => 1e-30 * i as f64,
        3 => 3.0e38,
        4 => 1e-40,
        _ => -0.0,
    };
    let mut expected_steps = Vec::new();
    {
        let mut logger = MetricsLogger::open(&run).unwrap();
        logger.log_config("seed = 7\n[rebel]\neta = 1.5\n").unwrap();
        for i in 0..12u64 {
            let step = i * 2048;
            logger
                .log(
                    step,
                    &[
                        ("charts/episodic_return", value(i)),
                        ("losses/loss", -(i as f64)),
                        ("debug/nan", f64::NAN),
                    ],
                )
                .unwrap();
            expected_steps.push(step);
        }
    }
    // A resumed segment writes a second event file in the same folder; TensorBoard reads both in order.
    {
        let mut logger = MetricsLogger::open(&run).unwrap();
        for i in 12..20u64 {
            let step = i * 2048;
            logger
                .log(
                    step,
                    &[
                        ("charts/episodic_return", value(i)),
                        ("losses/loss", -(i as f64)),
                        ("debug/inf", f64::INFINITY),
                    ],
                )
                .unwrap();
            expected_steps.push(step);
        }
    }

    let got = read_tb(&py, &run.tb_dir());
    let scalars = got["scalars"].as_object().expect("scalars object");
    let mut tags: Vec<&str> = scalars.keys().map(|s| s.as_str()).collect();
    tags.sort();
    assert_eq!(
        tags,
        vec!["charts/episodic_return", "losses/loss"],
        "scalar tags TensorBoard read (tags with only non-finite values must be absent)"
    );

    for (tag, expect) in [
        (
            "charts/episodic_return",
            Box::new(value) as Box<dyn Fn(u64) -> f64>,
        ),
        ("losses/loss", Box::new(|i: u64| -(i as f64))),
    ] {
        let rows = scalars[tag].as_array().unwrap();
        let steps: Vec<u64> = rows.iter().map(|r| r[0].as_u64().unwrap()).collect();
        assert_eq!(steps, expected_steps, "{tag}");
        for (i, row) in rows.iter().enumerate() {
            let got = row[1].as_f64().unwrap();
            let want = as_tb(expect(i as u64));
            assert_eq!(
                got as f32, want,
                "{tag} at step {}: got {got}, want {want}",
                steps[i]
            );
            assert_eq!(
                (got as f32).is_sign_negative(),
                want.is_sign_negative(),
                "{tag} sign at step {}",
                steps[i]
            );
            assert!(
                (got - want as f64).abs() <= want.abs() as f64 * 1e-15,
                "{tag}: {got} vs {want}"
            );
        }
    }

    let texts = got["texts"].as_object().expect("texts object");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(
        texts["config"],
        serde_json::json!([[0, "    seed = 7\n    [rebel]\n    eta = 1.5\n"]])
    );

    // metrics.jsonl holds the same rows (non-finite as null) in one file across both segments.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.metrics_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    assert!(lines[0]["debug/nan"].is_null() && lines[19]["debug/inf"].is_null());
    assert_eq!(lines[13]["losses/loss"], -13.0);
}
