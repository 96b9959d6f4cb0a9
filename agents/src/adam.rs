//! Adam implemented over a list of named parameters, so that its moments can be checkpointed (tch's
//! `nn::Optimizer` hides them) and a resumed run continues exactly.
//!
//! The update is torch.optim.Adam's (non-amsgrad, L2 `weight_decay` added to the gradient):
//!
//! ```text
//! t += 1;  g += wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//! p -= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
//! ```
//!
//! A unit test checks it against libtorch's own Adam.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Hyperparameters of [`Adam`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate. Default 3e-4.
    pub lr: f64,
    /// First-moment decay β1. Default 0.9.
    pub beta1: f64,
    /// Second-moment decay β2. Default 0.999.
    pub beta2: f64,
    /// Denominator epsilon. Default 1e-8 (CleanRL's PPO uses 1e-5).
    pub eps: f64,
    /// L2 penalty added to the gradient. Default 0.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { lr: 3e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// One parameter and its two moment buffers (same shape, kind and device as the parameter).
#[derive(Debug)]
struct Slot {
    name: String,
    param: Tensor,
    m: Tensor,
    v: Tensor,
}

/// Adam over named parameters (shallow clones of e.g. [`crate::policy::GaussianPolicy::named_parameters`]).
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    slots: Vec<Slot>,
    step: u64,
}

