//! The comparison of the lecture's table (rebel.md §4–5): the reference policy (SFT), DPO (logistic,
//! square, iterative), REINFORCE, RLOO (k = 2, 4), PPO and REBEL, on the same environment, policy,
//! reward net, labels and evaluation; PPO and REBEL also on the true reward (oracle rows).
//!
//! This module holds everything but the process pool (in the CLI, `swimmer compare`):
//! * [`CompareConfig`]: the shared settings (reference policy, labels, teacher, reward net, the base
//!   [`TrainConfig`] whose `env_steps` is every online row's budget) and the rows;
//! * [`prepare_seed`]: per seed, the preference dataset from the reference policy and the reward net
//!   trained on it (shared by every row of that seed);
//! * [`run_config`]: a row's resolved [`TrainConfig`] for a seed;
//! * [`aggregate`], [`write_results`], [`plot_curves`]: `results.json`, `results.md` and
//!   `learning_curves.png` from the run directories.
//!
//! Equal budgets: every online row gets the same `env_steps`; every row that uses labels gets the
//! same number (the reward net's dataset, offline DPO's dataset, and iterative DPO's
//! `labels_per_round × iterations`, set by [`run_config`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;

use crate::checkpoint::{fnv1a_hex, Checkpoint};
use crate::preferences::{collect_preferences, CollectConfig, PolicySource, TeacherConfig, TeacherKind};
use crate::reward_model::{self, RewardModelConfig};
use crate::runconfig::{load_config, to_toml_string};
use crate::algorithm::AlgoConfig;
use crate::algos::dpo::DpoConfig;
use crate::train::{RewardSource, TrainConfig, TrainError};
use crate::util::resolve_path;

/// One row of the table: an algorithm, what scores it, and extra `--set`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    /// Row name in the results (`ppo-true`, `rloo-k4`, …).
    pub name: String,
    /// `train`'s `algo`.
    pub algo: String,
    /// "model" (the seed's reward net) or "true". Ignored by DPO (it uses the labels directly).
    #[serde(default = "model")]
    pub reward: RewardSource,
    /// Extra `KEY=VALUE` overrides of the row's training configuration.
    #[serde(default)]
    pub set: Vec<String>,
}

fn model() -> RewardSource {
    RewardSource::Model
}

fn row(name: &str, algo: &str, reward: &str, set: &[&str]) -> RowSpec {
    let reward = if reward == "true" { RewardSource::True } else { RewardSource::Model };
    RowSpec { name: name.into(), algo: algo.into(), reward, set: set.iter().map(|s| s.to_string()).collect() }
}

/// The rows of the lecture's table (the `reference` row is always added).
pub fn default_rows() -> Vec<RowSpec> {
    vec![
        row("dpo", "dpo", "model", &[]),
        row("dpo-square", "dpo", "model", &["dpo.loss=\"square\""]),
        row("dpo-iterative", "dpo", "model", &["dpo.iterative=true"]),
        row("reinforce", "reinforce", "model", &[]),
        row("rloo-k2", "rloo", "model", &["rloo.k=2"]),
        // k = 4 with half the groups: the same env steps per iteration as k = 2
        row("rloo-k4", "rloo", "model", &["rloo.k=4", "rloo.groups=2"]),
        row("ppo", "ppo", "model", &[]),
        row("ppo-true", "ppo", "true", &[]),
        row("rebel", "rebel", "model", &[]),
        row("rebel-true", "rebel", "true", &[]),
    ]
}

