//! A hand-written CPU training step for the seed's LeNet-5 (conv → 2×2 average pool → ReLU twice, ReLU after
//! fc1 and fc2, cross-entropy with optional label smoothing, Adam): forward, loss and every gradient of a
//! batch in plain Rust loops, without LibTorch's operators or autograd, the batch split into one shard per
//! thread. The network is still the `tch::nn` one: its variables are read in place each step, evaluation
//! and every other configuration run through LibTorch, and the gradients go to [`crate::optim::FlatAdam`]'s update.
//!
//! Why: a LibTorch step of this network is dozens of small operators, each with its dispatch, allocation and
//! OpenMP fork/join, plus autograd's bookkeeping; here the convolutions are the fused stride-2 forms of
//! [`crate::model`] written for these exact shapes, and each image goes forward and back while its
//! activations are still in cache. Same arithmetic up to float rounding: `tests/cpu_step.rs` holds the loss
//! and gradients to LibTorch autograd's on the same weights. Shards' gradients are summed in shard order, so
//! a run is deterministic for a given thread count, as LibTorch's is.

use crate::config::{Activation, Config, Pooling};
use crate::model::{LeNet5, Net};
use crate::optim::{Optimizer, cpu_slice};
use tch::{Device, Tensor};

/// Side of the zero-padded input (28 + 2 × 2), of conv1's pooled output, of conv2's.
const XP: usize = 32;
const H1: usize = 14;
const H2: usize = 5;
/// Pooled kernels are 6×6 (a 5×5 kernel smeared by the 2×2 mean); taps per channel pair.
const K: usize = 6;
const TAPS: usize = K * K;
/// Channels: conv1's 6 held in 8 lanes (the last two always zero), conv2's 16.
const C1: usize = 6;
const L1: usize = 8;
const C2: usize = 16;
const FLAT: usize = C2 * H2 * H2;
const F1: usize = 120;
const F2: usize = 84;
const F3: usize = 10;
/// fc widths rounded up to whole 16-float vectors, for the transposed weights the forward pass reads.
const F1P: usize = 128;
const F2P: usize = 96;
const F3P: usize = 16;

/// The gradient of one batch, by parameter, in the `tch::nn` layouts (weights `[out, in, kh, kw]` or
/// `[out, in]`), plus the batch's mean loss and correct count.
pub struct BatchGrads {
    pub grads: [Vec<f32>; 10],
    pub loss: f64,
    pub correct: i64,
}

/// The hand-written step for one run: the weights' working layouts, per-thread scratch and gradient
/// accumulators, and where each parameter sits in the optimizer's list.
pub struct CpuStep {
    shards: Vec<Shard>,
    prepared: Prepared,
    /// The last batch's result (its buffers reused: the fc1 gradient alone is 190 KB).
    out: BatchGrads,
    /// `order[i]`: which of [`BatchGrads::grads`] is the optimizer's i-th parameter.
    order: Vec<usize>,
    label_smoothing: f32,
    isa: Isa,
}

