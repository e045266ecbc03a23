//! Resumable upload of an evaluation recording against the real daemon: connections cut at
//! random offsets resume exactly where the bytes stopped, overlapping chunks and holes are
//! refused, the final file's hash matches, a wrong hash fails the upload and adds nothing.

use anyhow::{ensure, Context, Result};
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use witness_controller::cli::encode;
use witness_controller::digest::digest_bytes;
use witness_schemas::api::{NewProject, ProjectDetail};
use witness_schemas::video::{NewRecordingUpload, RecordingUpload, RecordingUploadStatus};
use witness_tests::daemon::Daemon;

const NUMBER: &str = "HNZB-2026-REC-01";

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
fn recording_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Sends a chunk at `offset` announcing all of `rest`, writes only `rest[..cut]`, then drops
/// the connection the way a failing network does.
async fn cut_chunk(
    daemon: &Daemon,
    token: &str,
    id: i64,
    offset: usize,
    rest: &[u8],
    cut: usize,
) -> Result<()> {
    let address = daemon.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let head = format!(
        "PUT /api/recordings/uploads/{id}?offset={offset} HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        rest.len()
    );
    stream.write_all(head.as_bytes()).await?;
    // In pieces, so the server is reading the body while it is cut.
    for piece in rest[..cut].chunks(64 * 1024) {
        stream.write_all(piece).await?;
    }
    stream.flush().await?;
    // The network fails while the server is reading the body (not before it even saw the
    // request): give it the moment loopback needs to take the bytes in, then cut.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(stream);
    Ok(())
}

