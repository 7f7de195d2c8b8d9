#!/usr/bin/env python3
"""conv1 as lenet5 trains it, forward and the backward to the kernel (the input is the data): the
max-pooling nets' four window positions as one stride-2 convolution (1 -> 24 maps, 6x6 kernel, 28x28
padded by 2 -> 14x14), and the average-pooling nets' conv1 fused with its pool (1 -> 6 maps, the same
shapes otherwise). Each by oneDNN's convolution and as one matrix product over the input's patches
(crates/core/src/nn/fast/lenet5.rs, stride2_conv_by_gemm), the patches gathered in one strided copy or
through space to depth (patch_columns). One thread, batch 128, forms alternating within each round.
Diagnosis, not a benchmark:
  $LENET5_PYTHON results/bench/conv1_forms.py"""
import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
N, ROUNDS, REPS = 128, 10, 20
X = torch.randn(N, 1, 28, 28)
W = torch.randn(6, 1, 5, 5, requires_grad=True)
B = torch.randn(6, requires_grad=True)
G = {24: torch.randn(N, 24, 14, 14), 6: torch.randn(N, 6, 14, 14)}


def phase_kernels(w):
    """[6, 1, 5, 5] -> [24, 1, 6, 6]: the kernel shifted to each of the window's four positions."""
    return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)


def pooled_kernel(w):
    """[6, 1, 5, 5] -> [6, 1, 6, 6]: convolve, then 2x2 average pool, as one kernel."""
    return F.avg_pool2d(w.view(-1, 1, 5, 5), 2, 1, 1, False, True).view(6, 1, 6, 6)


def strided_columns():
    padded = F.pad(X, (2, 2, 2, 2)).contiguous()  # [N, 1, 32, 32]
    return padded.as_strided((1, 6, 6, N, 14, 14), (1024, 32, 1, 1024, 64, 2)).reshape(36, N * 196)


def space_to_depth_columns():
    planes = F.pad(X, (2, 2, 2, 2)).view(N, 1, 16, 2, 16, 2).permute(1, 3, 5, 0, 2, 4).contiguous()
    plane = N * 256
    return planes.as_strided((1, 3, 2, 3, 2, N, 14, 14), (4 * plane, 16, 2 * plane, 1, plane, 256, 16, 1)) \
        .reshape(36, N * 196)


def onednn(kernel, bias):
    return lambda: F.conv2d(X, kernel(), bias(), stride=2, padding=2)


def gemm(kernel, bias, columns):
    def f():
        k = kernel()
        ys = torch.addmm(bias().view(-1, 1), k.view(k.shape[0], 36), columns())
        return ys.view(-1, N, 14, 14).permute(1, 0, 2, 3)
    return f


LAYERS = {
    "max pooling, phases (24 maps)": (lambda: phase_kernels(W), lambda: B.repeat(4)),
    "average pooling, fused (6 maps)": (lambda: pooled_kernel(W), lambda: B),
}


def kernel_grad(f, g):
    W.grad = None
    f().backward(g)
    return W.grad.clone()


print(f"torch {torch.__version__} cpu capability {torch.backends.cpu.get_cpu_capability()}, one thread, "
      f"ms per batch of {N}: median [range] over {ROUNDS} rounds")
for layer, (kernel, bias) in LAYERS.items():
    forms = [("oneDNN conv2d", onednn(kernel, bias)),
             ("GEMM, one strided gather", gemm(kernel, bias, strided_columns)),
             ("GEMM, via space to depth", gemm(kernel, bias, space_to_depth_columns))]
    g = G[kernel().shape[0]]
    ref = kernel_grad(forms[0][1], g)
    fwd, both = {n: [] for n, _ in forms}, {n: [] for n, _ in forms}
    for _ in range(ROUNDS):
        for name, f in forms:
            t0 = time.perf_counter()
            with torch.no_grad():
                for _ in range(REPS):
                    f()
            t1 = time.perf_counter()
            for _ in range(REPS):
                f().backward(g)
            fwd[name].append((t1 - t0) / REPS * 1e3)
            both[name].append((time.perf_counter() - t1) / REPS * 1e3)
    print(f"== {layer}")
    for name, f in forms:
        err = ((kernel_grad(f, g) - ref).abs().max() / ref.abs().max()).item()
        v = both[name]
        print(f"{name:26s} fwd {statistics.median(fwd[name]):5.2f}  fwd+bwd {statistics.median(v):5.2f} "
              f"[{min(v):.2f}-{max(v):.2f}]  kernel gradient as oneDNN's to {err:.0e}")
