//! Checkpoints in safetensors: named tensors (policy parameters, Adam moments, any other network) plus a JSON
//! metadata record, written atomically and validated on load.
//!
//! ## File layout
//! A standard `.safetensors` file (readable by `safetensors.torch.load_file` in Python). Tensor names are
//! `<prefix>.<name>`, e.g. `policy.layer0.weight`, `optim.m.layer0.weight`. The safetensors header metadata holds
//! * `format` = `"rebel-rs-checkpoint"`,
//! * `meta` = [`CheckpointMeta`] as JSON (format version, policy architecture, env id, counters, seed, config
//!   hash, free-form extras),
//! * `checksum` = FNV-1a 64 (hex) over every tensor's name, dtype, shape and bytes, which catches corrupted data
//!   that the safetensors header checks alone would not.
//!
//! (the container of [`crate::io`]).
//!
//! Only `F32` and `F64` tensors are stored (the kinds of this project's networks), little-endian.
//!
//! ## Guarantees
//! * [`Checkpoint::save`] writes with [`crate::io::write_atomic`]: a crash leaves the old checkpoint or the new
//!   one, never a half-written file.
//! * Loading and restoring never panic on bad input: a missing, truncated or corrupt file, a foreign safetensors
//!   file, another format version, another architecture or a tensor of the wrong shape each give a
//!   [`CheckpointError`] that says what is wrong and what to do.
//! * Nothing is allocated from the metadata's sizes before the stored tensors are checked against them
//!   ([`Checkpoint::build_policy`], [`Checkpoint::expect_shapes`]; issue 16).
//!
//! ## Exact resumption
//! Policy parameters and the moments and step count of [`crate::adam::Adam`] are restored bit for bit. Random
//! streams are not serialised: derive them with [`crate::seeding::stream`] from the stored `seed` and a stored
//! counter (e.g. the iteration), so that a resumed run draws the same numbers as an uninterrupted one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::adam::Adam;
use crate::io::{self, ContainerError, Stored};
use crate::policy::{GaussianPolicy, PolicyConfig};

/// Version of the checkpoint layout written by this build; loading any other version is an error.
pub const FORMAT_VERSION: u32 = 1;
/// Value of the `format` metadata key.
pub const FORMAT_NAME: &str = "rebel-rs-checkpoint";

/// Everything that can go wrong reading or writing a checkpoint. Messages say what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// No file at the path.
    #[error("checkpoint {path} does not exist: check the path (a run directory keeps its checkpoint as <run dir>/checkpoint.safetensors)")]
    NotFound {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// An I/O error other than a missing file.
    #[error("cannot {action} checkpoint {path}: {source}{}", crate::io::full_disk_hint(source))]
    Io {
        /// "read", "write", "rename", …
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid checkpoint (truncated, corrupted, or not a safetensors file).
    #[error(
        "checkpoint {path} is corrupt or truncated ({reason}); it was probably not written completely or was \
         modified: use an earlier checkpoint of the run or retrain"
    )]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What failed to validate.
        reason: String,
    },
    /// A valid safetensors file that is not a rebel-rs checkpoint.
    #[error("{path} is a safetensors file but not a rebel-rs checkpoint ({reason}): pass a checkpoint written by rebel-rs")]
    Foreign {
        /// The file concerned.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A checkpoint of another format version.
    #[error(
        "checkpoint {path} has format version {found}, this build reads version {supported}: load it with the \
         rebel-rs version that wrote it, or retrain"
    )]
    Version {
        /// The file concerned.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The stored network does not have the architecture of the one being restored.
    #[error(
        "checkpoint {path} does not fit the network being restored: {reason}; build the network from the \
         checkpoint's own config (Checkpoint::build_policy) or choose a checkpoint of this architecture"
    )]
    Architecture {
        /// The file concerned (or `<memory>`).
        path: PathBuf,
        /// Which dimension, tensor or shape differs.
        reason: String,
    },
    /// A tensor of a kind that checkpoints do not store.
    #[error("tensor {name} has kind {kind:?}; checkpoints store only Float and Double tensors")]
    UnsupportedKind {
        /// Tensor name.
        name: String,
        /// Its kind.
        kind: Kind,
    },
    /// A libtorch error while converting or copying tensors.
    #[error("libtorch error while handling checkpoint tensors: {0}")]
    Tch(#[from] tch::TchError),
}

