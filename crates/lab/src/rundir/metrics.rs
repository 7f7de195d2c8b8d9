//! `metrics.csv`: one row per completed epoch, flushed as soon as the epoch ends, so a crash or a kill loses
//! at most the epoch in progress. On resume, rows past the last checkpointed epoch are dropped first.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// One epoch's numbers, as metrics.csv holds them. `loss` and `val_loss` are the same quantity — the
/// network's plain objective (cross-entropy, without label smoothing or the L1 term) — on the training
/// batches (averaged while the weights change) and on the validation split. `lr` is the learning rate used
/// during the epoch, `seconds` its wall time (training and validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

/// Appends rows to a CSV file, flushing each.
pub struct MetricsWriter {
    writer: csv::Writer<File>,
}

impl MetricsWriter {
    /// Creates `path` with only the header (done before training starts, so an unwritable run directory
    /// fails at once).
    pub fn create(path: &Path) -> Result<Self> {
        crate::sys::atomic::write(path, &to_csv(&[])?)?;
        Self::open_append(path)
    }

    /// Reopens `path` for appending after keeping only the rows with `epoch <= last_epoch` (a kill between
    /// writing a row and checkpointing its epoch leaves one row too many; that epoch is trained again).
    /// A missing file (a run stopped before it was written) starts empty.
    pub fn resume(path: &Path, last_epoch: usize) -> Result<Self> {
        if !path.exists() {
            return Self::create(path);
        }
        let kept: Vec<EpochRow> = read(path)?
            .into_iter()
            .filter(|r| r.epoch <= last_epoch)
            .collect();
        crate::sys::atomic::write(path, &to_csv(&kept)?)?;
        Self::open_append(path)
    }

    fn open_append(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file),
        })
    }

    pub fn append(&mut self, row: &EpochRow) -> Result<()> {
        self.writer.serialize(row)?;
        self.writer.flush()?;
        Ok(())
    }
}

const HEADER: [&str; 7] = [
    "epoch",
    "lr",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
];

/// The CSV bytes of a header and `rows`.
pub fn to_csv(rows: &[EpochRow]) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(vec![]);
    writer.write_record(HEADER)?;
    for row in rows {
        writer.serialize(row)?;
    }
    Ok(writer.into_inner()?)
}

/// Reads every row of a metrics file.
pub fn read(path: &Path) -> Result<Vec<EpochRow>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.with_context(|| format!("{}: bad row {}", path.display(), i + 2)))
        .collect()
}
