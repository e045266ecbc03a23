//! The burn and verify steps: every slot of the copy policy (each disc of the set per optical
//! copy, and each hard-disk copy) gets a copy that is written, read back and verified. A failed
//! copy is rejected and made again on a fresh disc, up to the configured number of attempts.
//!
//! Drives work in parallel: each takes the job's next volume only once it holds the drive (the
//! drive arbiter decides between jobs by priority with ageing), so a slow drive never keeps a
//! volume another could burn. Every disc moves the drive through its state machine and counters
//! (`crate::drives`); a drive failing too often is taken out of service and its volumes go to
//! the others. With a robot, each disc is loaded from an input bin, and after read-back moved to
//! the printer, printed, and put in the output bin — or, failed, in the reject bin.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use witness_drivers::autoloader::{Autoloader, AutoloaderError};
use witness_drivers::burner::{BurnError, BurnRequest, BurnedDisc, Burner, Cut};
use witness_schemas::api::JobStep;

use super::steps::{self, VolumeRow};
use super::Engine;
use crate::catalog::{self, DiscRow, JobRow};
use crate::config::DiskTarget;
use crate::digest::Digests;
use crate::drives::arbiter::Claim;
use crate::drives::{self, About, DriveState};
use crate::error::{io_error, Error, Result};
use crate::package::layout::{self, PayloadFile};
use crate::package::{self as pkg, plan, FilePart, PackageFile};
use crate::verify::{self, Expected};
use crate::{bail, err};

/// One copy the policy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    disk: bool,
    set_index: i64,
    set_count: i64,
    copy_index: i64,
}

impl Slot {
    fn describe(&self) -> String {
        if self.disk {
            format!("硬盘副本 {}", self.copy_index)
        } else {
            format!(
                "第 {}/{} 盘（第 {} 份）",
                self.set_index, self.set_count, self.copy_index
            )
        }
    }
}

/// After a restart: a copy left "writing" is incomplete; it is rejected and its remains removed.
pub(super) async fn reject_interrupted(engine: &Engine) -> Result<()> {
    let rows: Vec<DiscRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} WHERE d.status = 'writing'",
        catalog::DISC_SELECT
    )))
    .fetch_all(&engine.pool)
    .await?;
    for disc in rows {
        tracing::warn!(
            disc_id = disc.id,
            job_id = disc.job_id,
            "rejecting a copy interrupted by a restart"
        );
        discard(engine, &disc);
        let reason = "写入时守护进程中断，此副本作废 (interrupted by a restart)";
        reject(engine, disc.id, reason).await?;
        // The half-written disc is still in its drive if a robot loaded it: to the reject bin.
        if disc.kind == "optical" {
            if let Some(robot) = &engine.settings.autoloader {
                let robot = Arc::clone(robot);
                let loaded = tokio::task::spawn_blocking(move || robot.status().drives_loaded)
                    .await
                    .map_err(|e| err!(Internal, "autoloader thread failed: {e}"))?;
                if loaded.contains(&disc.target) {
                    let _ = unload(engine, &disc.target, Some(disc.id), Some(reason)).await?;
                }
            }
        }
    }
    drives::recover(&engine.pool).await
}

fn discard(engine: &Engine, disc: &DiscRow) {
    if disc.kind == "disk" {
        let _ = std::fs::remove_dir_all(&disc.location);
        let _ = std::fs::remove_dir_all(partial_dir(Path::new(&disc.location)));
    } else if let Some(drive) = engine
        .settings
        .drives
        .iter()
        .find(|d| d.info().name == disc.target)
    {
        drive.discard(&BurnedDisc {
            location: PathBuf::from(&disc.location),
        });
    }
}

async fn reject(engine: &Engine, disc_id: i64, reason: &str) -> Result<()> {
    sqlx::query("UPDATE discs SET status = 'rejected', error = ? WHERE id = ?")
        .bind(reason)
        .bind(disc_id)
        .execute(&engine.pool)
        .await?;
    Ok(())
}

/// What each slot still needs, from the discs recorded so far.
enum Need {
    Done,
    Verify(Box<DiscRow>),
    Write { attempts: u32 },
}

fn need(slot: &Slot, discs: &[DiscRow]) -> Need {
    let mine: Vec<&DiscRow> = discs
        .iter()
        .filter(|d| {
            (d.kind == "disk") == slot.disk
                && d.set_index == slot.set_index
                && d.copy_index == slot.copy_index
        })
        .collect();
    if mine.iter().any(|d| d.status == "verified") {
        return Need::Done;
    }
    if let Some(written) = mine.iter().find(|d| d.status == "written") {
        return Need::Verify(Box::new((*written).clone()));
    }
    Need::Write {
        attempts: mine.iter().filter(|d| d.status == "rejected").count() as u32,
    }
}

