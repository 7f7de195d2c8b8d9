//! The experiment configuration. The defaults are one commented YAML block, [`DEFAULTS_YAML`]
//! (`src/config/defaults.yaml`); a config file is a small diff over it, and [`Override`]s (`--set`, flags,
//! sweep variants) go on top, in that order (defaults → file → overrides), then one validation. This is the
//! only module that knows YAML; everything downstream gets a typed, valid [`Config`].
//!
//! An unknown key is an error naming its path and the keys allowed there; every choice is an enum, so a
//! typo lists the allowed values.

pub mod device;
mod render;
mod resume;
mod schema;
mod validate;

use crate::UsageError;
use anyhow::Result;
pub use resume::{RESUMABLE_KEYS, check_resumable};
pub use schema::{
    Activation, AugmentConfig, Config, DataConfig, Dataset, EarlyStoppingConfig, Init,
    LrSchedulerConfig, ModelConfig, Monitor, Normalization, OptimizerConfig, OptimizerKind,
    Pooling, RegularizationConfig, SchedulerKind, Shape, TrainerConfig, Variant,
};
use serde_yaml::{Mapping, Value};
use std::path::Path;

/// The defaults, with a comment per key: the configuration reference.
pub const DEFAULTS_YAML: &str = include_str!("defaults.yaml");

/// One `key.path = value` change over a config, with where it came from (`--set a.b=1`, `--lr 0.1`, a sweep
/// variant) for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub key: String,
    pub value: Value,
    pub origin: String,
}

impl Override {
    /// A typed value for `key` (what the named flags produce: no round trip through text).
    pub fn new(key: &str, value: impl Into<Value>, origin: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            value: value.into(),
            origin: origin.into(),
        }
    }

    /// Parses `KEY=VALUE`, the value as YAML (`--set optimizer.lr=0.01`).
    pub fn parse(item: &str) -> Result<Self> {
        let origin = format!("--set {}", cut(item));
        let (key, raw) = item.split_once('=').ok_or_else(|| {
            UsageError::error(format!(
                "{origin}: expected KEY=VALUE, e.g. optimizer.lr=0.01"
            ))
        })?;
        let value: Value = serde_yaml::from_str(raw)
            .map_err(|e| UsageError::error(format!("{origin}: value is not valid YAML: {e}")))?;
        Ok(Self::new(key.trim(), value, origin))
    }
}

/// Reads `path` (YAML over the defaults), applies `overrides`, validates. Errors name the file or the
/// override, and the key.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::error(format!("cannot read config {}: {e}", path.display())))?;
    from_yaml_str(&text, &path.display().to_string(), overrides)
}

/// Same as [`load`] on text already in memory; `origin` names it in errors.
pub fn from_yaml_str(text: &str, origin: &str, overrides: &[Override]) -> Result<Config> {
    let file: Value =
        serde_yaml::from_str(text).map_err(|e| UsageError::error(format!("{origin}: {e}")))?;
    let mut tree = defaults_tree();
    if !file.is_null() {
        merge(&mut tree, file, "").map_err(|e| UsageError::error(format!("{origin}: {e}")))?;
    }
    from_tree(tree, overrides, origin)
}

/// Applies `overrides` over an already resolved config (a run's saved one, when resuming) and validates.
pub fn apply(config: &Config, overrides: &[Override], origin: &str) -> Result<Config> {
    from_tree(serde_yaml::to_value(config)?, overrides, origin)
}

