//! The test digits a model gets most wrong, as rows: `mistakes.csv` and each image's caption in the grid
//! (`lenet5 test --mistakes N`; the losses themselves are computed by the core crate).

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// Where `lenet5 test RUN --mistakes N` writes, inside the run's directory (for its own scoring).
pub const DIR: &str = "mistakes";
/// The captioned grid in that directory; `serve` shows it.
pub const GRID_FILE: &str = "mistakes.png";
/// The rows, beside it.
pub const CSV_FILE: &str = "mistakes.csv";

/// One of the worst-scored test images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mistake {
    /// Its index in the test set.
    pub index: i64,
    pub label: i64,
    pub predicted: i64,
    /// The softmax probability of `predicted`.
    pub confidence: f64,
    /// −log p(label), nats.
    pub loss: f64,
}

impl Mistake {
    /// "true → predicted (confidence)", as the grid captions it.
    pub fn caption(&self) -> String {
        format!(
            "{} → {} ({:.0}%)",
            self.label,
            self.predicted,
            100.0 * self.confidence
        )
    }
}

/// `mistakes.csv`: a header, then one row per image in the given order.
pub fn to_csv(mistakes: &[Mistake]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    mistakes.iter().try_for_each(|m| w.serialize(m))?;
    Ok(w.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_captions() {
        let m = Mistake {
            index: 7,
            label: 4,
            predicted: 9,
            confidence: 0.876,
            loss: 2.5,
        };
        let csv = String::from_utf8(to_csv(std::slice::from_ref(&m)).unwrap()).unwrap();
        assert_eq!(
            csv,
            "index,label,predicted,confidence,loss\n7,4,9,0.876,2.5\n"
        );
        assert_eq!(m.caption(), "4 → 9 (88%)");
    }
}
