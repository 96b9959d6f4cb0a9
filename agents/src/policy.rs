//! The Gaussian MLP policy: `a ~ N(mu_theta(s), diag(exp(log_std))^2)`.
//!
//! * Mean: an MLP `obs_dim → hidden[0] → … → hidden[n-1] → act_dim`, tanh (or ReLU: `activation`) after every
//!   hidden layer, none after the output (`hidden = []` gives a linear-Gaussian policy). Hidden weights are
//!   orthogonally initialised with gain √2, the output layer with gain 0.01 (so the initial mean is close to
//!   0), biases 0 — as in CleanRL/SB3 (`ortho_init = false`: PyTorch's `nn.Linear` default instead).
//!   Optionally (`normalize_obs`) the input is standardised with running statistics held by the policy.
//! * Standard deviation: a learned, state-independent `log_std` vector of length `act_dim`. Default init
//!   **−0.5** (std ≈ 0.61): with the environment clipping actions to [−1, 1], std 1 (SB3's 0.0) would clip about
//!   a third of the initial actions of each dimension, std 0.61 about a tenth, while still exploring broadly.
//!
//! ## Actions are not squashed; the clip belongs to the environment
//! [`GaussianPolicy::sample`] returns the *unclipped* Gaussian sample, and [`GaussianPolicy::log_prob`] is the
//! density of exactly that unclipped sample. The environment clips to its control range (MuJoCo's ctrlrange
//! clamp) as part of its dynamics. This is the "outside both" choice of rebel.md §2 (the same as SB3): the clip
//! is in neither the policy's sampling density nor its log-prob, it is part of `P(s'|s, a)`, and dynamics
//! cancel in every ratio `pi_theta(tau)/pi_t(tau)`. The ratios used by REBEL, PPO and DPO are therefore exact.
//! Store and feed back the unclipped actions; never the clipped ones.
//!
//! ## Randomness
//! Initialisation and sampling draw from a caller-owned `crate::seeding::ChaCha8Rng` (not libtorch's global generator),
//! so the same seed gives the same weights and the same actions, whatever else runs in the process.
//!
//! ## Kinds and devices
//! All variables live in the policy's own [`VarStore`] (which checkpoints and optimisers use), with the kind and
//! device given at construction (`Kind::Float` normally, `Kind::Double` for exact numerical tests). Inputs must
//! be on the same device with the same kind.

use crate::seeding::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use crate::mlp::{Activation, Mlp};
use tch::{Device, Kind, Tensor};

/// ln(2π).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Architecture and initialisation of a [`GaussianPolicy`]. Saved in checkpoints; two policies with equal
/// configs have parameters of identical names and shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Observation size (Swimmer-v5: 8).
    pub obs_dim: usize,
    /// Action size (Swimmer-v5: 2).
    pub act_dim: usize,
    /// Hidden layer widths. Default `[64, 64]`; `[]` gives a linear mean.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Initial value of every entry of `log_std`. Default −0.5 (std ≈ 0.61), see the module docs.
    #[serde(default = "default_log_std_init")]
    pub log_std_init: f64,
    /// Nonlinearity after every hidden layer. Default tanh.
    #[serde(default)]
    pub activation: Activation,
    /// Orthogonal initialisation (hidden gain √2, mean head 0.01, biases 0; the default) or, when false,
    /// PyTorch's `nn.Linear` default U(±1/√fan_in) for weights and biases (SB3's `ortho_init=False`).
    #[serde(default = "default_true")]
    pub ortho_init: bool,
    /// Standardise the input with running observation statistics (mean, variance, count: buffers of the
    /// policy, saved with it, not trained), clipped to ±10, as SB3's `VecNormalize` does. The statistics
    /// are updated by the algorithms that say so ([`crate::algorithm::Algorithm::updates_obs_norm`]: PPO)
    /// and kept fixed by the others. Default false (the raw observation).
    #[serde(default)]
    pub normalize_obs: bool,
}

fn default_true() -> bool {
    true
}

/// `log_std_init` must be finite and in [−20, 20].
pub fn check_log_std_init(v: f64) -> Result<(), String> {
    if !(v.is_finite() && (-20.0..=20.0).contains(&v)) {
        return Err(format!("policy log_std_init must be a number in [-20, 20] (std = e^log_std_init), got {v}"));
    }
    Ok(())
}

fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_log_std_init() -> f64 {
    -0.5
}

impl PolicyConfig {
    /// Range checks: non-zero sizes, a finite `log_std_init` in [−20, 20] (std from 2e−9 to 5e8).
    pub fn validate(&self) -> Result<(), String> {
        if self.obs_dim == 0 || self.act_dim == 0 || self.hidden.contains(&0) {
            return Err(format!("a policy needs non-zero sizes, got obs_dim {}, act_dim {}, hidden {:?}", self.obs_dim, self.act_dim, self.hidden));
        }
        check_log_std_init(self.log_std_init)
    }

