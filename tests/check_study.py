#!/usr/bin/env python3
"""Recomputes a study report's numbers from its run files with scipy and statsmodels and compares them with
lenet5's groups.csv and comparisons.csv (tests/study.rs runs it). Usage: check_study.py REPORT_DIR SWEEP_DIR...
(several sweep directories: one report over all of them, its groups named `sweep/group`).

Every group: Kaplan–Meier medians of epochs to 98% / 99% (scipy ecdf on censored data; a run that never got
there censored at its planned budget, trainer.epochs) with their Brookmeyer–Crowley interval (the log-log band)
and in optimizer steps; the test interval clipped to [0, 100]. Every comparison: which runs pair by seed and
which are shared (the same numbers in every epoch both ran and the same test accuracy), and so which test it
must use; then Δ, its interval and p (scipy ttest_rel when paired, ttest_ind(equal_var=False)
otherwise; ttest_1samp of per-seed contrast values or a Welch–Satterthwaite contrast for a grid's main effects
and interactions), TOST (statsmodels ttost_paired / ttost_ind, unequal variances), Holm over the family
(statsmodels multipletests), Bonferroni's simultaneous interval, the equivalence bound (the 1 − 2α/m interval's
farther end), the minimal detectable difference, P(improvement) (Mann–Whitney U / nm) with Newcombe's score
interval (scipy brentq), the gap's, the ECE's and the NLL's differences (same test, Holm each in its own
family), the log-rank p (scipy
logrank), each `group @ selection` row (the best checkpoint against the last, ttest_rel over the group's runs),
and Lakens' four verdicts. The test set's own sampling error, from each run's predictions.csv.gz (best_val_loss):
each group's test_set_se and variance.csv exactly, each group-vs-reference row's McNemar counts exactly (scipy
binomtest per seed pair), and its bootstrap interval loosely (it holds Δ over the images, and its width is
within 20% of the normal approximation 2 · 1.96 · SE); NaN where a run kept no predictions. Exits 1 naming the
first mismatch. A crossed.csv (`report --cross`) is checked the same way as a family of its own: its cells are
the variants of sweep.yaml with no base or tune of their own and only crossed keys set (or keys every variant
sets, each cell's own setting), levels from their runs' config.yaml, the baseline's first."""
import csv, gzip, json, math, os, re, sys, warnings
import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

report_dir, sweep_dirs = sys.argv[1], sys.argv[2:]
multi = len(sweep_dirs) > 1
def tail(d, parts):
    return "/".join(os.path.normpath(d).split(os.sep)[-parts:])


# Each sweep's name as lenet5 gives it: its directory's name, or parent/name where two share one.
short = [tail(d, 1) for d in sweep_dirs]
sweeps = {(tail(d, 1 if short.count(n) == 1 else 2) if multi else ""): d for d, n in zip(sweep_dirs, short)}
manifests = {
    name: list(csv.DictReader(open(os.path.join(d, "manifest.csv")))) for name, d in sweeps.items()
}


def rows(name):
    with open(os.path.join(report_dir, name)) as f:
        return list(csv.DictReader(f))


groups_csv, comparisons = rows("groups.csv"), rows("comparisons.csv")


def locate(label):
    """(sweep name, group) of a report's group name."""
    return tuple(label.rsplit("/", 1)) if multi else ("", label)


def runs(label):
    study, group = locate(label)
    d = sweeps[study]
    return [os.path.join(d, "runs", r["id"]) for r in manifests[study] if r["group"] == group and r["status"] == "finished"]


def config_lines(run):
    """config.yaml as (section, key, value) without comments."""
    section, out = "", []
    for line in open(os.path.join(run, "config.yaml")):
        text = line.split("#")[0].rstrip()
        if not text.strip():
            continue
        if not text.startswith(" "):
            section = text.strip().rstrip(":")
            continue
        key, _, value = text.strip().partition(":")
        out.append((section, key, value.strip()))
    return out


