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
        };
        assert!(e.to_text().contains("loss: 1.235e-30\n"), "{}", e.to_text());
        e.loss = 123_456_789.0;
        assert!(e.to_text().contains("loss: 1.235e8\n"), "{}", e.to_text());
        e.loss = 0.0523;
        assert!(e.to_text().contains("loss: 0.0523\n"), "{}", e.to_text());
    }
}
