#!/usr/bin/env python3
"""lenet5 vs PyTorch, side by side in one invocation (run through scripts/bench, which sets things up).

Times one epoch of the seed's ReLU / avg-pool / Adam(amsgrad) config (batch 128, 54k train + 6k validation)
for the contenders, alternating A B C D A B C D ... so that drift on a shared machine hits all alike:
  lenet5     target/release/lenet5 train configs/relu_adam.yaml --epochs 1
  reference  scripts/reference.py --pipeline fast  (same model/optimizer/split/threads, tensors in memory)
  compiled   scripts/reference.py --pipeline compiled  (the same under torch.compile, inductor, static shapes;
             compile time excluded from the epoch and reported apart)
  seed       scripts/reference.py --pipeline seed  (torchvision MNIST + DataLoader, 2 workers, as the seed)
Epoch time is training plus validation, measured inside each process (start-up and data loading excluded).
With --study-runs N, also measures a study's throughput: N short runs (3 epochs) through `lenet5 sweep`, one at
a time with all threads vs --jobs 2 with the threads divided, alternating, as runs per hour.
With --baseline BIN (scripts/bench --baseline-rev REV builds one), another lenet5 binary joins every comparison
(epoch, speedrun, study throughput), alternating with the others: what the changes since REV bought.
--baseline-set KEY=VALUE (repeatable) trains the baseline's epoch and speedrun runs with those overrides, e.g.
--baseline-set trainer.fused_cpu=false to time REV's LibTorch step where REV had another one.
With --preload LIB, every process (lenet5 and Python alike) runs with LD_PRELOAD=LIB, e.g. another malloc.
With --compile-mode M, the compiled reference uses torch.compile's mode M (reduce-overhead: CUDA graphs).
With --device cuda (and --batch, --epochs), the epoch table on a GPU: lenet5, eager and compiled PyTorch with
all data on the device; with --epochs E > 1 each process trains E epochs and the table shows the last (steady
state), the first (CUDA/cuDNN warm-up included) apart. --binary BIN times a lenet5 built elsewhere (a GPU
machine without Rust); then run this file directly, with MNIST in data/mnist.
With --matrix, instead: one epoch of every distinct training configuration of the shipped sweeps (MATRIX
below), lenet5 against `scripts/reference.py --config` (its PyTorch eager reference), alternating A B A B
within each of --matrix-rounds rounds at each of --matrix-threads (1 and 2), the default configuration also
against torch.compile; one row per configuration and thread count (medians, the ratio, its per-round
spread, each side's validation accuracy). Then (also alone with --concurrent) two default trainings of
configs/relu_adam.yaml started together against one alone, for lenet5 and for the eager reference.
Prints medians, images/s, ratios reference/lenet5, GFLOP/s against the CPU's FP32 peak, test-set evaluation
throughput and each process's peak resident memory. With --speedrun-seeds, also trains configs/speedrun.yaml
with those seeds and reports test accuracy and training wall time.
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "lenet5")
# LeNet-5 training cost per image (forward + backward), from the layer shapes: ~2.26 MFLOP.
TRAIN_FLOP_PER_IMAGE = 2.26e6


def run(cmd, cwd=ROOT):
    """Runs cmd; returns its stdout."""
    return run_rss(cmd, cwd)[0]


ENV = dict(os.environ)
# Extra `--set KEY=VALUE` arguments per binary path (--baseline-set).
EXTRA = {}


class Failed(Exception):
    """A contender's process exited non-zero; the message holds the command and its stderr."""


