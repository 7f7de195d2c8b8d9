//! Optimizers from LibTorch (through tch) and the learning-rate schedules tch lacks, implemented on
//! `set_lr` and stepped once per epoch like PyTorch's StepLR, CosineAnnealingLR and ReduceLROnPlateau.

use crate::config::{LrSchedulerConfig, OptimizerConfig, OptimizerKind, SchedulerKind};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig as _};

/// Builds the configured optimizer over every trainable variable of `vs`.
pub fn build(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Result<nn::Optimizer> {
    let [beta1, beta2] = cfg.betas;
    let (wd, eps) = (cfg.weight_decay, cfg.eps);
    let opt = match cfg.kind {
        OptimizerKind::Sgd => {
            nn::Sgd { momentum: cfg.momentum, dampening: 0.0, wd, nesterov: cfg.nesterov }.build(vs, cfg.lr)
        }
        OptimizerKind::Adam => nn::Adam { beta1, beta2, wd, eps, amsgrad: cfg.amsgrad }.build(vs, cfg.lr),
        OptimizerKind::Adamw => nn::AdamW { beta1, beta2, wd, eps, amsgrad: cfg.amsgrad }.build(vs, cfg.lr),
        OptimizerKind::Rmsprop => {
            nn::RmsProp { alpha: cfg.alpha, eps, wd, momentum: cfg.momentum, centered: cfg.centered }
                .build(vs, cfg.lr)
        }
    };
    Ok(opt?)
}

/// A per-epoch learning-rate schedule. Serialisable, so `--resume` continues where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrScheduler {
    pub cfg: LrSchedulerConfig,
    pub base_lr: f64,
    /// Learning rate of the current (next) epoch.
    pub lr: f64,
    /// Plateau only: best monitored value so far and epochs since it.
    pub best: Option<f64>,
    pub bad_epochs: usize,
}

impl LrScheduler {
    pub fn new(cfg: &LrSchedulerConfig, base_lr: f64) -> Self {
        Self { cfg: cfg.clone(), base_lr, lr: base_lr, best: None, bad_epochs: 0 }
    }

    /// Called after epoch `epoch` (1-based) with its monitored value; sets `self.lr` for epoch `epoch + 1`.
    pub fn step(&mut self, epoch: usize, monitored: f64) {
        let c = &self.cfg;
        self.lr = match c.kind {
            SchedulerKind::None => self.base_lr,
            // PyTorch StepLR: lr = base · γ^⌊e/step_size⌋ for 0-based epoch e.
            SchedulerKind::Step => self.base_lr * c.gamma.powi((epoch / c.step_size) as i32),
            // PyTorch CosineAnnealingLR's closed form.
            SchedulerKind::Cosine => {
                let progress = std::f64::consts::PI * epoch as f64 / c.t_max as f64;
                c.eta_min + (self.base_lr - c.eta_min) * (1.0 + progress.cos()) / 2.0
            }
            // PyTorch ReduceLROnPlateau with threshold 0: any strict improvement resets the count.
            SchedulerKind::Plateau => {
                if self.best.is_none_or(|best| c.monitor.improves(monitored, best, 0.0)) {
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
}
