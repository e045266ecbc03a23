//! Writes a bag's tag files (bagit.txt, bag-info.txt, manifests, tag manifests, the XML record,
//! the README) and links a disc's payload into its volume folder.

use std::path::Path;

use witness_schemas::bag::{
    self, BagInfo, ManifestEntry, PackageDescription, BAGIT_TXT, README_FILE, RECORD_FILE,
    SPLIT_FILE,
};

use crate::digest::{digest_bytes, Digests};
use crate::error::{io_error, Result};

/// A payload file of a bag: its path inside the bag (`data/...`), size and digests.
#[derive(Debug, Clone)]
pub struct PayloadFile {
    pub bag_path: String,
    pub size: u64,
    pub digests: Digests,
}

/// A tag file as written, with its digests (for read-back verification).
#[derive(Debug, Clone)]
pub struct TagFile {
    pub bag_path: String,
    pub size: u64,
    pub digests: Digests,
}

/// Labels of bag-info.txt that are not in RFC 8493's reserved list carry our prefix.
fn bag_info(desc: &PackageDescription, payload: &[PayloadFile]) -> BagInfo {
    let bytes: u64 = payload.iter().map(|p| p.size).sum();
    let mut info = BagInfo::default();
    info.push("Source-Organization", desc.organization.clone())
        .push("External-Identifier", desc.project_number.clone())
        .push(
            "External-Description",
            format!("{}（{}）", desc.project_name, desc.category_zh),
        )
        .push(
            "Bagging-Date",
            desc.created_at
                .get(..10)
                .unwrap_or(&desc.created_at)
                .to_string(),
        )
        .push("Bag-Group-Identifier", desc.package_id.clone())
        .push(
            "Bag-Count",
            format!("{} of {}", desc.disc_index, desc.disc_count),
        )
        .push("Payload-Oxum", format!("{}.{}", bytes, payload.len()))
        .push("Bag-Size", human_size(bytes))
        .push("Witness-Project-Number", desc.project_number.clone())
        .push("Witness-Project-Name", desc.project_name.clone())
        .push("Witness-Category", desc.category_zh.clone())
        .push("Witness-Opening-Time", desc.opening.clone())
        .push("Witness-Medium", desc.medium_zh.clone());
    info
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Writes every tag file of a bag rooted at `root` (whose payload is described by `payload`) and
/// returns them with their digests. The output depends only on the inputs, so a redo after a
/// crash writes the same bytes.
pub fn write_tag_files(
    root: &Path,
    desc: &PackageDescription,
    payload: &[PayloadFile],
) -> Result<Vec<TagFile>> {
    let mut files: Vec<(String, String)> = vec![
        ("bagit.txt".into(), BAGIT_TXT.into()),
        ("bag-info.txt".into(), bag_info(desc, payload).render()),
    ];
    for algorithm in bag::ALGORITHMS {
        let entries: Vec<ManifestEntry> = payload
            .iter()
            .map(|p| ManifestEntry {
                path: p.bag_path.clone(),
                digest: if algorithm == "sha256" {
                    p.digests.sha256.clone()
                } else {
                    p.digests.sm3.clone()
                },
            })
            .collect();
        files.push((
            format!("manifest-{algorithm}.txt"),
            bag::render_manifest(&entries),
        ));
    }
    files.push((RECORD_FILE.into(), bag::render_record(desc)));
    files.push((README_FILE.into(), bag::render_readme(desc)));
    if !desc.splits.is_empty() {
        files.push((
            SPLIT_FILE.into(),
            bag::render_split_instructions(&desc.splits),
        ));
    }
    let mut written: Vec<TagFile> = files
        .iter()
        .map(|(name, text)| TagFile {
            bag_path: name.clone(),
            size: text.len() as u64,
            digests: digest_bytes(text.as_bytes()),
        })
        .collect();
    // Tag manifests cover every other tag file (RFC 8493 §2.2.1).
    for algorithm in bag::ALGORITHMS {
        let entries: Vec<ManifestEntry> = written
            .iter()
            .filter(|t| !t.bag_path.starts_with("tagmanifest-"))
            .map(|t| ManifestEntry {
                path: t.bag_path.clone(),
                digest: if algorithm == "sha256" {
                    t.digests.sha256.clone()
                } else {
                    t.digests.sm3.clone()
                },
            })
            .collect();
        let text = bag::render_manifest(&entries);
        written.push(TagFile {
            bag_path: format!("tagmanifest-{algorithm}.txt"),
            size: text.len() as u64,
            digests: digest_bytes(text.as_bytes()),
        });
        files.push((format!("tagmanifest-{algorithm}.txt"), text));
    }
    std::fs::create_dir_all(root)
        .map_err(|e| io_error(format!("创建目录 {}", root.display()), e))?;
    for (name, text) in &files {
        let path = root.join(name);
        std::fs::write(&path, text).map_err(|e| io_error(format!("写入 {}", path.display()), e))?;
    }
    Ok(written)
}

/// Reads back the digests of the tag files at the top of `root` (everything but `data/`).
pub fn tag_files_in(root: &Path) -> Result<Vec<TagFile>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(root).map_err(|e| io_error(format!("读取目录 {}", root.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(root.display(), e))?;
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            let bytes =
                std::fs::read(entry.path()).map_err(|e| io_error(entry.path().display(), e))?;
            out.push(TagFile {
                bag_path: entry.file_name().to_string_lossy().into_owned(),
                size: bytes.len() as u64,
                digests: digest_bytes(&bytes),
            });
        }
    }
    out.sort_by(|a, b| a.bag_path.cmp(&b.bag_path));
    Ok(out)
}

/// Puts `source` at `target` inside a volume folder: a hard link (no copy, same file system),
/// falling back to a copy where links are not possible.
pub fn link_or_copy(source: &Path, target: &Path) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| io_error(format!("创建目录 {}", parent.display()), e))?;
    }
    match std::fs::hard_link(source, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => std::fs::copy(source, target).map(|_| ()).map_err(|e| {
            io_error(
                format!("复制 {} 到 {}", source.display(), target.display()),
                e,
            )
        }),
    }
}