def run_rss(cmd, cwd=ROOT):
    """Runs cmd, returning (stdout, peak RSS MiB) from wait4's rusage of exactly that process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise Failed(f"bench: {' '.join(cmd)} failed:\n{err.read().decode()}")
        return out.read().decode(), usage.ru_maxrss / 1024


def lenet5_epoch(binary, args, workdir):
    run_dir = os.path.join(workdir, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    _, rss = run_rss([binary, "train", "configs/relu_adam.yaml", "--epochs", str(args.epochs), "--threads",
                      str(args.threads), "--batch-size", str(args.batch), "--device", args.device, "--run-dir", run_dir,
                      *EXTRA.get(binary, [])])
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        epochs = [float(r["seconds"]) for r in csv.DictReader(f)]
    test = json.loads(run([binary, "test", run_dir, "--json", "--device", args.device]))
    return {"epoch": epochs[-1], "first": epochs[0], "eval": test["seconds"], "eval_images": test["images"],
            "train_images": 54000, "rss": rss}


def python_epoch(pipeline, args):
    out, rss = run_rss([sys.executable, "scripts/reference.py", "--pipeline", pipeline, "--threads", str(args.threads),
                        "--device", args.device, "--batch", str(args.batch), "--epochs", str(args.epochs),
                        "--compile-mode", args.compile_mode])
    r = json.loads(out)
    return {"epoch": r["epoch_seconds"][-1], "first": r["epoch_seconds"][0], "eval": r["eval_seconds"],
            "eval_images": r["eval_images"], "train_images": r["train_images"], "rss": rss,
            "compile": r.get("compile_seconds", 0.0)}


def study(binary, runs, jobs, threads, workdir):
    """Seconds for `runs` 3-epoch runs of the seed's config through `lenet5 sweep --jobs JOBS`."""
    sweep = os.path.join(workdir, "throughput.yaml")
    with open(sweep, "w") as f:
        f.write(f"base: {os.path.join(ROOT, 'configs/relu_adam.yaml')}\nset: {{trainer.epochs: 3, trainer.device: cpu}}\n"
                f"seeds: {runs}\n")
    out = os.path.join(workdir, f"study-{jobs}")
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run([binary, "sweep", sweep, "--out", out, "--jobs", str(jobs), "--threads", str(threads)])
    return time.perf_counter() - start


def fp32_peak_gflops(threads):
    """cores × clock × FP32 FLOP/cycle (AVX-512: 64, AVX2+FMA: 32, else 16), from /proc/cpuinfo."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None, "unknown CPU"
    flags = next((l for l in info.splitlines() if l.startswith("flags")), "")
    mhz = max(float(l.split(":")[1]) for l in info.splitlines() if l.startswith("cpu MHz"))
    per_cycle = 64 if " avx512f" in flags else 32 if " fma" in flags and " avx2" in flags else 16
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "?")
    return threads * mhz / 1000 * per_cycle, f"{model}, {threads} threads × {mhz:.0f} MHz × {per_cycle} FLOP/cycle"


def gpu_name(device):
    """The GPU's name as nvidia-smi reports it (index from cuda:N), or "?"."""
    index = device.partition(":")[2] or "0"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", index],
                             capture_output=True, text=True, check=True).stdout
        return out.strip() or "?"
    except (OSError, subprocess.CalledProcessError):
        return "?"


def speedrun(binary, seed, threads, workdir):
    """(test accuracy, training seconds) of configs/speedrun.yaml with `seed`."""
    run_dir = os.path.join(workdir, f"speedrun-{seed}")
    shutil.rmtree(run_dir, ignore_errors=True)
    run([binary, "train", "configs/speedrun.yaml", "--seed", str(seed), "--threads", str(threads), "--device", "cpu",
         "--run-dir", run_dir, *EXTRA.get(binary, [])])
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        seconds = sum(float(r["seconds"]) for r in csv.DictReader(f))
    with open(os.path.join(run_dir, "test.json")) as f:
        return json.load(f)["accuracy"], seconds


# --matrix: one row per distinct training configuration of the shipped sweeps (sweeps/techniques.yaml,
# sweeps/seed_table.yaml, sweeps/beyond.yaml) and configs/fashion_mnist.yaml: (row, config, --set overrides),
# named as the sweeps name their arms. default: ReLU, average pooling, Adam (lr 0.001, amsgrad), batch 128.
# Arms that differ only in their initial weights (init_*), epochs, early stopping or an L2/L1 strength train
# the same step as a row here.
MATRIX = [
    ("default", "configs/relu_adam.yaml", []),
    ("relu_max", "configs/relu_adam.yaml", ["model.pooling=max"]),
    ("tanh_avg", "configs/relu_adam.yaml", ["model.activation=tanh"]),
    ("tanh_max", "configs/relu_adam.yaml", ["model.activation=tanh", "model.pooling=max"]),
    ("sigmoid_avg", "configs/relu_adam.yaml", ["model.activation=sigmoid"]),
    ("sigmoid_max", "configs/relu_adam.yaml", ["model.activation=sigmoid", "model.pooling=max"]),
    ("adamw", "configs/relu_adam.yaml", ["optimizer.type=adamw", "optimizer.weight_decay=0.01"]),
    ("rmsprop", "configs/relu_adam.yaml", ["optimizer.type=rmsprop"]),
    ("sgd", "configs/relu_adam.yaml", ["optimizer.type=sgd", "optimizer.lr=0.1"]),
    ("sgd_momentum", "configs/sgd_momentum.yaml", []),
    ("sgd_nesterov", "configs/sgd_nesterov.yaml", []),
    ("adam_l2", "configs/relu_adam_weight_decay.yaml", []),
    ("l1", "configs/l1.yaml", []),
    ("lenet5_1998", "configs/lenet5_1998.yaml", []),
    ("lenet5_1998_distortions", "configs/lenet5_1998_distortions.yaml", []),
    ("lenet5_modern", "configs/lenet5_modern.yaml", []),
    ("fashion_mnist", "configs/fashion_mnist.yaml", []),
]


