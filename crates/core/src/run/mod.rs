//! One training run, new or resumed, through one entry point ([`run`]): open the run (every check first),
//! build the model and its outputs, loop over epochs, finish with the test set. An epoch reads as its steps:
//! train ([`epoch`]) → validate → update the state → hand the epoch to every output → save the state.
//!
//! Also here: the run's checkpoints as an output ([`checkpoints`]) and its weights on disk ([`weights`]), the
//! check that a run continues or is scored on the data it trained on ([`dataset`]),
//! scoring a model on a split ([`evaluate`]), and a trained run's model back in memory for `test` and
//! `predict` ([`trained`]). The run directory's files and formats are `lenet5_lab::rundir`'s.

pub mod checkpoints;
pub mod dataset;
mod epoch;
pub mod evaluate;
pub mod explain;
pub mod health;
pub mod lr_find;
pub mod mistakes;
pub mod scoring;
pub mod temperature;
pub mod trained;
pub mod weights;

use crate::data::{self, Splits};
use crate::device;
use crate::nn::optim::{self, Optimizer};
use crate::nn::{self, Net};
use crate::output::console::Console;
use crate::output::mlflow::MlflowSink;
use crate::output::tensorboard::{self, EventWriter};
use crate::output::{End, Epoch, Sink};
use anyhow::{Context, Result};
use checkpoints::Checkpoints;
use epoch::EpochEnd;
use health::Health;
use lenet5_lab::UsageError;
use lenet5_lab::config::{self, Config, Monitor, Override};
use lenet5_lab::rundir::dir::{BEST_WEIGHTS, LAST_WEIGHTS, LAYERS_FILE, METRICS_FILE, RunDir};
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::rundir::fingerprint::Fingerprint;
use lenet5_lab::rundir::layers::LayerRow;
use lenet5_lab::rundir::metrics::EpochRow;
use lenet5_lab::rundir::metrics::{self, MetricsWriter, RowWriter};
use lenet5_lab::rundir::state::{RunStatus, TrainState};
use lenet5_lab::sys::cpu;
use lenet5_lab::sys::interrupt::{Interrupt, Interrupted};
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;
use tch::nn::VarStore;

/// What to train.
#[expect(clippy::large_enum_variant, reason = "one per process")]
pub enum Start {
    /// A new run of `config` in a new directory.
    New { config: Config, dir: NewRunDir },
    /// Continue the run in `dir` after its last completed epoch. `overrides` may change only what cannot
    /// change the numbers already made ([`config::RESUMABLE_KEYS`]: more epochs, device, threads, logging).
    Resume {
        dir: PathBuf,
        overrides: Vec<Override>,
    },
}

/// Where a new run's directory goes.
pub enum NewRunDir {
    /// `trainer.runs_dir/<name>-<UTC timestamp>`
    Named(String),
    /// Exactly this directory (created; must not hold a run already).
    At(PathBuf),
}

/// What a finished training reports.
pub struct TrainOutcome {
    pub run: RunDir,
    pub state: TrainState,
    /// Test-set evaluation of the best checkpoint.
    pub test: Evaluation,
}

/// Trains a new or resumed run to its end and scores the best checkpoint on the test set.
pub fn run(start: Start, interrupt: &Interrupt) -> Result<TrainOutcome> {
    let opened = open(start)?;
    let trainer = Trainer::build(opened)?;
    if trainer.is_trained() {
        // Stopped during the final evaluation: only the test is left.
        return trainer.finish();
    }
    trainer.train(interrupt)
}

/// A run ready to train: its config, directory (locked), state, device and data.
struct Opened {
    config: Config,
    run: RunDir,
    state: TrainState,
    _lock: File,
    device: Device,
    data: Splits,
    resumed: bool,
    /// The data's fingerprint, to record where the run has none yet.
    unrecorded: Option<Fingerprint>,
}

