//! `predict --explain` on nets trained on synthetic digits: integrated gradients are complete (they sum to
//! f(image) − f(black), recomputed here with a plain forward pass, within 1%), saliency is the absolute input
//! gradient (checked against central differences), and the heat maps are written.
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
        // Saliency: |d logit / d pixel| at the five most salient pixels, against central differences.
        let s = explain::attribute(&m.net, &x, &norm, 0, Method::Saliency);
        assert!(
            s.map.iter().all(|&a| a >= 0.0),
            "saliency is an absolute gradient"
        );
        let mut order: Vec<usize> = (0..s.map.len()).collect();
        order.sort_by(|&a, &b| s.map[b].total_cmp(&s.map[a]));
        for &i in &order[..5] {
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
