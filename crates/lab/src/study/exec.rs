//! Running a sweep's runs: each one is a `lenet5 train --resume RUN_DIR` child process (its directory
//! already holds its config), so a run's failure, kill or crash touches no other run, and the run's own
//! lock keeps two drivers from training it at once. Up to `jobs` run at a time, never more on the CPU than
//! the cores hold; the CPU threads are divided among them and devices handed out round-robin. A run whose
//! experiment another run finished is copied, not trained ([`reuse`](super::reuse)); one whose experiment
//! is training waits for it.

use super::reuse::{self, Sources};
use super::sweep::{ERROR_FILE, Run, RunState, Sweep};
use crate::LOCKED_EXIT;
use crate::rundir::dir::TRAIN_LOG;
use crate::sys::interrupt::{Interrupt, SIGHUP_EXIT, SIGINT_EXIT, SIGTERM_EXIT};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
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
    /// Sweep directories whose finished runs are copied into this sweep's identical ones (`--reuse`).
    pub reuse: Vec<std::path::PathBuf>,
}

impl Options {
    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| (cores() / self.jobs.max(1)).max(1))
    }

    /// Runs at a time on this machine: [`slots`].
    fn slots(&self) -> usize {
        slots(self.jobs, self.threads(), cores(), !self.devices.is_empty())
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs at a time for `--jobs jobs` of `threads` CPU threads each on `cores` cores: on the CPU never more
/// than the cores hold (more would time-slice, each run slower by as much, and LibTorch's spinning threads
/// make it worse); with devices handed out (`--devices`, GPU runs that mostly wait on the device) as asked.
pub fn slots(jobs: usize, threads: usize, cores: usize, devices: bool) -> usize {
    let jobs = jobs.max(1);
    match devices {
        true => jobs,
        false => jobs.min((cores / threads.max(1)).max(1)),
    }
}

/// How a sweep invocation ended.
#[derive(Debug, Default)]
pub struct Summary {
    /// Runs finished before or during this invocation.
    pub finished: usize,
    /// Of those, runs copied from an identical finished one instead of trained.
    pub reused: usize,
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
    let mut driver = Driver::new(sweep, runs, opts)?;
    let mut signalled = false;
    loop {
        let stopping = interrupt.requested().is_some();
        if stopping && !signalled {
            stop_all(&mut driver.active);
            signalled = true;
        }
        driver.requeue_waiting();
        if !stopping {
            driver.launch()?;
        }
        if driver.active.is_empty()
            && (stopping || (driver.queue.is_empty() && driver.waiting.is_empty()))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        driver.tick_eta();
        driver.reap()?;
    }
    driver.finish()
}

/// One invocation's state: what is queued, running and waiting, and the progress shown.
struct Driver<'a> {
    sweep: &'a Sweep,
    runs: &'a [&'a Run],
    opts: &'a Options,
    summary: Summary,
    queue: Vec<&'a Run>,
    active: Vec<Active<'a>>,
    /// Runs another process holds, and when to try them again.
    waiting: Vec<(&'a Run, Instant)>,
    bar: ProgressBar,
    started: Instant,
    /// Runs finished before this invocation.
    already: usize,
    last_eta: Instant,
    exe: std::path::PathBuf,
    threads: usize,
    launched: usize,
    sources: Sources,
}

