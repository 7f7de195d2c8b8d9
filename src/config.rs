//! The experiment configuration: one block of defaults, YAML files as small diffs over them, and
//! `--set key.path=value` overrides, applied in that order (defaults → file → command line), then validated
//! once. This is the only module that knows YAML; everything downstream gets a typed, valid [`Config`].
//!
//! Unknown keys are errors (`deny_unknown_fields`), and every choice is an enum, so a typo names the key path
//! and lists the allowed values.

use crate::UsageError;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// Everything a training run needs, resolved. Written to `RUN_DIR/config.yaml`, which `test` and `--resume`
/// read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    pub regularization: RegularizationConfig,
    pub lr_scheduler: LrSchedulerConfig,
    pub data: DataConfig,
    pub trainer: TrainerConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Sigmoid,
    Relu,
    Tanh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    Avg,
    Max,
}

/// Weight initialisation; biases always start at zero except for `default`, which keeps LibTorch's
/// (PyTorch's) own per-layer defaults for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    Default,
    XavierUniform,
    XavierNormal,
    HeUniform,
    HeNormal,
}

/// Which network: the seed's LeNet-5, or the same 6/16/120/84 widths with batch norm and dropout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    Lenet5,
    Lenet5Modern,
    /// LeCun et al. (1998), as published: see `src/lenet1998.rs`.
    #[serde(rename = "lenet5_1998")]
    Lenet1998,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub variant: Variant,
    pub activation: Activation,
    pub pooling: Pooling,
    pub init: Init,
    /// lenet5_modern: dropout probability before each fully connected layer.
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            variant: Variant::Lenet5,
            activation: Activation::Relu,
            pooling: Pooling::Avg,
            init: Init::XavierUniform,
            dropout: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
}

/// One flat block like PyTorch's keyword arguments; each optimizer reads the keys that apply to it
/// (listed per key in the README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    #[serde(rename = "type")]
    pub kind: OptimizerKind,
    pub lr: f64,
    /// L2 penalty as LibTorch applies it (added to the gradient; decoupled for adamw).
    pub weight_decay: f64,
    /// sgd, rmsprop
    pub momentum: f64,
    /// sgd
    pub nesterov: bool,
    /// adam, adamw
    pub betas: [f64; 2],
    /// adam, adamw, rmsprop
    pub eps: f64,
    /// adam, adamw
    pub amsgrad: bool,
    /// rmsprop smoothing constant
    pub alpha: f64,
    /// rmsprop
    pub centered: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        // The seed trains with Adam(lr=0.001, amsgrad=True); the rest are PyTorch's defaults.
        Self {
            kind: OptimizerKind::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: 0.0,
            nesterov: false,
            betas: [0.9, 0.999],
            eps: 1e-8,
            amsgrad: true,
            alpha: 0.99,
            centered: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegularizationConfig {
    /// λ in `loss += λ·Σ|w|` over the weight tensors (not biases).
    pub l1: f64,
    /// Cross-entropy label smoothing ε in [0, 1) (PyTorch's `label_smoothing`).
    pub label_smoothing: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    None,
    Step,
    Cosine,
    Plateau,
    Piecewise,
    /// PyTorch's OneCycleLR, stepped every batch.
    Onecycle,
}

/// What early stopping and the plateau scheduler watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    ValLoss,
    ValAccuracy,
}

impl Monitor {
    /// True when `a` is better than `b` by more than `min_delta`.
    pub fn improves(self, a: f64, b: f64, min_delta: f64) -> bool {
        match self {
            Monitor::ValLoss => a < b - min_delta,
            Monitor::ValAccuracy => a > b + min_delta,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
        }
    }
}

