//! The `Algorithm` trait and its registry (the learner side of `rebel_envs::registry`).
//!
//! An algorithm is one file: a config type implementing [`AlgoConfig`] (serde, defaults, range
//! checks, and `build`), and the learner it builds implementing [`Algorithm`] (what batch it needs,
//! its update returning named statistics, its state for checkpoints). One registration line makes
//! it available to `train` under its name, with its section `[NAME]` in the configuration:
//!
//! ```ignore
//! rebel_agents::algorithm::register::<MyConfig>();
//! ```
//!
//! The built-ins (`rebel`, `ppo`, `reinforce`, `rloo`, `dpo`) are registered the first time the
//! registry is used.

use std::collections::BTreeMap;
use std::sync::{OnceLock, RwLock};

use crate::seeding::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::Device;

use rebel_envs::vec_env::VecEnv;

use crate::adam::Adam;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::policy::GaussianPolicy;
use crate::rollout::{PairSpec, SegmentBatch, SegmentTensors};
use crate::scorer::Scorer;

/// What the training loop collects for an algorithm before each update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Collect {
    /// `groups` start states with `spec.k` segments each, sampled by the current policy
    /// (pairs or groups of k from one state, branches with tails, or whole episodes with `k = 1`).
    Segments { groups: usize, spec: PairSpec },
    /// Nothing: the algorithm gathers its own data in [`Algorithm::update`] from `ctx.venv`, which
    /// has `envs` environments (iterative DPO labels fresh pairs itself).
    Own { envs: usize },
    /// Offline: no environment steps at all; the metrics are indexed by iteration.
    Offline,
}

impl Collect {
    /// Environments of the collection's vectorised env (0 offline).
    pub fn num_envs(&self) -> usize {
        match self {
            Collect::Segments { groups, spec } => groups * spec.k,
            Collect::Own { envs } => *envs,
            Collect::Offline => 0,
        }
    }
}

/// A collected batch: the segments and the same as padded tensors on the learner's device.
pub struct Batch {
    pub segments: SegmentBatch,
    pub tensors: SegmentTensors,
}

/// What an update may use besides its own state.
pub struct Ctx<'a> {
    /// The policy being trained (its parameters are the ones `adam` steps).
    pub policy: &'a GaussianPolicy,
    pub adam: &'a mut Adam,
    /// The run's reference policy (the win-rate opponent; the anchor of optional KL terms).
    pub reference: &'a GaussianPolicy,
    /// What scores segments (true reward or reward model).
    pub scorer: &'a dyn Scorer,
    /// The collection env (stepped by the loop for [`Collect::Segments`], by the algorithm for
    /// [`Collect::Own`]).
    pub venv: &'a mut VecEnv,
    pub device: Device,
    /// Master seed of the run and the iteration (from 1).
    pub seed: u64,
    pub iteration: u64,
    /// The share of the run's env-step budget done before this iteration, in [0, 1] (for learning-rate schedules).
    pub progress: f64,
    /// This iteration's random stream (shuffles); under data parallelism, this rank's.
    pub rng: &'a mut ChaCha8Rng,
    /// The ranks of a data-parallel run (one process: [`rebel_dist::SingleProcess`]). With more than one, the
    /// batch is this rank's share of the iteration's groups, and an algorithm that says it supports data
    /// parallelism ([`Algorithm::data_parallel`]) reduces its gradients and batch statistics over them.
    pub world: &'a dyn rebel_dist::Collective,
}

/// What an update reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// Named statistics, logged as given (`losses/…`, `charts/…`).
    pub stats: Vec<(&'static str, f64)>,
    /// Mean score the scorer gave the batch's segments (NaN when not scored).
    pub segment_score: f64,
    /// With [`Collect::Own`]: the env steps spent, the true returns of the pieces collected and
    /// the seconds the collection took (not counted as learner time).
    pub env_steps: u64,
    pub segment_true: Vec<f64>,
    pub collect_s: f64,
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum AlgoError {
    /// A non-finite loss or gradient: the run stops and keeps its last good checkpoint.
    #[error("{0}")]
    Diverged(String),
    /// Anything else (bad data, an environment failure, ...), with what to do.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A learner: one per run, built by its [`AlgoConfig`].
pub trait Algorithm {
    /// What the loop collects before each update.
    fn collect(&self) -> Collect;
    /// The policy's Adam learning rate.
    fn lr(&self) -> f64;
    /// A budget in iterations instead of `env_steps` (offline and iterative DPO).
    fn iterations(&self) -> Option<u64> {
        None
    }
    /// Whether the update supports data-parallel training: with [`Collect::Segments`], it computes every batch
    /// statistic over `ctx.world`'s ranks and steps with [`Adam::minimize_shared`], so that the ranks' policies
    /// stay equal (the loop checks it) and the step is the one of one process on all ranks' groups.
    fn data_parallel(&self) -> bool {
        false
    }
    /// With [`Collect::Segments`]: the fewest env steps a batch holds. When a round of `groups` start states
    /// gives fewer (early episodes that terminate quickly), the loop collects further rounds, with further
    /// start states, until the batch holds at least this many (SB3's fixed `n_steps` rollouts, made of whole
    /// episodes). 0 (the default): one round. Single-process only.
    fn min_steps(&self) -> usize {
        0
    }
    /// Whether its update keeps the policy's observation statistics (`policy.normalize_obs`) up to date; a
    /// policy that standardises its input can be trained from scratch only by such an algorithm.
    fn updates_obs_norm(&self) -> bool {
        false
    }
    /// The key of its section that sets [`Collect::Segments`]'s `groups` (named in error messages).
    fn groups_key(&self) -> &'static str {
        "groups"
    }
    /// One update. `batch` is `Some` exactly for [`Collect::Segments`].
    fn update(&mut self, ctx: &mut Ctx, batch: Option<&Batch>) -> Result<Update, AlgoError>;
    /// Adds its state besides the policy and its Adam to a checkpoint.
    fn save(&self, _ck: &mut Checkpoint) -> Result<(), AlgoError> {
        Ok(())
    }
    /// Restores what [`Algorithm::save`] wrote.
    fn restore(&mut self, _ck: &Checkpoint) -> Result<(), AlgoError> {
        Ok(())
    }
    /// Preference labels the algorithm spent itself (DPO); `None`: those of the scorer.
    fn labels_used(&self) -> Option<u64> {
        None
    }
}

/// What a learner is built from besides its config.
pub struct Init<'a> {
    pub env_id: &'a str,
    pub obs_dim: usize,
    pub act_dim: usize,
    pub device: Device,
    pub seed: u64,
    /// The policy the run starts from.
    pub initial: &'a GaussianPolicy,
}

