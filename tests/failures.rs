//! Bad input gets a one-line error naming the culprit and exit code 2 (usage/config/data) or 1 (runtime);
//! signals, kills and divergence lose nothing.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `lenet5 args` in `dir`, expects exit `code`, and checks that stderr is one `Error:` line containing
/// every string of `needles`.
fn fails(dir: &Path, args: &[&str], code: i32, needles: &[&str]) {
    let out = lenet5(dir, args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: wrong exit code; stderr:\n{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let error_line = lines.last().copied().unwrap_or_default();
    assert!(
        error_line.starts_with("Error: "),
        "{args:?}: last line is not an error:\n{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{args:?}: panic:\n{err}"
    );
    for n in needles {
        assert!(
            error_line.contains(n),
            "{args:?}: {n:?} not in the error:\n{err}"
        );
    }
}

/// A scratch dir with good synthetic data and a tiny config, for corrupting one piece at a time.
fn setup(name: &str) -> PathBuf {
    tiny_project(name, 200, 50, "")
}

#[test]
fn bad_data_files_are_named() {
    let dir = setup("fail_data");
    let data = dir.join("data");
    let images = data.join("train-images-idx3-ubyte");
    let labels = data.join("train-labels-idx1-ubyte");
    let good_images = std::fs::read(&images).unwrap();
    let good_labels = std::fs::read(&labels).unwrap();
    let ys: Vec<u8> = good_labels[8..].to_vec();
    let pixels = &good_images[16..];
    let cases: Vec<(&Path, Vec<u8>, &str)> = vec![
        (&images, idx_labels(200, &ys), "wrong magic number 2049"),
        (
            &images,
            idx_images(200, 32, 32, &vec![0; 200 * 32 * 32]),
            "32x32",
        ),
        (&images, idx_images(300, 28, 28, pixels), "truncated"),
        (
            &images,
            good_images[..good_images.len() - 100].to_vec(),
            "truncated",
        ),
        (
            &images,
            idx_images(100, 28, 28, pixels),
            "longer than its header says",
        ),
        (&images, good_images[..10].to_vec(), "truncated header"),
        (
            &labels,
            idx_labels(200, &[&ys[..199], &[12u8][..]].concat()),
            "label 12 at index 199",
        ),
        (&labels, idx_labels(150, &ys[..150]), "150 labels"),
    ];
    for (file, bytes, needle) in cases {
        std::fs::write(file, &bytes).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        // The count mismatch names the images file and the labels file.
        fails(&dir, &["train", "tiny.yaml"], 2, &[name, needle]);
        std::fs::write(&images, &good_images).unwrap();
        std::fs::write(&labels, &good_labels).unwrap();
    }
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    fails(
        &dir,
        &["train", "tiny.yaml"],
        2,
        &["t10k-labels-idx1-ubyte", "lenet5 fetch --dataset mnist"],
    );
    assert!(
        !dir.join("runs").exists(),
        "no run directory is made for bad input"
    );
}

#[test]
fn bad_configs_and_flags_are_named() {
    let dir = setup("fail_config");
    let write = |yaml: &str| {
        let base = std::fs::read_to_string(dir.join("tiny.yaml")).unwrap();
        std::fs::write(dir.join("bad.yaml"), format!("{base}{yaml}")).unwrap();
    };
    write("model:\n  activation: [relu\n");
    fails(&dir, &["train", "bad.yaml"], 2, &["bad.yaml", "line"]);
    // Config errors through the binary: exit 2, one line naming file and key (the many range and type
    // rules are unit-tested in tests/config.rs).
    write("optimiser:\n  lr: 0.1\n");
    fails(
        &dir,
        &["train", "bad.yaml"],
        2,
        &["bad.yaml", "optimiser", "optimizer"],
    );
    fails(
        &dir,
        &["train", "tiny.yaml", "--lr", "0"],
        2,
        &["optimizer.lr", "--lr 0"],
    );
    fails(
        &dir,
        &["train", "tiny.yaml", "--batch-size", "5000"],
        2,
        &["data.batch_size", "5000"],
    );
    fails(
        &dir,
        &["train", "tiny.yaml", "--device", "tpu"],
        2,
        &["trainer.device", "tpu", "cuda:N"],
    );
    if !tch::Cuda::is_available() {
        fails(
            &dir,
            &["train", "tiny.yaml", "--device", "cuda"],
            2,
            &["cuda", "no CUDA device"],
        );
    }
    fails(&dir, &["train", "missing.yaml"], 2, &["missing.yaml"]);
    let out = lenet5(&dir, &["train", "tiny.yaml", "--bogus"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap's own usage errors exit 2 too"
    );
    let runs_under_a_file = format!(
        "trainer.runs_dir={}",
        dir.join("tiny.yaml").join("runs").display()
    );
    fails(
        &dir,
        &["train", "tiny.yaml", "--set", &runs_under_a_file],
        1,
        &["runs"],
    );
}

#[test]
fn bad_run_directories_and_checkpoints_are_named() {
    let dir = setup("fail_checkpoint");
    fails(
        &dir,
        &["test", "nowhere"],
        2,
        &["nowhere", "does not exist"],
    );
    fails(
        &dir,
        &["test", "data"],
        2,
        &["data", "not a lenet5 run directory"],
    );
    fails(
        &dir,
        &["train", "--resume", "data"],
        2,
        &["not a lenet5 run directory"],
    );
    fails(
        &dir,
        &["test", "--runs-dir", "empty-runs"],
        2,
        &["no runs in empty-runs"],
    );
    ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "1"]));
    let run = only_run(&dir.join("runs"));
    let run_s = run.to_str().unwrap();

    // A checkpoint whose tensors do not fit the model.
    let foreign = dir.join("foreign.safetensors");
    let t = tch::Tensor::zeros([3, 3], tch::kind::FLOAT_CPU);
    tch::Tensor::write_safetensors(&[("conv1.weight", &t)], &foreign).unwrap();
    fails(
        &dir,
        &["test", run_s, "--checkpoint", foreign.to_str().unwrap()],
        2,
        &["foreign.safetensors", "conv1.weight", "[3, 3]"],
    );
    // A truncated checkpoint.
    let last = run.join("last.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &dir,
        &["test", run_s, "--checkpoint", "last"],
        2,
        &["last.safetensors"],
    );
    fails(
        &dir,
        &["train", "--resume", run_s, "--epochs", "2"],
        2,
        &["last.safetensors"],
    );
    // Epochs saved, weights gone (a run copied without its .safetensors): refused, not trained on from
    // fresh weights.
    std::fs::remove_file(&last).unwrap();
    let metrics = std::fs::read(run.join("metrics.csv")).unwrap();
    fails(
        &dir,
        &["train", "--resume", run_s, "--epochs", "2"],
        2,
        &["stopped after epoch 1 but has no last.safetensors"],
    );
    assert_eq!(
        std::fs::read(run.join("metrics.csv")).unwrap(),
        metrics,
        "nothing written"
    );
    let out = lenet5(&dir, &["test", run_s, "--checkpoint", "middle"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap names the bad value: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("'middle' for '--checkpoint"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn divergence_stops_with_epoch_batch_and_advice() {
    let dir = setup("fail_diverge");
    let out = lenet5(
        &dir,
        &[
            "train",
            "tiny.yaml",
            "--set",
            "optimizer.type=sgd",
            "--lr",
            "1e12",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err.lines().last().unwrap();
    for needle in [
        "diverged",
        "epoch 1",
        "batch",
        "lower learning rate",
        "(lr 1.000e12)",
        "--lr 1.000e11",
    ] {
        assert!(line.contains(needle), "{needle:?} missing: {err}");
    }
    let run = only_run(&dir.join("runs"));
    let state = std::fs::read_to_string(run.join("state.json")).unwrap();
    assert!(state.contains("\"diverged\""), "{state}");
}

/// A run long enough to be interrupted mid-epoch: 4,000 images in batches of 8 (500 steps an epoch).
fn long_run(name: &str) -> (PathBuf, PathBuf) {
    let dir = tiny_project(name, 4000, 50, "");
    (dir.clone(), dir.join("runs"))
}

/// Starts training and returns once `epochs` rows are in metrics.csv (plus a little, to be mid-epoch).
fn start_and_wait(
    dir: &Path,
    runs: &Path,
    epochs: usize,
    args: &[&str],
) -> (std::process::Child, PathBuf) {
    let train = [
        "train",
        "tiny.yaml",
        "--batch-size",
        "8",
        "--set",
        "trainer.early_stopping.enabled=false",
    ];
    spawn_and_wait(dir, runs, (epochs, 1), &[&train[..], args].concat())
}

/// Runs `lenet5 args` and returns once the only run under `runs` has `epochs` rows in metrics.csv and
/// `sessions` training sessions in provenance.json (so a resumed one is training: its signal handlers are
/// in place), plus a little, to be mid-epoch.
fn spawn_and_wait(
    dir: &Path,
    runs: &Path,
    (epochs, sessions): (usize, usize),
    args: &[&str],
) -> (std::process::Child, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "training did not reach epoch {epochs}"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("training ended early: {status:?}");
        }
        if let Some(run) = std::fs::read_dir(runs)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        {
            let rows = std::fs::read_to_string(run.join("metrics.csv"))
                .map(|s| s.lines().count())
                .unwrap_or(0);
            let started = lenet5_lab::rundir::dir::RunDir { path: run.clone() }
                .provenance()
                .map_or(0, |p| p.len());
            if rows > epochs && started >= sessions {
                std::thread::sleep(Duration::from_millis(150));
                return (child, run);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn epochs_in_csv(run: &Path) -> Vec<usize> {
    lenet5_lab::rundir::metrics::read(&run.join("metrics.csv"))
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect()
}

#[test]
fn sigkill_mid_epoch_then_resume_loses_nothing() {
    let (dir, runs) = long_run("fault_sigkill");
    let (mut child, run) = start_and_wait(&dir, &runs, 1, &["--epochs", "3"]);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(epochs_in_csv(&run).len() < 3, "killed before the end");
    ok(lenet5(
        &dir,
        &["test", run.to_str().unwrap(), "--checkpoint", "last"],
    ));
    ok(lenet5(&dir, &["train", "--resume", run.to_str().unwrap()]));
    assert_eq!(epochs_in_csv(&run), [1, 2, 3], "every epoch exactly once");
    ok(lenet5(&dir, &["test", run.to_str().unwrap()]));
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.') && n != ".lock")
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

#[test]
fn killed_before_the_first_epoch_ends_resumes_and_a_second_trainer_is_locked_out() {
    // 16,000 images in batches of 8: an epoch of seconds, so the kill lands inside the first one.
    let dir = tiny_project("fault_first_epoch", 16_000, 50, "");
    let runs = dir.join("runs");
    let (mut child, run) = start_and_wait(&dir, &runs, 0, &["--epochs", "2"]);
    // While it trains, nobody else may train the same run (exit 75: try again later).
    let second = lenet5(&dir, &["train", "--resume", run.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(75), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("being trained by another process"),
        "{}",
        stderr(&second)
    );
    child.kill().unwrap(); // SIGKILL, before epoch 1 completed
    child.wait().unwrap();
    assert!(epochs_in_csv(&run).is_empty(), "killed inside epoch 1");
    assert!(!run.join("last.safetensors").exists());
    ok(lenet5(&dir, &["train", "--resume", run.to_str().unwrap()]));
    assert_eq!(epochs_in_csv(&run), [1, 2], "every epoch exactly once");
}

/// Stops a 3-epoch run with `signal` in each epoch of `stops` (after that many epochs completed: 0 is in
/// epoch 1), resuming it after each stop, then trains the same run uninterrupted: the two must agree in
/// every metrics.csv column but the wall time, and in their weights, byte for byte.
fn signal_run(name: &str, signal: i32, code: i32, stops: &[usize]) {
    let (dir, runs) = long_run(name);
    let (first, run) = start_and_wait(&dir, &runs, stops[0], &["--epochs", "3"]);
    let mut first = Some(first);
    for (session, &stop) in stops.iter().enumerate() {
        let resume = ["train", "--resume", run.to_str().unwrap()];
        let child = match first.take() {
            Some(child) => child,
            None => spawn_and_wait(&dir, &runs, (stop, session + 1), &resume).0,
        };
        unsafe_kill(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!("interrupted in epoch {}", stop + 1)),
            "stopped mid-epoch {}: {err}",
            stop + 1
        );
        assert!(
            err.contains("lenet5 train --resume"),
            "prints how to resume: {err}"
        );
        let state = std::fs::read_to_string(run.join("state.json")).unwrap();
        assert!(state.contains("\"interrupted\""), "{state}");
        assert_eq!(
            epochs_in_csv(&run).len(),
            stop,
            "nothing of the stopped epoch kept"
        );
    }
    ok(lenet5(&dir, &["train", "--resume", run.to_str().unwrap()]));
    let reference = dir.join("uninterrupted");
    ok(lenet5(
        &dir,
        &[
            "train",
            "tiny.yaml",
            "--batch-size",
            "8",
            "--epochs",
            "3",
            "--run-dir",
            reference.to_str().unwrap(),
            "--set",
            "trainer.early_stopping.enabled=false",
        ],
    ));
    assert_eq!(
        rows(&run),
        rows(&reference),
        "metrics.csv but the wall time"
    );
    for weights in [
        "last.safetensors",
        "best.safetensors",
        "optimizer.safetensors",
    ] {
        let bytes = |run: &Path| std::fs::read(run.join(weights)).unwrap();
        assert!(
            bytes(&run) == bytes(&reference),
            "{weights} differs from the uninterrupted run's"
        );
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigint_exits_130_and_the_resumed_run_equals_the_uninterrupted_one() {
    signal_run("fault_sigint", 2, 130, &[1]);
}

#[test]
fn sigint_in_the_first_epoch_and_again_later_changes_nothing() {
    signal_run("fault_sigint_twice", 2, 130, &[0, 2]);
}

#[test]
fn sigterm_exits_143_and_the_resumed_run_equals_the_uninterrupted_one() {
    signal_run("fault_sigterm", 15, 143, &[1]);
}

#[test]
fn sigterm_three_times_in_one_epoch_changes_nothing() {
    signal_run("fault_sigterm_thrice", 15, 143, &[1, 1, 1]);
}

#[test]
fn sighup_stops_a_run_as_sigterm_does() {
    signal_run("fault_sighup", 1, 129, &[1]);
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
    let dir = scratch("fail_atomic");
    let path = dir.join("state.json");
    std::fs::write(&path, "old").unwrap();
    // As on a full disk: the writer gets part of the way, then fails.
    let e = lenet5_lab::sys::atomic::write_with(&path, |tmp| {
        std::fs::write(tmp, "half")?;
        anyhow::bail!("No space left on device")
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("No space left"), "{e:#}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.json"], "no temp file left");
}

/// `lenet5 args` in `dir`, killed after 60 s: a read that blocks (a FIFO) fails the test instead of hanging it.
fn bounded(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_lenet5"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn special_and_oversized_files_are_refused_wherever_a_file_is_read() {
    let dir = setup("fail_special");
    ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "1"]));
    let run = only_run(&dir.join("runs"));
    let run_s = run.to_str().unwrap();
    for name in ["fifo.yaml", "fifo.png", "fifo.safetensors"] {
        mkfifo(&dir.join(name));
    }
    std::fs::write(dir.join("huge.yaml"), "#".repeat(2 << 20)).unwrap();
    let refused = |args: &[&str], needles: &[&str]| {
        let out = bounded(&dir, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in:\n{err}");
        }
    };
    refused(&["config", "fifo.yaml"], &["fifo.yaml: is a FIFO"]);
    refused(&["config", "/dev/zero"], &["/dev/zero: is a device"]);
    refused(
        &["config", "huge.yaml"],
        &["huge.yaml: is larger than 1 MiB"],
    );
    refused(&["train", "fifo.yaml"], &["fifo.yaml: is a FIFO"]);
    refused(
        &["sweep", "fifo.yaml", "--dry-run"],
        &["fifo.yaml: is a FIFO"],
    );
    refused(&["sweep", "/dev/zero", "--dry-run"], &["is a device"]);
    refused(
        &["predict", run_s, "fifo.png", "/dev/zero", "data"],
        &[
            "fifo.png: is a FIFO",
            "/dev/zero: is a device",
            "data: is a directory",
        ],
    );
    refused(
        &["test", run_s, "--checkpoint", "fifo.safetensors"],
        &["fifo.safetensors: is a FIFO"],
    );
    // A dataset file that is a FIFO.
    write_mnist(&dir.join("fifo-data"), 100, 20);
    let labels = dir.join("fifo-data/t10k-labels-idx1-ubyte");
    std::fs::remove_file(&labels).unwrap();
    mkfifo(&labels);
    refused(
        &["test", run_s, "--set", "data.dir=fifo-data"],
        &["t10k-labels-idx1-ubyte: is a FIFO"],
    );
    // A sweep directory whose sweep.yaml is a FIFO.
    std::fs::create_dir(dir.join("fifo-sweep")).unwrap();
    mkfifo(&dir.join("fifo-sweep/sweep.yaml"));
    refused(&["report", "fifo-sweep"], &["sweep.yaml: is a FIFO"]);
}

#[test]
fn a_run_dir_that_holds_other_files_is_refused() {
    let dir = setup("fail_run_dir");
    std::fs::create_dir(dir.join("notes")).unwrap();
    std::fs::write(dir.join("notes/metrics.csv"), "mine").unwrap();
    fails(
        &dir,
        &["train", "tiny.yaml", "--run-dir", "notes"],
        2,
        &["--run-dir notes", "not empty", "metrics.csv", "not a run"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes/metrics.csv")).unwrap(),
        "mine"
    );
    std::fs::write(dir.join("file"), "").unwrap();
    fails(
        &dir,
        &["train", "tiny.yaml", "--run-dir", "file"],
        2,
        &["file exists and is not a directory"],
    );
    // A new or an empty directory is a new run's.
    std::fs::create_dir(dir.join("empty")).unwrap();
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--epochs", "1", "--run-dir", "empty"],
    ));
    assert!(dir.join("empty/test.json").is_file());
}

#[test]
fn overrides_and_other_data_are_scored_but_never_rewrite_the_run() {
    let dir = setup("fail_test_overrides");
    ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "1"]));
    let run = only_run(&dir.join("runs"));
    let run_s = run.to_str().unwrap();
    let test_json = || std::fs::read(run.join("test.json")).unwrap();
    let original = test_json();
    // Another network: scored, printed, not saved.
    let out = ok(lenet5(
        &dir,
        &["test", run_s, "--set", "model.activation=sigmoid"],
    ));
    assert!(
        out.contains("not saved to the run") && out.contains("model.activation: relu -> sigmoid"),
        "{out}"
    );
    assert_eq!(test_json(), original);
    // Other data, named explicitly: scored, not saved.
    write_mnist(&dir.join("other"), 100, 30);
    let out = ok(lenet5(&dir, &["test", run_s, "--set", "data.dir=other"]));
    assert!(out.contains("images: 30"), "{out}");
    assert!(
        out.contains("not saved to the run") && out.contains("is not the one"),
        "{out}"
    );
    assert_eq!(test_json(), original);
    // The same files elsewhere are the run's own data: saved.
    std::fs::create_dir(dir.join("moved")).unwrap();
    for f in std::fs::read_dir(dir.join("data")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join("moved").join(f.file_name().unwrap())).unwrap();
    }
    std::fs::remove_file(run.join("test.json")).unwrap();
    let out = ok(lenet5(&dir, &["test", run_s, "--set", "data.dir=moved"]));
    assert!(out.contains("saved to"), "{out}");
    assert_eq!(test_json(), original, "the same evaluation");
    // The run's data changed where it was: refused by test and by resume, naming the file.
    write_mnist(&dir.join("data"), 200, 40);
    fails(
        &dir,
        &["test", run_s],
        2,
        &[
            "is not the one",
            "t10k-images-idx3-ubyte",
            "--set data.dir=",
        ],
    );
    let state = std::fs::read(run.join("state.json")).unwrap();
    fails(
        &dir,
        &["train", "--resume", run_s, "--epochs", "2"],
        2,
        &["is not the one", "t10k-labels-idx1-ubyte: 48 bytes"],
    );
    assert_eq!(std::fs::read(run.join("state.json")).unwrap(), state);
    assert_eq!(test_json(), original);
}

#[test]
fn a_run_without_a_fingerprint_is_its_own_only_on_its_own_data_dir() {
    // Runs made before dataset.json existed (every shipped study run) record no fingerprint.
    let dir = setup("fail_unrecorded");
    ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "1"]));
    let run = only_run(&dir.join("runs"));
    let run_s = run.to_str().unwrap();
    std::fs::remove_file(run.join("dataset.json")).unwrap();
    let original = std::fs::read(run.join("test.json")).unwrap();
    write_mnist(&dir.join("other"), 100, 30);
    let out = ok(lenet5(&dir, &["test", run_s, "--set", "data.dir=other"]));
    assert!(out.contains("not saved to the run"), "{out}");
    assert_eq!(std::fs::read(run.join("test.json")).unwrap(), original);
    let state = std::fs::read(run.join("state.json")).unwrap();
    fails(
        &dir,
        &[
            "train",
            "--resume",
            run_s,
            "--epochs",
            "2",
            "--set",
            "data.dir=other",
        ],
        2,
        &["recorded no dataset fingerprint", "its own data.dir"],
    );
    assert_eq!(std::fs::read(run.join("state.json")).unwrap(), state);
}

