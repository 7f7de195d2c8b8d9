//! A trained net as TorchScript, traced by LibTorch itself (`torch::jit::tracer`, through tch's
//! `CModule::create_by_tracing`): the normalisation and the eval-mode forward pass, with the weights as the
//! graph's constants.
//!
//! Each net is traced in its plain form (`Net::forward_plain`), not the speed form that trains: the speed
//! forms reshape by the batch size, which tracing would fix; the plain forms keep the batch free (both
//! are held equal by tests/model.rs and tests/lenet1998.rs).

use crate::data::{Normalization, Shape, per_channel};
use crate::nn::Net;
use anyhow::{Context, Result};
use tch::{CModule, Device, Kind, Tensor};

/// The batch size of the example the trace runs on; the traced graph takes any.
const EXAMPLE_BATCH: i64 = 2;

/// `net` (on `device`) traced on raw pixels of `shape` images normalised by `norm`, its method `forward`
/// taking `[N, C, H, W]` pixels in [0, 1] to `[N, 10]` logits.
pub fn module(net: &Net, shape: Shape, norm: &Normalization, device: Device) -> Result<CModule> {
    let example = Tensor::rand(
        [EXAMPLE_BATCH, shape.channels, shape.side, shape.side],
        (Kind::Float, device),
    );
    // `data::normalize`'s constants, made before the trace: one made inside it would be recorded as the
    // zeros it starts as, without the values copied in.
    let (mean, std) = (
        per_channel(norm.mean, device),
        per_channel(norm.std, device),
    );
    let mut forward = |inputs: &[Tensor]| {
        let xs = (&inputs[0] - &mean) / &std;
        vec![tch::no_grad(|| net.forward_plain(&xs, false))]
    };
    let mut module = CModule::create_by_tracing("lenet5", "forward", &[example], &mut forward)
        .context("LibTorch could not trace the network")?;
    module.f_set_eval()?;
    Ok(module)
}
