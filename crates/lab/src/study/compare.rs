//! What a study concludes: each group against the group it differs from in one factor (a variant's
//! `compare_to`, else the sweep's `baseline`). A crossed grid's main effects and interactions are
//! [`crate::study::contrasts`]'; [`crate::study::family`] puts every comparison of a report — over one sweep
//! or several — in one family.
//!
//! For test accuracy: Δ with its 95% interval from the **paired** t-test when the design pairs the two sides
//! (the smaller side's seeds all run on the other side, or the sides share runs: same seed, same init and
//! data order), else from **Welch**'s; the raw and Holm-adjusted p, Bonferroni's simultaneous interval, the
//! TOST p at the sweep's equivalence margin (Holm-adjusted in the same family), the smallest margin the
//! family's TOST would have passed, the minimal difference detectable with 80% power, and the probability
//! of improvement with Newcombe's interval. The verdict is one of Lakens' four: **differs** (the test passes,
//! the TOST does not), **negligible** (both pass: a difference, within the margin), **equivalent** (the TOST
//! passes only), **inconclusive** (neither). A group whose runs recompute its reference's on every shared
//! seed is **identical** and not tested. The generalization gap's, the ECE's and the NLL's differences are tested the same way, and
//! epochs to 98% and 99% validation accuracy by the log-rank test; each of these is Holm-adjusted in a
//! family of its own.

use crate::study::groups::{Group, Study, THRESHOLDS, epochs_to};
use crate::study::identity;
use crate::study::runs::RunSummary;
use crate::study::stats::{self, Duration, Estimate};
use crate::study::sweep::{Margin, Sweep};
use serde::Serialize;

/// The equivalence margin when the sweep names none, in points of test accuracy.
pub const DEFAULT_MARGIN: f64 = 0.25;
/// The family-wise error rate the verdicts hold.
pub const ALPHA: f64 = 0.05;
/// The power at which the minimal detectable difference is computed.
pub const POWER: f64 = 0.8;

/// What a comparison concludes.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Different, and not shown to lie within the margin.
    Differs,
    /// Different, but within the margin.
    Negligible,
    /// Within the margin, no difference shown.
    Equivalent,
    Inconclusive,
    /// The same computation as the reference: not a comparison.
    Identical,
    /// Fewer than two runs (or pairs) on a side.
    TooFew,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Differs => "differs",
            Verdict::Negligible => "negligible",
            Verdict::Equivalent => "equivalent",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Identical => "identical runs (not tested)",
            Verdict::TooFew => "too few runs",
        }
    }

    /// Lakens' four outcomes of a test of difference and a test of equivalence.
    pub(crate) fn of(differs: bool, within: bool) -> Verdict {
        match (differs, within) {
            (true, false) => Verdict::Differs,
            (true, true) => Verdict::Negligible,
            (false, true) => Verdict::Equivalent,
            (false, false) => Verdict::Inconclusive,
        }
    }
}

/// The test behind a comparison's Δ, interval and p.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Paired by seed (scipy `ttest_rel`).
    Paired,
    /// Welch's unequal-variances test (scipy `ttest_ind(equal_var=False)`).
    Welch,
    /// A contrast of group means over per-seed contrast values (scipy `ttest_1samp`).
    PairedContrast,
    /// A contrast of independent group means, Welch–Satterthwaite.
    WelchContrast,
    /// Not tested (identical runs, too few runs).
    None,
}

/// One comparison. Accuracies and differences in percent points.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub group: String,
    pub reference: String,
    pub test: Test,
    pub n: usize,
    pub n_ref: usize,
    /// Seeds both sides ran (the paired test's n).
    pub n_pairs: usize,
    /// Runs the two sides share (same config up to what cannot change a number, or the same numbers).
    pub shared_runs: usize,
    pub delta: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p: f64,
    pub p_holm: f64,
    /// Bonferroni's simultaneous interval over the family.
    pub sim_low: f64,
    pub sim_high: f64,
    pub tost_p: f64,
    pub tost_p_holm: f64,
    /// The margin in points (a relative one resolved against the reference's error rate).
    pub margin: f64,
    /// The smallest margin whose TOST passes at the family's Bonferroni level α/m.
    pub equivalent_within: f64,
    /// The smallest true difference the family's test detects with 80% power, for these group sizes.
    pub mdd: f64,
    /// P(a run of this group beats a run of the reference), with Newcombe's 95% interval.
    pub p_improvement: f64,
    pub p_improvement_low: f64,
    pub p_improvement_high: f64,
    /// Δ of the generalization gap (clean train − test accuracy), its p (the same test) and Holm p.
    pub gap_delta: f64,
    pub gap_p: f64,
    pub gap_p_holm: f64,
    /// Δ of the test set's expected calibration error (points) and of its NLL (nats), each with its p (the
    /// same test) and Holm p in a family of its own; NaN where a side's runs did not record calibration.
    pub ece_delta: f64,
    pub ece_p: f64,
    pub ece_p_holm: f64,
    pub nll_delta: f64,
    pub nll_p: f64,
    pub nll_p_holm: f64,
    /// Log-rank p of epochs to 98% / 99% validation accuracy, and Holm-adjusted over their family.
    pub logrank_98_p: f64,
    pub logrank_98_p_holm: f64,
    pub logrank_99_p: f64,
    pub logrank_99_p_holm: f64,
    /// Δ's 95% interval from the test images alone (bootstrap, the runs fixed; `test_set`), NaN without
    /// predictions.
    pub test_set_low: f64,
    pub test_set_high: f64,
    /// Seed pairs given the exact McNemar test, and how many of them differ at α.
    pub mcnemar_pairs: usize,
    pub mcnemar_pairs_differ: usize,
    #[serde(serialize_with = "verdict_name")]
    pub verdict: Verdict,
    /// The family's size (the comparisons tested together).
    pub family: usize,
    /// What the family needs of the test (absent when not tested).
    #[serde(skip)]
    pub estimate: Option<Estimate>,
}

