//! `lenet5 export`: every model variant, trained for an epoch on synthetic digits, written as TorchScript
//! and ONNX, then loaded by torch.jit and onnxruntime (tests/check_export.py) and held to lenet5's own
//! logits on raw pixels; bad formats, checkpoints and output paths end in one-line errors.
mod common;
use common::*;
use lenet5_core::run::trained::{Checkpoint, ModelSource, load_model};
use std::path::Path;
use tch::nn::ModuleT;

/// Every network the config can build: the seed's in each activation × pooling (and with batch norm and
/// dropout), the modern one, the 1998 one.
const VARIANTS: [(&str, &str); 9] = [
    ("relu_avg", "model.activation=relu,model.pooling=avg"),
    ("relu_bn", "model.batch_norm=true,model.dropout=0.2"),
    ("relu_max", "model.activation=relu,model.pooling=max"),
    ("tanh_avg", "model.activation=tanh,model.pooling=avg"),
    ("tanh_max", "model.activation=tanh,model.pooling=max"),
    ("sigmoid_avg", "model.activation=sigmoid,model.pooling=avg"),
    ("sigmoid_max", "model.activation=sigmoid,model.pooling=max"),
    ("modern", "model.variant=lenet5_modern,model.dropout=0.2"),
    ("lenet1998", "model.variant=lenet5_1998"),
];

/// Test images: an odd batch, unlike the batch of 2 the trace runs on.
const IMAGES: usize = 13;

/// Trains `name` for one epoch with `sets` (comma-separated KEY=VALUE) into `dir/runs/name`.
fn train(dir: &Path, name: &str, sets: &str) -> std::path::PathBuf {
    let run = dir.join("runs").join(name);
    let mut args = vec!["train", "tiny.yaml", "--epochs", "1", "--run-dir"];
    args.push(run.to_str().unwrap());
    for set in sets.split(',') {
        args.extend(["--set", set]);
    }
    ok(lenet5(dir, &args));
    run
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// lenet5's own logits for `pixels` under `run`'s best checkpoint: the network as `test` and `predict`
/// build it, on the normalised images.
fn own_logits(run: &Path, pixels: &tch::Tensor) -> Vec<f32> {
    let m = load_model(&ModelSource {
        run_dir: Some(run.to_path_buf()),
        config: None,
        checkpoint: Checkpoint::Best,
        runs_dir: run.parent().unwrap().to_path_buf(),
        overrides: vec![],
    })
    .unwrap();
    let norm = m.config.data.dataset.normalization();
    let xs = lenet5_core::data::normalize(&norm, pixels);
    let logits = tch::no_grad(|| m.net.forward_t(&xs, false));
    Vec::<f32>::try_from(logits.view(-1)).unwrap()
}

#[test]
fn every_variant_exports_and_matches_lenet5_in_torch_and_onnxruntime() {
    let dir = tiny_project("export", 64, 16, "");
    let out = dir.join("exported");
    std::fs::create_dir_all(&out).unwrap();
    let labels: Vec<u8> = (0..IMAGES as u8).map(|i| i % 10).collect();
    let raw = synthetic_images(&labels, 9);
    let pixels: Vec<f32> = raw.iter().map(|&p| f32::from(p) / 255.0).collect();
    write_f32(&out.join("pixels.f32"), &pixels);
    let pixels = tch::Tensor::from_slice(&pixels).view([IMAGES as i64, 1, 28, 28]);
    for (name, sets) in VARIANTS {
        let run = train(&dir, name, sets);
        write_f32(
            &out.join(format!("{name}.logits.f32")),
            &own_logits(&run, &pixels),
        );
        for (format, ext) in [("torchscript", "pt"), ("onnx", "onnx")] {
            let file = out.join(format!("{name}.{ext}"));
            let args = ["export", run.to_str().unwrap(), "--format", format];
            let said = ok(lenet5(
                &dir,
                &[&args[..], &["--out", file.to_str().unwrap()]].concat(),
            ));
            assert!(
                said.contains("wrote") && file.is_file(),
                "{name} {format}: {said}"
            );
        }
    }
    // Without --out: the run's export/ directory, named by the checkpoint.
    let run = dir.join("runs/relu_avg");
    ok(lenet5(
        &dir,
        &["export", run.to_str().unwrap(), "--format", "onnx"],
    ));
    assert!(run.join("export/best.onnx").is_file());

    let Some(python) = python_with("export_matches_in_python", "torch, onnx, onnxruntime") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_export.py");
    let mut args = vec![
        script.to_str().unwrap().to_string(),
        out.to_str().unwrap().to_string(),
        IMAGES.to_string(),
    ];
    args.extend(VARIANTS.iter().map(|(name, _)| name.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let said = String::from_utf8(run_python(&python, &refs)).unwrap();
    eprintln!("{said}");
    assert_eq!(said.lines().count(), 3 * VARIANTS.len(), "{said}");
}

/// The lines of stderr that say something (clap's "For more information" hint aside).
fn error_lines(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
        .map(String::from)
        .collect()
}

fn assert_one_line_error(o: &std::process::Output, names: &str) {
    let lines = error_lines(o);
    assert!(!o.status.success(), "succeeded: {lines:?}");
    assert_ne!(o.status.code(), Some(101), "panicked: {lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(names), "{lines:?} does not name {names}");
}

#[test]
fn bad_format_checkpoint_or_out_is_a_one_line_error_and_writes_nothing() {
    let dir = tiny_project("export_errors", 64, 16, "");
    let run = train(&dir, "relu", "model.activation=relu");
    let run = run.to_str().unwrap();
    // Weights outside a run, with the config that builds them: written to ./CHECKPOINT.EXT.
    let weights = format!("{run}/best.safetensors");
    let args = ["export", "--config", "tiny.yaml", "--checkpoint", &weights];
    ok(lenet5(
        &dir,
        &[&args[..], &["--format", "torchscript"]].concat(),
    ));
    assert!(dir.join("best.pt").is_file());
    let o = lenet5(&dir, &["export", run, "--format", "keras"]);
    assert_one_line_error(&o, "keras");
    let o = lenet5(
        &dir,
        &["export", run, "--format", "onnx", "--checkpoint", "middle"],
    );
    assert_one_line_error(&o, "middle");
    let missing = dir.join("missing.safetensors");
    let missing = missing.to_str().unwrap();
    let o = lenet5(
        &dir,
        &["export", run, "--format", "onnx", "--checkpoint", missing],
    );
    assert_one_line_error(&o, "missing.safetensors");
    // A regular file where a directory should be: no user, root included, can write there.
    std::fs::write(dir.join("a_file"), "").unwrap();
    for format in ["onnx", "torchscript"] {
        let out = dir.join("a_file/model.out");
        let o = lenet5(
            &dir,
            &[
                "export",
                run,
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_one_line_error(&o, "a_file");
        let o = lenet5(
            &dir,
            &[
                "export",
                run,
                "--format",
                format,
                "--out",
                dir.to_str().unwrap(),
            ],
        );
        assert_one_line_error(&o, "is a directory");
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
        "a half-written file was left: {left:?}"
    );
}
