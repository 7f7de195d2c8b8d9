//! The training loop's options, each shown to act inside the loop on synthetic data: training learns,
//! `save_period`, `validation_split: 0`, label smoothing, L1, augmentation, the 1998 network end to end,
//! and a finished run extended with `--resume --epochs`. Calls the library's `train` command directly.
mod common;
use common::*;
use lenet5::cli::commands;
use lenet5_core::run::{NewRunDir, Start, TrainOutcome};
use lenet5_lab::config::{self, Override};
use lenet5_lab::rundir::metrics::{self as csv, EpochRow};
use std::path::{Path, PathBuf};

/// Trains `tiny.yaml` + `extra` (YAML) + `sets` in a fresh project `name`, into `runs/<run>`.
fn train(name: &str, extra: &str, sets: &[&str]) -> (TrainOutcome, PathBuf) {
    let dir = tiny_project(name, 400, 100, extra);
    let sets: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let config = config::load(&dir.join("tiny.yaml"), &sets).unwrap();
    let start = Start::New {
        config,
        dir: NewRunDir::At(dir.join("runs/run")),
    };
    (commands::train(start).unwrap(), dir)
}

fn rows(run: &Path) -> Vec<EpochRow> {
    csv::read(&run.join("metrics.csv")).unwrap()
}

/// Σ|w| over the weight tensors of a checkpoint.
fn l1_norm(weights: &Path) -> f64 {
    tch::Tensor::read_safetensors(weights)
        .unwrap()
        .iter()
        .filter(|(name, _)| name.ends_with(".weight"))
        .map(|(_, t)| f64::try_from(t.abs().sum(tch::Kind::Double)).unwrap())
        .sum()
}

#[test]
fn training_learns_the_synthetic_digits() {
    let (outcome, _) = train("learns", "", &["trainer.epochs=3"]);
    // Chance is 10%; the digits are learnable (a bright block whose position is the label).
    assert!(
        outcome.test.accuracy > 0.9,
        "test accuracy {}",
        outcome.test.accuracy
    );
    // The best checkpoint is also scored on the clean training split, for the generalization gap.
    let train = outcome.run.train_eval().unwrap().expect("train_eval.json");
    assert_eq!(
        train.images, 360,
        "the training split: 400 images less 10% for validation"
    );
    assert!(train.accuracy > 0.9 && train.loss.is_finite(), "{train:?}");
}

#[test]
fn save_period_keeps_every_nth_epoch() {
    let (outcome, _) = train(
        "save_period",
        "",
        &["trainer.epochs=4", "trainer.save_period=2"],
    );
    let run = &outcome.run.path;
    for epoch in 1..=4 {
        assert_eq!(
            run.join(format!("epoch-{epoch}.safetensors")).exists(),
            epoch % 2 == 0,
            "epoch {epoch}"
        );
    }
    assert_ne!(
        l1_norm(&run.join("epoch-2.safetensors")),
        l1_norm(&run.join("epoch-4.safetensors"))
    );
}

#[test]
fn without_a_validation_split_the_training_numbers_decide() {
    let (outcome, _) = train("no_validation", "", &["data.validation_split=0"]);
    for r in rows(&outcome.run.path) {
        assert_eq!(
            (r.val_loss, r.val_accuracy),
            (r.loss, r.accuracy),
            "epoch {}",
            r.epoch
        );
    }
    assert!(outcome.test.accuracy > 0.5);
}

#[test]
fn label_smoothing_is_trained_on_but_plain_cross_entropy_is_reported() {
    // With ε = 0.3 over 10 classes the smoothed objective cannot fall below the entropy of its targets,
    // 1.18 nats; a net that has learnt the digits has a plain cross-entropy near −ln(0.73) = 0.31.
    let sets = ["regularization.label_smoothing=0.3", "trainer.epochs=5"];
    let (smooth, _) = train("smoothing_on", "", &sets);
    let b = rows(&smooth.run.path).pop().unwrap();
    assert!(
        b.loss < 0.6,
        "reported training loss {} is the plain cross-entropy",
        b.loss
    );
    assert!(
        (b.loss - b.val_loss).abs() < 0.2,
        "loss {} and val_loss {} alike",
        b.loss,
        b.val_loss
    );
    // The objective is logged apart, and it is the larger one.
    let events = lenet5_core::output::tensorboard::event_files(&smooth.run.path).unwrap();
    let objective = lenet5_core::output::tensorboard::read_events(&events[0])
        .unwrap()
        .into_iter()
        .rev()
        .find_map(|e| match e.what {
            Some(lenet5_core::output::tensorboard::proto::What::Summary(s)) => s
                .value
                .iter()
                .find(|v| v.tag == lenet5_core::output::tensorboard::OBJECTIVE_TAG)
                .and_then(|v| v.simple_value),
            _ => None,
        })
        .expect("objective/train logged");
    assert!(
        f64::from(objective) > 1.1,
        "objective {objective} above its floor"
    );
    assert!(smooth.test.accuracy > 0.5);
}

