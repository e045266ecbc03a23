//! The catalog: trading projects, their source files, jobs and discs, stored in SQLite.

use std::path::{Path, PathBuf};

use sqlx::{FromRow, SqlitePool};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use witness_schemas::api::{
    Category, CopyKind, Disc, DiscStatus, Job, JobStatus, JobStep, NewProject, Project,
    ProjectDetail, ProjectStatus, SourceFile, SourceKind,
};

use crate::error::{io_error, Result};
use crate::paths::{check_project_number, check_rel_path};
use crate::{bail, err};

#[derive(Debug, Clone, FromRow)]
pub struct ProjectRow {
    pub id: i64,
    pub number: String,
    pub name: String,
    pub category: String,
    pub opening: String,
    pub status: String,
    pub created_at: String,
    pub file_count: i64,
    pub total_bytes: i64,
}

impl ProjectRow {
    pub fn category(&self) -> Category {
        Category::parse(&self.category).unwrap_or(Category::Construction)
    }

    pub fn to_api(&self) -> Project {
        Project {
            number: self.number.clone(),
            name: self.name.clone(),
            category: self.category(),
            opening: self.opening.clone(),
            status: parse_project_status(&self.status),
            file_count: self.file_count,
            total_bytes: self.total_bytes,
            created_at: self.created_at.clone(),
        }
    }
}

fn parse_project_status(s: &str) -> ProjectStatus {
    match s {
        "archiving" => ProjectStatus::Archiving,
        "archived" => ProjectStatus::Archived,
        "failed" => ProjectStatus::Failed,
        _ => ProjectStatus::Registered,
    }
}

pub fn project_status_str(s: ProjectStatus) -> &'static str {
    match s {
        ProjectStatus::Registered => "registered",
        ProjectStatus::Archiving => "archiving",
        ProjectStatus::Archived => "archived",
        ProjectStatus::Failed => "failed",
    }
}

const PROJECT_SELECT: &str =
    "SELECT p.id, p.number, p.name, p.category, p.opening, p.status, p.created_at,
        (SELECT COUNT(*) FROM source_files s WHERE s.project_id = p.id) AS file_count,
        (SELECT COALESCE(SUM(size), 0) FROM source_files s WHERE s.project_id = p.id) AS total_bytes
    FROM projects p";

/// Checks and stores a new project.
pub async fn create_project(
    pool: &SqlitePool,
    new: &NewProject,
    now: OffsetDateTime,
) -> Result<Project> {
    let mut conn = pool.acquire().await?;
    let id = insert_project(&mut conn, new, now).await?;
    drop(conn);
    crate::search::notify(pool, crate::search::Change::Project(id));
    Ok(project(pool, &new.number).await?.to_api())
}

/// Checks a new project's fields (number, name, opening time) without storing it.
pub fn check_new_project(new: &NewProject) -> Result<OffsetDateTime> {
    check_project_number(&new.number)?;
    let name = new.name.trim();
    if name.is_empty() {
        bail!(InvalidArgument, "项目名称不能为空 (project name is empty)");
    }
    if name.chars().count() > 200 {
        bail!(InvalidArgument, "项目名称过长 (最多 200 个字符)");
    }
    OffsetDateTime::parse(new.opening.trim(), &Rfc3339).map_err(|e| {
        err!(
            InvalidArgument,
            "开标时间 {:?} 不是 RFC 3339 时间 (例如 2026-03-18T09:30:00+08:00): {e}",
            new.opening
        )
    })
}

