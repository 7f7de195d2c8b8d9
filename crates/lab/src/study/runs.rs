//! Tables and charts from finished runs: the seed's results table (plus test accuracy and wall time), per-run
//! loss/accuracy curves, and an overlay of all runs' validation curves, as Markdown, SVG and PNG.
//!
//! Renderers are pure (runs in, text or pixels out); only [`write_report`] touches files, atomically.

use crate::chart::{COLORS, Panel, Series, render_png, render_svg};
use crate::config::{Config, OptimizerKind, Variant};
use crate::rundir::dir::{self, RunDir};
use crate::rundir::evaluation::Evaluation;
use crate::rundir::layers::LayerRow;
use crate::rundir::metrics;
use crate::rundir::metrics::EpochRow;
use crate::rundir::selections::{Scored, Selection};
use crate::rundir::state::{RunStatus, TrainState};
use anyhow::{Context, Result};
use plotters::prelude::SeriesLabelPosition;
use std::path::{Path, PathBuf};

/// Everything `report` knows about one run directory.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub name: String,
    pub config: Config,
    pub rows: Vec<EpochRow>,
    pub state: Option<TrainState>,
    pub test: Option<Evaluation>,
    /// The best checkpoint on the clean training split (absent in runs made before lenet5 wrote it).
    pub train_eval: Option<Evaluation>,
    /// Each checkpoint selection scored on the test set (empty in runs made before lenet5 scored them).
    pub selections: Vec<Scored>,
    /// Each layer's health per epoch (`layers.csv`; empty in runs made without it).
    pub layers: Vec<LayerRow>,
}

impl RunSummary {
    /// The test accuracy of checkpoint `selection`, when the run scored it.
    pub fn selection_accuracy(&self, selection: Selection) -> Option<f64> {
        let s = self.selections.iter().find(|s| s.selection == selection)?;
        Some(s.accuracy)
    }
}

/// Reads a run directory; a run without epochs or without a test result is still a summary (reported as such).
pub fn load_run(path: &Path) -> Result<RunSummary> {
    let run = RunDir::open(path)?;
    let config = run.config()?;
    let metrics_path = run.file(dir::METRICS_FILE);
    let rows = if metrics_path.exists() {
        metrics::read(&metrics_path)?
    } else {
        vec![]
    };
    let state = run.state()?;
    let test = run.test()?;
    let train_eval = run.train_eval()?;
    let selections = run.selections()?;
    let layers_path = run.file(dir::LAYERS_FILE);
    let layers = match layers_path.exists() {
        true => metrics::read_rows(&layers_path)?,
        false => vec![],
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(RunSummary {
        name,
        config,
        rows,
        state,
        test,
        train_eval,
        selections,
        layers,
    })
}

/// Where a run stands, as a report sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No completed epoch.
    Empty,
    Finished {
        early_stop: bool,
    },
    FinishedUntested,
    Unfinished {
        status: RunStatus,
        epoch: usize,
    },
}

impl Status {
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Finished { .. })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Empty => f.write_str("empty: no completed epoch"),
            Status::Finished { early_stop: true } => f.write_str("finished (early stop)"),
            Status::Finished { early_stop: false } => f.write_str("finished"),
            Status::FinishedUntested => f.write_str("finished, not tested"),
            Status::Unfinished { status, epoch } => {
                let status = serde_json::to_value(status).map_err(|_| std::fmt::Error)?;
                write!(
                    f,
                    "unfinished: {} after epoch {epoch}",
                    status.as_str().unwrap_or("?")
                )
            }
        }
    }
}

impl RunSummary {
    pub fn status(&self) -> Status {
        match (&self.state, self.rows.len()) {
            (_, 0) | (None, _) => Status::Empty,
            (Some(s), _) if s.status.is_finished() && self.test.is_some() => Status::Finished {
                early_stop: s.status == RunStatus::EarlyStopped,
            },
            (Some(s), _) if s.status.is_finished() => Status::FinishedUntested,
            (Some(s), _) => Status::Unfinished {
                status: s.status,
                epoch: s.epoch,
            },
        }
    }

