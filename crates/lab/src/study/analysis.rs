//! The study report: the groups' table, the comparisons' table with their verdicts and the rules that made
//! them, charts of the mean validation curves (±1 std) and a forest plot of each difference with its
//! simultaneous interval and the equivalence band, and the same numbers as `groups.csv` and
//! `comparisons.csv` for pandas. Tables and charts are pure functions; only [`write`] touches files.

use crate::chart::{COLORS, Chart, Panel, Series, drawing_error, render_png, render_svg};
use crate::study::compare::{self, ALPHA, Comparison, POWER, Verdict};
pub use crate::study::groups::{Group, Study, THRESHOLDS};
use crate::study::identity;
use crate::study::stats::{self, Summary};
use crate::study::{calibration_report, layers_report, test_set, tuning_report};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

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

/// A group's 95% interval of its mean test accuracy (fractions), clipped to [0, 1]: an accuracy's interval
/// cannot leave the range an accuracy has.
pub fn test_interval(s: &Summary) -> (f64, f64) {
    ((s.mean - s.ci95).max(0.0), (s.mean + s.ci95).min(1.0))
}

fn interval(s: &Summary) -> String {
    if s.ci95.is_nan() {
        "—".into()
    } else {
        let (low, high) = test_interval(s);
        format!("[{}, {}]", pct(low), pct(high))
    }
}

/// Every study's groups, named as the report names them (`study/group` when there are several).
pub fn labelled_groups(studies: &[Study]) -> Vec<Group> {
    studies
        .iter()
        .flat_map(|s| {
            s.groups.iter().map(|g| Group {
                name: s.label(&g.name),
                ..g.clone()
            })
        })
        .collect()
}

/// A Kaplan–Meier median in epochs with its interval: "3 [2, 5]", "14 [9, —]" (open end), "not by half
/// (0/5)", or "no validation split".
fn km_cell(g: &Group, k: usize) -> String {
    let c = &g.convergence[k];
    let n = g.runs.len();
    if !g.validated {
        return "no validation split".into();
    }
    if c.median.is_nan() {
        return format!("not by half ({}/{n})", c.reached);
    }
    let end = |x: f64| {
        if x.is_nan() {
            "—".to_string()
        } else {
            format!("{x:.0}")
        }
    };
    let reached = if c.reached == n {
        String::new()
    } else {
        format!(" ({}/{n})", c.reached)
    };
    format!("{:.0} [{}, {}]{reached}", c.median, end(c.low), end(c.high))
}

/// The group table as Markdown. Accuracies in percent.
pub fn render_table(groups: &[Group]) -> String {
    let mut out = String::from(
        "| Group | n | Test accuracy % (mean ± std) | 95% CI | Clean train accuracy % | Gap (train − test, points) | Epochs to 98% (KM median [95% CI]) | Epochs to 99% |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for g in groups {
        let n = g.runs.len();
        let runs = if n == g.planned {
            n.to_string()
        } else {
            format!("{n} of {}", g.planned)
        };
        out += &format!(
            "| {} | {runs} | {} | {} | {} | {} | {} | {} |\n",
            g.name,
            mean_std(&g.test),
            interval(&g.test),
            mean_std(&g.train_clean),
            mean_std(&g.gap),
            km_cell(g, 0),
            km_cell(g, 1),
        );
    }
    out
}

fn points(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{x:+.2}")
    }
}

fn p_value(p: f64) -> String {
    if p.is_nan() {
        "—".into()
    } else if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn number(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{x:.2}")
    }
}