/// Checks and inserts a project on a connection (or inside a caller's transaction); the
/// caller notifies the search index once it is committed.
pub async fn insert_project(
    conn: &mut sqlx::SqliteConnection,
    new: &NewProject,
    now: OffsetDateTime,
) -> Result<i64> {
    let opening = check_new_project(new)?;
    let result = sqlx::query(
        "INSERT INTO projects (number, name, category, opening, status, created_at) VALUES (?, ?, ?, ?, 'registered', ?)",
    )
    .bind(&new.number)
    .bind(new.name.trim())
    .bind(new.category.as_str())
    .bind(crate::clock::rfc3339(opening))
    .bind(crate::clock::rfc3339(now))
    .execute(&mut *conn)
    .await;
    match result {
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            bail!(
                AlreadyExists,
                "项目编号 {} 已存在 (duplicate project number)",
                new.number
            )
        }
        other => Ok(other?.last_insert_rowid()),
    }
}

pub async fn list_projects(pool: &SqlitePool) -> Result<Vec<Project>> {
    let rows: Vec<ProjectRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PROJECT_SELECT} ORDER BY p.opening DESC, p.id DESC"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(ProjectRow::to_api).collect())
}

/// Looks a project up by its number; `NotFound` names the number.
pub async fn project(pool: &SqlitePool, number: &str) -> Result<ProjectRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PROJECT_SELECT} WHERE p.number = ?"
    )))
    .bind(number)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| err!(NotFound, "项目 {number} 不存在 (unknown project)"))
}

pub async fn project_by_id(pool: &SqlitePool, id: i64) -> Result<ProjectRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PROJECT_SELECT} WHERE p.id = ?"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| err!(NotFound, "项目 #{id} 不存在"))
}

pub async fn set_project_status(
    pool: &SqlitePool,
    project_id: i64,
    status: ProjectStatus,
) -> Result<()> {
    sqlx::query("UPDATE projects SET status = ? WHERE id = ?")
        .bind(project_status_str(status))
        .bind(project_id)
        .execute(pool)
        .await?;
    crate::search::notify(pool, crate::search::Change::Project(project_id));
    Ok(())
}

pub async fn project_detail(pool: &SqlitePool, number: &str) -> Result<ProjectDetail> {
    let row = project(pool, number).await?;
    Ok(ProjectDetail {
        files: source_files(pool, &row).await?,
        jobs: list_jobs(pool, Some(row.id)).await?,
        discs: list_discs(pool, Some(row.id)).await?,
        project: row.to_api(),
    })
}

#[derive(Debug, Clone, FromRow)]
pub struct SourceRow {
    pub id: i64,
    pub rel_path: String,
    pub origin: String,
    pub size: i64,
    pub kind: String,
    pub added_at: String,
}

pub async fn source_rows(pool: &SqlitePool, project_id: i64) -> Result<Vec<SourceRow>> {
    Ok(sqlx::query_as(
        "SELECT id, rel_path, origin, size, kind, added_at FROM source_files WHERE project_id = ? ORDER BY rel_path",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?)
}

async fn source_files(pool: &SqlitePool, project: &ProjectRow) -> Result<Vec<SourceFile>> {
    Ok(source_rows(pool, project.id)
        .await?
        .into_iter()
        .map(|r| SourceFile {
            id: r.id,
            project_number: project.number.clone(),
            kind: parse_source_kind(&r.kind),
            rel_path: r.rel_path,
            origin: r.origin,
            size: r.size,
            added_at: r.added_at,
        })
        .collect())
}

/// What a file is, judged by its extension.
pub fn source_kind(path: &str) -> SourceKind {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" | "doc" | "docx" | "xls" | "xlsx" | "wps" | "et" | "ofd" | "txt" | "csv" | "html"
        | "htm" | "xml" | "json" | "rtf" | "odt" | "ods" | "zbj" | "tbj" | "zip" | "rar" | "7z"
        | "jpg" | "jpeg" | "png" | "tif" | "tiff" => SourceKind::Document,
        "mp4" | "mkv" | "avi" | "mov" | "ts" | "m2ts" | "flv" | "h264" | "h265" | "265" | "264"
        | "ps" | "dav" | "webm" => SourceKind::Video,
        "mp3" | "wav" | "aac" | "m4a" | "flac" | "amr" | "ogg" => SourceKind::Audio,
        _ => SourceKind::Other,
    }
}

