//! Statistics for comparisons, as the field reports them (Agarwal et al. 2021, "Deep RL at the edge of the
//! statistical precipice", and their rliable library):
//!
//! * point estimates over runs: [`mean`], [`iqm`] (interquartile mean, scipy's `trim_mean(x, 0.25)`),
//!   [`prob_improvement`] (P(X > Y), the Mann–Whitney U statistic over n·m), [`fraction_reaching`];
//! * 95 % (or any) confidence intervals by the **stratified bootstrap** with the percentile method, rliable's
//!   default: runs are resampled with replacement within each stratum (task), independently for each algorithm
//!   when a statistic compares two ([`bootstrap_two`]);
//! * bands for learning curves ([`curve_bands`]): the interval of a statistic at each evaluation point.
//!
//! Scores are given as strata: `&[Vec<f64>]`, one vector of per-run values per task (a single task is
//! `&[runs]`). Resampling draws from a ChaCha8 stream of the given seed, so intervals are reproducible.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A point estimate with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The statistic on the observed sample.
    pub point: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
}

/// How a bootstrap is run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bootstrap {
    /// Number of bootstrap replications (rliable's default: 50,000).
    pub reps: usize,
    /// Coverage of the interval (0.95).
    pub size: f64,
    /// Seed of the resampling stream.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { reps: 50_000, size: 0.95, seed: 0 }
    }
}

/// Mean of all values (NaN for none).
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Interquartile mean: the mean of the values left after cutting `floor(n/4)` from each end of the sorted sample
/// (scipy's `trim_mean(x, 0.25)`, rliable's `aggregate_iqm` on one task). NaN for an empty sample.
pub fn iqm(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 4;
    mean(&v[cut..v.len() - cut])
}

/// P(X > Y) for one draw of each, ties counted half: the Mann–Whitney U statistic of `x` against `y` over
/// `|x|·|y|` (rliable's probability of improvement on one task).
pub fn prob_improvement(x: &[f64], y: &[f64]) -> f64 {
    let mut u = 0.0;
    for a in x {
        for b in y {
            u += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    u / (x.len() * y.len()) as f64
}

/// Fraction of values at or above `threshold`.
pub fn fraction_reaching(x: &[f64], threshold: f64) -> f64 {
    x.iter().filter(|&&v| v >= threshold).count() as f64 / x.len() as f64
}

/// All strata's values in one vector (the input of an aggregate over runs and tasks).
pub fn pooled(strata: &[Vec<f64>]) -> Vec<f64> {
    strata.iter().flatten().copied().collect()
}

/// Quantile `q` of sorted values, linear between order statistics (numpy's default `percentile`).
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < v.len() {
        v[i] + frac * (v[i + 1] - v[i])
    } else {
        v[i]
    }
}

/// One stratified resample: each stratum's runs drawn with replacement, stratum sizes kept.
fn resample(strata: &[Vec<f64>], rng: &mut ChaCha8Rng, out: &mut Vec<Vec<f64>>) {
    out.resize(strata.len(), Vec::new());
    for (s, o) in strata.iter().zip(out.iter_mut()) {
        o.clear();
        o.extend((0..s.len()).map(|_| s[rng.random_range(0..s.len())]));
    }
}

fn percentile_interval(point: f64, mut stats: Vec<f64>, size: f64) -> Interval {
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - size) / 2.0;
    Interval { point, lo: quantile_sorted(&stats, tail), hi: quantile_sorted(&stats, 1.0 - tail) }
}

/// Percentile-bootstrap interval of `stat` over stratified resamples of `strata`.
/// Panics on an empty stratum (a statistic of no runs is not defined).
pub fn bootstrap(strata: &[Vec<f64>], stat: impl Fn(&[Vec<f64>]) -> f64, b: Bootstrap) -> Interval {
    assert!(strata.iter().all(|s| !s.is_empty()), "bootstrap of an empty stratum");
    let mut rng = ChaCha8Rng::seed_from_u64(b.seed);
    let mut buf = Vec::new();
    let stats = (0..b.reps)
        .map(|_| {
            resample(strata, &mut rng, &mut buf);
            stat(&buf)
        })
        .collect();
    percentile_interval(stat(strata), stats, b.size)
}

/// Percentile-bootstrap interval of a statistic of two samples (e.g. [`prob_improvement`]), each resampled
/// independently within its strata (rliable's `StratifiedIndependentBootstrap`).
pub fn bootstrap_two(
    x: &[Vec<f64>],
    y: &[Vec<f64>],
    stat: impl Fn(&[Vec<f64>], &[Vec<f64>]) -> f64,
    b: Bootstrap,
) -> Interval {
    assert!(x.iter().chain(y).all(|s| !s.is_empty()), "bootstrap of an empty stratum");
    let mut rng = ChaCha8Rng::seed_from_u64(b.seed);
    let (mut bx, mut by) = (Vec::new(), Vec::new());
    let stats = (0..b.reps)
        .map(|_| {
            resample(x, &mut rng, &mut bx);
            resample(y, &mut rng, &mut by);
            stat(&bx, &by)
        })
        .collect();
    percentile_interval(stat(x, y), stats, b.size)
}

/// Average probability of improvement of `x` over `y` across strata (tasks), rliable's definition.
pub fn avg_prob_improvement(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    x.iter().zip(y).map(|(a, b)| prob_improvement(a, b)).sum::<f64>() / x.len() as f64
}

/// Bands of a learning curve: `curves[run][point]` (every run evaluated at the same points), and the interval of
/// `stat` over runs at each point (one task). Each point gets its own stream, derived from `b.seed` and the point.
pub fn curve_bands(curves: &[Vec<f64>], stat: impl Fn(&[f64]) -> f64 + Copy, b: Bootstrap) -> Vec<Interval> {
    let points = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..points)
        .map(|p| {
            let column = vec![curves.iter().map(|c| c[p]).collect::<Vec<f64>>()];
            bootstrap(&column, |s| stat(&s[0]), Bootstrap { seed: b.seed ^ ((p as u64 + 1) << 32), ..b })
        })
        .collect()
}
