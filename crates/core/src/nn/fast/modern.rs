//! The modern variant's forward pass, computed faster: the same function as `LeNet5Modern::forward_t` to
//! float rounding, batch-norm statistics included (tests/model.rs holds logits, gradients and running
//! statistics to it).
//!
//! - conv1 runs as its four window positions ([`phase_conv`]); batch norm sees them as a batch of four
//!   maps whose rows are the images', which holds the same values per channel, so its statistics are the
//!   full-size map's.
//! - S2's pool is [`max_of_four`] over those phases instead of max_pool2d, S4's is [`max_pool`]
//!   (oneDNN's on AVX-512); ReLU comes after each pool (it commutes with the maximum), on a quarter of
//!   the values.

use crate::nn::LeNet5Modern;
use crate::nn::fast::lenet5::{max_of_four, max_pool, phase_conv};
use tch::Tensor;

/// `LeNet5Modern::forward_t`.
pub fn forward(net: &LeNet5Modern, xs: &Tensor, train: bool) -> Tensor {
    let n = xs.size()[0];
    let phases = phase_conv(xs, &net.conv1.ws, None, net.conv1_padding);
    let (channels, h, w) = (phases.size()[2], phases.size()[3], phases.size()[4]);
    // Batch norm over [4, channels, n·h, w]: each channel's values are the same set as in the full-size map.
    let normed = phases
        .permute([1, 2, 0, 3, 4])
        .reshape([4, channels, n * h, w])
        .apply_t(&net.bn1, train)
        .view([4, channels, n, h, w])
        .permute([2, 0, 1, 3, 4]);
    let s2 = max_of_four(&normed.unbind(1)).relu();
    let c3 = s2.apply(&net.conv2).apply_t(&net.bn2, train);
    let s4 = max_pool(&c3).relu();
    let xs = s4.flatten(1, -1).dropout(net.dropout, train);
    let f5 = xs.apply(&net.fc1).apply_t(&net.bn3, train).relu();
    let f6 = f5
        .dropout(net.dropout, train)
        .apply(&net.fc2)
        .apply_t(&net.bn4, train)
        .relu();
    f6.dropout(net.dropout, train).apply(&net.fc3)
}