/// The comparison's configuration (`experiments/swimmer_compare.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareConfig {
    /// The reference policy: the SFT row, the start of every row, the producer of the labels, and
    /// the win-rate opponent.
    pub reference_policy: String,
    /// Preference labels per seed (the reward net's dataset; offline DPO's dataset; iterative DPO's
    /// total).
    pub labels: usize,
    /// Piece length in steps (0: whole episodes).
    pub segment_len: usize,
    /// Both pieces of a pair start from the same state.
    pub same_start: bool,
    /// Seeds: `first_seed .. first_seed + seeds`. Default 3.
    pub seeds: usize,
    /// First seed. Default 1.
    pub first_seed: u64,
    /// Training processes at a time (each with `threads = 1`). Default 2.
    pub parallel: usize,
    /// The simulated teacher.
    pub teacher: TeacherConfig,
    /// The reward net.
    pub reward_model: RewardModelConfig,
    /// The base training configuration of every row (`env_steps`: the online budget).
    pub train: TrainConfig,
    /// The rows (default: [`default_rows`]).
    pub rows: Vec<RowSpec>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            reference_policy: "experiments/swimmer/reference_policy.safetensors".into(),
            labels: 1000,
            segment_len: 50,
            same_start: false,
            seeds: 3,
            first_seed: 1,
            parallel: 2,
            teacher: TeacherConfig { beta: Some(1.0), ..TeacherConfig::preset(TeacherKind::Bt) },
            reward_model: RewardModelConfig::default(),
            train: TrainConfig::default(),
            rows: default_rows(),
        }
    }
}

impl CompareConfig {
    /// The seeds of the comparison.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds as u64).map(|i| self.first_seed + i).collect()
    }

    /// Checks what the rows need.
    pub fn validate(&self) -> Result<(), String> {
        if self.labels == 0 || self.seeds == 0 || self.parallel == 0 {
            return Err("labels, seeds and parallel must be ≥ 1".into());
        }
        let mut names: Vec<&str> = self.rows.iter().map(|r| r.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) || names.contains(&"reference") {
            return Err("row names must be unique and not `reference`".into());
        }
        Ok(())
    }
}

/// The files one seed's rows share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedData {
    pub seed: u64,
    pub prefs: PathBuf,
    pub reward_model: PathBuf,
    pub labels: u64,
    /// Env steps in the labelled pieces.
    pub label_env_steps: u64,
    pub reward_model_holdout_accuracy: f64,
}

fn err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Config(e.to_string())
}