/// Everything the copy workers share for one job.
struct Work {
    engine: Arc<Engine>,
    job: JobRow,
    volumes: BTreeMap<i64, VolumeRow>,
    files: Vec<PackageFile>,
    parts: Vec<FilePart>,
    queue: Mutex<VecDeque<(Slot, Need)>>,
    done: AtomicU64,
    total: u64,
    /// The first error that makes the job fail.
    failure: Mutex<Option<Error>>,
    /// Copies still to be written; the job shows the verify step once none are left.
    writes_left: std::sync::atomic::AtomicUsize,
    /// Why drives dropped out of this job, for the error when copies are left over.
    unavailable: Mutex<Vec<String>>,
    /// Optical slots taken from the queue and not finished: a failure may still queue them again.
    optical_in_flight: std::sync::atomic::AtomicUsize,
    /// Bumped whenever the queue gains a slot, a slot finishes or the job fails, so drive workers
    /// waiting for a drive notice when there is nothing left for them.
    changes: tokio::sync::watch::Sender<u64>,
    /// The job's place in the drives' queues.
    claim: Claim,
}

impl Work {
    fn fail(&self, error: Error) {
        {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if failure.is_none() {
                *failure = Some(error);
            }
        }
        self.changed();
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn unavailable(&self, reason: String) {
        self.unavailable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reason);
    }

    /// Optical slots queued and in flight, read together.
    fn optical_outlook(&self) -> (usize, usize) {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let queued = queue.iter().filter(|(s, _)| !s.disk).count();
        (queued, self.optical_in_flight.load(Ordering::SeqCst))
    }

    /// An optical slot taken by `next` is done with (verified, queued again or failed).
    fn finish_optical(&self) {
        self.optical_in_flight.fetch_sub(1, Ordering::SeqCst);
        self.changed();
    }

    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn next(&self, disk: bool) -> Option<(Slot, Need)> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let at = queue.iter().position(|(s, _)| s.disk == disk)?;
        if !disk {
            // Counted under the queue lock, so `optical_outlook` never sees a slot in neither.
            self.optical_in_flight.fetch_add(1, Ordering::SeqCst);
        }
        queue.remove(at)
    }

    fn push(&self, slot: Slot, need: Need) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((slot, need));
        self.changed();
    }

    /// After a failed attempt: queue the slot again, or fail the job when attempts are spent.
    /// A copy was written: one fewer to go before the job is only verifying.
    fn written(&self) {
        self.writes_left.fetch_sub(1, Ordering::SeqCst);
    }

    /// Shows the verify step once every copy is written (workers run in parallel, so a disc may
    /// still be burning while another is read back; the step then stays "burn").
    async fn enter_verify(&self) -> Result<()> {
        if self.writes_left.load(Ordering::SeqCst) == 0 {
            self.engine
                .set_step(self.job.id, JobStep::Verify, "正在回读校验")
                .await?;
        }
        Ok(())
    }

    fn retry(&self, slot: Slot, attempts: u32, error: &Error) {
        let max = self.engine.settings.config.archive.max_burn_attempts;
        if attempts >= max {
            self.fail(err!(
                Unavailable,
                "{} 已失败 {attempts} 次，作业停止：{}",
                slot.describe(),
                error.message
            ));
        } else {
            self.push(slot, Need::Write { attempts });
        }
    }

    async fn progress(&self, message: &str) {
        let _ = self
            .engine
            .set_progress(
                self.job.id,
                self.done.load(Ordering::Relaxed).min(self.total),
                self.total,
                message,
            )
            .await;
    }

    fn by_id(&self) -> BTreeMap<i64, &PackageFile> {
        self.files.iter().map(|f| (f.id, f)).collect()
    }
}

pub(super) async fn make_copies(engine: &Arc<Engine>, job: &JobRow) -> Result<()> {
    let volumes: BTreeMap<i64, VolumeRow> = steps::volumes(engine, job.id)
        .await?
        .into_iter()
        .map(|v| (v.set_index, v))
        .collect();
    let files = pkg::package_files(&engine.pool, job.id).await?;
    let parts = pkg::file_parts(&engine.pool, job.id).await?;
    let discs = catalog::job_discs(&engine.pool, job.id).await?;
    let package_bytes: u64 = files.iter().map(|f| f.size as u64).sum();
    let mut slots = Vec::new();
    for copy_index in 1..=job.copies_optical {
        for volume in volumes.values() {
            slots.push(Slot {
                disk: false,
                set_index: volume.set_index,
                set_count: volume.set_count,
                copy_index,
            });
        }
    }
    for copy_index in 1..=job.copies_disk {
        slots.push(Slot {
            disk: true,
            set_index: 1,
            set_count: 1,
            copy_index,
        });
    }
    let mut queue = VecDeque::new();
    let mut total = 0u64;
    let mut writes = 0usize;
    for slot in slots {
        let bytes = if slot.disk {
            package_bytes
        } else {
            volumes[&slot.set_index].payload_bytes as u64
        };
        match need(&slot, &discs) {
            Need::Done => {}
            Need::Verify(disc) => {
                total += bytes;
                queue.push_back((slot, Need::Verify(disc)));
            }
            Need::Write { attempts } => {
                // Written once, read back once.
                total += 2 * bytes;
                writes += 1;
                queue.push_back((slot, Need::Write { attempts }));
            }
        }
    }
    if !queue.is_empty() {
        engine
            .set_step(job.id, JobStep::Burn, "正在制作副本")
            .await?;
        let work = Arc::new(Work {
            engine: Arc::clone(engine),
            job: job.clone(),
            volumes,
            files,
            parts,
            queue: Mutex::new(queue),
            done: AtomicU64::new(0),
            total,
            failure: Mutex::new(None),
            writes_left: std::sync::atomic::AtomicUsize::new(writes),
            unavailable: Mutex::new(Vec::new()),
            optical_in_flight: std::sync::atomic::AtomicUsize::new(0),
            changes: tokio::sync::watch::Sender::new(0),
            claim: Claim {
                job_id: job.id,
                priority: job.priority,
                created: time::OffsetDateTime::parse(
                    &job.created_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap_or_else(|_| engine.clock.now()),
            },
        });
        work.progress("正在制作副本").await;
        let mut tasks = Vec::new();
        if job.copies_optical > 0 {
            for drive in &engine.settings.drives {
                tasks.push(tokio::spawn(drive_worker(
                    Arc::clone(&work),
                    Arc::clone(drive),
                )));
            }
        }
        tasks.push(tokio::spawn(disk_worker(Arc::clone(&work))));
        for task in tasks {
            task.await
                .map_err(|e| err!(Internal, "copy worker failed: {e}"))?;
        }
        if let Some(error) = work
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(error);
        }
        let left = work.queue.lock().unwrap_or_else(|p| p.into_inner()).len();
        if left > 0 {
            let reasons = work
                .unavailable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .join("；");
            bail!(
                Unavailable,
                "没有可用的刻录机或硬盘完成剩余的 {left} 份副本{}{reasons}",
                if reasons.is_empty() { "" } else { "：" }
            );
        }
    }
    engine.set_step(job.id, JobStep::Record, "正在登记").await
}