impl CpuStep {
    /// The step for this run, or `None` where it does not apply (then LibTorch trains as before): the CPU
    /// (x86-64 with AVX2 and FMA), the `lenet5` variant with ReLU and average pooling on 1×28×28 images,
    /// Adam (FlatAdam's one-pass update), no L1 term, no augmentation, and `trainer.fused_cpu` on.
    pub fn new(config: &Config, net: &Net, opt: &Optimizer, device: Device) -> Option<CpuStep> {
        let (Net::Lenet5(m), Optimizer::FlatAdam(adam)) = (net, opt) else {
            return None;
        };
        let applies = config.trainer.fused_cpu
            && device == Device::Cpu
            && m.activation == Activation::Relu
            && m.pooling == Pooling::Avg
            && m.conv1_padding == 2
            && m.conv1.ws.size() == [C1 as i64, 1, 5, 5]
            && config.regularization.l1 == 0.0
            // Distortions are LibTorch operators on both cores each step; its OpenMP threads then spin
            // while the shards run, and the step measured slower than LibTorch's (2.4 vs 1.9 s per epoch).
            && config.data.augment.is_identity()
            && adam.one_pass;
        let isa = Isa::detect();
        let (true, Some(isa)) = (applies, isa) else {
            return None;
        };
        let ours = parameters(m);
        let order = adam
            .params()
            .iter()
            .map(|p| ours.iter().position(|o| o.data_ptr() == p.data_ptr()))
            .collect::<Option<Vec<_>>>()?;
        let threads = if config.trainer.threads > 0 {
            config.trainer.threads
        } else {
            tch::get_num_threads().max(1) as usize
        };
        Some(CpuStep {
            shards: (0..threads).map(|_| Shard::new()).collect(),
            prepared: Prepared::new(),
            out: BatchGrads {
                grads: ours.map(|t| vec![0.0; t.numel()]),
                loss: 0.0,
                correct: 0,
            },
            order,
            label_smoothing: config.regularization.label_smoothing as f32,
            isa,
        })
    }

    /// One training step on the images `index` of `images` `[M, 1, 28, 28]` (normalised, CPU) with
    /// `labels` `[M]`: gradients by hand, then `opt`'s Adam update. The rows are read where they are (no
    /// gathered copy, no LibTorch operator). Returns the batch's mean loss and its correct count.
    pub fn step(
        &mut self,
        net: &Net,
        opt: &mut Optimizer,
        (images, labels): (&Tensor, &Tensor),
        index: &Tensor,
    ) -> (f64, i64) {
        let Optimizer::FlatAdam(adam) = opt else {
            unreachable!("CpuStep::new checked the optimizer")
        };
        self.gradients(net, (images, labels), index);
        let batch = &self.out;
        let grads: Vec<&[f32]> = self
            .order
            .iter()
            .map(|&i| batch.grads[i].as_slice())
            .collect();
        adam.step_cpu(&grads);
        (batch.loss, batch.correct)
    }

    /// The loss, correct count and gradients of the batch `index` of (`images`, `labels`), without
    /// updating anything.
    pub fn gradients(
        &mut self,
        net: &Net,
        (images, labels): (&Tensor, &Tensor),
        index: &Tensor,
    ) -> &BatchGrads {
        let Net::Lenet5(m) = net else {
            unreachable!("CpuStep::new checked the network")
        };
        let (images, labels, index) =
            (images.contiguous(), labels.contiguous(), index.contiguous());
        let rows = labels.size()[0] as usize;
        assert_eq!(
            images.size(),
            [rows as i64, 1, 28, 28],
            "the CPU step takes 1×28×28 images"
        );
        // SAFETY: tensors alive and unmodified until the end of this call (cpu_slice checks the rest).
        let (images, labels, index) = unsafe {
            (
                cpu_slice::<f32>(&images),
                cpu_slice::<i64>(&labels),
                cpu_slice::<i64>(&index),
            )
        };
        let n = index.len();
        assert!(
            index.iter().all(|&i| (0..rows as i64).contains(&i)),
            "batch index out of range"
        );
        let params = parameters(m);
        // SAFETY: FlatAdam's parameters are contiguous f32 CPU views of its buffer (checked), which
        // nothing writes while the step reads them.
        let values = params.map(|t| unsafe { cpu_slice::<f32>(t) });
        self.prepared.load(&values);
        // The fc weights as they are, for the backward pass.
        let fc: Fc = [values[4], values[6], values[8]];
        let (prepared, isa) = (&self.prepared, self.isa);
        let hyper = Hyper {
            inv_batch: 1.0 / n as f32,
            smoothing: self.label_smoothing,
        };
        let per = n.div_ceil(self.shards.len()).max(1);
        std::thread::scope(|scope| {
            let mut shards = self.shards.iter_mut().enumerate();
            let (_, first) = shards.next().expect("at least one shard");
            for (i, shard) in shards {
                let range = (i * per).min(n)..((i + 1) * per).min(n);
                scope.spawn(move || {
                    shard.run(isa, (prepared, fc), hyper, (images, labels), &index[range])
                });
            }
            first.run(
                isa,
                (prepared, fc),
                hyper,
                (images, labels),
                &index[..per.min(n)],
            );
        });
        self.reduce()
    }

