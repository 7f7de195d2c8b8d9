//! What a study concludes: each group against the group it differs from in one factor (a variant's
//! `compare_to`, else the sweep's `baseline`), with every comparison of a report in one family.
//!
//! For test accuracy: Δ with its Welch 95% interval, the raw and Holm-adjusted p, Bonferroni's simultaneous
//! interval, the TOST p at the sweep's equivalence margin (Holm-adjusted in the same family), the minimal
//! difference the group sizes detect with 80% power, and the probability of improvement with a bootstrap
//! interval. The verdict follows fixed rules: **differs** when the adjusted p < 0.05, **equivalent** when the
//! adjusted TOST p < 0.05, otherwise **inconclusive**; a group whose runs recompute its reference's (same
//! seeds, same numbers) is reported as **identical** and not tested. For convergence: epochs to 98% and 99%
//! validation accuracy as Kaplan–Meier medians (runs that never got there are censored), against the
//! reference by the log-rank test, Holm-adjusted in a family of their own (not where either side trained
//! without a validation split).

use crate::study::groups::{Group, THRESHOLDS, epochs_to};
use crate::study::runs::RunSummary;
use crate::study::stats::{self, Duration};
use crate::study::sweep::Sweep;
use serde::Serialize;

/// The equivalence margin when the sweep names none, in points of test accuracy.
pub const DEFAULT_MARGIN: f64 = 0.25;
/// The family-wise error rate the verdicts hold.
pub const ALPHA: f64 = 0.05;
/// The power at which the minimal detectable difference is computed.
pub const POWER: f64 = 0.8;
/// Bootstrap resamples of the probability of improvement.
pub const RESAMPLES: usize = 2000;

/// What a comparison concludes.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Differs,
    Equivalent,
    Inconclusive,
    /// The same computation as the reference: not a comparison.
    Identical,
    /// Fewer than two runs on a side.
    TooFew,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Differs => "differs",
            Verdict::Equivalent => "equivalent",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Identical => "identical runs (not tested)",
            Verdict::TooFew => "too few runs",
        }
    }
}

/// One group against its reference. Accuracies and differences in percent points.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub group: String,
    pub reference: String,
    pub n: usize,
    pub n_ref: usize,
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
    pub margin: f64,
    /// The smallest true difference the family's test detects with 80% power, for these group sizes.
    pub mdd: f64,
    /// P(a run of this group beats a run of the reference), with its 95% bootstrap interval.
    pub p_improvement: f64,
    pub p_improvement_low: f64,
    pub p_improvement_high: f64,
    /// Log-rank p of epochs to 98% / 99% validation accuracy, and Holm-adjusted over their family.
    pub logrank_98_p: f64,
    pub logrank_98_p_holm: f64,
    pub logrank_99_p: f64,
    pub logrank_99_p_holm: f64,
    #[serde(serialize_with = "verdict_name")]
    pub verdict: Verdict,
    /// The family's size (the comparisons tested together).
    pub family: usize,
}

fn verdict_name<S: serde::Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

/// The index of the group each group is compared with: its variant's `compare_to`, else the baseline.
fn reference_of(sweep: &Sweep, groups: &[Group]) -> Vec<Option<usize>> {
    let group_of = |name: &str| {
        let run = sweep
            .runs
            .iter()
            .find(|r| r.group == name || r.variant == name)?;
        groups.iter().position(|g| g.name == run.group)
    };
    let baseline = sweep.spec.baseline.as_deref().and_then(group_of);
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let variant = sweep
                .runs
                .iter()
                .find(|r| r.group == g.name)?
                .variant
                .clone();
            let own = sweep
                .spec
                .variants
                .iter()
                .find(|v| v.name == variant)
                .and_then(|v| v.compare_to.as_deref())
                .and_then(group_of);
            own.or(baseline).filter(|&r| r != i)
        })
        .collect()
}

/// Whether `a`'s runs recompute `b`'s: every seed they share gives the same test accuracy and the same
/// numbers in every epoch both ran (a group that differs only in what cannot change them, e.g. early
/// stopping that never fired before the best epoch).
pub fn identical(a: &Group, b: &Group) -> bool {
    let seed = |r: &RunSummary| r.config.trainer.seed;
    let same = |x: &RunSummary, y: &RunSummary| {
        let accuracy = |r: &RunSummary| r.test.as_ref().map(|t| t.accuracy);
        let rows = x.rows.len().min(y.rows.len());
        accuracy(x) == accuracy(y)
            && x.rows[..rows].iter().zip(&y.rows[..rows]).all(|(p, q)| {
                (p.loss, p.accuracy, p.val_loss, p.val_accuracy)
                    == (q.loss, q.accuracy, q.val_loss, q.val_accuracy)
            })
    };
    let pairs: Vec<_> = a
        .runs
        .iter()
        .filter_map(|x| b.runs.iter().find(|y| seed(y) == seed(x)).map(|y| (x, y)))
        .collect();
    !pairs.is_empty() && pairs.iter().all(|(x, y)| same(x, y))
}

