//! `lenet5 lr-find` on synthetic data: reproducible, reads only training batches, stops on divergence,
//! and prints a suggestion ready to paste.
mod common;

use common::{lenet5, ok, tiny_project};

/// Runs `lr-find` in `dir` with `args` into `out`; returns stdout and the CSV.
fn find(dir: &std::path::Path, out: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["lr-find", "tiny.yaml", "--out", out];
    all.extend_from_slice(args);
    let stdout = ok(lenet5(dir, &all));
    let csv = std::fs::read_to_string(dir.join(out).join("lr_find.csv")).unwrap();
    (stdout, csv)
}

#[test]
fn lr_find_is_reproducible_and_never_reads_the_test_set() {
    let dir = tiny_project("lr_find_repro", 640, 64, "");
    let (first, csv) = find(&dir, "a", &["--steps", "60", "--max-lr", "1"]);
    assert!(first.contains("suggested, by valley"), "{first}");
    let paste = first
        .lines()
        .find(|l| l.starts_with("--set optimizer.lr="))
        .expect(&first);
    let lr: f64 = paste
        .trim_start_matches("--set optimizer.lr=")
        .parse()
        .unwrap();
    assert!((1e-7..=1.0).contains(&lr), "{paste}");
    assert_eq!(
        csv.lines().count(),
        61,
        "60 batches, no divergence up to lr 1"
    );
    for f in ["lr_find.svg", "lr_find.png"] {
        assert!(
            dir.join("a").join(f).metadata().unwrap().len() > 1000,
            "{f}"
        );
    }
    // The test images replaced by other ones: not one number changes.
    common::write_mnist(&dir.join("other"), 10, 64);
    for f in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let other = std::fs::read(dir.join("other").join(f)).unwrap();
        let mut flipped = other.clone();
        flipped[16..].iter_mut().for_each(|b| *b = 255 - *b);
        std::fs::write(
            dir.join("data").join(f),
            if f.contains("images") { flipped } else { other },
        )
        .unwrap();
    }
    let (second, csv2) = find(&dir, "b", &["--steps", "60", "--max-lr", "1"]);
    assert_eq!(csv, csv2);
    assert_eq!(first.replace("to a", ""), second.replace("to b", ""));
}

#[test]
fn lr_find_stops_when_the_loss_diverges() {
    let dir = tiny_project("lr_find_diverges", 640, 16, "");
    let (stdout, csv) = find(
        &dir,
        "out",
        // Label smoothing keeps the loss from reaching 0 as the logits blow up, so it diverges.
        &[
            "--steps",
            "300",
            "--min-lr",
            "1e-4",
            "--max-lr",
            "1e4",
            "--set",
            "optimizer.type=sgd",
            "--set",
            "regularization.label_smoothing=0.2",
        ],
    );
    assert!(stdout.contains("the smoothed loss diverged"), "{stdout}");
    assert!(csv.lines().count() < 301, "stopped before the last step");
    // A bad range is refused before anything is trained or written.
    let o = lenet5(
        &dir,
        &[
            "lr-find",
            "tiny.yaml",
            "--out",
            "bad",
            "--min-lr",
            "1",
            "--max-lr",
            "0.1",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("--min-lr 1"));
    assert!(!dir.join("bad").exists());
}