pub fn source_kind_str(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Document => "document",
        SourceKind::Video => "video",
        SourceKind::Audio => "audio",
        SourceKind::Other => "other",
    }
}

pub fn parse_source_kind(s: &str) -> SourceKind {
    match s {
        "document" => SourceKind::Document,
        "video" => SourceKind::Video,
        "audio" => SourceKind::Audio,
        _ => SourceKind::Other,
    }
}

pub fn source_kind_zh(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Document => "文档",
        SourceKind::Video => "视频",
        SourceKind::Audio => "音频",
        SourceKind::Other => "其他",
    }
}

/// Where sources may be registered from. The data folder itself is never a source (it holds
/// the catalog and the admin credential file), except for the demo's generated files; with
/// `[archive] source_roots` set, only paths under those folders are accepted.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    pub data_dir: PathBuf,
    pub roots: Vec<PathBuf>,
}

impl SourcePolicy {
    pub fn check(&self, path: &Path) -> Result<()> {
        // Resolve links and `..` first, so neither can walk out of an allowed folder.
        let real = std::fs::canonicalize(path)
            .map_err(|e| io_error(format!("源文件 {}", path.display()), e))?;
        if let Ok(data) = std::fs::canonicalize(&self.data_dir) {
            let demo = data.join("demo-sources");
            if real.starts_with(&data) && !real.starts_with(&demo) {
                bail!(
                    PermissionDenied,
                    "不能从数据目录 {} 登记源文件（其中有目录库和凭据）",
                    self.data_dir.display()
                );
            }
        }
        if !self.roots.is_empty() {
            let allowed = self
                .roots
                .iter()
                .filter_map(|root| std::fs::canonicalize(root).ok())
                .any(|root| real.starts_with(root));
            if !allowed {
                let roots: Vec<String> =
                    self.roots.iter().map(|r| r.display().to_string()).collect();
                bail!(
                    PermissionDenied,
                    "源路径 {} 不在允许的导入目录内（[archive] source_roots：{}）",
                    path.display(),
                    roots.join("、")
                );
            }
        }
        Ok(())
    }
}

/// A file found under a path given to `source add`, before it is stored.
struct FoundFile {
    rel_path: String,
    origin: PathBuf,
    size: u64,
}

/// Walks `path` (a file or a folder) and lists its regular files with their package paths: a
/// file keeps its name, a folder's files are placed under the folder's name.
fn walk_source(path: &Path) -> Result<Vec<FoundFile>> {
    let meta =
        std::fs::metadata(path).map_err(|e| io_error(format!("源文件 {}", path.display()), e))?;
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            err!(
                InvalidArgument,
                "源路径 {} 没有可用的 UTF-8 文件名",
                path.display()
            )
        })?
        .to_string();
    let mut found = Vec::new();
    if meta.is_file() {
        check_readable(path)?;
        found.push(FoundFile {
            rel_path: base,
            origin: path.to_path_buf(),
            size: meta.len(),
        });
        return Ok(found);
    }
    if !meta.is_dir() {
        bail!(
            InvalidArgument,
            "源路径 {} 既不是文件也不是目录",
            path.display()
        );
    }
    let mut stack = vec![(path.to_path_buf(), base)];
    while let Some((dir, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| io_error(format!("读取目录 {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("读取目录 {}", dir.display()), e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                bail!(
                    InvalidArgument,
                    "文件名不是 UTF-8: {}",
                    entry.path().display()
                );
            };
            let child_rel = format!("{rel}/{name}");
            let file_type = entry
                .file_type()
                .map_err(|e| io_error(entry.path().display(), e))?;
            if file_type.is_dir() {
                stack.push((entry.path(), child_rel));
            } else if file_type.is_file() {
                check_readable(&entry.path())?;
                let size = entry
                    .metadata()
                    .map_err(|e| io_error(entry.path().display(), e))?
                    .len();
                found.push(FoundFile {
                    rel_path: child_rel,
                    origin: entry.path(),
                    size,
                });
            }
            // Symbolic links and devices are skipped on purpose: an archive holds the files a
            // project produced, not whatever a link happens to point at today.
        }
    }
    found.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(found)
}

