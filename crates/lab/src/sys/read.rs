//! Reading a file the user named: only a regular file (a FIFO would block forever, `/dev/zero` never ends,
//! a directory is not a file), and never more than a bound fitting what the file is for. Errors are one line
//! naming the file.

use crate::UsageError;
use anyhow::Result;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Bounds on what lenet5 reads: each far above any real file of its kind.
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// A run's JSON files and a sweep's run lists.
pub const RUN_FILE_LIMIT: u64 = 16 << 20;
/// An image given to `predict` (a phone photo is a few MB).
pub const IMAGE_LIMIT: u64 = 32 << 20;
/// A `.safetensors` checkpoint (LeNet-5's are under 1 MB).
pub const CHECKPOINT_LIMIT: u64 = 256 << 20;

/// The bytes of `path`, a regular file of at most `limit` bytes.
pub fn bytes(path: &Path, limit: u64) -> Result<Vec<u8>> {
    // Non-blocking, so opening a FIFO returns at once instead of waiting for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| bad(path, format!("cannot read ({e})")))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(path, format!("cannot read ({e})")))?;
    check_kind(path, &meta, limit)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(path, format!("cannot read ({e})")))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(bytes)
}

/// The text of `path`, a regular UTF-8 file of at most `limit` bytes.
pub fn text(path: &Path, limit: u64) -> Result<String> {
    String::from_utf8(bytes(path, limit)?).map_err(|_| bad(path, "is not UTF-8 text".into()))
}

/// Checks, without opening it, that `path` is a regular file of at most `limit` bytes: for files another
/// library opens itself (a checkpoint, a dataset file).
pub fn check_regular(path: &Path, limit: u64) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| bad(path, format!("cannot read ({e})")))?;
    check_kind(path, &meta, limit)
}

fn check_kind(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<()> {
    let kind = meta.file_type();
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if !kind.is_file() {
        "not a regular file"
    } else if meta.len() > limit {
        return Err(too_large(path, limit));
    } else {
        return Ok(());
    };
    Err(bad(path, format!("is {what}, not a regular file")))
}

fn too_large(path: &Path, limit: u64) -> anyhow::Error {
    bad(
        path,
        format!(
            "is larger than {} MiB, more than this file can be",
            limit >> 20
        ),
    )
}

fn bad(path: &Path, msg: String) -> anyhow::Error {
    UsageError::error(format!("{}: {msg}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_bounded_regular_file() {
        let dir = std::env::temp_dir().join(format!("lenet5-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = |r: Result<Vec<u8>>| format!("{:#}", r.unwrap_err());
        assert!(e(bytes(&fifo, 10)).contains("is a FIFO"));
        assert!(e(bytes(&dir, 10)).contains("is a directory"));
        assert!(e(bytes(Path::new("/dev/zero"), 10)).contains("is a device"));
        let file = dir.join("f");
        std::fs::write(&file, "12345678901").unwrap();
        assert!(e(bytes(&file, 10)).contains("larger than"));
        assert_eq!(bytes(&file, 11).unwrap(), b"12345678901");
        assert!(check_regular(&fifo, 10).is_err());
        assert!(check_regular(&file, 10).is_err());
        assert!(check_regular(&file, 11).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
