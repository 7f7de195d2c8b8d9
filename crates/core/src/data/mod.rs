//! Datasets on the device: loading each dataset's files (its names, shapes and normalisation are
//! [`Dataset`]'s, in the lab crate's config), normalising them, the seeded train/validation split, and the
//! [`Split`]s that carry their normalisation with them. File checks and fetching are in [`files`].

pub mod files;
pub mod image;

use anyhow::Result;
use lenet5_lab::UsageError;
use lenet5_lab::config::DataConfig;
pub use lenet5_lab::config::{Dataset, Normalization, Shape};
use tch::{Device, Kind, Tensor};

/// Every dataset here has ten classes.
pub const NUM_CLASSES: i64 = 10;

/// `values` (one per channel) as a float `[1, C, 1, 1]` tensor on `device`.
pub fn per_channel(values: &[f64], device: Device) -> Tensor {
    Tensor::from_slice(values)
        .to_kind(Kind::Float)
        .view([1, -1, 1, 1])
        .to_device(device)
}

/// `[N, C, H, W]` pixels in [0, 1] → `(x − mean[c]) / std[c]`.
pub fn normalize(norm: &Normalization, pixels: &Tensor) -> Tensor {
    let device = pixels.device();
    (pixels - per_channel(norm.mean, device)) / per_channel(norm.std, device)
}

/// The inverse of [`normalize`]: normalised `[N, C, H, W]` images back to pixels in [0, 1] (as drawn).
pub fn denormalize(norm: &Normalization, images: &Tensor) -> Tensor {
    let device = images.device();
    images * per_channel(norm.std, device) + per_channel(norm.mean, device)
}

/// What a raw 0 (the background) becomes, as `[1, C, 1, 1]` on `device`.
pub fn background(norm: &Normalization, device: Device) -> Tensor {
    let zeros = Tensor::zeros([1, norm.mean.len() as i64, 1, 1], (Kind::Float, device));
    normalize(norm, &zeros)
}

/// Normalised images `[N, C, H, W]` (f32) and labels `[N]` (i64) on one device, with the normalisation
/// that made them.
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
    pub normalization: Normalization,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn to(self, device: Device) -> Split {
        Split {
            images: self.images.to_device(device),
            labels: self.labels.to_device(device),
            normalization: self.normalization,
        }
    }

    fn select(&self, idx: &Tensor) -> Split {
        Split {
            images: self.images.index_select(0, idx),
            labels: self.labels.index_select(0, idx),
            normalization: self.normalization,
        }
    }
}

/// The three splits of a run. `validation` is empty when `validation_split` is 0.
pub struct Splits {
    pub train: Split,
    pub validation: Split,
    pub test: Split,
}

/// Loads the dataset, normalises it and splits off the validation set with a permutation seeded by
/// `cfg.seed`, all on `device`.
pub fn load(cfg: &DataConfig, device: Device) -> Result<Splits> {
    let raw = files::read(cfg, true)?;
    let norm = cfg.dataset.normalization();
    let (train_images, train_labels) = raw.train.expect("read with the training split");
    let all = Split {
        images: normalize(&norm, &train_images),
        labels: train_labels,
        normalization: norm,
    };
    let (train, validation) = split(&all, cfg.validation_split, cfg.seed);
    if cfg.batch_size as i64 > train.len() {
        return Err(UsageError::error(format!(
            "data.batch_size = {} is larger than the training split ({} images)",
            cfg.batch_size,
            train.len()
        )));
    }
    let test = Split {
        images: normalize(&norm, &raw.test.0),
        labels: raw.test.1,
        normalization: norm,
    };
    Ok(Splits {
        train: train.to(device),
        validation: validation.to(device),
        test: test.to(device),
    })
}

/// Loads only the test split (for `lenet5 test`).
pub fn load_test(cfg: &DataConfig, device: Device) -> Result<Split> {
    let (images, labels) = files::read(cfg, false)?.test;
    let norm = cfg.dataset.normalization();
    Ok(Split {
        images: normalize(&norm, &images),
        labels,
        normalization: norm,
    }
    .to(device))
}

/// Holds out `fraction` of `all` for validation: the first `round(n·fraction)` indices of a permutation
/// seeded by `seed` (on the CPU, so the split is the same on every device). Returns (train, validation).
fn split(all: &Split, fraction: f64, seed: u64) -> (Split, Split) {
    let n = all.len();
    let n_val = (n as f64 * fraction).round() as i64;
    tch::manual_seed(seed as i64);
    let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
    (
        all.select(&perm.narrow(0, n_val, n - n_val)),
        all.select(&perm.narrow(0, 0, n_val)),
    )
}
