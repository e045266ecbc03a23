//! Access-control gates (门禁): the registry (a gate is its API token), expert draws per project,
//! the list each gate decides from, and the ingest of gate events — idempotent by (gate, log,
//! sequence), in order, with an outbox message for the provincial expert library (门禁信息对接,
//! delivered by `integrations`) written in the same transaction as each identity event.

pub mod web;

use sqlx::{FromRow, SqlitePool};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use witness_schemas::auth::Role;
use witness_schemas::gate::{
    base64_decode, mask_id_number, CreatedGate, DenyReason, Draw, DrawnExpert, EventKind,
    ExpertList, Gate, NewDraw, NewGate, StoredGateEvent, SyncAck, SyncBatch,
};

use crate::auth::accounts;
use crate::clock::rfc3339;
use crate::error::Result;
use crate::{bail, catalog, err};

/// A gate that synced within this many seconds counts as online. Agents sync at least every
/// 10 s (a heartbeat when there is nothing to send).
pub const ONLINE_WITHIN_SECONDS: i64 = 60;

/// How far ahead a gate's list reaches: today's evaluations, and early tomorrow's for a gate
/// that loses its link overnight.
const LIST_HORIZON: time::Duration = time::Duration::hours(24);

#[derive(Debug, FromRow)]
struct GateRow {
    token_id: i64,
    name: String,
    location: String,
    registered_at: String,
    last_seen_at: Option<String>,
    last_sequence: i64,
    last_event_at: Option<String>,
    last_event_kind: Option<String>,
    queue_depth: i64,
    log_id: Option<String>,
}

const GATE_SELECT: &str =
    "SELECT token_id, name, location, registered_at, last_seen_at, last_sequence, last_event_at, \
     last_event_kind, queue_depth, log_id FROM gates";

fn parse_time(text: &str, what: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
        err!(
            InvalidArgument,
            "{what} {text:?} 不是 RFC 3339 时间（如 2026-03-18T09:00:00+08:00）：{e}"
        )
    })
}

async fn to_api(pool: &SqlitePool, row: GateRow, now: OffsetDateTime) -> Result<Gate> {
    let projects: Vec<(String,)> = sqlx::query_as(
        "SELECT p.number FROM gate_projects gp JOIN projects p ON p.id = gp.project_id WHERE gp.gate_id = ? ORDER BY p.number",
    )
    .bind(row.token_id)
    .fetch_all(pool)
    .await?;
    let online = row
        .last_seen_at
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .is_some_and(|seen| (now - seen).whole_seconds() <= ONLINE_WITHIN_SECONDS);
    Ok(Gate {
        token_id: row.token_id,
        name: row.name,
        location: row.location,
        projects: projects.into_iter().map(|(n,)| n).collect(),
        online,
        last_seen_at: row.last_seen_at,
        last_sequence: row.last_sequence,
        last_event_at: row.last_event_at,
        last_event_kind: row.last_event_kind,
        queue_depth: row.queue_depth,
        registered_at: row.registered_at,
    })
}

/// Registers a gate; without a token id, creates its token (role gate) and returns the secret.
pub async fn register(
    pool: &SqlitePool,
    new: &NewGate,
    created_by: &str,
    now: OffsetDateTime,
) -> Result<CreatedGate> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        bail!(InvalidArgument, "门禁名称须为 1–64 个字符");
    }
    let mut project_ids = Vec::new();
    for number in &new.projects {
        project_ids.push(catalog::project(pool, number).await?.id);
    }
    let (token_id, secret) = match new.token_id {
        Some(id) => {
            let role: Option<(String,)> =
                sqlx::query_as("SELECT role FROM api_tokens WHERE id = ? AND revoked_at IS NULL")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            match role {
                Some((role,)) if role == Role::Gate.as_str() => (id, None),
                Some((role,)) => bail!(
                    InvalidArgument,
                    "令牌 {id} 的角色是 {role}，门禁须用 gate 角色的令牌"
                ),
                None => bail!(NotFound, "令牌 {id} 不存在或已撤销"),
            }
        }
        None => {
            let (token, secret) =
                accounts::create_token(pool, &format!("门禁 {name}"), Role::Gate, created_by, now)
                    .await?;
            (token.id, Some(secret))
        }
    };
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO gates (token_id, name, location, registered_at) VALUES (?, ?, ?, ?)",
    )
    .bind(token_id)
    .bind(name)
    .bind(new.location.trim())
    .bind(rfc3339(now))
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        drop(tx);
        if secret.is_some() {
            // The token was made for this gate only; do not leave a live credential behind.
            let _ = accounts::revoke_token(pool, token_id, now).await;
        }
        return Err(e.into());
    }
    for project_id in project_ids {
        sqlx::query("INSERT OR IGNORE INTO gate_projects (gate_id, project_id) VALUES (?, ?)")
            .bind(token_id)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(gate = name, token_id, "gate registered");
    Ok(CreatedGate {
        gate: gate(pool, token_id, now).await?,
        token: secret,
    })
}

