//! Classifying the user's own digit images: decode (PNG/JPEG, any size, colour or grey, alpha composited on
//! white), then prepare them the way MNIST itself was prepared — ink made bright on dark, cropped to the
//! digit's bounding box, scaled to fit 20×20, centred by centre of mass in 28×28 — and normalise like training.

use crate::data::{Dataset, Normalization};
use anyhow::Result;
use image::{ImageBuffer, Luma};
use lenet5_lab::UsageError;
use std::path::Path;
use tch::{Device, Tensor};

/// MNIST's digits fit a 20×20 box inside the 28×28 field.
pub const DIGIT_BOX: u32 = 20;
/// The MNIST field the images are prepared into.
const SIDE: usize = 28;
const _: () = assert!(Dataset::Mnist.shape().side == SIDE as i64);

/// A grey image, ink bright (up to 1.0) on a dark background (0.0), 28×28, row-major.
pub type Prepared = Vec<f32>;

/// Reads and prepares `path`; the error names the file.
pub fn load_image(path: &Path) -> Result<Prepared> {
    let bad = |e: String| UsageError::error(format!("{}: {e}", path.display()));
    let bytes = lenet5_lab::sys::read::bytes(path, lenet5_lab::sys::read::IMAGE_LIMIT)?;
    prepare_bytes(&bytes).map_err(bad)
}

/// Decodes an encoded image (PNG or JPEG; the format from its bytes, not a file name: a JPEG named `.img`
/// is still a JPEG) and prepares it: what `predict` does with a file and `serve` with a request body.
/// Decoding keeps the image crate's limits (512 MiB per decoded image), so a decompression bomb is an error.
pub fn prepare_bytes(bytes: &[u8]) -> std::result::Result<Prepared, String> {
    if bytes.is_empty() {
        return Err("empty image (0 bytes)".into());
    }
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image ({e})"))?
        .decode()
        .map_err(|e| format!("cannot read image ({e})"))?;
    prepare(&img)
}

/// The MNIST preparation of a decoded image.
pub fn prepare(img: &image::DynamicImage) -> std::result::Result<Prepared, String> {
    let rgba = img.to_rgba32f();
    let (w, h) = rgba.dimensions();
    if w == 0 || h == 0 {
        return Err("empty image".into());
    }
    // Luminance (ITU-R 601, as PIL's "L") composited over white, in [0, 1].
    let mut grey: Vec<f32> = rgba
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0;
            (0.299 * r + 0.587 * g + 0.114 * b) * a + (1.0 - a)
        })
        .collect();
    // The background is what the border mostly is; a light background means dark ink: invert.
    let mut border: Vec<f32> = (0..w as usize)
        .flat_map(|x| [grey[x], grey[(h as usize - 1) * w as usize + x]])
        .chain(
            (0..h as usize)
                .flat_map(|y| [grey[y * w as usize], grey[y * w as usize + w as usize - 1]]),
        )
        .collect();
    border.sort_by(f32::total_cmp);
    let background = border[border.len() / 2];
    if background > 0.5 {
        grey.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
    let background = background.min(1.0 - background);
    // Levels: background to 0, the brightest ink to 1 (photos and scans are rarely pure black and white).
    let peak = grey.iter().copied().fold(0.0f32, f32::max);
    if peak - background < 0.1 {
        return Err("no digit found (the image is blank or has no contrast)".into());
    }
    grey.iter_mut()
        .for_each(|v| *v = ((*v - background) / (peak - background)).clamp(0.0, 1.0));

    // Bounding box of the ink.
    let ink = |x: u32, y: u32| grey[(y * w + x) as usize] > 0.2;
    let xs: Vec<u32> = (0..w).filter(|&x| (0..h).any(|y| ink(x, y))).collect();
    let ys: Vec<u32> = (0..h).filter(|&y| (0..w).any(|x| ink(x, y))).collect();
    let (x0, x1, y0, y1) = (xs[0], *xs.last().unwrap(), ys[0], *ys.last().unwrap());
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = ImageBuffer::<Luma<f32>, Vec<f32>>::from_fn(bw, bh, |x, y| {
        Luma([grey[((y + y0) * w + x + x0) as usize]])
    });

    // Longer side to 20 pixels, aspect ratio kept (anti-aliased, like MNIST's resampling).
    let scale = DIGIT_BOX as f32 / bw.max(bh) as f32;
    let (sw, sh) = (
        ((bw as f32 * scale).round() as u32).max(1),
        ((bh as f32 * scale).round() as u32).max(1),
    );
    let small = image::imageops::resize(&crop, sw, sh, image::imageops::FilterType::Triangle);

    // Centre of mass to the middle of the 28×28 field.
    let mass: f32 = small.pixels().map(|p| p.0[0]).sum();
    let (mut cx, mut cy) = (0.0f32, 0.0f32);
    for (x, y, p) in small.enumerate_pixels() {
        cx += x as f32 * p.0[0];
        cy += y as f32 * p.0[0];
    }
    let (cx, cy) = (cx / mass, cy / mass);
    let place = |c: f32, len: u32| {
        ((SIDE as f32 / 2.0 - c).round() as i64).clamp(0, (SIDE as u32 - len) as i64) as usize
    };
    let (ox, oy) = (place(cx, sw), place(cy, sh));
    let mut out = vec![0.0f32; SIDE * SIDE];
    for (x, y, p) in small.enumerate_pixels() {
        out[(oy + y as usize) * SIDE + ox + x as usize] = p.0[0].clamp(0.0, 1.0);
    }
    Ok(out)
}

/// Prepared images → the `[N, 1, 28, 28]` batch the model takes, normalised like its training data.
pub fn to_batch(images: &[Prepared], normalization: &Normalization, device: Device) -> Tensor {
    let flat: Vec<f32> = images.iter().flatten().copied().collect();
    let side = SIDE as i64;
    crate::data::normalize(
        normalization,
        &Tensor::from_slice(&flat)
            .view([images.len() as i64, 1, side, side])
            .to_device(device),
    )
}
