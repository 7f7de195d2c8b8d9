//! The report on a sweep: runs grouped by everything but the seed, each group's test accuracy as mean ± std
//! with its 95% t interval, best validation accuracy, generalization gap, convergence speed, and the
//! difference to the baseline group with its 95% interval and Welch's p-value; charts of the mean
//! validation curves (±1 std) and a forest plot of test accuracy. Tables and charts are pure functions;
//! only [`write`] touches files.

use crate::output::chart::{COLORS, Chart, Panel, Series, drawing_error, render_png, render_svg};
use crate::study::runs::{self, RunSummary};
use crate::study::stats::{self, Summary, Welch};
use crate::study::sweep::Sweep;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Validation accuracies whose first epoch a group's convergence speed reports.
pub const THRESHOLDS: [f64; 2] = [0.98, 0.99];

/// How fast a group's runs reached one validation accuracy.
#[derive(Debug, Clone)]
pub struct Reach {
    pub threshold: f64,
    /// Runs that reached it; the summaries are over those.
    pub reached: usize,
    pub epochs: Summary,
    pub seconds: Summary,
}

/// One group of a sweep: the finished runs that differ only in their seed.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Runs of the group in the sweep, finished or not.
    pub planned: usize,
    pub runs: Vec<RunSummary>,
    pub test: Summary,
    pub best_val: Summary,
    /// Training minus validation accuracy at the best epoch.
    pub gap: Summary,
    pub reach: Vec<Reach>,
    pub is_baseline: bool,
    /// Difference of the test accuracy to the baseline group's (this − baseline).
    pub vs_baseline: Option<Welch>,
}

/// Groups the finished runs of `sweep` in sweep order and computes every column.
pub fn groups(sweep: &Sweep) -> Result<Vec<Group>> {
    let mut names: Vec<&str> = vec![];
    for run in &sweep.runs {
        if !names.contains(&run.group.as_str()) {
            names.push(&run.group);
        }
    }
    let mut groups = vec![];
    for name in names {
        let members: Vec<_> = sweep.runs.iter().filter(|r| r.group == name).collect();
        let mut runs = vec![];
        for run in &members {
            let summary = runs::load_run(&sweep.run_dir(run))?;
            if summary.status().is_finished() {
                runs.push(summary);
            }
        }
        groups.push(group(name, members.len(), runs));
    }
    // The baseline names a group, or a variant (its first group).
    let baseline = sweep.spec.baseline.as_deref().and_then(|b| {
        let found = sweep.runs.iter().find(|r| r.group == b || r.variant == b)?;
        groups.iter().position(|g| g.name == found.group)
    });
    if let Some(b) = baseline {
        let base = test_accuracies(&groups[b]);
        for (i, g) in groups.iter_mut().enumerate() {
            g.is_baseline = i == b;
            if i != b {
                g.vs_baseline = Some(stats::welch(&test_accuracies(g), &base));
            }
        }
    }
    Ok(groups)
}

fn test_accuracies(g: &Group) -> Vec<f64> {
    g.runs
        .iter()
        .filter_map(|r| r.test.as_ref().map(|t| t.accuracy))
        .collect()
}

fn group(name: &str, planned: usize, runs: Vec<RunSummary>) -> Group {
    let of = |f: &dyn Fn(&RunSummary) -> Option<f64>| -> Summary {
        stats::summarize(&runs.iter().filter_map(f).collect::<Vec<_>>())
    };
    let test = of(&|r| r.test.as_ref().map(|t| t.accuracy));
    let best_val = of(&|r| r.rows.iter().map(|row| row.val_accuracy).reduce(f64::max));
    let gap = of(&|r| r.best_row().map(|row| row.accuracy - row.val_accuracy));
    let reach = THRESHOLDS
        .iter()
        .map(|&threshold| {
            // First epoch at or above the threshold, and the training seconds up to its end.
            let hits: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|r| {
                    let mut seconds = 0.0;
                    r.rows.iter().find_map(|row| {
                        seconds += row.seconds;
                        (row.val_accuracy >= threshold).then_some((row.epoch as f64, seconds))
                    })
                })
                .collect();
            let (epochs, seconds): (Vec<f64>, Vec<f64>) = hits.iter().copied().unzip();
            Reach {
                threshold,
                reached: hits.len(),
                epochs: stats::summarize(&epochs),
                seconds: stats::summarize(&seconds),
            }
        })
        .collect();
    let name = name.to_string();
    Group {
        name,
        planned,
        runs,
        test,
        best_val,
        gap,
        reach,
        is_baseline: false,
        vs_baseline: None,
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{:.2}", 100.0 * x)
    }
}

