//! `compare`: every algorithm of the lecture's table × seeds, side by side (see
//! `rebel_agents::compare`). Training runs are child processes of this same binary
//! (`train --config … --run-dir … --quiet`, one thread each), `parallel` at a time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rebel_agents::compare::{load_compare_config, mean_band, plot_curves, prepare_seed, read_run, run_config, CompareConfig, Curve, RunRecord, SeedData, Start};
use rebel_agents::protocol::{candidates, pick, report, results_markdown, tuning_markdown, ReportRun, TuneEntry};
use rebel_agents::runconfig::to_toml_string;
use rebel_agents::eval::{evaluate, reference_returns, load_policy};
use rebel_agents::checkpoint::Checkpoint;
use rebel_agents::run_dir::start_policy_note;
use rebel_agents::util::{peak_rss_mb, resolve_path};
use rebel_envs::vec_env::VecEnv;

use super::EnvArgs;

/// The comparison `compare` runs with no `--config`.
pub const COMPARE_CONFIG: &str = include_str!("../../experiments/swimmer_compare.toml");

/// `compare`: run every row × seed and write results.md, results.json, learning_curves.png.
#[derive(Args, Debug, Clone, Default)]
pub struct CompareArgs {
    /// A TOML file merged over experiments/swimmer_compare.toml (a search space it gives, `[search.NAME]`, replaces
    /// the shipped one of that name whole).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of report seeds (sets `seeds`).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Output folder (default: runs/compare__{unix time}); rerunning into it reuses finished runs.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Training processes at a time (sets `parallel`).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Only these rows (comma-separated names; `reference` is always included).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Override any key: `--set labels=500 --set train.env_steps=300000 --set protocol.tune_configs=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Which phases to run: tuning then report (`all`), or one of them.
    #[arg(long, value_enum, default_value_t = Phase::All)]
    pub phase: Phase,
}

struct Job {
    row: String,
    seed: u64,
    dir: PathBuf,
    config: PathBuf,
}

fn spawn(exe: &Path, job: &Job) -> Result<Child> {
    std::fs::create_dir_all(&job.dir).with_context(|| format!("cannot create {}", job.dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(job.dir.join("train.log"))
        .context("cannot open train.log")?;
    let log2 = log.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.args(["train", "--quiet", "--config"]).arg(&job.config);
    // A cell that a killed compare left unfinished continues from its checkpoint (or from the
    // start when it has none); its configuration must still be the one in `configs/`.
    if job.dir.join("config.toml").is_file() {
        cmd.arg("--resume").arg(&job.dir);
    } else {
        cmd.arg("--run-dir").arg(&job.dir);
    }
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    // the report's "learner memory per update" and "learner bytes per update" columns (the run's peak RSS in
    // summary.json stays whole)
    cmd.env("REBEL_LEARNER_MEMORY", "1");
    // a run is one process, also when this compare is a rank of an MPI job: hide the launcher's variables,
    // or `train` would take itself for a rank of a data-parallel job
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(rebel_dist::is_launcher_var) {
            cmd.env_remove(&name);
        }
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // The training processes die with compare (a kill -9 of compare included), so that a
        // rerun never races a stray one in the same cell.
        // SAFETY: prctl is async-signal-safe and touches only the child's own state.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().with_context(|| format!("cannot start {}", exe.display()))
}

/// Which phases `compare` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Tuning on the tuning seeds, then the report on the report seeds.
    #[default]
    All,
    /// Only tuning (writes tuning.md and tuning.json).
    Tune,
    /// Only the report (needs the tuning phase's tuning.json in the folder).
    Report,
}

/// The protocol's record in the output folder: what it was made from.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Stamp {
    /// Hash of the resolved configuration (without `parallel`) and of the source code.
    hash: String,
    /// `REBEL_SOURCE_HASH` of the binary that ran it.
    source_hash: String,
}