pub async fn gate(pool: &SqlitePool, token_id: i64, now: OffsetDateTime) -> Result<Gate> {
    let row: GateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{GATE_SELECT} WHERE token_id = ?"
    )))
    .bind(token_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
        err!(
            NotFound,
            "令牌 {token_id} 没有登记为门禁（先 POST /api/gates）"
        )
    })?;
    to_api(pool, row, now).await
}

pub async fn list(pool: &SqlitePool, now: OffsetDateTime) -> Result<Vec<Gate>> {
    let rows: Vec<GateRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{GATE_SELECT} ORDER BY name")))
            .fetch_all(pool)
            .await?;
    let mut gates = Vec::with_capacity(rows.len());
    for row in rows {
        gates.push(to_api(pool, row, now).await?);
    }
    Ok(gates)
}

/// Checks the 18-character resident ID number, including its ISO 7064 MOD 11-2 check digit,
/// so a typo in a draw is caught at entry instead of at the door.
pub fn check_id_number(id: &str) -> Result<()> {
    let chars: Vec<char> = id.chars().collect();
    let digits_ok = chars.len() == 18 && chars[..17].iter().all(char::is_ascii_digit);
    if !digits_ok {
        bail!(
            InvalidArgument,
            "身份证号须为 18 位（前 17 位为数字）：{}",
            mask_id_number(id)
        );
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = chars[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    if CHECK[(sum % 11) as usize] != chars[17].to_ascii_uppercase() {
        bail!(
            InvalidArgument,
            "身份证号校验位不符：{}",
            mask_id_number(id)
        );
    }
    Ok(())
}

#[derive(Debug, FromRow)]
struct DrawRow {
    id: i64,
    number: String,
    id_number: String,
    name: String,
    window_start: String,
    window_end: String,
    created_by: String,
    created_at: String,
}

impl DrawRow {
    fn into_api(self, full: bool) -> Draw {
        Draw {
            id: self.id,
            project_number: self.number,
            id_number: if full {
                self.id_number
            } else {
                mask_id_number(&self.id_number)
            },
            name: self.name,
            window_start: self.window_start,
            window_end: self.window_end,
            created_by: self.created_by,
            created_at: self.created_at,
        }
    }
}

const DRAW_SELECT: &str =
    "SELECT d.id, p.number, d.id_number, d.name, d.window_start, d.window_end, d.created_by, \
     d.created_at FROM expert_draws d JOIN projects p ON p.id = d.project_id";

/// Records an expert drawn for a project.
pub async fn add_draw(
    pool: &SqlitePool,
    number: &str,
    new: &NewDraw,
    by: &str,
    now: OffsetDateTime,
) -> Result<Draw> {
    let project = catalog::project(pool, number).await?;
    let id_number = new.id_number.trim().to_ascii_uppercase();
    check_id_number(&id_number)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 32 {
        bail!(InvalidArgument, "专家姓名须为 1–32 个字符");
    }
    let start = parse_time(&new.window_start, "开始时间")?;
    let end = parse_time(&new.window_end, "结束时间")?;
    if end <= start {
        bail!(InvalidArgument, "结束时间须晚于开始时间");
    }
    let id = sqlx::query(
        "INSERT INTO expert_draws (project_id, id_number, name, window_start, window_end, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(project.id)
    .bind(&id_number)
    .bind(name)
    .bind(rfc3339(start.to_offset(crate::clock::CHINA)))
    .bind(rfc3339(end.to_offset(crate::clock::CHINA)))
    .bind(by)
    .bind(rfc3339(now))
    .execute(pool)
    .await?
    .last_insert_rowid();
    tracing::info!(project = number, expert = %mask_id_number(&id_number), "expert draw recorded");
    crate::search::notify(pool, crate::search::Change::Project(project.id));
    let row: DrawRow = sqlx::query_as(sqlx::AssertSqlSafe(format!("{DRAW_SELECT} WHERE d.id = ?")))
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(row.into_api(false))
}

pub async fn list_draws(pool: &SqlitePool, number: &str, full: bool) -> Result<Vec<Draw>> {
    let project = catalog::project(pool, number).await?;
    let rows: Vec<DrawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DRAW_SELECT} WHERE d.project_id = ? ORDER BY d.window_start, d.id"
    )))
    .bind(project.id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_api(full)).collect())
}

