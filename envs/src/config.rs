//! Keyword arguments for environment constructors (`make("Swimmer-v5", config)`), like the
//! `**kwargs` of `gymnasium.make`. Values come from code, TOML tables or `key=value` strings.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::EnvError;

/// One option value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// A number (integers are accepted where a float is wanted).
    Float(f64),
    /// A whole number.
    Int(i64),
    /// A flag.
    Bool(bool),
    /// Text.
    Str(String),
}

impl ConfigValue {
    /// Parses `true`/`false`, an integer, a float, or else keeps the text.
    pub fn parse(s: &str) -> ConfigValue {
        let t = s.trim();
        if t.eq_ignore_ascii_case("true") {
            ConfigValue::Bool(true)
        } else if t.eq_ignore_ascii_case("false") {
            ConfigValue::Bool(false)
        } else if let Ok(i) = t.parse::<i64>() {
            ConfigValue::Int(i)
        } else if let Ok(f) = t.parse::<f64>() {
            ConfigValue::Float(f)
        } else {
            ConfigValue::Str(t.to_string())
        }
    }
}

impl std::fmt::Display for ConfigValue {
    /// As `key=value` takes it back ([`ConfigValue::parse`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Float(x) => write!(f, "{x:?}"),
            ConfigValue::Int(i) => write!(f, "{i}"),
            ConfigValue::Bool(b) => write!(f, "{b}"),
            ConfigValue::Str(s) => write!(f, "{s}"),
        }
    }
}

/// Constructor options of an environment. Unknown keys are an error listing the valid ones
/// (see [`ConfigReader::finish`]). Two configurations are equal when their options are.
#[derive(Clone, Debug, Default)]
pub struct EnvConfig {
    values: BTreeMap<String, ConfigValue>,
    /// Where [`ConfigReader`]s note the value in effect of every option they read, defaults included
    /// ([`crate::settings`] asks for it), and which of them the other settings leave without effect
    /// ([`crate::inert_options`]).
    noted: Option<Arc<Mutex<Notes>>>,
}

/// What the readers of a noting configuration noted.
#[derive(Debug, Default)]
struct Notes {
    values: BTreeMap<String, ConfigValue>,
    /// Option → why the other settings leave it without effect ([`ConfigReader::inert_if`]).
    inert: BTreeMap<String, String>,
}

impl PartialEq for EnvConfig {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl EnvConfig {
    /// No options: every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (builder style).
    pub fn with(mut self, key: &str, value: ConfigValue) -> Self {
        self.values.insert(key.to_string(), value);
        self
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: &str, value: ConfigValue) {
        self.values.insert(key.to_string(), value);
    }

    /// Parses `key=value` pairs.
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Self, EnvError> {
        let mut c = EnvConfig::new();
        for p in pairs {
            let p = p.as_ref();
            let (k, v) = p.split_once('=').ok_or_else(|| EnvError::BadOption {
                env: "environment".into(),
                key: p.to_string(),
                msg: "expected key=value".into(),
            })?;
            c.set(k.trim(), ConfigValue::parse(v));
        }
        Ok(c)
    }

    /// The options as a map.
    pub fn values(&self) -> &BTreeMap<String, ConfigValue> {
        &self.values
    }

    /// A configuration whose readers note every option's value in effect (see [`EnvConfig::noted`]).
    pub(crate) fn noting(&self) -> EnvConfig {
        EnvConfig { values: self.values.clone(), noted: Some(Arc::default()) }
    }

    /// Options taken out of `self` (by [`crate::make`]) that note into the same place as `self`.
    pub(crate) fn noting_like(&self, values: BTreeMap<String, ConfigValue>) -> EnvConfig {
        EnvConfig { values, noted: self.noted.clone() }
    }

    /// What the readers of a configuration made by `noting` noted: every option read, with the value in effect.
    pub(crate) fn noted(&self) -> EnvConfig {
        let values = self.noted.as_ref().map(|n| n.lock().unwrap_or_else(|p| p.into_inner()).values.clone()).unwrap_or_default();
        EnvConfig { values, noted: None }
    }

    /// The options the readers of a configuration made by `noting` marked as without effect, each with why.
    pub(crate) fn noted_inert(&self) -> BTreeMap<String, String> {
        self.noted.as_ref().map(|n| n.lock().unwrap_or_else(|p| p.into_inner()).inert.clone()).unwrap_or_default()
    }

    /// Starts reading the options for environment `env`.
    pub fn reader(&self, env: &str) -> ConfigReader<'_> {
        ConfigReader { env: env.to_string(), config: self, known: Vec::new() }
    }
}

/// Reads typed options with defaults and remembers which keys exist.
pub struct ConfigReader<'a> {
    env: String,
    config: &'a EnvConfig,
    known: Vec<&'static str>,
}

