//! The device a run uses: the config's `auto | cpu | cuda | cuda:N`, checked against what LibTorch can see.

use anyhow::Result;
use lenet5_lab::UsageError;
use lenet5_lab::config::device::{DeviceSpec, parse};
use tch::Device;

/// Resolves a device string to a LibTorch device; asking for CUDA where there is none is an error.
pub fn resolve(s: &str) -> Result<Device> {
    let spec = parse(s).map_err(|e| UsageError::error(format!("device: {e}")))?;
    let count = tch::Cuda::device_count() as usize;
    match spec {
        DeviceSpec::Auto => Ok(Device::cuda_if_available()),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(_) if count == 0 => Err(UsageError::error(format!(
            "device {s:?}: no CUDA device is visible to LibTorch (use `cpu` or `auto`)"
        ))),
        DeviceSpec::Cuda(n) if n >= count => Err(UsageError::error(format!(
            "device {s:?}: only {count} CUDA device(s), numbered 0..{}",
            count - 1
        ))),
        DeviceSpec::Cuda(n) => Ok(Device::Cuda(n)),
    }
}
