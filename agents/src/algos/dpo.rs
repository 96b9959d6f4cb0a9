//! DPO (Rafailov et al. 2023) on trajectory pieces, rebel.md §4: offline against a fixed reference
//! policy on a preference dataset, with the logistic or the square loss, and iterative DPO, which
//! labels fresh pairs of the current policy each round.
//!
//! Read top to bottom: a labelled pair becomes (winner, loser) (ties, label 0.5, are left out); the
//! reference's log-probabilities `ln π_ref(τ)` (sums over the piece's steps) are computed ONCE per
//! dataset; then `epochs` passes of shuffled minibatches of
//! `−ln σ(β·h)` (logistic) or `(β·h − z)²` (square), `h = ln π_θ(τ_w)/π_ref(τ_w) − ln π_θ(τ_l)/π_ref(τ_l)`.
//! Course defaults (Cornell CS 4/5789 PA4): β = 1e-2, lr 1e-4, 6 epochs per iteration, batch 16.
//!
//! The dynamics cancel in every ratio (rebel.md §2), so the pieces need no shared start state.

use crate::seeding::ChaCha8Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::adam::Adam;
use crate::algorithm::{AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use crate::checkpoint::Checkpoint;
use crate::losses::{dpo_logistic_loss, dpo_square_loss};
use crate::policy::GaussianPolicy;
use crate::preferences::PreferenceDataset;
use crate::rollout::{segment_log_prob, SegmentTensors};
use rebel_dist::{share, Collective, SingleProcess};

use super::{global_sum, minibatches_sized};

/// DPO's loss on the margin `h` of log-ratios.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpoLoss {
    /// `−ln σ(β·h)`.
    #[default]
    Logistic,
    /// `(β·h − z)²`.
    Square,
}

/// Iterative DPO's reference policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpoReference {
    /// The policy at the start of each round.
    #[default]
    Round,
    /// The run's initial policy.
    Fixed,
}

/// DPO's hyperparameters (`--set dpo.KEY=V`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpoConfig {
    /// Preference dataset file (`prefs collect`); the offline data, and for iterative DPO the source
    /// of the teacher and piece settings. Required.
    pub dataset: String,
    /// "logistic" (−ln σ(β·h)) or "square" ((β·h − z)²). Default "logistic".
    pub loss: DpoLoss,
    /// β. Default 1e-2.
    pub beta: f64,
    /// z, the target of the square loss. Default 1.0.
    pub square_target: f64,
    /// Adam learning rate. Default 1e-4.
    pub lr: f64,
    /// Passes over the data per iteration. Default 6.
    pub epochs: usize,
    /// Pairs per minibatch. Default 16.
    pub batch: usize,
    /// Clip the gradient norm to this (0: off). Default 0.
    pub max_grad_norm: f64,
    /// Iterations (rounds). Default 10.
    pub iterations: usize,
    /// Iterative DPO: each iteration labels `labels_per_round` fresh pairs of the current policy with
    /// the dataset's teacher (same piece length and start-state rule) and trains on those only.
    /// Default false.
    pub iterative: bool,
    /// Fresh labels per round of iterative DPO. Default 100.
    pub labels_per_round: usize,
    /// Iterative DPO's reference: "round" (the policy at the start of each round) or "fixed" (the
    /// initial policy). Default "round".
    pub reference: DpoReference,
    /// Environments used to collect the pairs of iterative DPO (even). Default 16.
    pub collect_envs: usize,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig {
            dataset: String::new(),
            loss: DpoLoss::Logistic,
            beta: 1e-2,
            square_target: 1.0,
            lr: 1e-4,
            epochs: 6,
            batch: 16,
            max_grad_norm: 0.0,
            iterations: 10,
            iterative: false,
            labels_per_round: 100,
            reference: DpoReference::Round,
            collect_envs: 16,
        }
    }
}

impl AlgoConfig for DpoConfig {
    const NAME: &'static str = "dpo";

