//! Checkpoint selection as a factor: in every group trained without early stopping whose runs scored their
//! checkpoints, the headline selection (the best monitored validation value: what early stopping keeps)
//! against none (the last epoch, the budget's end), paired by run, as rows of the report's one family.

use crate::config::Monitor;
use crate::rundir::selections::Selection;
use crate::study::compare::{self, Comparison, Test, Verdict};
use crate::study::groups::{Group, Study};
use crate::study::stats;

/// One row per group that can say whether selecting the best checkpoint beats keeping the last.
pub fn contrasts(study: &Study) -> Vec<Comparison> {
    study
        .groups
        .iter()
        .filter_map(|g| selection_row(study, g))
        .collect()
}

/// The checkpoint test.json's headline is: the best by the monitored value.
fn headline(g: &Group) -> Selection {
    match g
        .runs
        .first()
        .map(|r| r.config.trainer.early_stopping.monitor)
    {
        Some(Monitor::ValAccuracy) => Selection::BestValAccuracy,
        _ => Selection::BestValLoss,
    }
}

/// `g`'s row, or none when its runs stopped early (their last epoch is not the budget's end) or fewer than
/// two scored their selections (a tuning trial's group, a run from before selections were kept).
fn selection_row(study: &Study, g: &Group) -> Option<Comparison> {
    let stops = g
        .runs
        .iter()
        .any(|r| r.config.trainer.early_stopping.enabled);
    let selected = headline(g);
    let pairs: Vec<(f64, f64)> = (g.runs.iter())
        .filter_map(|r| {
            let best = r.selection_accuracy(selected)?;
            Some((100.0 * best, 100.0 * r.selection_accuracy(Selection::Last)?))
        })
        .collect();
    if stops || pairs.len() < 2 {
        return None;
    }
    let (best, last): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    let label = study.label(&g.name);
    let mut row = Comparison::blank(
        format!("{label} @ {}", selected.name()),
        format!("{label} @ last"),
        best.len(),
        last.len(),
        compare::margin(&study.sweep, stats::mean(&last)),
    );
    row.n_pairs = best.len();
    // The same checkpoint in every run (the last epoch was the best) leaves nothing to test.
    match best == last {
        true => (row.delta, row.verdict) = (0.0, Verdict::Identical),
        false => row.tested(Test::Paired, stats::paired(&best, &last)),
    }
    Some(row)
}
