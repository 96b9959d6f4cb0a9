//! The comparison protocol (`swimmer compare`): equal tuning on seeds that are not reported, then a report
//! on fresh seeds with the statistics the field now uses (Agarwal et al. 2021).
//!
//! * **Tune.** Every row gets the same number of configurations ([`ProtocolConfig::tune_configs`]), drawn
//!   from the search space its algorithm declares (`[search.ALGO]` in the compare config: full training
//!   keys, each with a list of values), by seeded random search without replacement over the grid, or
//!   the whole grid. Each configuration runs on the tuning seeds (default 101–103), with labels, reward
//!   net and evaluation start states of their own; the configuration with the best mean final eval
//!   return is picked ([`pick`]; ties to the lower index; a failed run scores its last evaluation).
//! * **Report.** Every row reruns with its picked configuration on the report seeds (default 1–10),
//!   evaluated on start states from a range disjoint from the tuning one ([`ProtocolConfig::check`]
//!   refuses overlaps). [`report`] gives per row the mean and the interquartile mean of the final eval
//!   return with 95 % stratified-bootstrap intervals, the fraction of seeds reaching each threshold,
//!   the probability that each focus row (REBEL) improves on every other row of the same reward
//!   source, with its interval, and the costs (every simulated env step, label collection and
//!   evaluation in their own columns, learner seconds per 1,000 env steps, learner memory).
//!
//! Seeds are disjoint by construction: training, label collection and reward-net seeds are the run's
//! master seed (tuning and report sets must not meet), and their random streams carry a domain tag
//! ([`crate::seeding`]); evaluation start states are `eval_env_seed(seed_base + i)`, tag `Eval`, with
//! the tuning and report ranges apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::seeding::{stream, Domain};
use crate::stats::{self, Bootstrap, Interval};

/// How the configurations of a row are drawn from its algorithm's search space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    /// `tune_configs` distinct points of the grid, drawn from a seeded stream.
    Random,
    /// Every point of the grid (its size must equal `tune_configs`: equal budgets).
    Grid,
}

/// `[protocol]` of the compare config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolConfig {
    /// Configurations per row (the tuning budget, equal for every row). 1: no tuning, the row as declared.
    pub tune_configs: usize,
    /// Seeds of the tuning runs (never reported).
    pub tune_seeds: Vec<u64>,
    /// Env steps of a tuning run (0: `train.env_steps`); equal for every row.
    pub tune_env_steps: u64,
    /// First evaluation start state of the tuning runs (`eval.seed_base` of the report is the other range).
    pub tune_eval_seed_base: u64,
    /// Random or grid search.
    pub search: SearchKind,
    /// Seed of the random search.
    pub search_seed: u64,
    /// Final-return thresholds whose reach is reported per row.
    pub thresholds: Vec<f64>,
    /// Bootstrap replications of every interval.
    pub bootstrap_reps: usize,
    /// Rows whose probability of improvement over the others is reported.
    pub focus: Vec<String>,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            tune_configs: 8,
            tune_seeds: vec![101, 102, 103],
            tune_env_steps: 0,
            tune_eval_seed_base: 2_000_000,
            search: SearchKind::Random,
            search_seed: 0,
            thresholds: vec![250.0, 330.0],
            bootstrap_reps: 20_000,
            focus: vec!["rebel".into(), "rebel-true".into()],
        }
    }
}

/// A search space: full training key → the values it may take.
pub type Space = BTreeMap<String, Vec<toml::Value>>;

