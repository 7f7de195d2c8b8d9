//! The command line's clap definitions: every subcommand, flag and argument, with the help text users see,
//! and how flags become config [`Override`]s (defaults → file → `--set` → named flags).

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use lenet5_core::export::Format;
use lenet5_core::run::trained::{Checkpoint, ModelSource};
use lenet5_lab::config::Override;
use lenet5_lab::rundir::dir::RUNS_DIR;
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
    /// Evaluate a run's best checkpoint on the test set.
    Test(TestArgs),
    /// Classify digit images (PNG/JPEG, any size) with a trained model.
    Predict(PredictArgs),
    /// Write a trained model as TorchScript or ONNX, taking raw pixels in [0, 1] (normalisation inside).
    Export(ExportArgs),
    /// Results table and charts (Markdown, SVG, PNG) of run directories, or sweeps' statistics (one family).
    Report(ReportArgs),
    /// Print the fully resolved config (defaults → file → overrides) as commented YAML.
    Config(ConfigArgs),
    /// Run a study: every run of a sweep file (variants × grid × seeds), locally or through Slurm.
    Sweep(SweepArgs),
    /// Learning-rate range test: loss against an exponentially growing lr, a suggestion to paste.
    LrFind(LrFindArgs),
    /// Serve a web page to draw a digit and see each trained run's prediction and layers.
    Serve(ServeArgs),
    /// Download a dataset into a directory (what `train` does when data.download is on and files are missing).
    Fetch(FetchArgs),
    /// Log runs to an MLflow server (what training does with logging.mlflow set): whatever it lacks of each.
    Track(TrackArgs),
    /// Print a shell completion script: lenet5 completions bash > ~/.local/share/bash-completion/completions/lenet5
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), or with --out DIR write one page per subcommand too:
    /// lenet5 man --out ~/.local/share/man/man1
    Man {
        /// Write lenet5.1 and lenet5-SUBCOMMAND.1 into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// One Slurm array task of a sweep (what the sbatch script runs).
    #[command(hide = true)]
    SweepTask(SweepTaskArgs),
}

impl Cli {
    /// Whether the command trains (here or in child processes): those start with OpenMP's spinning limited
    /// (`lenet5_lab::sys::cpu::reexec_with_spin_limit`).
    pub fn trains(&self) -> bool {
        matches!(
            self.command,
            Command::Train(_) | Command::Sweep(_) | Command::SweepTask(_)
        )
    }
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep file (YAML: base, set, variants, grid, seeds, baseline).
    pub sweep: PathBuf,
    /// The sweep directory [default: runs/<sweep file name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the expanded runs and exit.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub local: LocalArgs,
    /// Write an sbatch script for a Slurm job array instead of running locally.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: submit the script with sbatch.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// With --slurm: the partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// With --slurm: each task's time limit, e.g. 2:00:00.
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// With --slurm: CPUs per task (each run's threads).
    #[arg(long, default_value_t = 2)]
    pub cpus_per_task: usize,
    /// With --slurm: GPUs per task (runs then train on cuda).
    #[arg(long, requires = "slurm")]
    pub gpus_per_task: Option<usize>,
    /// With --slurm: at most this many array tasks at once.
    #[arg(long, requires = "slurm")]
    pub max_parallel: Option<usize>,
    /// With --slurm: runs each array task trains in turn.
    #[arg(long, default_value_t = 4)]
    pub runs_per_task: usize,
    /// With --slurm: the account to charge (sbatch --account).
    #[arg(long, requires = "slurm")]
    pub account: Option<String>,
    /// With --slurm: the quality of service (sbatch --qos).
    #[arg(long, requires = "slurm")]
    pub qos: Option<String>,
    /// With --slurm: memory per node, e.g. 8G (sbatch --mem).
    #[arg(long, requires = "slurm")]
    pub mem: Option<String>,
    /// With --slurm: another #SBATCH option as written, e.g. --sbatch-arg=--constraint=a100; repeatable.
    #[arg(
        long = "sbatch-arg",
        requires = "slurm",
        allow_hyphen_values = true,
        value_name = "OPTION"
    )]
    pub sbatch_args: Vec<String>,
    /// With --slurm: a shell line each task runs before training, e.g. "module load cuda/12.4".
    #[arg(long, requires = "slurm", value_name = "LINE")]
    pub setup: Option<String>,
}

