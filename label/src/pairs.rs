//! Pairs to label: two pieces of policy rollouts with the body poses of every step, and the pair file.
//!
//! Pieces are made as [`rebel_agents::preferences::collect_preferences`] makes them: windows of `segment_len`
//! steps of the policy's episodes (shorter tail windows dropped), the two pieces of a pair from different
//! episodes, or from the same simulator state with `same_start` (the episode then goes on from piece a's end).
//! Random streams derive from the seed: 2 the pairing, 1000 + e episode e's seed and actions. Each piece also
//! records the environment's top-down view ([`rebel_envs::PlanarScene`]) before its first step and after
//! every step (`len + 1` frames), which is all the page needs to draw it; no video is encoded.
//!
//! ## The pair file (format `rebel-rs-label-pairs`, version [`PAIRS_VERSION`])
//! One JSON object: `format`, `format_version`, `env_id`, `obs_dim`, `act_dim`, `dt` (seconds per step),
//! `segment_len`, `same_start`, `seed`, `policy` ({path, hash}) and `pairs`, a list of `{a, b}` pieces, each
//! `{obs, act, rewards, terminated, truncated, final_obs, frames}` with `frames` a list of
//! `{c: [[ax, ay, bx, by, radius], …], m: [[x, y, radius], …], f: [x, y]}` (capsules, markers, focus).
//! `label serve` writes it next to its dataset as `DATASET.pairs.json`; `label pairs` writes one to label later.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::RngExt;
use rebel_agents::seeding::{env_seed, stream, ChaCha8Rng, Domain};
use rebel_agents::policy::{Actor, GaussianPolicy};
use rebel_agents::preferences::PolicySource;
use rebel_agents::rollout::Segment;
use rebel_envs::{Env, PlanarScene};
use serde::{Deserialize, Serialize};

/// Version of the pair-file layout written by this build; other versions are refused.
pub const PAIRS_VERSION: u32 = 1;
/// Value of the pair file's `format` key.
pub const PAIRS_FORMAT: &str = "rebel-rs-label-pairs";

/// One drawing of the scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// Capsules `[ax, ay, bx, by, radius]` (world metres).
    pub c: Vec<[f64; 5]>,
    /// Markers `[x, y, radius]`.
    pub m: Vec<[f64; 3]>,
    /// Focus point (e.g. centre of mass).
    pub f: [f64; 2],
}

impl From<&PlanarScene> for Frame {
    fn from(s: &PlanarScene) -> Self {
        Frame {
            c: s.capsules.iter().map(|c| [c.a[0], c.a[1], c.b[0], c.b[1], c.radius]).collect(),
            m: s.markers.clone(),
            f: s.focus,
        }
    }
}

/// One piece: the data of a [`Segment`] and its frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Piece {
    /// Observations `[len * obs_dim]`.
    pub obs: Vec<f32>,
    /// Unclipped actions `[len * act_dim]`.
    pub act: Vec<f32>,
    /// True per-step rewards `[len]` (never shown on the page; the test hook reports their sums).
    pub rewards: Vec<f64>,
    /// The last step ended the episode by termination.
    pub terminated: bool,
    /// The last step ended the episode by truncation.
    pub truncated: bool,
    /// Observation after the last step when it ended the episode; empty otherwise.
    pub final_obs: Vec<f32>,
    /// `len + 1` frames: before the first step and after each step.
    pub frames: Vec<Frame>,
}

impl Piece {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }
    /// Whether the piece has no step.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }
    /// Sum of the true rewards.
    pub fn true_return(&self) -> f64 {
        self.rewards.iter().sum()
    }
    /// The piece as a dataset [`Segment`] of pair `group`.
    // field by field, so that fields added to `Segment` later keep their defaults
    #[allow(clippy::field_reassign_with_default)]
    pub fn segment(&self, group: usize) -> Segment {
        let mut s = Segment::default();
        s.obs = self.obs.clone();
        s.act = self.act.clone();
        s.rewards = self.rewards.clone();
        s.terminated = self.terminated;
        s.truncated = self.truncated;
        s.final_obs = self.final_obs.clone();
        s.group = group;
        s.response_len = self.len();
        s
    }
}

/// A pair to label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairClip {
    /// Left piece (label 1 = a preferred).
    pub a: Piece,
    /// Right piece.
    pub b: Piece,
}

