//! Scores a model on a split: loss, accuracy, top-3 accuracy, per-class accuracy and the confusion matrix.
//! Shared by training (validation) and `test`; the test set's scoring also keeps each image's answer. Runs without gradients in large batches and accumulates on
//! the device, reading back to the host once.

use crate::data::{NUM_CLASSES, Split};
use crate::nn::Net;
use crate::nn::loss::objective;
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::rundir::selections::ImageAnswers;
use tch::nn::ModuleT;
use tch::{Kind, Reduction, Tensor};

/// Batch size for evaluation: large, since no activations are kept for backward.
pub const EVAL_BATCH: i64 = 2000;

/// Evaluates `model` on `split` in eval mode. `loss` is the network's own objective (cross-entropy, or the
/// 1998 paper's loss for that variant) without label smoothing.
pub fn evaluate(model: &Net, split: &Split) -> Evaluation {
    score(model, split, false).0
}

/// [`evaluate`], and each image's answer (the predicted class and its softmax probability).
pub fn evaluate_with_answers(model: &Net, split: &Split) -> (Evaluation, ImageAnswers) {
    let (evaluation, answers) = score(model, split, true);
    (evaluation, answers.expect("kept"))
}

fn score(model: &Net, split: &Split, keep: bool) -> (Evaluation, Option<ImageAnswers>) {
    let n = split.len();
    let device = split.labels.device();
    let classes = NUM_CLASSES;
    let mut answers = vec![];
    let (loss_sum, top3, confusion) = tch::no_grad(|| {
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut top3 = Tensor::zeros([], (Kind::Int64, device));
        let mut confusion = Tensor::zeros([classes * classes], (Kind::Int64, device));
        for start in (0..n).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(n - start);
            let xs = split.images.narrow(0, start, len);
            let ys = split.labels.narrow(0, start, len);
            let logits = model.forward_t(&xs, false);
            loss_sum += objective(model, &logits, &ys, 0.0, Reduction::Sum).to_kind(Kind::Double);
            let (_, top) = logits.topk(3, -1, true, true);
            top3 += top.eq_tensor(&ys.unsqueeze(1)).sum(Kind::Int64);
            let pred = top.select(1, 0);
            confusion += (&ys * classes + &pred).bincount::<Tensor>(None, classes * classes);
            if keep {
                let p = logits
                    .softmax(-1, Kind::Float)
                    .gather(1, &pred.unsqueeze(1), false);
                answers.push((pred, p.squeeze_dim(1)));
            }
        }
        (loss_sum, top3, confusion)
    });
    let answers = keep.then(|| image_answers(&answers));
    (tally(n, loss_sum, top3, confusion), answers)
}

/// The batches' (predicted class, probability) tensors as one host-side list.
fn image_answers(batches: &[(Tensor, Tensor)]) -> ImageAnswers {
    let cat = |i: usize| {
        let parts: Vec<&Tensor> = batches
            .iter()
            .map(|b| if i == 0 { &b.0 } else { &b.1 })
            .collect();
        Tensor::cat(&parts, 0).to_device(tch::Device::Cpu)
    };
    let predicted: Vec<i64> = Vec::try_from(cat(0)).expect("int64 vector");
    ImageAnswers {
        predicted: predicted.into_iter().map(|p| p as u8).collect(),
        confidence: Vec::try_from(cat(1)).expect("float vector"),
    }
}

/// The device-side sums read back once, as an [`Evaluation`] of `n` images.
fn tally(n: i64, loss_sum: Tensor, top3: Tensor, confusion: Tensor) -> Evaluation {
    let classes = NUM_CLASSES;
    let confusion: Vec<i64> =
        Vec::try_from(confusion.to_device(tch::Device::Cpu)).expect("int64 vector");
    let confusion: Vec<Vec<i64>> = confusion
        .chunks(classes as usize)
        .map(<[i64]>::to_vec)
        .collect();
    let correct: i64 = (0..classes as usize).map(|c| confusion[c][c]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: i64 = row.iter().sum();
            if total == 0 {
                f64::NAN
            } else {
                row[c] as f64 / total as f64
            }
        })
        .collect();
    let denom = n.max(1) as f64;
    Evaluation {
        images: n,
        loss: f64::try_from(loss_sum).expect("scalar") / denom,
        accuracy: correct as f64 / denom,
        top3_accuracy: i64::try_from(top3).expect("scalar") as f64 / denom,
        per_class_accuracy,
        confusion,
    }
}
