//! The test set's own sampling error beside the seeds' (issue 34.7): from each run's per-image answers
//! (`predictions.csv.gz`, the headline checkpoint best_val_loss) a bootstrap over test images of a
//! comparison's Δ, each group's test-set standard error, the exact McNemar test per seed pair, and each
//! group's variance of test accuracy split into the seeds' part and the test set's binomial part. Runs
//! without predictions (older runs) give NaN, never an invented number.

use crate::rundir::dir::PREDICTIONS_FILE;
use crate::rundir::selections::{Predictions, Selection};
use crate::study::compare::{ALPHA, Comparison};
use crate::study::groups::{Group, Study};
use crate::study::identity;
use crate::study::runs::RunSummary;
use crate::study::stats;
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;

/// The checkpoint whose answers are read: the one the report's test accuracy is.
pub const HEADLINE: Selection = Selection::BestValLoss;
/// Bootstrap replicates.
pub const REPLICATES: usize = 2000;
/// The bootstrap's SplitMix64 state at the start of every comparison, so a report is reproducible and
/// one comparison's interval does not depend on the others.
pub const BOOTSTRAP_SEED: u64 = 0x5eed_7e57_0000_0034;

/// Each run's per-image correctness at [`HEADLINE`], by run name (within one study).
pub type Answers = HashMap<String, Vec<bool>>;

/// Reads the predictions of every seed run of `study` that kept them.
pub fn load(study: &Study) -> Result<Answers> {
    let mut out = Answers::new();
    for run in study.sweep.runs.iter().filter(|r| r.trial.is_none()) {
        let path = study.sweep.run_dir(run).join(PREDICTIONS_FILE);
        if !path.exists() {
            continue;
        }
        let table = Predictions::read(&path)?;
        if let Some(correct) = correct(&table) {
            out.insert(run.id.clone(), correct);
        }
    }
    Ok(out)
}

/// Whether the headline checkpoint got each image right.
pub fn correct(table: &Predictions) -> Option<Vec<bool>> {
    let (_, a) = table.columns.iter().find(|(s, _)| *s == HEADLINE)?;
    Some(
        a.predicted
            .iter()
            .zip(&table.labels)
            .map(|(p, l)| p == l)
            .collect(),
    )
}

/// The answers of all of `runs`, or None when one lacks them or the test sets differ in size.
fn of<'a>(answers: &'a Answers, runs: &[&RunSummary]) -> Option<Vec<&'a [bool]>> {
    let out: Vec<&[bool]> = runs
        .iter()
        .map(|r| answers.get(&r.name).map(|v| &v[..]))
        .collect::<Option<_>>()?;
    let n = out.first()?.len();
    out.iter().all(|a| a.len() == n && n > 0).then_some(out)
}

/// Per image, the share of `runs` that got it right.
fn image_means(runs: &[&[bool]]) -> Vec<f64> {
    (0..runs[0].len())
        .map(|i| runs.iter().filter(|r| r[i]).count() as f64 / runs.len() as f64)
        .collect()
}

