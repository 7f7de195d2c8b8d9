//! `lenet5 sweep --slurm --submit` on a real single-node Slurm cluster on this machine (started by
//! `scripts/slurm-local`, which installs slurm-wlm and munge with apt-get when missing and stops the
//! daemons it started by their PIDs): a job array trains the runs; a job cancelled mid-way (SIGTERM)
//! leaves them resumable, and submitting again finishes only what is unfinished, each epoch exactly once.
//! Needs root (as CI has); elsewhere it is reported as skipped.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The cluster, stopped when dropped (also when the test fails).
struct Cluster {
    state: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(state: &Path) -> Cluster {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local");
        let out = Command::new(&script)
            .arg("start")
            .arg(state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slurm-local start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            state: state.to_path_buf(),
            conf: state.join("slurm.conf"),
        }
    }

    fn run(&self, cwd: &Path, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }

    fn wait_for(&self, job: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.run(Path::new("."), "squeue", &["-h", "-j", job]);
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} still queued or running"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Cancel whatever is still queued or running (a failed test), then stop the daemons.
        let _ = self.run(Path::new("."), "scancel", &["--user", "root"]);
        let _ = Command::new("sleep").arg("2").status();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local");
        let _ = Command::new(script).arg("stop").arg(&self.state).status();
    }
}

/// `lenet5 sweep sweep.yaml --out study --slurm --submit` with two runs per array task.
fn sweep_slurm(cluster: &Cluster, dir: &Path) -> Output {
    let args = [
        "sweep",
        "sweep.yaml",
        "--out",
        "study",
        "--slurm",
        "--submit",
        "--runs-per-task",
        "2",
        "--cpus-per-task",
        "1",
        "--max-parallel",
        "2",
        "--time",
        "10:00",
        // Run by every task before training; a real option passed through as written.
        "--setup",
        "echo \"$SLURM_ARRAY_TASK_ID\" >> setup-ran",
        "--sbatch-arg=--comment=lenet5-test",
    ];
    cluster.run(dir, env!("CARGO_BIN_EXE_lenet5"), &args)
}

/// Submits the sweep and returns the job id.
fn submit(cluster: &Cluster, dir: &Path) -> String {
    let out = sweep_slurm(cluster, dir);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let line = text
        .lines()
        .find(|l| l.starts_with("submitted job "))
        .unwrap_or_else(|| panic!("{text}"));
    // "submitted job 12; when it is done: ..."
    let rest = &line["submitted job ".len()..];
    rest.split(';').next().unwrap().trim().to_string()
}

fn epochs(run: &Path) -> Vec<usize> {
    lenet5_lab::rundir::metrics::read(&run.join("metrics.csv"))
        .map(|rows| rows.iter().map(|r| r.epoch).collect())
        .unwrap_or_default()
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array_and_a_cancelled_job_is_finished_by_resubmitting() {
    let name = "a_sweep_runs_as_a_slurm_job_array_and_a_cancelled_job_is_finished_by_resubmitting";
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| stdout(&o).trim() == "0");
    if !root {
        skip(name, "needs root to install and start slurm-wlm and munge");
        return;
    }
    // Six runs of a few seconds (2,000 images in batches of 8, 2 epochs), two per array task.
    let dir = tiny_project("slurm", 2000, 100, "");
    let sweep = "base: tiny.yaml\nseeds: 3\nset: {data.batch_size: 8, trainer.early_stopping.enabled: false}\n\
                 variants:\n  - name: adam\n  - name: fast\n    set: {optimizer.lr: 0.003}\nbaseline: adam\n";
    std::fs::write(dir.join("sweep.yaml"), sweep).unwrap();
    let cluster = Cluster::start(&dir.join("cluster"));
    let study = dir.join("study");
    let runs: Vec<PathBuf> = ["adam", "fast"]
        .iter()
        .flat_map(|v| (1..=3).map(move |s| format!("{v}-seed{s}")))
        .map(|id| study.join("runs").join(id))
        .collect();

    // Job 1: cancelled (SIGTERM to every task) once the first run has finished.
    let job = submit(&cluster, &dir);
    let script = std::fs::read_to_string(study.join("slurm/batch-1.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-2%2") && script.contains("--runs-per-task 2"),
        "{script}"
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while !runs.iter().any(|r| r.join("test.json").exists()) {
        assert!(Instant::now() < deadline, "no run finished in job {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cluster.run(&dir, "scancel", &[&job]).status.success());
    cluster.wait_for(&job, Duration::from_secs(120));
    let finished = runs.iter().filter(|r| r.join("test.json").exists()).count();
    assert!(
        finished < runs.len(),
        "the cancel came too late to test anything"
    );

    // Job 2 covers only the unfinished runs and finishes them.
    let job = submit(&cluster, &dir);
    let list = std::fs::read_to_string(study.join("slurm/batch-2.runs")).unwrap();
    assert_eq!(list.lines().count(), runs.len() - finished, "{list}");
    cluster.wait_for(&job, Duration::from_secs(600));
    for run in &runs {
        assert_eq!(
            epochs(run),
            [1, 2],
            "{} trained each epoch exactly once",
            run.display()
        );
        assert!(run.join("test.json").exists(), "{}", run.display());
    }
    // The set-up line ran in every task of both jobs, in the directory the runs ran in.
    let setup = std::fs::read_to_string(dir.join("setup-ran")).unwrap_or_default();
    assert!(
        setup.lines().count() >= 2,
        "one line per task of both jobs: {setup:?}"
    );
    assert!(script.contains("#SBATCH --comment=lenet5-test"), "{script}");
    // Nothing left: a third submission submits nothing.
    let out = sweep_slurm(&cluster, &dir);
    assert!(stdout(&out).contains("every run"), "{}", stdout(&out));
    let table = ok(cluster.run(&dir, env!("CARGO_BIN_EXE_lenet5"), &["report", "study"]));
    assert!(
        table.contains("| adam | 3 |") && table.contains("| fast | 3 |"),
        "{table}"
    );
}
