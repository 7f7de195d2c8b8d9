//! SGD with momentum, AdamW and RMSprop written out in tensor operations, step for step as LibTorch's
//! `torch::optim` computes them, so that their running state (momentum buffers, moment averages, the step
//! count) is lenet5's to save: LibTorch's own optimizers keep theirs out of reach, and a run resumed with one
//! would restart it from zero. Each is held to LibTorch's optimizer by a test (`tests/schedule.rs`).
//!
//! The parameters are views of one flat buffer (as [`FlatAdam`](crate::nn::FlatAdam)'s), and so is each
//! state buffer: a step is the rule's dozen LibTorch ops once over the whole buffer, not once per
//! parameter tensor (ten in the seed's LeNet-5; AdamW's epoch at one thread 3.2–4.0 → 2.8–3.3 s). The
//! state is saved per parameter, as before.

use crate::nn::fast::flat_adam::{flat_gradient, flatten_parameters};
use lenet5_lab::config::{OptimizerConfig, OptimizerKind};
use std::collections::HashMap;
use tch::{Tensor, nn};

/// The update rule and its coefficients.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Sgd {
        momentum: f64,
        nesterov: bool,
        wd: f64,
    },
    AdamW {
        beta1: f64,
        beta2: f64,
        eps: f64,
        wd: f64,
        amsgrad: bool,
    },
    RmsProp {
        alpha: f64,
        eps: f64,
        wd: f64,
        momentum: f64,
        centered: bool,
    },
}

impl Rule {
    /// The state tensors this rule keeps per parameter, by name.
    fn buffers(&self) -> &'static [&'static str] {
        match self {
            Rule::Sgd { .. } => &["momentum_buffer"],
            Rule::AdamW { amsgrad: false, .. } => &["exp_avg", "exp_avg_sq"],
            Rule::AdamW { amsgrad: true, .. } => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            Rule::RmsProp { .. } => &["square_avg", "momentum_buffer", "grad_avg"],
        }
    }
}

/// An optimizer whose state is in lenet5's hands ([`Stateful::state`], [`Stateful::load_state`]).
pub struct Stateful {
    rule: Rule,
    pub lr: f64,
    params: Vec<Tensor>,
    /// Every parameter's data, each parameter a view of its stretch.
    flat: Tensor,
    /// One zero-initialised buffer laid out as `flat` per name of [`Rule::buffers`].
    state: Vec<Tensor>,
    step: i64,
}

impl Stateful {
    /// The stateful form of `cfg`'s optimizer over `vs`'s trainable variables, or `None` when the optimizer
    /// has no running state (plain SGD) or is Adam (`FlatAdam` owns its state).
    pub fn new(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Option<Self> {
        let wd = cfg.weight_decay;
        let rule = match cfg.kind {
            OptimizerKind::Sgd if cfg.momentum > 0.0 => Rule::Sgd {
                momentum: cfg.momentum,
                nesterov: cfg.nesterov,
                wd,
            },
            OptimizerKind::Adamw => Rule::AdamW {
                beta1: cfg.betas[0],
                beta2: cfg.betas[1],
                eps: cfg.eps,
                wd,
                amsgrad: cfg.amsgrad,
            },
            OptimizerKind::Rmsprop => Rule::RmsProp {
                alpha: cfg.alpha,
                eps: cfg.eps,
                wd,
                momentum: cfg.momentum,
                centered: cfg.centered,
            },
            OptimizerKind::Sgd | OptimizerKind::Adam => return None,
        };
        let (params, flat) = flatten_parameters(vs);
        let state = rule.buffers().iter().map(|_| flat.zeros_like()).collect();
        Some(Self {
            rule,
            lr: cfg.lr,
            params,
            flat,
            state,
            step: 0,
        })
    }

    /// Backward pass from `loss`, then one update of every parameter.
    pub fn backward_step(&mut self, loss: &Tensor) {
        let grads = Tensor::run_backward(&[loss], &self.params, false, false);
        let grad = flat_gradient(&grads);
        self.step += 1;
        tch::no_grad(|| {
            update(
                self.rule,
                self.lr,
                self.step,
                &mut self.flat,
                grad,
                &mut self.state,
            )
        });
    }

    /// Parameter `i`'s stretch of the flat buffer `buffer`, shaped as the parameter.
    fn stretch(&self, buffer: &Tensor, i: usize) -> Tensor {
        let offset: usize = self.params[..i].iter().map(Tensor::numel).sum();
        let p = &self.params[i];
        buffer
            .narrow(0, offset as i64, p.numel() as i64)
            .view(p.size().as_slice())
    }

    /// Every buffer as `{parameter index}.{name}` (copies, not views of the flat buffers), and the step
    /// count, for `--resume`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from_slice(&[self.step]))];
        for i in 0..self.params.len() {
            for (name, buffer) in self.rule.buffers().iter().zip(&self.state) {
                out.push((format!("{i}.{name}"), self.stretch(buffer, i).copy()));
            }
        }
        out
    }