/// Collects `cfg.labels` labelled pairs from the reference policy (collection seed = `seed`) into
/// `dir/prefs.safetensors` and trains the reward net (its seed = `seed`) into
/// `dir/reward_model.safetensors`. Reuses both when `dir/seed_data.json` exists.
pub fn prepare_seed(cfg: &CompareConfig, dir: &Path, seed: u64, threads: usize) -> Result<SeedData, TrainError> {
    let record = dir.join("seed_data.json");
    if let Some(d) = std::fs::read_to_string(&record).ok().and_then(|s| serde_json::from_str::<SeedData>(&s).ok()) {
        if d.prefs.exists() && d.reward_model.exists() {
            return Ok(d);
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    let ref_path = resolve_path(&cfg.reference_policy);
    let bytes = std::fs::read(&ref_path).map_err(|e| err(format!("reference policy {}: {e} (make one with `swimmer pretrain`)", ref_path.display())))?;
    let reference = Checkpoint::from_bytes(&bytes, &ref_path)?.build_policy("policy", Device::Cpu, Kind::Float)?;
    let env_cfg = cfg.train.env.env_config().map_err(err)?;
    let mut venv = VecEnv::make(&cfg.train.env.id, &env_cfg, 16, threads)?;
    let source = PolicySource { path: ref_path.display().to_string(), hash: fnv1a_hex(&bytes) };
    let collect = CollectConfig {
        n_labels: cfg.labels,
        segment_len: (cfg.segment_len > 0).then_some(cfg.segment_len),
        same_start: cfg.same_start,
        seed,
    };
    let prefs = collect_preferences(&mut venv, &reference, source, &collect, &cfg.teacher).map_err(err)?;
    let prefs_path = dir.join("prefs.safetensors");
    prefs.save(&prefs_path).map_err(err)?;
    let rm_cfg = RewardModelConfig { seed, ..cfg.reward_model.clone() };
    let (model, report) = reward_model::train(&prefs, &rm_cfg).map_err(err)?;
    let rm_path = dir.join("reward_model.safetensors");
    model.save(&rm_path, &cfg.train.env.id).map_err(err)?;
    let d = SeedData {
        seed,
        prefs: prefs_path,
        reward_model: rm_path,
        labels: prefs.len() as u64,
        label_env_steps: prefs.segment_batch().segments.iter().map(|s| s.len() as u64).sum(),
        reward_model_holdout_accuracy: report.holdout_accuracy,
    };
    crate::logging::write_atomic(&record, serde_json::to_string_pretty(&d).expect("json").as_bytes())?;
    Ok(d)
}

/// The resolved training configuration of `row` for a seed: the base config, the row's algorithm
/// and scorer, the seed's data, the reference policy as start and opponent, one thread, then the
/// row's own `set`s. Iterative DPO gets `labels_per_round = labels / dpo.iterations` (the same label
/// budget as the others; an error if it does not divide).
pub fn run_config(cfg: &CompareConfig, row: &RowSpec, data: &SeedData) -> Result<TrainConfig, String> {
    let base = to_toml_string(&cfg.train).map_err(|e| e.to_string())?;
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let reference = resolve_path(&cfg.reference_policy);
    let mut sets = vec![
        format!("algo={:?}", row.algo),
        format!("reward={}", toml::Value::try_from(row.reward).map_err(|e| e.to_string())?),
        format!("seed={}", data.seed),
        "threads=1".to_string(),
        format!("policy.init={}", q(&reference)),
        format!("eval.reference={}", q(&reference)),
        format!("dpo.dataset={}", q(&data.prefs)),
    ];
    if row.reward == RewardSource::Model {
        sets.push(format!("reward_model={}", q(&data.reward_model)));
    }
    sets.extend(row.set.iter().cloned());
    let mut tc: TrainConfig = load_config(&base, None, &sets).map_err(|e| format!("row {}: {e}", row.name))?;
    let mut dpo: DpoConfig = tc.algo_config().map_err(|e| format!("row {}: {e}", row.name))?;
    if tc.algo == DpoConfig::NAME && dpo.iterative {
        let it = dpo.iterations.max(1);
        if !cfg.labels.is_multiple_of(it) {
            return Err(format!("row {}: labels = {} is not a multiple of dpo.iterations = {it}", row.name, cfg.labels));
        }
        dpo.labels_per_round = cfg.labels / it;
        tc.set_algo(&dpo);
    }
    tc.resolve().map_err(|e| format!("row {}: {e}", row.name))
}

/// One evaluation point of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// `(env steps, eval true return)` in order.
    pub points: Vec<(f64, f64)>,
}

/// A finished run of a row.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub row: String,
    pub seed: u64,
    pub summary: serde_json::Value,
    pub curve: Curve,
}

/// Reads `summary.json` and the eval points of `metrics.jsonl` of a run directory. Offline runs
/// (summary `env_steps` = 0) get a flat curve at their final value.
pub fn read_run(row: &str, seed: u64, dir: &Path) -> Result<RunRecord, String> {
    let s = std::fs::read_to_string(dir.join("summary.json")).map_err(|e| format!("{}: {e}", dir.join("summary.json").display()))?;
    let summary: serde_json::Value = serde_json::from_str(&s).map_err(|e| format!("{}: {e}", dir.display()))?;
    let m = std::fs::read_to_string(dir.join("metrics.jsonl")).map_err(|e| format!("{}: {e}", dir.join("metrics.jsonl").display()))?;
    let mut points = Vec::new();
    for line in m.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let (Some(x), Some(y)) = (v.get("env_steps").and_then(|x| x.as_f64()), v.get("eval/true_return").and_then(|y| y.as_f64())) {
            points.push((x, y));
        }
    }
    if summary.get("env_steps").and_then(|v| v.as_u64()) == Some(0) {
        let y = summary.get("eval_true_return_mean").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        points = vec![(0.0, y)];
    }
    Ok(RunRecord { row: row.into(), seed, summary, curve: Curve { points } })
}

