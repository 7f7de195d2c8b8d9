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
  --config C       the reference of lenet5's config C (with --set KEY=VALUE, --epochs, --batch as lenet5's
                    flags): C as `lenet5 config` resolves it (--binary), its network (the seed's LeNet-5 with
                    its activation, pooling and init; the modern net; the 1998 net with C3's connection table
                    and the RBF output), loss (label smoothing, the 1998 loss, L1), optimizer, schedule,
                    distortions, batch size and split, written as a PyTorch user would. A key it does not
                    mirror is refused. With --pipeline compiled, under torch.compile. With --evaluate W: the
                    test-set loss and accuracy of lenet5's weights W; with --logits W: their logits.
  --export-random F save a freshly initialised (PyTorch default init, seed --seed) LeNet's state_dict to
                    the .safetensors file F, as `safetensors.torch.save_file` would (interop test).

Timings are printed as one JSON line: per-epoch seconds (training + validation, like lenet5's metrics.csv)
and test-set evaluation seconds.
"""
import argparse
import json
import math
import os
import re
import struct
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.1307, 0.3081  # MNIST's training-pixel mean and std, as in the seed and lenet5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LeNet(nn.Module):
    """The seed's module: conv(6@5x5, pad 2) -> pool -> act -> conv(16@5x5) -> pool -> act -> 120 -> 84 -> 10;
    with `batch_norm`, a batch norm before each of the four activations, and `dropout` before each fc layer
    (lenet5's `model.batch_norm`, `model.dropout`)."""

    def __init__(self, activation="relu", pooling="avg", batch_norm=False, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.act = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
        self.pool = {"avg": F.avg_pool2d, "max": F.max_pool2d}[pooling]
        norm = (lambda bn, n: bn(n)) if batch_norm else (lambda bn, n: nn.Identity())
        self.bn1, self.bn2 = norm(nn.BatchNorm2d, 6), norm(nn.BatchNorm2d, 16)
        self.bn3, self.bn4 = norm(nn.BatchNorm1d, 120), norm(nn.BatchNorm1d, 84)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.act(self.bn1(self.pool(self.conv1(x), 2)))
        x = self.act(self.bn2(self.pool(self.conv2(x), 2)))
        x = self.act(self.bn3(self.fc1(self.drop(x.flatten(1)))))
        x = self.act(self.bn4(self.fc2(self.drop(x))))
        return self.fc3(self.drop(x))

    def weights(self):
        """The weight tensors (not biases): what the L1 penalty sums."""
        return [self.conv1.weight, self.conv2.weight, self.fc1.weight, self.fc2.weight, self.fc3.weight]


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


def normalised(images_u8, mean=MEAN, std=STD):
    return (images_u8.float() / 255.0 - mean) / std


def split_indices(n, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = round(n * fraction)
    return perm[n_val:], perm[:n_val]


def evaluate(model, images, labels, batch=2000, loss_fn=F.cross_entropy):
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            logits = model(images[i : i + batch])
            y = labels[i : i + batch]
            loss += loss_fn(logits, y, reduction="sum").double()
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


# ---------------------------------------------------------------------------------------------------------
# --config: the reference of any configuration lenet5 trains, built from lenet5's own resolved config.

# Per-dataset (mean, std) of the training pixels in [0, 1], as crates/lab/src/config/schema.rs lists them.
NORMALIZATION = {"mnist": (MEAN, STD), "fashion-mnist": (0.2860, 0.3530)}
# Keys that change nothing the reference computes (where files go, logging, the device and threads, which
# come from --device/--threads here).
RUNTIME_KEYS = {"data.download", "trainer.save_period", "trainer.device", "trainer.threads",
                "trainer.cudnn_benchmark", "trainer.runs_dir", "trainer.tensorboard", "trainer.layer_health",
                "logging.mlflow.tracking_uri", "logging.mlflow.experiment"}
# Every other key of lenet5's config, each mirrored below; a key lenet5 gains later is refused until it is.
MIRRORED_KEYS = {
    "model.variant", "model.activation", "model.pooling", "model.init", "model.dropout", "model.batch_norm",
    *(f"optimizer.{k}" for k in ("type", "lr", "weight_decay", "momentum", "nesterov", "betas", "eps", "amsgrad",
                                 "alpha", "centered")),
    "regularization.l1", "regularization.label_smoothing",
    *(f"lr_scheduler.{k}" for k in ("type", "step_size", "gamma", "t_max", "eta_min", "factor", "patience",
                                    "monitor", "piecewise", "pct_start", "div_factor", "final_div_factor")),
    "data.dataset", "data.dir", "data.batch_size", "data.validation_split", "data.shuffle", "data.seed",
    *(f"data.augment.{k}" for k in ("translate", "scale", "squeeze", "shear", "rotate")),
    "trainer.epochs", "trainer.early_stopping.enabled", "trainer.early_stopping.monitor",
    "trainer.early_stopping.patience", "trainer.early_stopping.min_delta", "trainer.seed",
    "trainer.init_seed", "trainer.order_seed",
}


def epoch_seed(trainer, epoch):
    """lenet5's seed of epoch `epoch`'s order, dropout and distortions (TrainerConfig::epoch_seed): the low 32
    bits of SplitMix64's finaliser of (order seed << 32) ^ epoch."""
    order = trainer["seed"] if trainer.get("order_seed") is None else trainer["order_seed"]
    m = (1 << 64) - 1
    z = ((((order << 32) ^ epoch) & m) + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return (z ^ (z >> 31)) & 0xFFFFFFFF


class Unsupported(Exception):
    """A config the reference does not mirror: the message names the key and value."""


def yaml_scalar(text):
    """One flow value as `lenet5 config` prints it (serde_yaml): bool, null, number, [list], 'quoted' or bare."""
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    if text[:1] == "'":
        return text[1:-1].replace("''", "'")
    try:
        return json.loads(text)  # numbers (1.0e-8 too) and flow lists of numbers
    except ValueError:
        return text


def parse_resolved(text):
    """`lenet5 config`'s output (defaults.yaml's layout: nested by indent, one flow value per line, comments
    after ` #`) as nested dicts. No PyYAML needed: lenet5 renders every config in this one layout."""
    root = {}
    stack = [(-1, root)]
    for line in text.splitlines():
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, rest = body.partition(":")
        value = rest.split(" #", 1)[0].strip()
        while stack[-1][0] >= indent:
            stack.pop()
        if value:
            stack[-1][1][key] = yaml_scalar(value)
        else:
            stack[-1][1][key] = {}
            stack.append((indent, stack[-1][1][key]))
    return root


def flat_keys(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flat_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def resolved_config(args):
    """lenet5's resolved config for --config with --set/--epochs/--batch, via `lenet5 config` (one owner of
    defaults, overrides and validation); refuses what the reference does not mirror."""
    cmd = [args.binary, "config", args.config, *(a for kv in args.set for a in ("--set", kv))]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.batch:
        cmd += ["--batch-size", str(args.batch)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise Unsupported(f"--binary {args.binary}: {e.strerror} (build it: cargo build --release)")
    if proc.returncode != 0:
        raise Unsupported(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    cfg = parse_resolved(proc.stdout)
    unknown = sorted(set(flat_keys(cfg)) - MIRRORED_KEYS - RUNTIME_KEYS)
    if unknown:
        raise Unsupported(f"{args.config}: the PyTorch reference does not mirror {', '.join(unknown)}")
    if cfg["data"]["dataset"] not in NORMALIZATION:
        raise Unsupported(f"{args.config}: data.dataset = {cfg['data']['dataset']} is not mirrored by the "
                          f"PyTorch reference (only {', '.join(NORMALIZATION)})")
    s, stop = cfg["lr_scheduler"], cfg["trainer"]["early_stopping"]
    if s["type"] == "plateau" and s["monitor"] != stop["monitor"]:
        # lenet5 hands its plateau schedule the early-stopping monitor's value (TrainState::record).
        raise Unsupported(f"{args.config}: lr_scheduler.monitor = {s['monitor']} with trainer.early_stopping."
                          f"monitor = {stop['monitor']} is not mirrored (lenet5 steps the plateau schedule on "
                          "the early-stopping monitor's value)")
    return cfg


def init_(model, init):
    """lenet5's `model.init` on every conv and linear layer: `default` keeps PyTorch's layer defaults (what
    lenet5's `default` copies); the others draw the weights and zero the biases."""
    draw = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_,
            "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
            "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")}
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            draw[init](m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ModernLeNet(nn.Module):
    """LeNet-5's widths with batch norm after every conv and hidden fc layer (their biases dropped), ReLU,
    max pooling and dropout before each fc layer (crates/core/src/nn/lenet5.rs, `lenet5_modern`)."""

    def __init__(self, dropout):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16)
        self.fc1, self.bn3 = nn.Linear(16 * 5 * 5, 120, bias=False), nn.BatchNorm1d(120)
        self.fc2, self.bn4 = nn.Linear(120, 84, bias=False), nn.BatchNorm1d(84)
        self.fc3 = nn.Linear(84, 10)
        self.drop = nn.Dropout(dropout)
        # lenet5 builds its batch norms with tch's defaults, which start γ uniform in [0, 1) (PyTorch: 1).
        for bn in (self.bn1, self.bn2, self.bn3, self.bn4):
            nn.init.uniform_(bn.weight, 0.0, 1.0)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.fc1(self.drop(x.flatten(1)))))
        x = F.relu(self.bn4(self.fc2(self.drop(x))))
        return self.fc3(self.drop(x))

    def weights(self):
        return [self.conv1.weight, self.conv2.weight, self.fc1.weight, self.fc2.weight, self.fc3.weight]


def lenet1998_tables():
    """Table I (C3's connections) and the RBF prototypes (10 bitmaps of 7×12), read from their one owner,
    crates/core/src/nn/lenet1998.rs, so the two nets cannot drift apart."""
    with open(os.path.join(ROOT, "crates", "core", "src", "nn", "lenet1998.rs")) as f:
        source = f.read()
    body = lambda name: source.split(f"pub const {name}", 1)[1].split("= [", 1)[1].split("\n];", 1)[0]
    table_src = body("C3_TABLE")
    table = [[int(i) for i in row.split(",") if i.strip()] for row in re.findall(r"&\[([\d, ]+)\]", table_src)]
    rows = re.findall(r'"([.#]{7})"', body("PROTOTYPES"))
    if len(table) != 16 or len(rows) != 120:
        raise Unsupported("crates/core/src/nn/lenet1998.rs: C3_TABLE or PROTOTYPES not found in the expected form")
    prototypes = torch.tensor([[1.0 if c == "#" else -1.0 for c in "".join(rows[d * 12 : d * 12 + 12])]
                               for d in range(10)])
    return table, prototypes


def squash(a):
    """The paper's f(a) = 1.7159 tanh(2a/3)."""
    return 1.7159 * torch.tanh(a * (2.0 / 3.0))


def lecun_uniform_(tensor, fan_in):
    nn.init.uniform_(tensor, -2.4 / fan_in, 2.4 / fan_in)


class Subsampling(nn.Module):
    """S2/S4: each map's 2×2 sums times a trainable coefficient plus a trainable bias, squashed."""

    def __init__(self, maps):
        super().__init__()
        self.coef, self.bias = nn.Parameter(torch.empty(maps)), nn.Parameter(torch.empty(maps))
        lecun_uniform_(self.coef, 4)
        lecun_uniform_(self.bias, 4)

    def forward(self, x):
        s = F.avg_pool2d(x, 2) * 4
        return squash(s * self.coef.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1))


class ConnectionTableConv(nn.Conv2d):
    """C3: a 5×5 convolution in which output map o sees only the input maps table[o] (the paper's Table I),
    its weights masked; weights and bias start uniform in ±2.4 / (25 × the map's inputs)."""

    def __init__(self, table):
        super().__init__(6, 16, 5)
        mask = torch.zeros(16, 6, 1, 1)
        for out, inputs in enumerate(table):
            mask[out, inputs] = 1.0
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            for out, inputs in enumerate(table):
                lecun_uniform_(self.weight[out], 25 * len(inputs))
                lecun_uniform_(self.bias[out : out + 1], 25 * len(inputs))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias)


class EuclideanRBF(nn.Module):
    """The output layer: y_i = Σ_j (x_j − w_ij)² with fixed ±1 prototypes w; returns −y (nearest = arg-max)."""

    def __init__(self, prototypes):
        super().__init__()
        self.register_buffer("prototypes", prototypes)

    def forward(self, x):
        return -(x.unsqueeze(1) - self.prototypes.unsqueeze(0)).square().sum(2)


class LeNet1998(nn.Module):
    """LeCun et al. 1998 (crates/core/src/nn/lenet1998.rs): 32×32 input with background −0.1 and ink 1.175 →
    C1 → S2 → C3 (Table I) → S4 → C5 → F6 → Euclidean RBF; squashed by 1.7159 tanh(2a/3)."""

    def __init__(self, normalization):
        super().__init__()
        table, prototypes = lenet1998_tables()
        self.mean, self.std = normalization
        self.c1, self.s2 = nn.Conv2d(1, 6, 5), Subsampling(6)
        self.c3, self.s4 = ConnectionTableConv(table), Subsampling(16)
        self.c5, self.f6 = nn.Conv2d(16, 120, 5), nn.Linear(120, 84)
        self.rbf = EuclideanRBF(prototypes)
        for layer, fan_in in ((self.c1, 25), (self.c5, 400), (self.f6, 120)):
            lecun_uniform_(layer.weight, fan_in)
            lecun_uniform_(layer.bias, fan_in)

    def forward(self, x):
        x = F.pad(x * self.std + self.mean, (2, 2, 2, 2)) * 1.275 - 0.1  # normalised 28×28 → the paper's 32×32
        x = self.s2(squash(self.c1(x)))
        x = self.s4(squash(self.c3(x)))
        x = squash(self.c5(x).flatten(1))
        return self.rbf(squash(self.f6(x)))

    def weights(self):
        return [self.c1.weight, self.c3.weight, self.c5.weight, self.f6.weight]


def map_loss(neg_penalties, labels, reduction="mean"):
    """The paper's loss (eq. 9, j = 0.1): cross-entropy over [−j, −y_0, …, −y_9] with the target one up."""
    rubbish = neg_penalties.new_full((len(labels), 1), -0.1)
    return F.cross_entropy(torch.cat([rubbish, neg_penalties], 1), labels + 1, reduction=reduction)


def build_model(m, dataset):
    """The network `model.*` asks for, initialised as lenet5 initialises it."""
    if m["variant"] == "lenet5_1998":
        return LeNet1998(NORMALIZATION[dataset])
    if m["variant"] == "lenet5_modern":
        model = ModernLeNet(m["dropout"])
    else:
        model = LeNet(m["activation"], m["pooling"], m["batch_norm"], m["dropout"])
    init_(model, m["init"])
    return model


def build_optimizer(model, o):
    """`optimizer.*` as torch.optim builds it (lenet5's Adam is PyTorch's Adam, L2 added to the gradient)."""
    params, lr, wd = model.parameters(), o["lr"], o["weight_decay"]
    if o["type"] == "adam":
        return torch.optim.Adam(params, lr, betas=o["betas"], eps=o["eps"], weight_decay=wd, amsgrad=o["amsgrad"])
    if o["type"] == "adamw":
        return torch.optim.AdamW(params, lr, betas=o["betas"], eps=o["eps"], weight_decay=wd, amsgrad=o["amsgrad"])
    if o["type"] == "sgd":
        return torch.optim.SGD(params, lr, momentum=o["momentum"], weight_decay=wd, nesterov=o["nesterov"])
    return torch.optim.RMSprop(params, lr, alpha=o["alpha"], eps=o["eps"], weight_decay=wd,
                               momentum=o["momentum"], centered=o["centered"])


def build_schedule(opt, s, lr, epochs, per_epoch):
    """(scheduler, steps every batch?) for `lr_scheduler.*`, as lenet5 steps it: per epoch, or one-cycle per
    batch; piecewise as a LambdaLR over 0-based epochs."""
    kind = s["type"]
    sched = torch.optim.lr_scheduler
    if kind == "onecycle":
        return sched.OneCycleLR(opt, lr, total_steps=epochs * per_epoch, pct_start=s["pct_start"],
                                div_factor=s["div_factor"], final_div_factor=s["final_div_factor"],
                                cycle_momentum=False), True
    if kind == "step":
        return sched.StepLR(opt, s["step_size"], s["gamma"]), False
    if kind == "cosine":
        return sched.CosineAnnealingLR(opt, s["t_max"], s["eta_min"]), False
    if kind == "plateau":
        mode = "min" if s["monitor"] == "val_loss" else "max"
        return sched.ReduceLROnPlateau(opt, mode, s["factor"], s["patience"], threshold=0.0), False
    if kind == "piecewise":
        def piecewise(e):  # lenet5's lr for 1-based epoch e + 1, as a factor of the base lr
            end = 0
            for n, value in s["piecewise"]:
                end += n
                if e + 1 <= end:
                    return value / lr
            return s["piecewise"][-1][1] / lr if s["piecewise"] else 1.0
        return sched.LambdaLR(opt, piecewise), False
    return None, False


def distort(x, a, background):
    """Random planar affine distortions, one per image (crates/core/src/nn/augment.rs): rotation · (zoom with
    squeeze) · shear plus a shift, sampled bilinearly with F.affine_grid/F.grid_sample around the background."""
    n, h = x.shape[0], x.shape[2]
    uniform = lambda bound: (torch.rand(n, device=x.device) * 2 - 1) * bound
    angle, zoom = uniform(math.radians(a["rotate"])), uniform(a["scale"]) + 1
    squeeze, shear = uniform(a["squeeze"]), uniform(a["shear"])
    tx, ty = uniform(a["translate"] * 2 / h), uniform(a["translate"] * 2 / h)
    sx, sy = zoom * (1 + squeeze), zoom * (1 - squeeze)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos * sx, cos * sx * shear - sin * sy, tx], 1),
                         torch.stack([sin * sx, sin * sx * shear + cos * sy, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background


def config_splits(d, dev):
    """(train, validation, test) as (images, labels) on `dev`: normalised by the dataset's statistics, the
    validation split held out by lenet5's seeded permutation (`data.seed`)."""
    mean, std = NORMALIZATION[d["dataset"]]
    root = d["dir"] or os.path.join("data", d["dataset"])
    read = lambda name: read_idx(os.path.join(root, name))
    x, y = normalised(read("train-images-idx3-ubyte"), mean, std), read("train-labels-idx1-ubyte")
    tr, va = split_indices(len(y), d["validation_split"], d["seed"])
    test = normalised(read("t10k-images-idx3-ubyte"), mean, std), read("t10k-labels-idx1-ubyte")
    return tuple((a.to(dev), b.to(dev)) for a, b in ((x[tr], y[tr]), (x[va], y[va]), test))


def loss_fn(cfg, model):
    """The training objective: the network's own loss (label smoothing for cross-entropy), plus L1 over the
    weight tensors (not biases) when regularization.l1 > 0."""
    reg = cfg["regularization"]
    if cfg["model"]["variant"] == "lenet5_1998":
        base = map_loss
    else:
        base = lambda out, y: F.cross_entropy(out, y, label_smoothing=reg["label_smoothing"])
    if reg["l1"] == 0:
        return base
    return lambda out, y: base(out, y) + reg["l1"] * sum(w.abs().sum() for w in model.weights())


def config_evaluate(model, variant, images, labels, batch=2000):
    """(mean loss without label smoothing, accuracy) in eval mode, in lenet5's evaluation batches."""
    plain = map_loss if variant == "lenet5_1998" else F.cross_entropy
    return evaluate(model, images, labels, batch, plain)


def compile_model(model, cfg, train, validation, batch):
    """torch.compile (inductor, static shapes) with every shape the timed epoch meets compiled beforehand (a
    full and the last training batch, the evaluation batches), then the weights put back. Returns the
    compiled model and the seconds it took."""
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    start = time.perf_counter()
    compiled = torch.compile(model, backend="inductor", dynamic=False)
    warm, loss = build_optimizer(compiled, cfg["optimizer"]), loss_fn(cfg, model)
    for n in sorted({batch, len(train[1]) % batch or batch}):
        loss(compiled(train[0][:n]), train[1][:n]).backward()
        warm.step()
        warm.zero_grad(set_to_none=True)
    if len(validation[1]):
        config_evaluate(compiled, cfg["model"]["variant"], *validation)
    model.load_state_dict(initial)
    sync(train[0].device)
    return compiled, time.perf_counter() - start


def train_config(args):
    """Trains lenet5's configuration --config for trainer.epochs epochs (--epochs overrides it) as a PyTorch
    user would; per-epoch seconds (training + validation, as lenet5's metrics.csv) and accuracies as JSON."""
    cfg = resolved_config(args)
    d, t, variant = cfg["data"], cfg["trainer"], cfg["model"]["variant"]
    dev = torch.device(args.device)
    train, validation, test = config_splits(d, dev)
    torch.manual_seed(t["seed"] if t.get("init_seed") is None else t["init_seed"])
    model = build_model(cfg["model"], d["dataset"]).to(dev)
    net, compile_seconds = model, 0.0
    if args.pipeline == "compiled":
        net, compile_seconds = compile_model(model, cfg, train, validation, d["batch_size"])
    opt, loss = build_optimizer(model, cfg["optimizer"]), loss_fn(cfg, model)
    batch, n = d["batch_size"], len(train[1])
    per_epoch = math.ceil(n / batch)
    schedule, per_batch = build_schedule(opt, cfg["lr_scheduler"], cfg["optimizer"]["lr"], t["epochs"], per_epoch)
    background = (0.0 - NORMALIZATION[d["dataset"]][0]) / NORMALIZATION[d["dataset"]][1]
    distorted = any(v != 0 for v in d["augment"].values())
    stop = t["early_stopping"]
    best, bad, result = None, 0, {"epoch_seconds": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(1, t["epochs"] + 1):
        sync(dev)
        start = time.perf_counter()
        torch.manual_seed(epoch_seed(t, epoch))  # lenet5's shuffle seed for this epoch
        order = torch.randperm(n, device=dev) if d["shuffle"] else torch.arange(n, device=dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            x, y = train[0][idx], train[1][idx]
            if distorted:
                x = distort(x, d["augment"], background)
            out = net(x)
            batch_loss = loss(out, y)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            if per_batch:
                schedule.step()
            loss_sum += batch_loss.detach() * len(y)
            correct += (out.argmax(1) == y).sum()
        if len(validation[1]):
            val_loss, val_acc = config_evaluate(net, variant, *validation)
        else:  # no validation split: lenet5 reports the training numbers in its place
            val_loss, val_acc = loss_sum.item() / n, correct.item() / n
        monitored = val_loss if cfg["lr_scheduler"]["monitor"] == "val_loss" else val_acc
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(monitored)
        elif schedule is not None and not per_batch:
            schedule.step()
        sync(dev)
        result["epoch_seconds"].append(time.perf_counter() - start)
        result["val_loss"].append(val_loss)
        result["val_accuracy"].append(val_acc)
        watched = val_loss if stop["monitor"] == "val_loss" else val_acc
        better = best is None or (watched < best - stop["min_delta"] if stop["monitor"] == "val_loss"
                                  else watched > best + stop["min_delta"])
        best, bad = (watched, 0) if better else (best, bad + 1)
        if stop["enabled"] and bad >= stop["patience"]:
            break
    start = time.perf_counter()
    result["test_loss"], result["test_accuracy"] = config_evaluate(net, variant, *test)
    sync(dev)
    result.update(train_images=n, eval_seconds=time.perf_counter() - start, eval_images=len(test[1]),
                  compile_seconds=compile_seconds)
    return result


def load_weights(model, path):
    """lenet5's .safetensors into `model`, every tensor matched by name; only PyTorch's batch-norm step
    counters (which lenet5 does not keep) may be missing."""
    missing, unexpected = model.load_state_dict(load_safetensors(path), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise Unsupported(f"{path}: missing {missing}, unexpected {unexpected}")


def config_check(args):
    """--config with --evaluate W: test-set loss and accuracy of W in the reference network; with --logits W:
    the logits of the first --batch test images."""
    cfg = resolved_config(args)
    _, _, (images, labels) = config_splits(cfg["data"], torch.device("cpu"))
    model = build_model(cfg["model"], cfg["data"]["dataset"])
    load_weights(model, args.evaluate or args.logits)
    if args.logits:
        model.eval()
        with torch.no_grad():
            return {"logits": model(images[: args.batch or 128]).tolist()}
    loss, accuracy = config_evaluate(model, cfg["model"]["variant"], images, labels)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(images[i:i + 2000]) for i in range(0, len(labels), 2000)])
    return {"loss": loss, "accuracy": accuracy, "calibration": calibration(logits, labels)}


def calibration(logits, labels, n_bins=15):
    """NLL, Brier (summed over classes) and the ECE as torchmetrics' multiclass_calibration_error computes it
    (softmax, top-1 confidence, bucketize(right=True) - 1 over linspace(0, 1, n_bins + 1), L1)."""
    n = len(labels)
    log_p = logits.double().log_softmax(1)
    nll = -log_p.gather(1, labels.unsqueeze(1)).sum().item() / n
    brier = ((log_p.exp() - F.one_hot(labels, log_p.shape[1]).double()) ** 2).sum().item() / n
    confidences, predictions = logits.float().softmax(1).max(dim=1)
    accuracies = predictions.eq(labels).float()
    boundaries = torch.linspace(0, 1, n_bins + 1)
    indices = torch.bucketize(confidences, boundaries, right=True) - 1
    count = torch.zeros(n_bins + 1).scatter_add_(0, indices, torch.ones_like(confidences))
    conf = torch.nan_to_num(torch.zeros(n_bins + 1).scatter_add_(0, indices, confidences) / count)
    acc = torch.nan_to_num(torch.zeros(n_bins + 1).scatter_add_(0, indices, accuracies) / count)
    ece = torch.sum(torch.abs(acc - conf) * count / count.sum()).item()
    return {"nll": nll, "brier": brier, "ece": ece, "counts": count.long().tolist()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", choices=["fast", "compiled", "seed"], default="fast")
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--epochs", type=int, help="epochs to train [1; with --config: trainer.epochs]")
    p.add_argument("--batch", type=int, help="batch size [128; with --config: data.batch_size]")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="fast/compiled pipelines: cpu or cuda[:N] [cpu]")
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                   help="torch.compile's mode for --pipeline compiled [default]")
    p.add_argument("--config", metavar="CONFIG.yaml", help="train (or with --evaluate/--logits, build) the "
                   "reference of this lenet5 config, resolved by `lenet5 config` (fast or compiled pipeline)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="with --config: an override, "
                   "as lenet5's --set (repeatable)")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "lenet5"),
                   help="with --config: the lenet5 that resolves it [target/release/lenet5]")
    p.add_argument("--evaluate", metavar="WEIGHTS", help="with --config: test-set loss, accuracy and calibration "
                   "(NLL, Brier, torchmetrics' ECE) of WEIGHTS")
    p.add_argument("--check-loss", metavar="WEIGHTS")
    p.add_argument("--logits", metavar="WEIGHTS")
    p.add_argument("--export-random", metavar="FILE")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.config:
        if args.pipeline == "seed" or args.check_loss or args.export_random:
            p.error("--config works with the fast and compiled pipelines, --evaluate and --logits")
        try:
            result = config_check(args) if args.evaluate or args.logits else train_config(args)
        except Unsupported as e:
            sys.exit(f"reference.py: {e}")
        print(json.dumps(result))
        return 0
    if args.evaluate or args.set:
        p.error("--evaluate and --set need --config")
    args.epochs, args.batch = args.epochs or 1, args.batch or 128
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
