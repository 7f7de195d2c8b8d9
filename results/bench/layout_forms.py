# Where the max-pooling step's time goes inside oneDNN, and whether another memory layout or a GEMM form of
# the convolutions removes it. One training step (forward, loss, gradients; no optimizer) of the seed's net
# with max pooling, batch 128, the form lenet5 trains ("cur": conv1 by window position + relu-tree, conv2 +
# max_pool2d) against reshaped forms of it; every form is checked against "cur" (logits, gradients).
#   $LENET5_PYTHON results/bench/layout_forms.py [THREADS]          forms, alternating, median of 9 rounds
#   $LENET5_PYTHON results/bench/layout_forms.py --onednn           oneDNN's own time per primitive in "cur"
import os, statistics, subprocess, sys, time
import torch
F = torch.nn.functional
CL = torch.channels_last
torch.manual_seed(0)
c1 = torch.nn.Conv2d(1, 6, 5, padding=2); c2 = torch.nn.Conv2d(6, 16, 5)
f1 = torch.nn.Linear(400, 120); f2 = torch.nn.Linear(120, 84); f3 = torch.nn.Linear(84, 10)
params = [p for m in [c1, c2, f1, f2, f3] for p in m.parameters()]
N = 128
def phase_kernel(w): return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)
def m2(a, b): return a + (b - a).relu()
def tree(p): return m2(m2(p[0], p[1]), m2(p[2], p[3]))
def head(x): return f3(f2(f1(x.flatten(1)).relu()).relu())
def s1(x):  # conv1 -> S2 -> relu as lenet5 trains it
    y = F.conv2d(x, phase_kernel(c1.weight), c1.bias.repeat(4), stride=2, padding=2)
    return tree(y.view(N, 4, 6, 14, 14).unbind(1)).relu()
def nhwc(y): return y.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
def cur(x): return head(F.max_pool2d(c2(s1(x)), 2).relu())
def s4_channels_last(x): return head(F.max_pool2d(nhwc(c2(s1(x))), 2).relu())
def conv2_ic8(x):  # conv2's 6 input channels padded to 8 (oneDNN's AVX2 weight-gradient kernel blocks by 8)
    s = F.pad(s1(x), (0, 0, 0, 0, 0, 2)); w = F.pad(c2.weight, (0, 0, 0, 0, 0, 2))
    return head(F.max_pool2d(F.conv2d(s, w, c2.bias), 2).relu())
def all_channels_last(x):  # conv1 over the space-to-depth input, everything NHWC: no reorders
    xs = F.pad(x, (2,) * 4).view(N, 1, 16, 2, 16, 2).permute(0, 1, 3, 5, 2, 4).reshape(N, 4, 16, 16)
    k = phase_kernel(c1.weight).view(24, 1, 3, 2, 3, 2).permute(0, 1, 3, 5, 2, 4).reshape(24, 4, 3, 3)
    y = F.conv2d(xs.contiguous(memory_format=CL), k.contiguous(memory_format=CL), c1.bias.repeat(4))
    s = tree(y.permute(0, 2, 3, 1).view(N, 14, 14, 4, 6).permute(3, 0, 4, 1, 2).unbind(0)).relu()
    z = F.conv2d(s.contiguous(memory_format=CL), c2.weight.contiguous(memory_format=CL), c2.bias)
    return head(F.max_pool2d(z, 2).relu().contiguous())
def conv1_gemm(x):  # conv1 as GEMMs over strided 6x6 patches: no oneDNN, no reorders
    xp = F.pad(x, (2,) * 4).view(N, 32, 32)
    patches = xp.as_strided((N, 14, 14, 6, 6), (1024, 64, 2, 32, 1)).reshape(N * 196, 36)
    k = phase_kernel(c1.weight).view(4, 6, 36)
    s = tree([torch.addmm(c1.bias, patches, k[p].t()) for p in range(4)]).relu()
    return head(F.max_pool2d(c2(s.view(N, 14, 14, 6).permute(0, 3, 1, 2).contiguous()), 2).relu())
FORMS = dict(cur=cur, s4_channels_last=s4_channels_last, conv2_ic8=conv2_ic8,
             all_channels_last=all_channels_last, conv1_gemm=conv1_gemm)
X = torch.randn(N, 1, 28, 28); Y = torch.randint(0, 10, (N,))
def step(f): torch.autograd.grad(F.cross_entropy(f(X), Y), params)

def onednn():
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, __file__, "--steps", "60"], env=env, capture_output=True, text=True).stdout
    rows = [l.split(",") for l in out.splitlines() if ",primitive,exec," in l][len(out.splitlines()) // 3:]
    steps = sum(1 for r in rows if r[7] == "forward_training" and "ic1oc24" in r[-2])  # one conv1 per step
    total = {}
    for r in rows:
        key = f"{r[5]} {r[6]} {r[7]} {r[-2]}"
        total[key] = total.get(key, 0.0) + float(r[-1])
    for key, ms in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"{ms / steps:7.3f} ms/step  {key}")

if "--steps" in sys.argv:
    torch.set_num_threads(1)
    for _ in range(int(sys.argv[-1])): step(cur)
elif "--onednn" in sys.argv:
    onednn()
else:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    ref = cur(X); gref = torch.autograd.grad(F.cross_entropy(ref, Y), params)
    for name, f in FORMS.items():
        g = torch.autograd.grad(F.cross_entropy(f(X), Y), params)
        rel = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(g, gref))
        print(f"{name:18s} max |logit diff| {(f(X) - ref).abs().max().item():.1e}  max rel grad diff {rel:.1e}")
    ts = {k: [] for k in FORMS}
    for f in FORMS.values():
        for _ in range(10): step(f)
    for _ in range(9):
        for name, f in FORMS.items():
            t = time.perf_counter()
            for _ in range(30): step(f)
            ts[name].append((time.perf_counter() - t) / 30 * 1e3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), ms per step: median [min-max], and the "
          "per-round ratio to cur")
    for name, v in ts.items():
        r = [a / b for a, b in zip(v, ts["cur"])]
        print(f"{name:18s} {statistics.median(v):6.2f} [{min(v):.2f}-{max(v):.2f}]  {min(r):.2f}-{max(r):.2f}")
