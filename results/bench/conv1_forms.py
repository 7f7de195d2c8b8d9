#!/usr/bin/env python3
"""conv1 of the max-pooling nets as lenet5 trains it: its four window positions as one stride-2
convolution (1 -> 24 maps, 6x6 kernel, 28x28 padded by 2 -> 14x14), forward and the backward to the
kernel (the input is the data), by oneDNN's convolution and as one matrix product over the input's
patches (crates/core/src/nn/fast/lenet5.rs, stride2_conv_by_gemm). One thread, batch 128, forms
alternating within each round. Diagnosis, not a benchmark:
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
G = torch.randn(N, 24, 14, 14)


def phase_kernels(w):
    """[6, 1, 5, 5] -> [24, 1, 6, 6]: the kernel shifted to each of the window's four positions."""
    return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)


def onednn():
    return F.conv2d(X, phase_kernels(W), B.repeat(4), stride=2, padding=2)


def gemm():
    padded = F.pad(X, (2, 2, 2, 2)).contiguous()  # [N, 1, 32, 32]
    columns = padded.as_strided((1, 6, 6, N, 14, 14), (1024, 32, 1, 1024, 64, 2)).reshape(36, N * 196)
    return torch.addmm(B.repeat(4).view(-1, 1), phase_kernels(W).view(24, 36), columns).view(24, N, 14, 14).permute(1, 0, 2, 3)


FORMS = [("oneDNN conv2d", onednn), ("patches x kernel (one GEMM)", gemm)]


def kernel_grad(f):
    W.grad = None
    f().backward(G)
    return W.grad.clone()


ref = kernel_grad(onednn)
print(f"torch {torch.__version__} cpu capability {torch.backends.cpu.get_cpu_capability()}, one thread, "
      f"ms per batch of {N}: median [range] over {ROUNDS} rounds")
fwd, both = {n: [] for n, _ in FORMS}, {n: [] for n, _ in FORMS}
for _ in range(ROUNDS):
    for name, f in FORMS:
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(REPS):
                f()
        t1 = time.perf_counter()
        for _ in range(REPS):
            f().backward(G)
        fwd[name].append((t1 - t0) / REPS * 1e3)
        both[name].append((time.perf_counter() - t1) / REPS * 1e3)
for name, f in FORMS:
    err = ((kernel_grad(f) - ref).abs().max() / ref.abs().max()).item()
    v = both[name]
    print(f"{name:28s} fwd {statistics.median(fwd[name]):5.2f}  fwd+bwd {statistics.median(v):5.2f} "
          f"[{min(v):.2f}-{max(v):.2f}]  kernel gradient as oneDNN's to {err:.0e}")
