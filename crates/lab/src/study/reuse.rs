//! Runs are trained once. A run that is the same experiment (`config::same_experiment`: its config and seeds
//! up to how it is kept and how fast it runs) as a finished one — in the same sweep, or in a sweep named by
//! `lenet5 sweep --reuse DIR` — gets a copy of that run's files instead of a training, with
//! [`REUSED_FILE`] naming where they came from. The report then finds the two to be one shared run
//! (`study::identity`), as it would have had both been trained.

use super::sweep::{Run, RunState, Sweep};
use crate::config::same_experiment;
use crate::rundir::dir::{self, RunDir};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// In a reused run's directory: the directory its files were copied from.
pub const REUSED_FILE: &str = "reused_from.txt";

/// Files of the source that are not the copy's: its config (the copy keeps its own, the same experiment's),
/// its lock, and its MLflow record (the copy is tracked as itself).
const NOT_COPIED: [&str; 3] = [dir::CONFIG_FILE, dir::LOCK_FILE, dir::MLFLOW_FILE];

/// Where finished runs can be found: this sweep, and the sweeps named by `--reuse`.
pub struct Sources {
    sweeps: Vec<Sweep>,
}

impl Sources {
    /// The sweeps in `dirs` (each a sweep directory), read once.
    pub fn open(dirs: &[PathBuf]) -> Result<Sources> {
        let sweeps = (dirs.iter())
            .map(|d| super::sweep::open(d).with_context(|| format!("--reuse {}", d.display())))
            .collect::<Result<_>>()?;
        Ok(Sources { sweeps })
    }

    /// The directory of a finished run that is `run`'s experiment: first in `sweep` itself (another run
    /// than `run`), then in the `--reuse` sweeps in order.
    pub fn finished_twin(&self, sweep: &Sweep, run: &Run) -> Option<PathBuf> {
        let others = (sweep.runs.iter())
            .filter(|r| r.id != run.id)
            .map(|r| (sweep, r));
        let reused = (self.sweeps.iter()).flat_map(|s| s.runs.iter().map(move |r| (s, r)));
        others
            .chain(reused)
            .filter(|(_, r)| same_experiment(&r.config, &run.config))
            .find(|(s, r)| matches!(s.state(r), RunState::Finished { .. }))
            .map(|(s, r)| s.run_dir(r))
    }
}

/// Whether the run directory `dir` has never trained (it holds its config, perhaps a lock or a log).
pub fn never_started(dir: &Path) -> bool {
    !dir.join(dir::STATE_FILE).exists() && !dir.join(dir::METRICS_FILE).exists()
}

/// Makes the never-started run directory `to` a copy of the finished run `from`, keeping `to`'s own config,
/// under `to`'s lock (a `RunLocked` error when a process trains it). The copy is made in `scratch` (a
/// directory of the sweep, outside its runs) and then exchanged with `to` in one rename, so a kill leaves
/// either the run as it was or the whole copy; what it replaced is removed last.
pub fn copy_run(from: &Path, to: &Path, scratch: &Path) -> Result<()> {
    let _lock = RunDir::open(to)?.lock()?;
    if !never_started(to) {
        return Ok(()); // trained meanwhile by another process: it stays as it is
    }
    let staging = scratch.join(to.file_name().context("a run directory has a name")?);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    copy_tree(from, &staging)?;
    let config = to.join(dir::CONFIG_FILE);
    std::fs::copy(&config, staging.join(dir::CONFIG_FILE))
        .with_context(|| format!("cannot copy {}", config.display()))?;
    let source = std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    std::fs::write(staging.join(REUSED_FILE), format!("{}\n", source.display()))?;
    exchange(&staging, to)?;
    std::fs::remove_dir_all(&staging)
        .with_context(|| format!("cannot remove {}", staging.display()))
}

/// Swaps two directories in one step (renameat2 with RENAME_EXCHANGE, Linux 3.15+).
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).context("a path without NUL");
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths; renameat2 reads them and nothing else.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!("cannot exchange {} and {} ({e})", a.display(), b.display());
    }
    Ok(())
}

/// Copies the directory `from` into a new directory `to`, all but [`NOT_COPIED`].
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if NOT_COPIED.iter().any(|n| name == *n) {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("cannot copy {}", source.display()))?;
        }
    }
    Ok(())
}