/// One drive's loop for this job: waits for the drive, takes the job's next optical slot, and
/// goes on until no slot is left or can come back, the job fails, or the drive (or its robot)
/// is unavailable or out of service.
async fn drive_worker(work: Arc<Work>, drive: Arc<dyn Burner>) {
    let info = drive.info();
    let name = info.name.clone();
    // The set was planned for discs of the job's capacity; a smaller disc would fail at its end
    // and waste a blank, so such a drive sits this job out.
    if info.capacity_bytes < work.job.capacity as u64 {
        work.unavailable(format!(
            "刻录机 {name} 的介质（{} 字节）小于本作业规划的光盘容量（{} 字节）",
            info.capacity_bytes, work.job.capacity
        ));
        return;
    }
    let mut changes = work.changes.subscribe();
    // The drive, kept from the last disc when no better-ranked job waits for it.
    let mut held = None;
    while !work.failed() {
        match drives::out_of_service(&work.engine.pool, &name).await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                work.unavailable(format!("刻录机 {name} 已停用：{reason}"));
                return;
            }
            Err(e) => return work.fail(e),
        }
        changes.borrow_and_update();
        let (queued, in_flight) = work.optical_outlook();
        if queued == 0 {
            held = None;
            if in_flight == 0 {
                return;
            }
            // Another drive's disc may still fail and queue its slot again.
            if changes.changed().await.is_err() {
                return;
            }
            continue;
        }
        let lease = match held.take() {
            Some(lease) => lease,
            None => tokio::select! {
                lease = work.engine.drive_pool.acquire(&name, work.claim) => lease,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            },
        };
        // While this job waited, another may have taken the drive out of service.
        match drives::out_of_service(&work.engine.pool, &name).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(e) => return work.fail(e),
        }
        let Some((slot, need)) = work.next(false) else {
            continue;
        };
        let stop = one_disc(&work, &drive, slot, need).await;
        work.finish_optical();
        if stop {
            return;
        }
        if !work.engine.drive_pool.should_yield(&name, work.claim) {
            held = Some(lease);
        }
    }
}

/// One optical slot on a drive this job holds. Returns whether the drive must leave the job.
async fn one_disc(work: &Arc<Work>, drive: &Arc<dyn Burner>, slot: Slot, need: Need) -> bool {
    let name = drive.info().name;
    let attempts = match need {
        Need::Done => return false,
        Need::Verify(disc) => {
            let outcome = verify_optical(work, drive, slot, *disc, 0).await;
            return after_disc(work, &name, slot, 0, outcome).await;
        }
        Need::Write { attempts } => attempts,
    };
    if let Some(robot) = &work.engine.settings.autoloader {
        if let Err(reason) = load(work, robot, &name).await {
            work.unavailable(reason);
            work.push(slot, Need::Write { attempts });
            return true;
        }
    }
    match burn_optical(work, drive, slot).await {
        Ok(disc) => {
            let outcome = verify_optical(work, drive, slot, disc, attempts).await;
            after_disc(work, &name, slot, attempts, outcome).await
        }
        Err(BurnFailure::DriveGone(error)) => {
            // Nothing was written; another drive may take the slot.
            tracing::warn!(drive = %name, %error, "drive unavailable, leaving it out of this job");
            work.unavailable(error.message);
            work.push(slot, Need::Write { attempts });
            unload_unwritten(work, &name).await;
            true
        }
        Err(BurnFailure::Disc(error, disc_id)) => {
            work.retry(slot, attempts + 1, &error);
            let outcome = Outcome::Rejected(disc_id, error.message);
            after_disc(work, &name, slot, attempts, outcome).await
        }
        Err(BurnFailure::Job(error)) => {
            work.fail(error);
            unload_unwritten(work, &name).await;
            true
        }
    }
}