    /// `obs_dim`, `act_dim` with the default hidden sizes `[64, 64]` and `log_std_init = -0.5`.
    pub fn new(obs_dim: usize, act_dim: usize) -> Self {
        Self {
            obs_dim,
            act_dim,
            hidden: default_hidden(),
            log_std_init: default_log_std_init(),
            activation: Activation::Tanh,
            ortho_init: true,
            normalize_obs: false,
        }
    }

    /// What must agree for one policy's tensors to fit another's: sizes, activation and normalisation.
    pub fn same_architecture(&self, other: &PolicyConfig) -> bool {
        (self.obs_dim, self.act_dim, &self.hidden, self.activation, self.normalize_obs)
            == (other.obs_dim, other.act_dim, &other.hidden, other.activation, other.normalize_obs)
    }

    /// The architecture in words, for errors.
    pub fn describe(&self) -> String {
        format!(
            "obs_dim {}, act_dim {}, hidden {:?}, activation {:?}, normalize_obs {}",
            self.obs_dim, self.act_dim, self.hidden, self.activation, self.normalize_obs
        )
    }
}

/// Diagonal-Gaussian MLP policy with a state-independent learned log-std. See the module docs.
#[derive(Debug)]
pub struct GaussianPolicy {
    config: PolicyConfig,
    vs: VarStore,
    /// Hidden layers followed by the output (mean) layer.
    mlp: Mlp,
    log_std: Tensor,
    /// Observation statistics `(mean [obs_dim], var [obs_dim], count [1])` when `normalize_obs`.
    obs_norm: Option<(Tensor, Tensor, Tensor)>,
}

/// Clip of standardised observations (SB3's `clip_obs`).
pub const OBS_CLIP: f64 = 10.0;
/// ε under the square root of the observation variance (SB3's `VecNormalize` epsilon).
pub const OBS_EPS: f64 = 1e-8;

/// `obs` standardised with running statistics and clipped, as SB3's `VecNormalize` does:
/// `clamp((obs − mean)/√(var + OBS_EPS), ±OBS_CLIP)` (the policy's input and PPO's value net's).
pub fn standardize(obs: &Tensor, mean: &Tensor, var: &Tensor) -> Tensor {
    ((obs - mean) / (var + OBS_EPS).sqrt()).clamp(-OBS_CLIP, OBS_CLIP)
}

/// Orthogonal `[rows, cols]` matrix times `gain`, from a seeded Gaussian matrix (QR with sign correction).
fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut ChaCha8Rng) -> Tensor {
    let (n, m) = if rows >= cols { (rows, cols) } else { (cols, rows) };
    let data: Vec<f64> = (0..n * m).map(|_| StandardNormal.sample(rng)).collect();
    let a = Tensor::from_slice(&data).view([n as i64, m as i64]);
    let (q, r) = Tensor::linalg_qr(&a, "reduced");
    let signs = r.diagonal(0, 0, 1).sign();
    let q = q * signs.unsqueeze(0); // [n, m], orthonormal columns
    let q = if rows >= cols { q } else { q.tr().contiguous() };
    q * gain
}

