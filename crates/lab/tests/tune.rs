//! Tuning's decisions on trial directories written by hand (no training, no LibTorch): successive halving
//! promotes the top 1/η at each rung and stops the rest there, the choice is the arg-max of the recorded
//! validation metric among the trials at the full budget, sampling is seeded, and bad blocks are refused.
use lenet5_lab::config::Config;
use lenet5_lab::rundir::dir::RunDir;
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::rundir::metrics::{self, EpochRow};
use lenet5_lab::rundir::state::{RunStatus, TrainState};
use lenet5_lab::study::family;
use lenet5_lab::study::groups::Study;
use lenet5_lab::study::space::TuneSpec;
use lenet5_lab::study::sweep::{self, Sweep};
use lenet5_lab::study::tune::{TUNING_FILE, Tuning};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A sweep file in a fresh directory, loaded with its tuning.
fn tuned(name: &str, yaml: &str) -> (Sweep, Tuning) {
    let dir = scratch(name);
    std::fs::write(dir.join("sweep.yaml"), yaml).unwrap();
    let sweep = sweep::load(&dir.join("sweep.yaml"), &dir.join("study")).unwrap();
    let tuning = Tuning::new(&sweep).unwrap().expect("tuned");
    (sweep, tuning)
}

/// Pretends the run trained to the epochs its config asks for, with validation accuracy `acc(epoch)`.
fn train(sweep: &Sweep, id: &str, acc: impl Fn(usize) -> f64) {
    let run = sweep.runs.iter().find(|r| r.id == id).unwrap();
    let dir = RunDir::open(&sweep.run_dir(run)).unwrap();
    let config: Config = dir.config().unwrap();
    let epochs = config.trainer.epochs;
    let rows: Vec<EpochRow> = (1..=epochs)
        .map(|e| EpochRow {
            epoch: e,
            lr: 0.1,
            loss: 1.0,
            accuracy: 0.5,
            val_loss: 1.0 - acc(e),
            val_accuracy: acc(e),
            seconds: 1.0,
        })
        .collect();
    std::fs::write(dir.file("metrics.csv"), metrics::to_csv(&rows).unwrap()).unwrap();
    let mut state = TrainState::new(&config);
    state.epoch = epochs;
    state.status = RunStatus::Completed;
    dir.write_state(&state).unwrap();
    dir.write_test(
        &Evaluation {
            images: 1,
            loss: 0.0,
            accuracy: 0.5,
            top3_accuracy: 1.0,
            per_class_accuracy: vec![],
            confusion: vec![],
            calibration: None,
            most_confused: vec![],
            temperature_scaled: None,
        },
        &[],
    )
    .unwrap();
}

fn epochs_asked(sweep: &Sweep, id: &str) -> usize {
    let run = sweep.runs.iter().find(|r| r.id == id).unwrap();
    RunDir::open(&sweep.run_dir(run))
        .unwrap()
        .config()
        .unwrap()
        .trainer
        .epochs
}

const ASHA: &str = "seeds: [1, 2]\nbaseline: sgd\nset: {trainer.epochs: 9, trainer.early_stopping.enabled: false}\n\
    variants:\n  - name: sgd\n    set: {optimizer.type: sgd}\n    tune:\n      space:\n        optimizer.lr: {log_uniform: [1.0e-4, 1.0]}\n        optimizer.momentum: {uniform: [0.8, 0.99]}\n      trials: 9\n      metric: val_accuracy\n      search_seed: 7\n      asha: {min_epochs: 1, reduction_factor: 3}\n  - name: plain\n";