/// The JSON metadata of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Layout version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Architecture of the policy stored under the prefix `policy` (if any).
    pub policy: Option<PolicyConfig>,
    /// Environment id, e.g. `"Swimmer-v5"`.
    pub env_id: String,
    /// The environment options the run was made with (`env.options` of its configuration, e.g. the Swimmer's
    /// solver settings): `eval` and `render` run the policy in the same environment unless told otherwise.
    /// Empty in checkpoints written before they were recorded.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub env_options: toml::Table,
    /// Every setting of the environment the run stepped in, defaults included ([`rebel_envs::settings`]), so that
    /// `eval`, `render` and a resume run it as it was trained even after a default changes. Empty in checkpoints
    /// written before they were recorded.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub env_settings: toml::Table,
    /// The revision of the environment's dynamics the run stepped in ([`rebel_envs::dynamics_revision`]), so that
    /// `eval`, `render` and a resume on a build whose dynamics changed since say which changes the policy meets.
    /// `None` in checkpoints written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_revision: Option<u32>,
    /// The machines the run ran on, each from the env steps where it took over ([`crate::machine`]): its numbers
    /// follow the processor. Empty in checkpoints written before they were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<crate::machine::MachinePart>,
    /// Algorithm name, e.g. `"rebel"`.
    pub algo: String,
    /// Progress counters, e.g. `iteration`, `env_steps`, `updates`, `labels`; Adam step counts are stored here
    /// as `<prefix>.adam_step`.
    pub counters: BTreeMap<String, u64>,
    /// The run's master seed (random streams derive from it, see [`crate::seeding`]).
    pub seed: u64,
    /// Hash of the resolved run configuration (e.g. [`crate::io::fnv1a_hex`] of its TOML), to detect resuming with another
    /// config.
    pub config_hash: String,
    /// Anything else (free-form JSON).
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl CheckpointMeta {
    /// Metadata with the current format version, empty counters, no policy and `extra = null`.
    pub fn new(env_id: impl Into<String>, algo: impl Into<String>, seed: u64, config_hash: impl Into<String>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            policy: None,
            env_id: env_id.into(),
            env_options: toml::Table::new(),
            env_settings: toml::Table::new(),
            env_revision: None,
            machines: Vec::new(),
            algo: algo.into(),
            counters: BTreeMap::new(),
            seed,
            config_hash: config_hash.into(),
            extra: serde_json::Value::Null,
        }
    }
}

/// A checkpoint in memory: metadata plus named tensors (CPU copies). Build it with the `add_*` methods and
/// [`Checkpoint::save`]; read it with [`Checkpoint::load`] and the `restore_*` methods.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The metadata record.
    pub meta: CheckpointMeta,
    tensors: BTreeMap<String, Stored>,
    source: PathBuf,
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    match dtype {
        Dtype::F32 => Some(Kind::Float),
        Dtype::F64 => Some(Kind::Double),
        _ => None,
    }
}

fn to_stored(name: &str, t: &Tensor) -> Result<Stored, CheckpointError> {
    let kind = t.f_kind()?;
    let dtype = match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        k => return Err(CheckpointError::UnsupportedKind { name: name.to_string(), kind: k }),
    };
    let cpu = t.detach().f_to_device(Device::Cpu)?.f_contiguous()?;
    let numel = cpu.numel();
    let mut data = vec![0u8; numel * kind.elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut data, numel)?;
    Ok(Stored { dtype, shape: cpu.size().iter().map(|&d| d as usize).collect(), data })
}

impl Checkpoint {
    /// An empty checkpoint with this metadata.
    pub fn new(meta: CheckpointMeta) -> Self {
        Self { meta, tensors: BTreeMap::new(), source: PathBuf::from("<memory>") }
    }