/// Runs `compare` (tuning, then the report); the last stdout line is JSON.
pub fn compare_cmd(env: &EnvArgs, a: &CompareArgs) -> Result<()> {
    let t0 = Instant::now();
    let cfg = resolve_compare_config(env, a)?;
    // Under mpirun/srun the jobs are spread over the ranks (rank r runs jobs r, r + N, ...); rank 0
    // gathers the finished runs and writes the same files as one process does.
    let world = rebel_dist::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        PathBuf::from(format!("runs/compare__{t}"))
    });
    // every rank writes where rank 0 chose (a default folder is named after rank 0's clock)
    let mut out_bytes = out.to_string_lossy().into_owned().into_bytes();
    world.broadcast(0, &mut out_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = PathBuf::from(String::from_utf8(out_bytes).context("output folder name")?);
    // rank 0 checks and stamps the folder first; the others check it once it is stamped
    let stamp = if world.rank() == 0 { Some(stamp_folder(&out, &cfg, true)?) } else { None };
    world.barrier().map_err(|e| anyhow::anyhow!("{e}"))?;
    let stamp = match stamp {
        Some(s) => s,
        None => stamp_folder(&out, &cfg, false)?,
    };
    if world.rank() == 0 && !cfg.reference_policy.is_empty() {
        // the rows' own logs say it too (each starts from the reference)
        let ref_path = resolve_path(&cfg.reference_policy);
        if let Some(note) = Checkpoint::load(&ref_path).ok().and_then(|ck| start_policy_note(&ck.meta, &ref_path, &cfg.train.env)) {
            eprintln!("{note}");
        }
    }
    if a.phase != Phase::Report {
        tune_phase(world.as_ref(), &cfg, &out)?;
    }
    if a.phase == Phase::Tune {
        if world.rank() == 0 {
            println!("{}", serde_json::json!({"out": out, "phase": "tune", "hash": stamp.hash, "wall_time_s": t0.elapsed().as_secs_f64()}));
        }
        return Ok(());
    }
    report_phase(world.as_ref(), &cfg, &out, &stamp, t0)
}

/// Makes the output folder and records the protocol's hash in it; a folder holding another
/// configuration's (or another code version's) runs is refused, never mixed.
fn stamp_folder(out: &Path, cfg: &CompareConfig, write: bool) -> Result<Stamp> {
    let mut hashed = cfg.clone();
    hashed.parallel = 0;
    let source_hash = env!("REBEL_SOURCE_HASH").to_string();
    let text = format!("{}\nsource {source_hash}", to_toml_string(&hashed)?);
    let stamp = Stamp { hash: rebel_agents::io::fnv1a_hex(text.as_bytes()), source_hash };
    let path = out.join("protocol.json");
    if let Ok(old) = std::fs::read_to_string(&path) {
        let old: Stamp = serde_json::from_str(&old).with_context(|| format!("{} is corrupt", path.display()))?;
        if old != stamp {
            bail!(
                "{} holds a comparison made with another configuration or code version (hash {}, source {}; this one: hash {}, \
                 source {}); its runs are not mixed with these: use a new --out",
                out.display(),
                old.hash,
                old.source_hash,
                stamp.hash,
                stamp.source_hash
            );
        }
    } else if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        bail!("{} exists and is not a comparison folder (no protocol.json): use a new --out", out.display());
    }
    if write {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        rebel_agents::io::write_atomic(&out.join("compare.toml"), to_toml_string(cfg)?.as_bytes())?;
        rebel_agents::io::write_atomic(&path, serde_json::to_string_pretty(&stamp)?.as_bytes())?;
    }
    Ok(stamp)
}

/// The labels and reward net of each seed (spread over the ranks; then each rank reads them, or makes
/// those it cannot see: the same, deterministically).
fn seed_data(world: &dyn rebel_dist::Collective, cfg: &CompareConfig, out: &Path, seeds: &[u64]) -> Result<Vec<SeedData>> {
    let (rank, ranks) = (world.rank(), world.size());
    let dir = |s: u64| out.join("data").join(format!("seed{s}"));
    for (i, &s) in seeds.iter().enumerate() {
        if cfg.needs_labels() && i % ranks == rank && !dir(s).join("seed_data.json").exists() {
            eprintln!("seed {s}: {} preference labels from the reference policy and the reward net ...", cfg.labels);
            let d = prepare_seed(cfg, &dir(s), s, cfg.parallel.max(1))?;
            eprintln!("  reward net held-out accuracy {:.3}", d.reward_model_holdout_accuracy);
        }
    }
    world.barrier().map_err(|e| anyhow::anyhow!("{e}"))?;
    seeds.iter().map(|&s| Ok(prepare_seed(cfg, &dir(s), s, cfg.parallel.max(1))?)).collect()
}

