//! A tuned sweep on synthetic data through the real binary: trials with successive halving, a driver
//! killed with SIGKILL mid-tuning and started again, every trial and run trained exactly once, the choice
//! the best recorded validation loss, the seeds trained at it, and the report's tuning part.
mod common;
use common::*;
use lenet5_lab::config::Config;
use lenet5_lab::rundir::metrics;
use std::path::Path;

const SWEEP: &str = "base: tiny.yaml\nseeds: 2\n\
    set: {data.batch_size: 8, trainer.epochs: 4, trainer.early_stopping.enabled: false}\n\
    tune:\n  space: {optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}}\n  trials: 4\n  metric: val_loss\n  \
    search_seed: 1\n  asha: {min_epochs: 1, reduction_factor: 2}\n";

fn config(run: &Path) -> Config {
    lenet5_lab::config::load(&run.join("config.yaml"), &[]).unwrap()
}

/// Each completed epoch's validation loss (the metric: on this easy data accuracies tie at 1).
fn val_loss(run: &Path) -> Vec<(usize, f64)> {
    let rows = metrics::read(&run.join("metrics.csv")).unwrap();
    rows.iter().map(|r| (r.epoch, r.val_loss)).collect()
}

/// The trials (1-based numbers) in the top `keep` by lowest validation loss up to `epochs`, ties to the
/// lower number.
fn top(curves: &[Vec<(usize, f64)>], among: &[usize], epochs: usize, keep: usize) -> Vec<usize> {
    let best = |k: usize| {
        (curves[k - 1].iter().filter(|r| r.0 <= epochs))
            .map(|r| r.1)
            .fold(f64::INFINITY, f64::min)
    };
    let mut ranked = among.to_vec();
    ranked.sort_by(|&a, &b| best(a).total_cmp(&best(b)));
    let mut top = ranked[..keep].to_vec();
    top.sort();
    top
}

#[test]
fn a_tuned_sweep_survives_sigkill_and_trains_every_trial_and_run_once() {
    let dir = tiny_project("tuning_kill", 600, 100, "");
    std::fs::write(dir.join("sweep.yaml"), SWEEP).unwrap();
    let study = dir.join("study");
    // --dry-run lists the trials with their sampled values and creates nothing.
    let plan = ok(lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--dry-run"],
    ));
    assert_eq!(plan.matches("optimizer.lr=").count(), 4, "{plan}");
    assert!(plan.contains("base-trial04") && plan.contains("then each tuned variant's seeds"));
    assert!(!study.exists());
    let mut driver = spawn_lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    );
    // SIGKILL once a trial has been promoted to rung 2 (its children train on, holding their locks).
    let promoted = || {
        (1..=4).any(|k| {
            let run = study.join(format!("runs/base-trial{k:02}"));
            run.join("config.yaml").is_file() && config(&run).trainer.epochs == 2
        })
    };
    sigkill_when(&mut driver, 180, "a promotion", promoted);
    ok(lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    ));

    // Successive halving, η = 2, rungs 1, 2, 4: four trials at 1 epoch, the top two at 2, the top one at 4,
    // each trained exactly once through its epochs.
    let trial = |k: usize| study.join(format!("runs/base-trial{k:02}"));
    let curves: Vec<Vec<(usize, f64)>> = (1..=4).map(|k| val_loss(&trial(k))).collect();
    for (k, curve) in curves.iter().enumerate() {
        let epochs: Vec<usize> = curve.iter().map(|r| r.0).collect();
        assert!(
            [1, 2, 4].contains(&epochs.len()),
            "trial {}: {epochs:?}",
            k + 1
        );
        assert_eq!(
            epochs,
            (1..=epochs.len()).collect::<Vec<_>>(),
            "trial {}",
            k + 1
        );
    }
    let reached =
        |n: usize| -> Vec<usize> { (1..=4).filter(|&k| curves[k - 1].len() >= n).collect() };
    let second = top(&curves, &[1, 2, 3, 4], 1, 2);
    assert_eq!(reached(2), second, "the top half at rung 1 went on");
    let last = top(&curves, &second, 2, 1);
    assert_eq!(
        reached(4),
        last,
        "the better of those at rung 2 trained the budget"
    );

    // The choice is that trial, recorded in tuning.csv; both seeds trained at its learning rate.
    let tuning = std::fs::read_to_string(study.join("tuning.csv")).unwrap();
    let chosen: Vec<&str> = tuning.lines().filter(|l| l.ends_with(",true")).collect();
    assert_eq!(chosen.len(), 1, "{tuning}");
    assert!(
        chosen[0].starts_with(&format!("base,{},", last[0])),
        "{tuning}"
    );
    let lr = config(&trial(last[0])).optimizer.lr;
    for seed in 1..=2 {
        let run = study.join(format!("runs/base-seed{seed}"));
        assert_eq!(config(&run).optimizer.lr, lr);
        let epochs: Vec<usize> = val_loss(&run).iter().map(|r| r.0).collect();
        assert_eq!(epochs, [1, 2, 3, 4], "seed {seed}");
    }
    let manifest = std::fs::read_to_string(study.join("manifest.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 1 + 4 + 2, "{manifest}");
    assert!(
        manifest.lines().skip(1).all(|l| l.contains(",finished,")),
        "{manifest}"
    );

    // The report: one group (the seeds at the choice, not the trials) and the tuning section and charts.
    ok(lenet5(&dir, &["report", "study"]));
    let report = study.join("report");
    let groups = std::fs::read_to_string(report.join("groups.csv")).unwrap();
    assert_eq!(groups.lines().count(), 2, "{groups}");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("## Tuning") && md.contains(&format!("| base | 4 | trial {} |", last[0])),
        "{md}"
    );
    let tuning_section = md.split("## Tuning").nth(1).unwrap();
    let tuning_section = tuning_section.split("\n## ").next().unwrap();
    assert_eq!(
        tuning_section.matches("| base | ").count(),
        1 + 4,
        "the arm's line and every trial's: {md}"
    );
    assert!(md.contains("| base | 2 | "), "the group's line: {md}");
    for f in [
        "lr_sensitivity.svg",
        "lr_sensitivity.png",
        "expected_validation.svg",
        "expected_validation.png",
    ] {
        assert!(report.join(f).is_file(), "{f}");
    }
}

