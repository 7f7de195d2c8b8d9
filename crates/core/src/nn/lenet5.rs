//! LeNet-5 as the seed builds it — conv 6@5×5 → 2×2 pool → act, conv 16@5×5 → pool → act, fc 120 → act,
//! fc 84 → act, fc 10 — with the activation, pooling and initialisation the config picks; and the modern
//! variant with the same widths (batch norm, ReLU, max pooling, dropout).
//!
//! This is the definition; what trains is the same function computed faster (`nn::fast::lenet5`, held to
//! this one by tests/model.rs).

use crate::data::Shape;
use lenet5_lab::config::{Activation, Init, ModelConfig, Pooling};
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// Receives each named layer output of a forward pass (for `lenet5 serve`'s page).
pub type Tap<'a> = &'a mut dyn FnMut(&'static str, &Tensor);

/// Layer sizes: conv 6@5×5 (padding 2, so 28×28 stays 28×28) → pool → conv 16@5×5 → pool → 120 → 84 → 10.
pub const CONV1_CHANNELS: i64 = 6;
pub const CONV2_CHANNELS: i64 = 16;
pub const KERNEL: i64 = 5;
/// S4's 16 maps of 5×5 (28×28 → C1 28 → S2 14 → C3 10 → S4 5), flattened.
pub const FC1_IN: i64 = CONV2_CHANNELS * S4_SIDE * S4_SIDE;
pub const S4_SIDE: i64 = 5;
pub const FC1_OUT: i64 = 120;
pub const FC2_OUT: i64 = 84;
pub const CLASSES: i64 = crate::data::NUM_CLASSES;

#[derive(Debug)]
pub struct LeNet5 {
    pub conv1: nn::Conv2D,
    pub conv2: nn::Conv2D,
    pub fc1: nn::Linear,
    pub fc2: nn::Linear,
    pub fc3: nn::Linear,
    pub activation: Activation,
    pub pooling: Pooling,
    pub conv1_padding: i64,
    /// `model.batch_norm`: bn1–bn4 after S2, S4, F5 and F6's linear part, before the activation.
    pub norms: Option<[nn::BatchNorm; 4]>,
    /// `model.dropout`: before each fully connected layer, in training.
    pub dropout: f64,
}

/// conv1's padding: 2 on 28×28 (so C1 stays 28×28, as in the seed), none on 32×32 (CIFAR-10, as LeNet-5 was
/// drawn for 32×32 inputs); both give 16×5×5 before fc1.
pub fn conv1_padding(input: Shape) -> i64 {
    (32 - input.side) / 2
}

/// Builds LeNet-5 for `input` images under `vs`.
pub fn lenet5(vs: &nn::Path, cfg: &ModelConfig, input: Shape) -> LeNet5 {
    let conv = |name: &str, i, o, padding| {
        let (ws_init, bs_init) = inits(cfg.init, &[o, i, KERNEL, KERNEL]);
        let c = nn::ConvConfig {
            padding,
            ws_init,
            bs_init,
            ..Default::default()
        };
        nn::conv2d(vs / name, i, o, KERNEL, c)
    };
    let linear = |name: &str, i, o| linear(vs / name, cfg.init, i, o, true);
    LeNet5 {
        conv1: conv(
            "conv1",
            input.channels,
            CONV1_CHANNELS,
            conv1_padding(input),
        ),
        conv1_padding: conv1_padding(input),
        conv2: conv("conv2", CONV1_CHANNELS, CONV2_CHANNELS, 0),
        fc1: linear("fc1", FC1_IN, FC1_OUT),
        fc2: linear("fc2", FC1_OUT, FC2_OUT),
        fc3: linear("fc3", FC2_OUT, CLASSES),
        activation: cfg.activation,
        pooling: cfg.pooling,
        // After the layers above, so that they draw the same initial weights with or without it.
        norms: cfg.batch_norm.then(|| seed_norms(vs)),
        dropout: cfg.dropout,
    }
}

/// A batch norm that starts as PyTorch's does: scale 1, shift 0. tch's default draws the scale from
/// U[0, 1), which halves the signal through each layer on average.
fn pytorch_norm() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    }
}

/// The seed's net's batch norms, named as the modern variant's: bn1, bn2 over the conv maps, bn3, bn4
/// over fc1 and fc2.
fn seed_norms(vs: &nn::Path) -> [nn::BatchNorm; 4] {
    let c = pytorch_norm();
    [
        nn::batch_norm2d(vs / "bn1", CONV1_CHANNELS, c),
        nn::batch_norm2d(vs / "bn2", CONV2_CHANNELS, c),
        nn::batch_norm1d(vs / "bn3", FC1_OUT, c),
        nn::batch_norm1d(vs / "bn4", FC2_OUT, c),
    ]
}

