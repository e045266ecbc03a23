//! kill -9 of the daemon in the middle of a backup (while a disc is being burned, while the
//! sources are collected, while a disc is read back): after a restart the job finishes with
//! exactly the copies the policy asks for, the interrupted disc is rejected and its remains gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use witness_schemas::api::{CopyKind, Disc, DiscStatus, Job, JobStatus, JobStep, NewProject};
use witness_tests::daemon::{extract_with_xorriso, validate_bag, Daemon};

const TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

/// xorshift64*: deterministic, incompressible bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            out.extend_from_slice(&self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// `count` files of `size` bytes in a few folders under `root/<name>`.
fn make_sources(root: &Path, name: &str, count: usize, size: usize, seed: u64) -> Result<PathBuf> {
    let mut rng = Rng(seed);
    let dir = root.join(name);
    for i in 0..count {
        let path = dir
            .join(format!("评标室{}", i % 4 + 1))
            .join(format!("录像 {i:04}.mp4"));
        std::fs::create_dir_all(path.parent().context("parent")?)?;
        std::fs::write(&path, rng.bytes(size))?;
    }
    Ok(dir)
}

fn write_config(tmp: &Path, capacity: u64, throttle: Option<u64>) -> Result<PathBuf> {
    let hdd = tmp.join("hdd1");
    std::fs::create_dir_all(&hdd)?;
    let config = tmp.join("witness.toml");
    let throttle = throttle
        .map(|t| format!("throttle_bytes_per_sec = {t}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = {capacity}\n{throttle}\n\
             [[disks]]\nname = \"hdd1\"\npath = {:?}\n\n[copies]\noptical = 1\ndisk = 1\n",
            hdd.display().to_string()
        ),
    )?;
    Ok(config)
}

async fn register(daemon: &Daemon, number: &str, sources: &Path) -> Result<()> {
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: number.to_string(),
            name: "断电恢复测试项目".to_string(),
            category: witness_controller::cli::parse_category("procurement")?,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        })
        .await?;
    client
        .add_sources(number, vec![sources.display().to_string()])
        .await?;
    Ok(())
}

/// Waits for the job to end; Ok only when it succeeded with every copy verified.
async fn finish(daemon: &Daemon, job: i64) -> Result<Job> {
    tokio::time::timeout(
        TIMEOUT,
        witness_controller::cli::wait(&daemon.client(), job),
    )
    .await
    .context("the job did not finish within 120 s")?
}

/// Processes (xorriso, normally) whose command line names `path`.
fn processes_naming(path: &Path) -> Vec<(u32, String)> {
    let needle = path.display().to_string();
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if pid != me && cmdline.contains(&needle) {
                found.push((pid, cmdline));
            }
        }
    }
    found
}

/// The copies of one job: exactly one verified copy per disc of the set and one disk copy, none
/// left writing or written. Returns the verified optical discs by set index.
fn check_copies(discs: &[Disc], job: i64) -> Result<BTreeMap<i64, Disc>> {
    let mine: Vec<&Disc> = discs.iter().filter(|d| d.job_id == job).collect();
    let unfinished: Vec<&&Disc> = mine
        .iter()
        .filter(|d| matches!(d.status, DiscStatus::Writing | DiscStatus::Written))
        .collect();
    ensure!(
        unfinished.is_empty(),
        "copies left unfinished: {unfinished:#?}"
    );
    let mut verified: BTreeMap<(bool, i64), Vec<&Disc>> = BTreeMap::new();
    for disc in mine.iter().filter(|d| d.status == DiscStatus::Verified) {
        verified
            .entry((disc.kind == CopyKind::Disk, disc.set_index))
            .or_default()
            .push(disc);
    }
    let duplicates: Vec<_> = verified.values().filter(|v| v.len() > 1).collect();
    ensure!(
        duplicates.is_empty(),
        "duplicate verified copies: {duplicates:#?}"
    );
    let optical: BTreeMap<i64, Disc> = verified
        .iter()
        .filter(|((disk, _), _)| !disk)
        .map(|((_, i), v)| (*i, v[0].clone()))
        .collect();
    let count = optical
        .values()
        .next()
        .context("no verified disc")?
        .set_count;
    ensure!(
        optical.keys().copied().collect::<Vec<_>>() == (1..=count).collect::<Vec<_>>(),
        "verified discs {:?} of a set of {count}",
        optical.keys()
    );
    ensure!(
        optical.values().all(|d| d.set_count == count),
        "set counts differ: {optical:#?}"
    );
    ensure!(
        verified.keys().filter(|(disk, _)| *disk).count() == 1,
        "disk copies: {verified:#?}"
    );
    ensure!(verified.values().map(Vec::len).sum::<usize>() == count as usize + 1);
    Ok(optical)
}

