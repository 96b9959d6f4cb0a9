//! Small helpers shared by the run, the comparison and the command lines.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Mean and population standard deviation (0, 0 for an empty slice).
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    (m, v.sqrt())
}

/// A path from a configuration: as given if it exists (absolute, or relative to the working
/// directory), else relative to the repository this binary was built from, so that the shipped
/// configurations work from any working directory.
pub fn resolve_path(p: &str) -> PathBuf {
    let given = PathBuf::from(p);
    if given.is_absolute() || given.exists() {
        return given;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p);
    if repo.exists() { repo } else { given }
}

/// The process's peak before the last [`PeakWindow::open`] reset the kernel's (KiB).
static PEAK_BEFORE_RESET_KB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Peak resident memory of this process (VmHWM of /proc/self/status, and the peak before any
/// [`PeakWindow`] reset it) in MiB; NaN if unreadable.
pub fn peak_rss_mb() -> f64 {
    let before = PEAK_BEFORE_RESET_KB.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
    let now = proc_status_mb("VmHWM:");
    if before > now { before } else { now }
}

/// Whether training measures its learner phases' memory (environment variable `REBEL_LEARNER_MEMORY=1`;
/// `scripts/bench.sh` and `compare` set it). Off by default, because [`PeakWindow`] resets the kernel's
/// high-water mark, after which outside tools (`/usr/bin/time -v`, `getrusage`) see only the peak since the
/// last reset; [`peak_rss_mb`] still gives the whole process's.
pub fn learner_memory_measured() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("REBEL_LEARNER_MEMORY").is_some_and(|v| v == "1"))
}

/// A window in which the process's peak resident memory is measured on its own: opening it records
/// the peak so far (so [`peak_rss_mb`] still gives the whole process's) and resets the kernel's
/// high-water mark to the current RSS (`/proc/self/clear_refs`, value 5; Linux ≥ 4.0).
pub struct PeakWindow {
    start_mb: f64,
}

impl PeakWindow {
    /// Opens a window; `None` where the kernel does not let this process reset its high-water mark.
    pub fn open() -> Option<PeakWindow> {
        let peak_kb = (proc_status_mb("VmHWM:") * 1024.0) as u64;
        PEAK_BEFORE_RESET_KB.fetch_max(peak_kb, std::sync::atomic::Ordering::Relaxed);
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        let start_mb = current_rss_mb();
        start_mb.is_finite().then_some(PeakWindow { start_mb })
    }

    /// The most the resident memory rose above its level at the opening, in MiB.
    pub fn rise_mb(&self) -> f64 {
        (proc_status_mb("VmHWM:") - self.start_mb).max(0.0)
    }
}

/// How the binary's allocator counts one thread's bytes: `reset` starts a new peak at the bytes the thread holds
/// now, `read` gives the most it held above that since (bytes). Set once, by a binary whose allocator counts
/// ([`set_alloc_peak_probe`]; jemalloc's `thread.peak.reset` and `thread.peak.read` in ours).
#[derive(Clone, Copy)]
pub struct AllocPeakProbe {
    /// Starts a new peak on the calling thread; false where the allocator refuses.
    pub reset: fn() -> bool,
    /// The calling thread's peak since its last reset, bytes; None where unavailable.
    pub read: fn() -> Option<u64>,
}

static ALLOC_PEAK_PROBE: std::sync::OnceLock<AllocPeakProbe> = std::sync::OnceLock::new();

/// Registers the allocator's per-thread byte count for [`AllocWindow`] (the first registration holds).
pub fn set_alloc_peak_probe(probe: AllocPeakProbe) {
    let _ = ALLOC_PEAK_PROBE.set(probe);
}

/// A window in which the bytes the calling thread's allocations hold are measured at their peak, above what they
/// held at its opening: what the code in it allocated and had not freed at the worst moment, whatever the
/// allocator kept from earlier (which a rise of resident memory, [`PeakWindow`], mixes in). Counts the calling
/// thread only: with one libtorch thread (`learner_threads = 1`, the default) every tensor op and the backward pass
/// run on it. Granularity about 64 KiB (jemalloc updates a thread's peak every 64 KiB of allocation).
pub struct AllocWindow {
    probe: AllocPeakProbe,
}

