//! The index that follows the catalog: one background task re-indexes a project within moments
//! of a change (catalog code calls `notify` after committing), rebuilds on start-up when the
//! fingerprint stored with the last commit differs from the catalog's, and rebuilds on request.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::SqlitePool;
use tokio::sync::mpsc;
use witness_schemas::search::{ReindexReport, SearchQuery, SearchResults};

use super::index::{SearchIndex, WriterConfig};
use super::{query, sync};
use crate::err;
use crate::error::Result;

/// A change of the catalog that the index must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A project was created or changed (its status, its files, a job of it).
    Project(i64),
    /// A disc or disk copy was created or changed state.
    Disc(i64),
    /// A backup job ended (its copies, its project's status).
    Job(i64),
}

pub struct SearchService {
    pub index: Arc<SearchIndex>,
    pool: SqlitePool,
    changes: mpsc::UnboundedSender<Change>,
    /// Rebuilds and incremental updates take turns.
    work: tokio::sync::Mutex<()>,
    /// Whether the index held the whole catalog before the current update: only then may an
    /// update's commit claim the catalog's fingerprint.
    in_sync: AtomicBool,
}

/// The running services, by catalog file: catalog code only has its pool at hand, and tests run
/// several daemons' worth of catalogs in one process.
static SERVICES: Mutex<Vec<(PathBuf, Arc<SearchService>)>> = Mutex::new(Vec::new());

fn catalog_key(pool: &SqlitePool) -> PathBuf {
    pool.connect_options().get_filename().to_path_buf()
}

/// The search service of a catalog, if one was started.
pub fn service_for(pool: &SqlitePool) -> Option<Arc<SearchService>> {
    let key = catalog_key(pool);
    SERVICES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, s)| Arc::clone(s))
}

/// Tells the search index of this catalog (if any runs) about a committed change. Cheap and
/// never fails: the start-up fingerprint check repairs whatever a lost message left behind.
pub fn notify(pool: &SqlitePool, change: Change) {
    if let Some(service) = service_for(pool) {
        let _ = service.changes.send(change);
    }
}

/// Marks a commit made by an index that may lack part of the catalog: the next start rebuilds.
const STALE: &str = "stale";

async fn run(
    service: std::sync::Weak<SearchService>,
    mut rx: mpsc::UnboundedReceiver<Change>,
    rebuild_first: bool,
) {
    if rebuild_first {
        let Some(service) = service.upgrade() else {
            return;
        };
        match service.rebuild().await {
            Ok(report) => tracing::info!(
                projects = report.projects,
                items = report.items,
                ms = report.took_ms,
                "search index rebuilt"
            ),
            Err(error) => {
                tracing::error!(%error, "search index rebuild failed; it is retried at the next start")
            }
        }
    }
    while let Some(first) = rx.recv().await {
        let mut changes = vec![first];
        while let Ok(change) = rx.try_recv() {
            changes.push(change);
        }
        let Some(service) = service.upgrade() else {
            return;
        };
        if let Err(error) = service.update(&changes).await {
            tracing::warn!(%error, "search index update failed; the next start rebuilds it");
            service.in_sync.store(false, Ordering::SeqCst);
        }
    }
}