/// How runs share this machine.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Runs at a time (separate processes).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Devices handed to runs round-robin, e.g. cuda:0,cuda:1 [default: each run's trainer.device].
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// CPU threads per run [default: the cores divided by --jobs].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Train failed runs again instead of skipping them.
    #[arg(long)]
    pub retry_failed: bool,
    /// A sweep directory whose finished runs are copied into this sweep's identical ones (the same config
    /// and seeds) instead of training them again; repeatable; local runs only (not with --slurm).
    #[arg(long, value_name = "SWEEP_DIR")]
    pub reuse: Vec<PathBuf>,
}

impl LocalArgs {
    pub(crate) fn options(&self) -> lenet5_lab::study::exec::Options {
        lenet5_lab::study::exec::Options {
            jobs: self.jobs,
            devices: self.devices.clone(),
            threads: self.threads,
            retry_failed: self.retry_failed,
            reuse: self.reuse.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// mnist, fashion-mnist or cifar10.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Target directory [default: data/<dataset>].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrackArgs {
    /// Run directories, or sweep directories (each of their runs).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// The MLflow server [default: each run's logging.mlflow.tracking_uri, else $MLFLOW_TRACKING_URI].
    #[arg(long, value_name = "URI")]
    pub tracking_uri: Option<String>,
    /// The experiment [default: each run's logging.mlflow.experiment, else the sweep's name, else lenet5].
    #[arg(long)]
    pub experiment: Option<String>,
}

#[derive(Debug, Args)]
pub struct SweepTaskArgs {
    /// A batch list written by `sweep --slurm` (SWEEP_DIR/slurm/batch-N.runs).
    pub list: PathBuf,
    #[arg(long)]
    pub index: usize,
    #[arg(long)]
    pub runs_per_task: usize,
    #[command(flatten)]
    pub local: LocalArgs,
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
    pub flags: TrainFlags,
    /// Run directory name prefix [default: the config file's name].
    #[arg(long, conflicts_with = "run_dir")]
    pub name: Option<String>,
    /// Exact run directory to create, instead of RUNS_DIR/NAME-TIMESTAMP.
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LrFindArgs {
    /// Experiment config (YAML over the built-in defaults).
    pub config: PathBuf,
    #[command(flatten)]
    pub flags: TrainFlags,
    /// Batches (optimizer steps) at most; the test stops earlier when the loss diverges.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// The first step's learning rate.
    #[arg(long, default_value_t = 1e-7)]
    pub min_lr: f64,
    /// The last step's learning rate.
    #[arg(long, default_value_t = 10.0)]
    pub max_lr: f64,
    /// Where lr_find.csv, .svg and .png go [default: runs/lr_find-<config file name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Config file [default: none, i.e. the built-in defaults].
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: TrainFlags,
}

/// Accepts any text, and offers candidates to shell completion (config keys, devices) without limiting
/// what may be typed.
#[derive(Clone)]
struct Suggest(fn() -> Vec<String>);

impl clap::builder::TypedValueParser for Suggest {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            (self.0)()
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

/// `KEY=` for every config key.
fn config_key_candidates() -> Vec<String> {
    (lenet5_lab::config::keys().into_iter())
        .map(|k| format!("{k}="))
        .collect()
}

fn device_candidates() -> Vec<String> {
    ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]
        .map(String::from)
        .to_vec()
}

/// Overrides every subcommand takes.
#[derive(Debug, Args, Default)]
pub struct RuntimeFlags {
    /// Override any config key, e.g. --set optimizer.lr=0.01 (repeatable; value parsed as YAML).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Suggest(config_key_candidates), hide_possible_values = true)]
    pub set: Vec<String>,
    /// trainer.device: auto, cpu, cuda, cuda:N
    #[arg(long, value_parser = Suggest(device_candidates), hide_possible_values = true)]
    pub device: Option<String>,
    /// trainer.threads (CPU intra-op threads; 0 = one per core)
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Overrides of the training recipe.
#[derive(Debug, Args, Default)]
pub struct TrainFlags {
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    /// trainer.epochs
    #[arg(long)]
    pub epochs: Option<usize>,
    /// optimizer.lr
    #[arg(long)]
    pub lr: Option<f64>,
    /// data.batch_size
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// trainer.seed
    #[arg(long)]
    pub seed: Option<u64>,
}

impl RuntimeFlags {
    /// `--set` first, then the named flags, each as a typed value.
    pub fn overrides(&self) -> Result<Vec<Override>> {
        let mut list = self
            .set
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<Vec<_>>>()?;
        if let Some(d) = &self.device {
            list.push(Override::new(
                "trainer.device",
                d.as_str(),
                format!("--device {d}"),
            ));
        }
        if let Some(n) = self.threads {
            list.push(Override::new(
                "trainer.threads",
                n as u64,
                format!("--threads {n}"),
            ));
        }
        Ok(list)
    }
}

impl TrainFlags {
    pub fn overrides(&self) -> Result<Vec<Override>> {
        let mut list = self.runtime.overrides()?;
        let mut push = |key: &str, flag: &str, value: Option<serde_yaml::Value>| {
            if let Some(v) = value {
                let shown = serde_yaml::to_string(&v).unwrap_or_default();
                list.push(Override::new(key, v, format!("--{flag} {}", shown.trim())));
            }
        };
        push(
            "trainer.epochs",
            "epochs",
            self.epochs.map(|v| (v as u64).into()),
        );
        push("optimizer.lr", "lr", self.lr.map(Into::into));
        push(
            "data.batch_size",
            "batch-size",
            self.batch_size.map(|v| (v as u64).into()),
        );
        push("trainer.seed", "seed", self.seed.map(Into::into));
        Ok(list)
    }
}

/// Where the model comes from: a run directory's config and weights, or `--config` + a `.safetensors` file
/// (e.g. one saved from the seed's PyTorch module).
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Which weights: best, last (of the run), or a path to a .safetensors file.
    #[arg(long, default_value = "best")]
    pub checkpoint: Checkpoint,
    /// The architecture for a --checkpoint file outside a run directory (a config YAML).
    #[arg(long, value_name = "CONFIG.yaml")]
    pub config: Option<PathBuf>,
    /// Where to look for the most recent run.
    #[arg(long, default_value = RUNS_DIR)]
    pub runs_dir: PathBuf,
    #[command(flatten)]
    pub flags: RuntimeFlags,
}

impl ModelArgs {
    pub(crate) fn source(&self, run_dir: Option<PathBuf>) -> Result<ModelSource> {
        Ok(ModelSource {
            run_dir,
            config: self.config.clone(),
            checkpoint: self.checkpoint.clone(),
            runs_dir: self.runs_dir.clone(),
            overrides: self.flags.overrides()?,
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Run directories (or a sweep directory: one run per group), shown side by side in this order
    /// [default: the most recent run under --runs-dir].
    pub run_dirs: Vec<PathBuf>,
    /// The port to listen on; 0 picks a free one (printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The address to bind; the default keeps the page on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Where to look for the most recent run.
    #[arg(long, default_value = RUNS_DIR)]
    pub runs_dir: PathBuf,
    /// Seconds a client has to send a request's headers, then its body, then to take each part of the
    /// answer; a slower or idle connection is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    #[command(flatten)]
    pub flags: RuntimeFlags,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run directory [default: the most recent run under --runs-dir; none with --config].
    pub run_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the N test digits the model gets most wrong (highest loss): mistakes.csv, mistakes.png.
    #[arg(long, value_name = "N")]
    pub mistakes: Option<usize>,
    /// Where --mistakes writes [default: RUN_DIR/mistakes when the result is the run's own, else ./mistakes].
    #[arg(long, value_name = "DIR", requires = "mistakes")]
    pub mistakes_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// [RUN_DIR] IMAGE...: an optional run directory (default: the most recent run), then image files.
    #[arg(required = true, value_name = "[RUN_DIR] IMAGE")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the predictions as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw which pixels each answer rests on: saliency (|input gradient|) or integrated-gradients.
    #[arg(long, value_name = "METHOD", value_parser = ["saliency", "integrated-gradients"])]
    pub explain: Option<String>,
    /// Integrated gradients' steps along the path from a black image.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(i64).range(1..=4096))]
    pub steps: i64,
    /// Where --explain writes IMAGE.METHOD.png.
    #[arg(long, value_name = "DIR", default_value = "explain")]
    pub explain_out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories to compare, or sweep directories (several: their comparisons form one family).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Output directory for report.md and the charts [default: report, or SWEEP_DIR/report for one sweep].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Sweeps only: test the crossing of these config keys over the variants that differ from the base only
    /// in them (main effects and interactions, a family of their own; crossed.csv).
    #[arg(long, num_args = 2.., value_name = "KEY")]
    pub cross: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directory [default: the most recent run under --runs-dir; none with --config].
    pub run_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// torchscript (LibTorch's own format, traced) or onnx (opset 17, dynamic batch).
    #[arg(long, value_parser = parse_format, value_name = "torchscript|onnx")]
    pub format: Format,
    /// The file to write [default: RUN_DIR/export/CHECKPOINT.pt or .onnx; with --config, ./CHECKPOINT.EXT].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    s.parse()
}
