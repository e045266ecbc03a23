//! The job engine: a backup is a persisted job whose steps (collect → package → plan → burn →
//! verify → record) each either finish and commit, or are redone after a crash.

pub mod admission;
mod copies;
pub mod reread;
mod steps;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::SqlitePool;
use witness_schemas::api::{Job, JobStep, ProjectStatus};

use crate::catalog::{self, JobRow};
use crate::clock::{rfc3339, Clock};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::package::plan;
use crate::{bail, err};

pub use admission::{
    admission_order, check_priority, BackupOptions, JobOrigin, DEFAULT_PRIORITY, MAX_PRIORITY,
};

/// Runs backup jobs and owns the drives while they burn.
pub struct Engine {
    pub pool: SqlitePool,
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
    /// Hands each drive to one job at a time, by effective priority (`drives::arbiter`).
    pub drive_pool: Arc<crate::drives::arbiter::DrivePool>,
    /// Jobs with a task running in this process.
    running: Mutex<HashSet<i64>>,
    /// Held while admitting queued jobs, so two admissions never both see a free place.
    admission: tokio::sync::Mutex<()>,
}

impl Engine {
    pub fn new(pool: SqlitePool, settings: Arc<Settings>, clock: Arc<dyn Clock>) -> Arc<Engine> {
        let drive_pool = crate::drives::arbiter::DrivePool::new(
            settings.config.jobs.ageing_minutes,
            Arc::clone(&clock),
        );
        Arc::new(Engine {
            pool,
            settings,
            clock,
            drive_pool,
            running: Mutex::new(HashSet::new()),
            admission: tokio::sync::Mutex::new(()),
        })
    }

    fn now(&self) -> String {
        rfc3339(self.clock.now())
    }

    /// After a restart: copies that were being written when the daemon died are rejected (a
    /// half-written disc is no copy), then every unfinished job is started again at its step.
    pub async fn resume(self: &Arc<Self>) -> Result<()> {
        copies::reject_interrupted(self).await?;
        // Jobs a crash left running were admitted before it and go on at once; queued ones
        // wait for admission like any other.
        let running: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM jobs WHERE status = 'running' ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        for (job_id,) in running {
            tracing::info!(job_id, "resuming unfinished job");
            self.spawn(job_id);
        }
        self.admit().await
    }

    /// How many jobs may run at once (`[jobs] max_running`, default drives + 1).
    fn max_running(&self) -> usize {
        match self.settings.config.jobs.max_running {
            Some(n) => n.max(1) as usize,
            None => self.settings.drives.len() + 1,
        }
    }

    /// Starts queued jobs, highest effective priority first (ties: the older job), while fewer
    /// than `max_running` run. Called whenever a job is queued or one ends.
    pub async fn admit(self: &Arc<Self>) -> Result<()> {
        let _admitting = self.admission.lock().await;
        let free = self.max_running().saturating_sub(self.running_count());
        if free == 0 {
            return Ok(());
        }
        let order = admission_order(
            &self.pool,
            self.clock.now(),
            self.settings.config.jobs.ageing_minutes,
        )
        .await?;
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for job_id in order
            .into_iter()
            .filter(|id| !running.contains(id))
            .take(free)
        {
            tracing::info!(job_id, "job admitted");
            self.spawn(job_id);
        }
        Ok(())
    }

    fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// 一键备份: checks the project can be backed up and queues a job for it.
    pub async fn submit_backup(self: &Arc<Self>, number: &str) -> Result<Job> {
        self.submit(number, BackupOptions::default()).await
    }

    /// `submit` for one project of a list (select-and-burn, batch import): a refusal (unknown
    /// project, a job already running, no files) is that project's result, and only an internal
    /// error stops the list.
    pub async fn submit_for_list(
        self: &Arc<Self>,
        number: String,
        options: BackupOptions,
    ) -> Result<witness_schemas::schedule::BackupResult> {
        use witness_schemas::schedule::BackupResult;
        Ok(match self.submit(&number, options).await {
            Ok(job) => BackupResult {
                project: number,
                job: Some(job),
                error: None,
            },
            Err(e) if e.kind == crate::error::ErrorKind::Internal => return Err(e),
            Err(e) => BackupResult {
                project: number,
                job: None,
                error: Some(e.message),
            },
        })
    }

