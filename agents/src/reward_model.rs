//! A learned reward from preferences (Christiano et al. 2017; rebel.md §4).
//!
//! * **Member**: an MLP `r̂(s, a)` on the concatenation `[obs, act]`, standardised with the mean and standard
//!   deviation of the training steps' inputs (stored); LeakyReLU(0.01) hidden layers (default `[64, 64]`), a
//!   linear scalar output. A piece's score is the sum of its per-step outputs.
//! * **Loss**: Bradley–Terry cross-entropy ([`crate::losses::bradley_terry_loss`]) with an assumed
//!   `eps_random` chance of a random answer (Christiano's 0.1; see [`RewardModelConfig::eps_random`]).
//! * **Ensemble**: `members` MLPs (default 3), each on its own bootstrap resample of the training pairs and its
//!   own initialisation. After training, each member is normalised: its per-step outputs over the training
//!   steps get mean 0 and standard deviation 1 (constants stored), so members are comparable and the
//!   ensemble's per-step reward is the mean of the normalised members.
//! * **Held-out split**: a `holdout` fraction of the pairs (default 0.1, chosen by the seed) is never trained
//!   on; [`TrainReport`] gives the ensemble's accuracy on both parts.
//! * **File**: a rebel-rs checkpoint ([`crate::checkpoint`]: safetensors, atomic, checksummed, validated) with
//!   `algo = "reward_model"`, tensors `rm.member{m}.layer{j}.{weight,bias}`, `rm.input.mean`, `rm.input.std`
//!   (F32 `[obs+act]`), `rm.output.mean`, `rm.output.std` (F64 `[members]`, the member normalisation), and [`RewardModelMeta`] as the checkpoint's `extra` JSON.
//!
//! [`evaluate`] measures any [`Scorer`] on a dataset: agreement with the labels, agreement with the true-return
//! order, and the Spearman rank correlation of piece scores with true piece returns.

use std::path::Path;

use crate::seeding::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::adam::{Adam, AdamConfig};
use crate::seeding::{stream, Domain};
use crate::io::fnv1a_hex;
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointMeta};
use crate::losses::bradley_terry_loss;
use crate::mlp::{Activation, Mlp};
use crate::preferences::PreferenceDataset;
use crate::rollout::{SegmentBatch, SegmentTensors};
use crate::scorer::Scorer;

/// The `algo` field of a reward-model checkpoint.
pub const RM_ALGO: &str = "reward_model";
/// Layout version of [`RewardModelMeta`].
pub const RM_META_VERSION: u32 = 1;
const PREFIX: &str = "rm";
/// Pieces scored per forward pass in evaluation (bounds memory for whole episodes).
const SCORE_CHUNK: usize = 256;

/// Errors of reward-model training, saving, loading and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum RewardModelError {
    /// The checkpoint layer failed (missing, corrupt, truncated, wrong version or shapes).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A rebel-rs checkpoint that holds something else (e.g. a policy).
    #[error("{path} is a rebel-rs checkpoint of `{algo}`, not a reward model: pass a file written by `rm train`")]
    NotARewardModel {
        /// The file.
        path: String,
        /// What it holds.
        algo: String,
    },
    /// Reward-model metadata that is missing or inconsistent.
    #[error("reward model {path} has bad metadata ({reason}): train it again with `rm train`")]
    BadMeta {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An invalid configuration.
    #[error("invalid reward-model configuration: {0}")]
    Config(String),
    /// A dataset that cannot be used with this model.
    #[error("{0}")]
    Data(String),
    /// A libtorch error.
    #[error("libtorch error in the reward model: {0}")]
    Tch(#[from] tch::TchError),
    /// A non-finite loss or gradient while fitting (nothing is written).
    #[error("reward-model training diverged: {0}")]
    Diverged(String),
}

/// Hyperparameters of [`train`]. Stored in the model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardModelConfig {
    /// Hidden widths of each member (LeakyReLU). Default `[64, 64]`.
    pub hidden: Vec<usize>,
    /// Ensemble size. Default 3.
    pub members: usize,
    /// Passes over each member's bootstrap resample. Default 40.
    pub epochs: usize,
    /// Adam learning rate. Default 1e-3.
    pub lr: f64,
    /// Adam L2 weight decay. Default 1e-4.
    pub weight_decay: f64,
    /// Pairs per minibatch. Default 32.
    pub batch: usize,
    /// Fraction of pairs held out (never trained on). Default 0.1.
    pub holdout: f64,
    /// Assumed probability of a random answer in the Bradley–Terry likelihood (Christiano: 0.1). Default 0.1.
    pub eps_random: f64,
    /// Each member trains on a bootstrap resample (with replacement) of the training pairs. Default true.
    pub bootstrap: bool,
    /// Seed of the split, resamples, initialisations and shuffles. Default 0.
    pub seed: u64,
}

impl Default for RewardModelConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            members: 3,
            epochs: 40,
            lr: 1e-3,
            weight_decay: 1e-4,
            batch: 32,
            holdout: 0.1,
            eps_random: 0.1,
            bootstrap: true,
            seed: 0,
        }
    }
}

