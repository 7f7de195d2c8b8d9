//! The optimizers, as the config names them. Plain SGD is LibTorch's own (through tch); SGD with momentum,
//! AdamW and RMSprop are LibTorch's rules written out so that their state can be saved ([`Stateful`]). Adam —
//! the seed's optimizer — is PyTorch's Adam computed faster ([`FlatAdam`], a speed form in `nn::fast`). Each
//! is held to LibTorch's own by a test.

pub use super::fast::flat_adam::FlatAdam;
pub use super::stateful::Stateful;
use anyhow::Result;
use lenet5_lab::config::{OptimizerConfig, OptimizerKind};
use tch::Tensor;
use tch::nn::{self, OptimizerConfig as _};

/// The optimizer a run trains with.
pub enum Optimizer {
    Torch(nn::Optimizer),
    FlatAdam(FlatAdam),
    Stateful(Stateful),
}

impl Optimizer {
    /// Backward pass from `loss`, then one update of every trainable variable.
    pub fn backward_step(&mut self, loss: &Tensor) {
        match self {
            Optimizer::Torch(opt) => opt.backward_step(loss),
            Optimizer::FlatAdam(opt) => opt.backward_step(loss),
            Optimizer::Stateful(opt) => opt.backward_step(loss),
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Torch(opt) => opt.set_lr(lr),
            Optimizer::FlatAdam(opt) => opt.lr = lr,
            Optimizer::Stateful(opt) => opt.lr = lr,
        }
    }

    /// The optimizer's internal state as named tensors; `None` for plain SGD, which has none.
    pub fn state(&self) -> Option<Vec<(String, Tensor)>> {
        match self {
            Optimizer::Torch(_) => None,
            Optimizer::FlatAdam(opt) => Some(opt.state()),
            Optimizer::Stateful(opt) => Some(opt.state()),
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
            Optimizer::Stateful(opt) => opt.load_state(tensors),
        }
    }
}

/// Builds the configured optimizer over every trainable variable of `vs`.
pub fn build(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Result<Optimizer> {
    if let Some(opt) = Stateful::new(vs, cfg) {
        return Ok(Optimizer::Stateful(opt));
    }
    build_torch(vs, cfg)
}

/// LibTorch's own form of the configured optimizer (Adam: [`FlatAdam`]); the stateful ones' reference.
pub fn build_torch(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Result<Optimizer> {
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
