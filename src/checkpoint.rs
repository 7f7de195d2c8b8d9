//! The run directory and everything in it that must survive a crash: atomic writes (temp file, fsync,
//! rename), weights as `.safetensors` with the seed's PyTorch names, the resolved config, and the training
//! state that `--resume` continues from.
//!
//! ```text
//! runs/<config-name>-<UTC timestamp>/
//!   config.yaml        resolved config (defaults → file → overrides)
//!   metrics.csv        one row per completed epoch
//!   best.safetensors   weights of the best monitored epoch
//!   last.safetensors   weights after the last completed epoch (or the interrupted batch)
//!   optimizer.safetensors  Adam's moments and step count at the same point
//!   state.json         epoch, early-stopping and scheduler state, status
//!   test.json          test-set evaluation of best.safetensors
//! ```

use crate::UsageError;
use crate::config::Config;
use crate::evaluate::Evaluation;
use crate::optim::LrScheduler;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
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

/// Where a run stands; saved after every epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Last completed epoch (1-based); 0 before the first.
    pub epoch: usize,
    pub best_epoch: usize,
    /// Best monitored value so far (`None` before the first epoch).
    pub best_value: Option<f64>,
    /// Epochs since `best_epoch` without an improvement larger than `min_delta`.
    pub epochs_without_improvement: usize,
    pub scheduler: LrScheduler,
    pub status: RunStatus,
    /// Wall time of all completed epochs, seconds.
    pub train_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Interrupted,
    Diverged,
    EarlyStopped,
    Completed,
}

impl RunStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::EarlyStopped | RunStatus::Completed)
    }
}

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
            return Err(UsageError::new(format!(
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
            return Err(UsageError::new(format!(
                "run directory {} does not exist",
                path.display()
            )));
        }
        if !path.join(CONFIG_FILE).is_file() {
            return Err(UsageError::new(format!(
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
            UsageError::new(format!(
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
            None => Err(UsageError::new(format!(
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
        write_atomic(&self.file(CONFIG_FILE), config.to_yaml()?.as_bytes())
    }

    pub fn state(&self) -> Result<TrainState> {
        let path = self.file(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            UsageError::new(format!(
                "{}: {e} (the run never completed an epoch)",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| UsageError::new(format!("{}: {e}", path.display())))
    }

    pub fn write_state(&self, state: &TrainState) -> Result<()> {
        write_atomic(
            &self.file(STATE_FILE),
            serde_json::to_string_pretty(state)?.as_bytes(),
        )
    }

    /// Saves all variables of `vs` as `name` (safetensors), atomically.
    pub fn save_weights(&self, vs: &VarStore, name: &str) -> Result<()> {
        save_weights(vs, &self.file(name))
    }

    /// Saves named tensors (the optimizer's state) as `name`, atomically.
    pub fn save_tensors(&self, tensors: &[(String, tch::Tensor)], name: &str) -> Result<()> {
        write_safetensors(tensors, &self.file(name))
    }

    /// Writes the test-set evaluation (`test.json`).
    pub fn write_test(&self, test: &Evaluation) -> Result<()> {
        write_atomic(
            &self.file(TEST_FILE),
            serde_json::to_string_pretty(test)?.as_bytes(),
        )
    }

    /// The stored test-set evaluation, if the run has one.
    pub fn test(&self) -> Result<Option<Evaluation>> {
        let path = self.file(TEST_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let test = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a test result", path.display()))?;
        Ok(Some(test))
    }

    /// Reads named tensors saved by [`RunDir::save_tensors`]; `None` if the file is absent.
    pub fn load_tensors(&self, name: &str) -> Result<Option<HashMap<String, tch::Tensor>>> {
        let path = self.file(name);
        if !path.exists() {
            return Ok(None);
        }
        let tensors = tch::Tensor::read_safetensors(&path).map_err(|e| {
            UsageError::new(format!(
                "{}: not a readable safetensors file ({e})",
                path.display()
            ))
        })?;
        Ok(Some(tensors.into_iter().collect()))
    }
}

/// Saves every variable of `vs` to `path` in safetensors format, atomically.
pub fn save_weights(vs: &VarStore, path: &Path) -> Result<()> {
    write_safetensors(&vs.variables().into_iter().collect::<Vec<_>>(), path)
}

/// Writes named tensors to `path` in safetensors format through a temp file in the same directory.
fn write_safetensors(tensors: &[(String, tch::Tensor)], path: &Path) -> Result<()> {
    let tmp = temp_path(path, ".tmp.safetensors");
    let named: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::write_safetensors(&named, &tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    commit(&tmp, path)
}

/// Loads weights into `vs` from a safetensors file, checking first that the file has exactly the tensors
/// the model has, with the same shapes, so a foreign or truncated file is an error naming the tensor.
pub fn load_weights(vs: &mut VarStore, path: &Path) -> Result<()> {
    let bad = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
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

/// Writes `bytes` to `path` atomically: a reader (or a crash) sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path, ".tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(file);
    commit(&tmp, path)
}

fn temp_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}{suffix}"))
}

/// fsyncs `tmp`, renames it over `path`, and fsyncs the directory so the rename itself is durable.
fn commit(tmp: &Path, path: &Path) -> Result<()> {
    let result = (|| -> std::io::Result<()> {
        std::fs::File::open(tmp)?.sync_all()?;
        std::fs::rename(tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// `YYYYmmdd-HHMMSS` in UTC, from the system clock (civil-from-days, Howard Hinnant's algorithm).
pub fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