/// The comparisons table as Markdown, in points of test accuracy.
pub fn render_comparisons(comparisons: &[Comparison]) -> String {
    let mut out = String::from(
        "| Group | vs | Test | n / n_ref (pairs, shared) | Δ test (points) [95% CI] | Simultaneous CI | p | p (Holm) | TOST p (Holm) at ± margin | Equivalent within ± | MDD (80%) | P(improvement) [95% CI] | Δ gap (p Holm) | Log-rank p (Holm), 98% / 99% | Verdict |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for c in comparisons {
        let range = |a: f64, b: f64| {
            if a.is_nan() {
                "—".into()
            } else {
                format!("[{:.2}, {:.2}]", a, b)
            }
        };
        let pi = if c.p_improvement.is_nan() {
            "—".into()
        } else {
            format!(
                "{:.2} {}",
                c.p_improvement,
                range(c.p_improvement_low, c.p_improvement_high)
            )
        };
        let gap = match c.gap_delta.is_nan() {
            true => "—".into(),
            false => format!("{} ({})", points(c.gap_delta), p_value(c.gap_p_holm)),
        };
        let test = serde_json::to_value(c.test).map_or(String::new(), |v| {
            v.as_str().unwrap_or_default().replace('_', " ")
        });
        out += &format!(
            "| {} | {} | {test} | {} / {} ({}, {}) | {} {} | {} | {} | {} | {} at ±{:.2} | {} | {} | {pi} | {gap} | {} / {} | {} |\n",
            c.group,
            c.reference,
            c.n,
            c.n_ref,
            c.n_pairs,
            c.shared_runs,
            points(c.delta),
            range(c.ci_low, c.ci_high),
            range(c.sim_low, c.sim_high),
            p_value(c.p),
            p_value(c.p_holm),
            p_value(c.tost_p_holm),
            c.margin,
            number(c.equivalent_within),
            number(c.mdd),
            p_value(c.logrank_98_p_holm),
            p_value(c.logrank_99_p_holm),
            c.verdict.name(),
        );
    }
    out
}

/// The groups of the report (in any of its studies) that share runs: (group, group, runs shared).
pub fn shared_runs(groups: &[Group]) -> Vec<(String, String, usize)> {
    let mut out = vec![];
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            let shared = identity::shared_runs(a, b);
            if shared > 0 {
                out.push((a.name.clone(), b.name.clone(), shared));
            }
        }
    }
    out
}

/// Mean validation accuracy per epoch with a ±1 std band, one line per group (a group without a
/// validation split is labelled as what its line is: the running training accuracy).
pub fn curves(groups: &[Group]) -> Vec<Panel> {
    let series = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let curve = mean_curve(g);
            Series {
                label: match g.validated {
                    true => g.name.clone(),
                    false => format!("{} (training accuracy: no validation split)", g.name),
                },
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

/// Each comparison's Δ (points) with its simultaneous interval, the equivalence band shaded, the verdict by
/// colour: red differs, orange negligible, green equivalent, grey inconclusive.
pub struct ForestChart<'a>(pub &'a [Comparison]);

impl Chart for ForestChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let err = drawing_error::<DB>;
        root.fill(&WHITE).map_err(err)?;
        let rows: Vec<&Comparison> = self.0.iter().filter(|c| !c.sim_low.is_nan()).collect();
        let margin = self.0.first().map_or(0.25, |c| c.margin);
        let lo = rows.iter().map(|c| c.sim_low).fold(-margin, f64::min);
        let hi = rows.iter().map(|c| c.sim_high).fold(margin, f64::max);
        let pad = (hi - lo) * 0.08;
        let n = rows.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Δ test accuracy vs reference: simultaneous 95% interval, equivalence band shaded",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(400)
            .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..n - 0.5)
            .map_err(err)?;
        let names: Vec<String> = rows
            .iter()
            .map(|c| format!("{} vs {} ({})", c.group, c.reference, c.verdict.name()))
            .collect();
        chart
            .configure_mesh()
            .x_desc("Δ test accuracy, points")
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
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(-margin, -0.5), (margin, n - 0.5)],
                RGBColor(89, 161, 79).mix(0.15).filled(),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, n - 0.5)],
                BLACK.mix(0.5),
            )))
            .map_err(err)?;
        for (i, c) in rows.iter().enumerate() {
            let y = n - 1.0 - i as f64;
            let color = match c.verdict {
                Verdict::Differs => RGBColor(225, 87, 89),
                Verdict::Negligible => RGBColor(242, 142, 43),
                Verdict::Equivalent => RGBColor(89, 161, 79),
                _ => RGBColor(120, 120, 120),
            };
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(c.sim_low, y), (c.sim_high, y)],
                    color.stroke_width(2),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (c.delta, y),
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