/// A fully connected layer `i` → `o` under `path`, initialised by `init` (bias optional).
fn linear(path: nn::Path, init: Init, i: i64, o: i64, bias: bool) -> nn::Linear {
    let (ws_init, bs_init) = inits(init, &[o, i]);
    let config = nn::LinearConfig {
        ws_init,
        bs_init: Some(bs_init),
        bias,
    };
    nn::linear(path, i, o, config)
}

/// Weight and bias initialisers for a weight of shape `dims` (`[out, in, k…]`).
fn inits(init: Init, dims: &[i64]) -> (nn::Init, nn::Init) {
    use nn::init::{FanInOut, NonLinearity, NormalOrUniform};
    let fan_in = FanInOut::FanIn.for_weight_dims(dims) as f64;
    let fan_out = FanInOut::FanOut.for_weight_dims(dims) as f64;
    // Glorot & Bengio (2010): Var(w) = 2 / (fan_in + fan_out); uniform bound = sqrt(3·Var).
    let glorot_std = (2.0 / (fan_in + fan_out)).sqrt();
    let he = |dist| nn::Init::Kaiming {
        dist,
        fan: FanInOut::FanIn,
        non_linearity: NonLinearity::ReLU,
    };
    let zero = nn::Init::Const(0.0);
    match init {
        // PyTorch's own layer defaults (what the seed's "default" means; tch's differ): weights
        // kaiming_uniform(a=√5), i.e. uniform(±1/√fan_in), and biases uniform(±1/√fan_in).
        Init::Default => {
            let bound = 1.0 / fan_in.sqrt();
            (
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )
        }
        Init::XavierUniform => {
            let bound = 3f64.sqrt() * glorot_std;
            (
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
                zero,
            )
        }
        Init::XavierNormal => (
            nn::Init::Randn {
                mean: 0.0,
                stdev: glorot_std,
            },
            zero,
        ),
        Init::HeUniform => (he(NormalOrUniform::Uniform), zero),
        Init::HeNormal => (he(NormalOrUniform::Normal), zero),
    }
}

impl LeNet5 {
    /// Batch norm `i` (0: after S2, 1: S4, 2: F5, 3: F6) where `model.batch_norm` adds them.
    pub fn norm(&self, i: usize, xs: Tensor, train: bool) -> Tensor {
        match &self.norms {
            Some(norms) => xs.apply_t(&norms[i], train),
            None => xs,
        }
    }

    /// Dropout before a fully connected layer, in training, where `model.dropout` asks for it.
    pub fn drop(&self, xs: Tensor, train: bool) -> Tensor {
        match train && self.dropout > 0.0 {
            true => xs.dropout(self.dropout, true),
            false => xs,
        }
    }

    pub fn act(&self, xs: Tensor) -> Tensor {
        match self.activation {
            Activation::Sigmoid => xs.sigmoid(),
            Activation::Relu => xs.relu(),
            Activation::Tanh => xs.tanh(),
        }
    }

    pub fn pool(&self, xs: Tensor) -> Tensor {
        match self.pooling {
            // Not tch's `avg_pool2d_default`: it passes divisor_override = 1, i.e. a 2×2 *sum*, not a mean.
            Pooling::Avg => xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>),
            Pooling::Max => xs.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
        }
    }

    /// [`ModuleT::forward_t`], handing each layer's output to `tap` by its LeNet-5 name: C1 (the
    /// convolution), S2 (pooled and activated, as the seed orders them), C3, S4, F5, F6.
    pub fn forward_tapped(&self, xs: &Tensor, tap: Tap) -> Tensor {
        let c1 = xs.apply(&self.conv1);
        tap("C1", &c1);
        let s2 = self.act(self.norm(0, self.pool(c1), false));
        tap("S2", &s2);
        let c3 = s2.apply(&self.conv2);
        tap("C3", &c3);
        let s4 = self.act(self.norm(1, self.pool(c3), false));
        tap("S4", &s4);
        let f5 = self.act(self.norm(2, s4.flatten(1, -1).apply(&self.fc1), false));
        tap("F5", &f5);
        let f6 = self.act(self.norm(3, f5.apply(&self.fc2), false));
        tap("F6", &f6);
        f6.apply(&self.fc3)
    }
}