fn test_accuracies(g: &Group) -> Vec<f64> {
    g.runs
        .iter()
        .filter_map(|r| r.test.as_ref().map(|t| 100.0 * t.accuracy))
        .collect()
}

/// Every group with a reference, compared with it; the family is every comparison with two or more runs
/// on each side that is not of identical runs.
pub fn comparisons(sweep: &Sweep, groups: &[Group]) -> Vec<Comparison> {
    let margin = sweep.spec.equivalence_margin.unwrap_or(DEFAULT_MARGIN);
    let pairs: Vec<(usize, usize)> = reference_of(sweep, groups)
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (i, r)))
        .collect();
    let mut out: Vec<Comparison> = pairs
        .iter()
        .map(|&(i, r)| compare(&groups[i], &groups[r], margin))
        .collect();
    let tested: Vec<usize> = (0..out.len())
        .filter(|&k| out[k].verdict == Verdict::Inconclusive)
        .collect();
    let family = tested.len();
    let adjust = |values: Vec<f64>| stats::holm(&values);
    let p_holm = adjust(tested.iter().map(|&k| out[k].p).collect());
    let tost_holm = adjust(tested.iter().map(|&k| out[k].tost_p).collect());
    let lr98 = adjust(tested.iter().map(|&k| out[k].logrank_98_p).collect());
    let lr99 = adjust(tested.iter().map(|&k| out[k].logrank_99_p).collect());
    let level = 1.0 - ALPHA / family.max(1) as f64;
    for (j, &k) in tested.iter().enumerate() {
        let (a, b) = (
            test_accuracies(&groups[pairs[k].0]),
            test_accuracies(&groups[pairs[k].1]),
        );
        let c = &mut out[k];
        (c.p_holm, c.tost_p_holm) = (p_holm[j], tost_holm[j]);
        (c.logrank_98_p_holm, c.logrank_99_p_holm) = (lr98[j], lr99[j]);
        (c.sim_low, c.sim_high) = stats::welch_interval(&a, &b, level);
        c.mdd = stats::mdd(&a, &b, ALPHA / family as f64, POWER);
        c.family = family;
        c.verdict = if c.p_holm < ALPHA {
            Verdict::Differs
        } else if c.tost_p_holm < ALPHA {
            Verdict::Equivalent
        } else {
            Verdict::Inconclusive
        };
    }
    out
}

/// The family-free numbers of one comparison; [`comparisons`] adds the family's.
fn compare(group: &Group, reference: &Group, margin: f64) -> Comparison {
    let (a, b) = (test_accuracies(group), test_accuracies(reference));
    let nan = f64::NAN;
    let verdict = if identical(group, reference) {
        Verdict::Identical
    } else if a.len() < 2 || b.len() < 2 {
        Verdict::TooFew
    } else {
        Verdict::Inconclusive
    };
    let tested = verdict == Verdict::Inconclusive;
    let w = stats::welch(&a, &b);
    let (ci_low, ci_high) = (w.difference - w.ci95, w.difference + w.ci95);
    let (pi_low, pi_high) = if tested {
        stats::probability_of_improvement_interval(&a, &b, RESAMPLES)
    } else {
        (nan, nan)
    };
    let logrank = |threshold: f64| {
        let d = |g: &Group| -> Vec<Duration> {
            g.runs.iter().map(|r| epochs_to(r, threshold)).collect()
        };
        let (x, y) = (d(group), d(reference));
        let any_event = x.iter().chain(&y).any(|d| d.observed);
        if tested && any_event && group.validated && reference.validated {
            stats::logrank(&x, &y).1
        } else {
            nan
        }
    };
    Comparison {
        group: group.name.clone(),
        reference: reference.name.clone(),
        n: a.len(),
        n_ref: b.len(),
        delta: w.difference,
        ci_low,
        ci_high,
        p: if tested { w.p } else { nan },
        p_holm: nan,
        sim_low: nan,
        sim_high: nan,
        tost_p: if tested {
            stats::tost(&a, &b, margin)
        } else {
            nan
        },
        tost_p_holm: nan,
        margin,
        mdd: nan,
        p_improvement: if tested {
            stats::probability_of_improvement(&a, &b)
        } else {
            nan
        },
        p_improvement_low: pi_low,
        p_improvement_high: pi_high,
        logrank_98_p: logrank(THRESHOLDS[0]),
        logrank_98_p_holm: nan,
        logrank_99_p: logrank(THRESHOLDS[1]),
        logrank_99_p_holm: nan,
        verdict,
        family: 0,
    }
}
