//! Which pixels an answer rests on, through LibTorch's autograd, with Captum's semantics: *saliency* is the
//! absolute gradient of the target class's logit with respect to the input (Simonyan et al. 2014); *integrated
//! gradients* (Sundararajan et al. 2017) average that gradient (signed) along the straight path from a black
//! image to the input, at the midpoints of `steps` equal segments (Captum's `riemann_middle`), times the
//! input's difference from the black image, so the attributions sum to f(input) − f(black) up to the
//! quadrature error (completeness). Attributions are in the model's input space (the normalised pixels).

use crate::data::{Normalization, background};
use crate::nn::Net;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// An attribution method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Saliency,
    IntegratedGradients { steps: i64 },
}

impl Method {
    /// The name `predict --explain` takes and files carry.
    pub fn name(self) -> &'static str {
        match self {
            Method::Saliency => "saliency",
            Method::IntegratedGradients { .. } => "integrated-gradients",
        }
    }
}

/// One image's attribution for one class.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// Per input pixel, row-major (`[C, H, W]` flattened).
    pub map: Vec<f32>,
    pub target: i64,
    /// The attributions' sum, and f(input) − f(black): equal up to the quadrature error for integrated
    /// gradients (completeness); saliency makes no such promise.
    pub sum: f64,
    pub delta: f64,
}

/// `method`'s attribution of class `target`'s logit to each pixel of `image` (`[1, C, H, W]`, normalised
/// as `norm` says), the model in eval mode.
pub fn attribute(
    model: &Net,
    image: &Tensor,
    norm: &Normalization,
    target: i64,
    method: Method,
) -> Attribution {
    let black = background(norm, image.device()).expand_as(image);
    let logit = |x: &Tensor| model.forward_t(x, false).select(1, target);
    let map = match method {
        Method::Saliency => input_gradient(&logit, image).abs(),
        Method::IntegratedGradients { steps } => {
            let alphas =
                (Tensor::arange(steps, (Kind::Float, image.device())) + 0.5) / steps as f64;
            let path = &black + alphas.view([-1, 1, 1, 1]) * (image - &black);
            let mean_gradient = input_gradient(&logit, &path).mean_dim(0, true, Kind::Float);
            mean_gradient * (image - &black)
        }
    };
    let delta = tch::no_grad(|| logit(image) - logit(&black));
    let map: Vec<f32> = Vec::try_from(map.to_device(Device::Cpu).flatten(0, -1)).expect("floats");
    Attribution {
        sum: map.iter().map(|&a| f64::from(a)).sum(),
        delta: f64::try_from(delta.sum(Kind::Double)).expect("a number"),
        map,
        target,
    }
}

/// d(Σ f(x))/dx for a batch `x`: each image's gradient of its own output.
fn input_gradient(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor) -> Tensor {
    let x = x.detach().set_requires_grad(true);
    let out = f(&x).sum(Kind::Float);
    Tensor::run_backward(&[out], &[&x], false, false).remove(0)
}