/// Checks everything that can fail on bad input, then opens the run. A new run's directory is made only
/// after the config, device and data are known good; a resumed run's files are not touched here at all.
fn open(start: Start) -> Result<Opened> {
    match start {
        Start::New { mut config, dir } => {
            let device = prepare(&mut config)?;
            let data = data::load(&config.data, device)?;
            let fingerprint = data::files::fingerprint(&config.data)?;
            let (run, lock) = create(&config, dir)?;
            Ok(Opened {
                unrecorded: Some(fingerprint),
                state: TrainState::new(&config),
                config,
                run,
                _lock: lock,
                device,
                data,
                resumed: false,
            })
        }
        Start::Resume { dir, overrides } => {
            // Locked before anything else, so a second process gives up at once.
            let run = RunDir::open(&dir)?;
            let lock = run.lock()?;
            let saved = run.config()?;
            let origin = dir.display().to_string();
            let mut config = config::apply(&saved, &overrides, &origin)?;
            config::check_resumable(&saved, &config, &overrides, &origin)?;
            let state = run.state()?.unwrap_or_else(|| TrainState::new(&config));
            let uncommitted = metrics::agreement(&run.file(METRICS_FILE), state.epoch)?;
            if is_trained(&state, &config) && run.test()?.is_some() {
                return Err(UsageError::error(format!(
                    "{} already finished ({:?} after epoch {}); pass --epochs N (or turn early stopping off) to train further",
                    run.path.display(),
                    state.status,
                    state.epoch
                )));
            }
            let device = prepare(&mut config)?;
            let data = data::load(&config.data, device)?;
            let unrecorded = same_data(&run, &config, &saved, state.epoch)?;
            eprintln!(
                "resuming {} after epoch {}",
                run.path.display(),
                state.epoch
            );
            if !uncommitted.is_empty() {
                eprintln!(
                    "note: {METRICS_FILE} has rows of epochs {uncommitted:?} that state.json never committed (a crash before it was saved); they are dropped and trained again"
                );
            }
            Ok(Opened {
                unrecorded,
                config,
                run,
                state,
                _lock: lock,
                device,
                data,
                resumed: true,
            })
        }
    }
}

/// Refuses to continue a run on other data than it trained on; returns the data's fingerprint where the
/// run has none to compare with (a sweep's run before its first session, or one made before it was kept).
fn same_data(
    run: &RunDir,
    config: &Config,
    saved: &Config,
    epoch: usize,
) -> Result<Option<Fingerprint>> {
    match dataset::check(run, &config.data)? {
        dataset::DataCheck::Same => Ok(None),
        dataset::DataCheck::Differs(why) => Err(UsageError::error(format!(
            "{why}: a resumed run trains on the data it started with; put those files back, or set data.dir to where they are"
        ))),
        // Without a fingerprint, only the run's own data directory can hold the data it trained on.
        dataset::DataCheck::Unrecorded(_) if epoch > 0 && config.data.dir != saved.data.dir => {
            Err(UsageError::error(format!(
                "{} recorded no dataset fingerprint, so it can be resumed only on its own data.dir ({})",
                run.path.display(),
                saved.data.dir().display()
            )))
        }
        dataset::DataCheck::Unrecorded(now) => {
            if epoch > 0 {
                eprintln!(
                    "note: {} recorded no dataset fingerprint; recording the data it resumes on",
                    run.path.display()
                );
            }
            Ok(Some(now))
        }
    }
}

/// Threads and device: set once per process. A thread count left to lenet5 is recorded in the config the
/// run saves, so that a resume computes with the same count (LibTorch's sums depend on it).
fn prepare(config: &mut Config) -> Result<Device> {
    config.warn_ineffective("");
    config.trainer.threads = set_threads(config.trainer.threads);
    let device = device::resolve(&config.trainer.device).context("trainer.device")?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(config.trainer.cudnn_benchmark);
    }
    Ok(device)
}