impl RewardModelConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), RewardModelError> {
        let bad = |m: String| Err(RewardModelError::Config(m));
        if self.members == 0 {
            return bad("members must be ≥ 1".into());
        }
        if self.hidden.contains(&0) {
            return bad(format!("hidden widths must be positive, got {:?}", self.hidden));
        }
        if self.batch == 0 {
            return bad("batch must be ≥ 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be > 0, got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight_decay must be ≥ 0, got {}", self.weight_decay));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return bad(format!("holdout must be in [0, 1), got {}", self.holdout));
        }
        if !(0.0..1.0).contains(&self.eps_random) {
            return bad(format!("eps_random must be in [0, 1), got {}", self.eps_random));
        }
        Ok(())
    }
}

/// The metadata of a reward-model file (the checkpoint's `extra`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardModelMeta {
    /// [`RM_META_VERSION`].
    pub version: u32,
    /// Training configuration (architecture included).
    pub config: RewardModelConfig,
    /// Observation size.
    pub obs_dim: usize,
    /// Action size.
    pub act_dim: usize,
    /// Labels spent on this model: every labelled pair of the dataset, the held-out ones included.
    pub labels_used: u64,
    /// Pairs trained on (the rest were held out).
    pub labels_train: u64,
    /// FNV-1a hash of the training dataset's bytes (`""` if unknown).
    pub dataset_hash: String,
}

/// One MLP (LeakyReLU hidden layers, scalar output).
#[derive(Debug)]
struct Member {
    mlp: Mlp,
}

impl Member {
    fn new(in_dim: usize, hidden: &[usize], rng: &mut ChaCha8Rng, device: Device) -> Self {
        let mut sizes = vec![in_dim];
        sizes.extend(hidden);
        sizes.push(1);
        // PyTorch's nn.Linear default initialisation
        Self { mlp: Mlp::new(&sizes, Activation::LeakyRelu, rng, device) }
    }

    /// `x [..., in] → [...]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.mlp.forward(x).squeeze_dim(-1)
    }

    fn named(&self, m: usize) -> Vec<(String, Tensor)> {
        self.mlp.named_parameters(&format!("member{m}."))
    }

    /// The same member (shared storage: updates through one are seen through the other).
    fn shallow_clone(&self) -> Self {
        Self { mlp: self.mlp.shallow_clone() }
    }
}

/// An ensemble of normalised reward MLPs (module docs). Implements [`Scorer`].
#[derive(Debug)]
pub struct RewardEnsemble {
    meta: RewardModelMeta,
    members: Vec<Member>,
    in_mean: Tensor,
    in_std: Tensor,
    /// Per-member mean of the raw per-step outputs over the training steps `[M]` (Double).
    out_mean: Tensor,
    /// Per-member standard deviation of the raw per-step outputs over the training steps `[M]` (Double).
    out_std: Tensor,
    /// `out_mean`, `out_std` as numbers.
    norm: Vec<(f64, f64)>,
    device: Device,
    /// Scores are mean − pessimism·std over members (not stored in the file; 0 by default).
    pessimism: f64,
}

/// What [`train`] reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Pairs trained on.
    pub train_pairs: usize,
    /// Pairs held out.
    pub holdout_pairs: usize,
    /// Ensemble agreement with the labels on the training pairs (pairs labelled 0.5 excluded).
    pub train_accuracy: f64,
    /// Ensemble agreement with the labels on the held-out pairs (`NaN`-free: 0 pairs gives 0).
    pub holdout_accuracy: f64,
    /// Each member's held-out accuracy (raw outputs).
    pub member_holdout_accuracy: Vec<f64>,
    /// Each member's mean loss over its last epoch.
    pub member_final_loss: Vec<f64>,
    /// Optimiser steps per member.
    pub steps_per_member: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What [`evaluate`] reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Pairs in the dataset.
    pub pairs: usize,
    /// Pairs with a label other than 0.5 (the ones `accuracy` counts).
    pub decisive_pairs: usize,
    /// Agreement of the model's preference (higher piece score) with the labels; a score tie counts ½.
    pub accuracy: f64,
    /// Agreement of the model's preference with the true-return order (pairs with equal true returns excluded).
    pub true_accuracy: f64,
    /// Agreement of the dataset's labels with the true-return order: the teacher's own accuracy, an upper
    /// reference for `accuracy` when the teacher is noisy.
    pub teacher_true_accuracy: f64,
    /// Spearman rank correlation of the model's scores of all pieces (a and b) with their true returns.
    pub spearman: f64,
}

/// Concatenated, input-normalised `[S, L, obs+act]` of padded pieces.
fn inputs(obs: &Tensor, act: &Tensor, mean: &Tensor, std: &Tensor) -> Tensor {
    let x = Tensor::cat(&[obs.to_kind(Kind::Float), act.to_kind(Kind::Float)], -1);
    (x - mean) / std
}