/// A blank the robot loaded but nothing was written to leaves the drive through the reject bin,
/// so the drive is empty for the next disc.
async fn unload_unwritten(work: &Work, drive: &str) {
    if work.engine.settings.autoloader.is_some() {
        let reason = "未写入 (not written)";
        if let Err(e) = unload(&work.engine, drive, None, Some(reason)).await {
            tracing::warn!(drive, %e, "could not unload an unwritten blank");
        }
    }
}

/// Puts a blank into the drive from an input bin.
async fn load(work: &Work, robot: &Arc<dyn Autoloader>, drive: &str) -> Result<(), String> {
    let pool = &work.engine.pool;
    let about = About {
        job_id: Some(work.job.id),
        disc_id: None,
    };
    if let Err(e) = drives::set_state(pool, drive, DriveState::Loading, about, None).await {
        work.fail(e);
        return Err(format!("刻录机 {drive} 状态无法记录"));
    }
    let moved = {
        let robot = Arc::clone(robot);
        let drive = drive.to_string();
        tokio::task::spawn_blocking(move || robot.load_blank(&drive)).await
    };
    let error = match moved {
        Ok(Ok(_bin)) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("autoloader thread failed: {e}"),
    };
    let reason = format!("机械手无法向刻录机 {drive} 装入空白盘：{error}");
    tracing::warn!(drive, %error, "autoloader could not load a blank");
    let _ = drives::set_state(pool, drive, DriveState::Idle, about, Some(&reason)).await;
    if let Err(e) = drives::alert(pool, "autoloader", "autoloader", &reason).await {
        work.fail(e);
    }
    Err(reason)
}

/// How a disc ended on its drive.
enum Outcome {
    Verified(i64),
    /// Rejected (its slot is already queued again), with the reason printed on it.
    Rejected(i64, String),
    /// The job failed; nothing to move.
    Stopped,
}

/// After a disc: the robot moves it to the printer and the output or reject bin. Returns whether
/// the drive must leave the job (the robot can no longer serve it).
async fn after_disc(
    work: &Arc<Work>,
    drive: &str,
    slot: Slot,
    attempts: u32,
    outcome: Outcome,
) -> bool {
    let (disc_id, rejected) = match &outcome {
        Outcome::Verified(id) => (*id, None),
        Outcome::Rejected(id, reason) => (*id, Some(reason.as_str())),
        Outcome::Stopped => return true,
    };
    match unload(&work.engine, drive, Some(disc_id), rejected).await {
        Ok(Unloaded::Done) => false,
        Ok(Unloaded::Lost(reason)) => {
            if rejected.is_none() {
                // A verified disc that fell from the arm is no copy: rejected and made again.
                let error = err!(Unavailable, "{reason}");
                if let Err(e) = reject(&work.engine, disc_id, &reason).await {
                    work.fail(e);
                    return true;
                }
                work.writes_left.fetch_add(1, Ordering::SeqCst);
                work.retry(slot, attempts + 1, &error);
            }
            false
        }
        Ok(Unloaded::Stuck(reason)) => {
            work.unavailable(reason);
            true
        }
        Err(e) => {
            work.fail(e);
            true
        }
    }
}

/// One call on the robot, run on a blocking thread.
type ArmMove = Box<dyn FnOnce(&dyn Autoloader) -> Result<(), AutoloaderError> + Send>;

/// What became of a disc the robot took out of its drive.
enum Unloaded {
    /// In the output or reject bin (or there is no robot).
    Done,
    /// Dropped on the way.
    Lost(String),
    /// The robot stopped (jam, full bin): the disc waits for an operator; an alert says where.
    Stuck(String),
}

/// Prints a disc's face (or its REJECT face); a failure is an alert, never a reason to hold the
/// disc back.
async fn print_face(engine: &Engine, drive: &str, id: i64, rejected: Option<&str>) -> Result<()> {
    if let Err(error) =
        crate::labels::print_disc_face(&engine.pool, &engine.settings, &*engine.clock, id, rejected)
            .await
    {
        tracing::warn!(disc_id = id, %error, "disc face not printed");
        drives::alert(
            &engine.pool,
            "label",
            drive,
            &format!("光盘 {id} 的盘面未能打印：{}", error.message),
        )
        .await?;
    }
    Ok(())
}

