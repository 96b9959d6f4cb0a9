//! The dataset file (module docs of [`crate::preferences`]): the [`crate::io`] container with format
//! `rebel-rs-preferences`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rebel_envs::EnvError;
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use super::TeacherConfig;
use crate::io::{self, ContainerError, Stored};
use crate::rollout::{Segment, SegmentBatch};

/// Version of the dataset layout written by this build; loading any other version is an error.
pub const DATASET_VERSION: u32 = 1;
/// Value of the `format` metadata key.
pub const DATASET_FORMAT: &str = "rebel-rs-preferences";

/// Everything that can go wrong building, writing or reading a preference dataset.
#[derive(Debug, thiserror::Error)]
pub enum PreferenceError {
    /// No file at the path.
    #[error("preference dataset {path} does not exist: check the path or create it with `prefs collect`")]
    NotFound {
        /// The path looked for.
        path: PathBuf,
    },
    /// An I/O error other than a missing file.
    #[error("cannot {action} preference dataset {path}: {source}{}", crate::io::full_disk_hint(source))]
    Io {
        /// "read", "write", …
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid dataset (truncated, corrupted, not safetensors, inconsistent metadata).
    #[error(
        "preference dataset {path} is corrupt or truncated ({reason}); it was not written completely or was \
         modified: collect it again with `prefs collect`"
    )]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What failed to validate.
        reason: String,
    },
    /// A valid safetensors file that is not a preference dataset.
    #[error("{path} is a safetensors file but not a rebel-rs preference dataset ({reason}): pass a file written by `prefs collect`")]
    Foreign {
        /// The file concerned.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A dataset of another format version.
    #[error(
        "preference dataset {path} has format version {found}, this build reads version {supported}: read it \
         with the rebel-rs version that wrote it, or collect it again"
    )]
    Version {
        /// The file concerned.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Tensors whose set, dtype or shape does not match the metadata.
    #[error("preference dataset {path} has inconsistent tensors ({reason}): collect it again with `prefs collect`")]
    Shape {
        /// The file concerned (or `<memory>`).
        path: PathBuf,
        /// Which tensor differs and how.
        reason: String,
    },
    /// An invalid teacher configuration.
    #[error("invalid teacher configuration: {0}")]
    Teacher(String),
    /// Invalid collection options or a collection that cannot finish.
    #[error("cannot collect preferences: {0}")]
    Collect(String),
    /// An environment error during collection.
    #[error("environment error while collecting preferences: {0}")]
    Env(#[from] EnvError),
}


/// Which policy produced the pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySource {
    /// Checkpoint path as given, or `random:<seed>` for a freshly initialised policy.
    pub path: String,
    /// FNV-1a 64 (hex) of the checkpoint file's bytes (`""` for a random policy).
    pub hash: String,
}

/// The JSON metadata of a dataset file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetMeta {
    /// Layout version ([`DATASET_VERSION`]).
    pub format_version: u32,
    /// Environment id, e.g. `"Swimmer-v5"`.
    pub env_id: String,
    /// Observation size.
    pub obs_dim: usize,
    /// Action size.
    pub act_dim: usize,
    /// The teacher that labelled the pairs.
    pub teacher: TeacherConfig,
    /// The policy that produced the pieces.
    pub policy: PolicySource,
    /// Seed of the collection (episode seeds, actions, pairing, teacher).
    pub seed: u64,
    /// Piece length in steps; `None` = whole episodes.
    pub segment_len: Option<usize>,
    /// Both pieces of each pair start from the same simulator state.
    pub same_start: bool,
    /// Pairs shown to the teacher, including skipped ones.
    pub queries: u64,
    /// Env steps simulated to make the pieces (whole trunks up to each piece, discarded pieces
    /// included); 0 in files written before it was recorded.
    #[serde(default)]
    pub simulated_env_steps: u64,
}

/// One labelled pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PreferencePair {
    /// First piece (`group` = the pair index).
    pub a: Segment,
    /// Second piece (`group` = the pair index).
    pub b: Segment,
    /// 1 = a preferred, 0 = b preferred, 0.5 = equal.
    pub label: f32,
}