fn accuracy(score_a: &[f64], score_b: &[f64], labels: &[f32], idx: &[usize]) -> f64 {
    let (mut hit, mut n) = (0.0, 0usize);
    for &i in idx {
        let y = labels[i];
        if y == 0.5 {
            continue;
        }
        n += 1;
        let d = score_a[i] - score_b[i];
        hit += if d == 0.0 {
            0.5
        } else if (d > 0.0) == (y > 0.5) {
            1.0
        } else {
            0.0
        };
    }
    if n == 0 {
        0.0
    } else {
        hit / n as f64
    }
}

/// Ranks with ties averaged (1-based).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation (Pearson correlation of tie-averaged ranks); 0 when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "spearman: lengths differ");
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Scores of every piece of `batch` by `scorer`, in chunks: `[S]`.
fn score_batch(scorer: &dyn Scorer, batch: &SegmentBatch) -> Vec<f64> {
    let mut out = Vec::with_capacity(batch.segments.len());
    for chunk in batch.segments.chunks(SCORE_CHUNK) {
        let sub = SegmentBatch {
            obs_dim: batch.obs_dim,
            act_dim: batch.act_dim,
            k: batch.k,
            segments: chunk.to_vec(),
            env_steps: 0,
            episode_returns: Vec::new(),
        };
        let t = sub.to_tensors(Device::Cpu);
        let s = scorer.segment_scores(&t).to_kind(Kind::Double).to_device(Device::Cpu);
        out.extend(Vec::<f64>::try_from(s.view([-1])).expect("scores are a 1-D double tensor"));
    }
    out
}

/// Evaluates `scorer` on `dataset` (see [`EvalReport`]).
pub fn evaluate(scorer: &dyn Scorer, dataset: &PreferenceDataset) -> EvalReport {
    let batch = dataset.segment_batch();
    let scores = score_batch(scorer, &batch);
    let truth: Vec<f64> = batch.true_returns();
    let n = dataset.len();
    let sa: Vec<f64> = (0..n).map(|i| scores[2 * i]).collect();
    let sb: Vec<f64> = (0..n).map(|i| scores[2 * i + 1]).collect();
    let labels = dataset.labels();
    let all: Vec<usize> = (0..n).collect();
    // true-order "labels": 1 when a has the larger true return, 0.5 on exact ties (excluded)
    let true_labels: Vec<f32> = (0..n)
        .map(|i| {
            let d = truth[2 * i] - truth[2 * i + 1];
            if d > 0.0 {
                1.0
            } else if d < 0.0 {
                0.0
            } else {
                0.5
            }
        })
        .collect();
    EvalReport {
        pairs: n,
        decisive_pairs: labels.iter().filter(|&&y| y != 0.5).count(),
        accuracy: accuracy(&sa, &sb, &labels, &all),
        true_accuracy: accuracy(&sa, &sb, &true_labels, &all),
        teacher_true_accuracy: label_vs_truth(&labels, &true_labels),
        spearman: spearman(&scores, &truth),
    }
}

/// Fraction of decisive labels that agree with the decisive true order.
fn label_vs_truth(labels: &[f32], truth: &[f32]) -> f64 {
    let (mut hit, mut n) = (0usize, 0usize);
    for (&y, &t) in labels.iter().zip(truth) {
        if y == 0.5 || t == 0.5 {
            continue;
        }
        n += 1;
        hit += usize::from(y == t);
    }
    if n == 0 {
        0.0
    } else {
        hit as f64 / n as f64
    }
}

/// Padded, input-normalised tensors of all pairs: `(xa [N, T, d], ma [N, T], xb, mb, labels [N])`.
struct PairTensors {
    xa: Tensor,
    ma: Tensor,
    xb: Tensor,
    mb: Tensor,
    y: Tensor,
}

impl PairTensors {
    fn shallow_clone(&self) -> Self {
        let c = |t: &Tensor| t.shallow_clone();
        Self { xa: c(&self.xa), ma: c(&self.ma), xb: c(&self.xb), mb: c(&self.mb), y: c(&self.y) }
    }
}

fn pair_tensors(ds: &PreferenceDataset, mean: &Tensor, std: &Tensor) -> PairTensors {
    let b = ds.segment_batch();
    let t = b.to_tensors(Device::Cpu);
    let x = inputs(&t.obs, &t.act, mean, std);
    let even = Tensor::arange_start_step(0, 2 * ds.len() as i64, 2, (Kind::Int64, Device::Cpu));
    let odd = &even + 1;
    PairTensors {
        xa: x.index_select(0, &even),
        ma: t.mask.index_select(0, &even),
        xb: x.index_select(0, &odd),
        mb: t.mask.index_select(0, &odd),
        y: Tensor::from_slice(&ds.labels()),
    }
}

impl RewardEnsemble {
    /// The metadata (config, dims, normalisation constants, labels used).
    pub fn meta(&self) -> &RewardModelMeta {
        &self.meta
    }

    /// Observation size.
    pub fn obs_dim(&self) -> usize {
        self.meta.obs_dim
    }