/// With a robot: drive → printer → (face, or REJECT, printed) → output or reject bin, one disc
/// at a time for all drives. Printing failures are alerts, not reasons to hold a disc back.
async fn unload(
    engine: &Engine,
    drive: &str,
    disc_id: Option<i64>,
    rejected: Option<&str>,
) -> Result<Unloaded> {
    let Some(robot) = engine.settings.autoloader.clone() else {
        // Without a robot the operator carries the disc to the printer: its face (or REJECT
        // face) is queued at once, and disc printers hold a job until a disc is in the tray.
        if let Some(id) = disc_id {
            print_face(engine, drive, id, rejected).await?;
        }
        return Ok(Unloaded::Done);
    };
    let _arm = engine.drive_pool.arm.lock().await;
    let step = |f: ArmMove| {
        let robot = Arc::clone(&robot);
        async move {
            tokio::task::spawn_blocking(move || f(&*robot))
                .await
                .map_err(|e| err!(Internal, "autoloader thread failed: {e}"))
        }
    };
    let what = match disc_id {
        Some(id) => format!("光盘 {id}（刻录机 {drive}）"),
        None => format!("刻录机 {drive} 中的光盘"),
    };
    let stuck = |error: AutoloaderError, place: String| async move {
        let reason = format!("{what}停在{place}：{error}");
        tracing::warn!(drive, %error, "autoloader stopped");
        drives::alert(&engine.pool, "autoloader", "autoloader", &reason).await?;
        Ok::<_, Error>(match error {
            AutoloaderError::DiscDropped { .. } => {
                Unloaded::Lost(format!("{what}被机械手掉落：{error}"))
            }
            _ => Unloaded::Stuck(reason),
        })
    };
    let name = drive.to_string();
    if let Err(error) = step(Box::new(move |r| r.drive_to_printer(&name))).await? {
        return stuck(error, format!("刻录机 {drive}")).await;
    }
    if let Some(id) = disc_id {
        print_face(engine, drive, id, rejected).await?;
    }
    let to_bin: ArmMove = if rejected.is_some() {
        Box::new(|r| r.printer_to_reject())
    } else {
        Box::new(|r| r.printer_to_output())
    };
    if let Err(error) = step(to_bin).await? {
        return stuck(error, "打印机".to_string()).await;
    }
    Ok(Unloaded::Done)
}

enum BurnFailure {
    /// The drive could not take a disc at all; nothing was written.
    DriveGone(Error),
    /// The disc failed; it was rejected (its id, for disk copies none).
    Disc(Error, i64),
    /// The catalog failed; the job stops.
    Job(Error),
}

impl From<Error> for BurnFailure {
    fn from(e: Error) -> BurnFailure {
        BurnFailure::Job(e)
    }
}

fn volume_payload(work: &Work, volume: &VolumeRow) -> Result<Vec<PayloadFile>> {
    steps::volume_payload(&volume.items()?, &work.by_id(), &work.parts)
}