    /// Queues a backup job for a project with a priority and an origin; the job starts when
    /// admission reaches it.
    pub async fn submit(self: &Arc<Self>, number: &str, options: BackupOptions) -> Result<Job> {
        let priority = check_priority(options.priority.unwrap_or(DEFAULT_PRIORITY))?;
        let project = catalog::project(&self.pool, number).await?;
        if project.file_count == 0 {
            bail!(FailedPrecondition, "项目 {number} 没有任何文件，无法备份 (a project with no files cannot be backed up)");
        }
        let busy: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE project_id = ? AND status IN ('queued', 'running')",
        )
        .bind(project.id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((id,)) = busy {
            bail!(AlreadyExists, "项目 {number} 已有备份作业 {id} 在进行中");
        }
        let copies = &self.settings.config.copies;
        // A batch row may ask for its own number of discs; disk copies follow the policy.
        let optical = options
            .copies_optical
            .map(|n| n.clamp(0, 5) as u32)
            .unwrap_or(copies.optical);
        let (medium, capacity) = if optical > 0 {
            let smallest = self
                .settings
                .drives
                .iter()
                .map(|d| d.info())
                .min_by_key(|i| i.capacity_bytes)
                .ok_or_else(|| err!(FailedPrecondition, "没有可用的刻录机，无法制作光盘副本"))?;
            (smallest.medium, smallest.capacity_bytes)
        } else {
            ("none".to_string(), i64::MAX as u64)
        };
        let sources = catalog::source_rows(&self.pool, project.id).await?;
        let record = plan::record_estimate(
            sources.iter().map(|s| (s.rel_path.as_str(), s.size as u64)),
            capacity,
        );
        let part_size = if optical > 0 {
            plan::part_size(capacity, record)?
        } else {
            i64::MAX as u64
        };
        let now = self.now();
        let id = sqlx::query(
            "INSERT INTO jobs (project_id, status, step, message, medium, capacity, part_size, copies_optical,
                copies_disk, package_uuid, created_at, updated_at, priority, origin, schedule_run_id)
             VALUES (?, 'queued', 'collect', '排队中', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(project.id)
        .bind(&medium)
        .bind(capacity as i64)
        .bind(part_size as i64)
        .bind(optical as i64)
        .bind(copies.disk as i64)
        .bind(new_package_id())
        .bind(&now)
        .bind(&now)
        .bind(priority)
        .bind(options.origin.as_str())
        .bind(options.schedule_run_id)
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => err!(
                AlreadyExists,
                "本次定时运行已为项目 {number} 建立过作业 (this run already made a job for the project)"
            ),
            other => other.into(),
        })?
        .last_insert_rowid();
        catalog::set_project_status(&self.pool, project.id, ProjectStatus::Archiving).await?;
        tracing::info!(
            job_id = id,
            project = number,
            priority,
            origin = options.origin.as_str(),
            "backup job queued"
        );
        self.admit().await?;
        Ok(catalog::job(&self.pool, id).await?.to_api())
    }

    fn spawn(self: &Arc<Self>, job_id: i64) {
        if !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id)
        {
            return;
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let result = engine.run(job_id).await;
            crate::search::notify(&engine.pool, crate::search::Change::Job(job_id));
            if let Err(error) = result {
                tracing::warn!(job_id, %error, "job failed");
                if let Err(e) = engine.fail(job_id, &error).await {
                    tracing::error!(job_id, %e, "could not record the job's failure");
                }
            }
            engine
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job_id);
            // A place is free: the next queued job by effective priority may start.
            if let Err(e) = engine.admit().await {
                tracing::error!(%e, "admitting the next job failed");
            }
        });
    }

    async fn run(self: &Arc<Self>, job_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'running', error = NULL, updated_at = ? WHERE id = ?",
        )
        .bind(self.now())
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        loop {
            let job = catalog::job(&self.pool, job_id).await?;
            match job.step() {
                JobStep::Collect => steps::collect(self, &job).await?,
                JobStep::Package => steps::package(self, &job).await?,
                JobStep::Plan => steps::plan(self, &job).await?,
                JobStep::Burn | JobStep::Verify => copies::make_copies(self, &job).await?,
                JobStep::Record => steps::record(self, &job).await?,
                JobStep::Done => return Ok(()),
            }
        }
    }

    async fn fail(&self, job_id: i64, error: &Error) -> Result<()> {
        let job = catalog::job(&self.pool, job_id).await?;
        // The job and its project change in one transaction, so no reader sees a failed job
        // whose project is still "archiving".
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE jobs SET status = 'failed', error = ?, message = '失败', updated_at = ? WHERE id = ?")
            .bind(&error.message)
            .bind(self.now())
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        let archived: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE project_id = ? AND status = 'succeeded' LIMIT 1",
        )
        .bind(job.project_id)
        .fetch_optional(&mut *tx)
        .await?;
        let status = if archived.is_some() {
            ProjectStatus::Archived
        } else {
            ProjectStatus::Failed
        };
        sqlx::query("UPDATE projects SET status = ? WHERE id = ?")
            .bind(catalog::project_status_str(status))
            .bind(job.project_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // A failed job is not resumed (a new backup starts afresh), so its staging copy only
        // takes space; the verified copies it made stay recorded.
        if !self.settings.config.archive.keep_staging {
            let _ =
                std::fs::remove_dir_all(crate::package::job_dir(&self.settings.data_dir, job_id));
        }
        Ok(())
    }

    /// Moves a job to its next step (and resets the progress counters) in one statement.
    async fn set_step(&self, job_id: i64, step: JobStep, message: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET step = ?, message = ?, done_bytes = 0, total_bytes = 0, updated_at = ? WHERE id = ?")
            .bind(step.as_str())
            .bind(message)
            .bind(self.now())
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_progress(&self, job_id: i64, done: u64, total: u64, message: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET done_bytes = ?, total_bytes = ?, message = ?, updated_at = ? WHERE id = ?")
            .bind(done as i64)
            .bind(total as i64)
            .bind(message)
            .bind(self.now())
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs blocking work while a ticker stores its byte counter in the job twice a second.
    async fn with_progress<T: Send + 'static>(
        &self,
        job_id: i64,
        total: u64,
        message: &str,
        work: impl FnOnce(Arc<AtomicU64>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let done = Arc::new(AtomicU64::new(0));
        self.set_progress(job_id, 0, total, message).await?;
        let handle = tokio::task::spawn_blocking({
            let done = Arc::clone(&done);
            move || work(done)
        });
        tokio::pin!(handle);
        let result = loop {
            tokio::select! {
                joined = &mut handle => break joined,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    let _ = self.set_progress(job_id, done.load(Ordering::Relaxed).min(total), total, message).await;
                }
            }
        };
        let value = result.map_err(|e| err!(Internal, "worker thread failed: {e}"))??;
        self.set_progress(
            job_id,
            done.load(Ordering::Relaxed).min(total),
            total,
            message,
        )
        .await?;
        Ok(value)
    }

    /// Where sources may be registered from, per the configuration.
    pub fn source_policy(&self) -> catalog::SourcePolicy {
        catalog::SourcePolicy {
            data_dir: self.settings.data_dir.clone(),
            roots: self.settings.config.archive.source_roots.clone(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.settings.data_dir.clone()
    }
}

/// A random package identifier in UUID form (bag-info's Bag-Group-Identifier).
fn new_package_id() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    // Version 4, RFC 4122 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = crate::digest::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The job row, for modules that only have an id.
pub async fn job_row(pool: &SqlitePool, id: i64) -> Result<JobRow> {
    catalog::job(pool, id).await
}