    /// Action size.
    pub fn act_dim(&self) -> usize {
        self.meta.act_dim
    }

    /// Per-member `(mean, std)` of the raw per-step outputs over the training steps (the normalisation).
    pub fn member_normalisation(&self) -> &[(f64, f64)] {
        &self.norm
    }

    fn empty(meta: RewardModelMeta, seed: u64) -> Self {
        let d = meta.obs_dim + meta.act_dim;
        let m = meta.config.members;
        let members = (0..m)
            .map(|m| Member::new(d, &meta.config.hidden, &mut stream(seed, Domain::RewardModel, 100 + m as u64), Device::Cpu))
            .collect();
        Self {
            meta,
            members,
            in_mean: Tensor::zeros([d as i64], (Kind::Float, Device::Cpu)),
            in_std: Tensor::ones([d as i64], (Kind::Float, Device::Cpu)),
            out_mean: Tensor::zeros([m as i64], (Kind::Double, Device::Cpu)),
            out_std: Tensor::ones([m as i64], (Kind::Double, Device::Cpu)),
            norm: vec![(0.0, 1.0); m],
            device: Device::Cpu,
            pessimism: 0.0,
        }
    }

    /// Raw per-step outputs of member `m` for normalised inputs `x [..., d]` → `[...]`.
    fn raw(&self, m: usize, x: &Tensor) -> Tensor {
        self.members[m].forward(x)
    }

    /// Ensemble per-step reward for normalised inputs: mean over members of `(raw − mean_m)/std_m`,
    /// minus `pessimism` times their standard deviation (members disagree where the labels did not
    /// reach: a policy pushed there is exploiting the model, not improving). No gradient; in chunks.
    fn ensemble(&self, x: &Tensor) -> Tensor {
        chunked(x, |c| self.ensemble_rows(c))
    }

    fn ensemble_rows(&self, x: &Tensor) -> Tensor {
        let zs: Vec<Tensor> = (0..self.members.len())
            .map(|m| {
                let (mu, sd) = self.norm[m];
                (self.raw(m, x) - mu) / sd
            })
            .collect();
        let z = Tensor::stack(&zs, 0);
        let mean = z.mean_dim([0i64].as_slice(), false, z.kind());
        if self.pessimism > 0.0 && zs.len() > 1 {
            mean - z.std_dim([0i64].as_slice(), false, false) * self.pessimism
        } else {
            mean
        }
    }

    /// Each member's raw segment returns `[M, S]`: sums over the real steps of its unnormalised per-step
    /// outputs, the quantities its Bradley–Terry loss compares (`P_m(a ≻ b) = σ(R_m(a) − R_m(b))`).
    pub fn member_returns(&self, t: &SegmentTensors) -> Tensor {
        tch::no_grad(|| {
            let x = inputs(&t.obs.to_device(self.device), &t.act.to_device(self.device), &self.in_mean, &self.in_std);
            let mask = t.mask.to_device(self.device).to_kind(Kind::Float);
            let rs: Vec<Tensor> = (0..self.members.len()).map(|m| masked_sum(&chunked(&x, |c| self.raw(m, c)), &mask)).collect();
            Tensor::stack(&rs, 0)
        })
    }

    /// Sets the pessimism coefficient `c` of the scores: mean − c·std over members (0: the mean).
    pub fn with_pessimism(mut self, c: f64) -> Self {
        self.pessimism = c.max(0.0);
        self
    }

