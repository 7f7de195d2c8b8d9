//! The run directory and everything in it that must survive a crash: weights as `.safetensors` with the
//! seed's PyTorch names, the optimizer state that goes with them, the resolved config, the training state
//! that `--resume` continues from, the test result, and the lock held while a process trains the run.
//! Every file is written atomically ([`crate::atomic`]).
//!
//! ```text
//! runs/<config-name>-<UTC timestamp>/
//!   config.yaml        resolved config (defaults → file → overrides), commented
//!   metrics.csv        one row per completed epoch
//!   best.safetensors   weights of the best monitored epoch
//!   last.safetensors   weights after the last completed epoch (or the interrupted batch)
//!   optimizer.safetensors  Adam's moments and step count at the same point
//!   state.json         epoch, early-stopping and scheduler state, status (written before the first batch)
//!   test.json          test-set evaluation of best.safetensors
//!   .lock              locked while a process trains the run
//! ```

use crate::config::Config;
use crate::evaluate::Evaluation;
use crate::optim::Optimizer;
use crate::train::TrainState;
use crate::{UsageError, atomic};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

pub const CONFIG_FILE: &str = "config.yaml";
pub const METRICS_FILE: &str = "metrics.csv";
pub const STATE_FILE: &str = "state.json";
pub const TEST_FILE: &str = "test.json";
pub const BEST_WEIGHTS: &str = "best.safetensors";
pub const LAST_WEIGHTS: &str = "last.safetensors";
/// The optimizer's state beside `last.safetensors`, where lenet5 owns it (Adam).
pub const OPTIMIZER_STATE: &str = "optimizer.safetensors";