/// A row of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub algo: String,
    pub seeds: usize,
    pub labels_used: f64,
    pub env_steps: f64,
    pub eval_true_return_mean: f64,
    /// Standard error of the mean over seeds (sample standard deviation / √seeds; 0 for one seed).
    pub eval_true_return_sem: f64,
    pub eval_true_return_per_seed: Vec<f64>,
    pub win_rate: f64,
    pub wall_time_s: f64,
    pub learner_s_per_iter: f64,
    /// Largest peak RSS over the row's runs.
    pub peak_rss_mb: f64,
}

/// Mean and standard error (sample std / √n; 0 when n < 2).
pub fn mean_sem(x: &[f64]) -> (f64, f64) {
    let n = x.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let m = x.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (m, 0.0);
    }
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    (m, (var / n as f64).sqrt())
}

fn field(v: &serde_json::Value, k: &str) -> f64 {
    v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN)
}

/// One results row per row name, in the order of `order`, from the runs of all seeds.
pub fn aggregate(order: &[String], runs: &[RunRecord]) -> Vec<ResultRow> {
    order
        .iter()
        .filter_map(|name| {
            let rs: Vec<&RunRecord> = runs.iter().filter(|r| &r.row == name).collect();
            if rs.is_empty() {
                return None;
            }
            let col = |k: &str| rs.iter().map(|r| field(&r.summary, k)).collect::<Vec<f64>>();
            let mean = |k: &str| mean_sem(&col(k)).0;
            let per_seed = col("eval_true_return_mean");
            let (m, sem) = mean_sem(&per_seed);
            Some(ResultRow {
                algo: name.clone(),
                seeds: rs.len(),
                labels_used: mean("labels_used"),
                env_steps: mean("env_steps"),
                eval_true_return_mean: m,
                eval_true_return_sem: sem,
                eval_true_return_per_seed: per_seed,
                win_rate: mean("win_rate"),
                wall_time_s: mean("wall_time_s"),
                learner_s_per_iter: mean("learner_s_per_iter"),
                peak_rss_mb: col("peak_rss_mb").into_iter().fold(f64::NAN, f64::max),
            })
        })
        .collect()
}

/// The markdown table of `rows`, with a header line of notes.
pub fn results_markdown(rows: &[ResultRow], notes: &str) -> String {
    let mut s = String::from("# Swimmer-v5: REBEL and its baselines\n\n");
    s.push_str(notes);
    s.push_str("\n\n| algo | seeds | labels | env steps | eval true return (mean ± s.e.) | win rate vs reference | wall time (s) | learner s/iter | peak RSS (MB) |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let f = |x: f64, d: usize| if x.is_finite() { format!("{x:.d$}") } else { "-".into() };
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} ± {} | {} | {} | {} | {} |\n",
            r.algo,
            r.seeds,
            f(r.labels_used, 0),
            f(r.env_steps, 0),
            f(r.eval_true_return_mean, 1),
            f(r.eval_true_return_sem, 1),
            f(r.win_rate, 2),
            f(r.wall_time_s, 1),
            f(r.learner_s_per_iter, 3),
            f(r.peak_rss_mb, 0)
        ));
    }
    s
}

/// Writes `dir/results.json` (the rows) and `dir/results.md` (the table).
pub fn write_results(dir: &Path, rows: &[ResultRow], notes: &str) -> Result<(), TrainError> {
    let json = serde_json::to_string_pretty(rows).expect("rows serialise");
    crate::logging::write_atomic(&dir.join("results.json"), json.as_bytes())?;
    crate::logging::write_atomic(&dir.join("results.md"), results_markdown(rows, notes).as_bytes())?;
    Ok(())
}