    /// Names and shapes of [`Self::named_tensors`] for `meta`, computed without building the networks.
    fn shapes(meta: &RewardModelMeta) -> Vec<(String, Vec<usize>)> {
        let d = meta.obs_dim + meta.act_dim;
        let mut sizes = vec![d];
        sizes.extend(&meta.config.hidden);
        sizes.push(1);
        let mut out: Vec<(String, Vec<usize>)> =
            (0..meta.config.members).flat_map(|m| crate::io::mlp_shapes(&format!("member{m}."), &sizes)).collect();
        for name in ["input.mean", "input.std"] {
            out.push((name.into(), vec![d]));
        }
        for name in ["output.mean", "output.std"] {
            out.push((name.into(), vec![meta.config.members]));
        }
        out
    }

    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.members.iter().enumerate().flat_map(|(m, mem)| mem.named(m)).collect();
        out.push(("input.mean".into(), self.in_mean.shallow_clone()));
        out.push(("input.std".into(), self.in_std.shallow_clone()));
        out.push(("output.mean".into(), self.out_mean.shallow_clone()));
        out.push(("output.std".into(), self.out_std.shallow_clone()));
        out
    }

    /// Writes the model as a rebel-rs checkpoint (atomic; see the module docs).
    pub fn save(&self, path: impl AsRef<Path>, env_id: &str) -> Result<(), RewardModelError> {
        let extra = serde_json::to_value(&self.meta)
            .map_err(|e| RewardModelError::Config(format!("metadata does not serialise: {e}")))?;
        let cfg_json = serde_json::to_string(&self.meta.config).unwrap_or_default();
        let mut meta = CheckpointMeta::new(env_id, RM_ALGO, self.meta.config.seed, fnv1a_hex(cfg_json.as_bytes()));
        meta.counters.insert("labels".into(), self.meta.labels_used);
        meta.extra = extra;
        let mut ck = Checkpoint::new(meta);
        ck.add_tensors(PREFIX, &self.named_tensors())?;
        ck.save(path)?;
        Ok(())
    }

    /// Reads and validates a model written by [`RewardEnsemble::save`]; returns it with its env id.
    pub fn load(path: impl AsRef<Path>) -> Result<(Self, String), RewardModelError> {
        let path = path.as_ref();
        Self::from_bytes(&Checkpoint::read_file(path)?, path)
    }

    /// [`RewardEnsemble::load`] of a file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<(Self, String), RewardModelError> {
        let ps = path.display().to_string();
        let ck = Checkpoint::from_bytes(bytes, path)?;
        if ck.meta.algo != RM_ALGO {
            return Err(RewardModelError::NotARewardModel { path: ps, algo: ck.meta.algo.clone() });
        }
        let bad = |reason: String| RewardModelError::BadMeta { path: ps.clone(), reason };
        let meta: RewardModelMeta =
            serde_json::from_value(ck.meta.extra.clone()).map_err(|e| bad(format!("extra does not parse: {e}")))?;
        if meta.version != RM_META_VERSION {
            return Err(bad(format!("metadata version {}, this build reads {RM_META_VERSION}", meta.version)));
        }
        meta.config.validate().map_err(|e| bad(e.to_string()))?;
        if meta.obs_dim == 0 || meta.act_dim == 0 {
            return Err(bad("zero obs_dim or act_dim".into()));
        }
        let env_id = ck.meta.env_id.clone();
        // check the stored tensors against the metadata's sizes before allocating anything from them (issue 16)
        let per_member = 2 * (meta.config.hidden.len() + 1);
        let stored = ck.tensor_names().iter().filter(|n| n.starts_with(&format!("{PREFIX}."))).count();
        if meta.config.members.checked_mul(per_member).and_then(|x| x.checked_add(4)) != Some(stored) {
            return Err(RewardModelError::Checkpoint(CheckpointError::Architecture {
                path: path.to_path_buf(),
                reason: format!(
                    "{} members of {} layers need {} tensors under `{PREFIX}`, the file has {stored}",
                    meta.config.members,
                    meta.config.hidden.len() + 1,
                    meta.config.members.saturating_mul(per_member).saturating_add(4)
                ),
            }));
        }
        ck.expect_shapes(PREFIX, &Self::shapes(&meta))?;
        let mut model = Self::empty(meta, 0);
        ck.restore_tensors(PREFIX, &model.named_tensors())?;
        let in_std = Vec::<f32>::try_from(&model.in_std).map_err(RewardModelError::Tch)?;
        let in_mean = Vec::<f32>::try_from(&model.in_mean).map_err(RewardModelError::Tch)?;
        if !in_std.iter().all(|s| s.is_finite() && *s > 0.0) || !in_mean.iter().all(|x| x.is_finite()) {
            return Err(bad("input mean/std has a non-finite or non-positive entry".into()));
        }
        let mu = Vec::<f64>::try_from(&model.out_mean).map_err(RewardModelError::Tch)?;
        let sd = Vec::<f64>::try_from(&model.out_std).map_err(RewardModelError::Tch)?;
        if !mu.iter().all(|x| x.is_finite()) || !sd.iter().all(|x| x.is_finite() && *x > 0.0) {
            return Err(bad("non-finite output normalisation constants or a non-positive std".into()));
        }
        model.norm = mu.into_iter().zip(sd).collect();
        Ok((model, env_id))
    }
}

impl Scorer for RewardEnsemble {
    /// `[S, L]`: mean of the normalised members' per-step outputs, on the device of `t.obs`.
    fn step_scores(&self, t: &SegmentTensors) -> Tensor {
        tch::no_grad(|| {
            let dev = t.obs.device();
            let x = inputs(&t.obs.to_device(self.device), &t.act.to_device(self.device), &self.in_mean, &self.in_std);
            self.ensemble(&x).to_device(dev)
        })
    }

    fn labels_used(&self) -> u64 {
        self.meta.labels_used
    }
}

/// Pieces per forward pass outside training. A whole dataset at once (1,000 pairs of 50 steps through 64-wide
/// layers) allocated ~60 MB of activations, the default run's peak memory (253 MiB against 175 during REBEL);
/// libtorch's CPU kernels give every row the same bits in a chunk as in the whole batch.
const EVAL_CHUNK: i64 = 64;

/// `f` over `x` in chunks of [`EVAL_CHUNK`] along the first dimension, concatenated (no gradient needed).
fn chunked(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    if x.size().first().is_none_or(|&n| n <= EVAL_CHUNK) {
        return f(x);
    }
    let parts: Vec<Tensor> = x.split(EVAL_CHUNK, 0).iter().map(f).collect();
    Tensor::cat(&parts, 0)
}