    /// The shards' sums, in shard order, turned into the parameters' gradients.
    fn reduce(&mut self) -> &BatchGrads {
        let (first, rest) = self.shards.split_first_mut().expect("at least one shard");
        let total = &mut first.grads;
        for shard in rest {
            total.add(&shard.grads);
        }
        let out = &mut self.out;
        unpool_grad(
            |o, _, ky, kx| total.k1[(ky * K + kx) * L1 + o],
            C1,
            1,
            &mut out.grads[0],
        );
        unpool_grad(
            |o, c, ky, kx| total.k2[((ky * K + kx) * C1 + c) * C2 + o],
            C2,
            C1,
            &mut out.grads[2],
        );
        let rest: [&[f32]; 8] = [
            &total.b1[..C1],
            &total.b2,
            &total.w1,
            &total.bf1,
            &total.w2,
            &total.bf2,
            &total.w3,
            &total.bf3,
        ];
        for (i, src) in [1, 3, 4, 5, 6, 7, 8, 9].into_iter().zip(rest) {
            out.grads[i].copy_from_slice(src);
        }
        (out.loss, out.correct) = (total.loss, total.correct);
        out
    }
}

/// The network's ten parameters in [`BatchGrads::grads`] order.
fn parameters(m: &LeNet5) -> [&Tensor; 10] {
    fn bias(t: &Option<Tensor>) -> &Tensor {
        t.as_ref().expect("LeNet-5's layers have biases")
    }
    [
        &m.conv1.ws,
        bias(&m.conv1.bs),
        &m.conv2.ws,
        bias(&m.conv2.bs),
        &m.fc1.ws,
        bias(&m.fc1.bs),
        &m.fc2.ws,
        bias(&m.fc2.bs),
        &m.fc3.ws,
        bias(&m.fc3.bs),
    ]
}

/// The gradient `w` of a 5×5 kernel `[out, in, 5, 5]` from that of its pooled 6×6 form (`dk(o, c, ky, kx)`):
/// the adjoint of [`crate::model::pooled_kernel`], W'[a, b] = (w[a, b] + w[a-1, b] + w[a, b-1] + w[a-1, b-1]) / 4.
fn unpool_grad(
    dk: impl Fn(usize, usize, usize, usize) -> f32,
    out: usize,
    inp: usize,
    w: &mut [f32],
) {
    for o in 0..out {
        for c in 0..inp {
            for a in 0..5 {
                for b in 0..5 {
                    let s = dk(o, c, a, b)
                        + dk(o, c, a + 1, b)
                        + dk(o, c, a, b + 1)
                        + dk(o, c, a + 1, b + 1);
                    w[((o * inp + c) * 5 + a) * 5 + b] = s * 0.25;
                }
            }
        }
    }
}

/// The 6×6 pooled kernel's tap (ky, kx) of a 5×5 kernel read through `w(a, b)`.
fn pooled(w: impl Fn(usize, usize) -> f32, ky: usize, kx: usize) -> f32 {
    let at = |a: usize, b: usize| if a < 5 && b < 5 { w(a, b) } else { 0.0 };
    let (up, left) = (ky.wrapping_sub(1), kx.wrapping_sub(1));
    (at(up, left) + at(up, kx) + at(ky, left) + at(ky, kx)) * 0.25
}

/// Loss settings of a step.
#[derive(Clone, Copy)]
struct Hyper {
    inv_batch: f32,
    smoothing: f32,
}

