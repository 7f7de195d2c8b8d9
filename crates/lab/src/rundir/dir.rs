//! The run directory and everything in it that must survive a crash: weights as `.safetensors` with the
//! seed's PyTorch names, the optimizer state that goes with them, the resolved config, the training state
//! that `--resume` continues from, the test result, and the lock held while a process trains the run.
//! Every file is written atomically ([`crate::sys::atomic`]). The weights' bytes are the core crate's
//! (`lenet5_core::run::weights`); this module owns their names.
//!
//! ```text
//! runs/<config-name>-<UTC timestamp>/
//!   config.yaml        resolved config (defaults → file → overrides), commented
//!   metrics.csv        one row per completed epoch
//!   best.safetensors   weights of the best monitored epoch
//!   last.safetensors   weights after the last completed epoch (or the interrupted batch)
//!   optimizer.safetensors  Adam's moments and step count at the same point
//!   state.json         epoch, early-stopping and scheduler state, status (written before the first batch)
//!   best-val_accuracy.safetensors  the best epoch by the metric the monitor does not watch (or
//!                      best-val_loss.safetensors when early_stopping.monitor is val_accuracy)
//!   test.json          test-set evaluation of best.safetensors, and `selections`: each of the three
//!                      checkpoints (best validation loss, best validation accuracy, last) scored
//!   predictions.csv.gz every test image's label and each selection's answer and its probability
//!   train_eval.json    the same checkpoint on the clean training split: generalization = this − test
//!   provenance.json    what made the run: lenet5 version, git commit, device, per training session
//!   dataset.json       the dataset's files it trained on: name, size, CRC32C (checked on resume and test)
//!   .lock              locked while a process trains the run
//! ```

use super::evaluation::Evaluation;
use super::fingerprint::Fingerprint;
use super::selections::Scored;
use super::state::TrainState;
use crate::config::Config;
use crate::sys::atomic;
use crate::{RunLocked, UsageError};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.yaml";
pub const METRICS_FILE: &str = "metrics.csv";
/// Each layer's health per epoch (`rundir::layers`).
pub const LAYERS_FILE: &str = "layers.csv";
pub const STATE_FILE: &str = "state.json";
pub const TEST_FILE: &str = "test.json";
/// The best checkpoint scored on the clean training split (eval mode, no distortions, no dropout).
pub const TRAIN_EVAL_FILE: &str = "train_eval.json";
pub const PROVENANCE_FILE: &str = "provenance.json";
/// The fingerprint of the dataset the run trained on.
pub const DATASET_FILE: &str = "dataset.json";
/// A sweep's run: the output of the `lenet5 train` process that trains it.
pub const TRAIN_LOG: &str = "train.log";
/// Where runs go: the default `trainer.runs_dir`, `--runs-dir`, and a sweep directory's folder of runs.
pub const RUNS_DIR: &str = "runs";
pub const BEST_WEIGHTS: &str = "best.safetensors";
pub const LAST_WEIGHTS: &str = "last.safetensors";
/// How far an MLflow server has the run (`lenet5_lab::mlflow`).
pub const MLFLOW_FILE: &str = "mlflow.json";
/// Each test image's answer under each checkpoint selection.
pub const PREDICTIONS_FILE: &str = "predictions.csv.gz";

/// The best checkpoint by the validation metric `monitor` does not watch (test.json's second selection).
pub fn other_best_weights(monitor: crate::config::Monitor) -> &'static str {
    match monitor {
        crate::config::Monitor::ValLoss => "best-val_accuracy.safetensors",
        crate::config::Monitor::ValAccuracy => "best-val_loss.safetensors",
    }
}
/// The optimizer's state beside `last.safetensors`, where lenet5 owns it (Adam).
pub const OPTIMIZER_STATE: &str = "optimizer.safetensors";

/// Where epoch `epoch`'s `name` (last weights, optimizer state) waits until `state.json` commits the epoch;
/// then it becomes `name`. A kill in between leaves `name` holding the epoch that `state.json` says.
pub fn staged(name: &str, epoch: usize) -> String {
    format!("{name}.epoch{epoch}.staged")
}

/// Locked while a process trains (or copies into) the run.
pub const LOCK_FILE: &str = ".lock";

/// test.json: the best checkpoint's evaluation at the top level (as before selections were added), and the
/// selections.
#[derive(serde::Serialize, serde::Deserialize)]
struct TestFile {
    #[serde(flatten)]
    headline: Evaluation,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    selections: Vec<Scored>,
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