/// The list a gate decides from: experts drawn for its projects whose window is not over and
/// starts within [`LIST_HORIZON`].
pub async fn expert_list(
    pool: &SqlitePool,
    token_id: i64,
    now: OffsetDateTime,
) -> Result<ExpertList> {
    let gate = gate(pool, token_id, now).await?;
    // Windows are stored as RFC 3339 in +08:00, so text comparison is time order.
    let rows: Vec<DrawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DRAW_SELECT} JOIN gate_projects gp ON gp.project_id = d.project_id \
         WHERE gp.gate_id = ? AND d.window_end >= ? AND d.window_start <= ? ORDER BY d.window_start, d.id"
    )))
    .bind(token_id)
    .bind(rfc3339(now))
    .bind(rfc3339(now + LIST_HORIZON))
    .fetch_all(pool)
    .await?;
    touch(pool, token_id, now).await?;
    Ok(ExpertList {
        gate: gate.name,
        generated_at: rfc3339(now),
        experts: rows
            .into_iter()
            .map(|r| DrawnExpert {
                id_number: r.id_number,
                name: r.name,
                project_number: r.number,
                window_start: r.window_start,
                window_end: r.window_end,
            })
            .collect(),
    })
}

async fn touch(pool: &SqlitePool, token_id: i64, now: OffsetDateTime) -> Result<()> {
    sqlx::query("UPDATE gates SET last_seen_at = ? WHERE token_id = ?")
        .bind(rfc3339(now))
        .bind(token_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Stores a gate's sync batch. Events at or below the gate's last sequence are duplicates of a
/// batch whose answer was lost, and are acknowledged without storing them again; a gap means
/// the gate lost events and is refused, loudly, rather than papered over.
pub async fn ingest(
    pool: &SqlitePool,
    token_id: i64,
    batch: &SyncBatch,
    now: OffsetDateTime,
) -> Result<SyncAck> {
    if batch.log_id.trim().is_empty() || batch.log_id.len() > 64 {
        bail!(InvalidArgument, "log_id 须为 1–64 个字符");
    }
    let mut tx = pool.begin().await?;
    let row: GateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{GATE_SELECT} WHERE token_id = ?"
    )))
    .bind(token_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        err!(
            NotFound,
            "令牌 {token_id} 没有登记为门禁（先 POST /api/gates）"
        )
    })?;
    let mut last = row.last_sequence;
    if row.log_id.as_deref() != Some(batch.log_id.as_str()) {
        if row.log_id.is_some() {
            // A replaced or re-installed gate starts a new log at sequence 1.
            tracing::warn!(gate = %row.name, old = ?row.log_id, new = %batch.log_id, "gate started a new event log");
        }
        last = 0;
    }
    let received_at = rfc3339(now);
    let mut newest: Option<(&str, &str)> = None;
    for event in &batch.events {
        if event.sequence <= last {
            continue;
        }
        if event.sequence != last + 1 {
            bail!(
                FailedPrecondition,
                "门禁 {} 的事件序号不连续：期待 {}，收到 {}（门禁丢失了事件）",
                row.name,
                last + 1,
                event.sequence
            );
        }
        let (
            mut id_number,
            mut name,
            mut allowed,
            mut reason,
            mut project,
            mut detail,
            mut micros,
            mut snapshot,
        ) = (None, None, None, None, None, None, None, None);
        match &event.kind {
            EventKind::Badge(badge) => {
                id_number = Some(badge.id_number.clone());
                name = Some(badge.name.clone());
                allowed = Some(badge.allowed);
                reason = badge.reason.map(DenyReason::as_str);
                project = badge.project_number.clone();
                micros = Some(badge.decision_micros as i64);
                if let Some(text) = &badge.snapshot_base64 {
                    snapshot = Some(base64_decode(text).ok_or_else(|| {
                        err!(InvalidArgument, "事件 {} 的快照不是 base64", event.sequence)
                    })?);
                }
            }
            EventKind::DoorHeldOpen { seconds } => detail = Some(format!("{seconds}")),
            EventKind::Tamper { detail: d } | EventKind::ReaderFault { detail: d } => {
                detail = Some(d.clone())
            }
            EventKind::Offline { since, detail: d } => detail = Some(format!("{since} {d}")),
            EventKind::Started { version } => detail = Some(version.clone()),
            EventKind::ReaderOk | EventKind::Online => {}
        }
        let event_id = sqlx::query(
            "INSERT INTO gate_events (gate_id, log_id, sequence, at, kind, id_number, name, allowed, reason, \
             project_number, detail, decision_micros, snapshot, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token_id)
        .bind(&batch.log_id)
        .bind(event.sequence)
        .bind(&event.at)
        .bind(event.kind.name())
        .bind(&id_number)
        .bind(&name)
        .bind(allowed)
        .bind(reason)
        .bind(&project)
        .bind(&detail)
        .bind(micros)
        .bind(snapshot)
        .bind(&received_at)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        if let Some(id) = id_number.as_deref().filter(|id| !id.is_empty()) {
            let payload = serde_json::json!({
                "gate": row.name,
                "sequence": event.sequence,
                "at": event.at,
                "id_number": id,
                "name": name,
                "allowed": allowed,
                "reason": reason,
                "project_number": project,
            });
            crate::integrations::expert_library::enqueue_gate_identity(
                &mut tx, event_id, payload, now,
            )
            .await?;
        }
        last = event.sequence;
        newest = Some((&event.at, event.kind.name()));
    }
    let mut update = sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE gates SET last_seen_at = ");
    update
        .push_bind(&received_at)
        .push(", last_sequence = ")
        .push_bind(last);
    update
        .push(", log_id = ")
        .push_bind(&batch.log_id)
        .push(", queue_depth = ")
        .push_bind(batch.queue_depth);
    if let Some((at, kind)) = newest {
        update
            .push(", last_event_at = ")
            .push_bind(at)
            .push(", last_event_kind = ")
            .push_bind(kind);
    }
    update.push(" WHERE token_id = ").push_bind(token_id);
    update.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(SyncAck {
        acked_through: last,
    })
}

