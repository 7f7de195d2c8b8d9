//! Atomic file writes: a reader, or a crash, sees the old file or the new one, never half of one; a failed
//! write leaves no temporary file behind.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |tmp| {
        let mut file = std::fs::File::create(tmp)?;
        file.write_all(bytes)?;
        Ok(())
    })
}

/// Lets `fill` write a temporary file beside `path`, then fsyncs it, renames it over `path` and fsyncs the
/// directory so the rename itself is durable. On any error the temporary file is removed.
pub fn write_with(path: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = fill(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| {
            commit(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.NAME.PID.tmp` beside `path`: hidden, never mistaken for the real file, and one per process, so two
/// processes writing the same file (two sweep drivers rewriting a manifest) never rename each other's.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
