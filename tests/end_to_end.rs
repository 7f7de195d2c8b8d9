//! The real binary on synthetic MNIST: train → run directory → test, resume, and determinism.
mod common;
use common::*;
use std::path::Path;

fn setup(name: &str, extra: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = tiny_project(name, 300, 100, extra);
    (dir.clone(), dir.join("runs"))
}

fn csv_lines(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The loss and accuracy columns only (seconds differ between runs).
fn loss_columns(run: &Path) -> Vec<String> {
    csv_lines(run)
        .iter()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn train_writes_run_directory_and_test_reads_it() {
    let (dir, runs) = setup("e2e_train", "");
    let out = ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "3"]));
    assert!(
        out.contains("test: loss"),
        "train prints the test result:\n{out}"
    );
    // One console line per epoch, the first one the best so far.
    assert_eq!(
        out.lines().filter(|l| l.starts_with("epoch ")).count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("epoch   1/3  lr 1.00e-3  loss ")
            && out.lines().next().unwrap().ends_with("*best"),
        "{out}"
    );
    let run = only_run(&runs);
    assert!(
        run.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tiny-")
    );

    let lines = csv_lines(&run);
    assert_eq!(
        lines[0],
        "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds"
    );
    assert_eq!(lines.len(), 1 + 3, "one row per epoch:\n{lines:#?}");
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(line.starts_with(&format!("{},", i + 1)), "{line}");
    }

    for file in ["best.safetensors", "last.safetensors"] {
        let tensors = tch::Tensor::read_safetensors(run.join(file)).unwrap();
        let mut names: Vec<_> = tensors.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        let mut expected = PARAMETER_NAMES.map(str::to_owned).to_vec();
        expected.sort();
        assert_eq!(names, expected, "{file}");
    }
    let saved = lenet5_lab::config::load(&run.join("config.yaml"), &[]).unwrap();
    assert_eq!(
        saved.trainer.epochs, 3,
        "the resolved config includes the --epochs override"
    );
    assert!(run.join("test.json").is_file());
    // The test line gives the loss as people read it (`lenet5_lab::number`), not in 30-odd digits.
    let test: lenet5_lab::rundir::evaluation::Evaluation =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).unwrap()).unwrap();
    let loss = format!("test: loss {}  accuracy", lenet5_lab::number(test.loss));
    assert!(out.contains(&loss), "{loss:?} in:\n{out}");

    // `test` defaults to the most recent run under runs/.
    let out = ok(lenet5(
        &dir,
        &["test", "--runs-dir", runs.to_str().unwrap(), "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"], 100);
    assert_eq!(v["confusion"].as_array().unwrap().len(), 10);
    // It learned: chance is 10% on the ten synthetic classes.
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    assert_eq!(
        v["saved_to"].as_str().unwrap(),
        run.join("test.json").to_str().unwrap()
    );
    let text = ok(lenet5(&dir, &["test", run.to_str().unwrap()]));
    assert!(
        text.contains("top-3 accuracy") && text.contains("confusion matrix"),
        "{text}"
    );
    assert!(
        text.contains(&format!("loss: {}\n", lenet5_lab::number(test.loss))),
        "{text}"
    );
    mistakes_are_the_highest_losses(&dir, &run, test.loss);
}