/// One row of `groups.csv`: accuracies and differences in percent points; medians in epochs.
#[derive(Serialize)]
struct GroupRow<'a> {
    group: &'a str,
    n: usize,
    test_mean: f64,
    test_std: f64,
    test_ci_low: f64,
    test_ci_high: f64,
    best_val_mean: f64,
    train_accuracy_mean: f64,
    gap_mean: f64,
    gap_std: f64,
    epochs_to_98_median: f64,
    epochs_to_98_low: f64,
    epochs_to_98_high: f64,
    reached_98: usize,
    steps_to_98_median: f64,
    epochs_to_99_median: f64,
    epochs_to_99_low: f64,
    epochs_to_99_high: f64,
    reached_99: usize,
    steps_to_99_median: f64,
    /// The test set's standard error of `test_mean` (the runs fixed, the images resampled).
    test_set_se: f64,
}

/// `groups.csv`; `test_set_se` holds each group's test-set standard error (points), in `groups`' order.
pub fn groups_csv(groups: &[Group], test_set_se: &[f64]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    for (g, &test_set_se) in groups.iter().zip(test_set_se) {
        let (c98, c99) = (&g.convergence[0], &g.convergence[1]);
        w.serialize(GroupRow {
            group: &g.name,
            n: g.runs.len(),
            test_mean: 100.0 * g.test.mean,
            test_std: 100.0 * g.test.std,
            test_ci_low: 100.0 * test_interval(&g.test).0,
            test_ci_high: 100.0 * test_interval(&g.test).1,
            best_val_mean: 100.0 * g.best_val.mean,
            train_accuracy_mean: 100.0 * g.train_clean.mean,
            gap_mean: 100.0 * g.gap.mean,
            gap_std: 100.0 * g.gap.std,
            epochs_to_98_median: c98.median,
            epochs_to_98_low: c98.low,
            epochs_to_98_high: c98.high,
            reached_98: c98.reached,
            steps_to_98_median: c98.median_steps,
            epochs_to_99_median: c99.median,
            epochs_to_99_low: c99.low,
            epochs_to_99_high: c99.high,
            reached_99: c99.reached,
            steps_to_99_median: c99.median_steps,
            test_set_se,
        })?;
    }
    Ok(w.into_inner()?)
}

/// `comparisons.csv`.
pub fn comparisons_csv(comparisons: &[Comparison]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    for c in comparisons {
        w.serialize(c)?;
    }
    Ok(w.into_inner()?)
}

/// A crossing declared after the runs (`report --cross`): its keys and its family's rows.
pub struct Crossing<'a> {
    pub keys: &'a [String],
    pub rows: &'a [Comparison],
}

