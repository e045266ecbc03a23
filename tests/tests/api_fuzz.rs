//! A fuzz run of the API's request bodies against a real daemon: for every POST and PUT operation
//! in `/api/openapi.json`, bodies generated from the operation's schema and then mutated (missing
//! fields, wrong types, huge strings, odd Unicode, extreme numbers, deep nesting, broken JSON,
//! wrong content types, random bytes), with odd path parameters too. No answer may be a 5xx, the
//! daemon must not panic, and the audit chain must still verify afterwards.
//!
//! `WITNESS_FUZZ_SEED` and `WITNESS_FUZZ_CASES` (per operation) change the run; the seed is
//! printed so a failure can be replayed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use witness_controller::auth::permission;
use witness_controller::cli::encode;
use witness_schemas::auth::Role;
use witness_tests::daemon::{witness_bin, Daemon};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that have broken parsers, paths, databases and terminals before.
const NASTY: &[&str] = &[
    "",
    " ",
    "../../etc/passwd",
    "/etc/shadow",
    "C:\\Windows\\system32",
    "a\u{0}b",
    "\u{202e}gnp.exe",
    "\u{200b}\u{feff}",
    "𠜎𠜱𠝹𠱓",
    "'; DROP TABLE projects; --",
    "%2e%2e%2f%2e%2e%2f",
    "\r\n\r\nX-Injected: 1",
    "<script>alert(1)</script>",
    "41022519800101123X",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "-1e-400",
    "0x1F",
    "１２３４５",
    "2026-02-30T25:61:61+08:00",
    "9999-12-31T23:59:59+14:00",
    "-271821-04-20T00:00:00Z",
    "_witness/审计日志.csv",
    "con",
    "admin",
    "construction",
    "gate",
];

/// Values of every JSON type, for "wrong type" mutations.
fn wrong_type(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(i64::MAX),
        5 => json!(u64::MAX),
        6 => json!(1.5e300),
        7 => json!(-0.0),
        8 => json!(""),
        9 => json!([]),
        10 => json!({}),
        11 => json!([1, "a", null, {"b": []}]),
        12 => json!({ "a": { "b": [[], {}] } }),
        _ => json!(rng.pick(NASTY)),
    }
}

fn random_string(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=3 => rng.pick(NASTY).to_string(),
        4 => "x".repeat(rng.below(300)),
        5 => "测".repeat(1 + rng.below(100)),
        6 => (0..1 + rng.below(40))
            .map(|_| char::from_u32(0x20 + rng.below(0x2FFF) as u32).unwrap_or('?'))
            .collect(),
        _ => format!("FZ-{}", rng.next() % 100_000),
    }
}

/// A decimal as the clearing schemas send it: mostly sane, sometimes extreme.
fn random_decimal(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => "9".repeat(1 + rng.below(500)),
        1 => format!("1e{}", rng.below(100_000)),
        2 => format!("-0.{}", "0".repeat(rng.below(400))),
        3 => "0".to_string(),
        4 => "1,234,567.89".to_string(),
        5 => format!("{}e-{}", rng.below(1000), rng.below(1000)),
        _ => format!("{}.{:02}", rng.next() % 1_000_000, rng.below(100)),
    }
}

