//! Each command of the `lenet5` binary as a library function: typed input in, a typed result out, so tests
//! call them without spawning the binary. `cli/mod.rs` only parses arguments into these inputs and prints.

use anyhow::Result;
use lenet5_core::data::{self, image};
use lenet5_core::run::evaluate;
use lenet5_core::run::trained::{self, Checkpoint, ModelSource, Prediction, load_model};
use lenet5_core::run::{self, TrainOutcome};
use lenet5_lab::UsageError;
use lenet5_lab::config::{self, Config, Override};
use lenet5_lab::rundir::dir;
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::study::compare::{self, Comparison};
use lenet5_lab::study::groups::{Group, Study};
use lenet5_lab::study::runs::{self, RunSummary};
use lenet5_lab::study::sweep::{self, Sweep};
use lenet5_lab::study::{analysis, exec, slurm};
use lenet5_lab::sys::interrupt::Interrupt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `lenet5 train`: a new or resumed run, stopped cleanly by Ctrl-C or SIGTERM.
pub fn train(start: run::Start) -> Result<TrainOutcome> {
    run::run(start, &Interrupt::install()?)
}

/// `lenet5 config`: the resolved config (the defaults without a file) as commented YAML.
pub fn resolved_config(path: Option<&Path>, overrides: &[Override]) -> Result<String> {
    let config = match path {
        Some(path) => config::load(path, overrides)?,
        None => config::apply(&Config::default(), overrides, "defaults")?,
    };
    config.warn_ineffective("");
    config.to_yaml()
}

/// What `lenet5 test` found.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub run: Option<PathBuf>,
    pub checkpoint: PathBuf,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    pub seconds: f64,
}

/// `lenet5 test`: scores the model on the test set; a run's best checkpoint's result is saved as test.json.
pub fn test(source: &ModelSource) -> Result<TestReport> {
    let m = load_model(source)?;
    let test = data::load_test(&m.config.data, m.device)?;
    let started = Instant::now();
    let evaluation = evaluate::evaluate(&m.net, &test);
    let seconds = started.elapsed().as_secs_f64();
    if let (Some(run), Checkpoint::Best) = (&m.run, &source.checkpoint) {
        run.write_test(&evaluation)?;
    }
    let run = m.run.map(|r| r.path);
    Ok(TestReport {
        run,
        checkpoint: m.weights,
        evaluation,
        seconds,
    })
}

impl TestReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(run) = &self.run {
            out += &format!("run: {}\n", run.display());
        }
        out += &format!(
            "checkpoint: {}\n{}",
            self.checkpoint.display(),
            self.evaluation.to_text()
        );
        let rate = self.evaluation.images as f64 / self.seconds;
        out + &format!(
            "\nevaluated {} images in {:.2}s ({rate:.0} images/s)\n",
            self.evaluation.images, self.seconds
        )
    }
}

/// What `lenet5 predict` found: which weights it used, the classified images and, per image that could not
/// be read, why.
#[derive(Debug, Clone, Serialize)]
pub struct Predictions {
    pub run: Option<PathBuf>,
    pub checkpoint: PathBuf,
    pub predictions: Vec<Prediction>,
    pub failed: Vec<Failed>,
}

/// An image `predict` could not classify, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub file: String,
    pub error: String,
}

