//! A scored split as a run directory keeps it (`test.json`, `train_eval.json`): loss, accuracy, top-3
//! accuracy, per-class accuracy, the confusion matrix and the calibration, and the text `lenet5 test` prints.

use super::calibration::Calibration;
use serde::{Deserialize, Serialize};

/// What scoring a model on one split found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub images: i64,
    /// Mean of the network's objective (`lenet5_core::nn::loss::objective`, without label smoothing), nats.
    pub loss: f64,
    pub accuracy: f64,
    pub top3_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<i64>>,
    /// How well the top-1 probabilities match the accuracy (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// The confusion matrix's largest off-diagonal cells, most first ([`most_confused`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub most_confused: Vec<Confused>,
    /// The calibration again after temperature scaling fitted on the validation split (test.json's headline
    /// only; beside the raw numbers, never replacing them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_scaled: Option<TemperatureScaled>,
}

/// Temperature scaling (Guo et al. 2017): the logits divided by one `temperature`, fitted by minimising the
/// validation split's NLL, and the split's calibration with them (the accuracy is unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureScaled {
    pub temperature: f64,
    pub calibration: Calibration,
}

/// A true digit taken for another, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confused {
    pub digit: usize,
    pub predicted: usize,
    pub count: i64,
}

/// How many pairs [`most_confused`] lists.
pub const MOST_CONFUSED: usize = 10;

/// The `k` largest off-diagonal cells of `confusion[true][predicted]` that are not zero, most first (ties:
/// the lower true digit, then the lower prediction).
pub fn most_confused(confusion: &[Vec<i64>], k: usize) -> Vec<Confused> {
    let mut cells: Vec<Confused> = (confusion.iter().enumerate())
        .flat_map(|(digit, row)| {
            (row.iter().enumerate())
                .filter(move |&(predicted, &count)| predicted != digit && count > 0)
                .map(move |(predicted, &count)| Confused {
                    digit,
                    predicted,
                    count,
                })
        })
        .collect();
    cells.sort_by_key(|c| std::cmp::Reverse(c.count));
    cells.truncate(k);
    cells
}

impl Evaluation {
    /// The human-readable report `lenet5 test` prints.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "images: {}\nloss: {}\naccuracy: {:.2}%\ntop-3 accuracy: {:.2}%\n\nper-class accuracy:\n",
            self.images,
            crate::number(self.loss),
            100.0 * self.accuracy,
            100.0 * self.top3_accuracy
        );
        if let Some(c) = &self.calibration {
            out = out.replace(
                "\n\nper-class",
                &format!(
                    "\ncalibration: NLL {}  Brier {}  ECE {:.2}% (15 bins)\n\nper-class",
                    crate::number(c.nll),
                    crate::number(c.brier),
                    100.0 * c.ece
                ),
            );
        }
        if let Some(t) = &self.temperature_scaled {
            let c = &t.calibration;
            out = out.replace(
                "\n\nper-class",
                &format!(
                    "\ntemperature-scaled (T = {:.3}, fitted on validation): NLL {}  Brier {}  ECE {:.2}%\n\nper-class",
                    t.temperature,
                    crate::number(c.nll),
                    crate::number(c.brier),
                    100.0 * c.ece
                ),
            );
        }
        for (c, acc) in self.per_class_accuracy.iter().enumerate() {
            out += &format!("  {c}: {:.2}%\n", 100.0 * acc);
        }
        out += "\nconfusion matrix (rows: true digit, columns: predicted):\n      ";
        out += &(0..self.confusion.len())
            .map(|c| format!("{c:>6}"))
            .collect::<String>();
        out += "\n";
        for (c, row) in self.confusion.iter().enumerate() {
            out += &format!("  {c:>2}: ");
            out += &row.iter().map(|v| format!("{v:>6}")).collect::<String>();
            out += "\n";
        }
        if !self.most_confused.is_empty() {
            let pairs: Vec<String> = (self.most_confused.iter())
                .map(|c| format!("{}→{} ×{}", c.digit, c.predicted, c.count))
                .collect();
            out += &format!("\nmost confused (true→predicted): {}\n", pairs.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_is_printed_in_a_readable_number_of_digits() {
        let mut e = Evaluation {
            images: 1,
            loss: 1.234_567_890_123e-30,
            accuracy: 1.0,
            top3_accuracy: 1.0,
            per_class_accuracy: vec![1.0],
            confusion: vec![vec![1]],
            calibration: None,
            most_confused: vec![],
            temperature_scaled: None,
        };
        assert!(e.to_text().contains("loss: 1.235e-30\n"), "{}", e.to_text());
        e.loss = 123_456_789.0;
        assert!(e.to_text().contains("loss: 1.235e8\n"), "{}", e.to_text());
        e.loss = 0.0523;
        assert!(e.to_text().contains("loss: 0.0523\n"), "{}", e.to_text());
    }

    #[test]
    fn the_most_confused_pairs_are_the_largest_off_diagonal_cells() {
        let confusion = vec![vec![50, 3, 0], vec![1, 40, 3], vec![7, 0, 60]];
        let pairs: Vec<(usize, usize, i64)> = most_confused(&confusion, 3)
            .iter()
            .map(|c| (c.digit, c.predicted, c.count))
            .collect();
        assert_eq!(pairs, [(2, 0, 7), (0, 1, 3), (1, 2, 3)]);
        assert_eq!(
            most_confused(&confusion, 10).len(),
            4,
            "zero cells are not confusions"
        );
        let e = Evaluation {
            images: 164,
            loss: 0.1,
            accuracy: 0.9,
            top3_accuracy: 1.0,
            per_class_accuracy: vec![0.9; 3],
            most_confused: most_confused(&confusion, 2),
            temperature_scaled: None,
            confusion,
            calibration: None,
        };
        assert!(
            e.to_text()
                .ends_with("most confused (true→predicted): 2→0 ×7, 0→1 ×3\n"),
            "{}",
            e.to_text()
        );
    }
}