async fn burn_optical(
    work: &Arc<Work>,
    drive: &Arc<dyn Burner>,
    slot: Slot,
) -> Result<DiscRow, BurnFailure> {
    let engine = &work.engine;
    let info = drive.info();
    let volume = &work.volumes[&slot.set_index];
    let data_dir = engine.data_dir();
    let root = pkg::volume_dir(&data_dir, work.job.id, slot.set_index);
    let by_id = work.by_id();
    let mut cuts = Vec::new();
    for item in volume.items()? {
        if let Some(part) = item.part {
            let file = by_id[&item.file];
            let piece = work
                .parts
                .iter()
                .find(|p| p.package_file_id == item.file && p.part_index == part as i64)
                .ok_or_else(|| err!(Internal, "part {part} of {} is missing", file.rel_path))?;
            cuts.push(Cut {
                source: pkg::bag_dir(&data_dir, work.job.id)
                    .join("data")
                    .join(&file.rel_path),
                offset: piece.offset as u64,
                length: piece.length as u64,
                disc_path: format!("data/{}", plan::part_path(&file.rel_path, part)),
            });
        }
    }
    let now = engine.now();
    // The disc is recorded as "writing" before a byte is written, so a crash leaves a trace
    // that the restart turns into a rejected disc.
    let disc_id = sqlx::query(
        "INSERT INTO discs (job_id, kind, set_index, set_count, copy_index, medium, target, location, volume_id, status, created_at)
         VALUES (?, 'optical', ?, ?, ?, ?, ?, '', ?, 'writing', ?)",
    )
    .bind(work.job.id)
    .bind(slot.set_index)
    .bind(slot.set_count)
    .bind(slot.copy_index)
    .bind(&info.medium)
    .bind(&info.name)
    .bind(&volume.volume_id)
    .bind(&now)
    .execute(&engine.pool)
    .await
    .map_err(Error::from)?
    .last_insert_rowid();
    let about = About {
        job_id: Some(work.job.id),
        disc_id: Some(disc_id),
    };
    drives::set_state(&engine.pool, &info.name, DriveState::Recording, about, None).await?;
    let request = BurnRequest {
        volume_id: volume.volume_id.clone(),
        disc_name: format!(
            "job{}-disc{}-of{}-copy{}-{}",
            work.job.id, slot.set_index, slot.set_count, slot.copy_index, disc_id
        ),
        root,
        cuts,
    };
    let location = match &info.kind {
        &"virtual" => info.device.join(format!("{}.iso", request.disc_name)),
        _ => info.device.clone(),
    };
    sqlx::query("UPDATE discs SET location = ? WHERE id = ?")
        .bind(location.display().to_string())
        .bind(disc_id)
        .execute(&engine.pool)
        .await
        .map_err(Error::from)?;
    let message = format!("正在刻录{}（驱动器 {}）", slot.describe(), info.name);
    work.progress(&message).await;
    let bytes = volume.payload_bytes as u64;
    let result = {
        let drive = Arc::clone(drive);
        let work = Arc::clone(work);
        let ticker_work = Arc::clone(&work);
        let handle = tokio::task::spawn_blocking(move || {
            let mut reported = 0u64;
            drive.burn(&request, &mut |p| {
                let now = (p.fraction.clamp(0.0, 1.0) * bytes as f64) as u64;
                if now > reported {
                    work.done.fetch_add(now - reported, Ordering::Relaxed);
                    reported = now;
                }
            })
        });
        tokio::pin!(handle);
        loop {
            tokio::select! {
                joined = &mut handle => break joined,
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => ticker_work.progress(&message).await,
            }
        }
    };
    let result = result.map_err(|e| err!(Internal, "burn thread failed: {e}"))?;
    match result {
        Ok(burned) => {
            work.written();
            let size = std::fs::metadata(&burned.location)
                .map(|m| m.len())
                .unwrap_or(bytes);
            sqlx::query(
                "UPDATE discs SET status = 'written', bytes = ?, location = ? WHERE id = ?",
            )
            .bind(size as i64)
            .bind(burned.location.display().to_string())
            .bind(disc_id)
            .execute(&engine.pool)
            .await
            .map_err(Error::from)?;
            Ok(catalog::job_discs(&engine.pool, work.job.id)
                .await?
                .into_iter()
                .find(|d| d.id == disc_id)
                .ok_or_else(|| err!(Internal, "disc {disc_id} vanished"))?)
        }
        Err(error @ BurnError::Unburnable { .. }) => {
            sqlx::query("DELETE FROM discs WHERE id = ?")
                .bind(disc_id)
                .execute(&engine.pool)
                .await
                .map_err(Error::from)?;
            // Not the drive's fault: it rests, uncounted.
            drives::set_state(
                &engine.pool,
                &info.name,
                DriveState::Idle,
                about,
                Some(&error.to_string()),
            )
            .await?;
            Err(BurnFailure::Job(err!(
                FailedPrecondition,
                "{}无法刻录（未写入任何数据）：{error}",
                slot.describe()
            )))
        }
        Err(BurnError::DriveUnavailable { drive, reason }) => {
            sqlx::query("DELETE FROM discs WHERE id = ?")
                .bind(disc_id)
                .execute(&engine.pool)
                .await
                .map_err(Error::from)?;
            drives::set_state(
                &engine.pool,
                &info.name,
                DriveState::Idle,
                about,
                Some(&reason),
            )
            .await?;
            Err(BurnFailure::DriveGone(err!(
                Unavailable,
                "刻录机 {drive} 不可用：{reason}"
            )))
        }
        Err(error) => {
            let error = Error::from(error);
            tracing::warn!(disc_id, %error, "burn failed; disc rejected");
            drive.discard(&BurnedDisc { location });
            let reason = format!("刻录失败：{}", error.message);
            reject(engine, disc_id, &reason).await?;
            drives::disc_bad(
                &engine.pool,
                &info.name,
                DriveState::RecordFailed,
                about,
                &reason,
                engine.settings.config.burning.out_of_service_after,
            )
            .await?;
            Err(BurnFailure::Disc(error, disc_id))
        }
    }
}

/// The digests every file of a copy must have: its payload from the catalog, its tag files as
/// written in staging.
fn expected(payload: Vec<PayloadFile>, tag_root: &Path) -> Result<Vec<Expected>> {
    let mut out: Vec<Expected> = payload
        .into_iter()
        .map(|p| Expected {
            path: p.bag_path,
            size: p.size,
            digests: p.digests,
        })
        .collect();
    for tag in layout::tag_files_in(tag_root)? {
        out.push(Expected {
            path: tag.bag_path,
            size: tag.size,
            digests: tag.digests,
        });
    }
    Ok(out)
}

/// Reads a written disc back; a mismatch rejects it and queues its slot again.
async fn verify_optical(
    work: &Arc<Work>,
    drive: &Arc<dyn Burner>,
    slot: Slot,
    disc: DiscRow,
    attempts: u32,
) -> Outcome {
    let pool = &work.engine.pool;
    let name = drive.info().name;
    let about = About {
        job_id: Some(work.job.id),
        disc_id: Some(disc.id),
    };
    if let Err(e) = drives::set_state(pool, &name, DriveState::Verifying, about, None).await {
        work.fail(e);
        return Outcome::Stopped;
    }
    let result = verify_optical_inner(work, drive, slot, &disc).await;
    match result {
        Ok(()) => match drives::disc_good(pool, &name, about).await {
            Ok(()) => Outcome::Verified(disc.id),
            Err(e) => {
                work.fail(e);
                Outcome::Stopped
            }
        },
        Err(BurnFailure::Disc(error, _)) => {
            tracing::warn!(disc_id = disc.id, %error, "read-back failed; disc rejected");
            drive.discard(&BurnedDisc {
                location: PathBuf::from(&disc.location),
            });
            let recorded = async {
                reject(&work.engine, disc.id, &error.message).await?;
                drives::disc_bad(
                    pool,
                    &name,
                    DriveState::VerifyFailed,
                    about,
                    &error.message,
                    work.engine.settings.config.burning.out_of_service_after,
                )
                .await
            }
            .await;
            if let Err(e) = recorded {
                work.fail(e);
                return Outcome::Stopped;
            }
            work.writes_left.fetch_add(1, Ordering::SeqCst);
            work.retry(slot, attempts + 1, &error);
            Outcome::Rejected(disc.id, error.message)
        }
        Err(BurnFailure::DriveGone(error)) | Err(BurnFailure::Job(error)) => {
            work.fail(error);
            Outcome::Stopped
        }
    }
}

