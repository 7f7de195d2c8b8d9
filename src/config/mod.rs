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
mod validate;

use crate::UsageError;
use anyhow::Result;
pub use resume::{RESUMABLE_KEYS, check_resumable};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The defaults, with a comment per key: the configuration reference.
pub const DEFAULTS_YAML: &str = include_str!("defaults.yaml");

/// Everything a training run needs, resolved. Written to `RUN_DIR/config.yaml`, which `test` and `--resume`
/// read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    pub regularization: RegularizationConfig,
    pub lr_scheduler: LrSchedulerConfig,
    pub data: DataConfig,
    pub trainer: TrainerConfig,
}

/// A YAML enum: lowercase names in files, listed in serde's error for a wrong one.
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The name a config file uses.
            pub fn name(self) -> String {
                serde_yaml::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            }
        }
    };
}

/// The datasets: MNIST and Fashion-MNIST (IDX files, 28×28 grey) and CIFAR-10 (binary batches, 32×32 RGB).
/// Their names, image shapes and sizes live here, where validation needs them; their files, normalisation
/// and loading are [`crate::data`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Mnist,
    FashionMnist,
    Cifar10,
}

/// Channels and side length of a dataset's (square) images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub channels: i64,
    pub side: i64,
}

impl Dataset {
    pub const fn shape(self) -> Shape {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => Shape {
                channels: 1,
                side: 28,
            },
            Dataset::Cifar10 => Shape {
                channels: 3,
                side: 32,
            },
        }
    }

    /// Images in the published training set (before the validation split): the largest batch that can
    /// make sense. Smaller files (tests' synthetic ones) are checked when they are read.
    pub const fn train_images(self) -> usize {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => 60_000,
            Dataset::Cifar10 => 50_000,
        }
    }

    /// The name configs and `data/<name>` use.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
        }
    }
}

choice!(Activation {
    Sigmoid,
    Relu,
    Tanh
});
choice!(Pooling { Avg, Max });
choice!(
    /// Weight initialisation; biases start at zero except for `default`, which keeps PyTorch's per-layer
    /// defaults for both.
    Init { Default, XavierUniform, XavierNormal, HeUniform, HeNormal }
);
choice!(
    /// Which network: the seed's LeNet-5, the same widths with batch norm and dropout, or LeCun et al.'s
    /// 1998 network (`src/lenet1998.rs`).
    Variant {
        Lenet5,
        Lenet5Modern,
        #[serde(rename = "lenet5_1998")]
        Lenet1998,
    }
);
choice!(OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop
});
choice!(SchedulerKind {
    None,
    Step,
    Cosine,
    Plateau,
    Piecewise,
    Onecycle
});
choice!(
    /// What early stopping and the plateau scheduler watch.
    Monitor { ValLoss, ValAccuracy }
);

impl Monitor {
    /// True when `a` is better than `b` by more than `min_delta`.
    pub fn improves(self, a: f64, b: f64, min_delta: f64) -> bool {
        match self {
            Monitor::ValLoss => a < b - min_delta,
            Monitor::ValAccuracy => a > b + min_delta,
        }
    }
}

// The field comments live in defaults.yaml, next to the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub variant: Variant,
    pub activation: Activation,
    pub pooling: Pooling,
    pub init: Init,
    pub dropout: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    #[serde(rename = "type")]
    pub kind: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub betas: [f64; 2],
    pub eps: f64,
    pub amsgrad: bool,
    pub alpha: f64,
    pub centered: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegularizationConfig {
    pub l1: f64,
    pub label_smoothing: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedulerConfig {
    #[serde(rename = "type")]
    pub kind: SchedulerKind,
    pub step_size: usize,
    pub gamma: f64,
    pub t_max: usize,
    pub eta_min: f64,
    pub factor: f64,
    pub patience: usize,
    pub monitor: Monitor,
    pub piecewise: Vec<(usize, f64)>,
    pub pct_start: f64,
    pub div_factor: f64,
    pub final_div_factor: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: Dataset,
    pub dir: Option<PathBuf>,
    pub download: bool,
    pub batch_size: usize,
    pub validation_split: f64,
    pub shuffle: bool,
    pub seed: u64,
    pub augment: AugmentConfig,
}

/// Per-batch random planar affine distortions (LeCun et al. 1998, section III.C); each image draws every
/// parameter uniformly in ± its bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    pub translate: f64,
    pub scale: f64,
    pub squeeze: f64,
    pub shear: f64,
    pub rotate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    pub enabled: bool,
    pub monitor: Monitor,
    pub patience: usize,
    pub min_delta: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    pub epochs: usize,
    pub early_stopping: EarlyStoppingConfig,
    pub save_period: usize,
    pub device: String,
    pub seed: u64,
    pub threads: usize,
    pub cudnn_benchmark: bool,
    pub runs_dir: PathBuf,
    pub tensorboard: bool,
}

impl Default for Config {
    /// [`DEFAULTS_YAML`], parsed.
    fn default() -> Self {
        serde_yaml::from_str(DEFAULTS_YAML).expect("defaults.yaml matches Config (tests/config.rs)")
    }
}

/// Each section's defaults are its part of [`DEFAULTS_YAML`].
macro_rules! section_defaults {
    ($($($section:ident).+: $ty:ty),+) => {
        $(impl Default for $ty {
            fn default() -> Self {
                Config::default().$($section).+
            }
        })+
    };
}

section_defaults!(
    model: ModelConfig,
    optimizer: OptimizerConfig,
    regularization: RegularizationConfig,
    lr_scheduler: LrSchedulerConfig,
    data: DataConfig,
    data.augment: AugmentConfig,
    trainer: TrainerConfig,
    trainer.early_stopping: EarlyStoppingConfig
);

impl DataConfig {
    /// The data directory: `dir`, or `data/<dataset>`.
    pub fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data").join(self.dataset.name()))
    }
}

impl AugmentConfig {
    pub fn is_identity(&self) -> bool {
        [
            self.translate,
            self.scale,
            self.squeeze,
            self.shear,
            self.rotate,
        ]
        .iter()
        .all(|v| *v == 0.0)
    }
}

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
