//! `witness serve`: prepares the data folder, opens the catalog, resumes unfinished jobs and
//! serves the API and UI until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::{self, Settings};
use crate::error::{io_error, Result};
use crate::jobs::Engine;
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
    let engine = Engine::new(pool, Arc::new(settings), Arc::new(SystemClock));
    engine.resume().await?;
    if options.demo {
        demo::seed(&engine).await?;
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| err!(Unavailable, "无法监听 {listen}：{e}"))?;
    tracing::info!("Witness 见证 listening on http://{listen}");
    axum::serve(listener, web::router(engine))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| err!(Internal, "server: {e}"))
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