/// A run's metrics.csv rows without their wall time (which no two runs share).
fn rows(run: &Path) -> Vec<lenet5_lab::rundir::metrics::EpochRow> {
    let mut rows = lenet5_lab::rundir::metrics::read(&run.join("metrics.csv")).unwrap();
    rows.iter_mut().for_each(|r| r.seconds = 0.0);
    rows
}

/// The bytes of each of a run's `files`.
fn read_all(run: &Path, files: &[&str]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect()
}

#[test]
fn metrics_and_state_that_disagree_are_repaired_or_refused_on_resume() {
    let dir = setup("fail_commit");
    let args = ["--set", "trainer.early_stopping.enabled=false"];
    ok(lenet5(
        &dir,
        &[&["train", "tiny.yaml", "--epochs", "1"][..], &args].concat(),
    ));
    let run = only_run(&dir.join("runs"));
    let run_s = run.to_str().unwrap();
    let files = ["state.json", "last.safetensors", "optimizer.safetensors"];
    let epoch1 = read_all(&run, &files);
    ok(lenet5(&dir, &["train", "--resume", run_s, "--epochs", "2"]));
    let trained = rows(&run);
    // A crash after epoch 2's row reached the disk but before its state.json did: the row is dropped and
    // the epoch trained again, to the same numbers.
    for (f, bytes) in files.iter().zip(&epoch1) {
        std::fs::write(run.join(f), bytes).unwrap();
    }
    let out = lenet5(&dir, &["train", "--resume", run_s, "--epochs", "2"]);
    ok(out.clone());
    assert!(
        stderr(&out).contains("rows of epochs [2] that state.json never committed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(rows(&run), trained);
    // A state ahead of metrics.csv (what the old write order allowed after a power loss): refused.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let short: String = csv.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(run.join("metrics.csv"), &short).unwrap();
    fails(
        &dir,
        &["train", "--resume", run_s, "--epochs", "3"],
        2,
        &["metrics.csv holds epoch 1", "state.json says 2 completed"],
    );
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv")).unwrap(),
        short
    );
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    fails(
        &dir,
        &["train", "--resume", run_s, "--epochs", "3"],
        2,
        &["metrics.csv holds no epochs", "state.json says 2 completed"],
    );
    assert!(!run.join("metrics.csv").exists(), "nothing written");
}

#[test]
fn a_kill_between_the_checkpoints_and_the_state_resumes_to_the_same_run() {
    let dir = setup("fail_staged");
    let args = ["--set", "trainer.early_stopping.enabled=false"];
    let train = |extra: &[&str]| {
        ok(lenet5(
            &dir,
            &[&["train", "tiny.yaml"][..], &args, extra].concat(),
        ))
    };
    train(&["--epochs", "1", "--run-dir", "runs/a"]);
    let run = dir.join("runs/a");
    let run_s = run.to_str().unwrap();
    let kept = ["state.json", "last.safetensors", "optimizer.safetensors"];
    let epoch1 = read_all(&run, &kept);
    ok(lenet5(&dir, &["train", "--resume", run_s, "--epochs", "2"]));
    let weights = |run: &Path| {
        [
            "best.safetensors",
            "last.safetensors",
            "optimizer.safetensors",
        ]
        .map(|f| std::fs::read(run.join(f)).unwrap())
    };
    let (trained, epoch2) = (rows(&run), weights(&run));
    let staged = |name: &str| run.join(lenet5_lab::rundir::dir::staged(name, 2));
    let stage_epoch2 = || {
        std::fs::write(staged("last.safetensors"), &epoch2[1]).unwrap();
        std::fs::write(staged("optimizer.safetensors"), &epoch2[2]).unwrap();
    };
    // Killed after epoch 2's checkpoints were written, before its state.json: the state and the last
    // weights still say epoch 1, and epoch 2 is trained again to the same numbers and weights.
    for (f, bytes) in kept.iter().zip(&epoch1) {
        std::fs::write(run.join(f), bytes).unwrap();
    }
    stage_epoch2();
    ok(lenet5(&dir, &["train", "--resume", run_s, "--epochs", "2"]));
    assert_eq!(rows(&run), trained);
    assert!(
        weights(&run) == epoch2,
        "epoch 2 trained again from epoch 1's weights"
    );
    assert!(!staged("last.safetensors").exists());
    // Killed after epoch 2's state.json, before its last weights replaced epoch 1's: the resume finishes
    // the commit, so epoch 3 starts from epoch 2's weights, as the uninterrupted run's does.
    train(&["--epochs", "3", "--run-dir", "runs/b"]);
    std::fs::write(run.join("last.safetensors"), &epoch1[1]).unwrap();
    std::fs::write(run.join("optimizer.safetensors"), &epoch1[2]).unwrap();
    stage_epoch2();
    ok(lenet5(&dir, &["train", "--resume", run_s, "--epochs", "3"]));
    let uninterrupted = dir.join("runs/b");
    assert_eq!(rows(&run), rows(&uninterrupted));
    assert!(
        weights(&run) == weights(&uninterrupted),
        "epoch 3 from epoch 2's weights"
    );
}

#[test]
fn seeds_that_libtorch_cannot_tell_apart_and_empty_test_sets_are_refused() {
    let dir = setup("fail_seeds");
    fails(
        &dir,
        &["config", "tiny.yaml", "--set", "trainer.seed=4294967297"],
        2,
        &["trainer.seed = 4294967297", "2^32"],
    );
    // Epochs draw from a hash of the seed, so the largest seed is fine however many epochs follow.
    ok(lenet5(
        &dir,
        &["config", "tiny.yaml", "--set", "trainer.seed=4294967295"],
    ));
    for key in ["trainer.init_seed", "trainer.order_seed"] {
        let set = format!("{key}=4294967296");
        fails(
            &dir,
            &["config", "tiny.yaml", "--set", &set],
            2,
            &[&format!("{key} = 4294967296")],
        );
    }
    fails(
        &dir,
        &["config", "tiny.yaml", "--set", "data.seed=4294967296"],
        2,
        &["data.seed = 4294967296"],
    );
    write_mnist(&dir.join("empty"), 200, 0);
    fails(
        &dir,
        &["train", "tiny.yaml", "--set", "data.dir=empty"],
        2,
        &["t10k-images-idx3-ubyte: holds no images"],
    );
    ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "1"]));
    let run = only_run(&dir.join("runs"));
    fails(
        &dir,
        &["test", run.to_str().unwrap(), "--set", "data.dir=empty"],
        2,
        &["holds no images"],
    );
}
