//! Which device to run on: `auto | cpu | cuda | cuda:N`, checked against what LibTorch can see.

use crate::UsageError;
use anyhow::Result;
use tch::Device;

/// A device as the user asked for it, before checking that it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Auto,
    Cpu,
    Cuda(usize),
}

/// Parses `auto | cpu | cuda | cuda:N`.
pub fn parse(s: &str) -> std::result::Result<DeviceSpec, String> {
    match s {
        "auto" => Ok(DeviceSpec::Auto),
        "cpu" => Ok(DeviceSpec::Cpu),
        "cuda" => Ok(DeviceSpec::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(DeviceSpec::Cuda)
            .ok_or_else(|| {
                format!("unknown device {s:?}, expected one of: auto, cpu, cuda, cuda:N")
            }),
    }
}

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