/// Every rejected copy was rejected for the restart (nothing else went wrong), and what it left
/// behind is gone (a disk copy made again reuses its folder name, so that one may exist).
fn check_rejections(discs: &[Disc]) -> Result<()> {
    let verified: Vec<&str> = discs
        .iter()
        .filter(|d| d.status == DiscStatus::Verified)
        .map(|d| d.location.as_str())
        .collect();
    for disc in discs.iter().filter(|d| d.status == DiscStatus::Rejected) {
        let error = disc.error.as_deref().unwrap_or_default();
        ensure!(
            error.contains("restart"),
            "copy {} rejected for another reason: {error}",
            disc.id
        );
        ensure!(
            disc.location.is_empty()
                || !Path::new(&disc.location).exists()
                || (disc.kind == CopyKind::Disk && verified.contains(&disc.location.as_str())),
            "rejected copy {} left {}",
            disc.id,
            disc.location
        );
    }
    Ok(())
}

/// The disk target holds the verified disk copy and nothing else (no `.partial` folder).
fn check_disk_target(tmp: &Path, discs: &[Disc]) -> Result<()> {
    let verified: Vec<PathBuf> = discs
        .iter()
        .filter(|d| d.kind == CopyKind::Disk && d.status == DiscStatus::Verified)
        .map(|d| PathBuf::from(&d.location))
        .collect();
    let mut found = Vec::new();
    for project in std::fs::read_dir(tmp.join("hdd1"))? {
        for copy in std::fs::read_dir(project?.path())? {
            found.push(copy?.path());
        }
    }
    ensure!(
        found == verified,
        "disk target holds {found:#?}, verified {verified:#?}"
    );
    Ok(())
}