/// Writes `report.md`, `groups.csv`, `comparisons.csv`, `variance.csv`, `curves.{svg,png}` and
/// `forest.{svg,png}` into `out`, and `crossed.csv` with a crossing.
pub fn write(
    studies: &[Study],
    comparisons: &[Comparison],
    crossing: Option<&Crossing>,
    out: &Path,
    command: &str,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let groups = labelled_groups(studies);
    let (mut test_set_se, mut variance) = (vec![], vec![]);
    for study in studies {
        let answers = test_set::load(study)?;
        for g in &study.groups {
            test_set_se.push(test_set::group_se(&answers, g));
            variance.push(test_set::variance(study, &answers, g));
        }
    }
    let forest_size = (1300, 120 + 34 * comparisons.len().max(1) as u32);
    let forest = ForestChart(comparisons);
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "curves.svg",
            render_svg(&curves(&groups), CURVES_SIZE)?.into_bytes(),
        ),
        ("curves.png", render_png(&curves(&groups), CURVES_SIZE)?),
        ("forest.svg", render_svg(&forest, forest_size)?.into_bytes()),
        ("forest.png", render_png(&forest, forest_size)?),
        ("groups.csv", groups_csv(&groups, &test_set_se)?),
        ("comparisons.csv", comparisons_csv(comparisons)?),
        ("variance.csv", test_set::variance_csv(&variance)?),
        (
            "report.md",
            (render_markdown(studies, &groups, comparisons, command)
                + &test_set::render_markdown(comparisons, &variance)
                + &crossing.map_or(String::new(), crossed_section))
                .into_bytes(),
        ),
    ];
    // A tuned study also shows its trials (nothing for one without).
    let mut arms = vec![];
    for study in studies {
        arms.extend(tuning_report::arms(&study.sweep)?);
    }
    let mut files = files;
    match crossing {
        Some(c) => files.push(("crossed.csv", comparisons_csv(c.rows)?)),
        // A crossing from an earlier report into the same directory is not this report's.
        None => remove_stale(&out.join("crossed.csv"))?,
    }
    files.extend(tuning_report::files(&arms)?);
    files.extend(calibration_report::files(&groups)?);
    files.extend(layers_report::files(&groups)?);
    let calibration = calibration_report::render_markdown(&groups, comparisons);
    let layers = layers_report::render_markdown(&groups);
    if let Some(report) = files.iter_mut().find(|f| f.0 == "report.md") {
        report.1.extend(calibration.into_bytes());
        report.1.extend(layers.into_bytes());
    }
    if !arms.is_empty()
        && let Some(report) = files.iter_mut().find(|f| f.0 == "report.md")
    {
        report
            .1
            .extend(tuning_report::render_markdown(&arms).into_bytes());
    }
    let mut written = vec![];
    for (name, bytes) in files {
        let path = out.join(name);
        crate::sys::atomic::write(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// The crossing's section of report.md: what it crossed, why it is a family of its own, its rows.
fn crossed_section(c: &Crossing) -> String {
    let keys: Vec<String> = c.keys.iter().map(|k| format!("`{k}`")).collect();
    let tested = c.rows.iter().filter(|r| r.estimate.is_some()).count();
    format!(
        "\n## Crossed after the runs: {}\n\n`--cross` read these keys' crossing out of the variants that differ \
         from the sweep's base only in them (its base config and tuning, nothing else set; a section's level is \
         the values its cells set inside it): the reference cell is the baseline's where the baseline is one, \
         else the first such variant listed, and every combination is one variant. Main effects average over \
         the other keys' levels; an interaction is (μᵢⱼ − μᵢ₀) − (μ₀ⱼ − μ₀₀), tested like a grid's (paired by \
         seed when every cell ran the same seeds). The {tested} tested rows of the {} below are a family of \
         their own (Holm within it), apart from the comparisons above, whose verdicts they leave as they were: \
         a crossing declared after its runs were read is exploratory, and pooled with the comparisons above its \
         rows would be corrected more. The margin is the sweep's, relative to the reference cell. Also in \
         `crossed.csv`.\n\n{}",
        keys.join(" × "),
        c.rows.len(),
        render_comparisons(c.rows)
    )
}

/// Removes `path` where it exists.
fn remove_stale(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            anyhow::bail!("cannot remove {}: {e}", path.display())
        }
        _ => Ok(()),
    }
}

/// The margins of the report's studies, each with its reason.
fn margins(studies: &[Study]) -> String {
    studies
        .iter()
        .map(|s| {
            let name = match s.name.is_empty() {
                true => String::new(),
                false => format!("`{}`: ", s.name),
            };
            format!("- {name}{}\n", compare::margin_statement(&s.sweep))
        })
        .collect()
}

