//! LeNet-5's layout, parameter names and count, every model choice, and the initialisers' statistics.
mod common;
use common::PARAMETER_NAMES;
use lenet5_core::data::Dataset;
use lenet5_core::nn as model;
use lenet5_core::nn::fast::lenet5 as fast;
use lenet5_lab::config::{Activation, Init, ModelConfig, Pooling};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn build(cfg: &ModelConfig) -> (nn::VarStore, model::LeNet5) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model::lenet5::lenet5(&vs.root(), cfg, Dataset::Mnist.shape());
    (vs, net)
}

#[test]
fn output_shape_parameter_count_and_names() {
    let (vs, net) = build(&ModelConfig::default());
    let logits = net.forward_t(
        &Tensor::randn([7, 1, 28, 28], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(logits.size(), [7, 10]);
    let count: i64 = vs
        .trainable_variables()
        .iter()
        .map(Tensor::numel)
        .map(|n| n as i64)
        .sum();
    // 6·25+6 + 16·6·25+16 + 400·120+120 + 120·84+84 + 84·10+10
    assert_eq!(count, 61_706);
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    let mut expected: Vec<String> = PARAMETER_NAMES.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn every_activation_pooling_and_init_builds_and_takes_a_step() {
    for activation in [Activation::Sigmoid, Activation::Relu, Activation::Tanh] {
        for pooling in [Pooling::Avg, Pooling::Max] {
            for init in [
                Init::Default,
                Init::XavierUniform,
                Init::XavierNormal,
                Init::HeUniform,
                Init::HeNormal,
            ] {
                let (vs, net) = build(&ModelConfig {
                    activation,
                    pooling,
                    init,
                    ..Default::default()
                });
                let before = vs.variables()["fc3.weight"].copy();
                let mut opt = nn::Sgd::default().build(&vs, 0.1).unwrap();
                let xs = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
                let loss = net
                    .forward_t(&xs, true)
                    .cross_entropy_for_logits(&Tensor::from_slice(&[0i64, 1, 2, 3]));
                assert!(f64::try_from(&loss).unwrap().is_finite());
                opt.backward_step(&loss);
                let moved = f64::try_from(
                    (vs.variables()["fc3.weight"].copy() - before)
                        .abs()
                        .sum(Kind::Float),
                )
                .unwrap();
                assert!(
                    moved > 0.0,
                    "{activation:?}/{pooling:?}/{init:?} did not update"
                );
            }
        }
    }
}

fn std_of(init: Init, name: &str) -> f64 {
    let (vs, _) = build(&ModelConfig {
        init,
        ..Default::default()
    });
    f64::try_from(vs.variables()[name].std(true)).unwrap()
}

#[test]
fn xavier_and_he_have_the_expected_variance() {
    // fc1.weight is [120, 400]: 48,000 samples, so the sample std is within ~1% of the target.
    let (fan_in, fan_out) = (400.0f64, 120.0f64);
    let glorot = (2.0 / (fan_in + fan_out)).sqrt();
    let he = (2.0 / fan_in).sqrt();
    for (init, expected) in [
        (Init::XavierUniform, glorot),
        (Init::XavierNormal, glorot),
        (Init::HeUniform, he),
        (Init::HeNormal, he),
        // PyTorch's default: uniform(±1/√fan_in) has std 1/√(3·fan_in).
        (Init::Default, 1.0 / (3.0 * fan_in).sqrt()),
    ] {
        let got = std_of(init, "fc1.weight");
        assert!(
            (got / expected - 1.0).abs() < 0.03,
            "{init:?}: std {got}, expected {expected}"
        );
    }
    let (vs, _) = build(&ModelConfig {
        init: Init::XavierUniform,
        ..Default::default()
    });
    let bias_abs = f64::try_from(vs.variables()["fc1.bias"].abs().sum(Kind::Float)).unwrap();
    assert_eq!(bias_abs, 0.0, "biases start at zero");
    let w = vs.variables()["conv1.weight"].abs().max();
    let bound = (6.0f64 / (25.0 + 150.0)).sqrt(); // conv1: fan_in 1·25, fan_out 6·25
    assert!(f64::try_from(w).unwrap() <= bound);
}

#[test]
fn l1_penalty_is_the_sum_of_absolute_weights() {
    let (vs, net) = build(&ModelConfig::default());
    let expected: f64 = [
        "conv1.weight",
        "conv2.weight",
        "fc1.weight",
        "fc2.weight",
        "fc3.weight",
    ]
    .iter()
    .map(|n| f64::try_from(vs.variables()[*n].abs().sum(Kind::Double)).unwrap())
    .sum();
    let got = f64::try_from(lenet5_core::nn::loss::l1_penalty(&model::Net::Lenet5(net))).unwrap();
    assert!(
        (got - expected).abs() < 1e-3 * expected,
        "{got} vs {expected}"
    );
}

#[test]
fn average_pooling_is_a_mean_and_max_pooling_a_max() {
    // tch's avg_pool2d_default sums (divisor_override = 1); LeNet-5's average pooling must average.
    let xs = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
    let (_, avg) = build(&ModelConfig {
        pooling: Pooling::Avg,
        ..Default::default()
    });
    let (_, max) = build(&ModelConfig {
        pooling: Pooling::Max,
        ..Default::default()
    });
    let got: Vec<f32> = Vec::try_from(avg.pool(xs.shallow_clone()).flatten(0, -1)).unwrap();
    assert_eq!(got, [2.5, 4.5, 10.5, 12.5]);
    let got: Vec<f32> = Vec::try_from(max.pool(xs).flatten(0, -1)).unwrap();
    assert_eq!(got, [5.0, 7.0, 13.0, 15.0]);
}

#[test]
fn fused_conv_and_average_pooling_equal_conv_then_pool() {
    let (_, net) = build(&ModelConfig {
        pooling: Pooling::Avg,
        ..Default::default()
    });
    tch::manual_seed(1);
    let xs = Tensor::randn([5, 1, 28, 28], (Kind::Float, Device::Cpu));
    let fused = fast::c1_s2(&net, &xs);
    let explicit = net.pool(xs.apply(&net.conv1));
    assert_eq!(fused.size(), [5, 6, 14, 14]);
    let diff = f64::try_from((&fused - &explicit).abs().max()).unwrap();
    assert!(diff < 1e-5, "conv1: {diff}");
    let h = Tensor::randn([5, 6, 14, 14], (Kind::Float, Device::Cpu));
    let diff = f64::try_from(
        (fast::c3_s4(&net, &h) - net.pool(h.apply(&net.conv2)))
            .abs()
            .max(),
    )
    .unwrap();
    assert!(diff < 1e-5, "conv2: {diff}");
    // Gradients reach the 5×5 weights the same way.
    let grad = |out: Tensor| {
        Tensor::run_backward(
            &[out.square().sum(Kind::Float)],
            &[&net.conv1.ws],
            false,
            false,
        )
        .remove(0)
    };
    let diff = f64::try_from(
        (grad(fast::c1_s2(&net, &xs)) - grad(net.pool(xs.apply(&net.conv1))))
            .abs()
            .max(),
    )
    .unwrap();
    assert!(diff < 1e-3, "grad: {diff}");
}

#[test]
fn phased_conv_and_max_pooling_equal_conv_then_pool_ties_included() {
    let (_, net) = build(&ModelConfig {
        pooling: Pooling::Max,
        ..Default::default()
    });
    tch::manual_seed(1);
    let xs = Tensor::randn([5, 1, 28, 28], (Kind::Float, Device::Cpu));
    // A constant band, as MNIST's background is: its conv outputs tie within each window.
    let _ = xs.narrow(2, 0, 10).fill_(-0.42);
    let phased = fast::c1_s2(&net, &xs);
    let explicit = net.pool(xs.apply(&net.conv1));
    assert_eq!(phased.size(), [5, 6, 14, 14]);
    let diff = f64::try_from((&phased - &explicit).abs().max()).unwrap();
    assert!(diff < 1e-5, "conv1: {diff}");
    let h = Tensor::randn([5, 6, 14, 14], (Kind::Float, Device::Cpu));
    let _ = h.narrow(2, 0, 8).fill_(0.3);
    let h = h.set_requires_grad(true);
    let (a, b) = (fast::c3_s4(&net, &h), net.pool(h.apply(&net.conv2)));
    assert_eq!(a.size(), [5, 16, 5, 5]);
    let diff = f64::try_from((&a - &b).abs().max()).unwrap();
    assert!(diff < 1e-5, "conv2: {diff}");
    // Rounding may break a tie differently from max_pool2d (the input's gradient then lands on another
    // position of the window), but tied windows see equal patches, so the weights' gradient is the same.
    let gw = |out: &Tensor| {
        let loss = out.square().sum(Kind::Float);
        Tensor::run_backward(&[loss], &[&net.conv2.ws], false, false).remove(0)
    };
    let (ga, gb) = (gw(&a), gw(&b));
    let scale = f64::try_from(gb.abs().max()).unwrap();
    let diff = f64::try_from((ga - &gb).abs().max()).unwrap();
    assert!(diff / scale < 1e-5, "weight gradient: {diff} of {scale}");
}

#[test]
fn the_window_maximum_is_max_pool2d_s_values_and_gradient_ties_included() {
    tch::manual_seed(3);
    let ys = Tensor::randn([3, 4, 8, 6], (Kind::Float, Device::Cpu));
    // Ties: a constant band (all four equal), windows whose first two positions are equal, and windows
    // whose middle two (p1 = p2) are equal and the largest, which a column-major tree would break the other
    // way.
    let _ = ys.narrow(2, 0, 2).fill_(0.25);
    ys.narrow(2, 4, 2)
        .narrow(3, 1, 1)
        .copy_(&ys.narrow(2, 4, 2).narrow(3, 0, 1));
    let mut band = ys.narrow(2, 6, 2);
    let _ = band.fill_(-1.0);
    let _ = band
        .narrow(1, 0, 1)
        .narrow(2, 0, 1)
        .narrow(3, 1, 1)
        .fill_(2.0); // p1
    let _ = band
        .narrow(1, 0, 1)
        .narrow(2, 1, 1)
        .narrow(3, 0, 1)
        .fill_(2.0); // p2
    let ys = ys.set_requires_grad(true);
    // The four positions (2a + b) of each window, as the phased convolution produces them.
    let (n, c, h, w) = (3, 4, 4, 3);
    let phases = ys
        .view([n, c, h, 2, w, 2])
        .permute([3, 5, 0, 1, 2, 4])
        .reshape([4, n, c, h, w]);
    let (ours, theirs) = (
        fast::max_of_four(&phases.unbind(0)),
        ys.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
    );
    assert!(ours.allclose(&theirs, 1e-6, 1e-6, false));
    let weights = Tensor::randn(ours.size(), (Kind::Float, Device::Cpu));
    let grad = |out: &Tensor| {
        Tensor::run_backward(&[(out * &weights).sum(Kind::Float)], &[&ys], false, false).remove(0)
    };
    // The same position of each window gets the gradient: the first of equal values, as max_pool2d.
    assert!(grad(&ours).equal(&grad(&theirs)));
}

#[test]
fn onednn_s_max_pooling_is_max_pool2d_s_values_and_gradient_ties_included() {
    // oneDNN's pool itself, whichever form this CPU's `max_pool` picks.
    assert!(tch::utils::has_mkldnn(), "this LibTorch has no oneDNN");
    tch::manual_seed(4);
    let xs = Tensor::randn([3, 5, 10, 10], (Kind::Float, Device::Cpu));
    // A constant band: every window in it is a four-way tie.
    let _ = xs.narrow(2, 0, 4).fill_(0.3);
    let xs = xs.set_requires_grad(true);
    let (ours, theirs) = (
        fast::onednn_max_pool(&xs),
        xs.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
    );
    assert!(ours.equal(&theirs));
    assert!(fast::max_pool(&xs).equal(&theirs));
    let weights = Tensor::randn(ours.size(), (Kind::Float, Device::Cpu));
    let grad = |out: &Tensor| {
        Tensor::run_backward(&[(out * &weights).sum(Kind::Float)], &[&xs], false, false).remove(0)
    };
    assert!(grad(&ours).equal(&grad(&theirs)));
    // oneDNN pools only float maps; double ones keep max_pool2d.
    let doubles = xs.detach().to_kind(Kind::Double);
    let plain = doubles.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
    assert!(fast::max_pool(&doubles).equal(&plain));
}

#[test]
fn the_fast_form_that_trains_equals_the_seed_s_plain_chain() {
    let forms = [Activation::Relu, Activation::Sigmoid, Activation::Tanh]
        .into_iter()
        .flat_map(|a| [(a, Pooling::Avg), (a, Pooling::Max)]);
    for (activation, pooling) in forms {
        let (vs, net) = build(&ModelConfig {
            pooling,
            activation,
            ..Default::default()
        });
        tch::manual_seed(2);
        let xs = Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu));
        let plain = net.forward_t(&xs, true);
        // With an input that needs a gradient, conv2 takes the space-to-depth path.
        let fused = fast::forward(&net, &xs, true);
        let diff = f64::try_from((&fused - &plain).abs().max()).unwrap();
        assert!(diff < 1e-5, "{activation:?} {pooling:?} logits: {diff}");
        let params = vs.trainable_variables();
        let grads = |out: &Tensor| {
            let loss = out.log_softmax(-1, Kind::Float).mean(Kind::Float);
            Tensor::run_backward(&[loss], &params, true, false)
        };
        for (g_fused, g_plain) in grads(&fused).iter().zip(&grads(&plain)) {
            let scale = f64::try_from(g_plain.abs().max()).unwrap().max(1e-8);
            let diff = f64::try_from((g_fused - g_plain).abs().max()).unwrap();
            assert!(
                diff / scale < 1e-4,
                "{activation:?} {pooling:?} gradient: {diff} of {scale}"
            );
        }
    }
}

/// Tanh's speed form folds constants through the layers, which dropout and batch norm would break: with
/// either, the fast form is the plain chain's.
#[test]
fn the_tanh_fast_form_leaves_dropout_and_batch_norm_to_the_plain_chain() {
    let tanh = ModelConfig {
        activation: Activation::Tanh,
        ..Default::default()
    };
    tch::manual_seed(5);
    let xs = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let (_, dropped) = build(&ModelConfig {
        dropout: 0.5,
        ..tanh.clone()
    });
    assert!(!fast::forward(&dropped, &xs, true).equal(&fast::forward(&dropped, &xs, true)));
    let diff = (fast::forward(&dropped, &xs, false) - dropped.forward_t(&xs, false)).abs();
    assert!(f64::try_from(diff.max()).unwrap() < 1e-5);
    let (_, normed) = build(&ModelConfig {
        batch_norm: true,
        ..tanh
    });
    let diff = (fast::forward(&normed, &xs, true) - normed.forward_t(&xs, true)).abs();
    assert!(f64::try_from(diff.max()).unwrap() < 1e-5);
}

#[test]
fn the_seed_net_takes_batch_norm_and_dropout_and_its_fast_form_holds() {
    let plain_cfg = ModelConfig {
        pooling: Pooling::Max,
        ..Default::default()
    };
    let (vs_plain, plain) = build(&plain_cfg);
    let (vs, net) = build(&ModelConfig {
        batch_norm: true,
        ..plain_cfg.clone()
    });
    let names: Vec<String> = vs.variables().into_keys().collect();
    for name in [
        "bn1.weight",
        "bn2.running_mean",
        "bn3.bias",
        "bn4.running_var",
    ] {
        assert!(names.contains(&name.to_string()), "{name}: {names:?}");
    }
    assert!(!vs_plain.variables().contains_key("bn1.weight"));
    // The seed's layers hold the same weights with or without batch norm.
    let ours = vs.variables();
    tch::no_grad(|| {
        for (name, t) in vs_plain.variables() {
            ours[&name].shallow_clone().copy_(&t);
        }
    });
    tch::manual_seed(7);
    let xs = Tensor::randn([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    let _ = xs.narrow(2, 0, 6).fill_(-0.42);
    assert!(
        !net.forward_t(&xs, true)
            .allclose(&plain.forward_t(&xs, true), 1e-3, 1e-3, false)
    );
    // The speed form that trains equals the definition, in training (batch statistics) and in eval.
    for train in [true, false] {
        let (a, b) = (net.forward_t(&xs, train), fast::forward(&net, &xs, train));
        let diff = f64::try_from((&a - &b).abs().max()).unwrap();
        assert!(diff < 1e-4, "train {train}: {diff}");
        let grads = |out: &Tensor| {
            let loss = out.log_softmax(-1, Kind::Float).mean(Kind::Float);
            Tensor::run_backward(&[loss], &vs.trainable_variables(), false, false)
        };
        // Biases under batch norm have no effect, so their gradients are rounding noise: an absolute floor.
        for (ga, gb) in grads(&a).iter().zip(&grads(&b)) {
            let scale = f64::try_from(ga.abs().max()).unwrap();
            let diff = f64::try_from((ga - gb).abs().max()).unwrap();
            assert!(
                diff <= 1e-3 * scale + 1e-6,
                "train {train}: {diff} of {scale}"
            );
        }
    }
    // Dropout acts in training only.
    let (_, dropped) = build(&ModelConfig {
        dropout: 0.5,
        ..plain_cfg
    });
    assert!(
        dropped
            .forward_t(&xs, false)
            .equal(&dropped.forward_t(&xs, false))
    );
    assert!(
        !dropped
            .forward_t(&xs, true)
            .equal(&dropped.forward_t(&xs, true))
    );
}

#[test]
fn space_to_depth_stride2_conv_equals_the_strided_conv() {
    tch::manual_seed(2);
    let opts = (Kind::Float, Device::Cpu);
    // conv2's shape (the training path) and conv1's (padding 2), each with an input that needs a gradient.
    for (channels, side, padding) in [(6, 14, 0), (1, 28, 2)] {
        let kernel = Tensor::randn([16, channels, 6, 6], opts);
        let bias = Tensor::randn([16], opts);
        let xs = Tensor::randn([3, channels, side, side], opts).set_requires_grad(true);
        let strided = xs.conv2d(&kernel, Some(&bias), [2, 2], [padding, padding], [1, 1], 1);
        let s2d = fast::stride2_conv(&xs, &kernel, Some(&bias), padding);
        assert_eq!(s2d.size(), strided.size());
        let max_diff = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
        assert!(
            max_diff(&s2d, &strided) < 1e-4,
            "outputs, padding {padding}"
        );
        let input_grad = |out: &Tensor| {
            Tensor::run_backward(&[out.square().sum(Kind::Float)], &[&xs], false, false).remove(0)
        };
        let diff = max_diff(&input_grad(&s2d), &input_grad(&strided));
        assert!(diff < 1e-3, "input gradients, padding {padding}: {diff}");
    }
}

#[test]
fn the_matrix_product_stride2_conv_equals_the_strided_conv() {
    tch::manual_seed(5);
    let opts = (Kind::Float, Device::Cpu);
    // conv1's phases on MNIST (one map, padding 2) and the 1998 net (32×32, no padding), three maps
    // (CIFAR-10), odd sides, an odd kernel, with and without a bias; the data sliced from a larger tensor.
    for (channels, side, k, padding, bias) in [
        (1, 28, 6, 2, true),
        (1, 32, 6, 0, false),
        (3, 31, 6, 1, true),
        (2, 16, 5, 1, true),
        (1, 13, 3, 0, false),
    ] {
        let kernel = Tensor::randn([24, channels, k, k], opts).set_requires_grad(true);
        let bias = bias.then(|| Tensor::randn([24], opts).set_requires_grad(true));
        let xs = Tensor::randn([5, channels, side, side], opts).narrow(0, 1, 3);
        let plain = xs.conv2d(
            &kernel,
            bias.as_ref(),
            [2, 2],
            [padding, padding],
            [1, 1],
            1,
        );
        let gemm = fast::stride2_conv_by_gemm(&xs, &kernel, bias.as_ref(), padding);
        assert_eq!(gemm.size(), plain.size());
        let max_diff = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
        assert!(max_diff(&gemm, &plain) < 1e-4, "outputs, side {side}");
        let leaves: Vec<&Tensor> = std::iter::once(&kernel).chain(bias.as_ref()).collect();
        let grads = |out: &Tensor| {
            let loss = (out * out.ones_like().cumsum(3, Kind::Float))
                .square()
                .sum(Kind::Float);
            Tensor::run_backward(&[loss], &leaves, false, false)
        };
        for (a, b) in grads(&gemm).iter().zip(grads(&plain)) {
            let scale = f64::try_from(b.abs().max()).unwrap();
            assert!(max_diff(a, &b) / scale < 1e-5, "gradients, side {side}");
        }
    }
}

#[test]
fn the_phases_pass_a_gradient_to_the_input_where_one_is_asked_for() {
    // Attributions ask for the input's gradient with the weights trainable: the matrix-product form
    // gives none, so there the phases must come from the convolution.
    tch::manual_seed(6);
    let opts = (Kind::Float, Device::Cpu);
    let ws = Tensor::randn([6, 1, 5, 5], opts).set_requires_grad(true);
    let xs = Tensor::randn([3, 1, 28, 28], opts).set_requires_grad(true);
    let phases = fast::phase_conv(&xs, &ws, None, 2);
    let plain = xs.conv2d(
        &fast::phase_kernels(&ws),
        None::<&Tensor>,
        [2, 2],
        [2, 2],
        [1, 1],
        1,
    );
    let input_grad = |out: Tensor| {
        let loss = out.square().sum(Kind::Float);
        Tensor::run_backward(&[loss], &[&xs], false, false).remove(0)
    };
    let (ours, theirs) = (
        input_grad(phases.reshape([3, 24, 14, 14])),
        input_grad(plain),
    );
    let scale = f64::try_from(theirs.abs().max()).unwrap();
    assert!(scale > 0.0);
    let diff = f64::try_from((ours - theirs).abs().max()).unwrap();
    assert!(diff / scale < 1e-5, "input gradient: {diff} of {scale}");
}

#[test]
fn the_modern_speed_form_equals_its_definition_statistics_included() {
    use lenet5_lab::config::Variant;
    let config = lenet5_lab::config::Config {
        model: ModelConfig {
            variant: Variant::Lenet5Modern,
            // Dropout is the same three calls in both forms; its masks come from the process-wide
            // generator, which other tests running beside this one draw from too.
            dropout: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let (vs_a, plain) = model::build(&config, Device::Cpu);
    let (mut vs_b, fast_net) = model::build(&config, Device::Cpu);
    // The same weights whatever other tests drew from the generator between the two builds.
    vs_b.copy(&vs_a).unwrap();
    let model::Net::Lenet5Modern(plain) = plain else {
        panic!("modern")
    };
    tch::manual_seed(4);
    let xs = Tensor::randn([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    let _ = xs.narrow(2, 0, 6).fill_(-0.42);
    for train in [true, false] {
        let (a, b) = (plain.forward_t(&xs, train), fast_net.forward_t(&xs, train));
        let diff = f64::try_from((&a - &b).abs().max()).unwrap();
        assert!(diff < 1e-4, "train {train} logits: {diff}");
        let grads = |out: &Tensor, vs: &nn::VarStore| {
            let loss = out.log_softmax(-1, Kind::Float).mean(Kind::Float);
            Tensor::run_backward(&[loss], &vs.trainable_variables(), false, false)
        };
        for (ga, gb) in grads(&a, &vs_a).iter().zip(&grads(&b, &vs_b)) {
            let scale = f64::try_from(ga.abs().max()).unwrap().max(1e-8);
            let diff = f64::try_from((ga - gb).abs().max()).unwrap();
            assert!(
                diff / scale < 1e-3,
                "train {train} gradient: {diff} of {scale}"
            );
        }
    }
    // Training updated the running statistics alike (phases counted as batch).
    let (va, vb) = (vs_a.variables(), vs_b.variables());
    for name in ["bn1.running_mean", "bn1.running_var", "bn2.running_var"] {
        assert!(va[name].allclose(&vb[name], 1e-5, 1e-6, false), "{name}");
    }
}

#[test]
fn modern_variant_has_batch_norm_and_dropout_and_trains() {
    use lenet5_lab::config::Variant;
    let config = lenet5_lab::config::Config {
        model: ModelConfig {
            variant: Variant::Lenet5Modern,
            dropout: 0.5,
            init: Init::HeNormal,
            ..Default::default()
        },
        ..Default::default()
    };
    let (vs, net) = model::build(&config, Device::Cpu);
    let names: Vec<String> = vs.variables().into_keys().collect();
    for name in [
        "conv1.weight",
        "bn1.running_mean",
        "bn2.weight",
        "fc1.weight",
        "bn3.running_var",
        "bn4.bias",
        "fc3.bias",
    ] {
        assert!(
            names.contains(&name.to_string()),
            "{name} missing from {names:?}"
        );
    }
    let xs = Tensor::randn([16, 1, 28, 28], (Kind::Float, Device::Cpu));
    assert_eq!(net.forward_t(&xs, true).size(), [16, 10]);
    // Eval mode is deterministic (no dropout, running statistics); train mode is not (dropout).
    assert!(net.forward_t(&xs, false).equal(&net.forward_t(&xs, false)));
    assert!(!net.forward_t(&xs, true).equal(&net.forward_t(&xs, true)));
    // Training learns: 40 Adam steps on one batch take its eval-mode loss below a third of where it began
    // (running statistics and weights both move; the forward pass alone would change only the former).
    let ys = Tensor::arange(16, (Kind::Int64, Device::Cpu)).remainder(10);
    let eval_loss =
        || f64::try_from(net.forward_t(&xs, false).cross_entropy_for_logits(&ys)).unwrap();
    let (before, weights) = (eval_loss(), vs.variables()["conv1.weight"].copy());
    let mut opt = nn::Adam::default().build(&vs, 0.01).unwrap();
    for _ in 0..40 {
        opt.backward_step(&net.forward_t(&xs, true).cross_entropy_for_logits(&ys));
    }
    let after = eval_loss();
    assert!(after < before / 3.0, "eval loss {before} → {after}");
    assert!(
        !vs.variables()["conv1.weight"].equal(&weights),
        "weights train"
    );
}

#[test]
fn batch_norms_start_as_pytorchs_scale_one_shift_zero() {
    use lenet5_lab::config::Variant;
    for (variant, batch_norm) in [(Variant::Lenet5Modern, false), (Variant::Lenet5, true)] {
        let config = lenet5_lab::config::Config {
            model: ModelConfig {
                variant,
                batch_norm,
                ..Default::default()
            },
            ..Default::default()
        };
        let (vs, _) = model::build(&config, Device::Cpu);
        let variables = vs.variables();
        for bn in ["bn1", "bn2", "bn3", "bn4"] {
            let value = |p: &str| -> (f64, f64) {
                let t = &variables[&format!("{bn}.{p}")];
                (
                    f64::try_from(t.min()).unwrap(),
                    f64::try_from(t.max()).unwrap(),
                )
            };
            assert_eq!(value("weight"), (1.0, 1.0), "{variant:?} {bn}.weight");
            assert_eq!(value("bias"), (0.0, 0.0), "{variant:?} {bn}.bias");
        }
    }
}