#[test]
fn successive_halving_stops_trials_at_its_rungs_and_chooses_the_arg_max() {
    let (mut sweep, tuning) = tuned("tune_asha", ASHA);
    // Trial k's accuracy: its number's place in a fixed shuffle, so the ranking is not the numbering.
    let score = |k: usize| [0.3, 0.9, 0.5, 0.8, 0.1, 0.7, 0.2, 0.6, 0.4][k - 1];
    let id = |k: usize| format!("sgd-trial{k:02}");
    // Stage 1: the untuned variant and all nine trials, each asking for rung 1 (1 epoch).
    let pending = tuning.stage(&mut sweep).unwrap();
    assert_eq!(pending.len(), 2 + 9, "{pending:?}");
    assert!((1..=9).all(|k| epochs_asked(&sweep, &id(k)) == 1));
    (1..=9).for_each(|k| train(&sweep, &id(k), |_| score(k)));
    // Stage 2: the top 9/3 = 3 at rung 1 (trials 2, 4, 6) go on to rung 3; the rest stop at rung 1.
    let pending = tuning.stage(&mut sweep).unwrap();
    let asked: Vec<usize> = (1..=9).map(|k| epochs_asked(&sweep, &id(k))).collect();
    assert_eq!(asked, [1, 3, 1, 3, 1, 3, 1, 1, 1]);
    assert!(pending.contains(&id(2)) && !pending.contains(&id(1)));
    // At rung 3 trial 6 overtakes trial 2: only it goes on to the budget (9 epochs).
    for k in [2, 4, 6] {
        train(&sweep, &id(k), |e| {
            score(k) + if k == 6 && e > 1 { 0.25 } else { 0.0 }
        });
    }
    tuning.stage(&mut sweep).unwrap();
    let asked: Vec<usize> = (1..=9).map(|k| epochs_asked(&sweep, &id(k))).collect();
    assert_eq!(asked, [1, 3, 1, 3, 1, 9, 1, 1, 1]);
    assert!(
        !sweep.runs.iter().any(|r| r.id == "sgd-seed1"),
        "no seeds before the choice"
    );
    train(&sweep, &id(6), |e| {
        score(6) + if e > 1 { 0.25 } else { 0.0 }
    });
    // The choice: trial 6, the only one at the budget; its values train over the variant's seeds.
    let pending = tuning.stage(&mut sweep).unwrap();
    assert_eq!(
        pending,
        ["plain-seed1", "plain-seed2", "sgd-seed1", "sgd-seed2"]
    );
    let chosen = sweep
        .runs
        .iter()
        .find(|r| r.id == id(6))
        .unwrap()
        .trial
        .clone()
        .unwrap();
    let lr = chosen.values.get("optimizer.lr").unwrap().as_f64().unwrap();
    let seed1 = sweep.runs.iter().find(|r| r.id == "sgd-seed1").unwrap();
    assert_eq!(seed1.config.optimizer.lr, lr);
    assert_eq!(seed1.config.trainer.epochs, 9);
    let csv = std::fs::read_to_string(sweep.dir.join(TUNING_FILE)).unwrap();
    let chosen_lines: Vec<&str> = csv.lines().filter(|l| l.ends_with(",true")).collect();
    assert_eq!(chosen_lines.len(), 1);
    assert!(chosen_lines[0].starts_with("sgd,6,"), "{csv}");
    // The resolved sweep.yaml records every trial's number and values.
    let resolved = std::fs::read_to_string(sweep.dir.join("sweep.yaml")).unwrap();
    assert_eq!(resolved.matches("number:").count(), 9);
    // A second look at the same directories decides the same (what a restarted driver sees).
    let again = tuning.stage(&mut sweep).unwrap();
    assert_eq!(again.len(), 4);
    // The report compares the seeds' groups; the baseline names the tuned variant, not one of its trials.
    for id in ["plain-seed1", "plain-seed2", "sgd-seed1", "sgd-seed2"] {
        train(&sweep, id, |_| 0.5);
    }
    let study = Study::open(&sweep.dir, "").unwrap();
    let compared: Vec<(String, String)> = (family::comparisons(&[study]).unwrap().into_iter())
        .filter(|c| !c.group.contains('@'))
        .map(|c| (c.group, c.reference))
        .collect();
    assert_eq!(compared, [("plain".to_string(), "sgd".to_string())]);
}

#[test]
fn without_halving_every_trial_trains_the_budget_and_val_loss_picks_the_lowest() {
    let yaml = "seeds: 1\nset: {trainer.epochs: 3}\ntune:\n  space: {optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}}\n  trials: 4\n  metric: val_loss\n";
    let (mut sweep, tuning) = tuned("tune_plain", yaml);
    assert_eq!(
        tuning.stage(&mut sweep).unwrap().len(),
        4,
        "trials first, no seed run yet"
    );
    let acc = [0.5, 0.7, 0.95, 0.6];
    for k in 1..=4 {
        assert_eq!(epochs_asked(&sweep, &format!("base-trial{k:02}")), 3);
        // The best epoch of trial k is its second one.
        train(&sweep, &format!("base-trial{k:02}"), |e| {
            if e == 2 { acc[k - 1] } else { 0.1 }
        });
    }
    assert_eq!(tuning.stage(&mut sweep).unwrap(), ["base-seed1"]);
    let csv = std::fs::read_to_string(sweep.dir.join(TUNING_FILE)).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("base,3,") && l.ends_with(",true")),
        "{csv}"
    );
}

#[test]
fn sampling_is_seeded_within_its_ranges_and_more_trials_keep_the_first() {
    let spec = |trials: usize, seed: u64| -> TuneSpec {
        serde_yaml::from_str(&format!(
            "space:\n  optimizer.lr: {{log_uniform: [1.0e-4, 1.0]}}\n  optimizer.momentum: {{uniform: [0.8, 0.99]}}\n  model.activation: {{choice: [relu, tanh]}}\ntrials: {trials}\nmetric: val_accuracy\nsearch_seed: {seed}\n"
        ))
        .unwrap()
    };
    let draws = |s: &TuneSpec| {
        let space = s.check().unwrap();
        (1..=s.trials)
            .map(|k| s.sample(&space, k))
            .collect::<Vec<_>>()
    };
    let (a, b, other) = (
        draws(&spec(16, 3)),
        draws(&spec(32, 3)),
        draws(&spec(16, 4)),
    );
    assert_eq!(a[..], b[..16]);
    assert_ne!(a, other);
    let lrs: Vec<f64> = b
        .iter()
        .map(|(v, _)| v["optimizer.lr"].as_f64().unwrap())
        .collect();
    assert!(lrs.iter().all(|lr| (1e-4..=1.0).contains(lr)));
    // Log-uniform: about half of the draws below 1e-2, the geometric middle of the range.
    let low = lrs.iter().filter(|&&lr| lr < 1e-2).count();
    assert!((8..=24).contains(&low), "{lrs:?}");
    assert!(
        b.iter()
            .all(|(v, _)| (0.8..=0.99).contains(&v["optimizer.momentum"].as_f64().unwrap()))
    );
    let relu = b
        .iter()
        .filter(|(v, _)| v["model.activation"].as_str() == Some("relu"))
        .count();
    assert!((6..=26).contains(&relu));
    assert_eq!(spec(4, 0).rungs(15), [15]);
}