/// LibTorch's intra-op threads: the config's count, or with 0 the cores nothing else is using, chosen once
/// and claimed for the life of the process ([`cpu::Claim`]), so that two trainings started together share
/// the cores instead of spinning against each other.
fn set_threads(configured: usize) -> usize {
    let dir = cpu::claims_dir();
    let (threads, claim) = if configured > 0 {
        (configured, cpu::Claim::register(&dir, configured))
    } else {
        let (threads, claim) = cpu::Claim::auto(&dir);
        let cores = cpu::cores();
        eprintln!(
            "threads: {threads} of {cores} cores (trainer.threads 0: the cores not busy now)"
        );
        (threads, claim)
    };
    // The claim lasts as long as the process: its file stays until another lenet5 finds the process gone.
    std::mem::forget(claim);
    tch::set_num_threads(threads as i32);
    threads
}

/// Creates and locks a new run directory, then writes everything `--resume` needs before the first batch:
/// the config, an empty metrics.csv and the initial state.
fn create(config: &Config, dir: NewRunDir) -> Result<(RunDir, File)> {
    let run = match dir {
        NewRunDir::Named(name) => RunDir::create(&config.trainer.runs_dir, &name)?,
        NewRunDir::At(path) => RunDir::create_at(&path)?,
    };
    let lock = run.lock()?;
    run.write_config(config)?;
    MetricsWriter::create(&run.file(METRICS_FILE))?;
    run.write_state(&TrainState::new(config))?;
    eprintln!("run directory: {}", run.path.display());
    Ok((run, lock))
}

/// A finished run stays finished unless its config now asks for more (more epochs, or no early stop).
fn is_trained(state: &TrainState, config: &Config) -> bool {
    let es = &config.trainer.early_stopping;
    let stops_again = state.epoch >= config.trainer.epochs
        || (es.enabled && state.epochs_without_improvement >= es.patience);
    state.status.is_finished() && stops_again
}

struct Trainer {
    config: Config,
    data: Splits,
    vs: VarStore,
    net: Net,
    opt: Optimizer,
    run: RunDir,
    state: TrainState,
    /// Batches in an epoch over the training split.
    batches: usize,
    /// Where each epoch goes, in order: metrics.csv, layers.csv, TensorBoard, MLflow, checkpoints, console.
    outputs: Vec<Box<dyn Sink>>,
    /// Each layer's health after every epoch (`trainer.layer_health`).
    health: Option<Health>,
    /// Held until the trainer is dropped: no other process trains this run meanwhile.
    _lock: File,
}

impl Trainer {
    /// The model (restored where the run left it) and the run's outputs. A resumed run's files change only
    /// after its checkpoint has loaded.
    fn build(o: Opened) -> Result<Self> {
        let (mut vs, net) = nn::build(&o.config, o.device);
        let mut opt = optim::build(&vs, &o.config.optimizer)?;
        weights::restore(&o.run, &mut vs, &mut opt, o.state.epoch)?;
        if o.resumed {
            o.run.write_config(&o.config)?;
        }
        if let Some(fingerprint) = &o.unrecorded {
            o.run.write_fingerprint(fingerprint)?;
        }
        o.run
            .record_provenance(o.state.epoch, &format!("{:?}", o.device))?;
        let mut outputs: Vec<Box<dyn Sink>> = vec![Box::new(MetricsWriter::resume(
            &o.run.file(METRICS_FILE),
            o.state.epoch,
        )?)];
        let health = (o.config.trainer.layer_health).then(|| Health::new(&vs, &o.data));
        if health.is_some() {
            let layers = RowWriter::<LayerRow>::resume(&o.run.file(LAYERS_FILE), o.state.epoch)?;
            outputs.push(Box::new(layers));
        }
        let batches = epoch::batch_count(o.data.train.len(), o.config.data.batch_size);
        if o.config.trainer.tensorboard {
            let keep = tensorboard::keep_completed(o.state.epoch, batches);
            let mut writer = EventWriter::open(&o.run.path, keep)?;
            if !writer.has_session_start {
                writer.session_start(&o.config)?;
            }
            outputs.push(Box::new(writer));
        }
        if let Some(tracking) = lenet5_lab::mlflow::Tracking::of(&o.config) {
            outputs.push(Box::new(MlflowSink::start(&o.run, tracking)));
        }
        outputs.push(Box::new(Checkpoints {
            run: o.run.clone(),
            save_period: o.config.trainer.save_period,
            monitor: o.config.trainer.early_stopping.monitor,
        }));
        outputs.push(Box::new(Console {
            monitor: o.config.trainer.early_stopping.monitor.name(),
        }));
        Ok(Trainer {
            config: o.config,
            data: o.data,
            vs,
            net,
            opt,
            run: o.run,
            state: o.state,
            batches,
            outputs,
            health,
            _lock: o._lock,
        })
    }

