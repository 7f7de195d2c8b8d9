//! Running a sweep's runs: each one is a `lenet5 train --resume RUN_DIR` child process (its directory
//! already holds its config), so a run's failure, kill or crash touches no other run, and the run's own
//! lock keeps two drivers from training it at once. Up to `jobs` run at a time; the CPU threads are divided
//! among them and devices handed out round-robin.

use super::sweep::{ERROR_FILE, Run, RunState, Sweep};
use crate::LOCKED_EXIT;
use crate::rundir::dir::TRAIN_LOG;
use crate::sys::interrupt::{Interrupt, SIGHUP_EXIT, SIGINT_EXIT, SIGTERM_EXIT};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run a sweep's runs on this machine.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs at a time.
    pub jobs: usize,
    /// Devices handed to runs round-robin (`trainer.device`); empty keeps each run's config.
    pub devices: Vec<String>,
    /// CPU threads per run; default: the machine's cores divided by `jobs` (at least 1).
    pub threads: Option<usize>,
    /// Train failed runs again instead of skipping them.
    pub retry_failed: bool,
}

impl Options {
    fn threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / self.jobs.max(1)).max(1)
        })
    }
}

/// How a sweep invocation ended.
#[derive(Debug, Default)]
pub struct Summary {
    /// Runs finished before or during this invocation.
    pub finished: usize,
    /// (run id, error) of failed runs.
    pub failed: Vec<(String, String)>,
    /// Runs left unfinished (stopped by a signal, or by this driver's interruption).
    pub unfinished: Vec<String>,
}

impl Summary {
    /// The error a sweep ends with when not every run finished.
    pub fn failure(&self) -> Option<anyhow::Error> {
        if self.failed.is_empty() && self.unfinished.is_empty() {
            return None;
        }
        let mut parts = vec![];
        if !self.failed.is_empty() {
            let ids: Vec<&str> = self.failed.iter().map(|(id, _)| id.as_str()).collect();
            parts.push(format!("{} failed: {}", self.failed.len(), ids.join(", ")));
        }
        if !self.unfinished.is_empty() {
            parts.push(format!(
                "{} unfinished (run the sweep again to resume them): {}",
                self.unfinished.len(),
                self.unfinished.join(", ")
            ));
        }
        Some(anyhow::anyhow!(
            "{} of the sweep's runs did not finish: {}",
            self.failed.len() + self.unfinished.len(),
            parts.join("; ")
        ))
    }
}

/// How one child ended.
enum Outcome {
    Finished(f64),
    Failed(String),
    /// Another process trains it: try again later.
    Locked,
    /// Stopped by a signal: resumable.
    Stopped,
}

struct Active<'a> {
    run: &'a Run,
    child: Child,
    started: Instant,
}

/// Runs `runs` of `sweep` (skipping finished ones, and failed ones unless `retry_failed`), `jobs` at a
/// time, until each has finished, failed or been stopped.
pub fn run(sweep: &Sweep, runs: &[&Run], opts: &Options, interrupt: &Interrupt) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut queue: Vec<&Run> = vec![];
    for &run in runs {
        match sweep.state(run) {
            RunState::Finished { .. } => summary.finished += 1,
            RunState::Failed(e) if !opts.retry_failed => summary.failed.push((run.id.clone(), e)),
            _ => queue.push(run),
        }
    }
    queue.reverse(); // popped from the end: runs start in sweep order
    let bar = progress_bar(runs.len() as u64, summary.finished as u64);
    let (started, already) = (Instant::now(), summary.finished);
    let mut last_eta = Instant::now();
    let exe = std::env::current_exe().context("cannot find the lenet5 binary")?;
    let threads = opts.threads();
    let mut active: Vec<Active> = vec![];
    let mut waiting: Vec<(&Run, Instant)> = vec![];
    let (mut launched, mut signalled) = (0usize, false);
    loop {
        let stopping = interrupt.requested().is_some();
        if stopping && !signalled {
            stop_all(&mut active);
            signalled = true;
        }
        // Runs another process holds come back to the queue a little later.
        let now = Instant::now();
        waiting.retain(|&(run, at)| {
            if at <= now {
                queue.push(run);
                false
            } else {
                true
            }
        });
        while !stopping && active.len() < opts.jobs.max(1) {
            let Some(run) = queue.pop() else { break };
            if let RunState::Finished { .. } = sweep.state(run) {
                summary.finished += 1; // finished meanwhile by another driver
                bar.inc(1);
                continue;
            }
            let device = (!opts.devices.is_empty())
                .then(|| opts.devices[launched % opts.devices.len()].as_str());
            launched += 1;
            let child = spawn(
                &exe,
                &sweep.run_dir(run),
                threads,
                device,
                opts.retry_failed,
            )?;
            active.push(Active {
                run,
                child,
                started: Instant::now(),
            });
        }
        if active.is_empty() && (stopping || (queue.is_empty() && waiting.is_empty())) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        // One clock and one ETA for the bar and the per-run lines, counting the epochs of runs in progress,
        // so neither stands still while a long run trains.
        if last_eta.elapsed() >= Duration::from_secs(1) {
            last_eta = Instant::now();
            let partly = in_progress(sweep, &active);
            let (done, left) = (summary.finished - already, runs.len() - summary.finished);
            bar.set_message(eta(started.elapsed(), done, partly, left));
        }
        let mut i = 0;
        while i < active.len() {
            let Some(status) = active[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let done = active.swap_remove(i);
            let (run, seconds) = (done.run, done.started.elapsed().as_secs_f64());
            // One line per run, also when stderr is a log file (where the bar is hidden).
            let say = |line: String| bar.suspend(|| eprintln!("{line}"));
            match outcome(sweep, run, status) {
                Outcome::Finished(accuracy) => {
                    summary.finished += 1;
                    bar.inc(1);
                    let count = format!("[{}/{}]", summary.finished, runs.len());
                    let partly = in_progress(sweep, &active);
                    let (done, left) = (summary.finished - already, runs.len() - summary.finished);
                    let eta = eta(started.elapsed(), done, partly, left);
                    bar.set_message(eta.clone());
                    say(format!(
                        "{count} done {}  test {:.2}%  {seconds:.0} s{eta}",
                        run.id,
                        100.0 * accuracy
                    ));
                }
                Outcome::Failed(error) => {
                    say(format!("FAILED {}: {error}", run.id));
                    std::fs::write(sweep.run_dir(run).join(ERROR_FILE), &error)?;
                    summary.failed.push((run.id.clone(), error));
                }
                Outcome::Locked => waiting.push((run, Instant::now() + Duration::from_secs(2))),
                Outcome::Stopped => {
                    say(format!("stopped {} (resumable)", run.id));
                    summary.unfinished.push(run.id.clone());
                }
            }
            sweep.write_manifest()?;
        }
    }
    bar.finish_and_clear();
    summary
        .unfinished
        .extend(queue.iter().map(|r| r.id.clone()));
    // Listed in sweep order, not in the order parallel runs happened to end.
    let position = |id: &String| runs.iter().position(|r| &r.id == id);
    summary.failed.sort_by_key(|(id, _)| position(id));
    summary.unfinished.sort_by_key(position);
    sweep.write_manifest()?;
    Ok(summary)
}

