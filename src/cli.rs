//! The command line (clap derive) and the one place that turns parsed arguments into library calls.
//! Flags become `--set`-style overrides, so the order is always defaults → config file → `--set` → flags.

use crate::checkpoint::{self, RunDir};
use crate::interrupt::Interrupt;
use crate::{Config, UsageError, config, data, evaluate, predict, report, train};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "lenet5",
    version,
    about = "LeNet-5 on MNIST with LibTorch: train, test and compare techniques"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train LeNet-5 from a YAML config (or continue a run with --resume), then score it on the test set.
    Train(TrainArgs),
    /// Evaluate a run's best checkpoint on the 10k MNIST test set.
    Test(TestArgs),
    /// Results table (Markdown) and loss/accuracy charts (SVG, PNG) from run directories.
    Report(ReportArgs),
    /// Classify digit images (PNG/JPEG, any size) with a trained model.
    Predict(PredictArgs),
}

/// Where the model comes from: a run directory's config and weights, or `--config` + a `.safetensors` file
/// (e.g. one saved from the seed's PyTorch module).
#[derive(Debug, Args)]
pub struct ModelSource {
    /// Which weights: best, last (of the run), or a path to a .safetensors file.
    #[arg(long, default_value = "best")]
    pub checkpoint: String,
    /// The architecture for a --checkpoint file outside a run directory (a config YAML).
    #[arg(long, value_name = "CONFIG.yaml")]
    pub config: Option<PathBuf>,
    /// Device to run on [default: the config's trainer.device].
    #[arg(long)]
    pub device: Option<String>,
    /// Where to look for the most recent run.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// [RUN_DIR] IMAGE...: an optional run directory (default: the most recent run), then image files.
    #[arg(required = true, value_name = "[RUN_DIR] IMAGE")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelSource,
    /// Print the predictions as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories to compare.
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Output directory for report.md and the charts.
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Experiment config (YAML over the built-in defaults); not needed with --resume.
    #[arg(required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Continue this run directory from its last completed epoch.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Run directory name prefix [default: the config file's name].
    #[arg(long, conflicts_with = "run_dir")]
    pub name: Option<String>,
    /// Exact run directory to create, instead of RUNS_DIR/NAME-TIMESTAMP.
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub run_dir: Option<PathBuf>,
}

/// Command-line overrides, applied after the config file in the order listed here.
#[derive(Debug, Args, Default)]
pub struct Overrides {
    /// Override any config key, e.g. --set optimizer.lr=0.01 (repeatable; value parsed as YAML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// trainer.epochs
    #[arg(long)]
    pub epochs: Option<usize>,
    /// optimizer.lr
    #[arg(long)]
    pub lr: Option<f64>,
    /// data.batch_size
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// trainer.device: auto, cpu, cuda, cuda:N
    #[arg(long)]
    pub device: Option<String>,
    /// trainer.seed
    #[arg(long)]
    pub seed: Option<u64>,
    /// trainer.threads (CPU intra-op threads; 0 = one per core)
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Overrides {
    /// All overrides as `key=value` strings, `--set` first, then the named flags.
    pub fn to_set_list(&self) -> Vec<String> {
        let mut list = self.set.clone();
        let mut push = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                list.push(format!("{key}={v}"));
            }
        };
        push("trainer.epochs", self.epochs.map(|v| v.to_string()));
        push("optimizer.lr", self.lr.map(|v| v.to_string()));
        push("data.batch_size", self.batch_size.map(|v| v.to_string()));
        // Quoted so that YAML keeps e.g. `cuda:0` a string.
        push(
            "trainer.device",
            self.device.as_ref().map(|v| format!("{v:?}")),
        );
        push("trainer.seed", self.seed.map(|v| v.to_string()));
        push("trainer.threads", self.threads.map(|v| v.to_string()));
        list
    }
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run directory [default: the most recent run under --runs-dir; none with --config].
    pub run_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelSource,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => run_train(args),
        Command::Test(args) => run_test(args),
        Command::Report(args) => run_report(args),
        Command::Predict(args) => run_predict(args),
    }
}

fn run_train(args: TrainArgs) -> Result<()> {
    let interrupt = Interrupt::install()?;
    let overrides = args.overrides.to_set_list();
    let outcome = match (&args.resume, &args.config) {
        (Some(run_dir), _) => train::resume(run_dir, &overrides, &interrupt)?,
        (None, Some(path)) => {
            let config = config::load(path, &overrides)?;
            let new_run = match (&args.run_dir, &args.name) {
                (Some(dir), _) => train::NewRun::At(dir.clone()),
                (None, Some(name)) => train::NewRun::Named(name.clone()),
                (None, None) => train::NewRun::Named(
                    path.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "run".into()),
                ),
            };
            train::train(&config, &new_run, &interrupt)?
        }
        (None, None) => unreachable!("clap requires CONFIG or --resume"),
    };
    let s = &outcome.state;
    println!(
        "test: loss {:.4}  accuracy {:.2}%  (best epoch {} of {}, {:.0}s training) -> {}",
        outcome.test.loss,
        100.0 * outcome.test.accuracy,
        s.best_epoch,
        s.epoch,
        s.train_seconds,
        outcome.run.path.display()
    );
    Ok(())
}