fn verdict_name<S: serde::Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

impl Comparison {
    /// A row with only its names and sizes; the rest NaN, untested.
    pub fn blank(group: String, reference: String, n: usize, n_ref: usize, margin: f64) -> Self {
        let nan = f64::NAN;
        Comparison {
            group,
            reference,
            test: Test::None,
            n,
            n_ref,
            n_pairs: 0,
            shared_runs: 0,
            delta: nan,
            ci_low: nan,
            ci_high: nan,
            p: nan,
            p_holm: nan,
            sim_low: nan,
            sim_high: nan,
            tost_p: nan,
            tost_p_holm: nan,
            margin,
            equivalent_within: nan,
            mdd: nan,
            p_improvement: nan,
            p_improvement_low: nan,
            p_improvement_high: nan,
            gap_delta: nan,
            gap_p: nan,
            gap_p_holm: nan,
            ece_delta: nan,
            ece_p: nan,
            ece_p_holm: nan,
            nll_delta: nan,
            nll_p: nan,
            nll_p_holm: nan,
            logrank_98_p: nan,
            logrank_98_p_holm: nan,
            logrank_99_p: nan,
            logrank_99_p_holm: nan,
            test_set_low: nan,
            test_set_high: nan,
            mcnemar_pairs: 0,
            mcnemar_pairs_differ: 0,
            verdict: Verdict::TooFew,
            family: 0,
            estimate: None,
        }
    }

    /// Fills in what a test estimated: Δ, its 95% interval, p and the TOST p at the margin.
    pub fn tested(&mut self, test: Test, e: Estimate) {
        self.test = test;
        self.delta = e.estimate;
        (self.ci_low, self.ci_high) = e.interval(0.95);
        self.p = e.p();
        self.tost_p = e.tost(self.margin);
        self.verdict = Verdict::Inconclusive;
        self.estimate = Some(e);
    }
}

/// The indices of the groups each group is compared with: its variant's `compare_to`, else the baseline.
pub(crate) fn references_of(sweep: &Sweep, groups: &[Group]) -> Vec<Vec<usize>> {
    let group_of = |name: &str| {
        let run = sweep
            .runs
            .iter()
            // A tuned variant's name is also its trials' variant: the group is its seeds'.
            .find(|r| r.trial.is_none() && (r.group == name || r.variant == name))?;
        groups.iter().position(|g| g.name == run.group)
    };
    let baseline = sweep.spec.baseline.as_deref().and_then(group_of);
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let Some(run) = sweep.runs.iter().find(|r| r.group == g.name) else {
                return vec![];
            };
            let own = sweep
                .spec
                .variants
                .iter()
                .find(|v| v.name == run.variant)
                .and_then(|v| v.compare_to.as_ref());
            let references: Vec<usize> = match own {
                Some(to) => to.names().iter().filter_map(|n| group_of(n)).collect(),
                None => baseline.into_iter().collect(),
            };
            references.into_iter().filter(|&r| r != i).collect()
        })
        .collect()
}

/// Whether `a`'s runs recompute `b`'s: every seed they share gives the same run.
pub fn identical(a: &Group, b: &Group) -> bool {
    let pairs = identity::seed_pairs(a, b);
    !pairs.is_empty() && pairs.iter().all(|(x, y)| identity::same_run(x, y))
}

/// A group's test accuracies in percent.
pub fn test_accuracies(g: &Group) -> Vec<f64> {
    g.runs.iter().filter_map(accuracy).collect()
}

fn accuracy(r: &RunSummary) -> Option<f64> {
    r.test.as_ref().map(|t| 100.0 * t.accuracy)
}

