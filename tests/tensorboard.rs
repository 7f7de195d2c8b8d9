//! TensorBoard event files, read back with the `tensorboard` Python package's own reader (installed into
//! the set-up venv by scripts/setup-libtorch): tags, steps and values against metrics.csv, the HParams
//! session records, and a resumed run continuing the same curves without duplicate steps.
mod common;
use common::*;
use std::path::Path;

/// What tests/read_events.py reports for a run directory.
fn read(python: &str, run: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_events.py");
    let out = run_python(python, &[script.to_str().unwrap(), run.to_str().unwrap()]);
    serde_json::from_slice(&out).unwrap()
}

fn steps(v: &serde_json::Value, tag: &str) -> Vec<i64> {
    v["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no {tag}: {v}"))
        .iter()
        .map(|p| p[0].as_i64().unwrap())
        .collect()
}

#[test]
fn event_files_hold_the_metrics_and_hparams_and_a_resumed_run_continues_them() {
    let Some(python) = python_with_torch(
        "event_files_hold_the_metrics_and_hparams_and_a_resumed_run_continues_them",
    ) else {
        return;
    };
    let dir = tiny_project("tensorboard", 2000, 50, "");
    let args = [
        "train",
        "tiny.yaml",
        "--run-dir",
        "runs/r",
        "--batch-size",
        "8",
        "--set",
        "trainer.early_stopping.enabled=false",
    ];
    ok(lenet5(&dir, &args));
    let run = dir.join("runs/r");
    let v = read(&python, &run);
    let rows = lenet5_lab::rundir::metrics::read(&run.join("metrics.csv")).unwrap();
    // Histograms of each weight tensor and of its probe gradient, every epoch; the last epoch's weights are
    // last.safetensors's (150 values in conv1, their min and max).
    let conv1 = tch::Tensor::read_safetensors(run.join("last.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "conv1.weight")
        .unwrap()
        .1;
    let (min, max) = (
        f64::try_from(conv1.min()).unwrap(),
        f64::try_from(conv1.max()).unwrap(),
    );
    for tag in ["weights/conv1.weight", "gradients/conv1.weight"] {
        let h = v["histograms"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {tag}: {v}"));
        assert_eq!(h.len(), rows.len(), "{tag}: one per epoch");
        for p in h {
            assert_eq!(p[1].as_f64(), Some(150.0), "{tag}");
            assert_eq!(
                p[4].as_f64(),
                Some(150.0),
                "{tag}: the buckets hold every value"
            );
        }
    }
    let last = v["histograms"]["weights/conv1.weight"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    assert!(
        (last[2].as_f64().unwrap() - min).abs() < 1e-6
            && (last[3].as_f64().unwrap() - max).abs() < 1e-6
    );
    // Each layer's health: layers.csv's numbers, by epoch, under layers/{layer}/{number}.
    let layers: Vec<lenet5_lab::rundir::layers::LayerRow> =
        lenet5_lab::rundir::metrics::read_rows(&run.join("layers.csv")).unwrap();
    for (layer, get) in [
        (
            "conv1.weight/grad_norm",
            (|r: &lenet5_lab::rundir::layers::LayerRow| r.grad_norm) as fn(&_) -> _,
        ),
        ("S2/dead", |r| r.dead),
        ("F5/mean", |r| r.mean),
    ] {
        let name = layer.split('/').next().unwrap();
        let expected: Vec<f64> = layers
            .iter()
            .filter(|r| r.layer == name)
            .map(|r| get(r).unwrap())
            .collect();
        let got: Vec<f64> = v["scalars"][format!("layers/{layer}")]
            .as_array()
            .unwrap_or_else(|| panic!("no layers/{layer}: {v}"))
            .iter()
            .map(|p| p[1].as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), expected.len(), "{layer}");
        assert!(
            got.iter()
                .zip(&expected)
                .all(|(g, e)| (g - e).abs() <= 1e-6 * e.abs().max(1e-6)),
            "{layer}: {got:?} vs {expected:?}"
        );
    }
    for (tag, column) in [
        ("loss/train", 2usize),
        ("loss/valid", 4),
        ("accuracy/train", 3),
        ("accuracy/valid", 5),
        ("lr", 1),
    ] {
        let points = v["scalars"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {tag}: {v}"));
        assert_eq!(points.len(), rows.len(), "{tag}");
        for (p, r) in points.iter().zip(&rows) {
            let expected = [
                r.epoch as f64,
                r.lr,
                r.loss,
                r.accuracy,
                r.val_loss,
                r.val_accuracy,
            ][column];
            assert_eq!(p[0].as_u64().unwrap() as usize, r.epoch, "{tag} step");
            let got = p[1].as_f64().unwrap();
            assert!(
                (got - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                "{tag} epoch {}: {got} vs {expected}",
                r.epoch
            );
        }
    }
    // 1,800 training images in batches of 8: 225 batches an epoch, sync points at 100, 200 and 225.
    assert_eq!(steps(&v, "loss/train_step"), [100, 200, 225, 325, 425, 450]);
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    let reported = v["scalars"]["accuracy/test"][0][1].as_f64().unwrap();
    assert!((reported - test["accuracy"].as_f64().unwrap()).abs() < 1e-6);
    assert_eq!(v["hparams"]["optimizer.type"], "adam");
    assert_eq!(v["hparams"]["data.batch_size"], 8.0);
    assert_eq!(v["hparams"]["trainer.early_stopping.enabled"], false);
    // What made the run, so a study can tell which code produced each session.
    assert_eq!(v["hparams"]["lenet5.commit"], lenet5_lab::COMMIT);
    assert_eq!(v["hparams"]["lenet5.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["status"], 1, "session ended with success");

    // Extended by one epoch: the same curves go on, one event file, no step twice.
    ok(lenet5(
        &dir,
        &["train", "--resume", run.to_str().unwrap(), "--epochs", "3"],
    ));
    let v = read(&python, &run);
    assert_eq!(
        lenet5_core::output::tensorboard::event_files(&run)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(steps(&v, "accuracy/valid"), [1, 2, 3]);
    assert_eq!(
        steps(&v, "loss/train_step"),
        [100, 200, 225, 325, 425, 450, 550, 650, 675]
    );
    assert_eq!(steps(&v, "accuracy/test"), [3]);
    assert_eq!(
        v["hparams"]["trainer.seed"], 123.0,
        "the session start is kept"
    );

    // `test --mistakes`: the grid as an image at the scored (best) epoch, the PNG's own bytes; scored
    // again, it replaces the first, and the curves stay.
    for n in ["6", "4"] {
        ok(lenet5(
            &dir,
            &["test", run.to_str().unwrap(), "--mistakes", n],
        ));
    }
    let v = read(&python, &run);
    let images = v["images"]["mistakes/test"]
        .as_array()
        .unwrap_or_else(|| panic!("no mistakes image: {v}"));
    assert_eq!(images.len(), 1, "{images:?}");
    let png = std::fs::read(run.join("mistakes/mistakes.png")).unwrap();
    let (width, height) = image_size(&png);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(images[0][0], state["best_epoch"]);
    assert_eq!(
        (images[0][1].as_u64(), images[0][2].as_u64()),
        (Some(width), Some(height))
    );
    assert_eq!(images[0][3].as_str(), Some(sha256_hex(&png).as_str()));
    assert_eq!(steps(&v, "accuracy/valid"), [1, 2, 3]);
}

/// A PNG's width and height, from its IHDR chunk.
fn image_size(png: &[u8]) -> (u64, u64) {
    let be = |b: &[u8]| u64::from(u32::from_be_bytes(b.try_into().unwrap()));
    (be(&png[16..20]), be(&png[20..24]))
}

/// sha256 of `bytes`, by the system's sha256sum.
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