impl ProtocolConfig {
    /// Checks the protocol's seeds and budgets: `report_seeds` and the tuning seeds must not meet, the
    /// evaluation start-state ranges (`episodes` long from each base) must not overlap.
    pub fn check(&self, report_seeds: &[u64], report_eval_base: u64, episodes: usize) -> Result<(), String> {
        if self.tune_configs == 0 || self.tune_seeds.is_empty() {
            return Err("protocol.tune_configs and protocol.tune_seeds must not be empty (1 configuration: no tuning)".into());
        }
        if report_seeds.is_empty() {
            return Err("the report needs seeds (10 or more to be evidence)".into());
        }
        if let Some(s) = self.tune_seeds.iter().find(|s| report_seeds.contains(s)) {
            return Err(format!(
                "seed {s} is both a tuning seed (protocol.tune_seeds) and a report seed (first_seed, seeds): a reported seed must not be tuned on"
            ));
        }
        let mut sorted = self.tune_seeds.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err("protocol.tune_seeds has a seed twice".into());
        }
        let (a, b) = (self.tune_eval_seed_base, report_eval_base);
        let n = episodes as u64;
        if a < b.saturating_add(n) && b < a.saturating_add(n) {
            return Err(format!(
                "the tuning evaluation start states ({a}..{}) overlap the report's (train.eval.seed_base: {b}..{}): choose \
                 protocol.tune_eval_seed_base apart",
                a + n,
                b + n
            ));
        }
        if self.bootstrap_reps < 100 {
            return Err("protocol.bootstrap_reps must be ≥ 100".into());
        }
        Ok(())
    }
}

/// Number of points of a space's grid (saturating).
pub fn grid_size(space: &Space) -> usize {
    space.values().fold(1usize, |n, v| n.saturating_mul(v.len()))
}

/// The `KEY=VALUE` sets of grid point `index` (keys in order, the last key varying fastest).
pub fn grid_point(space: &Space, mut index: usize) -> Vec<String> {
    let mut sets: Vec<String> = Vec::with_capacity(space.len());
    for (k, values) in space.iter().rev() {
        sets.push(format!("{k}={}", values[index % values.len()]));
        index /= values.len();
    }
    sets.reverse();
    sets
}

/// The configurations of `row` (each a list of `KEY=VALUE` sets), `p.tune_configs` of them, from `space`
/// (errors name what is wrong). With one configuration, the row as declared (no sets). `fixed` are the
/// row's own sets, which the search must not vary.
pub fn candidates(p: &ProtocolConfig, row: &str, space: Option<&Space>, fixed: &[String]) -> Result<Vec<Vec<String>>, String> {
    if p.tune_configs == 1 {
        return Ok(vec![Vec::new()]);
    }
    let space = space.filter(|s| !s.is_empty()).ok_or_else(|| {
        format!("row {row}: its algorithm has no search space ([search.ALGO] in the compare config), and tune_configs = {}", p.tune_configs)
    })?;
    for (k, v) in space {
        if v.is_empty() {
            return Err(format!("search key {k} has no values"));
        }
        if fixed.iter().any(|s| s.split_once('=').map(|(fk, _)| fk.trim()) == Some(k.as_str())) {
            return Err(format!("row {row} fixes {k}, which its algorithm's search space varies: remove one of them"));
        }
    }
    let n = grid_size(space);
    let picked: Vec<usize> = match p.search {
        SearchKind::Grid if n != p.tune_configs => {
            return Err(format!(
                "row {row}: grid search over {n} points, but tune_configs = {} (every row must get the same budget)",
                p.tune_configs
            ))
        }
        SearchKind::Grid => (0..n).collect(),
        SearchKind::Random if n < p.tune_configs => {
            return Err(format!("row {row}: the search space has {n} points, fewer than tune_configs = {}", p.tune_configs))
        }
        SearchKind::Random => {
            // Floyd's sampling of distinct indices, from a stream keyed by the search seed and the row
            use rand::RngExt;
            let mut rng = stream(p.search_seed, Domain::Tune, name_index(row));
            let mut chosen: Vec<usize> = Vec::with_capacity(p.tune_configs);
            for j in n - p.tune_configs..n {
                let t = rng.random_range(0..=j);
                chosen.push(if chosen.contains(&t) { j } else { t });
            }
            chosen
        }
    };
    Ok(picked.into_iter().map(|i| grid_point(space, i)).collect())
}

/// A stream index for a row name (< 2^56).
fn name_index(name: &str) -> u64 {
    crate::io::fnv1a_u64(name.as_bytes()) & ((1 << 56) - 1)
}