fn check_readable(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .map_err(|e| io_error(format!("无法读取源文件 {}", path.display()), e))?;
    Ok(())
}

/// Registers files and folders on the appliance as sources of a project. All or nothing: a
/// missing or unreadable path, or a name already in the project, stores none of them.
pub async fn add_sources(
    pool: &SqlitePool,
    policy: &SourcePolicy,
    number: &str,
    paths: &[String],
    now: OffsetDateTime,
) -> Result<Vec<SourceFile>> {
    let project = project(pool, number).await?;
    let found = find_sources(policy, paths)?;
    let mut tx = pool.begin().await?;
    let seen = insert_sources(&mut tx, project.id, number, &found, now).await?;
    tx.commit().await?;
    crate::search::notify(pool, crate::search::Change::Project(project.id));
    let all = source_files(pool, &project).await?;
    Ok(all
        .into_iter()
        .filter(|f| seen.contains(&f.rel_path))
        .collect())
}

/// Files found under source paths, checked against the policy, not yet stored.
pub struct FoundSources(Vec<FoundFile>);

impl FoundSources {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks source paths (absolute, allowed by the policy, readable) and lists their files.
pub fn find_sources(policy: &SourcePolicy, paths: &[String]) -> Result<FoundSources> {
    if paths.is_empty() {
        bail!(InvalidArgument, "没有给出源文件路径 (no paths given)");
    }
    let mut found = Vec::new();
    for path in paths {
        let path = Path::new(path);
        if !path.is_absolute() {
            bail!(
                InvalidArgument,
                "源路径必须是设备上的绝对路径: {}",
                path.display()
            );
        }
        policy.check(path)?;
        found.extend(walk_source(path)?);
    }
    Ok(FoundSources(found))
}

/// Stores found sources of a project inside the caller's transaction; returns their paths.
pub async fn insert_sources(
    conn: &mut sqlx::SqliteConnection,
    project_id: i64,
    number: &str,
    found: &FoundSources,
    now: OffsetDateTime,
) -> Result<std::collections::HashSet<String>> {
    let mut seen = std::collections::HashSet::new();
    for file in &found.0 {
        let rel_path = check_rel_path(&file.rel_path)?;
        if !seen.insert(rel_path.clone()) {
            bail!(AlreadyExists, "文件 {rel_path} 出现了两次");
        }
        let inserted = sqlx::query(
            "INSERT INTO source_files (project_id, rel_path, origin, size, kind, added_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(project_id)
        .bind(&rel_path)
        .bind(file.origin.display().to_string())
        .bind(file.size as i64)
        .bind(source_kind_str(source_kind(&rel_path)))
        .bind(crate::clock::rfc3339(now))
        .execute(&mut *conn)
        .await;
        if let Err(sqlx::Error::Database(db)) = &inserted {
            if db.is_unique_violation() {
                bail!(AlreadyExists, "项目 {number} 已有文件 {rel_path}");
            }
        }
        inserted?;
    }
    Ok(seen)
}

/// Registers one uploaded file already stored at `stored` under `rel_path`.
pub async fn add_uploaded(
    pool: &SqlitePool,
    project: &ProjectRow,
    rel_path: &str,
    stored: &Path,
    size: u64,
    now: OffsetDateTime,
) -> Result<SourceFile> {
    let id = sqlx::query(
        "INSERT INTO source_files (project_id, rel_path, origin, size, kind, added_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(project.id)
    .bind(rel_path)
    .bind(stored.display().to_string())
    .bind(size as i64)
    .bind(source_kind_str(source_kind(rel_path)))
    .bind(crate::clock::rfc3339(now))
    .execute(pool)
    .await?
    .last_insert_rowid();
    crate::search::notify(pool, crate::search::Change::Project(project.id));
    source_files(pool, project)
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| err!(Internal, "uploaded file vanished"))
}

pub async fn source_exists(pool: &SqlitePool, project_id: i64, rel_path: &str) -> Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM source_files WHERE project_id = ? AND rel_path = ?")
            .bind(project_id)
            .bind(rel_path)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: i64,
    pub project_id: i64,
    pub project_number: String,
    pub status: String,
    pub step: String,
    pub done_bytes: i64,
    pub total_bytes: i64,
    pub message: String,
    pub error: Option<String>,
    pub medium: String,
    pub capacity: i64,
    pub part_size: i64,
    pub copies_optical: i64,
    pub copies_disk: i64,
    pub package_uuid: String,
    pub created_at: String,
    pub updated_at: String,
    pub priority: i64,
    pub origin: String,
    pub set_count: i64,
    pub copies_verified: i64,
}

impl JobRow {
    pub fn step(&self) -> JobStep {
        parse_step(&self.step)
    }