/// The pair file (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairFile {
    /// [`PAIRS_FORMAT`].
    pub format: String,
    /// [`PAIRS_VERSION`].
    pub format_version: u32,
    /// Environment id.
    pub env_id: String,
    /// Observation size.
    pub obs_dim: usize,
    /// Action size.
    pub act_dim: usize,
    /// Seconds of simulated time per step (the page plays the clips at this speed).
    pub dt: f64,
    /// Piece length in steps.
    pub segment_len: usize,
    /// Both pieces of a pair start from the same state.
    pub same_start: bool,
    /// Seed of the pair generation.
    pub seed: u64,
    /// The policy that produced the pieces.
    pub policy: PolicySource,
    /// The pairs, in id order.
    pub pairs: Vec<PairClip>,
}

/// What [`make_pairs`] makes.
#[derive(Clone, Debug, PartialEq)]
pub struct PairSpec {
    /// Number of pairs.
    pub pairs: usize,
    /// Piece length in steps (≥ 1).
    pub segment_len: usize,
    /// Both pieces of a pair start from the same simulator state.
    pub same_start: bool,
    /// Seed.
    pub seed: u64,
}

/// Runs `len` policy steps from `env`'s current state and `obs`, recording a piece; `None` when the episode
/// ended before `len` steps (the piece is then too short to use). Returns the observation after the piece.
fn run_piece(
    env: &mut dyn Env,
    actor: &Actor,
    obs: &[f32],
    len: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Option<Piece>, Vec<f32>, bool)> {
    let scene = |env: &dyn Env| -> Result<Frame> {
        let s = env.planar_scene().with_context(|| {
            format!("environment {} has no top-down view, so the labelling page cannot draw it", env.id())
        })?;
        Ok(Frame::from(&s))
    };
    let mut p = Piece {
        obs: Vec::new(),
        act: Vec::new(),
        rewards: Vec::new(),
        terminated: false,
        truncated: false,
        final_obs: Vec::new(),
        frames: vec![scene(env)?],
    };
    let mut o = obs.to_vec();
    for _ in 0..len {
        let a = actor.act(&o, 1, Some(&mut *rng));
        let s = env.step(&a)?;
        p.obs.extend_from_slice(&o);
        p.act.extend_from_slice(&a);
        p.rewards.push(s.reward);
        p.frames.push(scene(env)?);
        o = s.obs.clone();
        if s.done() {
            p.terminated = s.terminated;
            p.truncated = s.truncated;
            p.final_obs = s.obs;
            let full = p.len() == len;
            return Ok((full.then_some(p), o, true));
        }
    }
    Ok((Some(p), o, false))
}

fn check_spec(env: &dyn Env, policy: &GaussianPolicy, spec: &PairSpec) -> Result<()> {
    if spec.pairs == 0 {
        bail!("--pairs must be ≥ 1");
    }
    if spec.segment_len == 0 {
        bail!("--segment-len must be ≥ 1");
    }
    let (od, ad) = (env.observation_space().dim(), env.action_space().dim());
    if policy.obs_dim() != od || policy.act_dim() != ad {
        bail!(
            "the policy has obs_dim {}, act_dim {} but {} has {od}, {ad}: use a checkpoint trained on this environment",
            policy.obs_dim(),
            policy.act_dim(),
            env.id()
        );
    }
    Ok(())
}

/// Pairs pieces of `pool` (tagged with their episode) from different episodes, in a shuffled order, until `pairs`
/// holds `want`; returns the pieces left unpaired.
fn pair_across_episodes(mut pool: Vec<(u64, Piece)>, pairs: &mut Vec<PairClip>, want: usize, rng: &mut ChaCha8Rng) -> Vec<(u64, Piece)> {
    pool.shuffle(rng);
    let mut rest = Vec::new();
    while let Some((ea, a)) = pool.pop() {
        if pairs.len() == want {
            break;
        }
        match pool.iter().rposition(|(e, _)| *e != ea) {
            Some(j) => {
                let (_, b) = pool.remove(j);
                pairs.push(PairClip { a, b });
            }
            None => rest.push((ea, a)),
        }
    }
    rest
}

