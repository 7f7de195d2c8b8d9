//! The 1998 net's forward pass, computed faster: the same function as `LeNet1998::forward_t` to float
//! rounding (tests/lenet1998.rs holds logits and gradients to it).
//!
//! - C1 → S2: the squash sits between them, so they cannot fuse as the seed's conv → average pool does;
//!   C1 runs as its four window positions ([`phase_conv`]), and S2's 2×2 sum is a sum over that
//!   dimension, where LibTorch's avg_pool2d loop (forward and backward) cost about as much as C1.
//! - The squash f(a) = A·tanh(S·a) runs as a sigmoid: tanh(S·a) = 2σ(2S·a) − 1, and LibTorch's CPU tanh
//!   (MKL's high-accuracy vsTanh) costs six times its sigmoid per element. The constants 2S, 2A and −A go
//!   into the weights and biases that make and read each map — a few hundred multiplies instead of passes
//!   over every map.
//! - C5 (a 5×5 kernel over 5×5 maps) is a fully connected layer, and runs as one.

use crate::nn::LeNet1998;
use crate::nn::fast::lenet5::{phase_conv, reading};
use crate::nn::lenet1998::{SQUASH_BOUND as A, SQUASH_SLOPE, paper_input, squash};
use tch::{Kind, Tensor};

/// 2S: a layer's sigmoid reads twice the slope its tanh would.
const K: f64 = 2.0 * SQUASH_SLOPE;

/// `LeNet1998::forward_t`: the negated RBF penalties.
pub fn forward(net: &LeNet1998, xs: &Tensor) -> Tensor {
    -net.rbf_penalties(&features(net, xs))
}

/// `LeNet1998::features` (F6's squashed output). Each `sig` below is σ(2S·a) of a layer's input sums
/// `a`; the layer's squashed output is A·(2σ − 1), which the next layer reads through its weights.
pub fn features(net: &LeNet1998, xs: &Tensor) -> Tensor {
    let input = paper_input(xs, &net.normalization);
    let c1_bias = net.c1.bs.as_ref().map(|b| b * K);
    let c1_sig = phase_conv(&input, &(&net.c1.ws * K), c1_bias.as_ref(), 0).sigmoid();
    let window_sum = c1_sig.sum_dim_intlist([1].as_slice(), false, Kind::Float);
    let s2_sig = subsample(&window_sum, &net.s2_coef, &net.s2_bias);
    let (c3_ws, c3_bias) = reading(
        &(&net.c3.ws * &net.c3_mask),
        net.c3.bs.as_ref(),
        &[1, 2, 3],
        A,
    );
    let c3_sig = s2_sig
        .conv2d(&(c3_ws * K), Some(c3_bias * K), [1, 1], [0, 0], [1, 1], 1)
        .sigmoid();
    let window_sum = c3_sig.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, 1);
    let s4_sig = subsample(&window_sum, &net.s4_coef, &net.s4_bias);
    let (c5_ws, c5_bias) = reading(&net.c5.ws.flatten(1, -1), net.c5.bs.as_ref(), &[1], A);
    let c5_sig = s4_sig
        .flatten(1, -1)
        .linear(&(c5_ws * K), Some(c5_bias * K))
        .sigmoid();
    let (f6_ws, f6_bias) = reading(&net.f6.ws, net.f6.bs.as_ref(), &[1], A);
    squash(&c5_sig.linear(&f6_ws, Some(f6_bias)))
}

/// S2/S4's σ from the window sums of the previous layer's σ: the squashed maps' sum is 2A·sum − 4A, so
/// a = coef·2A·sum + bias − 4A·coef, one multiply-add before the sigmoid.
fn subsample(sum: &Tensor, coef: &Tensor, bias: &Tensor) -> Tensor {
    let per_map = |t: &Tensor| t.view([1, -1, 1, 1]);
    let shifted_bias = (bias - coef * (4.0 * A)) * K;
    per_map(&shifted_bias)
        .addcmul(sum, &per_map(&(coef * (2.0 * A * K))))
        .sigmoid()
}
