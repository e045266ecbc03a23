//! Read-back verification: every file of a written copy is read from the medium and its SHA-256
//! and SM3 compared with the manifest. Only a copy that passes counts as archived.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use witness_drivers::burner::DiscRead;
use witness_drivers::iso9660;

use crate::digest::{Digests, DualHasher};
use crate::error::{io_error, Result};
use crate::{bail, err};

/// A file a copy must hold, byte for byte.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Path inside the bag, `/`-separated (`data/...`, `manifest-sha256.txt`…).
    pub path: String,
    pub size: u64,
    pub digests: Digests,
}

const BUFFER: usize = 4 * 1024 * 1024;

fn hash_stream(mut reader: impl Read, what: &str, done: &AtomicU64) -> Result<Digests> {
    let mut hasher = DualHasher::new();
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| io_error(format!("回读 {what}"), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        done.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(hasher.finish())
}

/// What was found on a medium: every file's size, and the digests of those worth reading.
type Found = BTreeMap<String, (u64, Option<Digests>)>;

/// Every difference between what was found and what was expected.
fn problems(found: &Found, expected: &[Expected]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in expected {
        match found.get(&file.path) {
            None => problems.push(format!("缺少文件 {}", file.path)),
            Some((size, _)) if *size != file.size => problems.push(format!(
                "{} 大小不符：应为 {}，读到 {}",
                file.path, file.size, size
            )),
            Some((_, Some(digests))) if *digests != file.digests => {
                let algorithm = if digests.sha256 != file.digests.sha256 {
                    "SHA-256"
                } else {
                    "SM3"
                };
                problems.push(format!("{} 的 {algorithm} 摘要不符", file.path))
            }
            Some(_) => {}
        }
    }
    let wanted: std::collections::HashSet<&str> =
        expected.iter().map(|e| e.path.as_str()).collect();
    for path in found.keys() {
        if !wanted.contains(path.as_str()) {
            problems.push(format!("多出文件 {path}"));
        }
    }
    problems
}

/// Compares what was found on the medium with what was expected; names the first problems.
fn compare(found: &Found, expected: &[Expected]) -> Result<()> {
    let problems = problems(found, expected);
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(5).cloned().collect();
        bail!(
            FailedPrecondition,
            "回读校验失败（{} 处问题）：{}",
            problems.len(),
            shown.join("；")
        );
    }
    Ok(())
}

/// Reads every file of an ISO 9660 disc (image or device) and checks it against `expected`.
pub fn verify_disc(disc: &mut dyn DiscRead, expected: &[Expected], done: &AtomicU64) -> Result<()> {
    compare(&read_disc(disc, expected, done)?, expected)
}

/// Re-reads the payload (`data/…`) of a kept disc and lists its problems (none: it passed).
/// Tag files are not compared: the catalog keeps the payload's digests, not theirs.
pub fn reread_disc(
    disc: &mut dyn DiscRead,
    payload: &[Expected],
    done: &AtomicU64,
) -> Result<Vec<String>> {
    let found = read_disc(disc, payload, done)?;
    Ok(problems(&only_payload(found), payload))
}

/// Like `reread_disc`, for a hard-disk copy.
pub fn reread_dir(root: &Path, payload: &[Expected], done: &AtomicU64) -> Result<Vec<String>> {
    let found = read_dir(root, done)?;
    Ok(problems(&only_payload(found), payload))
}

fn only_payload(found: Found) -> Found {
    found
        .into_iter()
        .filter(|(path, _)| path.starts_with("data/"))
        .collect()
}

fn read_disc(
    mut disc: &mut dyn DiscRead,
    expected: &[Expected],
    done: &AtomicU64,
) -> Result<Found> {
    let (_, files) = iso9660::read_tree(&mut disc)
        .map_err(|e| err!(FailedPrecondition, "回读光盘目录失败：{e}"))?;
    let by_path: BTreeMap<&str, &iso9660::IsoFile> =
        files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut found: BTreeMap<String, (u64, Option<Digests>)> = files
        .iter()
        .map(|f| (f.path.clone(), (f.size, None)))
        .collect();
    // Only files we expect, with the right size, are worth reading; the rest fail anyway.
    for file in expected {
        if let Some(iso) = by_path.get(file.path.as_str()) {
            if iso.size == file.size {
                let digests = hash_stream(iso9660::file_reader(&mut disc, iso), &file.path, done)?;
                found.insert(file.path.clone(), (iso.size, Some(digests)));
            }
        }
    }
    Ok(found)
}

/// Reads every file under `root` (a hard-disk copy) and checks it against `expected`. The page
/// cache is dropped for each file first, so the bytes really come from the disk.
pub fn verify_dir(root: &Path, expected: &[Expected], done: &AtomicU64) -> Result<()> {
    compare(&read_dir(root, done)?, expected)
}

fn read_dir(root: &Path, done: &AtomicU64) -> Result<Found> {
    let mut found: Found = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| io_error(format!("回读目录 {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(dir.display(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let file_type = entry
                .file_type()
                .map_err(|e| io_error(entry.path().display(), e))?;
            if file_type.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                let file = File::open(entry.path())
                    .map_err(|e| io_error(format!("回读 {}", entry.path().display()), e))?;
                drop_cache(&file);
                let size = file
                    .metadata()
                    .map_err(|e| io_error(entry.path().display(), e))?
                    .len();
                let digests = hash_stream(file, &rel, done)?;
                found.insert(rel, (size, Some(digests)));
            }
        }
    }
    Ok(found)
}

/// Asks the kernel to forget cached pages of `file` (they were just written and synced).
pub fn drop_cache(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads the descriptor; failure just means a cached read.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::digest_bytes;

    #[test]
    fn dir_verification_catches_missing_extra_and_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a.txt"), b"abc").unwrap();
        std::fs::write(dir.path().join("data/extra.txt"), b"x").unwrap();
        let expected = vec![
            Expected {
                path: "data/a.txt".into(),
                size: 3,
                digests: digest_bytes(b"abd"),
            },
            Expected {
                path: "data/b.txt".into(),
                size: 1,
                digests: digest_bytes(b"b"),
            },
        ];
        let err = verify_dir(dir.path(), &expected, &AtomicU64::new(0)).unwrap_err();
        assert!(err.message.contains("3 处问题"), "{err}");
        assert!(
            err.message.contains("data/a.txt 的 SHA-256 摘要不符"),
            "{err}"
        );
        assert!(err.message.contains("缺少文件 data/b.txt"), "{err}");
        assert!(err.message.contains("多出文件 data/extra.txt"), "{err}");
        let good = vec![
            Expected {
                path: "data/a.txt".into(),
                size: 3,
                digests: digest_bytes(b"abc"),
            },
            Expected {
                path: "data/extra.txt".into(),
                size: 1,
                digests: digest_bytes(b"x"),
            },
        ];
        verify_dir(dir.path(), &good, &AtomicU64::new(0)).unwrap();
    }
}
