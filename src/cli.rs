//! The command line (clap derive) and the one place that turns parsed arguments into library calls.
//! Flags become `--set`-style overrides, so the order is always defaults → config file → `--set` → flags.

use crate::checkpoint::{self, RunDir};
use crate::interrupt::Interrupt;
use crate::{Config, UsageError, config, data, evaluate, report, train};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "lenet5", version, about = "LeNet-5 on MNIST with LibTorch: train, test and compare techniques")]
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
        push("trainer.device", self.device.as_ref().map(|v| format!("{v:?}")));
        push("trainer.seed", self.seed.map(|v| v.to_string()));
        push("trainer.threads", self.threads.map(|v| v.to_string()));
        list
    }
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run directory [default: the most recent run under --runs-dir].
    pub run_dir: Option<PathBuf>,
    /// Which weights: best, last, or a path to a .safetensors file.
    #[arg(long, default_value = "best")]
    pub checkpoint: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Device to evaluate on [default: the run's trainer.device].
    #[arg(long)]
    pub device: Option<String>,
    /// Where to look for the most recent run.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => run_train(args),
        Command::Test(args) => run_test(args),
        Command::Report(args) => run_report(args),
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
                    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into()),
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

fn run_test(args: TestArgs) -> Result<()> {
    let run = match &args.run_dir {
        Some(dir) => RunDir::open(dir)?,
        None => RunDir::latest(&args.runs_dir)?,
    };
    let mut config: Config = run.config()?;
    if let Some(device) = &args.device {
        config.trainer.device = device.clone();
    }
    let weights = match args.checkpoint.as_str() {
        "best" => run.file(checkpoint::BEST_WEIGHTS),
        "last" => run.file(checkpoint::LAST_WEIGHTS),
        path if path.ends_with(".safetensors") => PathBuf::from(path),
        other => {
            return Err(UsageError::new(format!("--checkpoint {other:?}: expected best, last or a .safetensors path")));
        }
    };
    let device = crate::device::resolve(&config.trainer.device)?;
    let test = data::load_test(&config.data, device)?;
    let (mut vs, net) = train::build_model(&config, device);
    checkpoint::load_weights(&mut vs, &weights)?;
    let result = evaluate::evaluate(&net, &test);
    if args.checkpoint == "best" {
        checkpoint::write_atomic(&run.file(checkpoint::TEST_FILE), serde_json::to_string_pretty(&result)?.as_bytes())?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("run: {}\ncheckpoint: {}", run.path.display(), weights.display());
        print!("{}", result.to_text());
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> Result<()> {
    let runs = args.run_dirs.iter().map(|d| report::load_run(d)).collect::<Result<Vec<_>>>()?;
    let dirs: Vec<String> = args.run_dirs.iter().map(|d| d.display().to_string()).collect();
    let command = format!("lenet5 report {} --out {}", dirs.join(" "), args.out.display());
    let written = report::write_report(&runs, &args.out, &command)?;
    print!("{}", report::render_table(&runs, report::TableEpoch::Best));
    for run in runs.iter().filter(|r| !r.status().starts_with("finished")) {
        eprintln!("note: {} is {}", run.name, run.status());
    }
    eprintln!("wrote {} files to {}", written.len(), args.out.display());
    Ok(())
}
