//! The layer-health part of a study report: per group, from its runs' `layers.csv` (`rundir::layers`), the
//! first weight layer's gradient norm and update ratio and the first and last activation layers' saturated
//! or dead share at the last epoch, and two charts against epoch (group means over runs): the first layer's
//! gradient norm, and the first activation layer's saturated-or-dead share — the mechanism behind a slow or
//! fast start. Nothing for runs that did not record layer health.

use super::groups::Group;
use super::stats;
use crate::chart::{COLORS, Plot, Series, render_png, render_svg};
use crate::rundir::layers::LayerRow;
use anyhow::Result;
use plotters::chart::SeriesLabelPosition;

/// A group's first weight layer, first activation layer and last activation layer.
type Names = (String, String, String);
/// Which points of a group a chart draws.
type Pick<'a> = &'a dyn Fn(&Group, &Names) -> Vec<(f64, f64)>;

/// Whether the row is a weight tensor's (else an activation layer's).
fn is_weight(r: &LayerRow) -> bool {
    r.weight_norm.is_some()
}

/// The activation layer's stuck share: saturated (sigmoid, tanh) or dead (ReLU).
fn stuck(r: &LayerRow) -> Option<f64> {
    r.saturated.or(r.dead)
}

/// The group's first weight layer and first and last activation layers, by the first run's rows.
fn names(g: &Group) -> Option<Names> {
    let rows = &g.runs.iter().find(|r| !r.layers.is_empty())?.layers;
    let first = rows.iter().find(|r| is_weight(r))?.layer.clone();
    let mut acts = rows
        .iter()
        .filter(|r| r.epoch == rows[0].epoch && !is_weight(r));
    let a = acts.next()?.layer.clone();
    let z = acts.next_back().map_or(a.clone(), |r| r.layer.clone());
    Some((first, a, z))
}

/// Per epoch, the mean over the group's runs of `value` of layer `layer`.
fn per_epoch(g: &Group, layer: &str, value: fn(&LayerRow) -> Option<f64>) -> Vec<(f64, f64)> {
    let last = g
        .runs
        .iter()
        .flat_map(|r| r.layers.iter().map(|l| l.epoch))
        .max()
        .unwrap_or(0);
    (1..=last)
        .filter_map(|epoch| {
            let xs: Vec<f64> = (g.runs.iter().flat_map(|r| &r.layers))
                .filter(|l| l.epoch == epoch && l.layer == layer)
                .filter_map(value)
                .collect();
            (!xs.is_empty()).then(|| (epoch as f64, stats::mean(&xs)))
        })
        .collect()
}

/// Over the group's runs, `value` of `layer` at each run's last epoch, as mean ± std.
fn at_end(g: &Group, layer: &str, value: fn(&LayerRow) -> Option<f64>, scale: f64) -> String {
    let xs: Vec<f64> = (g.runs.iter())
        .filter_map(|r| {
            let last = r.layers.iter().map(|l| l.epoch).max()?;
            r.layers
                .iter()
                .find(|l| l.epoch == last && l.layer == layer)
                .and_then(value)
        })
        .map(|x| scale * x)
        .collect();
    match xs.is_empty() {
        true => "—".into(),
        false => {
            let s = stats::summarize(&xs);
            format!("{:.3} ± {:.3}", s.mean, s.std)
        }
    }
}

/// The section, or nothing when no group recorded layer health.
pub fn render_markdown(groups: &[Group]) -> String {
    let rows: Vec<String> = (groups.iter())
        .filter_map(|g| {
            let (w, a, z) = names(g)?;
            Some(format!(
                "| {} | {w} | {} | {} | {a}: {} | {z}: {} |\n",
                g.name,
                at_end(g, &w, |r| r.grad_norm, 1.0),
                at_end(g, &w, |r| r.update_ratio, 1.0),
                at_end(g, &a, stuck, 100.0),
                at_end(g, &z, stuck, 100.0),
            ))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Layer health\n\nFrom each run's `layers.csv`, measured after every epoch on a fixed probe batch \
         (the first 256 validation images): the first weight layer's gradient norm and update ratio \
         (‖Δw‖/‖w‖ over the epoch), and the share of the first and last activation layers' outputs that are \
         saturated (sigmoid, tanh: within 2% of the bounds) or dead (ReLU: units no probe image makes \
         positive), in percent; each at the run's last epoch, mean ± std over the group's runs. The charts \
         follow the group means epoch by epoch.\n\n\
         | Group | first weight layer | its gradient norm | its update ratio | first activation layer, % stuck | last, % stuck |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    rows.iter().for_each(|r| out += r);
    out + "\n![first layer's gradient norm](layer_gradients.svg)\n\n![stuck units](layer_stuck.svg)\n"
}

/// The two charts' files, or nothing when no group recorded layer health.
pub fn files(groups: &[Group]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let named: Vec<(&Group, Names)> = groups.iter().filter_map(|g| Some((g, names(g)?))).collect();
    if named.is_empty() {
        return Ok(vec![]);
    }
    let series = |pick: Pick| -> Vec<Series> {
        (named.iter().enumerate())
            .map(|(i, (g, n))| Series {
                label: g.name.clone(),
                points: pick(g, n),
                color: COLORS[i % COLORS.len()],
                band: vec![],
            })
            .collect()
    };
    let plot = |title: &str, y_label: &'static str, series: Vec<Series>| Plot {
        title: title.into(),
        x_label: "epoch",
        y_label,
        log_x: false,
        dots: false,
        series,
        legend: SeriesLabelPosition::UpperRight,
    };
    let gradients = plot(
        "first weight layer's gradient norm (probe batch, group means)",
        "gradient norm",
        series(&|g, n| per_epoch(g, &n.0, |r| r.grad_norm)),
    );
    let stuck = plot(
        "first activation layer: saturated or dead share (group means)",
        "share of outputs (%)",
        series(&|g, n| {
            per_epoch(g, &n.1, stuck)
                .into_iter()
                .map(|(e, s)| (e, 100.0 * s))
                .collect()
        }),
    );
    let size = (900, 600);
    Ok(vec![
        (
            "layer_gradients.svg",
            render_svg(&gradients, size)?.into_bytes(),
        ),
        ("layer_gradients.png", render_png(&gradients, size)?),
        ("layer_stuck.svg", render_svg(&stuck, size)?.into_bytes()),
        ("layer_stuck.png", render_png(&stuck, size)?),
    ])
}
