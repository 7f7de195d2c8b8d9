#!/usr/bin/env python3
"""PyTorch references for lenet5's benchmark (scripts/bench) and parity test (tests/pytorch_parity.rs).

  --pipeline fast   the same model, optimizer, batch size, split and thread count as lenet5, written the
                    idiomatic fast way: data as tensors in memory, batches as index-selects of a randperm.
  --pipeline compiled  the fast pipeline with the model under torch.compile (inductor, static shapes);
                    --compile-mode reduce-overhead adds CUDA graphs on a GPU.
  --device cuda     fast/compiled on a GPU, all data resident there (timers wait for the GPU's queue).
  --pipeline seed   the seed repo's pipeline: torchvision datasets.MNIST + ToTensor/Normalize + DataLoader
                    (batch 128, SubsetRandomSampler, num_workers=2).
  --check-loss W    print the cross-entropy of the weights W (.safetensors from lenet5) on the first
                    --batch training images of --data, normalised as lenet5 does; nothing else.
  --logits W        print the logits of W on the first --batch test images (interop test).
  --export-random F save a freshly initialised (PyTorch default init, seed --seed) LeNet's state_dict to
                    the .safetensors file F, as `safetensors.torch.save_file` would (interop test).

Timings are printed as one JSON line: per-epoch seconds (training + validation, like lenet5's metrics.csv)
and test-set evaluation seconds.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.1307, 0.3081  # MNIST's training-pixel mean and std, as in the seed and lenet5


class LeNet(nn.Module):
    """The seed's module: conv(6@5x5, pad 2) -> pool -> act -> conv(16@5x5) -> pool -> act -> 120 -> 84 -> 10."""

    def __init__(self, activation="relu", pooling="avg"):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.act = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
        self.pool = {"avg": F.avg_pool2d, "max": F.max_pool2d}[pooling]

    def forward(self, x):
        x = self.act(self.pool(self.conv1(x), 2))
        x = self.act(self.pool(self.conv2(x), 2))
        x = self.act(self.fc1(x.flatten(1)))
        x = self.act(self.fc2(x))
        return self.fc3(x)


def xavier_(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).view(count, 1, rows, cols)
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def load_safetensors(path):
    """The safetensors format: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        buf = bytearray(data[8 + n + lo : 8 + n + hi])
        out[name] = torch.frombuffer(buf, dtype=dtypes[meta["dtype"]]).view(meta["shape"]).clone()
    return out


def save_safetensors(tensors, path):
    """Writes a state_dict in the safetensors format (what safetensors.torch.save_file writes)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().float()
        blob = bytes(t.view(torch.uint8).flatten().tolist())  # little-endian f32, without needing numpy
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def normalised(images_u8):
    return (images_u8.float() / 255.0 - MEAN) / STD


