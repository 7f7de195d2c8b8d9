//! Learning-rate schedules tch lacks, applied through `set_lr`: stepped once per epoch like PyTorch's StepLR,
//! CosineAnnealingLR, LinearLR and ReduceLROnPlateau, plus the 1998 paper's piecewise schedule; or every
//! batch like PyTorch's OneCycleLR. The state is serialisable, so `--resume` continues where it stopped.

use crate::config::{LrSchedulerConfig, SchedulerKind};
use serde::{Deserialize, Serialize};

/// A learning-rate schedule and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrScheduler {
    pub cfg: LrSchedulerConfig,
    pub base_lr: f64,
    /// Learning rate of the current (next) epoch.
    pub lr: f64,
    /// Plateau only: best monitored value so far and epochs since it.
    pub best: Option<f64>,
    pub bad_epochs: usize,
    /// Cosine and linear: the epochs annealed over, `t_max` resolved against the run's epochs when the
    /// run started (0 in states saved before it was recorded: `t_max` was a number then).
    #[serde(default)]
    pub horizon: usize,
}

impl LrScheduler {
    /// The schedule of a run of `epochs` epochs at `base_lr`, before its first epoch.
    pub fn new(cfg: &LrSchedulerConfig, base_lr: f64, epochs: usize) -> Self {
        let lr = piecewise_lr(cfg, 1).unwrap_or(base_lr);
        Self {
            cfg: cfg.clone(),
            base_lr,
            lr,
            best: None,
            bad_epochs: 0,
            horizon: cfg.t_max.epochs(epochs),
        }
    }

    /// The epochs a cosine or linear schedule anneals over (at least 1).
    fn horizon(&self) -> usize {
        match self.horizon {
            0 => self.cfg.t_max.epochs(1),
            h => h,
        }
        .max(1)
    }

    /// Called after epoch `epoch` (1-based) with its monitored value; sets `self.lr` for epoch `epoch + 1`.
    pub fn step(&mut self, epoch: usize, monitored: f64) {
        let c = &self.cfg;
        self.lr = match c.kind {
            // One-cycle sets the lr every batch ([`LrScheduler::batch_lr`]).
            SchedulerKind::None | SchedulerKind::Onecycle => self.base_lr,
            SchedulerKind::Piecewise => piecewise_lr(c, epoch + 1).unwrap_or(self.base_lr),
            // PyTorch StepLR: lr = base · γ^⌊e/step_size⌋ for 0-based epoch e.
            SchedulerKind::Step => self.base_lr * c.gamma.powi((epoch / c.step_size) as i32),
            // PyTorch CosineAnnealingLR's closed form.
            SchedulerKind::Cosine => {
                let progress = std::f64::consts::PI * epoch as f64 / self.horizon() as f64;
                c.eta_min + (self.base_lr - c.eta_min) * (1.0 + progress.cos()) / 2.0
            }
            // PyTorch LinearLR(start_factor=1, end_factor=eta_min/lr, total_iters=horizon): a straight
            // line to eta_min, held there after the horizon.
            SchedulerKind::Linear => {
                let done = epoch.min(self.horizon()) as f64 / self.horizon() as f64;
                self.base_lr + (c.eta_min - self.base_lr) * done
            }
            // PyTorch ReduceLROnPlateau with threshold 0: any strict improvement resets the count.
            SchedulerKind::Plateau => {
                if self
                    .best
                    .is_none_or(|best| c.monitor.improves(monitored, best, 0.0))
                {
                    self.best = Some(monitored);
                    self.bad_epochs = 0;
                } else {
                    self.bad_epochs += 1;
                }
                if self.bad_epochs > c.patience {
                    self.bad_epochs = 0;
                    self.lr * c.factor
                } else {
                    self.lr
                }
            }
        };
    }

    /// One-cycle only: the lr of 0-based batch `step` out of `total` in the whole run. PyTorch's OneCycleLR
    /// with cosine annealing (learning rate only; Adam's β₁ is not cycled).
    pub fn batch_lr(&self, step: usize, total: usize) -> Option<f64> {
        if self.cfg.kind != SchedulerKind::Onecycle {
            return None;
        }
        let c = &self.cfg;
        let initial = self.base_lr / c.div_factor;
        let min = initial / c.final_div_factor;
        let warm_end = c.pct_start * total as f64 - 1.0;
        let last = total as f64 - 1.0;
        let step = step as f64;
        let anneal = |from: f64, to: f64, pct: f64| {
            to + (from - to) / 2.0 * ((std::f64::consts::PI * pct.clamp(0.0, 1.0)).cos() + 1.0)
        };
        Some(if warm_end >= 0.0 && step <= warm_end {
            // warm_end is 0 when the warm-up is a single batch (PyTorch divides by zero there).
            let pct = if warm_end > 0.0 { step / warm_end } else { 1.0 };
            anneal(initial, self.base_lr, pct)
        } else {
            anneal(self.base_lr, min, (step - warm_end) / (last - warm_end))
        })
    }
}

/// The piecewise schedule's lr for 1-based `epoch` (None for other schedules).
fn piecewise_lr(cfg: &LrSchedulerConfig, epoch: usize) -> Option<f64> {
    if cfg.kind != SchedulerKind::Piecewise {
        return None;
    }
    let mut end = 0;
    for &(epochs, lr) in &cfg.piecewise {
        end += epochs;
        if epoch <= end {
            return Some(lr);
        }
    }
    cfg.piecewise.last().map(|&(_, lr)| lr)
}