/// `lenet5 train --resume RUN_DIR`, its output appended to `RUN_DIR/train.log`.
fn spawn(
    exe: &Path,
    dir: &Path,
    threads: usize,
    device: Option<&str>,
    retry: bool,
) -> Result<Child> {
    if retry {
        let _ = std::fs::remove_file(dir.join(ERROR_FILE));
    }
    let log_path = dir.join(TRAIN_LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("train")
        .arg("--resume")
        .arg(dir)
        .args(["--threads", &threads.to_string()]);
    if let Some(device) = device {
        cmd.args(["--device", device]);
    }
    // Its own process group: a Ctrl-C at the terminal reaches the driver, which stops each run once.
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    cmd.spawn()
        .with_context(|| format!("cannot start {}", exe.display()))
}

/// What a child's exit status and run directory say.
fn outcome(sweep: &Sweep, run: &Run, status: std::process::ExitStatus) -> Outcome {
    if let RunState::Finished { test_accuracy } = sweep.state(run) {
        return Outcome::Finished(test_accuracy);
    }
    match status.code() {
        Some(LOCKED_EXIT) => Outcome::Locked,
        None | Some(SIGINT_EXIT | SIGTERM_EXIT | SIGHUP_EXIT) => Outcome::Stopped,
        Some(code) => {
            let log =
                std::fs::read_to_string(sweep.run_dir(run).join(TRAIN_LOG)).unwrap_or_default();
            let error = log.lines().rev().find_map(|l| l.strip_prefix("Error: "));
            Outcome::Failed(error.map_or_else(|| format!("exit code {code}"), str::to_string))
        }
    }
}

/// Asks every child to save and stop (SIGTERM), once.
fn stop_all(active: &mut [Active]) {
    for a in active.iter_mut() {
        // SAFETY: kill(2) on a child's pid, which stays ours until we wait for it.
        unsafe { libc::kill(a.child.id() as libc::pid_t, libc::SIGTERM) };
    }
}

/// The runs in progress as a fraction of runs: each one's completed epochs over its planned ones.
fn in_progress(sweep: &Sweep, active: &[Active]) -> f64 {
    active
        .iter()
        .filter_map(|a| {
            let epochs = a.run.config.trainer.epochs.max(1) as f64;
            let dir = crate::rundir::dir::RunDir::open(&sweep.run_dir(a.run)).ok()?;
            let state = dir.state().ok()??;
            Some((state.epoch as f64 / epochs).min(1.0))
        })
        .sum()
}

/// `, eta 12 min` (or `, eta 40 s`) from this invocation's pace: `done` runs finished and `partly` runs'
/// worth of epochs of the ones in progress in `elapsed`; `left` runs not finished (those in progress
/// included). Empty until there is a pace to go by.
pub fn eta(elapsed: Duration, done: usize, partly: f64, left: usize) -> String {
    let work = done as f64 + partly;
    if work <= 0.0 || left == 0 {
        return String::new();
    }
    let seconds = elapsed.as_secs_f64() / work * (left as f64 - partly).max(0.0);
    if seconds < 90.0 {
        format!(", eta {:.0} s", seconds.ceil())
    } else {
        format!(", eta {:.0} min", (seconds / 60.0).ceil())
    }
}

fn progress_bar(total: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} runs, {elapsed} elapsed{msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(done);
    // Redrawn every second, so the clock runs while a long run trains.
    bar.enable_steady_tick(Duration::from_secs(1));
    bar
}
