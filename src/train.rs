//! The training loop: epochs over the on-device training split, validation, early stopping, the LR schedule,
//! divergence and interrupt handling, and the checkpoint/metrics calls after every epoch. Knows nothing of
//! the model's insides beyond `ModuleT` and its weight list (for L1).
//!
//! The hot loop never waits for the device: batches are index-selects of a seeded permutation, per-batch
//! losses go into a device tensor, and the host reads it only every [`SYNC_EVERY`] batches (to catch a
//! NaN early) and at the end of the epoch.

use crate::checkpoint::{self, RunDir, RunStatus, TrainState};
use crate::config::{Config, EarlyStoppingConfig, Monitor};
use crate::data::{self, Mnist, Split};
use crate::evaluate::{self, Evaluation};
use crate::interrupt::{Interrupt, Interrupted};
use crate::metrics::{EpochRow, MetricsWriter};
use crate::model::{self, Net};
use crate::optim::{self, LrScheduler};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// How often (in batches) the loop reads the losses back to check for NaN/Inf.
pub const SYNC_EVERY: usize = 100;

/// What a finished `train` reports.
pub struct TrainOutcome {
    pub run: RunDir,
    pub state: TrainState,
    /// Test-set evaluation of the best checkpoint.
    pub test: Evaluation,
}

/// Where a new run's directory goes.
pub enum NewRun {
    /// `runs_dir/<name>-<UTC timestamp>`
    Named(String),
    /// Exactly this directory (created; must not hold a run already).
    At(std::path::PathBuf),
}

/// Starts a new run.
pub fn train(config: &Config, new_run: &NewRun, interrupt: &Interrupt) -> Result<TrainOutcome> {
    // Everything that can fail on bad input is checked before the run directory is made.
    let device = prepare(config)?;
    let data = data::load(&config.data, device)?;
    let run = match new_run {
        NewRun::Named(name) => RunDir::create(&config.trainer.runs_dir, name)?,
        NewRun::At(path) => RunDir::create_at(path)?,
    };
    run.write_config(config)?;
    let metrics = MetricsWriter::create(&run.file(checkpoint::METRICS_FILE))?;
    let state = initial_state(config);
    eprintln!("run directory: {}", run.path.display());
    Trainer::new(config, device, run, state, metrics, None)?.run(&data, interrupt)
}

/// Continues the run in `run_dir` from its last completed epoch; `overrides` (e.g. more epochs) are applied
/// over its saved config.
pub fn resume(
    run_dir: &std::path::Path,
    overrides: &[String],
    interrupt: &Interrupt,
) -> Result<TrainOutcome> {
    let run = RunDir::open(run_dir)?;
    let config = crate::config::apply_overrides(run.config()?, overrides)?;
    config
        .validate()
        .map_err(|e| crate::UsageError::new(format!("{}: {e}", run_dir.display())))?;
    let mut state = run.state()?;
    if state.status.is_finished() && state.epoch >= config.trainer.epochs {
        bail!(crate::UsageError(format!(
            "{} already finished ({:?} after epoch {}); pass --epochs N to train further",
            run.path.display(),
            state.status,
            state.epoch
        )));
    }
    let device = prepare(&config)?;
    let data = data::load(&config.data, device)?;
    run.write_config(&config)?;
    let metrics = MetricsWriter::resume(&run.file(checkpoint::METRICS_FILE), state.epoch)?;
    state.status = RunStatus::Running;
    eprintln!(
        "resuming {} after epoch {}",
        run.path.display(),
        state.epoch
    );
    let weights = run.file(checkpoint::LAST_WEIGHTS);
    Trainer::new(&config, device, run, state, metrics, Some(&weights))?.run(&data, interrupt)
}

