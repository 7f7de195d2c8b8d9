//! LeNet-5 as LeCun, Bottou, Bengio and Haffner built it in 1998 ("Gradient-based learning applied to
//! document recognition", Proc. IEEE 86(11), section II.B and appendix A):
//!
//! 32×32 input (28×28 MNIST padded, background −0.1, ink 1.175) → C1 6@5×5 → S2 trainable subsampling
//! (2×2 sum × coefficient + bias per map) → C3 16@5×5 over the partial connection table (Table I) → S4 →
//! C5 120@5×5 → F6 84 → 10 Euclidean RBF units with fixed ±1 prototypes (7×12 digit bitmaps). Every layer up
//! to F6 is squashed by f(a) = 1.7159·tanh(2a/3); weights and biases start uniform in ±2.4/F_in.
//!
//! The network's "logits" are the negated RBF penalties −y_i, so the most likely digit is the arg-max as for
//! the other variants; [`map_loss`] is the paper's loss (eq. 9).

use crate::data::Normalization;
use crate::nn::lenet5::Tap;
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// The squashing function's bound, A in f(a) = A·tanh(S·a).
pub const SQUASH_BOUND: f64 = 1.7159;

/// The squashing function's slope, S in f(a) = A·tanh(S·a).
pub const SQUASH_SLOPE: f64 = 2.0 / 3.0;

/// f(a) = A·tanh(S·a) with A = 1.7159, S = 2/3 (appendix A).
pub fn squash(a: &Tensor) -> Tensor {
    (a * SQUASH_SLOPE).tanh() * SQUASH_BOUND
}

/// Table I: which S2 maps (columns 0–5) each C3 map (rows 0–15) is connected to.
pub const C3_TABLE: [&[usize]; 16] = [
    &[0, 1, 2],
    &[1, 2, 3],
    &[2, 3, 4],
    &[3, 4, 5],
    &[0, 4, 5],
    &[0, 1, 5],
    &[0, 1, 2, 3],
    &[1, 2, 3, 4],
    &[2, 3, 4, 5],
    &[0, 3, 4, 5],
    &[0, 1, 4, 5],
    &[0, 1, 2, 5],
    &[0, 1, 3, 4],
    &[1, 2, 4, 5],
    &[0, 2, 3, 5],
    &[0, 1, 2, 3, 4, 5],
];

/// The RBF prototypes: stylised 7×12 bitmaps of the digits in the manner of the paper's Fig. 3, drawn by
/// hand for this project (the paper's exact bitmaps are not published as data). `#` is +1, `.` is −1.
pub const PROTOTYPES: [[&str; 12]; 10] = [
    [
        ".......", "..###..", ".#...#.", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#",
        "#.....#", ".#...#.", "..###..", ".......",
    ],
    [
        ".......", "...#...", "..##...", ".#.#...", "...#...", "...#...", "...#...", "...#...",
        "...#...", "...#...", ".#####.", ".......",
    ],
    [
        ".......", ".####..", "#....#.", ".....#.", ".....#.", "....#..", "...#...", "..#....",
        ".#.....", "#......", "######.", ".......",
    ],
    [
        ".......", "######.", ".....#.", "....#..", "...#...", "..###..", ".....#.", "......#",
        "......#", "#....#.", ".####..", ".......",
    ],
    [
        ".......", "....#..", "...##..", "..#.#..", ".#..#..", "#...#..", "#######", "....#..",
        "....#..", "....#..", "....#..", ".......",
    ],
    [
        ".......", "######.", "#......", "#......", "#####..", ".....#.", "......#", "......#",
        "......#", "#....#.", ".####..", ".......",
    ],
    [
        ".......", "..###..", ".#.....", "#......", "#......", "#.###..", "##...#.", "#.....#",
        "#.....#", ".#...#.", "..###..", ".......",
    ],
    [
        ".......", "#######", "......#", ".....#.", "....#..", "...#...", "...#...", "..#....",
        "..#....", "..#....", "..#....", ".......",
    ],
    [
        ".......", "..###..", ".#...#.", ".#...#.", "..###..", ".#...#.", "#.....#", "#.....#",
        "#.....#", ".#...#.", "..###..", ".......",
    ],
    [
        ".......", "..###..", ".#...#.", "#.....#", "#.....#", ".#...##", "..###.#", "......#",
        ".....#.", "....#..", ".###...", ".......",
    ],
];