def sets(overrides):
    return [a for kv in overrides for a in ("--set", kv)]


def lenet5_cmd(binary, config, overrides, threads, run_dir):
    """One epoch of `config` in lenet5; threads None: its default (trainer.threads 0)."""
    cmd = [binary, "train", config, "--epochs", "1", "--run-dir", run_dir, "--device", "cpu", *sets(overrides)]
    return cmd + (["--threads", str(threads)] if threads else [])


def reference_cmd(binary, config, overrides, threads, pipeline="fast"):
    """One epoch of `config` in the PyTorch reference; threads None: torch's default."""
    return [sys.executable, "scripts/reference.py", "--config", config, "--epochs", "1", "--binary", binary,
            "--pipeline", pipeline, "--threads", str(threads or 0), *sets(overrides)]


def lenet5_result(run_dir):
    """(seconds, validation accuracy) of a one-epoch run, from its metrics.csv."""
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        row = list(csv.DictReader(f))[-1]
    return float(row["seconds"]), float(row["val_accuracy"])


def reference_result(stdout):
    r = json.loads(stdout)
    return r["epoch_seconds"][-1], r["val_accuracy"][-1]


def matrix_cell(binary, row, threads, workdir, contender):
    """(s/epoch, validation accuracy) of one contender (lenet5, eager or compiled) on one matrix row."""
    _, config, overrides = row
    if contender == "lenet5":
        run_dir = os.path.join(workdir, "matrix-run")
        shutil.rmtree(run_dir, ignore_errors=True)
        run(lenet5_cmd(binary, config, overrides, threads, run_dir))
        return lenet5_result(run_dir)
    pipeline = "compiled" if contender == "compiled" else "fast"
    return reference_result(run(reference_cmd(binary, config, overrides, threads, pipeline)))


def spread(ratios):
    return f"{min(ratios):.2f}–{max(ratios):.2f}×"


def matrix(binary, rows, rounds, thread_counts, workdir):
    """Every row of `rows` (of MATRIX) at every thread count, alternating lenet5 and its references within
    each round (A B A B …), so a round's ratio shares that minute's load; then prints the table."""
    cells = {}  # (row name, threads, contender) -> [(seconds, val accuracy) per round]
    for r in range(rounds):
        for row in rows:
            for threads in thread_counts:
                for contender in ("lenet5", "eager") + (("compiled",) if row == MATRIX[0] else ()):
                    try:
                        result = matrix_cell(binary, row, threads, workdir, contender)
                    except Failed as e:
                        if contender != "compiled":
                            raise
                        print(f"{e}\nbench: compiled left out", file=sys.stderr)
                        continue
                    cells.setdefault((row[0], threads, contender), []).append(result)
                    print(f"round {r + 1}/{rounds} {row[0]}, {threads} thread(s), {contender}: {result[0]:.2f} s/epoch",
                          file=sys.stderr)
    matrix_table(cells, rows, rounds, thread_counts)


