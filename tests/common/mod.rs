//! Shared test helpers: synthetic MNIST-format IDX files and running the real `lenet5` binary.
//! Nothing here touches the network or the real MNIST.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SIDE: usize = 28;

/// The seed's PyTorch `LeNet().state_dict()` keys.
pub const PARAMETER_NAMES: [&str; 10] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "fc3.weight",
    "fc3.bias",
];

/// A scratch directory under the target dir, fresh for each test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// IDX images file bytes: magic 2051, count, rows, cols, then `pixels`.
pub fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [2051u32, count, rows, cols] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// IDX labels file bytes: magic 2049, count, then `labels`.
pub fn idx_labels(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for v in [2049u32, count] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

/// A learnable synthetic digit: a bright 6×6 block whose position encodes the label, plus seeded noise.
pub fn synthetic_images(labels: &[u8], seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    let mut pixels = vec![0u8; labels.len() * SIDE * SIDE];
    for (i, &label) in labels.iter().enumerate() {
        let img = &mut pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE];
        for p in img.iter_mut() {
            *p = next() / 8;
        }
        let (row, col) = (2 + (label as usize / 5) * 12, 1 + (label as usize % 5) * 5);
        for r in row..row + 6 {
            for c in col..col + 5 {
                img[r * SIDE + c] = 200 + next() / 5;
            }
        }
    }
    pixels
}

/// Writes the four MNIST files into `dir` with `n_train` and `n_test` synthetic images.
pub fn write_mnist(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (images, labels, n, seed) in [
        (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            n_train,
            1,
        ),
        (
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
            n_test,
            2,
        ),
    ] {
        let ys: Vec<u8> = (0..n)
            .map(|i| ((i * 7 + seed as usize) % 10) as u8)
            .collect();
        let xs = synthetic_images(&ys, seed);
        std::fs::write(dir.join(images), idx_images(n as u32, 28, 28, &xs)).unwrap();
        std::fs::write(dir.join(labels), idx_labels(n as u32, &ys)).unwrap();
    }
}

/// A config for fast tests on the synthetic data in `data_dir`, with runs under `runs_dir`.
pub fn tiny_config(data_dir: &Path, runs_dir: &Path, extra: &str) -> String {
    format!(
        "data:\n  dir: {}\n  download: false\n  batch_size: 32\ntrainer:\n  epochs: 2\n  device: cpu\n  threads: 1\n  runs_dir: {}\n{extra}",
        data_dir.display(),
        runs_dir.display()
    )
}

/// Starts the real binary with `args` in `cwd`, its output discarded (a driver a test kills).
pub fn spawn_lenet5(cwd: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` with SIGKILL as soon as `ready()` holds; fails when `child` ends first or `ready` does not
/// hold within `seconds` (`what` says what was awaited).
pub fn sigkill_when(
    child: &mut std::process::Child,
    seconds: u64,
    what: &str,
    ready: impl Fn() -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        assert!(child.try_wait().unwrap().is_none(), "ended before {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs the real binary with `args` in `cwd`.
pub fn lenet5(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run lenet5")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "lenet5 failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The only run directory under `runs`.
pub fn only_run(runs: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one run in {}: {dirs:?}",
        runs.display()
    );
    dirs[0].clone()
}

/// Where skipped tests leave a marker (one file per test), which `scripts/test` counts into its summary
/// line, so a skip is never counted as a pass.
pub fn skipped_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped")
}

/// Marks `test` as skipped for `reason`, loudly. In CI (`CI` set) a skip is a failure instead: there the
/// test command installs everything the tests need.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {reason}, and CI must run every test"
    );
    eprintln!("SKIPPED {test}: {reason}");
    let _ = std::fs::create_dir_all(skipped_dir());
    std::fs::write(skipped_dir().join(test), reason).unwrap();
}

/// The Python with torch that scripts/setup-libtorch installed (`LENET5_PYTHON`, from .cargo/config.toml),
/// or `python3` if it has torch. Without one, `test` is marked skipped (see [`skip`]) and this is `None`.
pub fn python_with_torch(test: &str) -> Option<String> {
    python_with(test, "torch")
}

/// The set-up venv's Python (`LENET5_PYTHON`, else `python3`) when it can import `modules` (comma-separated);
/// otherwise `test` is marked skipped (see [`skip`]) and this is `None`.
pub fn python_with(test: &str, modules: &str) -> Option<String> {
    let python = std::env::var("LENET5_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            test,
            &format!("no Python with {modules} (run scripts/setup-libtorch, or set LENET5_PYTHON)"),
        );
    }
    ok.then_some(python)
}

/// Runs `python args...`, asserts it succeeded (showing its stderr if not) and returns its stdout.
pub fn run_python(python: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(python).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A scratch directory `name` with synthetic MNIST in `data/` (`n_train` and `n_test` images) and
/// `tiny.yaml` ([`tiny_config`] plus `extra`) whose runs go to `runs/`.
pub fn tiny_project(name: &str, n_train: usize, n_test: usize, extra: &str) -> PathBuf {
    let dir = scratch(name);
    write_mnist(&dir.join("data"), n_train, n_test);
    std::fs::write(
        dir.join("tiny.yaml"),
        tiny_config(&dir.join("data"), &dir.join("runs"), extra),
    )
    .unwrap();
    dir
}

/// Writes CIFAR-10's six binary batches into `dir` with `per_file` synthetic records each: a label byte,
/// then 3×32×32 pixels whose colour depends on the label.
pub fn write_cifar(dir: &Path, per_file: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (f, name) in names.iter().enumerate() {
        let mut bytes = Vec::with_capacity(per_file * 3073);
        for i in 0..per_file {
            let label = ((i * 3 + f) % 10) as u8;
            bytes.push(label);
            for c in 0..3u8 {
                bytes.extend(std::iter::repeat_n(
                    label.wrapping_mul(20).wrapping_add(c * 40),
                    1024,
                ));
            }
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A few bytes of PNG declaring a `width` × `height` image of `depth` bits and PNG colour type `colour`
/// (0 grey, 2 RGB, 6 RGBA), with image data that does not decode: a decompression bomb's header.
pub fn declared_png(width: u32, height: u32, depth: u8, colour: u8) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
        out
    }
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([depth, colour, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}