/// A preference dataset: metadata and labelled pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct PreferenceDataset {
    /// Metadata (written to the file header).
    pub meta: DatasetMeta,
    /// The labelled pairs.
    pub pairs: Vec<PreferencePair>,
}

/// The tensors of a dataset file, sorted.
const TENSORS: [&str; 11] = [
    "act_a",
    "act_b",
    "done_a",
    "done_b",
    "labels",
    "mask_a",
    "mask_b",
    "obs_a",
    "obs_b",
    "true_rewards_a",
    "true_rewards_b",
];


impl PreferenceDataset {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Labels in pair order.
    pub fn labels(&self) -> Vec<f32> {
        self.pairs.iter().map(|p| p.label).collect()
    }

    /// All pieces as one batch `[a0, b0, a1, b1, …]` (k = 2, group = pair index), e.g. to score them with a
    /// [`crate::scorer::Scorer`].
    pub fn segment_batch(&self) -> SegmentBatch {
        let mut segments = Vec::with_capacity(2 * self.pairs.len());
        for (i, p) in self.pairs.iter().enumerate() {
            segments.push(Segment { group: i, ..p.a.clone() });
            segments.push(Segment { group: i, ..p.b.clone() });
        }
        SegmentBatch {
            obs_dim: self.meta.obs_dim,
            act_dim: self.meta.act_dim,
            k: 2,
            segments,
            env_steps: 0,
            episode_returns: Vec::new(),
        }
    }

    /// Length T of the longest piece.
    pub fn max_len(&self) -> usize {
        self.pairs.iter().map(|p| p.a.len().max(p.b.len())).max().unwrap_or(0)
    }

    /// Checks the in-memory dataset: at least one pair, every piece non-empty with obs/act of the metadata's
    /// dims, labels in {0, 0.5, 1}, finite values.
    pub fn validate(&self) -> Result<(), PreferenceError> {
        let err = |reason: String| PreferenceError::Shape { path: PathBuf::from("<memory>"), reason };
        if self.pairs.is_empty() {
            return Err(err("the dataset holds no pairs".into()));
        }
        let (od, ad) = (self.meta.obs_dim, self.meta.act_dim);
        if od == 0 || ad == 0 {
            return Err(err(format!("obs_dim {od} and act_dim {ad} must be positive")));
        }
        for (i, p) in self.pairs.iter().enumerate() {
            for (side, s) in [("a", &p.a), ("b", &p.b)] {
                let n = s.len();
                if n == 0 || s.obs.len() != n * od || s.act.len() != n * ad {
                    return Err(err(format!(
                        "pair {i} piece {side}: {n} rewards, {} obs values, {} action values (dims {od}, {ad})",
                        s.obs.len(),
                        s.act.len()
                    )));
                }
                if !s.obs.iter().chain(&s.act).all(|x| x.is_finite()) || !s.rewards.iter().all(|x| x.is_finite()) {
                    return Err(err(format!("pair {i} piece {side} has a non-finite value")));
                }
            }
            if !(p.label == 0.0 || p.label == 0.5 || p.label == 1.0) {
                return Err(err(format!("pair {i} has label {}, expected 0, 0.5 or 1", p.label)));
            }
        }
        Ok(())
    }