/// Extracts every verified disc image and validates it with bagit.py; the images in the drive
/// folder are exactly those discs.
fn check_images(tmp: &Path, data: &Path, optical: &BTreeMap<i64, Disc>) -> Result<()> {
    let mut images: Vec<PathBuf> = std::fs::read_dir(data.join("drives/bd1"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    images.sort();
    let mut expected: Vec<PathBuf> = optical
        .values()
        .map(|d| PathBuf::from(&d.location))
        .collect();
    expected.sort();
    ensure!(
        images == expected,
        "images in the drive folder {images:#?}, verified discs {expected:#?}"
    );
    for (index, disc) in optical {
        let dir = tmp.join(format!("extract-{}-{index}", disc.id));
        std::fs::create_dir_all(&dir)?;
        extract_with_xorriso(Path::new(&disc.location), &dir)?;
        validate_bag(&dir)?;
        let info = std::fs::read_to_string(dir.join("bag-info.txt"))?;
        ensure!(
            info.contains(&format!("Bag-Count: {index} of {}", disc.set_count)),
            "{info}"
        );
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// Runs a scenario; on failure prints the daemon's log (both runs: the log file is appended).
async fn with_log(daemon: &Daemon, started: Instant, name: &str, result: Result<()>) -> Result<()> {
    match &result {
        Ok(()) => eprintln!("{name}: passed in {:?}", started.elapsed()),
        Err(e) => eprintln!(
            "{name}: failed after {:?}: {e:#}\ndaemon log:\n{}",
            started.elapsed(),
            daemon.log_text()
        ),
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_disc_is_burning() -> Result<()> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    // 40 MB on 24 MiB discs: a set of two, each burned at 3 MB/s, so a burn takes seconds.
    let sources = make_sources(tmp.path(), "录像资料", 40, 1_000_000, 0xC0FFEE)?;
    let config = write_config(tmp.path(), 24 * 1024 * 1024, Some(3_000_000))?;
    let data = tmp.path().join("data");
    let mut daemon = Daemon::start(&data, Some(&config)).await?;
    let result = burn_scenario(&mut daemon, tmp.path(), &sources, &data).await;
    with_log(&daemon, started, "kill -9 during the burn", result).await
}

async fn burn_scenario(daemon: &mut Daemon, tmp: &Path, sources: &Path, data: &Path) -> Result<()> {
    register(daemon, "CRASH-BURN-01", sources).await?;
    let job = daemon.client().backup("CRASH-BURN-01").await?.id;

    // Wait until a disc is being written and its image already holds data.
    let deadline = Instant::now() + TIMEOUT;
    let (interrupted, image) = loop {
        ensure!(
            Instant::now() < deadline,
            "no disc was seen writing within 120 s"
        );
        let client = daemon.client();
        let state = client.job(job).await?;
        ensure!(
            state.status != JobStatus::Failed,
            "job failed: {:?}",
            state.error
        );
        ensure!(
            state.status != JobStatus::Succeeded,
            "the job finished before a burn was seen"
        );
        let writing = client.discs().await?.into_iter().find(|d| {
            d.kind == CopyKind::Optical && d.status == DiscStatus::Writing && !d.location.is_empty()
        });
        if let Some(disc) = writing {
            let image = PathBuf::from(&disc.location);
            let size = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
            // As soon as the image holds data: a disc is about 20 MB, written at 3 MB/s, so
            // xorriso would need several seconds more to finish on its own.
            // (The job's step says burn or verify: the disk copy is made and read back
            // alongside, and the step shows whichever copy moved last.)
            if matches!(state.step, JobStep::Burn | JobStep::Verify) && size > 0 {
                eprintln!(
                    "killing the daemon while disc {} is written ({size} bytes so far)",
                    disc.id
                );
                break (disc, image);
            }
        }
        tokio::time::sleep(POLL).await;
    };
    daemon.kill9();
    let killed = Instant::now();
    let orphans = processes_naming(&image);
    daemon.restart().await?;
    let done = finish(daemon, job).await?;
    ensure!(done.status == JobStatus::Succeeded && done.copies_verified == done.copies_expected);

    let discs = daemon.client().discs().await?;
    let after = discs
        .iter()
        .find(|d| d.id == interrupted.id)
        .context("the interrupted disc vanished")?;
    ensure!(
        after.status == DiscStatus::Rejected,
        "interrupted disc: {after:#?}"
    );
    let error = after.error.as_deref().unwrap_or_default();
    ensure!(
        error.contains("restart") || error.contains("中断"),
        "rejection reason: {error}"
    );
    // The killed daemon's xorriso (if it was still running at the kill) must not finish the
    // disc: it gets SIGTERM with the daemon and cancels the write (libburn lets a paced write
    // run out its sleep first). Finishing, it would re-create the image the restart removed
    // (libburn rewrites LBA 0 when a write ends) and, on a real drive, hold the drive.
    let deadline = Instant::now() + TIMEOUT;
    while !processes_naming(&image).is_empty() {
        ensure!(
            Instant::now() < deadline,
            "the killed daemon's xorriso never ended"
        );
        tokio::time::sleep(POLL).await;
    }
    eprintln!(
        "the killed daemon's xorriso: {} running at the kill, all gone {:?} after it",
        orphans.len(),
        killed.elapsed()
    );
    ensure!(
        !image.exists(),
        "the partial image {} is there ({:?} bytes) after the restart rejected its disc",
        image.display(),
        std::fs::metadata(&image).map(|m| m.len()).ok()
    );
    // The disk copy is made alongside the discs, so it may have been interrupted too.
    check_rejections(&discs)?;
    let rejected_optical = discs
        .iter()
        .filter(|d| d.kind == CopyKind::Optical && d.status == DiscStatus::Rejected);
    ensure!(
        rejected_optical.count() == 1,
        "more than the interrupted disc was rejected"
    );
    let optical = check_copies(&discs, job)?;
    ensure!(
        optical.len() >= 2,
        "expected a set of at least two discs: {optical:#?}"
    );
    ensure!(
        optical[&interrupted.set_index].id != interrupted.id,
        "the interrupted disc's slot was not made again"
    );
    check_images(tmp, data, &optical)?;
    check_disk_target(tmp, &discs)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_collecting_and_while_verifying() -> Result<()> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    // A few hundred files, enough that collection (copy + SHA-256 + SM3) takes a moment.
    let sources = make_sources(tmp.path(), "评标资料", 300, 1_000_000, 0xBADC0DE)?;
    let config = write_config(tmp.path(), 64 * 1024 * 1024, None)?;
    let data = tmp.path().join("data");
    let mut daemon = Daemon::start(&data, Some(&config)).await?;
    let result = collect_verify_scenario(&mut daemon, tmp.path(), &sources, &data).await;
    with_log(
        &daemon,
        started,
        "kill -9 during collect and verify",
        result,
    )
    .await
}

/// Regular files below `dir` (0 when it does not exist yet).
fn count_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => count += 1,
                _ => {}
            }
        }
    }
    count
}

async fn collect_verify_scenario(
    daemon: &mut Daemon,
    tmp: &Path,
    sources: &Path,
    data: &Path,
) -> Result<()> {
    register(daemon, "CRASH-COLLECT-02", sources).await?;
    let job = daemon.client().backup("CRASH-COLLECT-02").await?.id;

    // Collecting: the job reports bytes copied, not yet all of them.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        ensure!(
            Instant::now() < deadline,
            "collection was never seen in progress"
        );
        let state = daemon.client().job(job).await?;
        if state.step != JobStep::Collect
            || !matches!(state.status, JobStatus::Queued | JobStatus::Running)
        {
            bail!("collection ended before it was seen in progress: {state:?}");
        }
        // The staged files themselves show collection under way: progress in the catalog is
        // only stored twice a second, and a fast machine collects this set in less than that.
        let staged = count_files(&data.join(format!("staging/job-{job}/bag/data")));
        if staged > 0 && staged < 300 {
            eprintln!("killing the daemon while collecting ({staged} of 300 files staged)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    daemon.kill9();
    daemon.restart().await?;

    // Verifying: a copy is written and being read back.
    let deadline = Instant::now() + TIMEOUT;
    let caught = loop {
        ensure!(Instant::now() < deadline, "no copy was seen being verified");
        let client = daemon.client();
        let state = client.job(job).await?;
        ensure!(
            state.status != JobStatus::Failed,
            "job failed: {:?}",
            state.error
        );
        if state.status == JobStatus::Succeeded {
            break None;
        }
        let written = client
            .discs()
            .await?
            .into_iter()
            .find(|d| d.status == DiscStatus::Written);
        if let Some(disc) = written {
            eprintln!(
                "killing the daemon while {:?} copy {} is verified",
                disc.kind, disc.id
            );
            break Some(disc);
        }
        tokio::time::sleep(POLL).await;
    };
    if caught.is_some() {
        daemon.kill9();
        daemon.restart().await?;
    } else {
        eprintln!("no copy was caught between written and verified; the verify kill was skipped");
    }
    let done = finish(daemon, job).await?;
    ensure!(done.status == JobStatus::Succeeded && done.copies_verified == done.copies_expected);
    let discs = daemon.client().discs().await?;
    // Only copies being written at a kill (the disk copy is made alongside the discs) are rejected.
    check_rejections(&discs)?;
    if let Some(caught) = caught {
        // A copy that was written completely is read back again, not thrown away and redone.
        let after = discs
            .iter()
            .find(|d| d.id == caught.id)
            .context("the caught copy vanished")?;
        ensure!(
            after.status == DiscStatus::Verified,
            "copy interrupted in verify: {after:#?}"
        );
    }
    let optical = check_copies(&discs, job)?;
    check_images(tmp, data, &optical)?;
    let disk = discs
        .iter()
        .find(|d| d.kind == CopyKind::Disk && d.status == DiscStatus::Verified)
        .context("no disk copy")?;
    let copy = Path::new(&disk.location);
    validate_bag(copy)?;
    check_disk_target(tmp, &discs)?;
    // The collection redone after the kill copied every file whole: the manifests were computed
    // from the staged files, so compare with the sources themselves.
    let name = sources.file_name().context("source folder name")?;
    let mut stack = vec![sources.to_path_buf()];
    let mut compared = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let copied = copy
                .join("data")
                .join(name)
                .join(path.strip_prefix(sources)?);
            ensure!(
                std::fs::read(&path)? == std::fs::read(&copied)?,
                "{} differs from its source",
                copied.display()
            );
            compared += 1;
        }
    }
    ensure!(compared == 300, "compared {compared} files");
    Ok(())
}