    pub fn status(&self) -> JobStatus {
        match self.status.as_str() {
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            _ => JobStatus::Queued,
        }
    }

    /// Copies the policy asks for: every disc of the set per optical copy, plus disk copies.
    /// Before planning the set size is unknown and counted as one disc.
    pub fn copies_expected(&self) -> i64 {
        self.set_count.max(1) * self.copies_optical + self.copies_disk
    }

    pub fn to_api(&self) -> Job {
        Job {
            id: self.id,
            project_number: self.project_number.clone(),
            status: self.status(),
            step: self.step(),
            done_bytes: self.done_bytes,
            total_bytes: self.total_bytes,
            message: self.message.clone(),
            error: self.error.clone(),
            copies_expected: self.copies_expected(),
            copies_verified: self.copies_verified,
            priority: self.priority,
            origin: self.origin.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }
}

pub fn parse_step(s: &str) -> JobStep {
    match s {
        "package" => JobStep::Package,
        "plan" => JobStep::Plan,
        "burn" => JobStep::Burn,
        "verify" => JobStep::Verify,
        "record" => JobStep::Record,
        "done" => JobStep::Done,
        _ => JobStep::Collect,
    }
}

const JOB_SELECT: &str = "SELECT j.id, j.project_id, p.number AS project_number, j.status, j.step, j.done_bytes,
        j.total_bytes, j.message, j.error, j.medium, j.capacity, j.part_size, j.copies_optical, j.copies_disk,
        j.package_uuid, j.created_at, j.updated_at, j.priority, j.origin,
        (SELECT COALESCE(MAX(set_count), 0) FROM volumes v WHERE v.job_id = j.id) AS set_count,
        (SELECT COUNT(*) FROM discs d WHERE d.job_id = j.id AND d.status = 'verified') AS copies_verified
    FROM jobs j JOIN projects p ON p.id = j.project_id";

pub async fn job(pool: &SqlitePool, id: i64) -> Result<JobRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{JOB_SELECT} WHERE j.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| err!(NotFound, "作业 {id} 不存在 (unknown job)"))
}

pub async fn list_jobs(pool: &SqlitePool, project_id: Option<i64>) -> Result<Vec<Job>> {
    let rows: Vec<JobRow> = match project_id {
        Some(id) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{JOB_SELECT} WHERE j.project_id = ? ORDER BY j.id DESC"
            )))
            .bind(id)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{JOB_SELECT} ORDER BY j.id DESC"
            )))
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows.iter().map(JobRow::to_api).collect())
}

#[derive(Debug, Clone, FromRow)]
pub struct DiscRow {
    pub id: i64,
    pub job_id: i64,
    pub project_number: String,
    pub kind: String,
    pub set_index: i64,
    pub set_count: i64,
    pub copy_index: i64,
    pub medium: String,
    pub target: String,
    pub location: String,
    pub volume_id: String,
    pub bytes: i64,
    pub status: String,
    pub error: Option<String>,
    pub created_at: String,
    pub verified_at: Option<String>,
    pub shelf: String,
    /// The latest finished re-read: `passed` or `failed`, and when.
    pub inspection_result: Option<String>,
    pub inspected_at: Option<String>,
}

