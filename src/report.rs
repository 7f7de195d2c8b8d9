//! Tables and charts from finished runs: the seed's results table (plus test accuracy and wall time), per-run
//! loss/accuracy curves, and an overlay of all runs' validation curves, as Markdown, SVG and PNG.
//!
//! Renderers are pure (runs in, text or pixels out); only [`write_report`] touches files, atomically.

use crate::checkpoint::{self, RunDir};
use crate::config::{Config, OptimizerKind, Variant};
use crate::evaluate::Evaluation;
use crate::metrics::{self, EpochRow};
use crate::train::{RunStatus, TrainState};
use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Everything `report` knows about one run directory.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub name: String,
    pub config: Config,
    pub rows: Vec<EpochRow>,
    pub state: Option<TrainState>,
    pub test: Option<Evaluation>,
}

/// Reads a run directory; a run without epochs or without a test result is still a summary (reported as such).
pub fn load_run(path: &Path) -> Result<RunSummary> {
    let run = RunDir::open(path)?;
    let config = run.config()?;
    let metrics_path = run.file(checkpoint::METRICS_FILE);
    let rows = if metrics_path.exists() {
        metrics::read(&metrics_path)?
    } else {
        vec![]
    };
    let state = run.state()?;
    let test = run.test()?;
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

/// One line on a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// One chart panel: a title, a y-axis label and its lines, against epoch.
pub struct Panel {
    pub title: String,
    pub y_label: &'static str,
    pub series: Vec<Series>,
    pub legend: SeriesLabelPosition,
}

/// Tableau 10: distinguishable, colour-blind-friendly line colours.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

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
        y_label: "cross-entropy",
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
                })
                .collect(),
            legend: m.legend.clone(),
        })
        .collect()
}

/// Draws `panels` side by side on any plotters backend.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing chart: {e:?}");
    register_font();
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(&areas) {
        let all = || {
            panel
                .series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|p| p.1.is_finite())
        };
        let x_max = all().map(|p| p.0).fold(1.0f64, f64::max);
        let (y_min, y_max) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        let (y_min, y_max) = if y_min.is_finite() {
            (y_min, y_max)
        } else {
            (0.0, 1.0)
        };
        let pad = ((y_max - y_min) * 0.05).max(1e-4);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..x_max.max(2.0), (y_min - pad)..(y_max + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(panel.y_label)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for s in &panel.series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied().filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(panel.legend.clone())
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The chart as an SVG document.
pub fn render_svg(panels: &[Panel], size: (u32, u32)) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, panels)?;
    }
    Ok(svg)
}

/// The chart as PNG bytes.
pub fn render_png(panels: &[Panel], size: (u32, u32)) -> Result<Vec<u8>> {
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(&root, panels)?;
    }
    let image = image::RgbImage::from_raw(size.0, size.1, rgb).expect("buffer of the image's size");
    let mut png = std::io::Cursor::new(vec![]);
    image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}

/// Text is laid out (and, in PNGs, drawn) with the embedded DejaVu Sans, so no system fonts are needed.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_err() {
            unreachable!("the embedded DejaVu Sans is a valid font");
        }
    });
}

pub const CURVES_SIZE: (u32, u32) = (1000, 380);
pub const OVERLAY_SIZE: (u32, u32) = (1200, 460);

/// Writes `report.md`, `overlay.{svg,png}` and `<run>-curves.{svg,png}` into `out`. Returns the paths.
pub fn write_report(runs: &[RunSummary], out: &Path, command: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = vec![];
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        crate::atomic::write(&path, bytes)?;
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
