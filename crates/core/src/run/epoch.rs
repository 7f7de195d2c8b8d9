//! One pass over the training split: the hot loop, through LibTorch's autograd on any device. It reads as
//! batches → step → meter; interrupts, the NaN check and the progress bar are small named pieces around it.
//! Batches are index-selects of a seeded permutation on the device; per-batch losses go into a device
//! tensor, read by the host only every [`SYNC_EVERY`] batches (to catch a NaN early) and at the end.

use crate::data::Split;
use crate::nn::Net;
use crate::nn::loss;
use crate::nn::optim::Optimizer;
use indicatif::{ProgressBar, ProgressStyle};
use lenet5_lab::config::{Config, RegularizationConfig};
use lenet5_lab::schedule::LrScheduler;
use lenet5_lab::sys::interrupt::Interrupt;
use tch::nn::ModuleT;
use tch::{Device, Kind, Reduction, Tensor};

/// How often (in batches) the loop reads the losses back to check for NaN/Inf.
pub(super) const SYNC_EVERY: usize = 100;

/// How one pass over the training split ended.
pub(super) enum EpochEnd {
    Done(Means),
    Interrupted { exit_code: i32, batch: usize },
    Diverged { batch: usize },
}

/// What a completed pass over the training split measured, as means over its images.
pub(super) struct Means {
    /// Mean training loss — the network's plain objective, without label smoothing or the L1 term, so it
    /// is the quantity validation reports — and accuracy over the epoch.
    pub loss: f64,
    pub accuracy: f64,
    /// The mean objective the optimizer minimised (label smoothing on), where it differs from `loss`.
    pub objective: Option<f64>,
    /// At each sync point, (global batch number, mean loss of the batches since the last one).
    pub step_losses: Vec<(usize, f64)>,
}

/// Batches in one epoch over `train_images` images: the one place this is computed.
pub(super) fn batch_count(train_images: i64, batch_size: usize) -> usize {
    (train_images as usize).div_ceil(batch_size)
}

/// The learning rate of batch `b` of `epoch` (1-based, `per_epoch` batches each) under a per-batch schedule
/// (one-cycle); `None` when the schedule changes the rate only between epochs.
pub(super) fn batch_lr(
    config: &Config,
    schedule: &LrScheduler,
    (epoch, per_epoch): (usize, usize),
    b: usize,
) -> Option<f64> {
    schedule.batch_lr(
        (epoch - 1) * per_epoch + b,
        config.trainer.epochs * per_epoch,
    )
}

/// Trains `net` for epoch `epoch` (1-based) over `train`, in a permutation seeded by `trainer.epoch_seed(epoch)`
/// (so a resumed run sees the same batches as an uninterrupted one).
pub(super) fn train_epoch(
    config: &Config,
    (net, opt): (&Net, &mut Optimizer),
    schedule: &LrScheduler,
    train: &Split,
    epoch: usize,
    interrupt: &Interrupt,
) -> EpochEnd {
    let batches = Batches::new(train, config, epoch);
    let device = train.labels.device();
    let background = crate::data::background(&train.normalization, device);
    let reg = &config.regularization;
    let mut meter = Meter::new(batches.count, reg.label_smoothing > 0.0, device);
    let progress = progress_bar(batches.count as u64, epoch, config.trainer.epochs);
    for b in 0..batches.count {
        // Between batches only: a signal never leaves a half-applied step.
        if let Some(exit_code) = interrupt.requested() {
            progress.abandon();
            return EpochEnd::Interrupted {
                exit_code,
                batch: b,
            };
        }
        if let Some(lr) = batch_lr(config, schedule, (epoch, batches.count), b) {
            opt.set_lr(lr);
        }
        let idx = batches.indices(b);
        let mut xs = train.images.index_select(0, &idx);
        if !config.data.augment.is_identity() {
            xs = crate::nn::augment::distort(&xs, &config.data.augment, &background);
        }
        let ys = train.labels.index_select(0, &idx);
        let (logits, objective) = step(net, opt, &xs, &ys, reg);
        meter.record(b, net, &logits, &ys, &objective);
        progress.inc(1);
        // The NaN check reads the losses back: every SYNC_EVERY batches, not every batch.
        if (b + 1).is_multiple_of(SYNC_EVERY) || b + 1 == batches.count {
            let global = (epoch - 1) * batches.count + b + 1;
            if let Err(bad) = meter.sync(b + 1, global) {
                progress.abandon();
                return EpochEnd::Diverged { batch: bad };
            }
        }
    }
    progress.finish_and_clear();
    EpochEnd::Done(meter.means(&batches))
}

