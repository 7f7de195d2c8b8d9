//! `lenet5 lr-find`: the learning-rate range test (Smith 2017). A fresh model from the config takes up to
//! `steps` optimizer steps on training batches, the learning rate growing exponentially from `min_lr` to
//! `max_lr`, and stops once the smoothed loss diverges; the rates, smoothing and suggestion rules are
//! [`lenet5_lab::lr_range`]'s. Only training batches are read: the validation split stays held out and the
//! test split is never looked at. Seeded by `trainer.seed`, so the same config gives the same curve.

use super::epoch;
use crate::data;
use crate::nn;
use crate::nn::optim;
use anyhow::Result;
use lenet5_lab::UsageError;
use lenet5_lab::config::Config;
use lenet5_lab::lr_range::{self, Point, RangeTest, Smoother, Suggestions};
use tch::{Kind, Tensor};

/// A finished range test.
pub struct Found {
    pub points: Vec<Point>,
    /// The smoothed loss diverged before the last step.
    pub diverged: bool,
    pub suggestions: Suggestions,
}

/// Runs the range test for `config` (a fresh model, seeded by `trainer.seed`).
pub fn lr_find(config: &Config, test: &RangeTest) -> Result<Found> {
    test.check().map_err(UsageError::error)?;
    let device = crate::device::resolve(&config.trainer.device)?;
    if config.trainer.threads > 0 {
        tch::set_num_threads(config.trainer.threads as i32);
    }
    let train = data::load(&config.data, device)?.train;
    let (vs, net) = nn::build(config, device);
    let mut opt = optim::build(&vs, &config.optimizer)?;
    let background = data::background(&train.normalization, device);
    let (images, size) = (train.len(), config.data.batch_size as i64);
    let per_pass = epoch::batch_count(images, config.data.batch_size);
    let (mut smoother, mut points, mut diverged) = (Smoother::default(), vec![], false);
    let mut order = Tensor::zeros([0], (Kind::Int64, device));
    for i in 0..test.steps {
        let b = i % per_pass;
        if b == 0 {
            // The same permutation as training epoch i / per_pass + 1.
            tch::manual_seed(config.trainer.epoch_seed(i / per_pass + 1));
            order = match config.data.shuffle {
                true => Tensor::randperm(images, (Kind::Int64, device)),
                false => Tensor::arange(images, (Kind::Int64, device)),
            };
        }
        let start = b as i64 * size;
        let idx = order.narrow(0, start, size.min(images - start));
        let mut xs = train.images.index_select(0, &idx);
        if !config.data.augment.is_identity() {
            xs = nn::augment::distort(&xs, &config.data.augment, &background);
        }
        let ys = train.labels.index_select(0, &idx);
        let lr = test.lr(i);
        opt.set_lr(lr);
        let (_, objective) = epoch::step(&net, &mut opt, &xs, &ys, &config.regularization);
        let (point, stop) = smoother.push(lr, f64::try_from(&objective)?);
        points.push(point);
        if stop {
            diverged = true;
            break;
        }
    }
    let suggestions = lr_range::suggest(&points);
    Ok(Found {
        points,
        diverged,
        suggestions,
    })
}
