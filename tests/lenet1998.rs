//! The 1998 LeNet-5: Table I's connections, the RBF outputs, the paper's input scaling and loss.
use lenet5_core::data::Dataset;
use lenet5_core::nn::lenet1998::{self, C3_TABLE, LeNet1998};
use lenet5_core::nn::{self as model, Net};
use lenet5_lab::config::Variant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

fn build() -> (nn::VarStore, LeNet1998) {
    build_for(Dataset::Mnist)
}

fn build_for(dataset: Dataset) -> (nn::VarStore, LeNet1998) {
    let mut config = lenet5_lab::config::Config::default();
    config.model.variant = Variant::Lenet1998;
    config.data.dataset = dataset;
    let (vs, Net::Lenet1998(net)) = model::build(&config, Device::Cpu) else {
        panic!("lenet5_1998 builds the 1998 network")
    };
    (vs, net)
}

#[test]
fn c3_sees_exactly_the_maps_of_table_one() {
    let (_, net) = build();
    let mask: Vec<Vec<f32>> = Vec::try_from(net.c3_mask.view([16, 6])).unwrap();
    let connections: usize = mask
        .iter()
        .map(|row| row.iter().filter(|v| **v == 1.0).count())
        .sum();
    assert_eq!(
        connections, 60,
        "3·6 + 4·9 + 6·1 connections, as in the paper"
    );
    // Perturb one S2 map: only the C3 maps Table I connects to it change.
    let weights = &net.c3.ws * &net.c3_mask;
    let conv = |x: &Tensor| x.conv2d(&weights, net.c3.bs.as_ref(), [1, 1], [0, 0], [1, 1], 1);
    let base = Tensor::zeros([1, 6, 14, 14], (Kind::Float, Device::Cpu));
    for input in 0..6 {
        let bumped = base.copy();
        let _ = bumped.narrow(1, input, 1).fill_(1.0);
        let changed = (conv(&bumped) - conv(&base)).abs().sum_dim_intlist(
            [0, 2, 3].as_slice(),
            false,
            Kind::Float,
        );
        let changed: Vec<f32> = Vec::try_from(changed).unwrap();
        for (out, inputs) in C3_TABLE.iter().enumerate() {
            assert_eq!(
                changed[out] > 0.0,
                inputs.contains(&(input as usize)),
                "C3 map {out} vs S2 map {input}"
            );
        }
    }
}

