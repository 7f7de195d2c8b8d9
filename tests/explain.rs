//! `predict --explain` on nets trained on synthetic digits: integrated gradients are complete (they sum to
//! f(image) − f(black), recomputed here with a plain forward pass, within 1%), saliency is the absolute input
//! gradient (checked against the plain chain's autograd, and central differences for ReLU), and the heat maps are written. And temperature scaling:
//! the fitted temperature minimises the validation NLL, and the test set is rescored with it.
mod common;
use common::*;
use lenet5_core::run::explain::{self, Method};
use lenet5_core::run::trained::{Checkpoint, ModelSource, load_model};
use tch::nn::ModuleT;

fn model(run: &std::path::Path) -> lenet5_core::run::trained::LoadedModel {
    load_model(&ModelSource {
        run_dir: Some(run.to_path_buf()),
        config: None,
        checkpoint: Checkpoint::Best,
        runs_dir: "runs".into(),
        overrides: vec![],
    })
    .unwrap()
}

#[test]
fn integrated_gradients_are_complete_and_saliency_is_the_input_gradient() {
    let dir = tiny_project("explain", 300, 60, "");
    let digit =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/0-black-on-white.png");
    let nets = [
        ("relu", "model.activation=relu"),
        ("sigmoid", "model.activation=sigmoid"),
    ];
    for (name, set) in nets {
        let run = format!("runs/{name}");
        ok(lenet5(
            &dir,
            &[
                "train",
                "tiny.yaml",
                "--run-dir",
                &run,
                "--set",
                set,
                "--set",
                "model.pooling=max",
            ],
        ));
        let m = model(&dir.join(&run));
        let norm = m.config.data.dataset.normalization();
        let pixels = lenet5_core::data::image::load_image(&digit).unwrap();
        let x = lenet5_core::data::image::to_batch(&[pixels], &norm, m.device);
        let black = lenet5_core::data::background(&norm, m.device).expand_as(&x);
        let logit = |x: &tch::Tensor, c: i64| -> f64 {
            tch::no_grad(|| f64::try_from(m.net.forward_t(x, false).get(0).get(c)).unwrap())
        };
        for target in [0, 3] {
            let ig = explain::attribute(
                &m.net,
                &x,
                &norm,
                target,
                Method::IntegratedGradients { steps: 256 },
            );
            let delta = logit(&x, target) - logit(&black, target);
            assert!(
                (ig.delta - delta).abs() < 1e-4,
                "{name}: delta {} vs {delta}",
                ig.delta
            );
            assert!(
                delta.abs() > 1e-3,
                "{name}: the logit moves, so completeness can fail"
            );
            assert!(
                (ig.sum - delta).abs() <= 0.01 * delta.abs(),
                "{name} class {target}: attributions sum to {}, f(x) − f(black) = {delta}",
                ig.sum
            );
            // Black pixels of the image add nothing: (x − black) is 0 there.
            let raw: Vec<f32> = Vec::try_from((&x - &black).flatten(0, -1)).unwrap();
            assert!(raw.iter().zip(&ig.map).all(|(d, a)| *d != 0.0 || *a == 0.0));
        }
        // Saliency: |d logit / d pixel|, against the gradient through the plain definition (max_pool2d, not
        // the speed form that attribute() runs) everywhere, and against central differences at the five
        // most salient pixels where the gradient stands well above float rounding (ReLU's ~0.07; sigmoid's
        // ~2e-4 is within the f32 logit's rounding over a step of 1e-2).
        let s = explain::attribute(&m.net, &x, &norm, 0, Method::Saliency);
        assert!(
            s.map.iter().all(|&a| a >= 0.0),
            "saliency is an absolute gradient"
        );
        let xg = x.copy().set_requires_grad(true);
        let plain = tch::Tensor::run_backward(
            &[m.net.forward_plain(&xg, false).get(0).get(0)],
            &[&xg],
            false,
            false,
        )
        .remove(0);
        let plain: Vec<f32> = Vec::try_from(plain.abs().flatten(0, -1)).unwrap();
        let scale = plain.iter().copied().fold(0f32, f32::max);
        for (i, (ours, theirs)) in s.map.iter().zip(&plain).enumerate() {
            assert!(
                (ours - theirs).abs() <= 1e-4 * scale,
                "{name} pixel {i}: saliency {ours}, plain gradient {theirs}"
            );
        }
        let mut order: Vec<usize> = (0..s.map.len()).collect();
        order.sort_by(|&a, &b| s.map[b].total_cmp(&s.map[a]));
        for &i in order[..5].iter().filter(|_| name == "relu") {
            let h = 1e-2;
            let bump = |sign: f64| {
                let e = tch::Tensor::zeros([784], tch::kind::FLOAT_CPU);
                let _ = e.get(i as i64).fill_(sign * h);
                logit(&(&x + e.view([1, 1, 28, 28])), 0)
            };
            let fd = ((bump(1.0) - bump(-1.0)) / (2.0 * h)).abs();
            let g = f64::from(s.map[i]);
            assert!(
                (fd - g).abs() <= 0.05 * g + 1e-4,
                "{name} pixel {i}: saliency {g}, finite difference {fd}"
            );
        }
    }
    // Through the command: the heat maps are drawn, and the JSON carries the completeness numbers.
    let out = ok(lenet5(
        &dir,
        &[
            "predict",
            "runs/relu",
            digit.to_str().unwrap(),
            "--explain",
            "integrated-gradients",
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let e = &v["explanations"][0];
    let (sum, delta) = (e["sum"].as_f64().unwrap(), e["delta"].as_f64().unwrap());
    assert!((sum - delta).abs() <= 0.01 * delta.abs(), "{e}");
    assert_eq!(e["target"], v["predictions"][0]["digit"]);
    let png = std::fs::read(dir.join("explain/0-black-on-white.integrated-gradients.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let out = lenet5(
        &dir,
        &[
            "predict",
            "runs/relu",
            digit.to_str().unwrap(),
            "--explain",
            "gradcam",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn temperature_scaling_minimises_the_validation_nll_and_rescores_the_test_set() {
    // test.json's temperature: no temperature on a fine grid gives the validation split a lower NLL
    // (cross-entropy of logits / T, computed here with LibTorch's own loss); its test NLL is the test
    // logits' at that T; the raw calibration stays beside it.
    let dir = tiny_project("temperature", 300, 100, "");
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--run-dir", "runs/t", "--epochs", "3"],
    ));
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("runs/t/test.json")).unwrap())
            .unwrap();
    let scaled = &test["temperature_scaled"];
    let t = scaled["temperature"].as_f64().unwrap();
    assert!(test["calibration"]["nll"].is_f64(), "the raw numbers stay");
    let m = model(&dir.join("runs/t"));
    let splits = lenet5_core::data::load(&m.config.data, m.device).unwrap();
    let nll = |split: &lenet5_core::data::Split, t: f64| -> f64 {
        let logits =
            tch::no_grad(|| m.net.forward_t(&split.images, false)).to_kind(tch::Kind::Double);
        f64::try_from((logits / t).cross_entropy_for_logits(&split.labels)).unwrap()
    };
    let at_t = nll(&splits.validation, t);
    for k in 0..400 {
        let grid = 0.1 * 100f64.powf(k as f64 / 399.0);
        assert!(
            at_t <= nll(&splits.validation, grid) + 1e-9,
            "T = {grid} beats lenet5's {t}"
        );
    }
    let test_nll = scaled["calibration"]["nll"].as_f64().unwrap();
    assert!((test_nll - nll(&splits.test, t)).abs() < 1e-9, "{test_nll}");
    let counted: u64 = (scaled["calibration"]["bins"].as_array().unwrap().iter())
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 100);
    let text = ok(lenet5(&dir, &["test", "runs/t"]));
    assert!(
        text.contains(&format!(
            "temperature-scaled (T = {t:.3}, fitted on validation)"
        )),
        "{text}"
    );
}
