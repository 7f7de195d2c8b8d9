//! Checkpoint selection as a factor on hand-made groups (no training): the best checkpoint against the
//! last, paired by run, for groups trained without early stopping only.
use lenet5_lab::config::Config;
use lenet5_lab::rundir::selections::{Scored, Selection};
use lenet5_lab::study::compare::Test;
use lenet5_lab::study::groups::{Group, Study};
use lenet5_lab::study::runs::RunSummary;
use lenet5_lab::study::{selection, stats, sweep};

fn run(seed: u64, (best, last): (f64, f64), early_stopping: bool) -> RunSummary {
    let mut config = Config::default();
    config.trainer.seed = seed;
    config.trainer.early_stopping.enabled = early_stopping;
    let scored = |selection, accuracy| Scored {
        selection,
        epoch: 1,
        checkpoint: String::new(),
        loss: 0.0,
        accuracy,
    };
    RunSummary {
        name: format!("seed{seed}"),
        config,
        rows: vec![],
        state: None,
        test: None,
        train_eval: None,
        selections: vec![
            scored(Selection::BestValLoss, best),
            scored(Selection::BestValAccuracy, best),
            scored(Selection::Last, last),
        ],
        layers: vec![],
    }
}

fn group(name: &str, pairs: &[(f64, f64)], early_stopping: bool) -> Group {
    let runs: Vec<RunSummary> = (1..)
        .zip(pairs)
        .map(|(seed, &p)| run(seed, p, early_stopping))
        .collect();
    let none = stats::summarize(&[]);
    Group {
        name: name.into(),
        planned: runs.len(),
        test: none,
        runs,
        best_val: none,
        train_clean: none,
        gap: none,
        validated: false,
        convergence: vec![],
    }
}

#[test]
fn the_best_checkpoint_is_compared_with_the_last_paired_by_run() {
    let spec: sweep::SweepFile = serde_yaml::from_str("seeds: 3\n").unwrap();
    let pairs = [(0.9890, 0.9880), (0.9870, 0.9875), (0.9900, 0.9880)];
    let same = [(0.9890, 0.9890), (0.9870, 0.9870)];
    let study = Study {
        name: String::new(),
        sweep: sweep::Sweep {
            dir: "unused".into(),
            spec,
            runs: vec![],
        },
        groups: vec![
            group("full_budget", &pairs, false),
            group("stopped_early", &pairs, true),
            group("last_is_best", &same, false),
            group("one_run", &pairs[..1], false),
        ],
    };
    let rows = selection::contrasts(&study);
    let names: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.group.as_str(), r.reference.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("full_budget @ best_val_loss", "full_budget @ last"),
            ("last_is_best @ best_val_loss", "last_is_best @ last")
        ]
    );
    let (best, last): (Vec<f64>, Vec<f64>) =
        pairs.iter().map(|p| (100.0 * p.0, 100.0 * p.1)).unzip();
    let e = stats::paired(&best, &last);
    assert_eq!((rows[0].test, rows[0].n_pairs), (Test::Paired, 3));
    assert!((rows[0].delta - e.estimate).abs() < 1e-12 && (rows[0].p - e.p()).abs() < 1e-12);
    assert!(
        (rows[0].delta - (0.10 - 0.05 + 0.20) / 3.0).abs() < 1e-9,
        "{}",
        rows[0].delta
    );
    assert_eq!((rows[1].test, rows[1].delta), (Test::None, 0.0));
    assert_eq!(rows[1].verdict.name(), "identical runs (not tested)");
}