/// A value that fits `schema` (resolving `$ref`s in `doc`), small and varied.
fn generate(doc: &Value, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return generate(doc, &doc["components"]["schemas"][name], rng, depth);
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return generate(doc, rng.pick(options), rng, depth);
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(object) = generate(doc, part, rng, depth) {
                merged.extend(object);
            }
        }
        return Value::Object(merged);
    }
    if let Some(choices) = schema["enum"].as_array() {
        return rng.pick(choices).clone();
    }
    let kind = match &schema["type"] {
        Value::Array(types) => rng.pick(types).as_str().unwrap_or("null").to_string(),
        Value::String(kind) => kind.clone(),
        _ if schema["properties"].is_object() => "object".to_string(),
        _ => "null".to_string(),
    };
    match kind.as_str() {
        "object" => {
            let mut object = Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if required.contains(&name.as_str()) || (depth < 4 && rng.chance(60)) {
                    // The schemas do not mark times as date-time; the names do.
                    let time_like = name.contains("opening")
                        || name.contains("window")
                        || name.ends_with("_at");
                    let value = if time_like && rng.chance(70) {
                        json!(*rng.pick(&[
                            "2026-03-18T09:30:00+08:00",
                            "2026-03-18T12:00:00+08:00",
                            "2026-03-18T01:30:00Z"
                        ]))
                    } else {
                        generate(doc, property, rng, depth + 1)
                    };
                    object.insert(name.clone(), value);
                }
            }
            Value::Object(object)
        }
        "array" => {
            let count = if depth > 4 { 0 } else { rng.below(4) };
            Value::Array(
                (0..count)
                    .map(|_| generate(doc, &schema["items"], rng, depth + 1))
                    .collect(),
            )
        }
        "string" if schema["pattern"].is_string() => json!(random_decimal(rng)),
        "string" if schema["format"] == "date-time" => json!("2026-03-18T09:30:00+08:00"),
        "string" => json!(random_string(rng)),
        "integer" => json!(match rng.below(5) {
            0 => -1,
            1 => i64::MAX,
            _ => (rng.next() % 1000) as i64,
        }),
        "number" => json!(rng.next() % 10_000),
        "boolean" => json!(rng.chance(50)),
        _ => Value::Null,
    }
}

/// JSON pointers of every node below the root.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let pointer = format!("{at}/{i}");
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        _ => {}
    }
}

fn random_node<'a>(value: &'a mut Value, rng: &mut Rng) -> Option<&'a mut Value> {
    let mut all = Vec::new();
    pointers(value, String::new(), &mut all);
    if all.is_empty() {
        return None;
    }
    let pointer = rng.pick(&all).clone();
    value.pointer_mut(&pointer)
}