def matrix_table(cells, rows, rounds, thread_counts):
    """One table row per (row, threads): medians, the ratio and its per-round spread, validation accuracies."""
    print(f"\nOne epoch of each distinct configuration of the shipped sweeps, CPU, median of {rounds} rounds")
    print("| configuration | threads | lenet5 s/epoch | eager s/epoch | eager / lenet5 | per-round | "
          "compiled / lenet5 | val acc lenet5 | val acc eager |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in rows:
        for threads in thread_counts:
            ours, eager = cells[(name, threads, "lenet5")], cells[(name, threads, "eager")]
            base = statistics.median(s for s, _ in ours)
            ratio = statistics.median(s for s, _ in eager) / base
            per_round = [e[0] / o[0] for e, o in zip(eager, ours)]
            compiled = cells.get((name, threads, "compiled"))
            comp = f"{statistics.median(s for s, _ in compiled) / base:.2f}×" if compiled else ""
            acc = lambda rs: f"{100 * statistics.median(a for _, a in rs):.2f}%"
            print(f"| {name} | {threads} | {base:.2f} | {statistics.median(s for s, _ in eager):.2f} | {ratio:.2f}× "
                  f"| {spread(per_round)} | {comp} | {acc(ours)} | {acc(eager)} |")
    print("\n(eager / lenet5: how many times faster lenet5 is; per-round: the lowest and highest of that ratio"
          "\n within one round; compiled: the reference under torch.compile, compile time excluded, default row only;"
          "\n val acc: validation accuracy after the epoch, the training split's where the config has none)")


def together(jobs):
    """Starts every job's command at once and waits for all; returns each job's parse of its stdout."""
    procs = []
    for cmd, _ in jobs:
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        procs.append((subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=ENV), out, err, cmd))
    for proc, out, err, cmd in procs:
        if proc.wait() != 0:
            err.seek(0)
            raise Failed(f"bench: {' '.join(cmd)} failed:\n{err.read().decode()}")
    outs = []
    for (proc, out, err, cmd), (_, parse) in zip(procs, jobs):
        out.seek(0)
        outs.append(parse(out.read().decode()))
        out.close()
        err.close()
    return outs