/// Makes `spec.pairs` pairs of pieces of `policy`'s rollouts in `env` (module docs).
pub fn make_pairs(env: &mut dyn Env, policy: &GaussianPolicy, source: PolicySource, spec: &PairSpec) -> Result<PairFile> {
    check_spec(env, policy, spec)?;
    let (od, ad) = (env.observation_space().dim(), env.action_space().dim());
    let l = spec.segment_len;
    let actor = policy.actor();
    let mut pairs: Vec<PairClip> = Vec::with_capacity(spec.pairs);
    let mut pool: Vec<(u64, Piece)> = Vec::new();
    let mut pair_rng = stream(spec.seed, Domain::Preferences, 2);
    let mut episode = 0u64;
    // without same_start, the pieces come from at least EPISODES episodes (the first windows of each) and
    // are paired across episodes
    const EPISODES: u64 = 8;
    let per_episode = (2 * spec.pairs).div_ceil(EPISODES as usize).max(1);
    while pairs.len() < spec.pairs {
        if episode >= 1000 + 10 * spec.pairs as u64 {
            bail!("{episode} episodes gave only {} pairs of {l}-step pieces: use a shorter --segment-len", pairs.len());
        }
        let mut rng = stream(spec.seed, Domain::Preferences, 1000 + episode);
        let ep_seed = env_seed(spec.seed, Domain::Preferences, rng.random::<u64>() >> 8);
        let (mut obs, _) = env.reset(Some(ep_seed))?;
        let mut pieces = 0usize;
        loop {
            if spec.same_start {
                if pairs.len() == spec.pairs {
                    break;
                }
                let start = env.snapshot();
                let (a, obs_a, done_a) = run_piece(env, &actor, &obs, l, &mut rng)?;
                let after_a = env.snapshot();
                env.restore(&start)?;
                let (b, _, _) = run_piece(env, &actor, &obs, l, &mut rng)?;
                env.restore(&after_a)?;
                if let (Some(a), Some(b)) = (a, b) {
                    pairs.push(PairClip { a, b });
                }
                obs = obs_a;
                if done_a {
                    break;
                }
            } else {
                let (p, o, done) = run_piece(env, &actor, &obs, l, &mut rng)?;
                if let Some(p) = p {
                    pool.push((episode, p));
                    pieces += 1;
                }
                obs = o;
                if done || pieces >= per_episode {
                    break;
                }
            }
        }
        episode += 1;
        if !spec.same_start && (pool.len() >= 2 * (spec.pairs - pairs.len()) || episode.is_multiple_of(EPISODES)) {
            pool = pair_across_episodes(pool, &mut pairs, spec.pairs, &mut pair_rng);
        }
    }
    Ok(PairFile {
        format: PAIRS_FORMAT.to_string(),
        format_version: PAIRS_VERSION,
        env_id: env.id().to_string(),
        obs_dim: od,
        act_dim: ad,
        dt: env.dt(),
        segment_len: l,
        same_start: spec.same_start,
        seed: spec.seed,
        policy: source,
        pairs,
    })
}

