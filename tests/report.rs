//! The report: exact Markdown for hand-made runs, valid SVG/PNG charts, unfinished runs flagged.
mod common;
use common::*;
use lenet5_lab::config::Config;
use lenet5_lab::rundir::evaluation::Evaluation;
use lenet5_lab::rundir::metrics::EpochRow;
use lenet5_lab::rundir::state::{RunStatus, TrainState};
use lenet5_lab::study::runs::{self, RunSummary, TableEpoch};

fn row(epoch: usize, val_loss: f64) -> EpochRow {
    EpochRow {
        epoch,
        lr: 0.001,
        loss: 0.5 / epoch as f64,
        accuracy: 0.9 + 0.01 * epoch as f64,
        val_loss,
        val_accuracy: 0.95 + 0.01 * epoch as f64,
        seconds: 2.5,
    }
}

fn state(epoch: usize, best_epoch: usize, status: RunStatus) -> TrainState {
    TrainState {
        epoch,
        best_epoch,
        best_value: Some(0.1),
        epochs_without_improvement: epoch - best_epoch,
        status,
        train_seconds: 2.5 * epoch as f64,
        ..TrainState::new(&Config::default())
    }
}

fn test_result(accuracy: f64) -> Evaluation {
    Evaluation {
        images: 10000,
        loss: 0.03,
        accuracy,
        top3_accuracy: 0.999,
        per_class_accuracy: vec![accuracy; 10],
        confusion: vec![vec![0; 10]; 10],
        calibration: None,
        most_confused: vec![],
        temperature_scaled: None,
    }
}

fn runs() -> Vec<RunSummary> {
    let mut sigmoid = Config::default();
    sigmoid.model.activation = lenet5_lab::config::Activation::Sigmoid;
    sigmoid.optimizer.weight_decay = 0.001;
    let mut relu_no_es = Config::default();
    relu_no_es.trainer.early_stopping.enabled = false;
    relu_no_es.model.pooling = lenet5_lab::config::Pooling::Max;
    vec![
        RunSummary {
            name: "sigmoid_wd".into(),
            config: sigmoid,
            rows: vec![row(1, 0.2), row(2, 0.1), row(3, 0.15)],
            state: Some(state(3, 2, RunStatus::EarlyStopped)),
            test: Some(test_result(0.9876)),
            train_eval: None,
            selections: vec![],
            layers: vec![],
        },
        RunSummary {
            name: "relu_max".into(),
            config: relu_no_es,
            rows: vec![row(1, 0.3)],
            state: Some(state(1, 1, RunStatus::Interrupted)),
            test: None,
            train_eval: None,
            selections: vec![],
            layers: vec![],
        },
        RunSummary {
            name: "empty".into(),
            config: Config::default(),
            rows: vec![],
            state: None,
            test: None,
            train_eval: None,
            selections: vec![],
            layers: vec![],
        },
    ]
}

#[test]
fn table_is_the_seed_layout_with_test_accuracy_and_wall_time() {
    let expected = "\
| Run | Early stopping | Activation | Pooling | Weight decay | Initialization | Optimizer | Epochs | Loss | Accuracy | Val loss | Val accuracy | Test accuracy | Wall time | Status |
|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|
| sigmoid_wd | patience 10 | sigmoid | avg | 0.001 | xavier_uniform | Adam (lr 0.001, amsgrad) | 3 (best 2) | 0.2500 | 92.00% | 0.1000 | 97.00% | 98.76% | 8 s | finished (early stop) |
| relu_max | No | relu | max | 0 | xavier_uniform | Adam (lr 0.001, amsgrad) | 1 (best 1) | 0.5000 | 91.00% | 0.3000 | 96.00% | — | 2 s | unfinished: interrupted after epoch 1 |
| empty | patience 10 | relu | avg | 0 | xavier_uniform | Adam (lr 0.001, amsgrad) | 0 | — | — | — | — | — | 0 s | empty: no completed epoch |
";
    assert_eq!(runs::render_table(&runs(), TableEpoch::Best), expected);
    let last = runs::render_table(&runs(), TableEpoch::Final);
    assert!(last.contains("| sigmoid_wd | patience 10 | sigmoid | avg | 0.001 | xavier_uniform | Adam (lr 0.001, amsgrad) | 3 | 0.1667 | 93.00% | 0.1500 | 98.00% | 98.76% |"), "{last}");
}

#[test]
fn charts_are_valid_svg_and_png() {
    let runs = runs();
    for panels in [runs::curves(&runs[0]), runs::overlay(&runs)] {
        let svg = lenet5_lab::chart::render_svg(&panels, (600, 300)).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.trim_end().ends_with("</svg>")
                && svg.contains("polyline"),
            "{}",
            &svg[..200]
        );
        assert!(svg.contains("epoch") && svg.contains("sigmoid_wd"));
        let png = lenet5_lab::chart::render_png(&panels, (600, 300)).unwrap();
        let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (600, 300));
    }
}