/// Learning-rate schedule: stepped once per epoch (PyTorch's StepLR, CosineAnnealingLR, ReduceLROnPlateau,
/// the 1998 paper's piecewise schedule) or, for `onecycle`, every batch (PyTorch's OneCycleLR).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedulerConfig {
    #[serde(rename = "type")]
    pub kind: SchedulerKind,
    /// step: multiply the lr by `gamma` every `step_size` epochs
    pub step_size: usize,
    pub gamma: f64,
    /// cosine: anneal from lr to `eta_min` over `t_max` epochs
    pub t_max: usize,
    pub eta_min: f64,
    /// plateau: multiply by `factor` after `patience` epochs without improvement of `monitor`
    pub factor: f64,
    pub patience: usize,
    pub monitor: Monitor,
    /// piecewise: `[[epochs, lr], ...]`, each lr held for that many epochs, the last one afterwards
    /// (LeCun et al. 1998: [[2, 0.0005], [3, 0.0002], [3, 0.0001], [4, 0.00005], [8, 0.00001]]).
    pub piecewise: Vec<(usize, f64)>,
    /// onecycle: warm up from lr/`div_factor` to `optimizer.lr` over the first `pct_start` of all steps,
    /// then anneal to lr/(`div_factor`·`final_div_factor`), both halves cosine, over `trainer.epochs`
    pub pct_start: f64,
    pub div_factor: f64,
    pub final_div_factor: f64,
}

impl Default for LrSchedulerConfig {
    fn default() -> Self {
        // The seed's StepLR(step_size=50, gamma=0.1).
        Self {
            kind: SchedulerKind::Step,
            step_size: 50,
            gamma: 0.1,
            t_max: 100,
            eta_min: 0.0,
            factor: 0.1,
            patience: 10,
            monitor: Monitor::ValLoss,
            piecewise: vec![],
            // PyTorch OneCycleLR's defaults.
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        }
    }
}

/// The datasets: MNIST and Fashion-MNIST (IDX files, 28×28 grey) and CIFAR-10 (binary batches, 32×32 RGB);
/// 10 classes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Mnist,
    FashionMnist,
    Cifar10,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
        }
    }

    /// Per-channel mean and standard deviation of the training pixels in [0, 1], used to normalise.
    /// MNIST's are the seed's (and PyTorch's MNIST example's); MNIST's and Fashion-MNIST's were checked
    /// against the training files; CIFAR-10's are the commonly used ones.
    pub fn mean_std(self) -> (&'static [f64], &'static [f64]) {
        match self {
            Dataset::Mnist => (&[0.1307], &[0.3081]),
            Dataset::FashionMnist => (&[0.2860], &[0.3530]),
            Dataset::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
        }
    }

    /// Channels and side length of the images.
    pub fn input(self) -> (i64, i64) {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => (1, 28),
            Dataset::Cifar10 => (3, 32),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// mnist | fashion-mnist
    pub dataset: Dataset,
    /// Directory with the four IDX files [data/<dataset>].
    pub dir: Option<PathBuf>,
    /// Run `scripts/fetch_mnist.py` when the files are missing.
    pub download: bool,
    pub batch_size: usize,
    /// Fraction of the 60k training images held out for validation, in [0, 1).
    pub validation_split: f64,
    /// Reshuffle the training split every epoch.
    pub shuffle: bool,
    /// Seed of the train/validation split (kept apart from `trainer.seed`, so the split stays fixed when
    /// only the training seed changes).
    pub seed: u64,
    /// Random affine distortions of training batches (all zero: none).
    pub augment: AugmentConfig,
}

/// Per-batch random planar affine distortions (LeCun et al. 1998, section III.C), applied on the device to
/// the training split only. Each image draws every parameter uniformly in ±its bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Shift, in pixels.
    pub translate: f64,
    /// Zoom: scale factor in 1 ± scale.
    pub scale: f64,
    /// Squeeze: x scaled by 1 + q and y by 1 − q.
    pub squeeze: f64,
    /// Horizontal shear factor.
    pub shear: f64,
    /// Rotation, in degrees.
    pub rotate: f64,
}

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

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: Dataset::Mnist,
            dir: None,
            download: true,
            batch_size: 128,
            validation_split: 0.1,
            shuffle: true,
            seed: 123,
            augment: AugmentConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStoppingConfig {
    pub enabled: bool,
    pub monitor: Monitor,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// An improvement must be larger than this; a tie does not count as an improvement.
    pub min_delta: f64,
}

impl Default for EarlyStoppingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            monitor: Monitor::ValLoss,
            patience: 10,
            min_delta: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    pub epochs: usize,
    pub early_stopping: EarlyStoppingConfig,
    /// Also keep `epoch-N.safetensors` every N epochs; 0 keeps only best and last.
    pub save_period: usize,
    /// auto | cpu | cuda | cuda:N
    pub device: String,
    /// Seed of weight init and of the per-epoch shuffles.
    pub seed: u64,
    /// CPU intra-op threads; 0 leaves LibTorch's default (one per core).
    pub threads: usize,
    /// Parent directory of run directories.
    pub runs_dir: PathBuf,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            early_stopping: EarlyStoppingConfig::default(),
            save_period: 0,
            device: "auto".to_string(),
            seed: 123,
            threads: 0,
            runs_dir: PathBuf::from("runs"),
        }
    }
}

