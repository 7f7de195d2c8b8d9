#!/usr/bin/env python3
"""How far the rows whose convolutions cannot be fused can go (docs/performance.md, 2026-12-07): one
training step of each such net in idiomatic PyTorch eager (forward, loss, backward, Adam), against the
net's two convolutions alone in lenet5's forms — forward, and the backward the step needs (the first
convolution's weights only, its input is the data; the second's weights and input). The first runs as its
four window positions by one matrix product over the input's patches, the second full size by oneDNN, as
crates/core/src/nn/fast does in training.
A max pool (or, in the 1998 net, a squash before the pool) is not linear, so no form that keeps
LibTorch's convolutions does fewer multiply-adds; eager's step over these convolutions bounds the ratio
to eager any such form can reach, everything else free. Nets at their shipped batch sizes (the 1998
net's config trains in batches of 32). Forms alternate within each round. Diagnosis, not a benchmark:
  $LENET5_PYTHON results/bench/conv_floor.py            (THREADS=2 for two intra-op threads)"""
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import reference as R  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
torch.manual_seed(0)
ROUNDS, REPS = 8, 20


def phase_kernels(w):
    return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)


def net(name):
    """(model, loss, batch, input side, conv1 padding, conv2 weight, conv1 has a bias)."""
    if name == "lenet5_1998":
        m = R.LeNet1998(R.NORMALIZATION["mnist"])
        return m, R.map_loss, 32, 28, 0, m.c3.weight, True
    if name == "lenet5_modern":
        m = R.ModernLeNet(0.1)
        return m, F.cross_entropy, 128, 28, 2, m.conv2.weight, False
    m = R.LeNet("relu", "max")
    return m, F.cross_entropy, 128, 28, 2, m.conv2.weight, True


def forms(name):
    model, loss, n, side, pad, w2_model, bias = net(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(n, 1, side, side), torch.randint(0, 10, (n,))
    x1 = F.pad(x, (2, 2, 2, 2)) if name == "lenet5_1998" else x  # the paper's 32×32 input
    w1 = torch.randn(6, 1, 5, 5, requires_grad=True)
    b1 = torch.randn(6, requires_grad=True) if bias else None
    w2 = w2_model.detach().clone().requires_grad_()
    s1 = torch.randn(n, 6, 14, 14, requires_grad=True)
    g1 = torch.randn(24, n * 196)
    g2 = torch.randn(n, 16, 10, 10)

    def eager_step():
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()

    def convolutions():
        b = b1.repeat(4).view(-1, 1) if bias else torch.zeros(24, 1)
        padded = F.pad(x1, (pad, pad, pad, pad)).contiguous()
        side_p = padded.shape[-1]
        columns = padded.as_strided((1, 6, 6, n, 14, 14), (side_p * side_p, side_p, 1, side_p * side_p,
                                                            2 * side_p, 2)).reshape(36, n * 196)
        torch.addmm(b, phase_kernels(w1).view(24, 36), columns).backward(g1)
        F.conv2d(s1, w2, None).backward(g2)

    return n, [("eager step", eager_step), ("convolutions, lenet5's forms", convolutions)]


print(f"torch {torch.__version__} cpu capability {torch.backends.cpu.get_cpu_capability()}, "
      f"{torch.get_num_threads()} thread(s); ms per batch: median [range] over {ROUNDS} rounds")
for name in ("relu_max", "lenet5_modern", "lenet5_1998"):
    n, fs = forms(name)
    times = {f: [] for f, _ in fs}
    for f, step in fs:  # warm-up: oneDNN builds its kernels on first use
        for _ in range(REPS):
            step()
    for _ in range(ROUNDS):
        for f, step in fs:
            t0 = time.perf_counter()
            for _ in range(REPS):
                step()
            times[f].append((time.perf_counter() - t0) / REPS * 1e3)
    eager, convs = times["eager step"], times["convolutions, lenet5's forms"]
    r = [e / c for e, c in zip(eager, convs)]
    print(f"{name:14s} batch {n:3d}: eager step {statistics.median(eager):6.2f} [{min(eager):.2f}-{max(eager):.2f}]"
          f"  convolutions {statistics.median(convs):6.2f} [{min(convs):.2f}-{max(convs):.2f}]"
          f"  ceiling eager/convolutions {statistics.median(r):.2f}x [{min(r):.2f}-{max(r):.2f}]")