/// The 10×84 prototype matrix (±1).
pub fn prototypes() -> Tensor {
    let values: Vec<f32> = PROTOTYPES
        .iter()
        .flat_map(|rows| {
            rows.iter()
                .flat_map(|row| row.chars().map(|c| if c == '#' { 1.0 } else { -1.0 }))
        })
        .collect();
    Tensor::from_slice(&values).view([10, 84])
}

/// The paper's j in its loss: the constant "rubbish class" penalty (eq. 9).
pub const MAP_J: f64 = 0.1;

#[derive(Debug)]
pub struct LeNet1998 {
    pub c1: nn::Conv2D,
    pub s2_coef: Tensor,
    pub s2_bias: Tensor,
    pub c3: nn::Conv2D,
    /// `[16, 6, 1, 1]` 0/1 mask of Table I, multiplied into C3's weights.
    pub c3_mask: Tensor,
    pub s4_coef: Tensor,
    pub s4_bias: Tensor,
    pub c5: nn::Conv2D,
    pub f6: nn::Linear,
    /// `[10, 84]` fixed ±1 prototypes (not trained; saved with the weights as `rbf.prototypes`).
    pub rbf: Tensor,
    /// How the input images were normalised, to recover their pixels for [`paper_input`].
    pub normalization: Normalization,
}

/// Uniform ±2.4/F_in, the paper's initialisation.
fn lecun_uniform(fan_in: f64) -> nn::Init {
    let bound = 2.4 / fan_in;
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Builds the 1998 network under `vs` for 28×28 grey images normalised by `normalization`.
pub fn lenet1998(vs: &nn::Path, normalization: Normalization) -> LeNet1998 {
    let conv = |name: &str, i: i64, o: i64, fan_in: f64| {
        let init = lecun_uniform(fan_in);
        nn::conv2d(
            vs / name,
            i,
            o,
            5,
            nn::ConvConfig {
                ws_init: init,
                bs_init: init,
                ..Default::default()
            },
        )
    };
    let mut mask = vec![0f32; 16 * 6];
    for (out, inputs) in C3_TABLE.iter().enumerate() {
        for &i in *inputs {
            mask[out * 6 + i] = 1.0;
        }
    }
    let c3_mask = Tensor::from_slice(&mask)
        .view([16, 6, 1, 1])
        .to_device(vs.device());
    let c3 = conv("c3", 6, 16, 1.0);
    // C3's fan-in differs per map (3, 4 or 6 connected maps × 25): rescale its ±2.4 draw per map.
    tch::no_grad(|| {
        let fan_in: Vec<f32> = C3_TABLE
            .iter()
            .map(|inputs| 1.0 / (inputs.len() as f32 * 25.0))
            .collect();
        let scale = Tensor::from_slice(&fan_in).to_device(vs.device());
        let _ = c3.ws.shallow_clone().g_mul_(&scale.view([16, 1, 1, 1]));
        let _ = c3.bs.as_ref().expect("bias").shallow_clone().g_mul_(&scale);
    });
    let sub = |name: &str, maps: i64| {
        let init = lecun_uniform(4.0);
        let path = vs / name;
        (
            path.var("coef", &[maps], init),
            path.var("bias", &[maps], init),
        )
    };
    let (s2_coef, s2_bias) = sub("s2", 6);
    let (s4_coef, s4_bias) = sub("s4", 16);
    let f6_init = lecun_uniform(120.0);
    LeNet1998 {
        c1: conv("c1", 1, 6, 25.0),
        s2_coef,
        s2_bias,
        c3,
        c3_mask,
        s4_coef,
        s4_bias,
        c5: conv("c5", 16, 120, 16.0 * 25.0),
        f6: nn::linear(
            vs / "f6",
            120,
            84,
            nn::LinearConfig {
                ws_init: f6_init,
                bs_init: Some(f6_init),
                bias: true,
            },
        ),
        rbf: {
            let rbf = (vs / "rbf").zeros_no_train("prototypes", &[10, 84]);
            tch::no_grad(|| rbf.shallow_clone().copy_(&prototypes()));
            rbf
        },
        normalization,
    }
}

impl LeNet1998 {
    /// S2/S4: 2×2 sum, times a per-map coefficient, plus a per-map bias, squashed.
    fn subsample(xs: &Tensor, coef: &Tensor, bias: &Tensor) -> Tensor {
        let sum = xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>) * 4.0;
        squash(&(sum * coef.view([1, -1, 1, 1]) + bias.view([1, -1, 1, 1])))
    }

    /// F6's output `[N, 84]` → RBF penalties `[N, 10]`: y_i = Σ_j (x_j − w_ij)².
    pub fn rbf_penalties(&self, f6: &Tensor) -> Tensor {
        (f6.unsqueeze(1) - self.rbf.unsqueeze(0))
            .square()
            .sum_dim_intlist([2].as_slice(), false, Kind::Float)
    }
}

