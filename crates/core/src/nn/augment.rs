//! Random planar affine distortions of a training batch, on its device: LibTorch's `affine_grid` +
//! `grid_sample`, one random transform per image drawn from LibTorch's (seeded) generator.

use lenet5_lab::config::AugmentConfig;
use tch::{Kind, Tensor};

/// Distorts normalised images `[N, C, H, W]`, one random transform per image. Pixels pulled in from
/// outside the image are `background` (the normalised raw 0: [`crate::data::Normalization::background`]),
/// not the normalised 0. With every bound zero this is the identity (to float rounding).
pub fn distort(xs: &Tensor, cfg: &AugmentConfig, background: &Tensor) -> Tensor {
    let size = xs.size();
    let (n, h) = (size[0], size[2]);
    let opts = (Kind::Float, xs.device());
    let uniform = |bound: f64| (Tensor::rand([n], opts) * 2.0 - 1.0) * bound;
    let angle = uniform(cfg.rotate.to_radians());
    let zoom = uniform(cfg.scale) + 1.0;
    let squeeze = uniform(cfg.squeeze);
    let shear = uniform(cfg.shear);
    // affine_grid works in [-1, 1] coordinates: a shift of one pixel is 2/H.
    let tx = uniform(cfg.translate * 2.0 / h as f64);
    let ty = uniform(cfg.translate * 2.0 / h as f64);
    // Output → input sampling map: rotation · (zoom with squeeze) · shear, plus the shift.
    let (sx, sy) = (&zoom * (&squeeze + 1.0), &zoom * (1.0 - &squeeze));
    let (cos, sin) = (angle.cos(), angle.sin());
    let row0 = Tensor::stack(&[&cos * &sx, &cos * &sx * &shear - &sin * &sy, tx], 1);
    let row1 = Tensor::stack(&[&sin * &sx, &sin * &sx * &shear + &cos * &sy, ty], 1);
    let theta = Tensor::stack(&[row0, row1], 1);
    let grid = Tensor::affine_grid_generator(&theta, size.as_slice(), false);
    // Bilinear (0), zero padding (0) around the background-shifted image.
    (xs - background).grid_sampler(&grid, 0, 0, false) + background
}
