//! The learning-rate range test's arithmetic (Smith 2017, as Lightning's and fastai's `lr_find` do it): the
//! exponentially increasing learning rates, the smoothed loss and when it has diverged, the two suggestion
//! rules, and the CSV and chart of a finished test. The training steps are `lenet5_core::run::lr_find`'s.

use crate::chart::{COLORS, Plot, Series};
use anyhow::Result;
use plotters::chart::SeriesLabelPosition;

/// How the test sweeps the learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeTest {
    pub min_lr: f64,
    pub max_lr: f64,
    /// Batches (optimizer steps) at most.
    pub steps: usize,
}

impl Default for RangeTest {
    /// fastai's range (1e-7 to 10) over a few hundred batches.
    fn default() -> Self {
        RangeTest {
            min_lr: 1e-7,
            max_lr: 10.0,
            steps: 200,
        }
    }
}

/// Lightning's `beta`: the smoothing of the loss's running mean.
pub const SMOOTHING: f64 = 0.98;
/// Lightning's `diverge_th`: the test stops once the smoothed loss exceeds this many times its best.
pub const DIVERGED: f64 = 4.0;

impl RangeTest {
    /// A clear error for a range the test cannot sweep.
    pub fn check(&self) -> Result<(), String> {
        let ok = |x: f64| x > 0.0 && x.is_finite();
        if !ok(self.min_lr) || !ok(self.max_lr) || self.min_lr >= self.max_lr {
            return Err(format!(
                "--min-lr {} and --max-lr {} must be positive, min below max",
                self.min_lr, self.max_lr
            ));
        }
        if self.steps < 20 {
            return Err(format!(
                "--steps {} is too few: the smoothed loss needs at least 20 batches",
                self.steps
            ));
        }
        Ok(())
    }

    /// The learning rate of 0-based step `i`: min · (max/min)^(i/(steps−1)) (Lightning's exponential mode).
    pub fn lr(&self, i: usize) -> f64 {
        let t = i as f64 / (self.steps - 1).max(1) as f64;
        self.min_lr * (self.max_lr / self.min_lr).powf(t)
    }
}

/// One step of the test: its learning rate, the batch's loss and the debiased running mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

/// The running, debiased exponential mean of the loss and the divergence check (Lightning's
/// `_LRCallback.on_train_batch_end`).
#[derive(Debug, Default)]
pub struct Smoother {
    mean: f64,
    steps: i32,
    best: f64,
}

impl Smoother {
    /// Adds a batch's loss; returns its point and whether the test should stop (a non-finite loss, or a
    /// smoothed loss above [`DIVERGED`] × the best so far).
    pub fn push(&mut self, lr: f64, loss: f64) -> (Point, bool) {
        self.steps += 1;
        self.mean = SMOOTHING * self.mean + (1.0 - SMOOTHING) * loss;
        let smoothed = self.mean / (1.0 - SMOOTHING.powi(self.steps));
        if self.steps == 1 || smoothed < self.best {
            self.best = smoothed;
        }
        let stop = !smoothed.is_finite() || (self.steps > 1 && smoothed > DIVERGED * self.best);
        (Point { lr, loss, smoothed }, stop)
    }
}

/// What the test suggests, by each rule (an index into the points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestions {
    /// Lightning's rule: the steepest descent of the smoothed loss (`np.gradient(loss).argmin()`, the first
    /// 10 and the last point skipped).
    pub steepest: Option<usize>,
    /// fastai's default rule: the longest descending stretch of the smoothed loss, two thirds of the way
    /// down it (`valley`, the first tenth and the last 5 points skipped).
    pub valley: Option<usize>,
}

/// Both rules over a finished test.
pub fn suggest(points: &[Point]) -> Suggestions {
    let smoothed: Vec<f64> = points.iter().map(|p| p.smoothed).collect();
    Suggestions {
        steepest: steepest(&smoothed),
        valley: valley(&smoothed),
    }
}

/// Index of the steepest descent; `None` when too few finite points remain.
fn steepest(loss: &[f64]) -> Option<usize> {
    let (skip_begin, skip_end) = (10, 1);
    if loss.len() < skip_begin + skip_end + 2 {
        return None;
    }
    let window: Vec<(usize, f64)> = (skip_begin..loss.len() - skip_end)
        .map(|i| (i, loss[i]))
        .filter(|p| p.1.is_finite())
        .collect();
    let n = window.len();
    if n < 2 {
        return None;
    }
    // np.gradient with unit spacing: one-sided at the ends, central inside.
    let gradient = |k: usize| match k {
        0 => window[1].1 - window[0].1,
        k if k == n - 1 => window[n - 1].1 - window[n - 2].1,
        k => (window[k + 1].1 - window[k - 1].1) / 2.0,
    };
    let best = (0..n).min_by(|&a, &b| gradient(a).total_cmp(&gradient(b)))?;
    Some(window[best].0)
}

/// fastai's `valley` over the points after the first tenth and before the last 5.
fn valley(loss: &[f64]) -> Option<usize> {
    let skip_begin = loss.len() / 10;
    let end = loss.len().checked_sub(5)?;
    if end <= skip_begin + 1 {
        return None;
    }
    let losses = &loss[skip_begin..end];
    let n = losses.len();
    // Longest decreasing subsequence ending at each point.
    let mut lds = vec![1i64; n];
    // Signed, as in fastai: `max_end - lds[max_end]` is −1 when the run starts at the first point.
    let (mut max_start, mut max_end) = (0i64, 0usize);
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as i64 - lds[max_end];
            }
        }
    }
    let sections = (max_end as i64 - max_start) as f64 / 3.0;
    let idx = max_start + sections as i64 + (sections / 2.0) as i64;
    Some(skip_begin + idx.max(0) as usize)
}

/// The test as CSV: `step,lr,loss,smoothed_loss`, one line per batch.
pub fn to_csv(points: &[Point]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(["step", "lr", "loss", "smoothed_loss"])?;
    for (i, p) in points.iter().enumerate() {
        let row = [i + 1].map(|s| s.to_string());
        w.write_record([
            row[0].as_str(),
            &format!("{:e}", p.lr),
            &p.loss.to_string(),
            &p.smoothed.to_string(),
        ])?;
    }
    Ok(w.into_inner()?)
}

/// Loss and smoothed loss against the learning rate (log axis), the suggestions as single dots.
pub fn chart(points: &[Point], suggestions: &Suggestions) -> Plot {
    let line = |label: &str, color, f: fn(&Point) -> f64| Series {
        label: label.into(),
        points: points.iter().map(|p| (p.lr, f(p))).collect(),
        color,
        band: vec![],
    };
    let mut series = vec![
        line("loss", COLORS[7], |p| p.loss),
        line("smoothed loss", COLORS[0], |p| p.smoothed),
    ];
    let marks = [
        ("steepest", suggestions.steepest, COLORS[3]),
        ("valley", suggestions.valley, COLORS[2]),
    ];
    for (label, at, color) in marks {
        if let Some(p) = at.and_then(|i| points.get(i)) {
            let label = format!("{label}: {}", crate::number(p.lr));
            series.push(Series {
                label,
                points: vec![(p.lr, p.smoothed)],
                color,
                band: vec![],
            });
        }
    }
    Plot {
        title: "learning-rate range test".into(),
        x_label: "learning rate",
        y_label: "training loss",
        log_x: true,
        dots: false,
        series,
        // The loss starts high on the left: the lower left stays empty.
        legend: SeriesLabelPosition::LowerLeft,
    }
}
