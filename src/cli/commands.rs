//! Each command of the `lenet5` binary as a library function: typed input in, a typed result out, so tests
//! call them without spawning the binary. `cli/mod.rs` only parses arguments into these inputs and prints.

use anyhow::{Context, Result};
use lenet5_core::data::{self, image};
use lenet5_core::export::Format;
use lenet5_core::run::dataset::DataCheck;
use lenet5_core::run::trained::{
    self, Checkpoint, LoadedModel, ModelSource, Prediction, load_model,
};
use lenet5_core::run::{self, TrainOutcome};
use lenet5_core::run::{evaluate, scoring};
use lenet5_lab::UsageError;
use lenet5_lab::config::{self, Config, Override};
use lenet5_lab::rundir::dir::{self, RunDir};
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::study::compare::Comparison;
use lenet5_lab::study::groups::{Group, Study};
use lenet5_lab::study::runs::{self, RunSummary};
use lenet5_lab::study::sweep::{self, Sweep};
use lenet5_lab::study::{analysis, exec, family, slurm, tune};
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

/// `lenet5 lr-find`: the range test on `path`'s config; writes `lr_find.csv`, `lr_find.svg` and
/// `lr_find.png` into `out`.
pub fn lr_find(
    path: &Path,
    overrides: &[Override],
    test: &lenet5_lab::lr_range::RangeTest,
    out: &Path,
) -> Result<run::lr_find::Found> {
    use lenet5_lab::{chart, lr_range, sys::atomic};
    let config = config::load(path, overrides)?;
    config.warn_ineffective("");
    let found = run::lr_find::lr_find(&config, test)?;
    std::fs::create_dir_all(out)
        .map_err(|e| UsageError::error(format!("cannot create {}: {e}", out.display())))?;
    atomic::write(&out.join("lr_find.csv"), &lr_range::to_csv(&found.points)?)?;
    let plot = lr_range::chart(&found.points, &found.suggestions);
    let size = (800, 500);
    atomic::write(
        &out.join("lr_find.svg"),
        chart::render_svg(&plot, size)?.as_bytes(),
    )?;
    atomic::write(&out.join("lr_find.png"), &chart::render_png(&plot, size)?)?;
    Ok(found)
}

/// What `lenet5 test` found.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub run: Option<PathBuf>,
    pub checkpoint: PathBuf,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    pub seconds: f64,
    /// How many of the run's checkpoints were scored in those seconds (its selections, when saved).
    pub checkpoints: usize,
    /// Where the evaluation was saved (the run's test.json), if it was.
    pub saved_to: Option<PathBuf>,
    /// Why it was not saved, if it was not.
    pub not_saved: Option<String>,
    /// Where `--mistakes` drew the worst-scored test digits, and how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mistakes: Option<(PathBuf, usize)>,
}

/// `lenet5 test --mistakes N [--mistakes-out DIR]`.
#[derive(Debug, Clone)]
pub struct MistakesRequest {
    pub n: usize,
    pub out: Option<PathBuf>,
}

