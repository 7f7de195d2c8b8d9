//! How well a scored split's top-1 probabilities match its accuracy: negative log-likelihood, Brier score
//! and the expected calibration error over 15 equal-width confidence bins (L1), binned exactly as
//! torchmetrics' `multiclass_calibration_error` bins them, with each bin's count, mean confidence and
//! accuracy for a reliability diagram.

use serde::{Deserialize, Serialize};

/// Equal-width confidence bins, as torchmetrics' default.
pub const BINS: usize = 15;

/// A split's calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Mean −log of the softmax probability of the true class, nats.
    pub nll: f64,
    /// Mean over images of Σ_k (p_k − 1[k = true])² (the multi-class Brier score, in [0, 2]).
    pub brier: f64,
    /// Σ_b (n_b / N) · |accuracy_b − confidence_b| over the bins.
    pub ece: f64,
    pub bins: Vec<Bin>,
}

/// One confidence bin: [lower, upper), and a last one holding confidences of exactly 1 (torchmetrics').
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean top-1 probability of its images (0 when empty).
    pub confidence: f64,
    /// Share of its images predicted right (0 when empty).
    pub accuracy: f64,
}

impl Calibration {
    /// From each image's top-1 probability and whether it was right, and the sums of NLL and Brier terms.
    pub fn new(confidence: &[f32], correct: &[bool], (nll_sum, brier_sum): (f64, f64)) -> Self {
        let edges = boundaries();
        let mut sums = vec![(0u64, 0.0f64, 0u64); BINS + 1];
        for (&c, &right) in confidence.iter().zip(correct) {
            let bin = &mut sums[bin_index(c, &edges)];
            *bin = (bin.0 + 1, bin.1 + f64::from(c), bin.2 + u64::from(right));
        }
        let n = confidence.len().max(1) as f64;
        let bins: Vec<Bin> = (sums.iter().enumerate())
            .map(|(i, &(count, conf, right))| Bin {
                lower: f64::from(edges[i]),
                upper: f64::from(edges[(i + 1).min(BINS)]),
                count,
                confidence: if count > 0 { conf / count as f64 } else { 0.0 },
                accuracy: if count > 0 {
                    right as f64 / count as f64
                } else {
                    0.0
                },
            })
            .collect();
        let ece = (bins.iter())
            .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
            .sum();
        Calibration {
            nll: nll_sum / n,
            brier: brier_sum / n,
            ece,
            bins,
        }
    }
}

/// torch.linspace(0, 1, BINS + 1) in float32, bit for bit as torch's CPU kernel computes it: from both
/// ends, the upper half as one fused multiply-add (1 − k·step rounded once).
fn boundaries() -> Vec<f32> {
    let steps = BINS + 1;
    let step = 1.0f32 / BINS as f32;
    (0..steps)
        .map(|i| match i < steps / 2 {
            true => i as f32 * step,
            false => ((steps - 1 - i) as f32).mul_add(-step, 1.0),
        })
        .collect()
}

/// torch.bucketize(c, boundaries, right=True) − 1: the number of boundaries ≤ c, less one (so a
/// confidence of exactly 1 lands in a bin of its own, index BINS).
fn bin_index(c: f32, edges: &[f32]) -> usize {
    edges.iter().filter(|&&b| b <= c).count().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ece_is_torchmetrics_documented_example() {
        // multiclass_calibration_error(preds, target=[0, 1, 2, 0], num_classes=3, n_bins=3, norm='l1') = 0.2000
        // with top-1 probabilities 0.55, 0.55, 0.60, 0.90, right for the last two. With 15 bins: 0.55 and 0.55
        // share [0.533, 0.6), 0.60 starts [0.6, 0.667), 0.90 is [0.867, 0.933).
        let c = Calibration::new(
            &[0.55, 0.55, 0.60, 0.90],
            &[false, false, true, true],
            (0.0, 0.0),
        );
        let expected = 0.5 * 0.55 + 0.25 * 0.4 + 0.25 * 0.1;
        assert!((c.ece - expected).abs() < 1e-7, "{}", c.ece);
        assert_eq!(c.bins.len(), 16);
        let counts: Vec<u64> = c.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts[8..14], [2, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn a_certain_answer_has_a_bin_of_its_own_and_zero_is_the_first() {
        let c = Calibration::new(&[1.0, 1.0, 0.0], &[true, false, false], (3.0, 1.5));
        assert_eq!((c.bins[15].count, c.bins[15].accuracy), (2, 0.5));
        assert_eq!(c.bins[0].count, 1);
        assert!((c.ece - (2.0 / 3.0 * 0.5)).abs() < 1e-12);
        assert_eq!((c.nll, c.brier), (1.0, 0.5));
    }

    #[test]
    fn boundaries_are_torchs_float32_linspace() {
        // torch.linspace(0, 1, 16) (torch 2.13, CPU), as little-endian float32 bytes.
        let torch = [
            "00000000", "8988883d", "8988083e", "cecc4c3e", "8988883e", "abaaaa3e", "cecccc3e",
            "f0eeee3e", "8888083f", "9999193f", "aaaa2a3f", "bcbb3b3f", "cdcc4c3f", "dedd5d3f",
            "efee6e3f", "0000803f",
        ];
        let ours: Vec<String> = (boundaries().iter())
            .map(|b| b.to_le_bytes().iter().map(|x| format!("{x:02x}")).collect())
            .collect();
        assert_eq!(ours, torch);
        // torch.bucketize(c, that, right=True) - 1 for c = 0.55, 0.9, 7/15, 8/15, 1, 0 (float32).
        let edges = boundaries();
        let got: Vec<usize> = [0.55f32, 0.9, 7.0 / 15.0, 8.0 / 15.0, 1.0, 0.0]
            .iter()
            .map(|&c| bin_index(c, &edges))
            .collect();
        assert_eq!(got, [8, 13, 6, 8, 15, 0]);
    }
}
