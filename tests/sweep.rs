//! Sweeps on synthetic data: expansion and stable names, validation before anything runs, a failing run
//! that does not stop the others, skipping finished runs, a killed driver that is started again, and the
//! study report, and identical runs trained once (in a sweep and across sweeps with `--reuse`). Runs the real
//! binary (a sweep's runs are child processes).
mod common;
use common::*;
use lenet5_lab::study::sweep::{self, SweepFile};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn spec(yaml: &str) -> SweepFile {
    serde_yaml::from_str(yaml).unwrap()
}

/// A project with synthetic data and `tiny.yaml`, plus `sweep.yaml` = `yaml` (base: tiny.yaml).
fn project(name: &str, n_train: usize, yaml: &str) -> PathBuf {
    let dir = tiny_project(name, n_train, 100, "");
    std::fs::write(dir.join("sweep.yaml"), format!("base: tiny.yaml\n{yaml}")).unwrap();
    dir
}

fn epochs(run: &Path) -> Vec<usize> {
    lenet5_lab::rundir::metrics::read(&run.join("metrics.csv"))
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect()
}

fn manifest(dir: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(dir.join("manifest.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn variants_grid_and_seeds_expand_with_stable_names() {
    let s = spec(
        "seeds: [3, 7]\nset: {trainer.epochs: 2}\nvariants:\n  - name: relu\n  - name: sigmoid\n    set: {model.activation: sigmoid}\n    seeds: 1\ngrid:\n  optimizer.lr: [0.001, 0.01]\n  data.batch_size: [32]\nbaseline: relu\n",
    );
    let runs = sweep::expand(&s).unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "relu,optimizer.lr=0.001,data.batch_size=32-seed3",
            "relu,optimizer.lr=0.001,data.batch_size=32-seed7",
            "relu,optimizer.lr=0.01,data.batch_size=32-seed3",
            "relu,optimizer.lr=0.01,data.batch_size=32-seed7",
            "sigmoid,optimizer.lr=0.001,data.batch_size=32-seed1",
            "sigmoid,optimizer.lr=0.01,data.batch_size=32-seed1",
        ]
    );
    let r = &runs[2];
    assert_eq!(
        (
            r.config.trainer.seed,
            r.config.optimizer.lr,
            r.config.trainer.epochs
        ),
        (3, 0.01, 2)
    );
    assert_eq!(
        runs[4].config.model.activation,
        lenet5_lab::config::Activation::Sigmoid
    );
    assert_eq!(
        r.config.data.seed,
        lenet5_lab::config::Config::default().data.seed,
        "the split stays fixed"
    );
    // The same file expands the same way every time.
    let again: Vec<String> = sweep::expand(&s)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(again, ids);
}

