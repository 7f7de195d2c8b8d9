//! A sweep's finished runs grouped by everything but the seed, and what each group measured: test accuracy
//! (mean ± std, 95% t interval), the best checkpoint's accuracy on the clean training split, the
//! generalization gap (clean training accuracy − test accuracy, per run), and the epochs to 98% and 99%
//! validation accuracy as Kaplan–Meier medians. A run that never got there is censored at its planned
//! budget (`trainer.epochs`), not where early stopping ended it: early stopping fires on runs that have
//! plateaued, so it is an outcome (this run, trained this way, never gets there), not an uninformative
//! loss to follow-up; keeping such runs at risk to the end of the budget makes the median the epoch by
//! which half the runs of the procedure reached the threshold (the cumulative incidence with early
//! stopping as a competing, absorbing outcome). A group trained without a validation split has no
//! convergence (its "validation" columns are the running training numbers).

use crate::study::runs::{self, RunSummary};
use crate::study::stats::{self, Duration, Summary};
use crate::study::sweep::Sweep;
use anyhow::Result;

/// Validation accuracies whose first epoch a group's convergence reports.
pub const THRESHOLDS: [f64; 2] = [0.98, 0.99];

/// Epochs to one validation accuracy over a group's runs.
#[derive(Debug, Clone)]
pub struct Convergence {
    pub threshold: f64,
    /// Runs that reached it (the others are censored at their last epoch).
    pub reached: usize,
    /// Kaplan–Meier median and its 95% interval, epochs (NaN: not reached by half the runs / open end).
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// The median in optimizer steps (epochs × batches per epoch of the dataset's training split).
    pub median_steps: f64,
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
    /// The best checkpoint's accuracy on the clean training split (runs that recorded it).
    pub train_clean: Summary,
    /// Clean training accuracy − test accuracy, per run.
    pub gap: Summary,
    /// Whether every run held out a validation split; without one, `best_val` and `convergence` are empty.
    pub validated: bool,
    pub convergence: Vec<Convergence>,
}

/// A sweep and its groups, under the name a report gives it (empty when it is the report's only sweep).
#[derive(Debug, Clone)]
pub struct Study {
    pub name: String,
    pub sweep: Sweep,
    pub groups: Vec<Group>,
}

impl Study {
    /// Reads the sweep directory `dir` and groups its finished runs.
    pub fn open(dir: &std::path::Path, name: &str) -> Result<Study> {
        let sweep = crate::study::sweep::open(dir)?;
        let groups = groups(&sweep)?;
        Ok(Study {
            name: name.to_string(),
            sweep,
            groups,
        })
    }

    /// A group's name in a report: `study/group` when the report has several studies.
    pub fn label(&self, group: &str) -> String {
        match self.name.is_empty() {
            true => group.to_string(),
            false => format!("{}/{group}", self.name),
        }
    }
}

/// Groups the finished runs of `sweep` in sweep order and computes every column.
pub fn groups(sweep: &Sweep) -> Result<Vec<Group>> {
    let mut names: Vec<&str> = vec![];
    // Tuning trials choose a setting; the groups are the runs at it.
    for run in sweep.runs.iter().filter(|r| r.trial.is_none()) {
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
    Ok(groups)
}

/// Whether `run` measured validation accuracy on held-out images: with `data.validation_split` 0 its
/// validation columns repeat the running training numbers (on distorted images, with dropout on), which
/// say nothing about convergence on unseen data.
pub fn validated(run: &RunSummary) -> bool {
    run.config.data.validation_split > 0.0
}

/// Epochs until a run's validation accuracy first reached `threshold`; else censored at its planned
/// budget, however early it stopped (see the module's note).
pub fn epochs_to(run: &RunSummary, threshold: f64) -> Duration {
    match run.rows.iter().find(|r| r.val_accuracy >= threshold) {
        Some(row) => Duration {
            time: row.epoch as f64,
            observed: true,
        },
        None => Duration {
            time: run
                .rows
                .last()
                .map_or(0, |r| r.epoch)
                .max(run.config.trainer.epochs) as f64,
            observed: false,
        },
    }
}

/// Optimizer steps in one epoch of `run`'s config on its dataset's full training split.
fn steps_per_epoch(run: &RunSummary) -> f64 {
    let d = &run.config.data;
    let train = (d.dataset.train_images() as f64 * (1.0 - d.validation_split)).floor();
    (train / d.batch_size as f64).ceil()
}

fn group(name: &str, planned: usize, runs: Vec<RunSummary>) -> Group {
    let of = |f: &dyn Fn(&RunSummary) -> Option<f64>| -> Summary {
        stats::summarize(&runs.iter().filter_map(f).collect::<Vec<_>>())
    };
    let validated = !runs.is_empty() && runs.iter().all(validated);
    let test = of(&|r| r.test.as_ref().map(|t| t.accuracy));
    let best_val = of(&|r| {
        let best = r.rows.iter().map(|row| row.val_accuracy).reduce(f64::max);
        best.filter(|_| validated)
    });
    let train_clean = of(&|r| r.train_eval.as_ref().map(|t| t.accuracy));
    let gap = of(&|r| Some(r.train_eval.as_ref()?.accuracy - r.test.as_ref()?.accuracy));
    let convergence = THRESHOLDS
        .iter()
        .map(|&threshold| {
            let durations: Vec<Duration> = match validated {
                true => runs.iter().map(|r| epochs_to(r, threshold)).collect(),
                false => vec![],
            };
            let (median, low, high) = if durations.is_empty() {
                (f64::NAN, f64::NAN, f64::NAN)
            } else {
                stats::km_median(&durations)
            };
            Convergence {
                threshold,
                reached: durations.iter().filter(|d| d.observed).count(),
                median,
                low,
                high,
                median_steps: runs
                    .first()
                    .map_or(f64::NAN, |r| median * steps_per_epoch(r)),
            }
        })
        .collect();
    Group {
        name: name.to_string(),
        planned,
        runs,
        test,
        best_val,
        train_clean,
        gap,
        validated,
        convergence,
    }
}
