# The modern net (batch norm, ReLU, max pooling): reference vs conv1 by window position with batch norm over
# the phases as batch, and max pools as a + relu(b - a). Run from the repository root (crates/core/src/nn/fast/modern.rs).
import sys, torch, time, statistics
sys.argv=['x']; sys.path.insert(0, 'scripts')  # run from the repository root
import reference as R
torch.set_num_threads(1)
F=torch.nn.functional
torch.manual_seed(0)
X=torch.randn(128,1,28,28); X[:,:,:6]=-0.4242; Y=torch.randint(0,10,(128,))
m=R.ModernLeNet(0.0); m.train()
def pk(w): return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)
def rmax(a, b): return a + (b - a).relu()
def tree(a, b, c, d): return rmax(rmax(a, b), rmax(c, d))
def bn(x, b): return F.batch_norm(x, b.running_mean, b.running_var, b.weight, b.bias, True, b.momentum, b.eps)
def fast(x, c2="plain"):
    n=x.shape[0]
    y = F.conv2d(x, pk(m.conv1.weight), None, stride=2, padding=2)   # [n, 24, 14, 14]
    y = bn(y.view(n*4, 6, 14, 14), m.bn1).view(n, 4, 6, 14, 14)
    x = tree(*y.unbind(1)).relu()
    y = bn(F.conv2d(x, m.conv2.weight), m.bn2)  # [n,16,10,10]
    if c2=="plain":
        x = F.max_pool2d(y, 2).relu()
    else:
        q = y.view(n, 16, 5, 2, 5, 2).permute(3, 5, 0, 1, 2, 4).reshape(4, n, 16, 5, 5)
        x = tree(*q.unbind(0)).relu()
    x = F.relu(m.bn3(m.fc1(m.drop(x.flatten(1)))))
    x = F.relu(m.bn4(m.fc2(m.drop(x))))
    return m.fc3(m.drop(x))
forms={"ref":lambda x: m(x),"fast":lambda x: fast(x),"fast_tree2":lambda x: fast(x,"tree")}
params=list(m.parameters())
state={k:v.clone() for k,v in m.state_dict().items()}
def grads(f):
    m.load_state_dict(state)
    for p in params: p.grad=None
    out=f(X); F.cross_entropy(out,Y).backward(); return out.detach(),[p.grad.clone() for p in params]
o0,g0=grads(forms["ref"])
res={k:[] for k in forms}
for r in range(7):
    for k,f in forms.items():
        t=time.perf_counter()
        for _ in range(20):
            for p in params: p.grad=None
            F.cross_entropy(f(X),Y).backward()
        res[k].append((time.perf_counter()-t)/20*1e3)
for k,f in forms.items():
    o,g=grads(f); v=res[k]
    rel=max(((a-b).abs().max()/b.abs().max()).item() for a,b in zip(g,g0))
    print(f"{k:14s} {statistics.median(v):7.2f} [{min(v):.2f}-{max(v):.2f}] dlogit {(o-o0).abs().max().item():.1e} relgrad {rel:.1e}")