    /// The file's bytes (see the module docs).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PreferenceError> {
        self.validate()?;
        let mut tensors: BTreeMap<String, Stored> = BTreeMap::new();
        for side in ["a", "b"] {
            self.side_tensors(side, &mut tensors);
        }
        let labels: Vec<u8> = self.pairs.iter().flat_map(|p| p.label.to_le_bytes()).collect();
        tensors.insert("labels".into(), Stored { dtype: Dtype::F32, shape: vec![self.pairs.len()], data: labels });
        let meta = serde_json::to_string(&self.meta)
            .map_err(|e| PreferenceError::Collect(format!("metadata does not serialise: {e}")))?;
        io::encode(DATASET_FORMAT, &meta, &tensors).map_err(PreferenceError::Collect)
    }

    /// The five tensors of pieces `side` ("a" or "b"), zero-padded to the longest piece.
    fn side_tensors(&self, side: &str, tensors: &mut BTreeMap<String, Stored>) {
        let (n, t) = (self.pairs.len(), self.max_len());
        let (od, ad) = (self.meta.obs_dim, self.meta.act_dim);
        let mut obs = Vec::with_capacity(n * t * od * 4);
        let mut act = Vec::with_capacity(n * t * ad * 4);
        let mut mask = Vec::with_capacity(n * t);
        let mut rew = Vec::with_capacity(n * t * 8);
        let mut done = Vec::with_capacity(n);
        for p in &self.pairs {
            let s = if side == "a" { &p.a } else { &p.b };
            let l = s.len();
            for x in s.obs.iter().copied().chain(std::iter::repeat_n(0f32, (t - l) * od)) {
                obs.extend_from_slice(&x.to_le_bytes());
            }
            for x in s.act.iter().copied().chain(std::iter::repeat_n(0f32, (t - l) * ad)) {
                act.extend_from_slice(&x.to_le_bytes());
            }
            mask.extend((0..t).map(|i| u8::from(i < l)));
            for x in s.rewards.iter().copied().chain(std::iter::repeat_n(0f64, t - l)) {
                rew.extend_from_slice(&x.to_le_bytes());
            }
            done.push(u8::from(s.terminated) | (u8::from(s.truncated) << 1));
        }
        let mut put = |name: &str, dtype, shape, data| {
            tensors.insert(format!("{name}_{side}"), Stored { dtype, shape, data });
        };
        put("obs", Dtype::F32, vec![n, t, od], obs);
        put("act", Dtype::F32, vec![n, t, ad], act);
        put("mask", Dtype::U8, vec![n, t], mask);
        put("true_rewards", Dtype::F64, vec![n, t], rew);
        put("done", Dtype::U8, vec![n], done);
    }

    /// Writes the dataset atomically ([`crate::io::write_atomic`]); creates the parent folder if needed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), PreferenceError> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        io::write_atomic(path, &bytes).map_err(|e| PreferenceError::Io { action: e.action, path: e.path, source: e.source })
    }

    /// Reads and validates a dataset file (see the module docs).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PreferenceError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                PreferenceError::NotFound { path: path.to_path_buf() }
            } else {
                PreferenceError::Io { action: "read", path: path.to_path_buf(), source }
            }
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// [`PreferenceDataset::load`] from bytes; `path` is only used in messages. Every tensor's dtype and shape
    /// is checked against the metadata before pieces are built from it.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, PreferenceError> {
        let corrupt = |reason: String| PreferenceError::Corrupt { path: path.to_path_buf(), reason };
        let decoded = io::decode(bytes, DATASET_FORMAT, &[Dtype::F32, Dtype::F64, Dtype::U8]).map_err(|e| match e {
            ContainerError::Corrupt(reason) => corrupt(reason),
            ContainerError::Foreign(reason) => PreferenceError::Foreign { path: path.to_path_buf(), reason },
        })?;
        let meta = decode_meta(&decoded.meta, path)?;
        let tensors = decoded.tensors;
        let (n, t) = check_tensors(&tensors, &meta)
            .map_err(|reason| PreferenceError::Shape { path: path.to_path_buf(), reason })?;
        let a_side = read_side(&tensors, "a", n, t, &meta).map_err(corrupt)?;
        let b_side = read_side(&tensors, "b", n, t, &meta).map_err(corrupt)?;
        let labels = f32s(&tensors["labels"].data);
        let pairs =
            a_side.into_iter().zip(b_side).zip(labels).map(|((a, b), label)| PreferencePair { a, b, label }).collect();
        let ds = PreferenceDataset { meta, pairs };
        ds.validate().map_err(|e| match e {
            PreferenceError::Shape { reason, .. } => corrupt(reason),
            other => other,
        })?;
        Ok(ds)
    }
}

/// The `meta` record: version first (so that a future layout gives a version error), then the fields.
fn decode_meta(json: &str, path: &Path) -> Result<DatasetMeta, PreferenceError> {
    let corrupt = |reason: String| PreferenceError::Corrupt { path: path.to_path_buf(), reason };
    let (raw, version) = io::meta_version(json).map_err(corrupt)?;
    if version != DATASET_VERSION as u64 {
        return Err(PreferenceError::Version {
            path: path.to_path_buf(),
            found: version.min(u32::MAX as u64) as u32,
            supported: DATASET_VERSION,
        });
    }
    let meta: DatasetMeta = serde_json::from_value(raw).map_err(|e| corrupt(format!("metadata does not parse: {e}")))?;
    meta.teacher.validate().map_err(|e| corrupt(format!("stored teacher: {e}")))?;
    Ok(meta)
}

