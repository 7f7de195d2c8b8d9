//! Training a run, new or resumed, through one entry point ([`run`]). The loop reads as the steps of an
//! epoch: train ([`epoch`]) → validate → record (metrics.csv, [`TrainState`]) → save (checkpoints, state)
//! → report → stop or go on. It knows nothing of the model's insides beyond `ModuleT`.

mod epoch;
mod state;

pub use state::{RunStatus, TrainState};

use crate::checkpoint::{self, RunDir};
use crate::config::{self, Config, Monitor, Override};
use crate::cpu_step::CpuStep;
use crate::data::{self, Splits};
use crate::evaluate::{self, Evaluation};
use crate::interrupt::{Interrupt, Interrupted};
use crate::metrics::{EpochRow, MetricsWriter};
use crate::model::{self, Net};
use crate::optim::{self, Optimizer};
use crate::tensorboard::{self, EventWriter};
use crate::{UsageError, device};
use anyhow::{Context, Result};
use epoch::EpochEnd;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;
use tch::nn::VarStore;

/// What to train.
#[expect(clippy::large_enum_variant, reason = "one per process")]
pub enum Start {
    /// A new run of `config` in a new directory.
    New { config: Config, dir: NewRunDir },
    /// Continue the run in `dir` after its last completed epoch, with `overrides` (e.g. more epochs) over
    /// its saved config. Works on any run directory `train` created, whenever it was stopped.
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
    // A resumed run is locked before anything else, so a second process gives up at once.
    let (config, resumed) = match &start {
        Start::New { config, .. } => (config.clone(), None),
        Start::Resume { dir, overrides } => {
            let run = RunDir::open(dir)?;
            let lock = run.lock()?;
            let origin = dir.display().to_string();
            (
                config::apply(&run.config()?, overrides, &origin)?,
                Some((run, lock)),
            )
        }
    };
    // Everything that can fail on bad input is checked before a new run's directory is made.
    let device = prepare(&config)?;
    let data = data::load(&config.data, device)?;
    let (run, state, _lock) = match (start, resumed) {
        (Start::Resume { .. }, Some((run, lock))) => {
            let state = run.state()?.unwrap_or_else(|| TrainState::new(&config));
            eprintln!(
                "resuming {} after epoch {}",
                run.path.display(),
                state.epoch
            );
            (run, state, lock)
        }
        (Start::New { dir, .. }, _) => {
            let run = create(&config, dir)?;
            let lock = run.lock()?;
            (run, TrainState::new(&config), lock)
        }
        (Start::Resume { .. }, None) => unreachable!("opened above"),
    };
    let trained = is_trained(&state, &config);
    if trained && run.test()?.is_some() {
        return Err(UsageError::error(format!(
            "{} already finished ({:?} after epoch {}); pass --epochs N (or turn early stopping off) to train further",
            run.path.display(),
            state.status,
            state.epoch
        )));
    }
    let metrics = MetricsWriter::resume(&run.file(checkpoint::METRICS_FILE), state.epoch)?;
    run.write_config(&config)?;
    let (mut vs, net) = model::build(&config, device);
    let mut opt = optim::build(&vs, &config.optimizer)?;
    run.restore(&mut vs, &mut opt)?;
    let events = if config.trainer.tensorboard {
        let batches = epoch::batches(&data.train, config.data.batch_size);
        let mut writer =
            EventWriter::open(&run.path, tensorboard::keep_completed(state.epoch, batches))?;
        if !writer.has_session_start {
            writer.session_start(&config)?;
        }
        Some(writer)
    } else {
        None
    };
    let cpu_step = CpuStep::new(&config, &net, &opt, device);
    let trainer = Trainer {
        config: &config,
        vs,
        net,
        opt,
        cpu_step,
        run,
        state,
        metrics,
        events,
    };
    if trained {
        // Stopped during the final evaluation: only the test is left.
        return trainer.finish(&data);
    }
    trainer.train(&data, interrupt)
}

/// Threads and device: set once per process.
fn prepare(config: &Config) -> Result<Device> {
    if config.trainer.threads > 0 {
        tch::set_num_threads(config.trainer.threads as i32);
    }
    let device = device::resolve(&config.trainer.device).context("trainer.device")?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(config.trainer.cudnn_benchmark);
    }
    Ok(device)
}

