//! A crossed `grid:` (two or more keys, each with two or more values) within each variant: the main effect
//! of every non-first value of a key against its first, averaged over the other keys' values, and every
//! two-way interaction contrast, (μᵢⱼ − μᵢ₀) − (μ₀ⱼ − μ₀₀) averaged over the remaining keys. Each is a
//! linear contrast of group means: paired by seed (a one-sample t-test of the per-seed contrast values)
//! when every group in it ran the same seeds, else Welch–Satterthwaite. A relative margin is taken against
//! the cell with every key at its first value.
//!
//! [`crossed`] reads the same design out of variants (`report --cross KEY KEY…`), for a sweep that listed
//! the crossing's cells one by one instead of as a `grid:`.

use crate::config::{scalar, within};
use crate::study::compare::{self, Comparison, Test};
use crate::study::groups::{Group, Study};
use crate::study::identity;
use crate::study::stats::{self, Estimate};
use crate::study::sweep::{self, VariantSpec};
use anyhow::{Result, bail, ensure};
use serde_yaml::Value;

/// One factor of the grid: its key and its values as the group names write them.
struct Factor {
    key: String,
    levels: Vec<String>,
}

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

/// The main effects and two-way interactions of `keys` over the variants that differ from the sweep's base
/// only in them: a variant belongs when it has the sweep's base config and tuning and its `set:` names
/// nothing but crossed keys or keys inside them (a key may be a section: `data.augment`). Each key's levels
/// are its members' resolved values, the baseline's first (else the first member's); every combination must
/// be exactly one variant. Rows are named `crossed: …`.
pub fn crossed(study: &Study, keys: &[String]) -> Result<Vec<Comparison>> {
    let spec = &study.sweep.spec;
    let dir = study.sweep.dir.display();
    ensure!(
        spec.grid.is_empty(),
        "{dir}: --cross reads variants; this sweep has a grid:, whose contrasts the report already has"
    );
    let members: Vec<&VariantSpec> = spec.variants.iter().filter(|v| member(v, keys)).collect();
    let mut points = vec![];
    for v in &members {
        let Some(group) = study
            .groups
            .iter()
            .find(|g| g.name == v.name && !g.runs.is_empty())
        else {
            bail!("{dir}: --cross: variant {} has no finished runs", v.name);
        };
        let config = serde_yaml::to_value(&group.runs[0].config)?;
        let values = keys.iter().map(|k| level(&value_at(&config, k))).collect();
        points.push((values, group));
    }
    // The origin (every key at its first level) is the baseline's cell, where it is one.
    let origin = (members.iter())
        .position(|v| spec.baseline.as_deref() == Some(v.name.as_str()))
        .unwrap_or(0);
    if !points.is_empty() {
        let first = points.remove(origin);
        points.insert(0, first);
    }
    let dir = dir.to_string();
    let factors = levels(keys, &points, &dir)?;
    let cells = cells_of(&factors, &points, &dir)?;
    Ok(contrast_list(&factors, &cells)
        .into_iter()
        .map(|(label, reference, c)| {
            let (group, reference) = (format!("crossed: {label}"), format!("crossed: {reference}"));
            contrast_row(study, group, reference, &cells, &c)
        })
        .collect())
}

/// Whether `v` is a cell of the crossing of `keys`: the sweep's base and tuning, and only crossed keys (or
/// keys inside a crossed section) set.
fn member(v: &VariantSpec, keys: &[String]) -> bool {
    let crossed = |k: &Value| {
        k.as_str()
            .is_some_and(|k| keys.iter().any(|c| within(k, c)))
    };
    v.base.is_none() && v.tune.is_none() && v.set.keys().all(crossed)
}

/// A level as a row names it: a value as an override writes it, a section as `{key: value, …}`.
fn level(v: &Value) -> String {
    match v {
        Value::Mapping(m) => {
            let entries = m
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), level(v)));
            format!("{{{}}}", entries.collect::<Vec<_>>().join(", "))
        }
        _ => scalar(v),
    }
}

/// A resolved config's value at a dotted key (null where it has none).
fn value_at(config: &Value, key: &str) -> Value {
    key.split('.')
        .try_fold(config, |node, part| node.get(part))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Each key's levels in the members' order (the origin's first); at least two each.
fn levels(keys: &[String], points: &[(Vec<String>, &Group)], dir: &str) -> Result<Vec<Factor>> {
    let mut factors = vec![];
    for (k, key) in keys.iter().enumerate() {
        let mut levels: Vec<String> = vec![];
        for (values, _) in points {
            if !levels.contains(&values[k]) {
                levels.push(values[k].clone());
            }
        }
        ensure!(
            levels.len() >= 2,
            "{dir}: --cross {key}: the variants that differ from the base only in {} do not vary it",
            keys.join(", ")
        );
        factors.push(Factor {
            key: key.clone(),
            levels,
        });
    }
    Ok(factors)
}

/// Every combination of the factors' levels with its one variant's group.
fn cells_of<'a>(
    factors: &[Factor],
    points: &[(Vec<String>, &'a Group)],
    dir: &str,
) -> Result<Vec<(Vec<usize>, Option<&'a Group>)>> {
    let mut combos: Vec<Vec<usize>> = vec![vec![]];
    for f in factors {
        combos = (combos.iter())
            .flat_map(|c| (0..f.levels.len()).map(move |i| [c.clone(), vec![i]].concat()))
            .collect();
    }
    let named = |combo: &[usize]| -> String {
        let parts = factors.iter().zip(combo);
        let parts: Vec<String> = parts
            .map(|(f, &i)| format!("{}={}", f.key, f.levels[i]))
            .collect();
        parts.join(", ")
    };
    let mut cells = vec![];
    for combo in combos {
        let at = |values: &[String]| {
            (combo.iter().enumerate()).all(|(k, &i)| values[k] == factors[k].levels[i])
        };
        let found: Vec<&Group> = (points.iter())
            .filter(|(v, _)| at(v))
            .map(|(_, g)| *g)
            .collect();
        match found.as_slice() {
            [] => bail!(
                "{dir}: --cross: no variant has {} and the base otherwise",
                named(&combo)
            ),
            [one] => cells.push((combo, Some(*one))),
            [a, b, ..] => bail!(
                "{dir}: --cross: variants {} and {} both have {}",
                a.name,
                b.name,
                named(&combo)
            ),
        }
    }
    Ok(cells)
}

/// (label, reference label, one coefficient per cell) of every main effect and two-way interaction.
fn contrast_list(
    factors: &[Factor],
    cells: &[(Vec<usize>, Option<&Group>)],
) -> Vec<(String, String, Vec<f64>)> {
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
fn contrast_row(
    study: &Study,
    group: String,
    reference: String,
    cells: &[(Vec<usize>, Option<&Group>)],
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