async fn status(
    client: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    id: i64,
) -> Result<RecordingUpload> {
    Ok(client
        .get(format!("{}/api/recordings/uploads/{id}", daemon.url))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn put_chunk(
    client: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    id: i64,
    offset: usize,
    bytes: Vec<u8>,
) -> Result<(StatusCode, String)> {
    let response = client
        .put(format!(
            "{}/api/recordings/uploads/{id}?offset={offset}",
            daemon.url
        ))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(bytes)
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

/// A daemon with the test project, its admin token and a plain HTTP client.
async fn daemon_with_project(
    tmp: &std::path::Path,
    name: &str,
) -> Result<(Daemon, String, reqwest::Client)> {
    let daemon = Daemon::start(&tmp.join("data"), None).await?;
    let token = daemon.admin_token().context("admin token")?;
    daemon
        .client()
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: name.into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    Ok((daemon, token, reqwest::Client::new()))
}

/// Opens an upload of `data` for `room`/`seat` under `file_name`.
async fn open_upload(
    daemon: &Daemon,
    data: &[u8],
    (room, seat, file_name): (&str, &str, &str),
) -> Result<RecordingUpload> {
    daemon
        .client()
        .send_json(
            Method::POST,
            &format!("/api/projects/{}/recordings/uploads", encode(NUMBER)),
            &NewRecordingUpload {
                room: room.into(),
                seat: seat.into(),
                file_name: file_name.into(),
                size: data.len() as u64,
                sha256: digest_bytes(data).sha256,
            },
        )
        .await
}

#[tokio::test]
async fn cut_connections_resume_and_the_hash_matches() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (daemon, token, http) = daemon_with_project(tmp.path(), "远程异地评标录像上传").await?;
    let api = daemon.client();
    let data = recording_bytes(3 * 1024 * 1024 + 12_345, 0x5EED_2026);
    let sha256 = digest_bytes(&data).sha256;
    let upload = open_upload(&daemon, &data, ("第一评标室", "专家3", "会议录像.mp4")).await?;
    ensure!(upload.received == 0 && upload.status == RecordingUploadStatus::Open);

    // Five cuts at pseudo-random points: the server keeps every byte that reached it and the
    // client resumes at the offset the server answers, never from the start.
    let mut offset = 0usize;
    let mut seed = 0x2026_1120u64;
    for _ in 0..5 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let rest = &data[offset..];
        let cut = 256 * 1024 + (seed >> 33) as usize % (rest.len() / 4);
        cut_chunk(&daemon, &token, upload.id, offset, rest, cut).await?;
        let now = status(&http, &daemon, &token, upload.id).await?;
        let held = now.received as usize;
        ensure!(
            held == offset + cut,
            "sent {offset}..{} but the server holds {held}",
            offset + cut
        );
        offset = held;
    }

    // Overlapping chunks and holes are refused, naming the offset to resume at.
    let (code, text) = put_chunk(
        &http,
        &daemon,
        &token,
        upload.id,
        offset - 10,
        data[offset - 10..offset + 10].to_vec(),
    )
    .await?;
    ensure!(
        code == StatusCode::CONFLICT
            && text.contains("overlapping")
            && text.contains(&offset.to_string()),
        "{code} {text}"
    );
    let (code, text) = put_chunk(
        &http,
        &daemon,
        &token,
        upload.id,
        offset + 10,
        data[offset + 10..offset + 20].to_vec(),
    )
    .await?;
    ensure!(
        code == StatusCode::CONFLICT && text.contains("hole"),
        "{code} {text}"
    );
    ensure!(status(&http, &daemon, &token, upload.id).await?.received as usize == offset);

    // The rest in one go completes the upload.
    let (code, text) = put_chunk(
        &http,
        &daemon,
        &token,
        upload.id,
        offset,
        data[offset..].to_vec(),
    )
    .await?;
    ensure!(code == StatusCode::OK, "{code} {text}");
    let done: RecordingUpload = serde_json::from_str(&text)?;
    ensure!(done.status == RecordingUploadStatus::Done, "{done:?}");
    ensure!(done.rel_path == "recordings/第一评标室/专家3/会议录像.mp4");
    let detail: ProjectDetail = api
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    let source = detail
        .files
        .iter()
        .find(|f| f.rel_path == done.rel_path)
        .context("the recording is not a project source")?;
    ensure!(source.size as usize == data.len());
    let stored = std::fs::read(&source.origin)?;
    ensure!(
        digest_bytes(&stored).sha256 == sha256,
        "stored file hash differs"
    );
    // A finished upload takes no more chunks.
    let (code, _) = put_chunk(&http, &daemon, &token, upload.id, data.len(), vec![1]).await?;
    ensure!(code == StatusCode::CONFLICT);
    Ok(())
}

#[tokio::test]
async fn wrong_hashes_oversized_chunks_and_bad_names_are_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (daemon, token, http) = daemon_with_project(tmp.path(), "录像上传错误输入").await?;
    let api = daemon.client();
    let uploads = format!("/api/projects/{}/recordings/uploads", encode(NUMBER));
    let data = recording_bytes(100_000, 7);
    let new = |name: &str, size: u64, sha256: &str| NewRecordingUpload {
        room: "第一评标室".into(),
        seat: "专家1".into(),
        file_name: name.into(),
        size,
        sha256: sha256.into(),
    };
    let right = digest_bytes(&data).sha256;
    let wrong = digest_bytes(b"something else").sha256;

    for (bad, expect) in [
        (new("../escape.mp4", 10, &right), "file name"),
        (new("a.mp4", 0, &right), "size"),
        (new("a.mp4", 10, "abc"), "SHA-256"),
    ] {
        let err = api
            .send_json::<_, RecordingUpload>(Method::POST, &uploads, &bad)
            .await
            .unwrap_err()
            .to_string();
        ensure!(err.contains(expect), "{err}");
    }

    let upload: RecordingUpload = api
        .send_json(
            Method::POST,
            &uploads,
            &new("local.mp4", data.len() as u64, &wrong),
        )
        .await?;
    // The same file twice while the first is open: refused.
    let err = api
        .send_json::<_, RecordingUpload>(
            Method::POST,
            &uploads,
            &new("local.mp4", data.len() as u64, &wrong),
        )
        .await
        .unwrap_err()
        .to_string();
    ensure!(err.contains("already open"), "{err}");
    // A chunk longer than the declared size keeps only what fits, and says so.
    let mut long = data.clone();
    long.extend_from_slice(b"extra");
    let (code, text) = put_chunk(
        &http,
        &daemon,
        &token,
        upload.id,
        0,
        long[..50_000].to_vec(),
    )
    .await?;
    ensure!(code == StatusCode::OK, "{code} {text}");
    let (code, text) = put_chunk(
        &http,
        &daemon,
        &token,
        upload.id,
        50_000,
        long[50_000..].to_vec(),
    )
    .await?;
    ensure!(
        code == StatusCode::BAD_REQUEST && text.contains("declared size"),
        "{code} {text}"
    );
    let failed = status(&http, &daemon, &token, upload.id).await?;
    ensure!(failed.status == RecordingUploadStatus::Failed, "{failed:?}");
    ensure!(
        failed
            .error
            .as_deref()
            .unwrap_or("")
            .contains("SHA-256 mismatch"),
        "{failed:?}"
    );
    let detail: ProjectDetail = api
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    ensure!(detail.files.is_empty(), "{:?}", detail.files);

    // After a failure the same name may be uploaded again, this time right.
    let again: RecordingUpload = api
        .send_json(
            Method::POST,
            &uploads,
            &new("local.mp4", data.len() as u64, &right),
        )
        .await?;
    let (code, text) = put_chunk(&http, &daemon, &token, again.id, 0, data.clone()).await?;
    ensure!(
        code == StatusCode::OK && text.contains("\"done\""),
        "{code} {text}"
    );
    let anonymous = http
        .get(format!(
            "{}/api/recordings/uploads/{}",
            daemon.url, again.id
        ))
        .send()
        .await?;
    ensure!(anonymous.status() == StatusCode::UNAUTHORIZED);
    Ok(())
}

