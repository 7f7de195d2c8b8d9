# Whether LibTorch's own im2col + GEMM convolution (thnn_conv2d, the path PyTorch takes without oneDNN) beats
# oneDNN on LeNet-5's small convolutions, in the max-pooling step lenet5 trains ("cur").
#   $LENET5_PYTHON results/bench/thnn_forms.py [THREADS] [BATCH]   forms, alternating, median of 7 rounds of 30 steps
import statistics, sys, time
import torch
F = torch.nn.functional
torch.manual_seed(0)
c1 = torch.nn.Conv2d(1, 6, 5, padding=2); c2 = torch.nn.Conv2d(6, 16, 5)
f1 = torch.nn.Linear(400, 120); f2 = torch.nn.Linear(120, 84); f3 = torch.nn.Linear(84, 10)
params = [p for m in [c1, c2, f1, f2, f3] for p in m.parameters()]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 128
def phase_kernel(w): return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)
def m2(a, b): return a + (b - a).relu()
def tree(p): return m2(m2(p[0], p[1]), m2(p[2], p[3]))
def head(x): return f3(f2(f1(x.flatten(1)).relu()).relu())
def thnn(x, w, b, stride=1, padding=0):
    k = w.shape[-1]
    return torch._C._nn.thnn_conv2d(x, w, [k, k], b, [stride] * 2, [padding] * 2)
def s1(x, conv=F.conv2d):
    y = conv(x, phase_kernel(c1.weight), c1.bias.repeat(4), stride=2, padding=2)
    return tree(y.view(N, 4, 6, 14, 14).unbind(1)).relu()
def cur(x): return head(F.max_pool2d(c2(s1(x)), 2).relu())
def thnn_c2(x): return head(F.max_pool2d(thnn(s1(x), c2.weight, c2.bias), 2).relu())
def thnn_c1(x): return head(F.max_pool2d(c2(s1(x, thnn)), 2).relu())
def thnn_both(x): return head(F.max_pool2d(thnn(s1(x, thnn), c2.weight, c2.bias), 2).relu())
def plain(x): return head(F.max_pool2d(c2(F.max_pool2d(c1(x), 2).relu()), 2).relu())
def plain_thnn(x):
    y = F.max_pool2d(thnn(x, c1.weight, c1.bias, padding=2), 2).relu()
    return head(F.max_pool2d(thnn(y, c2.weight, c2.bias), 2).relu())
FORMS = dict(cur=cur, thnn_c2=thnn_c2, thnn_c1=thnn_c1, thnn_both=thnn_both, plain=plain, plain_thnn=plain_thnn)
X = torch.randn(N, 1, 28, 28); Y = torch.randint(0, 10, (N,))
def step(f): torch.autograd.grad(F.cross_entropy(f(X), Y), params)
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
ref = cur(X); gref = torch.autograd.grad(F.cross_entropy(ref, Y), params)
for name, f in FORMS.items():
    g = torch.autograd.grad(F.cross_entropy(f(X), Y), params)
    rel = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(g, gref))
    print(f"{name:12s} max |logit diff| {(f(X) - ref).abs().max().item():.1e}  max rel grad diff {rel:.1e}")
ts = {k: [] for k in FORMS}
for f in FORMS.values():
    for _ in range(10): step(f)
for _ in range(7):
    for name, f in FORMS.items():
        t = time.perf_counter()
        for _ in range(30): step(f)
        ts[name].append((time.perf_counter() - t) / 30 * 1e3)
print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {N}, ms per step: median [min-max], per-round ratio to cur")
for name, v in ts.items():
    r = [a / b for a, b in zip(v, ts["cur"])]
    print(f"{name:12s} {statistics.median(v):6.2f} [{min(v):.2f}-{max(v):.2f}]  {min(r):.2f}-{max(r):.2f}")