#[test]
fn report_command_flags_unfinished_runs() {
    let dir = tiny_project("report_cli", 200, 50, "");
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--run-dir", "runs/done"],
    ));
    // An unfinished run: a second run directory whose state says it was interrupted.
    ok(lenet5(
        &dir,
        &[
            "train",
            "tiny.yaml",
            "--run-dir",
            "runs/cut",
            "--epochs",
            "3",
        ],
    ));
    let state = std::fs::read_to_string(dir.join("runs/cut/state.json"))
        .unwrap()
        .replace("\"completed\"", "\"interrupted\"");
    std::fs::write(dir.join("runs/cut/state.json"), state).unwrap();
    std::fs::remove_file(dir.join("runs/cut/test.json")).unwrap();
    let out = lenet5(&dir, &["report", "runs/done", "runs/cut", "--out", "rep"]);
    let table = ok(out);
    assert!(
        table.contains("| done |") && table.contains("| cut |"),
        "{table}"
    );
    assert!(
        table.contains("unfinished: interrupted after epoch 3"),
        "{table}"
    );
    for f in [
        "report.md",
        "overlay.svg",
        "overlay.png",
        "done-curves.svg",
        "done-curves.png",
        "cut-curves.png",
    ] {
        assert!(
            std::fs::metadata(dir.join("rep").join(f)).unwrap().len() > 1000,
            "{f}"
        );
    }
    let md = std::fs::read_to_string(dir.join("rep/report.md")).unwrap();
    assert!(
        md.contains("## At the best epoch")
            && md.contains("## At the final epoch")
            && md.contains("overlay.svg")
    );
    let bad = lenet5(&dir, &["report", "data"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn console_numbers_use_scientific_notation_where_shorter() {
    use lenet5_lab::number;
    assert_eq!(number(0.0231), "0.0231");
    assert_eq!(number(16725553471957498653712471556096.0), "1.673e31");
    assert_eq!(number(2.5e-5), "2.500e-5");
    assert_eq!(number(0.0), "0.0000");
}

#[test]
fn a_one_epoch_curve_is_drawn_as_a_dot() {
    use lenet5_lab::chart::{COLORS, Panel, Series, render_svg};
    use plotters::prelude::SeriesLabelPosition;
    let panel = |points: Vec<(f64, f64)>| {
        vec![Panel {
            title: "validation accuracy".into(),
            y_label: "accuracy",
            series: vec![Series {
                label: "one epoch".into(),
                points,
                color: COLORS[0],
                band: vec![],
            }],
            legend: SeriesLabelPosition::LowerRight,
        }]
    };
    let one = render_svg(&panel(vec![(1.0, 0.9)]), (400, 300)).unwrap();
    assert!(one.contains("<circle"), "a single point is visible");
    let two = render_svg(&panel(vec![(1.0, 0.9), (2.0, 0.95)]), (400, 300)).unwrap();
    assert!(
        !two.contains("<circle") && two.contains("<polyline"),
        "lines as before"
    );
}

#[test]
fn identical_runs_need_the_same_test_result_and_the_same_epochs() {
    use lenet5_lab::study::compare::identical;
    use lenet5_lab::study::groups::Group;
    use lenet5_lab::study::stats::summarize;
    let run = |seed: u64, accuracy: f64, val_loss: f64| {
        let mut config = Config::default();
        config.trainer.seed = seed;
        RunSummary {
            name: format!("seed{seed}"),
            config,
            rows: vec![row(1, 0.2), row(2, val_loss)],
            state: Some(state(2, 2, RunStatus::Completed)),
            test: Some(test_result(accuracy)),
            train_eval: None,
            selections: vec![],
            layers: vec![],
        }
    };
    let group = |runs: Vec<RunSummary>| Group {
        name: "g".into(),
        planned: runs.len(),
        test: summarize(&[]),
        best_val: summarize(&[]),
        train_clean: summarize(&[]),
        gap: summarize(&[]),
        validated: true,
        convergence: vec![],
        runs,
    };
    let a = group(vec![run(1, 0.99, 0.1), run(2, 0.98, 0.1)]);
    assert!(
        identical(&a, &group(vec![run(1, 0.99, 0.1)])),
        "the seeds they share agree"
    );
    // The same test accuracy but another epoch: not the same computation.
    assert!(!identical(&a, &group(vec![run(1, 0.99, 0.15)])));
    // The same epochs but another test accuracy: not either.
    assert!(!identical(&a, &group(vec![run(1, 0.97, 0.1)])));
    // No seed in common: nothing shows they are the same.
    assert!(!identical(&a, &group(vec![run(3, 0.99, 0.1)])));
}
