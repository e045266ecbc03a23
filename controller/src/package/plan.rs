//! Disc planning: packs a package's files onto volumes of the target medium, by sector counts,
//! with room for the file-system structures and each disc's own tag files.
//!
//! The size model is deliberately conservative; `xorriso` then enforces the real limit (a
//! virtual drive's capacity is a hard file-size limit), so an optimistic plan fails loudly.

use witness_schemas::media::SECTOR;

use crate::bail;
use crate::error::Result;

/// System area, volume descriptors, path tables, root directories of both trees and xorriso's
/// default 300 KiB of padding, rounded up generously.
pub const FIXED_OVERHEAD: u64 = 1024 * 1024;

/// README, bagit.txt, bag-info.txt and tag manifests of one disc.
const SMALL_TAG_FILES: u64 = 32 * 1024;

fn round_up(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR) * SECTOR
}

/// Bytes the directory records of one file cost in the ISO 9660 + Rock Ridge tree and the
/// Joliet tree together (a record with SUSP entries, and a UCS-2 name).
fn entry_overhead(name_bytes: u64) -> u64 {
    400 + 3 * name_bytes
}

/// An estimate, never an under-estimate, of the XML record that every disc carries: it lists
/// every file of the package, so its size does not depend on the plan.
pub fn record_estimate<'a>(files: impl Iterator<Item = (&'a str, u64)>, capacity: u64) -> u64 {
    let mut total = 4096;
    for (path, size) in files {
        // A split file lists one disc number per part; parts are at least half a disc.
        let parts = size.div_ceil((capacity / 2).max(1)).max(1);
        total += 700 + 2 * path.len() as u64 + 8 * parts;
    }
    total
}

/// Room for tag files on a disc holding `n_files` payload files whose paths total `path_bytes`.
fn tag_overhead(record: u64, n_files: u64, path_bytes: u64) -> u64 {
    // Two manifests (64-hex digest, two spaces, path, newline) and, for split files, their lines in
    // the reassembly file.
    let manifests = 2 * (n_files * 72 + path_bytes) + 4 * path_bytes;
    round_up(record) + round_up(manifests) + SMALL_TAG_FILES
}

/// The largest part of a file that fits alone on an empty disc, sector aligned. Files above it are
/// split into parts of exactly this size (the last one shorter).
pub fn part_size(capacity: u64, record: u64) -> Result<u64> {
    // One file with a long name in `data/`.
    let fixed =
        FIXED_OVERHEAD + tag_overhead(record, 1, 1024) + 2 * entry_overhead(1024) + 2 * SECTOR;
    if capacity <= fixed + 16 * SECTOR {
        bail!(
            InvalidArgument,
            "光盘容量 {capacity} 字节太小，装不下档案包的描述信息 ({fixed} 字节) (disc too small for the package's metadata)"
        );
    }
    Ok((capacity - fixed) / SECTOR * SECTOR)
}

/// A file of the package as the planner sees it.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub id: i64,
    /// Path inside `data/`.
    pub rel_path: String,
    pub size: u64,
    /// Number of parts when the file is split (0 when it is not).
    pub n_parts: u32,
}

/// One thing on a disc: a whole file or one part of a split file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanItem {
    pub file: i64,
    /// 1-based part index for a part of a split file.
    pub part: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct PlannedVolume {
    pub items: Vec<PlanItem>,
    pub payload_bytes: u64,
    used: u64,
    dirs: std::collections::HashSet<String>,
    n_files: u64,
    path_bytes: u64,
}

/// Name of part `index` of a split file, as it appears on disc.
pub fn part_path(rel_path: &str, index: u32) -> String {
    format!("{rel_path}.part{index:03}")
}

/// Packs `files` (in path order, so folders stay together) onto as few volumes as first-fit
/// finds. Every file that fits on one disc stays whole; files larger are already cut into
/// `part_size` parts by collection and each part is placed on its own.
pub fn plan(
    files: &[PlanFile],
    capacity: u64,
    part_size: u64,
    record: u64,
    max_discs: u32,
) -> Result<Vec<PlannedVolume>> {
    if files.is_empty() {
        bail!(
            FailedPrecondition,
            "项目没有任何文件，无法备份 (a project with no files cannot be backed up)"
        );
    }
    let mut volumes: Vec<PlannedVolume> = Vec::new();
    let mut sorted: Vec<&PlanFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    for file in sorted {
        let pieces: Vec<(Option<u32>, String, u64)> = if file.n_parts == 0 {
            vec![(None, file.rel_path.clone(), file.size)]
        } else {
            (1..=file.n_parts)
                .map(|i| {
                    let offset = (i as u64 - 1) * part_size;
                    (
                        Some(i),
                        part_path(&file.rel_path, i),
                        (file.size - offset).min(part_size),
                    )
                })
                .collect()
        };
        for (part, disc_path, size) in pieces {
            let placed = volumes
                .iter_mut()
                .any(|v| try_place(v, file.id, part, &disc_path, size, capacity, record));
            if !placed {
                let mut fresh = PlannedVolume::default();
                if !try_place(
                    &mut fresh, file.id, part, &disc_path, size, capacity, record,
                ) {
                    bail!(
                        Internal,
                        "文件 {disc_path} ({size} 字节) 放不进一张空盘 (容量 {capacity})：分卷大小计算有误"
                    );
                }
                volumes.push(fresh);
                if volumes.len() as u64 > max_discs as u64 {
                    bail!(
                        ResourceExhausted,
                        "档案包需要超过 {max_discs} 张光盘（配置上限 max_discs_per_package），请换更大容量的介质或调整上限"
                    );
                }
            }
        }
    }
    Ok(volumes)
}

