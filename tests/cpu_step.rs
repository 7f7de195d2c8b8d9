//! lenet5's hand-written CPU step (src/cpu_step.rs) against LibTorch autograd on the same `tch::nn` model:
//! the same loss, correct count and gradients (to float rounding), with and without label smoothing, on
//! one and on several threads; and it stands aside wherever it does not apply.

mod common;

use common::{lenet5, ok, tiny_project};
use lenet5::config::{self, Config};
use lenet5::cpu_step::CpuStep;
use lenet5::model::{self, Net};
use lenet5::optim;
use tch::nn::ModuleT;
use tch::{Device, Kind, Reduction, Tensor};

fn config(overrides: &[&str]) -> Config {
    let sets: Vec<_> = overrides
        .iter()
        .map(|s| config::Override::parse(s).unwrap())
        .collect();
    config::from_yaml_str("trainer:\n  device: cpu\n", "test", &sets).unwrap()
}

/// Loss, correct count and the ten gradients by autograd (conv1.w, conv1.b, conv2.w, ..., fc3.b).
fn autograd(net: &Net, xs: &Tensor, ys: &Tensor, smoothing: f64) -> (f64, i64, Vec<Tensor>) {
    let Net::Lenet5(m) = net else {
        panic!("lenet5")
    };
    let params = [
        &m.conv1.ws,
        m.conv1.bs.as_ref().unwrap(),
        &m.conv2.ws,
        m.conv2.bs.as_ref().unwrap(),
        &m.fc1.ws,
        m.fc1.bs.as_ref().unwrap(),
        &m.fc2.ws,
        m.fc2.bs.as_ref().unwrap(),
        &m.fc3.ws,
        m.fc3.bs.as_ref().unwrap(),
    ];
    let logits = net.forward_t(xs, true);
    let loss = logits.cross_entropy_loss::<Tensor>(ys, None, Reduction::Mean, -100, smoothing);
    let correct = i64::try_from(logits.argmax(-1, false).eq_tensor(ys).sum(Kind::Int64)).unwrap();
    let grads = Tensor::run_backward(&[&loss], &params, false, false);
    (f64::try_from(&loss).unwrap(), correct, grads)
}

fn check(overrides: &[&str], smoothing: f64, batch: i64) {
    let cfg = config(overrides);
    let (vs, net) = model::build(&cfg, Device::Cpu);
    let opt = optim::build(&vs, &cfg.optimizer).unwrap();
    let mut step =
        CpuStep::new(&cfg, &net, &opt, Device::Cpu).expect("the seed's config on the CPU");
    tch::manual_seed(5);
    // Normalised-MNIST-like inputs: mostly background, some bright strokes.
    let xs = (Tensor::rand([batch, 1, 28, 28], (Kind::Float, Device::Cpu)) * 3.2 - 0.42)
        .clamp(-0.42, 2.8);
    let ys = Tensor::randint(10, [batch], (Kind::Int64, Device::Cpu));
    // Every other image of a twice-as-large set, read in place.
    let all_x = Tensor::cat(&[&xs, &xs.flip([0])], 0);
    let all_y = Tensor::cat(&[&ys, &ys.flip([0])], 0);
    let index = Tensor::arange(batch, (Kind::Int64, Device::Cpu));
    let ours = step.gradients(&net, (&all_x, &all_y), &index);
    let (loss, correct, grads) = autograd(&net, &xs, &ys, smoothing);
    assert!(
        (ours.loss - loss).abs() < 1e-5 * loss.abs().max(1.0),
        "loss {} vs {loss}",
        ours.loss
    );
    assert_eq!(ours.correct, correct);
    let names = [
        "conv1.w", "conv1.b", "conv2.w", "conv2.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b", "fc3.w",
        "fc3.b",
    ];
    for ((name, mine), theirs) in names.iter().zip(&ours.grads).zip(&grads) {
        let theirs: Vec<f32> = Vec::try_from(theirs.contiguous().view(-1)).unwrap();
        assert_eq!(mine.len(), theirs.len(), "{name}");
        let scale = theirs.iter().fold(0f32, |a, &b| a.max(b.abs())).max(1e-6);
        let worst = mine
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{name}: max difference {worst} against max |grad| {scale}"
        );
    }
}

#[test]
fn gradients_match_autograd() {
    check(&["trainer.threads=1"], 0.0, 16);
    check(
        &["trainer.threads=2", "regularization.label_smoothing=0.1"],
        0.1,
        37,
    );
    // More threads than images: the extra shards stay empty.
    check(&["trainer.threads=3"], 0.0, 2);
}

#[test]
fn stands_aside_where_it_does_not_apply() {
    for overrides in [
        &["model.pooling=max"][..],
        &["model.activation=tanh"],
        &["optimizer.type=sgd"],
        &["regularization.l1=0.001"],
        &["data.augment.translate=2"],
        &["model.variant=lenet5_1998"],
        &["trainer.fused_cpu=false"],
    ] {
        let cfg = config(overrides);
        let (vs, net) = model::build(&cfg, Device::Cpu);
        let opt = optim::build(&vs, &cfg.optimizer).unwrap();
        assert!(
            CpuStep::new(&cfg, &net, &opt, Device::Cpu).is_none(),
            "{overrides:?}"
        );
    }
}

/// A whole training run through the binary with the step on and off: the same curve to rounding.
#[test]
fn training_with_it_matches_training_through_libtorch() {
    let dir = tiny_project("cpu_step_run", 400, 100, "");
    let run = |fused: &str| -> Vec<Vec<f64>> {
        let run_dir = dir.join(format!("run-{fused}"));
        ok(lenet5(
            &dir,
            &[
                "train",
                "tiny.yaml",
                "--threads",
                "2",
                "--set",
                &format!("trainer.fused_cpu={fused}"),
                "--run-dir",
                run_dir.to_str().unwrap(),
            ],
        ));
        let mut csv = csv::Reader::from_path(run_dir.join("metrics.csv")).unwrap();
        let header = csv.headers().unwrap().clone();
        let cols = ["loss", "accuracy", "val_loss", "val_accuracy"]
            .map(|c| header.iter().position(|h| h == c).unwrap());
        csv.records()
            .map(|r| {
                cols.iter()
                    .map(|&i| r.as_ref().unwrap()[i].parse().unwrap())
                    .collect()
            })
            .collect()
    };
    let (ours, libtorch) = (run("true"), run("false"));
    assert_eq!(ours.len(), 2, "two epochs");
    for (a, b) in ours.iter().zip(&libtorch) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 2e-3 * y.abs().max(1.0),
                "epoch rows {a:?} vs {b:?}"
            );
        }
    }
}