/// "99.01 ± 0.07" (percent), or what is missing.
fn mean_std(s: &Summary) -> String {
    match s.n {
        0 => "—".into(),
        1 => format!("{} (n = 1)", pct(s.mean)),
        _ => format!("{} ± {}", pct(s.mean), pct(s.std)),
    }
}

fn interval(mean: f64, half: f64) -> String {
    if half.is_nan() {
        "—".into()
    } else {
        format!("[{}, {}]", pct(mean - half), pct(mean + half))
    }
}

fn reach_cell(r: &Reach, n: usize, seconds: bool) -> String {
    let s = if seconds { &r.seconds } else { &r.epochs };
    match r.reached {
        0 => "never".into(),
        k => {
            let value = if seconds {
                format!("{:.0}", s.mean)
            } else {
                format!("{:.1}", s.mean)
            };
            if k == n {
                value
            } else {
                format!("{value} ({k}/{n})")
            }
        }
    }
}

/// The group table as Markdown. Accuracies in percent.
pub fn render_table(groups: &[Group]) -> String {
    let mut out = String::from(
        "| Group | n | Test accuracy % (mean ± std) | 95% CI | Best val accuracy % | Gap (train − val, points) | Epochs to 98% | s to 98% | Epochs to 99% | s to 99% | Δ test vs baseline (points, 95% CI) | p (Welch) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for g in groups {
        let n = g.runs.len();
        let runs = if n == g.planned {
            n.to_string()
        } else {
            format!("{n} of {}", g.planned)
        };
        let (delta, p) = match &g.vs_baseline {
            _ if g.is_baseline => ("baseline".into(), String::new()),
            Some(w) if w.p.is_nan() => ("—".into(), "—".into()),
            Some(w) => (
                format!(
                    "{:+.2} {}",
                    100.0 * w.difference,
                    interval(w.difference, w.ci95)
                ),
                if w.p < 0.001 {
                    "< 0.001".into()
                } else {
                    format!("{:.3}", w.p)
                },
            ),
            None => (String::new(), String::new()),
        };
        out += &format!(
            "| {} | {runs} | {} | {} | {} | {} | {} | {} | {} | {} | {delta} | {p} |\n",
            g.name,
            mean_std(&g.test),
            interval(g.test.mean, g.test.ci95),
            mean_std(&g.best_val),
            mean_std(&g.gap),
            reach_cell(&g.reach[0], n, false),
            reach_cell(&g.reach[0], n, true),
            reach_cell(&g.reach[1], n, false),
            reach_cell(&g.reach[1], n, true),
        );
    }
    out
}

/// Mean validation accuracy per epoch with a ±1 std band, one line per group.
pub fn curves(groups: &[Group]) -> Vec<Panel> {
    let series = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let curve = mean_curve(g);
            Series {
                label: g.name.clone(),
                points: curve.iter().map(|p| (p.0, p.1)).collect(),
                color: COLORS[i % COLORS.len()],
                band: curve
                    .iter()
                    .map(|p| (p.0, p.1 - p.2, (p.1 + p.2).min(1.0)))
                    .collect(),
            }
        })
        .collect();
    vec![Panel {
        title: "validation accuracy, mean ± 1 std over seeds".into(),
        y_label: "accuracy",
        series,
        legend: SeriesLabelPosition::LowerRight,
    }]
}

/// Test accuracy per group: mean and 95% interval.
pub struct ForestChart<'a>(pub &'a [Group]);

