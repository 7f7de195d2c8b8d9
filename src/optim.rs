//! The optimizers. SGD, AdamW and RMSprop are LibTorch's own (through tch). Adam — the seed's optimizer — is [`FlatAdam`]: PyTorch's Adam
//! update on one flat buffer that all parameters are views of, a dozen kernel calls per step instead of a
//! dozen per parameter tensor, with the same arithmetic (a test holds it to LibTorch's Adam).

use crate::config::{OptimizerConfig, OptimizerKind};
use anyhow::Result;
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

/// Makes every trainable variable of `vs` a view into one flat buffer; returns the variables and the buffer.
fn flatten_parameters(vs: &nn::VarStore) -> (Vec<Tensor>, Tensor) {
    let mut params = vs.trainable_variables();
    let flat = Tensor::cat(
        &params
            .iter()
            .map(|p| p.detach().flatten(0, -1))
            .collect::<Vec<_>>(),
        0,
    );
    let mut offset = 0;
    tch::no_grad(|| {
        for p in params.iter_mut() {
            let n = p.numel() as i64;
            p.set_data(&flat.narrow(0, offset, n).view(p.size().as_slice()));
            offset += n;
        }
    });
    (params, flat)
}

/// The gradients of `loss` with respect to `params`, concatenated into one flat tensor.
fn flat_gradient(loss: &Tensor, params: &[Tensor]) -> Tensor {
    let grads = Tensor::run_backward(&[loss], params, false, false);
    Tensor::cat(&grads.iter().map(|g| g.view(-1)).collect::<Vec<_>>(), 0)
}

/// PyTorch's Adam (L2 weight decay added to the gradient, optional AMSGrad) over one flat buffer.
///
/// At construction every trainable variable's data becomes a view into `flat`, so the update is a handful
/// of whole-buffer ops; gradients come from `run_backward` (nothing accumulates in `.grad`, so there is
/// nothing to zero) and are concatenated once per step.
pub struct FlatAdam {
    params: Vec<Tensor>,
    flat: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Option<Tensor>,
    step: i32,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl FlatAdam {
    pub fn new(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Self {
        let (params, flat) = flatten_parameters(vs);
        let zeros = || flat.zeros_like();
        Self {
            params,
            exp_avg: zeros(),
            exp_avg_sq: zeros(),
            max_exp_avg_sq: cfg.amsgrad.then(zeros),
            flat,
            step: 0,
            lr: cfg.lr,
            beta1: cfg.betas[0],
            beta2: cfg.betas[1],
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
        }
    }

    /// Moments, AMSGrad maxima and the step count, for `--resume`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![
            ("exp_avg".to_string(), self.exp_avg.shallow_clone()),
            ("exp_avg_sq".to_string(), self.exp_avg_sq.shallow_clone()),
            ("step".to_string(), Tensor::from_slice(&[self.step as i64])),
        ];
        if let Some(max) = &self.max_exp_avg_sq {
            state.push(("max_exp_avg_sq".to_string(), max.shallow_clone()));
        }
        state
    }

    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> std::result::Result<(), String> {
        let get = |name: &str, like: &Tensor| match tensors.get(name) {
            Some(t) if t.size() == like.size() => {
                Ok(t.to_device(like.device()).to_kind(like.kind()))
            }
            Some(t) => Err(format!(
                "`{name}` has shape {:?}, expected {:?}",
                t.size(),
                like.size()
            )),
            None => Err(format!("missing `{name}`")),
        };
        let exp_avg = get("exp_avg", &self.exp_avg)?;
        let exp_avg_sq = get("exp_avg_sq", &self.exp_avg_sq)?;
        let max = match &self.max_exp_avg_sq {
            Some(max) => Some(get("max_exp_avg_sq", max)?),
            None => None,
        };
        let step = tensors.get("step").ok_or("missing `step`")?;
        self.step = i64::try_from(step).map_err(|e| format!("`step`: {e}"))? as i32;
        (self.exp_avg, self.exp_avg_sq, self.max_exp_avg_sq) = (exp_avg, exp_avg_sq, max);
        Ok(())
    }

    pub fn backward_step(&mut self, loss: &Tensor) {
        let mut grad = flat_gradient(loss, &self.params);
        tch::no_grad(|| {
            self.step += 1;
            if self.weight_decay != 0.0 {
                grad += &self.flat * self.weight_decay;
            }
            let bias_correction1 = 1.0 - self.beta1.powi(self.step);
            let bias_correction2 = 1.0 - self.beta2.powi(self.step);
            let _ = self.exp_avg.lerp_(&grad, 1.0 - self.beta1);
            let _ = self
                .exp_avg_sq
                .g_mul_scalar_(self.beta2)
                .addcmul_(&(&grad * (1.0 - self.beta2)), &grad);
            let second = match &self.max_exp_avg_sq {
                Some(max) => self.exp_avg_sq.maximum_out(max, max),
                None => self.exp_avg_sq.shallow_clone(),
            };
            let denom = second.sqrt() / bias_correction2.sqrt() + self.eps;
            let _ = self
                .flat
                .addcdiv_(&(&self.exp_avg * (-self.lr / bias_correction1)), &denom);
        });
    }
}