def config_value(run, section, key):
    return next(v for s, k, v in config_lines(run) if s == section and k == key)


def seeds(run):
    """What pairs runs (lenet5's identity::seeds): trainer.seed, init_seed, order_seed (null, or absent in
    runs made before they existed, is the seed), data.seed."""
    t = {k: v for s, k, v in config_lines(run) if s == "trainer"}
    apart = tuple(None if t.get(k, "null") == "null" else int(t[k]) for k in ("init_seed", "order_seed"))
    return (int(t["seed"]), *apart, int(config_value(run, "data", "seed")))



def accuracy(run):
    return 100 * json.load(open(os.path.join(run, "test.json")))["accuracy"]


def gap(run):
    path = os.path.join(run, "train_eval.json")
    if not os.path.exists(path):
        return None
    return 100 * json.load(open(path))["accuracy"] - accuracy(run)


def metrics(run):
    return list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))


def same_run(x, y):
    """The same numbers: the test accuracy, and every epoch both ran."""
    mx, my = metrics(x), metrics(y)
    n = min(len(mx), len(my))
    cols = ["loss", "accuracy", "val_loss", "val_accuracy"]
    return n > 0 and accuracy(x) == accuracy(y) and all(
        float(p[c]) == float(q[c]) for p, q in zip(mx[:n], my[:n]) for c in cols
    )


def seed_pairs(a, b):
    by_seed = {seeds(y): y for y in b}
    return [(x, by_seed[seeds(x)]) for x in a if seeds(x) in by_seed]


def validated(label):
    """Every run held out a validation split (else lenet5 reports no convergence for the group)."""
    return all(float(config_value(d, "data", "validation_split")) > 0 for d in runs(label))