    fn build(&self, init: &Init) -> Result<Box<dyn Algorithm>, String> {
        Dpo::new(self, init).map(|d| Box::new(d) as Box<dyn Algorithm>)
    }

    fn validate(&self) -> Result<(), String> {
        if self.dataset.is_empty() {
            return Err("dpo.dataset must name a preference dataset file (write one with `prefs collect`)".into());
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(self.beta) || !positive(self.lr) {
            return Err("dpo.beta and dpo.lr must be > 0".into());
        }
        if self.epochs == 0 || self.batch == 0 || self.iterations == 0 {
            return Err("dpo.epochs, dpo.batch and dpo.iterations must be ≥ 1".into());
        }
        if self.iterative && (self.labels_per_round == 0 || self.collect_envs < 2 || !self.collect_envs.is_multiple_of(2)) {
            return Err("iterative DPO needs dpo.labels_per_round ≥ 1 and an even dpo.collect_envs ≥ 2".into());
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm < 0.0 {
            return Err("dpo.max_grad_norm must be ≥ 0".into());
        }
        Ok(())
    }
}

/// A dataset as (winner, loser) tensors with the reference's log-probabilities.
pub struct DpoData {
    /// Winners `[P, L, ·]`.
    pub w: SegmentTensors,
    /// Losers `[P, L, ·]`.
    pub l: SegmentTensors,
    /// `ln π_ref(τ_w)`, `ln π_ref(τ_l)`: `[P]` each, fixed.
    pub ref_w: Tensor,
    pub ref_l: Tensor,
}

impl DpoData {
    /// Orders each pair of `ds` as (winner, loser), drops ties, and computes the reference's
    /// log-probabilities once. `None` when no pair has a strict preference.
    pub fn new(ds: &PreferenceDataset, reference: &GaussianPolicy, device: Device) -> Option<DpoData> {
        let (mut wi, mut li) = (Vec::new(), Vec::new());
        for (i, p) in ds.pairs.iter().enumerate() {
            let (a, b) = (2 * i as i64, 2 * i as i64 + 1);
            if p.label > 0.5 {
                wi.push(a);
                li.push(b);
            } else if p.label < 0.5 {
                wi.push(b);
                li.push(a);
            }
        }
        if wi.is_empty() {
            return None;
        }
        let all = ds.segment_batch().to_tensors(device);
        let w = all.select(&Tensor::from_slice(&wi).to_device(device));
        let l = all.select(&Tensor::from_slice(&li).to_device(device));
        let (ref_w, ref_l) = tch::no_grad(|| (segment_log_prob(reference, &w), segment_log_prob(reference, &l)));
        Some(DpoData { w, l, ref_w, ref_l })
    }

    /// Number of (winner, loser) pairs.
    pub fn len(&self) -> usize {
        self.ref_w.size()[0] as usize
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rank `rank` of `ranks`' share: pairs `rank, rank + ranks, …` (`None` when that is none).
    pub fn shard(&self, rank: usize, ranks: usize) -> Option<DpoData> {
        let idx: Vec<i64> = share(self.len(), rank, ranks).map(|i| i as i64).collect();
        if idx.is_empty() {
            return None;
        }
        let idx = Tensor::from_slice(&idx).to_device(self.ref_w.device());
        Some(DpoData { w: self.w.select(&idx), l: self.l.select(&idx), ref_w: self.ref_w.index_select(0, &idx), ref_l: self.ref_l.index_select(0, &idx) })
    }
}

/// What one update did (all logged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DpoStats {
    /// Mean loss over the minibatches of the last pass.
    pub loss: f64,
    /// Fraction of pairs with a positive margin h after the update.
    pub accuracy: f64,
    /// Mean margin h after the update.
    pub margin: f64,
    /// Mean `ln π_θ/π_ref` of winners and of losers after the update.
    pub logratio_w: f64,
    pub logratio_l: f64,
    /// Policy entropy after the update.
    pub entropy: f64,
    /// Mean gradient norm (before clipping).
    pub grad_norm: f64,
}

/// The configured loss on log-probabilities `[B]` ×4.
pub fn dpo_loss(cfg: &DpoConfig, lp_w: &Tensor, lp_l: &Tensor, ref_w: &Tensor, ref_l: &Tensor) -> Tensor {
    match cfg.loss {
        DpoLoss::Square => dpo_square_loss(lp_w, lp_l, ref_w, ref_l, cfg.beta, cfg.square_target),
        DpoLoss::Logistic => dpo_logistic_loss(lp_w, lp_l, ref_w, ref_l, cfg.beta),
    }
}

/// One DPO iteration: `cfg.epochs` passes of shuffled minibatches over `data`.
pub fn update(policy: &GaussianPolicy, adam: &mut Adam, data: &DpoData, cfg: &DpoConfig, rng: &mut ChaCha8Rng) -> Result<DpoStats, String> {
    update_shared(policy, adam, Some(data), cfg, rng, &SingleProcess)
}

/// [`update`] on this rank's pairs (`None`: it holds none) of data spread over the ranks of `world` (data-parallel
/// training): every minibatch's gradient is averaged over the ranks, weighted by their pairs in it, so that every
/// rank takes the same steps; each rank shuffles its own pairs, and the minibatches interleave the ranks' pairs,
/// one process's `⌈P/batch⌉` of `batch` pairs each (with one minibatch per epoch: one process's update on all
/// pairs). The statistics are over all ranks' pairs.
pub fn update_shared(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    data: Option<&DpoData>,
    cfg: &DpoConfig,
    rng: &mut ChaCha8Rng,
    world: &dyn Collective,
) -> Result<DpoStats, String> {
    let mut order: Vec<i64> = (0..data.map_or(0, DpoData::len) as i64).collect();
    let (mut loss_sum, mut loss_n, mut gn_sum, mut gn_n) = (0.0, 0usize, 0.0, 0usize);
    for epoch in 0..cfg.epochs {
        order.shuffle(rng);
        for chunk in minibatches_sized(world, &order, cfg.batch)? {
            let loss = data.filter(|_| !chunk.is_empty()).map(|data| {
                let idx = Tensor::from_slice(&chunk).to_device(data.ref_w.device());
                let lp_w = segment_log_prob(policy, &data.w.select(&idx));
                let lp_l = segment_log_prob(policy, &data.l.select(&idx));
                dpo_loss(cfg, &lp_w, &lp_l, &data.ref_w.index_select(0, &idx), &data.ref_l.index_select(0, &idx))
            });
            let (lv, gn) = adam.minimize_shared(world, loss.as_ref(), chunk.len(), cfg.max_grad_norm, "DPO", epoch)?;
            gn_sum += gn;
            gn_n += 1;
            if epoch + 1 == cfg.epochs {
                loss_sum += lv;
                loss_n += 1;
            }
        }
    }
    let [accuracy, margin, logratio_w, logratio_l] = margins(policy, data, world)?;
    Ok(DpoStats {
        loss: loss_sum / loss_n.max(1) as f64,
        accuracy,
        margin,
        logratio_w,
        logratio_l,
        entropy: f64::try_from(policy.entropy()).unwrap_or(f64::NAN),
        grad_norm: gn_sum / gn_n.max(1) as f64,
    })
}

/// Over the pairs of every rank: the fraction with a positive margin h, the mean margin, and the mean log-ratios
/// `ln π_θ/π_ref` of winners and of losers.
fn margins(policy: &GaussianPolicy, data: Option<&DpoData>, world: &dyn Collective) -> Result<[f64; 4], String> {
    let f = |t: Tensor| f64::try_from(t).unwrap_or(f64::NAN);
    let local = tch::no_grad(|| {
        data.map(|data| {
            let rw = segment_log_prob(policy, &data.w) - &data.ref_w;
            let rl = segment_log_prob(policy, &data.l) - &data.ref_l;
            let h = &rw - &rl;
            [f(h.gt(0.0).to_kind(Kind::Float).mean(Kind::Float)), f(h.mean(Kind::Float)), f(rw.mean(Kind::Float)), f(rl.mean(Kind::Float))]
        })
    });
    if world.size() == 1 {
        return Ok(local.unwrap_or([f64::NAN; 4]));
    }
    // the ranks' means weighted by their pairs
    let n = data.map_or(0, DpoData::len) as f64;
    let mut sums: Vec<f64> = local.map_or([0.0; 4], |m| m.map(|x| x * n)).to_vec();
    sums.push(n);
    let sums = global_sum(world, &sums)?;
    let total = sums[4].max(1.0);
    Ok([sums[0] / total, sums[1] / total, sums[2] / total, sums[3] / total])
}

/// The DPO learner. `data`: the offline dataset as tensors (None for iterative DPO, which labels
/// fresh pairs each round); `initial`: the policy the run started from (the fixed reference);
/// `labels`: labels spent (checkpointed).
struct Dpo {
    cfg: DpoConfig,
    data: Option<DpoData>,
    /// The pairs this rank trains on when they are not `data`: iterative DPO's round, or offline DPO's share of
    /// `data` on the ranks of a data-parallel run (made at the first update); `Some(None)`: none.
    local: Option<Option<DpoData>>,
    dataset: PreferenceDataset,
    initial: GaussianPolicy,
    labels: u64,
}

impl Dpo {
    fn new(cfg: &DpoConfig, init: &Init) -> Result<Dpo, String> {
        let path = crate::util::resolve_path(&cfg.dataset);
        let dataset = PreferenceDataset::load(&path).map_err(|e| format!("dpo.dataset: {e}"))?;
        if dataset.meta.obs_dim != init.obs_dim || dataset.meta.env_id != init.env_id {
            return Err(format!(
                "dpo.dataset {} holds {} pieces with {} obs, not {} with {}",
                path.display(), dataset.meta.env_id, dataset.meta.obs_dim, init.env_id, init.obs_dim
            ));
        }
        let initial = init.initial.try_clone().map_err(|e| e.to_string())?;
        let (data, labels) = if cfg.iterative {
            (None, 0)
        } else {
            let d = DpoData::new(&dataset, &initial, init.device)
                .ok_or_else(|| format!("dpo.dataset {} has no strict preference", path.display()))?;
            (Some(d), dataset.len() as u64)
        };
        Ok(Dpo { cfg: cfg.clone(), data, local: None, dataset, initial, labels })
    }

    /// Iterative DPO's round: fresh pairs of the current policy labelled by the dataset's teacher
    /// (`None` when no pair has a strict preference). On the ranks of a data-parallel run, each rank labels its
    /// share of `labels_per_round` from start states of its own (rank 0's are one process's).
    fn round_data(&mut self, ctx: &mut Ctx, up: &mut Update) -> Result<Option<DpoData>, AlgoError> {
        let t_collect = std::time::Instant::now();
        let (rank, ranks) = (ctx.world.rank(), ctx.world.size());
        let n_labels = share(self.cfg.labels_per_round, rank, ranks).count();
        if n_labels == 0 {
            return Ok(None);
        }
        let m = &self.dataset.meta;
        let ccfg = crate::preferences::CollectConfig {
            n_labels,
            segment_len: m.segment_len,
            same_start: m.same_start,
            seed: crate::seeding::train_env_seed(ctx.seed, ctx.iteration, u64::MAX - rank as u64),
        };
        let src = crate::preferences::PolicySource { path: format!("iteration:{}", ctx.iteration), hash: String::new() };
        let ds = crate::preferences::collect_preferences(ctx.venv, ctx.policy, src, &ccfg, &m.teacher)
            .map_err(|e| AlgoError::Failed(format!("iterative DPO, round {}: {e}", ctx.iteration)))?;
        up.collect_s = t_collect.elapsed().as_secs_f64();
        // every env step simulated to make the round's pieces (trunks, skipped and cut-off pieces included)
        up.env_steps = ds.meta.simulated_env_steps;
        up.segment_true = ds.pairs.iter().flat_map(|p| [p.a.true_return(), p.b.true_return()]).collect();
        let reference = match self.cfg.reference {
            DpoReference::Fixed => &self.initial,
            DpoReference::Round => ctx.policy,
        };
        Ok(DpoData::new(&ds, reference, ctx.device))
    }

    /// Makes this rank's pairs for the update: a fresh round (iterative DPO) or, on the ranks of a data-parallel
    /// run, its share of the dataset. Every rank learns whether any rank failed (none is left alone in the
    /// update's collectives) and how many labels the round spent on all ranks; `false` on every rank when no
    /// rank has a strict preference.
    fn prepare(&mut self, ctx: &mut Ctx, up: &mut Update) -> Result<bool, AlgoError> {
        let world = ctx.world;
        if !self.cfg.iterative {
            if world.size() > 1 && self.local.is_none() {
                let data = self.data.as_ref().expect("offline DPO has its data");
                self.local = Some(data.shard(world.rank(), world.size()));
            }
            return Ok(true);
        }
        let round = self.round_data(ctx, up);
        let strict = round.as_ref().map_or(0, |d| d.as_ref().map_or(0, DpoData::len));
        let labelled = up.segment_true.len() / 2;
        let all = global_sum(world, &[round.is_err() as u8 as f64, strict as f64, labelled as f64]).map_err(AlgoError::Failed)?;
        let round = round?;
        if all[0] > 0.0 {
            return Err(AlgoError::Failed(format!("iterative DPO, round {}: another rank failed to collect its pairs", ctx.iteration)));
        }
        self.labels += all[2] as u64;
        self.local = Some(round);
        Ok(all[1] > 0.0)
    }

    /// The pairs this rank trains on.
    fn pairs(&self) -> Option<&DpoData> {
        match &self.local {
            Some(local) => local.as_ref(),
            None => self.data.as_ref(),
        }
    }
}

impl Algorithm for Dpo {
    fn collect(&self) -> Collect {
        if self.cfg.iterative { Collect::Own { envs: self.cfg.collect_envs } } else { Collect::Offline }
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    fn iterations(&self) -> Option<u64> {
        Some(self.cfg.iterations as u64)
    }

    fn data_parallel(&self) -> bool {
        true
    }

    fn update(&mut self, ctx: &mut Ctx, _batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let mut up = Update { segment_score: f64::NAN, ..Update::default() };
        if !self.prepare(ctx, &mut up)? {
            return Ok(up);
        }
        let st = update_shared(ctx.policy, ctx.adam, self.pairs(), &self.cfg, ctx.rng, ctx.world).map_err(AlgoError::Diverged)?;
        up.stats = vec![
            ("losses/dpo", st.loss),
            ("losses/dpo_accuracy", st.accuracy),
            ("losses/dpo_margin", st.margin),
            ("losses/logratio_chosen", st.logratio_w),
            ("losses/logratio_rejected", st.logratio_l),
            ("losses/entropy", st.entropy),
            ("losses/grad_norm", st.grad_norm),
            ("charts/labels_used", self.labels as f64),
        ];
        Ok(up)
    }

    fn save(&self, ck: &mut Checkpoint) -> Result<(), AlgoError> {
        ck.meta.counters.insert("labels".into(), self.labels);
        Ok(())
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<(), AlgoError> {
        self.labels = ck.meta.counters.get("labels").copied().unwrap_or(self.labels);
        Ok(())
    }

    fn labels_used(&self) -> Option<u64> {
        Some(self.labels)
    }
}
