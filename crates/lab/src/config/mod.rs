//! The experiment configuration. The defaults are one commented YAML block, [`DEFAULTS_YAML`]
//! (`crates/lab/src/config/defaults.yaml`); a config file is a small diff over it, and [`Override`]s (`--set`, flags,
//! sweep variants) go on top, in that order (defaults → file → overrides), then one validation. Everything
//! downstream gets a typed, valid [`Config`].
//!
//! An unknown key is an error naming its path and the keys allowed there; every choice is an enum, so a
//! typo lists the allowed values.

pub mod device;
mod render;
pub use render::flow;
mod resume;
mod schema;
mod seeds;
mod types;
mod validate;

use crate::UsageError;
use anyhow::Result;
pub use resume::{RESUMABLE_KEYS, check_resumable, same_experiment, scoring_changes};
pub use schema::{
    Activation, AugmentConfig, Config, DataConfig, Dataset, EarlyStoppingConfig, Horizon, Init,
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
    let text = crate::sys::read::text(path, crate::sys::read::CONFIG_LIMIT)?;
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

/// The value at a dotted `key` of a config tree (`serde_yaml::to_value` of a [`Config`]), if it has one.
pub fn value_at<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(tree, |node, part| node.get(part))
}

/// Whether the dotted `key` is `section` or lies inside it (`data.augment.rotate` in `data.augment`).
pub fn within(key: &str, section: &str) -> bool {
    key.strip_prefix(section)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
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
    let in_origin = |e: String| UsageError::error(format!("{origin}: {e}"));
    let config = typed(tree.clone()).map_err(|e| in_origin(e.with_value()))?;
    if overrides.is_empty() {
        config.validate().map_err(in_origin)?;
        return Ok(config);
    }
    for o in overrides {
        // The override already names its key and value: the error adds only what is wrong.
        let wrong = |e: String| UsageError::error(format!("{}: {e}", o.origin));
        set_path(&mut tree, &o.key, o.value.clone()).map_err(wrong)?;
        // Checked after each override, so the error names the one that broke it.
        typed(tree.clone()).map_err(|e| wrong(e.without_value()))?;
    }
    let config = typed(tree).map_err(|e| in_origin(e.with_value()))?;
    // A range error after overrides names the key; the overrides are the likely cause.
    config.validate().map_err(|e| {
        let list: Vec<&str> = overrides.iter().map(|o| o.origin.as_str()).collect();
        UsageError::error(format!("{origin} with {}: {e}", list.join(", ")))
    })?;
    Ok(config)
}

/// Why a tree is not a [`Config`].
enum Untyped {
    /// A value of another type than its key's ([`types::check`]).
    Type(types::TypeError),
    /// What serde found (an unknown choice, with the allowed ones), at a key path.
    Serde { path: String, message: String },
}

impl Untyped {
    fn with_value(&self) -> String {
        match self {
            Untyped::Type(e) => e.with_value(),
            Untyped::Serde { path, message } => format!("{path}: {}", cut_at(message, 300)),
        }
    }

    fn without_value(&self) -> String {
        match self {
            Untyped::Type(e) => e.without_value(),
            Untyped::Serde { message, .. } => cut_at(message, 300),
        }
    }
}

/// The full tree as a [`Config`]; an error names the key path.
fn typed(tree: Value) -> std::result::Result<Config, Untyped> {
    let typed_defaults = serde_yaml::to_value(Config::default()).unwrap_or_default();
    if let Some(e) = types::check(&tree, &typed_defaults, "") {
        return Err(Untyped::Type(e));
    }
    serde_path_to_error::deserialize(tree).map_err(|e| Untyped::Serde {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// A YAML value on one line, as an override writes it (`lr=0.001`, `set: {a: 1}`).
pub fn scalar(v: &Value) -> String {
    serde_yaml::to_string(v)
        .map(|s| s.trim().replace('\n', " "))
        .unwrap_or_default()
}

/// `value`, or its first 40 characters and how many more, when it is longer than 60.
pub fn cut(value: &str) -> String {
    cut_at(value, 60)
}

/// `text`, or its first `max - 20` characters and how many more, when it is longer than `max`: a serde
/// message lists the allowed choices (kept whole) around the user's value (cut when huge).
fn cut_at(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max - 20).collect();
        format!("{head}… ({} more characters)", n - (max - 20))
    }
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
