//! The only module that touches dataset files: checks the MNIST IDX files (tch's loader panics or misreads
//! several kinds of bad file), fetches them when asked, loads them through `tch::vision::mnist`, normalises,
//! makes the seeded train/validation split, and keeps every split on the training device.

use crate::UsageError;
use crate::config::{DataConfig, Dataset};
use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// MNIST's mean and standard deviation of the training pixels in [0, 1], the values the seed and the
/// PyTorch MNIST example normalise with (other datasets: [`crate::config::Dataset::mean_std`]).
pub const MNIST_MEAN: f64 = 0.1307;
pub const MNIST_STD: f64 = 0.3081;
pub const IMAGE_SIDE: i64 = 28;
pub const NUM_CLASSES: i64 = 10;

/// IDX magic numbers: 0x0803 (u8, 3 dims) for images, 0x0801 (u8, 1 dim) for labels.
pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

/// File names `tch::vision::mnist::load_dir` reads, as (images, labels) per split.
pub const TRAIN_FILES: (&str, &str) = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte");
pub const TEST_FILES: (&str, &str) = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");

/// Images `[N, 1, 28, 28]` (normalised f32) and labels `[N]` (i64), on one device.
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
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
        }
    }
}

/// The three splits of a run. `validation` is empty when `validation_split` is 0.
pub struct Mnist {
    pub train: Split,
    pub validation: Split,
    pub test: Split,
}

/// CIFAR-10's binary batches (the contents of `cifar-10-binary.tar.gz`'s `cifar-10-batches-bin/`).
pub const CIFAR_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";
/// One CIFAR-10 record: a label byte, then 3×32×32 pixel bytes (channel-major).
const CIFAR_RECORD: u64 = 1 + 3 * 32 * 32;

