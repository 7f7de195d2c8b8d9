//! Scaling a sweep out through Slurm: an sbatch script for a job array over the sweep directory (which
//! must be on a filesystem the nodes share). Each array task trains its slice of the unfinished runs, one
//! after another, with the same binary (`lenet5 sweep-task`); a task stopped by the time limit leaves its
//! runs resumable, and submitting again covers only what is still unfinished.

use super::sweep::{Run, Sweep};
use crate::UsageError;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// What the sbatch script asks of Slurm.
#[derive(Debug, Clone)]
pub struct Options {
    pub partition: Option<String>,
    /// `--time`, e.g. `2:00:00`.
    pub time: Option<String>,
    pub cpus_per_task: usize,
    pub gpus_per_task: Option<usize>,
    /// At most this many array tasks at once (`%K`).
    pub max_parallel: Option<usize>,
    /// Runs each task trains in turn (sites discourage arrays of tiny jobs).
    pub runs_per_task: usize,
    /// `--account`, `--qos`, `--mem` (e.g. `8G`): what many clusters require.
    pub account: Option<String>,
    pub qos: Option<String>,
    pub mem: Option<String>,
    /// Further `#SBATCH` options as written (`--constraint=a100`, `--mail-type=END`).
    pub sbatch_args: Vec<String>,
    /// A shell line run before training in every task (`module load cuda/12.4`, `source env.sh`).
    pub setup: Option<String>,
}

impl Options {
    /// A partition whose name says GPU but no GPUs asked for: its runs would silently train on the CPU.
    pub fn gpu_partition_without_gpus(&self) -> Option<&str> {
        let gpus = self.gpus_per_task.is_some_and(|g| g > 0)
            || self
                .sbatch_args
                .iter()
                .any(|a| a.contains("gpu") || a.contains("gres"));
        self.partition
            .as_deref()
            .filter(|p| !gpus && p.to_lowercase().contains("gpu"))
    }
}

/// A written job: its script, the list of runs it covers and its array size.
#[derive(Debug, Clone)]
pub struct Job {
    pub script: PathBuf,
    pub runs: PathBuf,
    pub tasks: usize,
}

/// Writes `slurm/batch-N.runs` (the unfinished run directories, one per line) and `slurm/batch-N.sbatch`.
/// `None` when every run is finished.
pub fn write_job(sweep: &Sweep, pending: &[&Run], opts: &Options) -> Result<Option<Job>> {
    if pending.is_empty() {
        return Ok(None);
    }
    let dir = absolute(&sweep.dir)?.join("slurm");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let n = (1..)
        .find(|n| !dir.join(format!("batch-{n}.runs")).exists())
        .expect("a free number");
    let per_task = opts.runs_per_task.max(1);
    let tasks = pending.len().div_ceil(per_task);
    // Every check before the first file, so a refused option leaves no half-written job.
    let header = sbatch_header(sweep, opts, tasks, &dir.join(format!("batch-{n}-%a.out")))?;
    let runs_path = dir.join(format!("batch-{n}.runs"));
    let list: String = pending.iter().map(|r| format!("{}\n", r.id)).collect();
    crate::sys::atomic::write(&runs_path, list.as_bytes())?;
    let exe = std::env::current_exe().context("cannot find the lenet5 binary")?;
    let setup = opts
        .setup
        .as_ref()
        .map_or(String::new(), |line| format!("{line}\n"));
    let device = if opts.gpus_per_task.is_some_and(|g| g > 0) {
        " --devices cuda"
    } else {
        ""
    };
    let script = format!(
        "#!/bin/bash\n{header}\n\
         # Written by `lenet5 sweep --slurm`: array task i trains runs i*{per_task} .. i*{per_task}+{} of\n\
         # {}, one after another. A task stopped by the time limit (SIGTERM) leaves them resumable;\n\
         # `lenet5 sweep SWEEP.yaml --out {} --slurm --submit` again submits only what is unfinished.\n\
         {setup}exec {} sweep-task {} --index \"$SLURM_ARRAY_TASK_ID\" --runs-per-task {per_task} --threads \"${{SLURM_CPUS_PER_TASK:-{}}}\"{device}\n",
        per_task - 1,
        runs_path.display(),
        sweep.dir.display(),
        shell_quote(&exe),
        shell_quote(&runs_path),
        opts.cpus_per_task,
    );
    let script_path = dir.join(format!("batch-{n}.sbatch"));
    crate::sys::atomic::write(&script_path, script.as_bytes())?;
    Ok(Some(Job {
        script: script_path,
        runs: runs_path,
        tasks,
    }))
}

/// The script's `#SBATCH` lines: the job's name, array, resources, output file and working directory, then
/// the user's own options (one per `--sbatch-arg`, refused with a line break in it).
fn sbatch_header(sweep: &Sweep, opts: &Options, tasks: usize, output: &Path) -> Result<String> {
    let cwd = std::env::current_dir()?;
    let name = sweep
        .dir
        .file_name()
        .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    let limit = opts.max_parallel.map_or(String::new(), |k| format!("%{k}"));
    let mut header = vec![
        format!("--job-name=lenet5-{name}"),
        format!("--array=0-{}{limit}", tasks - 1),
        format!("--cpus-per-task={}", opts.cpus_per_task),
        "--ntasks=1".into(),
        format!("--output={}", output.display()),
        format!("--chdir={}", cwd.display()),
    ];
    header.extend(opts.partition.iter().map(|p| format!("--partition={p}")));
    header.extend(opts.account.iter().map(|a| format!("--account={a}")));
    header.extend(opts.qos.iter().map(|q| format!("--qos={q}")));
    header.extend(opts.mem.iter().map(|m| format!("--mem={m}")));
    header.extend(opts.time.iter().map(|t| format!("--time={t}")));
    header.extend(
        opts.gpus_per_task
            .iter()
            .map(|g| format!("--gpus-per-task={g}")),
    );
    if let Some(arg) = opts.sbatch_args.iter().find(|a| a.contains('\n')) {
        return Err(UsageError::error(format!(
            "--sbatch-arg {arg:?}: one option per flag, without line breaks"
        )));
    }
    header.extend(opts.sbatch_args.iter().cloned());
    Ok(header
        .iter()
        .map(|h| format!("#SBATCH {h}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Submits `job` with `sbatch`; returns the job id.
pub fn submit(job: &Job) -> Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(&job.script)
        .output()
        .map_err(|e| {
            UsageError::error(format!(
                "cannot run sbatch ({e}); submit {} from a Slurm login node",
                job.script.display()
            ))
        })?;
    anyhow::ensure!(
        out.status.success(),
        "sbatch {} failed: {}",
        job.script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // --parsable prints "jobid" or "jobid;cluster".
    Ok(text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// The run ids of task `index` of a batch list (the task's slice of `runs_per_task`).
pub fn task_slice(list: &Path, index: usize, runs_per_task: usize) -> Result<Vec<String>> {
    let text = crate::sys::read::text(list, crate::sys::read::RUN_FILE_LIMIT)?;
    let ids: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let per_task = runs_per_task.max(1);
    Ok(ids
        .into_iter()
        .skip(index * per_task)
        .take(per_task)
        .collect())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// `'path'` for a shell, with embedded quotes escaped.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