    /// Restores what [`Stateful::state`] returned; names the missing or mis-sized tensor, and then
    /// changes nothing.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
        let step = tensors.get("step").ok_or("missing `step`")?;
        let step = i64::try_from(step).map_err(|e| format!("`step`: {e}"))?;
        let mut restored = vec![];
        for i in 0..self.params.len() {
            let size = self.params[i].size();
            for (b, name) in self.rule.buffers().iter().enumerate() {
                let key = format!("{i}.{name}");
                match tensors.get(&key) {
                    Some(t) if t.size() == size => restored.push((i, b, t)),
                    Some(t) => {
                        return Err(format!(
                            "`{key}` has shape {:?}, expected {size:?}",
                            t.size()
                        ));
                    }
                    None => return Err(format!("missing `{key}`")),
                }
            }
        }
        tch::no_grad(|| {
            for (i, b, t) in restored {
                self.stretch(&self.state[b], i).copy_(t);
            }
        });
        self.step = step;
        Ok(())
    }
}

/// One update of the parameters `p`, here the flat buffer (LibTorch's `sgd.cpp`, `adamw.cpp`,
/// `rmsprop.cpp`, op for op).
fn update(rule: Rule, lr: f64, step: i64, p: &mut Tensor, grad: Tensor, s: &mut [Tensor]) {
    match rule {
        Rule::Sgd {
            momentum,
            nesterov,
            wd,
        } => {
            let d_p = if wd != 0.0 { grad + &*p * wd } else { grad };
            // The buffer starts as the first gradient: μ·0 + d_p, as LibTorch's clone at step 1.
            let _ = s[0].g_mul_scalar_(momentum).g_add_(&d_p);
            let d_p = if nesterov {
                d_p + &s[0] * momentum
            } else {
                s[0].shallow_clone()
            };
            let _ = p.g_add_(&(d_p * -lr));
        }
        Rule::AdamW {
            beta1,
            beta2,
            eps,
            wd,
            amsgrad,
        } => {
            let _ = p.g_mul_scalar_(1.0 - lr * wd);
            let (bias1, bias2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
            let _ = s[0].g_mul_scalar_(beta1).g_add_(&(&grad * (1.0 - beta1)));
            let _ = s[1]
                .g_mul_scalar_(beta2)
                .addcmul_(&(&grad * (1.0 - beta2)), &grad);
            let second = if amsgrad {
                let max = s[2].maximum(&s[1]);
                s[2].copy_(&max);
                max
            } else {
                s[1].shallow_clone()
            };
            let denom = second.sqrt() / bias2.sqrt() + eps;
            let _ = p.addcdiv_(&(&s[0] * (-lr / bias1)), &denom);
        }
        Rule::RmsProp {
            alpha,
            eps,
            wd,
            momentum,
            centered,
        } => {
            let grad = if wd != 0.0 { grad + &*p * wd } else { grad };
            let _ = s[0]
                .g_mul_scalar_(alpha)
                .addcmul_(&(&grad * (1.0 - alpha)), &grad);
            let avg = if centered {
                let _ = s[2].g_mul_scalar_(alpha).g_add_(&(&grad * (1.0 - alpha)));
                (&s[0] - &s[2] * &s[2]).sqrt() + eps
            } else {
                s[0].sqrt() + eps
            };
            if momentum > 0.0 {
                let _ = s[1].g_mul_scalar_(momentum).addcdiv_(&grad, &avg);
                let _ = p.g_add_(&(&s[1] * -lr));
            } else {
                let _ = p.addcdiv_(&(grad * -lr), &avg);
            }
        }
    }
}