/// The weights in the layouts the loops read, refreshed from the variables each step.
struct Prepared {
    /// conv1's pooled kernel `[tap][o]` (8 lanes) and bias; conv2's `[tap][c][o]`, and `[o][tap][c]` (8
    /// lanes) for the gradient to its input, and bias.
    k1: Vec<f32>,
    b1: [f32; L1],
    k2: Vec<f32>,
    k2t: Vec<f32>,
    b2: [f32; C2],
    /// fc weights transposed to `[in][out rounded up]` for the forward pass (the backward pass reads them
    /// in place, [`Fc`]); biases rounded up likewise.
    w1t: Vec<f32>,
    bf1: [f32; F1P],
    w2t: Vec<f32>,
    bf2: [f32; F2P],
    w3t: Vec<f32>,
    bf3: [f32; F3P],
}

impl Prepared {
    fn new() -> Self {
        Prepared {
            k1: vec![0.0; TAPS * L1],
            b1: [0.0; L1],
            k2: vec![0.0; TAPS * C1 * C2],
            k2t: vec![0.0; TAPS * C2 * L1],
            b2: [0.0; C2],
            w1t: vec![0.0; FLAT * F1P],
            bf1: [0.0; F1P],
            w2t: vec![0.0; F1 * F2P],
            bf2: [0.0; F2P],
            w3t: vec![0.0; F2 * F3P],
            bf3: [0.0; F3P],
        }
    }

    /// From the ten parameters' values, in [`parameters`] order.
    fn load(&mut self, values: &[&[f32]; 10]) {
        let [w1c, b1c, w2c, b2c, fw1, fb1, fw2, fb2, fw3, fb3] = *values;
        for ky in 0..K {
            for kx in 0..K {
                let tap = ky * K + kx;
                for o in 0..C1 {
                    self.k1[tap * L1 + o] = pooled(|a, b| w1c[(o * 5 + a) * 5 + b], ky, kx);
                }
                for o in 0..C2 {
                    for c in 0..C1 {
                        let v = pooled(|a, b| w2c[((o * C1 + c) * 5 + a) * 5 + b], ky, kx);
                        self.k2[(tap * C1 + c) * C2 + o] = v;
                        self.k2t[(o * TAPS + tap) * L1 + c] = v;
                    }
                }
            }
        }
        self.b1[..C1].copy_from_slice(b1c);
        self.b2.copy_from_slice(b2c);
        transpose(fw1, F1, FLAT, &mut self.w1t, F1P);
        transpose(fw2, F2, F1, &mut self.w2t, F2P);
        transpose(fw3, F3, F2, &mut self.w3t, F3P);
        self.bf1[..F1].copy_from_slice(fb1);
        self.bf2[..F2].copy_from_slice(fb2);
        self.bf3[..F3].copy_from_slice(fb3);
    }
}

/// `w` `[rows][cols]` into `t` `[cols][stride]` (the padding columns stay zero).
fn transpose(w: &[f32], rows: usize, cols: usize, t: &mut [f32], stride: usize) {
    for r in 0..rows {
        for c in 0..cols {
            t[c * stride + r] = w[r * cols + c];
        }
    }
}

/// Gradient sums of one shard, in the working layouts.
struct Grads {
    k1: Vec<f32>,
    b1: [f32; L1],
    k2: Vec<f32>,
    b2: [f32; C2],
    w1: Vec<f32>,
    bf1: [f32; F1],
    w2: Vec<f32>,
    bf2: [f32; F2],
    w3: Vec<f32>,
    bf3: [f32; F3],
    loss: f64,
    correct: i64,
}

impl Grads {
    fn new() -> Self {
        Grads {
            k1: vec![0.0; TAPS * L1],
            b1: [0.0; L1],
            k2: vec![0.0; TAPS * C1 * C2],
            b2: [0.0; C2],
            w1: vec![0.0; F1 * FLAT],
            bf1: [0.0; F1],
            w2: vec![0.0; F2 * F1],
            bf2: [0.0; F2],
            w3: vec![0.0; F3 * F2],
            bf3: [0.0; F3],
            loss: 0.0,
            correct: 0,
        }
    }