impl SearchService {
    /// Opens `<data>/search/`, registers the service for `notify`, and starts the task that
    /// brings the index up to date (a rebuild first when the fingerprints differ).
    pub async fn start(pool: &SqlitePool, data_dir: &Path) -> Result<Arc<SearchService>> {
        let dir = data_dir.join("search");
        let index = tokio::task::spawn_blocking(move || {
            SearchIndex::open_or_create(&dir, WriterConfig::default())
        })
        .await
        .map_err(|e| err!(Internal, "search index: {e}"))??;
        let stored = index.stored_fingerprint();
        let current = sync::fingerprint(pool).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Arc::new(SearchService {
            index: Arc::new(index),
            pool: pool.clone(),
            changes: tx,
            work: tokio::sync::Mutex::new(()),
            in_sync: AtomicBool::new(stored.as_deref() == Some(current.as_str())),
        });
        {
            let mut services = SERVICES.lock().unwrap_or_else(|p| p.into_inner());
            let key = catalog_key(pool);
            services.retain(|(k, _)| *k != key);
            services.push((key, Arc::clone(&service)));
        }
        let needs_rebuild = !service.in_sync.load(Ordering::SeqCst);
        if needs_rebuild {
            tracing::info!(stored = ?stored, current = %current, "search index differs from the catalog: rebuilding");
        }
        // The task holds the service weakly: once the service is stopped and dropped, the
        // channel closes, the task ends, and the index writer (and its lock) goes with it.
        let worker = Arc::downgrade(&service);
        tokio::spawn(run(worker, rx, needs_rebuild));
        Ok(service)
    }

    /// Unregisters the service of this catalog; it stops once the last handle is dropped.
    pub fn stop(pool: &SqlitePool) {
        let key = catalog_key(pool);
        SERVICES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _)| *k != key);
    }

    /// Re-indexes the projects these changes touched, in one commit.
    async fn update(&self, changes: &[Change]) -> Result<()> {
        let _turn = self.work.lock().await;
        // Taken before reading, so the stored fingerprint never claims more than was read.
        let fingerprint = sync::fingerprint(&self.pool).await?;
        let mut ids = Vec::new();
        for change in changes {
            let id = match *change {
                Change::Project(id) => Some(id),
                Change::Disc(id) => sync::disc_project(&self.pool, id).await?,
                Change::Job(id) => sync::job_project(&self.pool, id).await?,
            };
            if let Some(id) = id.filter(|id| !ids.contains(id)) {
                ids.push(id);
            }
        }
        let mut data = Vec::new();
        for id in &ids {
            data.extend(sync::load(&self.pool, *id).await?);
        }
        let index = Arc::clone(&self.index);
        let payload = if self.in_sync.load(Ordering::SeqCst) {
            fingerprint
        } else {
            STALE.to_string()
        };
        tokio::task::spawn_blocking(move || {
            let items: Vec<_> = data.iter().flat_map(sync::items).collect();
            index.replace_projects(&ids, &items, &payload)
        })
        .await
        .map_err(|e| err!(Internal, "search index: {e}"))?
    }

    /// Rebuilds the whole index from the catalog (`witness search reindex`).
    pub async fn rebuild(&self) -> Result<ReindexReport> {
        let _turn = self.work.lock().await;
        let started = Instant::now();
        let fingerprint = sync::fingerprint(&self.pool).await?;
        let ids = sync::project_ids(&self.pool).await?;
        self.in_sync.store(false, Ordering::SeqCst);
        self.index.clear()?;
        let mut items = 0u64;
        // A project at a time: a county archive's files do not fit in memory at once.
        for id in &ids {
            let Some(data) = sync::load(&self.pool, *id).await? else {
                continue;
            };
            let index = Arc::clone(&self.index);
            items += tokio::task::spawn_blocking(move || {
                let docs = sync::items(&data);
                index.add(&docs).map(|()| docs.len() as u64)
            })
            .await
            .map_err(|e| err!(Internal, "search index: {e}"))??;
        }
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.commit(&fingerprint))
            .await
            .map_err(|e| err!(Internal, "search index: {e}"))??;
        self.in_sync.store(true, Ordering::SeqCst);
        Ok(ReindexReport {
            projects: ids.len() as u64,
            items,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    pub async fn search(&self, request: SearchQuery) -> Result<SearchResults> {
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || query::search(&index, &request))
            .await
            .map_err(|e| err!(Internal, "search: {e}"))?
    }

    /// Whether the index reflects the catalog as it is now (tests wait for this).
    pub async fn is_current(&self) -> Result<bool> {
        let _turn = self.work.lock().await;
        Ok(self.index.stored_fingerprint() == Some(sync::fingerprint(&self.pool).await?))
    }
}