impl GaussianPolicy {
    /// Builds a fresh policy in a new [`VarStore`] on `device` with variables of `kind` (Float or Double),
    /// initialised from `seed` (same seed ⇒ same weights). Variable names: `layer{i}.weight [out, in]`,
    /// `layer{i}.bias [out]` for i = 0..=hidden.len() (the last is the mean head), and `log_std [act_dim]`.
    ///
    /// Panics only if `obs_dim` or `act_dim` is 0 or a hidden width is 0 (a programming error).
    pub fn new(config: PolicyConfig, device: Device, kind: Kind, seed: u64) -> Self {
        assert!(config.obs_dim > 0 && config.act_dim > 0, "policy dims must be positive: {config:?}");
        assert!(config.hidden.iter().all(|&h| h > 0), "hidden widths must be positive: {config:?}");
        let mut vs = VarStore::new(device);
        vs.set_kind(kind);
        let mut rng = crate::seeding::stream(seed, crate::seeding::Domain::Init, 0);
        let root = vs.root();
        let mut sizes = vec![config.obs_dim];
        sizes.extend(&config.hidden);
        sizes.push(config.act_dim);
        let n_layers = sizes.len() - 1;
        let mut layers = Vec::with_capacity(n_layers);
        let uniform = (!config.ortho_init).then(|| crate::mlp::linear_layers(&sizes, &mut rng, Device::Cpu));
        for i in 0..n_layers {
            let (fan_in, fan_out) = (sizes[i], sizes[i + 1]);
            let p = &root / format!("layer{i}");
            let (weight, bias) = match &uniform {
                Some(u) => (p.var_copy("weight", &u[i].0.to_kind(kind).to_device(device)), p.var_copy("bias", &u[i].1.to_kind(kind).to_device(device))),
                None => {
                    let gain = if i + 1 == n_layers { 0.01 } else { 2f64.sqrt() };
                    let w0 = orthogonal(fan_out, fan_in, gain, &mut rng).to_kind(kind).to_device(device);
                    (p.var_copy("weight", &w0), p.zeros("bias", &[fan_out as i64]))
                }
            };
            layers.push((weight, bias));
        }
        let log_std = root.var_copy(
            "log_std",
            &Tensor::full([config.act_dim as i64], config.log_std_init, (kind, device)),
        );
        let obs_norm = config.normalize_obs.then(|| {
            // buffers, not trained, in the policy's kind (the statistics of a fresh RunningMeanStd)
            let fresh = crate::util::RunningMeanStd::new(config.obs_dim);
            let buffer = |name: &str, x: &[f64]| root.add(name, Tensor::from_slice(x).to_kind(kind).to_device(device), false);
            (buffer("obs_mean", &fresh.mean), buffer("obs_var", &fresh.var), buffer("obs_count", &[fresh.count]))
        });
        let mlp = Mlp::from_layers(layers, config.activation);
        Self { config, vs, mlp, log_std, obs_norm }
    }

    /// A new policy with the same config, device, kind and parameter values (independent storage), e.g. to
    /// freeze `pi_t` or a reference policy.
    pub fn try_clone(&self) -> Result<Self, tch::TchError> {
        let mut other = Self::new(self.config.clone(), self.device(), self.kind(), 0);
        other.copy_from(self)?;
        Ok(other)
    }

    /// Copies all parameter values from `other` (same architecture required; an error otherwise, never a
    /// panic). Gradients are not copied.
    pub fn copy_from(&mut self, other: &GaussianPolicy) -> Result<(), tch::TchError> {
        if !self.config.same_architecture(&other.config) {
            return Err(tch::TchError::Shape(format!(
                "cannot copy a policy with {} into one with {}",
                other.config.describe(),
                self.config.describe()
            )));
        }
        self.vs.copy(&other.vs)
    }

    /// The architecture this policy was built with.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Observation size.
    pub fn obs_dim(&self) -> usize {
        self.config.obs_dim
    }

    /// Action size.
    pub fn act_dim(&self) -> usize {
        self.config.act_dim
    }

    /// Device of the parameters.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Kind of the parameters (Float or Double).
    pub fn kind(&self) -> Kind {
        self.log_std.kind()
    }

