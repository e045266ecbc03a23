//! Resumable upload of evaluation recordings (远程异地评标 meeting and local recordings), bound to
//! a project, room and expert seat.
//!
//! An upload declares its size and SHA-256 first. Chunks are then sent at the offset the server
//! holds; whatever part of a chunk arrived before a dropped connection is flushed and counted,
//! so the client asks for the offset and continues from there, never from the start. A chunk at
//! any other offset (overlapping or leaving a hole) is refused. The last byte triggers the hash
//! check: a match makes the file a project source, a mismatch fails the upload and removes it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use witness_schemas::video::{NewRecordingUpload, RecordingUpload, RecordingUploadStatus};

use crate::clock::rfc3339;
use crate::error::{io_error, Result};
use crate::jobs::Engine;
use crate::{bail, catalog, err};

/// The largest recording accepted: a full day of 1080p meeting video.
const MAX_SIZE: u64 = 64 << 30;

#[derive(Debug, Clone, FromRow)]
struct UploadRow {
    id: i64,
    project_id: i64,
    room: String,
    seat: String,
    file_name: String,
    size: i64,
    sha256: String,
    received: i64,
    status: String,
    rel_path: String,
    error: Option<String>,
}

impl UploadRow {
    fn to_api(&self, project_number: &str) -> RecordingUpload {
        RecordingUpload {
            id: self.id,
            project_number: project_number.to_string(),
            room: self.room.clone(),
            seat: self.seat.clone(),
            file_name: self.file_name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            received: self.received,
            status: match self.status.as_str() {
                "open" => RecordingUploadStatus::Open,
                "done" => RecordingUploadStatus::Done,
                _ => RecordingUploadStatus::Failed,
            },
            rel_path: self.rel_path.clone(),
            error: self.error.clone(),
        }
    }
}

async fn row(engine: &Engine, id: i64) -> Result<UploadRow> {
    sqlx::query_as(
        "SELECT id, project_id, room, seat, file_name, size, sha256, received, status, rel_path, error \
         FROM recording_uploads WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&engine.pool)
    .await?
    .ok_or_else(|| err!(NotFound, "上传 {id} 不存在 (no such upload)"))
}

async fn to_api(engine: &Engine, row: &UploadRow) -> Result<RecordingUpload> {
    let project = catalog::project_by_id(&engine.pool, row.project_id).await?;
    Ok(row.to_api(&project.number))
}

fn partial_path(engine: &Engine, id: i64) -> PathBuf {
    engine
        .settings
        .data_dir
        .join("recordings")
        .join(format!("upload-{id}.part"))
}

/// One lock per upload: chunks of the same upload are written one at a time.
fn upload_lock(id: i64) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(locks.entry(id).or_default())
}

/// Starts an upload; nothing is written until the first chunk.
pub async fn create(
    engine: &Engine,
    number: &str,
    new: &NewRecordingUpload,
) -> Result<RecordingUpload> {
    let project = catalog::project(&engine.pool, number).await?;
    super::check_room(&new.room)?;
    super::check_room(&new.seat).map_err(|e| e.context("专家席位 (seat)"))?;
    let name = new.file_name.as_str();
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.starts_with('.') {
        bail!(
            InvalidArgument,
            "文件名 {name:?} 无效 (file name must be one plain name, not a path)"
        );
    }
    if new.size == 0 || new.size > MAX_SIZE {
        bail!(
            InvalidArgument,
            "文件大小 {} 无效 (size must be 1 byte to 64 GiB)",
            new.size
        );
    }
    let sha256 = new.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            InvalidArgument,
            "SHA-256 {:?} 无效 (64 hexadecimal digits expected)",
            new.sha256
        );
    }
    let rel_path =
        crate::paths::check_rel_path(&format!("recordings/{}/{}/{name}", new.room, new.seat))?;
    if catalog::source_exists(&engine.pool, project.id, &rel_path).await? {
        bail!(AlreadyExists, "项目 {number} 已有文件 {rel_path}");
    }
    let now = rfc3339(engine.clock.now());
    let inserted = sqlx::query(
        "INSERT INTO recording_uploads (project_id, room, seat, file_name, size, sha256, status, \
         rel_path, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
    )
    .bind(project.id)
    .bind(&new.room)
    .bind(&new.seat)
    .bind(name)
    .bind(new.size as i64)
    .bind(&sha256)
    .bind(&rel_path)
    .bind(&now)
    .bind(&now)
    .execute(&engine.pool)
    .await;
    let id = match inserted {
        Ok(done) => done.last_insert_rowid(),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => bail!(
            AlreadyExists,
            "{rel_path} 已在上传中 (an upload of this file is already open; resume it)"
        ),
        Err(e) => return Err(e.into()),
    };
    to_api(engine, &row(engine, id).await?).await
}