/// `lenet5 test`: scores the model on the test set. The result is saved as the run's test.json only when it
/// is the run's own: its best checkpoint, its network, its data (by fingerprint). Otherwise it is printed
/// and the run is left as it was; the run's own checkpoint on other data than it recorded is refused unless
/// `data.dir` names that data explicitly.
pub fn test(source: &ModelSource, mistakes: Option<&MistakesRequest>) -> Result<TestReport> {
    let mut m = load_model(source)?;
    let own = own_evaluation(&m, &source.checkpoint)?.cloned();
    // The run's own scoring fits temperature scaling on its validation split: the whole dataset then.
    let (test, validation) = match own {
        Ok(_) => {
            let splits = data::load(&m.config.data, m.device)?;
            (splits.test, Some(splits.validation))
        }
        Err(_) => (data::load_test(&m.config.data, m.device)?, None),
    };
    let started = Instant::now();
    let (evaluation, checkpoints, saved_to, not_saved) = match own {
        // The run's own: every checkpoint selection scored again, as training's end scores them.
        Ok(run) => {
            let state =
                (run.state()?).with_context(|| format!("{}: no state.json", run.path.display()))?;
            let monitor = m.config.trainer.early_stopping.monitor;
            let scored = (&mut m.vs, &m.net);
            let splits = (&test, validation.as_ref());
            let evaluation = scoring::score_selections(scored, &run, (&state, monitor), splits)?;
            let checkpoints = run.selections()?.len().max(1);
            (
                evaluation,
                checkpoints,
                Some(run.file(dir::TEST_FILE)),
                None,
            )
        }
        Err(why) => (evaluate::evaluate(&m.net, &test), 1, None, Some(why)),
    };
    let seconds = started.elapsed().as_secs_f64();
    let own_dir = (saved_to.is_some())
        .then(|| (m.run.as_ref()).map(|r| r.path.join(lenet5_lab::mistakes::DIR)));
    let mistakes = match mistakes {
        Some(req) => {
            let out = (req.out.clone())
                .or(own_dir.flatten())
                .unwrap_or_else(|| PathBuf::from(lenet5_lab::mistakes::DIR));
            let own_run = saved_to.is_some().then_some(m.run.as_ref()).flatten();
            Some(write_mistakes(&m, &test, req.n, &out, own_run)?)
        }
        None => None,
    };
    Ok(TestReport {
        run: m.run.map(|r| r.path),
        checkpoint: m.weights,
        evaluation,
        seconds,
        checkpoints,
        saved_to,
        not_saved,
        mistakes,
    })
}

/// The `n` worst-scored test digits under `m`, as `mistakes.csv` and a captioned grid (`mistakes.png`) in
/// `out`; for the run's own scoring (`own_run`) the grid also goes into its TensorBoard events.
fn write_mistakes(
    m: &LoadedModel,
    test: &data::Split,
    n: usize,
    out: &Path,
    own_run: Option<&RunDir>,
) -> Result<(PathBuf, usize)> {
    use lenet5_core::{output::tensorboard, run::mistakes};
    use lenet5_lab::{chart, sys::atomic};
    let found = mistakes::top_losses(&m.net, test, n);
    std::fs::create_dir_all(out)
        .map_err(|e| UsageError::error(format!("cannot create {}: {e}", out.display())))?;
    atomic::write(
        &out.join(lenet5_lab::mistakes::CSV_FILE),
        &lenet5_lab::mistakes::to_csv(&found)?,
    )?;
    let title = format!(
        "The {} test digits with the highest loss: true → predicted (confidence) — {}",
        found.len(),
        m.weights.display()
    );
    // PNG only: as SVG every pixel is an element (~10 MB for 16 digits).
    let grid = mistakes::grid(test, &found, title);
    let png = chart::render_png(&grid, grid.size())?;
    atomic::write(&out.join(lenet5_lab::mistakes::GRID_FILE), &png)?;
    if let Some(run) = own_run.filter(|_| m.config.trainer.tensorboard) {
        // Its event files are rewritten: only under the run's lock, never while it trains.
        let _lock = match run.lock() {
            Err(e) if e.is::<lenet5_lab::RunLocked>() => {
                eprintln!("note: {e:#}: the grid is not added to its TensorBoard events");
                return Ok((out.to_path_buf(), found.len()));
            }
            lock => lock?,
        };
        let step = run.state()?.map_or(0, |s| s.best_epoch) as i64;
        // The grid of the latest scoring replaces an earlier one: one image per run.
        let keep = |tag: &str, _| tag != tensorboard::MISTAKES_TAG;
        let mut events = tensorboard::EventWriter::open(&run.path, keep)?;
        events.image(step, tensorboard::MISTAKES_TAG, &png, grid.size())?;
    }
    Ok((out.to_path_buf(), found.len()))
}