def steps_per_epoch(label):
    """Optimizer steps in one epoch on the dataset's full training split (its nominal size), first run's config."""
    run = runs(label)[0]
    train = {"mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000}[config_value(run, "data", "dataset")]
    split, batch = float(config_value(run, "data", "validation_split")), int(config_value(run, "data", "batch_size"))
    return math.ceil(math.floor(train * (1 - split)) / batch)


def durations(label, threshold):
    times, observed = [], []
    for d in runs(label):
        m = metrics(d)
        hit = next((int(r["epoch"]) for r in m if float(r["val_accuracy"]) >= threshold), None)
        budget = max(int(m[-1]["epoch"]), int(config_value(d, "trainer", "epochs")))
        times.append(hit if hit is not None else budget)
        observed.append(hit is not None)
    t, e = np.array(times, float), np.array(observed)
    return stats.CensoredData(uncensored=t[e], right=t[~e]), e.sum()


def close(name, got, want, tol=1e-6):
    got = float(got) if got not in ("", "NaN") else math.nan
    if math.isnan(want) and math.isnan(got):
        return
    if not abs(got - want) <= tol * max(1.0, abs(want)):
        sys.exit(f"{name}: lenet5 {got}, scipy/statsmodels {want}")


def newcombe(a, b):
    """P(improvement) and Newcombe's (2006) Method 5 score interval."""
    m, n = len(a), len(b)
    th = stats.mannwhitneyu(a, b).statistic / (m * n)
    ns, z = (m + n) / 2, stats.norm.ppf(0.975)
    v = lambda t: t * (1 - t) / (m * n) * (1 + (ns - 1) * (1 - t) / (2 - t) + (ns - 1) * t / (1 + t))
    f = lambda t: abs(t - th) - z * math.sqrt(max(v(t), 0))
    lo = 0.0 if th == 0 else optimize.brentq(f, 0, th - 1e-12 if th == 1 else th)
    hi = 1.0 if th == 1 else optimize.brentq(f, th + 1e-12 if th == 0 else th, 1)
    return th, lo, hi


checked = 0
for g in groups_csv:
    accs = np.array([accuracy(d) for d in runs(g["group"])])
    if len(accs) > 1:
        half = stats.t.ppf(0.975, len(accs) - 1) * stats.sem(accs)  # 0 when every run scored alike
        ci = (accs.mean() - half, accs.mean() + half)
        close(f"{g['group']} test_ci_low", g["test_ci_low"], max(ci[0], 0.0))
        close(f"{g['group']} test_ci_high", g["test_ci_high"], min(ci[1], 100.0))
    for threshold, column in [(0.98, "epochs_to_98_median"), (0.99, "epochs_to_99_median")]:
        data, events = durations(g["group"], threshold)
        if events == 0 or not validated(g["group"]):
            close(f"{g['group']} {column}", g[column], math.nan)
            continue
        sf = stats.ecdf(data).sf

        # The median is the first time S ≤ 1/2; an S of exactly 1/2 (a product of rationals) may come out a
        # rounding above or below it, in scipy's float arithmetic as in lenet5's.
        def first_below_half(probabilities):
            return next((q for q, p in zip(sf.quantiles, probabilities) if p <= 0.5 + 1e-12), math.nan)

        median = first_below_half(sf.probabilities)
        close(f"{g['group']} {column}", g[column], median)
        # Brookmeyer–Crowley: from where the log-log band's lower edge reaches 0.5 to where its upper edge does.
        with warnings.catch_warnings():  # undefined where S = 0: NaN there, as lenet5 has it
            warnings.simplefilter("ignore", RuntimeWarning)
            band = sf.confidence_interval(0.95, method="log-log")
        for end, edge in [("low", band.low), ("high", band.high)]:
            name = column.replace("median", end)
            close(f"{g['group']} {name}", g[name], first_below_half(edge.probabilities))
        steps = column.replace("epochs", "steps")
        close(f"{g['group']} {steps}", g[steps], median * steps_per_epoch(g["group"]))
        checked += 1


class Test:
    """A t-test reduced to what the report needs: estimate, se, df (and scipy's result for p and intervals)."""

    def __init__(self, estimate, se, df):
        self.estimate, self.se, self.df = estimate, se, df
        self.p = 2 * stats.t.sf(abs(estimate / se), df)

    def interval(self, level):
        half = stats.t.ppf(0.5 + level / 2, self.df) * self.se
        return self.estimate - half, self.estimate + half


def paired_test(x, y):
    r = stats.ttest_rel(x, y)
    d = np.array(x) - np.array(y)
    t = Test(d.mean(), d.std(ddof=1) / math.sqrt(len(d)), len(d) - 1)
    assert abs(t.p - r.pvalue) < 1e-9 and np.allclose(t.interval(0.95), tuple(r.confidence_interval(0.95)))
    return t


def welch_test(samples):
    """Σ c·mean(x) with the Welch–Satterthwaite se and df; for (a, 1), (b, −1) scipy's Welch test."""
    v = [c * c * np.var(x, ddof=1) / len(x) for x, c in samples]
    df = sum(v) ** 2 / sum(vi**2 / (len(x) - 1) for vi, (x, c) in zip(v, samples))
    t = Test(sum(c * np.mean(x) for x, c in samples), math.sqrt(sum(v)), df)
    if len(samples) == 2:
        r = stats.ttest_ind(samples[0][0], samples[1][0], equal_var=False)
        assert abs(t.p - r.pvalue) < 1e-9 and np.allclose(t.interval(0.95), tuple(r.confidence_interval(0.95)))
    return t


def pair_test(c):
    """The test a group-vs-reference row must use, its estimate, TOST p, and the gap's test."""
    a, b = runs(c["group"]), runs(c["reference"])
    pairs = seed_pairs(a, b)
    shared = sum(same_run(x, y) for x, y in pairs)
    close(f"{c['group']} n_pairs", c["n_pairs"], len(pairs))
    close(f"{c['group']} shared_runs", c["shared_runs"], shared)
    paired = shared > 0 or (len(pairs) >= 2 and len(pairs) == min(len(a), len(b)))
    if c["test"] != ("paired" if paired else "welch"):
        sys.exit(f"{c['group']}: test {c['test']}, the design says {'paired' if paired else 'welch'}")
    margin = float(c["margin"])
    if paired:
        x, y = [accuracy(p) for p, _ in pairs], [accuracy(q) for _, q in pairs]
        t, tost = paired_test(x, y), ttost_paired(np.array(x), np.array(y), -margin, margin)[0]
        gaps = [(gap(p), gap(q)) for p, q in pairs if gap(p) is not None and gap(q) is not None]
        g = paired_test(*zip(*gaps)) if len(gaps) >= 2 else None
    else:
        x, y = np.array([accuracy(d) for d in a]), np.array([accuracy(d) for d in b])
        t, tost = welch_test([(x, 1), (y, -1)]), ttost_ind(x, y, -margin, margin, usevar="unequal")[0]
        ga, gb = [gap(d) for d in a if gap(d) is not None], [gap(d) for d in b if gap(d) is not None]
        g = welch_test([(ga, 1), (gb, -1)]) if len(ga) >= 2 and len(gb) >= 2 else None
    all_a, all_b = [accuracy(d) for d in a], [accuracy(d) for d in b]
    th, lo, hi = newcombe(all_a, all_b)
    close(f"{c['group']} p_improvement", c["p_improvement"], th)
    close(f"{c['group']} p_improvement_low", c["p_improvement_low"], lo)
    close(f"{c['group']} p_improvement_high", c["p_improvement_high"], hi)
    for threshold, column in [(0.98, "logrank_98_p"), (0.99, "logrank_99_p")]:
        (u, eu), (v, ev) = durations(c["group"], threshold), durations(c["reference"], threshold)
        if eu + ev > 0 and validated(c["group"]) and validated(c["reference"]):
            close(f"{c['group']} {column}", c[column], stats.logrank(u, v).pvalue)
        else:
            close(f"{c['group']} {column}", c[column], math.nan)
    return t, tost, g


def selection_accuracy(run, name):
    """The test accuracy (points) of checkpoint selection `name` in test.json, or None."""
    scored = json.load(open(os.path.join(run, "test.json"))).get("selections", [])
    return next((100 * s["accuracy"] for s in scored if s["selection"] == name), None)


def selection_values(c):
    """A `group @ selection` row's paired values: each run's selected checkpoint and its last."""
    label, _, selected = c["group"].partition(" @ ")
    if c["reference"] != f"{label} @ last":
        sys.exit(f"{c['group']}: reference {c['reference']}, expected {label} @ last")
    pairs = [(selection_accuracy(r, selected), selection_accuracy(r, "last")) for r in runs(label)]
    return [p for p in pairs if None not in p]


def selection_test(c):
    """A checkpoint-selection row: the selected checkpoint against the last, ttest_rel over the group's runs."""
    x, y = zip(*selection_values(c))
    close(f"{c['group']} n_pairs", c["n_pairs"], len(x))
    if c["test"] != "paired":
        sys.exit(f"{c['group']}: test {c['test']}, the design says paired")
    margin = float(c["margin"])
    return paired_test(x, y), ttost_paired(np.array(x), np.array(y), -margin, margin)[0], None


def calibration_value(run, what):
    """The test set's ECE (points) or NLL from test.json's calibration, or None."""
    cal = json.load(open(os.path.join(run, "test.json"))).get("calibration")
    return None if cal is None else (100 * cal["ece"] if what == "ece" else cal["nll"])


def metric_test(c, what):
    """Δ ECE or Δ NLL of a group-vs-reference row: the test its accuracy uses, on that metric."""
    a, b = runs(c["group"]), runs(c["reference"])
    pairs = seed_pairs(a, b)
    shared = sum(same_run(x, y) for x, y in pairs)
    if shared > 0 or (len(pairs) >= 2 and len(pairs) == min(len(a), len(b))):
        values = [(calibration_value(p, what), calibration_value(q, what)) for p, q in pairs]
        values = [v for v in values if None not in v]
        return paired_test(*zip(*values)) if len(values) >= 2 else None
    x = [v for v in (calibration_value(d, what) for d in a) if v is not None]
    y = [v for v in (calibration_value(d, what) for d in b) if v is not None]
    return welch_test([(x, 1), (y, -1)]) if len(x) >= 2 and len(y) >= 2 else None


def grid_cells(variant_label):
    """A variant's grid groups: {group label: {key: value}}, and each key's values in sweep order."""
    study, variant = locate(variant_label)
    cells, levels = {}, {}
    for r in manifests[study]:
        parts = r["group"].split(",")
        if parts[0] != variant or len(parts) < 3:
            continue
        point = dict(p.split("=", 1) for p in parts[1:])
        cells[(f"{study}/" if multi else "") + r["group"]] = point
        for k, v in point.items():
            levels.setdefault(k, [])
            if v not in levels[k]:
                levels[k].append(v)
    return cells, levels


def sweep_variants(study):
    """sweep.yaml's variants as [name, has base or tune of its own, keys set], and its baseline (the layout
    serde_yaml writes: `- name:` items, two-space fields, `set:` keys at four spaces, lists as `- ` items)."""
    unquote = lambda text: text.strip().strip("'\"")
    variants, baseline, section, field = [], None, None, None
    for line in open(os.path.join(sweeps[study], "sweep.yaml")):
        line = line.rstrip("\n")
        if line.startswith("baseline: "):
            baseline = unquote(line.split(": ", 1)[1])
        if not line.startswith(("- ", "  ")):
            section = line.split(":")[0]
            continue
        if section != "variants":
            continue
        if line.startswith("- name: "):
            variants.append([unquote(line[len("- name: "):]), False, []])
        elif re.match(r"  \S", line):
            field, _, value = line.strip().partition(":")
            if field in ("base", "tune") and value.strip() != "null":
                variants[-1][1] = True
        elif field == "set" and re.match(r"    [^\s-]", line):
            variants[-1][2].append(unquote(line.strip().split(":")[0]))
    return variants, baseline


def config_entries(run):
    """config.yaml as [(dotted key, value)], a section's own line with an empty value, without comments."""
    stack, entries = [], []  # stack: (indent, name) of the sections the line is in
    for line in open(os.path.join(run, "config.yaml")):
        text = re.split(r"\s#", line.rstrip("\n"))[0].rstrip()
        if not text.strip():
            continue
        indent = len(text) - len(text.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        name, _, value = text.strip().partition(":")
        path = ".".join([n for _, n in stack] + [name])
        if not value.strip():
            stack.append((indent, name))
        entries.append((path, value.strip()))
    return entries


def config_level(run, key, set_keys):
    """A crossed key's level in a run's config.yaml: its value, or for a section {name: value, ...} over the
    keys inside it that some cell sets, in the file's order."""
    within = lambda k, c: k == c or k.startswith(c + ".")
    entries = config_entries(run)
    inside = [(p, v) for p, v in entries if p != key and within(p, key) and p in set_keys]
    if key in set_keys or not inside:
        return dict(entries)[key]
    return "{" + ", ".join(f"{p[len(key) + 1:]}: {v}" for p, v in inside) + "}"


def planned_run(label):
    """A run directory of the group, finished or not (its config.yaml is the group's)."""
    study, group = locate(label)
    return os.path.join(sweeps[study], "runs", next(r["id"] for r in manifests[study] if r["group"] == group))


def crossed_cells(study, keys):
    """The crossing's cells, {group label: {key: level}}, and each key's levels (the reference cell's first:
    the baseline's where it is a cell, else the first cell listed)."""
    variants, baseline = sweep_variants(study)
    within = lambda k, c: k == c or k.startswith(c + ".")
    everywhere = set.intersection(*(set(ks) for _, _, ks in variants)) if variants else set()
    crossed = lambda k: k in everywhere or any(within(k, c) for c in keys)
    members = [n for n, own, set_keys in variants if not own and all(crossed(k) for k in set_keys)]
    members.sort(key=lambda n: n != baseline)
    set_keys = {k for n, _, ks in variants if n in members for k in ks}
    cells, levels = {}, {k: [] for k in keys}
    for name in members:
        label = (f"{study}/" if multi else "") + name
        cells[label] = {k: config_level(planned_run(label), k, set_keys) for k in keys}
        for k in keys:
            if cells[label][k] not in levels[k]:
                levels[k].append(cells[label][k])
    return cells, levels


def sweep_margin(study, reference_accuracy):
    """The sweep's equivalence margin in points for a reference of this mean accuracy (0.25 when unset)."""
    for line in open(os.path.join(sweeps[study], "sweep.yaml")):
        if line.startswith("equivalence_margin: "):
            text = line.split(": ", 1)[1].strip().strip("'\"")
            if text == "null":
                break
            if text.endswith("%"):
                return float(text[:-1]) / 100 * (100 - reference_accuracy)
            return float(text)
    return 0.25


def contrast_test(c, crossing):
    """A grid row (crossing false) or a crossed.csv row: its coefficients from its name, then a paired
    (ttest_1samp) or Welch–Satterthwaite test."""
    variant, _, effect = c["group"].partition(": ")
    study, _ = locate(variant)
    cells, levels = crossed_cells(study, crossed_keys) if crossing else grid_cells(variant)
    terms = [t.split("=", 1) for t in effect.split(" × ")]
    n = len(cells)
    weight = n / math.prod(len(levels[k]) for k, _ in terms)
    coefficients = {}
    for label, point in cells.items():
        s = 1.0
        for k, v in terms:
            s *= 1.0 if point[k] == v else -1.0 if point[k] == levels[k][0] else 0.0
        if s:
            coefficients[label] = s / weight
    groups = {label: runs(label) for label in coefficients}
    seed_sets = [sorted(seeds(d) for d in rs) for rs in groups.values()]
    origin = next(l for l, point in cells.items() if all(point[k] == levels[k][0] for k in levels))
    margin = sweep_margin(study, np.mean([accuracy(d) for d in runs(origin)]))
    close(f"{c['group']} margin", c["margin"], margin)
    close(f"{c['group']} n", c["n"], sum(len(groups[l]) for l, k in coefficients.items() if k > 0))
    close(f"{c['group']} n_ref", c["n_ref"], sum(len(groups[l]) for l, k in coefficients.items() if k < 0))
    if all(s == seed_sets[0] for s in seed_sets) and len(seed_sets[0]) >= 2:
        values = []
        for seed in seed_sets[0]:
            values.append(sum(k * accuracy(next(d for d in groups[l] if seeds(d) == seed)) for l, k in coefficients.items()))
        r = stats.ttest_1samp(values, 0.0)
        t = Test(np.mean(values), np.std(values, ddof=1) / math.sqrt(len(values)), len(values) - 1)
        assert abs(t.p - r.pvalue) < 1e-9
        tost = ttost_paired(np.array(values), np.zeros(len(values)), -margin, margin)[0]
        expected = "paired_contrast"
        close(f"{c['group']} n_pairs", c["n_pairs"], len(values))
    else:
        t = welch_test([(np.array([accuracy(d) for d in groups[l]]), k) for l, k in coefficients.items()])
        tost = max(stats.t.sf((t.estimate + margin) / t.se, t.df), stats.t.cdf((t.estimate - margin) / t.se, t.df))
        expected = "welch_contrast"
    if c["test"] != expected:
        sys.exit(f"{c['group']}: test {c['test']}, the design says {expected}")
    return t, tost, None


for c in comparisons:
    if c["verdict"] == "identical runs (not tested)" and " @ " in c["group"]:
        if any(x != y for x, y in selection_values(c)):
            sys.exit(f"{c['group']}: called identical, but its selected checkpoints are not all the last")
    elif c["verdict"] == "identical runs (not tested)":
        pairs = seed_pairs(runs(c["group"]), runs(c["reference"]))
        if not pairs or not all(same_run(x, y) for x, y in pairs):
            sys.exit(f"{c['group']}: called identical, but its runs are not all its reference's")

crossed = rows("crossed.csv") if os.path.exists(os.path.join(report_dir, "crossed.csv")) else []
# The crossed keys, from its rows' names (`crossed: key=value × key=value`).
crossed_keys = sorted({t.split("=", 1)[0] for c in crossed for t in c["group"].partition(": ")[2].split(" × ")})
def check_family(comparisons, crossing=False):
    """Every tested row of one family (comparisons.csv, or crossed.csv: crossing), its Holm columns and
    verdicts."""
    counted = 0
    tested = [c for c in comparisons if c["verdict"] not in ("identical runs (not tested)", "too few runs")]
    family = len(tested)
    alpha = 0.05 / max(family, 1)
    p_raw, tost_raw, gap_raw = [], [], []
    metric_raw = {"ece": [], "nll": []}
    for c in tested:
        if " @ " in c["group"]:
            t, tost, g = selection_test(c)
        else:
            t, tost, g = contrast_test(c, crossing) if c["test"].endswith("contrast") else pair_test(c)
        name = c["group"]
        close(f"{name} delta", c["delta"], t.estimate)
        low, high = t.interval(0.95)
        close(f"{name} ci_low", c["ci_low"], low)
        close(f"{name} ci_high", c["ci_high"], high)
        close(f"{name} p", c["p"], t.p)
        close(f"{name} tost_p", c["tost_p"], tost)
        low, high = t.interval(1 - alpha)
        close(f"{name} sim_low", c["sim_low"], low)
        close(f"{name} sim_high", c["sim_high"], high)
        close(f"{name} equivalent_within", c["equivalent_within"], max(map(abs, t.interval(1 - 2 * alpha))))
        close(f"{name} mdd", c["mdd"], (stats.t.ppf(1 - alpha / 2, t.df) + stats.t.ppf(0.8, t.df)) * t.se)
        close(f"{name} gap_delta", c["gap_delta"], g.estimate if g else math.nan)
        close(f"{name} gap_p", c["gap_p"], g.p if g else math.nan)
        close(f"{name} family", c["family"], family)
        for what in ("ece", "nll"):
            m = None if c["test"].endswith("contrast") or " @ " in name else metric_test(c, what)
            close(f"{name} {what}_delta", c[f"{what}_delta"], m.estimate if m else math.nan)
            close(f"{name} {what}_p", c[f"{what}_p"], m.p if m else math.nan)
            metric_raw[what].append(m.p if m else math.nan)
        p_raw.append(t.p)
        tost_raw.append(tost)
        gap_raw.append(g.p if g else math.nan)
        counted += 1
    if tested:
        holm = lambda ps: multipletests(ps, method="holm")[1]
        def holm_known(raw):
            """Holm over the p-values that exist (NaN where a row has none), as lenet5's own families."""
            known = [i for i, p in enumerate(raw) if not math.isnan(p)]
            out = [math.nan] * len(raw)
            for i, p in zip(known, holm([raw[i] for i in known]) if known else []):
                out[i] = p
            return out

        gap_holm = holm_known(gap_raw)
        for what in ("ece", "nll"):
            for c, ph in zip(tested, holm_known(metric_raw[what])):
                close(f"{c['group']} {what}_p_holm", c[f"{what}_p_holm"], ph)
        for c, ph, th, gh in zip(tested, holm(p_raw), holm(tost_raw), gap_holm):
            close(f"{c['group']} p_holm", c["p_holm"], ph)
            close(f"{c['group']} tost_p_holm", c["tost_p_holm"], th)
            close(f"{c['group']} gap_p_holm", c["gap_p_holm"], gh)
            verdict = {(True, False): "differs", (True, True): "negligible", (False, True): "equivalent",
                       (False, False): "inconclusive"}[(ph < 0.05, th < 0.05)]
            if c["verdict"] != verdict:
                sys.exit(f"{c['group']}: verdict {c['verdict']}, the rules say {verdict}")
    return counted


if crossed:
    # Every main effect and two-way interaction of the crossing, in each sweep: none missing.
    for study in sweeps:
        _, lv = crossed_cells(study, crossed_keys)
        sizes = [len(lv[k]) - 1 for k in crossed_keys]
        want = sum(sizes) + sum(a * b for i, a in enumerate(sizes) for b in sizes[i + 1:])
        close(f"{study or 'the sweep'}: crossed rows", sum(locate(c["group"].partition(": ")[0])[0] == study for c in crossed), want)
checked += check_family(comparisons) + check_family(crossed, crossing=True)


def correct(run):
    """Per test image, whether the best_val_loss checkpoint got it right; None without predictions."""
    path = os.path.join(run, "predictions.csv.gz")
    if not os.path.exists(path):
        return None
    with gzip.open(path, "rt") as f:
        table = list(csv.DictReader(f))
    return np.array([r["best_val_loss"] == r["label"] for r in table])


def answers(rs):
    """The runs' per-image answers as a (runs, images) array, or None when one lacks them."""
    a = [correct(r) for r in rs]
    return None if not a or any(x is None for x in a) else np.array(a, dtype=float)


variance_csv = {r["group"]: r for r in rows("variance.csv")}
for g in groups_csv:
    a = answers(runs(g["group"]))
    m = a.mean(axis=0) if a is not None else None
    close(f"{g['group']} test_set_se", g["test_set_se"], 100 * m.std(ddof=1) / math.sqrt(len(m)) if a is not None else math.nan)
    v = variance_csv[g["group"]]
    accs = np.array([accuracy(d) for d in runs(g["group"])])
    total = np.var(accs, ddof=1) if len(accs) > 1 else math.nan
    binomial = np.mean([1e4 * p * (1 - p) / a.shape[1] for p in a.mean(axis=1)]) if a is not None else math.nan
    close(f"{g['group']} variance seed", v["seed"], total)
    close(f"{g['group']} variance test_set", v["test_set"], binomial)
    close(f"{g['group']} variance total", v["total"], total + binomial)
    close(f"{g['group']} variance test_set_share", v["test_set_share"], binomial / (total + binomial))
    checked += 1
for c in comparisons:
    if c["test"].endswith("contrast") or " @ " in c["group"]:
        continue
    a, b = runs(c["group"]), runs(c["reference"])
    paired = c["test"] == "paired"
    pairs = seed_pairs(a, b) if paired else []
    x, y = (answers([p for p, _ in pairs]), answers([q for _, q in pairs])) if paired else (answers(a), answers(b))
    if x is None or y is None:
        close(f"{c['group']} test_set_low", c["test_set_low"], math.nan)
        continue
    d = 100 * (x.mean(axis=0) - y.mean(axis=0))
    low, high = float(c["test_set_low"]), float(c["test_set_high"])
    if not low - 1e-9 <= d.mean() <= high + 1e-9:
        sys.exit(f"{c['group']}: test-set interval [{low}, {high}] does not hold Δ = {d.mean()}")
    normal = 2 * 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    if abs((high - low) - normal) > 0.2 * normal + 1e-9:
        sys.exit(f"{c['group']}: test-set interval width {high - low}, the normal one {normal}")
    differ = 0
    for p, q in zip(x, y) if paired else []:
        nb, nc = int(((p == 1) & (q == 0)).sum()), int(((p == 0) & (q == 1)).sum())
        differ += (stats.binomtest(min(nb, nc), nb + nc, 0.5).pvalue if nb + nc else 1.0) < 0.05
    close(f"{c['group']} mcnemar_pairs", c["mcnemar_pairs"], len(pairs))
    close(f"{c['group']} mcnemar_pairs_differ", c["mcnemar_pairs_differ"], differ)
    checked += 1
print(f"checked {checked} groups and comparisons")
