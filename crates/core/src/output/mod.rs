//! What a run emits as it goes. The training loop hands each completed epoch, and the run's end, to every
//! [`Sink`] in turn — metrics.csv (`lenet5_lab::rundir::metrics`), layers.csv (`lenet5_lab::rundir::layers`), TensorBoard ([`tensorboard`]), MLflow ([`mlflow`]), the console ([`console`]) and
//! the run's checkpoints (`run::checkpoints`) — the way hyperfine hands its results to exporters.

pub mod console;
pub mod mlflow;
pub mod tensorboard;

use anyhow::{Context, Result};
use lenet5_lab::rundir::layers::LayerRow;
use lenet5_lab::rundir::metrics::{EpochRow, MetricsWriter, RowWriter};
use tch::Tensor;

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
    /// This epoch is the new best of the other validation metric (the second checkpoint selection).
    pub other_improved: bool,
    pub best_epoch: usize,
    /// Early stopping ends the run here, after this many epochs without improvement.
    pub stops_early: Option<usize>,
    /// Each layer's health after the epoch (empty with `trainer.layer_health` off).
    pub layers: &'a [LayerRow],
    /// Each weight tensor's gradient of the probe batch's loss, by variable name (empty likewise).
    pub gradients: &'a Tensors,
    /// The model's variables and the optimizer's state after the epoch.
    pub weights: &'a Tensors,
    pub optimizer: Option<&'a Tensors>,
}

/// How a run's training ended.
pub enum End {
    /// Trained to its end; the best checkpoint scored this on the test set after `epoch` epochs.
    Tested {
        epoch: usize,
        accuracy: f64,
        loss: f64,
    },
    /// Stopped by Ctrl-C or SIGTERM in the middle of an epoch. Nothing of the partial epoch is kept: the
    /// run resumes from the last completed epoch's checkpoint and trains the epoch again from its start,
    /// exactly as an uninterrupted run would.
    Interrupted,
    /// The loss became NaN or infinite.
    Diverged,
}

/// One output of a run. Called once per completed epoch, in order, and once at the end.
pub trait Sink {
    fn epoch(&mut self, epoch: &Epoch) -> Result<()>;
    fn end(&mut self, end: &End) -> Result<()>;
}

impl Sink for RowWriter<LayerRow> {
    fn epoch(&mut self, epoch: &Epoch) -> Result<()> {
        self.append(epoch.layers)
            .context("cannot append to layers.csv")
    }

    fn end(&mut self, _end: &End) -> Result<()> {
        Ok(())
    }
}

impl Sink for MetricsWriter {
    fn epoch(&mut self, epoch: &Epoch) -> Result<()> {
        self.append(std::slice::from_ref(&epoch.row))
            .context("cannot append to metrics.csv")
    }

    fn end(&mut self, _end: &End) -> Result<()> {
        Ok(())
    }
}
