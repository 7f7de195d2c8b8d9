//! Temperature scaling (Guo et al. 2017): one scalar T fitted on the validation split by minimising the NLL
//! of softmax(logits / T) — by Newton's method on β = 1/T, in which the NLL is convex — and the test set's
//! calibration with logits / T, reported beside the raw numbers. Dividing by T keeps every argmax, so the
//! accuracy is unchanged; only the confidences move.

use super::evaluate::EVAL_BATCH;
use crate::data::{NUM_CLASSES, Split};
use crate::nn::Net;
use lenet5_lab::rundir::calibration::Calibration;
use lenet5_lab::rundir::evaluation::TemperatureScaled;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

/// β = 1/T is kept within [1/MAX_T, MAX_T]: beyond, the fit says the logits carry no scale at all.
const MAX_T: f64 = 1000.0;

/// `model`'s logits on `split` (eval mode), `[N, 10]` in double precision.
pub fn logits(model: &Net, split: &Split) -> Tensor {
    tch::no_grad(|| {
        let parts: Vec<Tensor> = (0..split.len())
            .step_by(EVAL_BATCH as usize)
            .map(|start| {
                let len = EVAL_BATCH.min(split.len() - start);
                model
                    .forward_t(&split.images.narrow(0, start, len), false)
                    .to_kind(Kind::Double)
            })
            .collect();
        Tensor::cat(&parts, 0)
    })
}

/// The temperature that minimises the mean NLL of `logits` for `labels`.
pub fn fit(logits: &Tensor, labels: &Tensor) -> f64 {
    let true_logit = logits.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    let mut beta = 1.0;
    for _ in 0..100 {
        // d/dβ NLL = mean(E_p[z] − z_y), d²/dβ² = mean(Var_p[z]), p = softmax(β z).
        let p = (logits * beta).softmax(-1, Kind::Double);
        let mean_z = (&p * logits).sum_dim_intlist(-1, false, Kind::Double);
        let var_z =
            (&p * logits.square()).sum_dim_intlist(-1, false, Kind::Double) - mean_z.square();
        let slope = f64::try_from((&mean_z - &true_logit).mean(Kind::Double)).expect("a number");
        let curvature = f64::try_from(var_z.mean(Kind::Double)).expect("a number");
        if curvature <= 0.0 || slope.abs() < 1e-12 {
            break;
        }
        beta = (beta - slope / curvature).clamp(1.0 / MAX_T, MAX_T);
    }
    1.0 / beta
}

/// `logits / temperature`'s calibration for `labels` (as [`super::evaluate`] computes the raw one).
pub fn calibration(logits: &Tensor, labels: &Tensor, temperature: f64) -> Calibration {
    let log_p = (logits / temperature).log_softmax(-1, Kind::Double);
    let nll = -f64::try_from(
        log_p
            .gather(1, &labels.unsqueeze(1), false)
            .sum(Kind::Double),
    )
    .expect("a number");
    let p = log_p.exp();
    let truth = labels.one_hot(NUM_CLASSES).to_kind(Kind::Double);
    let brier = f64::try_from((&p - truth).square().sum(Kind::Double)).expect("a number");
    // The binned part reads top-1 probabilities in float, as the raw evaluation does.
    let (top, pred) = p.to_kind(Kind::Float).max_dim(-1, false);
    let host = |t: Tensor| t.to_device(tch::Device::Cpu);
    let confidence: Vec<f32> = Vec::try_from(host(top)).expect("floats");
    let correct: Vec<bool> = Vec::try_from(host(pred.eq_tensor(labels))).expect("bools");
    Calibration::new(&confidence, &correct, (nll, brier))
}

/// Fitted on `validation`, applied to `test`.
pub fn scale(model: &Net, validation: &Split, test: &Split) -> TemperatureScaled {
    let temperature = fit(&logits(model, validation), &validation.labels);
    TemperatureScaled {
        temperature,
        calibration: calibration(&logits(model, test), &test.labels, temperature),
    }
}