async fn verify_optical_inner(
    work: &Arc<Work>,
    drive: &Arc<dyn Burner>,
    slot: Slot,
    disc: &DiscRow,
) -> Result<(), BurnFailure> {
    let engine = &work.engine;
    work.enter_verify().await?;
    let volume = &work.volumes[&slot.set_index];
    let root = pkg::volume_dir(&engine.data_dir(), work.job.id, slot.set_index);
    let expected = expected(volume_payload(work, volume)?, &root)?;
    let message = format!("正在回读校验{}", slot.describe());
    work.progress(&message).await;
    let drive = Arc::clone(drive);
    let location = PathBuf::from(&disc.location);
    let worker = Arc::clone(work);
    let result = tokio::task::spawn_blocking(move || -> Result<()> {
        let burned = BurnedDisc { location };
        drive.media_check(&burned)?;
        let mut reader = drive.open_disc(&burned)?;
        verify::verify_disc(&mut *reader, &expected, &worker.done)
    })
    .await
    .map_err(|e| err!(Internal, "verify thread failed: {e}"))?;
    match result {
        Ok(()) => {
            mark_verified(engine, disc.id).await?;
            work.progress(&format!("{}已校验", slot.describe())).await;
            Ok(())
        }
        Err(e) => Err(BurnFailure::Disc(e, disc.id)),
    }
}

async fn mark_verified(engine: &Engine, disc_id: i64) -> Result<()> {
    sqlx::query("UPDATE discs SET status = 'verified', error = NULL, verified_at = ? WHERE id = ?")
        .bind(engine.now())
        .bind(disc_id)
        .execute(&engine.pool)
        .await?;
    crate::search::notify(&engine.pool, crate::search::Change::Disc(disc_id));
    Ok(())
}

fn partial_dir(final_dir: &Path) -> PathBuf {
    let name = final_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_dir.with_file_name(format!(".{name}.partial"))
}

/// Chooses a disk target: the first whose folder exists and is writable.
fn pick_disk(disks: &[DiskTarget]) -> Result<&DiskTarget> {
    let mut reasons = Vec::new();
    for disk in disks {
        match std::fs::metadata(&disk.path) {
            Ok(m) if m.is_dir() => {
                let probe = disk.path.join(".witness-write-test");
                match std::fs::write(&probe, b"ok") {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&probe);
                        return Ok(disk);
                    }
                    Err(e) => reasons.push(format!(
                        "{}（{}）不可写：{e}",
                        disk.name,
                        disk.path.display()
                    )),
                }
            }
            Ok(_) => reasons.push(format!("{}（{}）不是目录", disk.name, disk.path.display())),
            Err(e) => reasons.push(format!(
                "{}（{}）不可用（未挂载？）：{e}",
                disk.name,
                disk.path.display()
            )),
        }
    }
    if reasons.is_empty() {
        bail!(FailedPrecondition, "没有配置硬盘副本目录 ([[disks]])");
    }
    bail!(
        Unavailable,
        "没有可写的硬盘副本目录：{}",
        reasons.join("；")
    )
}

async fn disk_worker(work: Arc<Work>) {
    while !work.failed() {
        let Some((slot, need)) = work.next(true) else {
            break;
        };
        match need {
            Need::Done => {}
            Need::Verify(disc) => verify_disk(&work, slot, *disc, 0).await,
            Need::Write { attempts } => match write_disk(&work, slot).await {
                Ok(disc) => verify_disk(&work, slot, disc, attempts).await,
                Err(BurnFailure::Disc(error, _)) => work.retry(slot, attempts + 1, &error),
                Err(BurnFailure::DriveGone(error)) | Err(BurnFailure::Job(error)) => {
                    work.fail(error)
                }
            },
        }
    }
}

