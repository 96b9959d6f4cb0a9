//! Plain MLP layers shared by the value net and the reward net.

use crate::seeding::ChaCha8Rng;
use rand::RngExt;
use tch::{Device, Tensor};

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