impl<'a> Driver<'a> {
    fn new(sweep: &'a Sweep, runs: &'a [&'a Run], opts: &'a Options) -> Result<Self> {
        let mut summary = Summary::default();
        let mut queue: Vec<&Run> = vec![];
        for &run in runs {
            match sweep.state(run) {
                RunState::Finished { .. } => summary.finished += 1,
                RunState::Failed(e) if !opts.retry_failed => {
                    summary.failed.push((run.id.clone(), e))
                }
                _ => queue.push(run),
            }
        }
        queue.reverse(); // popped from the end: runs start in sweep order
        let bar = progress_bar(runs.len() as u64, summary.finished as u64);
        Ok(Driver {
            sweep,
            runs,
            opts,
            already: summary.finished,
            summary,
            queue,
            active: vec![],
            waiting: vec![],
            bar,
            started: Instant::now(),
            last_eta: Instant::now(),
            exe: std::env::current_exe().context("cannot find the lenet5 binary")?,
            threads: opts.threads(),
            launched: 0,
            sources: Sources::open(&opts.reuse)?,
        })
        .inspect(|d| {
            let slots = opts.slots();
            if slots < opts.jobs {
                eprintln!(
                    "note: --jobs {} at {} thread(s) each is more than this machine's {} cores hold: running {slots} at a time (pass --devices for GPU runs)",
                    opts.jobs,
                    d.threads,
                    cores()
                );
            }
        })
    }

    /// Runs another process holds come back to the queue a little later.
    fn requeue_waiting(&mut self) {
        let now = Instant::now();
        let queue = &mut self.queue;
        self.waiting.retain(|&(run, at)| {
            if at <= now {
                queue.push(run);
                false
            } else {
                true
            }
        });
    }

    /// Starts queued runs until every slot ([`slots`]) is taken.
    fn launch(&mut self) -> Result<()> {
        while self.active.len() < self.opts.slots() {
            let Some(run) = self.queue.pop() else { break };
            if let RunState::Finished { .. } = self.sweep.state(run) {
                self.summary.finished += 1; // finished meanwhile by another driver
                self.bar.inc(1);
                continue;
            }
            if self.reuse(run)? {
                continue;
            }
            let twin_training = (self.active.iter())
                .any(|a| crate::config::same_experiment(&a.run.config, &run.config));
            if twin_training {
                self.waiting
                    .push((run, Instant::now() + Duration::from_secs(2)));
                continue;
            }
            let devices = &self.opts.devices;
            let device =
                (!devices.is_empty()).then(|| devices[self.launched % devices.len()].as_str());
            self.launched += 1;
            let dir = self.sweep.run_dir(run);
            let child = spawn(
                &self.exe,
                &dir,
                self.threads,
                device,
                self.opts.retry_failed,
            )?;
            self.active.push(Active {
                run,
                child,
                started: Instant::now(),
            });
        }
        Ok(())
    }

    /// Copies an identical finished run into `run` instead of training it, when there is one and `run`
    /// never started; says so. A run another process holds waits; a copy that fails is trained instead.
    fn reuse(&mut self, run: &'a Run) -> Result<bool> {
        let dir = self.sweep.run_dir(run);
        let twin = (reuse::never_started(&dir))
            .then(|| self.sources.finished_twin(self.sweep, run))
            .flatten();
        let Some(from) = twin else {
            return Ok(false);
        };
        let scratch = self.sweep.dir.join(".reusing");
        std::fs::create_dir_all(&scratch)?;
        match reuse::copy_run(&from, &dir, &scratch) {
            Err(e) if e.is::<crate::RunLocked>() => {
                self.waiting
                    .push((run, Instant::now() + Duration::from_secs(2)));
                return Ok(true);
            }
            Err(e) => {
                (self.bar)
                    .suspend(|| eprintln!("warning: {}: not copied ({e:#}); training it", run.id));
                return Ok(false);
            }
            Ok(()) if !dir.join(reuse::REUSED_FILE).exists() => return Ok(false),
            Ok(()) => {}
        }
        self.summary.finished += 1;
        self.summary.reused += 1;
        self.bar.inc(1);
        let count = format!("[{}/{}]", self.summary.finished, self.runs.len());
        (self.bar).suspend(|| eprintln!("{count} reused {} from {}", run.id, from.display()));
        self.sweep.write_manifest()?;
        Ok(true)
    }

    /// The ETA from this invocation's pace, counting the epochs of runs in progress.
    fn eta(&self) -> String {
        let partly = in_progress(self.sweep, &self.active);
        let done = self.summary.finished - self.already;
        let left = self.runs.len() - self.summary.finished;
        eta(self.started.elapsed(), done, partly, left)
    }

    /// One clock and one ETA for the bar and the per-run lines, so neither stands still while a long
    /// run trains.
    fn tick_eta(&mut self) {
        if self.last_eta.elapsed() >= Duration::from_secs(1) {
            self.last_eta = Instant::now();
            self.bar.set_message(self.eta());
        }
    }

    /// Collects every child that ended, says how, and rewrites the manifest.
    fn reap(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.active.len() {
            let Some(status) = self.active[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let done = self.active.swap_remove(i);
            self.record(done.run, done.started.elapsed().as_secs_f64(), status)?;
            self.sweep.write_manifest()?;
        }
        Ok(())
    }

    /// What one ended child means for the summary, with one line per run (also when stderr is a log
    /// file, where the bar is hidden).
    fn record(&mut self, run: &'a Run, seconds: f64, status: ExitStatus) -> Result<()> {
        let bar = self.bar.clone();
        let say = |line: String| bar.suspend(|| eprintln!("{line}"));
        match outcome(self.sweep, run, status) {
            Outcome::Finished(accuracy) => {
                self.summary.finished += 1;
                self.bar.inc(1);
                let count = format!("[{}/{}]", self.summary.finished, self.runs.len());
                let eta = self.eta();
                self.bar.set_message(eta.clone());
                say(format!(
                    "{count} done {}  test {:.2}%  {seconds:.0} s{eta}",
                    run.id,
                    100.0 * accuracy
                ));
            }
            Outcome::Failed(error) => {
                say(format!("FAILED {}: {error}", run.id));
                std::fs::write(self.sweep.run_dir(run).join(ERROR_FILE), &error)?;
                self.summary.failed.push((run.id.clone(), error));
            }
            Outcome::Locked => self
                .waiting
                .push((run, Instant::now() + Duration::from_secs(2))),
            Outcome::Stopped => {
                say(format!("stopped {} (resumable)", run.id));
                self.summary.unfinished.push(run.id.clone());
            }
        }
        Ok(())
    }

    /// The summary, runs listed in sweep order (not in the order parallel runs happened to end).
    fn finish(mut self) -> Result<Summary> {
        self.bar.finish_and_clear();
        let summary = &mut self.summary;
        summary
            .unfinished
            .extend(self.queue.iter().map(|r| r.id.clone()));
        let runs = self.runs;
        let position = |id: &String| runs.iter().position(|r| &r.id == id);
        summary.failed.sort_by_key(|(id, _)| position(id));
        summary.unfinished.sort_by_key(position);
        self.sweep.write_manifest()?;
        Ok(self.summary)
    }
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
fn outcome(sweep: &Sweep, run: &Run, status: ExitStatus) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::slots;

    #[test]
    fn cpu_runs_never_take_more_threads_than_the_cores() {
        assert_eq!(slots(2, 1, 2, false), 2);
        assert_eq!(slots(4, 1, 2, false), 2);
        assert_eq!(slots(4, 2, 8, false), 4);
        assert_eq!(slots(4, 3, 8, false), 2);
        // A run wider than the machine still runs, alone.
        assert_eq!(slots(3, 4, 2, false), 1);
        assert_eq!(slots(0, 1, 2, false), 1);
        // GPU runs, devices handed out: as asked.
        assert_eq!(slots(8, 2, 4, true), 8);
    }
}