/// Masked sum of per-step scores: `[B, T] × [B, T] → [B]`.
fn masked_sum(r: &Tensor, mask: &Tensor) -> Tensor {
    (r * mask).sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
}

/// Trains an ensemble on `dataset` (module docs). Deterministic for a config seed (with a fixed thread count).
pub fn train(dataset: &PreferenceDataset, cfg: &RewardModelConfig) -> Result<(RewardEnsemble, TrainReport), RewardModelError> {
    let start = std::time::Instant::now();
    cfg.validate()?;
    dataset.validate().map_err(|e| RewardModelError::Data(format!("unusable dataset: {e}")))?;
    let n = dataset.len();
    let n_hold = ((n as f64) * cfg.holdout).round() as usize;
    let n_hold = n_hold.min(n.saturating_sub(1));
    if n - n_hold == 0 {
        return Err(RewardModelError::Data("the dataset has no pair to train on".into()));
    }
    let mut split_rng = stream(cfg.seed, Domain::RewardModel, 1);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut split_rng);
    let hold: Vec<usize> = order[..n_hold].to_vec();
    let train_idx: Vec<usize> = order[n_hold..].to_vec();

    let (od, ad) = (dataset.meta.obs_dim, dataset.meta.act_dim);
    let (mean, std) = input_normalisation(dataset, &train_idx);
    let meta = RewardModelMeta {
        version: RM_META_VERSION,
        config: cfg.clone(),
        obs_dim: od,
        act_dim: ad,
        labels_used: n as u64,
        labels_train: train_idx.len() as u64,
        dataset_hash: String::new(),
    };
    let mut model = RewardEnsemble::empty(meta, cfg.seed);
    model.in_mean = Tensor::from_slice(&mean);
    model.in_std = Tensor::from_slice(&std);
    let pt = pair_tensors(dataset, &model.in_mean, &model.in_std);

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (final_loss, steps) = fit_members(&model, &pt, &train_idx, cfg, threads)?;
    // per-member normalisation over the training steps, and accuracies
    let labels = dataset.labels();
    let member_hold = normalise_members(&mut model, &pt, &train_idx, &hold, &labels);
    let (sa, sb) = tch::no_grad(|| {
        let a = Vec::<f64>::try_from(masked_sum(&model.ensemble(&pt.xa), &pt.ma).to_kind(Kind::Double)).expect("scores");
        let b = Vec::<f64>::try_from(masked_sum(&model.ensemble(&pt.xb), &pt.mb).to_kind(Kind::Double)).expect("scores");
        (a, b)
    });
    let report = TrainReport {
        train_pairs: train_idx.len(),
        holdout_pairs: hold.len(),
        train_accuracy: accuracy(&sa, &sb, &labels, &train_idx),
        holdout_accuracy: accuracy(&sa, &sb, &labels, &hold),
        member_holdout_accuracy: member_hold,
        member_final_loss: final_loss,
        steps_per_member: steps,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((model, report))
}

/// Per-input mean and standard deviation (floored at 1e-3) over every step of the training pairs.
fn input_normalisation(dataset: &PreferenceDataset, train_idx: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let (od, ad) = (dataset.meta.obs_dim, dataset.meta.act_dim);
    let d = od + ad;
    let mut sum = vec![0f64; d];
    let mut sq = vec![0f64; d];
    let mut count = 0f64;
    for &i in train_idx {
        let p = &dataset.pairs[i];
        for s in [&p.a, &p.b] {
            for t in 0..s.len() {
                for (j, v) in s.obs[t * od..(t + 1) * od].iter().chain(&s.act[t * ad..(t + 1) * ad]).enumerate() {
                    sum[j] += *v as f64;
                    sq[j] += (*v as f64) * (*v as f64);
                }
                count += 1.0;
            }
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / count) as f32).collect();
    let std: Vec<f32> =
        sum.iter().zip(&sq).map(|(s, q)| ((q / count - (s / count).powi(2)).max(0.0).sqrt().max(1e-3)) as f32).collect();

    (mean, std)
}

