//! Each layer's health after an epoch (`layers.csv`, `rundir::layers`), on a fixed probe batch — the first
//! [`PROBE`] validation images (training images when there is no validation split) — so that it costs one
//! small forward and backward pass per epoch and compares across runs: per weight tensor its norm, the probe
//! loss's gradient norm and the epoch's relative update; per activation layer the mean and spread of its
//! outputs and the share of saturated (sigmoid, tanh) or dead (ReLU) units. The model in eval mode.

use crate::data::Splits;
use crate::nn::loss::objective;
use crate::nn::{Net, Squash};
use lenet5_lab::rundir::layers::LayerRow;
use tch::nn::{ModuleT, VarStore};
use tch::{Kind, Reduction, Tensor};

/// Images in the probe batch.
pub const PROBE: i64 = 256;
/// How close to its bounds (as a share of the range) a sigmoid or tanh output counts as saturated.
const SATURATION: f64 = 0.02;

pub struct Health {
    images: Tensor,
    labels: Tensor,
    /// Each weight tensor as the epoch found it (a copy), by name.
    before: Vec<(String, Tensor)>,
}

impl Health {
    /// The probe batch, and the weights as they stand now (a new run's initial ones, a resumed run's last).
    pub fn new(vs: &VarStore, data: &Splits) -> Health {
        let split = match data.validation.is_empty() {
            true => &data.train,
            false => &data.validation,
        };
        let n = PROBE.min(split.len());
        let before = weights(vs)
            .into_iter()
            .map(|(k, w)| (k, w.copy()))
            .collect();
        Health {
            images: split.images.narrow(0, 0, n),
            labels: split.labels.narrow(0, 0, n),
            before,
        }
    }

    /// The rows of epoch `epoch` — every weight tensor's, then every activation layer's — and each weight
    /// tensor's probe gradient, by name.
    pub fn measure(
        &mut self,
        net: &Net,
        vs: &VarStore,
        epoch: usize,
    ) -> (Vec<LayerRow>, Vec<(String, Tensor)>) {
        let blank = |layer: String| LayerRow {
            epoch,
            layer,
            weight_norm: None,
            grad_norm: None,
            update_ratio: None,
            mean: None,
            std: None,
            saturated: None,
            dead: None,
        };
        let now = weights(vs);
        let loss = objective(
            net,
            &net.forward_t(&self.images, false),
            &self.labels,
            0.0,
            Reduction::Mean,
        );
        let tensors: Vec<&Tensor> = now.iter().map(|(_, w)| w).collect();
        let grads = Tensor::run_backward(&[loss], &tensors, false, false);
        let mut rows = vec![];
        for (((name, w), g), (_, before)) in now.iter().zip(&grads).zip(&self.before) {
            let norm = |t: &Tensor| f64::try_from(t.norm()).expect("a norm");
            rows.push(LayerRow {
                weight_norm: Some(norm(w)),
                grad_norm: Some(norm(g)),
                update_ratio: Some(tch::no_grad(|| norm(&(w - before))) / norm(before)),
                ..blank(name.clone())
            });
        }
        self.before = now.into_iter().map(|(k, w)| (k, w.copy())).collect();
        let (squash, names) = net.activated();
        for (name, out) in net.layers(&self.images) {
            if names.contains(&name) {
                rows.push(activation_row(blank(name.to_string()), &out, squash));
            }
        }
        let gradients = self
            .before
            .iter()
            .map(|(k, _)| k.clone())
            .zip(grads)
            .collect();
        (rows, gradients)
    }
}

/// The weight tensors (a layer's kernel or matrix, not biases or batch norm's scales), sorted by name.
fn weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = (vs.variables().into_iter())
        .filter(|(name, t)| name.ends_with(".weight") && t.dim() >= 2)
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// An activation layer's statistics over the probe batch.
fn activation_row(row: LayerRow, out: &Tensor, squash: Squash) -> LayerRow {
    let scalar = |t: Tensor| f64::try_from(t).expect("a number");
    let share = |mask: Tensor| scalar(mask.to_kind(Kind::Double).mean(Kind::Double));
    let (saturated, dead) = match squash {
        Squash::Sigmoid => (
            Some(share(
                out.lt(SATURATION).logical_or(&out.gt(1.0 - SATURATION)),
            )),
            None,
        ),
        Squash::Tanh { bound } => (Some(share(out.abs().gt(bound * (1.0 - SATURATION)))), None),
        // A unit is a channel at a position (or a neuron): dead when no probe image makes it positive.
        Squash::Relu => (None, Some(share(out.amax(0, false).le(0.0)))),
    };
    LayerRow {
        mean: Some(scalar(out.mean(Kind::Double))),
        std: Some(scalar(out.to_kind(Kind::Double).std(true))),
        saturated,
        dead,
        ..row
    }
}