/// The test-set standard error of a group's mean accuracy (fraction): the seeds fixed, the images
/// resampled — the std of the per-image mean correctness over √(images).
pub fn standard_error(runs: &[&[bool]]) -> f64 {
    let m = image_means(runs);
    stats::std(&m) / (m.len() as f64).sqrt()
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The percentile bootstrap's 95% interval of Δ = mean accuracy of `a` − of `b` (points), images drawn
/// with replacement ([`REPLICATES`] times, from [`BOOTSTRAP_SEED`]). Each side's mean over its runs is the
/// mean over images of the per-image share right, so a replicate is the mean of resampled per-image Δs.
pub fn bootstrap_delta(a: &[&[bool]], b: &[&[bool]]) -> (f64, f64) {
    let d: Vec<f64> = image_means(a)
        .iter()
        .zip(image_means(b))
        .map(|(x, y)| 100.0 * (x - y))
        .collect();
    let n = d.len();
    let mut state = BOOTSTRAP_SEED;
    let mut replicates: Vec<f64> = (0..REPLICATES)
        .map(|_| {
            let sum: f64 = (0..n)
                // Lemire's multiply-shift: an index in 0..n without a division.
                .map(|_| d[((splitmix64(&mut state) as u128 * n as u128) >> 64) as usize])
                .sum();
            sum / n as f64
        })
        .collect();
    replicates.sort_by(f64::total_cmp);
    (quantile(&replicates, 0.025), quantile(&replicates, 0.975))
}

/// numpy's default (linear) quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The exact (binomial) McNemar p for `b` and `c` discordant images: two-sided, as scipy's
/// `binomtest(min(b, c), b + c, 0.5)`; 1 when no image is discordant.
pub fn mcnemar_p(b: usize, c: usize) -> f64 {
    let n = b + c;
    let k = b.min(c);
    // ln C(n, i) − n ln 2, summed in log space so that many discordant images do not underflow.
    let mut ln_choose = 0.0;
    let mut cdf = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        cdf += (ln_choose - n as f64 * std::f64::consts::LN_2).exp();
    }
    (2.0 * cdf).min(1.0)
}

/// The discordant counts of two runs: images `x` got right and `y` wrong, and the reverse.
pub fn discordant(x: &[bool], y: &[bool]) -> (usize, usize) {
    let b = x.iter().zip(y).filter(|(p, q)| **p && !**q).count();
    let c = x.iter().zip(y).filter(|(p, q)| !**p && **q).count();
    (b, c)
}

/// Fills a group-vs-reference comparison's test-set interval, and for a paired one its McNemar counts.
pub fn fill(c: &mut Comparison, answers: &Answers, group: &Group, reference: &Group, paired: bool) {
    let pairs = identity::seed_pairs(group, reference);
    let (xs, ys): (Vec<&RunSummary>, Vec<&RunSummary>) = match paired {
        true => pairs.iter().copied().unzip(),
        false => (group.runs.iter().collect(), reference.runs.iter().collect()),
    };
    let (Some(a), Some(b)) = (of(answers, &xs), of(answers, &ys)) else {
        return;
    };
    if a[0].len() != b[0].len() {
        return;
    }
    (c.test_set_low, c.test_set_high) = bootstrap_delta(&a, &b);
    if paired {
        let p: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                let (b, c) = discordant(x, y);
                mcnemar_p(b, c)
            })
            .collect();
        c.mcnemar_pairs = p.len();
        c.mcnemar_pairs_differ = p.iter().filter(|&&p| p < ALPHA).count();
    }
}

/// A group's test-set standard error in points; NaN when a run lacks predictions.
pub fn group_se(answers: &Answers, group: &Group) -> f64 {
    let runs: Vec<&RunSummary> = group.runs.iter().collect();
    of(answers, &runs).map_or(f64::NAN, |a| 100.0 * standard_error(&a))
}

/// What a group's seed-to-seed variance holds, as the sweep's design allows it to be named.
pub fn component(study: &Study, group: &Group) -> &'static str {
    let split_seeds: Vec<u64> = group.runs.iter().map(|r| r.config.data.seed).collect();
    if study.sweep.spec.split_follows_seed {
        "seed+split (confounded: split_follows_seed)"
    } else if split_seeds.windows(2).all(|w| w[0] == w[1]) {
        "training seed (one split)"
    } else {
        "seed+split (the split varies; not separated)"
    }
}

/// One row of `variance.csv`: a group's variance of test accuracy (points²) and its parts. The runs were
/// scored on one fixed test set, so their spread is the seeds' alone; a fresh test set of the same size adds
/// the binomial part, and the two add up to the variance of a new run on a new test set.
#[derive(Debug, Clone, Serialize)]
pub struct VarianceRow {
    pub group: String,
    pub n: usize,
    /// The sample variance (n − 1) of the runs' test accuracies on the fixed test set.
    pub seed: f64,
    /// The test set's binomial part: p(1 − p)/n_test per run, averaged.
    pub test_set: f64,
    /// seed + test_set.
    pub total: f64,
    /// test_set / total.
    pub test_set_share: f64,
    pub component: &'static str,
}

