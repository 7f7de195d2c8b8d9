//! Classifying the user's own digit images: decode (PNG/JPEG up to [`MAX_PIXELS`], colour or grey, alpha
//! composited on white), then prepare them the way MNIST itself was prepared — ink made bright on dark,
//! cropped to the digit's bounding box, scaled to fit 20×20, centred by centre of mass in 28×28 — and
//! normalise like training.

use crate::data::{Dataset, Normalization};
use anyhow::Result;
use image::{ImageBuffer, ImageDecoder, Luma};
use lenet5_lab::UsageError;
use std::path::Path;
use tch::{Device, Tensor};

/// MNIST's digits fit a 20×20 box inside the 28×28 field.
pub const DIGIT_BOX: u32 = 20;
/// The MNIST field the images are prepared into.
pub const SIDE: usize = 28;
const _: () = assert!(Dataset::Mnist.shape().side == SIDE as i64);

/// A grey image, ink bright (up to 1.0) on a dark background (0.0), 28×28, row-major.
pub type Prepared = Vec<f32>;

/// Reads and prepares `path`; the error names the file.
pub fn load_image(path: &Path) -> Result<Prepared> {
    let bad = |e: String| UsageError::error(format!("{}: {e}", path.display()));
    let bytes = lenet5_lab::sys::read::bytes(path, lenet5_lab::sys::read::IMAGE_LIMIT)?;
    prepare_bytes(&bytes).map_err(bad)
}

/// The most pixels decoded (4096 × 4096, a 16-megapixel photo): a digit needs far fewer, and the budget
/// bounds what one image costs (decoded, at most [`MAX_DECODED_BYTES`]; prepared, 4 bytes a pixel).
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// The most bytes an image may take decoded (RGBA, 8 bits a channel, at [`MAX_PIXELS`]); also the image
/// crate's allocation limit for the decoder's own buffers.
pub const MAX_DECODED_BYTES: u64 = 4 * MAX_PIXELS;

/// Decodes an encoded image (PNG or JPEG; the format from its bytes, not a file name: a JPEG named `.img`
/// is still a JPEG) and prepares it: what `predict` does with a file and `serve` with a request body.
/// The size comes from the header first: an image over [`MAX_PIXELS`] or [`MAX_DECODED_BYTES`] is refused
/// before anything is allocated for it, so a small file declaring a huge image (a decompression bomb) costs
/// nothing.
pub fn prepare_bytes(bytes: &[u8]) -> std::result::Result<Prepared, String> {
    if bytes.is_empty() {
        return Err("empty image (0 bytes)".into());
    }
    let unreadable = |e: image::ImageError| format!("cannot read image ({e})");
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image ({e})"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(unreadable)?;
    within_budget(decoder.dimensions(), decoder.total_bytes())?;
    let img = image::DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    prepare(&img)
}

/// Refuses an image whose header declares more than [`MAX_PIXELS`] or [`MAX_DECODED_BYTES`].
fn within_budget((w, h): (u32, u32), decoded_bytes: u64) -> std::result::Result<(), String> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS || decoded_bytes > MAX_DECODED_BYTES {
        return Err(format!(
            "the image is {w}×{h} pixels ({} MiB decoded); at most {} megapixels ({} MiB) are decoded: \
             scale it down",
            decoded_bytes >> 20,
            MAX_PIXELS >> 20,
            MAX_DECODED_BYTES >> 20
        ));
    }
    Ok(())
}

/// The MNIST preparation of a decoded image.
pub fn prepare(img: &image::DynamicImage) -> std::result::Result<Prepared, String> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err("empty image".into());
    }
    let mut grey = luminance(img);
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
    let grey = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(w, h, grey).expect("w × h values");
    // A view, not a copy: a large photo's crop would cost as much as the image.
    let crop = image::imageops::crop_imm(&grey, x0, y0, bw, bh);

    // Longer side to 20 pixels, aspect ratio kept (anti-aliased, like MNIST's resampling).
    let scale = DIGIT_BOX as f32 / bw.max(bh) as f32;
    let (sw, sh) = (
        ((bw as f32 * scale).round() as u32).max(1),
        ((bh as f32 * scale).round() as u32).max(1),
    );
    let small = image::imageops::resize(&*crop, sw, sh, image::imageops::FilterType::Triangle);

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

/// Luminance (ITU-R 601, as PIL's "L") composited over white, in [0, 1], row-major: converted a row at a
/// time, so the only full-size buffer is the result (4 bytes a pixel, not 16 for the whole image in RGBA).
fn luminance(img: &image::DynamicImage) -> Vec<f32> {
    let (w, h) = (img.width(), img.height());
    let mut grey = Vec::with_capacity(w as usize * h as usize);
    for y in 0..h {
        let row = img.crop_imm(0, y, w, 1).to_rgba32f();
        grey.extend(row.pixels().map(|p| {
            let [r, g, b, a] = p.0;
            (0.299 * r + 0.587 * g + 0.114 * b) * a + (1.0 - a)
        }));
    }
    grey
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
