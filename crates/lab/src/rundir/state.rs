//! Where a run stands between epochs — last epoch, best epoch and value, early-stopping count, the LR
//! schedule's position, status — and the rules that update it after each epoch. Saved as `state.json`.

use crate::config::{Config, EarlyStoppingConfig};
use crate::schedule::LrScheduler;
use serde::{Deserialize, Serialize};

/// Where a run stands; saved before the first batch and after every epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Last completed epoch (1-based); 0 before the first.
    pub epoch: usize,
    pub best_epoch: usize,
    /// Best monitored value so far (`None` before the first epoch).
    pub best_value: Option<f64>,
    /// Epochs since `best_epoch` without an improvement larger than `min_delta`.
    pub epochs_without_improvement: usize,
    /// The best epoch and value of the validation metric the monitor does not watch (the second checkpoint
    /// selection); `None` before the first epoch, and in a run resumed from before it was kept.
    #[serde(default)]
    pub other_best: Option<(usize, f64)>,
    pub scheduler: LrScheduler,
    pub status: RunStatus,
    /// Wall time of all completed epochs, seconds.
    pub train_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Interrupted,
    Diverged,
    EarlyStopped,
    Completed,
}

impl RunStatus {
    /// Trained to its end (all epochs, or stopped early by the rule).
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::EarlyStopped | RunStatus::Completed)
    }
}

impl TrainState {
    /// A fresh state before epoch 1.
    pub fn new(config: &Config) -> Self {
        TrainState {
            epoch: 0,
            best_epoch: 0,
            best_value: None,
            epochs_without_improvement: 0,
            other_best: None,
            scheduler: LrScheduler::new(
                &config.lr_scheduler,
                config.optimizer.lr,
                config.trainer.epochs,
            ),
            status: RunStatus::Running,
            train_seconds: 0.0,
        }
    }

    /// Trained as far as `config` asks: finished, and at its last epoch or stopped by the early-stopping
    /// rule (a run whose config now asks for more epochs is not).
    pub fn is_trained(&self, config: &Config) -> bool {
        let es = &config.trainer.early_stopping;
        let stops_again = self.epoch >= config.trainer.epochs
            || (es.enabled && self.epochs_without_improvement >= es.patience);
        self.status.is_finished() && stops_again
    }

    /// Updates best/early-stopping/scheduler state and the status after `epoch` of `epochs` with its
    /// monitored value and the other validation metric's. Returns whether it is the new best of each. Ties
    /// are not improvements (the earlier epoch stays best), and neither is a gain of `min_delta` or less
    /// (for the other metric: any gain).
    pub fn record(
        &mut self,
        es: &EarlyStoppingConfig,
        (epoch, epochs): (usize, usize),
        (monitored, other): (f64, f64),
        seconds: f64,
    ) -> (bool, bool) {
        // A run resumed from a state that did not keep it cannot know its best: it keeps none.
        let other_improved = match self.other_best {
            None => epoch == 1,
            Some((_, best)) => es.monitor.other().improves(other, best, 0.0),
        };
        if other_improved {
            self.other_best = Some((epoch, other));
        }
        let improved = self
            .best_value
            .is_none_or(|best| es.monitor.improves(monitored, best, es.min_delta));
        if improved {
            self.best_value = Some(monitored);
            self.best_epoch = epoch;
            self.epochs_without_improvement = 0;
        } else {
            self.epochs_without_improvement += 1;
        }
        // The plateau scheduler watches lr_scheduler.monitor, which need not be early stopping's.
        let watched = match self.scheduler.cfg.monitor == es.monitor {
            true => monitored,
            false => other,
        };
        self.scheduler.step(epoch, watched);
        self.epoch = epoch;
        self.train_seconds += seconds;
        self.status = if es.enabled && self.epochs_without_improvement >= es.patience {
            RunStatus::EarlyStopped
        } else if epoch >= epochs {
            RunStatus::Completed
        } else {
            RunStatus::Running
        };
        (improved, other_improved)
    }
}