/// Creates a new run directory with everything `--resume` needs before the first batch: the config, an
/// empty metrics.csv and the initial state.
fn create(config: &Config, dir: NewRunDir) -> Result<RunDir> {
    let run = match dir {
        NewRunDir::Named(name) => RunDir::create(&config.trainer.runs_dir, &name)?,
        NewRunDir::At(path) => RunDir::create_at(&path)?,
    };
    run.write_config(config)?;
    MetricsWriter::create(&run.file(checkpoint::METRICS_FILE))?;
    run.write_state(&TrainState::new(config))?;
    eprintln!("run directory: {}", run.path.display());
    Ok(run)
}

/// A finished run stays finished unless its config now asks for more (more epochs, or no early stop).
fn is_trained(state: &TrainState, config: &Config) -> bool {
    let es = &config.trainer.early_stopping;
    let stops_again = state.epoch >= config.trainer.epochs
        || (es.enabled && state.epochs_without_improvement >= es.patience);
    state.status.is_finished() && stops_again
}

struct Trainer<'a> {
    config: &'a Config,
    vs: VarStore,
    net: Net,
    opt: Optimizer,
    /// lenet5's own training step, where it applies ([`CpuStep::new`]).
    cpu_step: Option<CpuStep>,
    run: RunDir,
    state: TrainState,
    metrics: MetricsWriter,
    events: Option<EventWriter>,
}