/// `lenet5 predict`: `paths` is `[RUN_DIR] IMAGE...`; an unreadable image does not stop the others. A
/// directory is taken as the run only where it holds one and comes first.
pub fn predict(source: &ModelSource, paths: &[PathBuf]) -> Result<Predictions> {
    let mut source = source.clone();
    let images = match paths.split_first() {
        Some((first, rest)) if first.is_dir() && source.config.is_none() => {
            if !first.join(dir::CONFIG_FILE).is_file() {
                return Err(UsageError::error(format!(
                    "{} is a directory but not a run directory (no {}); give image files, optionally after a run directory",
                    first.display(),
                    dir::CONFIG_FILE
                )));
            }
            source.run_dir = Some(first.clone());
            rest
        }
        _ => paths,
    };
    if images.is_empty() {
        return Err(UsageError::error(match &source.run_dir {
            Some(dir) => format!(
                "no image files given after the run directory {}",
                dir.display()
            ),
            None => "no image files given".to_string(),
        }));
    }
    let m = load_model(&source)?;
    let dataset = m.config.data.dataset;
    if dataset.shape() != data::Dataset::Mnist.shape() {
        return Err(UsageError::error(format!(
            "predict prepares 28×28 grey digit images; this model was trained on {}",
            dataset.name()
        )));
    }
    let (mut files, mut prepared, mut failed) = (vec![], vec![], vec![]);
    for path in images {
        match image::load_image(path) {
            Ok(img) => {
                files.push(path.display().to_string());
                prepared.push(img);
            }
            Err(e) => failed.push(Failed {
                file: path.display().to_string(),
                error: format!("{e:#}"),
            }),
        }
    }
    let norm = dataset.normalization();
    let predictions = trained::classify(&m.net, &files, &prepared, &norm, m.device);
    Ok(Predictions {
        run: m.run.map(|r| r.path),
        checkpoint: m.weights,
        predictions,
        failed,
    })
}

impl Predictions {
    /// Which weights were used: the first lines of the text output (on stderr, so stdout stays one line per
    /// image).
    pub fn source_text(&self) -> String {
        let run = self
            .run
            .as_ref()
            .map_or(String::new(), |r| format!("run: {}\n", r.display()));
        format!("{run}checkpoint: {}", self.checkpoint.display())
    }

    /// The error the command ends with when some images could not be classified.
    pub fn failure(&self) -> Option<anyhow::Error> {
        let total = self.failed.len() + self.predictions.len();
        (!self.failed.is_empty()).then(|| {
            let names: Vec<&str> = self.failed.iter().map(|f| f.file.as_str()).collect();
            UsageError::error(format!(
                "{} of {total} images could not be classified: {}",
                self.failed.len(),
                names.join(", ")
            ))
        })
    }
}

/// What `lenet5 report` wrote.
pub struct ReportOutcome {
    pub runs: Vec<RunSummary>,
    pub written: Vec<PathBuf>,
}

/// `lenet5 report`: the results table and charts of `run_dirs` into `out`.
pub fn report(run_dirs: &[PathBuf], out: &Path) -> Result<ReportOutcome> {
    let runs = run_dirs
        .iter()
        .map(|d| runs::load_run(d))
        .collect::<Result<Vec<_>>>()?;
    let dirs: Vec<String> = run_dirs.iter().map(|d| d.display().to_string()).collect();
    let command = format!("lenet5 report {} --out {}", dirs.join(" "), out.display());
    let written = runs::write_report(&runs, out, &command)?;
    Ok(ReportOutcome { runs, written })
}

/// How `lenet5 sweep` runs a study.
pub enum SweepMode {
    /// List the expanded runs only.
    DryRun,
    Local(exec::Options),
    /// Write an sbatch script (and submit it when `submit`).
    Slurm {
        options: slurm::Options,
        submit: bool,
    },
}

/// What `lenet5 sweep` did.
pub enum SweepOutcome {
    DryRun,
    Local(exec::Summary),
    Slurm {
        job: Option<slurm::Job>,
        job_id: Option<String>,
    },
}

/// The default sweep directory of a sweep file: `runs/<file stem>`.
pub fn default_sweep_dir(file: &Path) -> PathBuf {
    PathBuf::from(dir::RUNS_DIR).join(dir::stem(file, "sweep"))
}

