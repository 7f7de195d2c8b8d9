#!/usr/bin/env python3
"""Which LibTorch CPU kernels cost what on one thread, for the speed forms of 2026-12-06 (docs/performance.md):
tanh against sigmoid per element; S4's 2x2 max pooling as max_pool2d against oneDNN's (to_mkldnn ->
max_pool2d -> to_dense) and other forms; C1's max pooling as the four-phase tree against a full-size
convolution pooled by oneDNN; the 1998 net's S4 sum. Each form's values (and, for the max pools, its input
gradient under ties) are checked against max_pool2d's. Diagnosis, not a benchmark:
  $LENET5_PYTHON results/bench/kernel_forms.py"""
import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
print("torch", torch.__version__, "cpu capability", torch.backends.cpu.get_cpu_capability())


def median_us(once, n=100, rounds=7):
    for _ in range(10):
        once()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            once()
        times.append((time.perf_counter() - start) / n * 1e6)
    return f"{statistics.median(times):7.0f} [{min(times):.0f}-{max(times):.0f}] us"


def fwd_bwd(f, x0, out_shape):
    x, g = x0.clone().requires_grad_(), torch.randn(out_shape)
    return median_us(lambda: f(x).backward(g))


print("\n== elementwise, [128, 6, 14, 14] (C1's pooled maps), forward only, and forward + backward")
x = torch.randn(128, 6, 14, 14)
for name, f in [("tanh", torch.tanh), ("sigmoid", torch.sigmoid), ("2*sigmoid(2x)-1", lambda t: (t * 2).sigmoid() * 2 - 1),
                ("relu", torch.relu), ("mul by 2", lambda t: t * 2)]:
    print(f"{name:18s} fwd {median_us(lambda: f(x), 300)}  fwd+bwd {fwd_bwd(f, x, x.shape)}")


def onednn_max(t):
    return F.max_pool2d(t.to_mkldnn(), 2, 2).to_dense()


def a_max(a, b):
    return a + (b - a).relu()


def split_windows(t):
    n, c, h, w = t.shape
    v = t.view(n, c, h // 2, 2, w // 2, 2)
    p = [v[:, :, :, a, :, b] for a in (0, 1) for b in (0, 1)]
    return a_max(a_max(p[0], p[1]), a_max(p[2], p[3]))


print("\n== 2x2 max pooling of S4's input [N, 16, 10, 10], forward + backward")
for n in (32, 128):
    x = torch.randn(n, 16, 10, 10)
    x[:, :, :4] = 0.3  # tied windows
    ref = F.max_pool2d(x, 2, 2)
    for name, f in [("max_pool2d", lambda t: F.max_pool2d(t, 2, 2)), ("oneDNN", onednn_max),
                    ("amax over a view", lambda t: t.view(n, 16, 5, 2, 5, 2).amax((3, 5))),
                    ("split windows, a + relu(b - a)", split_windows)]:
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        g = torch.randn(ref.shape)
        f(xa).backward(g)
        F.max_pool2d(xb, 2, 2).backward(g)
        same = torch.equal(f(x), ref) and torch.equal(xa.grad, xb.grad)
        print(f"N={n:3d} {name:32s} {fwd_bwd(f, x, ref.shape)}  values and gradient equal: {same}")

print("\n== C1 with max pooling, batch 128: conv (6@5x5, pad 2) and pool, forward + backward to the weights")
x = torch.randn(128, 1, 28, 28)
x[:, :, :8] = -0.42
w, b = (torch.randn(6, 1, 5, 5) * 0.3).requires_grad_(), torch.zeros(6, requires_grad=True)


def phase_kernels(k):
    return torch.cat([F.pad(k, (c, 1 - c, a, 1 - a)) for a in (0, 1) for c in (0, 1)], 0)


def phased_tree(t):
    y = F.conv2d(t, phase_kernels(w), b.repeat(4), stride=2, padding=2)
    p = y.view(128, 4, 6, 14, 14).unbind(1)
    return a_max(a_max(p[0], p[1]), a_max(p[2], p[3]))


g = torch.randn(128, 6, 14, 14)
for name, f in [("four-phase conv + tree (trains)", phased_tree),
                ("full conv + oneDNN pool", lambda t: onednn_max(F.conv2d(t, w, b, padding=2))),
                ("full conv + max_pool2d", lambda t: F.max_pool2d(F.conv2d(t, w, b, padding=2), 2, 2))]:
    print(f"{name:34s} {median_us(lambda: f(x).backward(g), 50)}")

print("\n== the 1998 net's S4 window sum [N, 16, 10, 10], forward + backward")
for n in (32, 128):
    x = torch.randn(n, 16, 10, 10)
    for name, f in [("avg_pool2d, divisor 1", lambda t: F.avg_pool2d(t, 2, 2, divisor_override=1)),
                    ("oneDNN mean x 4", lambda t: F.avg_pool2d(t.to_mkldnn(), 2, 2).to_dense() * 4),
                    ("sum over a view", lambda t: t.view(n, 16, 5, 2, 5, 2).sum((3, 5)))]:
        print(f"N={n:3d} {name:24s} {fwd_bwd(f, x, (n, 16, 5, 5))}")
