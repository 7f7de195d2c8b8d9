//! A run's weights on disk: safetensors files with the seed's PyTorch names, written atomically, and read
//! back only when they hold exactly the tensors the model has. The file names are the run directory's
//! ([`lenet5_lab::rundir::dir`]).

use crate::nn::optim::Optimizer;
use anyhow::{Context, Result};
use lenet5_lab::UsageError;
use lenet5_lab::rundir::dir::{self, LAST_WEIGHTS, OPTIMIZER_STATE, RunDir};
use lenet5_lab::sys::atomic;
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;
use tch::nn::VarStore;

/// Saves named tensors (a model's variables) as `name` in the run, atomically.
pub fn save(run: &RunDir, tensors: &[(String, Tensor)], name: &str) -> Result<()> {
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    atomic::write_with(&run.file(name), |tmp| {
        Ok(Tensor::write_safetensors(&named, tmp)?)
    })
}

/// Epoch `epoch`'s last weights and, where lenet5 owns it, the optimizer state that goes with them, staged
/// ([`dir::staged`]): they replace `last.safetensors` and `optimizer.safetensors` only once `state.json`
/// has committed the epoch ([`commit_last`]), so a kill between the two never pairs a state with the
/// weights of the epoch after it.
pub fn save_last(
    run: &RunDir,
    weights: &[(String, Tensor)],
    optimizer: Option<&[(String, Tensor)]>,
    epoch: usize,
) -> Result<()> {
    save(run, weights, &dir::staged(LAST_WEIGHTS, epoch))?;
    match optimizer {
        Some(state) => save(run, state, &dir::staged(OPTIMIZER_STATE, epoch)),
        None => Ok(()),
    }
}

/// After `state.json` says `epoch` completed: its staged files become the last weights and optimizer
/// state, and staged files of any other epoch (one a kill left uncommitted) are removed. Run again on
/// resume, it finishes what a kill between the state and the renames left.
pub fn commit_last(run: &RunDir, epoch: usize) -> Result<()> {
    for name in [LAST_WEIGHTS, OPTIMIZER_STATE] {
        let staged = run.file(&dir::staged(name, epoch));
        if staged.exists() {
            std::fs::rename(&staged, run.file(name))
                .with_context(|| format!("cannot rename {}", staged.display()))?;
        }
    }
    for entry in std::fs::read_dir(&run.path)?.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".staged") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Puts a resumed run's model and optimizer where [`save_last`] left them, after `epoch` completed epochs.
/// A run stopped before anything was saved starts from its (seeded, hence identical) initial weights; one
/// whose epochs were saved but whose weights are gone (copied without its `.safetensors`, say) cannot be
/// continued, and says so instead of training on from fresh weights.
pub fn restore(run: &RunDir, vs: &mut VarStore, opt: &mut Optimizer, epoch: usize) -> Result<()> {
    commit_last(run, epoch)?;
    let weights = run.file(LAST_WEIGHTS);
    if !weights.exists() {
        if epoch > 0 {
            return Err(UsageError::error(format!(
                "{} stopped after epoch {epoch} but has no {LAST_WEIGHTS}: its epochs cannot be continued; delete the run directory to train it again",
                run.path.display()
            )));
        }
        return Ok(());
    }
    load(vs, &weights)?;
    let path = run.file(OPTIMIZER_STATE);
    if path.exists() {
        opt.load_state(&read(&path)?)
            .map_err(|e| UsageError::error(format!("{}: {e}", path.display())))?;
    } else if opt.state().is_some() {
        eprintln!("note: no {OPTIMIZER_STATE} in the run; the optimizer restarts from zero state");
    }
    Ok(())
}

/// Every tensor of a safetensors file, by name; an unreadable file, or one that is not a regular file of a
/// checkpoint's size, is an error naming it.
fn read(path: &Path) -> Result<HashMap<String, Tensor>> {
    lenet5_lab::sys::read::check_regular(path, lenet5_lab::sys::read::CHECKPOINT_LIMIT)?;
    let tensors = Tensor::read_safetensors(path).map_err(|e| {
        UsageError::error(format!(
            "{}: not a readable safetensors file ({e})",
            path.display()
        ))
    })?;
    Ok(tensors.into_iter().collect())
}

/// Loads weights into `vs` from a safetensors file, checking first that the file has exactly the tensors
/// the model has, with the same shapes, so a foreign or truncated file is an error naming the tensor.
pub fn load(vs: &mut VarStore, path: &Path) -> Result<()> {
    let bad = |msg: String| UsageError::error(format!("{}: {msg}", path.display()));
    if !path.exists() {
        return Err(bad("no such checkpoint file".into()));
    }
    let tensors = read(path)?;
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
