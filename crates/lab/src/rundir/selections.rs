//! A finished run's three checkpoint selections scored on the test set — the best validation loss, the best
//! validation accuracy, the last epoch — and each one's answer for every test image
//! (`predictions.csv.gz`), so that a report can put the test set's own sampling error beside the seeds'.

use crate::sys::atomic;
use anyhow::{Context, Result};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Which checkpoint of a run: how early stopping (as checkpoint selection) would pick it, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    BestValLoss,
    BestValAccuracy,
    Last,
}

impl Selection {
    pub const ALL: [Selection; 3] = [
        Selection::BestValLoss,
        Selection::BestValAccuracy,
        Selection::Last,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Selection::BestValLoss => "best_val_loss",
            Selection::BestValAccuracy => "best_val_accuracy",
            Selection::Last => "last",
        }
    }
}

/// One selection scored on the test set (an entry of test.json's `selections`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub selection: Selection,
    /// The epoch whose weights these are.
    pub epoch: usize,
    /// The checkpoint file in the run directory.
    pub checkpoint: String,
    pub loss: f64,
    pub accuracy: f64,
}

/// One selection's answer for every test image, in the test set's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAnswers {
    pub predicted: Vec<u8>,
    /// The softmax probability of the predicted class.
    pub confidence: Vec<f32>,
}

/// A run's `predictions.csv.gz`: the true labels and each selection's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub labels: Vec<u8>,
    pub columns: Vec<(Selection, ImageAnswers)>,
}

impl Predictions {
    /// The share of images `selection` got right.
    pub fn accuracy(&self, selection: Selection) -> Option<f64> {
        let (_, a) = self.columns.iter().find(|(s, _)| *s == selection)?;
        let right = a.predicted.iter().zip(&self.labels).filter(|(p, l)| p == l);
        Some(right.count() as f64 / self.labels.len().max(1) as f64)
    }

    /// Writes the table as gzip-compressed CSV (`image,label,<selection>,<selection>_p,…`), atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut csv = String::from("image,label");
        for (s, _) in &self.columns {
            csv += &format!(",{0},{0}_p", s.name());
        }
        csv += "\n";
        for (i, label) in self.labels.iter().enumerate() {
            csv += &format!("{i},{label}");
            for (_, a) in &self.columns {
                csv += &format!(",{},{:.4}", a.predicted[i], a.confidence[i]);
            }
            csv += "\n";
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(csv.as_bytes())?;
        atomic::write(path, &gz.finish()?)
    }

    /// Reads a table [`Predictions::write`] wrote.
    pub fn read(path: &Path) -> Result<Predictions> {
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let mut rows = csv::Reader::from_reader(GzDecoder::new(file));
        let header = rows.headers()?.clone();
        let selections: Vec<Selection> = header
            .iter()
            .skip(2)
            .step_by(2)
            .map(|name| {
                Selection::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .with_context(|| format!("{}: unknown column {name:?}", path.display()))
            })
            .collect::<Result<_>>()?;
        let mut table = Predictions {
            labels: vec![],
            columns: selections
                .iter()
                .map(|&s| {
                    (
                        s,
                        ImageAnswers {
                            predicted: vec![],
                            confidence: vec![],
                        },
                    )
                })
                .collect(),
        };
        for row in rows.records() {
            let row = row.with_context(|| format!("{}", path.display()))?;
            let field = |i: usize| row.get(i).unwrap_or("");
            let bad =
                |i: usize| format!("{}: row {:?}: column {i}", path.display(), row.position());
            table.labels.push(field(1).parse().with_context(|| bad(1))?);
            for (c, (_, a)) in table.columns.iter_mut().enumerate() {
                a.predicted
                    .push(field(2 + 2 * c).parse().with_context(|| bad(2 + 2 * c))?);
                a.confidence
                    .push(field(3 + 2 * c).parse().with_context(|| bad(3 + 2 * c))?);
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_reads_back_as_written_and_scores_its_columns() {
        let dir = std::env::temp_dir().join(format!("lenet5-predictions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("predictions.csv.gz");
        let answers = |predicted: Vec<u8>| ImageAnswers {
            confidence: predicted
                .iter()
                .map(|&p| 0.25 * (1 + p % 4) as f32)
                .collect(),
            predicted,
        };
        let table = Predictions {
            labels: vec![3, 1, 4, 1],
            columns: vec![
                (Selection::BestValLoss, answers(vec![3, 1, 4, 7])),
                (Selection::Last, answers(vec![3, 2, 2, 7])),
            ],
        };
        table.write(&path).unwrap();
        assert_eq!(Predictions::read(&path).unwrap(), table);
        assert_eq!(table.accuracy(Selection::BestValLoss), Some(0.75));
        assert_eq!(table.accuracy(Selection::Last), Some(0.25));
        assert_eq!(table.accuracy(Selection::BestValAccuracy), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