/// `test --mistakes N`: every image asked for gives all 100 per-image losses, whose mean is the test loss;
/// they come highest first, and the grid is drawn beside them.
fn mistakes_are_the_highest_losses(dir: &Path, run: &Path, test_loss: f64) {
    let text = ok(lenet5(
        dir,
        &["test", run.to_str().unwrap(), "--mistakes", "1000"],
    ));
    let out = run.join("mistakes");
    assert!(
        text.contains(&format!(
            "the 100 worst-scored test digits drawn in {}",
            out.display()
        )),
        "{text}"
    );
    let mut rows = csv::Reader::from_path(out.join("mistakes.csv")).unwrap();
    let rows: Vec<(i64, i64, i64, f64, f64)> = rows.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 100);
    let losses: Vec<f64> = rows.iter().map(|r| r.4).collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "{losses:?}");
    let mean = losses.iter().sum::<f64>() / 100.0;
    assert!((mean - test_loss).abs() < 1e-4, "{mean} vs {test_loss}");
    let mut indices: Vec<i64> = rows.iter().map(|r| r.0).collect();
    indices.sort();
    assert_eq!(indices, (0..100).collect::<Vec<_>>(), "each image once");
    let wrong = rows.iter().filter(|r| r.1 != r.2).count();
    assert!(
        rows[..wrong].iter().all(|r| r.1 != r.2),
        "a wrong answer costs more than any right one here"
    );
    let png = std::fs::read(out.join("mistakes.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert!(
        !out.join("mistakes.svg").exists(),
        "no SVG: one element per pixel"
    );
    // Elsewhere with --mistakes-out, and not asked for, nothing drawn.
    let elsewhere = dir.join("worst");
    ok(lenet5(
        dir,
        &[
            "test",
            run.to_str().unwrap(),
            "--mistakes",
            "3",
            "--mistakes-out",
            elsewhere.to_str().unwrap(),
        ],
    ));
    let three = std::fs::read_to_string(elsewhere.join("mistakes.csv")).unwrap();
    assert_eq!(three.lines().count(), 1 + 3, "{three}");
}

#[test]
fn two_seeded_cpu_runs_give_identical_metrics() {
    let (dir, runs) = setup("e2e_determinism", "");
    ok(lenet5(&dir, &["train", "tiny.yaml", "--name", "a"]));
    ok(lenet5(&dir, &["train", "tiny.yaml", "--name", "b"]));
    let mut found: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    assert_eq!(loss_columns(&found[0]), loss_columns(&found[1]));
    // And a different seed really changes them, so the comparison above can fail.
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--name", "c", "--seed", "7"],
    ));
    let c = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("/c-"))
        .unwrap();
    assert_ne!(loss_columns(&found[0]), loss_columns(&c));
}

