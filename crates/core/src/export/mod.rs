//! A trained net as a file other runtimes load (`lenet5 export`): TorchScript ([`torchscript`]) or ONNX
//! ([`onnx`]), each taking raw pixels in [0, 1] (the dataset's normalisation is inside) and giving the
//! logits `lenet5` computes. docs/export.md describes both files.

pub mod onnx;
pub mod onnx_proto;
pub mod torchscript;

use crate::data::{Normalization, Shape};
use crate::nn::Net;
use anyhow::{Context, Result};
use lenet5_lab::sys::atomic;
use std::path::Path;
use tch::nn;

/// The file formats `lenet5 export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TorchScript,
    Onnx,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::TorchScript => "torchscript",
            Format::Onnx => "onnx",
        }
    }

    /// The file name ending a default output path gets (`model.pt`, `model.onnx`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::TorchScript => "pt",
            Format::Onnx => "onnx",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "torchscript" => Ok(Format::TorchScript),
            "onnx" => Ok(Format::Onnx),
            other => Err(format!("{other:?}: expected torchscript or onnx")),
        }
    }
}

/// Writes `net` (its weights in `vs`, on `device`) for `shape` images normalised by `norm` to `out` as
/// `format`, atomically: a failed export leaves no file. Freezes `vs`: a trace stores the weights as
/// constants, which LibTorch refuses while they require gradients.
pub fn write(
    (net, vs): (&Net, &mut nn::VarStore),
    shape: Shape,
    norm: &Normalization,
    format: Format,
    out: &Path,
) -> Result<()> {
    vs.freeze();
    let device = vs.device();
    match format {
        Format::TorchScript => {
            let module = torchscript::module(net, shape, norm, device)?;
            atomic::write_with(out, |tmp| {
                module
                    .save(tmp)
                    .with_context(|| format!("LibTorch could not save {}", tmp.display()))
            })
        }
        Format::Onnx => atomic::write(out, &onnx::model(net, shape, norm)?),
    }
}
