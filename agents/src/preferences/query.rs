//! Which pairs to ask the teacher about: active querying as B-Pref (Lee et al., 2021) and PEBBLE define it.
//!
//! From a pool of unlabelled candidate pairs (pieces of the current policy's fresh rollouts, several times the
//! number of labels wanted), [`select`] picks `k`:
//! * [`QueryMode::Uniform`]: `k` at random;
//! * [`QueryMode::Disagreement`]: the `k` with the largest standard deviation across the reward ensemble's
//!   members of `P_m(a ≻ b) = σ(R_m(a) − R_m(b))`, each member's Bradley–Terry preference from its raw returns
//!   (B-Pref's `disagreement_sampling`);
//! * [`QueryMode::Entropy`]: the `k` with the largest mean over members of the entropy of `P_m(a ≻ b)`, the
//!   pairs the model is least sure about (B-Pref's `entropy_sampling`).
//!
//! [`QueryMode::Fixed`] is no querying: the experiment's single set of labels from the reference policy.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use crate::reward_model::RewardEnsemble;
use crate::rollout::{Segment, SegmentBatch};
use crate::seeding::ChaCha8Rng;

/// How the experiment chooses the pairs it asks about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryMode {
    /// One fixed set of `labels` pairs from the reference policy, one reward net (no rounds).
    #[default]
    Fixed,
    /// Each round: pairs drawn at random from the current policy's candidates.
    Uniform,
    /// Each round: the candidates the ensemble's members disagree on most.
    Disagreement,
    /// Each round: the candidates whose predicted preference has the highest entropy.
    Entropy,
}

impl QueryMode {
    /// The mode's name as in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            QueryMode::Fixed => "fixed",
            QueryMode::Uniform => "uniform",
            QueryMode::Disagreement => "disagreement",
            QueryMode::Entropy => "entropy",
        }
    }
}

/// Active querying (`[query]` of the experiment configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// `fixed` (default: no rounds), `uniform`, `disagreement` or `entropy`.
    pub mode: QueryMode,
    /// Rounds of (query, retrain the reward net, continue REBEL); the REBEL budget is split evenly.
    pub rounds: usize,
    /// Labels asked for per round; 0 = the experiment's `labels` / `rounds`. The total is rounds × this.
    pub labels_per_round: usize,
    /// Candidate pairs per round, as a multiple of the labels asked for.
    pub pool_factor: usize,
    /// Who answers the rounds' queries: the experiment's simulated `teacher` (default), or a person on the
    /// labelling page (`swimmer experiment --teacher page`).
    pub teacher: RoundTeacher,
}

/// Who answers the rounds' queries (`query.teacher`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoundTeacher {
    /// The experiment's simulated teacher (`[teacher]`), from the true reward.
    #[default]
    Simulated,
    /// A person, on the labelling page served for each round (crate `rebel-label`).
    Page,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig { mode: QueryMode::Fixed, rounds: 4, labels_per_round: 0, pool_factor: 10, teacher: RoundTeacher::Simulated }
    }
}

impl QueryConfig {
    /// Labels per round for an experiment of `labels` labels in all, or why the settings do not fit.
    pub fn per_round(&self, labels: usize) -> Result<usize, String> {
        if self.rounds == 0 {
            return Err("query.rounds must be ≥ 1".into());
        }
        if self.pool_factor == 0 {
            return Err("query.pool_factor must be ≥ 1 (candidates per label asked for)".into());
        }
        let k = if self.labels_per_round > 0 { self.labels_per_round } else { labels / self.rounds };
        if k == 0 {
            return Err(format!("{labels} labels over {} rounds leave none per round: raise labels or lower query.rounds", self.rounds));
        }
        if k * self.rounds != labels {
            return Err(format!(
                "labels = {labels} is not query.rounds × labels per round = {} × {k} = {}: set labels = {} (or \
                 leave query.labels_per_round at 0 and make labels a multiple of the rounds)",
                self.rounds,
                k * self.rounds,
                k * self.rounds
            ));
        }
        Ok(k)
    }
}

