//! `predict`'s MNIST-style preparation of user images, and its error path.
mod common;
use common::*;
use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};
use lenet5_core::data::image::{self as prep, Prepared};

/// A thick ring ("0") of radius `r` centred at (cx, cy), ink `ink` on paper `paper`.
fn ring(w: u32, h: u32, cx: f32, cy: f32, r: f32, ink: u8, paper: u8) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let v = if on_ring(d, r) { ink } else { paper };
        Rgb([v, v, v])
    }))
}

fn on_ring(d: f32, r: f32) -> bool {
    (d - r).abs() < r * 0.25
}

fn centre_of_mass(p: &Prepared) -> (f32, f32) {
    let (mut m, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for (i, v) in p.iter().enumerate() {
        m += v;
        cx += (i % 28) as f32 * v;
        cy += (i / 28) as f32 * v;
    }
    (cx / m, cy / m)
}

fn max_diff(a: &Prepared, b: &Prepared) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Width and height of the ink's bounding box.
fn ink_box(p: &Prepared) -> (usize, usize) {
    let cols: Vec<usize> = (0..28)
        .filter(|&x| (0..28).any(|y| p[y * 28 + x] > 0.2))
        .collect();
    let rows: Vec<usize> = (0..28)
        .filter(|&y| (0..28).any(|x| p[y * 28 + x] > 0.2))
        .collect();
    (
        cols.last().unwrap() - cols[0] + 1,
        rows.last().unwrap() - rows[0] + 1,
    )
}

#[test]
fn a_centred_digit_stays_centred_and_an_off_centre_one_is_centred() {
    let centred = prep::prepare(&ring(100, 100, 50.0, 50.0, 30.0, 0, 255)).unwrap();
    let (cx, cy) = centre_of_mass(&centred);
    assert!(
        (cx - 14.0).abs() <= 0.6 && (cy - 14.0).abs() <= 0.6,
        "centre of mass ({cx}, {cy})"
    );
    // The same ring, small, in a corner of a large canvas: the same 28×28 result.
    let corner = prep::prepare(&ring(300, 200, 45.0, 40.0, 30.0, 0, 255)).unwrap();
    assert!(
        max_diff(&centred, &corner) < 0.05,
        "{}",
        max_diff(&centred, &corner)
    );
    // The longer side of the ink is scaled to 20 pixels, as in MNIST.
    let (w, h) = ink_box(&centred);
    assert!(w.max(h) == 20 || w.max(h) == 19, "{w}x{h}");
}

#[test]
fn an_inverted_image_is_re_inverted() {
    let dark_on_light = prep::prepare(&ring(80, 80, 40.0, 40.0, 25.0, 0, 255)).unwrap();
    let light_on_dark = prep::prepare(&ring(80, 80, 40.0, 40.0, 25.0, 255, 0)).unwrap();
    assert_eq!(dark_on_light, light_on_dark);
    // Ink is bright on a dark background, like MNIST.
    assert_eq!(dark_on_light[0], 0.0);
    assert!(dark_on_light.iter().copied().fold(0.0, f32::max) > 0.99);
}

#[test]
fn shipped_samples_have_mnist_like_statistics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let p = prep::load_image(&path).unwrap();
        let mean = p.iter().sum::<f32>() / p.len() as f32;
        // MNIST's mean pixel is 0.1307 (digits vary: a "1" has little ink, an "8" a lot).
        assert!(
            (0.04..0.3).contains(&mean),
            "{}: mean {mean}",
            path.display()
        );
        let (w, h) = ink_box(&p);
        assert!(
            w <= 21 && h <= 21 && w.max(h) >= 19,
            "{}: ink box {w}x{h}",
            path.display()
        );
        let (cx, cy) = centre_of_mass(&p);
        assert!(
            (cx - 14.0).abs() < 1.0 && (cy - 14.0).abs() < 1.0,
            "{}: ({cx}, {cy})",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn alpha_and_jpeg_inputs_are_understood() {
    // Ink only in the alpha channel, RGB black everywhere: composited on white, the ring is still there.
    let ring_alpha = DynamicImage::ImageRgba8(RgbaImage::from_fn(80, 80, |x, y| {
        let d = ((x as f32 - 40.0).powi(2) + (y as f32 - 40.0).powi(2)).sqrt();
        Rgba([0, 0, 0, if on_ring(d, 25.0) { 255 } else { 0 }])
    }));
    let from_alpha = prep::prepare(&ring_alpha).unwrap();
    let plain = prep::prepare(&ring(80, 80, 40.0, 40.0, 25.0, 0, 255)).unwrap();
    assert!(max_diff(&from_alpha, &plain) < 0.1);
    // A JPEG of the same ring decodes and prepares to nearly the same image.
    let dir = scratch("predict_jpeg");
    let path = dir.join("ring.jpg");
    ring(80, 80, 40.0, 40.0, 25.0, 0, 255).save(&path).unwrap();
    let from_jpeg = prep::load_image(&path).unwrap();
    // JPEG's ringing can move the centre of mass across a rounding boundary: allow a one-pixel shift.
    let shifted_diff = |dx: i64, dy: i64| {
        let mut total = 0.0;
        for y in 0..28i64 {
            for x in 0..28i64 {
                let (sx, sy) = (x + dx, y + dy);
                let v = if (0..28).contains(&sx) && (0..28).contains(&sy) {
                    from_jpeg[(sy * 28 + sx) as usize]
                } else {
                    0.0
                };
                total += (v - plain[(y * 28 + x) as usize]).abs();
            }
        }
        total / 784.0
    };
    let best = (-1..=1)
        .flat_map(|dx| (-1..=1).map(move |dy| (dx, dy)))
        .map(|(dx, dy)| shifted_diff(dx, dy))
        .fold(f32::MAX, f32::min);
    assert!(best < 0.03, "{best}");
    assert!(
        prep::prepare(&ring(50, 50, 25.0, 25.0, 10.0, 128, 128))
            .unwrap_err()
            .contains("no digit")
    );
}

#[test]
fn broken_images_are_named_and_the_rest_still_classified() {
    let dir = tiny_project("predict_cli", 200, 20, "");
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--epochs", "1", "--run-dir", "runs/r"],
    ));
    std::fs::write(dir.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/7-blue-on-paper.png");
    let out = lenet5(
        &dir,
        &[
            "predict",
            "runs/r",
            "broken.png",
            good.to_str().unwrap(),
            "missing.png",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("broken.png: cannot read image") && err.contains("missing.png"),
        "{err}"
    );
    assert!(
        err.lines().last().unwrap().contains("2 of 3 images"),
        "{err}"
    );
    let text = stdout(&out);
    assert!(
        text.contains("7-blue-on-paper.png: ") && text.matches('%').count() == 3,
        "{text}"
    );
    let json = ok(lenet5(
        &dir,
        &["predict", "runs/r", good.to_str().unwrap(), "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let top3 = v["predictions"][0]["top3"].as_array().unwrap();
    let total: f64 = top3.iter().map(|t| t[1].as_f64().unwrap()).sum();
    assert!(top3.len() == 3 && total <= 1.0 + 1e-6);
}

#[test]
fn predict_says_what_it_used_and_why_an_image_failed() {
    let dir = tiny_project("predict_explains", 200, 20, "");
    ok(lenet5(
        &dir,
        &["train", "tiny.yaml", "--epochs", "1", "--run-dir", "runs/r"],
    ));
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let good = samples.join("7-blue-on-paper.png");
    // The format comes from the bytes: a PNG named .img is read.
    std::fs::copy(&good, dir.join("seven.img")).unwrap();
    let out = lenet5(&dir, &["predict", "runs/r", "seven.img"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("run: runs/r") && err.contains("checkpoint: runs/r/best.safetensors"),
        "{err}"
    );
    // One epoch on synthetic blocks: a photo of a 7 is a guess, and said to be one.
    let text = stdout(&out);
    assert!(text.contains("seven.img: "), "{text}");
    // A folder that is not a run is not silently taken as one.
    std::fs::create_dir_all(dir.join("photos")).unwrap();
    let out = lenet5(&dir, &["predict", "photos", "seven.img"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("photos is a directory but not a run directory"),
        "{}",
        stderr(&out)
    );
    // --json gives each failure's reason.
    let out = lenet5(
        &dir,
        &["predict", "runs/r", "seven.img", "missing.png", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["failed"][0]["file"], "missing.png");
    assert!(
        v["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("missing.png"),
        "{v}"
    );
    assert!(v["run"].as_str().unwrap().ends_with("runs/r"), "{v}");
    assert!(v["predictions"][0]["low_confidence"].is_boolean(), "{v}");
    // A checkpoint where a run directory is expected is that run's checkpoint.
    let test = ok(lenet5(&dir, &["test", "runs/r/last.safetensors"]));
    assert!(
        test.contains("checkpoint: runs/r/last.safetensors"),
        "{test}"
    );
    let out = lenet5(&dir, &["test", "seven.img"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected a run directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_guess_is_flagged_as_one() {
    use lenet5_core::run::trained::{CONFIDENT, classify};
    // A net whose logits ignore the image: uniform probabilities, 10% each.
    #[derive(Debug)]
    struct Uniform;
    impl tch::nn::ModuleT for Uniform {
        fn forward_t(&self, xs: &tch::Tensor, _train: bool) -> tch::Tensor {
            tch::Tensor::zeros([xs.size()[0], 10], (tch::Kind::Float, tch::Device::Cpu))
        }
    }
    let image = vec![0.0f32; 28 * 28];
    let norm = lenet5_core::data::Dataset::Mnist.normalization();
    let p = classify(&Uniform, &["x".into()], &[image], &norm, tch::Device::Cpu);
    assert!(p[0].low_confidence && p[0].top3[0].1 < CONFIDENT);
    assert!(
        p[0].to_text().contains("low confidence"),
        "{}",
        p[0].to_text()
    );
}

#[test]
fn an_image_over_the_decoding_budget_is_refused_before_it_is_decoded() {
    let dir = scratch("predict_budget");
    // 16000 × 16000 at 1 bit: a few bytes on disk, 256 MB as grey bytes, 4 GB as a float image.
    let path = dir.join("bomb.png");
    std::fs::write(&path, declared_png(16_000, 16_000, 1, 0)).unwrap();
    let started = std::time::Instant::now();
    let err = prep::load_image(&path).unwrap_err().to_string();
    assert!(
        err.contains("bomb.png") && err.contains("16000×16000") && err.contains("16 megapixels"),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs_f64() < 0.5,
        "{:?}",
        started.elapsed()
    );
    // The budget's edge: 4096 × 4096 RGBA at 8 bits (64 MiB) is decoded (this one's data is broken), one
    // row more or 16 bits a channel is not.
    let decoded = |w, h, depth| prep::prepare_bytes(&declared_png(w, h, depth, 6)).unwrap_err();
    assert!(decoded(4096, 4096, 8).starts_with("cannot read image"));
    assert!(decoded(4096, 4097, 8).contains("megapixels"));
    assert!(decoded(4096, 4096, 16).contains("128 MiB decoded"));
    assert!(decoded(2048, 2048, 16).starts_with("cannot read image"));
}
