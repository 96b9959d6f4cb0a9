//! The append-only answer journal and atomic file writes.
//!
//! `DATASET.journal` is JSON lines: a header `{"format": "rebel-rs-label-journal", "format_version": 1,
//! "pairs": FINGERPRINT}` (the pair file it belongs to), then one event per line, `{"op": "answer", "pair": ID,
//! "value": "left"|"right"|"equal"|"skip", "labeller": NAME}` or `{"op": "undo", "pair": ID, "labeller": NAME}`.
//! Every line is written and `fsync`ed before the server answers the request that caused it, so an acknowledged
//! answer survives `kill -9` and power loss. A last line cut short by a crash (never acknowledged) is ignored
//! when the journal is read back, and truncated away before new lines are appended.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Value of the journal header's `format` key.
pub const JOURNAL_FORMAT: &str = "rebel-rs-label-journal";
/// Journal layout version.
pub const JOURNAL_VERSION: u32 = 1;

/// A labeller's answer about a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// The left piece (a) is better: label 1.
    Left,
    /// The right piece (b) is better: label 0.
    Right,
    /// Equally good: label 0.5.
    Equal,
    /// Can't tell: a query without a label (not stored in the dataset).
    Skip,
}

impl Value {
    /// Parses `left`, `right`, `equal`, `skip`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "left" => Value::Left,
            "right" => Value::Right,
            "equal" => Value::Equal,
            "skip" => Value::Skip,
            _ => return None,
        })
    }
    /// The dataset label (1 = a preferred), `None` for a skip.
    pub fn label(self) -> Option<f32> {
        match self {
            Value::Left => Some(1.0),
            Value::Right => Some(0.0),
            Value::Equal => Some(0.5),
            Value::Skip => None,
        }
    }
}

/// One journal event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Event {
    /// An answer about a pair.
    Answer {
        /// Pair id.
        pair: usize,
        /// The answer.
        value: Value,
        /// Who answered.
        labeller: String,
    },
    /// The labeller withdrew their answer about `pair`.
    Undo {
        /// Pair id.
        pair: usize,
        /// Who withdrew it.
        labeller: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    format_version: u32,
    pairs: String,
}

/// An open journal, appending.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (or creates) the journal of the pairs with `fingerprint`; returns it with the events already in it.
    pub fn open(path: &Path, fingerprint: &str) -> Result<(Self, Vec<Event>)> {
        let p = path.display();
        let mut events = Vec::new();
        let exists = path.exists();
        let mut keep = 0usize; // bytes of whole, valid lines
        if exists {
            let text = fs::read(path).with_context(|| format!("cannot read the journal {p}"))?;
            let mut offset = 0usize;
            let mut first = true;
            for raw in text.split_inclusive(|b| *b == b'\n') {
                let whole = raw.ends_with(b"\n");
                let line = std::str::from_utf8(raw).map(str::trim);
                if first {
                    let h: Header = match line.ok().and_then(|l| serde_json::from_str(l).ok()) {
                        Some(h) if whole => h,
                        _ => bail!("{p} is not a labelling journal (bad first line); move it away to start afresh"),
                    };
                    if h.format != JOURNAL_FORMAT || h.format_version != JOURNAL_VERSION {
                        bail!("{p} is a '{}' version {} file, not a {JOURNAL_FORMAT} v{JOURNAL_VERSION} journal", h.format, h.format_version);
                    }
                    if h.pairs != fingerprint {
                        bail!(
                            "the journal {p} belongs to other pairs (fingerprint {}, the pair file has {fingerprint}): \
                             use another --out, or move the journal away",
                            h.pairs
                        );
                    }
                    first = false;
                } else if !whole {
                    eprintln!("note: {p} ends with a line cut short by a crash (never acknowledged); it is dropped");
                    break;
                } else {
                    let e: Event = line
                        .ok()
                        .and_then(|l| serde_json::from_str(l).ok())
                        .with_context(|| format!("{p}: line {} is not a journal event", events.len() + 2))?;
                    events.push(e);
                }
                offset += raw.len();
                keep = offset;
            }
            if first {
                // an empty file or a cut header: nothing was ever acknowledged
                keep = 0;
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open the journal {p} for writing"))?;
        file.set_len(keep as u64).with_context(|| format!("cannot truncate {p}"))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))?;
        let mut j = Journal { file, path: path.to_path_buf() };
        if keep == 0 {
            let h = Header { format: JOURNAL_FORMAT.into(), format_version: JOURNAL_VERSION, pairs: fingerprint.into() };
            j.append_line(&serde_json::to_string(&h)?)?;
            sync_dir(path);
        }
        Ok((j, events))
    }

    /// Appends one event and fsyncs it.
    pub fn append(&mut self, e: &Event) -> Result<()> {
        self.append_line(&serde_json::to_string(e)?)
    }

    fn append_line(&mut self, line: &str) -> Result<()> {
        let mut buf = line.as_bytes().to_vec();
        buf.push(b'\n');
        let before = self.file.metadata().with_context(|| format!("cannot read the size of {}", self.path.display()))?.len();
        let written = self.file.write_all(&buf).and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            // A part of the line may have reached the file (a full disk): cut it, so that the next
            // answer starts on a line of its own and the journal stays readable.
            let _ = self.file.set_len(before);
            let hint = rebel_agents::io::full_disk_hint(&e);
            return Err(anyhow::Error::new(e).context(format!("cannot append to {}{hint}", self.path.display())));
        }
        Ok(())
    }
}

fn sync_dir(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Removes `path` if it exists and fsyncs its folder.
pub fn remove_durably(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip_drops_a_cut_last_line_and_refuses_other_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, ev) = Journal::open(&path, "abc").unwrap();
        assert!(ev.is_empty());
        let e1 = Event::Answer { pair: 3, value: Value::Left, labeller: "x".into() };
        let e2 = Event::Undo { pair: 3, labeller: "x".into() };
        j.append(&e1).unwrap();
        j.append(&e2).unwrap();
        drop(j);
        // a crash in the middle of a third line
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"op":"answer","pair":4,"val"#).unwrap();
        drop(f);
        let (mut j, ev) = Journal::open(&path, "abc").unwrap();
        assert_eq!(ev, vec![e1.clone(), e2.clone()]);
        let e3 = Event::Answer { pair: 4, value: Value::Skip, labeller: "y".into() };
        j.append(&e3).unwrap();
        drop(j);
        let (_, ev) = Journal::open(&path, "abc").unwrap();
        assert_eq!(ev, vec![e1, e2, e3]);
        let err = Journal::open(&path, "other").err().unwrap().to_string();
        assert!(err.contains("belongs to other pairs"), "{err}");
    }

    #[test]
    fn values_map_to_dataset_labels() {
        assert_eq!(Value::parse("left").and_then(Value::label), Some(1.0));
        assert_eq!(Value::parse("right").and_then(Value::label), Some(0.0));
        assert_eq!(Value::parse("equal").and_then(Value::label), Some(0.5));
        assert_eq!(Value::parse("skip").map(Value::label), Some(None));
        assert_eq!(Value::parse("LEFT"), None);
    }
}
