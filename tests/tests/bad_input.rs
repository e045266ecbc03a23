//! Bad input and failing hardware against a real daemon: every case must end in a clear error
//! (an HTTP status with an `ApiError`, or a CLI exit with a message) and leave nothing
//! half-written in the catalog or on disk.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use witness_controller::cli::encode;
use witness_schemas::api::{
    ApiError, CopyKind, Disc, DiscStatus, Job, JobStatus, ProjectDetail, ProjectStatus,
};
use witness_tests::daemon::Daemon;

const MIB: u64 = 1024 * 1024;

/// A temporary folder holding the daemon's data folder, its log and anything else a case needs.
struct Setup {
    root: tempfile::TempDir,
    daemon: Daemon,
    http: reqwest::Client,
}

impl Setup {
    /// Starts a daemon whose configuration is `config` (TOML); `{root}` in it is replaced by the
    /// temporary folder, so cases can point drives and disks into it.
    async fn start(config: &str) -> Result<Setup> {
        let root = tempfile::tempdir()?;
        Self::start_in(root, config, |_| Ok(())).await
    }

    /// Like `start`, but runs `prepare(root)` before the daemon starts.
    async fn start_in(
        root: tempfile::TempDir,
        config: &str,
        prepare: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Setup> {
        prepare(root.path())?;
        let config_path = root.path().join("witness.toml");
        std::fs::write(&config_path, expand(config, root.path()))?;
        let daemon = Daemon::start(&root.path().join("data"), Some(&config_path)).await?;
        let http = authorized_client(&daemon)?;
        Ok(Setup { root, daemon, http })
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn data(&self) -> &Path {
        &self.daemon.data
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.daemon.url)
    }

    /// GETs `path` and parses the answer as JSON (callers convert it with `from_value`).
    async fn get(&self, path: &str) -> Result<Value> {
        let response = self.http.get(self.url(path)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET {path}: HTTP {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {path}: {text}"))
    }

    async fn detail(&self, number: &str) -> Result<ProjectDetail> {
        let value = self
            .get(&format!("/api/projects/{}", encode(number)))
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    async fn jobs(&self) -> Result<Vec<Job>> {
        Ok(serde_json::from_value(self.get("/api/jobs").await?)?)
    }

    async fn discs(&self) -> Result<Vec<Disc>> {
        Ok(serde_json::from_value(self.get("/api/discs").await?)?)
    }

    async fn add_project(&self, number: &str) -> Result<()> {
        let response = self
            .http
            .post(self.url("/api/projects"))
            .json(&json!({
                "number": number,
                "name": "兰考县城区道路改造工程施工招标",
                "category": "construction",
                "opening": "2026-03-18T09:30:00+08:00",
            }))
            .send()
            .await?;
        if response.status().as_u16() != 201 {
            bail!(
                "creating {number}: HTTP {}: {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(())
    }

    /// Uploads `bytes` as `rel_path` (segments percent-encoded one by one).
    async fn upload(&self, number: &str, rel_path: &str, bytes: Vec<u8>) -> Result<()> {
        let encoded: Vec<String> = rel_path.split('/').map(encode).collect();
        let path = format!(
            "/api/projects/{}/files/{}",
            encode(number),
            encoded.join("/")
        );
        let response = self.http.put(self.url(&path)).body(bytes).send().await?;
        if response.status().as_u16() != 201 {
            bail!(
                "uploading {rel_path}: HTTP {}: {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(())
    }

    /// A project with `files` (path, size) uploaded.
    async fn project_with_files(&self, number: &str, files: &[(&str, u64)]) -> Result<()> {
        self.add_project(number).await?;
        for (i, (path, size)) in files.iter().enumerate() {
            self.upload(number, path, blob(*size, i as u8)).await?;
        }
        Ok(())
    }

    /// Presses 一键备份 through the API and returns the new job.
    async fn backup(&self, number: &str) -> Result<Job> {
        let response = self
            .http
            .post(self.url(&format!("/api/projects/{}/backup", encode(number))))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status.as_u16() != 202 {
            bail!("backup of {number}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Waits until job `id` has succeeded or failed.
    async fn finished(&self, id: i64, timeout: Duration) -> Result<Job> {
        let deadline = Instant::now() + timeout;
        loop {
            let job: Job = serde_json::from_value(self.get(&format!("/api/jobs/{id}")).await?)?;
            if matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!(
                    "job {id} still {:?} at {:?} after {timeout:?}: {}\nlog:\n{}",
                    job.status,
                    job.step,
                    job.message,
                    self.daemon.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An HTTP client that sends the daemon's first admin token with every request.
fn authorized_client(daemon: &Daemon) -> Result<reqwest::Client> {
    let token = daemon
        .admin_token()
        .context("the daemon wrote no admin token")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

fn expand(config: &str, root: &Path) -> String {
    config.replace("{root}", &root.display().to_string())
}

/// `size` bytes of varied content (not all zeros, so every file has its own digest).
fn blob(size: u64, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9) ^ seed as u64) as u8)
        .collect()
}

/// Checks an error answer: its status, that the body is an `ApiError` JSON (not axum's plain
/// text) with the expected kind, and that the message names every `needle`.
async fn check_error(
    what: &str,
    response: reqwest::Response,
    status: u16,
    kind: &str,
    needles: &[&str],
) -> ApiError {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.unwrap_or_default();
    check_error_text(what, got, &content_type, &text, status, kind, needles)
}

fn check_error_text(
    what: &str,
    got: u16,
    content_type: &str,
    text: &str,
    status: u16,
    kind: &str,
    needles: &[&str],
) -> ApiError {
    assert_eq!(got, status, "{what}: HTTP status (body {text})");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content type {content_type:?} (body {text})"
    );
    let error: ApiError = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: the body is not an ApiError ({e}): {text}"));
    assert_eq!(error.kind, kind, "{what}: kind (message {})", error.message);
    for needle in needles {
        assert!(
            error.message.contains(needle),
            "{what}: the message {:?} does not name {needle:?}",
            error.message
        );
    }
    error
}

/// Checks a CLI run failed with a message on stderr naming every `needle`.
fn check_cli_error(what: &str, run: (bool, String, String), needles: &[&str]) {
    let (ok, stdout, stderr) = run;
    assert!(!ok, "{what}: the CLI succeeded: {stdout}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: stderr does not name {needle:?}: {stderr}"
        );
    }
}

/// The body of one API request of a table.
enum Body {
    None,
    Json(Value),
    Raw(&'static str, &'static str),
}

/// One bad request and what the daemon must answer.
struct Case {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    body: Body,
    status: u16,
    kind: &'static str,
    needles: Vec<String>,
}

impl Case {
    fn new(
        what: &'static str,
        method: reqwest::Method,
        path: impl Into<String>,
        body: Body,
        (status, kind): (u16, &'static str),
        needles: &[&str],
    ) -> Case {
        Case {
            what,
            method,
            path: path.into(),
            body,
            status,
            kind,
            needles: needles.iter().map(|s| s.to_string()).collect(),
        }
    }
}

const NOT_FOUND: (u16, &str) = (404, "not_found");
const INVALID: (u16, &str) = (400, "invalid_argument");
const EXISTS: (u16, &str) = (409, "already_exists");
const PRECONDITION: (u16, &str) = (409, "failed_precondition");

async fn run_cases(setup: &Setup, cases: &[Case]) {
    for case in cases {
        let mut request = setup
            .http
            .request(case.method.clone(), setup.url(&case.path));
        request = match &case.body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Raw(content_type, text) => request
                .header("content-type", *content_type)
                .body(text.to_string()),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let needles: Vec<&str> = case.needles.iter().map(String::as_str).collect();
        check_error(case.what, response, case.status, case.kind, &needles).await;
    }
}

fn count(discs: &[Disc], kind: CopyKind, status: DiscStatus) -> usize {
    discs
        .iter()
        .filter(|d| d.kind == kind && d.status == status)
        .count()
}

fn assert_none_writing(discs: &[Disc]) {
    for disc in discs {
        assert!(
            !matches!(disc.status, DiscStatus::Writing | DiscStatus::Written),
            "a copy is left half-done: {disc:?}"
        );
    }
}

/// One virtual 8 MiB BD-R drive plus the given extra TOML.
fn one_drive(drive_extra: &str, rest: &str) -> String {
    format!(
        "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = {}\n{drive_extra}\n{rest}\n",
        8 * MIB
    )
}

/* ------------------------------------------------------------------ 1, 3, 4: the catalog */

#[tokio::test]
async fn unknown_projects_and_bad_projects_are_refused() -> Result<()> {
    let setup = Setup::start(&one_drive("", "")).await?;
    setup.add_project("LKGC-2026-0318").await?;
    use reqwest::Method;
    let project = |body: Value| Body::Json(body);
    let good = json!({
        "number": "ZFCG-2026-0001",
        "name": "兰考县政府采购项目",
        "category": "procurement",
        "opening": "2026-03-18T09:30:00+08:00",
    });
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    #[rustfmt::skip]
    let cases = vec![
        // 1. Unknown projects.
        Case::new("GET unknown project", Method::GET, "/api/projects/NOPE", Body::None, NOT_FOUND, &["NOPE", "不存在"]),
        Case::new("backup of an unknown project", Method::POST, "/api/projects/NOPE/backup", Body::None, NOT_FOUND, &["NOPE", "不存在"]),
        Case::new("sources of an unknown project", Method::POST, "/api/projects/NOPE/sources", project(json!({"paths": ["/etc/hostname"]})), NOT_FOUND, &["NOPE"]),
        Case::new("upload to an unknown project", Method::PUT, "/api/projects/NOPE/files/a.pdf", Body::Raw("application/octet-stream", "x"), NOT_FOUND, &["NOPE"]),
        Case::new("unknown job", Method::GET, "/api/jobs/999", Body::None, NOT_FOUND, &["999"]),
        Case::new("job id that is no number", Method::GET, "/api/jobs/abc", Body::None, INVALID, &["abc"]),
        Case::new("unknown API route", Method::GET, "/api/nothing-here", Body::None, NOT_FOUND, &["接口"]),
        // 3. Bad new projects.
        Case::new("duplicate project number", Method::POST, "/api/projects", project(with("number", json!("LKGC-2026-0318"))), EXISTS, &["LKGC-2026-0318", "已存在"]),
        Case::new("unknown category", Method::POST, "/api/projects", project(with("category", json!("lottery"))), INVALID, &["category", "lottery"]),
        Case::new("category of the wrong type", Method::POST, "/api/projects", project(with("category", json!(3))), INVALID, &["category"]),
        Case::new("opening time that is no time", Method::POST, "/api/projects", project(with("opening", json!("明天上午"))), INVALID, &["开标时间", "明天上午"]),
        Case::new("opening time without an offset", Method::POST, "/api/projects", project(with("opening", json!("2026-03-18T09:30:00"))), INVALID, &["开标时间"]),
        Case::new("empty name", Method::POST, "/api/projects", project(with("name", json!("   "))), INVALID, &["项目名称"]),
        Case::new("empty number", Method::POST, "/api/projects", project(with("number", json!(""))), INVALID, &["项目编号"]),
        Case::new("number with a slash", Method::POST, "/api/projects", project(with("number", json!("LKGC/2026"))), INVALID, &["项目编号", "LKGC/2026"]),
        Case::new("number with a backslash", Method::POST, "/api/projects", project(with("number", json!("LKGC\\2026"))), INVALID, &["项目编号"]),
        Case::new("number that is ..", Method::POST, "/api/projects", project(with("number", json!(".."))), INVALID, &["项目编号"]),
        Case::new("number with spaces around", Method::POST, "/api/projects", project(with("number", json!(" A-1 "))), INVALID, &["项目编号"]),
        Case::new("missing field", Method::POST, "/api/projects", project(json!({"number": "X-1", "name": "n", "category": "land"})), INVALID, &["opening"]),
        Case::new("malformed JSON", Method::POST, "/api/projects", Body::Raw("application/json", "{\"number\": \"X-2\", "), INVALID, &["JSON"]),
        Case::new("JSON that is no object", Method::POST, "/api/projects", Body::Raw("application/json", "[1, 2]"), INVALID, &["JSON"]),
        Case::new("body that is not declared JSON", Method::POST, "/api/projects", Body::Raw("text/plain", "{}"), INVALID, &["JSON"]),
        Case::new("malformed JSON for sources", Method::POST, "/api/projects/LKGC-2026-0318/sources", Body::Raw("application/json", "{\"paths\": \"/etc\"}"), INVALID, &["JSON", "paths"]),
        // 4. A project with no files cannot be backed up.
        Case::new("backup of a project with no files", Method::POST, "/api/projects/LKGC-2026-0318/backup", Body::None, PRECONDITION, &["LKGC-2026-0318", "没有任何文件"]),
    ];
    run_cases(&setup, &cases).await;

    // Nothing was half-created: the one good project, with no file, no job and no disc.
    let projects = setup.get("/api/projects").await?;
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    let detail = setup.detail("LKGC-2026-0318").await?;
    assert_eq!(detail.project.status, ProjectStatus::Registered);
    assert!(detail.files.is_empty() && detail.jobs.is_empty() && detail.discs.is_empty());
    assert!(setup.jobs().await?.is_empty());
    assert!(!setup.data().join("staging").exists());

    // The same through the command line.
    check_cli_error(
        "CLI backup of an unknown project",
        setup.daemon.cli(&["backup", "--project", "NOPE"]),
        &["NOPE", "不存在"],
    );
    check_cli_error(
        "CLI backup of a project with no files",
        setup
            .daemon
            .cli(&["backup", "--project", "LKGC-2026-0318", "--wait"]),
        &["没有任何文件"],
    );
    check_cli_error(
        "CLI duplicate project",
        setup.daemon.cli(&[
            "project",
            "add",
            "--number",
            "LKGC-2026-0318",
            "--name",
            "重复",
            "--category",
            "工程建设",
            "--opening",
            "2026-03-18T09:30:00+08:00",
        ]),
        &["已存在", "already_exists"],
    );
    check_cli_error(
        "CLI unknown category",
        setup.daemon.cli(&[
            "project",
            "add",
            "--number",
            "X-9",
            "--name",
            "n",
            "--category",
            "彩票",
            "--opening",
            "2026-03-18T09:30:00+08:00",
        ]),
        &["彩票", "工程建设"],
    );
    check_cli_error(
        "CLI bad opening time",
        setup.daemon.cli(&[
            "project",
            "add",
            "--number",
            "X-9",
            "--name",
            "n",
            "--category",
            "land",
            "--opening",
            "2026-13-45",
        ]),
        &["开标时间"],
    );
    let projects = setup.get("/api/projects").await?;
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    assert!(setup.jobs().await?.is_empty());
    Ok(())
}

/* ------------------------------------------------------------------ 2: source paths */

/// A regular file this process cannot open for reading. As root `chmod 000` stops nothing
/// (CAP_DAC_OVERRIDE), so then it is `/proc/sys/vm/compact_memory`: a write-only sysctl whose
/// mode the kernel enforces even for root.
fn unreadable_file(dir: &Path) -> Result<PathBuf> {
    let file = dir.join("锁定的评标报告.pdf");
    std::fs::write(&file, b"%PDF-1.7 secret")?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000))?;
    if std::fs::File::open(&file).is_err() {
        return Ok(file);
    }
    let sysctl = PathBuf::from("/proc/sys/vm/compact_memory");
    let meta = std::fs::metadata(&sysctl).context("no unreadable file is available")?;
    assert!(meta.is_file());
    assert!(
        std::fs::File::open(&sysctl).is_err(),
        "{} is readable here; no unreadable regular file to test with",
        sysctl.display()
    );
    Ok(sysctl)
}

#[tokio::test]
async fn bad_source_paths_register_nothing() -> Result<()> {
    let setup = Setup::start(&one_drive("", "")).await?;
    let number = "LKGC-2026-0318";
    setup.add_project(number).await?;
    let files = setup.path().join("files");
    std::fs::create_dir_all(files.join("评标录像"))?;
    let good = files.join("评标报告.pdf");
    std::fs::write(&good, b"%PDF-1.7 report")?;
    std::fs::write(files.join("评标录像/第一会议室.mp4"), blob(5000, 1))?;
    let missing = setup.path().join("没有这个文件.pdf");
    let unreadable = unreadable_file(setup.path())?;
    let fifo = setup.path().join("管道");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(made.success(), "mkfifo failed");
    let dangling = setup.path().join("断开的链接.pdf");
    std::os::unix::fs::symlink(setup.path().join("不在了.pdf"), &dangling)?;
    // A folder holding a file whose name is not UTF-8 (it could not be named inside a bag).
    let odd_dir = setup.path().join("odd");
    std::fs::create_dir(&odd_dir)?;
    {
        use std::os::unix::ffi::OsStrExt;
        std::fs::write(
            odd_dir.join(std::ffi::OsStr::from_bytes(b"\xff\xfe.pdf")),
            b"x",
        )?;
    }

    let show = |p: &Path| p.display().to_string();
    let sources = format!("/api/projects/{number}/sources");
    let paths = |list: &[&Path]| {
        Body::Json(json!({ "paths": list.iter().map(|p| show(p)).collect::<Vec<_>>() }))
    };
    use reqwest::Method;
    #[rustfmt::skip]
    let cases = vec![
        Case::new("missing path", Method::POST, &sources, paths(&[&missing]), NOT_FOUND, &[&show(&missing)]),
        Case::new("relative path", Method::POST, &sources, Body::Json(json!({"paths": ["files/评标报告.pdf"]})), INVALID, &["绝对路径"]),
        Case::new("no paths", Method::POST, &sources, Body::Json(json!({"paths": []})), INVALID, &["no paths"]),
        Case::new("unreadable file", Method::POST, &sources, paths(&[&unreadable]), PRECONDITION, &["无法读取", &show(&unreadable)]),
        Case::new("FIFO", Method::POST, &sources, paths(&[&fifo]), INVALID, &["既不是文件也不是目录", &show(&fifo)]),
        Case::new("dangling symlink", Method::POST, &sources, paths(&[&dangling]), NOT_FOUND, &[&show(&dangling)]),
        Case::new("non-UTF-8 name in a folder", Method::POST, &sources, paths(&[&odd_dir]), INVALID, &["UTF-8"]),
        // All or nothing: one bad path among good ones stores none of them.
        Case::new("good file then missing path", Method::POST, &sources, paths(&[&good, &missing]), NOT_FOUND, &[&show(&missing)]),
        Case::new("good folder then unreadable file", Method::POST, &sources, paths(&[&files, &unreadable]), PRECONDITION, &[&show(&unreadable)]),
        Case::new("missing path then good file", Method::POST, &sources, paths(&[&missing, &good]), NOT_FOUND, &[&show(&missing)]),
        Case::new("the same file twice", Method::POST, &sources, paths(&[&good, &good]), EXISTS, &["评标报告.pdf"]),
    ];
    run_cases(&setup, &cases).await;
    let detail = setup.detail(number).await?;
    assert!(detail.files.is_empty(), "registered: {:?}", detail.files);
    assert_eq!(detail.project.file_count, 0);

    // The command line: a missing path is named before anything is sent; the daemon's
    // refusal of an unreadable file comes back on stderr.
    check_cli_error(
        "CLI missing path",
        setup
            .daemon
            .cli(&["source", "add", "--project", number, &show(&missing)]),
        &[&show(&missing), "不存在"],
    );
    check_cli_error(
        "CLI good file and missing path",
        setup.daemon.cli(&[
            "source",
            "add",
            "--project",
            number,
            &show(&good),
            &show(&missing),
        ]),
        &[&show(&missing)],
    );
    check_cli_error(
        "CLI unreadable file",
        setup.daemon.cli(&[
            "source",
            "add",
            "--project",
            number,
            &show(&good),
            &show(&unreadable),
        ]),
        &["无法读取", "failed_precondition"],
    );
    check_cli_error(
        "CLI FIFO",
        setup
            .daemon
            .cli(&["source", "add", "--project", number, &show(&fifo)]),
        &["既不是文件也不是目录"],
    );
    check_cli_error(
        "CLI unknown project",
        setup
            .daemon
            .cli(&["source", "add", "--project", "NOPE", &show(&good)]),
        &["NOPE", "不存在"],
    );
    let detail = setup.detail(number).await?;
    assert!(detail.files.is_empty(), "registered: {:?}", detail.files);

    // The good paths alone are accepted, so the refusals above were about the bad ones.
    let (ok, stdout, stderr) = setup.daemon.cli(&[
        "source",
        "add",
        "--project",
        number,
        &show(&good),
        &show(&files),
    ]);
    assert!(ok, "{stdout}{stderr}");
    let mut registered: Vec<String> = setup
        .detail(number)
        .await?
        .files
        .into_iter()
        .map(|f| f.rel_path)
        .collect();
    registered.sort();
    assert_eq!(
        registered,
        [
            "files/评标录像/第一会议室.mp4",
            "files/评标报告.pdf",
            "评标报告.pdf"
        ]
    );
    Ok(())
}

/* ------------------------------------------------------------------ 10: uploads */

/// Sends one request exactly as written (no client-side normalisation of `..` or `%2E%2E`,
/// which URL parsers do) and returns (status, content type, body).
async fn raw_request(
    daemon: &Daemon,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<(u16, String, String)> {
    let host = daemon.url.trim_start_matches("http://");
    let token = daemon
        .admin_token()
        .context("the daemon wrote no admin token")?;
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP answer: {text}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status: {head}"))?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Ok((status, content_type, body.to_string()))
}

/// Every file under `dir` but the catalog's (its WAL files come and go).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                // The search index rewrites its own files in the background whenever the
                // catalog changes; it is not where an upload could land.
                Ok(t) if t.is_dir() && entry.file_name() == "search" => {}
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_)
                    if !entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with("catalog.db") =>
                {
                    out.push(path)
                }
                Ok(_) => {}
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn uploads_cannot_escape_the_store() -> Result<()> {
    let setup = Setup::start(&one_drive("", "")).await?;
    let number = "LKGC-2026-0318";
    setup.add_project(number).await?;
    let before = files_under(setup.path());
    // An absolute target inside this test's own folder: were the check ever broken, the file
    // would land here and not on top of a system file (these tests run as root).
    let absolute = setup.path().join("escaped-abs.txt");
    let abs_encoded = encode(&absolute.display().to_string());
    let base = format!("/api/projects/{number}/files");
    #[rustfmt::skip]
    let cases: Vec<(&str, String)> = vec![
        ("literal ..", format!("{base}/../../escaped-1.txt")),
        ("literal .. deeper", format!("{base}/a/../../../../escaped-2.txt")),
        ("encoded %2E%2E", format!("{base}/%2E%2E/%2E%2E/escaped-3.txt")),
        ("lower-case %2e%2e", format!("{base}/a/%2e%2e/%2e%2e/%2e%2e/escaped-4.txt")),
        ("encoded slashes and ..", format!("{base}/..%2F..%2F..%2Fescaped-5.txt")),
        ("encoded absolute path", format!("{base}/{abs_encoded}")),
        ("encoded /etc/passwd", format!("{base}/%2Fetc%2Fpasswd-witness-test")),
        ("absolute path after //", format!("{base}/{}", absolute.display())),
        ("backslashes", format!("{base}/a%5C..%5C..%5Cescaped-6.txt")),
        ("literal backslash", format!("{base}/..\\..\\escaped-7.txt")),
        ("empty segment", format!("{base}/a//escaped-8.txt")),
        ("trailing slash", format!("{base}/a/")),
        ("single dot", format!("{base}/./escaped-9.txt")),
        ("control character", format!("{base}/escaped%00-10.txt")),
        ("newline", format!("{base}/escaped%0A-11.txt")),
    ];
    for (what, target) in &cases {
        let (status, content_type, body) =
            raw_request(&setup.daemon, "PUT", target, b"should never be written").await?;
        // Anything but 400 (say a 404 from the router) would also keep the file out, but the
        // daemon promises a clear invalid_argument for a bad path.
        check_error_text(
            what,
            status,
            &content_type,
            &body,
            400,
            "invalid_argument",
            &["文件路径"],
        );
    }
    let after = files_under(setup.path());
    assert_eq!(before, after, "files appeared or vanished");
    assert!(!absolute.exists());
    assert!(!Path::new("/etc/passwd-witness-test").exists());
    assert!(setup.detail(number).await?.files.is_empty());

    // A good Chinese path works, lands in the store, and shows in the project.
    let rel = "投标文件/第1册 商务标（正本）.pdf";
    let content = blob(70_000, 7);
    setup.upload(number, rel, content.clone()).await?;
    let detail = setup.detail(number).await?;
    assert_eq!(detail.files.len(), 1);
    assert_eq!(detail.files[0].rel_path, rel);
    assert_eq!(detail.files[0].size, content.len() as i64);
    let stored = PathBuf::from(&detail.files[0].origin);
    assert!(
        stored.starts_with(setup.data().join("store")),
        "{}",
        stored.display()
    );
    assert_eq!(std::fs::read(&stored)?, content);
    // Only that file was added, and no partial upload is left beside it.
    let added: Vec<PathBuf> = files_under(setup.path())
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(added, vec![stored]);

    // The same path again is a conflict, not an overwrite.
    let response = setup
        .http
        .put(setup.url(&format!(
            "/api/projects/{number}/files/{}",
            rel.split('/').map(encode).collect::<Vec<_>>().join("/")
        )))
        .body("other")
        .send()
        .await?;
    check_error(
        "second upload of the same path",
        response,
        409,
        "already_exists",
        &[rel],
    )
    .await;
    assert_eq!(std::fs::read(&detail.files[0].origin)?, content);
    Ok(())
}

/* ------------------------------------------------------------------ 5: write errors */

#[tokio::test]
async fn a_write_error_rejects_the_disc_and_burns_it_again() -> Result<()> {
    let setup = Setup::start(&one_drive(
        "fault_fail_burns = 1\nfault_fail_after_bytes = 1048576",
        "[copies]\noptical = 1\ndisk = 1\n[archive]\nmax_burn_attempts = 3",
    ))
    .await?;
    let number = "LKGC-2026-0318";
    setup
        .project_with_files(
            number,
            &[
                ("评标报告.pdf", 300_000),
                ("评标录像/第一会议室.mp4", 2 * MIB),
            ],
        )
        .await?;
    let job = setup.backup(number).await?;
    let job = setup.finished(job.id, Duration::from_secs(120)).await?;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(
        (job.copies_verified, job.copies_expected),
        (2, 2),
        "{job:?}"
    );

    let discs = setup.discs().await?;
    assert_none_writing(&discs);
    assert_eq!(discs.len(), 3, "{discs:#?}");
    assert_eq!(count(&discs, CopyKind::Optical, DiscStatus::Rejected), 1);
    assert_eq!(count(&discs, CopyKind::Optical, DiscStatus::Verified), 1);
    assert_eq!(count(&discs, CopyKind::Disk, DiscStatus::Verified), 1);
    let rejected = discs
        .iter()
        .find(|d| d.status == DiscStatus::Rejected)
        .expect("a rejected disc");
    let error = rejected.error.clone().unwrap_or_default();
    assert!(
        error.contains("刻录失败") && error.contains("bd1"),
        "{error}"
    );
    // A bad disc is a write failure, not a full medium (both hit the same EFBIG underneath).
    assert!(
        error.contains("writing on drive bd1 failed") && error.contains("File too large"),
        "the reason is not named: {error}"
    );
    assert!(!error.contains("full"), "{error}");
    // The bad disc's image is thrown away; the good one is kept and is the same volume.
    assert!(
        !Path::new(&rejected.location).exists(),
        "{}",
        rejected.location
    );
    let verified = discs
        .iter()
        .find(|d| d.kind == CopyKind::Optical && d.status == DiscStatus::Verified)
        .expect("a verified disc");
    assert!(Path::new(&verified.location).is_file());
    assert_eq!(verified.volume_id, rejected.volume_id);
    assert_eq!(verified.set_index, rejected.set_index);
    assert!(verified.id > rejected.id);
    assert_eq!(
        setup.detail(number).await?.project.status,
        ProjectStatus::Archived
    );
    Ok(())
}

#[tokio::test]
async fn write_errors_beyond_the_attempts_fail_the_job() -> Result<()> {
    let setup = Setup::start(&one_drive(
        "fault_fail_burns = 10",
        "[copies]\noptical = 1\ndisk = 0\n[archive]\nmax_burn_attempts = 2",
    ))
    .await?;
    let number = "LKGC-2026-0318";
    setup
        .project_with_files(number, &[("评标录像/第一会议室.mp4", 2 * MIB)])
        .await?;
    let job = setup.backup(number).await?;
    let job = setup.finished(job.id, Duration::from_secs(120)).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("已失败 2 次")
            && error.contains("第 1/1 盘")
            && error.contains("writing on drive bd1 failed"),
        "{error}"
    );
    for disc in setup.discs().await? {
        let e = disc.error.unwrap_or_default();
        assert!(
            e.contains("刻录失败") && e.contains("writing on drive bd1 failed"),
            "{e}"
        );
    }
    assert_eq!(job.copies_verified, 0);
    let discs = setup.discs().await?;
    assert_none_writing(&discs);
    assert_eq!(discs.len(), 2, "{discs:#?}");
    assert!(discs.iter().all(|d| d.status == DiscStatus::Rejected));
    for disc in &discs {
        assert!(!Path::new(&disc.location).exists(), "{}", disc.location);
    }
    assert_eq!(
        setup.detail(number).await?.project.status,
        ProjectStatus::Failed
    );
    // Two failures in a row took the only drive out of service: a second backup, followed with
    // the CLI's --wait, fails and says why.
    let (ok, _, stderr) = setup.daemon.cli(&["backup", "--project", number, "--wait"]);
    assert!(!ok);
    assert!(
        stderr.contains("失败")
            && stderr.contains("bd1 已停用")
            && stderr.contains("连续 2 张光盘失败"),
        "{stderr}"
    );
    Ok(())
}

/* ------------------------------------------------------------------ 6: medium full */

/// SIGKILLs the xorriso processes working on files under `root` (those of this test's daemon)
/// and waits until they are gone.
async fn kill_xorriso_under(root: &Path) -> Result<()> {
    let root = root.display().to_string();
    let live = || -> Vec<String> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let proc = PathBuf::from(format!("/proc/{pid}"));
                let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
                let state = stat.rsplit_once(") ").map(|(_, r)| r.starts_with('Z'));
                cmdline.starts_with("xorriso\0") && cmdline.contains(&root) && state == Some(false)
            })
            .map(|pid| pid.to_string())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = live();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("xorriso processes {pids:?} do not die");
        }
        std::process::Command::new("kill")
            .arg("-9")
            .args(&pids)
            .status()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until some disc of the daemon is being written.
async fn until_writing(setup: &Setup, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if setup
            .discs()
            .await?
            .iter()
            .any(|d| d.status == DiscStatus::Writing)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no disc started writing within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_disc_failing_near_its_end_fails_the_job_and_nothing_is_verified() -> Result<()> {
    // The disc stops taking bytes at 5 MiB of a 6 MiB image, on every attempt. This is how the
    // virtual drive imitates a disc that runs out early; it is reported as the write failure it
    // is injected as, never as a verified copy.
    let setup = Setup::start(&one_drive(
        &format!(
            "fault_fail_burns = 10\nfault_fail_after_bytes = {}",
            5 * MIB
        ),
        "[copies]\noptical = 1\ndisk = 0\n[archive]\nmax_burn_attempts = 2",
    ))
    .await?;
    let number = "LKGC-2026-0318";
    setup
        .project_with_files(number, &[("评标录像/第一会议室.mp4", 5 * MIB + MIB / 2)])
        .await?;
    let job = setup.backup(number).await?;
    let job = setup.finished(job.id, Duration::from_secs(120)).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("已失败 2 次") && error.contains("writing on drive bd1 failed"),
        "{error}"
    );
    assert!(error.contains("5242880 bytes"), "{error}");
    let discs = setup.discs().await?;
    assert_none_writing(&discs);
    assert_eq!(count(&discs, CopyKind::Optical, DiscStatus::Verified), 0);
    assert_eq!(discs.len(), 2, "{discs:#?}");
    for disc in &discs {
        assert!(!Path::new(&disc.location).exists(), "{}", disc.location);
    }
    assert_eq!(
        setup.detail(number).await?.project.status,
        ProjectStatus::Failed
    );
    Ok(())
}

#[tokio::test]
async fn a_medium_smaller_than_planned_is_refused_before_a_disc_is_wasted() -> Result<()> {
    let number = "LKGC-2026-0318";
    // A real mismatch: a job planned for 16 MiB discs is resumed after the drive was
    // reconfigured for 8 MiB ones (another medium loaded). Burning would run into the medium's
    // end and waste the disc, so the drive is refused for this job up front, naming both sizes.
    let root = tempfile::tempdir()?;
    let big = "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 16777216\n\
               throttle_bytes_per_sec = 1000000\n[copies]\noptical = 1\ndisk = 0\n[archive]\nmax_burn_attempts = 2\n";
    let mut setup = Setup::start_in(root, big, |_| Ok(())).await?;
    setup
        .project_with_files(number, &[("评标录像/第一会议室.mp4", 12 * MIB)])
        .await?;
    let job = setup.backup(number).await?;
    until_writing(&setup, Duration::from_secs(60)).await?;
    setup.daemon.kill9();
    // A power cut stops xorriso too; a SIGKILL of the daemon alone leaves it running for a
    // moment, and it could create its image after the restart has cleaned up.
    kill_xorriso_under(setup.path()).await?;
    std::fs::write(
        setup.path().join("witness.toml"),
        big.replace("16777216", "8388608")
            .replace("throttle_bytes_per_sec = 1000000\n", ""),
    )?;
    setup.daemon.restart().await?;
    let job = setup.finished(job.id, Duration::from_secs(120)).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("bd1") && error.contains("8388608") && error.contains("16777216"),
        "{error}"
    );
    let discs = setup.discs().await?;
    assert_none_writing(&discs);
    assert_eq!(count(&discs, CopyKind::Optical, DiscStatus::Verified), 0);
    // Only the disc the restart interrupted: no blank was spent on the too-small medium.
    assert_eq!(discs.len(), 1, "{discs:#?}");
    assert!(discs[0]
        .error
        .clone()
        .unwrap_or_default()
        .contains("interrupted"));
    for disc in &discs {
        assert!(!Path::new(&disc.location).exists(), "{}", disc.location);
    }
    assert_eq!(
        setup.detail(number).await?.project.status,
        ProjectStatus::Failed
    );
    Ok(())
}

/* ------------------------------------------------------------------ 7, 8: targets gone */

#[tokio::test]
async fn a_drive_that_is_gone_fails_the_job_naming_it() -> Result<()> {
    let setup = Setup::start_in(
        tempfile::tempdir()?,
        "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 8388608\n\
         image_dir = \"{root}/usb-burner\"\n[copies]\noptical = 1\ndisk = 1\n",
        |root| Ok(std::fs::create_dir(root.join("usb-burner"))?),
    )
    .await?;
    let number = "LKGC-2026-0318";
    setup
        .project_with_files(number, &[("评标报告.pdf", 200_000)])
        .await?;
    // The burner is unplugged after the daemon started.
    std::fs::remove_dir(setup.path().join("usb-burner"))?;
    let job = setup.backup(number).await?;
    let job = setup.finished(job.id, Duration::from_secs(120)).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("bd1") && (error.contains("不可用") || error.contains("not available")),
        "the error does not name the drive as unavailable: {error}"
    );
    assert!(error.contains("usb-burner"), "{error}");
    let discs = setup.discs().await?;
    assert_none_writing(&discs);
    // Nothing was written on the gone drive; the hard-disk copy went ahead on its own.
    assert_eq!(
        discs.iter().filter(|d| d.kind == CopyKind::Optical).count(),
        0,
        "{discs:#?}"
    );
    assert_eq!(count(&discs, CopyKind::Disk, DiscStatus::Verified), 1);
    assert!(!setup.path().join("usb-burner").exists());
    assert_eq!(
        setup.detail(number).await?.project.status,
        ProjectStatus::Failed
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_disk_folder_fails_the_job_naming_it() -> Result<()> {
    // The folder is not there (disk not mounted), or the path is a regular file. As root a
    // read-only folder would still be writable, so that is not a case here.
    type Prepare = fn(&Path) -> Result<()>;
    let cases: [(&str, Prepare, &[&str]); 2] = [
        ("missing folder", |_| Ok(()), &["不可用"]),
        (
            "a regular file",
            |root| Ok(std::fs::write(root.join("hdd"), b"not a folder")?),
            &["不是目录"],
        ),
    ];
    for (what, prepare, needles) in cases {
        let setup = Setup::start_in(
            tempfile::tempdir()?,
            &one_drive(
                "",
                "[[disks]]\nname = \"hdd1\"\npath = \"{root}/hdd\"\n[copies]\noptical = 1\ndisk = 1\n",
            ),
            prepare,
        )
        .await?;
        let number = "LKGC-2026-0318";
        setup
            .project_with_files(number, &[("评标报告.pdf", 200_000)])
            .await?;
        let job = setup.backup(number).await?;
        let job = setup.finished(job.id, Duration::from_secs(120)).await?;
        assert_eq!(job.status, JobStatus::Failed, "{what}: {job:?}");
        let error = job.error.clone().unwrap_or_default();
        let folder = setup.path().join("hdd").display().to_string();
        assert!(
            error.contains("hdd1") && error.contains(&folder),
            "{what}: {error}"
        );
        for needle in needles {
            assert!(error.contains(needle), "{what}: {error}");
        }
        let discs = setup.discs().await?;
        assert_none_writing(&discs);
        assert_eq!(
            discs.iter().filter(|d| d.kind == CopyKind::Disk).count(),
            0,
            "{what}: {discs:#?}"
        );
        // The optical copy may have been made while the disk copy failed; it is either
        // verified or was never started, never half-written.
        assert!(count(&discs, CopyKind::Optical, DiscStatus::Verified) <= 1);
        assert!(job.copies_verified < job.copies_expected);
        // Nothing was created at the configured path.
        let hdd = setup.path().join("hdd");
        assert!(!hdd.is_dir(), "{what}: {} was created", hdd.display());
        assert_eq!(
            setup.detail(number).await?.project.status,
            ProjectStatus::Failed,
            "{what}"
        );
    }
    Ok(())
}

/* ------------------------------------------------------------------ 9: too many discs */

#[tokio::test]
async fn a_package_over_the_disc_limit_fails_before_burning() -> Result<()> {
    let setup = Setup::start(
        "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 4194304\n\
         [copies]\noptical = 1\ndisk = 1\n[archive]\nmax_discs_per_package = 2\n",
    )
    .await?;
    let number = "LKGC-2026-0318";
    // Three 2 MiB recordings: no two fit one 4 MiB disc, so the set needs three discs.
    setup
        .project_with_files(
            number,
            &[
                ("评标录像/1.mp4", 2 * MIB),
                ("评标录像/2.mp4", 2 * MIB),
                ("评标录像/3.mp4", 2 * MIB),
            ],
        )
        .await?;
    let job = setup.backup(number).await?;
    let job = setup.finished(job.id, Duration::from_secs(120)).await?;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("max_discs_per_package") && error.contains("2 张"),
        "{error}"
    );
    assert_eq!(job.copies_verified, 0);
    assert!(setup.discs().await?.is_empty());
    let images: Vec<PathBuf> = files_under(&setup.data().join("drives"));
    assert!(images.is_empty(), "{images:?}");
    assert!(files_under(&setup.data().join("disk-copies")).is_empty());
    assert_eq!(
        setup.detail(number).await?.project.status,
        ProjectStatus::Failed
    );
    Ok(())
}
