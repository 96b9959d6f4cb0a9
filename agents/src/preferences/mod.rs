//! Simulated teachers, preference pairs and the preference dataset file.
//!
//! ## Teachers (rebel.md §4; B-Pref, Lee et al. 2021, `SimTeacher`)
//! A teacher compares two trajectory pieces a and b from their TRUE per-step environment rewards (never a
//! learned reward) and answers `Some(1.0)` (a preferred), `Some(0.0)` (b preferred), `Some(0.5)` (equally
//! preferable) or `None` (skipped: the pair is not labelled). One [`TeacherConfig`] holds every B-Pref
//! parameter, applied in B-Pref's order; `kind` names the preset the parameters came from
//! ([`TeacherConfig::preset`]), and any parameter can be overridden to make composite teachers:
//!
//! 1. **skip** (`skip_threshold = Some(θ)`): `None` when `max(R_a, R_b) ≤ θ` (neither piece is good enough to
//!    be worth judging; B-Pref keeps a query when the larger return exceeds its threshold).
//! 2. **myopic** (`gamma < 1`): the comparison uses `Σ_t γ^(T−1−t) r_t` (recent steps weigh more; B-Pref's
//!    loop gives exactly these weights); `gamma = 1` is the plain return.
//! 3. **rational / Boltzmann**: `beta = None` prefers the larger (weighted) return (an exact tie gives 0.5);
//!    `beta = Some(β)` draws `a ≻ b` with probability `σ(β·(R_a − R_b))` (Bradley–Terry with inverse
//!    temperature β, in return units; B-Pref's "noisy" teacher is β = 1).
//! 4. **mistake** (`eps`): the answer is flipped with probability ε (B-Pref: 0.1).
//! 5. **equal** (`equal_threshold = Some(δ)`): `0.5` when `|R_a − R_b| < δ` on the unweighted returns (B-Pref
//!    overrides the label after the mistake step, as here).
//!
//! B-Pref expresses the skip/equal thresholds relative to an average segment return; here they are absolute,
//! in return units of the pieces being compared, so they depend on the segment length (see the preset docs).
//! Randomness comes only from the caller's generator: the same generator state gives the same answer.
//!
//! ## Pairs ([`collect_preferences`])
//! Pieces come from [`crate::rollout::collect_groups`] with the given policy: whole episodes
//! (`segment_len = None`) or windows of `segment_len` steps of an episode (shorter tail windows are dropped, so
//! every piece of a segment dataset has the same length). With `same_start` the two pieces of a pair start
//! from the same simulator state (k = 2 groups); otherwise each pair joins pieces of different episodes.
//! Collection stops once `n_labels` pairs have labels; skipped pairs cost a query (counted in `queries`)
//! but are not stored.
//!
//! ## Defaults (measured on Swimmer-v5, random initial policy, 2-core CPU)
//! `prefs collect` defaults to 50-step pieces (≈ 2 s of simulated time, Christiano's 1.5 s scale), pieces of
//! different episodes, and the oracle teacher. 1000 such labels (seed 1) train an ensemble (defaults of
//! [`crate::reward_model::RewardModelConfig`], 6 s) that reaches, on 500 fresh pairs of seed 2, accuracy 0.95
//! and Spearman 0.993; on 200 whole-episode pairs of seed 3, accuracy 0.905 and Spearman 0.93. With the BT
//! teacher (β = 1) on both sides: accuracy 0.906 against labels that agree with the true order only 93.8% of
//! the time, Spearman 0.988. Whole-episode pieces are supported (`segment_len = None`) but cost 20× the
//! simulation per label.
//!
//! ## The dataset file (format `rebel-rs-preferences`, version [`DATASET_VERSION`])
//! One safetensors file (`safetensors.torch.load_file` reads it). With N pairs and T the longest piece:
//!
//! | tensor | dtype | shape | content |
//! |---|---|---|---|
//! | `obs_a`, `obs_b` | F32 | [N, T, obs_dim] | observations (zero padding) |
//! | `act_a`, `act_b` | F32 | [N, T, act_dim] | unclipped actions (zero padding) |
//! | `mask_a`, `mask_b` | U8 | [N, T] | 1 for real steps (a prefix of length ≥ 1), 0 for padding |
//! | `labels` | F32 | [N] | 1 = a preferred, 0 = b preferred, 0.5 = equal |
//! | `true_rewards_a`, `true_rewards_b` | F64 | [N, T] | true per-step rewards: for audit and evaluation only, never for training |
//! | `done_a`, `done_b` | U8 | [N] | bit 0: the piece ended by termination, bit 1: by truncation |
//!
//! Header metadata: `format` = `rebel-rs-preferences`, `meta` = [`DatasetMeta`] as JSON (format version, env
//! id, dims, teacher, producing policy with its file hash, seed, segment length, same_start, queries), and
//! `checksum` = FNV-1a 64 over every tensor's name, dtype, shape and bytes.
//!
//! [`PreferenceDataset::save`] writes atomically (temporary file, fsync, rename, fsync of the folder).
//! [`PreferenceDataset::load`] validates everything (structure, format, version, checksum, tensor set,
//! dtypes, shapes against the metadata, masks, labels, finiteness) and returns a [`PreferenceError`] that
//! says what is wrong and what to do; it never panics on a corrupt or truncated file.

mod collect;
mod dataset;
pub mod query;
mod teachers;

pub use collect::{collect_candidates, collect_preferences, label_pairs, CollectConfig};
pub use dataset::{DatasetMeta, PolicySource, PreferenceDataset, PreferenceError, PreferencePair, DATASET_FORMAT, DATASET_VERSION};
pub use teachers::{sigmoid, TeacherConfig, TeacherKind};