/// The project's uploads, newest first (the upload page resumes open ones from here).
pub async fn list(engine: &Engine, number: &str) -> Result<Vec<RecordingUpload>> {
    let project = catalog::project(&engine.pool, number).await?;
    let rows: Vec<UploadRow> = sqlx::query_as(
        "SELECT id, project_id, room, seat, file_name, size, sha256, received, status, rel_path, error \
         FROM recording_uploads WHERE project_id = ? ORDER BY id DESC",
    )
    .bind(project.id)
    .fetch_all(&engine.pool)
    .await?;
    Ok(rows.iter().map(|r| r.to_api(&project.number)).collect())
}

/// Where an upload stands (the offset to resume from).
pub async fn status(engine: &Engine, id: i64) -> Result<RecordingUpload> {
    // Waits for a chunk still being written (its connection may have just dropped), so the
    // offset answered is the one the next chunk must use.
    let lock = upload_lock(id);
    let _held = lock.lock().await;
    to_api(engine, &row(engine, id).await?).await
}

/// Appends one chunk sent at `offset`. The body is written as it arrives; if it breaks off,
/// what arrived is kept and counted.
pub async fn append(
    engine: &Arc<Engine>,
    id: i64,
    offset: u64,
    body: axum::body::Body,
) -> Result<RecordingUpload> {
    let held = upload_lock(id).lock_owned().await;
    // The chunk is written by a task of its own: when the client's connection drops, the
    // server drops this request's future, but the bytes that arrived must still be flushed and
    // counted. The task holds the upload's lock until then.
    let engine = Arc::clone(engine);
    tokio::spawn(async move {
        let _held = held;
        write_chunk(&engine, id, offset, body).await
    })
    .await
    .map_err(|e| err!(Internal, "upload task: {e}"))?
}

async fn write_chunk(
    engine: &Engine,
    id: i64,
    offset: u64,
    body: axum::body::Body,
) -> Result<RecordingUpload> {
    let upload = row(engine, id).await?;
    if upload.status != "open" {
        bail!(
            FailedPrecondition,
            "上传 {id} 已{} (the upload is {})",
            if upload.status == "done" {
                "完成"
            } else {
                "失败"
            },
            upload.status
        );
    }
    let received = upload.received as u64;
    if offset != received {
        bail!(
            FailedPrecondition,
            "分片偏移 {offset} 与已收到的 {received} 字节不符 ({} chunk: resume at offset {received})",
            if offset < received { "overlapping" } else { "a hole before the" }
        );
    }
    let path = partial_path(engine, id);
    let size = upload.size as u64;
    if received == size {
        // Every byte was counted before a crash cut the finish short (the file may already
        // be renamed): finish it, rather than open the partial file anew and lose the bytes.
        finish(engine, &upload, &path).await?;
        return to_api(engine, &row(engine, id).await?).await;
    }
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(dir.display(), e))?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .await
        .map_err(|e| io_error(path.display(), e))?;
    // Bytes past the counted offset are from a chunk whose count never reached the catalog.
    file.set_len(received)
        .await
        .map_err(|e| io_error(path.display(), e))?;
    file.seek(std::io::SeekFrom::Start(received))
        .await
        .map_err(|e| io_error(path.display(), e))?;

    let mut written = received;
    let mut stream = body.into_data_stream();
    let mut broken = None;
    let mut too_long = false;
    while let Some(frame) = stream.next().await {
        let bytes = match frame {
            Ok(bytes) => bytes,
            Err(e) => {
                broken = Some(e.to_string());
                break;
            }
        };
        let room = (size - written) as usize;
        let take = bytes.len().min(room);
        file.write_all(&bytes[..take])
            .await
            .map_err(|e| io_error(path.display(), e))?;
        written += take as u64;
        if take < bytes.len() {
            too_long = true;
            break;
        }
    }
    file.sync_all()
        .await
        .map_err(|e| io_error(path.display(), e))?;
    drop(file);
    sqlx::query("UPDATE recording_uploads SET received = ?, updated_at = ? WHERE id = ?")
        .bind(written as i64)
        .bind(rfc3339(engine.clock.now()))
        .bind(id)
        .execute(&engine.pool)
        .await?;
    if let Some(reason) = broken {
        tracing::info!(upload = id, received = written, %reason, "upload chunk broke off; kept what arrived");
    }
    // The file is whole once the declared size arrived, even from a chunk that ran past it.
    let finished = if written == size {
        Some(finish(engine, &upload, &path).await)
    } else {
        None
    };
    if too_long {
        let outcome = match &finished {
            Some(Err(e)) => format!("; {}", e.message),
            _ => String::new(),
        };
        bail!(
            InvalidArgument,
            "分片超出声明的文件大小 {size} 字节 (the chunk runs past the declared size; the bytes \
             within it were kept){outcome}"
        );
    }
    if let Some(result) = finished {
        result?;
    }
    to_api(engine, &row(engine, id).await?).await
}

