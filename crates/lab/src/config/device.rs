//! Which device a config names: `auto | cpu | cuda | cuda:N` (the core crate checks it against what
//! LibTorch can see).

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
