//! Users with argon2 passwords, login lock-out and rate limiting, sessions, API tokens, and the
//! first admin account created on first start.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use sqlx::{FromRow, SqlitePool};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use witness_schemas::auth::{ApiToken, Role, User};

use super::{Principal, Via};
use crate::clock::rfc3339;
use crate::digest::hex;
use crate::error::{io_error, Result};
use crate::{bail, err};

/// Failed logins in a row before an account is locked, and for how long.
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const LOCKOUT: Duration = Duration::minutes(15);
/// A session ends after this long without use, and after the absolute limit in any case.
pub const SESSION_IDLE: Duration = Duration::minutes(30);
pub const SESSION_MAX: Duration = Duration::hours(12);
/// How stale a session's `last_seen_at` or a token's `last_used_at` may get before a request
/// writes it again. Writing it on every request made every read (a video player's Range
/// requests included) a disk write; against a 30-minute idle limit a minute is plenty.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Whether a "last seen" stamp is old enough (or unreadable) to be written again.
fn needs_touch(stamp: Option<&str>, now: OffsetDateTime) -> bool {
    stamp
        .and_then(parse_time)
        .is_none_or(|seen| now - seen >= TOUCH_EVERY)
}
/// Login attempts allowed per client address per minute, whatever the usernames.
pub const LOGINS_PER_MINUTE: u32 = 20;
/// Name of the file holding the first admin's one-time credentials.
pub const CREDENTIAL_FILE: &str = "admin-credential.txt";

/// Random bytes from the OS, hex encoded.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| err!(Internal, "no randomness from the OS: {e}"))?;
    Ok(hex(&buffer))
}

fn sha256_hex(text: &str) -> String {
    crate::digest::digest_bytes(text.as_bytes()).sha256
}

pub fn hash_password(password: &str) -> Result<String> {
    // Argon2id with the crate's defaults (19 MiB, 2 passes) and a salt from the OS.
    Ok(Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| err!(Internal, "hashing a password: {e}"))?
        .to_string())
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < 10 {
        bail!(InvalidArgument, "密码至少 10 个字符");
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        bail!(InvalidArgument, "密码不能全是数字");
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    password_hash: String,
    failed_logins: i64,
    locked_until: Option<String>,
    disabled: i64,
    created_at: String,
    password_changed_at: Option<String>,
}

impl UserRow {
    fn role(&self) -> Role {
        // An unknown role in the database grants the least: auditors only read.
        Role::parse(&self.role).unwrap_or(Role::Auditor)
    }

    fn to_api(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            role: self.role(),
            locked_until: self.locked_until.clone(),
            disabled: self.disabled != 0,
            created_at: self.created_at.clone(),
        }
    }
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Counts login attempts per client address in memory (a restart forgets them, which only
/// helps an attacker for one minute).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    attempts: Mutex<HashMap<IpAddr, (OffsetDateTime, u32)>>,
}

impl LoginLimiter {
    pub fn check(&self, client: IpAddr, now: OffsetDateTime) -> Result<()> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let entry = attempts.entry(client).or_insert((now, 0));
        if now - entry.0 >= Duration::minutes(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > LOGINS_PER_MINUTE {
            bail!(
                RateLimited,
                "登录尝试过于频繁，请一分钟后再试 (too many login attempts)"
            );
        }
        Ok(())
    }
}

pub struct LoginOutcome {
    pub principal: Principal,
    /// The cookie value: shown to the browser once, stored only as a hash.
    pub session_secret: String,
    pub expires_at: String,
}