/// `lenet5 sweep`: expands and validates every run, prepares the sweep directory, then runs what is
/// unfinished locally or hands it to Slurm.
pub fn sweep(file: &Path, out: Option<&Path>, mode: SweepMode) -> Result<(Sweep, SweepOutcome)> {
    let dir = out.map_or_else(|| default_sweep_dir(file), Path::to_path_buf);
    let sweep = sweep::load(file, &dir)?;
    let mut warned = std::collections::HashSet::new();
    for run in &sweep.runs {
        if warned.insert(&run.group) {
            run.config
                .warn_ineffective(&format!("group `{}`: ", run.group));
        }
    }
    for (first, again) in sweep.same_experiments() {
        eprintln!(
            "warning: runs {first} and {again} are the same experiment (same config and seeds): it trains twice, \
             and the report counts the two as one shared run"
        );
    }
    if !matches!(mode, SweepMode::DryRun) {
        sweep.prepare()?;
    }
    let all: Vec<&sweep::Run> = sweep.runs.iter().collect();
    let outcome = match mode {
        SweepMode::DryRun => SweepOutcome::DryRun,
        SweepMode::Local(options) => {
            SweepOutcome::Local(exec::run(&sweep, &all, &options, &Interrupt::install()?)?)
        }
        SweepMode::Slurm { options, submit } => {
            let pending: Vec<&sweep::Run> = all
                .into_iter()
                .filter(|r| !matches!(sweep.state(r), sweep::RunState::Finished { .. }))
                .collect();
            let job = slurm::write_job(&sweep, &pending, &options)?;
            let job_id = match (&job, submit) {
                (Some(job), true) => Some(slurm::submit(job)?),
                _ => None,
            };
            SweepOutcome::Slurm { job, job_id }
        }
    };
    Ok((sweep, outcome))
}

/// `lenet5 sweep-task` (what a Slurm array task runs): the `index`-th slice of a batch list.
pub fn sweep_task(
    list: &Path,
    index: usize,
    runs_per_task: usize,
    options: &exec::Options,
) -> Result<exec::Summary> {
    let dir = list.parent().and_then(Path::parent).ok_or_else(|| {
        UsageError::error(format!(
            "{}: not in a sweep's slurm/ directory",
            list.display()
        ))
    })?;
    let sweep = sweep::open(dir)?;
    let ids = slurm::task_slice(list, index, runs_per_task)?;
    let runs: Vec<&sweep::Run> = ids
        .iter()
        .map(|id| {
            sweep.runs.iter().find(|r| &r.id == id).ok_or_else(|| {
                UsageError::error(format!(
                    "{}: run {id} is not in {}",
                    list.display(),
                    dir.display()
                ))
            })
        })
        .collect::<Result<_>>()?;
    exec::run(&sweep, &runs, options, &Interrupt::install()?)
}

/// What `lenet5 report SWEEP_DIR...` found and wrote.
pub struct StudyReport {
    pub groups: Vec<Group>,
    pub comparisons: Vec<Comparison>,
    pub written: Vec<PathBuf>,
}

/// `lenet5 report SWEEP_DIR...`: the studies' groups, their comparisons with verdicts (one family over
/// every sweep given), CSVs and charts. With several sweeps each is named by its directory's name.
pub fn study_report(dirs: &[PathBuf], out: &Path) -> Result<StudyReport> {
    let mut studies = vec![];
    for dir in dirs {
        let name = match dirs.len() {
            1 => String::new(),
            _ => dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        };
        if studies.iter().any(|s: &Study| s.name == name) {
            return Err(UsageError::error(format!(
                "{}: two sweeps named {name:?} in one report; give them directories with distinct names",
                dir.display()
            )));
        }
        studies.push(Study::open(dir, &name)?);
    }
    let comparisons = compare::comparisons(&studies);
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let command = format!("lenet5 report {} --out {}", shown.join(" "), out.display());
    let written = analysis::write(&studies, &comparisons, out, &command)?;
    Ok(StudyReport {
        groups: analysis::labelled_groups(&studies),
        comparisons,
        written,
    })
}

/// `lenet5 fetch`: the dataset named `dataset` into `dir` (default `data/<dataset>`), MD5-checked.
pub fn fetch(dataset: &str, dir: Option<&Path>) -> Result<PathBuf> {
    let dataset: data::Dataset = serde_yaml::from_value(serde_yaml::Value::from(dataset))
        .map_err(|e| UsageError::error(format!("--dataset {dataset}: {e}")))?;
    let dir = dir.map_or_else(
        || PathBuf::from("data").join(dataset.name()),
        Path::to_path_buf,
    );
    data::files::fetch(dataset, &dir)?;
    Ok(dir)
}
