//! IDX parsing, normalisation and the seeded split, on synthetic files.
mod common;
use common::*;
use lenet5_core::data::files::{IMAGES_MAGIC, LABELS_MAGIC, check_idx};
use lenet5_core::data::{self, Dataset};
use lenet5_lab::config::DataConfig;
use tch::{Device, Kind, Tensor};

fn cfg(dir: &std::path::Path, validation_split: f64, seed: u64) -> DataConfig {
    DataConfig {
        dir: Some(dir.to_path_buf()),
        download: false,
        batch_size: 10,
        validation_split,
        seed,
        ..Default::default()
    }
}

#[test]
fn loads_normalises_and_splits() {
    let dir = scratch("data_load");
    write_mnist(&dir, 200, 50);
    assert_eq!(
        check_idx(&dir.join("train-images-idx3-ubyte"), IMAGES_MAGIC).unwrap(),
        200
    );
    assert_eq!(
        check_idx(&dir.join("t10k-labels-idx1-ubyte"), LABELS_MAGIC).unwrap(),
        50
    );

    let m = data::load(&cfg(&dir, 0.1, 1), Device::Cpu).unwrap();
    assert_eq!(
        (m.train.len(), m.validation.len(), m.test.len()),
        (180, 20, 50)
    );
    assert_eq!(m.train.images.size(), [180, 1, 28, 28]);
    assert_eq!(m.test.labels.kind(), Kind::Int64);

    // Pixel p/255 is stored as (p/255 - 0.1307) / 0.3081: check the very first test pixel.
    let raw = std::fs::read(dir.join("t10k-images-idx3-ubyte")).unwrap();
    let expected = (raw[16] as f64 / 255.0 - 0.1307) / 0.3081;
    let got = f64::try_from(m.test.images.get(0).get(0).get(0).get(0)).unwrap();
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    let labels = std::fs::read(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let first: Vec<i64> = Vec::try_from(m.test.labels.narrow(0, 0, 5)).unwrap();
    assert_eq!(
        first,
        labels[8..13].iter().map(|&l| l as i64).collect::<Vec<_>>()
    );

    // The split is a seeded partition: the same seed gives the same split, another seed another one,
    // and train ∪ validation is every training label exactly once.
    let again = data::load(&cfg(&dir, 0.1, 1), Device::Cpu).unwrap();
    assert!(m.validation.images.equal(&again.validation.images));
    let other = data::load(&cfg(&dir, 0.1, 2), Device::Cpu).unwrap();
    assert!(!m.validation.images.equal(&other.validation.images));
    let all = Tensor::cat(&[&m.train.labels, &m.validation.labels], 0).bincount::<Tensor>(None, 10);
    let train_labels = std::fs::read(dir.join("train-labels-idx1-ubyte")).unwrap();
    let counts = Tensor::from_slice(&train_labels[8..])
        .to_kind(Kind::Int64)
        .bincount::<Tensor>(None, 10);
    assert!(all.equal(&counts));

    let no_val = data::load(&cfg(&dir, 0.0, 1), Device::Cpu).unwrap();
    assert_eq!((no_val.train.len(), no_val.validation.len()), (200, 0));
}

#[test]
fn bad_headers_are_errors_not_panics() {
    let dir = scratch("data_bad");
    let path = dir.join("x");
    for (bytes, magic, needle) in [
        (idx_images(2, 28, 28, &[0; 100]), IMAGES_MAGIC, "truncated"),
        (idx_images(1, 28, 28, &[0; 784 + 1]), IMAGES_MAGIC, "longer"),
        (
            idx_labels(3, &[1, 2, 10]),
            LABELS_MAGIC,
            "label 10 at index 2",
        ),
        (
            idx_labels(3, &[1, 2, 3]),
            IMAGES_MAGIC,
            "wrong magic number 2049",
        ),
        (vec![0, 0, 8], LABELS_MAGIC, "truncated header"),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let e = format!("{:#}", check_idx(&path, magic).unwrap_err());
        assert!(
            e.contains(needle) && e.contains(path.to_str().unwrap()),
            "{e}"
        );
    }
}

#[test]
fn fashion_mnist_reads_the_same_format_with_its_own_statistics() {
    let dir = scratch("data_fashion");
    write_mnist(&dir, 100, 20);
    let c = DataConfig {
        dataset: Dataset::FashionMnist,
        ..cfg(&dir, 0.0, 1)
    };
    let m = data::load(&c, Device::Cpu).unwrap();
    let raw = std::fs::read(dir.join("t10k-images-idx3-ubyte")).unwrap();
    let expected = (raw[16] as f64 / 255.0 - 0.2860) / 0.3530;
    let got = f64::try_from(m.test.images.get(0).get(0).get(0).get(0)).unwrap();
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // Without data.dir, the directory follows the dataset, and the error says how to fetch it.
    let missing = DataConfig {
        dataset: Dataset::FashionMnist,
        download: false,
        ..Default::default()
    };
    assert_eq!(
        missing.dir(),
        std::path::PathBuf::from("data/fashion-mnist")
    );
    let Err(e) = data::load(
        &DataConfig {
            dir: Some(dir.join("nowhere")),
            ..missing
        },
        Device::Cpu,
    ) else {
        panic!("loaded a missing dir")
    };
    let e = format!("{e:#}");
    assert!(e.contains("lenet5 fetch --dataset fashion-mnist"), "{e}");
}

#[test]
fn cifar10_batches_load_with_per_channel_statistics() {
    let dir = scratch("data_cifar");
    write_cifar(&dir, 20);
    let c = DataConfig {
        dataset: Dataset::Cifar10,
        ..cfg(&dir, 0.1, 1)
    };
    let m = data::load(&c, Device::Cpu).unwrap();
    assert_eq!(
        (m.train.len(), m.validation.len(), m.test.len()),
        (90, 10, 20)
    );
    assert_eq!(m.test.images.size(), [20, 3, 32, 32]);
    // Test record 0 has label 5 (f = 5, i = 0): channel c is (5·20 + 40c)/255, standardised per channel.
    let labels: Vec<i64> = Vec::try_from(m.test.labels.narrow(0, 0, 1)).unwrap();
    assert_eq!(labels, [5]);
    let norm = Dataset::Cifar10.normalization();
    assert_eq!(
        m.test.normalization, norm,
        "the split carries its statistics"
    );
    for ch in 0..3 {
        let expected = ((100.0 + 40.0 * ch as f64) / 255.0 - norm.mean[ch]) / norm.std[ch];
        let got = f64::try_from(m.test.images.get(0).get(ch as i64).get(5).get(7)).unwrap();
        assert!(
            (got - expected).abs() < 1e-5,
            "channel {ch}: {got} vs {expected}"
        );
    }
    // A batch that ends mid-record is named.
    let bytes = std::fs::read(dir.join("test_batch.bin")).unwrap();
    std::fs::write(dir.join("test_batch.bin"), &bytes[..bytes.len() - 7]).unwrap();
    let Err(e) = data::load(&c, Device::Cpu) else {
        panic!("loaded a truncated batch")
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("test_batch.bin") && e.contains("3073-byte"),
        "{e}"
    );
}

#[test]
fn two_fetches_into_one_empty_directory_both_succeed() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    // A stand-in for the fetch script's python3, offline: it copies synthetic files slowly under their
    // final names (as a download does) and, like two downloads colliding on one partial file, fails when
    // another copy is writing into the same directory at the same time.
    let root = scratch("concurrent_fetch");
    let source = root.join("source");
    write_mnist(&source, 50, 20);
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("python3");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ndir=\"$5\"\n[ -e \"$dir/t10k-labels-idx1-ubyte\" ] && exit 0\n\
             [ -e \"$dir/.busy\" ] && {{ echo 'MD5 mismatch' >&2; exit 1; }}\n\
             touch \"$dir/.busy\"; sleep 1\n\
             for f in {src}/*; do cp \"$f\" \"$dir/\"; done\nrm \"$dir/.busy\"\n",
            src = source.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = root.join("data");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_lenet5"))
            .args(["fetch", "--dir", target.to_str().unwrap()])
            .env("PATH", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(target.join("train-images-idx3-ubyte").is_file());
}
