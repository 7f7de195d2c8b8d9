//! The 1998 net's forward pass, computed faster: the same function as `LeNet1998::forward_t` to float
//! rounding (tests/lenet1998.rs holds logits and gradients to it).
//!
//! - C1 → S2: the squash sits between them, so they cannot fuse as the seed's conv → average pool does;
//!   C1 runs as its four window positions ([`phase_conv`]), and S2's 2×2 sum is a sum over that
//!   dimension, where LibTorch's avg_pool2d loop (forward and backward) cost about as much as C1.
//! - The squash f(a) = A·tanh(S·a) keeps only its tanh: S goes into the weights and bias that make `a`,
//!   A into the weights that read the squashed maps — scaling a few hundred weights instead of two
//!   passes over every map.
//! - C5 (a 5×5 kernel over 5×5 maps) is a fully connected layer, and runs as one.

use crate::nn::LeNet1998;
use crate::nn::fast::lenet5::phase_conv;
use crate::nn::lenet1998::{SQUASH_BOUND, SQUASH_SLOPE as SLOPE, paper_input, squash};
use tch::{Kind, Tensor};

/// `LeNet1998::forward_t`: the negated RBF penalties.
pub fn forward(net: &LeNet1998, xs: &Tensor) -> Tensor {
    -net.rbf_penalties(&features(net, xs))
}

/// `LeNet1998::features` (F6's squashed output). Each `t` below is a layer's squashed output divided by A.
pub fn features(net: &LeNet1998, xs: &Tensor) -> Tensor {
    let (a, s) = (SQUASH_BOUND, SLOPE);
    let input = paper_input(xs, &net.normalization);
    let c1_bias = net.c1.bs.as_ref().map(|b| b * s);
    let c1_t = phase_conv(&input, &(&net.c1.ws * s), c1_bias.as_ref(), 0).tanh();
    let window_sum = c1_t.sum_dim_intlist([1].as_slice(), false, Kind::Float);
    let s2_t = subsample(&window_sum, &net.s2_coef, &net.s2_bias);
    let c3_ws = &net.c3.ws * &net.c3_mask * (a * s);
    let c3_bias = net.c3.bs.as_ref().map(|b| b * s);
    let c3_t = s2_t
        .conv2d(&c3_ws, c3_bias.as_ref(), [1, 1], [0, 0], [1, 1], 1)
        .tanh();
    // A 2×2 mean, with the 4 that makes it a sum folded into S4's coefficient below.
    let window_mean = c3_t.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
    let s4_t = subsample(&window_mean, &(&net.s4_coef * 4.0), &net.s4_bias);
    let c5_ws = net.c5.ws.flatten(1, -1) * (a * s);
    let c5_bias = net.c5.bs.as_ref().map(|b| b * s);
    let c5_t = s4_t.flatten(1, -1).linear(&c5_ws, c5_bias.as_ref()).tanh();
    squash(&c5_t.linear(&(&net.f6.ws * a), net.f6.bs.as_ref()))
}

/// S2/S4 divided by A, from the window sums of the previous layer's maps divided by A: tanh(S·(coef·A·sum
/// + bias)), as one multiply-add.
fn subsample(sum: &Tensor, coef: &Tensor, bias: &Tensor) -> Tensor {
    let per_map = |t: &Tensor| t.view([1, -1, 1, 1]);
    let scaled_coef = coef * (SQUASH_BOUND * SLOPE);
    per_map(&(bias * SLOPE))
        .addcmul(sum, &per_map(&scaled_coef))
        .tanh()
}
