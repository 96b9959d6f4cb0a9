//! Run configuration: layered TOML, generic over the caller's serde types.
//!
//! [`load_config`] builds one TOML table from four layers, each deep-merged over the one before
//! (tables merge key by key; any other value, arrays included, is replaced whole):
//!
//! 1. `T::default()`, serialized: fields the embedded text leaves out keep their `Default` value;
//! 2. the embedded default TOML text (usually `include_str!` of a file in `experiments/`);
//! 3. the user's config file, if any;
//! 4. `--set key=value` overrides in order (later ones win), with dotted keys (`rebel.eta=1.5`).
//!
//! The merged table is then deserialized into `T`. Callers put `#[serde(deny_unknown_fields)]` on their
//! structs, so a misspelt key is an error, reported with its full dotted path, the valid keys at that level
//! and where the key came from (the file or the `--set`):
//!
//! ```text
//! unknown key `rebel.etaa` (from --set rebel.etaa=2): unknown field `etaa`, expected one of `eta`, `beta`
//! ```
//!
//! A `--set` value is parsed as a TOML value (`1`, `1.5`, `true`, `"text"`, `[1, 2]`, `{ a = 1 }`); anything
//! that is not one valid TOML value is taken as a bare string (`env.id=Swimmer-v5`).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

/// Everything that can go wrong while loading or writing a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The embedded default text is not TOML (a bug in the program, not in the user's input).
    #[error("the built-in default configuration is not valid TOML: {0}")]
    Default(#[source] toml::de::Error),
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not TOML.
    #[error("config file {} is not valid TOML: {source}", path.display())]
    ParseFile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A `--set` argument that is not `key=value` with a well-formed dotted key, or whose key runs through
    /// a value that is not a table.
    #[error("bad --set {arg:?}: {reason}")]
    BadSet { arg: String, reason: String },
    /// A key that the configuration types do not know, with the valid keys at that level.
    #[error("unknown key `{path}`{origin}: {message}")]
    UnknownKey {
        path: String,
        origin: String,
        message: String,
    },
    /// A value of the wrong type or out of range, a missing field, and any other deserialization error.
    #[error("invalid value for `{path}`{origin}: {message}")]
    Invalid {
        path: String,
        origin: String,
        message: String,
    },
    /// The configuration could not be written as TOML.
    #[error("cannot write the configuration as TOML: {0}")]
    Serialize(#[source] toml::ser::Error),
}

/// Builds a `T` from the embedded default text, an optional file and `--set key=value` overrides (see the
/// module docs for the layering and the error messages).
pub fn load_config<T>(
    embedded_default: &str,
    file: Option<&Path>,
    sets: &[String],
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut merged = match Value::try_from(T::default()).map_err(ConfigError::Serialize)? {
        Value::Table(t) => t,
        other => {
            return Err(ConfigError::Invalid {
                path: "(root)".into(),
                origin: String::new(),
                message: format!(
                    "the configuration type serializes to a {}, not a table",
                    other.type_str()
                ),
            })
        }
    };
    let default_table: Table = toml::from_str(embedded_default).map_err(ConfigError::Default)?;
    merge_tables(&mut merged, default_table);

    let mut file_table = None;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let table: Table = toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_path_buf(),
            source,
        })?;
        merge_tables(&mut merged, table.clone());
        file_table = Some((path, table));
    }

    let mut parsed_sets = Vec::with_capacity(sets.len());
    for arg in sets {
        let (keys, value) = parse_set(arg)?;
        insert_dotted(&mut merged, &keys, value).map_err(|reason| ConfigError::BadSet {
            arg: arg.clone(),
            reason,
        })?;
        parsed_sets.push((keys, arg.as_str()));
    }

    serde_path_to_error::deserialize::<_, T>(Value::Table(merged)).map_err(|err| {
        let path = dotted_path(err.path());
        // The message alone: toml's Display would add its own partial key path ("in `rebel`").
        let message = err.inner().message().trim_end().to_string();
        let origin = origin_of(
            &path,
            &parsed_sets,
            file_table.as_ref().map(|(p, t)| (*p, t)),
        );
        if message.starts_with("unknown field") {
            ConfigError::UnknownKey {
                path,
                origin,
                message,
            }
        } else {
            ConfigError::Invalid {
                path,
                origin,
                message,
            }
        }
    })
}