    /// The variable store owning every parameter (for optimisers and checkpoints).
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// Mutable access to the variable store (e.g. `freeze`, `set_device`).
    pub fn var_store_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    /// Parameters in a fixed order with their VarStore names: `layer0.weight, layer0.bias, …, log_std`.
    /// The tensors are shallow clones: they share storage (and gradients) with the policy.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = self.mlp.named_parameters("");
        out.push(("log_std".to_string(), self.log_std.shallow_clone()));
        out
    }

    /// The observation-statistics buffers by name (`obs_mean`, `obs_var`, `obs_count`; none without
    /// `normalize_obs`), shallow clones. Saved in checkpoints with the parameters, never trained.
    pub fn named_buffers(&self) -> Vec<(String, Tensor)> {
        match &self.obs_norm {
            Some((m, v, c)) => vec![
                ("obs_mean".to_string(), m.shallow_clone()),
                ("obs_var".to_string(), v.shallow_clone()),
                ("obs_count".to_string(), c.shallow_clone()),
            ],
            None => Vec::new(),
        }
    }

    /// [`Self::named_parameters`] then [`Self::named_buffers`]: everything a checkpoint holds of the policy.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = self.named_parameters();
        out.extend(self.named_buffers());
        out
    }

    /// The observation statistics, when the policy standardises its input.
    pub fn obs_rms(&self) -> Option<crate::util::RunningMeanStd> {
        let (m, v, c) = self.obs_norm.as_ref()?;
        let cpu = |t: &Tensor| Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).to_device(Device::Cpu)).expect("1-D");
        Some(crate::util::RunningMeanStd { mean: cpu(m), var: cpu(v), count: cpu(c)[0] })
    }

    /// Overwrites the observation statistics (an error when the policy has none or the sizes differ).
    pub fn set_obs_rms(&self, rms: &crate::util::RunningMeanStd) -> Result<(), String> {
        let (m, v, c) = self.obs_norm.as_ref().ok_or("this policy does not standardise its observations (policy.normalize_obs = false)")?;
        if rms.mean.len() != self.config.obs_dim || rms.var.len() != self.config.obs_dim {
            return Err(format!("observation statistics of {} values for a policy of obs_dim {}", rms.mean.len(), self.config.obs_dim));
        }
        let to = |x: &[f64]| Tensor::from_slice(x).to_kind(self.kind()).to_device(self.device());
        tch::no_grad(|| {
            m.shallow_clone().copy_(&to(&rms.mean));
            v.shallow_clone().copy_(&to(&rms.var));
            c.shallow_clone().copy_(&to(&[rms.count]));
        });
        Ok(())
    }

    /// The policy's input: `obs` standardised and clipped when `normalize_obs`, else `obs` itself.
    pub fn normalized(&self, obs: &Tensor) -> Tensor {
        match &self.obs_norm {
            Some((m, v, _)) => standardize(obs, m, v),
            None => obs.shallow_clone(),
        }
    }

    /// Parameters in the order of [`Self::named_parameters`], without names.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, t)| t).collect()
    }

    /// Total number of scalar parameters P.
    pub fn num_params(&self) -> usize {
        self.parameters().iter().map(|t| t.numel()).sum()
    }

    /// All parameters flattened and concatenated in [`Self::named_parameters`] order: `[P]`, detached copy.
    pub fn flat_params(&self) -> Tensor {
        let flat: Vec<Tensor> = self.parameters().iter().map(|t| t.detach().reshape([-1])).collect();
        Tensor::cat(&flat, 0)
    }

    /// Gradients flattened like [`Self::flat_params`]: `[P]`; zeros for parameters without a gradient.
    pub fn flat_grad(&self) -> Tensor {
        let flat: Vec<Tensor> = self
            .parameters()
            .iter()
            .map(|t| {
                let g = t.grad();
                if g.defined() {
                    g.detach().reshape([-1])
                } else {
                    t.zeros_like().detach().reshape([-1])
                }
            })
            .collect();
        Tensor::cat(&flat, 0)
    }

    /// Overwrites every parameter from a flat vector `[P]` (order of [`Self::flat_params`]). An error when the
    /// length differs from P.
    pub fn set_flat_params(&mut self, flat: &Tensor) -> Result<(), tch::TchError> {
        let p = self.num_params();
        if flat.dim() != 1 || flat.size()[0] as usize != p {
            return Err(tch::TchError::Shape(format!(
                "flat parameter vector has shape {:?}, expected [{p}]",
                flat.size()
            )));
        }
        let flat = flat.to_device(self.device()).to_kind(self.kind());
        let mut offset = 0i64;
        tch::no_grad(|| -> Result<(), tch::TchError> {
            for mut t in self.parameters() {
                let n = t.numel() as i64;
                let chunk = flat.f_narrow(0, offset, n)?.f_view(t.size().as_slice())?;
                t.f_copy_(&chunk)?;
                offset += n;
            }
            Ok(())
        })
    }

    /// The learned log standard deviation, `[act_dim]` (shares storage with the parameter).
    pub fn log_std(&self) -> &Tensor {
        &self.log_std
    }

    /// Mean action `mu_theta(obs)`: `obs [..., obs_dim] → [..., act_dim]` (any leading dims, e.g. `[B]` or
    /// `[T, B]`).
    pub fn mean(&self, obs: &Tensor) -> Tensor {
        self.mlp.forward(&self.normalized(obs))
    }

    /// Log-density of the unclipped actions, summed over action dimensions:
    /// `obs [..., obs_dim], act [..., act_dim] → [...]`, e.g. `[B, obs_dim], [B, act_dim] → [B]`.
    ///
    /// `ln pi(a|s) = Σ_j [ −½((a_j − mu_j)/sigma_j)² − ln sigma_j − ½ ln 2π ]`.
    pub fn log_prob(&self, obs: &Tensor, act: &Tensor) -> Tensor {
        let mu = self.mean(obs);
        gaussian_log_prob(&mu, &self.log_std, act)
    }

    /// Log-probability of whole trajectories (the dynamics cancel in every ratio, rebel.md §2):
    /// `obs [T, B, obs_dim], act [T, B, act_dim] → [B]`, the sum over the T steps of [`Self::log_prob`].
    pub fn trajectory_log_prob(&self, obs: &Tensor, act: &Tensor) -> Tensor {
        self.log_prob(obs, act).sum_dim_intlist([0i64].as_slice(), false, self.kind())
    }

    /// Entropy of the action distribution (state-independent, since only the mean depends on the state):
    /// a scalar `Σ_j (½ + ½ ln 2π + log_std_j)`.
    pub fn entropy(&self) -> Tensor {
        (self.log_std.shallow_clone() + 0.5 * (1.0 + LN_2PI)).sum(self.kind())
    }

    /// Samples unclipped actions `mu(obs) + exp(log_std)·eps` with `eps ~ N(0, I)` drawn from `rng`:
    /// `obs [..., obs_dim] → act [..., act_dim]`, detached (no gradient). The same `rng` state gives the same
    /// actions. The noise is drawn in row-major order of the output.
    pub fn sample(&self, obs: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        tch::no_grad(|| {
            let mu = self.mean(obs);
            let eps = standard_normal_like(&mu, rng);
            mu + self.log_std.exp() * eps
        })
    }

    /// The deterministic (mean) action for evaluation: one observation `[obs_dim]` → `Vec<f32>` `[act_dim]`.
    pub fn act_mean(&self, obs: &[f32]) -> Vec<f32> {
        tch::no_grad(|| {
            let o = Tensor::from_slice(obs).to_kind(self.kind()).to_device(self.device());
            Vec::try_from(self.mean(&o).to_kind(Kind::Float).to_device(Device::Cpu))
                .expect("a 1-D float tensor converts to Vec<f32>")
        })
    }
}

