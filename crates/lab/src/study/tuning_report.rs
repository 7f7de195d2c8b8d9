//! The tuning part of a study report: per tuned arm the chosen values and the trials behind them, the
//! learning-rate sensitivity chart (every trial's best validation accuracy against its learning rate, one
//! series per arm) and the expected validation performance curve of Dodge et al. 2019 (the expected best
//! validation accuracy of n trials drawn without replacement from the arm's trials, with its spread), which
//! says how tuning-hungry each arm is. The choice itself is [`super::tune`]'s, read from `tuning.csv`.

use super::sweep::Sweep;
use super::tune::TUNING_FILE;
use crate::chart::{COLORS, Plot, Series, render_png, render_svg};
use crate::config::scalar;
use crate::rundir::dir::METRICS_FILE;
use crate::rundir::metrics;
use anyhow::{Context, Result};
use plotters::chart::SeriesLabelPosition;

/// One trial as the report shows it.
#[derive(Debug, Clone)]
pub struct TrialRow {
    pub number: usize,
    /// `key=value; ...`, as sampled.
    pub values: String,
    pub lr: f64,
    /// Completed epochs (fewer than the budget when successive halving stopped it).
    pub epochs: usize,
    /// Best validation accuracy over its epochs (`None` before its first).
    pub best_val_accuracy: Option<f64>,
    /// Validation accuracy after each completed epoch.
    pub val_accuracies: Vec<f64>,
    pub chosen: bool,
}

/// A tuned arm: its trials in number order.
#[derive(Debug, Clone)]
pub struct Arm {
    pub variant: String,
    pub trials: Vec<TrialRow>,
}

impl Arm {
    /// The epochs every trial that trained at all has trained: the first rung under successive halving,
    /// the budget without it.
    pub fn common_epochs(&self) -> usize {
        let trained = self.trials.iter().map(|t| t.epochs).filter(|&e| e > 0);
        trained.min().unwrap_or(0)
    }

    /// Each trial's best validation accuracy within the common epochs: one budget for every trial, so
    /// that a trial successive halving promoted does not count its extra epochs against the others'.
    pub fn at_common_budget(&self) -> Vec<(f64, f64)> {
        let epochs = self.common_epochs();
        (self.trials.iter())
            .filter_map(|t| {
                let seen = t.val_accuracies.iter().take(epochs).copied();
                let best = seen.filter(|v| v.is_finite()).reduce(f64::max)?;
                Some((t.lr, best))
            })
            .collect()
    }
}

/// The expected maximum of `n` values drawn without replacement from `values`, and its standard
/// deviation, exactly: with the values sorted, v₍ᵢ₎ is the maximum of C(i−1, n−1) of the C(N, n) subsets.
pub fn expected_max(values: &[f64], n: usize) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let big_n = v.len();
    if n == 0 || n > big_n {
        return (f64::NAN, f64::NAN);
    }
    // p_i = C(i−1, n−1) / C(N, n) for 1-based i ≥ n, as a running ratio (no overflowing binomials):
    // p_N = n/N and p_{i−1} = p_i · (i − n) / (i − 1).
    let mut p = vec![0.0; big_n + 1];
    p[big_n] = n as f64 / big_n as f64;
    for i in (n + 1..=big_n).rev() {
        p[i - 1] = p[i] * (i - n) as f64 / (i - 1) as f64;
    }
    let mean: f64 = (n..=big_n).map(|i| p[i] * v[i - 1]).sum();
    let square: f64 = (n..=big_n).map(|i| p[i] * v[i - 1] * v[i - 1]).sum();
    (mean, (square - mean * mean).max(0.0).sqrt())
}

