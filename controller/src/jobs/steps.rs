//! The steps before and after the copies: collect, package, plan and record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use witness_schemas::api::{JobStep, ProjectStatus};
use witness_schemas::bag::{PackageDescription, RecordFile, SplitFile};

use super::Engine;
use crate::audit;
use crate::catalog::{self, JobRow, ProjectRow};
use crate::digest::Digests;
use crate::error::{io_error, Result};
use crate::package::collect::{self, Source};
use crate::package::layout::{self, PayloadFile};
use crate::package::plan::{self, PlanFile, PlanItem};
use crate::package::{self as pkg, FilePart, PackageFile};
use crate::paths::AUDIT_EXPORT;
use crate::{bail, err};

pub(super) async fn collect(engine: &Arc<Engine>, job: &JobRow) -> Result<()> {
    let sources: Vec<Source> = catalog::source_rows(&engine.pool, job.project_id)
        .await?
        .into_iter()
        .map(|s| Source {
            rel_path: s.rel_path,
            origin: s.origin.into(),
            kind: s.kind,
        })
        .collect();
    if sources.is_empty() {
        bail!(
            FailedPrecondition,
            "项目 {} 没有任何文件，无法备份",
            job.project_number
        );
    }
    // The project's own audit records travel in its package, so the archive shows who did what
    // to it; the export is written beside the bag and collected like any other file.
    let mut sources = sources;
    let export = audit::export_project(&engine.pool, &job.project_number).await?;
    let export_path = pkg::job_dir(&engine.data_dir(), job.id).join("audit-log.csv");
    if let Some(parent) = export_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent.display(), e))?;
    }
    std::fs::write(&export_path, export).map_err(|e| io_error(export_path.display(), e))?;
    sources.push(Source {
        rel_path: AUDIT_EXPORT.to_string(),
        origin: export_path,
        kind: "document".into(),
    });
    let total: u64 = sources
        .iter()
        .filter_map(|s| std::fs::metadata(&s.origin).ok())
        .map(|m| m.len())
        .sum();
    let bag = pkg::bag_dir(&engine.data_dir(), job.id);
    let part_size = job.part_size as u64;
    let collected = engine
        .with_progress(job.id, total, "正在收集并计算摘要", move |done| {
            collect::collect(&bag, &sources, part_size, &done)
        })
        .await?;
    // The files, their parts and the next step are committed together: either the collection
    // counts as done with every digest recorded, or it is redone from scratch.
    let mut tx = engine.pool.begin().await?;
    sqlx::query("DELETE FROM file_parts WHERE package_file_id IN (SELECT id FROM package_files WHERE job_id = ?)")
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM package_files WHERE job_id = ?")
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
    for file in &collected {
        let file_id = sqlx::query("INSERT INTO package_files (job_id, rel_path, size, sha256, sm3, kind) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(job.id)
            .bind(&file.rel_path)
            .bind(file.size as i64)
            .bind(&file.digests.sha256)
            .bind(&file.digests.sm3)
            .bind(&file.kind)
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        for (index, (offset, length, digests)) in file.parts.iter().enumerate() {
            sqlx::query("INSERT INTO file_parts (package_file_id, part_index, offset, length, sha256, sm3) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(file_id)
                .bind(index as i64 + 1)
                .bind(*offset as i64)
                .bind(*length as i64)
                .bind(&digests.sha256)
                .bind(&digests.sm3)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("UPDATE jobs SET step = 'package', message = '正在封装', done_bytes = 0, total_bytes = 0, updated_at = ? WHERE id = ?")
        .bind(engine.now())
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Which bag of the package is being described: its place in the set, medium and split files.
struct Place {
    disc: (i64, i64),
    medium_zh: String,
    splits: Vec<SplitFile>,
}

/// Everything the XML record and README of one bag of the package say.
fn describe(
    engine: &Engine,
    job: &JobRow,
    project: &ProjectRow,
    files: &[PackageFile],
    discs_of: &BTreeMap<i64, BTreeSet<i64>>,
    place: Place,
) -> PackageDescription {
    let Place {
        disc,
        medium_zh,
        splits,
    } = place;
    PackageDescription {
        organization: engine.settings.config.archive.organization.clone(),
        project_number: project.number.clone(),
        project_name: project.name.clone(),
        category_zh: project.category().label_zh().to_string(),
        opening: project.opening.clone(),
        package_id: job.package_uuid.clone(),
        created_at: job.created_at.clone(),
        files: files
            .iter()
            .map(|f| RecordFile {
                path: f.rel_path.clone(),
                size: f.size as u64,
                sha256: f.sha256.clone(),
                sm3: f.sm3.clone(),
                discs: discs_of
                    .get(&f.id)
                    .map(|s| s.iter().map(|d| *d as u32).collect())
                    .unwrap_or_else(|| vec![1]),
                kind_zh: catalog::source_kind_zh(catalog::parse_source_kind(&f.kind)).to_string(),
            })
            .collect(),
        disc_index: disc.0 as u32,
        disc_count: disc.1 as u32,
        medium_zh,
        splits,
    }
}

fn digests_of(file: &PackageFile) -> Digests {
    Digests {
        sha256: file.sha256.clone(),
        sm3: file.sm3.clone(),
    }
}

/// Writes the tag files of the full bag (every file whole): what hard-disk copies receive.
pub(super) async fn package(engine: &Arc<Engine>, job: &JobRow) -> Result<()> {
    let project = catalog::project_by_id(&engine.pool, job.project_id).await?;
    let files = pkg::package_files(&engine.pool, job.id).await?;
    let desc = describe(
        engine,
        job,
        &project,
        &files,
        &BTreeMap::new(),
        Place {
            disc: (1, 1),
            medium_zh: "硬盘".into(),
            splits: Vec::new(),
        },
    );
    let payload: Vec<PayloadFile> = files
        .iter()
        .map(|f| PayloadFile {
            bag_path: format!("data/{}", f.rel_path),
            size: f.size as u64,
            digests: digests_of(f),
        })
        .collect();
    let bag = pkg::bag_dir(&engine.data_dir(), job.id);
    tokio::task::spawn_blocking(move || layout::write_tag_files(&bag, &desc, &payload))
        .await
        .map_err(|e| err!(Internal, "worker thread failed: {e}"))??;
    engine.set_step(job.id, JobStep::Plan, "正在规划分卷").await
}

/// A planned volume as stored in the catalog.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct VolumeRow {
    pub set_index: i64,
    pub set_count: i64,
    pub volume_id: String,
    pub payload_bytes: i64,
    pub items: String,
}

impl VolumeRow {
    pub fn items(&self) -> Result<Vec<PlanItem>> {
        serde_json::from_str(&self.items)
            .map_err(|e| err!(Internal, "volume {} items: {e}", self.set_index))
    }
}

pub(super) async fn volumes(engine: &Engine, job_id: i64) -> Result<Vec<VolumeRow>> {
    Ok(sqlx::query_as("SELECT set_index, set_count, volume_id, payload_bytes, items FROM volumes WHERE job_id = ? ORDER BY set_index")
        .bind(job_id)
        .fetch_all(&engine.pool)
        .await?)
}

/// An ISO 9660 volume id (`A-Z0-9_`, at most 32) from the project number and the disc's place.
fn volume_id(number: &str, index: usize, count: usize) -> String {
    let suffix = format!("_{index}_{count}");
    let mut base: String = number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if base.trim_matches('_').is_empty() {
        base = "WITNESS".into();
    }
    base.truncate(32 - suffix.len());
    format!("{base}{suffix}")
}

/// A disc of the set as a payload list: whole files and parts, with their digests.
pub(super) fn volume_payload(
    items: &[PlanItem],
    files: &BTreeMap<i64, &PackageFile>,
    parts: &[FilePart],
) -> Result<Vec<PayloadFile>> {
    items
        .iter()
        .map(|item| {
            let file = files.get(&item.file).ok_or_else(|| {
                err!(Internal, "planned file {} is not in the package", item.file)
            })?;
            Ok(match item.part {
                None => PayloadFile {
                    bag_path: format!("data/{}", file.rel_path),
                    size: file.size as u64,
                    digests: digests_of(file),
                },
                Some(index) => {
                    let part = parts
                        .iter()
                        .find(|p| p.package_file_id == item.file && p.part_index == index as i64)
                        .ok_or_else(|| {
                            err!(Internal, "part {index} of {} is missing", file.rel_path)
                        })?;
                    PayloadFile {
                        bag_path: format!("data/{}", plan::part_path(&file.rel_path, index)),
                        size: part.length as u64,
                        digests: Digests {
                            sha256: part.sha256.clone(),
                            sm3: part.sm3.clone(),
                        },
                    }
                }
            })
        })
        .collect()
}

/// Plans the disc set, builds each disc's folder (hard links to the staged files plus its own tag
/// files), then records the plan and moves on, in that order, so a crash redoes the whole step.
pub(super) async fn plan(engine: &Arc<Engine>, job: &JobRow) -> Result<()> {
    if job.copies_optical == 0 {
        return engine.set_step(job.id, JobStep::Burn, "正在制作副本").await;
    }
    let project = catalog::project_by_id(&engine.pool, job.project_id).await?;
    let files = pkg::package_files(&engine.pool, job.id).await?;
    let parts = pkg::file_parts(&engine.pool, job.id).await?;
    let capacity = job.capacity as u64;
    let record = plan::record_estimate(
        files.iter().map(|f| (f.rel_path.as_str(), f.size as u64)),
        capacity,
    );
    let plan_files: Vec<PlanFile> = files
        .iter()
        .map(|f| PlanFile {
            id: f.id,
            rel_path: f.rel_path.clone(),
            size: f.size as u64,
            n_parts: parts.iter().filter(|p| p.package_file_id == f.id).count() as u32,
        })
        .collect();
    let planned = plan::plan(
        &plan_files,
        capacity,
        job.part_size as u64,
        record,
        engine.settings.config.archive.max_discs_per_package,
    )?;
    let count = planned.len();
    let mut discs_of: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for (index, volume) in planned.iter().enumerate() {
        for item in &volume.items {
            discs_of
                .entry(item.file)
                .or_default()
                .insert(index as i64 + 1);
        }
    }
    let by_id: BTreeMap<i64, &PackageFile> = files.iter().map(|f| (f.id, f)).collect();
    let splits: Vec<SplitFile> = files
        .iter()
        .filter(|f| parts.iter().any(|p| p.package_file_id == f.id))
        .map(|f| {
            let mut file_parts: Vec<(String, u32)> = Vec::new();
            for (index, volume) in planned.iter().enumerate() {
                for item in volume.items.iter().filter(|i| i.file == f.id) {
                    if let Some(part) = item.part {
                        file_parts.push((plan::part_path(&f.rel_path, part), index as u32 + 1));
                    }
                }
            }
            file_parts.sort();
            SplitFile {
                path: f.rel_path.clone(),
                size: f.size as u64,
                sha256: f.sha256.clone(),
                sm3: f.sm3.clone(),
                parts: file_parts,
            }
        })
        .collect();

    let data_dir = engine.data_dir();
    let volumes_root = pkg::job_dir(&data_dir, job.id).join("volumes");
    if volumes_root.exists() {
        std::fs::remove_dir_all(&volumes_root)
            .map_err(|e| io_error(format!("清理 {}", volumes_root.display()), e))?;
    }
    let medium_zh = witness_schemas::media::medium(&job.medium)
        .map(|m| m.name)
        .unwrap_or("光盘");
    let mut rows = Vec::new();
    for (index, volume) in planned.iter().enumerate() {
        let set_index = index as i64 + 1;
        let payload = volume_payload(&volume.items, &by_id, &parts)?;
        let desc = describe(
            engine,
            job,
            &project,
            &files,
            &discs_of,
            Place {
                disc: (set_index, count as i64),
                medium_zh: format!("光盘（{medium_zh}）"),
                splits: splits.clone(),
            },
        );
        let root = pkg::volume_dir(&data_dir, job.id, set_index);
        let bag = pkg::bag_dir(&data_dir, job.id);
        let whole: Vec<String> = volume
            .items
            .iter()
            .filter(|i| i.part.is_none())
            .filter_map(|i| by_id.get(&i.file).map(|f| f.rel_path.clone()))
            .collect();
        tokio::task::spawn_blocking(move || -> Result<()> {
            for rel in &whole {
                layout::link_or_copy(&bag.join("data").join(rel), &root.join("data").join(rel))?;
            }
            std::fs::create_dir_all(root.join("data")).map_err(|e| io_error(root.display(), e))?;
            layout::write_tag_files(&root, &desc, &payload)?;
            Ok(())
        })
        .await
        .map_err(|e| err!(Internal, "worker thread failed: {e}"))??;
        let items = serde_json::to_string(&volume.items).map_err(|e| err!(Internal, "{e}"))?;
        rows.push((
            set_index,
            volume_id(&project.number, index + 1, count),
            volume.payload_bytes,
            items,
        ));
    }
    collect::sync_filesystem(&pkg::job_dir(&data_dir, job.id))?;
    let mut tx = engine.pool.begin().await?;
    sqlx::query("DELETE FROM volumes WHERE job_id = ?")
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
    for (set_index, vol_id, payload_bytes, items) in rows {
        sqlx::query("INSERT INTO volumes (job_id, set_index, set_count, volume_id, payload_bytes, items) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(job.id)
            .bind(set_index)
            .bind(count as i64)
            .bind(vol_id)
            .bind(payload_bytes as i64)
            .bind(items)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE jobs SET step = 'burn', message = ?, done_bytes = 0, total_bytes = 0, updated_at = ? WHERE id = ?")
        .bind(format!("已规划 {count} 张光盘，准备刻录"))
        .bind(engine.now())
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(job_id = job.id, discs = count, "disc set planned");
    Ok(())
}

/// Every copy is verified: the project is archived and the staging area can go.
pub(super) async fn record(engine: &Arc<Engine>, job: &JobRow) -> Result<()> {
    let mut tx = engine.pool.begin().await?;
    sqlx::query("UPDATE jobs SET step = 'done', status = 'succeeded', message = '全部副本已校验', updated_at = ? WHERE id = ?")
        .bind(engine.now())
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE projects SET status = ? WHERE id = ?")
        .bind(catalog::project_status_str(ProjectStatus::Archived))
        .bind(job.project_id)
        .execute(&mut *tx)
        .await?;
    // The references to the archived evaluation videos go to the expert library with the
    // archiving itself: same transaction, so neither exists without the other.
    crate::integrations::expert_library::enqueue_archived_videos(
        &mut tx,
        job.id,
        &job.project_number,
        engine.clock.now(),
    )
    .await?;
    tx.commit().await?;
    if !engine.settings.config.archive.keep_staging {
        let dir = pkg::job_dir(&engine.data_dir(), job.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(job_id = job.id, error = %e, "could not remove the staging folder");
        }
    }
    tracing::info!(job_id = job.id, project = %job.project_number, "backup verified and recorded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_are_iso_safe() {
        assert_eq!(volume_id("LKGC-2026-0318", 1, 3), "LKGC_2026_0318_1_3");
        assert_eq!(volume_id("豫工〔2026〕12号", 2, 2), "___2026_12__2_2");
        assert_eq!(volume_id("兰考", 1, 1), "WITNESS_1_1");
        assert!(volume_id(&"A".repeat(60), 10, 12).len() <= 32);
    }
}
