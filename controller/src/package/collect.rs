//! The collect step: copies every source file of a project into the job's staging bag and
//! computes SHA-256 and SM3 of each file (and of each part of a file too large for one disc) in
//! the same single pass.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digests, DualHasher};
use crate::error::{io_error, Result};
use crate::{bail, err};

/// A source to copy, as registered in the catalog.
#[derive(Debug, Clone)]
pub struct Source {
    pub rel_path: String,
    pub origin: PathBuf,
    pub kind: String,
}

/// A collected file with its digests, and its parts' digests when it was split.
#[derive(Debug, Clone)]
pub struct Collected {
    pub rel_path: String,
    pub kind: String,
    pub size: u64,
    pub digests: Digests,
    /// (offset, length, digests) of each part, empty for a file that is not split.
    pub parts: Vec<(u64, u64, Digests)>,
}

const BUFFER: usize = 4 * 1024 * 1024;

/// Copies `sources` into `<bag>/data/`, hashing as it goes. Runs on a blocking thread;
/// `done` counts bytes copied so far for progress. Files above `part_size` bytes also get the
/// digests of each `part_size` piece, so the disc plan never has to read them again.
pub fn collect(
    bag: &Path,
    sources: &[Source],
    part_size: u64,
    done: &AtomicU64,
) -> Result<Vec<Collected>> {
    // A crash mid-collection leaves a partial staging tree; collection always starts over.
    if bag.exists() {
        std::fs::remove_dir_all(bag)
            .map_err(|e| io_error(format!("清理暂存目录 {}", bag.display()), e))?;
    }
    let data = bag.join("data");
    std::fs::create_dir_all(&data)
        .map_err(|e| io_error(format!("创建暂存目录 {}", data.display()), e))?;
    let mut collected = Vec::with_capacity(sources.len());
    let mut buffer = vec![0u8; BUFFER];
    for source in sources {
        let target = data.join(&source.rel_path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error(format!("创建目录 {}", parent.display()), e))?;
        }
        collected.push(copy_one(source, &target, part_size, &mut buffer, done)?);
    }
    sync_filesystem(bag)?;
    Ok(collected)
}

fn copy_one(
    source: &Source,
    target: &Path,
    part_size: u64,
    buffer: &mut [u8],
    done: &AtomicU64,
) -> Result<Collected> {
    let mut input = File::open(&source.origin)
        .map_err(|e| io_error(format!("源文件 {} 无法读取", source.origin.display()), e))?;
    let mut output = File::create(target)
        .map_err(|e| io_error(format!("写入暂存文件 {}", target.display()), e))?;
    let mut whole = DualHasher::new();
    // Only bytes past the first part boundary go through a second hasher: the first part's
    // digests are the whole-file hasher's state at that boundary, so a file that is not split
    // (nearly all of them) is hashed exactly once.
    let mut part = DualHasher::new();
    let mut parts = Vec::new();
    loop {
        let n = input
            .read(buffer)
            .map_err(|e| io_error(format!("读取源文件 {}", source.origin.display()), e))?;
        if n == 0 {
            break;
        }
        let mut chunk = &buffer[..n];
        output
            .write_all(chunk)
            .map_err(|e| io_error(format!("写入暂存文件 {}", target.display()), e))?;
        while !chunk.is_empty() {
            let offset = whole.bytes();
            let to_boundary = part_size - offset % part_size;
            let take = (to_boundary.min(chunk.len() as u64)) as usize;
            whole.update(&chunk[..take]);
            if offset >= part_size {
                part.update(&chunk[..take]);
            }
            chunk = &chunk[take..];
            let end = whole.bytes();
            if end.is_multiple_of(part_size) {
                let digests = if end == part_size {
                    whole.clone().finish()
                } else {
                    std::mem::take(&mut part).finish()
                };
                parts.push((end - part_size, part_size, digests));
            }
        }
        done.fetch_add(n as u64, Ordering::Relaxed);
    }
    let size = whole.bytes();
    if size > part_size {
        if part.bytes() > 0 {
            let length = part.bytes();
            parts.push((size - length, length, part.finish()));
        }
    } else {
        // One part that is the whole file: not split at all.
        parts.clear();
    }
    if size > 0 && parts.iter().map(|p| p.1).sum::<u64>() != size && !parts.is_empty() {
        bail!(
            Internal,
            "parts of {} do not add up to its size",
            source.rel_path
        );
    }
    let meta = input
        .metadata()
        .map_err(|e| io_error(format!("源文件 {}", source.origin.display()), e))?;
    if meta.len() != size {
        return Err(err!(
            FailedPrecondition,
            "源文件 {} 在复制过程中被修改（读到 {size} 字节，现为 {} 字节），请稍后重试",
            source.origin.display(),
            meta.len()
        ));
    }
    Ok(Collected {
        rel_path: source.rel_path.clone(),
        kind: source.kind.clone(),
        size,
        digests: whole.finish(),
        parts,
    })
}