    /// The row of the best checkpoint's epoch.
    pub fn best_row(&self) -> Option<&EpochRow> {
        let best = self.state.as_ref()?.best_epoch;
        self.rows.iter().find(|r| r.epoch == best)
    }

    pub fn final_row(&self) -> Option<&EpochRow> {
        self.rows.last()
    }

    pub fn wall_seconds(&self) -> f64 {
        self.rows.iter().map(|r| r.seconds).fold(0.0, |a, b| a + b)
    }
}

/// Which epoch a table reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableEpoch {
    Best,
    Final,
}

/// The seed's results table as Markdown, one row per run, plus test accuracy (of the best checkpoint), wall
/// time and status.
pub fn render_table(runs: &[RunSummary], which: TableEpoch) -> String {
    let mut out = String::from(
        "| Run | Early stopping | Activation | Pooling | Weight decay | Initialization | Optimizer | Epochs | Loss | Accuracy | Val loss | Val accuracy | Test accuracy | Wall time | Status |\n\
         |---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for run in runs {
        let c = &run.config;
        let es = &c.trainer.early_stopping;
        let early_stopping = if es.enabled {
            format!("patience {}", es.patience)
        } else {
            "No".to_string()
        };
        let row = match which {
            TableEpoch::Best => run.best_row(),
            TableEpoch::Final => run.final_row(),
        };
        let (loss, acc, val_loss, val_acc) = match row {
            Some(r) => (
                format!("{:.4}", r.loss),
                pct(r.accuracy),
                format!("{:.4}", r.val_loss),
                pct(r.val_accuracy),
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        let epochs = match (which, row) {
            (TableEpoch::Best, Some(r)) => format!("{} (best {})", run.rows.len(), r.epoch),
            _ => run.rows.len().to_string(),
        };
        let (activation, pooling, init) = layer_columns(c);
        let test = run
            .test
            .as_ref()
            .map(|t| pct(t.accuracy))
            .unwrap_or_else(|| "—".into());
        out += &format!(
            "| {} | {early_stopping} | {activation} | {pooling} | {} | {init} | {} | {epochs} | {loss} | {acc} | {val_loss} | {val_acc} | {test} | {:.0} s | {} |\n",
            run.name,
            c.optimizer.weight_decay,
            optimizer_name(c),
            run.wall_seconds(),
            run.status(),
        );
    }
    out
}

/// Activation, pooling and initialisation as the variant actually builds them (only `lenet5` reads all
/// three keys).
fn layer_columns(c: &Config) -> (String, String, String) {
    let init = c.model.init.name();
    match c.model.variant {
        Variant::Lenet5 => (c.model.activation.name(), c.model.pooling.name(), init),
        Variant::Lenet5Modern => ("relu + batch norm".into(), "max".into(), init),
        Variant::Lenet1998 => (
            "scaled tanh".into(),
            "trainable subsampling".into(),
            "±2.4/F_in".into(),
        ),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn optimizer_name(c: &Config) -> String {
    let o = &c.optimizer;
    match o.kind {
        OptimizerKind::Sgd if o.nesterov => format!("SGD (lr {}, Nesterov {})", o.lr, o.momentum),
        OptimizerKind::Sgd => format!("SGD (lr {}, momentum {})", o.lr, o.momentum),
        OptimizerKind::Adam | OptimizerKind::Adamw => format!(
            "{} (lr {}{})",
            if o.kind == OptimizerKind::Adam {
                "Adam"
            } else {
                "AdamW"
            },
            o.lr,
            if o.amsgrad { ", amsgrad" } else { "" }
        ),
        OptimizerKind::Rmsprop => format!("RMSprop (lr {})", o.lr),
    }
}

fn points(rows: &[EpochRow], value: impl Fn(&EpochRow) -> f64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.epoch as f64, value(r))).collect()
}

/// A metric of an epoch, with what a chart calls it.
struct Metric {
    name: &'static str,
    y_label: &'static str,
    legend: SeriesLabelPosition,
    train: fn(&EpochRow) -> f64,
    validation: fn(&EpochRow) -> f64,
}

/// Accuracy curves rise into the upper right, losses fall away from it: the legends go where the lines
/// are not.
const METRICS: [Metric; 2] = [
    Metric {
        name: "loss",
        y_label: "loss (the network's objective)",
        legend: SeriesLabelPosition::UpperRight,
        train: |r| r.loss,
        validation: |r| r.val_loss,
    },
    Metric {
        name: "accuracy",
        y_label: "accuracy",
        legend: SeriesLabelPosition::LowerRight,
        train: |r| r.accuracy,
        validation: |r| r.val_accuracy,
    },
];

/// Train and validation loss and accuracy of one run.
pub fn curves(run: &RunSummary) -> Vec<Panel> {
    let line = |label: &str, color, f: fn(&EpochRow) -> f64| Series {
        label: label.into(),
        points: points(&run.rows, f),
        color,
        band: vec![],
    };
    METRICS
        .iter()
        .map(|m| Panel {
            title: format!("{}: {}", run.name, m.name),
            y_label: m.y_label,
            series: vec![
                line("train", COLORS[0], m.train),
                line("validation", COLORS[1], m.validation),
            ],
            legend: m.legend.clone(),
        })
        .collect()
}

/// Validation accuracy and loss of every run, overlaid.
pub fn overlay(runs: &[RunSummary]) -> Vec<Panel> {
    METRICS
        .iter()
        .rev()
        .map(|m| Panel {
            title: format!("validation {}", m.name),
            y_label: m.y_label,
            series: runs
                .iter()
                .enumerate()
                .map(|(i, r)| Series {
                    label: r.name.clone(),
                    points: points(&r.rows, m.validation),
                    color: COLORS[i % COLORS.len()],
                    band: vec![],
                })
                .collect(),
            legend: m.legend.clone(),
        })
        .collect()
}

pub const CURVES_SIZE: (u32, u32) = (1000, 380);
pub const OVERLAY_SIZE: (u32, u32) = (1200, 460);

/// Writes `report.md`, `overlay.{svg,png}` and `<run>-curves.{svg,png}` into `out`. Returns the paths.
pub fn write_report(runs: &[RunSummary], out: &Path, command: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = vec![];
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        crate::sys::atomic::write(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    let overlay_panels = overlay(runs);
    write(
        "overlay.svg",
        render_svg(&overlay_panels, OVERLAY_SIZE)?.as_bytes(),
    )?;
    write("overlay.png", &render_png(&overlay_panels, OVERLAY_SIZE)?)?;
    let mut md = format!(
        "# lenet5 report\n\nGenerated by `{command}`. Test accuracy is that of the best checkpoint (by the run's \
         early-stopping monitor); wall time is the sum of the epochs' training and validation time.\n\n\
         ## At the best epoch\n\n{}\n## At the final epoch\n\n{}\n## Validation curves\n\n![overlay](overlay.svg)\n\n## Per run\n\n",
        render_table(runs, TableEpoch::Best),
        render_table(runs, TableEpoch::Final)
    );
    for run in runs {
        let panels = curves(run);
        let stem = format!("{}-curves", run.name);
        write(
            &format!("{stem}.svg"),
            render_svg(&panels, CURVES_SIZE)?.as_bytes(),
        )?;
        write(&format!("{stem}.png"), &render_png(&panels, CURVES_SIZE)?)?;
        md += &format!(
            "### {}\n\n{}\n\n![{stem}]({stem}.svg)\n\n",
            run.name,
            run.status()
        );
    }
    write("report.md", md.as_bytes())?;
    Ok(written)
}
