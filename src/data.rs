//! The only module that touches dataset files: checks the MNIST IDX files (tch's loader panics or misreads
//! several kinds of bad file), fetches them when asked, loads them through `tch::vision::mnist`, normalises,
//! makes the seeded train/validation split, and keeps every split on the training device.

use crate::UsageError;
use crate::config::DataConfig;
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
}

/// The three splits of a run. `validation` is empty when `validation_split` is 0.
pub struct Mnist {
    pub train: Split,
    pub validation: Split,
    pub test: Split,
}

/// Makes sure the four files are in `cfg.dir`, fetching them with `scripts/fetch_mnist.py` when
/// `cfg.download` is on, then checks every header.
pub fn ensure_files(cfg: &DataConfig) -> Result<()> {
    let dir = cfg.dir();
    let missing: Vec<_> = all_files().filter(|f| !dir.join(f).exists()).collect();
    if !missing.is_empty() {
        let fetch_cmd = format!("python3 scripts/fetch_mnist.py --dataset {} --dir {}", cfg.dataset.name(), dir.display());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch_mnist.py");
        if !cfg.download || !script.exists() {
            return Err(UsageError::new(format!(
                "data dir {}: missing {}; fetch {} with `{fetch_cmd}` (or set data.dir)",
                dir.display(),
                missing.join(", "),
                cfg.dataset.name()
            )));
        }
        eprintln!("{} not found in {}; fetching it with `{fetch_cmd}`", cfg.dataset.name(), dir.display());
        let status = std::process::Command::new("python3")
            .arg(&script)
            .args(["--dataset", cfg.dataset.name(), "--dir"])
            .arg(&dir)
            .status()
            .with_context(|| format!("cannot run `{fetch_cmd}` (is python3 installed?)"))?;
        anyhow::ensure!(status.success(), "`{fetch_cmd}` failed ({status}); see its messages above");
    }
    check_pair(&dir, TRAIN_FILES)?;
    check_pair(&dir, TEST_FILES)?;
    Ok(())
}

fn all_files() -> impl Iterator<Item = &'static str> {
    [TRAIN_FILES.0, TRAIN_FILES.1, TEST_FILES.0, TEST_FILES.1].into_iter()
}

/// Loads MNIST from `cfg.dir` (after [`ensure_files`]), normalises it and splits off the validation set
/// with a permutation seeded by `cfg.seed`, all on `device`.
pub fn load(cfg: &DataConfig, device: Device) -> Result<Mnist> {
    ensure_files(cfg)?;
    let ds = tch::vision::mnist::load_dir(cfg.dir())
        .with_context(|| format!("cannot load {} from {}", cfg.dataset.name(), cfg.dir().display()))?;
    let (mean, std) = cfg.dataset.mean_std();
    let train_all = Split { images: standardise(&ds.train_images, mean, std), labels: ds.train_labels };
    let (train, validation) = split(train_all, cfg.validation_split, cfg.seed);
    if cfg.batch_size as i64 > train.len() {
        return Err(UsageError::new(format!(
            "data.batch_size = {} is larger than the training split ({} images)",
            cfg.batch_size,
            train.len()
        )));
    }
    let test = Split { images: standardise(&ds.test_images, mean, std), labels: ds.test_labels };
    Ok(Mnist { train: train.to(device), validation: validation.to(device), test: test.to(device) })
}

/// Loads only the 10k test split (for `lenet5 test`).
pub fn load_test(cfg: &DataConfig, device: Device) -> Result<Split> {
    Ok(load(&DataConfig { validation_split: 0.0, batch_size: 1, ..cfg.clone() }, device)?.test)
}

/// `[N, 784]` MNIST pixels in [0, 1] (as tch loads them) → `[N, 1, 28, 28]`, standardised.
pub fn normalise(pixels: &Tensor) -> Tensor {
    standardise(pixels, MNIST_MEAN, MNIST_STD)
}

/// `[N, 784]` pixels in [0, 1] → `[N, 1, 28, 28]`, `(x - mean) / std`.
pub fn standardise(pixels: &Tensor, mean: f64, std: f64) -> Tensor {
    ((pixels - mean) / std).view([-1, 1, IMAGE_SIDE, IMAGE_SIDE])
}

/// Holds out `fraction` of `all` for validation: the first `round(n·fraction)` indices of a permutation
/// seeded by `seed` (on the CPU, so the split is the same on every device).
pub fn split(all: Split, fraction: f64, seed: u64) -> (Split, Split) {
    let n = all.len();
    let n_val = (n as f64 * fraction).round() as i64;
    tch::manual_seed(seed as i64);
    let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
    let take = |idx: Tensor| Split { images: all.images.index_select(0, &idx), labels: all.labels.index_select(0, &idx) };
    (take(perm.narrow(0, n_val, n - n_val)), take(perm.narrow(0, 0, n_val)))
}

impl Split {
    fn to(self, device: Device) -> Split {
        Split { images: self.images.to_device(device), labels: self.labels.to_device(device) }
    }
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
    (&mut file).take(header_len).read_to_end(&mut header).map_err(|e| bad(e.to_string()))?;
    let field = |i: usize| u32::from_be_bytes(header[4 * i..4 * i + 4].try_into().unwrap());
    if header.len() >= 4 && field(0) != magic {
        let what = if magic == IMAGES_MAGIC { "images" } else { "labels" };
        return Err(bad(format!("wrong magic number {} (expected {magic} for IDX {what})", field(0))));
    }
    if (header.len() as u64) < header_len {
        return Err(bad(format!("truncated header ({file_len} bytes, expected at least {header_len})")));
    }
    let count = u64::from(field(1));
    let item_len = if magic == IMAGES_MAGIC {
        let (rows, cols) = (field(2), field(3));
        if i64::from(rows) != IMAGE_SIDE || i64::from(cols) != IMAGE_SIDE {
            return Err(bad(format!("images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")));
        }
        u64::from(rows) * u64::from(cols)
    } else {
        1
    };
    let expected = header_len + count * item_len;
    if file_len != expected {
        let what = if file_len < expected { "truncated" } else { "longer than its header says" };
        return Err(bad(format!("{what}: header says {count} items ({expected} bytes), file has {file_len} bytes")));
    }
    if magic == LABELS_MAGIC {
        let mut labels = Vec::with_capacity(count as usize);
        file.read_to_end(&mut labels).map_err(|e| bad(e.to_string()))?;
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| i64::from(**l) >= NUM_CLASSES) {
            return Err(bad(format!("label {l} at index {i} is outside 0..{}", NUM_CLASSES - 1)));
        }
    }
    Ok(count)
}