    fn is_trained(&self) -> bool {
        is_trained(&self.state, &self.config)
    }

    fn train(mut self, interrupt: &Interrupt) -> Result<TrainOutcome> {
        if self.data.validation.is_empty() {
            eprintln!(
                "note: data.validation_split is 0, so best checkpoint and early stopping use the training {}",
                self.config.trainer.early_stopping.monitor.name()
            );
        }
        self.state.status = RunStatus::Running;
        while self.state.status == RunStatus::Running
            && self.state.epoch < self.config.trainer.epochs
        {
            self.epoch(self.state.epoch + 1, interrupt)?;
        }
        self.finish()
    }

    /// One epoch: train, validate, update the state, hand the epoch to every output, save the state
    /// (last, so a kill before it trains this epoch again).
    fn epoch(&mut self, epoch: usize, interrupt: &Interrupt) -> Result<()> {
        let lr = self.start_epoch(epoch);
        let started = Instant::now();
        let means = self.train_epoch(epoch, lr, interrupt)?;
        let (val_loss, val_accuracy) = self.validate((means.loss, means.accuracy));
        let row = EpochRow {
            epoch,
            lr,
            loss: means.loss,
            accuracy: means.accuracy,
            val_loss,
            val_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        let (improved, other_improved) = self.update_state(&row);
        let (layers, gradients) = (self.health.as_mut())
            .map_or((vec![], vec![]), |h| h.measure(&self.net, &self.vs, epoch));
        let (weights, optimizer) = (self.weights(), self.opt.state());
        let record = Epoch {
            row,
            planned_epochs: self.config.trainer.epochs,
            objective: means.objective,
            step_losses: &means.step_losses,
            improved,
            other_improved,
            best_epoch: self.state.best_epoch,
            stops_early: (self.state.status == RunStatus::EarlyStopped)
                .then_some(self.state.epochs_without_improvement),
            layers: &layers,
            gradients: &gradients,
            weights: &weights,
            optimizer: optimizer.as_deref(),
        };
        for output in &mut self.outputs {
            output.epoch(&record)?;
        }
        // state.json commits the epoch; its last weights replace the previous epoch's only then.
        self.run.write_state(&self.state)?;
        weights::commit_last(&self.run, epoch)
    }

    /// Sets the epoch's learning rate; a per-batch schedule reports its first batch's.
    fn start_epoch(&mut self, epoch: usize) -> f64 {
        let scheduler = &self.state.scheduler;
        let lr = epoch::batch_lr(&self.config, scheduler, (epoch, self.batches), 0)
            .unwrap_or(scheduler.lr);
        self.opt.set_lr(lr);
        lr
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        lr: f64,
        interrupt: &Interrupt,
    ) -> Result<epoch::Means> {
        let model = (&self.net, &mut self.opt);
        let schedule = &self.state.scheduler;
        match epoch::train_epoch(
            &self.config,
            model,
            schedule,
            &self.data.train,
            epoch,
            interrupt,
        ) {
            EpochEnd::Done(means) => Ok(means),
            EpochEnd::Interrupted { exit_code, batch } => {
                Err(self.interrupted(epoch, batch, exit_code))
            }
            EpochEnd::Diverged { batch } => Err(self.diverged(epoch, batch, lr)),
        }
    }

    /// Validation loss and accuracy; the training numbers stand in when there is no validation split.
    fn validate(&self, train: (f64, f64)) -> (f64, f64) {
        if self.data.validation.is_empty() {
            return train;
        }
        let v = evaluate::evaluate(&self.net, &self.data.validation);
        (v.loss, v.accuracy)
    }

    /// Best epoch, early stopping, the scheduler and the status after `row`'s epoch. Returns whether the
    /// epoch is the new best of the monitored value, and of the other validation metric.
    fn update_state(&mut self, row: &EpochRow) -> (bool, bool) {
        let t = &self.config.trainer;
        let values = match t.early_stopping.monitor {
            Monitor::ValLoss => (row.val_loss, row.val_accuracy),
            Monitor::ValAccuracy => (row.val_accuracy, row.val_loss),
        };
        self.state.record(
            &t.early_stopping,
            (row.epoch, t.epochs),
            values,
            row.seconds,
        )
    }

    /// The model's variables as they stand, by name (no data copied).
    fn weights(&self) -> Vec<(String, tch::Tensor)> {
        let mut weights: Vec<_> = self.vs.variables().into_iter().collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        weights
    }

    /// Every output hears how the run ended.
    fn end(&mut self, end: &End) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.end(end))
    }

    fn interrupted(&mut self, epoch: usize, batch: usize, exit_code: i32) -> anyhow::Error {
        self.state.status = RunStatus::Interrupted;
        let saved = self.end(&End::Interrupted);
        if let Err(e) = saved.and_then(|()| self.run.write_state(&self.state)) {
            return e.context("interrupted, and saving the run's state failed");
        }
        let kept = match epoch - 1 {
            0 => "no epoch had completed".to_string(),
            done => format!(
                "{} holds epoch {done}",
                self.run.file(LAST_WEIGHTS).display()
            ),
        };
        anyhow::Error::new(Interrupted {
            exit_code,
            message: format!(
                "interrupted in epoch {epoch} at batch {batch}; {kept}, and the run trains epoch {epoch} again from its start. Resume with: {} train --resume {}",
                lenet5_lab::command_name(),
                self.run.path.display()
            ),
        })
    }

    fn diverged(&mut self, epoch: usize, batch: usize, lr: f64) -> anyhow::Error {
        self.state.status = RunStatus::Diverged;
        if let Err(e) = self
            .end(&End::Diverged)
            .and_then(|()| self.run.write_state(&self.state))
        {
            return e;
        }
        let best = if self.state.best_epoch > 0 {
            format!(
                "the best checkpoint (epoch {}) is kept in {}",
                self.state.best_epoch,
                self.run.path.display()
            )
        } else {
            "no epoch completed, so there is no checkpoint".to_string()
        };
        anyhow::anyhow!(
            "training diverged: loss is NaN/Inf in epoch {epoch}, batch {batch} (lr {}); try a lower learning rate (e.g. --lr {}); {best}",
            lenet5_lab::number(lr),
            lenet5_lab::number(lr / 10.0)
        )
    }

    /// Scores every checkpoint selection on the test set (`predictions.csv.gz`, then `test.json`, written
    /// last: a run with it is finished), and the best checkpoint on the clean training split
    /// (`train_eval.json`: in eval mode, without distortions or dropout, unlike metrics.csv's running numbers).
    fn finish(mut self) -> Result<TrainOutcome> {
        weights::load(&mut self.vs, &self.run.file(BEST_WEIGHTS))?;
        let train = evaluate::evaluate(&self.net, &self.data.train);
        self.run.write_train_eval(&train)?;
        let monitor = self.config.trainer.early_stopping.monitor;
        let test = scoring::score_selections(
            (&mut self.vs, &self.net),
            &self.run,
            (&self.state, monitor),
            (&self.data.test, Some(&self.data.validation)),
        )?;
        self.end(&End::Tested {
            epoch: self.state.epoch,
            accuracy: test.accuracy,
            loss: test.loss,
        })?;
        Ok(TrainOutcome {
            run: self.run,
            state: self.state,
            test,
        })
    }
}
