//! LeNet-5's conv → 2×2 pool pairs, computed faster. Average pooling: both are linear, so the pair is one
//! stride-2 convolution with a `(k+1)×(k+1)` kernel — the same function to float rounding with 2.8× fewer
//! multiply-adds. Max pooling: the four positions of each 2×2 window as four stride-2 convolutions in one
//! (the kernel shifted four ways, as output channels), then the largest of the four — no cheaper in
//! multiply-adds, but LibTorch's convolution and max over a dimension beat its full-size convolution and
//! max_pool2d (18% a training step, results/bench/xeon-2026-12-04-maxpool-forms.txt). tests/model.rs holds
//! both, logits and gradients, to the plain chain. [`forward`] is `LeNet5::forward_t` with them.

use crate::nn::LeNet5;
use lenet5_lab::config::Pooling;
use tch::Tensor;
use tch::nn;

/// `LeNet5::forward_t`, each conv → pool pair computed by [`conv_pool`].
pub fn forward(net: &LeNet5, xs: &Tensor) -> Tensor {
    let xs = net.act(conv_pool(net, &net.conv1, xs, net.conv1_padding)); // C1 → S2
    let xs = net.act(conv_pool(net, &net.conv2, &xs, 0)); // C3 → S4
    let xs = net.act(xs.flatten(1, -1).apply(&net.fc1));
    let xs = net.act(xs.apply(&net.fc2));
    xs.apply(&net.fc3)
}

/// conv → 2×2 pool, the seed's `pool(conv(x))`, as [`fused_conv_avg_pool`] or [`phased_conv_max_pool`].
pub fn conv_pool(net: &LeNet5, conv: &nn::Conv2D, xs: &Tensor, padding: i64) -> Tensor {
    match net.pooling {
        Pooling::Avg => fused_conv_avg_pool(conv, xs, padding),
        Pooling::Max => phased_conv_max_pool(conv, xs, padding),
    }
}

/// `conv` then 2×2 max pooling with stride 2. Output pixel (i, j) of the full-size convolution at window
/// position (a, b) is output (i, j) of a stride-2 convolution with the `k×k` kernel placed at offset (a, b) of
/// a `(k+1)×(k+1)` one ([`phase_kernels`]); the four are computed as one convolution with 4× the output
/// channels, and the pool is their maximum. The values equal max_pool2d's to rounding; where rounding breaks
/// a tie another way, the gradient lands on another of the tied positions, which see equal patches (MNIST's
/// flat background), so the weights' gradient agrees (tests/model.rs).
pub fn phased_conv_max_pool(conv: &nn::Conv2D, xs: &Tensor, padding: i64) -> Tensor {
    let out = conv.ws.size()[0];
    let bias = conv.bs.as_ref().map(|b| b.repeat([4]));
    let ys = stride2_conv(xs, &phase_kernels(&conv.ws), bias.as_ref(), padding);
    let (n, h, w) = (ys.size()[0], ys.size()[2], ys.size()[3]);
    ys.view([n, 4, out, h, w]).max_dim(1, false).0
}

/// `[O, I, k, k]` → `[4·O, I, k+1, k+1]`: block p = 2a + b holds the kernel shifted down a and right b
/// (zeros elsewhere). Differentiable, so gradients reach the `k×k` weights.
pub fn phase_kernels(w: &Tensor) -> Tensor {
    let shifted: Vec<Tensor> = [(0, 0), (0, 1), (1, 0), (1, 1)]
        .iter()
        .map(|&(a, b)| w.constant_pad_nd([b, 1 - b, a, 1 - a]))
        .collect();
    Tensor::cat(&shifted, 0)
}

/// `conv` then 2×2 average pooling with stride 2, as one stride-2 convolution: both are linear, so the pair
/// is a convolution whose `(k+1)×(k+1)` kernel is the `k×k` one smeared by the 2×2 mean ([`pooled_kernel`]).
/// The same function to float rounding with 2.8× fewer multiply-adds; the weights stay 5×5.
pub fn fused_conv_avg_pool(conv: &nn::Conv2D, xs: &Tensor, padding: i64) -> Tensor {
    stride2_conv(xs, &pooled_kernel(&conv.ws), conv.bs.as_ref(), padding)
}

/// A stride-2 convolution with an even `[O, I, 2m, 2m]` kernel. Where the input needs a gradient (conv2 in
/// training) it is computed as a stride-1 m×m convolution over the space-to-depth input (each 2×2 block of
/// pixels becomes 4 channels; the kernel is rearranged to match): the same sums in another order, but
/// oneDNN's backward pass to a stride-1 convolution's input is much cheaper than to a strided one's (one
/// training epoch: 1.33 s → 1.18 s median of 8). Where no input gradient is needed (conv1, evaluation) the
/// extra copies cost more than they save, so the strided convolution stays; likewise for odd sides.
pub fn stride2_conv(xs: &Tensor, kernel: &Tensor, bias: Option<&Tensor>, padding: i64) -> Tensor {
    let (ks, xsize) = (kernel.size(), xs.size());
    let (o, i, k) = (ks[0], ks[1], ks[2]);
    let side = xsize[2] + 2 * padding;
    let odd = k % 2 != 0 || side % 2 != 0 || (xsize[3] + 2 * padding) % 2 != 0;
    if !xs.requires_grad() || odd {
        return xs.conv2d(kernel, bias, [2, 2], [padding, padding], [1, 1], 1);
    }
    let m = k / 2;
    // Space to depth: pixel (2y+a, 2x+b) of channel c goes to channel 4c + 2a + b (as pixel_unshuffle,
    // whose scalar loop and backward cost more than this strided copy).
    let kernel = kernel
        .view([o, i, m, 2, m, 2])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([o, i * 4, m, m]);
    let xs = if padding > 0 {
        xs.constant_pad_nd([padding, padding, padding, padding])
    } else {
        xs.shallow_clone()
    };
    let (n, c, h, w) = (xsize[0], xsize[1], side / 2, (xsize[3] + 2 * padding) / 2);
    xs.view([n, c, h, 2, w, 2])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([n, c * 4, h, w])
        .conv2d(&kernel, bias, [1, 1], [0, 0], [1, 1], 1)
}

/// The kernel of "convolve with `w` `[O, I, k, k]`, then 2×2 average-pool with stride 2" as a single
/// `[O, I, k+1, k+1]` kernel for a stride-2 convolution: W'[c, d] = (w[c, d] + w[c-1, d] + w[c, d-1] +
/// w[c-1, d-1]) / 4, with w zero outside its k×k support. Differentiable, so gradients reach `w`.
pub fn pooled_kernel(w: &Tensor) -> Tensor {
    // A 2×2 stride-1 mean over w padded by one zero on every side (the zeros counted): one op, and one in
    // the backward pass, where the four shifted copies took eight each way.
    let (size, k) = (w.size(), w.size()[2]);
    w.view([-1, 1, k, k])
        .avg_pool2d([2, 2], [1, 1], [1, 1], false, true, None::<i64>)
        .view([size[0], size[1], k + 1, k + 1])
}
