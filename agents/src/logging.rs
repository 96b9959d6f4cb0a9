//! Run directories and their logs: `metrics.jsonl`, TensorBoard event files, `config.toml`, `summary.json`.
//!
//! A run directory looks like this:
//!
//! ```text
//! {base}/{env}__{algo}__{seed}__{unix_time}[-N]/
//!     config.toml     the resolved configuration (write_config)
//!     metrics.jsonl   one JSON object per MetricsLogger::log call: env_steps, wall_time_s, then every tag
//!     summary.json    final results (write_summary), replaced atomically
//!     tb/events.out.tfevents.{unix_time}.{host}.{pid}.{counter}
//!                     one TensorBoard event file per MetricsLogger (the first run and each resume)
//! ```
//!
//! # Why the TensorBoard writer is our own and not tensorboard-rs
//!
//! tensorboard-rs 0.5.9 writes scalars that TensorBoard reads, but it writes on a background thread whose I/O
//! errors panic (a full disk would kill a training run from a thread we cannot join), its `flush()` does not
//! wait for that thread, several of its methods are `unimplemented!()`, and two writers opened on one folder in
//! the same second overwrite each other's file. The event format itself is small: TFRecord framing (u64 length,
//! masked CRC-32C of the length, the data, masked CRC-32C of the data) around `Event` protobufs. [`EventWriter`]
//! encodes the messages we need (declared by hand, encoded by `prost`; CRCs by `crc32c`) on the caller's thread,
//! returns every I/O error as a
//! [`LogError`], and creates its file with `create_new` so it never replaces another writer's file.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Errors of the run directory and its writers. Every file-system failure names the path and what was being
/// done.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file-system operation failed (unwritable folder, full disk, a file where a folder should be, ...).
    #[error("cannot {action} {}: {source}{}", path.display(), crate::io::full_disk_hint(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An environment or algorithm name that cannot be part of a directory name.
    #[error("invalid {what} name {value:?} for a run directory: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// `RunDir::open_existing` on something that is not a directory.
    #[error("{} is not a run directory: {reason}", path.display())]
    NotARunDir { path: PathBuf, reason: &'static str },
    /// A metric tag that is empty, repeated within one call, or one of the reserved column names.
    #[error("invalid metric tag {tag:?}: {reason}")]
    BadTag { tag: String, reason: &'static str },
    /// JSON serialization failed.
    #[error("cannot serialize {what} as JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_time_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// File names inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CONFIG_FILE: &str = "config.toml";
pub const SUMMARY_FILE: &str = "summary.json";
pub const TB_DIR: &str = "tb";

/// A run's directory, `{base}/{env}__{algo}__{seed}__{unix_time}` (CleanRL's naming), never shared with
/// another run: if the name is taken, `-1`, `-2`, ... is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates a new run directory under `base` (created if missing), named with the current Unix time.
    pub fn create(base: &Path, env: &str, algo: &str, seed: u64) -> Result<RunDir> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::create_at_time(base, env, algo, seed, now)
    }

    /// [`RunDir::create`] with the time in the name given explicitly.
    pub fn create_at_time(
        base: &Path,
        env: &str,
        algo: &str,
        seed: u64,
        unix_time: u64,
    ) -> Result<RunDir> {
        check_name_part("environment", env)?;
        check_name_part("algorithm", algo)?;
        fs::create_dir_all(base).map_err(io_err("create the base directory", base))?;
        let stem = format!("{env}__{algo}__{seed}__{unix_time}");
        const MAX_SUFFIX: u32 = 100_000;
        for n in 0..MAX_SUFFIX {
            let name = if n == 0 {
                stem.clone()
            } else {
                format!("{stem}-{n}")
            };
            let path = base.join(name);
            // create_dir (not create_dir_all) fails on an existing directory: the check and the creation are
            // one atomic step, so two runs started at once cannot end up in the same directory.
            match fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(LogError::Io {
                        action: "create the run directory",
                        path,
                        source,
                    })
                }
            }
        }
        Err(LogError::Io {
            action: "find a free run directory name for",
            path: base.join(stem),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("suffixes -1 to -{} are taken", MAX_SUFFIX - 1),
            ),
        })
    }

    /// Opens an existing run directory, e.g. to resume a run.
    pub fn open_existing(path: &Path) -> Result<RunDir> {
        let meta = fs::metadata(path).map_err(io_err("open the run directory", path))?;
        if !meta.is_dir() {
            return Err(LogError::NotARunDir {
                path: path.to_path_buf(),
                reason: "it is not a directory",
            });
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own name, e.g. `Swimmer-v5__rebel__1__1700000000`.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Removes the TensorBoard event files in `tb/` (a missing folder is not an error).
    pub fn remove_event_files(&self) -> Result<()> {
        for e in fs::read_dir(self.tb_dir()).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("events.out.tfevents.") {
                fs::remove_file(e.path()).map_err(io_err("remove the stale event file", &e.path()))?;
            }
        }
        Ok(())
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }

    pub fn tb_dir(&self) -> PathBuf {
        self.path.join(TB_DIR)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn summary_path(&self) -> PathBuf {
        self.path.join(SUMMARY_FILE)
    }
}

fn check_name_part(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.contains(['/', '\\', '\0']) {
        Some("it contains a path separator or NUL")
    } else if value.starts_with('.') {
        Some("it starts with '.'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LogError::InvalidName {
            what,
            value: value.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically ([`crate::io::write_atomic`]): readers see the old file or the new one,
/// never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::io::write_atomic(path, bytes).map_err(|e| LogError::Io { action: e.action, path: e.path, source: e.source })
}

/// Writes `summary.json` (pretty JSON) into `dir`, atomically.
pub fn write_summary(dir: &Path, summary: &serde_json::Value) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(summary).map_err(|source| LogError::Json {
        what: "the summary",
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(&dir.join(SUMMARY_FILE), &bytes)
}

/// Writes the resolved configuration's TOML text to `config.toml` in `dir`, atomically.
pub fn write_config(dir: &Path, toml_text: &str) -> Result<()> {
    write_atomic(&dir.join(CONFIG_FILE), toml_text.as_bytes())
}

/// Column names that `metrics.jsonl` uses itself; tags may not take them.
pub const RESERVED_TAGS: [&str; 2] = ["env_steps", "wall_time_s"];

/// Writes every logged scalar twice: as one line of `metrics.jsonl` and as TensorBoard scalars at step
/// `env_steps`.
///
/// Opening a run directory that already has a `metrics.jsonl` continues it (resume): lines are appended and
/// `wall_time_s` continues from the last logged value. A partial last line (a crash mid-write) is cut off
/// first. Each resume writes a new TensorBoard event file next to the earlier ones.
#[derive(Debug)]
pub struct MetricsLogger {
    jsonl: File,
    jsonl_path: PathBuf,
    events: EventWriter<BufWriter<File>>,
    start: Instant,
    wall_offset_s: f64,
}

impl MetricsLogger {
    /// Opens (creating or continuing) `metrics.jsonl` and a new event file in `tb/` of `run`.
    pub fn open(run: &RunDir) -> Result<MetricsLogger> {
        Self::open_at(run, None)
    }

    /// Like [`MetricsLogger::open`], continuing a run from its checkpoint at step `resume_at`: lines
    /// logged after that step (by iterations the checkpoint does not hold, which the run repeats)
    /// are dropped from `metrics.jsonl`, so that it reads as the uninterrupted run's.
    pub fn open_at(run: &RunDir, resume_at: Option<u64>) -> Result<MetricsLogger> {
        let jsonl_path = run.metrics_path();
        let mut jsonl = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&jsonl_path)
            .map_err(io_err("open", &jsonl_path))?;
        if let Some(step) = resume_at {
            drop_lines_after(&mut jsonl, &jsonl_path, step)?;
        }
        let wall_offset_s = resume_wall_time(&mut jsonl, &jsonl_path)?;
        if resume_at.is_some() {
            // The killed attempt's event files may hold points past the checkpoint; TensorBoard would
            // show them beside the repeated ones. They are replaced by one file rebuilt from the
            // (cut) metrics.jsonl, which holds the same tags and values.
            run.remove_event_files()?;
        }
        let events = EventWriter::create(&run.tb_dir())?;
        let mut logger = MetricsLogger {
            jsonl,
            jsonl_path,
            events,
            start: Instant::now(),
            wall_offset_s,
        };
        if resume_at.is_some() {
            logger.replay_into_events(run)?;
        }
        Ok(logger)
    }

    /// Writes the config text and every line of `metrics.jsonl` to the (new) event file, as
    /// [`MetricsLogger::log`] wrote them (wall times shifted to end now).
    fn replay_into_events(&mut self, run: &RunDir) -> Result<()> {
        if let Ok(text) = fs::read_to_string(run.config_path()) {
            self.log_config(&text)?;
        }
        let text = fs::read_to_string(&self.jsonl_path).map_err(io_err("read", &self.jsonl_path))?;
        let t0 = unix_time_f64() - self.wall_offset_s;
        for line in text.lines() {
            let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let Some(step) = m.get("env_steps").and_then(|v| v.as_u64()) else { continue };
            let wall = m.get("wall_time_s").and_then(|v| v.as_f64()).unwrap_or(0.0);
            let tb: Vec<(&str, f32)> = m
                .iter()
                .filter(|(k, _)| !RESERVED_TAGS.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.as_str(), v as f32)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            if !tb.is_empty() {
                self.events.write_scalars(step_i64(step), t0 + wall, &tb)?;
            }
        }
        self.events.flush()
    }

    /// Seconds since the run started; after a resume, counting on from the last logged value.
    pub fn wall_time_s(&self) -> f64 {
        self.wall_offset_s + self.start.elapsed().as_secs_f64()
    }

    /// The TensorBoard event file this logger writes.
    pub fn events_path(&self) -> &Path {
        self.events.path()
    }

    pub fn metrics_path(&self) -> &Path {
        &self.jsonl_path
    }

    /// Logs `scalars` at `env_steps`: one JSON line (`env_steps`, `wall_time_s`, then each tag in the order
    /// given), written and flushed before returning, and the same tags as TensorBoard scalars at step
    /// `env_steps`. Non-finite values are written as JSON `null` and left out of TensorBoard, as are finite
    /// values that overflow `f32`. Tags must be non-empty, distinct within a call, and not a reserved name.
    pub fn log(&mut self, env_steps: u64, scalars: &[(&str, f64)]) -> Result<()> {
        check_tags(scalars)?;
        let wall = self.wall_time_s();
        let mut line = String::with_capacity(48 + 32 * scalars.len());
        let _ = write!(line, "{{\"env_steps\":{env_steps},\"wall_time_s\":");
        push_json_f64(&mut line, wall);
        for (tag, value) in scalars {
            line.push(',');
            line.push_str(
                &serde_json::to_string(tag).map_err(|source| LogError::Json {
                    what: "a tag",
                    source,
                })?,
            );
            line.push(':');
            push_json_f64(&mut line, *value);
        }
        line.push_str("}\n");
        // One write of the whole line on an unbuffered file: the line is on its way to the disk when we return.
        self.jsonl
            .write_all(line.as_bytes())
            .map_err(io_err("append to", &self.jsonl_path))?;

        let tb: Vec<(&str, f32)> = scalars
            .iter()
            .filter_map(|(tag, v)| {
                let v32 = *v as f32;
                v32.is_finite().then_some((*tag, v32))
            })
            .collect();
        if !tb.is_empty() {
            self.events
                .write_scalars(step_i64(env_steps), unix_time_f64(), &tb)?;
            self.events.flush()?;
        }
        Ok(())
    }

    /// Writes `text` (Markdown) to TensorBoard's Text tab under `tag` at `step`.
    pub fn log_text(&mut self, tag: &str, text: &str, step: u64) -> Result<()> {
        self.events
            .write_text(step_i64(step), unix_time_f64(), tag, text)?;
        self.events.flush()
    }

    /// Shows the resolved configuration's TOML in TensorBoard's Text tab (tag `config`, step 0), as a code
    /// block.
    pub fn log_config(&mut self, toml_text: &str) -> Result<()> {
        let mut md = String::with_capacity(toml_text.len() + 8 * toml_text.lines().count());
        for l in toml_text.lines() {
            md.push_str("    ");
            md.push_str(l);
            md.push('\n');
        }
        self.log_text("config", &md, 0)
    }

    /// Flushes both files (each `log` already does; this is for callers that want an explicit final check).
    pub fn flush(&mut self) -> Result<()> {
        self.jsonl
            .flush()
            .map_err(io_err("flush", &self.jsonl_path))?;
        self.events.flush()
    }
}

/// Every tag of one `log` call non-empty, not reserved, and given once.
fn check_tags(scalars: &[(&str, f64)]) -> Result<()> {
    let mut seen = HashSet::with_capacity(scalars.len());
    for (tag, _) in scalars {
        let reason = if tag.is_empty() {
            "it is empty"
        } else if RESERVED_TAGS.contains(tag) {
            "it is a reserved column of metrics.jsonl"
        } else if !seen.insert(*tag) {
            "it appears twice in one log call"
        } else {
            continue;
        };
        return Err(LogError::BadTag { tag: tag.to_string(), reason });
    }
    Ok(())
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

fn push_json_f64(out: &mut String, v: f64) {
    match serde_json::Number::from_f64(v) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

/// Reads the `wall_time_s` of the last complete line of an existing `metrics.jsonl` (0 if none) and cuts off
/// a partial last line. Does nothing for a file that is not a regular file (e.g. a device).
/// Cuts `metrics.jsonl` after its last line whose `env_steps` is at most `step` (a partial last
/// line goes too).
fn drop_lines_after(file: &mut File, path: &Path, step: u64) -> Result<()> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io_err("read", path))?;
    file.read_to_end(&mut bytes).map_err(io_err("read", path))?;
    let (mut keep, mut pos) = (0usize, 0usize);
    while let Some(n) = bytes[pos..].iter().position(|&b| b == b'\n') {
        let line = &bytes[pos..pos + n];
        let at = serde_json::from_slice::<serde_json::Value>(line).ok().and_then(|v| v.get("env_steps")?.as_u64());
        if at.is_some_and(|a| a > step) {
            break;
        }
        pos += n + 1;
        keep = pos;
    }
    if keep < bytes.len() {
        file.set_len(keep as u64).map_err(io_err("cut the lines after the checkpoint from", path))?;
    }
    Ok(())
}

fn resume_wall_time(file: &mut File, path: &Path) -> Result<f64> {
    let meta = file
        .metadata()
        .map_err(io_err("read the metadata of", path))?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(0.0);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.seek(SeekFrom::Start(0))
        .map_err(io_err("read", path))?;
    file.read_to_end(&mut bytes).map_err(io_err("read", path))?;
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if complete < bytes.len() {
        file.set_len(complete as u64)
            .map_err(io_err("cut the partial last line of", path))?;
    }
    let text = String::from_utf8_lossy(&bytes[..complete]);
    for line in text.lines().rev() {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line)
        {
            if let Some(t) = map.get("wall_time_s").and_then(|v| v.as_f64()) {
                return Ok(t);
            }
        }
    }
    Ok(0.0)
}

// ---------------------------------------------------------------------------------------------------------
// TensorBoard event files

/// CRC-32C of `data` (the `crc32c` crate: Castagnoli polynomial, hardware-accelerated where available).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// TFRecord's masked CRC: rotate right by 15 and add a constant.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The protobuf messages of TensorBoard event files that we write, declared by hand (only the fields we use;
/// field numbers from tensorflow/core/util/event.proto, framework/summary.proto, tensor.proto,
/// tensor_shape.proto) and encoded by `prost` (no protoc, no build script).
mod proto {
    /// `tensorflow.Event`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        #[prost(int64, tag = "2")]
        pub step: i64,
        #[prost(oneof = "What", tags = "3, 5")]
        pub what: Option<What>,
    }

    /// `Event.what`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(message, tag = "5")]
        Summary(Summary),
    }

    /// `tensorflow.Summary`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<Value>,
    }

    /// `tensorflow.Summary.Value`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<SummaryMetadata>,
        #[prost(oneof = "Payload", tags = "2, 8")]
        pub value: Option<Payload>,
    }

    /// `Summary.Value.value`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        #[prost(message, tag = "8")]
        Tensor(TensorProto),
    }

    /// `tensorflow.SummaryMetadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SummaryMetadata {
        #[prost(message, optional, tag = "1")]
        pub plugin_data: Option<PluginData>,
    }

    /// `SummaryMetadata.PluginData`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginData {
        #[prost(string, tag = "1")]
        pub plugin_name: String,
    }

    /// `tensorflow.TensorProto` (string tensors only).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int32, tag = "1")]
        pub dtype: i32,
        #[prost(message, optional, tag = "2")]
        pub tensor_shape: Option<TensorShapeProto>,
        #[prost(bytes = "vec", repeated, tag = "8")]
        pub string_val: Vec<Vec<u8>>,
    }

    /// `tensorflow.TensorShapeProto` with no dimension: a scalar.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {}

    /// `tensorflow.DataType.DT_STRING`.
    pub const DT_STRING: i32 = 7;
}

