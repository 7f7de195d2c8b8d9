//! FlatAdam: PyTorch's Adam update (L2 weight decay added to the gradient, optional AMSGrad) on one flat
//! buffer that all parameters are views of, with the same arithmetic (tests/schedule.rs holds it to
//! LibTorch's Adam, on both paths): on the CPU one pass in Rust with denormals flushed, elsewhere a dozen
//! whole-buffer kernel calls per step instead of a dozen per parameter tensor.

use lenet5_lab::config::OptimizerConfig;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// Makes every trainable variable of `vs` a view into one flat buffer; returns the variables and the buffer.
pub(crate) fn flatten_parameters(vs: &nn::VarStore) -> (Vec<Tensor>, Tensor) {
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

/// Per-parameter gradients, in [`flatten_parameters`]' order, as one flat tensor laid out as its buffer.
pub(crate) fn flat_gradient(grads: &[Tensor]) -> Tensor {
    Tensor::cat(&grads.iter().map(|g| g.reshape(-1)).collect::<Vec<_>>(), 0)
}

/// `t`'s elements, read-only. Panics unless `t` is a contiguous CPU tensor of `T`'s kind.
///
/// # Safety
/// The slice aliases `t`'s storage: nothing may write to it (through another view) while the slice lives.
pub(crate) unsafe fn cpu_slice<T: tch::kind::Element>(t: &Tensor) -> &[T] {
    assert!(t.device() == Device::Cpu && t.kind() == T::KIND && t.is_contiguous());
    // SAFETY: a contiguous CPU tensor of T's kind holds numel Ts at data_ptr, alive as long as `t`.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, t.numel()) }
}

/// `t`'s elements, writable; as [`cpu_slice`] for f32.
///
/// # Safety
/// Nothing else may read or write `t`'s storage (through another view) while the slice lives.
unsafe fn cpu_f32_mut(t: &mut Tensor) -> &mut [f32] {
    assert!(t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous());
    // SAFETY: as in `cpu_slice`, and the caller guarantees the access is exclusive.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}

/// Flushes denormal floats to zero on this thread while it lives (x86-64's FTZ and DAZ bits; elsewhere
/// nothing), as `torch.set_flush_denormal(True)` would. Adam's first moment decays by β1 each step once a
/// parameter's gradient stops (a dead ReLU unit's weights), so it spends ~150 steps as a denormal on its way
/// to zero, and each operation on one costs ~100 cycles: without this the pass took ~5× longer.
struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    const FTZ_DAZ: u32 = 0x8040;

    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let mut saved: u32 = 0;
            // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register only.
            unsafe {
                std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack));
                let flushed = saved | Self::FTZ_DAZ;
                std::arch::asm!("ldmxcsr [{}]", in(reg) &flushed, options(nostack));
            }
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the register `new` saved.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack));
        }
    }
}

/// The step's scalars, in f32 as LibTorch's float kernels use them.
struct Coefficients {
    weight_decay: f32,
    eps: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    sqrt_bias_correction2: f32,
    /// -lr / bias_correction1.
    step: f32,
}

/// Adam on one parameter's elements `p` with gradient `g`, moments `m`, `v` and (AMSGRAD) maxima `max`.
#[inline(always)]
fn adam_pass<const AMSGRAD: bool, const DECAY: bool>(
    k: &Coefficients,
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    max: &mut [f32],
    g: &[f32],
) {
    let n = g.len();
    // Equal lengths up front, so the loop carries no bounds checks and vectorises.
    let (p, m, v) = (&mut p[..n], &mut m[..n], &mut v[..n]);
    let max = if AMSGRAD { &mut max[..n] } else { max };
    for i in 0..n {
        let g = if DECAY {
            g[i] + p[i] * k.weight_decay
        } else {
            g[i]
        };
        // lerp(m, g, w) as ATen computes it for a weight below 0.5.
        m[i] += k.one_minus_beta1 * (g - m[i]);
        v[i] = v[i] * k.beta2 + (g * k.one_minus_beta2) * g;
        let second = if AMSGRAD {
            // torch.maximum propagates NaN; f32::max would drop it.
            let larger = if max[i] < v[i] || v[i].is_nan() {
                v[i]
            } else {
                max[i]
            };
            max[i] = larger;
            larger
        } else {
            v[i]
        };
        let denom = second.sqrt() / k.sqrt_bias_correction2 + k.eps;
        p[i] += (m[i] * k.step) / denom;
    }
}