/// Writes each job's configuration, runs this rank's share and gathers the runs on rank 0; returns
/// the failures (on rank 0, every rank's).
fn run_all(world: &dyn rebel_dist::Collective, out: &Path, jobs: Vec<(Job, rebel_agents::train::TrainConfig)>, parallel: usize) -> Result<Vec<String>> {
    let (rank, ranks) = (world.rank(), world.size());
    let mut mine = Vec::new();
    for (i, (job, tc)) in jobs.into_iter().enumerate() {
        if i % ranks == rank {
            std::fs::create_dir_all(job.config.parent().expect("configs folder"))?;
            rebel_agents::io::write_atomic(&job.config, to_toml_string(&tc)?.as_bytes())?;
            mine.push(job);
        }
    }
    let dirs: Vec<PathBuf> = mine.iter().map(|j| j.dir.clone()).collect();
    let failed = run_jobs(mine, parallel)?;
    gather_runs(world, out, &dirs, failed)
}

/// Tuning: every row × configuration × tuning seed; rank 0 writes tuning.json and tuning.md.
fn tune_phase(world: &dyn rebel_dist::Collective, cfg: &CompareConfig, out: &Path) -> Result<()> {
    let p = &cfg.protocol;
    let data = seed_data(world, cfg, out, &p.tune_seeds)?;
    let steps = if p.tune_env_steps > 0 { p.tune_env_steps } else { cfg.train.env_steps };
    let mut jobs = Vec::new();
    let mut cells = Vec::new();
    for row in &cfg.rows {
        let cands = candidates(p, &row.name, cfg.space(row), &row.set).map_err(anyhow::Error::msg)?;
        for (k, sets) in cands.iter().enumerate() {
            let mut extra = sets.clone();
            extra.push(format!("env_steps={steps}"));
            extra.push(format!("eval.seed_base={}", p.tune_eval_seed_base));
            for d in &data {
                let name = format!("{}/c{k}/s{}", row.name, d.seed);
                let tc = run_config(cfg, row, d, &extra).map_err(anyhow::Error::msg)?;
                let job = Job { row: format!("tune {} c{k}", row.name), seed: d.seed, dir: out.join("tune").join(&name), config: out.join("tune").join("configs").join(format!("{}__c{k}__s{}.toml", row.name, d.seed)) };
                cells.push((row.name.clone(), k, sets.clone(), d.seed, job.dir.clone()));
                jobs.push((job, tc));
            }
        }
    }
    eprintln!("tuning: {} rows × {} configurations × {} seeds = {} runs of {steps} env steps", cfg.rows.len(), p.tune_configs, data.len(), jobs.len());
    let failed = run_all(world, out, jobs, cfg.parallel)?;
    if world.rank() != 0 {
        return Ok(());
    }
    let mut entries: Vec<TuneEntry> = Vec::new();
    let mut machines = Vec::new();
    let cell_dirs: Vec<(String, PathBuf)> = cells.iter().map(|c| (c.0.clone(), c.4.clone())).collect();
    for (row, k, sets, seed, dir) in cells {
        let r = read_run(&row, seed, &dir).map_err(anyhow::Error::msg)?;
        machines.push(rebel_agents::machine::of_summary(&r.summary));
        match entries.iter_mut().find(|e| e.row == row && e.config == k) {
            Some(e) => {
                e.finals.push(r.final_return);
                if r.failed() {
                    e.failed.push(seed);
                }
            }
            None => entries.push(TuneEntry { row, config: k, sets, finals: vec![r.final_return], failed: if r.failed() { vec![seed] } else { vec![] }, mean: 0.0, picked: false }),
        }
    }
    for e in &mut entries {
        e.mean = rebel_agents::stats::mean(&e.finals);
    }
    pick(&mut entries);
    rebel_agents::io::write_atomic(&out.join("tuning.json"), serde_json::to_string_pretty(&entries)?.as_bytes())?;
    let header = format!(
        "Written by `swimmer compare` ({} failed run(s){}). {}",
        failed.len(),
        if failed.is_empty() { String::new() } else { format!(": {}", failed.join("; ")) },
        rebel_agents::machine::report_line(&machines)
    );
    rebel_agents::io::write_atomic(&out.join("tuning.md"), tuning_markdown(&entries, p, steps, cfg.train.eval.episodes, &header).as_bytes())?;
    eprintln!("tuning: {}", out.join("tuning.md").display());
    // a row none of whose configurations has a score cannot be picked for: say so now, not in the report
    let unscored: Vec<&str> = cfg.rows.iter().map(|r| r.name.as_str()).filter(|row| entries.iter().filter(|e| e.row == *row).all(|e| e.mean.is_nan())).collect();
    if let Some(row) = unscored.first() {
        let log = cell_dirs.iter().find(|(r, _)| r == row).map(|(_, d)| d.join("train.log").display().to_string()).unwrap_or_default();
        bail!(
            "no tuning run of row(s) {} reached an evaluation, so no configuration can be picked (the first's log: {log}); \
             fix the cause and rerun the same command: failed runs start afresh, finished ones are reused",
            unscored.join(", ")
        );
    }
    Ok(())
}