/// Mean and standard error over seeds of the curves of one row, on the first seed's x grid (the
/// others linearly interpolated, held constant outside their range): `(x, mean, sem)`.
pub fn mean_curve(curves: &[&Curve]) -> Vec<(f64, f64, f64)> {
    let Some(first) = curves.first() else { return Vec::new() };
    let at = |c: &Curve, x: f64| -> f64 {
        let p = &c.points;
        if p.is_empty() {
            return f64::NAN;
        }
        if x <= p[0].0 {
            return p[0].1;
        }
        for w in p.windows(2) {
            if x <= w[1].0 {
                let t = if w[1].0 > w[0].0 { (x - w[0].0) / (w[1].0 - w[0].0) } else { 1.0 };
                return w[0].1 + t * (w[1].1 - w[0].1);
            }
        }
        p[p.len() - 1].1
    };
    first
        .points
        .iter()
        .map(|&(x, _)| {
            let ys: Vec<f64> = curves.iter().map(|c| at(c, x)).collect();
            let (m, s) = mean_sem(&ys);
            (x, m, s)
        })
        .collect()
}

// ───────────────────────────── the plot ─────────────────────────────

/// 5×7 bitmap glyphs (rows top to bottom, bit 4 = leftmost column). Lowercase letters are drawn
/// as capitals.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '±' => [0x04, 0x04, 0x1F, 0x04, 0x04, 0, 0x1F],
        ' ' => [0; 7],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

/// An RGB raster with alpha-blended drawing.
struct Canvas {
    w: i64,
    h: i64,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Self {
        Canvas { w: w as i64, h: h as i64, px: vec![255; w as usize * h as usize * 3] }
    }
    fn blend(&mut self, x: i64, y: i64, c: [u8; 3], a: f64) {
        if x < 0 || y < 0 || x >= self.w || y >= self.h {
            return;
        }
        let i = ((y * self.w + x) * 3) as usize;
        for (p, ck) in self.px[i..i + 3].iter_mut().zip(c) {
            *p = (*p as f64 * (1.0 - a) + ck as f64 * a).round() as u8;
        }
    }
    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3], a: f64) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.blend(x, y, c, a);
            }
        }
    }
    /// A line of width `2r + 1`; dashed when `dash > 0` (on/off run length in pixels).
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3], r: i64, dash: usize) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=n {
            if dash > 0 && (i / dash) % 2 == 1 {
                continue;
            }
            let t = i as f64 / n as f64;
            let (x, y) = ((x0 + t * (x1 - x0)).round() as i64, (y0 + t * (y1 - y0)).round() as i64);
            for dy in -r..=r {
                for dx in -r..=r {
                    self.blend(x + dx, y + dy, c, 1.0);
                }
            }
        }
    }
    /// Text at (x, y) (top left), `scale` pixels per font pixel.
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3], scale: i64) {
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + (i as i64 * 6 + col) * scale, y + row as i64 * scale);
                        self.rect(px, py, px + scale - 1, py + scale - 1, c, 1.0);
                    }
                }
            }
        }
    }
    fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 6 * scale
    }
}

/// Tick positions at 1/2/5 × 10^k covering [lo, hi].
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * span {
        out.push(if t.abs() < 1e-12 * span { 0.0 } else { t });
        t += step;
    }
    out
}

/// `1.5M`, `250K`, `40`.
fn si(x: f64) -> String {
    let a = x.abs();
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", x / 1e6)))
    } else if a >= 1e3 {
        format!("{}K", trim(format!("{:.1}", x / 1e3)))
    } else {
        trim(format!("{x:.1}"))
    }
}

/// A distinct colour per series.
const PALETTE: [[u8; 3]; 12] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [0, 0, 0],
    [120, 60, 0],
];

