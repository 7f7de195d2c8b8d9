//! What a run emits as it goes. The training loop hands each completed epoch, and the run's end, to every
//! [`Sink`] in turn — metrics.csv ([`csv`]), TensorBoard ([`tensorboard`]), the console ([`console`]) and
//! the run's checkpoints (`run::checkpoints`) — the way hyperfine hands its results to exporters. Charts
//! ([`chart`]) render finished runs and studies.

pub mod chart;
pub mod console;
pub mod csv;
pub mod tensorboard;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// One epoch's numbers, as metrics.csv holds them. `loss` and `val_loss` are the same quantity — the
/// network's plain objective (cross-entropy, without label smoothing or the L1 term) — on the training
/// batches (averaged while the weights change) and on the validation split. `lr` is the learning rate used
/// during the epoch, `seconds` its wall time (training and validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

/// A named set of tensors as it stands now (shallow copies: no data is copied).
pub type Tensors = [(String, Tensor)];

/// A completed epoch, as every output sees it.
pub struct Epoch<'a> {
    pub row: EpochRow,
    /// The epochs the run is configured for.
    pub planned_epochs: usize,
    /// The mean training objective when it differs from `row.loss` (label smoothing): what the optimizer
    /// minimised.
    pub objective: Option<f64>,
    /// At each of the loop's sync points, (global batch number, mean loss of the batches since the last one).
    pub step_losses: &'a [(usize, f64)],
    /// This epoch is the new best of the monitored value.
    pub improved: bool,
    pub best_epoch: usize,
    /// Early stopping ends the run here, after this many epochs without improvement.
    pub stops_early: Option<usize>,
    /// The model's variables and the optimizer's state after the epoch.
    pub weights: &'a Tensors,
    pub optimizer: Option<&'a Tensors>,
}

/// How a run's training ended.
pub enum End<'a> {
    /// Trained to its end; the best checkpoint scored this on the test set after `epoch` epochs.
    Tested {
        epoch: usize,
        accuracy: f64,
        loss: f64,
    },
    /// Stopped by Ctrl-C or SIGTERM in the middle of an epoch; the model as it stands.
    Interrupted {
        weights: &'a Tensors,
        optimizer: Option<&'a Tensors>,
    },
    /// The loss became NaN or infinite.
    Diverged,
}

/// One output of a run. Called once per completed epoch, in order, and once at the end.
pub trait Sink {
    fn epoch(&mut self, epoch: &Epoch) -> Result<()>;
    fn end(&mut self, end: &End) -> Result<()>;
}
