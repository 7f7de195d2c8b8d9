//! A crossing read out of variants (`report --cross KEY KEY…`): for a sweep that listed a crossing's cells
//! one by one (`relu_max`, `tanh_avg`, `tanh_max`, …) instead of as a `grid:`, the main effects and two-way
//! interactions a grid would have had ([`crate::study::contrasts`]), named `crossed: …`.
//!
//! The cells are the variants with the sweep's base config and tuning whose `set:` names nothing but crossed
//! keys or keys inside them (a key may be a section, `data.augment`). A key's level in a cell is its value
//! there; a section's is the values of the keys inside it that some cell sets (so a seed or a tuned value
//! in the same section does not make every run its own level). The reference cell is the baseline's, where
//! the baseline is a cell, else the first cell listed; every combination of levels must be one variant.

use crate::config::{self, flow, value_at, within};
use crate::study::compare::Comparison;
use crate::study::contrasts::{Cells, Factor, contrast_list, contrast_row};
use crate::study::groups::{Group, Study};
use crate::study::sweep::VariantSpec;
use anyhow::{Context, Result, bail, ensure};
use serde_yaml::Value;

/// One cell: its variant, its level of each key, its group (None: no finished run).
struct Point<'a> {
    variant: &'a str,
    levels: Vec<String>,
    group: Option<&'a Group>,
}

/// The crossing of `keys` in `study`: its main effects and interactions (untested where a cell has fewer
/// than two finished runs), or why the variants do not cross them.
pub fn crossed(study: &Study, keys: &[String]) -> Result<Vec<Comparison>> {
    let spec = &study.sweep.spec;
    let dir = study.sweep.dir.display().to_string();
    ensure!(
        spec.grid.is_empty(),
        "{dir}: --cross reads a crossing out of variants alone; this sweep has a grid: (its groups are \
         variant × grid point)"
    );
    let own = set_by_all(&spec.variants);
    let mut members: Vec<&VariantSpec> = (spec.variants.iter())
        .filter(|v| member(v, keys, &own))
        .collect();
    if let Some(i) =
        (members.iter()).position(|v| spec.baseline.as_deref() == Some(v.name.as_str()))
    {
        let baseline = members.remove(i);
        members.insert(0, baseline);
    }
    let set: Vec<&str> = (members.iter())
        .flat_map(|v| v.set.keys().filter_map(Value::as_str))
        .collect();
    let mut points = vec![];
    for v in &members {
        let run = (study.sweep.runs.iter())
            .find(|r| r.variant == v.name && r.trial.is_none())
            .with_context(|| format!("{dir}: --cross: variant {} has no runs", v.name))?;
        let resolved = serde_yaml::to_value(&run.config)?;
        points.push(Point {
            variant: &v.name,
            levels: keys.iter().map(|k| level(&resolved, k, &set)).collect(),
            group: study.groups.iter().find(|g| g.name == v.name),
        });
    }
    let factors = factors(keys, &points, &dir)?;
    let cells = cells(&factors, &points, &dir)?;
    Ok(contrast_list(&factors, &cells)
        .into_iter()
        .map(|(label, reference, c)| {
            let (group, reference) = (format!("crossed: {label}"), format!("crossed: {reference}"));
            contrast_row(study, group, reference, &cells, &c)
        })
        .collect())
}

/// The keys every variant sets (none where some variant sets nothing).
fn set_by_all(variants: &[VariantSpec]) -> Vec<&str> {
    let Some((first, rest)) = variants.split_first() else {
        return vec![];
    };
    (first.set.keys().filter_map(Value::as_str))
        .filter(|k| rest.iter().all(|v| v.set.contains_key(*k)))
        .collect()
}

/// Whether `v` is a cell of the crossing of `keys`: the sweep's base and tuning, and only crossed keys (or
/// keys inside a crossed section) or keys every variant sets (`own`) set.
fn member(v: &VariantSpec, keys: &[String], own: &[&str]) -> bool {
    let crossed = |k: &Value| {
        k.as_str()
            .is_some_and(|k| own.contains(&k) || keys.iter().any(|c| within(k, c)))
    };
    v.base.is_none() && v.tune.is_none() && v.set.keys().all(crossed)
}

/// `key`'s level in the resolved config: its value, or for a section `{name: value, …}` over the keys
/// inside it that a cell sets (`set`), in the config's order.
fn level(resolved: &Value, key: &str, set: &[&str]) -> String {
    if set.contains(&key) || !set.iter().any(|k| within(k, key)) {
        return flow(value_at(resolved, key).unwrap_or(&Value::Null));
    }
    let inside = (config::keys().into_iter())
        .filter(|k| k != key && within(k, key) && set.contains(&k.as_str()));
    let entries: Vec<String> = inside
        .map(|k| {
            format!(
                "{}: {}",
                &k[key.len() + 1..],
                flow(value_at(resolved, &k).unwrap_or(&Value::Null))
            )
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// Each key's levels in the cells' order (the reference cell's first); at least two each.
fn factors(keys: &[String], points: &[Point], dir: &str) -> Result<Vec<Factor>> {
    let mut factors = vec![];
    for (k, key) in keys.iter().enumerate() {
        let mut levels: Vec<String> = vec![];
        for p in points {
            if !levels.contains(&p.levels[k]) {
                levels.push(p.levels[k].clone());
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

/// Every combination of the factors' levels, with its one variant's group.
fn cells<'a>(factors: &[Factor], points: &[Point<'a>], dir: &str) -> Result<Box<Cells<'a>>> {
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
        let at = |p: &&Point| {
            (combo.iter().enumerate()).all(|(k, &i)| p.levels[k] == factors[k].levels[i])
        };
        let found: Vec<&Point> = points.iter().filter(at).collect();
        match found.as_slice() {
            [] => bail!(
                "{dir}: --cross: no variant has {} and the base otherwise",
                named(&combo)
            ),
            [one] => cells.push((combo, one.group)),
            [a, b, ..] => bail!(
                "{dir}: --cross: variants {} and {} both have {}",
                a.variant,
                b.variant,
                named(&combo)
            ),
        }
    }
    Ok(cells.into_boxed_slice())
}