/// The run whose own evaluation scoring `m` is (`Ok`), or why it is no run's; a run's own network on data
/// that differs from what it recorded, without `data.dir` changed to say so, is an error.
fn own_evaluation<'m>(
    m: &'m LoadedModel,
    checkpoint: &Checkpoint,
) -> Result<std::result::Result<&'m RunDir, String>> {
    let Some(run) = &m.run else {
        return Ok(Err("not a run's checkpoint".into()));
    };
    let saved = run.config()?;
    let changed = config::scoring_changes(&saved, &m.config)?;
    if !changed.is_empty() {
        return Ok(Err(format!(
            "the overrides change what the run is ({})",
            changed.join(", ")
        )));
    }
    let data = match run::dataset::check(run, &m.config.data)? {
        DataCheck::Same => Ok(run),
        // Without a fingerprint, only the run's own data directory can be its data.
        DataCheck::Unrecorded(_) if m.config.data.dir != saved.data.dir => Err(format!(
            "{} recorded no dataset fingerprint, and data.dir is not the run's",
            run.path.display()
        )),
        DataCheck::Unrecorded(_) => {
            eprintln!(
                "note: {} recorded no dataset fingerprint; the test data is not checked",
                run.path.display()
            );
            Ok(run)
        }
        DataCheck::Differs(why) if m.config.data.dir != saved.data.dir => Err(why),
        DataCheck::Differs(why) => {
            return Err(UsageError::error(format!(
                "{why}; to score the run on these files anyway, without saving the result to the run, name them with --set data.dir={}",
                m.config.data.dir().display()
            )));
        }
    };
    match checkpoint {
        Checkpoint::Best => Ok(data),
        _ => Ok(Err(format!(
            "only the best checkpoint's score is the run's {}",
            dir::TEST_FILE
        ))),
    }
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
        let images = self.evaluation.images * self.checkpoints as i64;
        let rate = images as f64 / self.seconds;
        let saved = match (&self.saved_to, &self.not_saved) {
            (Some(path), _) => format!("saved to {}", path.display()),
            (None, why) => format!("not saved to the run: {}", why.as_deref().unwrap_or("")),
        };
        out += &format!(
            "\nevaluated {} images ({} checkpoints) in {:.2}s ({rate:.0} images/s); {saved}\n",
            self.evaluation.images, self.checkpoints, self.seconds
        );
        if let Some((dir, n)) = &self.mistakes {
            out += &format!(
                "the {n} worst-scored test digits drawn in {}\n",
                dir.display()
            );
        }
        out
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
    /// With `--explain`: each classified image's attribution map, in the order of `predictions`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<Explained>,
}

/// `predict --explain METHOD [--steps N] --explain-out DIR`.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    pub method: lenet5_core::run::explain::Method,
    pub out: PathBuf,
}

/// One image's attribution map, where it was drawn, and its completeness numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub file: String,
    pub method: String,
    /// The class explained: the predicted digit.
    pub target: i64,
    pub heatmap: PathBuf,
    /// The attributions' sum, and f(image) − f(black) (equal up to 1% for integrated gradients).
    pub sum: f64,
    pub delta: f64,
}

/// An image `predict` could not classify, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub file: String,
    pub error: String,
}

/// `lenet5 predict`: `paths` is `[RUN_DIR] IMAGE...`; an unreadable image does not stop the others. A
/// directory is taken as the run only where it holds one and comes first.
pub fn predict(
    source: &ModelSource,
    paths: &[PathBuf],
    explain: Option<&ExplainRequest>,
) -> Result<Predictions> {
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
    let explanations = match explain {
        Some(req) => explain_all(&m, &predictions, &prepared, req)?,
        None => vec![],
    };
    Ok(Predictions {
        run: m.run.map(|r| r.path),
        checkpoint: m.weights,
        predictions,
        failed,
        explanations,
    })
}