/// Fits every member on its own bootstrap resample of the training pairs with its own random stream, so a member's
/// result depends on nothing the others do: the members train concurrently on up to `threads` threads (each op on
/// libtorch's one intra-op thread) and end with the bits they end with one after another
/// (`members_fit_alike_on_any_number_of_threads`). Returns each member's last-epoch loss and the steps per member.
fn fit_members(
    model: &RewardEnsemble,
    pt: &PairTensors,
    train_idx: &[usize],
    cfg: &RewardModelConfig,
    threads: usize,
) -> Result<(Vec<f64>, u64), RewardModelError> {
    // Tensor is Send but not Sync: each thread gets its own handles (shared storage) to its members' nets and the data;
    // thread t fits members t, t + threads, ...
    let n = model.members.len();
    let threads = threads.clamp(1, n.max(1));
    // libtorch's thread count is process state (MKL's is global) that an earlier learner phase may have raised:
    // a member's bits must not depend on what ran before (a resumed experiment trains a round's net before any
    // REBEL phase, the uninterrupted one after one; with MKL's AVX-512 kernels the two counts differ in the last bits)
    tch::set_num_threads(1);
    let mut fits: Vec<Option<Result<(f64, u64), RewardModelError>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let jobs: Vec<(usize, Member, PairTensors)> =
                    (t..n).step_by(threads).map(|m| (m, model.members[m].shallow_clone(), pt.shallow_clone())).collect();
                scope.spawn(move || jobs.into_iter().map(|(m, member, pt)| (m, fit_member(m, &member, &pt, train_idx, cfg))).collect::<Vec<_>>())
            })
            .collect();
        for h in handles {
            for (m, fit) in h.join().expect("a reward-net member's thread panicked") {
                fits[m] = Some(fit);
            }
        }
    });
    let mut final_loss = Vec::with_capacity(n);
    let mut steps = 0;
    for fit in fits {
        let (loss, k) = fit.expect("every member was fitted")?;
        final_loss.push(loss);
        steps = k;
    }
    Ok((final_loss, steps))
}

/// Member `m`'s Adam epochs over its bootstrap resample; its last epoch's mean loss and its steps.
fn fit_member(
    m: usize,
    member: &Member,
    pt: &PairTensors,
    train_idx: &[usize],
    cfg: &RewardModelConfig,
) -> Result<(f64, u64), RewardModelError> {
    let mut rng = stream(cfg.seed, Domain::RewardModel, 200 + m as u64);
    let mut idx: Vec<usize> = if cfg.bootstrap {
        (0..train_idx.len()).map(|_| train_idx[rng.random_range(0..train_idx.len())]).collect()
    } else {
        train_idx.to_vec()
    };
    let mut opt = Adam::new(member.named(m), AdamConfig { lr: cfg.lr, weight_decay: cfg.weight_decay, ..AdamConfig::default() });
    let (mut last, mut steps) = (0.0, 0u64);
    for epoch in 0..cfg.epochs {
        idx.shuffle(&mut rng);
        let (mut tot, mut nb) = (0.0, 0usize);
        for chunk in idx.chunks(cfg.batch) {
            let bi = Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>());
            let sa = masked_sum(&member.forward(&pt.xa.index_select(0, &bi)), &pt.ma.index_select(0, &bi));
            let sb = masked_sum(&member.forward(&pt.xb.index_select(0, &bi)), &pt.mb.index_select(0, &bi));
            let loss = bradley_terry_loss(&sa, &sb, &pt.y.index_select(0, &bi), cfg.eps_random);
            let (lv, _) =
                opt.minimize(&loss, 0.0, &format!("Bradley-Terry (member {m})"), epoch).map_err(RewardModelError::Diverged)?;
            tot += lv;
            nb += 1;
            steps += 1;
        }
        last = tot / nb.max(1) as f64;
    }
    Ok((last, steps))
}