    fn clear(&mut self) {
        for v in [
            &mut self.k1,
            &mut self.k2,
            &mut self.w1,
            &mut self.w2,
            &mut self.w3,
        ] {
            v.fill(0.0);
        }
        self.b1 = [0.0; L1];
        self.b2 = [0.0; C2];
        self.bf1 = [0.0; F1];
        self.bf2 = [0.0; F2];
        self.bf3 = [0.0; F3];
        (self.loss, self.correct) = (0.0, 0);
    }

    fn add(&mut self, o: &Grads) {
        fn acc(a: &mut [f32], b: &[f32]) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        acc(&mut self.k1, &o.k1);
        acc(&mut self.b1, &o.b1);
        acc(&mut self.k2, &o.k2);
        acc(&mut self.b2, &o.b2);
        acc(&mut self.w1, &o.w1);
        acc(&mut self.bf1, &o.bf1);
        acc(&mut self.w2, &o.w2);
        acc(&mut self.bf2, &o.bf2);
        acc(&mut self.w3, &o.w3);
        acc(&mut self.bf3, &o.bf3);
        self.loss += o.loss;
        self.correct += o.correct;
    }
}

/// One thread's share of a batch: its gradient sums and its activations, one image at a time.
struct Shard {
    grads: Grads,
    s: Scratch,
}

/// One image's activations and their gradients.
struct Scratch {
    xp: [f32; XP * XP],
    h1: [f32; H1 * H1 * L1],
    h2: [f32; FLAT],
    h3: [f32; F1P],
    h4: [f32; F2P],
    z3: [f32; F3P],
    dz3: [f32; F3],
    dh4: [f32; F2],
    dh3: [f32; F1],
    dh2: [f32; FLAT],
    da2: [f32; H2 * H2 * C2],
    dh1: [f32; H1 * H1 * L1],
}

impl Shard {
    fn new() -> Self {
        Shard {
            grads: Grads::new(),
            s: Scratch {
                xp: [0.0; XP * XP],
                h1: [0.0; H1 * H1 * L1],
                h2: [0.0; FLAT],
                h3: [0.0; F1P],
                h4: [0.0; F2P],
                z3: [0.0; F3P],
                dz3: [0.0; F3],
                dh4: [0.0; F2],
                dh3: [0.0; F1],
                dh2: [0.0; FLAT],
                da2: [0.0; H2 * H2 * C2],
                dh1: [0.0; H1 * H1 * L1],
            },
        }
    }

    fn run(&mut self, isa: Isa, w: Weights, hyper: Hyper, data: Data, index: &[i64]) {
        self.grads.clear();
        // SAFETY: each variant runs only where `Isa::detect` found its instructions.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => shard_avx512(self, w, hyper, data, index),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => shard_avx2(self, w, hyper, data, index),
            }
        }
    }
}

/// The widest vector instructions this CPU has, picked once: the loops are compiled once per kind.
#[derive(Clone, Copy)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    /// `None` without AVX2 and FMA (other CPUs train through LibTorch).
    fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = is_x86_feature_detected!("fma");
            if is_x86_feature_detected!("avx512f") && fma {
                return Some(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2") && fma {
                return Some(Isa::Avx2);
            }
        }
        None
    }
}

/// The weights a shard reads: the working layouts, and the fc weights `[out][in]` in place.
type Weights<'a> = (&'a Prepared, Fc<'a>);
type Fc<'a> = [&'a [f32]; 3];

/// A split's images (784 floats each) and labels.
type Data<'a> = (&'a [f32], &'a [i64]);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn shard_avx512(sh: &mut Shard, w: Weights, h: Hyper, data: Data, index: &[i64]) {
    shard(sh, w, h, data, index)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn shard_avx2(sh: &mut Shard, w: Weights, h: Hyper, data: Data, index: &[i64]) {
    shard(sh, w, h, data, index)
}

