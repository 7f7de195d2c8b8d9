//! The training objective on a network's outputs, shared by training and evaluation: cross-entropy (with
//! label smoothing) on logits, or the 1998 paper's loss on its RBF outputs; and the L1 penalty.

use crate::nn::Net;
use tch::{Kind, Reduction, Tensor};

/// The network's own objective on `outputs` for `labels`.
pub fn objective(
    net: &Net,
    outputs: &Tensor,
    labels: &Tensor,
    label_smoothing: f64,
    reduction: Reduction,
) -> Tensor {
    match net {
        Net::Lenet1998(_) => crate::nn::lenet1998::map_loss(outputs, labels, reduction),
        _ => outputs.cross_entropy_loss::<Tensor>(labels, None, reduction, -100, label_smoothing),
    }
}

/// λ-free L1 term: Σ|w| over the network's weight tensors (not biases).
pub fn l1_penalty(net: &Net) -> Tensor {
    net.weights()
        .iter()
        .map(|w| w.abs().sum(Kind::Float))
        .reduce(|a, b| a + b)
        .expect("every network has weights")
}
