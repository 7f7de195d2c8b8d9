//! Lock files: an advisory lock (`flock`) on a file that is created when missing and never truncated, so
//! opening it changes nothing a reader sees. The lock lasts as long as the returned `File`.

use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;

/// Opens (creating when missing) the lock file at `path`, not yet locked.
pub fn open(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}