/// Distinguishes event files created by one process within one second.
static EVENT_FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// A TensorBoard event file writer (scalars and text), writing on the caller's thread; every I/O error is
/// returned. Data reaches the file on [`EventWriter::flush`] (and on drop, where errors are ignored).
#[derive(Debug)]
pub struct EventWriter<W: Write> {
    out: W,
    path: PathBuf,
    record: Vec<u8>,
}

impl EventWriter<BufWriter<File>> {
    /// Creates `dir` if needed and a new event file in it,
    /// `events.out.tfevents.{unix_time}.{host}.{pid}.{counter}`, never replacing an existing file.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io_err("create the TensorBoard directory", dir))?;
        let host = hostname();
        let pid = std::process::id();
        loop {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let n = EVENT_FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("events.out.tfevents.{secs}.{host}.{pid}.{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut w = EventWriter::new(BufWriter::new(file), path)?;
                    w.flush()?;
                    return Ok(w);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(LogError::Io {
                        action: "create the event file",
                        path,
                        source,
                    })
                }
            }
        }
    }
}

impl<W: Write> EventWriter<W> {
    /// Wraps `out` and writes the file-version record (`brain.Event:2`). `path` is only used in error messages.
    pub fn new(out: W, path: PathBuf) -> Result<Self> {
        let mut w = EventWriter {
            out,
            path,
            record: Vec::with_capacity(256),
        };
        let event = proto::Event {
            wall_time: unix_time_f64(),
            step: 0,
            what: Some(proto::What::FileVersion("brain.Event:2".into())),
        };
        let event = prost::Message::encode_to_vec(&event);
        w.write_record(&event)?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event at `step` holding a simple-value scalar for each `(tag, value)`.
    pub fn write_scalars(
        &mut self,
        step: i64,
        wall_time: f64,
        values: &[(&str, f32)],
    ) -> Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| proto::Value {
                tag: tag.to_string(),
                metadata: None,
                value: Some(proto::Payload::SimpleValue(*v)),
            })
            .collect();
        self.write_summary_event(step, wall_time, proto::Summary { value })
    }

    /// A text summary (TensorBoard's Text tab renders it as Markdown): a scalar string tensor with plugin
    /// name `text`.
    pub fn write_text(&mut self, step: i64, wall_time: f64, tag: &str, text: &str) -> Result<()> {
        let value = proto::Value {
            tag: tag.to_string(),
            metadata: Some(proto::SummaryMetadata { plugin_data: Some(proto::PluginData { plugin_name: "text".into() }) }),
            value: Some(proto::Payload::Tensor(proto::TensorProto {
                dtype: proto::DT_STRING,
                tensor_shape: Some(proto::TensorShapeProto {}),
                string_val: vec![text.as_bytes().to_vec()],
            })),
        };
        self.write_summary_event(step, wall_time, proto::Summary { value: vec![value] })
    }

    fn write_summary_event(&mut self, step: i64, wall_time: f64, summary: proto::Summary) -> Result<()> {
        let event = proto::Event { wall_time, step, what: Some(proto::What::Summary(summary)) };
        self.write_record(&prost::Message::encode_to_vec(&event))
    }

    /// TFRecord framing: length (u64 LE), masked CRC of the length, data, masked CRC of the data.
    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.record.clear();
        self.record.extend_from_slice(&len);
        self.record
            .extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        self.record.extend_from_slice(data);
        self.record
            .extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.out
            .write_all(&self.record)
            .map_err(io_err("write to the event file", &self.path))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(io_err("flush the event file", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a TFRecord stream into records, checking both CRCs of each.
    fn read_records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len_bytes: [u8; 8] = bytes[..8].try_into().unwrap();
            let len = u64::from_le_bytes(len_bytes) as usize;
            assert_eq!(
                u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
                masked_crc32c(&len_bytes)
            );
            let data = &bytes[12..12 + len];
            assert_eq!(
                u32::from_le_bytes(bytes[12 + len..16 + len].try_into().unwrap()),
                masked_crc32c(data)
            );
            out.push(data.to_vec());
            bytes = &bytes[16 + len..];
        }
        out
    }

    fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn crc32c_known_values() {
        // Check value of CRC-32C from the catalogue of CRC algorithms, and RFC 3720's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        // Masked values as TensorBoard's own Python implementation computes them
        // (tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c).
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc32c(&13u64.to_le_bytes()), 0x34b8_373c);
    }

    #[test]
    fn varint_encoding() {
        for (v, expected) in [
            (0u64, vec![0u8]),
            (1, vec![1]),
            (127, vec![0x7f]),
            (128, vec![0x80, 1]),
            (300, vec![0xac, 2]),
        ] {
            let mut buf = Vec::new();
            prost::encoding::encode_varint(v, &mut buf);
            assert_eq!(buf, expected, "{v}");
        }
        let mut buf = Vec::new();
        prost::encoding::encode_varint(u64::MAX, &mut buf);
        assert_eq!(buf.len(), 10);
    }

    #[test]
    fn event_records_are_framed_and_encoded() {
        let mut w = EventWriter::new(Vec::new(), PathBuf::from("mem")).unwrap();
        w.write_scalars(300, 2.0, &[("a", 1.5)]).unwrap();
        let records = read_records(&w.out);
        assert_eq!(records.len(), 2);
        // First record: wall_time (field 1, fixed64) then file_version (field 3) "brain.Event:2".
        assert_eq!(records[0][0], 0x09);
        assert_eq!(&records[0][9..11], &[0x1a, 13]);
        assert_eq!(&records[0][11..], b"brain.Event:2");
        // Second: wall_time 2.0, step 300, summary { value { tag "a", simple_value 1.5 } }.
        let mut expected = vec![0x09];
        expected.extend_from_slice(&2.0f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0xac, 0x02]);
        expected.extend_from_slice(&[0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15]);
        expected.extend_from_slice(&1.5f32.to_le_bytes());
        assert_eq!(records[1], expected);
    }

    #[test]
    fn run_dir_naming_and_no_clobbering() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("runs/nested");
        let a = RunDir::create_at_time(&base, "Swimmer-v5", "rebel", 3, 1_700_000_000).unwrap();
        assert_eq!(a.name(), "Swimmer-v5__rebel__3__1700000000");
        fs::write(a.path().join("marker"), "first").unwrap();
        let b = RunDir::create_at_time(&base, "Swimmer-v5", "rebel", 3, 1_700_000_000).unwrap();
        let c = RunDir::create_at_time(&base, "Swimmer-v5", "rebel", 3, 1_700_000_000).unwrap();
        assert_eq!(b.name(), "Swimmer-v5__rebel__3__1700000000-1");
        assert_eq!(c.name(), "Swimmer-v5__rebel__3__1700000000-2");
        assert_eq!(
            fs::read_to_string(a.path().join("marker")).unwrap(),
            "first"
        );
        assert!(fs::read_dir(b.path()).unwrap().next().is_none());

        let now = RunDir::create(&base, "Swimmer-v5", "ppo", 0).unwrap();
        let secs: u64 = now.name().rsplit("__").next().unwrap().parse().unwrap();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(secs <= wall && wall - secs < 60, "{}", now.name());

        assert_eq!(RunDir::open_existing(b.path()).unwrap(), b);
        for (env, algo) in [
            ("", "rebel"),
            ("a/b", "rebel"),
            ("Swimmer-v5", ".."),
            ("Swimmer-v5", "x\\y"),
        ] {
            let err = RunDir::create(&base, env, algo, 0).unwrap_err();
            assert!(
                matches!(err, LogError::InvalidName { .. }),
                "{env:?} {algo:?}: {err}"
            );
        }
    }

    #[test]
    fn unwritable_locations_are_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-regular-file");
        fs::write(&file, "x").unwrap();
        // A directory below a regular file: ENOTDIR, even for root.
        let err = RunDir::create(&file.join("runs"), "Swimmer-v5", "rebel", 1).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, LogError::Io { .. }) && msg.contains("a-regular-file"),
            "{msg}"
        );

        let err = RunDir::open_existing(&file).unwrap_err();
        assert!(matches!(err, LogError::NotARunDir { .. }), "{err}");
        let err = RunDir::open_existing(&tmp.path().join("missing")).unwrap_err();
        assert!(matches!(err, LogError::Io { .. }), "{err}");

        let err = write_summary(&file, &serde_json::json!({"a": 1})).unwrap_err();
        assert!(
            err.to_string().contains(&format!("a-regular-file/summary.json.{}.tmp", std::process::id())),
            "{err}"
        );
        let err = write_config(&file, "a = 1").unwrap_err();
        assert!(matches!(err, LogError::Io { .. }), "{err}");
        let err = EventWriter::create(&file.join("tb")).unwrap_err();
        assert!(matches!(err, LogError::Io { .. }), "{err}");

        // A run directory whose tb/ is a file: opening the logger fails cleanly.
        let run = RunDir::create(tmp.path(), "Swimmer-v5", "rebel", 1).unwrap();
        fs::write(run.tb_dir(), "not a folder").unwrap();
        let err = MetricsLogger::open(&run).unwrap_err();
        assert!(err.to_string().contains("TensorBoard directory"), "{err}");
    }

    #[test]
    fn full_disk_is_an_error() {
        // /dev/full accepts opening and fails every write with ENOSPC.
        let dev_full = Path::new("/dev/full");
        if !dev_full.exists() {
            panic!("/dev/full is missing; this test needs a Linux /dev");
        }
        let file = OpenOptions::new().write(true).open(dev_full).unwrap();
        let err = EventWriter::new(file, dev_full.to_path_buf()).unwrap_err();
        assert!(
            matches!(&err, LogError::Io { source, .. } if source.raw_os_error() == Some(28)),
            "{err}"
        );

        // Buffered: the error shows at flush, which write_scalars' callers (MetricsLogger::log) always do.
        let file = OpenOptions::new().write(true).open(dev_full).unwrap();
        let mut w = EventWriter::new(BufWriter::new(file), dev_full.to_path_buf()).unwrap();
        w.write_scalars(1, 0.0, &[("x", 1.0)]).unwrap();
        assert!(w.flush().is_err());

        // metrics.jsonl on a full disk: log returns the error.
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path(), "Swimmer-v5", "rebel", 1).unwrap();
        std::os::unix::fs::symlink(dev_full, run.metrics_path()).unwrap();
        let mut logger = MetricsLogger::open(&run).unwrap();
        let err = logger.log(10, &[("charts/return", 1.0)]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("metrics.jsonl") && msg.contains("No space left"),
            "{msg}"
        );

        // summary.json whose temporary file lands on a full disk: error, and no summary.json appears.
        std::os::unix::fs::symlink(dev_full, run.path().join(format!("summary.json.{}.tmp", std::process::id()))).unwrap();
        let err = write_summary(run.path(), &serde_json::json!({"x": 1})).unwrap_err();
        assert!(err.to_string().contains("No space left"), "{err}");
        assert!(!run.summary_path().exists());
    }

    #[test]
    fn metrics_jsonl_lines_and_non_finite_values() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path(), "Swimmer-v5", "rebel", 1).unwrap();
        let mut logger = MetricsLogger::open(&run).unwrap();
        logger
            .log(0, &[("charts/return", 1.25), ("losses/loss", -3.0)])
            .unwrap();
        // Read back before anything else: each line is written by the time log returns.
        assert_eq!(read_jsonl(&run.metrics_path()).len(), 1);
        logger
            .log(
                2048,
                &[
                    ("nan", f64::NAN),
                    ("inf", f64::INFINITY),
                    ("ninf", f64::NEG_INFINITY),
                    ("big", 1e300),
                    ("ok", 0.5),
                ],
            )
            .unwrap();
        let raw = fs::read_to_string(run.metrics_path()).unwrap();
        assert!(
            raw.starts_with("{\"env_steps\":0,\"wall_time_s\":"),
            "{raw}"
        );
        let lines = read_jsonl(&run.metrics_path());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["env_steps"], 0);
        assert_eq!(lines[0]["charts/return"], 1.25);
        assert_eq!(lines[0]["losses/loss"], -3.0);
        assert_eq!(lines[1]["env_steps"], 2048);
        for tag in ["nan", "inf", "ninf"] {
            assert!(lines[1][tag].is_null(), "{tag}: {}", lines[1]);
        }
        assert_eq!(lines[1]["big"], 1e300);
        assert_eq!(lines[1]["ok"], 0.5);
        let t0 = lines[0]["wall_time_s"].as_f64().unwrap();
        let t1 = lines[1]["wall_time_s"].as_f64().unwrap();
        assert!(0.0 <= t0 && t0 <= t1 && t1 < 60.0, "{t0} {t1}");

        // TensorBoard got the finite f32 values only.
        let records = read_records(&fs::read(logger.events_path()).unwrap());
        assert_eq!(records.len(), 3, "file version + 2 events");
        let has = |r: &[u8], tag: &str| {
            r.windows(tag.len() + 1)
                .any(|w| w[1..] == *tag.as_bytes() && w[0] as usize == tag.len())
        };
        assert!(has(&records[2], "ok"));
        for tag in ["nan", "inf", "ninf", "big"] {
            assert!(!has(&records[2], tag), "{tag} must not reach TensorBoard");
        }
        // A call with only non-finite values writes the JSON line and no event.
        logger.log(4096, &[("nan", f64::NAN)]).unwrap();
        assert_eq!(
            read_records(&fs::read(logger.events_path()).unwrap()).len(),
            3
        );
        assert_eq!(read_jsonl(&run.metrics_path()).len(), 3);
    }

    #[test]
    fn bad_tags_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path(), "Swimmer-v5", "rebel", 1).unwrap();
        let mut logger = MetricsLogger::open(&run).unwrap();
        for scalars in [
            vec![("", 1.0)],
            vec![("env_steps", 1.0)],
            vec![("wall_time_s", 1.0)],
            vec![("a", 1.0), ("a", 2.0)],
        ] {
            let err = logger.log(1, &scalars).unwrap_err();
            assert!(matches!(err, LogError::BadTag { .. }), "{scalars:?}: {err}");
        }
        assert_eq!(
            fs::read_to_string(run.metrics_path()).unwrap(),
            "",
            "nothing written for a rejected call"
        );
        // Odd but valid tags are escaped in JSON.
        logger.log(1, &[("quote\"and\\slash\n", 2.0)]).unwrap();
        assert_eq!(
            read_jsonl(&run.metrics_path())[0]["quote\"and\\slash\n"],
            2.0
        );
    }

    #[test]
    fn resume_continues_wall_time_and_cuts_partial_line() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path(), "Swimmer-v5", "rebel", 1).unwrap();
        // A previous segment that logged up to 100 s, then crashed in the middle of a line.
        fs::write(
            run.metrics_path(),
            "{\"env_steps\":0,\"wall_time_s\":1.5,\"x\":1.0}\n{\"env_steps\":10,\"wall_time_s\":100.0,\"x\":2.0}\n{\"env_st",
        )
        .unwrap();
        let first_events = {
            let mut logger = MetricsLogger::open(&run).unwrap();
            assert!(logger.wall_time_s() >= 100.0 && logger.wall_time_s() < 160.0);
            logger.log(20, &[("x", 3.0)]).unwrap();
            logger.events_path().to_path_buf()
        };
        let mut logger = MetricsLogger::open(&run).unwrap();
        assert_ne!(
            logger.events_path(),
            first_events,
            "each segment gets its own event file"
        );
        logger.log(30, &[("x", 4.0)]).unwrap();
        let lines = read_jsonl(&run.metrics_path());
        let steps: Vec<u64> = lines
            .iter()
            .map(|l| l["env_steps"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, vec![0, 10, 20, 30]);
        let t: Vec<f64> = lines
            .iter()
            .map(|l| l["wall_time_s"].as_f64().unwrap())
            .collect();
        assert!(t[2] >= 100.0 && t[3] >= t[2], "{t:?}");
        assert_eq!(fs::read_dir(run.tb_dir()).unwrap().count(), 2);
    }

    #[test]
    fn event_files_never_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let paths: HashSet<PathBuf> = (0..20)
            .map(|_| {
                EventWriter::create(tmp.path())
                    .unwrap()
                    .path()
                    .to_path_buf()
            })
            .collect();
        assert_eq!(paths.len(), 20);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 20);
        let name = paths
            .iter()
            .next()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(
            name.contains(&format!(".{}.", std::process::id())),
            "{name}"
        );
    }

    #[test]
    fn summary_and_config_are_written_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_summary(dir, &serde_json::json!({"final_return": 12.5, "steps": 3})).unwrap();
        write_summary(dir, &serde_json::json!({"final_return": 13.0})).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join(SUMMARY_FILE)).unwrap()).unwrap();
        assert_eq!(back, serde_json::json!({"final_return": 13.0}));
        write_config(dir, "seed = 1\n[rebel]\neta = 1.0\n").unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(CONFIG_FILE)).unwrap(),
            "seed = 1\n[rebel]\neta = 1.0\n"
        );
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![CONFIG_FILE.to_string(), SUMMARY_FILE.to_string()],
            "no temporary files left"
        );
    }
}
