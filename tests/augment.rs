//! Distortions: the identity at zero strength, deterministic under a seed, and real distortions otherwise.
//! One test function, because LibTorch's generator is global and tests in one file run in parallel.
use lenet5::augment::distort;
use lenet5::config::AugmentConfig;
use tch::{Device, Kind, Tensor};

#[test]
fn identity_at_zero_deterministic_under_a_seed() {
    tch::manual_seed(0);
    let xs = Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let same = distort(&xs, &AugmentConfig::default());
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
    let a = distort(&xs, &cfg);
    tch::manual_seed(42);
    let b = distort(&xs, &cfg);
    assert!(a.equal(&b), "same seed, same distortions");
    tch::manual_seed(43);
    let c = distort(&xs, &cfg);
    assert!(!a.equal(&c), "another seed, other distortions");
    let moved = f64::try_from((&a - &xs).abs().mean(Kind::Float)).unwrap();
    assert!(moved > 0.05, "distortions change the images: {moved}");

    // A pure one-pixel shift moves the content by one pixel and fills in background, not normalised zero.
    let background = -lenet5::data::MNIST_MEAN / lenet5::data::MNIST_STD;
    let img = Tensor::full([1, 1, 28, 28], background, (Kind::Float, Device::Cpu));
    let _ = img.narrow(2, 10, 8).narrow(3, 10, 8).fill_(2.0);
    let shifted = distort(&img, &AugmentConfig::default());
    assert!(f64::try_from((&shifted - &img).abs().max()).unwrap() < 1e-5);
    let corner = f64::try_from(
        distort(
            &img,
            &AugmentConfig {
                rotate: 30.0,
                ..Default::default()
            },
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
