//! A trained run's model back in memory, for `test`, `predict` and `serve`: which weights (a run's best or
//! last checkpoint, or a `.safetensors` file with a config), loaded into the network its config builds; and
//! classifying prepared images with it.

use crate::data::Normalization;
use crate::data::image::{Prepared, to_batch};
use crate::device;
use crate::nn::{self, Net};
use anyhow::Result;
use lenet5_lab::UsageError;
use lenet5_lab::config::{self, Config, Override};
use lenet5_lab::rundir::dir::{self, BEST_WEIGHTS, LAST_WEIGHTS, RunDir};
use serde::Serialize;
use std::path::PathBuf;
use tch::nn::ModuleT;
use tch::{Device, Kind};

/// Which weights of a run to load.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    Best,
    Last,
    File(PathBuf),
}

impl std::str::FromStr for Checkpoint {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "best" => Ok(Checkpoint::Best),
            "last" => Ok(Checkpoint::Last),
            path if path.ends_with(".safetensors") => Ok(Checkpoint::File(path.into())),
            other => Err(format!(
                "{other:?}: expected best, last or a .safetensors path"
            )),
        }
    }
}

/// Where `test` and `predict` get a model: a run directory (default: the newest under `runs_dir`), or a
/// config plus a `.safetensors` file (e.g. weights saved from PyTorch); `overrides` (e.g. the device) go
/// over the config.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub run_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub checkpoint: Checkpoint,
    pub runs_dir: PathBuf,
    pub overrides: Vec<Override>,
}

/// A model ready to evaluate, and where it came from.
pub struct LoadedModel {
    pub config: Config,
    pub run: Option<RunDir>,
    pub weights: PathBuf,
    pub device: tch::Device,
    pub net: Net,
    /// `net`'s variables (another checkpoint can be loaded into them).
    pub vs: tch::nn::VarStore,
}

/// A checkpoint file given where a run directory is expected (`lenet5 test runs/X/best.safetensors`):
/// that run, with that checkpoint. Any other file is an error saying what was expected.
fn checkpoint_as_run(source: &ModelSource) -> Result<ModelSource> {
    let Some(path) = source.run_dir.as_ref().filter(|p| p.is_file()) else {
        return Ok(source.clone());
    };
    let run = path.parent().filter(|d| d.join(dir::CONFIG_FILE).is_file());
    match run {
        Some(run) if path.extension().is_some_and(|e| e == "safetensors") => Ok(ModelSource {
            run_dir: Some(run.to_path_buf()),
            checkpoint: Checkpoint::File(path.clone()),
            ..source.clone()
        }),
        _ => Err(UsageError::error(format!(
            "{} is a file; expected a run directory, a checkpoint inside one (RUN/best.safetensors), or --config CONFIG --checkpoint FILE.safetensors",
            path.display()
        ))),
    }
}

/// Builds the model `source` describes and loads its weights.
pub fn load_model(source: &ModelSource) -> Result<LoadedModel> {
    let source = &checkpoint_as_run(source)?;
    let (config, run) = match (&source.config, &source.run_dir) {
        (Some(_), Some(_)) => {
            return Err(UsageError::error(
                "give either a run directory or --config, not both",
            ));
        }
        (Some(path), None) => (config::load(path, &source.overrides)?, None),
        (None, dir) => {
            let run = match dir {
                Some(dir) => RunDir::open(dir)?,
                None => RunDir::latest(&source.runs_dir)?,
            };
            let origin = run.path.display().to_string();
            (
                config::apply(&run.config()?, &source.overrides, &origin)?,
                Some(run),
            )
        }
    };
    let weights = match (&source.checkpoint, &run) {
        (Checkpoint::Best, Some(run)) => run.file(BEST_WEIGHTS),
        (Checkpoint::Last, Some(run)) => run.file(LAST_WEIGHTS),
        (Checkpoint::File(path), _) => path.clone(),
        (_, None) => {
            return Err(UsageError::error(
                "--config needs --checkpoint FILE.safetensors",
            ));
        }
    };
    let device = device::resolve(&config.trainer.device)?;
    let (mut vs, net) = nn::build(&config, device);
    crate::run::weights::load(&mut vs, &weights)?;
    Ok(LoadedModel {
        config,
        run,
        weights,
        device,
        net,
        vs,
    })
}

/// One image's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub file: String,
    pub digit: i64,
    /// The three most likely digits with their softmax probabilities, best first.
    pub top3: Vec<(i64, f64)>,
    /// The softmax probability of every digit, 0 to 9.
    pub probabilities: Vec<f64>,
    /// The best probability is below [`CONFIDENT`]: the image may not look like an MNIST digit.
    pub low_confidence: bool,
}

/// Below this top probability an answer is flagged as a guess.
pub const CONFIDENT: f64 = 0.5;

/// Classifies prepared images with a model trained on data normalised by `normalization`.
pub fn classify(
    model: &impl ModuleT,
    files: &[String],
    images: &[Prepared],
    normalization: &Normalization,
    device: Device,
) -> Vec<Prediction> {
    if images.is_empty() {
        return vec![];
    }
    let probs = tch::no_grad(|| {
        model
            .forward_t(&to_batch(images, normalization, device), false)
            .softmax(-1, Kind::Float)
    });
    let (values, indices) = probs.topk(3, -1, true, true);
    let values: Vec<Vec<f32>> =
        Vec::try_from(values.to_device(Device::Cpu)).expect("probabilities");
    let indices: Vec<Vec<i64>> = Vec::try_from(indices.to_device(Device::Cpu)).expect("indices");
    let all: Vec<Vec<f32>> = Vec::try_from(probs.to_device(Device::Cpu)).expect("probabilities");
    files
        .iter()
        .zip(values.iter().zip(&indices).zip(&all))
        .map(|(file, ((v, i), all))| Prediction {
            file: file.clone(),
            digit: i[0],
            top3: i.iter().zip(v).map(|(&d, &p)| (d, f64::from(p))).collect(),
            probabilities: all.iter().map(|&p| f64::from(p)).collect(),
            low_confidence: f64::from(v[0]) < CONFIDENT,
        })
        .collect()
}

impl Prediction {
    pub fn to_text(&self) -> String {
        let top: Vec<String> = self
            .top3
            .iter()
            .map(|(d, p)| format!("{d}: {:.1}%", 100.0 * p))
            .collect();
        let hint = if self.low_confidence {
            "  low confidence: does it look like an MNIST digit (one centred digit, thick strokes, plain background)?"
        } else {
            ""
        };
        format!("{}: {}  ({}){hint}", self.file, self.digit, top.join(", "))
    }
}
