//! The run's checkpoints as one of its outputs: after every epoch the best weights (when the epoch improved
//! on the monitored value; and the other validation metric's best, test.json's second selection), the last weights with the optimizer state that goes with them, and every
//! `trainer.save_period` epochs a numbered copy; nothing of an interrupted epoch. The training state that
//! points at them is written after all outputs, by the loop, and only then do the last weights replace the
//! previous epoch's (`weights::commit_last`).

use crate::output::{End, Epoch, Sink};
use crate::run::weights;
use anyhow::Result;
use lenet5_lab::config::Monitor;
use lenet5_lab::rundir::dir::{self, BEST_WEIGHTS, RunDir};

/// Writes a run's `.safetensors` files.
pub struct Checkpoints {
    pub run: RunDir,
    /// Keep `epoch-N.safetensors` every this many epochs (0: never).
    pub save_period: usize,
    /// What `best.safetensors` follows.
    pub monitor: Monitor,
}

impl Sink for Checkpoints {
    fn epoch(&mut self, e: &Epoch) -> Result<()> {
        if e.improved {
            weights::save(&self.run, e.weights, BEST_WEIGHTS)?;
        }
        if e.other_improved {
            let name = dir::other_best_weights(self.monitor);
            weights::save(&self.run, e.weights, name)?;
        }
        let epoch = e.row.epoch;
        weights::save_last(&self.run, e.weights, e.optimizer, epoch)?;
        if self.save_period > 0 && epoch.is_multiple_of(self.save_period) {
            weights::save(&self.run, e.weights, &format!("epoch-{epoch}.safetensors"))?;
        }
        Ok(())
    }

    /// Nothing to save at the end: an interrupted epoch is trained again on resume, from the last
    /// completed epoch's checkpoint, so a resumed run equals an uninterrupted one.
    fn end(&mut self, _end: &End) -> Result<()> {
        Ok(())
    }
}