/// The tuned arms of `sweep`, from its trial runs and `tuning.csv`; empty for a sweep without tuning.
pub fn arms(sweep: &Sweep) -> Result<Vec<Arm>> {
    let chosen = chosen(sweep)?;
    let mut arms: Vec<Arm> = vec![];
    for run in &sweep.runs {
        let Some(trial) = &run.trial else { continue };
        let path = sweep.run_dir(run).join(METRICS_FILE);
        let rows = match path.is_file() {
            true => metrics::read(&path)?,
            false => vec![],
        };
        let best = (rows.iter().map(|r| r.val_accuracy))
            .filter(|v| v.is_finite())
            .reduce(f64::max);
        let values: Vec<String> = (trial.values.iter())
            .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or_default(), scalar(v)))
            .collect();
        let row = TrialRow {
            number: trial.number,
            values: values.join("; "),
            lr: run.config.optimizer.lr,
            epochs: rows.len(),
            best_val_accuracy: best,
            val_accuracies: rows.iter().map(|r| r.val_accuracy).collect(),
            chosen: chosen.contains(&(run.variant.clone(), trial.number)),
        };
        match arms.iter_mut().find(|a| a.variant == run.variant) {
            Some(arm) => arm.trials.push(row),
            None => arms.push(Arm {
                variant: run.variant.clone(),
                trials: vec![row],
            }),
        }
    }
    Ok(arms)
}

/// (variant, trial number) of each choice in `tuning.csv`.
fn chosen(sweep: &Sweep) -> Result<Vec<(String, usize)>> {
    let path = sweep.dir.join(TUNING_FILE);
    if !path.is_file() {
        return Ok(vec![]);
    }
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = vec![];
    for record in reader.records() {
        let r = record.with_context(|| format!("{}: bad line", path.display()))?;
        if r.get(7) == Some("true") {
            let number = r.get(1).and_then(|n| n.parse().ok());
            out.extend(number.map(|n| (r[0].to_string(), n)));
        }
    }
    Ok(out)
}

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{:.2}", 100.0 * x))
}

/// The report's tuning section: per arm the choice and the spread of its trials, then every trial.
pub fn render_markdown(arms: &[Arm]) -> String {
    let mut out = String::from(
        "\n## Tuning\n\nEach tuned arm trained its trials first and its seeds at the trial with the best \
         validation metric (`tuning.csv`); the test set chose nothing. Accuracies are each trial's best \
         validation accuracy, in percent. The chosen trial's is at the full budget; the range, E[best of n] and \
         both charts take every trial at **one budget, the epochs every trial trained** (the first rung under \
         successive halving: a promoted trial's later epochs would otherwise count against the stopped \
         ones'). E[best of n] is the expected best of n trials drawn without replacement from the arm's \
         trials (Dodge et al. 2019), ± its standard deviation.\n\n\
         | arm | trials | chosen | its values | its val acc | at epochs | trials' val acc (min–max) | E[best of 1] | E[best of half] |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for arm in arms {
        let accs: Vec<f64> = arm.at_common_budget().iter().map(|a| a.1).collect();
        let chosen = arm.trials.iter().find(|t| t.chosen);
        let (lo, hi) = (
            accs.iter().copied().reduce(f64::min),
            accs.iter().copied().reduce(f64::max),
        );
        let evp = |n: usize| match expected_max(&accs, n) {
            (m, _) if m.is_nan() => "—".to_string(),
            (m, s) => format!("{} ± {}", pct(Some(m)), pct(Some(s))),
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {}–{} | {} | {} |\n",
            arm.variant,
            arm.trials.len(),
            chosen.map_or("not yet".into(), |t| format!("trial {}", t.number)),
            chosen.map_or(String::new(), |t| t.values.clone()),
            pct(chosen.and_then(|t| t.best_val_accuracy)),
            arm.common_epochs(),
            pct(lo),
            pct(hi),
            evp(1),
            evp((accs.len() / 2).max(1)),
        );
    }
    out += "\n![learning-rate sensitivity](lr_sensitivity.svg)\n\n\
            ![expected validation performance](expected_validation.svg)\n\n\
            | arm | trial | values | epochs | best val acc | chosen |\n|---|---|---|---|---|---|\n";
    for arm in arms {
        for t in &arm.trials {
            let mark = if t.chosen { "✓" } else { "" };
            out += &format!(
                "| {} | {} | {} | {} | {} | {mark} |\n",
                arm.variant,
                t.number,
                t.values,
                t.epochs,
                pct(t.best_val_accuracy)
            );
        }
    }
    out
}

