//! Helpers of the gate tests and benchmark: a registered gate on a real daemon, the
//! `witness-gate` agent as a child process (killable with SIGKILL), and made-up ID numbers with
//! valid check digits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use time::OffsetDateTime;
use witness_drivers::idcard::simulator::SimCard;

use crate::daemon::{witness_bin, Daemon};

/// `target/<profile>/witness-gate`, beside the `witness` binary (or `WITNESS_GATE_BIN`).
pub fn agent_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WITNESS_GATE_BIN") {
        return PathBuf::from(path);
    }
    witness_bin().with_file_name("witness-gate")
}

/// An 18-character ID number from 17 digits, with its ISO 7064 MOD 11-2 check character.
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

/// The n-th made-up expert: a Lankao (410225) number born in 1970–1989.
pub fn expert_id(n: u32) -> String {
    id_number(&format!(
        "410225{}{:02}{:02}{:03}",
        1970 + n % 20,
        1 + n % 12,
        1 + n % 28,
        100 + n % 900
    ))
}

pub fn card(name: &str, id: &str) -> SimCard {
    SimCard::new(name, id, "20391231")
}

pub fn cst_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8))
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Calls the daemon's API with the admin token; the JSON answer, or an error with the body.
pub async fn admin(
    daemon: &Daemon,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", daemon.url);
    let mut request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    request = request.bearer_auth(daemon.admin_token().unwrap_or_default());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(
        status.is_success(),
        "{method} {path}: HTTP {status}: {text}"
    );
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Registers project `number` (if new) and a gate for it; returns the gate's token secret.
pub async fn register_gate(daemon: &Daemon, number: &str, gate: &str) -> anyhow::Result<String> {
    let project = json!({"number": number, "name": "兰考县农村公路提质改造工程", "category": "construction", "opening": "2026-03-18T09:30:00+08:00"});
    if admin(daemon, "GET", &format!("/api/projects/{number}"), None)
        .await
        .is_err()
    {
        admin(daemon, "POST", "/api/projects", Some(project)).await?;
    }
    let created = admin(
        daemon,
        "POST",
        "/api/gates",
        Some(json!({"name": gate, "location": "三楼评标区", "projects": [number]})),
    )
    .await?;
    created["token"]
        .as_str()
        .map(str::to_string)
        .context("no token in the answer")
}

/// Draws an expert for `number` with a window from `start` to `end`.
pub async fn draw(
    daemon: &Daemon,
    number: &str,
    name: &str,
    id: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> anyhow::Result<()> {
    let body = json!({"name": name, "id_number": id, "window_start": rfc3339(start), "window_end": rfc3339(end)});
    admin(
        daemon,
        "POST",
        &format!("/api/projects/{number}/draws"),
        Some(body),
    )
    .await?;
    Ok(())
}

/// The gate's registry entry.
pub async fn gate_state(daemon: &Daemon, gate: &str) -> anyhow::Result<Value> {
    let gates = admin(daemon, "GET", "/api/gates", None).await?;
    gates
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == gate).cloned())
        .context("gate not in the registry")
}

/// Options of an agent run.
pub struct AgentOptions {
    pub data: PathBuf,
    pub server: String,
    pub token: String,
    pub reader: PathBuf,
    pub camera: Option<PathBuf>,
    pub journal: PathBuf,
}

/// A running `witness-gate run`.
pub struct Agent {
    child: Option<Child>,
    options_args: Vec<String>,
    pub log: PathBuf,
    token_file: PathBuf,
}

impl Agent {
    pub fn start(options: &AgentOptions) -> anyhow::Result<Agent> {
        Agent::start_with(options, &[])
    }

    /// Like `start`, with more options for `witness-gate run` (e.g. `--pin-cert PATH`).
    pub fn start_with(options: &AgentOptions, extra: &[&str]) -> anyhow::Result<Agent> {
        let token_file = options.data.with_extension("token");
        std::fs::write(&token_file, &options.token)?;
        let mut args = vec![
            "run".to_string(),
            "--data".into(),
            options.data.display().to_string(),
            "--server".into(),
            options.server.clone(),
            "--token-file".into(),
            token_file.display().to_string(),
            "--reader".into(),
            options.reader.display().to_string(),
            "--relay".into(),
            format!("fake:{}", options.journal.display()),
            // Fast polling and syncing so a thousand badges take seconds, not minutes.
            "--poll-ms".into(),
            "2".into(),
            "--reader-timeout-ms".into(),
            "300".into(),
            "--sync-ms".into(),
            "100".into(),
        ];
        if let Some(camera) = &options.camera {
            args.push("--camera".into());
            args.push(format!("file:{}", camera.display()));
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut agent = Agent {
            child: None,
            options_args: args,
            log: options.data.with_extension("log"),
            token_file,
        };
        agent.spawn()?;
        Ok(agent)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(agent_bin())
            .args(&self.options_args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", agent_bin().display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: a power cut as far as the process can tell.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.spawn()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sequences the agent reported as recorded (committed), from its log.
    pub fn recorded_sequences(&self) -> Vec<i64> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("event recorded"))
            .filter_map(|l| {
                l.split("sequence=")
                    .nth(1)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Waits until the log contains `text`.
    pub fn wait_log(&mut self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.log_text().contains(text) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("the agent exited with {status}:\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!("the agent's log never said {text:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn token_file(&self) -> &Path {
        &self.token_file
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Lines in the fake relay's journal: door openings.
pub fn door_openings(journal: &Path) -> usize {
    std::fs::read_to_string(journal)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until `f` holds, polling every 50 ms.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