/// Forward and backward for each image `index` of the shard, adding into its gradient sums. `F`: the CPU
/// has fused multiply-add (one rounding, as LibTorch's vector kernels; without it, multiply then add).
#[inline(always)]
fn shard(sh: &mut Shard, (p, fc): Weights, h: Hyper, (images, labels): Data, index: &[i64]) {
    let (s, g) = (&mut sh.s, &mut sh.grads);
    for &i in index {
        let i = i as usize;
        forward(p, &images[i * 784..][..784], s);
        loss(s, labels[i] as usize, h, g);
        backward(p, fc, s, g);
    }
}

#[inline(always)]
fn forward(p: &Prepared, image: &[f32], s: &mut Scratch) {
    // The input, zero-padded by 2 (the border stays zero from the start).
    for y in 0..28 {
        s.xp[(y + 2) * XP + 2..(y + 2) * XP + 30].copy_from_slice(&image[y * 28..y * 28 + 28]);
    }
    // conv1 + pool as one stride-2 6×6 convolution, then ReLU: h1[y][x][o] (AVX2 intrinsics: left to
    // itself, the compiler vectorises this loop across x, with gathers).
    #[cfg(target_arch = "x86_64")]
    // SAFETY: this code runs only in the AVX2/AVX-512 variants, on CPUs `Isa::detect` checked.
    unsafe {
        conv1_forward_avx2(&s.xp, &p.k1, &p.b1, &mut s.h1)
    };
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("the CPU step applies only on x86-64 (CpuStep::new)");
    // conv2 + pool likewise (6×6, stride 2, no padding) over h1, then ReLU, into h2 in flatten order
    // [o][y][x] (what fc1's weights expect). A row of 5 outputs × 16 channels at a time.
    for y in 0..H2 {
        let mut acc = [p.b2; H2];
        for ky in 0..K {
            for kx in 0..K {
                for c in 0..C1 {
                    let w: &[f32; C2] = p.k2[((ky * K + kx) * C1 + c) * C2..][..C2]
                        .try_into()
                        .unwrap();
                    for (x, a) in acc.iter_mut().enumerate() {
                        let v = s.h1[((2 * y + ky) * H1 + 2 * x + kx) * L1 + c];
                        for o in 0..C2 {
                            a[o] = fma(v, w[o], a[o]);
                        }
                    }
                }
            }
        }
        for (x, a) in acc.iter().enumerate() {
            for (o, v) in a.iter().enumerate() {
                s.h2[(o * H2 + y) * H2 + x] = v.max(0.0);
            }
        }
    }
    dense::<F1P>(&s.h2, &p.w1t, &p.bf1, &mut s.h3, true);
    dense::<F2P>(&s.h3[..F1], &p.w2t, &p.bf2, &mut s.h4, true);
    dense::<F3P>(&s.h4[..F2], &p.w3t, &p.bf3, &mut s.z3, false);
}

/// `out = bias + inputs · wt` (`wt` `[in][out.len()]`), with ReLU if `relu`.
#[inline(always)]
fn dense<const N: usize>(
    inputs: &[f32],
    wt: &[f32],
    bias: &[f32; N],
    out: &mut [f32; N],
    relu: bool,
) {
    let mut acc = *bias;
    for (k, &v) in inputs.iter().enumerate() {
        let w: &[f32; N] = wt[k * N..][..N].try_into().unwrap();
        for j in 0..N {
            acc[j] = fma(v, w[j], acc[j]);
        }
    }
    if relu {
        acc.iter_mut().for_each(|a| *a = a.max(0.0));
    }
    *out = acc;
}

