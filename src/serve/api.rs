//! What `lenet5 serve` answers: the page, a sample digit, and the JSON API — `GET /api/runs` (the served
//! runs, their config summary, test accuracy and first-layer filters), `GET /api/runs/N/mistakes.png` (run
//! N's grid of `lenet5 test --mistakes`, when it has one) and `POST /api/predict` (an image in,
//! each run's prediction, ten probabilities and every layer's activations out). An image goes through
//! `predict`'s own code: [`image::prepare_bytes`] then [`trained::classify`]. HTTP itself (bounds, refusals,
//! errors) is the http module's.

use anyhow::Result;
use lenet5_core::data::image::{self, Prepared};
use lenet5_core::run::explain;
use lenet5_core::run::trained::{self, Checkpoint, LoadedModel, ModelSource};
use lenet5_lab::rundir::dir::RunDir;
use lenet5_lab::study::sweep::{self, RunState};
use lenet5_lab::{UsageError, config::Override};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The page: HTML, CSS and JavaScript in one file, no build step.
pub const PAGE: &str = include_str!("page.html");
/// The digit the page classifies on load, so it never opens empty.
pub const SAMPLE_PNG: &[u8] = include_bytes!("../../samples/7-blue-on-paper.png");

/// A trained run, loaded once and read by every request.
pub struct Served {
    pub name: String,
    pub model: LoadedModel,
    /// The run's `test.json` accuracy, when it has one.
    pub test_accuracy: Option<f64>,
    /// The run's `mistakes/mistakes.png` (`lenet5 test RUN --mistakes N`), when it has one.
    pub mistakes: Option<Vec<u8>>,
}

/// The largest mistakes grid served (one of 16 digits is ~100 kB).
const MISTAKES_LIMIT: u64 = 16 << 20;

// SAFETY: a served model is only read (forward passes under no_grad, no parameter updates), and LibTorch's
// inference on shared tensors from several threads is thread-safe; tch marks its tensors Send but not Sync.
unsafe impl Sync for Served {}
unsafe impl Send for Served {}

/// The runs `paths` name, in order: run directories (or a checkpoint inside one), or a sweep directory
/// (one finished run per group, in the sweep's order); none means the newest run under `runs_dir`.
pub fn load(paths: &[PathBuf], runs_dir: &Path, overrides: &[Override]) -> Result<Vec<Served>> {
    let mut dirs = vec![];
    for path in paths {
        if sweep::is_sweep_dir(path) {
            dirs.extend(sweep_runs(path)?);
        } else {
            dirs.push(path.clone());
        }
    }
    if paths.is_empty() {
        dirs.push(RunDir::latest(runs_dir)?.path);
    }
    let mut served = vec![];
    for dir in dirs {
        let source = ModelSource {
            run_dir: Some(dir.clone()),
            config: None,
            checkpoint: Checkpoint::Best,
            runs_dir: runs_dir.to_path_buf(),
            overrides: overrides.to_vec(),
        };
        let model = trained::load_model(&source)?;
        let dataset = model.config.data.dataset;
        if dataset.shape() != lenet5_core::data::Dataset::Mnist.shape() {
            return Err(UsageError::error(format!(
                "{}: serve shows 28×28 grey digits; this run was trained on {}",
                dir.display(),
                dataset.name()
            )));
        }
        let run = model.run.as_ref().expect("loaded from a run directory");
        let test_accuracy = run.test()?.map(|t| t.accuracy);
        let name = unique_name(&run.path, &served);
        let grid = (run.path.join(lenet5_lab::mistakes::DIR)).join(lenet5_lab::mistakes::GRID_FILE);
        // A grid that cannot be read is left out, with a warning; the run is still served.
        let mistakes = (grid.exists())
            .then(|| lenet5_lab::sys::read::bytes(&grid, MISTAKES_LIMIT))
            .and_then(|read| {
                read.inspect_err(|e| eprintln!("warning: {e:#}: not shown"))
                    .ok()
            });
        served.push(Served {
            name,
            model,
            test_accuracy,
            mistakes,
        });
    }
    Ok(served)
}