/// The report: every row with its picked configuration on the report seeds; rank 0 writes results.md,
/// results.json and the learning curves.
fn report_phase(world: &dyn rebel_dist::Collective, cfg: &CompareConfig, out: &Path, stamp: &Stamp, t0: Instant) -> Result<()> {
    let tuning_path = out.join("tuning.json");
    let mut tuning_bytes = if world.rank() == 0 {
        std::fs::read(&tuning_path).with_context(|| format!("{}: run the tuning phase first (`--phase tune` or `--phase all`)", tuning_path.display()))?
    } else {
        Vec::new()
    };
    world.broadcast(0, &mut tuning_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let entries: Vec<TuneEntry> = serde_json::from_slice(&tuning_bytes).with_context(|| format!("{} is corrupt", tuning_path.display()))?;
    let picked = |row: &str| -> Result<Vec<String>> {
        entries.iter().find(|e| e.row == row && e.picked).map(|e| e.sets.clone()).with_context(|| format!("{}: no picked configuration for row {row}", tuning_path.display()))
    };
    let seeds = cfg.seed_list();
    let data = seed_data(world, cfg, out, &seeds)?;
    let mut jobs = Vec::new();
    // the reference row, when there is a reference policy
    let mut order: Vec<(String, String, Vec<String>)> =
        if cfg.reference_policy.is_empty() { Vec::new() } else { vec![("reference".to_string(), "reference".to_string(), Vec::new())] };
    for row in &cfg.rows {
        let sets = picked(&row.name)?;
        order.push((row.name.clone(), row.algo.clone(), sets.clone()));
        for d in &data {
            let name = format!("{}__s{}", row.name, d.seed);
            let tc = run_config(cfg, row, d, &sets).map_err(anyhow::Error::msg)?;
            jobs.push((Job { row: row.name.clone(), seed: d.seed, dir: out.join("report").join(&name), config: out.join("report").join("configs").join(format!("{name}.toml")) }, tc));
        }
    }
    let total = jobs.len();
    eprintln!("report: {} rows × {} seeds = {total} runs", cfg.rows.len(), seeds.len());
    let failed = run_all(world, out, jobs, cfg.parallel)?;
    if world.rank() != 0 {
        eprintln!("rank {} of {}: its runs are done; rank 0 writes the results", world.rank(), world.size());
        return Ok(());
    }
    let mut runs: Vec<RunRecord> = if cfg.reference_policy.is_empty() { Vec::new() } else { reference_runs(cfg, &seeds)? };
    for row in &cfg.rows {
        for &s in &seeds {
            runs.push(read_run(&row.name, s, &out.join("report").join(format!("{}__s{s}", row.name))).map_err(anyhow::Error::msg)?);
        }
    }
    let uses_labels = |row: &str| cfg.rows.iter().find(|r| r.name == row).is_some_and(|r| r.uses_labels());
    let label_steps = |row: &str, seed: u64| if uses_labels(row) { data.iter().find(|d| d.seed == seed).map(|d| d.label_env_steps as f64).unwrap_or(0.0) } else { 0.0 };
    let report_runs: Vec<ReportRun> = runs
        .iter()
        .map(|r| ReportRun { row: r.row.clone(), seed: r.seed, final_return: r.final_return, failed: r.failed(), summary: r.summary.clone(), label_env_steps: label_steps(&r.row, r.seed) })
        .collect();
    // a row found that uses no labels is scored by the true reward (the reference counts as "model")
    let reward_of = |row: &str| if cfg.rows.iter().any(|r| r.name == row) && !uses_labels(row) { "true" } else { "model" }.to_string();
    let (rows, imps) = report(&order, &report_runs, &reward_of, &cfg.protocol);
    let machines: Vec<_> = runs.iter().filter(|r| r.row != "reference").map(|r| rebel_agents::machine::of_summary(&r.summary)).collect();
    let tally: Vec<serde_json::Value> = rebel_agents::machine::tally(machines.iter().map(Vec::as_slice))
        .into_iter()
        .map(|(machine, runs)| serde_json::json!({"machine": machine, "runs": runs}))
        .collect();
    let p = &cfg.protocol;
    let header = format!(
        "{}; {}; online budget {} env steps. Tuning: {} configuration(s) per row on seeds {:?} (see tuning.md). Report: seeds {:?}, evaluation with the mean action on {} fixed start states from {} (disjoint from tuning's, from {}). Intervals: 95% percentile stratified bootstrap, {} replications. Protocol hash {} (source {}). {} failed run(s){}. Written by `swimmer compare` in {:.0} s (this invocation). {}{}",
        if cfg.reference_policy.is_empty() { format!("{}, no reference policy", cfg.train.env.id) } else { format!("{}, reference policy `{}`", cfg.train.env.id, cfg.reference_policy) },
        start_and_labels(cfg), cfg.train.env_steps, p.tune_configs, p.tune_seeds, seeds,
        cfg.train.eval.episodes, cfg.train.eval.seed_base, p.tune_eval_seed_base, p.bootstrap_reps, stamp.hash, stamp.source_hash,
        failed.len(), if failed.is_empty() { String::new() } else { format!(" ({})", failed.join("; ")) }, t0.elapsed().as_secs_f64(),
        rebel_agents::machine::report_line(&machines),
        if seeds.len() < 10 { format!(" **{} report seed(s): fewer than 10, not evidence for any claim.**", seeds.len()) } else { String::new() }
    );
    let json = serde_json::json!({"protocol_hash": stamp.hash, "source_hash": stamp.source_hash, "machines": tally, "rows": rows, "improvement": imps});
    rebel_agents::io::write_atomic(&out.join("results.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    rebel_agents::io::write_atomic(&out.join("results.md"), results_markdown(&rows, &imps, &header).as_bytes())?;
    let series: Vec<rebel_agents::plot::Series> = order
        .iter()
        .filter_map(|(name, _, _)| {
            let cs: Vec<&Curve> = runs.iter().filter(|r| &r.row == name).map(|r| &r.curve).collect();
            (!cs.is_empty()).then(|| rebel_agents::plot::Series { name: name.clone(), points: mean_band(&cs, 2000) })
        })
        .collect();
    plot_curves(&out.join("learning_curves.png"), &series, &format!("{}: eval true return, mean and 95% bootstrap band over {} seeds", cfg.train.env.id, seeds.len()), 1100, 650)?;
    print!("{}", std::fs::read_to_string(out.join("results.md"))?);
    println!("results: {}  curves: {}\nTensorBoard: tensorboard --logdir {}", out.join("results.md").display(), out.join("learning_curves.png").display(), out.join("report").display());
    println!("{}", serde_json::json!({"out": out, "rows": rows.len(), "runs": total, "failed": failed.len(), "hash": stamp.hash}));
    if !failed.is_empty() {
        bail!("{} run(s) failed (scored by their last evaluation in results.md; a rerun of this command starts them afresh): {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

/// The header's words on where the rows start and what labels they use.
fn start_and_labels(cfg: &CompareConfig) -> String {
    let scratch: Vec<&str> = cfg.rows.iter().filter(|r| r.start == Start::Scratch).map(|r| r.name.as_str()).collect();
    let start = match scratch.len() {
        0 => "every row starts from it".to_string(),
        n if n == cfg.rows.len() && cfg.reference_policy.is_empty() => {
            "every row starts from a random policy (each run's win rate is against its own starting policy)".to_string()
        }
        n if n == cfg.rows.len() => "every row starts from a random policy (the reference is only the win-rate opponent)".to_string(),
        _ => format!("rows {} start from a random policy, the others from it", scratch.join(", ")),
    };
    let labels = if cfg.needs_labels() {
        format!("{} labels per seed ({}-step pieces, teacher {:?})", cfg.labels, cfg.segment_len, cfg.teacher.kind)
    } else {
        "no labels (every row is trained on the true reward)".to_string()
    };
    format!("{start}; {labels}")
}

/// Sends this rank's finished runs (`summary.json`, `metrics.jsonl`) and failures to rank 0,
/// which writes the files it does not see yet (ranks on other nodes, without a shared folder);
/// returns, on rank 0, every rank's failures.
fn gather_runs(world: &dyn rebel_dist::Collective, out: &Path, mine: &[PathBuf], failed: Vec<String>) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for dir in mine {
        for f in ["summary.json", "metrics.jsonl"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
                let rel = dir.join(f).strip_prefix(out).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                files.push((rel, text));
            }
        }
    }
    let bytes = serde_json::to_vec(&serde_json::json!({"files": files, "failed": failed}))?;
    let Some(parts) = world.gather(0, &bytes).map_err(|e| anyhow::anyhow!("{e}"))? else { return Ok(Vec::new()) };
    let mut all_failed = Vec::new();
    for part in parts {
        let v: serde_json::Value = serde_json::from_slice(&part).context("a rank's runs")?;
        for f in v["files"].as_array().into_iter().flatten() {
            let (Some(rel), Some(text)) = (f[0].as_str(), f[1].as_str()) else { continue };
            let path = out.join(rel);
            if !rel.is_empty() && !path.exists() {
                rebel_agents::io::write_atomic(&path, text.as_bytes())?;
            }
        }
        all_failed.extend(v["failed"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)));
    }
    Ok(all_failed)
}

/// The shipped comparison's configuration for environment `id`: its `train.env.options` are the Swimmer's (the
/// dynamics its README figures were measured on), so another environment starts from its own defaults, before a
/// `--config`, `--env-opt` or `--set` of its own.
fn compare_base(id: &str) -> Result<String> {
    if id == super::DEFAULT_ENV {
        return Ok(COMPARE_CONFIG.to_string());
    }
    let mut t: toml::Table = toml::from_str(COMPARE_CONFIG).context("the shipped comparison's configuration")?;
    if let Some(toml::Value::Table(env)) = t.get_mut("train").and_then(|train| train.get_mut("env")) {
        env.remove("options");
    }
    // the shipped reference is a Swimmer policy: another environment has none unless `--config` gives one
    t.insert("reference_policy".into(), toml::Value::String(String::new()));
    Ok(toml::to_string(&t)?)
}

/// The comparison's configuration: the shipped default, `--config`, the flags, `--set`s, `--only`.
fn resolve_compare_config(env: &EnvArgs, a: &CompareArgs) -> Result<CompareConfig> {
    let mut sets = env.sets("train.env")?;
    if let Some(s) = a.seeds {
        sets.push(format!("seeds={s}"));
    }
    if let Some(p) = a.parallel {
        sets.push(format!("parallel={p}"));
    }
    sets.extend(a.sets.iter().cloned());
    let mut cfg = load_compare_config(&compare_base(&env.env)?, a.config.as_deref(), &sets)?;
    if !a.only.is_empty() {
        for name in &a.only {
            if name != "reference" && !cfg.rows.iter().any(|r| &r.name == name) {
                bail!("--only {name}: no such row; rows: {}", cfg.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "));
            }
        }
        cfg.rows.retain(|r| a.only.contains(&r.name));
    }
    cfg.validate().map_err(anyhow::Error::msg)?;
    cfg.check_reference_env().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// The reference row: the reference policy itself under the evaluation protocol, once per seed.
fn reference_runs(cfg: &CompareConfig, seeds: &[u64]) -> Result<Vec<RunRecord>> {
    let ref_path = resolve_path(&cfg.reference_policy);
    let reference = load_policy(&ref_path, tch::Device::Cpu)?;
    let mut venv = VecEnv::make(&cfg.train.env.id, &cfg.train.env.env_config().map_err(anyhow::Error::msg)?, cfg.train.eval.episodes.min(16), 1)?;
    let own = reference_returns(&mut venv, &reference, &cfg.train.eval)?;
    let e = evaluate(&mut venv, &reference, &own, &cfg.train.eval, 0)?;
    Ok(seeds
        .iter()
        .map(|&s| RunRecord {
            row: "reference".into(),
            seed: s,
            summary: serde_json::json!({
                "labels_used": 0, "env_steps": 0, "eval_true_return_mean": e.mean, "win_rate": e.win_rate,
                "wall_time_s": 0.0, "learner_s_per_iter": f64::NAN, "peak_rss_mb": peak_rss_mb(),
            }),
            curve: Curve { points: vec![(0.0, e.mean)] },
            final_return: e.mean,
        })
        .collect())
}

/// Marks a run whose process failed (a killed `compare` leaves none: its runs resume).
const FAILED: &str = "FAILED";

/// Runs the jobs as child processes, `parallel` at a time (finished ones reused); returns the failures.
fn run_jobs(jobs: Vec<Job>, parallel: usize) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let total = jobs.len();
    let mut pending: std::collections::VecDeque<Job> = jobs.into_iter().collect();
    let mut running: Vec<(Job, Child, Instant)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut done = 0usize;
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < parallel && !pending.is_empty() {
            let job = pending.pop_front().expect("non-empty");
            if job.dir.join("summary.json").exists() {
                done += 1;
                eprintln!("[{done}/{total}] {} seed {}: already finished, reused", job.row, job.seed);
                continue;
            }
            if job.dir.join(FAILED).exists() {
                // a run that failed starts afresh in a clean folder; the failed one is kept aside
                let aside = (1..).map(|n| job.dir.with_extension(format!("failed-{n}"))).find(|d| !d.exists()).expect("a free name");
                std::fs::rename(&job.dir, &aside).with_context(|| format!("cannot move the failed run {} aside", job.dir.display()))?;
                eprintln!("{} seed {}: the failed run is kept in {}; starting afresh", job.row, job.seed, aside.display());
            }
            let child = spawn(&exe, &job)?;
            running.push((job, child, Instant::now()));
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait()? {
                Some(status) => {
                    let (job, _, t) = running.swap_remove(i);
                    done += 1;
                    if status.success() {
                        eprintln!("[{done}/{total}] {} seed {}: done in {:.0} s", job.row, job.seed, t.elapsed().as_secs_f64());
                    } else {
                        eprintln!("[{done}/{total}] {} seed {}: FAILED ({status}); see {}", job.row, job.seed, job.dir.join("train.log").display());
                        std::fs::write(job.dir.join(FAILED), format!("{status}\n")).ok();
                        failed.push(format!("{} seed {} ({})", job.row, job.seed, job.dir.join("train.log").display()));
                    }
                }
                None => i += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped comparison pins the Swimmer's dynamics revision; another environment starts from its own defaults.
    #[test]
    fn another_environment_does_not_inherit_the_swimmers_options() {
        let swimmer: toml::Table = toml::from_str(&compare_base("Swimmer-v5").unwrap()).unwrap();
        assert_eq!(swimmer["train"]["env"]["options"]["rk4_integrator"].as_bool(), Some(false));
        let hopper: toml::Table = toml::from_str(&compare_base("Hopper-v5").unwrap()).unwrap();
        assert!(hopper["train"]["env"].get("options").is_none(), "{hopper:?}");
        let shipped: toml::Table = toml::from_str(COMPARE_CONFIG).unwrap();
        assert_eq!(hopper["rows"], shipped["rows"], "everything else is the shipped comparison's");
    }
}
