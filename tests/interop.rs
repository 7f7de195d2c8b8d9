//! PyTorch interop both ways, with the Python torch set-up installed (`LENET5_PYTHON`): lenet5's checkpoints
//! load with `load_state_dict(strict=True)` into the seed's module and give the same logits, and a
//! `.safetensors` saved from PyTorch gives the same results in lenet5.
mod common;
use common::*;
use std::path::Path;
use tch::nn::ModuleT;

fn reference(python: &str, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference.py");
    let args: Vec<&str> = [script.to_str().unwrap()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    serde_json::from_slice(&run_python(python, &args)).unwrap_or(serde_json::Value::Null)
}

/// lenet5's logits for the first `n` test images of `data`, with weights from `weights`.
fn our_logits(
    config: &lenet5_lab::config::Config,
    weights: &Path,
    data: &Path,
    n: i64,
) -> Vec<Vec<f32>> {
    let (mut vs, net) = lenet5_core::nn::build(config, tch::Device::Cpu);
    lenet5_core::run::weights::load(&mut vs, weights).unwrap();
    let ds = tch::vision::mnist::load_dir(data).unwrap();
    let pixels = ds.test_images.narrow(0, 0, n).view([-1, 1, 28, 28]);
    let xs =
        lenet5_core::data::normalize(&lenet5_core::data::Dataset::Mnist.normalization(), &pixels);
    Vec::try_from(net.forward_t(&xs, false)).unwrap()
}

/// Equal to 1e-5, relative where |logit| > 1 (the 1998 net's are RBF penalties in the tens and hundreds).
fn assert_close(ours: &[Vec<f32>], theirs: &serde_json::Value) {
    let theirs = theirs["logits"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(theirs) {
        for (x, y) in a.iter().zip(b.as_array().unwrap()) {
            let y = y.as_f64().unwrap() as f32;
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
        }
    }
}

#[test]
fn lenet5_checkpoints_load_in_pytorch_and_back() {
    let Some(python) = python_with_torch("lenet5_checkpoints_load_in_pytorch_and_back") else {
        return;
    };
    let dir = tiny_project("interop", 300, 32, "");
    let data = dir.join("data");
    ok(lenet5(&dir, &["train", "tiny.yaml", "--run-dir", "runs/r"]));
    let config = lenet5_lab::config::load(&dir.join("runs/r/config.yaml"), &[]).unwrap();

    // lenet5 → PyTorch: strict load, same logits on a fixed batch.
    let best = dir.join("runs/r/best.safetensors");
    let theirs = reference(
        &python,
        &[
            "--logits",
            best.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--batch",
            "32",
        ],
    );
    assert_close(&our_logits(&config, &best, &data, 32), &theirs);

    // PyTorch → lenet5: a state_dict saved by PyTorch loads, gives the same logits, and `test` accepts it.
    let from_torch = dir.join("from_torch.safetensors");
    reference(
        &python,
        &[
            "--export-random",
            from_torch.to_str().unwrap(),
            "--seed",
            "3",
        ],
    );
    let theirs = reference(
        &python,
        &[
            "--logits",
            from_torch.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--batch",
            "32",
        ],
    );
    let ours = our_logits(&config, &from_torch, &data, 32);
    assert_close(&ours, &theirs);
    let out = ok(lenet5(
        &dir,
        &[
            "test",
            "--config",
            "tiny.yaml",
            "--checkpoint",
            from_torch.to_str().unwrap(),
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let predicted: Vec<usize> = ours
        .iter()
        .map(|l| (0..10).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap())
        .collect();
    let labels = std::fs::read(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let correct = predicted
        .iter()
        .zip(&labels[8..])
        .filter(|(p, l)| **p == **l as usize)
        .count();
    assert_eq!(v["accuracy"].as_f64().unwrap(), correct as f64 / 32.0);
}

/// test.json's calibration equals torchmetrics' way of computing it (reference.py: softmax, bucketize,
/// L1 over 15 bins) and PyTorch's NLL and Brier score, for the same weights.
fn assert_calibration(name: &str, run: &Path, theirs: &serde_json::Value) {
    let run = lenet5_lab::rundir::dir::RunDir::open(run).unwrap();
    let ours = run.test().unwrap().unwrap().calibration.unwrap();
    let theirs = &theirs["calibration"];
    for (what, x) in [("nll", ours.nll), ("brier", ours.brier), ("ece", ours.ece)] {
        let y = theirs[what].as_f64().unwrap();
        assert!(
            (x - y).abs() <= 1e-6 * y.abs().max(1.0),
            "{name} {what}: {x} vs {y}"
        );
    }
    let counts: Vec<u64> = ours.bins.iter().map(|b| b.count).collect();
    let expected: Vec<u64> = serde_json::from_value(theirs["counts"].clone()).unwrap();
    assert_eq!(counts, expected, "{name}");
}

/// `scripts/reference.py --config`, the benchmark's PyTorch reference of any config, builds the network
/// lenet5 builds: lenet5's trained weights give the same logits in it for the seed's net (another
/// activation, pooling and init), the modern net (batch norm in eval mode) and the 1998 net (C3's table,
/// RBF output); and it trains each config, reading it through `lenet5 config`.
#[test]
fn reference_networks_compute_lenet5s_functions() {
    let Some(python) = python_with_torch("reference_networks_compute_lenet5s_functions") else {
        return;
    };
    let nets = [
        (
            "seed",
            "model:\n  activation: tanh\n  pooling: max\n  init: he_uniform\n",
        ),
        ("seed_bn", "model:\n  batch_norm: true\n  dropout: 0.1\n"),
        (
            "modern",
            "model:\n  variant: lenet5_modern\n  dropout: 0.1\n",
        ),
        (
            "1998",
            "model:\n  variant: lenet5_1998\nlr_scheduler:\n  type: onecycle\n",
        ),
    ];
    for (name, extra) in nets {
        let dir = tiny_project(&format!("interop-reference-{name}"), 300, 32, extra);
        let (data, config_file) = (dir.join("data"), dir.join("tiny.yaml"));
        ok(lenet5(
            &dir,
            &["train", "tiny.yaml", "--epochs", "1", "--run-dir", "runs/r"],
        ));
        let config = lenet5_lab::config::load(&dir.join("runs/r/config.yaml"), &[]).unwrap();
        let best = dir.join("runs/r/best.safetensors");
        let with_config = |more: &[&str]| {
            let mut args = vec![
                "--config",
                config_file.to_str().unwrap(),
                "--binary",
                env!("CARGO_BIN_EXE_lenet5"),
            ];
            args.extend_from_slice(more);
            reference(&python, &args)
        };
        let theirs = with_config(&["--logits", best.to_str().unwrap(), "--batch", "32"]);
        assert_close(&our_logits(&config, &best, &data, 32), &theirs);
        assert_calibration(
            name,
            &dir.join("runs/r"),
            &with_config(&["--evaluate", best.to_str().unwrap()]),
        );
        let trained = with_config(&["--epochs", "1"]);
        let accuracy = trained["val_accuracy"][0].as_f64();
        assert!(
            accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)),
            "{name}: {trained}"
        );
    }
}

/// A config the reference does not mirror is refused with the key and value, not trained differently.
#[test]
fn reference_refuses_a_config_it_does_not_mirror() {
    let Some(python) = python_with_torch("reference_refuses_a_config_it_does_not_mirror") else {
        return;
    };
    let dir = tiny_project("interop-reference-refuses", 30, 10, "");
    let config = dir.join("cifar.yaml");
    std::fs::write(&config, "data:\n  dataset: cifar10\n").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference.py");
    let out = std::process::Command::new(&python)
        .args([
            script.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .args(["--binary", env!("CARGO_BIN_EXE_lenet5")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("data.dataset = cifar10 is not mirrored"),
        "{err}"
    );
}