/// Cross-entropy with label smoothing ε on the logits z3, as PyTorch defines it: (1 − ε)·(−log p_y) +
/// ε·mean_k(−log p_k); its gradient (softmax − target) / N into dz3.
#[inline(always)]
fn loss(s: &mut Scratch, label: usize, h: Hyper, g: &mut Grads) {
    let z = &s.z3[..F3];
    let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
    let lse = max + sum.ln();
    let mean_logp = z.iter().map(|&v| v - lse).sum::<f32>() / F3 as f32;
    let loss = -(1.0 - h.smoothing) * (z[label] - lse) - h.smoothing * mean_logp;
    g.loss += f64::from(loss * h.inv_batch);
    // argmax: the first of equal maxima, as LibTorch's (none for NaN logits: the loss is NaN then too, and
    // the epoch loop reports divergence).
    let predicted = z.iter().position(|&v| v == max);
    g.correct += i64::from(predicted == Some(label));
    for (j, d) in s.dz3.iter_mut().enumerate() {
        let target = h.smoothing / F3 as f32 + if j == label { 1.0 - h.smoothing } else { 0.0 };
        *d = ((z[j] - lse).exp() - target) * h.inv_batch;
    }
}

#[inline(always)]
fn backward(p: &Prepared, [w1, w2, w3]: Fc, s: &mut Scratch, g: &mut Grads) {
    dense_back(&s.dz3, w3, &s.h4[..F2], &mut g.w3, &mut g.bf3, &mut s.dh4);
    relu_back(&mut s.dh4, &s.h4[..F2]);
    dense_back(&s.dh4, w2, &s.h3[..F1], &mut g.w2, &mut g.bf2, &mut s.dh3);
    relu_back(&mut s.dh3, &s.h3[..F1]);
    dense_back(&s.dh3, w1, &s.h2, &mut g.w1, &mut g.bf1, &mut s.dh2);
    relu_back(&mut s.dh2, &s.h2);
    // Back to conv2's layout [y][x][o]; its bias gradient.
    for o in 0..C2 {
        for yx in 0..H2 * H2 {
            let d = s.dh2[o * H2 * H2 + yx];
            s.da2[yx * C2 + o] = d;
            g.b2[o] += d;
        }
    }
    // conv2's kernel gradient: for each tap, the 6 input channels' sums over the 25 outputs at once.
    for ky in 0..K {
        for kx in 0..K {
            let mut acc = [[0.0f32; C2]; C1];
            for y in 0..H2 {
                for x in 0..H2 {
                    let d: &[f32; C2] = s.da2[(y * H2 + x) * C2..][..C2].try_into().unwrap();
                    let at = ((2 * y + ky) * H1 + 2 * x + kx) * L1;
                    for (c, a) in acc.iter_mut().enumerate() {
                        let v = s.h1[at + c];
                        for o in 0..C2 {
                            a[o] = fma(v, d[o], a[o]);
                        }
                    }
                }
            }
            for (c, a) in acc.iter().enumerate() {
                let dst = &mut g.k2[((ky * K + kx) * C1 + c) * C2..][..C2];
                for o in 0..C2 {
                    dst[o] += a[o];
                }
            }
        }
    }
    // conv2's input gradient: each output's 16 channel gradients times the kernel, as one [tap][c] row
    // (`cols`), added onto the 6×6 window of h1 it came from; then ReLU's mask.
    s.dh1.fill(0.0);
    for y in 0..H2 {
        for x in 0..H2 {
            let d: &[f32; C2] = s.da2[(y * H2 + x) * C2..][..C2].try_into().unwrap();
            let mut cols = [0.0f32; TAPS * L1];
            for (o, &dv) in d.iter().enumerate() {
                let w: &[f32; TAPS * L1] = p.k2t[o * TAPS * L1..][..TAPS * L1].try_into().unwrap();
                for k in 0..TAPS * L1 {
                    cols[k] = fma(dv, w[k], cols[k]);
                }
            }
            for ky in 0..K {
                for kx in 0..K {
                    let dst = &mut s.dh1[((2 * y + ky) * H1 + 2 * x + kx) * L1..][..L1];
                    for c in 0..L1 {
                        dst[c] += cols[(ky * K + kx) * L1 + c];
                    }
                }
            }
        }
    }
    relu_back(&mut s.dh1, &s.h1);
    // conv1's bias and kernel gradients (its input needs none).
    for yx in 0..H1 * H1 {
        for o in 0..L1 {
            g.b1[o] += s.dh1[yx * L1 + o];
        }
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `forward`.
    unsafe {
        conv1_kernel_grad_avx2(&s.xp, &s.dh1, &mut g.k1)
    };
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("the CPU step applies only on x86-64 (CpuStep::new)");
}

/// conv1's forward pass of [`forward`], one 8-lane vector per output pixel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv1_forward_avx2(
    xp: &[f32; XP * XP],
    k1: &[f32],
    b1: &[f32; L1],
    h1: &mut [f32; H1 * H1 * L1],
) {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_ps();
    for y in 0..H1 {
        let mut acc = [load8(b1); H1];
        for ky in 0..K {
            let row = &xp[(2 * y + ky) * XP..][..XP];
            for kx in 0..K {
                let w = load8(&k1[(ky * K + kx) * L1..]);
                for (x, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_set1_ps(row[2 * x + kx]), w, *a);
                }
            }
        }
        for (x, a) in acc.iter().enumerate() {
            store8(&mut h1[(y * H1 + x) * L1..], _mm256_max_ps(*a, zero));
        }
    }
}