/// A model ready to evaluate, and where it came from.
struct LoadedModel {
    config: Config,
    run: Option<RunDir>,
    weights: PathBuf,
    device: tch::Device,
    _vs: tch::nn::VarStore,
    net: crate::model::Net,
}

fn load_model(run_dir: Option<&PathBuf>, source: &ModelSource) -> Result<LoadedModel> {
    let (mut config, run) = match (&source.config, run_dir) {
        (Some(path), None) => (config::load(path, &[])?, None),
        (Some(_), Some(_)) => {
            return Err(UsageError::new(
                "give either a run directory or --config, not both",
            ));
        }
        (None, Some(dir)) => {
            let run = RunDir::open(dir)?;
            (run.config()?, Some(run))
        }
        (None, None) => {
            let run = RunDir::latest(&source.runs_dir)?;
            (run.config()?, Some(run))
        }
    };
    if let Some(device) = &source.device {
        config.trainer.device = device.clone();
    }
    let weights = match (source.checkpoint.as_str(), &run) {
        ("best", Some(run)) => run.file(checkpoint::BEST_WEIGHTS),
        ("last", Some(run)) => run.file(checkpoint::LAST_WEIGHTS),
        (path, _) if path.ends_with(".safetensors") => PathBuf::from(path),
        (other, _) => {
            return Err(UsageError::new(format!(
                "--checkpoint {other:?}: expected best, last (with a run directory) or a .safetensors path"
            )));
        }
    };
    let device = crate::device::resolve(&config.trainer.device)?;
    let (mut vs, net) = train::build_model(&config, device);
    checkpoint::load_weights(&mut vs, &weights)?;
    Ok(LoadedModel {
        config,
        run,
        weights,
        device,
        _vs: vs,
        net,
    })
}

fn run_test(args: TestArgs) -> Result<()> {
    let m = load_model(args.run_dir.as_ref(), &args.model)?;
    let test = data::load_test(&m.config.data, m.device)?;
    let started = std::time::Instant::now();
    let result = evaluate::evaluate(&m.net, &test);
    let seconds = started.elapsed().as_secs_f64();
    if let (Some(run), "best") = (&m.run, args.model.checkpoint.as_str()) {
        run.write_test(&result)?;
    }
    if args.json {
        let mut value = serde_json::to_value(&result)?;
        value["seconds"] = seconds.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        if let Some(run) = &m.run {
            println!("run: {}", run.path.display());
        }
        println!("checkpoint: {}", m.weights.display());
        print!("{}", result.to_text());
        println!(
            "
evaluated {} images in {seconds:.2}s ({:.0} images/s)",
            result.images,
            result.images as f64 / seconds
        );
    }
    Ok(())
}

fn run_predict(args: PredictArgs) -> Result<()> {
    let (run_dir, images) = match args.paths.split_first() {
        Some((first, rest)) if first.is_dir() => (Some(first), rest),
        _ => (None, &args.paths[..]),
    };
    if images.is_empty() {
        return Err(UsageError::new("no image files given"));
    }
    let m = load_model(run_dir, &args.model)?;
    if m.config.data.dataset.input() != (1, 28) {
        return Err(UsageError::new(format!(
            "predict prepares 28×28 grey digit images; this model was trained on {}",
            m.config.data.dataset.name()
        )));
    }
    let (mut files, mut prepared, mut failures) = (vec![], vec![], vec![]);
    for path in images {
        match predict::load_image(path) {
            Ok(img) => {
                files.push(path.display().to_string());
                prepared.push(img);
            }
            Err(e) => {
                eprintln!("Error: {e:#}");
                failures.push(path.display().to_string());
            }
        }
    }
    let (mean, std) = m.config.data.dataset.mean_std();
    let predictions = predict::classify(&m.net, &files, &prepared, (mean[0], std[0]), m.device);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "predictions": predictions, "failed": failures })
            )?
        );
    } else {
        predictions.iter().for_each(|p| println!("{}", p.to_text()));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "{} of {} images could not be classified: {}",
            failures.len(),
            images.len(),
            failures.join(", ")
        )))
    }
}

fn run_report(args: ReportArgs) -> Result<()> {
    let runs = args
        .run_dirs
        .iter()
        .map(|d| report::load_run(d))
        .collect::<Result<Vec<_>>>()?;
    let dirs: Vec<String> = args
        .run_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let command = format!(
        "lenet5 report {} --out {}",
        dirs.join(" "),
        args.out.display()
    );
    let written = report::write_report(&runs, &args.out, &command)?;
    print!("{}", report::render_table(&runs, report::TableEpoch::Best));
    for run in runs.iter().filter(|r| !r.status().starts_with("finished")) {
        eprintln!("note: {} is {}", run.name, run.status());
    }
    eprintln!("wrote {} files to {}", written.len(), args.out.display());
    Ok(())
}