/// A group's variance decomposition; the test-set part NaN when a run lacks predictions.
pub fn variance(study: &Study, answers: &Answers, group: &Group) -> VarianceRow {
    let accuracies: Vec<f64> = group
        .runs
        .iter()
        .filter_map(|r| r.test.as_ref().map(|t| 100.0 * t.accuracy))
        .collect();
    let seed = match accuracies.len() {
        0 | 1 => f64::NAN,
        _ => stats::std(&accuracies).powi(2),
    };
    let runs: Vec<&RunSummary> = group.runs.iter().collect();
    let test_set = of(answers, &runs).map_or(f64::NAN, |a| binomial_variance(&a));
    VarianceRow {
        group: study.label(&group.name),
        n: accuracies.len(),
        seed,
        test_set,
        total: seed + test_set,
        test_set_share: test_set / (seed + test_set),
        component: component(study, group),
    }
}

/// The mean over runs of p(1 − p)/n_test, in points².
pub fn binomial_variance(runs: &[&[bool]]) -> f64 {
    let per_run: Vec<f64> = runs
        .iter()
        .map(|r| {
            let p = r.iter().filter(|&&x| x).count() as f64 / r.len() as f64;
            1e4 * p * (1.0 - p) / r.len() as f64
        })
        .collect();
    stats::mean(&per_run)
}