/// Checks the tensor set, dtypes and shapes against the metadata; returns `(N, T)`.
fn check_tensors(tensors: &BTreeMap<String, Stored>, meta: &DatasetMeta) -> Result<(usize, usize), String> {
    for name in TENSORS {
        if !tensors.contains_key(name) {
            return Err(format!("tensor `{name}` is missing"));
        }
    }
    if let Some(extra) = tensors.keys().find(|k| !TENSORS.contains(&k.as_str())) {
        return Err(format!("unexpected tensor `{extra}`"));
    }
    let labels = &tensors["labels"];
    let n = match (labels.dtype, labels.shape.as_slice()) {
        (Dtype::F32, [n]) => *n,
        (d, s) => return Err(format!("labels has dtype {d:?} and shape {s:?}, expected F32 [N]")),
    };
    if n == 0 {
        return Err("the dataset holds no pairs".into());
    }
    let t = match tensors["mask_a"].shape.as_slice() {
        [_, t] => *t,
        s => return Err(format!("mask_a has shape {s:?}, expected [N, T]")),
    };
    if t == 0 {
        return Err("pieces have length 0".into());
    }
    let (od, ad) = (meta.obs_dim, meta.act_dim);
    for side in ["a", "b"] {
        let want: [(&str, Dtype, Vec<usize>); 5] = [
            ("obs", Dtype::F32, vec![n, t, od]),
            ("act", Dtype::F32, vec![n, t, ad]),
            ("mask", Dtype::U8, vec![n, t]),
            ("true_rewards", Dtype::F64, vec![n, t]),
            ("done", Dtype::U8, vec![n]),
        ];
        for (name, dtype, shape) in &want {
            let v = &tensors[&format!("{name}_{side}")];
            if v.dtype != *dtype || v.shape != *shape {
                return Err(format!(
                    "{name}_{side} has dtype {:?} and shape {:?}, expected {dtype:?} {shape:?} (obs_dim {od}, act_dim \
                     {ad} from the metadata)",
                    v.dtype, v.shape
                ));
            }
        }
    }
    Ok((n, t))
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn f64s(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
}

/// The pieces of `side` (shapes already checked): unpadded by their masks.
// Segments are built field by field so that fields added to `Segment` later keep their defaults.
#[allow(clippy::field_reassign_with_default)]
fn read_side(tensors: &BTreeMap<String, Stored>, side: &str, n: usize, t: usize, meta: &DatasetMeta) -> Result<Vec<Segment>, String> {
    let (od, ad) = (meta.obs_dim, meta.act_dim);
    let obs = f32s(&tensors[&format!("obs_{side}")].data);
    let act = f32s(&tensors[&format!("act_{side}")].data);
    let mask = &tensors[&format!("mask_{side}")].data;
    let rew = f64s(&tensors[&format!("true_rewards_{side}")].data);
    let done = &tensors[&format!("done_{side}")].data;
    let mut segs = Vec::with_capacity(n);
    for i in 0..n {
        let m = &mask[i * t..(i + 1) * t];
        let l = m.iter().take_while(|&&x| x == 1).count();
        if l == 0 || m[l..].iter().any(|&x| x != 0) {
            return Err(format!("mask_{side} of pair {i} is not a non-empty prefix of ones followed by zeros"));
        }
        if done[i] > 3 {
            return Err(format!("done_{side} of pair {i} is {}, expected 0..=3", done[i]));
        }
        let mut seg = Segment::default();
        seg.obs = obs[i * t * od..(i * t + l) * od].to_vec();
        seg.act = act[i * t * ad..(i * t + l) * ad].to_vec();
        seg.rewards = rew[i * t..i * t + l].to_vec();
        seg.terminated = done[i] & 1 != 0;
        seg.truncated = done[i] & 2 != 0;
        seg.group = i;
        seg.response_len = l;
        segs.push(seg);
    }
    Ok(segs)
}