/// Every trial's best validation accuracy (at the arm's common budget) against its learning rate, one series
/// of dots per arm.
pub fn sensitivity_chart(arms: &[Arm]) -> Plot {
    let series = (arms.iter().enumerate())
        .map(|(i, arm)| Series {
            label: arm.variant.clone(),
            points: (arm.at_common_budget().iter())
                .map(|&(lr, a)| (lr, 100.0 * a))
                .collect(),
            color: COLORS[i % COLORS.len()],
            band: vec![],
        })
        .collect();
    Plot {
        title: "learning-rate sensitivity (every trial, at the epochs all trained)".into(),
        x_label: "learning rate",
        y_label: "best validation accuracy (%)",
        log_x: true,
        dots: true,
        series,
        // Too small or too large a rate scores low at either end: the middle's bottom stays empty.
        legend: SeriesLabelPosition::LowerMiddle,
    }
}

/// Expected best validation accuracy (at the arm's common budget) against the number of trials, ±1 std,
/// one line per arm.
pub fn expected_validation_chart(arms: &[Arm]) -> Plot {
    let series = (arms.iter().enumerate())
        .map(|(i, arm)| {
            let accs: Vec<f64> = arm.at_common_budget().iter().map(|a| a.1).collect();
            let curve: Vec<(f64, f64, f64)> = (1..=accs.len())
                .map(|n| {
                    let (m, s) = expected_max(&accs, n);
                    (n as f64, 100.0 * m, 100.0 * s)
                })
                .collect();
            Series {
                label: arm.variant.clone(),
                points: curve.iter().map(|c| (c.0, c.1)).collect(),
                color: COLORS[i % COLORS.len()],
                band: curve.iter().map(|c| (c.0, c.1 - c.2, c.1 + c.2)).collect(),
            }
        })
        .collect();
    Plot {
        title: "expected validation performance (Dodge et al. 2019)".into(),
        x_label: "trials",
        y_label: "expected best validation accuracy (%)",
        log_x: false,
        dots: false,
        series,
        // The curves rise to the right.
        legend: SeriesLabelPosition::LowerRight,
    }
}

/// The tuning section and its charts' files (name, bytes); nothing for a sweep without trials.
pub fn files(arms: &[Arm]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    if arms.is_empty() {
        return Ok(vec![]);
    }
    let size = (900, 540);
    let (lr, evp) = (sensitivity_chart(arms), expected_validation_chart(arms));
    Ok(vec![
        ("lr_sensitivity.svg", render_svg(&lr, size)?.into_bytes()),
        ("lr_sensitivity.png", render_png(&lr, size)?),
        (
            "expected_validation.svg",
            render_svg(&evp, size)?.into_bytes(),
        ),
        ("expected_validation.png", render_png(&evp, size)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(number: usize, lr: f64, val_accuracies: &[f64]) -> TrialRow {
        TrialRow {
            number,
            values: String::new(),
            lr,
            epochs: val_accuracies.len(),
            best_val_accuracy: val_accuracies.iter().copied().reduce(f64::max),
            val_accuracies: val_accuracies.to_vec(),
            chosen: false,
        }
    }

    #[test]
    fn every_trial_counts_at_the_epochs_all_of_them_trained() {
        let arm = Arm {
            variant: "a".into(),
            trials: vec![
                trial(1, 0.1, &[0.90, 0.95, 0.96]),
                // Promoted: its epochs after the third do not count against trial 1's.
                trial(2, 0.01, &[0.80, 0.85, 0.90, 0.99, 0.995, 0.999]),
                trial(3, 0.001, &[]),
            ],
        };
        assert_eq!(arm.common_epochs(), 3);
        assert_eq!(arm.at_common_budget(), [(0.1, 0.96), (0.01, 0.90)]);
        let table = render_markdown(std::slice::from_ref(&arm));
        assert!(table.contains("| 3 | 90.00–96.00 |"), "{table}");
    }
}
