//! The label book: which pairs are answered, leased or free, and the durable record of every answer.
//!
//! * **Leases.** [`Book::next`] hands a labeller the lowest-numbered pair that is neither answered nor leased to
//!   someone else, with a fresh random lease token; a lease is reissued to another labeller only after it
//!   expires (`lease_time`). A labeller who asks again while holding a live lease gets the same pair back (a
//!   reloaded tab does not leak pairs). So two labellers never get the same pair at once, and a pair is served
//!   again only when its labeller left it.
//! * **Answers** ([`Book::answer`]) need the pair's current lease token; an answer about an unknown pair, with a
//!   stale or wrong lease, or about a pair already answered (a replay) is refused with a 4xx and changes nothing.
//!   An accepted answer is appended to the journal and fsynced, then the dataset file is rewritten atomically,
//!   and only then acknowledged.
//! * **Undo** ([`Book::undo`]) withdraws the labeller's last live answer (named by the request, so that a
//!   replayed undo is refused) and leases that pair back to them.
//! * The dataset (`--out`) holds every labelled pair (left = 1, right = 0, equal = 0.5) in pair order;
//!   "can't tell" answers count as queries (`meta.queries`) but are not stored, as the skip teacher does. With
//!   no labelled pair the file does not exist (a dataset must hold at least one pair).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use rand::RngExt;
use rebel_agents::preferences::{
    DatasetMeta, PreferenceDataset, PreferencePair, TeacherConfig, TeacherKind, DATASET_VERSION,
};
use serde::Serialize;

use crate::journal::{remove_durably, Event, Journal, Value};
use rebel_agents::io::write_atomic;
use crate::pairs::PairFile;

/// A refused or failed request: an HTTP status and a message that says what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// What was wrong and what to do.
    pub message: String,
    /// For a replayed answer: the answer on record.
    pub answered: Option<Value>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), answered: None }
    }
}

/// Progress counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counts {
    /// Pairs in the session.
    pub total: usize,
    /// Pairs answered (labelled or "can't tell").
    pub given: usize,
    /// Pairs with a label (in the dataset).
    pub labelled: usize,
    /// Pairs not answered yet.
    pub left: usize,
}

struct Lease {
    token: String,
    labeller: String,
    expires: Instant,
}

/// The state of a labelling session (module docs).
pub struct Book {
    pairs: PairFile,
    answers: Vec<Option<(Value, String)>>,
    /// Live answers in the order given: (pair, labeller).
    history: Vec<(usize, String)>,
    leases: HashMap<usize, Lease>,
    journal: Journal,
    out: PathBuf,
    lease_time: Duration,
}

fn new_token() -> String {
    let mut rng = rand::rng();
    format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
}

impl Book {
    /// Opens the session of `pairs` writing the dataset `out` (journal `OUT.journal`); replays the journal of an
    /// earlier session and rewrites the dataset from it.
    pub fn open(pairs: PairFile, out: &Path, lease_time: Duration) -> Result<Self> {
        let (journal, events) = Journal::open(&journal_path(out), &pairs.fingerprint())?;
        let n = pairs.pairs.len();
        let mut book = Book {
            pairs,
            answers: vec![None; n],
            history: Vec::new(),
            leases: HashMap::new(),
            journal,
            out: out.to_path_buf(),
            lease_time,
        };
        for (i, e) in events.iter().enumerate() {
            book.apply(e).map_err(|m| anyhow::anyhow!("journal event {} ({e:?}) does not apply: {m}", i + 1))?;
        }
        // the dataset as the journal says, rewritten only where the file on disk differs
        let current = book.dataset().map(|ds| ds.to_bytes()).transpose()?;
        if current.is_none() || std::fs::read(&book.out).ok() != current {
            book.write_dataset()?;
        }
        Ok(book)
    }

    /// The pairs.
    pub fn pairs(&self) -> &PairFile {
        &self.pairs
    }

