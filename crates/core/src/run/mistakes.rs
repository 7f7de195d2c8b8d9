//! The test digits a model gets most wrong (fastai's top losses): each image's loss — −log of the softmax
//! probability of its true class —, the N highest, and a captioned grid of them with the normalisation
//! undone, for `lenet5 test --mistakes N`.

use super::evaluate::EVAL_BATCH;
use crate::data::{Split, denormalize};
use crate::nn::Net;
use lenet5_lab::grid::{Cell, ImageGrid};
use lenet5_lab::mistakes::Mistake;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// The `n` test images of `split` with the highest loss under `model` (eval mode), highest first.
pub fn top_losses(model: &Net, split: &Split, n: usize) -> Vec<Mistake> {
    let (losses, predicted, confidence) = tch::no_grad(|| {
        let mut parts = (vec![], vec![], vec![]);
        for start in (0..split.len()).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(split.len() - start);
            let ys = split.labels.narrow(0, start, len);
            let log_p = (model.forward_t(&split.images.narrow(0, start, len), false))
                .log_softmax(-1, Kind::Float);
            parts
                .0
                .push(-log_p.gather(1, &ys.unsqueeze(1), false).squeeze_dim(1));
            let (top, pred) = log_p.max_dim(1, false);
            parts.1.push(pred);
            parts.2.push(top.exp());
        }
        (
            Tensor::cat(&parts.0, 0),
            Tensor::cat(&parts.1, 0),
            Tensor::cat(&parts.2, 0),
        )
    });
    let k = (n as i64).min(split.len());
    let (worst, index) = losses.topk(k, 0, true, true);
    let host = |t: &Tensor| t.to_device(Device::Cpu);
    let as_f64 =
        |t: Tensor| -> Vec<f64> { Vec::try_from(host(&t).to_kind(Kind::Double)).expect("floats") };
    let as_i64 = |t: Tensor| -> Vec<i64> { Vec::try_from(host(&t)).expect("ints") };
    let (loss, index) = (as_f64(worst), as_i64(index.shallow_clone()));
    let picked = Tensor::from_slice(&index).to_device(split.labels.device());
    let label = as_i64(split.labels.index_select(0, &picked));
    let predicted = as_i64(predicted.index_select(0, &picked));
    let confidence = as_f64(confidence.index_select(0, &picked));
    (0..index.len())
        .map(|i| Mistake {
            index: index[i],
            label: label[i],
            predicted: predicted[i],
            confidence: confidence[i],
            loss: loss[i],
        })
        .collect()
}

/// The mistakes as a grid: each image as the eye sees it, captioned "true → predicted (confidence)".
pub fn grid(split: &Split, mistakes: &[Mistake], title: String) -> ImageGrid {
    let norm = &split.normalization;
    let cells = mistakes
        .iter()
        .map(|m| {
            let image = split.images.narrow(0, m.index, 1).to_device(Device::Cpu);
            let raw = denormalize(norm, &image).squeeze_dim(0);
            let (c, side) = (raw.size()[0], raw.size()[1]);
            let bytes = (raw.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8);
            Cell {
                side: side as u32,
                channels: c as u32,
                pixels: Vec::try_from(bytes.permute([1, 2, 0]).contiguous().flatten(0, -1))
                    .expect("bytes"),
                caption: m.caption(),
            }
        })
        .collect();
    ImageGrid {
        title,
        cells,
        columns: 8,
        scale: 3,
    }
}
