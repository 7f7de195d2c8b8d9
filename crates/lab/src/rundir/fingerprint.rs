//! The dataset a run trained on, as a fingerprint of its files (name, size, CRC32C of the bytes), kept in
//! the run's `dataset.json`: a resumed or re-scored run is checked against it, so it never trains on or
//! reports numbers of data it was not made with.

use crate::UsageError;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// Every file of a dataset, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub files: Vec<FilePrint>,
}

/// One file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePrint {
    pub name: String,
    pub bytes: u64,
    /// CRC32C of the file's bytes, as 8 hex digits.
    pub crc32c: String,
}

impl Fingerprint {
    /// Fingerprints the files `names` in `dir` (dataset files, already checked to be regular).
    pub fn of(dir: &Path, names: &[&str]) -> Result<Self> {
        let files = names
            .iter()
            .map(|name| file_print(&dir.join(name), name))
            .collect::<Result<_>>()?;
        Ok(Fingerprint { files })
    }

    /// How `now` differs from this (the recorded) fingerprint, file by file; `None` when they agree.
    pub fn differences(&self, now: &Fingerprint) -> Option<String> {
        let describe = |f: Option<&FilePrint>| {
            f.map_or("absent".to_string(), |f| {
                format!("{} bytes, crc32c {}", f.bytes, f.crc32c)
            })
        };
        let mut names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        names.extend(now.files.iter().map(|f| f.name.as_str()));
        names.sort_unstable();
        names.dedup();
        let find =
            |fp: &'_ Fingerprint, name: &str| fp.files.iter().find(|f| f.name == name).cloned();
        let diffs: Vec<String> = names
            .into_iter()
            .filter_map(|name| {
                let (was, is) = (find(self, name), find(now, name));
                (was != is).then(|| {
                    format!(
                        "{name}: {} now, {} when trained",
                        describe(is.as_ref()),
                        describe(was.as_ref())
                    )
                })
            })
            .collect();
        (!diffs.is_empty()).then(|| diffs.join("; "))
    }
}

fn file_print(path: &Path, name: &str) -> Result<FilePrint> {
    let cannot =
        |e: std::io::Error| UsageError::error(format!("{}: cannot read ({e})", path.display()));
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let (mut crc, mut bytes, mut buf) = (0u32, 0u64, vec![0u8; 1 << 20]);
    loop {
        let n = file.read(&mut buf).map_err(cannot)?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        bytes += n as u64;
    }
    Ok(FilePrint {
        name: name.to_string(),
        bytes,
        crc32c: format!("{crc:08x}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_or_file_is_named() {
        let dir = std::env::temp_dir().join(format!("lenet5-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), b"123456789").unwrap();
        std::fs::write(dir.join("b"), b"xyz").unwrap();
        let before = Fingerprint::of(&dir, &["a", "b"]).unwrap();
        // CRC-32C's check value (RFC 3720, B.4): CRC32C("123456789") = 0xe3069283.
        assert_eq!(before.files[0].crc32c, "e3069283");
        assert_eq!(before.files[0].bytes, 9);
        assert_eq!(before.differences(&before), None);
        std::fs::write(dir.join("b"), b"xyw").unwrap();
        let after = Fingerprint::of(&dir, &["a", "b"]).unwrap();
        let diff = before.differences(&after).unwrap();
        assert!(diff.starts_with("b: 3 bytes, crc32c "), "{diff}");
        assert!(!diff.contains("a:"), "{diff}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