/// `(status, received)` of an upload, read from the daemon's catalog directly (the test must
/// see the moment between "every byte counted" and "finished", which no API answer shows).
async fn upload_row(daemon: &Daemon, id: i64) -> Result<(String, i64)> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(daemon.data.join("catalog.db"))
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    let row = sqlx::query_as("SELECT status, received FROM recording_uploads WHERE id = ?")
        .bind(id)
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(row)
}

#[tokio::test]
async fn kill_9_mid_chunk_and_mid_finish_loses_nothing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (mut daemon, token, http) = daemon_with_project(tmp.path(), "断电续传测试").await?;
    let api = daemon.client();
    // Big enough that hashing it at the end takes a moment a test can catch.
    let data = recording_bytes(48 * 1024 * 1024 + 777, 0xC0FF_EE00);
    let sha256 = digest_bytes(&data).sha256;
    let upload = open_upload(&daemon, &data, ("第二评标室", "专家1", "本地录像.mp4")).await?;
    let first = 4 * 1024 * 1024;
    let (code, text) =
        put_chunk(&http, &daemon, &token, upload.id, 0, data[..first].to_vec()).await?;
    ensure!(code == StatusCode::OK, "{code} {text}");

    // The power goes while a chunk is arriving: its bytes were never counted, so the upload
    // resumes at the last acknowledged offset, and what was stored up to it is intact.
    let address = daemon.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    let head = format!(
        "PUT /api/recordings/uploads/{}?offset={first} HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        upload.id,
        data.len() - first
    );
    stream.write_all(head.as_bytes()).await?;
    stream
        .write_all(&data[first..first + 2 * 1024 * 1024])
        .await?;
    stream.flush().await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    daemon.kill9();
    drop(stream);
    daemon.restart().await?;
    let now = status(&http, &daemon, &token, upload.id).await?;
    ensure!(
        now.received as usize == first && now.status == RecordingUploadStatus::Open,
        "{now:?}"
    );

    // The power goes again after the last byte was counted and before the upload finished.
    let rest = data[first..].to_vec();
    let (client, url, bearer) = (
        http.clone(),
        format!(
            "{}/api/recordings/uploads/{}?offset={first}",
            daemon.url, upload.id
        ),
        format!("Bearer {token}"),
    );
    let last = tokio::spawn(async move {
        client
            .put(url)
            .header(AUTHORIZATION, bearer)
            .body(rest)
            .send()
            .await
    });
    let mut caught = false;
    for _ in 0..4000 {
        let (state, received) = upload_row(&daemon, upload.id).await?;
        ensure!(
            state == "open",
            "finished before the test could cut it: {state}"
        );
        if received as usize == data.len() {
            daemon.kill9();
            caught = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    ensure!(caught, "the last chunk was never counted");
    let _ = last.await;
    let (state, _) = upload_row(&daemon, upload.id).await?;
    ensure!(
        state == "open",
        "killed too late to test the finish: {state}"
    );

    // At start-up the daemon finishes it: the hash is checked and the recording registered.
    daemon.restart().await?;
    let mut done = status(&http, &daemon, &token, upload.id).await?;
    for _ in 0..200 {
        if done.status != RecordingUploadStatus::Open {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        done = status(&http, &daemon, &token, upload.id).await?;
    }
    ensure!(done.status == RecordingUploadStatus::Done, "{done:?}");
    let detail: ProjectDetail = api
        .get_json(&format!("/api/projects/{}", encode(NUMBER)))
        .await?;
    let source = detail
        .files
        .iter()
        .find(|f| f.rel_path == done.rel_path)
        .context("the recording is not a project source")?;
    ensure!(digest_bytes(&std::fs::read(&source.origin)?).sha256 == sha256);
    Ok(())
}