/// One finished run per group of a sweep directory.
fn sweep_runs(dir: &Path) -> Result<Vec<PathBuf>> {
    let sweep = sweep::open(dir)?;
    let mut groups: Vec<&str> = vec![];
    let mut runs = vec![];
    for run in &sweep.runs {
        if groups.contains(&run.group.as_str()) {
            continue;
        }
        if let RunState::Finished { .. } = sweep.state(run) {
            groups.push(&run.group);
            runs.push(sweep.run_dir(run));
        }
    }
    if runs.is_empty() {
        return Err(UsageError::error(format!(
            "{}: no finished run to serve",
            dir.display()
        )));
    }
    Ok(runs)
}

/// The run directory's name, made unique among the runs already served (`run`, `run (2)`).
fn unique_name(path: &Path, served: &[Served]) -> String {
    let base = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let taken = |n: &str| served.iter().any(|s| s.name == n);
    let mut name = base.clone();
    let mut i = 2;
    while taken(&name) {
        name = format!("{base} ({i})");
        i += 1;
    }
    name
}

/// A tensor as the page draws it: its shape without the batch dimension, and its values row-major.
#[derive(Debug, Serialize)]
pub struct Layer {
    pub name: String,
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

impl Layer {
    fn of(name: &str, t: &Tensor) -> Layer {
        let t = t
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape = t.size();
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).expect("a float tensor");
        let shape = if shape.first() == Some(&1) {
            shape[1..].to_vec()
        } else {
            shape
        };
        Layer {
            name: name.to_string(),
            shape,
            values,
        }
    }
}

/// `GET /api/runs`: each served run, in order, with what the page shows beside it.
pub fn runs_json(runs: &[Served]) -> serde_json::Value {
    let list: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let c = &s.model.config;
            json!({
                "run": s.name,
                "dir": s.model.run.as_ref().map(|r| r.path.display().to_string()),
                "checkpoint": s.model.weights.display().to_string(),
                "variant": c.model.variant.name(),
                "activation": c.model.activation.name(),
                "pooling": c.model.pooling.name(),
                "optimizer": c.optimizer.kind.name(),
                "test_accuracy": s.test_accuracy,
                "filters": Layer::of("filters", &s.model.net.first_filters().detach()),
                "mistakes": s.mistakes.as_ref().map(|_| format!("/api/runs/{n}/mistakes.png")),
            })
        })
        .collect();
    json!({ "runs": list })
}

/// How the page explains each run's answer: integrated gradients, as `predict --explain` computes them.
const ATTRIBUTION: explain::Method = explain::Method::IntegratedGradients { steps: 256 };

/// `POST /api/predict` for an image already prepared: the input the nets receive, then per run its
/// prediction (as `predict` makes it), the ten probabilities, every layer, and which pixels the answer
/// rests on (`attribution`: integrated gradients of the predicted digit, 28×28, with their sum and
/// f(image) − f(black)).
pub fn predict_json(runs: &[Served], prepared: &Prepared) -> serde_json::Value {
    let input = Tensor::from_slice(prepared).view([28, 28]);
    let answers: Vec<_> = runs
        .iter()
        .map(|s| {
            let m = &s.model;
            let norm = m.config.data.dataset.normalization();
            let images = std::slice::from_ref(prepared);
            let p = trained::classify(&m.net, &["image".into()], images, &norm, m.device)
                .pop()
                .expect("one image, one prediction");
            let batch = image::to_batch(images, &norm, m.device);
            let layers: Vec<Layer> = m
                .net
                .layers(&batch)
                .iter()
                .map(|(name, t)| Layer::of(name, t))
                .collect();
            let ig = explain::attribute(&m.net, &batch, &norm, p.digit, ATTRIBUTION);
            json!({
                "run": s.name,
                "prediction": p.digit,
                "probabilities": p.probabilities,
                "low_confidence": p.low_confidence,
                "layers": layers,
                "attribution": {
                    "method": ATTRIBUTION.name(),
                    "values": ig.map,
                    "sum": ig.sum,
                    "delta": ig.delta,
                },
            })
        })
        .collect();
    json!({ "input": Layer::of("input", &input), "runs": answers })
}

/// `POST /api/predict` for an image's encoded bytes: prepared as `predict` prepares a file (a 400's message
/// when it cannot be), then [`predict_json`].
pub fn predict(runs: &[Served], encoded: &[u8]) -> std::result::Result<serde_json::Value, String> {
    let prepared = image::prepare_bytes(encoded)?;
    Ok(predict_json(runs, &prepared))
}
