//! The one MLP of the project: the policy's mean, PPO's value net and the reward net's members.

use crate::seeding::ChaCha8Rng;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Hidden-layer nonlinearity (`"tanh"`, `"relu"`, `"leaky_relu"` in configs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Tanh,
    /// max(0, x).
    Relu,
    /// LeakyReLU with slope 0.01.
    LeakyRelu,
}

/// Affine layers `y = x Wᵀ + b` (`W [out, in]`, `b [out]`, libtorch's Linear convention) with
/// `activation` between them and none after the last.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<(Tensor, Tensor)>,
    activation: Activation,
}

impl Mlp {
    /// An MLP over existing `(weight, bias)` tensors (e.g. a VarStore's).
    pub fn from_layers(layers: Vec<(Tensor, Tensor)>, activation: Activation) -> Mlp {
        Mlp { layers, activation }
    }

    /// Layers `sizes[0] → … → sizes[n]` initialised like PyTorch's `nn.Linear` (see [`linear_layers`]).
    pub fn new(sizes: &[usize], activation: Activation, rng: &mut ChaCha8Rng, device: Device) -> Mlp {
        Mlp::from_layers(linear_layers(sizes, rng, device), activation)
    }

    /// `x [..., sizes[0]] → [..., sizes[n]]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let n = self.layers.len();
        let mut h = x.shallow_clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(&w.tr()) + b;
            if i + 1 < n {
                h = match self.activation {
                    Activation::Tanh => h.tanh(),
                    Activation::Relu => h.relu(),
                    Activation::LeakyRelu => h.leaky_relu(),
                };
            }
        }
        h
    }

    /// Parameters as `{prefix}layer{i}.weight`, `{prefix}layer{i}.bias`, shallow clones (shared storage).
    pub fn named_parameters(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for (i, (w, b)) in self.layers.iter().enumerate() {
            out.push((format!("{prefix}layer{i}.weight"), w.shallow_clone()));
            out.push((format!("{prefix}layer{i}.bias"), b.shallow_clone()));
        }
        out
    }

    /// The same network over the same tensors (shared storage).
    pub fn shallow_clone(&self) -> Mlp {
        Mlp::from_layers(self.layers.iter().map(|(w, b)| (w.shallow_clone(), b.shallow_clone())).collect(), self.activation)
    }

    /// Number of affine layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether it has no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// Layers `sizes[0] → sizes[1] → … → sizes[n]` as `(weight [out, in], bias [out])` leaf tensors
/// requiring grad, drawn like PyTorch's `nn.Linear` default: U(−1/√fan_in, 1/√fan_in) for weight
/// and bias, from `rng` (same seed, same layers).
pub fn linear_layers(sizes: &[usize], rng: &mut ChaCha8Rng, device: Device) -> Vec<(Tensor, Tensor)> {
    sizes
        .windows(2)
        .map(|w| {
            let bound = 1.0 / (w[0] as f64).sqrt();
            let mut u = |n: usize| -> Vec<f32> { (0..n).map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32).collect() };
            let wt = Tensor::from_slice(&u(w[0] * w[1])).view([w[1] as i64, w[0] as i64]).to_device(device);
            let b = Tensor::from_slice(&u(w[1])).to_device(device);
            (wt.set_requires_grad(true), b.set_requires_grad(true))
        })
        .collect()
}