/// Reads `path` (YAML over the defaults), applies `--set`-style overrides (`key.path=value`, value parsed as
/// YAML), and validates. Every error names the file or the override, and the key.
pub fn load(path: &Path, overrides: &[String]) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read config {}: {e}", path.display())))?;
    from_yaml_str(&text, &path.display().to_string(), overrides)
}

/// Same as [`load`] on text already in memory; `origin` names it in errors.
pub fn from_yaml_str(text: &str, origin: &str, overrides: &[String]) -> Result<Config> {
    // Deserialising the text itself (not a Value) keeps line/column and the key path in serde's errors.
    let config: Config = if text.trim().is_empty() {
        Config::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| UsageError::new(format!("{origin}: {e}")))?
    };
    let config = apply_overrides(config, overrides)?;
    config
        .validate()
        .map_err(|e| UsageError::new(format!("{origin}: {e}")))?;
    Ok(config)
}

/// Applies `key.path=value` overrides on top of `config`.
pub fn apply_overrides(config: Config, overrides: &[String]) -> Result<Config> {
    if overrides.is_empty() {
        return Ok(config);
    }
    let mut tree = serde_yaml::to_value(&config)?;
    for item in overrides {
        let (key, raw) = item.split_once('=').ok_or_else(|| {
            UsageError::new(format!(
                "--set {item}: expected KEY=VALUE, e.g. optimizer.lr=0.01"
            ))
        })?;
        let value: Value = serde_yaml::from_str(raw)
            .map_err(|e| UsageError::new(format!("--set {item}: value is not valid YAML: {e}")))?;
        set_path(&mut tree, key, value)
            .map_err(|e| UsageError::new(format!("--set {item}: {e}")))?;
        // Re-check after each override so the error names the one that broke it.
        serde_yaml::from_value::<Config>(tree.clone())
            .map_err(|e| UsageError::new(format!("--set {item}: {e}")))?;
    }
    Ok(serde_yaml::from_value(tree)?)
}

fn set_path(tree: &mut Value, key: &str, value: Value) -> std::result::Result<(), String> {
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| format!("`{}` is not a section", parts[..i].join(".")))?;
        let k = Value::String(part.to_string());
        if !map.contains_key(&k) {
            let known: Vec<String> = map
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
            return Err(format!(
                "unknown key `{}`, expected one of: {}",
                parts[..=i].join("."),
                known.join(", ")
            ));
        }
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.get_mut(&k).expect("checked above");
    }
    Err("empty key".into())
}

impl Config {
    /// Range checks that serde's types cannot express. Errors name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let o = &self.optimizer;
        check(
            o.lr > 0.0 && o.lr.is_finite(),
            "optimizer.lr",
            o.lr,
            "must be > 0",
        )?;
        check(
            o.weight_decay >= 0.0,
            "optimizer.weight_decay",
            o.weight_decay,
            "must be >= 0",
        )?;
        check(
            o.momentum >= 0.0,
            "optimizer.momentum",
            o.momentum,
            "must be >= 0",
        )?;
        check(o.eps > 0.0, "optimizer.eps", o.eps, "must be > 0")?;
        for (i, b) in o.betas.iter().enumerate() {
            check(
                (0.0..1.0).contains(b),
                &format!("optimizer.betas[{i}]"),
                b,
                "must be in [0, 1)",
            )?;
        }
        check(
            (0.0..1.0).contains(&o.alpha),
            "optimizer.alpha",
            o.alpha,
            "must be in [0, 1)",
        )?;
        if o.kind == OptimizerKind::Sgd && o.nesterov {
            check(
                o.momentum > 0.0,
                "optimizer.nesterov",
                o.nesterov,
                "needs optimizer.momentum > 0",
            )?;
        }
        check(
            self.regularization.l1 >= 0.0,
            "regularization.l1",
            self.regularization.l1,
            "must be >= 0",
        )?;
        let ls = self.regularization.label_smoothing;
        check(
            (0.0..1.0).contains(&ls),
            "regularization.label_smoothing",
            ls,
            "must be in [0, 1)",
        )?;
        let p = self.model.dropout;
        check(
            (0.0..1.0).contains(&p),
            "model.dropout",
            p,
            "must be in [0, 1)",
        )?;
        let a = &self.data.augment;
        for (key, v) in [
            ("translate", a.translate),
            ("scale", a.scale),
            ("squeeze", a.squeeze),
            ("shear", a.shear),
            ("rotate", a.rotate),
        ] {
            check(
                v >= 0.0 && v.is_finite(),
                &format!("data.augment.{key}"),
                v,
                "must be >= 0",
            )?;
        }
        check(
            a.scale < 1.0 && a.squeeze < 1.0,
            "data.augment.scale/squeeze",
            (a.scale, a.squeeze),
            "must be < 1",
        )?;