/// conv1's kernel gradient of [`backward`]: for each kernel row, its 6 taps' 8-lane sums at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv1_kernel_grad_avx2(xp: &[f32; XP * XP], dh1: &[f32; H1 * H1 * L1], gk1: &mut [f32]) {
    use std::arch::x86_64::*;
    for ky in 0..K {
        let mut acc = [_mm256_setzero_ps(); K];
        for y in 0..H1 {
            let row = &xp[(2 * y + ky) * XP..][..XP];
            for x in 0..H1 {
                let d = load8(&dh1[(y * H1 + x) * L1..]);
                for (kx, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_set1_ps(row[2 * x + kx]), d, *a);
                }
            }
        }
        for (kx, a) in acc.iter().enumerate() {
            let dst = &mut gk1[(ky * K + kx) * L1..];
            store8(dst, _mm256_add_ps(load8(dst), *a));
        }
    }
}

/// The first 8 floats of `s` as a vector (bounds-checked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn load8(s: &[f32]) -> std::arch::x86_64::__m256 {
    let s: &[f32; 8] = s[..8].try_into().unwrap();
    // SAFETY: eight floats, read unaligned.
    unsafe { std::arch::x86_64::_mm256_loadu_ps(s.as_ptr()) }
}

/// `v` into the first 8 floats of `s` (bounds-checked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn store8(s: &mut [f32], v: std::arch::x86_64::__m256) {
    let s: &mut [f32; 8] = (&mut s[..8]).try_into().unwrap();
    // SAFETY: eight floats, written unaligned.
    unsafe { std::arch::x86_64::_mm256_storeu_ps(s.as_mut_ptr(), v) }
}

/// `a · b + c` in one rounding: one instruction in the FMA-enabled variants this code is compiled into.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// A dense layer's backward pass for one image: `dw += dz ⊗ inputs`, `db += dz`, `dinputs = dz · w`
/// (`w` `[out][in]`). Rows whose gradient is zero (a unit ReLU switched off) are skipped.
#[inline(always)]
fn dense_back(
    dz: &[f32],
    w: &[f32],
    inputs: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    dinputs: &mut [f32],
) {
    let n = inputs.len();
    dinputs.fill(0.0);
    for (j, &d) in dz.iter().enumerate() {
        db[j] += d;
        if d == 0.0 {
            continue;
        }
        let (wr, dwr) = (&w[j * n..][..n], &mut dw[j * n..][..n]);
        for k in 0..n {
            dinputs[k] = fma(d, wr[k], dinputs[k]);
            dwr[k] = fma(d, inputs[k], dwr[k]);
        }
    }
}

/// ReLU's backward pass: the gradient where the unit's output was positive, 0 elsewhere.
#[inline(always)]
fn relu_back(d: &mut [f32], out: &[f32]) {
    for (d, &o) in d.iter_mut().zip(out) {
        *d = if o > 0.0 { *d } else { 0.0 };
    }
}