/// One tuning configuration's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneEntry {
    pub row: String,
    pub config: usize,
    pub sets: Vec<String>,
    /// Final eval return per tuning seed (in `tune_seeds` order; NaN, written `null`, for a run that failed
    /// before its first evaluation).
    #[serde(deserialize_with = "crate::util::f64s_or_null")]
    pub finals: Vec<f64>,
    /// Seeds whose run failed (scored by their last evaluation).
    pub failed: Vec<u64>,
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub mean: f64,
    pub picked: bool,
}

/// Marks, per row, the configuration with the highest mean final return (NaN lowest; ties to the lower
/// index) and returns the picked entries in row order.
pub fn pick(entries: &mut [TuneEntry]) -> Vec<TuneEntry> {
    let mut rows: Vec<String> = Vec::new();
    for e in entries.iter() {
        if !rows.contains(&e.row) {
            rows.push(e.row.clone());
        }
    }
    let key = |m: f64| if m.is_nan() { f64::NEG_INFINITY } else { m };
    let mut out = Vec::new();
    for row in rows {
        let best = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.row == row)
            .fold(None::<(usize, f64, usize)>, |b, (i, e)| match b {
                Some((_, m, c)) if key(e.mean) < m || (key(e.mean) == m && e.config > c) => b,
                _ => Some((i, key(e.mean), e.config)),
            })
            .map(|(i, _, _)| i)
            .expect("a row has entries");
        entries[best].picked = true;
        out.push(entries[best].clone());
    }
    out
}

/// The markdown of the tuning phase.
pub fn tuning_markdown(entries: &[TuneEntry], p: &ProtocolConfig, steps: u64, episodes: usize, header: &str) -> String {
    let mut s = format!(
        "# Tuning\n\n{header}\n\nEvery row: {} configuration(s) ({:?} search, search seed {}), each on tuning seeds {:?}, {} env \
         steps, evaluated on start states {}..{}; the configuration with the best mean final eval return is picked (**bold**).\n\n",
        p.tune_configs,
        p.search,
        p.search_seed,
        p.tune_seeds,
        steps,
        p.tune_eval_seed_base,
        p.tune_eval_seed_base + episodes as u64
    );
    s.push_str("| row | config | settings | final eval return per seed | mean |\n|---|---:|---|---|---:|\n");
    for e in entries {
        let b = if e.picked { "**" } else { "" };
        let finals: Vec<String> = e.finals.iter().map(|v| format!("{v:.1}")).collect();
        let failed = if e.failed.is_empty() { String::new() } else { format!(" (failed: seeds {:?})", e.failed) };
        let sets = if e.sets.is_empty() { "as declared".to_string() } else { format!("`{}`", e.sets.join("`, `")) };
        s.push_str(&format!("| {b}{}{b} | {b}{}{b} | {sets} | {}{failed} | {b}{:.1}{b} |\n", e.row, e.config, finals.join(", "), e.mean));
    }
    s
}

/// What a report run contributes to the statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRun {
    pub row: String,
    pub seed: u64,
    /// Final eval true return (the last evaluation of a failed run).
    pub final_return: f64,
    pub failed: bool,
    /// `summary.json` (empty object for a failed run).
    pub summary: serde_json::Value,
    /// Env steps of the labels' collection of this seed (0 for rows without labels).
    pub label_env_steps: f64,
}

