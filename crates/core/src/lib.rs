//! lenet5-core: LeNet-5 on LibTorch (tch) — the networks, the data, the training loop and what a run
//! writes as it trains. Everything that needs no LibTorch (config, run-directory formats, studies) is
//! `lenet5_lab`, which this crate builds on.
//!
//! Modules, each importing only the ones listed below it (and `lenet5_lab`):
//!
//! ```text
//! export/   a trained net as a TorchScript or ONNX file, normalisation inside
//! run/      one run: the training loop, evaluation, checkpoints, weights on disk, resume, a trained model
//! output/   what a run emits as it goes, behind one trait (metrics.csv, TensorBoard, console)
//! nn/       the networks (tch::nn), loss, optimizers, augmentation
//! data/     datasets: files, fetch, normalisation, splits; the user's own images
//! device    the config's device, checked against what LibTorch sees
//! ```

#![deny(unreachable_pub)]

pub mod data;
pub mod device;
pub mod export;
pub mod nn;
pub mod output;
pub mod run;
