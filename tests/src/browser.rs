//! A small headless-Chromium driver over the Chrome DevTools Protocol, for testing the web UI.
//!
//! It starts Debian's `/usr/bin/chromium` with a fresh profile, attaches to its single page
//! target with a flattened session, and speaks CDP over one websocket (tokio-tungstenite).
//! Nothing is downloaded. The page runs with the `Asia/Shanghai` time zone, like the appliance's
//! users, and a 1280×900 viewport.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The browser binary (Debian's wrapper script, which `exec`s the real one).
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long Chromium may take to print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one CDP command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `goto` waits for the page's load event.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `wait_for` re-evaluates its predicate.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const VIEWPORT: (u32, u32) = (1280, 900);
const TIME_ZONE: &str = "Asia/Shanghai";

type WsSink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value>>>>>;

/// One running Chromium with one page. Kills Chromium and removes its profile on drop.
pub struct Browser {
    child: Child,
    profile: Option<PathBuf>,
    sink: tokio::sync::Mutex<WsSink>,
    pending: Pending,
    events: broadcast::Sender<Value>,
    next_id: AtomicU64,
    session_id: String,
    reader: JoinHandle<()>,
    stderr_drain: JoinHandle<()>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("profile", &self.profile)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and attaches to its page.
    pub async fn launch() -> Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("witness-chromium-")
            .tempdir()
            .context("creating a Chromium profile directory")?
            .keep();
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so that Drop can kill the renderers and helpers too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(err).with_context(|| format!("starting {CHROMIUM}"));
            }
        };
        // From here on a failure must still kill Chromium and remove the profile.
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ws_url, stderr_drain) = match read_devtools_url(&mut child, stderr).await {
            Ok(found) => found,
            Err(err) => {
                kill_and_clean(&mut child, Some(&profile));
                return Err(err);
            }
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(512 << 20))
            .max_frame_size(Some(512 << 20));
        let socket = match tokio_tungstenite::connect_async_with_config(
            &ws_url,
            Some(config),
            false,
        )
        .await
        {
            Ok((socket, _)) => socket,
            Err(err) => {
                stderr_drain.abort();
                kill_and_clean(&mut child, Some(&profile));
                return Err(anyhow!(err).context(format!("connecting to DevTools at {ws_url}")));
            }
        };
        let (sink, stream) = socket.split();
        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(1024);
        let reader = tokio::spawn(read_messages(stream, pending.clone(), events.clone()));
        let mut browser = Browser {
            child,
            profile: Some(profile),
            sink: tokio::sync::Mutex::new(sink),
            pending,
            events,
            next_id: AtomicU64::new(1),
            session_id: String::new(),
            reader,
            stderr_drain,
        };
        // On failure `browser` is dropped, which kills Chromium and removes the profile.
        browser.attach().await?;
        Ok(browser)
    }

    /// Finds the page target, attaches with a flat session and sets up the page.
    async fn attach(&mut self) -> Result<()> {
        let started = Instant::now();
        let target_id = loop {
            let targets = self.command(None, "Target.getTargets", json!({})).await?;
            let page = targets["targetInfos"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["targetId"].as_str().map(str::to_owned));
            if let Some(id) = page {
                break id;
            }
            if started.elapsed() > LAUNCH_TIMEOUT {
                bail!("Chromium has no page target: {targets}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        let attached = self
            .command(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        self.session_id = attached["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("Target.attachToTarget gave no sessionId: {attached}"))?
            .to_owned();
        self.send("Page.enable", json!({})).await?;
        self.send(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": VIEWPORT.0,
                "height": VIEWPORT.1,
                "deviceScaleFactor": 1,
                "mobile": false,
            }),
        )
        .await?;
        self.send(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": TIME_ZONE }),
        )
        .await?;
        Ok(())
    }

    /// Chromium's process id (the leader of its process group), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The fresh profile directory (`--user-data-dir`), removed on drop.
    pub fn profile_dir(&self) -> &Path {
        self.profile
            .as_deref()
            .expect("the profile lives as long as the browser")
    }

    /// Navigates the page to `url` and waits for its load event.
    ///
    /// A change of the fragment only (`#/...`) does not load a document; it returns as soon as
    /// the navigation is done.
    pub async fn goto(&self, url: &str) -> Result<()> {
        // Subscribe before navigating so the load event cannot be missed.
        let mut events = self.events.subscribe();
        let result = self.send("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = result["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigating to {url} failed: {error}");
        }
        if result["loaderId"].as_str().is_none() {
            return Ok(()); // same-document navigation
        }
        let deadline = tokio::time::Instant::now() + LOAD_TIMEOUT;
        loop {
            let event = match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => bail!("timed out after {LOAD_TIMEOUT:?} waiting for {url} to load"),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    bail!("the browser connection closed while loading {url}")
                }
                Ok(Ok(event)) => event,
            };
            if event["sessionId"] == self.session_id.as_str()
                && event["method"] == "Page.loadEventFired"
            {
                return Ok(());
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value as JSON.
    ///
    /// Promises are awaited. `undefined` becomes `null`; values JSON cannot hold (`NaN`,
    /// `Infinity`, `-0`, bigints) come back as their text. A thrown exception is an `Err`
    /// carrying its message.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let result = self.evaluate(js).await?;
        if let Some(text) = result["unserializableValue"].as_str() {
            return Ok(Value::String(text.to_owned()));
        }
        Ok(result.get("value").cloned().unwrap_or(Value::Null))
    }

    /// `Runtime.evaluate` by value; returns the RemoteObject, or the exception as an `Err`.
    async fn evaluate(&self, js: &str) -> Result<Value> {
        let mut answer = self
            .send(
                "Runtime.evaluate",
                json!({
                    "expression": js,
                    "awaitPromise": true,
                    "returnByValue": true,
                    "userGesture": true,
                }),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let message = details["exception"]["description"]
                .as_str()
                .or_else(|| details["exception"]["value"].as_str())
                .or_else(|| details["text"].as_str())
                .unwrap_or("unknown JavaScript exception");
            bail!("JavaScript error: {message}");
        }
        Ok(answer["result"].take())
    }

    /// Clicks the centre of the first element matching `css_selector` with real mouse events.
    ///
    /// The element is scrolled into view first. It is an error when nothing matches, when the
    /// element has no box (hidden), or when another element covers its centre.
    pub async fn click(&self, css_selector: &str) -> Result<()> {
        let selector = serde_json::to_string(css_selector)?;
        let script = format!(
            r#"(() => {{
                const el = document.querySelector({selector});
                if (!el) return {{ error: "no element matches the selector" }};
                el.scrollIntoView({{ block: "center", inline: "center" }});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return {{ error: "the element is not visible" }};
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                if (hit && hit !== el && !el.contains(hit)) {{
                    return {{ error: "the element is covered by <" + hit.tagName.toLowerCase() + ">" }};
                }}
                return {{ x, y }};
            }})()"#
        );
        let spot = self
            .eval(&script)
            .await
            .with_context(|| format!("clicking {css_selector:?}"))?;
        if let Some(error) = spot["error"].as_str() {
            bail!("cannot click {css_selector:?}: {error}");
        }
        let (x, y) = match (spot["x"].as_f64(), spot["y"].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => bail!("cannot click {css_selector:?}: no position ({spot})"),
        };
        self.send(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
        )
        .await?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.send(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// Evaluates `js_predicate` every 50 ms until its value is truthy and returns that value.
    ///
    /// Exceptions while waiting count as "not yet" (the page may be between documents). On
    /// timeout the error names the last value or exception seen.
    pub async fn wait_for(&self, js_predicate: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.evaluate(js_predicate).await {
                Ok(result) => {
                    let value = match result["unserializableValue"].as_str() {
                        Some(text) => Value::String(text.to_owned()),
                        None => result.get("value").cloned().unwrap_or(Value::Null),
                    };
                    if truthy(&result) {
                        return Ok(value);
                    }
                    value.to_string()
                }
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for `{js_predicate}`; last: {last}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Puts `files` into the `<input type="file">` matching `css_selector`, as if the user
    /// had picked them; the page gets its `input` and `change` events.
    pub async fn set_files(&self, css_selector: &str, files: &[&Path]) -> Result<()> {
        let document = self.send("DOM.getDocument", json!({ "depth": 0 })).await?;
        let found = self
            .send(
                "DOM.querySelector",
                json!({ "nodeId": document["root"]["nodeId"], "selector": css_selector }),
            )
            .await?;
        let node_id = found["nodeId"].as_i64().unwrap_or(0);
        if node_id == 0 {
            bail!("cannot set files on {css_selector:?}: no element matches the selector");
        }
        let files: Vec<String> = files
            .iter()
            .map(|f| std::path::absolute(f).map(|p| p.display().to_string()))
            .collect::<std::io::Result<_>>()?;
        self.send(
            "DOM.setFileInputFiles",
            json!({ "nodeId": node_id, "files": files }),
        )
        .await?;
        Ok(())
    }

    /// Opens `url` (a page of the daemon) logged in as the first admin: logs in with its
    /// one-time password and changes it to `new_password`, as the login form does, then loads
    /// the page again with the session.
    pub async fn open_as_first_admin(
        &self,
        url: &str,
        one_time: &str,
        new_password: &str,
    ) -> Result<()> {
        self.goto(url).await?;
        let status = self
            .eval(&format!(
                "(async () => {{
                   const login = await fetch('/api/login', {{ method: 'POST',
                     headers: {{ 'Content-Type': 'application/json' }},
                     body: JSON.stringify({{ username: 'admin', password: {pw} }}) }});
                   const session = await login.json();
                   const change = await fetch('/api/account/password', {{ method: 'POST',
                     headers: {{ 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token }},
                     body: JSON.stringify({{ old_password: {pw}, new_password: {fresh} }}) }});
                   return [login.status, change.status];
                 }})()",
                pw = serde_json::to_string(one_time)?,
                fresh = serde_json::to_string(new_password)?,
            ))
            .await?;
        if status[0] != 200 || status[1].as_u64().unwrap_or(0) >= 300 {
            bail!("logging in as admin failed: {status}");
        }
        self.goto(url).await
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let shot = self
            .send("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| anyhow!("Page.captureScreenshot returned no data"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("decoding the screenshot")?;
        tokio::fs::write(path, png)
            .await
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Sends a command to the attached page.
    pub async fn send(&self, method: &str, params: Value) -> Result<Value> {
        self.command(Some(&self.session_id), method, params).await
    }

    /// Sends one CDP command (to the browser, or to a session) and waits for its answer.
    async fn command(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (answer_tx, answer_rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending map poisoned")
            .insert(id, answer_tx);
        let sent = self
            .sink
            .lock()
            .await
            .send(Message::text(message.to_string()))
            .await;
        if let Err(err) = sent {
            self.pending
                .lock()
                .expect("pending map poisoned")
                .remove(&id);
            return Err(anyhow!(err).context(format!("sending {method}")));
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, answer_rx).await {
            Ok(Ok(answer)) => answer.with_context(|| format!("{method} failed")),
            Ok(Err(_)) => bail!("the browser connection closed during {method}"),
            Err(_) => {
                self.pending
                    .lock()
                    .expect("pending map poisoned")
                    .remove(&id);
                bail!("{method} got no answer within {COMMAND_TIMEOUT:?}")
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        self.stderr_drain.abort();
        kill_and_clean(&mut self.child, self.profile.take().as_deref());
    }
}

/// JavaScript truthiness of a RemoteObject returned by value.
fn truthy(remote: &Value) -> bool {
    if let Some(text) = remote["unserializableValue"].as_str() {
        // NaN, -0 and 0n are falsy; Infinity, -Infinity and other bigints are truthy.
        return !matches!(text, "NaN" | "-0" | "0n");
    }
    match remote.get("value") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// Reads Chromium's stderr until the `DevTools listening on ws://...` line, then keeps
/// draining it in the background so Chromium never blocks on a full pipe.
async fn read_devtools_url(
    child: &mut Child,
    stderr: tokio::process::ChildStderr,
) -> Result<(String, JoinHandle<()>)> {
    const MARKER: &str = "DevTools listening on ";
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(LAUNCH_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(at) = line.find(MARKER) {
                return Ok(Some(line[at + MARKER.len()..].trim().to_owned()));
            }
            seen.push(line);
        }
        Ok::<_, std::io::Error>(None)
    })
    .await;
    let url = match found {
        Ok(Ok(Some(url))) => url,
        Ok(Ok(None)) => {
            let status = child.wait().await.ok();
            bail!(
                "Chromium exited ({status:?}) without a DevTools address; stderr:\n{}",
                seen.join("\n")
            );
        }
        Ok(Err(err)) => return Err(err).context("reading Chromium's stderr"),
        Err(_) => bail!(
            "Chromium printed no DevTools address within {LAUNCH_TIMEOUT:?}; stderr:\n{}",
            seen.join("\n")
        ),
    };
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((url, drain))
}

/// Routes answers to their waiting command and broadcasts events; fails every waiting
/// command when the connection ends.
async fn read_messages(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    pending: Pending,
    events: broadcast::Sender<Value>,
) {
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        match value["id"].as_u64() {
            Some(id) => {
                let waiter = pending.lock().expect("pending map poisoned").remove(&id);
                if let Some(waiter) = waiter {
                    let answer = match value.get("error") {
                        Some(error) => Err(anyhow!(
                            "DevTools error {}: {}",
                            error["code"],
                            error["message"].as_str().unwrap_or("(no message)")
                        )),
                        None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
                    };
                    let _ = waiter.send(answer);
                }
            }
            None => {
                let _ = events.send(value);
            }
        }
    }
    // Dropping the senders wakes every waiting command with "connection closed".
    pending.lock().expect("pending map poisoned").clear();
}

/// Kills Chromium's whole process group, reaps it, and removes the profile directory.
fn kill_and_clean(child: &mut Child, profile: Option<&Path>) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group Chromium leads
        // (`process_group(0)` at spawn); it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(child.try_wait(), Ok(Some(_)) | Err(_)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(profile) = profile {
        // Helpers may still be closing files in the profile for a moment.
        for _ in 0..50 {
            match std::fs::remove_dir_all(profile) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break,
            }
        }
    }
}