/// Finishes uploads whose every byte had arrived when a crash cut their finish short, so a
/// client that saw its last chunk acknowledged finds the recording registered.
pub async fn resume(engine: &Arc<Engine>) -> Result<()> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM recording_uploads WHERE status = 'open' AND received = size ORDER BY id",
    )
    .fetch_all(&engine.pool)
    .await?;
    for (id,) in rows {
        let _held = upload_lock(id).lock_owned().await;
        let upload = row(engine, id).await?;
        tracing::info!(upload = id, "finishing an upload a crash interrupted");
        if let Err(e) = finish(engine, &upload, &partial_path(engine, id)).await {
            tracing::warn!(upload = id, error = %e.message, "finishing the upload failed");
        }
    }
    Ok(())
}

/// Checks the hash of the complete file; registers it or fails the upload.
async fn finish(engine: &Engine, upload: &UploadRow, partial: &std::path::Path) -> Result<()> {
    let stored = partial.with_extension("bin");
    // A crash after the rename below and before the catalog update leaves only the stored file.
    let path = if tokio::fs::try_exists(partial).await.unwrap_or(false) {
        partial
    } else {
        stored.as_path()
    };
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(path.display(), e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|e| io_error(path.display(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let actual = crate::digest::hex(&hasher.finalize());
    let now = rfc3339(engine.clock.now());
    if actual != upload.sha256 {
        let message = format!(
            "哈希不符 (SHA-256 mismatch): declared {}, received {actual}; the upload was discarded",
            upload.sha256
        );
        let _ = tokio::fs::remove_file(path).await;
        sqlx::query(
            "UPDATE recording_uploads SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&message)
        .bind(&now)
        .bind(upload.id)
        .execute(&engine.pool)
        .await?;
        bail!(InvalidArgument, "{message}");
    }
    if path != stored {
        tokio::fs::rename(path, &stored)
            .await
            .map_err(|e| io_error(stored.display(), e))?;
    }
    let project = catalog::project_by_id(&engine.pool, upload.project_id).await?;
    if !catalog::source_exists(&engine.pool, project.id, &upload.rel_path).await? {
        catalog::add_uploaded(
            &engine.pool,
            &project,
            &upload.rel_path,
            &stored,
            upload.size as u64,
            engine.clock.now(),
        )
        .await?;
    }
    sqlx::query("UPDATE recording_uploads SET status = 'done', updated_at = ? WHERE id = ?")
        .bind(&now)
        .bind(upload.id)
        .execute(&engine.pool)
        .await?;
    Ok(())
}