/// Each candidate's query score under `mode` (higher: more worth asking): per-member preference
/// probabilities' standard deviation (`Disagreement`) or mean entropy in nats (`Entropy`); 0 for the others.
pub fn query_scores(model: &RewardEnsemble, pairs: &[(Segment, Segment)], mode: QueryMode) -> Vec<f64> {
    if pairs.is_empty() || !matches!(mode, QueryMode::Disagreement | QueryMode::Entropy) {
        return vec![0.0; pairs.len()];
    }
    let mut segments = Vec::with_capacity(2 * pairs.len());
    for (i, (a, b)) in pairs.iter().enumerate() {
        segments.push(Segment { group: i, ..a.clone() });
        segments.push(Segment { group: i, ..b.clone() });
    }
    let batch = SegmentBatch {
        obs_dim: model.obs_dim(),
        act_dim: model.act_dim(),
        k: 2,
        segments,
        env_steps: 0,
        episode_returns: Vec::new(),
    };
    let r = model.member_returns(&batch.to_tensors(Device::Cpu)).to_kind(Kind::Double); // [M, 2P]
    let m = r.size()[0];
    let r = r.view([m, pairs.len() as i64, 2]);
    let p = (r.select(2, 0) - r.select(2, 1)).sigmoid(); // [M, P]
    let score = match mode {
        QueryMode::Disagreement => p.std_dim([0i64].as_slice(), false, false),
        _ => {
            let q = (-&p + 1.0).clamp(1e-12, 1.0);
            let pc = p.clamp(1e-12, 1.0);
            let h = -(&p * pc.log() + (-&p + 1.0) * q.log());
            h.mean_dim([0i64].as_slice(), false, Kind::Double)
        }
    };
    Vec::<f64>::try_from(score.contiguous()).unwrap_or_else(|_| vec![0.0; pairs.len()])
}

/// The candidates to ask about, in the order to ask: all of them ranked by [`query_scores`] (highest first, ties
/// by position), or shuffled with `rng` for `Uniform` or without a model. The caller asks down the list until it
/// has its labels (a teacher may skip a pair).
pub fn select(mode: QueryMode, model: Option<&RewardEnsemble>, pairs: &[(Segment, Segment)], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    match (mode, model) {
        (QueryMode::Disagreement | QueryMode::Entropy, Some(model)) => {
            let s = query_scores(model, pairs, mode);
            // NaN scores (a diverged member) go last
            let key = |i: usize| if s[i].is_nan() { f64::NEG_INFINITY } else { s[i] };
            order.sort_by(|&i, &j| key(j).total_cmp(&key(i)).then(i.cmp(&j)));
        }
        _ => order.shuffle(rng),
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_round_labels_and_their_errors() {
        let q = QueryConfig { mode: QueryMode::Entropy, rounds: 4, ..QueryConfig::default() };
        assert_eq!(q.per_round(200), Ok(50));
        assert!(q.per_round(202).unwrap_err().contains("set labels = 200"));
        assert!(q.per_round(3).unwrap_err().contains("none per round"));
        let q = QueryConfig { labels_per_round: 25, ..q };
        assert_eq!(q.per_round(100), Ok(25));
        assert!(q.per_round(200).unwrap_err().contains("set labels = 100"));
        assert!(QueryConfig { rounds: 0, ..q.clone() }.per_round(100).is_err());
        assert!(QueryConfig { pool_factor: 0, ..q }.per_round(100).is_err());
    }

    #[test]
    fn modes_parse_by_name() {
        for m in [QueryMode::Fixed, QueryMode::Uniform, QueryMode::Disagreement, QueryMode::Entropy] {
            let q: QueryConfig = toml::from_str(&format!("mode = \"{}\"", m.name())).unwrap();
            assert_eq!(q.mode, m);
        }
        let e = toml::from_str::<QueryConfig>("mode = \"random\"").unwrap_err().to_string();
        assert!(e.contains("disagreement"), "{e}");
    }

    #[test]
    fn uniform_is_a_seeded_permutation() {
        let pairs: Vec<(Segment, Segment)> = (0..20).map(|_| (Segment::default(), Segment::default())).collect();
        let a = select(QueryMode::Uniform, None, &pairs, &mut crate::seeding::stream(3, crate::seeding::Domain::Preferences, 3));
        let b = select(QueryMode::Uniform, None, &pairs, &mut crate::seeding::stream(3, crate::seeding::Domain::Preferences, 3));
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..20).collect::<Vec<_>>());
        assert_ne!(a, s, "shuffled");
    }
}
