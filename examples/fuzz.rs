//! Fuzzes every parser of user files (see `rebel_rs::fuzz`):
//!
//!     cargo run --release --example fuzz -- [--cases N] [--target NAME] [--seed S]
//!
//! Targets: checkpoint, reward-model, preference-dataset, action-csv, toml-config, set-value (all
//! by default). Runs under a 16 GiB address-space limit, so an allocation sized by an unchecked
//! number fails at once (the process aborts: a crash found). Prints one JSON line per target; exits
//! non-zero when any input panicked.
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let cases: u64 = get("--cases").map(|s| s.parse()).transpose()?.unwrap_or(100_000);
    let seed: u64 = get("--seed").map(|s| s.parse()).transpose()?.unwrap_or(1);
    let targets = match get("--target") {
        Some(t) => vec![rebel_rs::fuzz::Target::parse(&t)
            .ok_or_else(|| anyhow::anyhow!("unknown target {t:?}; valid: checkpoint, reward-model, preference-dataset, action-csv, toml-config, set-value"))?],
        None => rebel_rs::fuzz::Target::ALL.to_vec(),
    };
    // SAFETY: setrlimit only changes this process's limit.
    unsafe {
        let lim = libc::rlimit { rlim_cur: 16 << 30, rlim_max: 16 << 30 };
        if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
            eprintln!("warning: could not limit the address space; a huge allocation would not fail fast");
        }
    }
    std::panic::set_hook(Box::new(|_| {})); // panics are counted, not printed
    tch::set_num_threads(1);
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/swimmer/reference_policy.safetensors");
    let seeds = rebel_rs::fuzz::Seeds::make(&reference)?;
    let mut failed = false;
    for t in targets {
        let t0 = std::time::Instant::now();
        let r = rebel_rs::fuzz::run(t, &seeds, cases, seed);
        failed |= !r.panics.is_empty();
        eprintln!(
            "{}: {} inputs, {} refused, {} accepted, {} panics, {:.1} s",
            r.target,
            r.cases,
            r.refused,
            r.accepted,
            r.panics.len(),
            t0.elapsed().as_secs_f64()
        );
        for (case, msg) in r.panics.iter().take(5) {
            eprintln!("  case {case}: {msg}");
        }
        println!("{}", serde_json::to_string(&r)?);
    }
    if failed {
        anyhow::bail!("some inputs panicked");
    }
    Ok(())
}
