# 2x2 max pooling forward + backward on conv1's and conv2's map sizes (batch 128, one thread): max_pool2d against
# the window's positions reduced by max_dim or by a tree of a + relu(b - a).
import torch, time, statistics
torch.set_num_threads(1)
F = torch.nn.functional
def bench(name, fn, reps=30, rounds=7):
    fn(); v=[]
    for r in range(rounds):
        t=time.perf_counter()
        for _ in range(reps): fn()
        v.append((time.perf_counter()-t)/reps*1e3)
    print(f"{name:40s} {statistics.median(v):7.3f} ms [{min(v):.3f}-{max(v):.3f}]")
def rmax(a, b): return a + (b - a).relu()
def tree(a, b, c, d): return rmax(rmax(a, b), rmax(c, d))
for shape in [(128,6,28,28),(128,16,10,10)]:
    N,C,H,W=shape; h,w=H//2,W//2
    z=torch.randn(*shape); z[:, :, :8]=0.3; z.requires_grad_(True)
    g=torch.randn(N,C,h,w)
    zp=torch.randn(N,4,C,h,w); zp[:,:,:,:4]=0.3; zp.requires_grad_(True)
    print(shape)
    bench("max_pool2d", lambda: F.max_pool2d(z,2).backward(g))
    bench("phased max_dim", lambda: zp.max(1).values.backward(g))
    bench("phased relu-tree", lambda: tree(*zp.unbind(1)).backward(g))
    bench("plain permute relu-tree", lambda: tree(*z.view(N,C,h,2,w,2).permute(3,5,0,1,2,4).reshape(4,N,C,h,w).unbind(0)).backward(g))
    bench("plain permute max_dim", lambda: z.view(N,C,h,2,w,2).permute(3,5,0,1,2,4).reshape(4,N,C,h,w).max(0).values.backward(g))
    bench("plain view-permute max_dim nocopy", lambda: z.view(N,C,h,2,w,2).permute(0,1,2,4,3,5).reshape(N,C,h,w,4).max(-1).values.backward(g))
