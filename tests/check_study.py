#!/usr/bin/env python3
"""Recomputes a study report's numbers from its run files with scipy and statsmodels and compares them with
lenet5's groups.csv and comparisons.csv (tests/study.rs runs it). Usage: check_study.py SWEEP_DIR REPORT_DIR.

Every tested comparison: Welch's Δ, interval and p (scipy), Holm over the family and Bonferroni's
simultaneous interval (statsmodels / scipy), the minimal detectable difference, TOST at the margin (statsmodels ttost_ind, unequal variances,
Holm over the family); every group: Kaplan–Meier medians of epochs to 98% / 99% (scipy ecdf on censored
data) with their Brookmeyer–Crowley interval (the log-log band) and in optimizer steps; every comparison,
the log-rank p against the reference (scipy logrank). Exits 1 naming the first mismatch."""
import csv, glob, json, math, os, sys, warnings
import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind

sweep_dir, report_dir = sys.argv[1], sys.argv[2]


def rows(name):
    with open(os.path.join(report_dir, name)) as f:
        return list(csv.DictReader(f))


groups_csv, comparisons = rows("groups.csv"), rows("comparisons.csv")
manifest = {r["id"]: r for r in csv.DictReader(open(os.path.join(sweep_dir, "manifest.csv")))}


def runs(group):
    return [os.path.join(sweep_dir, "runs", i) for i, r in manifest.items() if r["group"] == group]


def accuracies(group):
    return np.array([100 * json.load(open(os.path.join(d, "test.json")))["accuracy"] for d in runs(group)])


def config_value(run, key):
    """A top-level-unique key's value in a run's config.yaml (the file lenet5 writes: `  key: value  # ...`)."""
    line = next(l for l in open(os.path.join(run, "config.yaml")) if l.strip().startswith(key + ":"))
    return line.split(":", 1)[1].split("#")[0].strip()


def validated(group):
    """Every run held out a validation split (else its validation columns are the running training numbers,
    and lenet5 reports no convergence for the group)."""
    return all(float(config_value(d, "validation_split")) > 0 for d in runs(group))


def steps_per_epoch(group):
    """Optimizer steps in one epoch on the dataset's full training split (its nominal size), first run's config."""
    run = runs(group)[0]
    train = {"mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000}[config_value(run, "dataset")]
    split, batch = float(config_value(run, "validation_split")), int(config_value(run, "batch_size"))
    return math.ceil(math.floor(train * (1 - split)) / batch)


def durations(group, threshold):
    times, observed = [], []
    for d in runs(group):
        metrics = list(csv.DictReader(open(os.path.join(d, "metrics.csv"))))
        hit = next((int(r["epoch"]) for r in metrics if float(r["val_accuracy"]) >= threshold), None)
        times.append(hit if hit is not None else int(metrics[-1]["epoch"]))
        observed.append(hit is not None)
    t, e = np.array(times, float), np.array(observed)
    return stats.CensoredData(uncensored=t[e], right=t[~e]), e.sum()


def close(name, got, want, tol=1e-6):
    got = float(got) if got not in ("", "NaN") else math.nan
    if math.isnan(want) and math.isnan(got):
        return
    if not abs(got - want) <= tol * max(1.0, abs(want)):
        sys.exit(f"{name}: lenet5 {got}, scipy/statsmodels {want}")


checked = 0
for g in groups_csv:
    for threshold, column in [(0.98, "epochs_to_98_median"), (0.99, "epochs_to_99_median")]:
        data, events = durations(g["group"], threshold)
        if events == 0 or not validated(g["group"]):
            close(f"{g['group']} {column}", g[column], math.nan)
            continue
        sf = stats.ecdf(data).sf

        def first_below_half(probabilities):
            return next((q for q, p in zip(sf.quantiles, probabilities) if p <= 0.5), math.nan)

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

tested = [c for c in comparisons if c["verdict"] not in ("identical runs (not tested)", "too few runs")]
p_raw, tost_raw = [], []
for c in tested:
    a, b = accuracies(c["group"]), accuracies(c["reference"])
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(0.95)
    close(f"{c['group']} delta", c["delta"], a.mean() - b.mean())
    close(f"{c['group']} ci_low", c["ci_low"], ci.low)
    close(f"{c['group']} ci_high", c["ci_high"], ci.high)
    close(f"{c['group']} p", c["p"], r.pvalue)
    margin = float(c["margin"])
    tost = ttost_ind(a, b, -margin, margin, usevar="unequal")[0]
    close(f"{c['group']} tost_p", c["tost_p"], tost)
    sim = r.confidence_interval(1 - 0.05 / len(tested))
    close(f"{c['group']} sim_low", c["sim_low"], sim.low)
    close(f"{c['group']} sim_high", c["sim_high"], sim.high)
    for threshold, column in [(0.98, "logrank_98_p"), (0.99, "logrank_99_p")]:
        (x, ex), (y, ey) = durations(c["group"], threshold), durations(c["reference"], threshold)
        if ex + ey > 0 and validated(c["group"]) and validated(c["reference"]):
            close(f"{c['group']} {column}", c[column], stats.logrank(x, y).pvalue)
        else:
            close(f"{c['group']} {column}", c[column], math.nan)
    # MDD: (t.ppf(1 - alpha/2) + t.ppf(0.8)) * se with Welch's df, alpha = 0.05 / family size.
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se, df = math.sqrt(va + vb), (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    alpha = 0.05 / len(tested)
    close(f"{c['group']} mdd", c["mdd"], (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(0.8, df)) * se)
    p_raw.append(r.pvalue)
    tost_raw.append(tost)
    checked += 1
if tested:
    for c, ph, th in zip(tested, multipletests(p_raw, method="holm")[1], multipletests(tost_raw, method="holm")[1]):
        close(f"{c['group']} p_holm", c["p_holm"], ph)
        close(f"{c['group']} tost_p_holm", c["tost_p_holm"], th)
        verdict = "differs" if ph < 0.05 else "equivalent" if th < 0.05 else "inconclusive"
        if c["verdict"] != verdict:
            sys.exit(f"{c['group']}: verdict {c['verdict']}, the rules say {verdict}")
print(f"checked {checked} groups and comparisons")