#[test]
fn a_test_metric_is_refused_before_anything_runs() {
    let dir = tiny_project("tuning_refused", 100, 10, "");
    let yaml = SWEEP.replace("metric: val_loss", "metric: test_accuracy");
    std::fs::write(dir.join("sweep.yaml"), yaml).unwrap();
    let out = lenet5(&dir, &["sweep", "sweep.yaml", "--out", "study"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("sweep.yaml") && err.contains("the test set never chooses anything"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.join("study").exists());
}

#[test]
fn a_variant_whose_trials_all_fail_is_a_failure_not_a_silence() {
    let dir = tiny_project("tuning_all_fail", 100, 10, "");
    // Learning rates at which every trial diverges in its first epoch: nothing can be chosen.
    let yaml = SWEEP
        .replace("[1.0e-4, 1.0e-1]", "[1.0e10, 1.0e12]")
        .replace("trials: 4", "trials: 2")
        .replace("  asha: {min_epochs: 1, reduction_factor: 2}\n", "")
        .replace("set: {", "set: {optimizer.type: sgd, ");
    std::fs::write(dir.join("sweep.yaml"), yaml).unwrap();
    let out = lenet5(&dir, &["sweep", "sweep.yaml", "--out", "study"]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("no trial finished its budget"), "{err}");
}

/// One trial promoted rung after rung asks for the same run id each time: the driver must see it as new
/// work, not as a stage that made no progress (it stopped with "no trial finished its budget").
#[test]
fn a_trial_promoted_twice_in_a_row_trains_on_to_the_budget() {
    let dir = tiny_project("tuning_one_trial", 300, 50, "");
    let sweep = SWEEP
        .replace("trials: 4", "trials: 1")
        .replace("seeds: 2", "seeds: 1");
    std::fs::write(dir.join("sweep.yaml"), sweep).unwrap();
    ok(lenet5(&dir, &["sweep", "sweep.yaml", "--out", "study"]));
    let trial = dir.join("study/runs/base-trial01");
    assert_eq!(val_loss(&trial).len(), 4, "rungs 1, 2, 4: the budget");
    assert!(dir.join("study/runs/base-seed1/test.json").is_file());
}