impl ModuleT for LeNet5 {
    /// `[N, C, H, W]` normalised images → `[N, 10]` logits: the seed's conv → pool → act twice, then three
    /// fully connected layers with the activation after the first two. Training computes the same function
    /// faster (`nn::fast::lenet5`).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = self.act(self.norm(0, self.pool(xs.apply(&self.conv1)), train)); // C1 → S2
        let xs = self.act(self.norm(1, self.pool(xs.apply(&self.conv2)), train)); // C3 → S4
        let xs = self.drop(xs.flatten(1, -1), train).apply(&self.fc1);
        let xs = self.act(self.norm(2, xs, train)); // F5
        let xs = self.act(self.norm(3, self.drop(xs, train).apply(&self.fc2), train)); // F6
        self.drop(xs, train).apply(&self.fc3)
    }
}

/// LeNet-5's 6/16/120/84 widths with today's habits: batch norm after every conv and hidden fc layer, ReLU,
/// max pooling, dropout before each fc layer. Parameter names: conv1, bn1, conv2, bn2, fc1, bn3, fc2, bn4, fc3.
#[derive(Debug)]
pub struct LeNet5Modern {
    pub conv1: nn::Conv2D,
    pub bn1: nn::BatchNorm,
    pub conv2: nn::Conv2D,
    pub bn2: nn::BatchNorm,
    pub fc1: nn::Linear,
    pub bn3: nn::BatchNorm,
    pub fc2: nn::Linear,
    pub bn4: nn::BatchNorm,
    pub fc3: nn::Linear,
    pub dropout: f64,
    pub conv1_padding: i64,
}

/// Builds the modern variant for `input` under `vs`; `init` applies as for LeNet-5.
pub fn lenet5_modern(vs: &nn::Path, cfg: &ModelConfig, input: Shape) -> LeNet5Modern {
    let conv = |name: &str, i, o, padding| {
        // No conv/fc biases: batch norm's shift replaces them.
        let (ws_init, _) = inits(cfg.init, &[o, i, KERNEL, KERNEL]);
        nn::conv2d(
            vs / name,
            i,
            o,
            KERNEL,
            nn::ConvConfig {
                padding,
                ws_init,
                bias: false,
                ..Default::default()
            },
        )
    };
    let linear = |name: &str, i, o, bias| linear(vs / name, cfg.init, i, o, bias);
    let bn = pytorch_norm();
    LeNet5Modern {
        conv1: conv(
            "conv1",
            input.channels,
            CONV1_CHANNELS,
            conv1_padding(input),
        ),
        bn1: nn::batch_norm2d(vs / "bn1", CONV1_CHANNELS, bn),
        conv2: conv("conv2", CONV1_CHANNELS, CONV2_CHANNELS, 0),
        bn2: nn::batch_norm2d(vs / "bn2", CONV2_CHANNELS, bn),
        fc1: linear("fc1", FC1_IN, FC1_OUT, false),
        bn3: nn::batch_norm1d(vs / "bn3", FC1_OUT, bn),
        fc2: linear("fc2", FC1_OUT, FC2_OUT, false),
        bn4: nn::batch_norm1d(vs / "bn4", FC2_OUT, bn),
        fc3: linear("fc3", FC2_OUT, CLASSES, true),
        dropout: cfg.dropout,
        conv1_padding: conv1_padding(input),
    }
}

impl LeNet5Modern {
    /// The forward pass, handing each layer's output to `tap`: C1 and C3 after batch norm and ReLU, S2 and
    /// S4 after max pooling, F5 and F6 after batch norm and ReLU (before dropout).
    pub fn forward_tapped(&self, xs: &Tensor, train: bool, tap: Tap) -> Tensor {
        let pool = |x: &Tensor| x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let c1 = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        tap("C1", &c1);
        let s2 = pool(&c1);
        tap("S2", &s2);
        let c3 = s2.apply(&self.conv2).apply_t(&self.bn2, train).relu();
        tap("C3", &c3);
        let s4 = pool(&c3);
        tap("S4", &s4);
        let xs = s4.flatten(1, -1).dropout(self.dropout, train);
        let f5 = xs.apply(&self.fc1).apply_t(&self.bn3, train).relu();
        tap("F5", &f5);
        let f6 = f5
            .dropout(self.dropout, train)
            .apply(&self.fc2)
            .apply_t(&self.bn4, train)
            .relu();
        tap("F6", &f6);
        f6.dropout(self.dropout, train).apply(&self.fc3)
    }
}

impl ModuleT for LeNet5Modern {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_tapped(xs, train, &mut |_, _| {})
    }
}