/// One optimizer step on a batch: forward, the objective (with label smoothing) plus the L1 penalty,
/// backward, update. Returns the logits and the objective, for the meter.
pub(super) fn step(
    net: &Net,
    opt: &mut Optimizer,
    xs: &Tensor,
    ys: &Tensor,
    reg: &RegularizationConfig,
) -> (Tensor, Tensor) {
    let logits = net.forward_t(xs, true);
    let objective = loss::objective(net, &logits, ys, reg.label_smoothing, Reduction::Mean);
    let total = if reg.l1 > 0.0 {
        &objective + loss::l1_penalty(net) * reg.l1
    } else {
        objective.shallow_clone()
    };
    opt.backward_step(&total);
    (logits, objective)
}

/// An epoch's batches: a seeded permutation of the training split, cut into `batch_size` slices.
struct Batches {
    order: Tensor,
    size: i64,
    images: i64,
    count: usize,
}

impl Batches {
    fn new(train: &Split, config: &Config, epoch: usize) -> Self {
        let (images, device) = (train.len(), train.labels.device());
        tch::manual_seed(config.trainer.epoch_seed(epoch));
        let order = if config.data.shuffle {
            Tensor::randperm(images, (Kind::Int64, device))
        } else {
            Tensor::arange(images, (Kind::Int64, device))
        };
        let size = config.data.batch_size as i64;
        let count = batch_count(images, config.data.batch_size);
        Batches {
            order,
            size,
            images,
            count,
        }
    }

    /// The image indices of batch `b`.
    fn indices(&self, b: usize) -> Tensor {
        let start = b as i64 * self.size;
        self.order
            .narrow(0, start, self.size.min(self.images - start))
    }

    /// Images per batch: every batch is full except perhaps the last.
    fn sizes(&self, device: Device) -> Tensor {
        let sizes = Tensor::full([self.count as i64], self.size as f64, (Kind::Float, device));
        let last = self.images - (self.count as i64 - 1) * self.size;
        let _ = sizes.get(self.count as i64 - 1).fill_(last as f64);
        sizes
    }
}

/// The epoch's running numbers, kept on the device: each batch's loss (and objective, when label smoothing
/// makes them differ) and the count of correct predictions.
struct Meter {
    losses: Tensor,
    objectives: Option<Tensor>,
    correct: Tensor,
    step_losses: Vec<(usize, f64)>,
}

impl Meter {
    fn new(batches: usize, smoothing: bool, device: Device) -> Self {
        let losses = Tensor::zeros([batches as i64], (Kind::Float, device));
        Meter {
            objectives: smoothing.then(|| losses.zeros_like()),
            losses,
            correct: Tensor::zeros([], (Kind::Int64, device)),
            step_losses: vec![],
        }
    }

    fn record(&mut self, b: usize, net: &Net, logits: &Tensor, ys: &Tensor, objective: &Tensor) {
        tch::no_grad(|| {
            let b = b as i64;
            match &self.objectives {
                Some(objectives) => {
                    objectives.get(b).copy_(objective);
                    let plain = loss::objective(net, logits, ys, 0.0, Reduction::Mean);
                    self.losses.get(b).copy_(&plain);
                }
                None => {
                    self.losses.get(b).copy_(objective);
                }
            }
            self.correct += logits.argmax(-1, false).eq_tensor(ys).sum(Kind::Int64);
        });
    }

    /// Reads the losses of the batches since the last sync up to `done`: their mean goes into the step
    /// losses at global batch `global`, or the index of the first non-finite one comes back.
    fn sync(&mut self, done: usize, global: usize) -> Result<(), usize> {
        let from = self.step_losses.len() * SYNC_EVERY;
        let mean = read_window(&self.losses, from, done)?;
        self.step_losses.push((global, mean));
        Ok(())
    }

    fn means(self, batches: &Batches) -> Means {
        let sizes = batches.sizes(self.losses.device());
        let images = batches.images as f64;
        let mean = |losses: &Tensor| {
            f64::try_from((losses * &sizes).sum(Kind::Double)).expect("scalar") / images
        };
        let correct = i64::try_from(&self.correct).expect("scalar");
        Means {
            loss: mean(&self.losses),
            accuracy: correct as f64 / images,
            objective: self.objectives.as_ref().map(mean),
            step_losses: self.step_losses,
        }
    }
}

/// The batch losses `from..to` in one host read: their mean, or the index of the first non-finite one.
fn read_window(values: &Tensor, from: usize, to: usize) -> Result<f64, usize> {
    let window = values
        .narrow(0, from as i64, (to - from) as i64)
        .to_device(tch::Device::Cpu);
    let window: Vec<f32> = Vec::try_from(window).expect("a float vector");
    match window.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(from + i),
        None => Ok(window.iter().map(|&v| f64::from(v)).sum::<f64>() / window.len() as f64),
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