/// A row of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    pub row: String,
    pub algo: String,
    pub settings: Vec<String>,
    pub seeds: Vec<u64>,
    pub final_return_per_seed: Vec<f64>,
    pub failed_seeds: Vec<u64>,
    pub mean: Interval,
    pub iqm: Interval,
    /// `(threshold, fraction of seeds reaching it)`.
    pub reach: Vec<(f64, f64)>,
    pub labels_used: f64,
    /// Env steps the algorithm simulated (iterative DPO's rollouts included), mean over seeds.
    pub env_steps: f64,
    /// Env steps of the label collection (shared by the rows of a seed; reported per row that uses labels).
    pub label_env_steps: f64,
    /// Env steps of the evaluations.
    pub eval_env_steps: f64,
    pub win_rate: f64,
    pub wall_time_s: f64,
    /// Learner seconds (scoring + update) per 1,000 env steps.
    pub learner_s_per_1k_steps: f64,
    /// Peak RSS above the level once libtorch, the envs and the nets are up (MiB): what training added
    /// (rollout buffers and snapshots included).
    pub learner_mem_mb: f64,
    /// The learner's own memory: the largest rise of RSS in one learner phase after the first (MiB;
    /// `learner_update_mem_later_mb` of the runs' summaries; NaN for runs that do not record it).
    pub learner_phase_mem_mb: f64,
    /// The learner's own memory in bytes: the most its allocations held in one learner phase after the first (MiB;
    /// `learner_update_alloc_later_mb` of the runs' summaries, steady from run to run where the rise of RSS is not;
    /// NaN for runs that do not record it).
    pub learner_phase_alloc_mb: f64,
    pub peak_rss_mb: f64,
}

/// The probability that a focus row improves on another row, with its interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Improvement {
    pub row: String,
    pub over: String,
    pub probability: Interval,
}

fn summary_mean(runs: &[&ReportRun], key: &str) -> f64 {
    let v: Vec<f64> = runs.iter().filter_map(|r| r.summary.get(key).and_then(|x| x.as_f64())).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        stats::mean(&v)
    }
}

/// The report's rows (in `order`) and the probabilities of improvement of the `focus` rows over the
/// others of the same reward source (`reward_of`: row → "true"/"model"). Intervals: 95 % percentile
/// stratified bootstrap with `reps` replications.
pub fn report(
    order: &[(String, String, Vec<String>)],
    runs: &[ReportRun],
    reward_of: &dyn Fn(&str) -> String,
    p: &ProtocolConfig,
) -> (Vec<ReportRow>, Vec<Improvement>) {
    let b = |seed: u64| Bootstrap { reps: p.bootstrap_reps, size: 0.95, seed };
    let mut rows = Vec::new();
    for (i, (name, algo, settings)) in order.iter().enumerate() {
        let rs: Vec<&ReportRun> = runs.iter().filter(|r| &r.row == name).collect();
        if rs.is_empty() {
            continue;
        }
        let finals: Vec<f64> = rs.iter().map(|r| r.final_return).collect();
        let strata = vec![finals.clone()];
        let env_steps = summary_mean(&rs, "env_steps");
        let learner_s = summary_mean(&rs, "learner_s_total");
        rows.push(ReportRow {
            row: name.clone(),
            algo: algo.clone(),
            settings: settings.clone(),
            seeds: rs.iter().map(|r| r.seed).collect(),
            final_return_per_seed: finals.clone(),
            failed_seeds: rs.iter().filter(|r| r.failed).map(|r| r.seed).collect(),
            mean: stats::bootstrap(&strata, |s| stats::mean(&s[0]), b(2 * i as u64)),
            iqm: stats::bootstrap(&strata, |s| stats::iqm(&s[0]), b(2 * i as u64 + 1)),
            reach: p.thresholds.iter().map(|&t| (t, stats::fraction_reaching(&finals, t))).collect(),
            labels_used: summary_mean(&rs, "labels_used"),
            env_steps,
            label_env_steps: stats::mean(&rs.iter().map(|r| r.label_env_steps).collect::<Vec<_>>()),
            eval_env_steps: summary_mean(&rs, "eval_env_steps"),
            win_rate: summary_mean(&rs, "win_rate"),
            wall_time_s: summary_mean(&rs, "wall_time_s"),
            learner_s_per_1k_steps: if env_steps > 0.0 { learner_s / env_steps * 1000.0 } else { f64::NAN },
            learner_mem_mb: summary_mean(&rs, "learner_mem_mb"),
            learner_phase_mem_mb: summary_mean(&rs, "learner_update_mem_later_mb"),
            learner_phase_alloc_mb: summary_mean(&rs, "learner_update_alloc_later_mb"),
            peak_rss_mb: rs.iter().filter_map(|r| r.summary.get("peak_rss_mb").and_then(|x| x.as_f64())).fold(f64::NAN, f64::max),
        });
    }
    let mut imps = Vec::new();
    for (fi, focus) in p.focus.iter().enumerate() {
        let Some(f) = rows.iter().find(|r| &r.row == focus) else { continue };
        for (oi, o) in rows.iter().enumerate() {
            if p.focus.contains(&o.row) || reward_of(&o.row) != reward_of(focus) {
                continue;
            }
            let x = vec![f.final_return_per_seed.clone()];
            let y = vec![o.final_return_per_seed.clone()];
            let seed = 1_000_000 + (fi as u64) * 1000 + oi as u64;
            let probability = stats::bootstrap_two(&x, &y, stats::avg_prob_improvement, b(seed));
            imps.push(Improvement { row: focus.clone(), over: o.row.clone(), probability });
        }
    }
    (rows, imps)
}