/// Flushes the staging file system once (instead of an fsync per file): after this the catalog
/// may record the collection as done.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let file = File::open(dir).map_err(|e| io_error(format!("打开目录 {}", dir.display()), e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc != 0 {
        return Err(io_error(
            format!("同步文件系统 {}", dir.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::digest_bytes;

    #[test]
    fn parts_are_hashed_in_the_same_pass() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..10_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(dir.path().join("big.bin"), &big).unwrap();
        std::fs::write(dir.path().join("small.txt"), b"hello").unwrap();
        let sources = vec![
            Source {
                rel_path: "视频/big.bin".into(),
                origin: dir.path().join("big.bin"),
                kind: "video".into(),
            },
            Source {
                rel_path: "small.txt".into(),
                origin: dir.path().join("small.txt"),
                kind: "document".into(),
            },
        ];
        let done = AtomicU64::new(0);
        let part = 4 * 1024 * 1024;
        let out = collect(&dir.path().join("bag"), &sources, part, &done).unwrap();
        assert_eq!(done.load(Ordering::Relaxed), 10_000_005);
        assert_eq!(out[0].digests, digest_bytes(&big));
        assert_eq!(out[0].parts.len(), 3);
        for (offset, length, digests) in &out[0].parts {
            assert_eq!(
                *digests,
                digest_bytes(&big[*offset as usize..(*offset + *length) as usize])
            );
        }
        assert!(out[1].parts.is_empty());
        assert_eq!(
            std::fs::read(dir.path().join("bag/data/视频/big.bin")).unwrap(),
            big
        );
    }

    #[test]
    fn files_on_part_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let part = 1024 * 1024;
        let data: Vec<u8> = (0..2 * part as u32).map(|i| (i * 13 % 251) as u8).collect();
        let cases: [(&str, usize, usize); 3] = [
            ("one.bin", part as usize, 0),
            ("two.bin", 2 * part as usize, 2),
            ("tiny.bin", 1, 0),
        ];
        for (name, len, _) in cases {
            std::fs::write(dir.path().join(name), &data[..len]).unwrap();
        }
        let sources: Vec<Source> = cases
            .iter()
            .map(|(name, _, _)| Source {
                rel_path: name.to_string(),
                origin: dir.path().join(name),
                kind: "other".into(),
            })
            .collect();
        let out = collect(&dir.path().join("bag"), &sources, part, &AtomicU64::new(0)).unwrap();
        for ((_, len, n_parts), got) in cases.iter().zip(&out) {
            assert_eq!(got.digests, digest_bytes(&data[..*len]));
            assert_eq!(got.parts.len(), *n_parts);
            for (offset, length, digests) in &got.parts {
                assert_eq!(*length, part);
                assert_eq!(
                    *digests,
                    digest_bytes(&data[*offset as usize..(*offset + *length) as usize])
                );
            }
        }
    }

    #[test]
    fn a_missing_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sources = vec![Source {
            rel_path: "x.pdf".into(),
            origin: dir.path().join("gone.pdf"),
            kind: "document".into(),
        }];
        let err = collect(
            &dir.path().join("bag"),
            &sources,
            1 << 20,
            &AtomicU64::new(0),
        )
        .unwrap_err();
        assert!(err.message.contains("gone.pdf"), "{err}");
    }
}
