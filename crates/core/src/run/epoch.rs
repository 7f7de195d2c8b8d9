//! One pass over the training split: the hot loop, through LibTorch's autograd on any device. Batches are
//! index-selects of a seeded permutation on the device; per-batch losses go into a device tensor, read by
//! the host only every [`SYNC_EVERY`] batches (to catch a NaN early) and at the end of the epoch.

use crate::data::Split;
use crate::nn::Net;
use crate::nn::loss;
use crate::nn::optim::Optimizer;
use indicatif::{ProgressBar, ProgressStyle};
use lenet5_lab::config::Config;
use lenet5_lab::schedule::LrScheduler;
use lenet5_lab::sys::interrupt::Interrupt;
use tch::nn::ModuleT;
use tch::{Kind, Reduction, Tensor};

/// How often (in batches) the loop reads the losses back to check for NaN/Inf.
pub(super) const SYNC_EVERY: usize = 100;

/// How one pass over the training split ended.
pub(super) enum EpochEnd {
    Done(Totals),
    Interrupted { exit_code: i32, batch: usize },
    Diverged { batch: usize },
}

/// What a completed pass over the training split measured.
pub(super) struct Totals {
    /// Mean training loss — the network's plain objective, without label smoothing or the L1 term, so it
    /// is the quantity validation reports — and accuracy over the epoch.
    pub loss: f64,
    pub accuracy: f64,
    /// The mean objective the optimizer minimised (label smoothing on), where it differs from `loss`.
    pub objective: Option<f64>,
    /// At each sync point, (global batch number, mean loss of the batches since the last one).
    pub step_losses: Vec<(usize, f64)>,
}

/// Batches of one epoch.
pub(super) fn batches(train: &Split, batch_size: usize) -> usize {
    (train.len() as usize).div_ceil(batch_size)
}

/// Trains `net` for epoch `epoch` (1-based) over `train`, in a permutation seeded by `trainer.seed + epoch`
/// (so a resumed run sees the same batches as an uninterrupted one).
pub(super) fn train_epoch(
    config: &Config,
    (net, opt): (&Net, &mut Optimizer),
    schedule: &LrScheduler,
    train: &Split,
    epoch: usize,
    interrupt: &Interrupt,
) -> EpochEnd {
    let (n, batch_size) = (train.len(), config.data.batch_size as i64);
    let batches = batches(train, config.data.batch_size);
    let device = train.labels.device();
    tch::manual_seed((config.trainer.seed + epoch as u64) as i64);
    let order = if config.data.shuffle {
        Tensor::randperm(n, (Kind::Int64, device))
    } else {
        Tensor::arange(n, (Kind::Int64, device))
    };
    let reg = &config.regularization;
    let augment = &config.data.augment;
    let background = crate::data::background(&train.normalization, device);
    let batch_losses = Tensor::zeros([batches as i64], (Kind::Float, device));
    let mut correct = Tensor::zeros([], (Kind::Int64, device));
    let smoothing = reg.label_smoothing;
    let objectives = (smoothing > 0.0).then(|| batch_losses.zeros_like());
    let progress = progress_bar(batches as u64, epoch, config.trainer.epochs);
    let mut step_losses = vec![];
    for b in 0..batches {
        if let Some(exit_code) = interrupt.requested() {
            progress.abandon();
            return EpochEnd::Interrupted {
                exit_code,
                batch: b,
            };
        }
        let step = (epoch - 1) * batches + b;
        if let Some(lr) = schedule.batch_lr(step, config.trainer.epochs * batches) {
            opt.set_lr(lr);
        }
        let start = b as i64 * batch_size;
        let idx = order.narrow(0, start, batch_size.min(n - start));
        let mut xs = train.images.index_select(0, &idx);
        if !augment.is_identity() {
            xs = crate::nn::augment::distort(&xs, augment, &background);
        }
        let ys = train.labels.index_select(0, &idx);
        let logits = net.forward_t(&xs, true);
        let objective = loss::objective(net, &logits, &ys, smoothing, Reduction::Mean);
        let total = if reg.l1 > 0.0 {
            &objective + loss::l1_penalty(net) * reg.l1
        } else {
            objective.shallow_clone()
        };
        opt.backward_step(&total);
        tch::no_grad(|| {
            let b = b as i64;
            match &objectives {
                Some(objectives) => {
                    objectives.get(b).copy_(&objective);
                    let plain = loss::objective(net, &logits, &ys, 0.0, Reduction::Mean);
                    batch_losses.get(b).copy_(&plain);
                }
                None => {
                    batch_losses.get(b).copy_(&objective);
                }
            }
            correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64);
        });
        progress.inc(1);
        if (b + 1).is_multiple_of(SYNC_EVERY) || b + 1 == batches {
            let from = step_losses.len() * SYNC_EVERY;
            match read_window(&batch_losses, from, b + 1) {
                Ok(mean) => step_losses.push((step + 1, mean)),
                Err(bad) => {
                    progress.abandon();
                    return EpochEnd::Diverged { batch: bad };
                }
            }
        }
    }
    progress.finish_and_clear();
    // Mean over images: every batch is full except perhaps the last.
    let last_len = n - (batches as i64 - 1) * batch_size;
    let weights = Tensor::full([batches as i64], batch_size as f64, (Kind::Float, device));
    let _ = weights.get(batches as i64 - 1).fill_(last_len as f64);
    let mean = |losses: &Tensor| {
        f64::try_from((losses * &weights).sum(Kind::Double)).expect("scalar") / n as f64
    };
    let correct = i64::try_from(correct).expect("scalar");
    EpochEnd::Done(Totals {
        loss: mean(&batch_losses),
        accuracy: correct as f64 / n as f64,
        objective: objectives.as_ref().map(mean),
        step_losses,
    })
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
