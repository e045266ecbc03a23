//! Starts and stops real `witness serve` processes for end-to-end tests, each on its own port and
//! data folder, and finds the tools the tests check discs with (xorriso, bagit.py).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use witness_controller::cli::Client;

/// The `witness` binary of this build: `WITNESS_BIN`, or `target/<profile>/witness` beside the
/// test executable (built by `cargo build --workspace --bins`, which the test command runs first).
pub fn witness_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WITNESS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-hash → target/debug/witness
    let dir = exe.parent().and_then(Path::parent).expect("target folder");
    let bin = dir.join("witness");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        bin.display()
    );
    bin
}

/// `bagit.py` from the tools virtualenv the setup script makes (or `BAGIT_PY`).
pub fn bagit_py() -> PathBuf {
    if let Some(path) = std::env::var_os("BAGIT_PY") {
        return PathBuf::from(path);
    }
    PathBuf::from("/opt/witness-tools/bin/bagit.py")
}

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    pub data: PathBuf,
    pub config: Option<PathBuf>,
    pub url: String,
    pub log: PathBuf,
    listen: String,
    /// Serving HTTPS (`start_tls`): ready once the port accepts connections.
    tls: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Daemon {
    /// Starts `witness serve --data DATA [--config CONFIG]` and waits until the API answers.
    pub async fn start(data: &Path, config: Option<&Path>) -> anyhow::Result<Daemon> {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut daemon = Daemon {
            child: None,
            data: data.to_path_buf(),
            config: config.map(Path::to_path_buf),
            url: format!("http://{listen}"),
            log: data.with_extension("log"),
            listen,
            tls: false,
        };
        daemon.spawn().await?;
        Ok(daemon)
    }

    /// Like `start`, for a `config` that makes the daemon serve HTTPS (e.g. `tls_self_signed`):
    /// `url` is `https://…`, and readiness is an accepted connection plus the admin credential.
    pub async fn start_tls(data: &Path, config: &Path) -> anyhow::Result<Daemon> {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut daemon = Daemon {
            child: None,
            data: data.to_path_buf(),
            config: Some(config.to_path_buf()),
            url: format!("https://{listen}"),
            log: data.with_extension("log"),
            listen,
            tls: true,
        };
        daemon.spawn().await?;
        Ok(daemon)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(witness_bin());
        command
            .args(["serve", "--listen", &self.listen])
            .arg("--data")
            .arg(&self.data);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting witness serve")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "witness serve exited with {status}; log:\n{}",
                    self.log_text()
                );
            }
            // Any answer from the API (even 401) means the daemon is up and has bootstrapped.
            let answers = if self.tls {
                tokio::net::TcpStream::connect(&self.listen).await.is_ok()
            } else {
                reqwest::get(format!("{}/api/openapi.json", self.url))
                    .await
                    .is_ok()
            };
            if answers && self.admin_token().is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "witness serve did not answer within 30 s; log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An API client with the first admin's token (from the daemon's one-time credential file).
    pub fn client(&self) -> Client {
        Client::new(&self.url).with_token(self.admin_token())
    }

    /// The admin API token the daemon wrote on its first start.
    pub fn admin_token(&self) -> Option<String> {
        witness_controller::auth::accounts::token_from_credential_file(&self.data)
    }

    /// The one-time admin password the daemon wrote on its first start.
    pub fn admin_password(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data.join("admin-credential.txt")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("password="))
            .map(str::to_string)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, like a power cut for the process: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same port and data folder.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.spawn().await
    }

    /// Runs the CLI against this daemon; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(witness_bin())
            .args(args)
            .env("WITNESS_SERVER", &self.url)
            .env("WITNESS_TOKEN", self.admin_token().unwrap_or_default())
            .output()
            .expect("running the witness CLI");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Extracts a disc image with xorriso (as a person with the disc would), into `dir`.
pub fn extract_with_xorriso(image: &Path, dir: &Path) -> anyhow::Result<()> {
    let output = Command::new("xorriso")
        .args(["-osirrox", "on", "-local_charset", "UTF-8", "-indev"])
        .arg(image)
        .args(["-extract", "/"])
        .arg(dir)
        .env("LC_ALL", "C.UTF-8")
        .output()?;
    if !output.status.success() {
        bail!(
            "xorriso -extract failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Runs `bagit.py --validate DIR`; Ok only when it says the bag is valid.
pub fn validate_bag(dir: &Path) -> anyhow::Result<()> {
    let output = Command::new(bagit_py())
        .arg("--validate")
        .arg(dir)
        .output()
        .context("running bagit.py")?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !text.contains("is valid") {
        bail!("bagit.py --validate {} failed:\n{text}", dir.display());
    }
    Ok(())
}