#[derive(Debug, FromRow)]
struct EventRow {
    id: i64,
    gate: String,
    sequence: i64,
    at: String,
    kind: String,
    id_number: Option<String>,
    name: Option<String>,
    allowed: Option<bool>,
    reason: Option<String>,
    project_number: Option<String>,
    detail: Option<String>,
    has_snapshot: bool,
    received_at: String,
}

fn parse_reason(text: &str) -> Option<DenyReason> {
    [
        DenyReason::NotDrawnToday,
        DenyReason::OutsideWindow,
        DenyReason::ExpiredCard,
        DenyReason::UnreadableCard,
    ]
    .into_iter()
    .find(|r| r.as_str() == text)
}

/// A project's events: badges for it, and everything else that happened at its gates.
pub async fn project_events(
    pool: &SqlitePool,
    number: &str,
    full: bool,
    limit: i64,
) -> Result<Vec<StoredGateEvent>> {
    let project = catalog::project(pool, number).await?;
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT e.id, g.name AS gate, e.sequence, e.at, e.kind, e.id_number, e.name, e.allowed, e.reason, \
         e.project_number, e.detail, e.snapshot IS NOT NULL AS has_snapshot, e.received_at \
         FROM gate_events e JOIN gates g ON g.token_id = e.gate_id \
         WHERE e.project_number = ?1 OR (e.project_number IS NULL AND e.gate_id IN \
               (SELECT gate_id FROM gate_projects WHERE project_id = ?2)) \
         ORDER BY e.id DESC LIMIT ?3",
    )
    .bind(number)
    .bind(project.id)
    .bind(limit.clamp(1, 10_000))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredGateEvent {
            id: r.id,
            gate: r.gate,
            sequence: r.sequence,
            at: r.at,
            kind: r.kind,
            id_number: r
                .id_number
                .map(|id| if full { id } else { mask_id_number(&id) }),
            name: r.name,
            allowed: r.allowed,
            reason: r.reason.as_deref().and_then(parse_reason),
            project_number: r.project_number,
            detail: r.detail,
            has_snapshot: r.has_snapshot,
            received_at: r.received_at,
        })
        .collect())
}

pub async fn snapshot(pool: &SqlitePool, event_id: i64) -> Result<Vec<u8>> {
    let row: Option<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT snapshot FROM gate_events WHERE id = ?")
            .bind(event_id)
            .fetch_optional(pool)
            .await?;
    match row {
        Some((Some(bytes),)) => Ok(bytes),
        Some((None,)) => bail!(NotFound, "事件 {event_id} 没有快照"),
        None => bail!(NotFound, "事件 {event_id} 不存在"),
    }
}

/// Identity events waiting for the provincial expert library (delivered by `integrations`).
pub async fn outbox_pending(pool: &SqlitePool) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox WHERE exchange = 'gate-identity' AND state IN ('pending', 'sent')",
    )
    .fetch_one(pool)
    .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_checked_with_their_check_digit() {
        assert!(check_id_number("11010519491231002X").is_ok());
        assert!(check_id_number("110105194912310021").is_err());
        assert!(check_id_number("1101051949123100").is_err());
    }
}