    fn apply(&mut self, e: &Event) -> Result<(), String> {
        match e {
            Event::Answer { pair, value, labeller } => {
                let slot = self.answers.get_mut(*pair).ok_or("unknown pair")?;
                if slot.is_some() {
                    return Err("the pair is already answered".into());
                }
                *slot = Some((*value, labeller.clone()));
                self.history.push((*pair, labeller.clone()));
            }
            Event::Undo { pair, labeller } => {
                let i = self
                    .history
                    .iter()
                    .rposition(|(p, l)| p == pair && l == labeller)
                    .ok_or("the labeller has no live answer about this pair")?;
                self.history.remove(i);
                self.answers[*pair] = None;
            }
        }
        Ok(())
    }

    /// Progress counters.
    pub fn counts(&self) -> Counts {
        let given = self.answers.iter().filter(|a| a.is_some()).count();
        let labelled = self.answers.iter().filter(|a| matches!(a, Some((v, _)) if v.label().is_some())).count();
        Counts { total: self.answers.len(), given, labelled, left: self.answers.len() - given }
    }

    /// The pair the labeller's undo would withdraw.
    pub fn undo_pair(&self, labeller: &str) -> Option<usize> {
        self.history.iter().rev().find(|(_, l)| l == labeller).map(|(p, _)| *p)
    }

    /// The answer on record for `pair`.
    pub fn answer_of(&self, pair: usize) -> Option<Value> {
        self.answers.get(pair).and_then(|a| a.as_ref().map(|(v, _)| *v))
    }

    /// Leases the next pair to `labeller`: `(pair, lease token)`, or `None` when no pair is free (all answered
    /// or leased to others).
    pub fn next(&mut self, labeller: &str, now: Instant) -> Option<(usize, String)> {
        let expires = now + self.lease_time;
        // a live lease of this labeller: the same pair again
        if let Some((&p, l)) = self
            .leases
            .iter_mut()
            .filter(|(p, l)| l.labeller == labeller && l.expires > now && self.answers[**p].is_none())
            .min_by_key(|(p, _)| **p)
        {
            l.expires = expires;
            return Some((p, l.token.clone()));
        }
        let p = (0..self.answers.len()).find(|p| {
            self.answers[*p].is_none() && self.leases.get(p).is_none_or(|l| l.expires <= now)
        })?;
        let token = new_token();
        self.leases.insert(p, Lease { token: token.clone(), labeller: labeller.to_string(), expires });
        Some((p, token))
    }

    /// Records an answer (module docs); returns the counters after it.
    pub fn answer(&mut self, pair: usize, lease: &str, value: Value, labeller: &str) -> Result<Counts, ApiError> {
        if pair >= self.answers.len() {
            return Err(ApiError::new(404, format!("unknown pair {pair}: this session has pairs 0..{}", self.answers.len())));
        }
        if let Some((v, _)) = &self.answers[pair] {
            return Err(ApiError {
                status: 409,
                message: format!("pair {pair} is already answered ({v:?}); the answer was not changed"),
                answered: Some(*v),
            });
        }
        match self.leases.get(&pair) {
            Some(l) if l.token == lease => {}
            Some(_) => {
                return Err(ApiError::new(
                    409,
                    format!("the lease on pair {pair} is not yours any more (it expired and was given to another labeller); ask for the next pair"),
                ))
            }
            None => return Err(ApiError::new(409, format!("pair {pair} was not served to you: ask for the next pair"))),
        }
        let e = Event::Answer { pair, value, labeller: labeller.to_string() };
        self.journal.append(&e).map_err(|err| ApiError::new(500, format!("the answer could not be recorded: {err:#}")))?;
        self.apply(&e).expect("checked above");
        self.leases.remove(&pair);
        self.write_dataset().map_err(|err| {
            ApiError::new(500, format!("the answer is in the journal but the dataset could not be rewritten: {err:#}"))
        })?;
        Ok(self.counts())
    }

