#!/usr/bin/env python3
"""C3 -> S4 with max pooling, the step every max-pooling row spends most on (docs/performance.md, 2026-12-06,
night): conv2 (6 -> 16 maps, 5x5, 14x14 -> 10x10) alone by each convolution LibTorch offers on the CPU, then
conv2 with its 2x2 max pool in the forms that give the same function. One thread, batch 128, forward and
backward to input and weights; forms alternate within each round. Diagnosis, not a benchmark:
  $LENET5_PYTHON results/bench/conv2_forms.py"""
import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
N, ROUNDS, REPS = 128, 10, 5
X = torch.randn(N, 6, 14, 14)
W = torch.randn(16, 6, 5, 5) * 0.1
B = torch.randn(16) * 0.1


def a_max(a, b):
    return a + (b - a).relu()


def tree(p):
    return a_max(a_max(p[0], p[1]), a_max(p[2], p[3]))


def phase_kernels(w):
    return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)


CONVS = [
    ("oneDNN (conv2d)", lambda x, w, b: F.conv2d(x, w, b)),
    ("im2col + GEMM (thnn_conv2d)", lambda x, w, b: torch._C._nn.thnn_conv2d(x, w, 5, b)),
    ("unfold + addmm", lambda x, w, b: torch.addmm(b, F.unfold(x, 5).transpose(1, 2).reshape(-1, 150),
                                                  w.view(16, 150).t()).view(N, 10, 10, 16).permute(0, 3, 1, 2)),
]
if torch.backends.nnpack.is_available():
    CONVS.append(("NNPACK", lambda x, w, b: torch._nnpack_spatial_convolution(x, w, b, [0, 0])))


def phased(x, w, b):
    y = F.conv2d(x, phase_kernels(w), b.repeat(4), stride=2)
    return tree(y.view(N, 4, 16, 5, 5).unbind(1))


def space_to_depth(x, w, b):
    k = phase_kernels(w).view(64, 6, 3, 2, 3, 2).permute(0, 1, 3, 5, 2, 4).reshape(64, 24, 3, 3)
    xs = x.view(N, 6, 7, 2, 7, 2).permute(0, 1, 3, 5, 2, 4).reshape(N, 24, 7, 7)
    return tree(F.conv2d(xs, k, b.repeat(4)).view(N, 4, 16, 5, 5).unbind(1))


def rows_then_columns(x, w, b):
    v = F.conv2d(x, w, b).view(N, 16, 5, 2, 5, 2)
    r = a_max(v[:, :, :, 0], v[:, :, :, 1])
    return a_max(r[..., 0], r[..., 1])


PAIRS = [
    ("conv2d + max_pool2d", lambda x, w, b: F.max_pool2d(F.conv2d(x, w, b), 2, 2)),
    ("conv2d + oneDNN pool", lambda x, w, b: F.max_pool2d(F.conv2d(x, w, b).to_mkldnn(), 2, 2).to_dense()),
    ("conv2d + rows, then columns", rows_then_columns),
    ("channels-last conv2d + max_pool2d", lambda x, w, b: F.max_pool2d(F.conv2d(
        x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last), b),
        2, 2).contiguous()),
    ("four phases, stride 2 + tree", phased),
    ("four phases, space to depth + tree", space_to_depth),
]


def leaves():
    return [t.clone().requires_grad_() for t in (X, W, B)]


def table(title, forms):
    g = torch.randn_like(forms[0][1](*leaves()))
    x, w, b = leaves()
    forms[0][1](x, w, b).backward(g)
    ref = (x.grad, w.grad)
    print(f"== {title}, forward | forward + backward, us per batch of {N}: median [range] over {ROUNDS} rounds")
    fwd, both = {n: [] for n, _ in forms}, {n: [] for n, _ in forms}
    for _ in range(ROUNDS):
        for name, f in forms:
            x, w, b = leaves()
            t0 = time.perf_counter()
            with torch.no_grad():
                for _ in range(REPS):
                    f(x, w, b)
            t1 = time.perf_counter()
            for _ in range(REPS):
                f(x, w, b).backward(g)
            fwd[name].append((t1 - t0) / REPS * 1e6)
            both[name].append((time.perf_counter() - t1) / REPS * 1e6)
    for name, f in forms:
        x, w, b = leaves()
        f(x, w, b).backward(g)
        err = max(((ours - r).abs().max() / r.abs().max()).item() for ours, r in zip((x.grad, w.grad), ref))
        v = both[name]
        print(f"{name:36s} fwd {statistics.median(fwd[name]):6.0f}  fwd+bwd {statistics.median(v):6.0f} "
              f"[{min(v):.0f}-{max(v):.0f}]  gradients as the first's to {err:.0e}")


print(f"torch {torch.__version__} cpu capability {torch.backends.cpu.get_cpu_capability()}")
table("conv2 alone", CONVS)
table("conv2 + 2x2 max pool", PAIRS)
