# Which form of the 1998 net trains fastest on one CPU thread (forward + backward, batch 128, map loss), and that
# each equals the reference (scripts/reference.py) in logits and gradients. Run from the repository root with the
# set-up venv's python. The winner ("fast_c5lin") is crates/core/src/nn/fast/lenet1998.rs.
import sys, torch, time, statistics
sys.argv=['x']; sys.path.insert(0, 'scripts')  # run from the repository root
import reference as R
torch.set_num_threads(1)
F=torch.nn.functional
torch.manual_seed(0)
X=torch.randn(128,1,28,28); X[:,:,:6]=-0.4242; Y=torch.randint(0,10,(128,))
m=R.LeNet1998((0.1307,0.3081))
def pk(w): return torch.cat([F.pad(w, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)], 0)
def s2d(x):
    n,c,h,w=x.shape; return x.view(n,c,h//2,2,w//2,2).permute(0,1,3,5,2,4).reshape(n,c*4,h//2,w//2)
def s2dk(k):
    o,i,kk,_=k.shape; m_=kk//2; return k.view(o,i,m_,2,m_,2).permute(0,1,3,5,2,4).reshape(o,i*4,m_,m_)
S=2/3; A=1.7159
def sum4_phased(y, o):
    n,_,h,w=y.shape; return y.view(n,4,o,h,w).sum(1)
def sum4_view(y):
    n,c,H,W=y.shape; return y.view(n,c,H//2,2,W//2,2).sum((3,5))
def fast(x, c3form="plain", s4form="avgpool", c5lin=False):
    x = F.pad(x * m.std + m.mean, (2, 2, 2, 2)) * 1.275 - 0.1
    # C1 phased with 2/3 folded in
    y = F.conv2d(x, pk(m.c1.weight*S), (m.c1.bias*S).repeat(4), stride=2)
    s = sum4_phased(torch.tanh(y), 6)   # sum of tanh(2/3 a) over 2x2
    # S2: squash(coef * A * s + bias)
    s2 = torch.tanh(torch.addcmul(m.s2.bias.view(1,-1,1,1)*S, s, (m.s2.coef*(A*S)).view(1,-1,1,1)))
    w3 = m.c3.weight * m.c3.mask * (A*S); b3 = m.c3.bias*S
    if c3form=="plain":
        c3 = torch.tanh(F.conv2d(s2, w3, b3))
        t = F.avg_pool2d(c3,2)*4 if s4form=="avgpool" else sum4_view(c3)
    else:
        c3 = torch.tanh(F.conv2d(s2d(s2), s2dk(pk(w3)), b3.repeat(4)))
        t = sum4_phased(c3, 16)
    s4 = torch.tanh(torch.addcmul(m.s4.bias.view(1,-1,1,1)*S, t, (m.s4.coef*(A*S)).view(1,-1,1,1)))
    if c5lin: c5 = torch.tanh(F.linear(s4.flatten(1), (m.c5.weight*(A*S)).flatten(1), m.c5.bias*S))
    else: c5 = torch.tanh(F.conv2d(s4, m.c5.weight*(A*S), m.c5.bias*S).flatten(1))
    f6 = R.squash(F.linear(c5, m.f6.weight*A, m.f6.bias))
    return m.rbf(f6)
print([n for n,_ in m.named_parameters()], [n for n,_ in m.named_buffers()])
forms={"ref":lambda x: m(x),"fast":lambda x: fast(x),"fast_sumview":lambda x: fast(x,s4form="view"),"fast_c3phased":lambda x: fast(x,"phased"),"fast_c5lin":lambda x: fast(x,c5lin=True),"fast_c5lin_view":lambda x: fast(x,s4form="view",c5lin=True)}
params=list(m.parameters())
def grads(f):
    for p in params: p.grad=None
    out=f(X); R.map_loss(out,Y).backward(); return out.detach(),[p.grad.clone() for p in params]
o0,g0=grads(forms["ref"])
res={k:[] for k in forms}
for r in range(7):
    for k,f in forms.items():
        t=time.perf_counter()
        for _ in range(20):
            for p in params: p.grad=None
            R.map_loss(f(X),Y).backward()
        res[k].append((time.perf_counter()-t)/20*1e3)
for k,f in forms.items():
    o,g=grads(f); v=res[k]
    rel=max(((a-b).abs().max()/b.abs().max()).item() for a,b in zip(g,g0))
    print(f"{k:14s} {statistics.median(v):7.2f} [{min(v):.2f}-{max(v):.2f}] dlogit {(o-o0).abs().max().item():.1e} relgrad {rel:.1e}")