/// What `lenet5 export` wrote, and from which weights.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub run: Option<PathBuf>,
    pub checkpoint: PathBuf,
    pub format: String,
    pub out: PathBuf,
    pub bytes: u64,
}

/// `lenet5 export`: the model `source` names as a `format` file at `out` (default: the run's
/// `export/CHECKPOINT.EXT`, or `./CHECKPOINT.EXT` without a run). The model is built on the CPU unless the
/// overrides name a device: a file traced on CUDA loads only where CUDA is.
pub fn export(source: &ModelSource, format: Format, out: Option<&Path>) -> Result<Exported> {
    let mut source = source.clone();
    let cpu = Override::new("trainer.device", "cpu", "export's default device");
    source.overrides.insert(0, cpu);
    let mut m = load_model(&source)?;
    let out = match out {
        Some(path) => path.to_path_buf(),
        None => default_export_path(&m, format),
    };
    prepare_out(&out)?;
    let dataset = m.config.data.dataset;
    let norm = dataset.normalization();
    let model = (&m.net, &mut m.vs);
    lenet5_core::export::write(model, dataset.shape(), &norm, format, &out)?;
    let bytes = std::fs::metadata(&out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .len();
    Ok(Exported {
        run: m.run.map(|r| r.path),
        checkpoint: m.weights,
        format: format.name().into(),
        out,
        bytes,
    })
}

fn default_export_path(m: &LoadedModel, format: Format) -> PathBuf {
    let stem = Path::new(&m.weights)
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy());
    let file = format!("{stem}.{}", format.extension());
    match &m.run {
        Some(run) => run.path.join("export").join(file),
        None => PathBuf::from(file),
    }
}

/// `out`'s directory exists (created if need be) and `out` is no directory, so a bad path fails before
/// the export.
fn prepare_out(out: &Path) -> Result<()> {
    if out.is_dir() {
        return Err(UsageError::error(format!(
            "--out {} is a directory; give a file name",
            out.display()
        )));
    }
    match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .map_err(|e| UsageError::error(format!("cannot create {}: {e}", dir.display()))),
        None => Ok(()),
    }
}

/// Each prediction's attribution map, drawn over its image into `req.out` as `STEM.METHOD.png`.
fn explain_all(
    m: &LoadedModel,
    predictions: &[Prediction],
    prepared: &[image::Prepared],
    req: &ExplainRequest,
) -> Result<Vec<Explained>> {
    use lenet5_core::run::explain;
    std::fs::create_dir_all(&req.out)
        .map_err(|e| UsageError::error(format!("cannot create {}: {e}", req.out.display())))?;
    let norm = m.config.data.dataset.normalization();
    let mut out = vec![];
    for (p, pixels) in predictions.iter().zip(prepared) {
        let batch = image::to_batch(std::slice::from_ref(pixels), &norm, m.device);
        let a = explain::attribute(&m.net, &batch, &norm, p.digit, req.method);
        let stem = Path::new(&p.file)
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy());
        let heatmap = req.out.join(format!("{stem}.{}.png", req.method.name()));
        let side = image::SIDE as u32;
        let png = lenet5_lab::heatmap::png(pixels, &a.map, side, 10)?;
        lenet5_lab::sys::atomic::write(&heatmap, &png)?;
        out.push(Explained {
            file: p.file.clone(),
            method: req.method.name().to_string(),
            target: a.target,
            heatmap,
            sum: a.sum,
            delta: a.delta,
        });
    }
    Ok(out)
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
    let tuning = tune::Tuning::new(&sweep)
        .map_err(|e| UsageError::error(format!("{}: {e:#}", file.display())))?;
    if let Some(tuning) = tuning {
        return tuned_sweep(sweep, &tuning, mode);
    }
    let mut warned = std::collections::HashSet::new();
    for run in &sweep.runs {
        if warned.insert(&run.group) {
            run.config
                .warn_ineffective(&format!("group `{}`: ", run.group));
        }
    }
    for (first, again) in sweep.same_experiments() {
        eprintln!(
            "note: runs {first} and {again} are the same experiment (same config and seeds): it trains once, \
             the other is a copy, and the report counts the two as one shared run"
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
            slurm_job(&sweep, &pending, &options, submit)?
        }
    };
    Ok((sweep, outcome))
}