impl DiscRow {
    pub fn to_api(&self) -> Disc {
        Disc {
            id: self.id,
            project_number: self.project_number.clone(),
            job_id: self.job_id,
            kind: if self.kind == "disk" {
                CopyKind::Disk
            } else {
                CopyKind::Optical
            },
            set_index: self.set_index,
            set_count: self.set_count,
            medium: self.medium.clone(),
            target: self.target.clone(),
            location: self.location.clone(),
            volume_id: self.volume_id.clone(),
            bytes: self.bytes,
            status: match self.status.as_str() {
                "writing" => DiscStatus::Writing,
                "written" => DiscStatus::Written,
                "verified" => DiscStatus::Verified,
                _ => DiscStatus::Rejected,
            },
            error: self.error.clone(),
            created_at: self.created_at.clone(),
            verified_at: self.verified_at.clone(),
            shelf: self.shelf.clone(),
            inspection_result: self.inspection_result.clone(),
            inspected_at: self.inspected_at.clone(),
        }
    }
}

pub const DISC_SELECT: &str = "SELECT d.id, d.job_id, p.number AS project_number, d.kind, d.set_index, d.set_count,
        d.copy_index, d.medium, d.target, d.location, d.volume_id, d.bytes, d.status, d.error, d.created_at,
        d.verified_at, d.shelf,
        (SELECT i.result FROM inspections i WHERE i.disc_id = d.id AND i.result IN ('passed', 'failed')
            ORDER BY i.id DESC LIMIT 1) AS inspection_result,
        (SELECT i.finished_at FROM inspections i WHERE i.disc_id = d.id AND i.result IN ('passed', 'failed')
            ORDER BY i.id DESC LIMIT 1) AS inspected_at
    FROM discs d JOIN jobs j ON j.id = d.job_id JOIN projects p ON p.id = j.project_id";

pub async fn list_discs(pool: &SqlitePool, project_id: Option<i64>) -> Result<Vec<Disc>> {
    let rows: Vec<DiscRow> = match project_id {
        Some(id) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DISC_SELECT} WHERE j.project_id = ? ORDER BY d.id"
            )))
            .bind(id)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{DISC_SELECT} ORDER BY d.id")))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows.iter().map(DiscRow::to_api).collect())
}

pub async fn job_discs(pool: &SqlitePool, job_id: i64) -> Result<Vec<DiscRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DISC_SELECT} WHERE d.job_id = ? ORDER BY d.id"
    )))
    .bind(job_id)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cannot_come_from_the_data_folder_or_outside_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("var");
        let incoming = dir.path().join("incoming");
        let elsewhere = dir.path().join("elsewhere");
        for d in [&data.join("demo-sources"), &incoming, &elsewhere] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(data.join("admin-credential.txt"), "secret").unwrap();
        let open = SourcePolicy {
            data_dir: data.clone(),
            roots: Vec::new(),
        };
        let err = open.check(&data.join("admin-credential.txt")).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::PermissionDenied, "{err}");
        // `..` and links are resolved before the check.
        let sneaky = incoming.join("../var/admin-credential.txt");
        assert!(open.check(&sneaky).is_err());
        std::os::unix::fs::symlink(data.join("admin-credential.txt"), incoming.join("link"))
            .unwrap();
        assert!(open.check(&incoming.join("link")).is_err());
        open.check(&data.join("demo-sources")).unwrap();
        open.check(&elsewhere).unwrap();
        let rooted = SourcePolicy {
            data_dir: data,
            roots: vec![incoming.clone()],
        };
        rooted.check(&incoming).unwrap();
        let err = rooted.check(&elsewhere).unwrap_err();
        assert!(err.message.contains("source_roots"), "{err}");
    }
}