/// The resolved configuration as TOML text (for `config.toml` in the run directory). Loading that text as
/// the embedded default, with no file and no `--set`, gives back an equal value.
pub fn to_toml_string<T: Serialize>(config: &T) -> Result<String, ConfigError> {
    toml::to_string(config).map_err(ConfigError::Serialize)
}

/// Deep merge: tables merge key by key, every other value in `overlay` replaces the one in `base`.
pub fn merge_tables(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge_tables(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Splits `key=value` into its dotted key segments and its TOML value (a bare string when the text is not
/// exactly one TOML value).
pub(crate) fn parse_set(arg: &str) -> Result<(Vec<String>, Value), ConfigError> {
    let bad = |reason: &str| ConfigError::BadSet {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected key=value, e.g. rebel.eta=1.5"))?;
    let keys: Vec<String> = key
        .trim()
        .split('.')
        .map(|s| s.trim().to_string())
        .collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad(
            "the key has an empty segment; expected a dotted key such as rebel.eta",
        ));
    }
    Ok((keys, parse_value(raw.trim())))
}

fn parse_value(raw: &str) -> Value {
    match toml::from_str::<Table>(&format!("v = {raw}")) {
        Ok(mut t) if t.len() == 1 => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_string())),
        _ => Value::String(raw.to_string()),
    }
}

