//! The training loop's options, each shown to act inside the loop on synthetic data: training learns,
//! `save_period`, `validation_split: 0`, label smoothing, L1, augmentation, the 1998 network end to end,
//! and a finished run extended with `--resume --epochs`. Calls the library's `train` command directly.
mod common;
use common::*;
use lenet5::cli::commands;
use lenet5::config::{self, Override};
use lenet5::output::{EpochRow, csv};
use lenet5::run::{NewRunDir, Start, TrainOutcome};
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
fn label_smoothing_raises_the_training_loss_floor() {
    let (plain, _) = train("smoothing_off", "", &[]);
    let (smooth, _) = train("smoothing_on", "", &["regularization.label_smoothing=0.3"]);
    let (a, b) = (rows(&plain.run.path), rows(&smooth.run.path));
    // Smoothed targets keep the cross-entropy well above zero even when the digits are learnt.
    assert!(
        b[1].loss > a[1].loss + 0.3,
        "plain {} vs smoothed {}",
        a[1].loss,
        b[1].loss
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
