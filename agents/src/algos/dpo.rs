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
    let dev = data.ref_w.device();
    let mut order: Vec<i64> = (0..data.len() as i64).collect();
    let (mut loss_sum, mut loss_n, mut gn_sum, mut gn_n) = (0.0, 0usize, 0.0, 0usize);
    for epoch in 0..cfg.epochs {
        order.shuffle(rng);
        for chunk in order.chunks(cfg.batch) {
            let idx = Tensor::from_slice(chunk).to_device(dev);
            let lp_w = segment_log_prob(policy, &data.w.select(&idx));
            let lp_l = segment_log_prob(policy, &data.l.select(&idx));
            let loss = dpo_loss(cfg, &lp_w, &lp_l, &data.ref_w.index_select(0, &idx), &data.ref_l.index_select(0, &idx));
            let (lv, gn) = adam.minimize(&loss, cfg.max_grad_norm, "DPO", epoch)?;
            gn_sum += gn;
            gn_n += 1;
            if epoch + 1 == cfg.epochs {
                loss_sum += lv;
                loss_n += 1;
            }
        }
    }
    tch::no_grad(|| {
        let rw = segment_log_prob(policy, &data.w) - &data.ref_w;
        let rl = segment_log_prob(policy, &data.l) - &data.ref_l;
        let h = &rw - &rl;
        let f = |t: Tensor| f64::try_from(t).unwrap_or(f64::NAN);
        Ok(DpoStats {
            loss: loss_sum / loss_n.max(1) as f64,
            accuracy: f(h.gt(0.0).to_kind(Kind::Float).mean(Kind::Float)),
            margin: f(h.mean(Kind::Float)),
            logratio_w: f(rw.mean(Kind::Float)),
            logratio_l: f(rl.mean(Kind::Float)),
            entropy: f(policy.entropy()),
            grad_norm: gn_sum / gn_n.max(1) as f64,
        })
    })
}

/// The DPO learner. `data`: the offline dataset as tensors (None for iterative DPO, which labels
/// fresh pairs each round); `initial`: the policy the run started from (the fixed reference);
/// `labels`: labels spent (checkpointed).
struct Dpo {
    cfg: DpoConfig,
    data: Option<DpoData>,
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
        Ok(Dpo { cfg: cfg.clone(), data, dataset, initial, labels })
    }

    /// Iterative DPO's round: fresh pairs of the current policy labelled by the dataset's teacher
    /// (`None` when no pair has a strict preference).
    fn round_data(&mut self, ctx: &mut Ctx, up: &mut Update) -> Result<Option<DpoData>, AlgoError> {
        let t_collect = std::time::Instant::now();
        let m = &self.dataset.meta;
        let ccfg = crate::preferences::CollectConfig {
            n_labels: self.cfg.labels_per_round,
            segment_len: m.segment_len,
            same_start: m.same_start,
            seed: crate::seeding::train_env_seed(ctx.seed, ctx.iteration, u64::MAX),
        };
        let src = crate::preferences::PolicySource { path: format!("iteration:{}", ctx.iteration), hash: String::new() };
        let ds = crate::preferences::collect_preferences(ctx.venv, ctx.policy, src, &ccfg, &m.teacher)
            .map_err(|e| AlgoError::Failed(format!("iterative DPO, round {}: {e}", ctx.iteration)))?;
        up.collect_s = t_collect.elapsed().as_secs_f64();
        self.labels += ds.len() as u64;
        // every env step simulated to make the round's pieces (trunks, skipped and cut-off pieces included)
        up.env_steps = ds.meta.simulated_env_steps;
        up.segment_true = ds.pairs.iter().flat_map(|p| [p.a.true_return(), p.b.true_return()]).collect();
        let reference = match self.cfg.reference {
            DpoReference::Fixed => &self.initial,
            DpoReference::Round => ctx.policy,
        };
        Ok(DpoData::new(&ds, reference, ctx.device))
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

    fn update(&mut self, ctx: &mut Ctx, _batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let mut up = Update { segment_score: f64::NAN, ..Update::default() };
        let round;
        let data = if self.cfg.iterative {
            match self.round_data(ctx, &mut up)? {
                Some(d) => {
                    round = d;
                    &round
                }
                None => return Ok(up),
            }
        } else {
            self.data.as_ref().expect("offline DPO has its data")
        };
        let st = update(ctx.policy, ctx.adam, data, &self.cfg, ctx.rng).map_err(AlgoError::Diverged)?;
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