#[test]
fn every_expanded_config_is_validated_before_anything_runs() {
    let dir = project(
        "sweep_invalid",
        100,
        "seeds: 2\nvariants:\n  - name: fine\n  - name: broken\n    set: {optimizer.momentum: -1}\n",
    );
    let out = lenet5(&dir, &["sweep", "sweep.yaml", "--out", "study"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("variant `broken`") && err.contains("optimizer.momentum"),
        "{err}"
    );
    assert!(!dir.join("study").exists(), "nothing was created");
    let e = sweep::expand(&spec("seeds: 1\nbaseline: nope\n")).unwrap_err();
    assert!(format!("{e:#}").contains("baseline"), "{e:#}");
    let e = sweep::expand(&spec("seeds: 1\ngrid:\n  optimizer.lr: []\n")).unwrap_err();
    assert!(format!("{e:#}").contains("optimizer.lr"), "{e:#}");
}

#[test]
fn a_failing_run_does_not_stop_the_others_and_a_rerun_skips_finished_runs() {
    let dir = project(
        "sweep_local",
        300,
        "seeds: 2\nbaseline: good\nvariants:\n  - name: good\n  - name: diverges\n    set: {optimizer.type: sgd, optimizer.lr: 1.0e12}\n",
    );
    let out = lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the sweep says some runs failed"
    );
    let err = stderr(&out);
    assert!(
        err.contains("2 failed: diverges-seed1, diverges-seed2"),
        "{err}"
    );
    let study = dir.join("study");
    let rows = manifest(&study);
    let status: Vec<(&str, &str)> = rows.iter().map(|r| (&r[0], &r[5])).collect();
    assert_eq!(
        status,
        [
            ("good-seed1", "finished"),
            ("good-seed2", "finished"),
            ("diverges-seed1", "failed"),
            ("diverges-seed2", "failed")
        ]
    );
    assert!(rows[2][7].contains("diverged"), "{:?}", &rows[2]);
    let good = study.join("runs/good-seed1");
    assert_eq!(epochs(&good), [1, 2]);
    // Each run is an ordinary run directory.
    ok(lenet5(&dir, &["test", good.to_str().unwrap()]));
    let before = std::fs::read(good.join("metrics.csv")).unwrap();

    // Again: nothing is trained twice; the failures are reported, not retried.
    let out = lenet5(&dir, &["sweep", "sweep.yaml", "--out", "study"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(good.join("metrics.csv")).unwrap(), before);

    // The study report groups the seeds.
    let table = ok(lenet5(&dir, &["report", "study"]));
    assert!(
        table.contains("| good | 2 |") && table.contains("| diverges | 0 of 2 |"),
        "{table}"
    );
    for f in [
        "report.md",
        "curves.svg",
        "curves.png",
        "forest.svg",
        "forest.png",
    ] {
        assert!(study.join("report").join(f).is_file(), "{f}");
    }
}

/// Starts `lenet5 sweep sweep.yaml --out study --jobs 1` in `dir` and returns it once `path` exists.
fn driver_until(dir: &Path, path: &Path) -> std::process::Child {
    let mut driver = Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .args(["sweep", "sweep.yaml", "--out", "study", "--jobs", "1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        assert!(
            driver.try_wait().unwrap().is_none(),
            "the driver ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    driver
}

#[test]
fn a_killed_driver_started_again_finishes_every_run_exactly_once() {
    // Runs of a second or two each (1,000 images in batches of 8, 2 epochs).
    let dir = project(
        "sweep_kill",
        1000,
        "seeds: 3\nset: {data.batch_size: 8, trainer.early_stopping.enabled: false}\n",
    );
    let study = dir.join("study");
    // Kill -9 the driver while its second run trains (its child lives on, holding that run's lock).
    let mut driver = driver_until(&dir, &study.join("runs/base-seed2/metrics.csv"));
    driver.kill().unwrap();
    driver.wait().unwrap();
    let out = lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for seed in 1..=3 {
        assert_eq!(
            epochs(&study.join(format!("runs/base-seed{seed}"))),
            [1, 2],
            "seed {seed}"
        );
    }
    assert!(manifest(&study).iter().all(|r| &r[5] == "finished"));
}

#[test]
fn a_driver_stopped_by_sighup_stops_its_runs_and_leaves_them_resumable() {
    // A run of a few seconds (2,000 images in batches of 8, 2 epochs): the hang-up lands mid-run.
    let dir = project(
        "sweep_hup",
        2000,
        "seeds: 1\nset: {data.batch_size: 8, trainer.early_stopping.enabled: false}\n",
    );
    let study = dir.join("study");
    let run = study.join("runs/base-seed1");
    let mut driver = driver_until(&dir, &run.join("provenance.json"));
    std::thread::sleep(Duration::from_millis(300));
    let hup = Command::new("kill")
        .args(["-HUP", &driver.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = driver.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the driver did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(1),
        "ends with the unfinished runs' error"
    );
    // Its run was stopped and saved (an orphan would still be training it, holding its lock), and the
    // manifest says so.
    let state = std::fs::read_to_string(run.join("state.json")).unwrap();
    assert!(state.contains("\"interrupted\""), "{state}");
    let rows = manifest(&study);
    assert_eq!((&rows[0][0], &rows[0][5]), ("base-seed1", "unfinished"));
    let out = lenet5(&dir, &["train", "--resume", run.to_str().unwrap()]);
    assert!(out.status.success(), "resumable at once: {}", stderr(&out));
    assert_eq!(epochs(&run), [1, 2]);
}

#[test]
fn every_shipped_sweep_expands_and_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(root.join("sweeps")).unwrap() {
        let path = entry.unwrap().path();
        // Base configs are relative to the sweep file's directory.
        let out = common::scratch("shipped_sweeps");
        let runs = sweep::load(&path, &out)
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
            .runs;
        assert!(runs.len() >= 9, "{}: {} runs", path.display(), runs.len());
        count += 1;
    }
    assert!(count >= 3, "seed_table, techniques, beyond");
}

#[test]
fn relative_bases_resolve_against_the_sweep_file_from_any_directory() {
    let dir = project(
        "sweep_elsewhere",
        200,
        "seeds: 1\nvariants:\n  - {name: a}\n  - {name: b, base: tiny.yaml}\n",
    );
    let elsewhere = scratch("sweep_elsewhere_cwd");
    let file = dir.join("sweep.yaml");
    let out = ok(lenet5(
        &elsewhere,
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out",
            "study",
            "--dry-run",
        ],
    ));
    assert!(out.contains("a-seed1") && out.contains("b-seed1"), "{out}");
}

#[test]
fn a_bad_variant_is_named_once() {
    let s = spec("seeds: 1\nvariants:\n  - {name: a, set: {model.activation: foo}}\n");
    let e = format!("{:#}", sweep::expand(&s).unwrap_err());
    assert_eq!(e.matches("variant `a`").count(), 1, "{e}");
    assert_eq!(e.matches("model.activation").count(), 1, "{e}");
    assert!(e.contains("relu"), "lists the allowed values: {e}");
}

#[test]
fn the_eta_counts_runs_in_progress_and_speaks_one_unit() {
    use lenet5_lab::study::exec::eta;
    use std::time::Duration;
    // Nothing to go by yet.
    assert_eq!(eta(Duration::from_secs(10), 0, 0.0, 8), "");
    // No run finished, but two are half-way after 60 s: a run takes 60 s, 7 runs' worth are left.
    assert_eq!(eta(Duration::from_secs(60), 0, 1.0, 8), ", eta 7 min");
    // Short ones in seconds; the same string for the bar and the per-run line.
    assert_eq!(eta(Duration::from_secs(10), 2, 0.0, 3), ", eta 15 s");
    assert_eq!(eta(Duration::from_secs(10), 2, 0.0, 0), "");
    // Seconds below 90, minutes from there (rounded up): 89 s, then 90 s = 2 min.
    assert_eq!(eta(Duration::from_secs(89), 10, 0.0, 10), ", eta 89 s");
    assert_eq!(eta(Duration::from_secs(10), 1, 0.0, 9), ", eta 2 min");
}

#[test]
fn the_slurm_script_carries_account_qos_mem_extra_options_and_a_setup_line() {
    let dir = project("slurm_options", 200, "seeds: 2\n");
    let slurm = |extra: &[&str]| {
        let mut args = vec!["sweep", "sweep.yaml", "--out", "study", "--slurm"];
        args.extend(extra);
        lenet5(&dir, &args)
    };
    let out = slurm(&[
        "--partition",
        "gpu-a100",
        "--account",
        "proj42",
        "--qos",
        "short",
        "--mem",
        "8G",
        "--sbatch-arg=--constraint=a100",
        "--sbatch-arg",
        "--mail-type=END",
        "--setup",
        "module load cuda/12.4",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = std::fs::read_to_string(dir.join("study/slurm/batch-1.sbatch")).unwrap();
    for line in [
        "#SBATCH --account=proj42",
        "#SBATCH --qos=short",
        "#SBATCH --mem=8G",
        "#SBATCH --constraint=a100",
        "#SBATCH --mail-type=END",
        "\nmodule load cuda/12.4\nexec ",
    ] {
        assert!(script.contains(line), "{line:?} missing:\n{script}");
    }
    // A GPU partition without GPUs would quietly train on the CPU: said so.
    assert!(
        stderr(&out).contains("warning: partition gpu-a100 looks like a GPU partition"),
        "{}",
        stderr(&out)
    );
    let with_gpus = slurm(&["--partition", "gpu", "--gpus-per-task", "1"]);
    assert!(
        !stderr(&with_gpus).contains("warning"),
        "{}",
        stderr(&with_gpus)
    );
}

#[test]
fn a_sweep_refuses_duplicate_run_ids_and_a_bad_margin_in_one_line() {
    let e = format!(
        "{:#}",
        sweep::expand(&spec("seeds: [1, 1, 2]\n")).unwrap_err()
    );
    assert_eq!(
        e, "run id \"base-seed1\" twice: seed 1 is listed twice for group `base`",
        "{e}"
    );
    // Two grid values whose group names write the same directory name.
    let e = format!(
        "{:#}",
        sweep::expand(&spec("seeds: 1\ngrid:\n  trainer.runs_dir: [x/y, x_y]\n")).unwrap_err()
    );
    assert!(
        e.starts_with("run id \"base,trainer.runs_dir=x_y-seed1\" twice: groups `base,trainer.runs_dir=x/y` and `base,trainer.runs_dir=x_y`")
            && !e.contains('\n'),
        "{e}"
    );
    let dir = project("sweep_duplicate_seeds", 100, "seeds: [3, 3]\n");
    let out = lenet5(&dir, &["sweep", "sweep.yaml", "--out", "study"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sweep.yaml: run id \"base-seed3\" twice"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("study").exists(), "nothing was created");
    // A margin is points or a share of the reference's error rate, and positive.
    for (margin, named) in [("\"ten\"", "\"ten\""), ("\"-5%\"", "\"-5%\""), ("0", "0")] {
        let yaml = format!("seeds: 1\nequivalence_margin: {margin}\n");
        let e = format!("{:#}", sweep::expand(&spec(&yaml)).unwrap_err());
        assert!(e.contains(&format!("equivalence_margin = {named}")), "{e}");
    }
    assert!(
        sweep::expand(&spec(
            "seeds: 1\nequivalence_margin: \"10%\"\nmargin_reason: r\n"
        ))
        .is_ok()
    );
}

#[test]
fn the_split_can_follow_the_seed() {
    let fixed = sweep::expand(&spec("seeds: [4, 9]\n")).unwrap();
    let default_split = lenet5_lab::config::Config::default().data.seed;
    assert!(fixed.iter().all(|r| r.config.data.seed == default_split));
    let following = sweep::expand(&spec("seeds: [4, 9]\nsplit_follows_seed: true\n")).unwrap();
    let seeds: Vec<(u64, u64)> = following
        .iter()
        .map(|r| (r.config.trainer.seed, r.config.data.seed))
        .collect();
    assert_eq!(seeds, [(4, 4), (9, 9)]);
}

#[test]
fn two_names_for_one_experiment_are_said_and_trained_once() {
    let dir = project(
        "sweep_same_experiment",
        100,
        "seeds: 1\nvariants:\n  - name: a\n  - {name: b, set: {trainer.threads: 1}}\n  - {name: c, set: {model.activation: tanh}}\n",
    );
    let out = lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let warnings: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("note: runs"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            "note: runs a-seed1 and b-seed1 are the same experiment (same config and seeds): it trains once, the other is a copy, and the report counts the two as one shared run"
        ],
        "threads cannot change a number; the activation can"
    );

    // Trained once, in this sweep (b is a's copy) and in another that names this one with --reuse (all
    // three copied, none trained): the copies hold the trained run's numbers and say where they came from.
    let out = lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(1 copied from identical runs"),
        "{}",
        stdout(&out)
    );
    let runs = dir.join("study/runs");
    let reused = |run: &Path| std::fs::read_to_string(run.join("reused_from.txt")).ok();
    let source = std::fs::canonicalize(runs.join("a-seed1")).unwrap();
    assert_eq!(reused(&runs.join("a-seed1")), None, "a trained");
    assert_eq!(reused(&runs.join("c-seed1")), None, "c trained");
    assert_eq!(
        reused(&runs.join("b-seed1")),
        Some(format!("{}\n", source.display()))
    );
    let file = |run: &str, name: &str| std::fs::read(runs.join(run).join(name)).unwrap();
    for name in ["metrics.csv", "test.json", "state.json", "best.safetensors"] {
        assert_eq!(file("a-seed1", name), file("b-seed1", name), "{name}");
    }
    let config = |run: &str| String::from_utf8(file(run, "config.yaml")).unwrap();
    assert!(
        config("b-seed1").contains("threads: 1"),
        "b keeps its own config"
    );
    let out = lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "again", "--reuse", "study"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(3 copied"), "{}", stdout(&out));
    for run in ["a-seed1", "b-seed1", "c-seed1"] {
        let copy = dir.join("again/runs").join(run);
        assert!(reused(&copy).is_some(), "{run}");
        assert_eq!(
            std::fs::read(copy.join("test.json")).unwrap(),
            file(run, "test.json")
        );
    }
    // The report counts each pair as one shared run.
    let out = lenet5(&dir, &["report", "again"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
