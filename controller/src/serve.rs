//! `witness serve`: prepares the data folder, opens the catalog, resumes unfinished jobs and
//! serves the API and UI until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use std::net::SocketAddr;

use axum_server::tls_rustls::RustlsConfig;

use crate::audit::AuditLog;
use crate::auth::accounts::{self, LoginLimiter};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Settings};
use crate::error::{io_error, Result};
use crate::jobs::Engine;
use crate::web::guard::Auth;
use crate::{db, demo, err, web};

#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
    pub config: Option<PathBuf>,
    pub demo: bool,
}

/// Creates the folders the daemon writes to (virtual drives' image folders, the default disk
/// copy folder); configured disk targets are mount points and are not created.
fn prepare_dirs(settings: &Settings) -> Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| io_error(format!("创建数据目录 {}", settings.data_dir.display()), e))?;
    let mut dirs = Vec::new();
    for drive in &settings.drives {
        let info = drive.info();
        if info.kind == "virtual" && info.device.starts_with(&settings.data_dir) {
            dirs.push(info.device);
        }
    }
    for disk in &settings.disks {
        if disk.path.starts_with(&settings.data_dir) {
            dirs.push(disk.path.clone());
        }
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_error(format!("创建目录 {}", dir.display()), e))?;
    }
    Ok(())
}

pub async fn serve(options: ServeOptions) -> Result<()> {
    let config = config::read_config(options.config.as_deref())?;
    let settings = config::resolve(config, options.data, options.listen)?;
    prepare_dirs(&settings)?;
    for drive in &settings.drives {
        let info = drive.info();
        tracing::info!(drive = %info.name, kind = info.kind, medium = %info.medium, capacity = info.capacity_bytes,
            device = %info.device.display(), "drive");
    }
    if settings
        .drives
        .iter()
        .all(|d| matches!(d.info().kind, "virtual"))
    {
        tracing::info!(
            "no optical drive configured or found: burning to virtual drives (stdio: image files)"
        );
    }
    let pool = db::open(&settings.data_dir).await?;
    let listen = settings.listen.clone();
    let tls = tls_config(&settings).await?;
    let clock = Arc::new(SystemClock);
    if let Some(path) = accounts::bootstrap(&pool, &settings.data_dir, clock.now()).await? {
        tracing::warn!(
            file = %path.display(),
            "first start: created user `admin`; its one-time password and a CLI token are in this file (mode 0600)"
        );
    }
    crate::search::SearchService::start(&pool, &settings.data_dir).await?;
    let engine = Engine::new(pool, Arc::new(settings), clock);
    let auth = Arc::new(Auth {
        audit: AuditLog::default(),
        limiter: LoginLimiter::default(),
        tls: tls.is_some(),
    });
    engine.resume().await?;
    crate::reinspect::recover(&engine).await?;
    crate::video::resume(&engine).await?;
    crate::integrations::configure(&engine).await?;
    crate::integrations::start(&engine)?;
    if options.demo {
        demo::seed(&engine).await?;
    }
    // After the demo seed, so a missed run at start-up sees the same catalog as the UI.
    crate::schedule::start(Arc::clone(&engine));
    let app = web::router(engine, auth).into_make_service_with_connect_info::<SocketAddr>();
    let addr: SocketAddr = listen.parse().map_err(|e| {
        err!(
            InvalidArgument,
            "监听地址 {listen:?} 无效（例如 127.0.0.1:8080）：{e}"
        )
    })?;
    if let Some(config) = tls {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| err!(Unavailable, "无法监听 {listen}：{e}"))?;
        tracing::info!("Witness 见证 listening on https://{listen}");
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown().await;
            stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
        axum_server::from_tcp_rustls(listener, config)
            .map_err(|e| err!(Unavailable, "无法监听 {listen}：{e}"))?
            .handle(handle)
            .serve(app)
            .await
            .map_err(|e| err!(Internal, "server: {e}"))
    } else {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| err!(Unavailable, "无法监听 {listen}：{e}"))?;
        tracing::info!("Witness 见证 listening on http://{listen}");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| err!(Internal, "server: {e}"))
    }
}

/// The TLS settings: a given certificate, or a self-signed one made once and kept in
/// `<data>/tls/` (its fingerprint is what gates pin).
async fn tls_config(settings: &Settings) -> Result<Option<RustlsConfig>> {
    let server = &settings.config.server;
    let (cert, key) = match (&server.tls_cert, &server.tls_key, server.tls_self_signed) {
        (Some(cert), Some(key), _) => (cert.clone(), key.clone()),
        (None, None, true) => {
            let dir = settings.data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !cert.exists() || !key.exists() {
                std::fs::create_dir_all(&dir).map_err(|e| io_error(dir.display(), e))?;
                let names = vec![
                    "localhost".to_string(),
                    "127.0.0.1".to_string(),
                    "witness.local".to_string(),
                ];
                let made = rcgen::generate_simple_self_signed(names)
                    .map_err(|e| err!(Internal, "making a certificate: {e}"))?;
                std::fs::write(&cert, made.cert.pem()).map_err(|e| io_error(cert.display(), e))?;
                write_key(&key, &made.signing_key.serialize_pem())?;
                tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate");
            }
            (cert, key)
        }
        (None, None, false) => return Ok(None),
        _ => crate::bail!(InvalidArgument, "[server] tls_cert and tls_key go together"),
    };
    RustlsConfig::from_pem_file(&cert, &key)
        .await
        .map(Some)
        .map_err(|e| {
            err!(
                InvalidArgument,
                "TLS 证书 {} / 私钥 {} 无法使用：{e}",
                cert.display(),
                key.display()
            )
        })
}

fn write_key(path: &std::path::Path, pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path.display(), e))?;
    file.write_all(pem.as_bytes())
        .map_err(|e| io_error(path.display(), e))
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
