//! Accounts, roles, tokens and the audit log against a real daemon: the role × route matrix walked
//! from the permission table, login lock-out and rate limiting, the first admin's one-time
//! password, session expiry, CSRF, revoked tokens, a tampered audit chain named by
//! `witness audit verify`, bad input on every upload and JSON route, and logs free of secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use witness_controller::auth::{accounts, permission, Access, Permission, PERMISSIONS};
use witness_controller::cli::encode;
use witness_controller::clock::{Clock, SystemClock};
use witness_controller::error::ErrorKind;
use witness_schemas::auth::Role;
use witness_tests::daemon::{witness_bin, Daemon};

/// A password every test user gets (10+ characters, not all digits).
const PASSWORD: &str = "Witness-测试-2026!";
/// A resident ID number (made up, valid form) that must never reach the log in full.
const ID_NUMBER: &str = "41022519800101123X";

/// One answer, read completely.
#[derive(Debug)]
struct Answer {
    status: u16,
    set_cookie: Vec<String>,
    content_type: String,
    text: String,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Result<Answer> {
        let status = response.status().as_u16();
        let headers = response.headers();
        let set_cookie = headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await?;
        Ok(Answer {
            status,
            set_cookie,
            content_type,
            text,
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn kind(&self) -> String {
        self.json()["kind"].as_str().unwrap_or("").to_string()
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_string()
    }

    /// Asserts the status; returns the answer for further checks.
    fn expect(&self, what: &str, status: u16) -> &Answer {
        assert_eq!(
            self.status, status,
            "{what}: HTTP status (body {})",
            self.text
        );
        self
    }

    /// Asserts an error answer: the status, an `ApiError` JSON body of that kind with a message.
    fn expect_error(&self, what: &str, status: u16, kind: &str) -> &Answer {
        self.expect(what, status);
        assert!(
            self.content_type.starts_with("application/json"),
            "{what}: content type {:?} (body {})",
            self.content_type,
            self.text
        );
        assert_eq!(self.kind(), kind, "{what}: kind (body {})", self.text);
        assert!(
            !self.message().is_empty(),
            "{what}: an error without a message: {}",
            self.text
        );
        self
    }
}

/// A logged-in browser: the cookie value and the CSRF token the login answered with.
#[derive(Debug, Clone)]
struct Session {
    cookie: String,
    csrf: String,
    set_cookie: String,
    must_change_password: bool,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Caller<'a> {
    Nobody,
    Token(&'a str),
    /// The session cookie with its CSRF token (on every method; the guard ignores it on GET).
    Session(&'a Session),
    /// The session cookie with whatever CSRF header is given (`None`: no header at all).
    Cookie(&'a str, Option<&'a str>),
}

/// What a request carries.
enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

/// A daemon in its own temporary folder, the first admin's token, and the secrets the test has
/// seen (checked against the log at the end).
struct Env {
    root: tempfile::TempDir,
    daemon: Daemon,
    admin: String,
    http: reqwest::Client,
    secrets: Vec<String>,
}

impl Env {
    async fn start(config: Option<&str>) -> Result<Env> {
        let root = tempfile::tempdir()?;
        let config_path = match config {
            Some(text) => {
                let path = root.path().join("witness.toml");
                std::fs::write(&path, text)?;
                Some(path)
            }
            None => None,
        };
        let daemon = Daemon::start(&root.path().join("data"), config_path.as_deref()).await?;
        let admin = daemon
            .admin_token()
            .context("the daemon wrote no admin token")?;
        let password = daemon
            .admin_password()
            .context("the daemon wrote no admin password")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Env {
            root,
            daemon,
            admin: admin.clone(),
            http,
            secrets: vec![admin, password],
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.daemon.url)
    }

    async fn send_with(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        caller: Caller<'_>,
        body: Body,
    ) -> Result<Answer> {
        let mut request = client.request(method.parse()?, self.url(path));
        request = match caller {
            Caller::Nobody => request,
            Caller::Token(token) => request.bearer_auth(token),
            Caller::Session(session) => request
                .header(
                    reqwest::header::COOKIE,
                    format!("witness_session={}", session.cookie),
                )
                .header("X-CSRF-Token", &session.csrf),
            Caller::Cookie(cookie, csrf) => {
                let request =
                    request.header(reqwest::header::COOKIE, format!("witness_session={cookie}"));
                match csrf {
                    Some(csrf) => request.header("X-CSRF-Token", csrf),
                    None => request,
                }
            }
        };
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(content_type, bytes) => request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes),
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        Answer::read(response).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        caller: Caller<'_>,
        body: Body,
    ) -> Result<Answer> {
        self.send_with(&self.http, method, path, caller, body).await
    }

    /// GET as the admin; the answer must be 200 JSON.
    async fn get(&self, path: &str) -> Result<Value> {
        let answer = self
            .send("GET", path, Caller::Token(&self.admin), Body::None)
            .await?;
        ensure!(
            answer.status == 200,
            "GET {path}: HTTP {}: {}",
            answer.status,
            answer.text
        );
        Ok(answer.json())
    }

    async fn create_project(&self, number: &str) -> Result<()> {
        let answer = self
            .send(
                "POST",
                "/api/projects",
                Caller::Token(&self.admin),
                Body::Json(project_body(number)),
            )
            .await?;
        ensure!(
            answer.status == 201,
            "creating {number}: HTTP {}: {}",
            answer.status,
            answer.text
        );
        Ok(())
    }

    async fn create_token(&mut self, name: &str, role: Role) -> Result<(i64, String)> {
        let body = json!({ "name": name, "role": role });
        let answer = self
            .send(
                "POST",
                "/api/tokens",
                Caller::Token(&self.admin),
                Body::Json(body),
            )
            .await?;
        ensure!(
            answer.status == 201,
            "creating token {name}: HTTP {}: {}",
            answer.status,
            answer.text
        );
        let value = answer.json();
        let secret = value["secret"].as_str().context("no secret")?.to_string();
        self.secrets.push(secret.clone());
        Ok((value["token"]["id"].as_i64().context("no id")?, secret))
    }

    async fn create_user(&self, username: &str, role: Role) -> Result<()> {
        let body = json!({ "username": username, "role": role, "password": PASSWORD });
        let answer = self
            .send(
                "POST",
                "/api/users",
                Caller::Token(&self.admin),
                Body::Json(body),
            )
            .await?;
        ensure!(
            answer.status == 201,
            "creating user {username}: HTTP {}: {}",
            answer.status,
            answer.text
        );
        Ok(())
    }

    async fn login_from(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> Result<Answer> {
        let body = json!({ "username": username, "password": password });
        self.send_with(
            client,
            "POST",
            "/api/login",
            Caller::Nobody,
            Body::Json(body),
        )
        .await
    }

    async fn login(&self, username: &str, password: &str) -> Result<Answer> {
        self.login_from(&self.http, username, password).await
    }

    /// Logs in and returns the session; the login must succeed.
    async fn session(&mut self, username: &str, password: &str) -> Result<Session> {
        let answer = self.login(username, password).await?;
        ensure!(
            answer.status == 200,
            "login {username}: HTTP {}: {}",
            answer.status,
            answer.text
        );
        let set_cookie = answer
            .set_cookie
            .iter()
            .find(|c| c.starts_with("witness_session="))
            .context("the login set no session cookie")?
            .clone();
        let cookie = set_cookie["witness_session=".len()..]
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        let value = answer.json();
        let csrf = value["csrf_token"]
            .as_str()
            .context("the login answered no CSRF token")?
            .to_string();
        self.secrets.push(cookie.clone());
        self.secrets.push(csrf.clone());
        let must_change_password = value["must_change_password"].as_bool().unwrap_or(false);
        Ok(Session {
            cookie,
            csrf,
            set_cookie,
            must_change_password,
        })
    }

    /// The audit log as the admin sees it, newest first.
    async fn audit(&self, query: &str) -> Result<Vec<Value>> {
        let value = self.get(&format!("/api/audit{query}")).await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// What the catalog holds, as the API shows it; compared before and after refused requests.
    async fn snapshot(&self) -> Result<Value> {
        let projects = self.get("/api/projects").await?;
        let mut details = Vec::new();
        for project in projects.as_array().cloned().unwrap_or_default() {
            let number = project["number"].as_str().unwrap_or_default();
            details.push(
                self.get(&format!("/api/projects/{}", encode(number)))
                    .await?,
            );
        }
        let mut tokens = self.get("/api/tokens").await?;
        for token in tokens.as_array_mut().into_iter().flatten() {
            // The admin's own token is used by every call of this snapshot.
            token.as_object_mut().map(|t| t.remove("last_used_at"));
        }
        Ok(json!({
            "projects": projects,
            "details": details,
            "users": self.get("/api/users").await?,
            "tokens": tokens,
            "jobs": self.get("/api/jobs").await?,
            "discs": self.get("/api/discs").await?,
        }))
    }

    /// Sends a request line exactly as given (reqwest would resolve `..` segments itself).
    async fn raw(&self, method: &str, target: &str, body: &[u8]) -> Result<Answer> {
        let host = self.daemon.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.admin,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .context("no HTTP head in the answer")?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status")?;
        let content_type = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        Ok(Answer {
            status,
            set_cookie: Vec::new(),
            content_type,
            text: body.to_string(),
        })
    }

    /// The daemon's log holds no secret the test has seen, no session cookie and no full ID number.
    fn assert_log_clean(&self) {
        let log = self.daemon.log_text();
        assert!(!log.is_empty(), "the daemon wrote no log at all");
        for secret in &self.secrets {
            assert!(
                !log.contains(secret.as_str()),
                "the daemon log contains a secret ({}…)",
                &secret[..6.min(secret.len())]
            );
        }
        if let Some(id) = full_id_numbers(&log).first() {
            panic!("the daemon log contains a full ID number {id}:\n{log}");
        }
    }
}

/// Every 18-character resident ID number (17 digits and a digit or X) standing alone in `text`.
fn full_id_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 18 <= chars.len() {
        let before_ok = i == 0 || !chars[i - 1].is_ascii_digit();
        let body_ok = chars[i..i + 17].iter().all(char::is_ascii_digit);
        let last_ok =
            chars[i + 17].is_ascii_digit() || chars[i + 17] == 'X' || chars[i + 17] == 'x';
        let after_ok = !matches!(chars.get(i + 18), Some(c) if c.is_ascii_digit());
        if before_ok && body_ok && last_ok && after_ok {
            found.push(chars[i..i + 18].iter().collect());
            i += 18;
        } else {
            i += 1;
        }
    }
    found
}

fn project_body(number: &str) -> Value {
    json!({
        "number": number,
        "name": "兰考县城区道路改造工程施工招标",
        "category": "construction",
        "opening": "2026-03-18T09:30:00+08:00",
    })
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The router's pattern of an OpenAPI path: OpenAPI writes `{rel_path}` where the router has the
/// wildcard `{*rel_path}`.
fn table_path(openapi_path: &str) -> Vec<String> {
    let mut candidates = vec![openapi_path.to_string()];
    if let Some(start) = openapi_path.rfind('{') {
        candidates.push(format!(
            "{}{{*{}",
            &openapi_path[..start],
            &openapi_path[start + 1..]
        ));
    }
    candidates
}

fn is_catch_all(p: &Permission) -> bool {
    p.path.contains("{*rest}")
}

// ---------------------------------------------------------------------------------------------
// 1. The role × route matrix

/// A concrete URL for a route pattern.
fn concrete(p: &Permission, number: &str, upload_number: &str) -> String {
    let number = if p.path.contains("/files/") {
        upload_number
    } else {
        number
    };
    let mut out = String::new();
    for segment in p.path.split('/').skip(1) {
        out.push('/');
        out.push_str(match segment {
            "{number}" => number,
            "{id}" => "999999",
            "{*rel_path}" => "t.txt",
            s if s.starts_with('{') => "report.html",
            s => s,
        });
    }
    out
}

/// A plausible body for a route; `n` makes names unique.
fn plausible_body(p: &Permission, n: usize) -> Body {
    match (p.method, p.path) {
        ("PUT", _) => Body::Raw("application/octet-stream", b"hello".to_vec()),
        ("POST", "/api/login") => {
            Body::Json(json!({ "username": "nobody", "password": "wrong-password" }))
        }
        // Same old and new password: refused with 400 after the guard, whoever asks.
        ("POST", "/api/account/password") => {
            Body::Json(json!({ "old_password": PASSWORD, "new_password": PASSWORD }))
        }
        ("POST", "/api/projects") => Body::Json(project_body(&format!("MX-{n}"))),
        ("POST", "/api/projects/{number}/sources") => Body::Json(json!({ "paths": [] })),
        ("POST", "/api/users") => Body::Json(
            json!({ "username": format!("mx-user-{n}"), "role": "auditor", "password": PASSWORD }),
        ),
        ("POST", "/api/tokens") => {
            Body::Json(json!({ "name": format!("mx-token-{n}"), "role": "auditor" }))
        }
        ("POST", "/api/logout") | ("POST", "/api/projects/{number}/backup") => Body::None,
        ("POST", _) => Body::Json(json!({})),
        _ => Body::None,
    }
}

/// Checks one answer against the table.
fn check_access(p: &Permission, role: Role, via: &str, answer: &Answer) {
    let what = format!("{} {} as {} ({via})", p.method, p.path, role.as_str());
    assert!(
        answer.status < 500,
        "{what}: HTTP {}: {}",
        answer.status,
        answer.text
    );
    if p.access.allows(role) {
        assert!(
            answer.status != 401 && answer.status != 403,
            "{what}: the table allows it, the daemon refused: HTTP {}: {}",
            answer.status,
            answer.text
        );
    } else {
        answer.expect_error(&what, 403, "permission_denied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_table_says() -> Result<()> {
    let started = Instant::now();
    let mut env = Env::start(None).await?;

    // The table must cover every route the OpenAPI document declares, and the other way round.
    let doc = env
        .send("GET", "/api/openapi.json", Caller::Nobody, Body::None)
        .await?;
    doc.expect("the OpenAPI document without credentials", 200);
    let doc = doc.json();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"]
        .as_object()
        .context("no paths in the OpenAPI document")?
    {
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            let method = method.to_ascii_uppercase();
            let found = table_path(path)
                .into_iter()
                .find(|candidate| permission(&method, candidate).is_some());
            let Some(found) = found else {
                panic!("{method} {path} is in the OpenAPI document but not in auth::PERMISSIONS");
            };
            documented.insert((method, found));
        }
    }
    for p in PERMISSIONS
        .iter()
        .filter(|p| !is_catch_all(p) && p.path != "/api/openapi.json")
    {
        assert!(
            documented.contains(&(p.method.to_string(), p.path.to_string())),
            "{} {} is in auth::PERMISSIONS but not in the OpenAPI document",
            p.method,
            p.path
        );
    }

    env.create_project("MATRIX-1").await?;
    env.create_project("MATRIX-2").await?;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let (_, secret) = env
            .create_token(&format!("matrix-{}", role.as_str()), role)
            .await?;
        tokens.push((role, secret));
    }
    let mut sessions = BTreeMap::new();
    for role in Role::ALL.into_iter().filter(|r| !r.is_machine()) {
        let username = format!("matrix-{}", role.as_str());
        env.create_user(&username, role).await?;
        sessions.insert(role, env.session(&username, PASSWORD).await?);
    }

    let mut n = 0;
    let (mut routes, mut requests) = (0, 0);
    for p in PERMISSIONS.iter().filter(|p| !is_catch_all(p)) {
        let path = concrete(p, "MATRIX-1", "MATRIX-2");
        routes += 1;
        if p.access == Access::Public {
            // Public routes answer without credentials and never with 401/403 from the guard: the
            // OpenAPI document with 200, a login with a malformed body with 400.
            let body = if p.method == "POST" {
                Body::Raw("application/json", b"{".to_vec())
            } else {
                Body::None
            };
            let answer = env.send(p.method, &path, Caller::Nobody, body).await?;
            requests += 1;
            let expected = if p.method == "GET" { 200 } else { 400 };
            answer.expect(&format!("public {} {}", p.method, p.path), expected);
            continue;
        }
        let answer = env
            .send(p.method, &path, Caller::Nobody, plausible_body(p, n))
            .await?;
        answer.expect_error(
            &format!("{} {} without credentials", p.method, p.path),
            401,
            "unauthenticated",
        );
        let bogus = Caller::Token("wit_000000000000000000000000000000000000000000000000");
        let answer = env
            .send(p.method, &path, bogus, plausible_body(p, n))
            .await?;
        answer.expect_error(
            &format!("{} {} with an unknown token", p.method, p.path),
            401,
            "unauthenticated",
        );
        requests += 2;
        for (role, token) in &tokens {
            n += 1;
            let answer = env
                .send(p.method, &path, Caller::Token(token), plausible_body(p, n))
                .await?;
            check_access(p, *role, "token", &answer);
            requests += 1;
        }
        let roles: Vec<Role> = sessions.keys().copied().collect();
        for role in roles {
            n += 1;
            let session = sessions[&role].clone();
            let answer = env
                .send(
                    p.method,
                    &path,
                    Caller::Session(&session),
                    plausible_body(p, n),
                )
                .await?;
            check_access(p, role, "session", &answer);
            requests += 1;
            if p.path == "/api/logout" && answer.status == 204 {
                // That ended the session; the later routes need a new one.
                let username = format!("matrix-{}", role.as_str());
                sessions.insert(role, env.session(&username, PASSWORD).await?);
            }
        }
    }
    let callers = tokens.len() + sessions.len() + 2;
    println!(
        "role × route matrix: {routes} routes (of {} table entries, catch-alls excluded), {} roles by token + {} by session + 2 without valid credentials = {requests} requests in {:.1} s",
        PERMISSIONS.len(),
        tokens.len(),
        sessions.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        requests >= (routes - 2) * callers,
        "fewer requests than routes × callers"
    );
    env.assert_log_clean();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Login: wrong password, lock-out, rate limit, the first admin's one-time password

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_locks_out_rate_limits_and_makes_the_first_admin_change_the_password() -> Result<()> {
    let mut env = Env::start(None).await?;
    let credential_file = env.daemon.data.join(accounts::CREDENTIAL_FILE);
    let one_time_password = env
        .daemon
        .admin_password()
        .context("no one-time password")?;
    let mode = std::fs::metadata(&credential_file)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the credential file's mode");
    assert!(
        env.daemon.log_text().contains(accounts::CREDENTIAL_FILE),
        "the log does not say where the first admin's credentials are"
    );
    // The daemon's admin token lives in the credential file, which goes away below.
    let (_, own_admin) = env.create_token("login-test-admin", Role::Admin).await?;
    env.admin = own_admin;
    env.create_user("zhangsan", Role::Archivist).await?;
    env.create_user("lisi", Role::Auditor).await?;

    let wrong = env.login("zhangsan", "wrong-password-1").await?;
    wrong.expect_error("a wrong password", 401, "unauthenticated");
    let missing = env.login("nobody-here", "wrong-password-1").await?;
    missing.expect_error("a missing user", 401, "unauthenticated");
    assert_eq!(
        missing.text, wrong.text,
        "a missing user must get the same answer as a wrong password"
    );
    let id_user = env.login(ID_NUMBER, "wrong-password-1").await?;
    id_user.expect_error("an ID number as the username", 401, "unauthenticated");
    env.login("zhangsan", PASSWORD)
        .await?
        .expect("the right password", 200);

    // Five wrong in a row lock the account; the right password then gets 403 naming the lock.
    for attempt in 1..=5 {
        let answer = env
            .login("zhangsan", &format!("wrong-password-{attempt}"))
            .await?;
        if attempt < 5 {
            answer.expect_error(
                &format!("wrong password #{attempt}"),
                401,
                "unauthenticated",
            );
        } else {
            answer.expect_error("the fifth wrong password", 403, "permission_denied");
        }
    }
    let locked = env.login("zhangsan", PASSWORD).await?;
    locked.expect_error(
        "the right password on a locked account",
        403,
        "permission_denied",
    );
    assert!(
        locked.message().contains("锁定"),
        "the refusal does not name the lock: {}",
        locked.message()
    );
    let users = env.get("/api/users").await?;
    let zhangsan = users
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["username"] == "zhangsan")
        .context("zhangsan")?;
    assert!(
        zhangsan["locked_until"].is_string(),
        "zhangsan is not shown as locked: {zhangsan}"
    );
    env.login("lisi", PASSWORD)
        .await?
        .expect("another account is not locked", 200);
    let refused: Vec<Value> = env.audit("?actor=zhangsan").await?;
    assert!(
        refused
            .iter()
            .filter(|e| e["result"].as_str().unwrap_or("").starts_with("401"))
            .count()
            >= 5
            && refused
                .iter()
                .any(|e| e["result"].as_str().unwrap_or("").starts_with("403")),
        "the failed logins are not in the audit log: {refused:?}"
    );

    // The first admin: only the session, the password change and logout until the one-time
    // password is replaced.
    let admin = env.session("admin", &one_time_password).await?;
    assert!(
        admin.must_change_password,
        "the first admin is not asked to change the password"
    );
    let gated = env
        .send("GET", "/api/projects", Caller::Session(&admin), Body::None)
        .await?;
    gated.expect_error(
        "projects before the password change",
        403,
        "permission_denied",
    );
    assert!(
        gated.message().contains("密码"),
        "the refusal does not say why: {}",
        gated.message()
    );
    env.send(
        "POST",
        "/api/projects",
        Caller::Session(&admin),
        Body::Json(project_body("GATED-1")),
    )
    .await?
    .expect_error(
        "creating a project before the password change",
        403,
        "permission_denied",
    );
    env.send("GET", "/api/users", Caller::Session(&admin), Body::None)
        .await?
        .expect_error("users before the password change", 403, "permission_denied");
    let info = env
        .send("GET", "/api/session", Caller::Session(&admin), Body::None)
        .await?;
    info.expect("the session before the password change", 200);
    assert_eq!(info.json()["must_change_password"], true);
    let weak = json!({ "old_password": one_time_password, "new_password": "1234567890" });
    env.send(
        "POST",
        "/api/account/password",
        Caller::Session(&admin),
        Body::Json(weak),
    )
    .await?
    .expect_error("an all-digit new password", 400, "invalid_argument");
    let new_password = "Neues-Passwort-见证-2026";
    env.secrets.push(new_password.to_string());
    let change = json!({ "old_password": one_time_password, "new_password": new_password });
    env.send(
        "POST",
        "/api/account/password",
        Caller::Cookie(&admin.cookie, None),
        Body::Json(change.clone()),
    )
    .await?
    .expect_error(
        "a password change without the CSRF token",
        403,
        "permission_denied",
    );
    assert!(
        credential_file.exists(),
        "the credential file went away before the password was changed"
    );
    env.send(
        "POST",
        "/api/account/password",
        Caller::Session(&admin),
        Body::Json(change),
    )
    .await?
    .expect("the password change", 204);
    assert!(
        !credential_file.exists(),
        "the one-time credential file is still there after the change"
    );
    env.send("GET", "/api/projects", Caller::Session(&admin), Body::None)
        .await?
        .expect("projects after the password change", 200);
    env.login("admin", &one_time_password).await?.expect_error(
        "the old one-time password",
        401,
        "unauthenticated",
    );
    let again = env.session("admin", new_password).await?;
    assert!(
        !again.must_change_password,
        "still asked to change the password after the change"
    );

    // Rate limit: over 20 attempts a minute from one address. The client binds to 127.0.0.2 so
    // the attempts above (from 127.0.0.1) do not count.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()?;
    env.create_user("wangwu", Role::Operator).await?;
    let (mut wrong_times, mut missing_times) = (Vec::new(), Vec::new());
    for attempt in 1..=accounts::LOGINS_PER_MINUTE {
        // Four wrong passwords (one short of the lock) and missing users, timed: a missing user
        // must cost the same argon2 work as a wrong password.
        let (user, times) = if attempt <= 4 {
            ("wangwu", &mut wrong_times)
        } else {
            ("no-such-user", &mut missing_times)
        };
        let clock = Instant::now();
        let answer = env.login_from(&other, user, "wrong-password-x").await?;
        times.push(clock.elapsed());
        answer.expect_error(
            &format!("login attempt #{attempt} from 127.0.0.2"),
            401,
            "unauthenticated",
        );
    }
    let limited = env.login_from(&other, "wangwu", PASSWORD).await?;
    limited.expect_error("the 21st attempt in a minute", 429, "rate_limited");
    env.login("wangwu", PASSWORD)
        .await?
        .expect("a login from another address", 200);
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (wrong_median, missing_median) = (median(&mut wrong_times), median(&mut missing_times));
    println!(
        "login: wrong password median {:.1} ms, missing user median {:.1} ms; lock-out after {} failures; 429 after {} attempts/min",
        wrong_median.as_secs_f64() * 1e3,
        missing_median.as_secs_f64() * 1e3,
        accounts::MAX_FAILED_LOGINS,
        accounts::LOGINS_PER_MINUTE
    );
    assert!(
        missing_median * 4 >= wrong_median,
        "a missing user answers much faster ({missing_median:?}) than a wrong password ({wrong_median:?}): usernames can be probed"
    );
    let limited_audit = env.audit("?action=login").await?;
    assert!(
        limited_audit
            .iter()
            .any(|e| e["result"].as_str().unwrap_or("").starts_with("429")
                && e["source"] == "127.0.0.2"),
        "the rate-limited attempt is not in the audit log"
    );
    env.assert_log_clean();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Session expiry and the lock-out's end (unit level, on a catalog of its own)

#[tokio::test]
async fn sessions_expire_after_idle_time_and_the_absolute_limit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pool = witness_controller::db::open(dir.path()).await?;
    let t0 = SystemClock.now();
    let minute = accounts::SESSION_IDLE / 30;
    accounts::create_user(&pool, "lisi", Role::Auditor, PASSWORD, t0).await?;

    // Idle: 29 minutes are fine and count as activity; 31 minutes after the last use are not.
    let login = accounts::login(&pool, "lisi", PASSWORD, t0).await?;
    accounts::session(&pool, &login.session_secret, t0 + minute * 29).await?;
    accounts::session(&pool, &login.session_secret, t0 + minute * 58).await?;
    let expired = accounts::session(&pool, &login.session_secret, t0 + minute * 89)
        .await
        .expect_err("31 idle minutes");
    assert_eq!(expired.kind, ErrorKind::Unauthenticated);
    assert!(
        expired.message.contains("会话已过期"),
        "{}",
        expired.message
    );
    // The expired session is gone: even a time inside its old window no longer finds it.
    let gone = accounts::session(&pool, &login.session_secret, t0 + minute * 60)
        .await
        .expect_err("deleted session");
    assert_eq!(gone.kind, ErrorKind::Unauthenticated);

    // Absolute: used every 20 minutes, the session still ends 12 hours after the login.
    let login = accounts::login(&pool, "lisi", PASSWORD, t0).await?;
    let limit = accounts::SESSION_MAX.whole_minutes() as i32;
    let mut at = 20;
    while at < limit {
        accounts::session(&pool, &login.session_secret, t0 + minute * at).await?;
        at += 20;
    }
    let expired = accounts::session(&pool, &login.session_secret, t0 + accounts::SESSION_MAX)
        .await
        .expect_err("12 hours");
    assert_eq!(expired.kind, ErrorKind::Unauthenticated);
    assert!(
        expired.message.contains("会话已过期"),
        "{}",
        expired.message
    );

    // The lock-out lasts 15 minutes from the fifth failure.
    for attempt in 1..=accounts::MAX_FAILED_LOGINS {
        let failed = accounts::login(&pool, "lisi", "wrong-password", t0 + minute)
            .await
            .err()
            .context("a wrong password")?;
        let expected = if attempt < accounts::MAX_FAILED_LOGINS {
            ErrorKind::Unauthenticated
        } else {
            ErrorKind::PermissionDenied
        };
        assert_eq!(
            failed.kind, expected,
            "attempt {attempt}: {}",
            failed.message
        );
    }
    let locked = accounts::login(&pool, "lisi", PASSWORD, t0 + minute * 15)
        .await
        .err()
        .context("locked")?;
    assert_eq!(locked.kind, ErrorKind::PermissionDenied);
    assert!(locked.message.contains("锁定"), "{}", locked.message);
    accounts::login(
        &pool,
        "lisi",
        PASSWORD,
        t0 + minute * 16 + accounts::SESSION_IDLE / 1800,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. CSRF

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_need_their_own_csrf_token() -> Result<()> {
    let mut env = Env::start(None).await?;
    env.create_user("zhaoliu", Role::Archivist).await?;
    let session = env.session("zhaoliu", PASSWORD).await?;
    let attributes: Vec<String> = session
        .set_cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(
        attributes.iter().any(|a| a == "httponly"),
        "no HttpOnly: {}",
        session.set_cookie
    );
    assert!(
        attributes.iter().any(|a| a == "samesite=strict"),
        "no SameSite=Strict: {}",
        session.set_cookie
    );
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "Secure on plain HTTP would lose the cookie: {}",
        session.set_cookie
    );
    let before = env.snapshot().await?;

    let create = |number: &str| Body::Json(project_body(number));
    env.send(
        "GET",
        "/api/projects",
        Caller::Cookie(&session.cookie, None),
        Body::None,
    )
    .await?
    .expect("a GET needs no CSRF token", 200);
    let missing = env
        .send(
            "POST",
            "/api/projects",
            Caller::Cookie(&session.cookie, None),
            create("CSRF-1"),
        )
        .await?;
    missing.expect_error("POST without X-CSRF-Token", 403, "permission_denied");
    assert!(missing.message().contains("CSRF"), "{}", missing.message());
    let forged = "0".repeat(64);
    env.send(
        "POST",
        "/api/projects",
        Caller::Cookie(&session.cookie, Some(&forged)),
        create("CSRF-1"),
    )
    .await?
    .expect_error("POST with a forged X-CSRF-Token", 403, "permission_denied");
    let other = env.session("zhaoliu", PASSWORD).await?;
    env.send(
        "POST",
        "/api/projects",
        Caller::Cookie(&session.cookie, Some(&other.csrf)),
        create("CSRF-1"),
    )
    .await?
    .expect_error(
        "POST with another session's CSRF token",
        403,
        "permission_denied",
    );
    assert_eq!(
        env.snapshot().await?,
        before,
        "a refused POST changed the catalog"
    );
    let refusals = env.audit("?actor=zhaoliu").await?;
    assert!(
        refusals
            .iter()
            .filter(|e| e["result"].as_str().unwrap_or("").contains("CSRF"))
            .count()
            >= 3,
        "the CSRF refusals are not in the audit log: {refusals:?}"
    );

    env.send(
        "POST",
        "/api/projects",
        Caller::Session(&session),
        create("CSRF-1"),
    )
    .await?
    .expect("POST with the session's CSRF token", 201);
    let logout = env
        .send("POST", "/api/logout", Caller::Session(&session), Body::None)
        .await?;
    logout.expect("logout", 204);
    assert!(
        logout
            .set_cookie
            .iter()
            .any(|c| c.starts_with("witness_session=;") && c.contains("Max-Age=0")),
        "logout does not clear the cookie: {:?}",
        logout.set_cookie
    );
    let after_logout = env.snapshot().await?;
    env.send(
        "POST",
        "/api/projects",
        Caller::Session(&session),
        create("CSRF-2"),
    )
    .await?
    .expect_error(
        "the logged-out session's cookie and CSRF token replayed",
        401,
        "unauthenticated",
    );
    env.send("GET", "/api/session", Caller::Session(&session), Body::None)
        .await?
        .expect_error("the logged-out session", 401, "unauthenticated");
    assert_eq!(
        env.snapshot().await?,
        after_logout,
        "a replayed request changed the catalog"
    );
    env.send(
        "POST",
        "/api/projects",
        Caller::Session(&other),
        create("CSRF-2"),
    )
    .await?
    .expect("the other session still works", 201);
    env.assert_log_clean();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Tokens: revoked, and one role calling another role's API

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_and_foreign_roles_are_refused_and_audited() -> Result<()> {
    let mut env = Env::start(None).await?;
    let (archivist_id, archivist) = env.create_token("ci-archivist", Role::Archivist).await?;
    let (_, auditor) = env.create_token("auditor-wang", Role::Auditor).await?;
    let listed = env.get("/api/tokens").await?;
    for secret in &env.secrets {
        assert!(
            !listed.to_string().contains(secret.as_str()),
            "GET /api/tokens shows a token secret"
        );
    }

    env.send(
        "POST",
        "/api/projects",
        Caller::Token(&archivist),
        Body::Json(project_body("TOK-1")),
    )
    .await?
    .expect("the archivist token before revocation", 201);
    let revoked = env
        .send(
            "DELETE",
            &format!("/api/tokens/{archivist_id}"),
            Caller::Token(&env.admin),
            Body::None,
        )
        .await?;
    revoked.expect("revoking", 200);
    assert!(revoked.json()["revoked_at"].is_string(), "{}", revoked.text);
    let before = env.snapshot().await?;
    let refused = env
        .send(
            "POST",
            "/api/projects",
            Caller::Token(&archivist),
            Body::Json(project_body("TOK-2")),
        )
        .await?;
    refused.expect_error("a revoked token", 401, "unauthenticated");
    assert!(
        refused.message().contains("撤销") && refused.message().contains("revoked"),
        "the refusal does not say the token is revoked: {}",
        refused.message()
    );
    env.send(
        "GET",
        "/api/projects",
        Caller::Token(&archivist),
        Body::None,
    )
    .await?
    .expect_error("a revoked token reading", 401, "unauthenticated");

    let foreign = env
        .send(
            "POST",
            "/api/projects",
            Caller::Token(&auditor),
            Body::Json(project_body("TOK-3")),
        )
        .await?;
    foreign.expect_error("an auditor creating a project", 403, "permission_denied");
    env.send(
        "POST",
        "/api/tokens",
        Caller::Token(&auditor),
        Body::Json(json!({ "name": "escalate", "role": "admin" })),
    )
    .await?
    .expect_error(
        "an auditor creating an admin token",
        403,
        "permission_denied",
    );
    env.send("GET", "/api/projects", Caller::Token(&auditor), Body::None)
        .await?
        .expect("an auditor reading", 200);
    assert_eq!(
        env.snapshot().await?,
        before,
        "a refused request changed the catalog"
    );

    // The auditor may read the audit log, and it shows its own refusals by token name.
    let entries = env
        .send(
            "GET",
            "/api/audit?actor=token:auditor-wang",
            Caller::Token(&auditor),
            Body::None,
        )
        .await?;
    entries.expect("the auditor reading the audit log", 200);
    let entries = entries.json();
    let refusal = entries
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["action"] == "POST /api/projects")
        .with_context(|| format!("the refusal is not in the audit log: {entries}"))?;
    assert_eq!(refusal["actor"], "token:auditor-wang");
    assert_eq!(refusal["role"], "auditor");
    assert!(
        refusal["result"].as_str().unwrap_or("").starts_with("403"),
        "{refusal}"
    );
    assert_eq!(refusal["source"], "127.0.0.1");
    let revoked_use = env.audit("?actor=anonymous").await?;
    assert!(
        revoked_use
            .iter()
            .any(|e| e["result"].as_str().unwrap_or("").contains("revoked")),
        "the use of the revoked token is not in the audit log"
    );
    env.assert_log_clean();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. The audit chain: an edited or deleted record is named by `witness audit verify`

fn audit_verify(data: &Path) -> (bool, String) {
    let output = Command::new(witness_bin())
        .args(["audit", "verify", "--data"])
        .arg(data)
        .output()
        .expect("running witness audit verify");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_first_tampered_record() -> Result<()> {
    let mut env = Env::start(None).await?;
    let (_, auditor) = env.create_token("auditor-li", Role::Auditor).await?;
    env.create_project("AUD-1").await?;
    env.create_project("AUD-2").await?;
    env.send(
        "POST",
        "/api/projects",
        Caller::Token(&auditor),
        Body::Json(project_body("AUD-3")),
    )
    .await?
    .expect("a refused call", 403);
    env.send(
        "PUT",
        "/api/projects/AUD-1/files/a.txt",
        Caller::Token(&env.admin),
        Body::Raw("text/plain", b"a".to_vec()),
    )
    .await?
    .expect("an upload", 201);
    env.create_user("chenqi", Role::Archivist).await?;
    let verified = env.get("/api/audit/verify").await?;
    assert!(verified["first_broken"].is_null(), "{verified}");
    let records = verified["records"].as_i64().unwrap_or(0);
    assert!(records >= 6, "only {records} audit records");
    env.assert_log_clean();
    let data = env.daemon.data.clone();
    env.daemon.kill9();

    let (ok, text) = audit_verify(&data);
    assert!(
        ok && text.contains("校验通过"),
        "an untouched log does not verify:\n{text}"
    );

    let pool = witness_controller::db::open(&data).await?;
    let ids: Vec<(i64, String)> = sqlx::query_as("SELECT id, actor FROM audit_log ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let (target, actor) = ids[ids.len() / 2].clone();
    // The triggers keep the table append-only for plain SQL.
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = ?")
        .bind(target)
        .execute(&pool)
        .await;
    assert!(
        update.is_err_and(|e| e.to_string().contains("append-only")),
        "an UPDATE of the audit log went through"
    );
    let delete = sqlx::query("DELETE FROM audit_log WHERE id = ?")
        .bind(target)
        .execute(&pool)
        .await;
    assert!(
        delete.is_err_and(|e| e.to_string().contains("append-only")),
        "a DELETE from the audit log went through"
    );

    // Someone who drops the trigger can edit a record, but the chain names it.
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&pool)
        .await?;
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = ?")
        .bind(target)
        .execute(&pool)
        .await?;
    let (ok, text) = audit_verify(&data);
    assert!(!ok, "verify passed over an edited record:\n{text}");
    assert!(
        text.contains(&format!("第 {target} 条")) && text.contains(&target.to_string()),
        "verify does not name record {target}:\n{text}"
    );
    println!(
        "audit chain: {} records, edited record {target} named: {}",
        ids.len(),
        text.lines().next().unwrap_or("")
    );

    // Put it back: the chain verifies again. Then delete a record: the one after it is named.
    sqlx::query("UPDATE audit_log SET actor = ? WHERE id = ?")
        .bind(&actor)
        .bind(target)
        .execute(&pool)
        .await?;
    let (ok, text) = audit_verify(&data);
    assert!(
        ok && text.contains("校验通过"),
        "the restored log does not verify:\n{text}"
    );
    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(&pool)
        .await?;
    sqlx::query("DELETE FROM audit_log WHERE id = ?")
        .bind(target)
        .execute(&pool)
        .await?;
    pool.close().await;
    let (ok, text) = audit_verify(&data);
    let next = ids[ids.len() / 2 + 1].0;
    assert!(
        !ok && text.contains(&format!("第 {next} 条")),
        "verify does not name record {next} after a deletion:\n{text}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. Bad input on every upload and JSON route

/// Routes that take JSON bodies over axum's 2 MB default on purpose: bills of a large tender,
/// a gate's sync batch with snapshots.
const LARGE_BODY_ROUTES: &[&str] = &["/api/clearing/run", "/api/gate/events"];

/// Routes with a JSON request body in the OpenAPI document, with their path made concrete.
fn json_routes(doc: &Value, number: &str) -> Vec<(String, String, String)> {
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if operation["requestBody"]["content"]
                .get("application/json")
                .is_none()
            {
                continue;
            }
            let concrete: Vec<String> = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        encode(number)
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            routes.push((
                method.to_ascii_uppercase(),
                path.clone(),
                concrete.join("/"),
            ));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() -> Result<()> {
    let mut env = Env::start(Some("[server]\nmax_upload_bytes = 1048576\n")).await?;
    let admin = env.admin.clone();
    env.create_project("BAD-1").await?;
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        tokens.insert(
            role,
            env.create_token(&format!("bad-{}", role.as_str()), role)
                .await?
                .1,
        );
    }
    let store = env.daemon.data.join("store");
    let before = env.snapshot().await?;

    // Path traversal on the upload route, sent byte for byte.
    let traversal = [
        "../../../etc/passwd",
        "a/../../x.txt",
        "%2E%2E/%2E%2E/x.txt",
        "%2e%2e%2f%2e%2e%2fx.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "..%5C..%5Cx.txt",
        "a%5Cb.txt",
        "a%00b.txt",
        "_witness/%E5%AE%A1%E8%AE%A1%E6%97%A5%E5%BF%97.csv",
    ];
    for rel in traversal {
        let answer = env
            .raw("PUT", &format!("/api/projects/BAD-1/files/{rel}"), b"evil")
            .await?;
        answer.expect_error(&format!("upload to {rel}"), 400, "invalid_argument");
    }
    assert!(
        files_in(&store).is_empty(),
        "refused uploads left files: {:?}",
        files_in(&store)
    );
    assert!(!env.root.path().join("x.txt").exists() && !env.daemon.data.join("x.txt").exists());
    let audited = env.audit("?action=PUT").await?;
    assert!(
        audited
            .iter()
            .filter(|e| e["result"] == "400 failed")
            .count()
            >= traversal.len(),
        "the refused uploads are not all in the audit log"
    );

    // Oversized uploads: 413, and nothing left behind (not even the partial file).
    let limit = 1024 * 1024;
    for size in [limit + 1, 8 * limit] {
        let answer = env
            .send(
                "PUT",
                "/api/projects/BAD-1/files/big.bin",
                Caller::Token(&admin),
                Body::Raw("application/octet-stream", vec![7u8; size]),
            )
            .await;
        match answer {
            Ok(answer) => {
                answer.expect_error(
                    &format!("an upload of {size} bytes"),
                    413,
                    "payload_too_large",
                );
            }
            // The daemon may answer and close before the client has sent everything.
            Err(e) if size > 2 * limit => {
                println!("upload of {size} bytes: connection closed early ({e:#})")
            }
            Err(e) => return Err(e),
        }
        assert!(
            files_in(&store).is_empty(),
            "an oversized upload left files: {:?}",
            files_in(&store)
        );
    }

    // Every JSON route: over 2 MB → 413, malformed → 400 with an ApiError.
    let doc = env
        .send("GET", "/api/openapi.json", Caller::Nobody, Body::None)
        .await?
        .json();
    let routes = json_routes(&doc, "BAD-1");
    assert!(
        routes.len() >= 6,
        "only {} JSON routes in the OpenAPI document",
        routes.len()
    );
    let huge =
        serde_json::to_vec(&json!({ "number": "x".repeat(2 * 1024 * 1024 + 10), "name": "n" }))?;
    let malformed: [&[u8]; 7] = [
        b"{",
        b"{\"number\":",
        b"[1,2",
        b"not json",
        b"",
        b"null",
        b"{\"number\": 5, \"name\": []}",
    ];
    let mut refusals = 0;
    for (method, pattern, path) in &routes {
        // As a role the table lets through, so the body reaches the handler.
        let access = table_path(pattern)
            .iter()
            .find_map(|p| permission(method, p))
            .map(|p| p.access);
        let role = Role::ALL
            .into_iter()
            .find(|r| access.is_some_and(|a| a.allows(*r)))
            .unwrap_or(Role::Admin);
        let token = &tokens[&role];
        let answer = env
            .send(
                method,
                path,
                Caller::Token(token),
                Body::Raw("application/json", huge.clone()),
            )
            .await?;
        if answer.status != 413 {
            // A route may take larger bodies on purpose; it must still refuse this one.
            assert!(
                LARGE_BODY_ROUTES.contains(&pattern.as_str()),
                "{method} {pattern} with 2 MB of JSON: HTTP {}: {}",
                answer.status,
                answer.text
            );
            answer.expect_error(
                &format!("{method} {pattern} with a large invalid body"),
                400,
                "invalid_argument",
            );
        } else {
            answer.expect_error(
                &format!("{method} {pattern} with 2 MB of JSON"),
                413,
                "payload_too_large",
            );
        }
        refusals += 1;
        for body in malformed {
            let answer = env
                .send(
                    method,
                    path,
                    Caller::Token(token),
                    Body::Raw("application/json", body.to_vec()),
                )
                .await?;
            let what = format!(
                "{method} {pattern} with {:?}",
                String::from_utf8_lossy(body)
            );
            answer.expect_error(&what, 400, "invalid_argument");
            refusals += 1;
        }
        let answer = env
            .send(
                method,
                path,
                Caller::Token(token),
                Body::Raw("text/plain", b"{}".to_vec()),
            )
            .await?;
        answer.expect_error(
            &format!("{method} {pattern} as text/plain"),
            400,
            "invalid_argument",
        );
        refusals += 1;
    }
    println!("bad input: {} traversal paths, 2 oversized uploads, {} JSON routes × 9 bodies = {refusals} refusals", traversal.len(), routes.len());
    assert_eq!(
        env.snapshot().await?,
        before,
        "a refused request changed the catalog"
    );

    // Within the limit the same route works: exactly 1 MiB, and a file named with an ID number
    // (whose full number must still not reach the log).
    env.send(
        "PUT",
        "/api/projects/BAD-1/files/ok.bin",
        Caller::Token(&admin),
        Body::Raw("application/octet-stream", vec![1u8; limit]),
    )
    .await?
    .expect("an upload of exactly max_upload_bytes", 201);
    let named = format!(
        "/api/projects/BAD-1/files/{}/{}",
        encode("专家签到"),
        encode(&format!("{ID_NUMBER}.txt"))
    );
    env.send(
        "PUT",
        &named,
        Caller::Token(&admin),
        Body::Raw("text/plain", format!("身份证号 {ID_NUMBER}").into_bytes()),
    )
    .await?
    .expect("an upload named with an ID number", 201);

    // A file and a folder cannot share a name: 409, not a 500 from the file system.
    let upload = |path: &str, bytes: Vec<u8>| {
        let path = format!("/api/projects/BAD-1/files/{path}");
        let admin = &admin;
        let env = &env;
        async move {
            env.send(
                "PUT",
                &path,
                Caller::Token(admin),
                Body::Raw("application/octet-stream", bytes),
            )
            .await
        }
    };
    upload("ok.bin/inner.txt", b"x".to_vec())
        .await?
        .expect_error("a folder where a file is", 409, "already_exists");
    upload("%E4%B8%93%E5%AE%B6%E7%AD%BE%E5%88%B0", b"x".to_vec())
        .await?
        .expect_error("a file where a folder is", 409, "already_exists");
    // The longest name a segment may have still leaves room for the partial file's name.
    upload(&"n".repeat(255), b"x".to_vec())
        .await?
        .expect("a 255-byte file name", 201);
    // Concurrent uploads of one path: one wins, the rest get 409, and the file on disk is the
    // winner's (a rename would let a loser replace it after the winner was registered).
    let racers: Vec<_> = (1..=6)
        .map(|i| upload("race.bin", vec![i as u8; i * 1000]))
        .collect();
    let answers = futures_util::future::join_all(racers).await;
    let statuses: Vec<u16> = answers
        .iter()
        .map(|a| a.as_ref().map(|a| a.status).unwrap_or(0))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "concurrent uploads of one path: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "concurrent uploads of one path: {statuses:?}"
    );
    let detail = env.get("/api/projects/BAD-1").await?;
    let race = detail["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rel_path"] == "race.bin")
        .context("race.bin")?;
    let on_disk = files_in(&store)
        .into_iter()
        .find(|p| p.ends_with("race.bin"))
        .context("race.bin on disk")?;
    assert_eq!(
        race["size"].as_u64(),
        Some(std::fs::metadata(&on_disk)?.len()),
        "the catalog's size is not the stored file's"
    );
    let partials: Vec<PathBuf> = files_in(&store)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".upload-"))
        .collect();
    assert!(
        partials.is_empty(),
        "partial uploads left behind: {partials:?}"
    );

    let mut name = project_body("BAD-2");
    name["name"] = json!(format!("专家 {ID_NUMBER} 评审项目"));
    env.send(
        "POST",
        "/api/projects",
        Caller::Token(&admin),
        Body::Json(name),
    )
    .await?
    .expect("a project", 201);
    env.secrets.push(admin);
    env.assert_log_clean();
    Ok(())
}

#[test]
fn id_numbers_are_found_in_text() {
    assert_eq!(
        full_id_numbers(&format!("path={ID_NUMBER}.txt")),
        vec![ID_NUMBER.to_string()]
    );
    assert_eq!(
        full_id_numbers("410225198001011234 and 4102251980010112345"),
        vec!["410225198001011234".to_string()]
    );
    assert!(full_id_numbers("410225********123X").is_empty());
}
