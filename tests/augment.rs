//! Distortions: the identity at zero strength, deterministic under a seed, and real distortions otherwise.
//! One test function, because LibTorch's generator is global and tests in one file run in parallel.
use lenet5_core::data::Dataset;
use lenet5_core::nn::augment::distort;
use lenet5_lab::config::AugmentConfig;
use tch::{Device, Kind, Tensor};

#[test]
fn identity_at_zero_deterministic_under_a_seed() {
    tch::manual_seed(0);
    let xs = Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let mnist_background =
        lenet5_core::data::background(&Dataset::Mnist.normalization(), Device::Cpu);
    let same = distort(&xs, &AugmentConfig::default(), &mnist_background);
    let diff = f64::try_from((&same - &xs).abs().max()).unwrap();
    assert!(
        diff < 1e-5,
        "zero strength must not change the images: {diff}"
    );

    let cfg = AugmentConfig {
        translate: 2.0,
        scale: 0.15,
        squeeze: 0.15,
        shear: 0.2,
        rotate: 10.0,
    };
    tch::manual_seed(42);
    let a = distort(&xs, &cfg, &mnist_background);
    tch::manual_seed(42);
    let b = distort(&xs, &cfg, &mnist_background);
    assert!(a.equal(&b), "same seed, same distortions");
    tch::manual_seed(43);
    let c = distort(&xs, &cfg, &mnist_background);
    assert!(!a.equal(&c), "another seed, other distortions");
    let moved = f64::try_from((&a - &xs).abs().mean(Kind::Float)).unwrap();
    assert!(moved > 0.05, "distortions change the images: {moved}");

    // Pixels from outside are the dataset's background (a raw 0), not normalised zero: Fashion-MNIST's here.
    let fashion = Dataset::FashionMnist.normalization();
    let background_tensor = lenet5_core::data::background(&fashion, Device::Cpu);
    let background = (0.0 - fashion.mean[0]) / fashion.std[0];
    let img = Tensor::full([1, 1, 28, 28], background, (Kind::Float, Device::Cpu));
    let _ = img.narrow(2, 10, 8).narrow(3, 10, 8).fill_(2.0);
    let shifted = distort(&img, &AugmentConfig::default(), &background_tensor);
    assert!(f64::try_from((&shifted - &img).abs().max()).unwrap() < 1e-5);
    let corner = f64::try_from(
        distort(
            &img,
            &AugmentConfig {
                rotate: 30.0,
                ..Default::default()
            },
            &background_tensor,
        )
        .get(0)
        .get(0)
        .get(0)
        .get(0),
    )
    .unwrap();
    assert!(
        (corner - background).abs() < 1e-5,
        "corners rotated in from outside are background: {corner}"
    );
}
