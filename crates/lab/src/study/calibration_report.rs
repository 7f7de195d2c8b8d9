//! The calibration part of a study report (Guo et al. 2017): per group the test set's ECE, NLL and Brier
//! score over its runs, each comparison's Δ ECE and Δ NLL (tested as accuracy is, Holm in families of their
//! own: [`super::compare`]), and a reliability diagram per group (accuracy against confidence, the bins of
//! all its runs pooled). Nothing for runs that did not record calibration.

use super::compare::Comparison;
use super::groups::Group;
use crate::chart::{COLORS, Plot, Series, render_png, render_svg};
use crate::rundir::calibration::{Bin, Calibration};
use anyhow::Result;
use plotters::chart::SeriesLabelPosition;

/// Each run's test calibration in `g`.
fn calibrations(g: &Group) -> Vec<&Calibration> {
    (g.runs.iter())
        .filter_map(|r| r.test.as_ref()?.calibration.as_ref())
        .collect()
}

/// mean ± std of `values`, with `digits` decimals.
fn mean_std(values: &[f64], digits: usize) -> String {
    let s = super::stats::summarize(values);
    format!("{:.digits$} ± {:.digits$}", s.mean, s.std)
}

/// The section, or nothing when no group recorded calibration.
pub fn render_markdown(groups: &[Group], comparisons: &[Comparison]) -> String {
    if groups.iter().all(|g| calibrations(g).is_empty()) {
        return String::new();
    }
    let mut out = String::from(
        "\n## Calibration\n\nThe test set's expected calibration error (ECE: 15 equal-width bins of the top-1 \
         probability, L1, as torchmetrics computes it; points), negative log-likelihood (nats) and Brier score, \
         mean ± std over each group's runs; then each comparison's Δ ECE and Δ NLL, tested as its accuracy is \
         (same test), Holm-adjusted in a family of their own. The reliability diagram pools the bins of a \
         group's runs.\n\n| group | runs | ECE (points) | NLL | Brier |\n|---|---|---|---|---|\n",
    );
    for g in groups {
        let c = calibrations(g);
        if c.is_empty() {
            continue;
        }
        let of = |f: fn(&Calibration) -> f64| c.iter().map(|c| f(c)).collect::<Vec<f64>>();
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            g.name,
            c.len(),
            mean_std(&of(|c| 100.0 * c.ece), 2),
            mean_std(&of(|c| c.nll), 4),
            mean_std(&of(|c| c.brier), 4)
        );
    }
    out += "\n| group | vs | Δ ECE (points) | p (Holm) | Δ NLL | p (Holm) |\n|---|---|---|---|---|---|\n";
    for c in comparisons.iter().filter(|c| !c.ece_delta.is_nan()) {
        out += &format!(
            "| {} | {} | {:+.2} | {:.3} | {:+.4} | {:.3} |\n",
            c.group, c.reference, c.ece_delta, c.ece_p_holm, c.nll_delta, c.nll_p_holm
        );
    }
    out + "\n![reliability](reliability.svg)\n"
}

/// Accuracy against mean confidence per bin, every run's bins pooled, one line per group; the diagonal is
/// perfect calibration.
pub fn reliability_chart(groups: &[Group]) -> Plot {
    let mut series = vec![Series {
        label: "perfectly calibrated".into(),
        points: vec![(0.0, 0.0), (100.0, 100.0)],
        color: plotters::style::RGBColor(180, 180, 180),
        band: vec![],
    }];
    for (i, g) in groups.iter().enumerate() {
        let c = calibrations(g);
        let Some(first) = c.first() else { continue };
        let points = (0..first.bins.len())
            .filter_map(|b| {
                let count: u64 = c.iter().map(|c| c.bins[b].count).sum();
                let pooled = |f: fn(&Bin) -> f64| {
                    c.iter()
                        .map(|c| f(&c.bins[b]) * c.bins[b].count as f64)
                        .sum::<f64>()
                        / count as f64
                };
                (count > 0).then(|| {
                    (
                        100.0 * pooled(|b| b.confidence),
                        100.0 * pooled(|b| b.accuracy),
                    )
                })
            })
            .collect();
        series.push(Series {
            label: g.name.clone(),
            points,
            color: COLORS[i % COLORS.len()],
            band: vec![],
        });
    }
    Plot {
        title: "reliability (test set, runs pooled)".into(),
        x_label: "mean confidence in bin (%)",
        y_label: "accuracy in bin (%)",
        log_x: false,
        dots: false,
        series,
        legend: SeriesLabelPosition::UpperLeft,
    }
}

/// The reliability diagram's files, or nothing when no group recorded calibration.
pub fn files(groups: &[Group]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    if groups.iter().all(|g| calibrations(g).is_empty()) {
        return Ok(vec![]);
    }
    let (plot, size) = (reliability_chart(groups), (900, 700));
    Ok(vec![
        ("reliability.svg", render_svg(&plot, size)?.into_bytes()),
        ("reliability.png", render_png(&plot, size)?),
    ])
}
