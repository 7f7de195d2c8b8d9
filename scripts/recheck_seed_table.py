#!/usr/bin/env python3
"""Recomputes the README's headline comparisons from the shipped seed_table runs' test.json files: Welch's
interval and p against relu_adam, Holm-adjusted over the family (statsmodels), and the weight-decay contrast
against sigmoid without it. relu_adam_no_early_stopping is left out of the family: its runs are seeds 1-3 of
relu_adam recomputed (the best checkpoint is scored), not an independent group.

    pip install scipy statsmodels && python3 scripts/recheck_seed_table.py
"""
import glob
import json
import pathlib

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

RUNS = pathlib.Path(__file__).resolve().parent.parent / "results/study/seed_table/runs"


def accuracy(group):
    files = sorted(glob.glob(str(RUNS / f"{group}-seed*/test.json")))
    return np.array([json.load(open(f))["accuracy"] * 100 for f in files])


def welch(a, b):
    r = stats.ttest_ind(a, b, equal_var=False)
    low, high = r.confidence_interval(0.95)
    return a.mean() - b.mean(), low, high, r.pvalue


reference = accuracy("relu_adam")
family = ["relu_maxpool_adam", "relu_adam_weight_decay", "sigmoid_adam",
          "sigmoid_adam_no_early_stopping", "sigmoid_adam_weight_decay"]
rows = [(g, *welch(accuracy(g), reference)) for g in family]
holm = multipletests([r[4] for r in rows], method="holm")[1]
print("group                           delta   95% CI             p        p_holm")
for (g, d, lo, hi, p), ph in zip(rows, holm):
    print(f"{g:30s} {d:+6.2f}  [{lo:+.2f}, {hi:+.2f}]  {p:.2g}  {ph:.2g}")
d, lo, hi, p = welch(accuracy("sigmoid_adam_weight_decay"), accuracy("sigmoid_adam"))
print(f"sigmoid_adam_weight_decay vs sigmoid_adam: {d:+.2f} [{lo:+.2f}, {hi:+.2f}], p {p:.2g}")
