//! The optimizers, as the config names them. SGD, AdamW and RMSprop are LibTorch's own (through tch). Adam —
//! the seed's optimizer — is PyTorch's Adam computed faster ([`FlatAdam`], a speed form in `nn::fast`, held
//! to LibTorch's Adam by a test).

pub use super::fast::flat_adam::FlatAdam;
use anyhow::Result;
use lenet5_lab::config::{OptimizerConfig, OptimizerKind};
use tch::Tensor;
use tch::nn::{self, OptimizerConfig as _};

/// The optimizer a run trains with.
pub enum Optimizer {
    Torch(nn::Optimizer),
    FlatAdam(FlatAdam),
}

impl Optimizer {
    /// Backward pass from `loss`, then one update of every trainable variable.
    pub fn backward_step(&mut self, loss: &Tensor) {
        match self {
            Optimizer::Torch(opt) => opt.backward_step(loss),
            Optimizer::FlatAdam(opt) => opt.backward_step(loss),
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Torch(opt) => opt.set_lr(lr),
            Optimizer::FlatAdam(opt) => opt.lr = lr,
        }
    }

    /// The optimizer's internal state as named tensors, where lenet5 owns it (FlatAdam); LibTorch's
    /// optimizers keep theirs out of reach, so `None`.
    pub fn state(&self) -> Option<Vec<(String, Tensor)>> {
        match self {
            Optimizer::Torch(_) => None,
            Optimizer::FlatAdam(opt) => Some(opt.state()),
        }
    }

    /// Restores what [`Optimizer::state`] returned. Errors name the missing or mis-sized tensor.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> std::result::Result<(), String> {
        match self {
            Optimizer::Torch(_) => Ok(()),
            Optimizer::FlatAdam(opt) => opt.load_state(tensors),
        }
    }
}

/// Whether the configured optimizer keeps state between steps that lenet5 cannot save (LibTorch's own keep
/// theirs out of reach): SGD with momentum, AdamW, RMSprop. A run resumed with one restarts that state from
/// zero, so it does not equal the uninterrupted run.
pub fn state_is_lost_on_resume(cfg: &OptimizerConfig) -> bool {
    match cfg.kind {
        OptimizerKind::Adam => false,
        OptimizerKind::Sgd => cfg.momentum > 0.0,
        OptimizerKind::Adamw | OptimizerKind::Rmsprop => true,
    }
}

/// Builds the configured optimizer over every trainable variable of `vs`.
pub fn build(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Result<Optimizer> {
    let [beta1, beta2] = cfg.betas;
    let (wd, eps) = (cfg.weight_decay, cfg.eps);
    let torch = match cfg.kind {
        OptimizerKind::Adam => return Ok(Optimizer::FlatAdam(FlatAdam::new(vs, cfg))),
        OptimizerKind::Sgd => nn::Sgd {
            momentum: cfg.momentum,
            dampening: 0.0,
            wd,
            nesterov: cfg.nesterov,
        }
        .build(vs, cfg.lr),
        OptimizerKind::Adamw => nn::AdamW {
            beta1,
            beta2,
            wd,
            eps,
            amsgrad: cfg.amsgrad,
        }
        .build(vs, cfg.lr),
        OptimizerKind::Rmsprop => nn::RmsProp {
            alpha: cfg.alpha,
            eps,
            wd,
            momentum: cfg.momentum,
            centered: cfg.centered,
        }
        .build(vs, cfg.lr),
    };
    Ok(Optimizer::Torch(torch?))
}