/// One request body and its content type.
struct Case {
    label: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// A body for a JSON operation: the schema's shape, then one mutation.
fn json_case(doc: &Value, schema: &Value, rng: &mut Rng) -> Case {
    let mut value = generate(doc, schema, rng, 0);
    let json_type = Some("application/json");
    let (label, body): (&'static str, Vec<u8>) = match rng.below(14) {
        0 | 1 => ("valid shape", value.to_string().into_bytes()),
        2 => {
            let mut objects = vec![String::new()];
            pointers(&value, String::new(), &mut objects);
            objects.retain(|p| {
                value
                    .pointer(p)
                    .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
            });
            if !objects.is_empty() {
                let pointer = rng.pick(&objects).clone();
                if let Some(Value::Object(object)) = value.pointer_mut(&pointer) {
                    let keys: Vec<String> = object.keys().cloned().collect();
                    object.remove(rng.pick(&keys));
                }
            }
            ("missing field", value.to_string().into_bytes())
        }
        3 => {
            let replacement = wrong_type(rng);
            match random_node(&mut value, rng) {
                Some(node) => *node = replacement,
                None => value = replacement,
            }
            ("wrong type", value.to_string().into_bytes())
        }
        4 => {
            let huge = json!("界".repeat(20_000 + rng.below(300_000)));
            match random_node(&mut value, rng) {
                Some(node) => *node = huge,
                None => value = huge,
            }
            ("huge string", value.to_string().into_bytes())
        }
        5 => {
            let odd = json!(rng.pick(NASTY));
            match random_node(&mut value, rng) {
                Some(node) => *node = odd,
                None => value = odd,
            }
            ("odd string", value.to_string().into_bytes())
        }
        6 => {
            if let Value::Object(object) = &mut value {
                for i in 0..1 + rng.below(50) {
                    object.insert(format!("extra{i}"), wrong_type(rng));
                }
            }
            ("unknown fields", value.to_string().into_bytes())
        }
        7 => {
            let depth = 100 + rng.below(20_000);
            let text = format!("{}{}{}", "[".repeat(depth), value, "]".repeat(depth));
            ("deep nesting", text.into_bytes())
        }
        8 => ("top-level scalar", wrong_type(rng).to_string().into_bytes()),
        9 => {
            let mut bytes = value.to_string().into_bytes();
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
            ("truncated", bytes)
        }
        10 => {
            let mut bytes = value.to_string().into_bytes();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = rng.next() as u8;
                }
            }
            ("flipped bytes (maybe invalid UTF-8)", bytes)
        }
        11 => {
            let text = value.to_string();
            let number = rng.pick(&[
                "1e999",
                "-1e999",
                "18446744073709551616",
                "-9223372036854775809",
                "0.0000000000000000000000000001",
                "1E+2147483648",
            ]);
            let text = match random_node(&mut value, rng) {
                Some(node) => {
                    *node = json!("@@NUMBER@@");
                    value.to_string().replace("\"@@NUMBER@@\"", number)
                }
                None => text,
            };
            ("extreme number", text.into_bytes())
        }
        12 => {
            let text = value.to_string();
            let duplicated = match text.strip_prefix('{') {
                Some(rest) if rest.len() > 1 => format!(
                    "{{{rest_without_close},{rest}",
                    rest_without_close = &rest[..rest.len() - 1]
                ),
                _ => text,
            };
            ("duplicate keys", duplicated.into_bytes())
        }
        _ => {
            let length = rng.below(4096);
            let bytes = (0..length).map(|_| rng.next() as u8).collect();
            ("random bytes", bytes)
        }
    };
    let content_type = match rng.below(20) {
        0 => None,
        1 => Some("text/plain"),
        2 => Some("application/json; charset=gbk"),
        3 => Some("multipart/form-data; boundary=x"),
        _ => json_type,
    };
    Case {
        label,
        content_type,
        body,
    }
}

/// A body for the upload route, or for an operation that takes none.
fn bytes_case(rng: &mut Rng) -> Case {
    let size = match rng.below(4) {
        0 => 0,
        1 => rng.below(100),
        2 => rng.below(64 * 1024),
        _ => 1024 * 1024 + rng.below(64 * 1024), // just over the test's max_upload_bytes
    };
    let content_type = *rng.pick(&[
        Some("application/octet-stream"),
        Some("application/json"),
        None,
    ]);
    Case {
        label: "bytes",
        content_type,
        body: (0..size).map(|_| rng.next() as u8).collect(),
    }
}