def split_indices(n, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = round(n * fraction)
    return perm[n_val:], perm[:n_val]


def evaluate(model, images, labels, batch=2000):
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            logits = model(images[i : i + batch])
            y = labels[i : i + batch]
            loss += F.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
    model.train()
    return loss.item() / len(labels), correct.item() / len(labels)


def fast(args):
    """Tensors in memory, index batches: the idiomatic fast PyTorch loop; with --pipeline compiled, the same
    loop with the model under torch.compile (inductor), compiled before the timed epoch (compile time
    reported apart)."""
    x = normalised(read_idx(os.path.join(args.data, "train-images-idx3-ubyte")))
    y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte"))
    xt = normalised(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte")))
    yt = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte"))
    tr, va = split_indices(len(y), 0.1, 123)
    dev = torch.device(args.device)
    # On a GPU everything lives there, as lenet5 keeps it: no per-batch host-to-device copies.
    xtr, ytr, xva, yva, xt, yt = (t.to(dev) for t in (x[tr], y[tr], x[va], y[va], xt, yt))
    torch.manual_seed(123)
    model = LeNet().to(dev)
    xavier_(model)
    compile_seconds = 0.0
    if args.pipeline == "compiled":
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        start = time.perf_counter()
        mode = None if args.compile_mode == "default" else args.compile_mode
        model = torch.compile(model, backend="inductor", dynamic=False, mode=mode)
        # Compile every shape the timed epoch meets (full and last training batch, evaluation batch), then
        # put the weights back.
        warm = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
        for n in sorted({args.batch, len(ytr) % args.batch or args.batch}):
            F.cross_entropy(model(xtr[:n]), ytr[:n]).backward()
            warm.step()
            warm.zero_grad(set_to_none=True)
        evaluate(model, xva, yva)
        model._orig_mod.load_state_dict(initial)
        sync(dev)
        compile_seconds = time.perf_counter() - start
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    epochs = []
    for _ in range(args.epochs):
        sync(dev)
        start = time.perf_counter()
        perm = torch.randperm(len(ytr), device=dev)
        for i in range(0, len(ytr), args.batch):
            idx = perm[i : i + args.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        evaluate(model, xva, yva)
        sync(dev)
        epochs.append(time.perf_counter() - start)
    start = time.perf_counter()
    test_loss, test_acc = evaluate(model, xt, yt)
    sync(dev)
    return {"epoch_seconds": epochs, "train_images": len(ytr), "eval_seconds": time.perf_counter() - start,
            "eval_images": len(yt), "test_accuracy": test_acc, "compile_seconds": compile_seconds}


def sync(dev):
    """Waits for queued GPU work, so that a timer read afterwards covers it (nothing on the CPU)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def seed_pipeline(args):
    """torchvision datasets + DataLoader with SubsetRandomSampler and 2 workers, as the seed trains."""
    import tempfile
    from torch.utils.data import DataLoader, SubsetRandomSampler
    from torchvision import datasets, transforms

    # torchvision reads ROOT/MNIST/raw/<name>; point it at our verified files instead of downloading.
    root = tempfile.mkdtemp(prefix="lenet5-seed-")
    os.makedirs(os.path.join(root, "MNIST"))
    os.symlink(os.path.abspath(args.data), os.path.join(root, "MNIST", "raw"))
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train = datasets.MNIST(root, train=True, download=False, transform=tf)
    test = datasets.MNIST(root, train=False, download=False, transform=tf)
    tr, va = split_indices(len(train), 0.1, 123)
    train_loader = DataLoader(train, batch_size=args.batch, sampler=SubsetRandomSampler(tr.tolist()), num_workers=2)
    val_loader = DataLoader(train, batch_size=args.batch, sampler=SubsetRandomSampler(va.tolist()), num_workers=2)
    test_loader = DataLoader(test, batch_size=args.batch, num_workers=2)
    torch.manual_seed(123)
    model = LeNet()
    xavier_(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)

    def run_eval(loader):
        model.eval()
        correct = n = 0
        with torch.no_grad():
            for xb, yb in loader:
                correct += (model(xb).argmax(1) == yb).sum().item()
                n += len(yb)
        model.train()
        return correct / n

    epochs = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for xb, yb in train_loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        run_eval(val_loader)
        epochs.append(time.perf_counter() - start)
    start = time.perf_counter()
    test_acc = run_eval(test_loader)
    return {"epoch_seconds": epochs, "train_images": len(tr), "eval_seconds": time.perf_counter() - start,
            "eval_images": len(test), "test_accuracy": test_acc}


def check_loss(args):
    model = LeNet()
    model.load_state_dict(load_safetensors(args.check_loss), strict=True)
    x = normalised(read_idx(os.path.join(args.data, "train-images-idx3-ubyte"))[: args.batch])
    y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte"))[: args.batch]
    with torch.no_grad():
        return {"loss": F.cross_entropy(model(x), y).item()}


def logits(args):
    model = LeNet()
    model.load_state_dict(load_safetensors(args.logits), strict=True)
    x = normalised(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte"))[: args.batch])
    with torch.no_grad():
        return {"logits": model(x).tolist()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", choices=["fast", "compiled", "seed"], default="fast")
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="fast/compiled pipelines: cpu or cuda[:N] [cpu]")
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                   help="torch.compile's mode for --pipeline compiled [default]")
    p.add_argument("--check-loss", metavar="WEIGHTS")
    p.add_argument("--logits", metavar="WEIGHTS")
    p.add_argument("--export-random", metavar="FILE")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.export_random:
        torch.manual_seed(args.seed)
        save_safetensors(LeNet().state_dict(), args.export_random)
        return 0
    if args.check_loss:
        result = check_loss(args)
    elif args.logits:
        result = logits(args)
    else:
        result = seed_pipeline(args) if args.pipeline == "seed" else fast(args)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