def concurrent(binary, rounds, workdir):
    """Two default trainings of configs/relu_adam.yaml started together against one alone, for lenet5 (its
    default threads) and the eager reference (torch's default threads), alternating within each round."""
    def lenet5_job(k):
        run_dir = os.path.join(workdir, f"concurrent-{k}")
        shutil.rmtree(run_dir, ignore_errors=True)
        return lenet5_cmd(binary, "configs/relu_adam.yaml", [], None, run_dir), lambda _: lenet5_result(run_dir)

    def eager_job(_):
        return reference_cmd(binary, "configs/relu_adam.yaml", [], None), reference_result

    times = {}  # (contender, "alone" | "two at once") -> [seconds of each run]
    for r in range(rounds):
        for name, job in (("lenet5", lenet5_job), ("eager", eager_job)):
            for label, n in (("alone", 1), ("two at once", 2)):
                secs = [s for s, _ in together([job(k) for k in range(n)])]
                times.setdefault((name, label), []).extend(secs)
                print(f"round {r + 1}/{rounds} concurrent {name} {label}: "
                      + ", ".join(f"{s:.2f}" for s in secs) + " s/epoch", file=sys.stderr)
    print(f"\nTwo trainings of configs/relu_adam.yaml started together vs one alone, default threads, "
          f"{rounds} rounds")
    print("| contender | alone s/epoch (median) | two at once: each run's s/epoch | two at once / alone (median) "
          "| slowest / alone |")
    print("|---|---:|---:|---:|---:|")
    for name in ("lenet5", "eager"):
        alone, pair = times[(name, "alone")], times[(name, "two at once")]
        base = statistics.median(alone)
        print(f"| {name} | {base:.2f} | {', '.join(f'{s:.2f}' for s in pair)} | "
              f"{statistics.median(pair) / base:.2f}× | {max(pair) / base:.2f}× |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median of these) [3]")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads for all [all cores]")
    p.add_argument("--skip-seed", action="store_true", help="leave out the (slow) seed pipeline")
    p.add_argument("--skip-compiled", action="store_true", help="leave out the torch.compile reference")
    p.add_argument("--speedrun-seeds", type=int, nargs="*", default=[], help="also time configs/speedrun.yaml")
    p.add_argument("--study-runs", type=int, default=0, help="also time N 3-epoch runs: --jobs 1 vs --jobs 2")
    p.add_argument("--baseline", metavar="BIN", help="another lenet5 binary to compare (scripts/bench --baseline-rev)")
    p.add_argument("--baseline-set", metavar="KEY=VALUE", action="append", default=[],
                   help="an override for the baseline's runs (repeatable), e.g. trainer.fused_cpu=false")
    p.add_argument("--preload", metavar="LIB", help="LD_PRELOAD for every contender, e.g. libtcmalloc_minimal.so.4")
    p.add_argument("--device", default="cpu", help="cpu, or cuda[:N] for the epoch table on a GPU [cpu]")
    p.add_argument("--batch", type=int, default=128, help="training batch size for the epoch table [128]")
    p.add_argument("--epochs", type=int, default=1, help="epochs per process; the table times the last [1]")
    p.add_argument("--binary", default=BIN, help="the lenet5 to time [target/release/lenet5]")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode of the compiled reference, e.g. "
                   "reduce-overhead (CUDA graphs) [default]")
    p.add_argument("--matrix", action="store_true", help="instead of the table above: one epoch of every distinct "
                   "configuration of the shipped sweeps, lenet5 vs its PyTorch eager reference (MATRIX), then "
                   "the two-concurrent-trainings case")
    p.add_argument("--matrix-rounds", type=int, default=3, help="alternating rounds of the matrix [3]")
    p.add_argument("--matrix-threads", type=int, nargs="+", default=[1, 2], help="thread counts of the matrix [1 2]")
    p.add_argument("--matrix-rows", nargs="+", metavar="ROW", help="only these rows of the matrix, by name "
                   "(e.g. relu_max lenet5_modern) [all]")
    p.add_argument("--concurrent", action="store_true", help="only the two-concurrent-trainings case "
                   "(--rounds rounds)")
    args = p.parse_args()
    if args.matrix or args.concurrent:
        binary = os.path.abspath(args.binary)
        with tempfile.TemporaryDirectory(prefix="lenet5-bench-") as workdir:
            if args.matrix:
                names = [name for name, _, _ in MATRIX]
                unknown = [r for r in args.matrix_rows or [] if r not in names]
                if unknown:
                    p.error(f"--matrix-rows: no row {', '.join(unknown)} (rows: {', '.join(names)})")
                rows = [r for r in MATRIX if not args.matrix_rows or r[0] in args.matrix_rows]
                matrix(binary, rows, args.matrix_rounds, args.matrix_threads, workdir)
            concurrent(binary, args.matrix_rounds if args.matrix else args.rounds, workdir)
        return
    on_cpu = args.device == "cpu"
    if not on_cpu and (args.speedrun_seeds or args.study_runs):
        p.error("--speedrun-seeds and --study-runs time CPU runs; leave them out with --device")
    if args.preload:
        ENV["LD_PRELOAD"] = args.preload
    binaries = {"lenet5": os.path.abspath(args.binary)}
    if args.baseline:
        binaries["baseline"] = os.path.abspath(args.baseline)
        EXTRA[binaries["baseline"]] = [a for kv in args.baseline_set for a in ("--set", kv)]

    contenders = {name: (lambda d, b=b: lenet5_epoch(b, args, d)) for name, b in binaries.items()}
    contenders["reference"] = lambda d: python_epoch("fast", args)
    compiled = "compiled" if args.compile_mode == "default" else f"compiled {args.compile_mode}"
    if not args.skip_compiled:
        contenders[compiled] = lambda d: python_epoch("compiled", args)
    if not args.skip_seed and on_cpu:  # the seed's DataLoader pipeline is CPU-only
        contenders["seed"] = lambda d: python_epoch("seed", args)
    results = {name: [] for name in contenders}
    sprint = {name: [] for name in binaries}
    half = max(1, args.threads // 2)
    # (label, binary, jobs, threads per run); with a baseline, its one-at-a-time setting is "today's".
    settings = [(f"{name} --jobs 1, {args.threads} threads", b, 1, args.threads) for name, b in binaries.items()]
    settings.insert(1, (f"lenet5 --jobs 2, {half} thread(s) each", binaries["lenet5"], 2, half))
    throughput = {label: [] for label, *_ in settings}
    with tempfile.TemporaryDirectory(prefix="lenet5-bench-") as workdir:
        for r in range(args.rounds):
            for name, fn in list(contenders.items()):
                try:
                    results[name].append(fn(workdir))
                except Failed as e:
                    if name in binaries:
                        raise
                    # A reference that cannot run here (no compiler for inductor, say) leaves the table.
                    print(f"{e}\nbench: {name} left out", file=sys.stderr)
                    del contenders[name], results[name]
                    continue
                print(f"round {r + 1}/{args.rounds} {name}: {results[name][-1]['epoch']:.2f} s/epoch", file=sys.stderr)
        for seed in args.speedrun_seeds:
            for name, b in binaries.items():
                sprint[name].append((seed, *speedrun(b, seed, args.threads, workdir)))
        for r in range(args.rounds if args.study_runs else 0):
            for label, b, jobs, threads in settings:
                throughput[label].append(study(b, args.study_runs, jobs, threads, workdir))
                print(f"round {r + 1}/{args.rounds} study, {label}: {throughput[label][-1]:.0f} s", file=sys.stderr)

    peak, peak_desc = fp32_peak_gflops(args.threads) if on_cpu else (None, "")
    base = statistics.median(x["epoch"] for x in results["lenet5"])
    where = f"CPU, {args.threads} threads" if on_cpu else f"{args.device} ({gpu_name(args.device)})"
    print(f"\nOne epoch, batch {args.batch}, 54k train + 6k validation, {where}, median of {args.rounds}")
    if args.epochs > 1:
        print(f"Each process trained {args.epochs} epochs; times are its last epoch, the first (with warm-up) apart")
    if args.preload:
        print(f"Every process ran with LD_PRELOAD={args.preload}")
    print(f"FP32 peak: {peak:.0f} GFLOP/s ({peak_desc})\n" if peak else "")
    first = " first epoch s |" if args.epochs > 1 else ""
    print(f"| contender | s/epoch (median) |{first} train images/s | ratio vs lenet5 | per-round ratios | GFLOP/s "
          "| % of FP32 peak | test eval images/s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if first else ""))
    for name, rs in results.items():
        epoch = statistics.median(x["epoch"] for x in rs)
        ips = rs[0]["train_images"] / epoch
        gflops = TRAIN_FLOP_PER_IMAGE * ips / 1e9
        eval_ips = statistics.median(x["eval_images"] / x["eval"] for x in rs)
        rss = max(x["rss"] for x in rs)
        pct = f"{100 * gflops / peak:.1f}%" if peak else "?"
        # Each round runs the contenders back to back, so a round's ratio shares that minute's machine load.
        per_round = [x["epoch"] / l["epoch"] for x, l in zip(rs, results["lenet5"])]
        spread = f"{min(per_round):.2f}–{max(per_round):.2f}×"
        warm = f" {statistics.median(x['first'] for x in rs):.2f} |" if first else ""
        print(f"| {name} | {epoch:.2f} |{warm} {ips:,.0f} | {epoch / base:.2f}× | {spread} | {gflops:.1f} | {pct} "
              f"| {eval_ips:,.0f} | {rss:.0f} |")
    print("\n(ratio = contender's median epoch time / lenet5's: how many times faster lenet5 is; per-round ratios:"
          "\n the lowest and highest of the same ratio within one alternating round)")
    if not on_cpu:
        print("(lenet5's test eval is its own process, `lenet5 test`, so on a GPU it includes CUDA and cuDNN start-up;"
              "\n the references evaluate inside their warm training process)")
    if compiled in results:
        compile_s = statistics.median(x["compile"] for x in results[compiled])
        print(f"torch.compile: {compile_s:.1f} s to compile (median; not in its epoch time)")
    if args.study_runs:
        n = args.study_runs
        ref_label = settings[-1][0] if args.baseline else settings[0][0]
        ref = throughput[ref_label]
        print(f"\nstudy throughput: {n} runs of 3 epochs through lenet5 sweep, median of {args.rounds} rounds")
        print(f"| setting | seconds | runs/hour | vs {ref_label} | per-round |")
        print("|---|---:|---:|---:|---:|")
        for label, times in throughput.items():
            t = statistics.median(times)
            per_round = [a / b for a, b in zip(ref, times)]
            print(f"| {label} | {t:.0f} | {3600 * n / t:.1f} | {statistics.median(ref) / t:.2f}× "
                  f"| {min(per_round):.2f}–{max(per_round):.2f}× |")
    if args.speedrun_seeds:
        print("\nspeedrun (configs/speedrun.yaml):")
        print("| binary | seed | test accuracy | training wall time |")
        print("|---|---:|---:|---:|")
        for name, rows in sprint.items():
            for seed, acc, seconds in rows:
                print(f"| {name} | {seed} | {100 * acc:.2f}% | {seconds:.2f} s |")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        sys.exit(str(e))
