//! `compare`: every algorithm of the lecture's table × seeds, side by side (see
//! `rebel_agents::compare`). Training runs are child processes of this same binary
//! (`train --config … --run-dir … --quiet`, one thread each), `parallel` at a time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rebel_agents::compare::{
    aggregate, mean_curve, plot_curves, prepare_seed, read_run, run_config, write_results, CompareConfig, Curve, RunRecord, Series,
};
use rebel_agents::runconfig::{load_config, to_toml_string};
use rebel_agents::eval::{evaluate, reference_returns, load_policy};
use rebel_agents::util::{peak_rss_mb, resolve_path};
use rebel_envs::vec_env::VecEnv;

use super::EnvArgs;

/// The comparison `compare` runs with no `--config`.
pub const COMPARE_CONFIG: &str = include_str!("../../experiments/swimmer_compare.toml");

/// `compare`: run every row × seed and write results.md, results.json, learning_curves.png.
#[derive(Args, Debug, Clone, Default)]
pub struct CompareArgs {
    /// A TOML file merged over experiments/swimmer_compare.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of seeds (sets `seeds`).
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
    /// Override any key: `--set labels=500 --set train.env_steps=300000 --set train.rebel.eta=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
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

/// Runs `compare`; the last stdout line is JSON.
pub fn compare_cmd(env: &EnvArgs, a: &CompareArgs) -> Result<()> {
    let t0 = Instant::now();
    let cfg = resolve_compare_config(env, a)?;
    // Under mpirun/srun the (row × seed) jobs are spread over the ranks (rank r runs jobs r, r + N,
    // ...); rank 0 gathers the finished runs and writes the same files as one process does.
    let world = rebel_dist::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (rank, ranks) = (world.rank(), world.size());
    let out = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        PathBuf::from(format!("runs/compare__{t}"))
    });
    // every rank writes where rank 0 chose (a default folder is named after rank 0's clock)
    let mut out_bytes = out.to_string_lossy().into_owned().into_bytes();
    world.broadcast(0, &mut out_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = PathBuf::from(String::from_utf8(out_bytes).context("output folder name")?);
    std::fs::create_dir_all(out.join("configs")).with_context(|| format!("cannot create {}", out.display()))?;
    rebel_agents::io::write_atomic(&out.join("compare.toml"), to_toml_string(&cfg)?.as_bytes())?;
    let seeds = cfg.seed_list();

    // shared data per seed: labels from the reference policy, the reward net (spread over the
    // ranks, then each rank reads them, or makes those it cannot see: the same, deterministically)
    for (i, &s) in seeds.iter().enumerate() {
        if i % ranks == rank {
            eprintln!("seed {s}: {} preference labels from the reference policy and the reward net ...", cfg.labels);
            let d = prepare_seed(&cfg, &out.join("data").join(format!("seed{s}")), s, cfg.parallel.max(1))?;
            eprintln!("  reward net held-out accuracy {:.3}", d.reward_model_holdout_accuracy);
        }
    }
    world.barrier().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut data = Vec::new();
    for &s in &seeds {
        data.push(prepare_seed(&cfg, &out.join("data").join(format!("seed{s}")), s, cfg.parallel.max(1))?);
    }

    // the jobs: this rank's share
    let mut jobs = Vec::new();
    let mut index = 0usize;
    for row in &cfg.rows {
        for d in &data {
            index += 1;
            if (index - 1) % ranks != rank {
                continue;
            }
            let name = format!("{}__s{}", row.name, d.seed);
            let config = out.join("configs").join(format!("{name}.toml"));
            let tc = run_config(&cfg, row, d).map_err(anyhow::Error::msg)?;
            rebel_agents::io::write_atomic(&config, to_toml_string(&tc)?.as_bytes())?;
            jobs.push(Job { row: row.name.clone(), seed: d.seed, dir: out.join(&name), config });
        }
    }
    let total = cfg.rows.len() * data.len();
    let mine: Vec<PathBuf> = jobs.iter().map(|j| j.dir.clone()).collect();
    let failed = run_jobs(jobs, cfg.parallel)?;
    let failed = gather_runs(world.as_ref(), &out, &mine, failed)?;
    if rank != 0 {
        eprintln!("rank {rank} of {ranks}: {} run(s) done; rank 0 writes the results", mine.len());
        return Ok(());
    }
    let mut runs = reference_runs(&cfg, &seeds)?;

    // results
    for row in &cfg.rows {
        for &s in &seeds {
            let dir = out.join(format!("{}__s{s}", row.name));
            if dir.join("summary.json").exists() {
                runs.push(read_run(&row.name, s, &dir).map_err(anyhow::Error::msg)?);
            }
        }
    }
    let mut order = vec!["reference".to_string()];
    order.extend(cfg.rows.iter().map(|r| r.name.clone()));
    let rows = aggregate(&order, &runs);
    let notes = format!(
        "Reference policy `{}`; {} labels per seed ({}-step pieces, teacher {:?}); online budget {} env steps; \
         seeds {:?}; evaluation: mean action on {} fixed start states (seeds from {}), win rate against the reference \
         policy on the same start states. Offline DPO spends no env steps. Written by `swimmer compare` in {:.0} s.",
        cfg.reference_policy, cfg.labels, cfg.segment_len, cfg.teacher.kind, cfg.train.env_steps, seeds,
        cfg.train.eval.episodes, cfg.train.eval.seed_base, t0.elapsed().as_secs_f64()
    );
    write_results(&out, &rows, &notes)?;
    let series: Vec<Series> = order
        .iter()
        .filter_map(|name| {
            let cs: Vec<&Curve> = runs.iter().filter(|r| &r.row == name).map(|r| &r.curve).collect();
            (!cs.is_empty()).then(|| Series { name: name.clone(), points: mean_curve(&cs) })
        })
        .collect();
    plot_curves(&out.join("learning_curves.png"), &series, &format!("{} : eval true return, mean and s.e. over {} seeds", cfg.train.env.id, seeds.len()), 1100, 650)?;
    print!("{}", std::fs::read_to_string(out.join("results.md"))?);
    println!("results: {}  curves: {}\nTensorBoard: tensorboard --logdir {}", out.join("results.md").display(), out.join("learning_curves.png").display(), out.display());
    println!("{}", serde_json::json!({"out": out, "rows": rows.len(), "runs": total, "failed": failed.len()}));
    if !failed.is_empty() {
        bail!("{} run(s) failed: {}", failed.len(), failed.join("; "));
    }
    Ok(())
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

/// The comparison's configuration: the shipped default, `--config`, the flags, `--set`s, `--only`.
fn resolve_compare_config(env: &EnvArgs, a: &CompareArgs) -> Result<CompareConfig> {
    let mut sets = Vec::new();
    if env.env != "Swimmer-v5" {
        sets.push(format!("train.env.id={:?}", env.env));
    }
    for kv in &env.env_opts {
        let (k, v) = kv.split_once('=').with_context(|| format!("--env-opt takes KEY=VALUE, got {kv}"))?;
        sets.push(format!("train.env.options.{k}={v}"));
    }
    if let Some(s) = a.seeds {
        sets.push(format!("seeds={s}"));
    }
    if let Some(p) = a.parallel {
        sets.push(format!("parallel={p}"));
    }
    sets.extend(a.sets.iter().cloned());
    let mut cfg: CompareConfig = load_config(COMPARE_CONFIG, a.config.as_deref(), &sets)?;
    if !a.only.is_empty() {
        for name in &a.only {
            if name != "reference" && !cfg.rows.iter().any(|r| &r.name == name) {
                bail!("--only {name}: no such row; rows: {}", cfg.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "));
            }
        }
        cfg.rows.retain(|r| a.only.contains(&r.name));
    }
    cfg.validate().map_err(anyhow::Error::msg)?;
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
        })
        .collect())
}

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
