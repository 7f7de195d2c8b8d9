//! The networks and the pieces that train them. Knows nothing of run directories or outputs.
//!
//! - [`lenet5`]: LeNet-5 as the seed builds it (activation, pooling and init from the config), and the
//!   modern variant with the same widths (batch norm, dropout);
//! - [`lenet1998`]: LeNet-5 as LeCun et al. built it in 1998 (RBF output, sparse C3, scaled tanh);
//! - [`loss`], [`optim`], [`stateful`], [`augment`]: objective and L1 penalty, optimizers (and the ones
//!   written out so their state can be saved), random affine distortions;
//! - [`fast`]: the speed forms that train (the same functions, computed faster), each held to its plain
//!   form by a test.
//!
//! Variable paths are the seed's PyTorch attribute names (`conv1.weight`, …), so checkpoints load with
//! `load_state_dict(strict=True)` in PyTorch.

pub mod augment;
pub mod fast;
pub mod lenet1998;
pub mod lenet5;
pub mod loss;
pub mod optim;
pub mod stateful;

pub use lenet5::{LeNet5, LeNet5Modern};
pub use lenet1998::LeNet1998;

use lenet5_lab::config::{Activation, Config, Variant};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// The network a config asks for.
#[derive(Debug)]
pub enum Net {
    Lenet5(LeNet5),
    Lenet5Modern(LeNet5Modern),
    Lenet1998(LeNet1998),
}

/// Builds the network `config` asks for, for its dataset's images, in a new var store on `device`, seeded
/// by `trainer.init_seed()` (so a run's initial weights are a function of its config).
pub fn build(config: &Config, device: Device) -> (nn::VarStore, Net) {
    tch::manual_seed(config.trainer.init_seed() as i64);
    let vs = nn::VarStore::new(device);
    let (root, cfg, dataset) = (vs.root(), &config.model, config.data.dataset);
    let net = match cfg.variant {
        Variant::Lenet5 => Net::Lenet5(lenet5::lenet5(&root, cfg, dataset.shape())),
        Variant::Lenet5Modern => {
            Net::Lenet5Modern(lenet5::lenet5_modern(&root, cfg, dataset.shape()))
        }
        Variant::Lenet1998 => Net::Lenet1998(crate::nn::lenet1998::lenet1998(
            &root,
            dataset.normalization(),
        )),
    };
    (vs, net)
}

/// An activation function, as far as a layer's health goes: where its outputs stop moving.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Squash {
    Relu,
    Sigmoid,
    /// tanh scaled to ±`bound`.
    Tanh {
        bound: f64,
    },
}

impl Net {
    /// The weights the network computes with (not biases or batch-norm parameters), for the L1 penalty:
    /// the 1998 net's C3 as its connection table masks it, so the weights it never uses are not penalised.
    pub fn weights(&self) -> Vec<Tensor> {
        let all = |ws: &[&Tensor]| ws.iter().map(|w| w.shallow_clone()).collect();
        match self {
            Net::Lenet5(n) => all(&[&n.conv1.ws, &n.conv2.ws, &n.fc1.ws, &n.fc2.ws, &n.fc3.ws]),
            Net::Lenet5Modern(n) => {
                all(&[&n.conv1.ws, &n.conv2.ws, &n.fc1.ws, &n.fc2.ws, &n.fc3.ws])
            }
            Net::Lenet1998(n) => {
                let c3 = &n.c3.ws * &n.c3_mask;
                vec![
                    n.c1.ws.shallow_clone(),
                    c3,
                    n.c5.ws.shallow_clone(),
                    n.f6.ws.shallow_clone(),
                ]
            }
        }
    }
}

impl Net {
    /// Every layer's output for `xs` in eval mode, by the layer names of the network's own paper or seed
    /// (C1, S2, C3, S4, F5, F6 for LeNet-5; C1 … C5, F6 for the 1998 net), then `output`: the logits (for
    /// the 1998 net, the negated RBF penalties). The last equals `forward_t(xs, false)`.
    pub fn layers(&self, xs: &Tensor) -> Vec<(&'static str, Tensor)> {
        let mut out = vec![];
        let mut tap = |name: &'static str, t: &Tensor| out.push((name, t.shallow_clone()));
        let logits = tch::no_grad(|| match self {
            Net::Lenet5(n) => n.forward_tapped(xs, &mut tap),
            Net::Lenet5Modern(n) => n.forward_tapped(xs, false, &mut tap),
            Net::Lenet1998(n) => -n.rbf_penalties(&n.features_tapped(xs, &mut tap)),
        });
        out.push(("output", logits));
        out
    }

    /// Which layers of [`Net::layers`] are an activation's outputs, and that activation.
    pub fn activated(&self) -> (Squash, &'static [&'static str]) {
        match self {
            Net::Lenet5(n) => (
                match n.activation {
                    Activation::Relu => Squash::Relu,
                    Activation::Sigmoid => Squash::Sigmoid,
                    Activation::Tanh => Squash::Tanh { bound: 1.0 },
                },
                &["S2", "S4", "F5", "F6"],
            ),
            Net::Lenet5Modern(_) => (Squash::Relu, &["C1", "S2", "C3", "S4", "F5", "F6"]),
            Net::Lenet1998(_) => (
                Squash::Tanh {
                    bound: lenet1998::SQUASH_BOUND,
                },
                &["C1", "S2", "C3", "S4", "C5", "F6"],
            ),
        }
    }

    /// The first layer's learned filters `[out, in, k, k]`.
    pub fn first_filters(&self) -> &Tensor {
        match self {
            Net::Lenet5(n) => &n.conv1.ws,
            Net::Lenet5Modern(n) => &n.conv1.ws,
            Net::Lenet1998(n) => &n.c1.ws,
        }
    }
}

impl Net {
    /// The forward pass as the definitions write it (`LeNet5::forward_t`, …), not the speed forms that
    /// train: what export traces, since the speed forms reshape by the batch size.
    pub fn forward_plain(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Net::Lenet5(n) => n.forward_t(xs, train),
            Net::Lenet5Modern(n) => n.forward_t(xs, train),
            Net::Lenet1998(n) => n.forward_t(xs, train),
        }
    }
}

/// The speed forms (`nn::fast`), each held equal to its definition by a test.
impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Net::Lenet5(n) => fast::lenet5::forward(n, xs, train),
            Net::Lenet5Modern(n) => fast::modern::forward(n, xs, train),
            Net::Lenet1998(n) => fast::lenet1998::forward(n, xs),
        }
    }
}