/// Makes sure the four files are in `cfg.dir`, fetching them with `scripts/fetch_mnist.py` when
/// `cfg.download` is on, then checks every header.
pub fn ensure_files(cfg: &DataConfig) -> Result<()> {
    let dir = cfg.dir();
    let names: Vec<&str> = match cfg.dataset {
        Dataset::Cifar10 => CIFAR_TRAIN_FILES
            .iter()
            .copied()
            .chain([CIFAR_TEST_FILE])
            .collect(),
        _ => all_files().collect(),
    };
    let missing: Vec<_> = names
        .into_iter()
        .filter(|f| !dir.join(f).exists())
        .collect();
    if !missing.is_empty() {
        let fetch_cmd = format!(
            "python3 scripts/fetch_mnist.py --dataset {} --dir {}",
            cfg.dataset.name(),
            dir.display()
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch_mnist.py");
        if !cfg.download || !script.exists() {
            return Err(UsageError::new(format!(
                "data dir {}: missing {}; fetch {} with `{fetch_cmd}` (or set data.dir)",
                dir.display(),
                missing.join(", "),
                cfg.dataset.name()
            )));
        }
        eprintln!(
            "{} not found in {}; fetching it with `{fetch_cmd}`",
            cfg.dataset.name(),
            dir.display()
        );
        let status = std::process::Command::new("python3")
            .arg(&script)
            .args(["--dataset", cfg.dataset.name(), "--dir"])
            .arg(&dir)
            .status()
            .with_context(|| format!("cannot run `{fetch_cmd}` (is python3 installed?)"))?;
        anyhow::ensure!(
            status.success(),
            "`{fetch_cmd}` failed ({status}); see its messages above"
        );
    }
    if cfg.dataset == Dataset::Cifar10 {
        for name in CIFAR_TRAIN_FILES.iter().chain([&CIFAR_TEST_FILE]) {
            check_cifar(&dir.join(name))?;
        }
        return Ok(());
    }
    check_pair(&dir, TRAIN_FILES)?;
    check_pair(&dir, TEST_FILES)?;
    Ok(())
}

/// Checks a CIFAR-10 batch: whole records only, labels in 0..10.
fn check_cifar(path: &Path) -> Result<u64> {
    let bad = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let len = bytes.len() as u64;
    if len == 0 || len % CIFAR_RECORD != 0 {
        return Err(bad(format!(
            "{len} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records"
        )));
    }
    for (i, record) in bytes.chunks(CIFAR_RECORD as usize).enumerate() {
        if i64::from(record[0]) >= NUM_CLASSES {
            return Err(bad(format!(
                "label {} of record {i} is outside 0..{}",
                record[0],
                NUM_CLASSES - 1
            )));
        }
    }
    Ok(len / CIFAR_RECORD)
}

/// Reads CIFAR-10 batches into `[N, 3, 32, 32]` pixels in [0, 1] and `[N]` labels. (tch's
/// `vision::cifar::load_dir` reads exactly 10,000 records per file, one copy per image; this reads any
/// whole number of records with one reshape, so small synthetic files work in tests.)
fn read_cifar(paths: &[std::path::PathBuf]) -> Result<(Tensor, Tensor)> {
    let mut bytes = vec![];
    for path in paths {
        bytes.extend(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    let records = Tensor::from_slice(&bytes).view([-1, CIFAR_RECORD as i64]);
    let labels = records.select(1, 0).to_kind(Kind::Int64);
    let images = records
        .narrow(1, 1, CIFAR_RECORD as i64 - 1)
        .view([-1, 3, 32, 32])
        .to_kind(Kind::Float)
        / 255.0;
    Ok((images, labels))
}

fn all_files() -> impl Iterator<Item = &'static str> {
    [TRAIN_FILES.0, TRAIN_FILES.1, TEST_FILES.0, TEST_FILES.1].into_iter()
}

/// Raw pixels in [0, 1] as `[N, C, H, W]` and labels `[N]`, of the training split (when `with_train`) and
/// the test split, from `cfg.dir` (after [`ensure_files`]).
struct Raw {
    train: Option<(Tensor, Tensor)>,
    test: (Tensor, Tensor),
}

fn read_raw(cfg: &DataConfig, with_train: bool) -> Result<Raw> {
    ensure_files(cfg)?;
    let dir = cfg.dir();
    if cfg.dataset == Dataset::Cifar10 {
        let train: Vec<_> = CIFAR_TRAIN_FILES.iter().map(|f| dir.join(f)).collect();
        let train = if with_train {
            Some(read_cifar(&train)?)
        } else {
            None
        };
        return Ok(Raw {
            train,
            test: read_cifar(&[dir.join(CIFAR_TEST_FILE)])?,
        });
    }
    // tch's loader reads all four files; the training ones are dropped when only the test split is wanted.
    let ds = tch::vision::mnist::load_dir(&dir)
        .with_context(|| format!("cannot load {} from {}", cfg.dataset.name(), dir.display()))?;
    let side = [-1, 1, IMAGE_SIDE, IMAGE_SIDE];
    let train = with_train.then(|| (ds.train_images.view(side), ds.train_labels));
    Ok(Raw {
        train,
        test: (ds.test_images.view(side), ds.test_labels),
    })
}

/// Loads the dataset, normalises it and splits off the validation set with a permutation seeded by
/// `cfg.seed`, all on `device`.
pub fn load(cfg: &DataConfig, device: Device) -> Result<Mnist> {
    let raw = read_raw(cfg, true)?;
    let (mean, std) = cfg.dataset.mean_std();
    let (train_images, train_labels) = raw.train.expect("read with the training split");
    let train_all = Split {
        images: standardise(&train_images, mean, std),
        labels: train_labels,
    };
    let (train, validation) = split(train_all, cfg.validation_split, cfg.seed);
    if cfg.batch_size as i64 > train.len() {
        return Err(UsageError::new(format!(
            "data.batch_size = {} is larger than the training split ({} images)",
            cfg.batch_size,
            train.len()
        )));
    }
    let test = Split {
        images: standardise(&raw.test.0, mean, std),
        labels: raw.test.1,
    };
    Ok(Mnist {
        train: train.to(device),
        validation: validation.to(device),
        test: test.to(device),
    })
}

/// Loads only the test split (for `lenet5 test`).
pub fn load_test(cfg: &DataConfig, device: Device) -> Result<Split> {
    let (images, labels) = read_raw(cfg, false)?.test;
    let (mean, std) = cfg.dataset.mean_std();
    Ok(Split {
        images: standardise(&images, mean, std),
        labels,
    }
    .to(device))
}

/// `[N, 784]` MNIST pixels in [0, 1] (as tch loads them) → `[N, 1, 28, 28]`, standardised.
pub fn normalise(pixels: &Tensor) -> Tensor {
    standardise(
        &pixels.view([-1, 1, IMAGE_SIDE, IMAGE_SIDE]),
        &[MNIST_MEAN],
        &[MNIST_STD],
    )
}

/// `[N, C, H, W]` pixels in [0, 1] → `(x - mean[c]) / std[c]` per channel.
pub fn standardise(images: &Tensor, mean: &[f64], std: &[f64]) -> Tensor {
    let per_channel = |v: &[f64]| {
        Tensor::from_slice(v)
            .to_kind(Kind::Float)
            .view([1, -1, 1, 1])
    };
    (images - per_channel(mean)) / per_channel(std)
}

/// Holds out `fraction` of `all` for validation: the first `round(n·fraction)` indices of a permutation
/// seeded by `seed` (on the CPU, so the split is the same on every device).
pub fn split(all: Split, fraction: f64, seed: u64) -> (Split, Split) {
    let n = all.len();
    let n_val = (n as f64 * fraction).round() as i64;
    tch::manual_seed(seed as i64);
    let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
    let take = |idx: Tensor| Split {
        images: all.images.index_select(0, &idx),
        labels: all.labels.index_select(0, &idx),
    };
    (
        take(perm.narrow(0, n_val, n - n_val)),
        take(perm.narrow(0, 0, n_val)),
    )
}

/// Checks an images/labels pair: both headers, payload sizes, label range, equal counts.
fn check_pair(dir: &Path, (images, labels): (&str, &str)) -> Result<()> {
    let n_images = check_idx(&dir.join(images), IMAGES_MAGIC)?;
    let n_labels = check_idx(&dir.join(labels), LABELS_MAGIC)?;
    if n_images != n_labels {
        return Err(UsageError::new(format!(
            "{}: {n_images} images but {} has {n_labels} labels",
            dir.join(images).display(),
            dir.join(labels).display()
        )));
    }
    Ok(())
}

/// Checks one IDX file's magic number, dimensions and payload length (and, for labels, that every label is
/// in 0..10). Returns the item count.
pub fn check_idx(path: &Path, magic: u32) -> Result<u64> {
    let bad = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let file_len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let header_len: u64 = if magic == IMAGES_MAGIC { 16 } else { 8 };
    let mut header = Vec::with_capacity(header_len as usize);
    (&mut file)
        .take(header_len)
        .read_to_end(&mut header)
        .map_err(|e| bad(e.to_string()))?;
    let field = |i: usize| u32::from_be_bytes(header[4 * i..4 * i + 4].try_into().unwrap());
    if header.len() >= 4 && field(0) != magic {
        let what = if magic == IMAGES_MAGIC {
            "images"
        } else {
            "labels"
        };
        return Err(bad(format!(
            "wrong magic number {} (expected {magic} for IDX {what})",
            field(0)
        )));
    }
    if (header.len() as u64) < header_len {
        return Err(bad(format!(
            "truncated header ({file_len} bytes, expected at least {header_len})"
        )));
    }
    let count = u64::from(field(1));
    let item_len = if magic == IMAGES_MAGIC {
        let (rows, cols) = (field(2), field(3));
        if i64::from(rows) != IMAGE_SIDE || i64::from(cols) != IMAGE_SIDE {
            return Err(bad(format!(
                "images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}"
            )));
        }
        u64::from(rows) * u64::from(cols)
    } else {
        1
    };
    let expected = header_len + count * item_len;
    if file_len != expected {
        let what = if file_len < expected {
            "truncated"
        } else {
            "longer than its header says"
        };
        return Err(bad(format!(
            "{what}: header says {count} items ({expected} bytes), file has {file_len} bytes"
        )));
    }
    if magic == LABELS_MAGIC {
        let mut labels = Vec::with_capacity(count as usize);
        file.read_to_end(&mut labels)
            .map_err(|e| bad(e.to_string()))?;
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| i64::from(**l) >= NUM_CLASSES)
        {
            return Err(bad(format!(
                "label {l} at index {i} is outside 0..{}",
                NUM_CLASSES - 1
            )));
        }
    }
    Ok(count)
}