/// Images `[N, 1, 28, 28]` normalised by `normalization` → the paper's `[N, 1, 32, 32]` input: background
/// −0.1, ink 1.175, whatever the dataset's statistics.
pub fn paper_input(xs: &Tensor, normalization: &Normalization) -> Tensor {
    // Grey images (validation rules out the others): scalars, so the forward pass allocates no statistics
    // tensors and copies nothing to the device.
    let pixels = xs * normalization.std[0] + normalization.mean[0];
    pixels.constant_pad_nd([2, 2, 2, 2]) * 1.275 - 0.1
}

impl LeNet1998 {
    /// F6's squashed output `[N, 84]`, the point the RBF layer compares with the prototypes.
    pub fn features(&self, xs: &Tensor) -> Tensor {
        self.features_tapped(xs, &mut |_, _| {})
    }

    /// [`LeNet1998::features`], handing each layer's squashed output to `tap` by the paper's names: C1,
    /// S2, C3, S4, C5, F6 (and the 32×32 input it builds as `input`).
    pub fn features_tapped(&self, xs: &Tensor, tap: Tap) -> Tensor {
        let input = paper_input(xs, &self.normalization);
        tap("input", &input);
        let c1 = squash(&input.apply(&self.c1));
        tap("C1", &c1);
        let s2 = Self::subsample(&c1, &self.s2_coef, &self.s2_bias);
        tap("S2", &s2);
        let c3_weights = &self.c3.ws * &self.c3_mask;
        let c3 = squash(&s2.conv2d(&c3_weights, self.c3.bs.as_ref(), [1, 1], [0, 0], [1, 1], 1));
        tap("C3", &c3);
        let s4 = Self::subsample(&c3, &self.s4_coef, &self.s4_bias);
        tap("S4", &s4);
        let c5 = squash(&s4.apply(&self.c5).flatten(1, -1));
        tap("C5", &c5);
        let f6 = squash(&c5.apply(&self.f6));
        tap("F6", &f6);
        f6
    }
}

impl ModuleT for LeNet1998 {
    /// Returns −y (negated RBF penalties), so arg-max picks the nearest prototype.
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        -self.rbf_penalties(&self.features(xs))
    }
}

/// The paper's loss (eq. 9) from the network's −y outputs: y_D + log(e^{−j} + Σ_i e^{−y_i}), averaged (or
/// summed) over the batch. It is cross-entropy over the logits [−j, −y_0, …, −y_9] with target D + 1.
pub fn map_loss(neg_penalties: &Tensor, labels: &Tensor, reduction: tch::Reduction) -> Tensor {
    let n = neg_penalties.size()[0];
    let rubbish = Tensor::full(
        [n, 1],
        -MAP_J,
        (neg_penalties.kind(), neg_penalties.device()),
    );
    Tensor::cat(&[&rubbish, neg_penalties], 1).cross_entropy_loss::<Tensor>(
        &(labels + 1),
        None,
        reduction,
        -100,
        0.0,
    )
}