/// Threads and device: set once per process.
fn prepare(config: &Config) -> Result<Device> {
    if config.trainer.threads > 0 {
        tch::set_num_threads(config.trainer.threads as i32);
    }
    let device = crate::device::resolve(&config.trainer.device).context("trainer.device")?;
    if device.is_cuda() {
        // Input shapes are fixed (but for the last batch), so cuDNN's autotuner pays off after one step.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    Ok(device)
}

/// Builds the model on `device`, seeded by `seed`.
pub fn build_model(config: &Config, device: Device) -> (nn::VarStore, Net) {
    tch::manual_seed(config.trainer.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = model::build_for(&vs.root(), &config.model, config.data.dataset);
    (vs, net)
}

struct Trainer<'a> {
    config: &'a Config,
    vs: nn::VarStore,
    net: Net,
    opt: optim::Optimizer,
    run: RunDir,
    state: TrainState,
    metrics: MetricsWriter,
}

/// How one pass over the training split ended.
enum EpochEnd {
    Done { loss: f64, accuracy: f64 },
    Interrupted { exit_code: i32, batch: usize },
    Diverged { batch: usize },
}

impl<'a> Trainer<'a> {
    fn new(
        config: &'a Config,
        device: Device,
        run: RunDir,
        state: TrainState,
        metrics: MetricsWriter,
        weights: Option<&std::path::Path>,
    ) -> Result<Self> {
        let (mut vs, net) = build_model(config, device);
        if let Some(path) = weights {
            checkpoint::load_weights(&mut vs, path)?;
        }
        let mut opt = optim::build(&vs, &config.optimizer)?;
        if weights.is_some() {
            match run.load_tensors(checkpoint::OPTIMIZER_STATE)? {
                Some(tensors) => opt.load_state(&tensors).map_err(|e| {
                    crate::UsageError::new(format!(
                        "{}: {e}",
                        run.file(checkpoint::OPTIMIZER_STATE).display()
                    ))
                })?,
                None if opt.state().is_some() => {
                    eprintln!(
                        "note: no {} in the run; the optimizer restarts from zero state",
                        checkpoint::OPTIMIZER_STATE
                    )
                }
                None => {}
            }
        }
        Ok(Self {
            config,
            vs,
            net,
            opt,
            run,
            state,
            metrics,
        })
    }

    fn run(mut self, data: &Mnist, interrupt: &Interrupt) -> Result<TrainOutcome> {
        let t = &self.config.trainer;
        let monitor = t.early_stopping.monitor;
        if data.validation.is_empty() {
            eprintln!(
                "note: data.validation_split is 0, so best checkpoint and early stopping use the training {}",
                monitor.name()
            );
        }
        let batches = (data.train.len() as usize).div_ceil(self.config.data.batch_size);
        while self.state.epoch < t.epochs {
            let epoch = self.state.epoch + 1;
            // A per-batch schedule reports the lr of the epoch's first batch.
            let lr = (self.state.scheduler)
                .batch_lr((epoch - 1) * batches, t.epochs * batches)
                .unwrap_or(self.state.scheduler.lr);
            self.opt.set_lr(lr);
            let started = Instant::now();
            let (loss, accuracy) = match self.train_epoch(&data.train, epoch, interrupt) {
                EpochEnd::Done { loss, accuracy } => (loss, accuracy),
                EpochEnd::Interrupted { exit_code, batch } => {
                    return Err(self.interrupted(epoch, batch, exit_code));
                }
                EpochEnd::Diverged { batch } => return Err(self.diverged(epoch, batch, lr)),
            };
            let (val_loss, val_accuracy) = if data.validation.is_empty() {
                (loss, accuracy)
            } else {
                let v = evaluate::evaluate(&self.net, &data.validation);
                (v.loss, v.accuracy)
            };
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
            self.metrics
                .append(&row)
                .context("cannot append to metrics.csv")?;
            let monitored = match monitor {
                Monitor::ValLoss => val_loss,
                Monitor::ValAccuracy => val_accuracy,
            };
            let improved = record_epoch(
                &mut self.state,
                &t.early_stopping,
                epoch,
                monitored,
                seconds,
            );
            if improved {
                self.run.save_weights(&self.vs, checkpoint::BEST_WEIGHTS)?;
            }
            self.save_last()?;
            if t.save_period > 0 && epoch % t.save_period == 0 {
                self.run
                    .save_weights(&self.vs, &format!("epoch-{epoch}.safetensors"))?;
            }
            let stop = should_stop(&self.state, &t.early_stopping);
            if stop {
                self.state.status = RunStatus::EarlyStopped;
            } else if epoch == t.epochs {
                self.state.status = RunStatus::Completed;
            }
            self.run.write_state(&self.state)?;
            println!("{}", summary_line(&row, t.epochs, improved));
            if stop {
                println!(
                    "early stopping: no {} improvement for {} epochs; best epoch {}",
                    monitor.name(),
                    self.state.epochs_without_improvement,
                    self.state.best_epoch
                );
                break;
            }
        }
        self.finish(data)
    }

    /// One pass over `train` in a permutation seeded by `trainer.seed + epoch` (so a resumed run sees the
    /// same batches as an uninterrupted one).
    fn train_epoch(&mut self, train: &Split, epoch: usize, interrupt: &Interrupt) -> EpochEnd {
        let n = train.len();
        let batch_size = self.config.data.batch_size as i64;
        let batches = ((n + batch_size - 1) / batch_size) as usize;
        let device = train.labels.device();
        tch::manual_seed((self.config.trainer.seed + epoch as u64) as i64);
        let order = if self.config.data.shuffle {
            Tensor::randperm(n, (Kind::Int64, device))
        } else {
            Tensor::arange(n, (Kind::Int64, device))
        };
        let l1 = self.config.regularization.l1;
        let smoothing = self.config.regularization.label_smoothing;
        let augment = &self.config.data.augment;
        // Background (raw pixel 0) after per-channel standardisation.
        let (mean, std) = self.config.data.dataset.mean_std();
        let background = crate::data::standardise(
            &Tensor::zeros([1, mean.len() as i64, 1, 1], (Kind::Float, device)),
            mean,
            std,
        );
        let batch_losses = Tensor::zeros([batches as i64], (Kind::Float, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let progress = progress_bar(batches as u64, epoch, self.config.trainer.epochs);
        for b in 0..batches {
            if let Some(exit_code) = interrupt.requested() {
                progress.abandon();
                return EpochEnd::Interrupted {
                    exit_code,
                    batch: b,
                };
            }
            let step = (epoch - 1) * batches + b;
            if let Some(lr) =
                (self.state.scheduler).batch_lr(step, self.config.trainer.epochs * batches)
            {
                self.opt.set_lr(lr);
            }
            let start = b as i64 * batch_size;
            let idx = order.narrow(0, start, batch_size.min(n - start));
            let mut xs = train.images.index_select(0, &idx);
            if !augment.is_identity() {
                xs = crate::augment::distort_over(&xs, augment, background.shallow_clone());
            }
            let ys = train.labels.index_select(0, &idx);
            let logits = self.net.forward_t(&xs, true);
            let data_loss = self.net.loss(&logits, &ys, smoothing, tch::Reduction::Mean);
            let loss = if l1 > 0.0 {
                &data_loss + l1_penalty(&self.net) * l1
            } else {
                data_loss.shallow_clone()
            };
            self.opt.backward_step(&loss);
            tch::no_grad(|| {
                batch_losses.get(b as i64).copy_(&data_loss);
                correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64);
            });
            progress.inc(1);
            if (b + 1) % SYNC_EVERY == 0 || b + 1 == batches {
                if let Some(bad) = first_non_finite(&batch_losses, b + 1) {
                    progress.abandon();
                    return EpochEnd::Diverged { batch: bad };
                }
            }
        }
        progress.finish_and_clear();
        // Mean over images: every batch is full except perhaps the last.
        let last_len = n - (batches as i64 - 1) * batch_size;
        let weights = Tensor::full([batches as i64], batch_size as f64, (Kind::Float, device));
        let _ = weights.get(batches as i64 - 1).fill_(last_len as f64);
        let loss =
            f64::try_from((batch_losses * weights).sum(Kind::Double)).expect("scalar") / n as f64;
        let accuracy = i64::try_from(correct).expect("scalar") as f64 / n as f64;
        EpochEnd::Done { loss, accuracy }
    }

    /// `last.safetensors` and, where lenet5 owns it, the optimizer state that goes with it.
    fn save_last(&self) -> Result<()> {
        self.run.save_weights(&self.vs, checkpoint::LAST_WEIGHTS)?;
        if let Some(state) = self.opt.state() {
            self.run.save_tensors(&state, checkpoint::OPTIMIZER_STATE)?;
        }
        Ok(())
    }

    fn interrupted(&mut self, epoch: usize, batch: usize, exit_code: i32) -> anyhow::Error {
        let saved = self.save_last();
        self.state.status = RunStatus::Interrupted;
        let state_saved = self.run.write_state(&self.state);
        if let Err(e) = saved.and(state_saved) {
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
    fn finish(mut self, data: &Mnist) -> Result<TrainOutcome> {
        checkpoint::load_weights(&mut self.vs, &self.run.file(checkpoint::BEST_WEIGHTS))?;
        let test = evaluate::evaluate(&self.net, &data.test);
        self.run.write_test(&test)?;
        Ok(TrainOutcome {
            run: self.run,
            state: self.state,
            test,
        })
    }
}

/// Updates best/early-stopping/scheduler state after `epoch` with its monitored value. Returns whether it
/// is the new best. Ties are not improvements (the earlier epoch stays best), and neither is a gain of
/// `min_delta` or less.
pub fn record_epoch(
    s: &mut TrainState,
    es: &EarlyStoppingConfig,
    epoch: usize,
    monitored: f64,
    seconds: f64,
) -> bool {
    let improved = s
        .best_value
        .is_none_or(|best| es.monitor.improves(monitored, best, es.min_delta));
    if improved {
        s.best_value = Some(monitored);
        s.best_epoch = epoch;
        s.epochs_without_improvement = 0;
    } else {
        s.epochs_without_improvement += 1;
    }
    s.scheduler.step(epoch, monitored);
    s.epoch = epoch;
    s.train_seconds += seconds;
    improved
}

/// Early stopping: `patience` epochs in a row without improvement.
pub fn should_stop(s: &TrainState, es: &EarlyStoppingConfig) -> bool {
    es.enabled && s.epochs_without_improvement >= es.patience
}

/// A fresh state before epoch 1.
pub fn initial_state(config: &Config) -> TrainState {
    TrainState {
        epoch: 0,
        best_epoch: 0,
        best_value: None,
        epochs_without_improvement: 0,
        scheduler: LrScheduler::new(&config.lr_scheduler, config.optimizer.lr),
        status: RunStatus::Running,
        train_seconds: 0.0,
    }
}

/// λ-free L1 term: Σ|w| over the model's weight tensors.
pub fn l1_penalty(net: &Net) -> Tensor {
    net.weights()
        .iter()
        .map(|w| w.abs().sum(Kind::Float))
        .reduce(|a, b| a + b)
        .expect("five weights")
}

/// Index of the first non-finite value among the first `len` entries (one host read).
fn first_non_finite(values: &Tensor, len: usize) -> Option<usize> {
    let bad = values
        .narrow(0, 0, len as i64)
        .isfinite()
        .logical_not()
        .nonzero();
    if bad.size()[0] == 0 {
        None
    } else {
        Some(i64::try_from(bad.get(0).get(0)).expect("index") as usize)
    }
}

fn progress_bar(batches: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(batches);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

fn summary_line(r: &EpochRow, epochs: usize, best: bool) -> String {
    format!(
        "epoch {:>3}/{epochs}  lr {:.2e}  loss {:.4}  acc {:.2}%  val_loss {:.4}  val_acc {:.2}%  {:.1}s{}",
        r.epoch,
        r.lr,
        r.loss,
        100.0 * r.accuracy,
        r.val_loss,
        100.0 * r.val_accuracy,
        r.seconds,
        if best { "  *best" } else { "" }
    )
}