/// A plain-Rust f32 copy of a policy for acting: the mean network's layers and the standard deviation,
/// copied once (per collection) with [`GaussianPolicy::actor`], so that a rollout step runs no libtorch op.
/// The learner still recomputes log-probabilities of the stored actions with libtorch, so the numbers the
/// update sees are exact; the actions agree with [`GaussianPolicy::sample`] / [`GaussianPolicy::mean`] to
/// float rounding (summation order), from the same draws of `rng` in the same order.
#[derive(Clone, Debug, PartialEq)]
pub struct Actor {
    /// `(weightᵀ [in × out] row-major, bias [out])`, input first; `activation` between layers, none after the last.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    activation: Activation,
    /// `(mean, 1/√(var + ε))` of the observations when the policy standardises them.
    obs_norm: Option<(Vec<f32>, Vec<f32>)>,
    /// `exp(log_std)`, `[act_dim]`.
    std: Vec<f32>,
    obs_dim: usize,
}

/// `tanh x` in f32 without a libm call, so that a loop over a layer's outputs vectorises (libm's `tanhf` was
/// most of the actor's time): `1 − 2/(e^{2x} + 1)`, with `e^{2x}` by range reduction (`2x = k·ln 2 + r`,
/// `|r| ≤ ln 2 / 2`, `k` rounded by the 1.5·2²³ trick) and a degree-7 Taylor polynomial of `e^r`; `x` is clamped
/// to ±10, where tanh rounds to ±1 in f32. Absolute error below 3·10⁻⁷ (tested against f64), about the size of
/// the rounding differences between two matrix-multiply orders.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4; // ln 2 split in two, the high part exact in a few bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    let y = 2.0 * x.clamp(-10.0, 10.0);
    let k = (y * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let e = p * f32::from_bits(((k as i32 + 127) << 23) as u32);
    1.0 - 2.0 / (e + 1.0)
}

impl Actor {
    /// Observation size.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action size.
    pub fn act_dim(&self) -> usize {
        self.std.len()
    }

    /// The standard deviation `exp(log_std)`, `[act_dim]`.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Mean actions of `n` stacked observations: `obs [n·obs_dim] → [n·act_dim]`. Panics when `obs` has
    /// another length (a programming error).
    pub fn mean(&self, obs: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(obs.len(), n * self.obs_dim, "actor: {n} observations of {} values expected", self.obs_dim);
        let mut h = obs.to_vec();
        if let Some((m, inv_sd)) = &self.obs_norm {
            for row in h.chunks_exact_mut(self.obs_dim) {
                for ((x, m), s) in row.iter_mut().zip(m).zip(inv_sd) {
                    *x = ((*x - m) * s).clamp(-OBS_CLIP as f32, OBS_CLIP as f32);
                }
            }
        }
        let last = self.layers.len() - 1;
        for (i, (wt, b)) in self.layers.iter().enumerate() {
            let (fan_out, fan_in) = (b.len(), wt.len() / b.len());
            let mut next = Vec::with_capacity(n * fan_out);
            for x in h.chunks_exact(fan_in) {
                // y = b + Σ_i x_i·W[:, i], a row of Wᵀ at a time: the inner loop runs along the outputs
                // (a row of its own, then copied: accumulating into `next` in place measured 2-3× slower, the
                // compiler no longer vectorising the loop; agents/examples/actor_speed)
                let mut y = b.clone();
                for (xi, row) in x.iter().zip(wt.chunks_exact(fan_out)) {
                    for (yj, wij) in y.iter_mut().zip(row) {
                        *yj += xi * wij;
                    }
                }
                if i < last {
                    match self.activation {
                        Activation::Tanh => y.iter_mut().for_each(|v| *v = fast_tanh(*v)),
                        Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
                        Activation::LeakyRelu => y.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.01 * *v } else { *v }),
                    }
                }
                next.extend_from_slice(&y);
            }
            h = next;
        }
        h
    }

    /// Actions of `n` stacked observations: `mu + std·eps`, `eps ~ N(0, I)` drawn from `rng` in row-major order
    /// as f64 and rounded to f32 (as [`GaussianPolicy::sample`] draws them), or the mean when `rng` is `None`.
    pub fn act(&self, obs: &[f32], n: usize, rng: Option<&mut ChaCha8Rng>) -> Vec<f32> {
        let mut a = self.mean(obs, n);
        if let Some(rng) = rng {
            let d = self.std.len();
            for (i, v) in a.iter_mut().enumerate() {
                let eps: f64 = StandardNormal.sample(rng);
                *v += self.std[i % d] * eps as f32;
            }
        }
        a
    }
}