impl ConfigReader<'_> {
    /// Notes `key`'s value in effect where the configuration asks for it ([`crate::settings`]).
    fn note(&self, key: &str, value: ConfigValue) {
        if let Some(n) = &self.config.noted {
            n.lock().unwrap_or_else(|p| p.into_inner()).values.insert(key.to_string(), value);
        }
    }

    /// Marks option `key` (already read) as without effect under the other settings when `cond` holds, `why`
    /// saying which setting makes it so and how to give it effect ([`crate::inert_options`] reports it).
    pub fn inert_if(&self, cond: bool, key: &'static str, why: &str) {
        debug_assert!(self.known.contains(&key), "{key} is marked inert before it is read");
        if let (true, Some(n)) = (cond, &self.config.noted) {
            n.lock().unwrap_or_else(|p| p.into_inner()).inert.insert(key.to_string(), why.to_string());
        }
    }

    fn bad(&self, key: &str, msg: String) -> EnvError {
        EnvError::BadOption { env: self.env.clone(), key: key.to_string(), msg }
    }

    /// A float option (integers accepted), which must be finite.
    pub fn f64(&mut self, key: &'static str, default: f64) -> Result<f64, EnvError> {
        let v = self.read_f64(key, default)?;
        self.note(key, ConfigValue::Float(v));
        Ok(v)
    }

    fn read_f64(&mut self, key: &'static str, default: f64) -> Result<f64, EnvError> {
        self.known.push(key);
        let v = match self.config.values.get(key) {
            None => return Ok(default),
            Some(ConfigValue::Float(f)) => *f,
            Some(ConfigValue::Int(i)) => *i as f64,
            Some(other) => return Err(self.bad(key, format!("expected a number, got {other:?}"))),
        };
        if !v.is_finite() {
            return Err(self.bad(key, format!("must be finite, got {v}")));
        }
        Ok(v)
    }

    /// A float option that must be `>= 0`.
    pub fn nonneg_f64(&mut self, key: &'static str, default: f64) -> Result<f64, EnvError> {
        let v = self.f64(key, default)?;
        if v < 0.0 {
            return Err(self.bad(key, format!("must be >= 0, got {v}")));
        }
        Ok(v)
    }

    /// A whole-number option in `[min, max]`.
    pub fn usize_in(&mut self, key: &'static str, default: usize, min: usize, max: usize) -> Result<usize, EnvError> {
        let v = self.read_usize_in(key, default, min, max)?;
        self.note(key, ConfigValue::Int(v as i64));
        Ok(v)
    }

    fn read_usize_in(&mut self, key: &'static str, default: usize, min: usize, max: usize) -> Result<usize, EnvError> {
        self.known.push(key);
        let v = match self.config.values.get(key) {
            None => return Ok(default),
            Some(ConfigValue::Int(i)) if *i >= 0 => *i as usize,
            Some(other) => return Err(self.bad(key, format!("expected a whole number, got {other:?}"))),
        };
        if v < min || v > max {
            return Err(self.bad(key, format!("must be in [{min}, {max}], got {v}")));
        }
        Ok(v)
    }

    /// A flag option.
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool, EnvError> {
        self.known.push(key);
        let v = match self.config.values.get(key) {
            None => default,
            Some(ConfigValue::Bool(b)) => *b,
            Some(other) => return Err(self.bad(key, format!("expected true or false, got {other:?}"))),
        };
        self.note(key, ConfigValue::Bool(v));
        Ok(v)
    }

    /// A text option.
    pub fn string(&mut self, key: &'static str, default: &str) -> Result<String, EnvError> {
        self.known.push(key);
        let v = match self.config.values.get(key) {
            None => default.to_string(),
            Some(ConfigValue::Str(s)) => s.clone(),
            Some(other) => return Err(self.bad(key, format!("expected text, got {other:?}"))),
        };
        self.note(key, ConfigValue::Str(v.clone()));
        Ok(v)
    }

    /// A range `lo,hi` given as text (`"0.7,inf"`; `inf` and `-inf` allowed), with `lo < hi`.
    pub fn range(&mut self, key: &'static str, default: (f64, f64)) -> Result<(f64, f64), EnvError> {
        let (lo, hi) = self.read_range(key, default)?;
        self.note(key, ConfigValue::Str(format!("{lo},{hi}")));
        Ok((lo, hi))
    }

    fn read_range(&mut self, key: &'static str, default: (f64, f64)) -> Result<(f64, f64), EnvError> {
        self.known.push(key);
        let text = match self.config.values.get(key) {
            None => return Ok(default),
            Some(ConfigValue::Str(s)) => s.clone(),
            Some(other) => return Err(self.bad(key, format!("expected \"lo,hi\" (e.g. \"0.7,inf\"), got {other:?}"))),
        };
        let parts: Vec<Option<f64>> = text.split(',').map(|p| p.trim().parse::<f64>().ok()).collect();
        match parts.as_slice() {
            [Some(lo), Some(hi)] if !lo.is_nan() && !hi.is_nan() && lo < hi => Ok((*lo, *hi)),
            _ => Err(self.bad(key, format!("expected \"lo,hi\" with lo < hi (e.g. \"0.7,inf\"), got {text:?}"))),
        }
    }

    /// Fails on any key that was not read, listing the valid ones.
    pub fn finish(self) -> Result<(), EnvError> {
        for k in self.config.values.keys() {
            if !self.known.contains(&k.as_str()) {
                let mut valid: Vec<&str> = self.known.clone();
                valid.sort_unstable();
                return Err(EnvError::UnknownOption {
                    env: self.env.clone(),
                    key: k.clone(),
                    valid: valid.join(", "),
                });
            }
        }
        Ok(())
    }
}