impl Trainer<'_> {
    fn train(mut self, data: &Splits, interrupt: &Interrupt) -> Result<TrainOutcome> {
        if data.validation.is_empty() {
            eprintln!(
                "note: data.validation_split is 0, so best checkpoint and early stopping use the training {}",
                self.config.trainer.early_stopping.monitor.name()
            );
        }
        self.state.status = RunStatus::Running;
        while self.state.status == RunStatus::Running
            && self.state.epoch < self.config.trainer.epochs
        {
            let epoch = self.state.epoch + 1;
            let lr = self.start_epoch(epoch, data);
            let started = Instant::now();
            let totals = self.train_epoch(data, epoch, lr, interrupt)?;
            let (loss, accuracy) = (totals.loss, totals.accuracy);
            let (val_loss, val_accuracy) = self.validate(data, (loss, accuracy));
            let seconds = started.elapsed().as_secs_f64();
            let row = EpochRow {
                epoch,
                lr,
                loss,
                accuracy,
                val_loss,
                val_accuracy,
                seconds,
            };
            let improved = self.record(&row, &totals.step_losses)?;
            self.save(epoch, improved)?;
            self.report(&row, improved);
        }
        self.finish(data)
    }

    /// Sets the epoch's learning rate; a per-batch schedule reports its first batch's.
    fn start_epoch(&mut self, epoch: usize, data: &Splits) -> f64 {
        let batches = epoch::batches(&data.train, self.config.data.batch_size);
        let scheduler = &self.state.scheduler;
        let lr = scheduler
            .batch_lr((epoch - 1) * batches, self.config.trainer.epochs * batches)
            .unwrap_or(scheduler.lr);
        self.opt.set_lr(lr);
        lr
    }

    fn train_epoch(
        &mut self,
        data: &Splits,
        epoch: usize,
        lr: f64,
        interrupt: &Interrupt,
    ) -> Result<epoch::Totals> {
        let model = (&self.net, &mut self.opt, self.cpu_step.as_mut());
        match epoch::train_epoch(
            self.config,
            model,
            &self.state.scheduler,
            &data.train,
            epoch,
            interrupt,
        ) {
            EpochEnd::Done(totals) => Ok(totals),
            EpochEnd::Interrupted { exit_code, batch } => {
                Err(self.interrupted(epoch, batch, exit_code))
            }
            EpochEnd::Diverged { batch } => Err(self.diverged(epoch, batch, lr)),
        }
    }

    /// Validation loss and accuracy; the training numbers stand in when there is no validation split.
    fn validate(&self, data: &Splits, train: (f64, f64)) -> (f64, f64) {
        if data.validation.is_empty() {
            return train;
        }
        let v = evaluate::evaluate(&self.net, &data.validation);
        (v.loss, v.accuracy)
    }

    /// Appends the epoch to metrics.csv and the event file, and updates the state. Returns whether the
    /// epoch is the new best. (Both files may get an epoch the state does not: a resumed run drops it.)
    fn record(&mut self, row: &EpochRow, step_losses: &[(usize, f64)]) -> Result<bool> {
        self.metrics
            .append(row)
            .context("cannot append to metrics.csv")?;
        if let Some(events) = &mut self.events {
            for &(step, loss) in step_losses {
                events.scalars(step as i64, &[(tensorboard::STEP_LOSS_TAG, loss)])?;
            }
            let scalars = [
                ("loss/train", row.loss),
                ("loss/valid", row.val_loss),
                ("accuracy/train", row.accuracy),
                ("accuracy/valid", row.val_accuracy),
                ("lr", row.lr),
                ("epoch_seconds", row.seconds),
            ];
            events.scalars(row.epoch as i64, &scalars)?;
        }
        let t = &self.config.trainer;
        let monitored = match t.early_stopping.monitor {
            Monitor::ValLoss => row.val_loss,
            Monitor::ValAccuracy => row.val_accuracy,
        };
        let epochs = (row.epoch, t.epochs);
        Ok(self
            .state
            .record(&t.early_stopping, epochs, monitored, row.seconds))
    }

    /// Best, last and periodic checkpoints, then the state that points at them (written last, so a kill in
    /// between trains this epoch again).
    fn save(&self, epoch: usize, improved: bool) -> Result<()> {
        if improved {
            self.run.save_weights(&self.vs, checkpoint::BEST_WEIGHTS)?;
        }
        self.run.save_last(&self.vs, &self.opt)?;
        let period = self.config.trainer.save_period;
        if period > 0 && epoch.is_multiple_of(period) {
            self.run
                .save_weights(&self.vs, &format!("epoch-{epoch}.safetensors"))?;
        }
        self.run.write_state(&self.state)
    }

    fn report(&self, r: &EpochRow, improved: bool) {
        println!(
            "epoch {:>3}/{}  lr {:.2e}  loss {:.4}  acc {:.2}%  val_loss {:.4}  val_acc {:.2}%  {:.1}s{}",
            r.epoch,
            self.config.trainer.epochs,
            r.lr,
            r.loss,
            100.0 * r.accuracy,
            r.val_loss,
            100.0 * r.val_accuracy,
            r.seconds,
            if improved { "  *best" } else { "" }
        );
        if self.state.status == RunStatus::EarlyStopped {
            println!(
                "early stopping: no {} improvement for {} epochs; best epoch {}",
                self.config.trainer.early_stopping.monitor.name(),
                self.state.epochs_without_improvement,
                self.state.best_epoch
            );
        }
    }

    fn interrupted(&mut self, epoch: usize, batch: usize, exit_code: i32) -> anyhow::Error {
        self.state.status = RunStatus::Interrupted;
        let saved = self.run.save_last(&self.vs, &self.opt);
        if let Err(e) = saved.and_then(|()| self.run.write_state(&self.state)) {
            return e.context("interrupted, and saving the last checkpoint failed");
        }
        anyhow::Error::new(Interrupted {
            exit_code,
            message: format!(
                "interrupted in epoch {epoch} at batch {batch}; weights saved to {}. Resume with: lenet5 train --resume {}",
                self.run.file(checkpoint::LAST_WEIGHTS).display(),
                self.run.path.display()
            ),
        })
    }

    fn diverged(&mut self, epoch: usize, batch: usize, lr: f64) -> anyhow::Error {
        self.state.status = RunStatus::Diverged;
        if let Some(Err(e)) = self
            .events
            .as_mut()
            .map(|e| e.session_end(tensorboard::FAILURE))
        {
            return e;
        }
        if let Err(e) = self.run.write_state(&self.state) {
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
            "training diverged: loss is NaN/Inf in epoch {epoch}, batch {batch} (lr {lr}); try a lower learning rate (e.g. --lr {}); {best}",
            lr / 10.0
        )
    }

    /// Scores the best checkpoint on the test set and writes `test.json`.
    fn finish(mut self, data: &Splits) -> Result<TrainOutcome> {
        checkpoint::load_weights(&mut self.vs, &self.run.file(checkpoint::BEST_WEIGHTS))?;
        let test = evaluate::evaluate(&self.net, &data.test);
        self.run.write_test(&test)?;
        if let Some(events) = &mut self.events {
            let scalars = [("accuracy/test", test.accuracy), ("loss/test", test.loss)];
            events.scalars(self.state.epoch as i64, &scalars)?;
            events.session_end(tensorboard::SUCCESS)?;
        }
        Ok(TrainOutcome {
            run: self.run,
            state: self.state,
            test,
        })
    }
}