/// The sbatch job over `runs` (none when they are all finished), submitted when `submit`.
fn slurm_job(
    sweep: &Sweep,
    runs: &[&sweep::Run],
    options: &slurm::Options,
    submit: bool,
) -> Result<SweepOutcome> {
    let job = slurm::write_job(sweep, runs, options)?;
    let job_id = match (&job, submit) {
        (Some(job), true) => Some(slurm::submit(job)?),
        _ => None,
    };
    Ok(SweepOutcome::Slurm { job, job_id })
}

/// `lenet5 sweep` of a sweep with `tune:` blocks: locally, stage after stage to the end; through Slurm, one
/// job per stage (run the command again when it is done: it submits the next).
fn tuned_sweep(
    mut sweep: Sweep,
    tuning: &tune::Tuning,
    mode: SweepMode,
) -> Result<(Sweep, SweepOutcome)> {
    let outcome = match mode {
        SweepMode::DryRun => {
            sweep.runs = tuning.planned();
            SweepOutcome::DryRun
        }
        SweepMode::Local(options) => {
            SweepOutcome::Local(tuning.run(&mut sweep, &options, &Interrupt::install()?)?)
        }
        SweepMode::Slurm { options, submit } => {
            let pending = tuning.stage(&mut sweep)?;
            let runs: Vec<&sweep::Run> = (sweep.runs.iter())
                .filter(|r| pending.contains(&r.id))
                .collect();
            slurm_job(&sweep, &runs, &options, submit)?
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
    /// The rows of `--cross`'s family (empty without it).
    pub crossed: Vec<Comparison>,
    pub written: Vec<PathBuf>,
}

/// `lenet5 report SWEEP_DIR...`: the studies' groups, their comparisons with verdicts (one family over
/// every sweep given), CSVs and charts. With several sweeps each is named by its directory's name
/// ([`sweep_names`]). With `cross` keys, their crossing over the variants as a family of its own.
pub fn study_report(dirs: &[PathBuf], cross: &[String], out: &Path) -> Result<StudyReport> {
    check_cross(cross)?;
    refuse_repeats(dirs)?;
    let mut studies = vec![];
    for (dir, name) in dirs.iter().zip(sweep_names(dirs)) {
        if studies.iter().any(|s: &Study| s.name == name) {
            return Err(UsageError::error(format!(
                "{}: two sweeps named {name:?} in one report; give them directories with distinct names",
                dir.display()
            )));
        }
        studies.push(Study::open(dir, &name)?);
    }
    let comparisons = family::comparisons(&studies)?;
    let crossed = (!cross.is_empty())
        .then(|| family::crossings(&studies, cross).map_err(|e| UsageError::error(e.to_string())))
        .transpose()?;
    let mut shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if crossed.is_some() {
        shown.push(format!("--cross {}", cross.join(" ")));
    }
    let command = format!("lenet5 report {} --out {}", shown.join(" "), out.display());
    let crossing = (crossed.as_ref()).map(|rows| analysis::Crossing { keys: cross, rows });
    let written = analysis::write(&studies, &comparisons, crossing.as_ref(), out, &command)?;
    Ok(StudyReport {
        groups: analysis::labelled_groups(&studies),
        comparisons,
        crossed: crossed.unwrap_or_default(),
        written,
    })
}

/// `--cross` keys (clap asks for two or more): config keys or sections, none inside another.
fn check_cross(cross: &[String]) -> Result<()> {
    use lenet5_lab::config::within;
    let known = lenet5_lab::config::keys();
    for (i, key) in cross.iter().enumerate() {
        if !known.iter().any(|k| within(k, key)) {
            return Err(UsageError::error(format!(
                "--cross {key}: not a config key or section"
            )));
        }
        if let Some(other) = cross[..i].iter().find(|c| within(key, c) || within(c, key)) {
            return Err(UsageError::error(format!(
                "--cross {key}: the same key as {other}, or inside it"
            )));
        }
    }
    Ok(())
}

/// One sweep given twice (`grid` and `./grid`) would be compared with itself: refused, in one line.
fn refuse_repeats(dirs: &[PathBuf]) -> Result<()> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = vec![];
    for dir in dirs {
        let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            return Err(UsageError::error(format!(
                "{}: the same sweep as {}; give each sweep once",
                dir.display(),
                first.display()
            )));
        }
        seen.push((real, dir));
    }
    Ok(())
}

