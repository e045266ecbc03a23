//! A stand-in for a provincial or city platform on loopback — by default the expert library
//! (省综合评标专家库), or any target with schemas in `schemas::integration` — for the tests, the
//! benchmark and demonstrations: it validates every request against the target's JSON Schema
//! of that exchange, de-duplicates by the Idempotency-Key header (counting duplicates), answers drawing
//! requests with a drawing result, and on command is down (connection refused), answers 500,
//! answers slowly, answers garbage or partial JSON.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use witness_schemas::integration::{
    has_schema, validate_message, Exchange, EXPERT_LIBRARY, IDEMPOTENCY_HEADER, REPLY,
};

/// How the stand-in answers a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Validates, records and acknowledges.
    None,
    /// Answers 500 without recording.
    Error500,
    /// Records, then answers only after this long (longer than the client waits).
    Slow(Duration),
    /// Answers 200 with an HTML error page instead of JSON, without recording.
    Garbage,
    /// Records, then answers 200 with JSON cut off in the middle.
    Partial,
}

/// One message as the stand-in stored it.
#[derive(Debug, Clone)]
pub struct Received {
    pub exchange: String,
    pub key: String,
    pub payload: Value,
    pub reply: Value,
}

#[derive(Debug, Default)]
struct Inner {
    /// The target whose schemas requests are validated against.
    target: &'static str,
    /// Faults for the next requests, one per request; afterwards `pattern` repeats.
    queue: VecDeque<Fault>,
    pattern: Vec<Fault>,
    pattern_index: usize,
    /// By idempotency key; each key is stored once.
    received: BTreeMap<String, Received>,
    /// Keys in arrival order.
    order: Vec<String>,
    duplicates: u64,
    requests: u64,
    /// Requests refused: schema violations, missing key, bad token.
    invalid: Vec<String>,
    token: Option<String>,
    experts: Vec<(String, String)>,
    receipt: u64,
    /// The target's synchronous exchanges (queries), when it has any.
    queries: Option<Arc<dyn Queries>>,
    /// Queries answered, in arrival order (their `key` is empty: queries carry none).
    asked: Vec<Received>,
}

/// The synchronous exchanges (queries) of a target: validated by the same schema table as the
/// pushes, answered at once, not de-duplicated, and subject to the same faults.
pub trait Queries: Send + Sync {
    /// Whether `exchange` is a query this stand-in answers.
    fn answers(&self, exchange: &str) -> bool;
    /// The answer to a request that is valid by the exchange's schema.
    fn answer(&self, exchange: &str, request: &Value) -> Value;
}

impl std::fmt::Debug for dyn Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queries")
    }
}

/// The running stand-in.
pub struct StandIn {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

/// Appends the ISO 7064 MOD 11-2 check character to 17 digits.
pub fn id_number(first17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    format!("{first17}{}", CHECK[(sum % 11) as usize])
}

/// The expert pool the stand-in draws from: valid ID numbers, fictitious people.
pub fn sample_experts() -> Vec<(String, String)> {
    [
        "张建国",
        "李秀英",
        "王志强",
        "刘芳",
        "陈明",
        "杨丽",
        "赵伟",
        "黄磊",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        (
            name.to_string(),
            id_number(&format!("4102251970010{:04}", 1000 + i)),
        )
    })
    .collect()
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl StandIn {
    /// Starts on a free loopback port.
    pub async fn start() -> anyhow::Result<Arc<StandIn>> {
        StandIn::start_on("127.0.0.1:0".parse()?).await
    }

    /// Starts a stand-in of another target (`SUPERVISION_PLATFORM`, …) on a free port.
    pub async fn start_for(target: &'static str) -> anyhow::Result<Arc<StandIn>> {
        StandIn::start_target_on(target, "127.0.0.1:0".parse()?).await
    }

    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Arc<StandIn>> {
        StandIn::start_target_on(EXPERT_LIBRARY, addr).await
    }

    async fn start_target_on(
        target: &'static str,
        addr: SocketAddr,
    ) -> anyhow::Result<Arc<StandIn>> {
        let inner = Arc::new(Mutex::new(Inner {
            target,
            experts: sample_experts(),
            ..Inner::default()
        }));
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let standin = Arc::new(StandIn {
            addr,
            inner,
            server: Mutex::new(None),
        });
        standin.serve(listener);
        Ok(standin)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/{exchange}", post(receive))
            .with_state(Arc::clone(&self.inner));
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    /// Down: the port is closed, so connections are refused.
    pub fn down(&self) {
        if let Some(handle) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            handle.abort();
        }
    }

    /// Up again on the same port.
    pub async fn up(&self) -> anyhow::Result<()> {
        self.down();
        // The aborted task drops its listener on its next poll; retry the bind briefly.
        let mut tries = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.serve(listener);
        Ok(())
    }

    /// The next requests get these faults, in order.
    pub fn push_faults(&self, faults: &[Fault]) {
        lock(&self.inner).queue.extend(faults.iter().copied());
    }

    /// After the queued faults, requests cycle through this pattern (empty: all healthy).
    pub fn set_pattern(&self, pattern: &[Fault]) {
        let mut inner = lock(&self.inner);
        inner.pattern = pattern.to_vec();
        inner.pattern_index = 0;
    }

    /// Requires `Authorization: Bearer <token>`.
    pub fn require_token(&self, token: &str) {
        lock(&self.inner).token = Some(token.to_string());
    }

    /// Answers the target's queries with `queries` (see [`Queries`]).
    pub fn set_queries(&self, queries: Arc<dyn Queries>) {
        lock(&self.inner).queries = Some(queries);
    }

    /// The queries answered so far, oldest first.
    pub fn asked(&self) -> Vec<Received> {
        lock(&self.inner).asked.clone()
    }

    pub fn received(&self) -> Vec<Received> {
        let inner = lock(&self.inner);
        inner
            .order
            .iter()
            .filter_map(|k| inner.received.get(k).cloned())
            .collect()
    }

    pub fn received_of(&self, exchange: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.exchange == exchange)
            .collect()
    }