#[test]
fn rbf_outputs_are_squared_distances_to_the_prototypes() {
    let (vs, net) = build();
    let protos = lenet1998::prototypes();
    assert_eq!(protos.size(), [10, 84]);
    assert!(
        vs.trainable_variables()
            .iter()
            .all(|t| t.size() != [10, 84]),
        "prototypes are fixed, not trained"
    );
    // F6 exactly at prototype 3: penalty 0 for 3, and 4 per differing pixel for the others.
    let y: Vec<Vec<f32>> = Vec::try_from(net.rbf_penalties(&protos.get(3).unsqueeze(0))).unwrap();
    let p: Vec<Vec<f32>> = Vec::try_from(&protos).unwrap();
    for i in 0..10 {
        let differing = (0..84).filter(|&j| p[i][j] != p[3][j]).count() as f32;
        assert_eq!(y[0][i], 4.0 * differing, "digit {i}");
    }
    assert_eq!(y[0][3], 0.0);
    // The network outputs −y for 10 classes.
    let out = net.forward_t(
        &Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(out.size(), [2, 10]);
    assert!(f64::try_from(out.max()).unwrap() <= 0.0);
}

#[test]
fn input_scaling_and_loss_follow_the_paper() {
    // Whatever the dataset's statistics, the network built for it sees background −0.1 and ink 1.175
    // (Fashion-MNIST's input scaled with MNIST's statistics would have a background of about −0.25).
    for dataset in [Dataset::Mnist, Dataset::FashionMnist] {
        let (_, net) = build_for(dataset);
        let norm = dataset.normalization();
        let raw = |value: f64| Tensor::full([1, 1, 28, 28], value, (Kind::Float, Device::Cpu));
        let x = lenet1998::paper_input(
            &lenet5_core::data::normalize(&norm, &raw(0.0)),
            &net.normalization,
        );
        assert_eq!(x.size(), [1, 1, 32, 32]);
        let (max, min) = (
            f64::try_from(x.max()).unwrap(),
            f64::try_from(x.min()).unwrap(),
        );
        assert!(
            (max + 0.1).abs() < 1e-5 && (min + 0.1).abs() < 1e-5,
            "{dataset:?}: {min}..{max}"
        );
        let x = lenet1998::paper_input(
            &lenet5_core::data::normalize(&norm, &raw(1.0)),
            &net.normalization,
        );
        let ink = f64::try_from(x.get(0).get(0).get(16).get(16)).unwrap();
        assert!((ink - 1.175).abs() < 1e-5, "{dataset:?}: ink {ink}");
        assert!(
            (f64::try_from(x.get(0).get(0).get(0).get(0)).unwrap() + 0.1).abs() < 1e-5,
            "padding is background"
        );
    }
    // Eq. 9: y_D + log(e^{-j} + Σ_i e^{-y_i}).
    let y =
        Tensor::from_slice(&[3.0f32, 1.0, 5.0, 2.0, 7.0, 9.0, 4.0, 6.0, 8.0, 10.0]).view([1, 10]);
    let loss = f64::try_from(lenet1998::map_loss(
        &-&y,
        &Tensor::from_slice(&[2i64]),
        Reduction::Mean,
    ))
    .unwrap();
    let ys: Vec<f64> = vec![3.0, 1.0, 5.0, 2.0, 7.0, 9.0, 4.0, 6.0, 8.0, 10.0];
    let expected =
        ys[2] + ((-lenet1998::MAP_J).exp() + ys.iter().map(|v| (-v).exp()).sum::<f64>()).ln();
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
}

#[test]
fn the_speed_form_that_trains_equals_the_paper_s_chain() {
    let (vs, net) = build();
    tch::manual_seed(6);
    let xs = Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let _ = xs.narrow(2, 0, 5).fill_(-0.4242);
    let plain = net.forward_t(&xs, true);
    let fast = lenet5_core::nn::fast::lenet1998::forward(&net, &xs);
    let scale = f64::try_from(plain.abs().max()).unwrap();
    let diff = f64::try_from((&fast - &plain).abs().max()).unwrap();
    assert!(diff / scale < 1e-5, "logits: {diff} of {scale}");
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
    let params = vs.trainable_variables();
    let grads = |out: &Tensor| {
        let loss = lenet1998::map_loss(out, &labels, Reduction::Mean);
        Tensor::run_backward(&[loss], &params, true, false)
    };
    for (g_fast, g_plain) in grads(&fast).iter().zip(&grads(&plain)) {
        let scale = f64::try_from(g_plain.abs().max()).unwrap().max(1e-8);
        let diff = f64::try_from((g_fast - g_plain).abs().max()).unwrap();
        assert!(diff / scale < 1e-4, "gradient: {diff} of {scale}");
    }
}

/// L1 penalises the weights the net computes with: C3's unconnected weights (outside Table I) neither add
/// to the penalty nor get its gradient.
#[test]
fn l1_skips_c3_weights_the_table_does_not_connect() {
    let (vs, net) = build();
    let used = [&net.c1.ws, &net.c5.ws, &net.f6.ws]
        .iter()
        .map(|w| f64::try_from(w.abs().sum(Kind::Double)).unwrap())
        .sum::<f64>()
        + f64::try_from((&net.c3.ws * &net.c3_mask).abs().sum(Kind::Double)).unwrap();
    let net = Net::Lenet1998(net);
    let penalty = lenet5_core::nn::loss::l1_penalty(&net);
    let got = f64::try_from(&penalty).unwrap();
    assert!((got - used).abs() < 1e-3 * used, "{got} against {used}");
    penalty.backward();
    let Net::Lenet1998(net) = &net else {
        unreachable!()
    };
    let unconnected = (net.c3.ws.grad() * (net.c3_mask.ones_like() - &net.c3_mask))
        .abs()
        .sum(Kind::Float);
    assert_eq!(f64::try_from(unconnected).unwrap(), 0.0);
    drop(vs);
}
