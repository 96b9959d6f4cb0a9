//! What scores a trajectory piece: the true environment reward or a learned reward model. A segment's score is the sum of its per-step scores.

use tch::{Kind, Tensor};

use crate::rollout::SegmentTensors;

/// Scores the steps of padded segments.
pub trait Scorer {
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
    fn step_scores(&self, t: &SegmentTensors) -> Tensor {
        t.rewards.shallow_clone()
    }
}
