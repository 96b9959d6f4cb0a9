//! Simulated teachers (module docs of [`crate::preferences`]).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::PreferenceError;
use crate::seeding::ChaCha8Rng;


/// Which preset a [`TeacherConfig`] started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeacherKind {
    /// Bradley–Terry with inverse temperature `beta` (default 1): P(a ≻ b) = σ(β·(R_a − R_b)).
    Bt,
    /// Perfectly rational: the larger true return wins.
    Oracle,
    /// B-Pref "noisy": Boltzmann-rational with β = 1 (the same model as `bt`).
    Noisy,
    /// B-Pref "mistake": rational, answers flipped with probability ε = 0.1.
    Mistake,
    /// B-Pref "myopic": rational on γ^(T−1−t)-weighted rewards, γ = 0.9.
    Myopic,
    /// B-Pref "skip": rational, skips pairs whose larger return is ≤ `skip_threshold` (default 0).
    Skip,
    /// B-Pref "equal": rational, answers 0.5 when |R_a − R_b| < `equal_threshold` (default 1).
    Equal,
}

impl TeacherKind {
    /// Parses `bt`, `oracle`, `noisy`, `mistake`, `myopic`, `skip`, `equal`.
    pub fn parse(s: &str) -> Result<Self, PreferenceError> {
        Ok(match s {
            "bt" => Self::Bt,
            "oracle" => Self::Oracle,
            "noisy" => Self::Noisy,
            "mistake" => Self::Mistake,
            "myopic" => Self::Myopic,
            "skip" => Self::Skip,
            "equal" => Self::Equal,
            _ => {
                return Err(PreferenceError::Teacher(format!(
                    "unknown teacher '{s}': use bt, oracle, noisy, mistake, myopic, skip or equal"
                )))
            }
        })
    }
}

/// A simulated teacher (see the module docs for the order in which the parameters act).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    /// The preset these parameters started from (descriptive; every parameter below is applied).
    pub kind: TeacherKind,
    /// Inverse temperature of the Bradley–Terry/Boltzmann answer, in 1/return units; `None` = perfectly
    /// rational (deterministic). Preset: 1 for `bt` and `noisy`, `None` otherwise.
    #[serde(default)]
    pub beta: Option<f64>,
    /// Probability of flipping the answer (mistake). Preset: 0.1 for `mistake`, 0 otherwise.
    #[serde(default)]
    pub eps: f64,
    /// Myopic discount: step t of a T-step piece weighs γ^(T−1−t). Preset: 0.9 for `myopic`, 1 otherwise.
    #[serde(default = "one")]
    pub gamma: f64,
    /// Skip the pair when max(R_a, R_b) ≤ this (return units). Preset: `Some(0.0)` for `skip` (skip pairs in
    /// which neither piece moves forward on Swimmer), `None` otherwise.
    #[serde(default)]
    pub skip_threshold: Option<f64>,
    /// Answer 0.5 when |R_a − R_b| < this (return units). Preset: `Some(1.0)` for `equal`, `None` otherwise.
    #[serde(default)]
    pub equal_threshold: Option<f64>,
}

fn one() -> f64 {
    1.0
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self::preset(TeacherKind::Oracle)
    }
}

impl TeacherConfig {
    /// The B-Pref preset of `kind` (documented on each field).
    pub fn preset(kind: TeacherKind) -> Self {
        let mut t = TeacherConfig { kind, beta: None, eps: 0.0, gamma: 1.0, skip_threshold: None, equal_threshold: None };
        match kind {
            TeacherKind::Bt | TeacherKind::Noisy => t.beta = Some(1.0),
            TeacherKind::Oracle => {}
            TeacherKind::Mistake => t.eps = 0.1,
            TeacherKind::Myopic => t.gamma = 0.9,
            TeacherKind::Skip => t.skip_threshold = Some(0.0),
            TeacherKind::Equal => t.equal_threshold = Some(1.0),
        }
        t
    }

    /// Checks the ranges: β finite and > 0, ε ∈ [0, 1], γ ∈ (0, 1], thresholds finite (equal ≥ 0).
    pub fn validate(&self) -> Result<(), PreferenceError> {
        let bad = |m: String| Err(PreferenceError::Teacher(m));
        if let Some(b) = self.beta {
            if !(b.is_finite() && b > 0.0) {
                return bad(format!("beta must be finite and > 0 (omit it for a rational teacher), got {b}"));
            }
        }
        if !(0.0..=1.0).contains(&self.eps) {
            return bad(format!("eps must be in [0, 1], got {}", self.eps));
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return bad(format!("gamma must be in (0, 1], got {}", self.gamma));
        }
        if let Some(s) = self.skip_threshold {
            if !s.is_finite() {
                return bad(format!("skip_threshold must be finite, got {s}"));
            }
        }
        if let Some(e) = self.equal_threshold {
            if !(e.is_finite() && e >= 0.0) {
                return bad(format!("equal_threshold must be finite and ≥ 0, got {e}"));
            }
        }
        Ok(())
    }

    /// `Σ_t γ^(T−1−t) r_t` (the plain return when γ = 1).
    pub fn weighted_return(&self, r: &[f64]) -> f64 {
        if self.gamma == 1.0 {
            return r.iter().sum();
        }
        let mut w = 1.0;
        let mut s = 0.0;
        for x in r.iter().rev() {
            s += w * x;
            w *= self.gamma;
        }
        s
    }

    /// Labels a pair from the true per-step rewards of a and b: `Some(1.0)` a preferred, `Some(0.0)` b
    /// preferred, `Some(0.5)` equal, `None` skipped. Draws from `rng` only when needed (β set, ε > 0).
    pub fn label(&self, r_a: &[f64], r_b: &[f64], rng: &mut ChaCha8Rng) -> Option<f32> {
        let (sa, sb): (f64, f64) = (r_a.iter().sum(), r_b.iter().sum());
        if let Some(th) = self.skip_threshold {
            if sa.max(sb) <= th {
                return None;
            }
        }
        let equal = self.equal_threshold.is_some_and(|th| (sa - sb).abs() < th);
        let (wa, wb) = (self.weighted_return(r_a), self.weighted_return(r_b));
        let mut y: f32 = match self.beta {
            None => {
                if wa > wb {
                    1.0
                } else if wa < wb {
                    0.0
                } else {
                    0.5
                }
            }
            Some(beta) => {
                let p = sigmoid(beta * (wa - wb));
                if rng.random::<f64>() < p {
                    1.0
                } else {
                    0.0
                }
            }
        };
        if self.eps > 0.0 && rng.random::<f64>() < self.eps {
            y = 1.0 - y;
        }
        if equal {
            y = 0.5;
        }
        Some(y)
    }
}

/// Logistic function, stable for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