        let s = &self.lr_scheduler;
        match s.kind {
            SchedulerKind::Step => {
                check(
                    s.step_size > 0,
                    "lr_scheduler.step_size",
                    s.step_size,
                    "must be > 0",
                )?;
                check(
                    s.gamma > 0.0 && s.gamma <= 1.0,
                    "lr_scheduler.gamma",
                    s.gamma,
                    "must be in (0, 1]",
                )?;
            }
            SchedulerKind::Cosine => {
                check(s.t_max > 0, "lr_scheduler.t_max", s.t_max, "must be > 0")?;
                check(
                    s.eta_min >= 0.0,
                    "lr_scheduler.eta_min",
                    s.eta_min,
                    "must be >= 0",
                )?;
            }
            SchedulerKind::Plateau => {
                check(
                    s.factor > 0.0 && s.factor < 1.0,
                    "lr_scheduler.factor",
                    s.factor,
                    "must be in (0, 1)",
                )?;
            }
            SchedulerKind::Piecewise => {
                check(
                    !s.piecewise.is_empty(),
                    "lr_scheduler.piecewise",
                    &s.piecewise,
                    "needs at least one [epochs, lr]",
                )?;
                for (i, (epochs, lr)) in s.piecewise.iter().enumerate() {
                    check(
                        *epochs > 0 && *lr > 0.0,
                        &format!("lr_scheduler.piecewise[{i}]"),
                        (epochs, lr),
                        "needs epochs > 0 and lr > 0",
                    )?;
                }
            }
            SchedulerKind::Onecycle => {
                check(
                    s.pct_start > 0.0 && s.pct_start < 1.0,
                    "lr_scheduler.pct_start",
                    s.pct_start,
                    "must be in (0, 1)",
                )?;
                for (key, v) in [
                    ("div_factor", s.div_factor),
                    ("final_div_factor", s.final_div_factor),
                ] {
                    check(
                        v > 0.0 && v.is_finite(),
                        &format!("lr_scheduler.{key}"),
                        v,
                        "must be > 0",
                    )?;
                }
            }
            SchedulerKind::None => {}
        }

        let d = &self.data;
        check(
            d.batch_size > 0,
            "data.batch_size",
            d.batch_size,
            "must be > 0",
        )?;
        let v = d.validation_split;
        check(
            (0.0..1.0).contains(&v),
            "data.validation_split",
            v,
            "must be in [0, 1)",
        )?;

        let t = &self.trainer;
        check(t.epochs > 0, "trainer.epochs", t.epochs, "must be > 0")?;
        let es = &t.early_stopping;
        if es.enabled {
            check(
                es.patience > 0,
                "trainer.early_stopping.patience",
                es.patience,
                "must be > 0 when enabled",
            )?;
            check(
                es.min_delta >= 0.0,
                "trainer.early_stopping.min_delta",
                es.min_delta,
                "must be >= 0",
            )?;
        }
        crate::device::parse(&t.device).map_err(|e| format!("trainer.device: {e}"))?;
        if self.model.variant == Variant::Lenet1998 && self.data.dataset == Dataset::Cifar10 {
            return Err("model.variant = lenet5_1998 takes 28×28 grey images; data.dataset = cifar10 is 32×32 RGB".into());
        }
        Ok(())
    }

    /// The resolved config as YAML, for the run directory.
    pub fn to_yaml(&self) -> Result<String> {
        Ok(serde_yaml::to_string(self)?)
    }
}

fn check(
    ok: bool,
    key: &str,
    value: impl std::fmt::Debug,
    rule: &str,
) -> std::result::Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{key} = {value:?} {rule}"))
    }
}