/// Each sweep's name in a report over several: its directory's name, or `parent/name` where two sweeps'
/// directories share a name (results/study-tuned/mnist and results/study-tuned-regularizers/mnist).
fn sweep_names(dirs: &[PathBuf]) -> Vec<String> {
    let tail = |d: &Path, parts: usize| -> String {
        let names: Vec<_> = d.components().rev().take(parts).collect();
        let names: Vec<String> = names
            .iter()
            .rev()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        names.join("/")
    };
    if dirs.len() == 1 {
        return vec![String::new()];
    }
    let short: Vec<String> = dirs.iter().map(|d| tail(d, 1)).collect();
    let clashes = |n: &String| short.iter().filter(|m| *m == n).count() > 1;
    dirs.iter()
        .zip(&short)
        .map(|(d, n)| match clashes(n) {
            true => tail(d, 2),
            false => n.clone(),
        })
        .collect()
}

/// `lenet5 track`: each run (a sweep directory: each of its runs) logged to MLflow as far as the server
/// lacks it; the server from `uri`, else the run's config, else `MLFLOW_TRACKING_URI`.
pub fn track(
    dirs: &[PathBuf],
    uri: Option<String>,
    experiment: Option<String>,
) -> Result<Vec<(PathBuf, Result<lenet5_lab::mlflow::Record>)>> {
    use lenet5_lab::mlflow::{self, Tracking};
    let mut runs = vec![];
    for dir in dirs {
        match sweep::is_sweep_dir(dir) {
            true => {
                let sweep = sweep::open(dir)?;
                runs.extend(
                    sweep
                        .runs
                        .iter()
                        .map(|r| sweep.run_dir(r))
                        .filter(|d| d.is_dir()),
                );
            }
            false => runs.push(dir.clone()),
        }
    }
    let track = |dir: &PathBuf| -> Result<mlflow::Record> {
        let run = RunDir::open(dir)?;
        let config = run.config()?;
        let mut tracking = Tracking::of(&config).or_else(|| {
            uri.clone().map(|uri| Tracking {
                uri,
                experiment: None,
            })
        });
        let tracking = tracking.as_mut().ok_or_else(|| {
            UsageError::error(format!(
                "no MLflow server: give --tracking-uri, or set {} or logging.mlflow.tracking_uri",
                mlflow::URI_ENV
            ))
        })?;
        if let Some(uri) = &uri {
            tracking.uri = uri.trim_end_matches('/').to_string();
        }
        if experiment.is_some() {
            tracking.experiment = experiment.clone();
        }
        mlflow::sync(&run, tracking, None)
    };
    Ok(runs.into_iter().map(|d| (d.clone(), track(&d))).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_that_share_a_name_are_named_by_their_parent() {
        let dirs: Vec<PathBuf> = [
            "results/study-tuned/mnist",
            "results/tuned-reg/mnist",
            "x/fashion",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let names = sweep_names(&dirs);
        assert_eq!(names, ["study-tuned/mnist", "tuned-reg/mnist", "fashion"]);
        assert_eq!(sweep_names(&dirs[2..]), [""], "one sweep needs no name");
    }
}
