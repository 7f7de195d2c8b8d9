//! Scores a model on a split: loss, accuracy, top-3 accuracy, per-class accuracy, the confusion matrix and
//! the calibration (NLL, Brier, ECE).
//! Shared by training (validation) and `test`; the test set's scoring also keeps each image's answer. Runs without gradients in large batches and accumulates on
//! the device, reading back to the host once.

use crate::data::{NUM_CLASSES, Split};
use crate::nn::Net;
use crate::nn::loss::objective;
use lenet5_lab::rundir::calibration::Calibration;
use lenet5_lab::rundir::evaluation::{Evaluation, MOST_CONFUSED, most_confused};
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
    let device = split.labels.device();
    let mut sums = Sums::new(device);
    let mut answers = vec![];
    tch::no_grad(|| {
        for start in (0..split.len()).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(split.len() - start);
            let xs = split.images.narrow(0, start, len);
            let ys = split.labels.narrow(0, start, len);
            let logits = model.forward_t(&xs, false);
            sums.loss += objective(model, &logits, &ys, 0.0, Reduction::Sum).to_kind(Kind::Double);
            let answer = sums.add(&logits, &ys);
            if keep {
                answers.push(answer);
            }
        }
    });
    let answers = keep.then(|| image_answers(&answers));
    (sums.tally(split.len()), answers)
}

/// An evaluation's running sums, on the device until [`Sums::tally`] reads them back once.
struct Sums {
    loss: Tensor,
    top3: Tensor,
    confusion: Tensor,
    /// Σ −log p(true class) and Σ_k (p_k − 1[k = true])².
    nll: Tensor,
    brier: Tensor,
    /// Each batch's top-1 probability and whether it was right.
    confidence: Vec<Tensor>,
    correct: Vec<Tensor>,
}

impl Sums {
    fn new(device: tch::Device) -> Self {
        let zero = |kind| Tensor::zeros([], (kind, device));
        Sums {
            loss: zero(Kind::Double),
            top3: zero(Kind::Int64),
            confusion: Tensor::zeros([NUM_CLASSES * NUM_CLASSES], (Kind::Int64, device)),
            nll: zero(Kind::Double),
            brier: zero(Kind::Double),
            confidence: vec![],
            correct: vec![],
        }
    }

    /// Adds a batch's logits for labels `ys`; returns its (predicted class, top-1 probability).
    fn add(&mut self, logits: &Tensor, ys: &Tensor) -> (Tensor, Tensor) {
        let (_, top) = logits.topk(3, -1, true, true);
        self.top3 += top.eq_tensor(&ys.unsqueeze(1)).sum(Kind::Int64);
        let pred = top.select(1, 0);
        self.confusion +=
            (ys * NUM_CLASSES + &pred).bincount::<Tensor>(None, NUM_CLASSES * NUM_CLASSES);
        let log_p = logits.to_kind(Kind::Double).log_softmax(-1, Kind::Double);
        self.nll -= log_p.gather(1, &ys.unsqueeze(1), false).sum(Kind::Double);
        let p = log_p.exp();
        let truth = ys.one_hot(NUM_CLASSES).to_kind(Kind::Double);
        self.brier += (&p - truth).square().sum(Kind::Double);
        let top1 = logits
            .softmax(-1, Kind::Float)
            .gather(1, &pred.unsqueeze(1), false)
            .squeeze_dim(1);
        self.confidence.push(top1.shallow_clone());
        self.correct.push(pred.eq_tensor(ys));
        (pred, top1)
    }

    /// The sums read back, as an [`Evaluation`] of `n` images.
    fn tally(self, n: i64) -> Evaluation {
        let host = |parts: &[Tensor]| match parts.is_empty() {
            true => Tensor::zeros([0], (Kind::Float, tch::Device::Cpu)),
            false => Tensor::cat(parts, 0).to_device(tch::Device::Cpu),
        };
        let confidence: Vec<f32> = Vec::try_from(host(&self.confidence)).expect("float vector");
        let correct: Vec<bool> = Vec::try_from(host(&self.correct)).expect("bool vector");
        let nll = f64::try_from(&self.nll).expect("scalar");
        let brier = f64::try_from(&self.brier).expect("scalar");
        let calibration = Calibration::new(&confidence, &correct, (nll, brier));
        let mut evaluation = tally(n, self.loss, self.top3, self.confusion);
        evaluation.calibration = Some(calibration);
        evaluation.most_confused = most_confused(&evaluation.confusion, MOST_CONFUSED);
        evaluation
    }
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
        calibration: None,
        most_confused: vec![],
        temperature_scaled: None,
    }
}