/// (epoch, mean, std) of the validation accuracy over the group's runs that reached that epoch.
fn mean_curve(g: &Group) -> Vec<(f64, f64, f64)> {
    let last = g.runs.iter().map(|r| r.rows.len()).max().unwrap_or(0);
    (1..=last)
        .filter_map(|epoch| {
            let values: Vec<f64> = g
                .runs
                .iter()
                .filter_map(|r| {
                    r.rows
                        .iter()
                        .find(|row| row.epoch == epoch)
                        .map(|row| row.val_accuracy)
                })
                .collect();
            let std = if values.len() > 1 {
                stats::std(&values)
            } else {
                0.0
            };
            (!values.is_empty()).then(|| (epoch as f64, stats::mean(&values), std))
        })
        .collect()
}

impl Chart for ForestChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let err = drawing_error::<DB>;
        root.fill(&WHITE).map_err(err)?;
        let rows: Vec<(&str, f64, f64)> = self
            .0
            .iter()
            .filter(|g| g.test.n > 0)
            .map(|g| {
                (
                    g.name.as_str(),
                    g.test.mean,
                    if g.test.ci95.is_nan() {
                        0.0
                    } else {
                        g.test.ci95
                    },
                )
            })
            .collect();
        let lo = rows.iter().map(|r| r.1 - r.2).fold(f64::INFINITY, f64::min);
        let hi = rows
            .iter()
            .map(|r| r.1 + r.2)
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.08).max(1e-4);
        let n = rows.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "test accuracy: mean and 95% interval per group",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(220)
            .build_cartesian_2d(100.0 * (lo - pad)..100.0 * (hi + pad), -0.5..n - 0.5)
            .map_err(err)?;
        let names: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
        chart
            .configure_mesh()
            .x_desc("test accuracy, %")
            .y_labels(rows.len().max(1))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 0.01 && i >= 0.0 {
                    names
                        .get(n as usize - 1 - i as usize)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for (i, (_, mean, half)) in rows.iter().enumerate() {
            let y = n - 1.0 - i as f64;
            let color = COLORS[i % COLORS.len()];
            let (a, b) = (100.0 * (mean - half), 100.0 * (mean + half));
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(a, y), (b, y)],
                    color.stroke_width(2),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (100.0 * mean, y),
                    5,
                    color.filled(),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
        Ok(())
    }
}

pub const CURVES_SIZE: (u32, u32) = (1100, 520);

/// Writes `report.md`, `curves.{svg,png}` and `forest.{svg,png}` for `sweep` into `out`.
pub fn write(sweep: &Sweep, groups: &[Group], out: &Path, command: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let forest_size = (1100, 120 + 34 * groups.len() as u32);
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "curves.svg",
            render_svg(&curves(groups), CURVES_SIZE)?.into_bytes(),
        ),
        ("curves.png", render_png(&curves(groups), CURVES_SIZE)?),
        (
            "forest.svg",
            render_svg(&ForestChart(groups), forest_size)?.into_bytes(),
        ),
        ("forest.png", render_png(&ForestChart(groups), forest_size)?),
        (
            "report.md",
            render_markdown(sweep, groups, command).into_bytes(),
        ),
    ];
    let mut written = vec![];
    for (name, bytes) in files {
        let path = out.join(name);
        crate::sys::atomic::write(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

fn render_markdown(sweep: &Sweep, groups: &[Group], command: &str) -> String {
    let baseline = sweep.spec.baseline.as_deref();
    format!(
        "# lenet5 study report\n\nGenerated by `{command}` from {} runs in {} groups (one per variant and grid point, over its seeds). Test accuracy is \
         each run's best checkpoint on the test set; the 95% CI is the t interval of the group mean; the gap is \
         training minus validation accuracy at the best epoch; epochs and seconds to a validation accuracy are \
         means over the runs that reached it (k/n when not all did). Δ is this group's mean test accuracy minus \
         the baseline's ({}), with the 95% interval of the difference and the two-sided p-value of Welch's \
         t-test.\n\n{}\n![validation curves](curves.svg)\n\n![test accuracy per group](forest.svg)\n",
        sweep.runs.len(),
        groups.len(),
        baseline.unwrap_or("none"),
        render_table(groups),
    )
}
