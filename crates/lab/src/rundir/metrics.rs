//! `metrics.csv`: one row per completed epoch, written and fsynced as soon as the epoch ends — before
//! `state.json`, the run's commit point, is written — so after a crash, a kill or a power loss the file
//! holds at least every epoch the state counts. On resume the two are checked ([`agreement`]): rows past
//! the state's epoch are dropped (that epoch is trained again), and so is a last row that a kill tore in
//! the middle; a state ahead of its rows is refused.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
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

/// A file of per-epoch rows: its header, and which epoch a row belongs to (what a resume keeps).
pub trait Row: Serialize + DeserializeOwned {
    const HEADER: &'static [&'static str];
    fn epoch(&self) -> usize;
}

impl Row for EpochRow {
    const HEADER: &'static [&'static str] = &HEADER;
    fn epoch(&self) -> usize {
        self.epoch
    }
}

/// Appends rows to a CSV file, flushing each.
pub struct RowWriter<R: Row> {
    writer: csv::Writer<File>,
    _rows: std::marker::PhantomData<R>,
}

/// `metrics.csv`'s writer.
pub type MetricsWriter = RowWriter<EpochRow>;

impl<R: Row> RowWriter<R> {
    /// Creates `path` with only the header (done before training starts, so an unwritable run directory
    /// fails at once).
    pub fn create(path: &Path) -> Result<Self> {
        crate::sys::atomic::write(path, &rows_csv::<R>(&[])?)?;
        Self::open_append(path)
    }

    /// Reopens `path` for appending after keeping only the rows with `epoch <= last_epoch` (a kill between
    /// writing a row and checkpointing its epoch leaves one row too many; that epoch is trained again).
    /// A missing file (a run stopped before it was written) starts empty.
    pub fn resume(path: &Path, last_epoch: usize) -> Result<Self> {
        if !path.exists() {
            return Self::create(path);
        }
        let kept: Vec<R> = read_rows::<R>(path)?
            .into_iter()
            .filter(|r| r.epoch() <= last_epoch)
            .collect();
        crate::sys::atomic::write(path, &rows_csv(&kept)?)?;
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
            _rows: std::marker::PhantomData,
        })
    }

    /// Appends `rows` and makes them durable (fsync), so a `state.json` written after them never counts an
    /// epoch the file lacks.
    pub fn append(&mut self, rows: &[R]) -> Result<()> {
        rows.iter().try_for_each(|r| self.writer.serialize(r))?;
        self.writer.flush()?;
        self.writer.get_ref().sync_data()?;
        Ok(())
    }
}

/// Checks that `path` holds exactly epochs `1..=last_epoch` (the state's), plus perhaps rows of epochs after
/// it that a crash left before the state was saved. Returns those later epochs, which a resume drops and
/// trains again; a missing file holds no epochs. Rows missing, out of order or repeated are an error naming
/// the file: the run's files disagree and resuming would leave a hole or a duplicate.
pub fn agreement(path: &Path, last_epoch: usize) -> Result<Vec<usize>> {
    let epochs: Vec<usize> = if path.exists() {
        read(path)?.iter().map(|r| r.epoch).collect()
    } else {
        vec![]
    };
    let expected: Vec<usize> = (1..=epochs.len()).collect();
    if epochs != expected || epochs.len() < last_epoch {
        let held = match epochs.as_slice() {
            [] => "no epochs".to_string(),
            [first, .., last] if epochs == expected => format!("epochs {first} to {last}"),
            [only] => format!("epoch {only}"),
            _ => format!("epochs {epochs:?}"),
        };
        return Err(crate::UsageError::error(format!(
            "{} holds {held}, but state.json says {last_epoch} completed: the run's files disagree (a crash before metrics.csv reached the disk?); it cannot be resumed without a hole, so start it again",
            path.display()
        )));
    }
    Ok(epochs[last_epoch..].to_vec())
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
    rows_csv(rows)
}

/// The CSV bytes of `R`'s header and `rows`.
pub fn rows_csv<R: Row>(rows: &[R]) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(vec![]);
    writer.write_record(R::HEADER)?;
    for row in rows {
        writer.serialize(row)?;
    }
    Ok(writer.into_inner()?)
}

/// Reads every row of a metrics file ([`read_rows`]).
pub fn read(path: &Path) -> Result<Vec<EpochRow>> {
    read_rows(path)
}

/// Reads every row of a per-epoch file. A last line without its newline is not a row: an append that a
/// kill tore, or one in progress while a report reads a training run (rows are appended whole, newline
/// last).
pub fn read_rows<R: Row>(path: &Path) -> Result<Vec<R>> {
    let bytes = crate::sys::read::bytes(path, crate::sys::read::RUN_FILE_LIMIT)?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut reader = csv::Reader::from_reader(&bytes[..whole]);
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.with_context(|| format!("{}: bad row {}", path.display(), i + 2)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_not_a_row_and_resume_drops_it() {
        let dir = std::env::temp_dir().join(format!("lenet5-metrics-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        let row = |epoch| EpochRow {
            epoch,
            lr: 0.001,
            loss: 0.5,
            accuracy: 0.9,
            val_loss: 0.4,
            val_accuracy: 0.91,
            seconds: 1.0,
        };
        let mut bytes = to_csv(&[row(1), row(2)]).unwrap();
        bytes.extend_from_slice(b"3,0.001,0.4");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap(), [row(1), row(2)]);
        assert_eq!(agreement(&path, 2).unwrap(), Vec::<usize>::new());
        let mut writer = MetricsWriter::resume(&path, 2).unwrap();
        writer.append(&[row(3)]).unwrap();
        assert_eq!(read(&path).unwrap(), [row(1), row(2), row(3)]);
        // Only the last line can be torn: a broken row before it is still an error naming the file.
        std::fs::write(
            &path,
            b"epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n1,x\n2,0.1,1,1,1,1,1\n",
        )
        .unwrap();
        let e = format!("{:#}", read(&path).unwrap_err());
        assert!(e.contains("metrics.csv: bad row 2"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