    /// Requests for keys already stored (absorbed by de-duplication).
    pub fn duplicates(&self) -> u64 {
        lock(&self.inner).duplicates
    }

    pub fn requests(&self) -> u64 {
        lock(&self.inner).requests
    }

    /// Refused requests with the reason; a correct sender never causes one.
    pub fn invalid(&self) -> Vec<String> {
        lock(&self.inner).invalid.clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.down();
    }
}

fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // Re-binding the same port right after `down` must not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(exchange_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut guard = lock(&inner);
        guard.requests += 1;
        match guard.queue.pop_front() {
            Some(f) => f,
            None if guard.pattern.is_empty() => Fault::None,
            None => {
                let f = guard.pattern[guard.pattern_index % guard.pattern.len()];
                guard.pattern_index += 1;
                f
            }
        }
    };
    match fault {
        Fault::Error500 => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        Fault::Garbage => {
            return (StatusCode::OK, "<html><body>502 Bad Gateway</body></html>").into_response()
        }
        _ => {}
    }
    let refuse = |why: String| {
        lock(&inner).invalid.push(why.clone());
        reply(
            StatusCode::BAD_REQUEST,
            json!({"CODE": "2", "MESSAGE": why}),
        )
    };
    let target = lock(&inner).target;
    if exchange_name == REPLY || !has_schema(target, &exchange_name) {
        return refuse(format!("unknown exchange {exchange_name}"));
    }
    let token = lock(&inner).token.clone();
    if let Some(token) = token {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if given != format!("Bearer {token}") {
            return refuse("bad or missing bearer token".to_string());
        }
    }
    let queries = lock(&inner).queries.clone();
    if let Some(queries) = queries.filter(|q| q.answers(&exchange_name)) {
        let request: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return refuse(format!("body is not JSON: {e}")),
        };
        if let Err(problems) = validate_message(target, &exchange_name, &request) {
            return refuse(format!("{exchange_name}: {problems}"));
        }
        let answer = queries.answer(&exchange_name, &request);
        lock(&inner).asked.push(Received {
            exchange: exchange_name,
            key: String::new(),
            payload: request,
            reply: answer.clone(),
        });
        return respond(fault, answer).await;
    }
    let Some(key) = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|k| !k.is_empty())
    else {
        return refuse(format!("{IDEMPOTENCY_HEADER} missing"));
    };
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(format!("body is not JSON: {e}")),
    };
    if let Err(problems) = validate_message(target, &exchange_name, &payload) {
        return refuse(format!("{exchange_name} {key}: {problems}"));
    }
    let answer = {
        let mut guard = lock(&inner);
        if let Some(previous) = guard.received.get(&key) {
            // A resend: acknowledged again, as a duplicate, with the original answer.
            let mut again = previous.reply.clone();
            again["CODE"] = json!("1");
            again["MESSAGE"] = json!("重复报送，已于此前接收");
            guard.duplicates += 1;
            again
        } else {
            guard.receipt += 1;
            let mut answer = json!({
                "CODE": "0",
                "MESSAGE": "接收成功",
                "RECEIPT_ID": format!("R{:08}", guard.receipt),
            });
            if target == EXPERT_LIBRARY && exchange_name == Exchange::ExpertDrawRequest.as_str() {
                answer["DRAW_RESULT"] = draw(&guard.experts, &payload);
            }
            guard.received.insert(
                key.clone(),
                Received {
                    exchange: exchange_name.clone(),
                    key: key.clone(),
                    payload,
                    reply: answer.clone(),
                },
            );
            guard.order.push(key);
            answer
        }
    };
    respond(fault, answer).await
}

/// Answers with `answer`, slowly or cut off when that is the fault of this request.
async fn respond(fault: Fault, answer: Value) -> Response {
    match fault {
        Fault::Slow(delay) => {
            tokio::time::sleep(delay).await;
            reply(StatusCode::OK, answer)
        }
        Fault::Partial => {
            let text = answer.to_string();
            let cut: String = text.chars().take(text.chars().count() / 2).collect();
            (StatusCode::OK, [("content-type", "application/json")], cut).into_response()
        }
        _ => reply(StatusCode::OK, answer),
    }
}

/// The drawing: the first EXPERT_COUNT experts of the pool, for eight hours from the opening.
fn draw(experts: &[(String, String)], request: &Value) -> Value {
    let count = request
        .get("EXPERT_COUNT")
        .and_then(Value::as_u64)
        .unwrap_or(1) as usize;
    let start = request
        .get("BID_OPEN_TIME")
        .and_then(Value::as_str)
        .unwrap_or("20260101090000");
    // yyyyMMddHHmmss + 8 h, staying within the day for openings before 16:00.
    let hour: u32 = start.get(8..10).and_then(|h| h.parse().ok()).unwrap_or(9);
    let end = format!("{}{:02}{}", &start[..8], (hour + 8).min(23), &start[10..]);
    Value::Array(
        experts
            .iter()
            .take(count)
            .map(|(name, id)| {
                json!({
                    "EXPERT_NAME": name,
                    "ID_CARD_NO": id,
                    "EVALUATION_START_TIME": start,
                    "EVALUATION_END_TIME": end,
                })
            })
            .collect(),
    )
}