/// Sets `keys` (a dotted path) to `value`, creating missing tables on the way.
fn insert_dotted(table: &mut Table, keys: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or_else(|| "empty key".to_string())?;
    let mut current = table;
    for (i, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(t) => t,
            other => {
                return Err(format!(
                    "`{}` is a {}, not a table, so it has no key `{}`",
                    keys[..=i].join("."),
                    other.type_str(),
                    keys[i + 1]
                ))
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn dotted_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() {
        out.push_str("(root)");
    }
    out
}

/// Where the value at `path` came from: the last `--set` that wrote it or a table above it, else the file,
/// else nothing (the defaults).
fn origin_of(path: &str, sets: &[(Vec<String>, &str)], file: Option<(&Path, &Table)>) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    let covers = |keys: &[String]| {
        let n = keys.len().min(segments.len());
        keys[..n].iter().zip(&segments[..n]).all(|(a, b)| a == b)
    };
    if let Some((_, arg)) = sets.iter().rev().find(|(keys, _)| covers(keys)) {
        return format!(" (from --set {arg})");
    }
    if let Some((file_path, table)) = file {
        let mut current = Some(table);
        let mut found = true;
        for (i, seg) in segments.iter().enumerate() {
            match current.and_then(|t| t.get(*seg)) {
                Some(Value::Table(t)) => current = Some(t),
                Some(_) if i + 1 == segments.len() => current = None,
                _ => {
                    found = false;
                    break;
                }
            }
        }
        if found {
            return format!(" (from {})", file_path.display());
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Example configuration: nested tables, every field with a documented default.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct ExampleConfig {
        /// Seed of everything random. Default 1.
        seed: u64,
        /// Run name prefix. Default "run".
        name: String,
        /// Whether to write TensorBoard events. Default true.
        tensorboard: bool,
        /// REBEL hyperparameters.
        rebel: RebelSection,
        /// Environment options.
        env: EnvSection,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct RebelSection {
        /// Step size of the regression target. Default 1.0.
        eta: f64,
        /// Updates per batch. Default 4.
        epochs: u32,
        /// Hidden layer sizes. Default [64, 64].
        hidden: Vec<u32>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct EnvSection {
        /// Environment id. Default "Swimmer-v5".
        id: String,
        /// Scale of the uniform noise added at reset. Default 0.1.
        reset_noise_scale: f64,
        /// Optional episode length override. Default none.
        max_steps: Option<u32>,
    }

    impl Default for ExampleConfig {
        fn default() -> Self {
            Self {
                seed: 1,
                name: "run".into(),
                tensorboard: true,
                rebel: Default::default(),
                env: Default::default(),
            }
        }
    }
    impl Default for RebelSection {
        fn default() -> Self {
            Self {
                eta: 1.0,
                epochs: 4,
                hidden: vec![64, 64],
            }
        }
    }
    impl Default for EnvSection {
        fn default() -> Self {
            Self {
                id: "Swimmer-v5".into(),
                reset_noise_scale: 0.1,
                max_steps: None,
            }
        }
    }

    const DEFAULT_TOML: &str = r#"
seed = 7
[rebel]
eta = 2.0
[env]
reset_noise_scale = 0.2
"#;

    fn sets(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn write_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn embedded_default_overrides_struct_default() {
        let c: ExampleConfig = load_config(DEFAULT_TOML, None, &[]).unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.rebel.eta, 2.0);
        assert_eq!(c.rebel.epochs, 4, "left out of the text: from Default");
        assert_eq!(c.env.reset_noise_scale, 0.2);
        assert_eq!(c.env.id, "Swimmer-v5");
        assert_eq!(c.name, "run");
    }

    #[test]
    fn file_deep_merges_then_sets_win() {
        let (_d, path) = write_file(
            "name = \"from-file\"\n[rebel]\nepochs = 9\n[env]\nreset_noise_scale = 0.3\n",
        );
        let c: ExampleConfig = load_config(
            DEFAULT_TOML,
            Some(&path),
            &sets(&[
                "rebel.eta=1.5",
                "env.reset_noise_scale=0.05",
                "tensorboard=false",
                "env.id=Ant-v5",
                "rebel.hidden=[32, 16, 8]",
                "env.max_steps=500",
                "seed=3",
                "seed=4",
            ]),
        )
        .unwrap();
        assert_eq!(c.name, "from-file");
        assert_eq!(c.rebel.epochs, 9, "file wins over default");
        assert_eq!(
            c.rebel.eta, 1.5,
            "--set wins over default; file did not touch eta, so it merged"
        );
        assert_eq!(c.env.reset_noise_scale, 0.05, "--set wins over file");
        assert!(!c.tensorboard);
        assert_eq!(c.env.id, "Ant-v5", "bare word becomes a string");
        assert_eq!(c.rebel.hidden, vec![32, 16, 8]);
        assert_eq!(
            c.env.max_steps,
            Some(500),
            "a key absent from every layer (None) can be set"
        );
        assert_eq!(c.seed, 4, "the later --set wins");
    }

    #[test]
    fn set_values_parse_as_toml() {
        assert_eq!(parse_value("1"), Value::Integer(1));
        assert_eq!(parse_value("1.5"), Value::Float(1.5));
        assert_eq!(parse_value("true"), Value::Boolean(true));
        assert_eq!(
            parse_value("\"quoted text\""),
            Value::String("quoted text".into())
        );
        assert_eq!(
            parse_value("Swimmer-v5"),
            Value::String("Swimmer-v5".into())
        );
        assert_eq!(parse_value(""), Value::String(String::new()));
        // Text that would smuggle in a second key stays one string.
        assert_eq!(
            parse_value("1\nother = 2"),
            Value::String("1\nother = 2".into())
        );
        let (keys, v) = parse_set(" rebel.eta = 3 ").unwrap();
        assert_eq!(keys, vec!["rebel", "eta"]);
        assert_eq!(v, Value::Integer(3));
    }

    #[test]
    fn integer_set_into_float_field_is_accepted() {
        let c: ExampleConfig = load_config(DEFAULT_TOML, None, &sets(&["rebel.eta=3"])).unwrap();
        assert_eq!(c.rebel.eta, 3.0);
    }

    #[test]
    fn malformed_sets_are_errors() {
        for (arg, needle) in [
            ("rebel.eta", "expected key=value"),
            ("rebel..eta=1", "empty segment"),
            ("=1", "empty segment"),
            ("rebel.eta.x=1", "`rebel.eta` is a float, not a table"),
        ] {
            let err = load_config::<ExampleConfig>(DEFAULT_TOML, None, &sets(&[arg])).unwrap_err();
            assert!(matches!(err, ConfigError::BadSet { .. }), "{arg}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains(needle) && msg.contains(arg), "{arg}: {msg}");
        }
    }

    #[test]
    fn unknown_key_in_set_lists_valid_keys_with_dotted_path() {
        let err =
            load_config::<ExampleConfig>(DEFAULT_TOML, None, &sets(&["rebel.etaa=2"])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("`rebel.etaa`"), "{msg}");
        assert!(msg.contains("--set rebel.etaa=2"), "{msg}");
        for valid in ["`eta`", "`epochs`", "`hidden`"] {
            assert!(msg.contains(valid), "{msg} should list {valid}");
        }
    }

    #[test]
    fn unknown_top_level_key_and_unknown_table() {
        let err = load_config::<ExampleConfig>(DEFAULT_TOML, None, &sets(&["sede=2"])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown key `sede`") && msg.contains("`seed`") && msg.contains("`rebel`"),
            "{msg}"
        );
        let err =
            load_config::<ExampleConfig>(DEFAULT_TOML, None, &sets(&["ppo.clip=0.2"])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown key `ppo`") && msg.contains("`env`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_in_file_names_the_file() {
        let (_d, path) = write_file("[env]\nreset_noise = 0.3\n");
        let err = load_config::<ExampleConfig>(DEFAULT_TOML, Some(&path), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("`env.reset_noise`"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("`reset_noise_scale`")
                && msg.contains("`id`")
                && msg.contains("`max_steps`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_in_embedded_default_is_reported_without_origin() {
        let err = load_config::<ExampleConfig>("[rebel]\nbeta = 1\n", None, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `rebel.beta`: unknown field `beta`, expected one of `eta`, `epochs`, `hidden`"
        );
    }

    #[test]
    fn type_errors_name_key_and_expected_type() {
        let err = load_config::<ExampleConfig>(DEFAULT_TOML, None, &sets(&["rebel.eta=fast"]))
            .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("`rebel.eta`") && msg.contains("f64") && msg.contains("fast"),
            "{msg}"
        );

        let (_d, path) = write_file("[rebel]\nepochs = -3\n");
        let msg = load_config::<ExampleConfig>(DEFAULT_TOML, Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`rebel.epochs`") && msg.contains("u32"),
            "{msg}"
        );
        assert!(msg.contains(&path.display().to_string()), "{msg}");

        let msg = load_config::<ExampleConfig>(DEFAULT_TOML, None, &sets(&["tensorboard=yes"]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`tensorboard`") && msg.contains("a boolean"),
            "{msg}"
        );
    }

    #[test]
    fn file_errors() {
        let missing = Path::new("/nonexistent/rebel/config.toml");
        let err = load_config::<ExampleConfig>(DEFAULT_TOML, Some(missing), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::ReadFile { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/rebel/config.toml"));

        let (_d, path) = write_file("[rebel\neta = 1\n");
        let err = load_config::<ExampleConfig>(DEFAULT_TOML, Some(&path), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::ParseFile { .. }), "{err:?}");

        let err = load_config::<ExampleConfig>("seed = ", None, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Default(_)), "{err:?}");
    }

    #[test]
    fn toml_round_trip() {
        let (_d, path) = write_file("[env]\nmax_steps = 250\n");
        let c: ExampleConfig = load_config(
            DEFAULT_TOML,
            Some(&path),
            &sets(&["rebel.eta=0.125", "name=\"a b\""]),
        )
        .unwrap();
        let text = to_toml_string(&c).unwrap();
        let back: ExampleConfig = load_config(&text, None, &[]).unwrap();
        assert_eq!(back, c);
        let direct: ExampleConfig = toml::from_str(&text).unwrap();
        assert_eq!(direct, c);
        assert!(
            text.contains("[rebel]") && text.contains("eta = 0.125"),
            "{text}"
        );
    }

    #[test]
    fn merge_replaces_arrays_and_merges_tables() {
        let mut base: Table = toml::from_str("a = [1, 2]\n[t]\nx = 1\ny = 2\n").unwrap();
        let over: Table = toml::from_str("a = [3]\n[t]\ny = 5\nz = 6\n").unwrap();
        merge_tables(&mut base, over);
        let expected: Table = toml::from_str("a = [3]\n[t]\nx = 1\ny = 5\nz = 6\n").unwrap();
        assert_eq!(base, expected);
    }
}