impl AllocWindow {
    /// Opens a window on the calling thread; `None` where no probe is registered or the allocator refuses.
    pub fn open() -> Option<AllocWindow> {
        let probe = *ALLOC_PEAK_PROBE.get()?;
        (probe.reset)().then_some(AllocWindow { probe })
    }

    /// The most the calling thread's allocations held above their level at the opening, in MiB (NaN if unreadable).
    pub fn peak_mb(&self) -> f64 {
        (self.probe.read)().map_or(f64::NAN, |b| b as f64 / (1024.0 * 1024.0))
    }
}

/// Resident memory of this process now (VmRSS) in MiB; NaN if unreadable.
pub fn current_rss_mb() -> f64 {
    proc_status_mb("VmRSS:")
}

fn proc_status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Running mean and variance of vectors (Chan et al. parallel update, as SB3's `RunningMeanStd`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Per-dimension mean.
    pub mean: Vec<f64>,
    /// Per-dimension (population) variance.
    pub var: Vec<f64>,
    /// Number of samples seen (starts at a tiny ε so that the first update dominates).
    pub count: f64,
}

impl RunningMeanStd {
    /// Statistics of `dim`-vectors: mean 0, variance 1, count 1e-4.
    pub fn new(dim: usize) -> Self {
        RunningMeanStd { mean: vec![0.0; dim], var: vec![1.0; dim], count: 1e-4 }
    }

    /// Merges a batch of rows `x [n·dim]` (row-major).
    pub fn update(&mut self, x: &[f64]) {
        self.update_rows(x.chunks(self.mean.len().max(1)));
    }

    /// Merges a batch given as rows of `dim` values (f32 or f64, read as f64), walked twice (the mean, then the
    /// variance about it) and never copied: a batch of observations is read where it lies. The rows of `x.chunks(dim)`
    /// give the bits of [`RunningMeanStd::update`] on `x`.
    pub fn update_rows<'a, T: Copy + Into<f64> + 'a>(&mut self, rows: impl Iterator<Item = &'a [T]> + Clone) {
        let d = self.mean.len();
        let (sums, n) = batch_sums(rows.clone(), d);
        if n == 0 {
            return;
        }
        let bm: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
        let bv = batch_sq_dev(rows, &bm).into_iter().map(|v| v / n as f64).collect::<Vec<_>>();
        self.merge(&bm, &bv, n as f64);
    }

    /// Merges a batch given by its per-dimension mean, population variance and number of rows `n`
    /// (the rows of every rank of a data-parallel run, for example). `n = 0` changes nothing.
    pub fn merge(&mut self, batch_mean: &[f64], batch_var: &[f64], n: f64) {
        if n <= 0.0 {
            return;
        }
        let (na, nb) = (self.count, n);
        let tot = na + nb;
        for j in 0..self.mean.len() {
            let delta = batch_mean[j] - self.mean[j];
            let m2 = self.var[j] * na + batch_var[j] * nb + delta * delta * na * nb / tot;
            self.mean[j] += delta * nb / tot;
            self.var[j] = m2 / tot;
        }
        self.count = tot;
    }
}

/// The per-dimension sums of `rows` (each `d` values) and their number, summed in row order.
pub(crate) fn batch_sums<'a, T: Copy + Into<f64> + 'a>(rows: impl Iterator<Item = &'a [T]>, d: usize) -> (Vec<f64>, usize) {
    let (mut sums, mut n) = (vec![0.0; d], 0usize);
    for r in rows {
        sums.iter_mut().zip(r).for_each(|(s, &v)| *s += v.into());
        n += 1;
    }
    (sums, n)
}

/// The per-dimension sums of squared deviations of `rows` from `mean`, summed in row order.
pub(crate) fn batch_sq_dev<'a, T: Copy + Into<f64> + 'a>(rows: impl Iterator<Item = &'a [T]>, mean: &[f64]) -> Vec<f64> {
    let mut dev = vec![0.0; mean.len()];
    for r in rows {
        dev.iter_mut().zip(r.iter().zip(mean)).for_each(|(d, (&v, m))| *d += (v.into() - m).powi(2));
    }
    dev
}

/// Reads an f64 written by serde_json, where a NaN or infinity was written as `null`: `null` reads as NaN.
pub fn f64_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`f64_or_null`] for a list: each `null` reads as NaN.
pub fn f64s_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}