/// An algorithm's configuration: its section `[NAME]` of the run configuration.
pub trait AlgoConfig: Serialize + DeserializeOwned + Default + 'static {
    /// Registry name and section name.
    const NAME: &'static str;
    /// Range checks serde cannot do; the message names the key (`rebel.eta must be > 0`).
    fn validate(&self) -> Result<(), String>;
    /// The learner.
    fn build(&self, init: &Init) -> Result<Box<dyn Algorithm>, String>;
}

/// Parses a section into `C`, naming the dotted key on failure (unknown keys list the valid ones).
pub fn parse_section<C: AlgoConfig>(section: &toml::Table) -> Result<C, String> {
    serde_path_to_error::deserialize::<_, C>(toml::Value::Table(section.clone())).map_err(|e| {
        let msg = e.inner().message().trim_end().to_string();
        let kind = if msg.starts_with("unknown field") { "unknown key" } else { "invalid value for" };
        format!("{kind} `{}.{}`: {msg}", C::NAME, e.path())
    })
}

/// `C` as a complete section (every key, defaults filled in).
pub fn to_section<C: AlgoConfig>(c: &C) -> toml::Table {
    match toml::Value::try_from(c) {
        Ok(toml::Value::Table(t)) => t,
        _ => panic!("{}'s config does not serialise to a TOML table", C::NAME),
    }
}

#[derive(Clone, Copy)]
struct Entry {
    resolve: fn(&toml::Table, bool) -> Result<toml::Table, String>,
    make: fn(&toml::Table, &Init) -> Result<Box<dyn Algorithm>, String>,
}

fn resolve<C: AlgoConfig>(section: &toml::Table, validate: bool) -> Result<toml::Table, String> {
    let c: C = parse_section(section)?;
    if validate {
        c.validate()?;
    }
    Ok(to_section(&c))
}

fn make<C: AlgoConfig>(section: &toml::Table, init: &Init) -> Result<Box<dyn Algorithm>, String> {
    let c: C = parse_section(section)?;
    c.validate()?;
    c.build(init)
}

fn entry<C: AlgoConfig>() -> (String, Entry) {
    (C::NAME.to_string(), Entry { resolve: resolve::<C>, make: make::<C> })
}

fn table() -> &'static RwLock<BTreeMap<String, Entry>> {
    static TABLE: OnceLock<RwLock<BTreeMap<String, Entry>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        use crate::algos::*;
        RwLock::new(BTreeMap::from([
            entry::<rebel::RebelConfig>(),
            entry::<ppo::PpoConfig>(),
            entry::<reinforce::ReinforceConfig>(),
            entry::<rloo::RlooConfig>(),
            entry::<dpo::DpoConfig>(),
        ]))
    })
}

fn lookup(name: &str) -> Result<Entry, String> {
    let t = table().read().unwrap_or_else(|e| e.into_inner());
    t.get(name).copied().ok_or_else(|| format!("algo = {name:?} is not known; valid: {}", names().iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")))
}

/// Registers (or replaces) the algorithm configured by `C`, under `C::NAME`.
pub fn register<C: AlgoConfig>() {
    let (name, e) = entry::<C>();
    table().write().unwrap_or_else(|e| e.into_inner()).insert(name, e);
}

/// The registered names, sorted.
pub fn names() -> Vec<String> {
    table().read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
}

/// Whether `name` is registered.
pub fn is_registered(name: &str) -> bool {
    table().read().unwrap_or_else(|e| e.into_inner()).contains_key(name)
}

/// The section of algorithm `name` completed with its defaults; its keys and types are checked,
/// and with `validate` its ranges too.
pub fn resolve_section(name: &str, section: &toml::Table, validate: bool) -> Result<toml::Table, String> {
    (lookup(name)?.resolve)(section, validate)
}

/// Builds algorithm `name` from its section.
pub fn make_algorithm(name: &str, section: &toml::Table, init: &Init) -> Result<Box<dyn Algorithm>, String> {
    (lookup(name)?.make)(section, init)
}