    /// Names of all stored tensors, sorted.
    pub fn tensor_names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// Stores copies of `named` tensors as `<prefix>.<name>` (replacing tensors of the same name).
    pub fn add_tensors(&mut self, prefix: &str, named: &[(String, Tensor)]) -> Result<(), CheckpointError> {
        for (name, t) in named {
            let full = format!("{prefix}.{name}");
            let stored = to_stored(&full, t)?;
            self.tensors.insert(full, stored);
        }
        Ok(())
    }

    /// Stores the policy's parameters under `prefix` and its architecture in `meta.policy`.
    pub fn add_policy(&mut self, prefix: &str, policy: &GaussianPolicy) -> Result<(), CheckpointError> {
        self.meta.policy = Some(policy.config().clone());
        self.add_tensors(prefix, &policy.named_tensors())
    }

    /// Stores Adam's moments under `prefix` and its step count as the counter `<prefix>.adam_step`.
    pub fn add_adam(&mut self, prefix: &str, adam: &Adam) -> Result<(), CheckpointError> {
        self.meta.counters.insert(format!("{prefix}.adam_step"), adam.step_count());
        self.add_tensors(prefix, &adam.named_state())
    }

    /// Writes the checkpoint atomically (temporary file in the same folder, fsync, rename, fsync of the folder).
    /// Creates the parent folder if needed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let bytes = self.to_bytes(path)?;
        io::write_atomic(path, &bytes).map_err(|e| CheckpointError::Io { action: e.action, path: e.path, source: e.source })
    }

    /// The bytes [`Checkpoint::save`] writes (what [`Checkpoint::from_bytes`] reads); `path` names it in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, CheckpointError> {
        let meta_json = serde_json::to_string(&self.meta).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("metadata does not serialise: {e}"),
        })?;
        io::encode(FORMAT_NAME, &meta_json, &self.tensors).map_err(|reason| CheckpointError::Corrupt { path: path.to_path_buf(), reason })
    }

    /// Reads and validates a checkpoint: file present and complete, safetensors structure, rebel-rs metadata,
    /// format version, checksum, supported dtypes.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        Self::from_bytes(&Self::read_file(path)?, path)
    }

    /// The bytes of a checkpoint file (a missing file is [`CheckpointError::NotFound`]).
    pub fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
        fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CheckpointError::NotFound { path: path.to_path_buf() }
            } else {
                CheckpointError::Io { action: "read", path: path.to_path_buf(), source }
            }
        })
    }

    /// [`Checkpoint::load`] from bytes in memory; `path` is only used in error messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_path_buf(), reason };
        let foreign = |reason: &str| CheckpointError::Foreign { path: path.to_path_buf(), reason: reason.to_string() };
        let decoded = io::decode(bytes, FORMAT_NAME, &[Dtype::F32, Dtype::F64]).map_err(|e| match e {
            ContainerError::Corrupt(reason) => corrupt(reason),
            ContainerError::Foreign(reason) => foreign(&reason),
        })?;
        let (raw, version) = io::meta_version(&decoded.meta).map_err(corrupt)?;
        if version != FORMAT_VERSION as u64 {
            return Err(CheckpointError::Version {
                path: path.to_path_buf(),
                found: version.min(u32::MAX as u64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let meta: CheckpointMeta =
            serde_json::from_value(raw).map_err(|e| corrupt(format!("metadata does not parse: {e}")))?;
        Ok(Self { meta, tensors: decoded.tensors, source: path.to_path_buf() })
    }

    fn arch_err(&self, reason: String) -> CheckpointError {
        CheckpointError::Architecture { path: self.source.clone(), reason }
    }

    /// Checks that exactly the tensors `<prefix>.<name>` of `expected` are stored under `prefix`, with these
    /// shapes; cheap, so call it before allocating a network whose sizes come from the metadata.
    pub fn expect_shapes(&self, prefix: &str, expected: &[(String, Vec<usize>)]) -> Result<(), CheckpointError> {
        io::expect_shapes(&self.tensors, prefix, expected).map_err(|r| self.arch_err(r))
    }

    /// Copies the stored `<prefix>.<name>` tensors into `targets` (in place, without gradient, converted to each
    /// target's kind and device). Everything is checked before anything is copied: every target must be stored
    /// with the target's shape, and no other tensor may be stored under `prefix`.
    pub fn restore_tensors(&self, prefix: &str, targets: &[(String, Tensor)]) -> Result<(), CheckpointError> {
        let expected: Vec<(String, Vec<usize>)> =
            targets.iter().map(|(n, t)| (n.clone(), t.size().iter().map(|&d| d as usize).collect())).collect();
        self.expect_shapes(prefix, &expected)?;
        let sources: Vec<&Stored> = targets.iter().map(|(n, _)| &self.tensors[&format!("{prefix}.{n}")]).collect();
        for ((_, t), s) in targets.iter().zip(sources) {
            let kind = kind_of(s.dtype).expect("dtype checked on load");
            let shape: Vec<i64> = s.shape.iter().map(|&d| d as i64).collect();
            let src = Tensor::f_from_data_size(&s.data, &shape, kind)?.f_to_device(t.device())?.f_to_kind(t.kind())?;
            let mut dst = t.shallow_clone();
            tch::no_grad(|| dst.f_copy_(&src))?;
        }
        Ok(())
    }

    /// Restores a policy stored under `prefix`, after checking that `meta.policy` has the policy's
    /// architecture ([`PolicyConfig::same_architecture`]).
    pub fn restore_policy(&self, prefix: &str, policy: &mut GaussianPolicy) -> Result<(), CheckpointError> {
        let stored = self
            .meta
            .policy
            .as_ref()
            .ok_or_else(|| self.arch_err("the checkpoint holds no policy config".to_string()))?;
        let cur = policy.config();
        if !stored.same_architecture(cur) {
            return Err(self.arch_err(format!(
                "stored policy has {}; the current one has {} (set policy.hidden, policy.activation and \
                 policy.normalize_obs to the stored ones)",
                stored.describe(),
                cur.describe()
            )));
        }
        self.restore_tensors(prefix, &policy.named_tensors())
    }

    /// Builds a new policy from `meta.policy` and restores its parameters from `prefix`.
    pub fn build_policy(&self, prefix: &str, device: Device, kind: Kind) -> Result<GaussianPolicy, CheckpointError> {
        let cfg = self
            .meta
            .policy
            .clone()
            .ok_or_else(|| self.arch_err("the checkpoint holds no policy config".to_string()))?;
        cfg.validate().map_err(|e| self.arch_err(format!("stored policy config: {e}")))?;
        self.expect_shapes(prefix, &policy_shapes(&cfg))?;
        let mut p = GaussianPolicy::new(cfg, device, kind, 0);
        self.restore_policy(prefix, &mut p)?;
        Ok(p)
    }

    /// Restores Adam's moments from `prefix` and its step count from the counter `<prefix>.adam_step`.
    pub fn restore_adam(&self, prefix: &str, adam: &mut Adam) -> Result<(), CheckpointError> {
        let key = format!("{prefix}.adam_step");
        let step = *self
            .meta
            .counters
            .get(&key)
            .ok_or_else(|| self.arch_err(format!("counter {key} is missing (no optimiser state stored)")))?;
        self.restore_tensors(prefix, &adam.named_state())?;
        adam.set_step_count(step);
        Ok(())
    }
}

/// Names and shapes of a [`GaussianPolicy`]'s parameters for `cfg` (what [`GaussianPolicy::named_parameters`]
/// gives), computed without building it.
pub fn policy_shapes(cfg: &PolicyConfig) -> Vec<(String, Vec<usize>)> {
    let mut sizes = vec![cfg.obs_dim];
    sizes.extend(&cfg.hidden);
    sizes.push(cfg.act_dim);
    let mut out = io::mlp_shapes("", &sizes);
    out.push(("log_std".to_string(), vec![cfg.act_dim]));
    if cfg.normalize_obs {
        out.extend([("obs_mean".to_string(), vec![cfg.obs_dim]), ("obs_var".to_string(), vec![cfg.obs_dim]), ("obs_count".to_string(), vec![1])]);
    }
    out
}