    /// Withdraws `labeller`'s last live answer, which must be about `pair`; leases the pair back to them.
    pub fn undo(&mut self, pair: usize, labeller: &str, now: Instant) -> Result<String, ApiError> {
        if pair >= self.answers.len() {
            return Err(ApiError::new(404, format!("unknown pair {pair}: this session has pairs 0..{}", self.answers.len())));
        }
        match self.undo_pair(labeller) {
            Some(p) if p == pair => {}
            Some(p) => {
                return Err(ApiError::new(409, format!("your last answer is about pair {p}, not {pair}; nothing was undone")))
            }
            None => return Err(ApiError::new(409, "you have no answer to undo")),
        }
        let e = Event::Undo { pair, labeller: labeller.to_string() };
        self.journal.append(&e).map_err(|err| ApiError::new(500, format!("the undo could not be recorded: {err:#}")))?;
        self.apply(&e).expect("checked above");
        self.write_dataset().map_err(|err| {
            ApiError::new(500, format!("the undo is in the journal but the dataset could not be rewritten: {err:#}"))
        })?;
        let token = new_token();
        self.leases.insert(pair, Lease { token: token.clone(), labeller: labeller.to_string(), expires: now + self.lease_time });
        Ok(token)
    }

    /// The dataset of every labelled pair, `None` when there is none.
    pub fn dataset(&self) -> Option<PreferenceDataset> {
        let mut pairs = Vec::new();
        for (i, a) in self.answers.iter().enumerate() {
            if let Some(label) = a.as_ref().and_then(|(v, _)| v.label()) {
                let c = &self.pairs.pairs[i];
                let idx = pairs.len();
                pairs.push(PreferencePair { a: c.a.segment(idx), b: c.b.segment(idx), label });
            }
        }
        if pairs.is_empty() {
            return None;
        }
        let p = &self.pairs;
        Some(PreferenceDataset {
            meta: DatasetMeta {
                format_version: DATASET_VERSION,
                env_id: p.env_id.clone(),
                obs_dim: p.obs_dim,
                act_dim: p.act_dim,
                // a person's answers: deterministic, no simulated noise (the format has no `human` kind)
                teacher: TeacherConfig::preset(TeacherKind::Oracle),
                policy: p.policy.clone(),
                seed: p.seed,
                segment_len: Some(p.segment_len),
                same_start: p.same_start,
                queries: self.counts().given as u64,
                simulated_env_steps: 0,
            },
            pairs,
        })
    }

    fn write_dataset(&self) -> Result<()> {
        match self.dataset() {
            Some(ds) => Ok(write_atomic(&self.out, &ds.to_bytes()?)?),
            None => remove_durably(&self.out),
        }
    }
}

