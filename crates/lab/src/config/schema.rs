//! The typed configuration: [`Config`] and its sections, every choice as an enum (lowercase names in YAML,
//! listed in serde's error for a wrong one), the datasets by name with their image shapes, and the defaults,
//! which are [`DEFAULTS_YAML`](super::DEFAULTS_YAML) parsed.

use super::DEFAULTS_YAML;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    pub logging: LoggingConfig,
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
/// Their names, image shapes, sizes and normalisation live here; their files and loading are the core
/// crate's (`lenet5_core::data`).
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

/// Per-channel mean and standard deviation of a dataset's training pixels in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: &'static [f64],
    pub std: &'static [f64],
}

impl Dataset {
    /// MNIST's are the seed's (and PyTorch's MNIST example's); MNIST's and Fashion-MNIST's were checked
    /// against the training files; CIFAR-10's are the commonly used ones.
    pub fn normalization(self) -> Normalization {
        match self {
            Dataset::Mnist => Normalization {
                mean: &[0.1307],
                std: &[0.3081],
            },
            Dataset::FashionMnist => Normalization {
                mean: &[0.2860],
                std: &[0.3530],
            },
            Dataset::Cifar10 => Normalization {
                mean: &[0.4914, 0.4822, 0.4465],
                std: &[0.2470, 0.2435, 0.2616],
            },
        }
    }

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
    /// 1998 network (`lenet5_core::nn::lenet1998`).
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
    Linear,
    Plateau,
    Piecewise,
    Onecycle
});
choice!(
    /// What early stopping and the plateau scheduler watch.
    Monitor { ValLoss, ValAccuracy }
);

impl Monitor {
    /// The validation metric this one does not watch.
    pub fn other(self) -> Monitor {
        match self {
            Monitor::ValLoss => Monitor::ValAccuracy,
            Monitor::ValAccuracy => Monitor::ValLoss,
        }
    }

    /// True when `a` is better than `b` by more than `min_delta`.
    pub fn improves(self, a: f64, b: f64, min_delta: f64) -> bool {
        match self {
            Monitor::ValLoss => a < b - min_delta,
            Monitor::ValAccuracy => a > b + min_delta,
        }
    }
}

/// How many epochs a cosine or linear schedule anneals over: a number, or `auto`, the run's
/// `trainer.epochs`, so the schedule reaches its end at the run's last epoch whatever the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Horizon {
    Auto,
    Epochs(usize),
}

impl Horizon {
    /// The horizon in epochs for a run of `epochs` epochs.
    pub fn epochs(self, epochs: usize) -> usize {
        match self {
            Horizon::Auto => epochs,
            Horizon::Epochs(n) => n,
        }
    }
}

impl Serialize for Horizon {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Horizon::Auto => s.serialize_str("auto"),
            Horizon::Epochs(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Horizon {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        match &value {
            serde_yaml::Value::String(s) if s == "auto" => Ok(Horizon::Auto),
            serde_yaml::Value::Number(n) if n.as_u64().is_some() => {
                Ok(Horizon::Epochs(n.as_u64().unwrap_or_default() as usize))
            }
            other => Err(serde::de::Error::custom(format!(
                "expected a whole number of epochs or `auto`, found {}",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            ))),
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
    /// The seed's net with batch norm added (`lenet5_modern` always has it).
    pub batch_norm: bool,
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
    pub t_max: Horizon,
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
    /// Seed of the initial weights; `None`: [`TrainerConfig::seed`].
    pub init_seed: Option<u64>,
    /// Seed of the data order, dropout and distortions; `None`: [`TrainerConfig::seed`].
    pub order_seed: Option<u64>,
    pub threads: usize,
    pub cudnn_benchmark: bool,
    pub runs_dir: PathBuf,
    pub tensorboard: bool,
    pub layer_health: bool,
}

/// Where a run reports to, besides its own directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    pub mlflow: MlflowConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowConfig {
    /// The MLflow server; `None`: `MLFLOW_TRACKING_URI`, else not tracked.
    pub tracking_uri: Option<String>,
    /// The experiment; `None`: the sweep's directory name, or `lenet5`.
    pub experiment: Option<String>,
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
    trainer.early_stopping: EarlyStoppingConfig,
    logging: LoggingConfig,
    logging.mlflow: MlflowConfig
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