/// `variance.csv`.
pub fn variance_csv(rows: &[VarianceRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    for r in rows {
        w.serialize(r)?;
    }
    Ok(w.into_inner()?)
}

fn cell(x: f64, digits: usize) -> String {
    match x.is_nan() {
        true => "—".into(),
        false => format!("{x:.digits$}"),
    }
}

/// The report's section on the test set's sampling error and the variance decomposition.
pub fn render_markdown(comparisons: &[Comparison], rows: &[VarianceRow]) -> String {
    let mut out = format!(
        "\n## The test set's own sampling error\n\nThe seed interval (Δ's 95% CI above) is the training's \
         sampling error: other seeds, other runs. The test set is a sample too. The *test-set interval* fixes \
         the runs and resamples the test images: {REPLICATES} bootstrap replicates (SplitMix64 from \
         {BOOTSTRAP_SEED:#x}), each side's mean accuracy recomputed from its runs' per-image answers at the \
         best_val_loss checkpoint (over the seeds both ran when the comparison is paired), the 2.5th and 97.5th \
         percentiles of Δ. *McNemar* is the exact binomial test of each seed pair's two runs on the images only \
         one got right, at α = {ALPHA}: per-run-pair evidence that two particular runs answer differently, \
         not the group claim (which is the seed test's). \"—\": runs without predictions.\n\n\
         | Group | vs | Δ (points) | Seed 95% CI | Test-set 95% CI | McNemar: pairs differing / pairs |\n\
         |---|---|---:|---:|---:|---:|\n"
    );
    let measured: Vec<&Comparison> = (comparisons.iter())
        .filter(|c| !c.test_set_low.is_nan())
        .collect();
    if measured.is_empty() {
        out += "| (no comparison's runs kept their per-image answers: `predictions.csv.gz`) | | | | | |\n";
    }
    for c in measured {
        let mcnemar = match c.mcnemar_pairs {
            0 => "—".into(),
            n => format!("{} / {n}", c.mcnemar_pairs_differ),
        };
        out += &format!(
            "| {} | {} | {} | [{}, {}] | [{}, {}] | {mcnemar} |\n",
            c.group,
            c.reference,
            cell(c.delta, 2),
            cell(c.ci_low, 2),
            cell(c.ci_high, 2),
            cell(c.test_set_low, 2),
            cell(c.test_set_high, 2),
        );
    }
    out += "\n### Where each group's variance comes from\n\nA group's runs were scored on one fixed test set, so \
            the variance of their test accuracies (points², n − 1) is the seeds' part; a fresh test set of \
            10,000 images would add its binomial part, p(1 − p)/n_test per run, averaged; the total is the \
            variance of a new run scored on a new test set. The split is a separate component only where the \
            design varies it apart from the training seed; with `split_follows_seed` seed k also holds out \
            split k, and the two are one component. Also in `variance.csv`.\n\n\
            | Group | n | Seed part | Test-set part | Total | Test set's share | Seed part is |\n\
            |---|---:|---:|---:|---:|---:|---|\n";
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.group,
            r.n,
            cell(r.seed, 4),
            cell(r.test_set, 4),
            cell(r.total, 4),
            cell(r.test_set_share, 2),
            r.component
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_scipy_binomtest() {
        // scipy.stats.binomtest(3, 13, 0.5).pvalue = 0.09228515625 (= 2 · 378/8192, exact)
        assert!((mcnemar_p(10, 3) - 0.09228515625).abs() < 1e-12);
        // binomtest(20, 60, 0.5).pvalue = 0.01348929373119186; b = c: 1
        assert!((mcnemar_p(20, 40) - 0.01348929373119186).abs() < 1e-12);
        assert_eq!(mcnemar_p(0, 0), 1.0);
        assert_eq!(mcnemar_p(5, 5), 1.0);
        // binomtest(0, 2, 0.5).pvalue = 0.5
        assert!((mcnemar_p(0, 2) - 0.5).abs() < 1e-15);
        // 2000 discordant images do not underflow: binomtest(900, 2000, 0.5).pvalue = 8.45708953550381e-06
        assert!((mcnemar_p(1100, 900) / 8.45708953550381e-06 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn discordant_counts_each_direction() {
        let x = [true, true, false, false, true];
        let y = [true, false, true, false, false];
        assert_eq!(discordant(&x, &y), (2, 1));
    }

    #[test]
    fn identical_sides_have_a_point_interval_at_zero() {
        let a = vec![true, false, true, true];
        assert_eq!(bootstrap_delta(&[&a], &[&a]), (0.0, 0.0));
    }

    #[test]
    fn a_constant_difference_has_a_point_interval() {
        // Every image right on one side and wrong on the other: Δ = 100 points in every replicate.
        let (a, b) = (vec![true; 50], vec![false; 50]);
        assert_eq!(bootstrap_delta(&[&a], &[&b]), (100.0, 100.0));
    }

    #[test]
    fn the_interval_holds_delta_and_is_about_the_normal_one() {
        // 1000 images; a right on 600, b on 500, agreeing on 450 right and 350 wrong: per-image
        // d ∈ {+1 (150), −1 (50), 0 (800)}, Δ = 10 points, SE = std(d)/√1000 = 1.3379...
        let a: Vec<bool> = (0..1000).map(|i| i < 600).collect();
        let b: Vec<bool> = (0..1000).map(|i| (150..650).contains(&i)).collect();
        let (lo, hi) = bootstrap_delta(&[&a], &[&b]);
        let d: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| *x as i32 as f64 - *y as i32 as f64)
            .collect();
        let se = 100.0 * stats::std(&d) / (1000f64).sqrt();
        assert!(lo < 10.0 && 10.0 < hi, "[{lo}, {hi}]");
        assert!(
            ((hi - lo) / (2.0 * 1.96 * se) - 1.0).abs() < 0.1,
            "{lo} {hi} {se}"
        );
        // reproducible: the same seed, the same interval
        assert_eq!(bootstrap_delta(&[&a], &[&b]), (lo, hi));
    }

    #[test]
    fn the_standard_error_is_the_binomial_one_for_one_run() {
        // 1 run, p = 0.9 over 100 images: sqrt(p(1 − p)/(n − 1)) with the n − 1 std = 0.0301511...
        let a: Vec<bool> = (0..100).map(|i| i < 90).collect();
        assert!((standard_error(&[&a]) - (0.09f64 / 99.0).sqrt()).abs() < 1e-12);
        // p(1 − p)/n in points²: 1e4 · 0.09 / 100 = 9
        assert!((binomial_variance(&[&a]) - 9.0).abs() < 1e-9);
    }

    #[test]
    fn quantile_is_numpys_linear_one() {
        // numpy.quantile([1, 2, 3, 4], 0.25) = 1.75
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
    }
}
