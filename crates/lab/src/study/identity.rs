//! Runs as identities. A run is its resolved config up to the keys that cannot change a number (threads,
//! device, where runs are kept, TensorBoard logging, checkpoint copies), seeds included: a sweep directory
//! accepts a run directory holding the same experiment
//! (`crate::config::same_experiment`). In a report, two runs are the same run when they
//! computed the same numbers (every epoch both ran, and the test accuracy): that covers the same experiment
//! run twice and configs that differ only in what did not act (early stopping that fired after the best
//! epoch), and leaves apart two runs of one config whose numbers differ (another device or commit). Runs of
//! two groups pair up by seed (`trainer.seed`, `init_seed`, `order_seed` and `data.seed`).

use crate::study::groups::Group;
use crate::study::runs::RunSummary;

/// Whether two finished runs computed the same numbers: the same test accuracy and the same losses and
/// accuracies in every epoch both ran (a run that differs only in what did not act, e.g. early stopping
/// that fired after the best epoch, recomputes the other).
pub fn same_numbers(x: &RunSummary, y: &RunSummary) -> bool {
    let accuracy = |r: &RunSummary| r.test.as_ref().map(|t| t.accuracy);
    let rows = x.rows.len().min(y.rows.len());
    rows > 0
        && accuracy(x).is_some()
        && accuracy(x) == accuracy(y)
        && x.rows[..rows].iter().zip(&y.rows[..rows]).all(|(p, q)| {
            (p.loss, p.accuracy, p.val_loss, p.val_accuracy)
                == (q.loss, q.accuracy, q.val_loss, q.val_accuracy)
        })
}

/// The same run, as a report counts it: the same numbers.
pub fn same_run(x: &RunSummary, y: &RunSummary) -> bool {
    same_numbers(x, y)
}

/// The seeds that make a run's randomness: weight init, data order, and the train/validation split.
pub type Seeds = (u64, Option<u64>, Option<u64>, u64);

/// A run's [`Seeds`] as its config states them (`trainer.init_seed`/`order_seed` unset: `trainer.seed`).
pub fn seeds(run: &RunSummary) -> Seeds {
    let t = &run.config.trainer;
    (t.seed, t.init_seed, t.order_seed, run.config.data.seed)
}

/// The runs of `a` and `b` with the same seeds, in `a`'s order.
pub fn seed_pairs<'g>(a: &'g Group, b: &'g Group) -> Vec<(&'g RunSummary, &'g RunSummary)> {
    a.runs
        .iter()
        .filter_map(|x| {
            let y = b.runs.iter().find(|y| seeds(y) == seeds(x))?;
            Some((x, y))
        })
        .collect()
}

/// How many of `a`'s runs are also `b`'s (paired by seed).
pub fn shared_runs(a: &Group, b: &Group) -> usize {
    seed_pairs(a, b)
        .into_iter()
        .filter(|(x, y)| same_run(x, y))
        .count()
}