#[test]
fn resume_continues_without_gaps_or_duplicates() {
    let (dir, runs) = setup("e2e_resume", "");
    ok(lenet5(
        &dir,
        &[
            "train",
            "tiny.yaml",
            "--epochs",
            "2",
            "--set",
            "trainer.early_stopping.enabled=false",
        ],
    ));
    let run = only_run(&runs);
    let out = lenet5(&dir, &["train", "--resume", run.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a finished run is not resumed without more epochs: {}",
        stderr(&out)
    );
    ok(lenet5(
        &dir,
        &["train", "--resume", run.to_str().unwrap(), "--epochs", "4"],
    ));
    let epochs: Vec<String> = csv_lines(&run)[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(epochs, ["1", "2", "3", "4"]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["epoch"], 4);
    assert_eq!(state["status"], "completed");
}

#[test]
fn trains_on_cifar10_with_three_input_channels() {
    let dir = scratch("e2e_cifar");
    write_cifar(&dir.join("cifar"), 40);
    let yaml = tiny_config(&dir.join("cifar"), &dir.join("runs"), "")
        .replace("data:\n", "data:\n  dataset: cifar10\n");
    std::fs::write(dir.join("cifar.yaml"), yaml).unwrap();
    for variant in ["lenet5", "lenet5_modern"] {
        let run_dir = format!("runs/{variant}");
        ok(lenet5(
            &dir,
            &[
                "train",
                "cifar.yaml",
                "--run-dir",
                &run_dir,
                "--set",
                &format!("model.variant={variant}"),
            ],
        ));
        let tensors =
            tch::Tensor::read_safetensors(dir.join(&run_dir).join("best.safetensors")).unwrap();
        let conv1 = tensors.iter().find(|(n, _)| n == "conv1.weight").unwrap();
        assert_eq!(
            conv1.1.size(),
            [6, 3, 5, 5],
            "{variant}: conv1 takes 3 channels"
        );
    }
    let out = lenet5(
        &dir,
        &["train", "cifar.yaml", "--set", "model.variant=lenet5_1998"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "the 1998 network is for 28×28 grey images: {}",
        stderr(&out)
    );
}

#[test]
fn a_resumed_run_matches_an_uninterrupted_one_with_every_optimizer() {
    // Weights, the optimizer's state (Adam's moments, SGD's and RMSprop's momentum buffers, AdamW's and
    // RMSprop's averages, the step count), the scheduler and the per-epoch shuffles are all restored, so
    // stopping after epoch 2 and resuming gives the very same numbers as training 4 epochs straight.
    let (dir, runs) = setup(
        "e2e_resume_exact",
        "lr_scheduler:\n  type: step\n  step_size: 3\n  gamma: 0.5\n",
    );
    let optimizers: [&[&str]; 5] = [
        &["optimizer.type=adam"],
        &[
            "optimizer.type=sgd",
            "optimizer.momentum=0.9",
            "optimizer.nesterov=true",
            "optimizer.lr=0.05",
        ],
        &["optimizer.type=adamw", "optimizer.weight_decay=0.01"],
        &[
            "optimizer.type=rmsprop",
            "optimizer.momentum=0.5",
            "optimizer.centered=true",
        ],
        &["optimizer.type=sgd", "optimizer.lr=0.05"],
    ];
    for (k, sets) in optimizers.iter().enumerate() {
        let mut set = vec!["--set", "trainer.early_stopping.enabled=false"];
        sets.iter().for_each(|s| set.extend(["--set", s]));
        let (straight, resumed) = (format!("runs/straight{k}"), format!("runs/resumed{k}"));
        let train = |run: &str, epochs: &str| {
            let mut args = vec!["train", "tiny.yaml", "--run-dir", run, "--epochs", epochs];
            args.extend(&set);
            ok(lenet5(&dir, &args));
        };
        train(&straight, "4");
        train(&resumed, "2");
        let state = runs.join(format!("resumed{k}/optimizer.safetensors"));
        assert_eq!(
            state.is_file(),
            k < 4,
            "{sets:?}: plain SGD alone has no state"
        );
        let out = lenet5(&dir, &["train", "--resume", &resumed, "--epochs", "4"]);
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        ok(out);
        assert_eq!(
            loss_columns(&dir.join(&straight)),
            loss_columns(&dir.join(&resumed)),
            "{sets:?}"
        );
        let layers = |run: &str| std::fs::read_to_string(dir.join(run).join("layers.csv")).unwrap();
        assert_eq!(layers(&straight), layers(&resumed), "{sets:?}: layers.csv");
    }
}

#[test]
fn a_thread_count_left_to_lenet5_is_chosen_once_and_recorded_for_resume() {
    let (dir, runs) = setup("e2e_threads", "");
    let out = lenet5(
        &dir,
        &["train", "tiny.yaml", "--epochs", "1", "--threads", "0"],
    );
    let err = stderr(&out);
    ok(out);
    let chosen = err
        .lines()
        .find_map(|l| l.strip_prefix("threads: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `threads:` line: {err}"));
    let config = std::fs::read_to_string(only_run(&runs).join("config.yaml")).unwrap();
    assert!(
        config.contains(&format!("threads: {chosen} "))
            || config.contains(&format!("threads: {chosen}\n")),
        "config.yaml records threads {chosen}: {config}"
    );
    assert!(chosen.parse::<usize>().unwrap() >= 1);
}

#[test]
fn every_checkpoint_selection_is_scored_with_each_images_answer() {
    use lenet5_lab::rundir::dir::RunDir;
    use lenet5_lab::rundir::selections::{Predictions, Selection};
    let (dir, runs) = setup("e2e_selections", "");
    ok(lenet5(&dir, &["train", "tiny.yaml", "--epochs", "4"]));
    let run = RunDir::open(&only_run(&runs)).unwrap();
    let (state, test) = (run.state().unwrap().unwrap(), run.test().unwrap().unwrap());
    let scored = run.selections().unwrap();
    let names: Vec<&str> = scored.iter().map(|s| s.selection.name()).collect();
    assert_eq!(names, ["best_val_loss", "best_val_accuracy", "last"]);
    let epochs: Vec<usize> = scored.iter().map(|s| s.epoch).collect();
    assert_eq!(epochs, [state.best_epoch, state.other_best.unwrap().0, 4]);
    // The headline is the monitored (validation loss) best.
    assert_eq!(
        (scored[0].accuracy, scored[0].loss),
        (test.accuracy, test.loss)
    );
    let table = Predictions::read(&run.file("predictions.csv.gz")).unwrap();
    assert_eq!(table.labels.len(), 100);
    for s in &scored {
        assert_eq!(table.accuracy(s.selection), Some(s.accuracy), "{s:?}");
        // Each selection's own checkpoint, scored alone, says the same.
        let file = run.file(&s.checkpoint);
        let out = ok(lenet5(&dir, &["test", file.to_str().unwrap(), "--json"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["accuracy"].as_f64(), Some(s.accuracy), "{s:?}");
    }
    assert!(table.accuracy(Selection::Last).is_some());
    // `lenet5 test` of the run scores the selections again, to the same numbers.
    let before = std::fs::read(run.file("test.json")).unwrap();
    ok(lenet5(&dir, &["test", run.path.to_str().unwrap()]));
    assert_eq!(std::fs::read(run.file("test.json")).unwrap(), before);
}

#[test]
fn layer_health_matches_the_checkpoints_and_names_dead_and_saturated_units() {
    // layers.csv's weight norms and update ratios recomputed from the epoch checkpoints; the activation
    // numbers are shares (tests/tensorboard.rs reads the same numbers back from the event files).
    let (dir, runs) = setup("e2e_layers", "");
    for (name, activation) in [("relu", "relu"), ("sigmoid", "sigmoid")] {
        let set = format!("model.activation={activation}");
        let run = format!("runs/{name}");
        ok(lenet5(
            &dir,
            &[
                "train",
                "tiny.yaml",
                "--run-dir",
                &run,
                "--set",
                &set,
                "--set",
                "trainer.save_period=1",
            ],
        ));
        let rows: Vec<lenet5_lab::rundir::layers::LayerRow> =
            lenet5_lab::rundir::metrics::read_rows(&runs.join(name).join("layers.csv")).unwrap();
        let weights = [
            "conv1.weight",
            "conv2.weight",
            "fc1.weight",
            "fc2.weight",
            "fc3.weight",
        ];
        let activations = ["S2", "S4", "F5", "F6"];
        let layers: Vec<&str> = rows
            .iter()
            .filter(|r| r.epoch == 2)
            .map(|r| r.layer.as_str())
            .collect();
        assert_eq!(layers, [&weights[..], &activations[..]].concat(), "{name}");
        let tensor = |epoch: usize, layer: &str| {
            let file = runs.join(name).join(format!("epoch-{epoch}.safetensors"));
            let all = tch::Tensor::read_safetensors(file).unwrap();
            all.into_iter().find(|(n, _)| n == layer).unwrap().1
        };
        for w in weights {
            let row = rows.iter().find(|r| r.epoch == 2 && r.layer == w).unwrap();
            let norm = f64::try_from(tensor(2, w).norm()).unwrap();
            assert!(
                (row.weight_norm.unwrap() - norm).abs() < 1e-5 * norm,
                "{name} {w}"
            );
            let step = f64::try_from((tensor(2, w) - tensor(1, w)).norm()).unwrap();
            let ratio = step / f64::try_from(tensor(1, w).norm()).unwrap();
            assert!(
                (row.update_ratio.unwrap() - ratio).abs() < 1e-4 * ratio,
                "{name} {w}: {row:?} vs {ratio}"
            );
            assert!(row.grad_norm.unwrap() > 0.0 && row.mean.is_none());
        }
        for r in rows
            .iter()
            .filter(|r| activations.contains(&r.layer.as_str()))
        {
            let share = if name == "relu" {
                (r.dead, r.saturated)
            } else {
                (r.saturated, r.dead)
            };
            assert!(
                share.0.is_some_and(|s| (0.0..=1.0).contains(&s)) && share.1.is_none(),
                "{r:?}"
            );
        }
    }
}