const LOCK_FILE: &str = ".lock";

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `runs_dir/<name>-<UTC timestamp>` (with a numeric suffix if taken).
    pub fn create(runs_dir: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(runs_dir)
            .with_context(|| format!("cannot create runs directory {}", runs_dir.display()))?;
        let stem = format!("{name}-{}", utc_timestamp());
        for i in 1.. {
            let path = if i == 1 {
                runs_dir.join(&stem)
            } else {
                runs_dir.join(format!("{stem}-{i}"))
            };
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create run directory {}", path.display())
                    });
                }
            }
        }
        unreachable!()
    }

    /// Creates exactly `path`; an existing run there is an error (resume it instead).
    pub fn create_at(path: &Path) -> Result<Self> {
        if path.join(CONFIG_FILE).exists() {
            return Err(UsageError::error(format!(
                "{} already holds a run; continue it with `lenet5 train --resume {0}`",
                path.display()
            )));
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing run directory; it must hold a `config.yaml`.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(UsageError::error(format!(
                "run directory {} does not exist",
                path.display()
            )));
        }
        if !path.join(CONFIG_FILE).is_file() {
            return Err(UsageError::error(format!(
                "{} is not a lenet5 run directory (no {CONFIG_FILE})",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The most recently modified run under `runs_dir`.
    pub fn latest(runs_dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(runs_dir).map_err(|e| {
            UsageError::error(format!(
                "no runs in {} ({e}); train one first with `lenet5 train CONFIG`",
                runs_dir.display()
            ))
        })?;
        let newest = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join(CONFIG_FILE).is_file())
            .filter_map(|p| Some((p.join(CONFIG_FILE).metadata().ok()?.modified().ok()?, p)))
            .max();
        match newest {
            Some((_, path)) => Ok(Self { path }),
            None => Err(UsageError::error(format!(
                "no runs in {}; train one first with `lenet5 train CONFIG`",
                runs_dir.display()
            ))),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn config(&self) -> Result<Config> {
        crate::config::load(&self.file(CONFIG_FILE), &[])
    }

    pub fn write_config(&self, config: &Config) -> Result<()> {
        atomic::write(&self.file(CONFIG_FILE), config.to_yaml()?.as_bytes())
    }

    /// The saved training state; `None` when the run was stopped before its state was first written.
    pub fn state(&self) -> Result<Option<TrainState>> {
        read_json(&self.file(STATE_FILE))
    }

    pub fn write_state(&self, state: &TrainState) -> Result<()> {
        atomic::write(
            &self.file(STATE_FILE),
            serde_json::to_string_pretty(state)?.as_bytes(),
        )
    }

    /// Saves all variables of `vs` as `name` (safetensors), atomically.
    pub fn save_weights(&self, vs: &VarStore, name: &str) -> Result<()> {
        save_weights(vs, &self.file(name))
    }

    /// Writes the test-set evaluation (`test.json`).
    pub fn write_test(&self, test: &Evaluation) -> Result<()> {
        atomic::write(
            &self.file(TEST_FILE),
            serde_json::to_string_pretty(test)?.as_bytes(),
        )
    }

    /// The stored test-set evaluation, if the run has one.
    pub fn test(&self) -> Result<Option<Evaluation>> {
        read_json(&self.file(TEST_FILE))
    }

    /// `last.safetensors` and, where lenet5 owns it, the optimizer state that goes with it.
    pub fn save_last(&self, vs: &VarStore, opt: &Optimizer) -> Result<()> {
        self.save_weights(vs, LAST_WEIGHTS)?;
        match opt.state() {
            Some(state) => write_safetensors(&state, &self.file(OPTIMIZER_STATE)),
            None => Ok(()),
        }
    }

    /// Puts a resumed run's model and optimizer where [`RunDir::save_last`] left them. A run stopped before
    /// anything was saved starts from its (seeded, hence identical) initial weights.
    pub fn restore(&self, vs: &mut VarStore, opt: &mut Optimizer) -> Result<()> {
        let weights = self.file(LAST_WEIGHTS);
        if !weights.exists() {
            return Ok(());
        }
        load_weights(vs, &weights)?;
        let path = self.file(OPTIMIZER_STATE);
        if path.exists() {
            let tensors: HashMap<String, tch::Tensor> = tch::Tensor::read_safetensors(&path)
                .map_err(|e| {
                    UsageError::error(format!(
                        "{}: not a readable safetensors file ({e})",
                        path.display()
                    ))
                })?
                .into_iter()
                .collect();
            opt.load_state(&tensors)
                .map_err(|e| UsageError::error(format!("{}: {e}", path.display())))?;
        } else if opt.state().is_some() {
            eprintln!(
                "note: no {OPTIMIZER_STATE} in the run; the optimizer restarts from zero state"
            );
        }
        Ok(())
    }

    /// Locks the run for this process until the returned guard is dropped; a second process gets an error.
    pub fn lock(&self) -> Result<std::fs::File> {
        let path = self.file(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(anyhow::Error::new(RunLocked(format!(
                "{} is being trained by another process (it holds {LOCK_FILE})",
                self.path.display()
            )))),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

/// Another process holds the run's lock.
#[derive(Debug)]
pub struct RunLocked(pub String);

impl std::fmt::Display for RunLocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunLocked {}

/// A JSON file of the run, or `None` if it is absent; unreadable contents are an error naming the file.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value = serde_json::from_str(&text)
        .map_err(|e| UsageError::error(format!("{}: {e}", path.display())))?;
    Ok(Some(value))
}

/// Saves every variable of `vs` to `path` in safetensors format, atomically.
pub fn save_weights(vs: &VarStore, path: &Path) -> Result<()> {
    write_safetensors(&vs.variables().into_iter().collect::<Vec<_>>(), path)
}

/// Writes named tensors to `path` in safetensors format, atomically.
fn write_safetensors(tensors: &[(String, tch::Tensor)], path: &Path) -> Result<()> {
    let named: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    atomic::write_with(path, |tmp| Ok(tch::Tensor::write_safetensors(&named, tmp)?))
}

/// Loads weights into `vs` from a safetensors file, checking first that the file has exactly the tensors
/// the model has, with the same shapes, so a foreign or truncated file is an error naming the tensor.
pub fn load_weights(vs: &mut VarStore, path: &Path) -> Result<()> {
    let bad = |msg: String| UsageError::error(format!("{}: {msg}", path.display()));
    if !path.is_file() {
        return Err(bad("no such checkpoint file".into()));
    }
    let tensors: HashMap<String, tch::Tensor> = tch::Tensor::read_safetensors(path)
        .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?
        .into_iter()
        .collect();
    let expected = vs.variables();
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    for name in &names {
        if let Some(t) = tensors.get(*name) {
            let want = expected[*name].size();
            if t.size() != want {
                return Err(bad(format!(
                    "tensor `{name}` has shape {:?}, the model needs {want:?}",
                    t.size()
                )));
            }
        }
    }
    if let Some(name) = names.iter().find(|n| !tensors.contains_key(**n)) {
        return Err(bad(format!(
            "missing tensor `{name}` (shape {:?}) that the model needs",
            expected[*name].size()
        )));
    }
    if let Some(extra) = tensors.keys().find(|k| !expected.contains_key(*k)) {
        return Err(bad(format!(
            "unexpected tensor `{extra}`: the checkpoint is for another model"
        )));
    }
    vs.load(path).map_err(|e| bad(e.to_string()))
}

/// `YYYYmmdd-HHMMSS` in UTC: run directories sort by start time.
pub fn utc_timestamp() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string()
}