impl Adam {
    /// An optimiser for `params` (name, tensor); the tensors must be leaf variables requiring grad. Moments start
    /// at zero, the step counter at 0.
    pub fn new(params: Vec<(String, Tensor)>, config: AdamConfig) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| {
                let m = param.zeros_like().detach();
                let v = param.zeros_like().detach();
                Slot { name, param, m, v }
            })
            .collect();
        Self { config, slots, step: 0 }
    }

    /// Hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Sets the learning rate (for schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Number of `step` calls so far (the `t` of the bias correction).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Clears the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            let mut g = s.param.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// Rescales all gradients so that their global L2 norm is at most `max_norm`; returns the norm before
    /// clipping (as torch's `clip_grad_norm_`).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let grads: Vec<Tensor> =
            self.slots.iter().map(|s| s.param.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return 0.0;
        }
        let total = tch::no_grad(|| {
            grads
                .iter()
                .map(|g| g.to_kind(tch::Kind::Double).square().sum(tch::Kind::Double).double_value(&[]))
                .sum::<f64>()
                .sqrt()
        });
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(coef);
                }
            });
        }
        total
    }

    /// One guarded optimisation step on `loss`: fails (touching nothing) when the loss or the
    /// gradient norm is not finite, else zero_grad, backward, clip the norm to `max_grad_norm`
    /// (0: no clipping), step. Returns `(loss, gradient norm before clipping)`; the message of an
    /// error names `what` and `epoch` and says what to lower.
    pub fn minimize(&mut self, loss: &Tensor, max_grad_norm: f64, what: &str, epoch: usize) -> Result<(f64, f64), String> {
        self.minimize_parts_shared(&rebel_dist::SingleProcess, 1, |_| Some(loss.shallow_clone()), 1, max_grad_norm, what, epoch)
    }

    /// [`Adam::minimize`] for data-parallel training: this rank's `loss` is the mean over its `n_local` items of
    /// the minibatch (`None` when it holds none of them). The gradients are averaged over ranks weighted by
    /// their item counts (an all-reduce in f64), so the step is the one a single process takes on the whole
    /// minibatch; every rank then clips and steps the same bits. The loss and the norm reported, and the
    /// finiteness checks, are global too, so every rank succeeds or fails together. On one rank, `minimize`.
    pub fn minimize_shared(
        &mut self,
        world: &dyn rebel_dist::Collective,
        loss: Option<&Tensor>,
        n_local: usize,
        max_grad_norm: f64,
        what: &str,
        epoch: usize,
    ) -> Result<(f64, f64), String> {
        let mut loss = loss.map(Tensor::shallow_clone);
        self.minimize_parts_shared(world, 1, |_| loss.take(), n_local, max_grad_norm, what, epoch)
    }

    /// [`Adam::minimize_shared`] with this rank's loss in `parts` pieces: `loss_of(p)` for p = 0, 1, … is made,
    /// differentiated and dropped before the next (None: no piece there), so that one piece's autograd graph is
    /// alive at a time, and the step is taken on the sum of their gradients. The pieces must be weighted so that
    /// they sum to the mean over the `n_local` items. One piece gives the bits of one loss.
    #[allow(clippy::too_many_arguments)]
    pub fn minimize_parts_shared(
        &mut self,
        world: &dyn rebel_dist::Collective,
        parts: usize,
        mut loss_of: impl FnMut(usize) -> Option<Tensor>,
        n_local: usize,
        max_grad_norm: f64,
        what: &str,
        epoch: usize,
    ) -> Result<(f64, f64), String> {
        let shared = world.size() > 1;
        // with ranks, a zero term in every parameter defines every gradient, also on a rank without items (which
        // then contributes zeros with weight 0)
        let zero = || self.slots.iter().map(|s| s.param.sum(s.param.kind()) * 0.0).reduce(|a, b| a + b).unwrap_or_else(|| Tensor::from(0.0f32));
        let mut pending = shared.then(zero);
        let (mut lv, mut any) = (0.0, false);
        let mut backward = |l: Tensor| {
            match pending.take() {
                Some(z) => (l + z).backward(),
                None => l.backward(),
            }
        };
        for p in 0..parts {
            let Some(l) = loss_of(p).filter(|_| n_local > 0) else { continue };
            let v = f64::try_from(&l).unwrap_or(f64::NAN);
            if !shared && !v.is_finite() {
                return Err(format!("the {what} loss is {v} (epoch {epoch}); lower the learning rate"));
            }
            if !any {
                self.zero_grad();
            }
            (lv, any) = (lv + v, true);
            backward(l);
        }
        if !shared {
            if !any {
                return Err(format!("the {what} minibatch is empty (epoch {epoch})"));
            }
            let gn = self.clip_grad_norm(if max_grad_norm > 0.0 { max_grad_norm } else { f64::INFINITY });
            if !gn.is_finite() {
                return Err(format!("the {what} gradient norm is {gn} (epoch {epoch}); lower the learning rate"));
            }
            self.step();
            return Ok((lv, gn));
        }
        if let Some(z) = pending {
            // this rank holds none of the minibatch
            self.zero_grad();
            z.backward();
        }
        let (lv, w) = if any { (lv, n_local as f64) } else { (0.0, 0.0) };
        let mut buf: Vec<f64> = Vec::new();
        for s in &self.slots {
            let flat = Vec::<f64>::try_from(s.param.grad().to_kind(tch::Kind::Double).reshape([-1]).to_device(tch::Device::Cpu))
                .map_err(|e| format!("the {what} gradient cannot be read: {e}"))?;
            buf.extend(flat.into_iter().map(|x| x * w));
        }
        buf.extend([lv * w, w]);
        world.all_reduce_sum_f64(&mut buf).map_err(|e| format!("the {what} gradient all-reduce failed: {e}"))?;
        let n = buf.pop().unwrap_or(0.0);
        let lv = buf.pop().unwrap_or(f64::NAN) / n;
        if !(n > 0.0 && lv.is_finite()) {
            return Err(format!("the {what} loss is {lv} over {n} items of all ranks (epoch {epoch}); lower the learning rate"));
        }
        let mut off = 0;
        tch::no_grad(|| {
            for s in &mut self.slots {
                let numel = s.param.numel();
                let mean = Tensor::from_slice(&buf[off..off + numel]).to_kind(s.param.kind()).to_device(s.param.device()) / n;
                off += numel;
                let mut g = s.param.grad();
                g.copy_(&mean.view_as(&s.param));
            }
        });
        let gn = self.clip_grad_norm(if max_grad_norm > 0.0 { max_grad_norm } else { f64::INFINITY });
        if !gn.is_finite() {
            return Err(format!("the {what} gradient norm is {gn} (epoch {epoch}); lower the learning rate"));
        }
        self.step();
        Ok((lv, gn))
    }

    /// One Adam update from the current gradients (parameters without a gradient are skipped).
    pub fn step(&mut self) {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        tch::no_grad(|| {
            for s in &mut self.slots {
                let g = s.param.grad();
                if !g.defined() {
                    continue;
                }
                let g = if c.weight_decay != 0.0 { g + &s.param * c.weight_decay } else { g };
                let _ = s.m.g_mul_scalar_(c.beta1);
                let _ = s.m.g_add_(&(&g * (1.0 - c.beta1)));
                let _ = s.v.g_mul_scalar_(c.beta2);
                let _ = s.v.g_add_(&(g.square() * (1.0 - c.beta2)));
                let denom = s.v.sqrt() / bc2.sqrt() + c.eps;
                let update = &s.m / denom * (c.lr / bc1);
                let _ = s.param.g_sub_(&update);
            }
        });
    }

    /// Moments as named tensors for checkpoints: `m.<param name>` and `v.<param name>`, shallow clones.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len());
        for s in &self.slots {
            out.push((format!("m.{}", s.name), s.m.shallow_clone()));
            out.push((format!("v.{}", s.name), s.v.shallow_clone()));
        }
        out
    }

    /// Restores the step counter (the moments are restored by copying into [`Self::named_state`]'s tensors).
    pub fn set_step_count(&mut self, step: u64) {
        self.step = step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{GaussianPolicy, PolicyConfig};
    use tch::nn::OptimizerConfig;
    use tch::{Device, Kind};

    fn loss_of(p: &GaussianPolicy) -> Tensor {
        let obs = Tensor::from_slice(&[0.3f64, -1.0, 0.7, 0.2, 0.1, -0.4]).view([2, 3]);
        let act = Tensor::from_slice(&[0.5f64, -0.5, 1.0, 0.0]).view([2, 2]);
        -p.log_prob(&obs, &act).mean(Kind::Double)
    }

    #[test]
    fn matches_libtorch_adam() {
        tch::set_num_threads(1);
        let cfg = PolicyConfig { hidden: vec![8], log_std_init: -0.5, ..PolicyConfig::new(3, 2) };
        let a = GaussianPolicy::new(cfg.clone(), Device::Cpu, Kind::Double, 3);
        let b = a.try_clone().unwrap();
        let mut ours = Adam::new(a.named_parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
        let mut theirs = tch::nn::Adam::default().build(b.var_store(), 1e-2).unwrap();
        for _ in 0..5 {
            ours.zero_grad();
            loss_of(&a).backward();
            ours.step();
            theirs.zero_grad();
            loss_of(&b).backward();
            theirs.step();
        }
        let diff = (a.flat_params() - b.flat_params()).abs().max().double_value(&[]);
        assert!(diff < 1e-12, "max |Δθ| = {diff}");
        assert!((a.flat_params() - GaussianPolicy::new(cfg, Device::Cpu, Kind::Double, 3).flat_params())
            .abs()
            .max()
            .double_value(&[])
            > 1e-3);
        assert_eq!(ours.step_count(), 5);
    }

    #[test]
    fn clip_grad_norm_scales_to_max() {
        let p = Tensor::from_slice(&[0.0f64, 0.0]).set_requires_grad(true);
        let mut opt = Adam::new(vec![("p".into(), p.shallow_clone())], AdamConfig::default());
        (&p * Tensor::from_slice(&[3.0f64, 4.0])).sum(Kind::Double).backward();
        let n = opt.clip_grad_norm(1.0);
        assert!((n - 5.0).abs() < 1e-12);
        let g = p.grad();
        assert!((g.double_value(&[0]) - 0.6).abs() < 1e-6 && (g.double_value(&[1]) - 0.8).abs() < 1e-6);
    }

    /// A loss in pieces, each differentiated and dropped in turn, takes the step of the whole loss up to rounding;
    /// in one piece, the same bits as [`Adam::minimize`]. A non-finite piece is refused before anything is applied.
    #[test]
    fn a_loss_in_pieces_takes_the_step_of_the_whole() {
        tch::manual_seed(3);
        let x = Tensor::randn([12, 4], (Kind::Float, tch::Device::Cpu));
        let w0 = Tensor::randn([4], (Kind::Float, tch::Device::Cpu));
        let make = || {
            let w = w0.copy().set_requires_grad(true);
            let opt = Adam::new(vec![("w".to_string(), w.shallow_clone())], AdamConfig { lr: 1e-2, ..AdamConfig::default() });
            (w, opt)
        };
        // the mean of tanh(x·w)² over the rows of `rows`, weighted by their share of all 12
        let loss = |w: &Tensor, rows: std::ops::Range<i64>| {
            let n = rows.end - rows.start;
            x.narrow(0, rows.start, n).matmul(w).tanh().square().mean(Kind::Float) * (n as f64 / 12.0)
        };
        let world = rebel_dist::SingleProcess;
        let (w1, mut o1) = make();
        let whole = o1.minimize(&loss(&w1, 0..12), 0.5, "test", 0).unwrap();
        let (w2, mut o2) = make();
        let one = o2.minimize_parts_shared(&world, 1, |_| Some(loss(&w2, 0..12)), 12, 0.5, "test", 0).unwrap();
        assert_eq!((Vec::<f32>::try_from(&w1).unwrap(), whole), (Vec::<f32>::try_from(&w2).unwrap(), one), "one piece: the same bits");
        let (w3, mut o3) = make();
        let parts = [0..5, 5..9, 9..12];
        let split = o3.minimize_parts_shared(&world, 3, |p| Some(loss(&w3, parts[p].clone())), 12, 0.5, "test", 0).unwrap();
        assert!(w3.allclose(&w1, 1e-6, 1e-7, false), "{w3} vs {w1}");
        assert!(!w3.equal(&w0), "the step moved w");
        assert!((split.0 - whole.0).abs() < 1e-6 && (split.1 - whole.1).abs() < 1e-5, "{split:?} vs {whole:?}");
        let before = Vec::<f32>::try_from(&w3).unwrap();
        let nan = |p: usize| Some(if p == 1 { loss(&w3, 0..4) * f64::NAN } else { loss(&w3, 0..4) });
        let e = o3.minimize_parts_shared(&world, 2, nan, 12, 0.5, "test", 0).unwrap_err();
        assert!(e.contains("the test loss is NaN"), "{e}");
        assert_eq!(Vec::<f32>::try_from(&w3).unwrap(), before, "nothing applied");
    }
}
