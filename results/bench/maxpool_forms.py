# Which form of LeNet-5's conv -> 2x2 max pool trains fastest on one CPU thread (forward + backward of the whole
# net, batch 128), and which equal the plain chain's gradients. Quiet machine; median of 9 rounds of 30 steps.
import torch, time, statistics
torch.set_num_threads(1)
F = torch.nn.functional
torch.manual_seed(0)
c1 = torch.nn.Conv2d(1, 6, 5, padding=2); c2 = torch.nn.Conv2d(6, 16, 5)
f1 = torch.nn.Linear(400, 120); f2 = torch.nn.Linear(120, 84); f3 = torch.nn.Linear(84, 10)
params = [p for m in [c1, c2, f1, f2, f3] for p in m.parameters()]
def mp(x): return F.max_pool2d(x, 2)
def head(x): return f3(f2(f1(x).relu()).relu())
def plain(x):
    x = mp(c1(x)).relu(); x = mp(c2(x)).relu(); return x.flatten(1)
def cl1(x):
    x = mp(c1(x).contiguous(memory_format=torch.channels_last)).relu(); x = mp(c2(x)).relu(); return x.flatten(1)
def cl12(x):
    CL = torch.channels_last
    x = mp(c1(x).contiguous(memory_format=CL)).relu(); x = mp(c2(x).contiguous(memory_format=CL)).relu(); return x.flatten(1)
def phase_kernel(w): return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)
def s2d_conv(x, k, bias, padding):
    o, i, kk, _ = k.shape; m = kk // 2
    if padding: x = F.pad(x, (padding,) * 4)
    n, c, h, w = x.shape
    if not x.requires_grad: return F.conv2d(x, k, bias, stride=2)
    k2 = k.view(o, i, m, 2, m, 2).permute(0, 1, 3, 5, 2, 4).reshape(o, i * 4, m, m)
    xs = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)
    return F.conv2d(xs, k2, bias)
def conv_max(x, conv, padding):
    o = conv.weight.shape[0]
    y = s2d_conv(x, phase_kernel(conv.weight), conv.bias.repeat(4), padding)
    n, _, h, w = y.shape
    return y.view(n, 4, o, h, w).max(1).values
def phased(x):
    x = conv_max(x, c1, 2).relu(); x = conv_max(x, c2, 0).relu(); return x.flatten(1)
def phased1(x):
    x = conv_max(x, c1, 2).relu(); x = mp(c2(x)).relu(); return x.flatten(1)
def avg_plain(x):
    x = F.avg_pool2d(c1(x), 2).relu(); x = F.avg_pool2d(c2(x), 2).relu(); return x.flatten(1)
def avg_fused(x):
    def pk(w):
        o, i, k, _ = w.shape
        return F.avg_pool2d(w.view(-1, 1, k, k), 2, 1, 1, False, True).view(o, i, k + 1, k + 1)
    x = s2d_conv(x, pk(c1.weight), c1.bias, 2).relu(); x = s2d_conv(x, pk(c2.weight), c2.bias, 0).relu(); return x.flatten(1)
# Added 2026-12-05: the window's maximum as a tree of a + relu(b - a) (crates/core/src/nn/fast/lenet5.rs).
def rmax(a, b): return a + (b - a).relu()
def tree(a, b, c, d): return rmax(rmax(a, b), rmax(c, d))
def conv_tree(x, conv, padding):
    o = conv.weight.shape[0]
    y = s2d_conv(x, phase_kernel(conv.weight), conv.bias.repeat(4), padding)
    n, _, h, w = y.shape
    return tree(*y.view(n, 4, o, h, w).unbind(1))
def plain_tree_pool(y):
    n, c, H, W = y.shape; h, w = H // 2, W // 2
    q = y.view(n, c, h, 2, w, 2).permute(3, 5, 0, 1, 2, 4).reshape(4, n, c, h, w)
    return tree(*q.unbind(0))
def ptree(x):
    x = conv_tree(x, c1, 2).relu(); x = conv_tree(x, c2, 0).relu(); return x.flatten(1)
def ptree1(x):
    x = conv_tree(x, c1, 2).relu(); x = plain_tree_pool(c2(x)).relu(); return x.flatten(1)
def ptree_mp(x):  # what trains
    x = conv_tree(x, c1, 2).relu(); x = mp(c2(x)).relu(); return x.flatten(1)
X = torch.randn(128, 1, 28, 28); X[:, :, :10, :] = -0.42; Y = torch.randint(0, 10, (128,))
forms = [plain, cl1, cl12, phased, phased1, ptree, ptree1, ptree_mp, avg_plain, avg_fused]
res = {f.__name__: [] for f in forms}
for r in range(9):
    for f in forms:
        t = time.perf_counter()
        for _ in range(30):
            for p in params: p.grad = None
            F.cross_entropy(head(f(X)), Y).backward()
        res[f.__name__].append((time.perf_counter() - t) / 30 * 1e3)
def grads(f):
    for p in params: p.grad = None
    out = head(f(X)); F.cross_entropy(out, Y).backward(); return out.detach(), [p.grad.clone() for p in params]
o0, g0 = grads(plain)
print(f"torch {torch.__version__}, 1 thread, ms per training step (fwd+bwd, batch 128), median of 9 [min-max]")
for f in forms:
    o, g = grads(f); v = res[f.__name__]
    rel = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(g, g0))
    print(f"{f.__name__:10s} {statistics.median(v):7.2f} [{min(v):.2f}-{max(v):.2f}]  max |dlogit| {(o-o0).abs().max().item():.1e}  max rel grad diff vs plain max {rel:.1e}")