/// The report's groups that share runs, as a list (or a sentence saying none do).
fn shared_section(groups: &[Group]) -> String {
    let shared = shared_runs(groups);
    if shared.is_empty() {
        return "No two groups of this report share a run.\n".into();
    }
    let mut out = String::from(
        "These groups share runs (same seeds, same numbers: the test accuracy and every epoch both ran): \
         a comparison between them is paired, and their results are not independent evidence.\n\n",
    );
    for (a, b, n) in shared {
        let runs = if n == 1 { "run" } else { "runs" };
        out += &format!("- {a} and {b}: {n} {runs}\n");
    }
    out
}

fn render_markdown(
    studies: &[Study],
    groups: &[Group],
    comparisons: &[Comparison],
    command: &str,
) -> String {
    let family = comparisons.iter().map(|c| c.family).max().unwrap_or(0);
    let runs: usize = (studies.iter().flat_map(|s| &s.sweep.runs))
        .filter(|r| r.trial.is_none())
        .count();
    let sweeps = match studies.len() {
        1 => String::new(),
        n => format!(" of {n} sweeps"),
    };
    format!(
        "# lenet5 study report\n\nGenerated by `{command}` from {runs} runs{sweeps} in {} groups (one per variant \
         and grid point, over its seeds). Test accuracy is each run's best checkpoint on the test set; the 95% CI \
         is the t interval of the group mean, clipped to [0, 100]. Clean train accuracy is the same checkpoint on \
         the training split in eval mode (no distortions, no dropout); the gap is that minus the test accuracy, \
         per run. Epochs to 98% and 99% validation accuracy are Kaplan–Meier medians with their 95% interval \
         (Brookmeyer–Crowley, log-log); a run that never got there is censored at its planned budget \
         (`trainer.epochs`), also when early stopping ended it sooner: early stopping fires on runs that have \
         plateaued, so it is an outcome, not an uninformative loss; \"—\" is an open end.{}\n\n{}\n\
         ## Comparisons\n\nEach group is compared with its reference (its variant's `compare_to`, else the \
         sweep's baseline); a crossed grid adds its main effects and two-way interaction contrasts. The {family} \
         tested comparisons below form one family{}. For each: the test — *paired* (by seed) when the smaller \
         side's seeds all ran on the other side or the sides share runs, else *welch*; contrasts likewise — with \
         the seeds both sides ran and the runs they share; Δ = mean test accuracy minus the reference's, in \
         points, with its 95% interval; the raw and Holm-adjusted p; Bonferroni's simultaneous interval at \
         {:.4}; the TOST p at the margin (Holm-adjusted); *equivalent within*, the smallest margin whose TOST \
         would pass at α = {:.4}; MDD, the smallest true difference detectable at that α with {:.0}% power; the \
         probability that a run of the group beats a run of the reference, with Newcombe's 95% score interval \
         (valid when the groups do not overlap); the gap's difference (same test; Holm p in its own family); and \
         the log-rank test of epochs to 98% and 99% (Holm-adjusted in their own family).\n\n\
         **Margins** (points of test accuracy within which a difference counts as none):\n\n{}\n\
         **Verdicts** (Lakens' four): *differs* when the Holm-adjusted p < {ALPHA} and the Holm-adjusted TOST p \
         is not; *negligible* when both are < {ALPHA} (a difference, but within the margin); *equivalent* when \
         only the TOST p is; otherwise *inconclusive* — neither a difference nor its absence is shown. A group \
         whose runs recompute its reference's on every shared seed is *identical* and not tested.\n\n{}\n\
         ## Shared runs\n\n{}\n![validation curves](curves.svg)\n\n![differences](forest.svg)\n",
        groups.len(),
        if groups.iter().any(|g| !g.validated) {
            " A group trained without a validation split (`data.validation_split: 0`) has no convergence \
             columns and no log-rank test: its validation numbers are the running training ones."
        } else {
            ""
        },
        render_table(groups),
        if studies.len() > 1 {
            ", over all the sweeps"
        } else {
            ""
        },
        1.0 - ALPHA / family.max(1) as f64,
        ALPHA / family.max(1) as f64,
        100.0 * POWER,
        margins(studies),
        render_comparisons(comparisons),
        shared_section(groups),
    )
}