fn f(x: f64, d: usize) -> String {
    if x.is_finite() {
        format!("{x:.d$}")
    } else {
        "-".into()
    }
}

fn iv(i: &Interval, d: usize) -> String {
    format!("{} [{}, {}]", f(i.point, d), f(i.lo, d), f(i.hi, d))
}

/// `results.md`: the header, the returns table, the improvement table and the cost table.
pub fn results_markdown(rows: &[ReportRow], imps: &[Improvement], header: &str) -> String {
    let mut s = format!("# Results\n\n{header}\n\n## Final eval true return\n\n");
    s.push_str("| row | seeds | mean [95% CI] | IQM [95% CI] |");
    let thresholds: Vec<f64> = rows.first().map(|r| r.reach.iter().map(|t| t.0).collect()).unwrap_or_default();
    for t in &thresholds {
        s.push_str(&format!(" ≥ {t} |"));
    }
    s.push_str(" failed | per seed |\n|---|---:|---:|---:|");
    s.push_str(&"---:|".repeat(thresholds.len()));
    s.push_str("---:|---|\n");
    for r in rows {
        s.push_str(&format!("| {} | {} | {} | {} |", r.row, r.seeds.len(), iv(&r.mean, 1), iv(&r.iqm, 1)));
        for (_, frac) in &r.reach {
            s.push_str(&format!(" {}/{} |", (frac * r.seeds.len() as f64).round(), r.seeds.len()));
        }
        let per: Vec<String> = r.final_return_per_seed.iter().map(|v| f(*v, 0)).collect();
        s.push_str(&format!(" {} | {} |\n", r.failed_seeds.len(), per.join(" ")));
    }
    if !imps.is_empty() {
        s.push_str("\n## Probability of improvement (P(row > other) over seeds, 95% CI)\n\n| row | over | P [95% CI] |\n|---|---|---:|\n");
        for i in imps {
            s.push_str(&format!("| {} | {} | {} |\n", i.row, i.over, iv(&i.probability, 2)));
        }
    }
    s.push_str(
        "\n## Cost (means over seeds)\n\n| row | labels | env steps (algorithm) | env steps (labels) | env steps (eval) | wall time (s) | \
         learner s per 1k env steps | learner memory per update (MiB) | learner bytes per update (MiB) | run memory above start (MiB) | \
         peak RSS (MiB) | win rate |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.row,
            f(r.labels_used, 0),
            f(r.env_steps, 0),
            f(r.label_env_steps, 0),
            f(r.eval_env_steps, 0),
            f(r.wall_time_s, 1),
            f(r.learner_s_per_1k_steps, 3),
            f(r.learner_phase_mem_mb, 1),
            f(r.learner_phase_alloc_mb, 2),
            f(r.learner_mem_mb, 0),
            f(r.peak_rss_mb, 0),
            f(r.win_rate, 2)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        let mut s = Space::new();
        s.insert("rebel.eta".into(), vec![toml::Value::Float(1.0), toml::Value::Float(10.0)]);
        s.insert("rebel.lr".into(), vec![toml::Value::Float(1e-4), toml::Value::Float(1e-3), toml::Value::Float(1e-2)]);
        s
    }

    #[test]
    fn a_tuning_record_with_failed_runs_reads_back() {
        // a run that failed before its first evaluation scores NaN, which JSON writes as null
        let e = TuneEntry { row: "ppo".into(), config: 3, sets: vec!["ppo.lr=0.001".into()], finals: vec![f64::NAN, 12.5], failed: vec![601], mean: f64::NAN, picked: false };
        let text = serde_json::to_string(&[e.clone()]).unwrap();
        assert!(text.contains("[null,12.5]") && text.contains("\"mean\":null"), "{text}");
        let back: Vec<TuneEntry> = serde_json::from_str(&text).unwrap();
        assert!(back[0].finals[0].is_nan() && back[0].mean.is_nan());
        assert_eq!((back[0].finals[1], &back[0].sets, &back[0].failed, back[0].config), (12.5, &e.sets, &e.failed, 3));
    }

    #[test]
    fn grid_points_enumerate_the_product() {
        let s = space();
        assert_eq!(grid_size(&s), 6);
        let all: Vec<Vec<String>> = (0..6).map(|i| grid_point(&s, i)).collect();
        assert_eq!(all[0], ["rebel.eta=1.0", "rebel.lr=0.0001"]);
        assert_eq!(all[5], ["rebel.eta=10.0", "rebel.lr=0.01"]);
        let mut d = all.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 6, "distinct points");
    }

    #[test]
    fn every_row_gets_the_same_number_of_distinct_configurations() {
        let p = ProtocolConfig { tune_configs: 4, ..ProtocolConfig::default() };
        let s = space();
        for row in ["rebel", "rebel-true", "x"] {
            let c = candidates(&p, row, Some(&s), &[]).unwrap();
            assert_eq!(c.len(), 4);
            let mut d = c.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 4, "{row}: {c:?}");
            assert_eq!(c, candidates(&p, row, Some(&s), &[]).unwrap(), "seeded");
        }
        // every point is reachable: over many search seeds each of the 6 is drawn
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let p = ProtocolConfig { search_seed: seed, ..p.clone() };
            seen.extend(candidates(&p, "rebel", Some(&s), &[]).unwrap());
        }
        assert_eq!(seen.len(), 6);
        // refusals: too small a space, a grid of the wrong size, no space, a fixed key searched over
        let p7 = ProtocolConfig { tune_configs: 7, ..p.clone() };
        assert!(candidates(&p7, "rebel", Some(&s), &[]).unwrap_err().contains("fewer than"));
        let g = ProtocolConfig { search: SearchKind::Grid, ..p.clone() };
        assert!(candidates(&g, "rebel", Some(&s), &[]).unwrap_err().contains("same budget"));
        let g6 = ProtocolConfig { search: SearchKind::Grid, tune_configs: 6, ..p.clone() };
        assert_eq!(candidates(&g6, "rebel", Some(&s), &[]).unwrap().len(), 6);
        assert!(candidates(&p, "ppo", None, &[]).unwrap_err().contains("no search space"));
        assert!(candidates(&p, "rebel", Some(&s), &["rebel.eta=3".into()]).unwrap_err().contains("fixes rebel.eta"));
        let one = ProtocolConfig { tune_configs: 1, ..p };
        assert_eq!(candidates(&one, "ppo", None, &[]).unwrap(), vec![Vec::<String>::new()]);
    }

    #[test]
    fn seeds_and_start_states_must_be_disjoint() {
        let p = ProtocolConfig::default();
        let report: Vec<u64> = (1..=10).collect();
        p.check(&report, 1_000_000, 10).unwrap();
        assert!(p.check(&[1, 2, 101], 1_000_000, 10).unwrap_err().contains("seed 101"));
        assert!(p.check(&report, 2_000_005, 10).unwrap_err().contains("overlap"));
        assert!(p.check(&report, 1_999_991, 10).unwrap_err().contains("overlap"));
        p.check(&report, 1_999_990, 10).unwrap();
        assert!(p.check(&[], 1_000_000, 10).is_err());
        let twice = ProtocolConfig { tune_seeds: vec![5, 5], ..ProtocolConfig::default() };
        assert!(twice.check(&report[..2], 1_000_000, 10).is_err());
    }

    #[test]
    fn pick_takes_the_best_mean_with_ties_to_the_lower_index_and_nan_last() {
        let e = |row: &str, config, mean| TuneEntry { row: row.into(), config, sets: vec![], finals: vec![mean], failed: vec![], mean, picked: false };
        let mut v = vec![e("a", 0, 5.0), e("a", 1, f64::NAN), e("a", 2, 7.0), e("a", 3, 7.0), e("b", 0, f64::NAN), e("b", 1, -3.0)];
        let picked = pick(&mut v);
        assert_eq!(picked.iter().map(|p| (p.row.as_str(), p.config)).collect::<Vec<_>>(), [("a", 2), ("b", 1)]);
        assert_eq!(v.iter().filter(|e| e.picked).count(), 2);
    }

    #[test]
    fn report_statistics_on_a_known_sample() {
        let run = |row: &str, seed, v: f64| ReportRun {
            row: row.into(),
            seed,
            final_return: v,
            failed: false,
            summary: if row == "rebel" {
                serde_json::json!({"env_steps": 1000.0, "learner_s_total": 2.0, "labels_used": 10, "learner_update_mem_later_mb": 2.5, "learner_update_alloc_later_mb": 1.25})
            } else {
                serde_json::json!({"env_steps": 1000.0, "learner_s_total": 2.0, "labels_used": 10})
            },
            label_env_steps: 0.0,
        };
        // rebel: 1..=8 (mean 4.5, IQM of 3..=6 = 4.5); ppo: all 100 → P(rebel > ppo) = 0 exactly
        let mut runs: Vec<ReportRun> = (1..=8).map(|s| run("rebel", s, s as f64)).collect();
        runs.extend((1..=8).map(|s| run("ppo", s, 100.0)));
        runs.extend((1..=8).map(|s| run("oracle", s, 0.0)));
        let order = vec![("rebel".into(), "rebel".into(), vec![]), ("ppo".into(), "ppo".into(), vec![]), ("oracle".into(), "ppo".into(), vec![])];
        let p = ProtocolConfig { bootstrap_reps: 2000, focus: vec!["rebel".into()], thresholds: vec![5.0], ..ProtocolConfig::default() };
        let reward = |r: &str| if r == "oracle" { "true".to_string() } else { "model".to_string() };
        let (rows, imps) = report(&order, &runs, &reward, &p);
        let r = &rows[0];
        assert_eq!((r.mean.point, r.iqm.point), (4.5, 4.5));
        assert!(r.mean.lo < 4.5 && r.mean.hi > 4.5 && r.mean.lo > 1.0 && r.mean.hi < 8.0, "{:?}", r.mean);
        assert_eq!(r.reach, [(5.0, 0.5)]);
        assert_eq!(r.learner_s_per_1k_steps, 2.0);
        // the learner's own memory where the runs record it, NaN (shown as "-") where they do not
        assert_eq!(r.learner_phase_mem_mb, 2.5);
        assert!(rows[1].learner_phase_mem_mb.is_nan());
        assert!(r.learner_phase_alloc_mb == 1.25 && rows[1].learner_phase_alloc_mb.is_nan());
        assert_eq!((rows[1].mean.lo, rows[1].mean.hi), (100.0, 100.0), "a constant sample has a point interval");
        // only the same reward source is compared
        assert_eq!(imps.len(), 1);
        assert_eq!((imps[0].over.as_str(), imps[0].probability.point, imps[0].probability.hi), ("ppo", 0.0, 0.0));
        let md = results_markdown(&rows, &imps, "h");
        assert!(md.contains("| rebel | 8 | 4.5 [") && md.contains(" 4/8 |") && md.contains("| rebel | ppo | 0.00 [0.00, 0.00] |"), "{md}");
        assert!(md.contains("| 2.000 | 2.5 | 1.25 | -") && md.contains("| 2.000 | - | - | -"), "{md}");
    }
}