    /// Creates exactly `path`; an existing run there is an error (resume it instead), and so is an existing
    /// directory with anything else in it, whose files a run's could silently replace.
    pub fn create_at(path: &Path) -> Result<Self> {
        if path.join(CONFIG_FILE).exists() {
            return Err(UsageError::error(format!(
                "{} already holds a run; continue it with `{} train --resume {0}`",
                path.display(),
                crate::command_name()
            )));
        }
        if let Some(name) = first_entry(path)? {
            return Err(UsageError::error(format!(
                "--run-dir {} is not empty (it holds {name}) and is not a run: give a new or empty directory",
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
                "no runs in {} ({e}); train one first with `{} train CONFIG`",
                runs_dir.display(),
                crate::command_name()
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
                "no runs in {}; train one first with `{} train CONFIG`",
                runs_dir.display(),
                crate::command_name()
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
        self.write_json(STATE_FILE, state)
    }

    /// Writes the test-set evaluation of the best checkpoint (`test.json`) with every checkpoint selection
    /// scored.
    pub fn write_test(&self, test: &Evaluation, selections: &[Scored]) -> Result<()> {
        self.write_json(
            TEST_FILE,
            &TestFile {
                headline: test.clone(),
                selections: selections.to_vec(),
            },
        )
    }

    /// Writes the clean training-split evaluation (`train_eval.json`).
    pub fn write_train_eval(&self, train: &Evaluation) -> Result<()> {
        self.write_json(TRAIN_EVAL_FILE, train)
    }

    /// The stored clean training-split evaluation, if the run has one (runs before it was added do not).
    pub fn train_eval(&self) -> Result<Option<Evaluation>> {
        read_json(&self.file(TRAIN_EVAL_FILE))
    }

    /// The stored test-set evaluation, if the run has one.
    pub fn test(&self) -> Result<Option<Evaluation>> {
        read_json(&self.file(TEST_FILE))
    }

    /// The checkpoint selections test.json scored (empty for runs made before they were).
    pub fn selections(&self) -> Result<Vec<Scored>> {
        let file: Option<TestFile> = read_json(&self.file(TEST_FILE))?;
        Ok(file.map(|f| f.selections).unwrap_or_default())
    }

    /// The fingerprint of the dataset the run trained on; `None` for runs made before it was recorded.
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>> {
        read_json(&self.file(DATASET_FILE))
    }

    pub fn write_fingerprint(&self, fingerprint: &Fingerprint) -> Result<()> {
        self.write_json(DATASET_FILE, fingerprint)
    }

    /// What made the run, one entry per training session (a resumed run may continue on other code).
    pub fn provenance(&self) -> Result<Vec<Provenance>> {
        Ok(read_json(&self.file(PROVENANCE_FILE))?.unwrap_or_default())
    }

    /// Adds this process's entry to `provenance.json`.
    pub fn record_provenance(&self, from_epoch: usize, device: &str) -> Result<()> {
        let mut sessions = self.provenance()?;
        sessions.push(Provenance {
            lenet5_version: crate::VERSION.to_string(),
            commit: crate::COMMIT.to_string(),
            device: device.to_string(),
            from_epoch,
            started_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        self.write_json(PROVENANCE_FILE, &sessions)
    }

    /// Writes `value` as the run's JSON file `name`, atomically.
    fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<()> {
        atomic::write(
            &self.file(name),
            serde_json::to_string_pretty(value)?.as_bytes(),
        )
    }

    /// Locks the run for this process until the returned guard is dropped; a second process gets an error.
    pub fn lock(&self) -> Result<std::fs::File> {
        let path = self.file(LOCK_FILE);
        let file = crate::sys::lock::open(&path)?;
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

/// One training session of a run: the code and device that trained its epochs after `from_epoch`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    pub lenet5_version: String,
    /// `git rev-parse HEAD` of the build (`-dirty` with uncommitted changes; `unknown` outside git).
    pub commit: String,
    pub device: String,
    pub from_epoch: usize,
    pub started_utc: String,
}

/// The first entry of an existing directory `path` (`None` when it is empty or absent); a path that exists
/// but is no directory is an error.
fn first_entry(path: &Path) -> Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    if !path.is_dir() {
        return Err(UsageError::error(format!(
            "--run-dir {} exists and is not a directory",
            path.display()
        )));
    }
    let mut entries = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?;
    Ok(entries
        .next()
        .transpose()
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .map(|e| e.file_name().to_string_lossy().into_owned()))
}

/// A JSON file of the run, or `None` if it is absent; unreadable contents are an error naming the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::sys::read::text(path, crate::sys::read::RUN_FILE_LIMIT)?;
    let value = serde_json::from_str(&text)
        .map_err(|e| UsageError::error(format!("{}: {e}", path.display())))?;
    Ok(Some(value))
}

/// A file's name without its extension (`configs/relu.yaml` → `relu`), or `fallback`: the default name of
/// a run (from its config) and of a sweep directory (from its sweep file).
pub fn stem(path: &Path, fallback: &str) -> String {
    path.file_stem()
        .map_or_else(|| fallback.into(), |s| s.to_string_lossy().into_owned())
}

/// `YYYYmmdd-HHMMSS` in UTC: run directories sort by start time.
pub fn utc_timestamp() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string()
}