impl PairFile {
    /// Checks the layout: format, version, at least one pair, every piece with `segment_len` steps, obs/act of
    /// the file's dims, `len + 1` frames, finite values.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let p = path.display();
        if self.format != PAIRS_FORMAT {
            bail!("{p} is not a pair file (format '{}', expected '{PAIRS_FORMAT}')", self.format);
        }
        if self.format_version != PAIRS_VERSION {
            bail!(
                "{p} is pair-file version {}, this build reads version {PAIRS_VERSION}: make it again with `label pairs`",
                self.format_version
            );
        }
        if self.pairs.is_empty() {
            bail!("{p} holds no pairs");
        }
        if !(self.dt.is_finite() && self.dt > 0.0) || self.obs_dim == 0 || self.act_dim == 0 {
            bail!("{p}: dt {}, obs_dim {}, act_dim {} must be positive", self.dt, self.obs_dim, self.act_dim);
        }
        for (i, pair) in self.pairs.iter().enumerate() {
            for (side, s) in [("a", &pair.a), ("b", &pair.b)] {
                let n = s.len();
                if n == 0
                    || s.obs.len() != n * self.obs_dim
                    || s.act.len() != n * self.act_dim
                    || s.frames.len() != n + 1
                {
                    bail!(
                        "{p}: pair {i} piece {side} has {n} rewards, {} obs values, {} action values and {} frames \
                         (dims {}, {}; frames must be steps + 1)",
                        s.obs.len(),
                        s.act.len(),
                        s.frames.len(),
                        self.obs_dim,
                        self.act_dim
                    );
                }
                let finite = s.obs.iter().chain(&s.act).all(|x| x.is_finite())
                    && s.rewards.iter().all(|x| x.is_finite())
                    && s.frames.iter().all(|f| {
                        f.c.iter().flatten().chain(f.m.iter().flatten()).chain(&f.f).all(|x| x.is_finite())
                    });
                if !finite {
                    bail!("{p}: pair {i} piece {side} has a non-finite value");
                }
            }
        }
        Ok(())
    }

    /// Reads and validates a pair file. A preference dataset is refused with a hint: it has no poses to draw.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read pair file {}", path.display()))?;
        if bytes.first() != Some(&b'{') {
            bail!(
                "{} is not a pair file (JSON, format {PAIRS_FORMAT}); a preference dataset cannot be relabelled in the \
                 browser because it records no body poses: make pairs with `label pairs --policy CKPT --out FILE`",
                path.display()
            );
        }
        let f: PairFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid pair file", path.display()))?;
        f.validate(path)?;
        Ok(f)
    }

    /// Writes the file atomically (temporary file, fsync, rename, fsync of the folder).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)?;
        Ok(rebel_agents::io::write_atomic(path, &bytes)?)
    }

    /// FNV-1a 64 of the file's canonical JSON, binding a journal to its pairs.
    pub fn fingerprint(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("pair file serialises");
        rebel_agents::io::fnv1a_hex(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebel_agents::policy::PolicyConfig;

    fn setup() -> (Box<dyn Env>, GaussianPolicy) {
        tch::set_num_threads(1);
        let env = rebel_envs::make("Swimmer-v5", &rebel_envs::EnvConfig::default()).unwrap();
        let (od, ad) = (env.observation_space().dim(), env.action_space().dim());
        let p = GaussianPolicy::new(PolicyConfig::new(od, ad), tch::Device::Cpu, tch::Kind::Float, 5);
        (env, p)
    }

    fn source() -> PolicySource {
        PolicySource { path: "random:5".into(), hash: String::new() }
    }

    #[test]
    fn same_start_pairs_share_their_first_state_and_record_every_pose() {
        let (mut env, p) = setup();
        let spec = PairSpec { pairs: 3, segment_len: 6, same_start: true, seed: 11 };
        let f = make_pairs(&mut env, &p, source(), &spec).unwrap();
        f.validate(Path::new("<memory>")).unwrap();
        assert_eq!(f.pairs.len(), 3);
        let od = f.obs_dim;
        for c in &f.pairs {
            assert_eq!((c.a.len(), c.b.len(), c.a.frames.len()), (6, 6, 7));
            assert_eq!(c.a.frames[0], c.b.frames[0], "same start state");
            assert_eq!(c.a.obs[..od], c.b.obs[..od]);
            assert_ne!(c.a.act, c.b.act, "the two pieces are different samples");
            // the bodies move between frames
            assert_ne!(c.a.frames[0].c, c.a.frames[6].c);
        }
        // consecutive pairs: the episode goes on from piece a's end
        assert_eq!(f.pairs[0].a.frames[6], f.pairs[1].a.frames[0]);
        // the same seed gives the same pairs; the file round-trips
        let g = make_pairs(&mut env, &p, source(), &spec).unwrap();
        assert_eq!(f, g);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        f.save(&path).unwrap();
        let h = PairFile::load(&path).unwrap();
        assert_eq!(h.pairs.len(), 3);
        assert_eq!(h.pairs[0].a.act, f.pairs[0].a.act);
    }

    #[test]
    fn pairs_of_different_episodes_and_clear_errors() {
        let (mut env, p) = setup();
        let spec = PairSpec { pairs: 5, segment_len: 4, same_start: false, seed: 3 };
        let f = make_pairs(&mut env, &p, source(), &spec).unwrap();
        assert_eq!(f.pairs.len(), 5);
        for c in &f.pairs {
            assert_ne!(c.a.frames[0], c.b.frames[0]);
            assert_eq!(c.a.frames.len(), 5);
        }
        let e = make_pairs(&mut env, &p, source(), &PairSpec { pairs: 0, ..spec.clone() }).unwrap_err();
        assert!(e.to_string().contains("--pairs"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let not_json = dir.path().join("d.safetensors");
        std::fs::write(&not_json, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ").unwrap();
        let e = PairFile::load(&not_json).unwrap_err().to_string();
        assert!(e.contains("records no body poses"), "{e}");
        let mut bad = f.clone();
        bad.pairs[0].b.frames.pop();
        let e = bad.validate(Path::new("x.json")).unwrap_err().to_string();
        assert!(e.contains("pair 0 piece b"), "{e}");
    }
}