fn try_place(
    volume: &mut PlannedVolume,
    file: i64,
    part: Option<u32>,
    disc_path: &str,
    size: u64,
    capacity: u64,
    record: u64,
) -> bool {
    let full = format!("data/{disc_path}");
    // Folders this item needs that the volume does not have yet.
    let mut new_dirs = Vec::new();
    let mut prefix = String::new();
    for segment in full.split('/').take(full.split('/').count() - 1) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(segment);
        if !volume.dirs.contains(&prefix) {
            new_dirs.push(prefix.clone());
        }
    }
    let name_bytes = full.rsplit('/').next().unwrap_or("").len() as u64;
    let mut added = round_up(size) + entry_overhead(name_bytes);
    for dir in &new_dirs {
        // Each folder has at least one sector of records in each of the two trees.
        added += 2 * SECTOR + entry_overhead(dir.rsplit('/').next().unwrap_or("").len() as u64);
    }
    let n_files = volume.n_files + 1;
    let path_bytes = volume.path_bytes + full.len() as u64;
    let total = FIXED_OVERHEAD + volume.used + added + tag_overhead(record, n_files, path_bytes);
    if total > capacity {
        return false;
    }
    volume.used += added;
    volume.n_files = n_files;
    volume.path_bytes = path_bytes;
    volume.payload_bytes += size;
    volume.dirs.extend(new_dirs);
    volume.items.push(PlanItem { file, part });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn file(id: i64, path: &str, size: u64) -> PlanFile {
        PlanFile {
            id,
            rel_path: path.into(),
            size,
            n_parts: 0,
        }
    }

    #[test]
    fn small_package_fits_one_disc() {
        let files = vec![file(1, "a/x.pdf", 1000), file(2, "b.mp4", 3 * MIB)];
        let volumes = plan(
            &files,
            25 * MIB,
            part_size(25 * MIB, 8192).unwrap(),
            8192,
            10,
        )
        .unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(volumes[0].payload_bytes, 3 * MIB + 1000);
    }

    #[test]
    fn split_file_parts_each_take_a_disc_and_small_files_fill_gaps() {
        let capacity = 8 * MIB;
        let record = 8192;
        let part = part_size(capacity, record).unwrap();
        let big = 2 * part + MIB;
        let mut files = vec![PlanFile {
            id: 1,
            rel_path: "big.bin".into(),
            size: big,
            n_parts: 3,
        }];
        for i in 0..50 {
            files.push(file(10 + i, &format!("文档/{i:03}.txt"), 20_000));
        }
        let volumes = plan(&files, capacity, part, record, 10).unwrap();
        assert_eq!(
            volumes.len(),
            3,
            "two full parts, then the last part and the documents share a disc"
        );
        let parts: Vec<_> = volumes
            .iter()
            .flat_map(|v| v.items.iter())
            .filter(|i| i.part.is_some())
            .collect();
        assert_eq!(parts.len(), 3);
        for v in &volumes {
            assert!(v.used + FIXED_OVERHEAD <= capacity);
        }
    }

    #[test]
    fn too_many_discs_is_refused_before_burning() {
        let files: Vec<_> = (0..10)
            .map(|i| file(i, &format!("{i}.bin"), 5 * MIB))
            .collect();
        let err = plan(&files, 8 * MIB, part_size(8 * MIB, 8192).unwrap(), 8192, 3).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::ResourceExhausted);
        assert!(err.message.contains("超过 3 张"), "{err}");
    }

    #[test]
    fn no_files_is_refused() {
        assert!(plan(&[], 8 * MIB, MIB, 8192, 3).is_err());
    }

    #[test]
    fn real_media_leave_almost_all_of_the_disc_for_data() {
        let bd = witness_schemas::media::medium("bd-r")
            .unwrap()
            .capacity_bytes();
        let part = part_size(bd, 100_000).unwrap();
        assert!(bd - part < 2 * MIB, "overhead {} bytes", bd - part);
    }
}