/// Checks a username and password; counts failures, locks after [`MAX_FAILED_LOGINS`], and
/// opens a session. Messages do not tell which of the two was wrong.
pub async fn login(
    pool: &SqlitePool,
    username: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<LoginOutcome> {
    let user: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE username = ?")
        .bind(username)
        .fetch_optional(pool)
        .await?;
    let Some(user) = user else {
        // Hash anyway so a missing user takes as long as a wrong password.
        let _ = password_matches(password, "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$0000000000000000000000000000000000000000000");
        bail!(Unauthenticated, "用户名或密码错误");
    };
    if user.disabled != 0 || user.role().is_machine() {
        bail!(Unauthenticated, "用户名或密码错误");
    }
    if let Some(until) = user.locked_until.as_deref().and_then(parse_time) {
        if until > now {
            bail!(
                PermissionDenied,
                "账户已锁定，请于 {} 后再试 (account locked after repeated failures)",
                rfc3339(until)
            );
        }
    }
    if !password_matches(password, &user.password_hash) {
        let failed = user.failed_logins + 1;
        let locked_until = (failed >= MAX_FAILED_LOGINS).then(|| rfc3339(now + LOCKOUT));
        sqlx::query("UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?")
            .bind(if locked_until.is_some() { 0 } else { failed })
            .bind(&locked_until)
            .bind(user.id)
            .execute(pool)
            .await?;
        if locked_until.is_some() {
            bail!(
                PermissionDenied,
                "连续 {MAX_FAILED_LOGINS} 次密码错误，账户已锁定 15 分钟"
            );
        }
        bail!(Unauthenticated, "用户名或密码错误");
    }
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?")
        .bind(user.id)
        .execute(pool)
        .await?;
    let secret = random_hex(32)?;
    let csrf_token = random_hex(32)?;
    let id_hash = sha256_hex(&secret);
    let expires_at = rfc3339(now + SESSION_MAX);
    sqlx::query("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&id_hash)
        .bind(user.id)
        .bind(&csrf_token)
        .bind(rfc3339(now))
        .bind(rfc3339(now))
        .bind(&expires_at)
        .execute(pool)
        .await?;
    Ok(LoginOutcome {
        principal: Principal {
            username: user.username.clone(),
            role: user.role(),
            via: Via::Session {
                id_hash,
                csrf_token,
                must_change_password: user.password_changed_at.is_none(),
            },
        },
        session_secret: secret,
        expires_at,
    })
}

#[derive(Debug, FromRow)]
struct SessionRow {
    id_hash: String,
    csrf_token: String,
    last_seen_at: String,
    expires_at: String,
    username: String,
    role: String,
    disabled: i64,
    password_changed_at: Option<String>,
}

/// Finds the session of a cookie value; an expired one is deleted and refused.
pub async fn session(pool: &SqlitePool, secret: &str, now: OffsetDateTime) -> Result<Principal> {
    let id_hash = sha256_hex(secret);
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT s.id_hash, s.csrf_token, s.last_seen_at, s.expires_at, u.username, u.role, u.disabled, u.password_changed_at
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?",
    )
    .bind(&id_hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        bail!(Unauthenticated, "未登录或会话已失效，请重新登录");
    };
    let idle_end = parse_time(&row.last_seen_at).map(|t| t + SESSION_IDLE);
    let hard_end = parse_time(&row.expires_at);
    let expired = [idle_end, hard_end]
        .into_iter()
        .any(|end| end.map(|e| e <= now).unwrap_or(true));
    if expired || row.disabled != 0 {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(&id_hash)
            .execute(pool)
            .await?;
        bail!(Unauthenticated, "会话已过期，请重新登录 (session expired)");
    }
    if needs_touch(Some(&row.last_seen_at), now) {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(rfc3339(now))
            .bind(&id_hash)
            .execute(pool)
            .await?;
    }
    Ok(Principal {
        username: row.username,
        role: Role::parse(&row.role).unwrap_or(Role::Auditor),
        via: Via::Session {
            id_hash: row.id_hash,
            csrf_token: row.csrf_token,
            must_change_password: row.password_changed_at.is_none(),
        },
    })
}

pub async fn end_session(pool: &SqlitePool, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(Debug, FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    role: String,
    prefix: String,
    created_by: String,
    created_at: String,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
}

impl TokenRow {
    fn to_api(&self) -> ApiToken {
        ApiToken {
            id: self.id,
            name: self.name.clone(),
            role: Role::parse(&self.role).unwrap_or(Role::Auditor),
            prefix: self.prefix.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
            revoked_at: self.revoked_at.clone(),
            last_used_at: self.last_used_at.clone(),
        }
    }
}

/// Finds the API token a bearer secret belongs to; revoked tokens are refused by name.
pub async fn token(pool: &SqlitePool, secret: &str, now: OffsetDateTime) -> Result<Principal> {
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT id, name, role, prefix, created_by, created_at, revoked_at, last_used_at FROM api_tokens WHERE token_hash = ?",
    )
    .bind(sha256_hex(secret))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        bail!(Unauthenticated, "API 令牌无效 (unknown token)");
    };
    if row.revoked_at.is_some() {
        bail!(
            Unauthenticated,
            "API 令牌 {} 已被撤销 (revoked token)",
            row.prefix
        );
    }
    if needs_touch(row.last_used_at.as_deref(), now) {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(rfc3339(now))
            .bind(row.id)
            .execute(pool)
            .await?;
    }
    Ok(Principal {
        username: format!("token:{}", row.name),
        role: Role::parse(&row.role).unwrap_or(Role::Auditor),
        via: Via::Token { id: row.id },
    })
}

/// Creates a token and returns it with its secret (shown this once).
pub async fn create_token(
    pool: &SqlitePool,
    name: &str,
    role: Role,
    created_by: &str,
    now: OffsetDateTime,
) -> Result<(ApiToken, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        bail!(InvalidArgument, "令牌名称须为 1–64 个字符");
    }
    let secret = format!("wit_{}", random_hex(24)?);
    let prefix = secret[..12].to_string();
    let id = sqlx::query("INSERT INTO api_tokens (name, role, token_hash, prefix, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(name)
        .bind(role.as_str())
        .bind(sha256_hex(&secret))
        .bind(&prefix)
        .bind(created_by)
        .bind(rfc3339(now))
        .execute(pool)
        .await?
        .last_insert_rowid();
    let token = list_tokens(pool)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| err!(Internal, "token vanished"))?;
    Ok((token, secret))
}