#[test]
fn bad_tune_blocks_are_refused_naming_what_is_wrong() {
    let cases = [
        (
            "metric: test_accuracy",
            "the test set never chooses anything",
        ),
        (
            "metric: val_accuracy\n  asha: {min_epochs: 5, reduction_factor: 3}",
            "min_epochs = 5 must be below",
        ),
        (
            "metric: val_accuracy\n  asha: {min_epochs: 1, reduction_factor: 1}",
            "reduction_factor = 1",
        ),
    ];
    for (extra, message) in cases {
        let dir = scratch("tune_bad");
        let yaml = format!(
            "seeds: 1\nset: {{trainer.epochs: 5}}\ntune:\n  space: {{optimizer.lr: {{log_uniform: [1.0e-4, 1.0]}}}}\n  trials: 2\n  {extra}\n"
        );
        std::fs::write(dir.join("sweep.yaml"), yaml).unwrap();
        let sweep = sweep::load(&dir.join("sweep.yaml"), &dir.join("study")).unwrap();
        let err = format!("{:#}", Tuning::new(&sweep).err().expect(extra));
        assert!(err.contains(message), "{extra}: {err}");
    }
    // What the tuned variant's config makes impossible: choosing by validation without a validation split,
    // and successive halving over a one-cycle schedule (a promotion would bend the cycle).
    for (set, tune, message) in [
        ("data.validation_split: 0", "", "validation_split is 0"),
        (
            "lr_scheduler.type: onecycle",
            "\n  asha: {min_epochs: 1, reduction_factor: 3}",
            "onecycle",
        ),
    ] {
        let dir = scratch("tune_bad_config");
        let yaml = format!(
            "seeds: 1\nset: {{trainer.epochs: 5, {set}}}\ntune:\n  space: {{optimizer.lr: {{log_uniform: [1.0e-4, 1.0]}}}}\n  trials: 2\n  metric: val_accuracy{tune}\n"
        );
        std::fs::write(dir.join("sweep.yaml"), yaml).unwrap();
        let sweep = sweep::load(&dir.join("sweep.yaml"), &dir.join("study")).unwrap();
        let err = format!("{:#}", Tuning::new(&sweep).err().expect(set));
        assert!(err.contains(message), "{set}: {err}");
    }
    let space = |s: &str| -> String {
        let spec: TuneSpec =
            serde_yaml::from_str(&format!("space: {{{s}}}\ntrials: 2\nmetric: val_loss\n"))
                .unwrap();
        spec.check().unwrap_err()
    };
    assert!(space("optimizer.lr: {log_uniform: [0, 1]}").contains("tune.space.optimizer.lr"));
    assert!(space("optimizer.lr: {normal: [0, 1]}").contains("log_uniform: [a, b]"));
    // A key that is no config key is refused when the trials are planned.
    let dir = scratch("tune_bad_key");
    std::fs::write(dir.join("sweep.yaml"), "seeds: 1\ntune:\n  space: {optimizer.learning_rate: {uniform: [0.1, 0.2]}}\n  trials: 2\n  metric: val_loss\n").unwrap();
    let sweep = sweep::load(&dir.join("sweep.yaml"), &dir.join("study")).unwrap();
    let err = format!("{:#}", Tuning::new(&sweep).err().unwrap());
    assert!(err.contains("optimizer.learning_rate"), "{err}");
}

#[test]
fn the_shipped_tuned_study_plans_sixteen_trials_for_every_arm() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps/tuned.yaml");
    let sweep = sweep::load(&file, &scratch("tune_shipped")).unwrap();
    let tuning = Tuning::new(&sweep).unwrap().expect("tuned");
    let planned = tuning.planned();
    let arms = sweep.spec.variants.len();
    assert_eq!(arms, 25);
    assert_eq!(planned.len(), 16 * arms, "every arm tuned, nothing untuned");
    for run in &planned {
        let c = &run.config;
        // Trials start at the first rung, their schedule annealed to the arm's whole budget.
        assert_eq!(c.trainer.epochs, 3, "{}", run.id);
        assert!(matches!(
            c.lr_scheduler.t_max,
            lenet5_lab::config::Horizon::Epochs(5 | 15 | 45)
        ));
        if run.variant.starts_with("sgd_momentum") || run.variant == "sgd_nesterov" {
            assert!((0.8..=0.99).contains(&c.optimizer.momentum), "{}", run.id);
        }
    }
}
