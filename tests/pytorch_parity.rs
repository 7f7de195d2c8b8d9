//! The benchmark's PyTorch reference (scripts/reference.py) is like for like: for the same weights and batch
//! it computes the same loss as lenet5. Uses the Python torch that scripts/setup-libtorch installed
//! (`LENET5_PYTHON`, written into .cargo/config.toml); skipped, loudly, only where there is none.
mod common;
use common::*;
use lenet5::config::{Config, ModelConfig};
use tch::nn::ModuleT;

#[test]
fn reference_computes_the_same_loss_for_the_same_weights_and_batch() {
    let Some(python) = python_with_torch() else {
        return;
    };
    let dir = scratch("parity");
    write_mnist(&dir.join("data"), 256, 10);
    for model in [
        ModelConfig::default(),
        ModelConfig {
            activation: lenet5::config::Activation::Sigmoid,
            ..Default::default()
        },
    ] {
        let config = Config {
            model: model.clone(),
            ..Default::default()
        };
        let (vs, net) = lenet5::train::build_model(&config, tch::Device::Cpu);
        let weights = dir.join("w.safetensors");
        vs.save(&weights).unwrap();
        let ds = tch::vision::mnist::load_dir(dir.join("data")).unwrap();
        let xs = lenet5::data::normalise(&ds.train_images.narrow(0, 0, 128));
        let ys = ds.train_labels.narrow(0, 0, 128);
        let ours = f64::try_from(net.forward_t(&xs, false).cross_entropy_for_logits(&ys)).unwrap();

        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference.py");
        let stdout = run_python(
            &python,
            &[
                script.to_str().unwrap(),
                "--check-loss",
                weights.to_str().unwrap(),
                "--data",
                dir.join("data").to_str().unwrap(),
                "--batch",
                "128",
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        let theirs = v["loss"].as_f64().unwrap();
        if model.activation == lenet5::config::Activation::Relu {
            assert!(
                (ours - theirs).abs() < 1e-5,
                "lenet5 {ours} vs PyTorch {theirs}"
            );
        } else {
            // The reference builds ReLU only unless told otherwise: a different model must give another loss,
            // which shows the comparison above can fail.
            assert!(
                (ours - theirs).abs() > 1e-3,
                "sigmoid weights in a ReLU net should differ: {ours} vs {theirs}"
            );
        }
    }
}