/// PyTorch's Adam (L2 weight decay added to the gradient, optional AMSGrad) over one flat buffer.
///
/// At construction every trainable variable's data becomes a view into `flat`; gradients come from
/// `run_backward` (nothing accumulates in `.grad`, so there is nothing to zero). On the CPU the update is one
/// pass over the buffers in Rust (each of the dozen whole-buffer LibTorch ops it replaces is a pass of its
/// own, with a temporary); elsewhere it is those ops on the concatenated gradient.
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
    /// On the CPU, update in one Rust pass (the default); false runs the LibTorch ops used on other
    /// devices (tests hold both to LibTorch's Adam).
    pub one_pass: bool,
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
            one_pass: true,
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
                // Contiguous: the CPU pass reads the buffers as plain slices.
                Ok(t.to_device(like.device()).to_kind(like.kind()).contiguous())
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
        let grads = Tensor::run_backward(&[loss], &self.params, false, false);
        if self.one_pass && self.flat.device() == Device::Cpu {
            let grads: Vec<Tensor> = grads.iter().map(Tensor::contiguous).collect();
            // SAFETY: fresh gradient tensors of their own, alive until the update returns.
            let slices: Vec<&[f32]> = grads.iter().map(|g| unsafe { cpu_slice(g) }).collect();
            self.step_cpu(&slices);
        } else {
            self.step += 1;
            self.update(flat_gradient(&grads));
        }
    }

    /// The bias corrections of the current step.
    fn bias_corrections(&self) -> (f64, f64) {
        (
            1.0 - self.beta1.powi(self.step),
            1.0 - self.beta2.powi(self.step),
        )
    }

    /// One Adam step on the CPU from gradients computed elsewhere (one slice per trainable
    /// variable, in the var store's order): [`FlatAdam::update`]'s arithmetic, element by element in f32 as
    /// LibTorch's kernels do it, in one pass over each parameter's stretch of the buffers.
    pub fn step_cpu(&mut self, grads: &[&[f32]]) {
        assert_eq!(
            self.flat.device(),
            Device::Cpu,
            "step_cpu updates CPU buffers"
        );
        assert!(
            grads.len() == self.params.len()
                && grads
                    .iter()
                    .zip(&self.params)
                    .all(|(g, p)| g.len() == p.numel()),
            "one gradient per parameter, each of its parameter's size"
        );
        self.step += 1;
        let (bias_correction1, bias_correction2) = self.bias_corrections();
        let k = Coefficients {
            weight_decay: self.weight_decay as f32,
            eps: self.eps as f32,
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            sqrt_bias_correction2: bias_correction2.sqrt() as f32,
            step: (-self.lr / bias_correction1) as f32,
        };
        // SAFETY: the four buffers are distinct tensors that nothing else touches during the step (the
        // parameters are views of `flat`, unused until the next forward pass); the gradients are the
        // caller's slices.
        let (flat, m, v) = unsafe {
            (
                cpu_f32_mut(&mut self.flat),
                cpu_f32_mut(&mut self.exp_avg),
                cpu_f32_mut(&mut self.exp_avg_sq),
            )
        };
        let mut max = self
            .max_exp_avg_sq
            .as_mut()
            .map(|t| unsafe { cpu_f32_mut(t) });
        let _flush = FlushDenormals::new();
        let mut offset = 0;
        for &g in grads {
            let range = offset..offset + g.len();
            let (p, m, v) = (
                &mut flat[range.clone()],
                &mut m[range.clone()],
                &mut v[range.clone()],
            );
            // One loop per case, so that each compiles to straight-line vector code.
            match (&mut max, k.weight_decay != 0.0) {
                (Some(max), true) => adam_pass::<true, true>(&k, p, m, v, &mut max[range], g),
                (Some(max), false) => adam_pass::<true, false>(&k, p, m, v, &mut max[range], g),
                (None, true) => adam_pass::<false, true>(&k, p, m, v, &mut [], g),
                (None, false) => adam_pass::<false, false>(&k, p, m, v, &mut [], g),
            }
            offset += g.len();
        }
    }

    /// One Adam step from the batch's flat gradient, as whole-buffer LibTorch ops (any device).
    fn update(&mut self, mut grad: Tensor) {
        tch::no_grad(|| {
            if self.weight_decay != 0.0 {
                grad += &self.flat * self.weight_decay;
            }
            let (bias_correction1, bias_correction2) = self.bias_corrections();
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