#[test]
fn l1_shrinks_the_weights() {
    let (plain, _) = train("l1_off", "", &[]);
    let (l1, _) = train("l1_on", "", &["regularization.l1=0.001"]);
    let (a, b) = (
        l1_norm(&plain.run.path.join("last.safetensors")),
        l1_norm(&l1.run.path.join("last.safetensors")),
    );
    assert!(b < 0.8 * a, "L1 norm without {a}, with {b}");
}

#[test]
fn augmentation_changes_what_the_network_sees() {
    let (plain, _) = train("augment_off", "", &[]);
    let strong = ["data.augment.translate=4", "data.augment.rotate=40"];
    let (aug, _) = train("augment_on", "", &strong);
    let (a, b) = (rows(&plain.run.path), rows(&aug.run.path));
    // Same seed and data: only the distortions differ, and they make the training split harder.
    assert!(
        b[1].accuracy < a[1].accuracy,
        "plain {} vs distorted {}",
        a[1].accuracy,
        b[1].accuracy
    );
}

#[test]
fn the_1998_network_trains_end_to_end() {
    let (outcome, _) = train(
        "lenet1998",
        "model:\n  variant: lenet5_1998\n",
        &["trainer.epochs=5", "optimizer.lr=0.003"],
    );
    assert!(
        outcome.test.accuracy > 0.8,
        "test accuracy {}",
        outcome.test.accuracy
    );
    let names: Vec<String> =
        tch::Tensor::read_safetensors(outcome.run.path.join("best.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    assert!(
        names.contains(&"rbf.prototypes".to_string()) && names.contains(&"c3.weight".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_finished_run_is_extended_with_more_epochs() {
    let (outcome, _) = train("extend", "", &["trainer.early_stopping.enabled=false"]);
    let run = outcome.run.path.clone();
    let resume = |sets: &[&str]| {
        let overrides = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        commands::train(Start::Resume {
            dir: run.clone(),
            overrides,
        })
    };
    let again = resume(&[])
        .err()
        .expect("a finished run is not trained again");
    assert!(
        format!("{again:#}").contains("already finished"),
        "{again:#}"
    );
    let extended = resume(&["trainer.epochs=4"]).unwrap();
    let epochs: Vec<usize> = rows(&run).iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, [1, 2, 3, 4]);
    assert_eq!(extended.state.epoch, 4);
    assert!(
        std::fs::read_to_string(run.join("config.yaml"))
            .unwrap()
            .contains("epochs: 4")
    );
}

/// Every file of a run directory with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn resume_refuses_what_would_change_the_numbers_and_touches_nothing() {
    let (outcome, _) = train("resume_refuses", "", &["trainer.epochs=1"]);
    let run = outcome.run.path.clone();
    let before = snapshot(&run);
    let err = commands::train(Start::Resume {
        dir: run.clone(),
        overrides: vec![Override::parse("model.activation=sigmoid").unwrap()],
    })
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("(it trained with relu, not sigmoid)"),
        "{err:#}"
    );
    for (set, key) in [
        ("model.activation=sigmoid", "model.activation"),
        ("optimizer.lr=0.01", "optimizer.lr"),
        ("model.variant=lenet5_modern", "model.variant"),
        ("data.batch_size=16", "data.batch_size"),
    ] {
        let err = commands::train(Start::Resume {
            dir: run.clone(),
            overrides: vec![
                Override::parse("trainer.epochs=3").unwrap(),
                Override::parse(set).unwrap(),
            ],
        })
        .err()
        .unwrap_or_else(|| panic!("--set {set} on resume is refused"));
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("`{key}`")) && msg.contains(set),
            "{msg}"
        );
        let value = set.split_once('=').unwrap().1;
        assert!(
            msg.contains(&format!(", not {value})")),
            "names the new value: {msg}"
        );
        assert_eq!(
            snapshot(&run),
            before,
            "--set {set}: the run directory is unchanged"
        );
    }
    // What cannot change the numbers already made is accepted.
    let more = commands::train(Start::Resume {
        dir: run.clone(),
        overrides: vec![
            Override::parse("trainer.epochs=2").unwrap(),
            Override::parse("trainer.threads=1").unwrap(),
        ],
    })
    .unwrap();
    assert_eq!(more.state.epoch, 2);
}

#[test]
fn every_run_records_the_commit_that_made_it() {
    let (outcome, _) = train("provenance", "", &["trainer.epochs=1"]);
    let run = outcome.run;
    let sessions = run.provenance().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].commit, lenet5_lab::COMMIT);
    assert_eq!(sessions[0].lenet5_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(sessions[0].from_epoch, 0);
    // Built in a git checkout: its commit hash; outside one (a source tarball): "unknown".
    if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".git")
        .exists()
    {
        assert!(lenet5_lab::COMMIT.len() >= 40, "{}", lenet5_lab::COMMIT);
    } else {
        assert_eq!(lenet5_lab::COMMIT, "unknown");
    }
    commands::train(Start::Resume {
        dir: run.path.clone(),
        overrides: vec![Override::parse("trainer.epochs=2").unwrap()],
    })
    .unwrap();
    let sessions = run.provenance().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[1].from_epoch, 1);
}