async fn write_disk(work: &Arc<Work>, slot: Slot) -> Result<DiscRow, BurnFailure> {
    let engine = &work.engine;
    let disk = pick_disk(&engine.settings.disks)
        .map_err(BurnFailure::Job)?
        .clone();
    let final_dir = disk
        .path
        .join(&work.job.project_number)
        .join(format!("job-{}-copy{}", work.job.id, slot.copy_index));
    let disc_id = sqlx::query(
        "INSERT INTO discs (job_id, kind, set_index, set_count, copy_index, medium, target, location, volume_id, status, created_at)
         VALUES (?, 'disk', 1, 1, ?, 'disk', ?, ?, ?, 'writing', ?)",
    )
    .bind(work.job.id)
    .bind(slot.copy_index)
    .bind(&disk.name)
    .bind(final_dir.display().to_string())
    .bind(&work.job.package_uuid)
    .bind(engine.now())
    .execute(&engine.pool)
    .await
    .map_err(Error::from)?
    .last_insert_rowid();
    let message = format!("正在写入{}（{}）", slot.describe(), disk.name);
    work.progress(&message).await;
    let bag = pkg::bag_dir(&engine.data_dir(), work.job.id);
    let target = final_dir.clone();
    let worker = Arc::clone(work);
    let result =
        tokio::task::spawn_blocking(move || copy_tree_durably(&bag, &target, &worker.done))
            .await
            .map_err(|e| err!(Internal, "disk copy thread failed: {e}"))?;
    match result {
        Ok(bytes) => {
            work.written();
            sqlx::query("UPDATE discs SET status = 'written', bytes = ? WHERE id = ?")
                .bind(bytes as i64)
                .bind(disc_id)
                .execute(&engine.pool)
                .await
                .map_err(Error::from)?;
            Ok(catalog::job_discs(&engine.pool, work.job.id)
                .await?
                .into_iter()
                .find(|d| d.id == disc_id)
                .ok_or_else(|| err!(Internal, "disc {disc_id} vanished"))?)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(partial_dir(&final_dir));
            reject(engine, disc_id, &format!("写入硬盘失败：{}", error.message)).await?;
            Err(BurnFailure::Disc(error, disc_id))
        }
    }
}

/// Copies the bag into `<target>.partial`, flushes the disk, then renames it into place: a disk
/// copy either exists whole or not at all.
fn copy_tree_durably(bag: &Path, target: &Path, done: &AtomicU64) -> Result<u64> {
    let partial = partial_dir(target);
    for dir in [&partial, &target.to_path_buf()] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| io_error(format!("清理 {}", dir.display()), e))?;
        }
    }
    let parent = target
        .parent()
        .ok_or_else(|| err!(Internal, "disk copy target has no parent"))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| io_error(format!("创建目录 {}", parent.display()), e))?;
    let mut bytes = 0u64;
    let mut stack = vec![(bag.to_path_buf(), partial.clone())];
    while let Some((from, to)) = stack.pop() {
        std::fs::create_dir_all(&to)
            .map_err(|e| io_error(format!("创建目录 {}", to.display()), e))?;
        for entry in std::fs::read_dir(&from).map_err(|e| io_error(from.display(), e))? {
            let entry = entry.map_err(|e| io_error(from.display(), e))?;
            let kind = entry
                .file_type()
                .map_err(|e| io_error(entry.path().display(), e))?;
            let dest = to.join(entry.file_name());
            if kind.is_dir() {
                stack.push((entry.path(), dest));
            } else {
                let n = std::fs::copy(entry.path(), &dest)
                    .map_err(|e| io_error(format!("写入 {}", dest.display()), e))?;
                bytes += n;
                done.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
    // One syncfs flushes every file and folder of the copy (an fsync per file costs a disk
    // flush each); only then may the copy take its final name.
    crate::package::collect::sync_filesystem(&partial)?;
    std::fs::rename(&partial, target)
        .map_err(|e| io_error(format!("重命名为 {}", target.display()), e))?;
    sync_dir(parent)?;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(format!("同步目录 {}", dir.display()), e))
}

async fn verify_disk(work: &Arc<Work>, slot: Slot, disc: DiscRow, attempts: u32) {
    let engine = &work.engine;
    let result: Result<()> = async {
        work.enter_verify().await?;
        work.progress(&format!("正在回读校验{}", slot.describe()))
            .await;
        let bag = pkg::bag_dir(&engine.data_dir(), work.job.id);
        let payload: Vec<PayloadFile> = work
            .files
            .iter()
            .map(|f| PayloadFile {
                bag_path: format!("data/{}", f.rel_path),
                size: f.size as u64,
                digests: Digests {
                    sha256: f.sha256.clone(),
                    sm3: f.sm3.clone(),
                },
            })
            .collect();
        let expected = expected(payload, &bag)?;
        let location = PathBuf::from(&disc.location);
        let worker = Arc::clone(work);
        tokio::task::spawn_blocking(move || verify::verify_dir(&location, &expected, &worker.done))
            .await
            .map_err(|e| err!(Internal, "verify thread failed: {e}"))?
    }
    .await;
    match result {
        Ok(()) => {
            if let Err(e) = mark_verified(engine, disc.id).await {
                work.fail(e);
            }
        }
        Err(error) => {
            tracing::warn!(disc_id = disc.id, %error, "disk copy read-back failed; copy rejected");
            let _ = std::fs::remove_dir_all(&disc.location);
            if let Err(e) = reject(engine, disc.id, &error.message).await {
                work.fail(e);
                return;
            }
            work.writes_left.fetch_add(1, Ordering::SeqCst);
            work.retry(slot, attempts + 1, &error);
        }
    }
}
