//! The dataset a run trained on, checked wherever the run is continued or scored: the fingerprint of the
//! files `data.dir` holds now against the one the run recorded when it started (`dataset.json`).

use crate::data::files;
use anyhow::Result;
use lenet5_lab::config::DataConfig;
use lenet5_lab::rundir::dir::RunDir;
use lenet5_lab::rundir::fingerprint::Fingerprint;

/// How the data `data.dir` holds now compares with what the run trained on.
pub enum DataCheck {
    /// The same files.
    Same,
    /// The run recorded no fingerprint (made before lenet5 recorded one, or stopped before its first
    /// session opened the data): here is the current data's, to record.
    Unrecorded(Fingerprint),
    /// Other files: which, and how.
    Differs(String),
}

/// Fingerprints the data `data` names and compares it with what `run` recorded.
pub fn check(run: &RunDir, data: &DataConfig) -> Result<DataCheck> {
    let now = files::fingerprint(data)?;
    Ok(match run.fingerprint()? {
        None => DataCheck::Unrecorded(now),
        Some(recorded) => match recorded.differences(&now) {
            None => DataCheck::Same,
            Some(diff) => DataCheck::Differs(format!(
                "the dataset in {} is not the one {} trained on ({diff})",
                data.dir().display(),
                run.path.display()
            )),
        },
    })
}
