//! What scores a trajectory piece: the true environment reward, a learned reward model, or any
//! user function. A segment's score is the sum of its per-step scores.

use tch::{Kind, Tensor};

use crate::rollout::SegmentTensors;

/// Scores the steps of padded segments.
pub trait Scorer {
    /// Short name for logs (`true`, `reward_model`, …).
    fn name(&self) -> String;
    /// Per-step scores `[S, L]` for `t.obs [S, L, obs_dim]`, `t.act [S, L, act_dim]` (values on padding
    /// are ignored).
    fn step_scores(&self, t: &SegmentTensors) -> Tensor;
    /// Preference labels spent to build this scorer (0 for the true reward).
    fn labels_used(&self) -> u64 {
        0
    }
    /// Segment scores `[S]`: the masked sum of [`Scorer::step_scores`].
    fn segment_scores(&self, t: &SegmentTensors) -> Tensor {
        tch::no_grad(|| (self.step_scores(t).to_kind(Kind::Float) * &t.mask).sum_dim_intlist([1i64].as_slice(), false, Kind::Float))
    }
}

/// The environment's own reward.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrueReward;

impl Scorer for TrueReward {
    fn name(&self) -> String {
        "true".into()
    }
    fn step_scores(&self, t: &SegmentTensors) -> Tensor {
        t.rewards.shallow_clone()
    }
}

/// Any per-step function of (observation, action).
pub struct FnScorer<F: Fn(&[f32], &[f32]) -> f32> {
    /// Name for logs.
    pub name: String,
    /// `f(obs [obs_dim], act [act_dim]) -> score`.
    pub f: F,
}

impl<F: Fn(&[f32], &[f32]) -> f32> Scorer for FnScorer<F> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn step_scores(&self, t: &SegmentTensors) -> Tensor {
        let (s, l, od) = t.obs.size3().expect("obs [S, L, obs_dim]");
        let ad = t.act.size()[2];
        let obs = Vec::<f32>::try_from(t.obs.to_kind(Kind::Float).to_device(tch::Device::Cpu).view([-1])).expect("obs");
        let act = Vec::<f32>::try_from(t.act.to_kind(Kind::Float).to_device(tch::Device::Cpu).view([-1])).expect("act");
        let (od, ad) = (od as usize, ad as usize);
        let out: Vec<f32> = (0..(s * l) as usize)
            .map(|i| (self.f)(&obs[i * od..(i + 1) * od], &act[i * ad..(i + 1) * ad]))
            .collect();
        Tensor::from_slice(&out).view([s, l]).to_device(t.obs.device())
    }
}