/// A concrete path for an OpenAPI path: real names most of the time, odd ones otherwise.
fn concrete_path(path: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    for segment in path.split('/').skip(1) {
        out.push('/');
        match segment {
            "{number}" if path.ends_with("/backup") => {
                // The empty project: a backup of it is refused, so the run starts no burn jobs.
                let nasty = NASTY[rng.below(NASTY.len())];
                out.push_str(&encode(if rng.chance(70) { "FUZZ-EMPTY" } else { nasty }));
            }
            "{number}" => {
                let nasty = NASTY[rng.below(NASTY.len())];
                out.push_str(&encode(if rng.chance(75) { "FUZZ-1" } else { nasty }));
            }
            "{rel_path}" => {
                let segments: Vec<String> = (0..1 + rng.below(3))
                    .map(|_| {
                        if rng.chance(60) {
                            format!("f{}.bin", rng.below(50))
                        } else {
                            random_string(rng)
                        }
                    })
                    .collect();
                let encoded: Vec<String> = segments.iter().map(|s| encode(s)).collect();
                out.push_str(&encoded.join("/"));
            }
            s if s.starts_with('{') => out.push_str(&encode(&random_string(rng))),
            s => out.push_str(s),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_bodies_never_get_a_server_error() -> Result<()> {
    let seed: u64 = std::env::var("WITNESS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026_0008);
    let cases: usize = std::env::var("WITNESS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let root = tempfile::tempdir()?;
    let config = root.path().join("witness.toml");
    std::fs::write(&config, "[server]\nmax_upload_bytes = 1048576\n")?;
    let mut daemon = Daemon::start(&root.path().join("data"), Some(&config)).await?;
    let token = daemon.admin_token().context("no admin token")?;
    // No connection reuse: a refused request whose body the daemon did not read ends its
    // connection, and reusing one that is being closed fails on the client side, not the daemon's.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()?;
    for number in ["FUZZ-1", "FUZZ-EMPTY"] {
        let project = json!({ "number": number, "name": "模糊测试", "category": "procurement", "opening": "2026-03-18T09:30:00+08:00" });
        let answer = http
            .post(format!("{}/api/projects", daemon.url))
            .bearer_auth(&token)
            .json(&project)
            .send()
            .await?;
        ensure!(
            answer.status().as_u16() == 201,
            "creating {number}: {}",
            answer.status()
        );
    }
    let doc: Value = http
        .get(format!("{}/api/openapi.json", daemon.url))
        .send()
        .await?
        .json()
        .await?;
    // A token per role: each operation is fuzzed as a role the table lets through, so the bodies
    // reach the handlers.
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        let body = json!({ "name": format!("fuzz-{}", role.as_str()), "role": role });
        let answer = http
            .post(format!("{}/api/tokens", daemon.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        ensure!(
            answer.status().as_u16() == 201,
            "creating a {} token: {}",
            role.as_str(),
            answer.status()
        );
        let created: Value = answer.json().await?;
        tokens.insert(
            role,
            created["secret"].as_str().context("no secret")?.to_string(),
        );
    }

    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().context("no paths")? {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if method == "post" || method == "put" {
                let schema =
                    operation["requestBody"]["content"]["application/json"]["schema"].clone();
                // An operation that takes no body gets a few junk ones only (a reindex costs time).
                let count = if operation["requestBody"].is_null() {
                    (cases / 10).max(10)
                } else {
                    cases
                };
                operations.push((method.to_ascii_uppercase(), path.clone(), schema, count));
            }
        }
    }
    ensure!(
        operations.len() >= 10,
        "only {} POST/PUT operations in the OpenAPI document",
        operations.len()
    );

    let started = Instant::now();
    let mut rng = Rng(seed | 1);
    let mut tried = 0usize;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut per_operation = Vec::new();
    let mut server_errors = Vec::new();
    for (method, path, schema, count) in &operations {
        let wildcard = path
            .rfind('{')
            .map(|i| format!("{}{{*{}", &path[..i], &path[i + 1..]));
        let access = [Some(path.clone()), wildcard]
            .into_iter()
            .flatten()
            .find_map(|p| permission(method, &p))
            .map(|p| p.access);
        let role = Role::ALL
            .into_iter()
            .find(|r| access.is_some_and(|a| a.allows(*r)))
            .unwrap_or(Role::Admin);
        let token = &tokens[&role];
        let operation_started = Instant::now();
        let mut requests = Vec::new();
        for _ in 0..*count {
            let case = if schema.is_null() {
                bytes_case(&mut rng)
            } else {
                json_case(&doc, schema, &mut rng)
            };
            requests.push((concrete_path(path, &mut rng), case));
        }
        let answers: Vec<_> =
            futures_util::stream::iter(requests.into_iter().map(|(url_path, case)| {
                let (http, token, url) = (&http, &token, &daemon.url);
                async move {
                    let mut request = http
                        .request(method.parse().expect("method"), format!("{url}{url_path}"))
                        .bearer_auth(token);
                    if let Some(content_type) = case.content_type {
                        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
                    }
                    let excerpt = String::from_utf8_lossy(&case.body[..case.body.len().min(200)])
                        .into_owned();
                    let result = request.body(case.body).send().await;
                    let outcome = match result {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let text = response.text().await.unwrap_or_default();
                            Ok((status, text))
                        }
                        Err(e) => {
                            // reqwest's message hides the cause (reset, timeout, …): add the chain.
                            let mut text = e.to_string();
                            let mut source = std::error::Error::source(&e);
                            while let Some(cause) = source {
                                text.push_str(&format!(": {cause}"));
                                source = cause.source();
                            }
                            Err(text)
                        }
                    };
                    (url_path, case.label, excerpt, outcome)
                }
            }))
            .buffer_unordered(4)
            .collect()
            .await;
        let mut here: BTreeMap<u16, usize> = BTreeMap::new();
        for (url_path, label, excerpt, outcome) in answers {
            tried += 1;
            match outcome {
                Ok((status, text)) => {
                    *statuses.entry(status).or_default() += 1;
                    *here.entry(status).or_default() += 1;
                    if status >= 500 {
                        server_errors.push(format!(
                            "{method} {url_path} [{label}] → {status}: {text}\n    body: {excerpt}"
                        ));
                    }
                }
                // An oversized body may be answered early (413, or 429 from the login limiter)
                // and the connection closed before the client has sent it all.
                Err(e)
                    if label == "bytes"
                        || (label == "huge string" && e.contains("error writing a body")) =>
                {
                    *here.entry(0).or_default() += 1;
                    let _ = e;
                }
                Err(e) => {
                    server_errors.push(format!("{method} {url_path} [{label}] → no answer: {e}"))
                }
            }
        }
        per_operation.push(format!(
            "  {method} {path} as {} ({:.1} s): {here:?}",
            role.as_str(),
            operation_started.elapsed().as_secs_f64()
        ));
    }
    let elapsed = started.elapsed();

    // The daemon is still up, did not panic, and its audit chain survived the concurrent appends.
    let alive = http
        .get(format!("{}/api/audit/verify", daemon.url))
        .bearer_auth(&token)
        .send()
        .await?;
    ensure!(
        alive.status().as_u16() == 200,
        "the daemon does not answer after the fuzz run"
    );
    let verification: Value = alive.json().await?;
    let log = daemon.log_text();
    // The CLI checks the same chain offline, as on the appliance after a stop.
    daemon.kill9();
    let clock = Instant::now();
    let offline = std::process::Command::new(witness_bin())
        .args(["audit", "verify", "--data"])
        .arg(&daemon.data)
        .output()?;
    let verify_time = clock.elapsed();
    ensure!(
        offline.status.success(),
        "witness audit verify after the fuzz run: {}{}",
        String::from_utf8_lossy(&offline.stdout),
        String::from_utf8_lossy(&offline.stderr)
    );
    println!(
        "witness audit verify: {} records in {:.2} s (process start included)",
        verification["records"],
        verify_time.as_secs_f64()
    );
    let panics: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("panicked") || l.contains("internal error"))
        .collect();

    println!(
        "API fuzz (seed {seed}): {tried} requests over {} POST/PUT operations in {:.1} s; statuses {statuses:?} (0 = connection closed by an early 413); {} answered 5xx; {} panics/internal errors logged; audit chain of {} records {}",
        operations.len(),
        elapsed.as_secs_f64(),
        server_errors.len(),
        panics.len(),
        verification["records"],
        if verification["first_broken"].is_null() { "intact" } else { "BROKEN" }
    );
    println!("{}", per_operation.join("\n"));
    assert!(
        server_errors.is_empty(),
        "{} requests got a 5xx or no answer:\n{}",
        server_errors.len(),
        server_errors.join("\n")
    );
    assert!(
        panics.is_empty(),
        "the daemon logged panics or internal errors:\n{}",
        panics.join("\n")
    );
    assert!(
        verification["first_broken"].is_null(),
        "the audit chain broke: {verification}"
    );
    Ok(())
}
