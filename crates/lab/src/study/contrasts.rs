//! A crossed `grid:` (two or more keys, each with two or more values) within each variant: the main effect
//! of every non-first value of a key against its first, averaged over the other keys' values, and every
//! two-way interaction contrast, (μᵢⱼ − μᵢ₀) − (μ₀ⱼ − μ₀₀) averaged over the remaining keys. Each is a
//! linear contrast of group means: paired by seed (a one-sample t-test of the per-seed contrast values)
//! when every group in it ran the same seeds, else Welch–Satterthwaite. A relative margin is taken against
//! the cell with every key at its first value.
//! [`crate::study::crossing`] reads the same design out of variants.

use crate::config::scalar;
use crate::study::compare::{self, Comparison, Test};
use crate::study::groups::{Group, Study};
use crate::study::identity;
use crate::study::stats::{self, Estimate};
use crate::study::sweep;

/// One factor of the grid: its key and its values as the group names write them.
pub(crate) struct Factor {
    pub key: String,
    pub levels: Vec<String>,
}

/// A crossing's cells: each one's level index per factor, and its group (None: no finished run).
pub(crate) type Cells<'a> = [(Vec<usize>, Option<&'a Group>)];

/// The main effects and two-way interactions of every variant of `study` (none without a crossed grid).
pub fn contrasts(study: &Study) -> Vec<Comparison> {
    let spec = &study.sweep.spec;
    let factors: Vec<Factor> = spec
        .grid
        .iter()
        .filter_map(|(k, v)| {
            let levels: Vec<String> = v.as_sequence()?.iter().map(scalar).collect();
            Some(Factor {
                key: k.as_str()?.to_string(),
                levels,
            })
        })
        .collect();
    if factors.len() < 2 || factors.iter().any(|f| f.levels.len() < 2) {
        return vec![];
    }
    let Ok(points) = sweep::grid_points(&spec.grid) else {
        return vec![];
    };
    let mut out = vec![];
    for variant in sweep::variant_names(spec) {
        // Each cell: its level index per factor, and its group.
        let cells: Vec<(Vec<usize>, Option<&Group>)> = points
            .iter()
            .map(|point| {
                let name = sweep::group_name(&variant, point);
                let levels = point
                    .iter()
                    .zip(&factors)
                    .map(|((_, v), f)| f.levels.iter().position(|l| *l == scalar(v)).unwrap_or(0))
                    .collect();
                (levels, study.groups.iter().find(|g| g.name == name))
            })
            .collect();
        for (label, reference, coefficients) in contrast_list(&factors, &cells) {
            let group = format!("{variant}: {label}");
            let reference = format!("{variant}: {reference}");
            out.push(contrast_row(study, group, reference, &cells, &coefficients));
        }
    }
    out
}

/// (label, reference label, one coefficient per cell) of every main effect and two-way interaction.
pub(crate) fn contrast_list(factors: &[Factor], cells: &Cells) -> Vec<(String, String, Vec<f64>)> {
    let n = cells.len() as f64;
    let sign = |level: usize, at: usize| match level {
        l if l == at => 1.0,
        0 => -1.0,
        _ => 0.0,
    };
    let mut list = vec![];
    for (k, f) in factors.iter().enumerate() {
        let weight = f.levels.len() as f64 / n;
        for i in 1..f.levels.len() {
            let c = cells.iter().map(|(l, _)| weight * sign(l[k], i)).collect();
            list.push((
                format!("{}={}", f.key, f.levels[i]),
                format!("{}={}", f.key, f.levels[0]),
                c,
            ));
        }
    }
    for (k1, f1) in factors.iter().enumerate() {
        for (k2, f2) in factors.iter().enumerate().skip(k1 + 1) {
            let weight = (f1.levels.len() * f2.levels.len()) as f64 / n;
            for i in 1..f1.levels.len() {
                for j in 1..f2.levels.len() {
                    let c = cells
                        .iter()
                        .map(|(l, _)| weight * sign(l[k1], i) * sign(l[k2], j))
                        .collect();
                    list.push((
                        format!("{}={} × {}={}", f1.key, f1.levels[i], f2.key, f2.levels[j]),
                        format!("{}={} × {}={}", f1.key, f1.levels[0], f2.key, f2.levels[0]),
                        c,
                    ));
                }
            }
        }
    }
    list
}

/// One contrast's row: paired when its groups share their seeds, Welch–Satterthwaite otherwise.
pub(crate) fn contrast_row(
    study: &Study,
    group: String,
    reference: String,
    cells: &Cells,
    coefficients: &[f64],
) -> Comparison {
    let used: Vec<(&Group, f64)> = cells
        .iter()
        .zip(coefficients)
        .filter(|(_, c)| **c != 0.0)
        .filter_map(|((_, g), c)| Some(((*g)?, *c)))
        .collect();
    let runs = |positive: bool| -> usize {
        used.iter()
            .filter(|(_, c)| (*c > 0.0) == positive)
            .map(|(g, _)| g.runs.len())
            .sum()
    };
    let origin = cells
        .iter()
        .find(|(l, _)| l.iter().all(|&i| i == 0))
        .and_then(|(_, g)| *g);
    let reference_accuracy = origin.map_or(f64::NAN, |g| stats::mean(&compare::test_accuracies(g)));
    let mut row = Comparison::blank(
        study.label(&group),
        study.label(&reference),
        runs(true),
        runs(false),
        compare::margin(&study.sweep, reference_accuracy),
    );
    let every_cell = used.len() == coefficients.iter().filter(|c| **c != 0.0).count();
    if !every_cell
        || used
            .iter()
            .any(|(g, _)| compare::test_accuracies(g).len() < 2)
    {
        return row;
    }
    let (test, e, pairs) = match per_seed(&used) {
        Some(values) => (
            Test::PairedContrast,
            stats::one_sample(&values),
            values.len(),
        ),
        None => (Test::WelchContrast, welch(&used), 0),
    };
    row.n_pairs = pairs;
    row.tested(test, e);
    row
}

/// The contrast's value per seed when every group ran the same seeds (at least two), else None.
fn per_seed(used: &[(&Group, f64)]) -> Option<Vec<f64>> {
    let (first, _) = used.first()?;
    let seeds: Vec<identity::Seeds> = first.runs.iter().map(identity::seeds).collect();
    let value = |seed: identity::Seeds| -> Option<f64> {
        used.iter()
            .map(|(g, c)| {
                let run = g.runs.iter().find(|r| identity::seeds(r) == seed)?;
                Some(c * 100.0 * run.test.as_ref()?.accuracy)
            })
            .sum()
    };
    let same_seeds = used.iter().all(|(g, _)| g.runs.len() == seeds.len());
    let values: Option<Vec<f64>> = seeds.iter().map(|&s| value(s)).collect();
    values.filter(|v| same_seeds && v.len() >= 2)
}

fn welch(used: &[(&Group, f64)]) -> Estimate {
    let samples: Vec<(Vec<f64>, f64)> = used
        .iter()
        .map(|(g, c)| (compare::test_accuracies(g), *c))
        .collect();
    let refs: Vec<(&[f64], f64)> = samples.iter().map(|(x, c)| (&x[..], *c)).collect();
    stats::contrast(&refs)
}
