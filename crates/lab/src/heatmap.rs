//! An attribution map over the digit it explains, as a PNG (`predict --explain`): the digit in grey as the
//! eye sees it, positive attributions in red and negative ones in blue, each pixel's colour as strong as its
//! share of the largest |attribution|.

use anyhow::Result;
use image::{ImageFormat, Rgb, RgbImage};

/// `pixels` (ink in [0, 1]) and `attribution`, both `side`×`side` row-major, drawn `scale` times larger.
pub fn png(pixels: &[f32], attribution: &[f32], side: u32, scale: u32) -> Result<Vec<u8>> {
    anyhow::ensure!(
        pixels.len() == (side * side) as usize && attribution.len() == pixels.len(),
        "a heat map needs {side}×{side} pixels and attributions"
    );
    let largest = attribution.iter().fold(0f32, |m, a| m.max(a.abs()));
    let colour = |i: usize| -> Rgb<u8> {
        let grey = 255.0 * pixels[i].clamp(0.0, 1.0);
        let a = attribution[i];
        let share = if largest > 0.0 {
            0.85 * a.abs() / largest
        } else {
            0.0
        };
        let hue = if a >= 0.0 {
            [255.0, 40.0, 0.0]
        } else {
            [0.0, 90.0, 255.0]
        };
        Rgb(hue.map(|h| ((1.0 - share) * grey + share * h).round() as u8))
    };
    let image = RgbImage::from_fn(side * scale, side * scale, |x, y| {
        colour(((y / scale) * side + x / scale) as usize)
    });
    let mut out = std::io::Cursor::new(vec![]);
    image.write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_take_their_colours_and_strength_follows_the_share() {
        let (pixels, attribution) = ([0.0, 1.0, 0.5, 0.0], [2.0, -2.0, 0.0, 1.0]);
        let png = png(&pixels, &attribution, 2, 1).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(
            img.get_pixel(0, 0).0,
            [217, 34, 0],
            "the largest positive: red"
        );
        assert_eq!(
            img.get_pixel(1, 0).0,
            [38, 115, 255],
            "the largest negative, on ink: blue"
        );
        assert_eq!(
            img.get_pixel(0, 1).0,
            [128, 128, 128],
            "no attribution: the digit's grey"
        );
        assert_eq!(
            img.get_pixel(1, 1).0,
            [108, 17, 0],
            "half the largest: half as strong"
        );
        assert!(super::png(&pixels, &attribution[..3], 2, 1).is_err());
        // Each pixel drawn as a scale × scale square.
        let big = super::png(&pixels, &attribution, 2, 10).unwrap();
        let big = image::load_from_memory(&big).unwrap().to_rgb8();
        assert_eq!(big.dimensions(), (20, 20));
        assert_eq!(big.get_pixel(15, 9).0, img.get_pixel(1, 0).0);
        assert_eq!(big.get_pixel(9, 10).0, img.get_pixel(0, 1).0);
        // No attribution anywhere (a blank image): the digit alone, not a division by zero.
        let blank = super::png(&pixels, &[0.0; 4], 2, 1).unwrap();
        let img = image::load_from_memory(&blank).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
    }
}
