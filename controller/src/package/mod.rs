//! The archive package of a backup job: collection into staging, the BagIt layout and the plan
//! of discs.

pub mod collect;
pub mod layout;
pub mod plan;

use std::path::{Path, PathBuf};

use sqlx::{FromRow, SqlitePool};

use crate::error::Result;

/// Where a job's staging files live: `<data>/staging/job-<id>`.
pub fn job_dir(data_dir: &Path, job_id: i64) -> PathBuf {
    data_dir.join("staging").join(format!("job-{job_id}"))
}

/// The full bag of a job (all files whole): what a disk copy receives.
pub fn bag_dir(data_dir: &Path, job_id: i64) -> PathBuf {
    job_dir(data_dir, job_id).join("bag")
}

/// The root folder of disc `set_index` of a job's set.
pub fn volume_dir(data_dir: &Path, job_id: i64, set_index: i64) -> PathBuf {
    job_dir(data_dir, job_id)
        .join("volumes")
        .join(set_index.to_string())
}

/// A collected file of a package, with its digests.
#[derive(Debug, Clone, FromRow)]
pub struct PackageFile {
    pub id: i64,
    pub rel_path: String,
    pub size: i64,
    pub sha256: String,
    pub sm3: String,
    pub kind: String,
}

/// A part of a split file.
#[derive(Debug, Clone, FromRow)]
pub struct FilePart {
    pub package_file_id: i64,
    pub part_index: i64,
    pub offset: i64,
    pub length: i64,
    pub sha256: String,
    pub sm3: String,
}

pub async fn package_files(pool: &SqlitePool, job_id: i64) -> Result<Vec<PackageFile>> {
    Ok(sqlx::query_as(
        "SELECT id, rel_path, size, sha256, sm3, kind FROM package_files WHERE job_id = ? ORDER BY rel_path",
    )
    .bind(job_id)
    .fetch_all(pool)
    .await?)
}

pub async fn file_parts(pool: &SqlitePool, job_id: i64) -> Result<Vec<FilePart>> {
    Ok(sqlx::query_as(
        "SELECT fp.package_file_id, fp.part_index, fp.offset, fp.length, fp.sha256, fp.sm3
         FROM file_parts fp JOIN package_files pf ON pf.id = fp.package_file_id
         WHERE pf.job_id = ? ORDER BY fp.package_file_id, fp.part_index",
    )
    .bind(job_id)
    .fetch_all(pool)
    .await?)
}