pub async fn list_tokens(pool: &SqlitePool) -> Result<Vec<ApiToken>> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, name, role, prefix, created_by, created_at, revoked_at, last_used_at FROM api_tokens ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(TokenRow::to_api).collect())
}

pub async fn revoke_token(pool: &SqlitePool, id: i64, now: OffsetDateTime) -> Result<ApiToken> {
    let updated =
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(rfc3339(now))
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
    if updated == 0 {
        bail!(NotFound, "令牌 {id} 不存在");
    }
    list_tokens(pool)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| err!(Internal, "token vanished"))
}

fn check_username(username: &str) -> Result<()> {
    let ok = !username.is_empty()
        && username.chars().count() <= 32
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !ok {
        bail!(
            InvalidArgument,
            "用户名须为 1–32 个字母、数字或 . _ -: {username:?}"
        );
    }
    Ok(())
}

pub async fn create_user(
    pool: &SqlitePool,
    username: &str,
    role: Role,
    password: &str,
    now: OffsetDateTime,
) -> Result<User> {
    check_username(username)?;
    if role.is_machine() {
        bail!(
            InvalidArgument,
            "{} 是机器身份，请为它创建 API 令牌而不是用户",
            role.as_str()
        );
    }
    check_new_password(password)?;
    let inserted = sqlx::query("INSERT INTO users (username, role, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?)")
        .bind(username)
        .bind(role.as_str())
        .bind(hash_password(password)?)
        .bind(rfc3339(now))
        .bind(rfc3339(now))
        .execute(pool)
        .await;
    if let Err(sqlx::Error::Database(db)) = &inserted {
        if db.is_unique_violation() {
            bail!(AlreadyExists, "用户 {username} 已存在");
        }
    }
    inserted?;
    list_users(pool)
        .await?
        .into_iter()
        .find(|u| u.username == username)
        .ok_or_else(|| err!(Internal, "user vanished"))
}

pub async fn list_users(pool: &SqlitePool) -> Result<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as("SELECT * FROM users ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(UserRow::to_api).collect())
}

/// Replaces a password after checking the old one. The first admin's one-time credential file
/// is deleted once its password has been changed.
pub async fn change_password(
    pool: &SqlitePool,
    data_dir: &Path,
    username: &str,
    old: &str,
    new: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let user: UserRow = sqlx::query_as("SELECT * FROM users WHERE username = ?")
        .bind(username)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| err!(NotFound, "用户 {username} 不存在"))?;
    if !password_matches(old, &user.password_hash) {
        bail!(PermissionDenied, "原密码不正确");
    }
    if old == new {
        bail!(InvalidArgument, "新密码不能与原密码相同");
    }
    check_new_password(new)?;
    sqlx::query("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?")
        .bind(hash_password(new)?)
        .bind(rfc3339(now))
        .bind(user.id)
        .execute(pool)
        .await?;
    let file = data_dir.join(CREDENTIAL_FILE);
    if file.exists()
        && std::fs::read_to_string(&file)
            .map(|t| t.contains(&format!("username={username}\n")))
            .unwrap_or(false)
    {
        let _ = std::fs::remove_file(&file);
    }
    Ok(())
}

/// On the very first start (no users at all): creates `admin` with a random one-time password
/// and an admin API token for the CLI on the appliance, and writes both to a 0600 file.
pub async fn bootstrap(
    pool: &SqlitePool,
    data_dir: &Path,
    now: OffsetDateTime,
) -> Result<Option<PathBuf>> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?;
    if count > 0 {
        return Ok(None);
    }
    let password = random_hex(10)?;
    sqlx::query("INSERT INTO users (username, role, password_hash, created_at) VALUES ('admin', 'admin', ?, ?)")
        .bind(hash_password(&password)?)
        .bind(rfc3339(now))
        .execute(pool)
        .await?;
    let (_, token) = create_token(pool, "appliance-cli", Role::Admin, "system", now).await?;
    let path = data_dir.join(CREDENTIAL_FILE);
    let text = format!(
        "# Witness 见证：首次启动生成的管理员凭据。首次登录后须修改密码，修改后本文件自动删除。\n\
         # First-start admin credentials; the password must be changed at first login.\n\
         username=admin\npassword={password}\ntoken={token}\n"
    );
    write_private(&path, &text)?;
    Ok(Some(path))
}

/// Writes a file only its owner can read (mode 0600 from the start, not chmod afterwards).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(format!("写入 {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| io_error(path.display(), e))?;
    file.sync_all().map_err(|e| io_error(path.display(), e))
}

/// Reads the token line of the credential file (for the CLI run on the appliance).
pub fn token_from_credential_file(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(CREDENTIAL_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("token="))
        .map(str::to_string)
}