fn gap(r: &RunSummary) -> Option<f64> {
    Some(100.0 * (r.train_eval.as_ref()?.accuracy - r.test.as_ref()?.accuracy))
}

/// The test set's expected calibration error, points.
pub fn ece(r: &RunSummary) -> Option<f64> {
    Some(100.0 * r.test.as_ref()?.calibration.as_ref()?.ece)
}

/// The test set's negative log-likelihood, nats.
pub fn nll(r: &RunSummary) -> Option<f64> {
    Some(r.test.as_ref()?.calibration.as_ref()?.nll)
}

/// The sweep's margin in points against a reference of this mean test accuracy (percent).
pub fn margin(sweep: &Sweep, reference_accuracy: f64) -> f64 {
    sweep
        .spec
        .equivalence_margin
        .as_ref()
        .map_or(DEFAULT_MARGIN, |m| m.points(reference_accuracy))
}

/// The paired estimate of f(group run) − f(reference run) over seed pairs where both have a value, or
/// Welch's over all values; None with fewer than 2 on a side.
fn estimate(
    pairs: Option<&[(&RunSummary, &RunSummary)]>,
    group: &Group,
    reference: &Group,
    f: fn(&RunSummary) -> Option<f64>,
) -> Option<Estimate> {
    match pairs {
        Some(pairs) => {
            let (a, b): (Vec<f64>, Vec<f64>) = pairs
                .iter()
                .filter_map(|(x, y)| Some((f(x)?, f(y)?)))
                .unzip();
            (a.len() >= 2).then(|| stats::paired(&a, &b))
        }
        None => {
            let a: Vec<f64> = group.runs.iter().filter_map(f).collect();
            let b: Vec<f64> = reference.runs.iter().filter_map(f).collect();
            (a.len() >= 2 && b.len() >= 2).then(|| stats::contrast(&[(&a, 1.0), (&b, -1.0)]))
        }
    }
}

/// The family-free numbers of one comparison; [`comparisons`] adds the family's.
pub(crate) fn compare(study: &Study, group: &Group, reference: &Group) -> Comparison {
    let (a, b) = (test_accuracies(group), test_accuracies(reference));
    let mut c = Comparison::blank(
        study.label(&group.name),
        study.label(&reference.name),
        a.len(),
        b.len(),
        margin(&study.sweep, stats::mean(&b)),
    );
    let pairs = identity::seed_pairs(group, reference);
    c.n_pairs = pairs.len();
    c.shared_runs = identity::shared_runs(group, reference);
    let paired = c.shared_runs > 0 || (pairs.len() >= 2 && pairs.len() == a.len().min(b.len()));
    let pairs = paired.then_some(&pairs[..]);
    if identical(group, reference) {
        let w = stats::contrast(&[(&a, 1.0), (&b, -1.0)]);
        c.delta = w.estimate;
        (c.ci_low, c.ci_high) = w.interval(0.95);
        c.verdict = Verdict::Identical;
        return c;
    }
    let Some(e) = estimate(pairs, group, reference, accuracy) else {
        return c;
    };
    c.tested(if paired { Test::Paired } else { Test::Welch }, e);
    c.p_improvement = stats::probability_of_improvement(&a, &b);
    (c.p_improvement_low, c.p_improvement_high) =
        stats::probability_of_improvement_interval(&a, &b);
    if let Some(g) = estimate(pairs, group, reference, gap) {
        (c.gap_delta, c.gap_p) = (g.estimate, g.p());
    }
    if let Some(g) = estimate(pairs, group, reference, ece) {
        (c.ece_delta, c.ece_p) = (g.estimate, g.p());
    }
    if let Some(g) = estimate(pairs, group, reference, nll) {
        (c.nll_delta, c.nll_p) = (g.estimate, g.p());
    }
    let logrank = |threshold: f64| {
        let d = |g: &Group| -> Vec<Duration> {
            g.runs.iter().map(|r| epochs_to(r, threshold)).collect()
        };
        let (x, y) = (d(group), d(reference));
        let any_event = x.iter().chain(&y).any(|d| d.observed);
        match any_event && group.validated && reference.validated {
            true => stats::logrank(&x, &y).1,
            false => f64::NAN,
        }
    };
    c.logrank_98_p = logrank(THRESHOLDS[0]);
    c.logrank_99_p = logrank(THRESHOLDS[1]);
    c
}

/// How a study's margin is stated, and why: "±0.25 points (reason)".
pub fn margin_statement(sweep: &Sweep) -> String {
    let margin = match &sweep.spec.equivalence_margin {
        Some(m) => m.describe(),
        None => format!(
            "{} (the default: the sweep file states none)",
            Margin::Points(DEFAULT_MARGIN).describe()
        ),
    };
    match &sweep.spec.margin_reason {
        Some(reason) => format!("{margin}, because: {}", reason.trim()),
        None => format!("{margin} (the sweep file gives no reason for it)"),
    }
}