/// Every config key as a dotted path (`optimizer.lr`), in the order of [`DEFAULTS_YAML`].
pub fn keys() -> Vec<String> {
    fn walk(node: &Value, prefix: &str, out: &mut Vec<String>) {
        match node {
            Value::Mapping(map) => {
                for (k, v) in map {
                    walk(v, &join(prefix, k.as_str().unwrap_or_default()), out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = vec![];
    walk(&defaults_tree(), "", &mut out);
    out
}

fn defaults_tree() -> Value {
    serde_yaml::from_str(DEFAULTS_YAML).expect("defaults.yaml is valid YAML")
}

fn from_tree(mut tree: Value, overrides: &[Override], origin: &str) -> Result<Config> {
    let config = typed(tree.clone()).map_err(|e| UsageError::error(format!("{origin}: {e}")))?;
    if overrides.is_empty() {
        config
            .validate()
            .map_err(|e| UsageError::error(format!("{origin}: {e}")))?;
        return Ok(config);
    }
    for o in overrides {
        // The override already names its key and value: the error adds only what is wrong.
        let wrong = |e: String| {
            let e = e.strip_prefix(&format!("{}: ", o.key)).unwrap_or(&e);
            let e = e.split_once(", found ").map_or(e, |(what, _)| what);
            UsageError::error(format!("{}: {e}", o.origin))
        };
        set_path(&mut tree, &o.key, o.value.clone()).map_err(wrong)?;
        // Checked after each override, so the error names the one that broke it.
        typed(tree.clone()).map_err(wrong)?;
    }
    let config = typed(tree).map_err(|e| UsageError::error(format!("{origin}: {e}")))?;
    // A range error after overrides names the key; the overrides are the likely cause.
    config.validate().map_err(|e| {
        let list: Vec<&str> = overrides.iter().map(|o| o.origin.as_str()).collect();
        UsageError::error(format!("{origin} with {}: {e}", list.join(", ")))
    })?;
    Ok(config)
}

/// The full tree as a [`Config`]; a type error names the key path.
fn typed(tree: Value) -> std::result::Result<Config, String> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", plain(&e.into_inner().to_string()))
    })
}

/// serde's type error in words a user knows: `invalid type: floating point `1000`, expected usize` →
/// `expected a whole number (0 or more), found 1000`; a float too large for YAML (1e400, which it then reads
/// as text) said as such; a long echoed value cut short.
fn plain(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, words) in [
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        out = out.replace(rust, words);
    }
    let Some((found, expected)) = out
        .strip_prefix("invalid type: ")
        .or_else(|| out.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    else {
        return cut_quoted(&out);
    };
    let value = found
        .split_once(['"', '`'])
        .map_or(found, |(_, v)| v.trim_end_matches(['"', '`']));
    let numeric = value
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit());
    if found.starts_with("string") && expected == "a number" && numeric {
        return format!(
            "expected a number within range ({} is too large)",
            cut(value)
        );
    }
    format!("expected {expected}, found {}", cut(value))
}

/// `value`, or its first 40 characters and how many more, when it is longer than 60.
pub fn cut(value: &str) -> String {
    let n = value.chars().count();
    if n <= 60 {
        value.to_string()
    } else {
        let head: String = value.chars().take(40).collect();
        format!("{head}… ({} more characters)", n - 40)
    }
}

/// A message with every quoted value in it cut to length ([`cut`]).
fn cut_quoted(message: &str) -> String {
    let parts: Vec<&str> = message.split('"').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| if i % 2 == 1 { cut(p) } else { p.to_string() })
        .collect::<Vec<_>>()
        .join("\"")
}

/// Merges a file's tree into the defaults: sections recurse, values replace; unknown keys are errors.
fn merge(base: &mut Value, file: Value, prefix: &str) -> std::result::Result<(), String> {
    let section = if prefix.is_empty() {
        "the top level"
    } else {
        prefix
    };
    let Value::Mapping(entries) = file else {
        return Err(format!(
            "{section} must be a mapping of keys, found {}",
            kind_of(&file)
        ));
    };
    let base = base.as_mapping_mut().expect("sections are mappings");
    for (key, value) in entries {
        let name = key
            .as_str()
            .ok_or_else(|| format!("non-text key {key:?} in {section}"))?;
        let path = join(prefix, name);
        if !base.contains_key(name) {
            return Err(unknown_key(&path, base));
        }
        let slot = base.get_mut(name).expect("checked above");
        if slot.is_mapping() {
            merge(slot, value, &path)?;
        } else {
            *slot = value;
        }
    }
    Ok(())
}

/// Sets `key` (a dotted path that must exist) to `value`.
fn set_path(tree: &mut Value, key: &str, value: Value) -> std::result::Result<(), String> {
    let mut node = tree;
    let mut path = String::new();
    for part in key.split('.') {
        path = join(&path, part);
        let map = node.as_mapping_mut().ok_or_else(|| {
            format!(
                "`{}` is not a section",
                path.rsplit_once('.').map_or("", |p| p.0)
            )
        })?;
        if !map.contains_key(part) {
            return Err(unknown_key(&path, map));
        }
        node = map.get_mut(part).expect("checked above");
    }
    if node.is_mapping() {
        return Err(format!("`{key}` is a section; set one of its keys"));
    }
    *node = value;
    Ok(())
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn unknown_key(path: &str, known: &Mapping) -> String {
    let known: Vec<&str> = known.keys().filter_map(Value::as_str).collect();
    format!(
        "unknown key `{path}`, expected one of: {}",
        known.join(", ")
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        _ => "a single value",
    }
}

impl Config {
    /// The resolved config as commented YAML in the layout of [`DEFAULTS_YAML`] (what `RUN_DIR/config.yaml`
    /// holds and `lenet5 config` prints).
    pub fn to_yaml(&self) -> Result<String> {
        render::commented(&serde_yaml::to_value(self)?)
    }
}
