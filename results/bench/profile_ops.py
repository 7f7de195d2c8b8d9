#!/usr/bin/env python3
"""Where a CPU training step's operator time goes: lenet5's forward (fused conv-pool kernels, space-to-depth
conv2) rebuilt op for op in PyTorch, batch 128, 2 threads. Prints torch.profiler's table over 200 steps
(forward, loss, backward; no optimizer), then each convolution's forward and backward timed alone.
Diagnosis for docs/performance.md, not a benchmark:  $LENET5_PYTHON results/bench/profile_ops.py"""
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

torch.set_num_threads(2)
torch.manual_seed(0)
N = 128
x, y = torch.randn(54000, 1, 28, 28), torch.randint(0, 10, (54000,))
w1, b1 = torch.randn(6, 1, 5, 5, requires_grad=True), torch.zeros(6, requires_grad=True)
w2, b2 = (torch.randn(16, 6, 5, 5) * 0.1).requires_grad_(), torch.zeros(16, requires_grad=True)
fcs = [torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)]
params = [w1, b1, w2, b2] + [p for f in fcs for p in f.parameters()]


def pooled_kernel(w):  # model.rs: pooled_kernel
    o, i, k, _ = w.shape
    return F.avg_pool2d(w.view(-1, 1, k, k), 2, 1, 1, False, True).view(o, i, k + 1, k + 1)


def stride2_conv(xs, kernel, bias, pad):  # model.rs: stride2_conv
    o, i, k, _ = kernel.shape
    if not xs.requires_grad:
        return F.conv2d(xs, kernel, bias, 2, pad)
    m = k // 2
    kernel = kernel.view(o, i, m, 2, m, 2).permute(0, 1, 3, 5, 2, 4).reshape(o, i * 4, m, m)
    n, c, h, w = xs.shape
    xs = xs.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)
    return F.conv2d(xs, kernel, bias)


def step():
    idx = torch.randint(0, 54000, (N,))
    xs = F.relu(stride2_conv(x.index_select(0, idx), pooled_kernel(w1), b1, 2))
    xs = F.relu(stride2_conv(xs, pooled_kernel(w2), b2, 0))
    xs = F.relu(fcs[0](xs.flatten(1)))
    loss = F.cross_entropy(fcs[2](F.relu(fcs[1](xs))), y.index_select(0, idx))
    for p in params:
        p.grad = None
    loss.backward()


def alone(name, f, n=300):
    for _ in range(30):
        f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    print(f"{name}: {(time.perf_counter() - start) / n * 1e3:.3f} ms")


for _ in range(50):
    step()
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(200):
        step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
x1, k1, g1 = torch.randn(N, 1, 28, 28), torch.randn(6, 1, 6, 6), torch.randn(N, 6, 14, 14)
x2, k2, g2 = torch.randn(N, 24, 7, 7), torch.randn(16, 24, 3, 3), torch.randn(N, 16, 5, 5)
backward = torch.ops.aten.convolution_backward
alone("conv1 forward", lambda: F.conv2d(x1, k1, None, 2, 2))
alone("conv1 backward (weight, bias)",
      lambda: backward(g1, x1, k1, [6], [2, 2], [2, 2], [1, 1], False, [0, 0], 1, [False, True, True]))
alone("conv2 forward", lambda: F.conv2d(x2, k2))
alone("conv2 backward (input, weight, bias)",
      lambda: backward(g2, x2, k2, [16], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, True]))