/// One series of the plot: `(x, mean, sem)` points; a single point at x = 0 (offline rows and the
/// reference) is drawn as a dashed horizontal line across the whole width.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// Draws true return against env steps, mean and a ±1 s.e. band per series, with a legend, into a
/// `width × height` PNG at `path`.
pub fn plot_curves(path: &Path, series: &[Series], title: &str, width: u32, height: u32) -> Result<(), TrainError> {
    let mut cv = Canvas::new(width, height);
    let (left, right, top, bottom) = (80i64, 230i64, 64i64, 60i64);
    let (pw, ph) = (cv.w - left - right, cv.h - top - bottom);
    let finite = |v: f64| v.is_finite();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|v| finite(*v));
    let x_max = xs.fold(0.0f64, f64::max).max(1.0);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]))
        .filter(|v| finite(*v))
        .collect();
    let (mut y_lo, mut y_hi) = (ys.iter().cloned().fold(f64::INFINITY, f64::min), ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
    if !y_lo.is_finite() || !y_hi.is_finite() {
        (y_lo, y_hi) = (0.0, 1.0);
    }
    let pad = ((y_hi - y_lo) * 0.05).max(1.0);
    let (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
    let px = |x: f64| left as f64 + x / x_max * pw as f64;
    let py = |y: f64| top as f64 + (y_hi - y) / (y_hi - y_lo) * ph as f64;
    // grid and axes
    let grey = [220, 220, 220];
    let dark = [60, 60, 60];
    for t in ticks(0.0, x_max, 6) {
        let x = px(t).round() as i64;
        cv.rect(x, top, x, top + ph, grey, 1.0);
        let l = si(t);
        cv.text(x - Canvas::text_width(&l, 1) / 2, top + ph + 8, &l, dark, 1);
    }
    for t in ticks(y_lo, y_hi, 6) {
        let y = py(t).round() as i64;
        cv.rect(left, y, left + pw, y, grey, 1.0);
        let l = si(t);
        cv.text(left - 8 - Canvas::text_width(&l, 1), y - 3, &l, dark, 1);
    }
    cv.rect(left, top, left, top + ph, dark, 1.0);
    cv.rect(left, top + ph, left + pw, top + ph, dark, 1.0);
    let xl = "env steps";
    cv.text(left + pw / 2 - Canvas::text_width(xl, 2) / 2, top + ph + 28, xl, dark, 2);
    cv.text(8, top - 24, "eval true return", dark, 2);
    cv.text(left + pw / 2 - Canvas::text_width(title, 2) / 2, 8, title, dark, 2);
    // bands first, then lines
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        if s.points.len() >= 2 {
            for w in s.points.windows(2) {
                let (x0, x1) = (px(w[0].0).round() as i64, px(w[1].0).round() as i64);
                for x in x0..x1.max(x0 + 1) {
                    let t = if x1 > x0 { (x - x0) as f64 / (x1 - x0) as f64 } else { 0.0 };
                    let m = w[0].1 + t * (w[1].1 - w[0].1);
                    let e = w[0].2 + t * (w[1].2 - w[0].2);
                    if m.is_finite() && e.is_finite() && e > 0.0 {
                        cv.rect(x, py(m + e).round() as i64, x, py(m - e).round() as i64, c, 0.18);
                    }
                }
            }
        }
    }
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        match s.points.as_slice() {
            [] => {}
            [(_, m, _)] if m.is_finite() => cv.line((px(0.0), py(*m)), (px(x_max), py(*m)), c, 1, 8),
            pts => {
                for w in pts.windows(2) {
                    if w[0].1.is_finite() && w[1].1.is_finite() {
                        cv.line((px(w[0].0), py(w[0].1)), (px(w[1].0), py(w[1].1)), c, 1, 0);
                    }
                }
            }
        }
        // legend
        let (lx, ly) = (left + pw + 16, top + 10 + i as i64 * 22);
        let dashed = s.points.len() == 1;
        cv.line((lx as f64, ly as f64 + 6.0), (lx as f64 + 24.0, ly as f64 + 6.0), c, 1, if dashed { 6 } else { 0 });
        cv.text(lx + 32, ly, &s.name, dark, 2);
    }
    let png = rebel_envs::render::encode_png(&cv.px, width, height)?;
    crate::logging::write_atomic(path, &png)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sem_is_the_sample_standard_error() {
        // 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9)/3 = 14/3, s.e. sqrt(14/3/4)
        let (m, s) = mean_sem(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(m, 3.0);
        assert!((s - (14.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sem(&[5.0]), (5.0, 0.0));
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1_000_000.0, 5), vec![0.0, 200_000.0, 400_000.0, 600_000.0, 800_000.0, 1_000_000.0]);
        assert_eq!(ticks(3.0, 17.0, 3), vec![5.0, 10.0, 15.0]);
        assert_eq!(si(1_500_000.0), "1.5M");
        assert_eq!(si(250_000.0), "250K");
        assert_eq!(si(40.0), "40");
    }

    #[test]
    fn mean_curve_interpolates_the_other_seeds_on_the_first_grid() {
        let a = Curve { points: vec![(0.0, 10.0), (100.0, 20.0)] };
        let b = Curve { points: vec![(0.0, 20.0), (50.0, 30.0), (200.0, 60.0)] };
        let m = mean_curve(&[&a, &b]);
        // at x = 100, b interpolates to 30 + (50/150)·30 = 40
        assert_eq!(m.len(), 2);
        assert!((m[0].1 - 15.0).abs() < 1e-12 && (m[1].1 - 30.0).abs() < 1e-12, "{m:?}");
        assert!((m[1].2 - mean_sem(&[20.0, 40.0]).1).abs() < 1e-12);
    }

    #[test]
    fn run_config_gives_each_row_its_scorer_data_and_label_budget() {
        let cfg = CompareConfig::default();
        let data = SeedData {
            seed: 7,
            prefs: PathBuf::from("/data/prefs.st"),
            reward_model: PathBuf::from("/data/rm.st"),
            labels: 1000,
            label_env_steps: 0,
            reward_model_holdout_accuracy: 1.0,
        };
        let rows = default_rows();
        let get = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
        let it = run_config(&cfg, get("dpo-iterative"), &data).unwrap();
        let d: DpoConfig = it.algo_config().unwrap();
        assert!(d.iterative && d.labels_per_round * d.iterations == 1000, "{d:?}");
        assert_eq!((it.seed, it.threads, d.dataset.as_str()), (7, 1, "/data/prefs.st"));
        assert_eq!(it.algos.keys().collect::<Vec<_>>(), ["dpo"], "a run's config holds only its algorithm's section");
        let ppo = run_config(&cfg, get("ppo"), &data).unwrap();
        assert_eq!((ppo.algo.as_str(), ppo.reward, ppo.reward_model.as_str()), ("ppo", RewardSource::Model, "/data/rm.st"));
        let oracle = run_config(&cfg, get("rebel-true"), &data).unwrap();
        assert_eq!((oracle.reward, oracle.reward_model.as_str()), (RewardSource::True, ""));
        let k4 = run_config(&cfg, get("rloo-k4"), &data).unwrap();
        let r: crate::algos::rloo::RlooConfig = k4.algo_config().unwrap();
        assert_eq!(r.k * r.groups, 8, "the same envs per iteration as k = 2");
        let odd = CompareConfig { labels: 1001, ..CompareConfig::default() };
        assert!(run_config(&odd, get("dpo-iterative"), &data).unwrap_err().contains("multiple"));
        let bad = RowSpec { set: vec!["ppo.clip=3".into()], ..get("ppo").clone() };
        assert!(run_config(&cfg, &bad, &data).unwrap_err().contains("ppo.clip"));
    }

    #[test]
    fn every_row_name_is_drawable() {
        for r in default_rows().iter().map(|r| r.name.clone()).chain(["reference".to_string(), "env steps".into()]) {
            for ch in r.chars() {
                assert_ne!(glyph(ch), glyph('\u{1}'), "no glyph for {ch:?} in {r}");
            }
        }
    }
}