impl GaussianPolicy {
    /// A plain-Rust f32 copy of the policy for acting ([`Actor`]); a later change of the policy does not
    /// reach it.
    pub fn actor(&self) -> Actor {
        let cpu = |t: &Tensor| -> Vec<f32> {
            Vec::try_from(t.detach().to_kind(Kind::Float).to_device(Device::Cpu).reshape([-1])).expect("a float tensor")
        };
        let params = self.mlp.named_parameters("");
        let layers = params.chunks_exact(2).map(|wb| (cpu(&wb[0].1.tr().contiguous()), cpu(&wb[1].1))).collect();
        let obs_norm = self.obs_norm.as_ref().map(|(m, v, _)| (cpu(m), cpu(&(v + OBS_EPS).sqrt().reciprocal())));
        Actor { layers, activation: self.config.activation, obs_norm, std: cpu(&self.log_std.exp()), obs_dim: self.config.obs_dim }
    }
}

/// Standard-normal noise with the shape, kind and device of `like`, drawn from `rng` in row-major order.
pub fn standard_normal_like(like: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
    let n = like.numel();
    let data: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::from_slice(&data).view(like.size().as_slice()).to_kind(like.kind()).to_device(like.device())
}

/// Diagonal-Gaussian log-density summed over the last dimension:
/// `mu [..., D], log_std [D] (or broadcastable), act [..., D] → [...]`.
pub fn gaussian_log_prob(mu: &Tensor, log_std: &Tensor, act: &Tensor) -> Tensor {
    let z = (act - mu) * (-log_std).exp();
    let per_dim = z.square() * -0.5 - log_std - 0.5 * LN_2PI;
    per_dim.sum_dim_intlist([-1i64].as_slice(), false, per_dim.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn small(seed: u64) -> GaussianPolicy {
        GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Double, seed)
    }

    #[test]
    fn shapes() {
        let p = small(0);
        let obs = Tensor::randn([5, 3], (Kind::Double, Device::Cpu));
        assert_eq!(p.mean(&obs).size(), vec![5, 2]);
        let act = Tensor::zeros([5, 2], (Kind::Double, Device::Cpu));
        assert_eq!(p.log_prob(&obs, &act).size(), vec![5]);
        let obs_t = Tensor::randn([4, 5, 3], (Kind::Double, Device::Cpu));
        let act_t = Tensor::randn([4, 5, 2], (Kind::Double, Device::Cpu));
        assert_eq!(p.trajectory_log_prob(&obs_t, &act_t).size(), vec![5]);
        assert_eq!(p.entropy().size(), Vec::<i64>::new());
        assert_eq!(p.num_params(), 3 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2 + 2);
        assert_eq!(p.flat_params().size(), vec![p.num_params() as i64]);
    }

    #[test]
    fn hidden_layers_are_orthogonal_with_gain() {
        let p = small(1);
        let w = p.named_parameters()[2].1.detach(); // layer1.weight [64, 64]
        let wwt = w.matmul(&w.tr());
        let eye = Tensor::eye(64, (Kind::Double, Device::Cpu)) * 2.0;
        assert!(wwt.allclose(&eye, 1e-10, 1e-10, false));
    }

    #[test]
    fn same_seed_same_weights_different_seed_different_weights() {
        assert!(small(7).flat_params().equal(&small(7).flat_params()));
        assert!(!small(7).flat_params().equal(&small(8).flat_params()));
    }

    #[test]
    fn flat_params_round_trip_and_copy() {
        let mut a = small(1);
        let b = small(2);
        a.set_flat_params(&b.flat_params()).unwrap();
        assert!(a.flat_params().equal(&b.flat_params()));
        let c = small(3);
        a.copy_from(&c).unwrap();
        assert!(a.flat_params().equal(&c.flat_params()));
        let d = a.try_clone().unwrap();
        assert!(d.flat_params().equal(&c.flat_params()));
        assert!(a.set_flat_params(&Tensor::zeros([3], (Kind::Double, Device::Cpu))).is_err());
        let other = GaussianPolicy::new(PolicyConfig::new(4, 2), Device::Cpu, Kind::Double, 0);
        assert!(a.copy_from(&other).is_err());
    }

    #[test]
    fn linear_policy_when_no_hidden() {
        let cfg = PolicyConfig { hidden: vec![], log_std_init: 0.0, ..PolicyConfig::new(2, 1) };
        let mut p = GaussianPolicy::new(cfg, Device::Cpu, Kind::Double, 0);
        p.set_flat_params(&Tensor::from_slice(&[2.0f64, -1.0, 0.5, 0.0])).unwrap(); // W=[2,-1], b=0.5
        let m = p.mean(&Tensor::from_slice(&[1.0f64, 3.0]).view([1, 2]));
        assert!((m.double_value(&[0, 0]) - (2.0 - 3.0 + 0.5)).abs() < 1e-12);
    }

    #[test]
    fn sample_is_deterministic_given_the_rng() {
        let p = small(4);
        let obs = [0.1f32, -0.2, 0.3];
        let mut r1 = ChaCha8Rng::seed_from_u64(9);
        let mut r2 = ChaCha8Rng::seed_from_u64(9);
        let o = Tensor::from_slice(&obs).to_kind(Kind::Double).unsqueeze(0);
        let (a, b) = (p.sample(&o, &mut r1), p.sample(&o, &mut r2));
        assert!(a.equal(&b), "the same rng state gives the same actions");
        assert_eq!(p.act_mean(&obs).len(), 2);
    }

    #[test]
    fn the_plain_rust_actor_acts_as_the_libtorch_policy() {
        // float weights made large enough that every layer matters (the mean head starts at gain 0.01)
        let cfg = PolicyConfig { hidden: vec![64, 32], log_std_init: -0.3, ..PolicyConfig::new(5, 3) };
        let mut p = GaussianPolicy::new(cfg, Device::Cpu, Kind::Float, 3);
        let n_par = p.num_params() as i64;
        let mut g = ChaCha8Rng::seed_from_u64(1);
        let flat = standard_normal_like(&Tensor::zeros([n_par], (Kind::Float, Device::Cpu)), &mut g) * 0.3;
        p.set_flat_params(&flat).unwrap();
        let actor = p.actor();
        assert_eq!((actor.obs_dim(), actor.act_dim()), (5, 3));
        let n = 7;
        let obs: Vec<f32> = (0..n * 5).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.4).collect();
        let o = Tensor::from_slice(&obs).view([n as i64, 5]);
        let torch = |t: Tensor| Vec::<f32>::try_from(t.reshape([-1])).unwrap();
        let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs()));
        let mean = torch(tch::no_grad(|| p.mean(&o)));
        assert!(mean.iter().any(|m| m.abs() > 0.1), "a test of a non-trivial mean: {mean:?}");
        assert!(close(&actor.mean(&obs, n), &mean));
        assert!(close(&actor.act(&obs, n, None), &mean));
        // the same draws from the same rng, and the rng left in the same state
        let (mut r1, mut r2) = (ChaCha8Rng::seed_from_u64(5), ChaCha8Rng::seed_from_u64(5));
        let sampled = torch(p.sample(&o, &mut r1));
        let acted = actor.act(&obs, n, Some(&mut r2));
        assert!(close(&acted, &sampled), "{acted:?} vs {sampled:?}");
        assert!(!close(&acted, &mean));
        assert_eq!(rand::Rng::next_u64(&mut r1), rand::Rng::next_u64(&mut r2));
        // a copy: changing the policy afterwards does not change the actor
        p.set_flat_params(&(flat * 2.0)).unwrap();
        assert!(close(&actor.mean(&obs, n), &mean));
        assert!(!close(&p.actor().mean(&obs, n), &mean));
    }

    #[test]
    fn relu_policy_with_observation_statistics_acts_alike_in_rust_and_libtorch() {
        let cfg = PolicyConfig { hidden: vec![32, 16], activation: Activation::Relu, normalize_obs: true, ..PolicyConfig::new(4, 2) };
        let p = GaussianPolicy::new(cfg, Device::Cpu, Kind::Float, 9);
        let names: Vec<String> = p.named_tensors().into_iter().map(|(n, _)| n).collect();
        assert!(names.ends_with(&["log_std".into(), "obs_mean".into(), "obs_var".into(), "obs_count".into()]), "{names:?}");
        assert_eq!(p.named_parameters().len() + 3, names.len(), "the statistics are not parameters (Adam never sees them)");
        // fresh statistics are the identity: mean 0, variance 1
        let fresh = p.obs_rms().unwrap();
        assert_eq!((fresh.mean, fresh.var), (vec![0.0; 4], vec![1.0; 4]));
        let rms = crate::util::RunningMeanStd { mean: vec![1.0, -2.0, 0.5, 100.0], var: vec![4.0, 0.25, 1.0, 1e-6], count: 50.0 };
        p.set_obs_rms(&rms).unwrap();
        let obs: Vec<f32> = vec![3.0, -2.5, 0.5, 101.0, -1.0, -1.0, 2.0, 99.9];
        let o = Tensor::from_slice(&obs).view([2, 4]);
        // the input the MLP sees: (x − m)/√(v + 1e-8), clipped to ±10 (the 4th: ±1/1e-3 → ±10)
        let z = Vec::<f32>::try_from(p.normalized(&o).reshape([-1])).unwrap();
        let want = [1.0, -1.0, 0.0, 10.0, -1.0, 2.0, 1.5, -10.0];
        assert!(z.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-3), "{z:?}");
        let torch = Vec::<f32>::try_from(tch::no_grad(|| p.mean(&o)).reshape([-1])).unwrap();
        let direct = Vec::<f32>::try_from(tch::no_grad(|| p.mlp.forward(&Tensor::from_slice(&want).view([2, 4]))).reshape([-1])).unwrap();
        let rust = p.actor().mean(&obs, 2);
        for ((a, b), c) in torch.iter().zip(&rust).zip(&direct) {
            assert!((a - b).abs() < 1e-5 && (a - c).abs() < 1e-4, "{torch:?} {rust:?} {direct:?}");
        }
        // a clone carries the statistics; a policy without them refuses new ones
        assert_eq!(p.try_clone().unwrap().obs_rms().unwrap().mean, rms.mean);
        assert!(small(0).set_obs_rms(&rms).is_err() && small(0).obs_rms().is_none());
        // and another architecture does not copy into it
        let mut tanh = GaussianPolicy::new(PolicyConfig { hidden: vec![32, 16], normalize_obs: true, ..PolicyConfig::new(4, 2) }, Device::Cpu, Kind::Float, 0);
        assert!(tanh.copy_from(&p).unwrap_err().to_string().contains("activation Relu"));
        // the statistics are kept in the policy's kind
        let dbl = GaussianPolicy::new(PolicyConfig { normalize_obs: true, ..PolicyConfig::new(4, 2) }, Device::Cpu, Kind::Double, 0);
        assert!(dbl.named_buffers().iter().all(|(_, t)| t.kind() == Kind::Double && !t.requires_grad()));
    }

    #[test]
    fn without_ortho_init_layers_are_uniform_like_torch_linear() {
        let cfg = PolicyConfig { hidden: vec![16], ortho_init: false, ..PolicyConfig::new(9, 2) };
        let p = GaussianPolicy::new(cfg, Device::Cpu, Kind::Double, 2);
        for (name, t) in p.named_parameters() {
            let v = Vec::<f64>::try_from(t.detach().reshape([-1])).unwrap();
            let bound = if name.starts_with("layer0") { 1.0 / 3.0 } else if name.starts_with("layer1") { 0.25 } else { continue };
            assert!(v.iter().all(|x| x.abs() <= bound), "{name} beyond ±{bound}");
            assert!(v.len() < 8 || v.iter().any(|x| x.abs() > 0.6 * bound), "{name} fills its range");
        }
        // the mean head is not scaled down as in the orthogonal init (gain 0.01)
        let head = p.named_parameters()[2].1.abs().max().double_value(&[]);
        assert!(head > 0.1, "{head}");
    }

    #[test]
    fn fast_tanh_is_within_3e_7_of_tanh() {
        let mut worst = 0f64;
        for i in -240_000..=240_000 {
            let x = i as f32 * 5e-5; // [-12, 12]
            worst = worst.max((fast_tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        assert!(worst < 3e-7, "{worst}");
        assert_eq!((fast_tanh(1e30), fast_tanh(-1e30), fast_tanh(0.0)), (1.0, -1.0, 0.0));
        assert!(fast_tanh(f32::NAN).is_nan());
    }
}