/// The journal of the dataset `out`: `OUT.journal`.
pub fn journal_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// The pair file of the dataset `out`: `OUT.pairs.json`.
pub fn pairs_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".pairs.json");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::{Frame, PairClip, Piece, PAIRS_FORMAT, PAIRS_VERSION};
    use rebel_agents::preferences::PolicySource;

    fn piece(r: f64) -> Piece {
        let frame = Frame { c: vec![[0.0, 0.0, 1.0, 0.0, 0.1]], m: vec![], f: [0.5, 0.0] };
        Piece {
            obs: vec![r as f32; 6],
            act: vec![0.5; 3],
            rewards: vec![r, r, r],
            terminated: false,
            truncated: false,
            final_obs: vec![],
            frames: vec![frame; 4],
        }
    }

    fn synthetic(n: usize) -> PairFile {
        PairFile {
            format: PAIRS_FORMAT.into(),
            format_version: PAIRS_VERSION,
            env_id: "Swimmer-v5".into(),
            obs_dim: 2,
            act_dim: 1,
            dt: 0.04,
            segment_len: 3,
            same_start: false,
            seed: 7,
            policy: PolicySource { path: "random:7".into(), hash: String::new() },
            pairs: (0..n).map(|i| PairClip { a: piece(i as f64), b: piece(-(i as f64)) }).collect(),
        }
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[test]
    fn leases_keep_labellers_apart_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d.safetensors");
        let mut b = Book::open(synthetic(3), &out, LEASE).unwrap();
        let t = Instant::now();
        let (p1, l1) = b.next("x", t).unwrap();
        let (p2, _) = b.next("y", t).unwrap();
        assert_ne!(p1, p2);
        // asking again: the same pair and lease
        assert_eq!(b.next("x", t), Some((p1, l1.clone())));
        let (p3, _) = b.next("z", t).unwrap();
        assert!(p3 != p1 && p3 != p2);
        assert_eq!(b.next("w", t), None, "every pair is leased");
        // after expiry, x's pair goes to w, and x's old lease is refused
        let later = t + LEASE + Duration::from_secs(1);
        let (p4, _) = b.next("w", later).unwrap();
        assert_eq!(p4, p1.min(p2).min(p3));
        assert_eq!(p4, p1);
        let e = b.answer(p1, &l1, Value::Left, "x").unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(b.counts().given, 0);
        assert!(!out.exists());
    }

    #[test]
    fn answers_are_checked_recorded_and_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d.safetensors");
        let mut b = Book::open(synthetic(4), &out, LEASE).unwrap();
        let t = Instant::now();
        let (p0, l0) = b.next("x", t).unwrap();
        assert_eq!(b.answer(9, &l0, Value::Left, "x").unwrap_err().status, 404);
        assert_eq!(b.answer(p0, "nope", Value::Left, "x").unwrap_err().status, 409);
        let c = b.answer(p0, &l0, Value::Right, "x").unwrap();
        assert_eq!((c.given, c.labelled, c.left), (1, 1, 3));
        // a replay changes nothing and names the recorded answer
        let e = b.answer(p0, &l0, Value::Left, "x").unwrap_err();
        assert_eq!((e.status, e.answered), (409, Some(Value::Right)));
        let ds = PreferenceDataset::load(&out).unwrap();
        assert_eq!(ds.labels(), vec![0.0]);
        assert_eq!(ds.pairs[0].a.rewards, vec![p0 as f64; 3]);
        let (p1, l1) = b.next("x", t).unwrap();
        b.answer(p1, &l1, Value::Skip, "x").unwrap();
        let (p2, l2) = b.next("y", t).unwrap();
        b.answer(p2, &l2, Value::Equal, "y").unwrap();
        let ds = PreferenceDataset::load(&out).unwrap();
        assert_eq!(ds.labels(), vec![0.0, 0.5], "the skip is not stored");
        assert_eq!(ds.meta.queries, 3, "the skip counts as a query");
        // x's undo must name x's last answer (p1, the skip), not y's or an older one
        assert_eq!(b.undo(p0, "x", t).unwrap_err().status, 409);
        assert_eq!(b.undo(p2, "x", t).unwrap_err().status, 409);
        let lu = b.undo(p1, "x", t).unwrap();
        assert_eq!(b.undo(p1, "x", t).unwrap_err().status, 409, "a replayed undo is refused");
        assert_eq!(b.counts().given, 2);
        assert_eq!(b.next("x", t), Some((p1, lu)), "the withdrawn pair is leased back");
        drop(b);
        // restart: the journal brings every answer back; answered pairs are not served again
        let mut b = Book::open(synthetic(4), &out, LEASE).unwrap();
        assert_eq!(b.counts().given, 2);
        assert_eq!(b.undo_pair("x"), Some(p0));
        let mut served = vec![];
        while let Some((p, l)) = b.next("z", t) {
            served.push(p);
            b.answer(p, &l, Value::Left, "z").unwrap();
        }
        served.sort();
        assert_eq!(served, vec![p1, 3]);
        assert_eq!(PreferenceDataset::load(&out).unwrap().labels(), vec![0.0, 1.0, 0.5, 1.0]);
        // another pair file cannot take over this journal
        let err = Book::open(synthetic(5), &out, LEASE).err().unwrap().to_string();
        assert!(err.contains("belongs to other pairs"), "{err}");
    }

    #[test]
    fn undoing_the_only_label_removes_the_dataset_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d.safetensors");
        let mut b = Book::open(synthetic(2), &out, LEASE).unwrap();
        let t = Instant::now();
        let (p, l) = b.next("x", t).unwrap();
        b.answer(p, &l, Value::Left, "x").unwrap();
        assert!(out.exists());
        b.undo(p, "x", t).unwrap();
        assert!(!out.exists(), "a dataset must hold at least one pair");
    }
}