/// Sets each member's output normalisation over the training steps; returns each member's held-out accuracy.
fn normalise_members(model: &mut RewardEnsemble, pt: &PairTensors, train_idx: &[usize], hold: &[usize], labels: &[f32]) -> Vec<f64> {
    let cfg_members = model.members.len();
    let tr_t = Tensor::from_slice(&train_idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let mut member_hold = Vec::with_capacity(cfg_members);
    tch::no_grad(|| {
        for m in 0..cfg_members {
            let raw = |model: &RewardEnsemble, x: &Tensor| chunked(x, |c| model.raw(m, c));
            let ra = raw(model, &pt.xa.index_select(0, &tr_t));
            let rb = raw(model, &pt.xb.index_select(0, &tr_t));
            let vals = Tensor::cat(
                &[ra.masked_select(&pt.ma.index_select(0, &tr_t).gt(0.5)), rb.masked_select(&pt.mb.index_select(0, &tr_t).gt(0.5))],
                0,
            )
            .to_kind(Kind::Double);
            let mu = vals.mean(Kind::Double).double_value(&[]);
            let sd = vals.std(true).double_value(&[]);
            model.norm[m] = (mu, if sd.is_finite() && sd > 1e-8 { sd } else { 1.0 });
            let sa = Vec::<f64>::try_from(masked_sum(&raw(model, &pt.xa), &pt.ma).to_kind(Kind::Double)).expect("scores");
            let sb = Vec::<f64>::try_from(masked_sum(&raw(model, &pt.xb), &pt.mb).to_kind(Kind::Double)).expect("scores");
            member_hold.push(accuracy(&sa, &sb, labels, hold));
        }
    });
    model.out_mean = Tensor::from_slice(&model.norm.iter().map(|n| n.0).collect::<Vec<_>>());
    model.out_std = Tensor::from_slice(&model.norm.iter().map(|n| n.1).collect::<Vec<_>>());
    member_hold
}

/// Sets the dataset hash recorded in the model's metadata (e.g. FNV-1a of the dataset file's bytes).
pub fn set_dataset_hash(model: &mut RewardEnsemble, hash: String) {
    model.meta.dataset_hash = hash;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reward net's metadata for `cfg` with `(obs_dim, act_dim)`, and `pairs` random pairs of `steps` full steps
    /// with random labels, drawn from libtorch's generator seeded with `seed`.
    fn random_fit_data(
        cfg: &RewardModelConfig,
        (obs_dim, act_dim): (usize, usize),
        pairs: i64,
        steps: i64,
        seed: i64,
    ) -> (RewardModelMeta, PairTensors) {
        let meta = RewardModelMeta {
            version: RM_META_VERSION,
            config: cfg.clone(),
            obs_dim,
            act_dim,
            labels_used: 0,
            labels_train: 0,
            dataset_hash: String::new(),
        };
        tch::manual_seed(seed);
        let x = || Tensor::randn([pairs, steps, (obs_dim + act_dim) as i64], (Kind::Float, Device::Cpu));
        let pt = PairTensors {
            xa: x(),
            ma: Tensor::ones([pairs, steps], (Kind::Float, Device::Cpu)),
            xb: x(),
            mb: Tensor::ones([pairs, steps], (Kind::Float, Device::Cpu)),
            y: Tensor::rand([pairs], (Kind::Float, Device::Cpu)).round(),
        };
        (meta, pt)
    }

    /// Members trained concurrently end with the bits they end with one after another.
    #[test]
    fn members_fit_alike_on_any_number_of_threads() {
        tch::set_num_threads(1);
        let cfg = RewardModelConfig { hidden: vec![16], epochs: 3, batch: 8, ..RewardModelConfig::default() };
        let (meta, pt) = random_fit_data(&cfg, (3, 1), 40, 5, 7);
        let train_idx: Vec<usize> = (0..30).collect();
        let fit = |threads| {
            let model = RewardEnsemble::empty(meta.clone(), 5);
            let r = fit_members(&model, &pt, &train_idx, &cfg, threads).unwrap();
            (model, r)
        };
        let (one, r1) = fit(1);
        let (three, r3) = fit(3);
        assert_eq!(r1, r3);
        assert_eq!(r1.0.len(), cfg.members);
        let a = one.named_tensors();
        let initial = RewardEnsemble::empty(meta.clone(), 5).named_tensors();
        for (((name, t1), (_, t3)), (_, t0)) in a.iter().zip(three.named_tensors()).zip(initial) {
            assert!(t1.equal(&t3), "{name} differs between 1 and 3 threads");
            if name.starts_with("member") {
                assert!(!t1.equal(&t0), "{name} was trained");
            }
        }
    }

    /// A member's bits do not depend on the thread count an earlier phase left libtorch with (a resumed
    /// experiment fits a round's net before any learner phase raised it, the uninterrupted one after).
    #[test]
    fn members_fit_alike_whatever_thread_count_came_before() {
        let cfg = RewardModelConfig { hidden: vec![64, 64], epochs: 2, batch: 16, ..RewardModelConfig::default() };
        let (meta, pt) = random_fit_data(&cfg, (8, 2), 48, 100, 11);
        let train_idx: Vec<usize> = (0..48).collect();
        let fit = |before: i32| {
            tch::set_num_threads(before);
            let model = RewardEnsemble::empty(meta.clone(), 5);
            let r = fit_members(&model, &pt, &train_idx, &cfg, 1).unwrap();
            (model, r)
        };
        let ((one, r1), (two, r2)) = (fit(1), fit(2));
        assert_eq!(r1, r2);
        for ((name, t1), (_, t2)) in one.named_tensors().iter().zip(two.named_tensors()) {
            assert!(t1.equal(&t2), "{name} differs after 1 and 2 libtorch threads");
        }
    }

    /// Scoring in chunks (to bound the memory of scoring a whole dataset) gives every piece the bits of one pass.
    #[test]
    fn chunked_scores_equal_one_pass() {
        let meta = RewardModelMeta {
            version: RM_META_VERSION,
            config: RewardModelConfig::default(),
            obs_dim: 8,
            act_dim: 2,
            labels_used: 0,
            labels_train: 0,
            dataset_hash: String::new(),
        };
        let mut model = RewardEnsemble::empty(meta, 3);
        model.norm = vec![(0.1, 2.0), (-0.3, 0.5), (0.0, 1.0)];
        model.pessimism = 1.0;
        let x = Tensor::randn([3 * EVAL_CHUNK + 5, 50, 10], (Kind::Float, Device::Cpu));
        tch::no_grad(|| {
            let whole = model.ensemble_rows(&x);
            assert_eq!(model.ensemble(&x), whole, "the ensemble in chunks");
            assert_eq!(chunked(&x, |c| model.raw(1, c)), model.raw(1, &x), "a member in chunks");
            let small = x.narrow(0, 0, 7);
            assert_eq!(model.ensemble(&small), model.ensemble_rows(&small));
        });
    }
}
