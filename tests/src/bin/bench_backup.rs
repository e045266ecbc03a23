//! Benchmark (not a test): backs up N GiB of generated project files through a real
//! `witness serve` and prints the time next to `dd` baselines doing the minimum I/O of the same
//! archive, plus the in-memory speed of the controller's SHA-256 + SM3 hasher.
//!
//! ```text
//! cargo build --release --workspace --bins      # the bench starts target/release/witness
//! cargo run --release -p witness-tests --bin bench_backup -- [--gib 2] [--dir PATH] [--seed N] [--keep]
//! ```
//!
//! `WITNESS_BIN` overrides the daemon binary. See tests/BENCHMARKS.md for what is measured.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use witness_controller::digest::DualHasher;
use witness_schemas::api::{Category, CopyKind, DiscStatus, JobStatus, JobStep, NewProject};
use witness_tests::daemon::{witness_bin, Daemon};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const MB: f64 = 1e6;
const PROJECT: &str = "BENCH-2026-0001";
const POLL: Duration = Duration::from_millis(200);

const USAGE: &str = "\
usage: bench_backup [--gib N] [--dir PATH] [--seed N] [--keep]
  --gib N     payload size in GiB, fractions allowed (default 2)
  --dir PATH  where the work folder is made; must be on the file system to measure
              (default: the cargo target folder)
  --seed N    seed of the generated data (default 20260318)
  --keep      keep the work folder (sources, disc image, disk copy, dd files)
Build first: cargo build --release --workspace --bins (or set WITNESS_BIN).";

struct Options {
    gib: f64,
    dir: Option<PathBuf>,
    seed: u64,
    keep: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        gib: 2.0,
        dir: None,
        seed: 20260318,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--gib" => options.gib = value("--gib")?.parse().context("--gib: not a number")?,
            "--dir" => options.dir = Some(PathBuf::from(value("--dir")?)),
            "--seed" => {
                options.seed = value("--seed")?.parse().context("--seed: not an integer")?
            }
            "--keep" => options.keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if !(options.gib > 0.0 && options.gib <= 1024.0) {
        bail!("--gib must be above 0 and at most 1024");
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    // `witness_bin()` looks for the daemon one folder above a test executable (target/<profile>/
    // deps/…); this binary sits in target/<profile>/ itself, so point it at its sibling.
    if std::env::var_os("WITNESS_BIN").is_none() {
        let exe = std::env::current_exe().context("locating this executable")?;
        let sibling = exe.with_file_name("witness");
        if !sibling.exists() {
            bail!(
                "{} is missing: run `cargo build --release --workspace --bins` first, or set WITNESS_BIN",
                sibling.display()
            );
        }
        std::env::set_var("WITNESS_BIN", sibling);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(options))
}

// ---------------------------------------------------------------------------------------------
// Data generation

/// SplitMix64: fast, deterministic, and its output does not compress.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

struct Planned {
    rel: String,
    size: u64,
}

/// About 10 % of the bytes as documents of 2 KiB–512 KiB (log-uniform, a few thousand of them at
/// 2 GiB), the rest as "videos" of roughly 400 MiB each (±30 %).
fn plan_files(total: u64, rng: &mut Rng) -> Vec<Planned> {
    const FOLDERS: [&str; 6] = [
        "招标文件",
        "投标文件",
        "开标记录",
        "评标报告",
        "澄清与答疑",
        "合同与公示",
    ];
    const EXTENSIONS: [&str; 5] = ["pdf", "docx", "pdf", "xlsx", "jpg"];
    let mut files = Vec::new();
    let doc_budget = total / 10;
    let (low, high) = ((2 * KIB) as f64, (512 * KIB) as f64);
    let mut docs = 0u64;
    while docs < doc_budget {
        let size = (low * (high / low).powf(rng.unit())) as u64;
        let size = size.min(doc_budget - docs).max(1);
        let i = files.len();
        let folder = FOLDERS[i % FOLDERS.len()];
        // Bids are filed per bidder, as in a real tender.
        let sub = if folder == "投标文件" {
            format!("/投标人{:02}", i / FOLDERS.len() % 24 + 1)
        } else {
            String::new()
        };
        let ext = EXTENSIONS[(rng.next_u64() % EXTENSIONS.len() as u64) as usize];
        files.push(Planned {
            rel: format!("文件/{folder}{sub}/文档{i:05}.{ext}"),
            size,
        });
        docs += size;
    }
    let video_bytes = total - docs;
    if video_bytes > 0 {
        let count = ((video_bytes as f64 / (400 * MIB) as f64).round() as usize).max(1);
        let weights: Vec<f64> = (0..count).map(|_| 0.7 + 0.6 * rng.unit()).collect();
        let sum: f64 = weights.iter().sum();
        let mut left = video_bytes;
        for (i, w) in weights.iter().enumerate() {
            let size = if i + 1 == count {
                left
            } else {
                ((video_bytes as f64 * w / sum) as u64).min(left)
            };
            left -= size;
            files.push(Planned {
                rel: format!("视频/开标现场录像_第{:02}段.mp4", i + 1),
                size,
            });
        }
    }
    files
}

/// Writes the planned files under `root`; returns their paths.
fn generate(root: &Path, plan: &[Planned], rng: &mut Rng) -> anyhow::Result<Vec<PathBuf>> {
    let mut buffer = vec![0u8; (4 * MIB) as usize];
    let mut paths = Vec::with_capacity(plan.len());
    for file in plan {
        let path = root.join(&file.rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut left = file.size;
        while left > 0 {
            let n = left.min(buffer.len() as u64) as usize;
            rng.fill(&mut buffer[..n]);
            out.write_all(&buffer[..n])?;
            left -= n as u64;
        }
        paths.push(path);
    }
    Ok(paths)
}

// ---------------------------------------------------------------------------------------------
// Page cache and file system helpers

fn syncfs(dir: &Path) -> anyhow::Result<()> {
    let file = File::open(dir)?;
    // SAFETY: syncfs only reads the descriptor, which `file` keeps open for the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("syncfs");
    }
    Ok(())
}

/// Forgets the cached pages of `path` (clean pages only: sync first), like the controller's
/// `verify::drop_cache`; no root needed and other processes' cache is left alone.
fn drop_cached(path: &Path) {
    if let Ok(file) = File::open(path) {
        // SAFETY: posix_fadvise only reads the descriptor; failure just means a cached read.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// Flushes the file system and evicts `files` from the page cache, so the next reader starts cold.
fn make_cold(dir: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    syncfs(dir)?;
    for file in files {
        drop_cached(file);
    }
    Ok(())
}

fn statfs(dir: &Path) -> anyhow::Result<(String, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: an all-zero statfs is a valid value for the kernel to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid C string and st a valid out-pointer for the call.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error()).context("statfs");
    }
    let kind = match st.f_type as u64 {
        0xEF53 => "ext4".to_string(),
        0x5846_5342 => "xfs".to_string(),
        0x9123_683E => "btrfs".to_string(),
        0x0102_1994 => "tmpfs (RAM: figures are not disk figures!)".to_string(),
        0x794C_7630 => "overlayfs".to_string(),
        other => format!("f_type {other:#x}"),
    };
    Ok((kind, st.f_bavail as u64 * st.f_bsize as u64))
}

// ---------------------------------------------------------------------------------------------
// Hash speed

struct HashSpeed {
    /// 64 KiB updates: SHA-256 then SM3 on one thread (wall MB/s).
    serial: f64,
    /// 4 MiB updates, as collect/verify feed it: SM3 on a second thread (wall MB/s).
    parallel: f64,
    /// Per-core rates from thread CPU time in the 4 MiB run (MB per CPU second).
    sha256: f64,
    sm3: f64,
}

fn cpu_time(clock: libc::clockid_t) -> f64 {
    // SAFETY: an all-zero timespec is valid; clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts is a valid out-pointer for the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Hashes 256 MiB in memory. In the 4 MiB run DualHasher hashes SHA-256 on the calling thread
/// and SM3 on a scoped thread, so the caller's thread CPU time is SHA-256's and the rest of the
/// process CPU time is SM3's: per-algorithm speeds that other work on the machine cannot skew
/// the way it skews wall time.
fn hash_speed(rng: &mut Rng) -> HashSpeed {
    let mut data = vec![0u8; (256 * MIB) as usize];
    rng.fill(&mut data);
    let bytes = data.len() as f64;
    // Best of two runs: (wall MB/s, MB per thread-CPU second, MB per other-CPU second).
    let run = |chunk: usize| {
        let mut best = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..2 {
            let (process, thread) = (
                cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID),
                cpu_time(libc::CLOCK_THREAD_CPUTIME_ID),
            );
            let start = Instant::now();
            let mut hasher = DualHasher::new();
            for piece in data.chunks(chunk) {
                hasher.update(piece);
            }
            std::hint::black_box(hasher.finish());
            let wall = start.elapsed().as_secs_f64();
            let thread = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID) - thread;
            let others = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID) - process - thread;
            best.0 = best.0.max(bytes / wall / MB);
            best.1 = best.1.max(bytes / thread / MB);
            best.2 = best.2.max(bytes / others.max(1e-9) / MB);
        }
        best
    };
    let serial = run((64 * KIB) as usize);
    let parallel = run((4 * MIB) as usize);
    HashSpeed {
        serial: serial.0,
        parallel: parallel.0,
        sha256: parallel.1,
        sm3: parallel.2,
    }
}

// ---------------------------------------------------------------------------------------------
// Our pipeline

struct Ours {
    total: Duration,
    /// (step, time it was first seen) in order.
    steps: Vec<(JobStep, Duration)>,
    /// Copies by disc id.
    discs: BTreeMap<i64, CopySeen>,
    /// CPU seconds during the job: the daemon's user and system time, then its finished
    /// children's (xorriso) user + system.
    cpu: Option<[f64; 3]>,
    load_before: String,
}

/// One copy as the poller saw it.
struct CopySeen {
    kind: CopyKind,
    bytes: i64,
    /// Each status and when it was first seen.
    seen: Vec<(DiscStatus, Duration)>,
}

async fn run_ours(work: &Path, source: &Path, files: &[PathBuf]) -> anyhow::Result<Ours> {
    let data = work.join("witness-data");
    let disk = work.join("disk-copies");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&disk)?;
    std::fs::create_dir_all(work.join("drive-bd1"))?;
    let config = work.join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "# One unthrottled virtual BD-R (25 GB), one disk target, one copy of each.\n\
             [[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\n\
             image_dir = {:?}\n\n\
             [[disks]]\nname = \"hdd1\"\npath = {:?}\n\n\
             [copies]\noptical = 1\ndisk = 1\n",
            work.join("drive-bd1").display().to_string(),
            disk.display().to_string(),
        ),
    )?;
    let daemon = Daemon::start(&data, Some(&config)).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: PROJECT.into(),
            name: "基准测试：某工程施工招标".into(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".into(),
        })
        .await?;
    client
        .add_sources(PROJECT, vec![source.display().to_string()])
        .await?;
    make_cold(work, files)?;
    let pid = daemon_pid(&data);
    let load_before = loadavg();
    let cpu_before = pid.and_then(cpu_seconds);

    let start = Instant::now();
    let job = client.backup(PROJECT).await?;
    let mut steps: Vec<(JobStep, Duration)> = Vec::new();
    let mut discs: BTreeMap<i64, CopySeen> = BTreeMap::new();
    let total = loop {
        let now = client.job(job.id).await?;
        let at = start.elapsed();
        if steps.last().map(|s| s.0) != Some(now.step) {
            steps.push((now.step, at));
        }
        for disc in client
            .discs()
            .await?
            .into_iter()
            .filter(|d| d.job_id == job.id)
        {
            let entry = discs.entry(disc.id).or_insert(CopySeen {
                kind: disc.kind,
                bytes: 0,
                seen: Vec::new(),
            });
            entry.bytes = disc.bytes;
            if entry.seen.last().map(|s| s.0) != Some(disc.status) {
                entry.seen.push((disc.status, at));
            }
        }
        match now.status {
            JobStatus::Succeeded => break at,
            JobStatus::Failed => {
                let log = daemon.log_text();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                bail!(
                    "backup job failed: {}\n--- daemon log (last lines) ---\n{}",
                    now.error.unwrap_or_default(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            JobStatus::Queued | JobStatus::Running => {}
        }
        tokio::time::sleep(POLL).await;
    };
    let cpu = match (cpu_before, pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some([b[0] - a[0], b[1] - a[1], b[2] - a[2]]),
        _ => None,
    };
    drop(daemon);
    Ok(Ours {
        total,
        steps,
        discs,
        cpu,
        load_before,
    })
}

/// The pid of the `witness serve` using `data` (Daemon keeps its child private).
fn daemon_pid(data: &Path) -> Option<u32> {
    let needle = data.as_os_str().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (args.iter().any(|a| a == "serve") && args.contains(&needle)).then_some(pid)
        })
}

/// [own user, own system, waited-for children's user + system] CPU seconds of a process.
fn cpu_seconds(pid: u32) -> Option<[f64; 3]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf has no memory-safety preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some([
        fields.get(11)? / tick,
        fields.get(12)? / tick,
        (fields.get(13)? + fields.get(14)?) / tick,
    ])
}

// ---------------------------------------------------------------------------------------------
// dd baselines

fn check(status: std::process::ExitStatus, what: &str) -> anyhow::Result<()> {
    if !status.success() {
        bail!("{what} exited with {status}");
    }
    Ok(())
}

/// `cat FILES… | dd of=OUT bs=4M iflag=fullblock conv=fsync`: every byte written once, flushed.
fn dd_write(files: &[PathBuf], out: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut cat = Command::new("cat")
        .args(files)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cat")?;
    let pipe = cat.stdout.take().context("cat's stdout")?;
    let dd = Command::new("dd")
        .arg(format!("of={}", out.display()))
        .args(["bs=4M", "iflag=fullblock", "conv=fsync", "status=none"])
        .stdin(pipe)
        .status()
        .context("running dd")?;
    check(cat.wait()?, "cat")?;
    check(dd, "dd (write)")?;
    Ok(start.elapsed())
}

/// Drops `file` from the page cache, then `dd if=FILE of=/dev/null bs=4M`.
fn dd_read(file: &Path) -> anyhow::Result<Duration> {
    drop_cached(file);
    let start = Instant::now();
    let dd = Command::new("dd")
        .arg(format!("if={}", file.display()))
        .args(["of=/dev/null", "bs=4M", "status=none"])
        .status()
        .context("running dd")?;
    check(dd, "dd (read)")?;
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Report

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / MB
}

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Removes the work folder when the bench ends, however it ends, unless `--keep`.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            println!("kept work folder {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    let payload = (options.gib * GIB as f64) as u64;
    let base = match &options.dir {
        Some(dir) => dir.clone(),
        None => {
            // target/<profile>/bench_backup → target/
            let exe = std::env::current_exe()?;
            exe.parent()
                .and_then(Path::parent)
                .context("target folder")?
                .to_path_buf()
        }
    };
    let work = WorkDir {
        path: base.join(format!("bench_backup-{}", std::process::id())),
        keep: options.keep,
    };
    std::fs::create_dir_all(&work.path)
        .with_context(|| format!("creating {}", work.path.display()))?;
    let work_path = work.path.canonicalize()?;
    let (fs_kind, free) = statfs(&work_path)?;
    // Sources + ISO + disk copy of ours (staging is removed before the job ends but exists
    // alongside the ISO), later dd's image and copy: about 4× the payload at the peak.
    if free < payload.saturating_mul(9) / 2 {
        bail!(
            "{} has {:.1} GiB free; the bench needs about {:.1} GiB (4.5 × payload)",
            work_path.display(),
            free as f64 / GIB as f64,
            payload as f64 * 4.5 / GIB as f64
        );
    }
    let bin = witness_bin();
    let bin_age = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|d| format!("built {} min ago", d.as_secs() / 60))
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    println!("== Witness backup benchmark ==");
    println!("date        {}", shell("date", &["-Iseconds"]));
    println!(
        "machine     {cpus} CPUs ({}), load average {}",
        cpu_model(),
        loadavg()
    );
    println!("work folder {} ({fs_kind})", work_path.display());
    println!("witness     {} ({bin_age})", bin.display());
    if bin.to_string_lossy().contains("/debug/") {
        println!("WARNING     the daemon is a debug build; figures will be far too slow");
    }
    println!("MB = 10^6 bytes; MB/s = payload bytes / wall seconds");
    println!();

    let mut rng = Rng(options.seed);
    println!("-- where CPU time goes: DualHasher (SHA-256 + SM3) on 256 MiB in memory --");
    let speed = hash_speed(&mut rng);
    println!(
        "SHA-256 alone (CPU time of its thread)                 {:8.1} MB/s per core",
        speed.sha256
    );
    println!(
        "SM3 alone (CPU time of its thread)                     {:8.1} MB/s per core",
        speed.sm3
    );
    println!(
        "DualHasher, 4 MiB updates, 2 threads (as the pipeline) {:8.1} MB/s wall  ← SM3-bound",
        speed.parallel
    );
    println!(
        "DualHasher, 64 KiB updates, 1 thread                   {:8.1} MB/s wall",
        speed.serial
    );
    println!();

    let source = work_path.join("source").join(PROJECT);
    let plan = plan_files(payload, &mut rng);
    let videos = plan.iter().filter(|p| p.rel.ends_with(".mp4")).count();
    let started = Instant::now();
    let files = generate(&source, &plan, &mut rng)?;
    syncfs(&work_path)?;
    println!(
        "-- payload: {payload} bytes ({:.2} GiB) in {} files: {videos} videos of {}–{} MiB, {} documents of ≤512 KiB (seed {}, generated in {:.1} s) --",
        payload as f64 / GIB as f64,
        plan.len(),
        plan.iter().filter(|p| p.rel.ends_with(".mp4")).map(|p| p.size / MIB).min().unwrap_or(0),
        plan.iter().filter(|p| p.rel.ends_with(".mp4")).map(|p| p.size / MIB).max().unwrap_or(0),
        plan.len() - videos,
        options.seed,
        secs(started.elapsed())
    );
    println!();

    println!(
        "-- witness: 一键备份 request → every copy verified (1 virtual BD-R + 1 disk copy) --"
    );
    let ours = run_ours(&work_path, &source, &files).await?;
    println!(
        "total       {:7.1} s  {:7.1} MB/s   (polled every {} ms)",
        secs(ours.total),
        rate(payload, ours.total),
        POLL.as_millis()
    );
    for (i, (step, at)) in ours.steps.iter().enumerate() {
        if *step == JobStep::Done {
            continue;
        }
        let end = ours.steps.get(i + 1).map(|s| s.1).unwrap_or(ours.total);
        println!("  step {:<8} {:6.1} s", step.as_str(), secs(end - *at));
    }
    let unseen: Vec<&str> = [JobStep::Package, JobStep::Plan, JobStep::Record]
        .into_iter()
        .filter(|step| !ours.steps.iter().any(|s| s.0 == *step))
        .map(JobStep::as_str)
        .collect();
    if !unseen.is_empty() {
        println!(
            "  step {:<8} < {} ms each (not caught by the poller)",
            unseen.join(", "),
            POLL.as_millis()
        );
    }
    println!("  copies (run concurrently: the disc by the drive worker, the disk copy by the disk worker):");
    for (id, CopySeen { kind, bytes, seen }) in &ours.discs {
        let when = |status: DiscStatus| seen.iter().find(|s| s.0 == status).map(|s| s.1);
        let span = |from: Option<Duration>, to: Option<Duration>| match (from, to) {
            (Some(a), Some(b)) => format!("{:6.1} s", secs(b - a)),
            _ => "     ? s".to_string(),
        };
        let (write, name) = match kind {
            CopyKind::Optical => ("xorriso ISO write", "optical"),
            CopyKind::Disk => ("copy + fsync     ", "disk   "),
        };
        println!(
            "    {name} #{id}: {write} {} (from {:.1} s), read-back verify {} ({bytes} bytes)",
            span(when(DiscStatus::Writing), when(DiscStatus::Written)),
            when(DiscStatus::Writing).map(secs).unwrap_or(f64::NAN),
            span(when(DiscStatus::Written), when(DiscStatus::Verified)),
        );
    }
    if let Some([user, system, children]) = ours.cpu {
        println!(
            "  CPU: witness {user:.1} s user + {system:.1} s system, xorriso {children:.1} s = {:.1} s of the {:.1} CPU-seconds the {cpus} CPUs had (load average before: {})",
            user + system + children,
            secs(ours.total) * cpus as f64,
            ours.load_before
        );
    }
    println!(
        "  hashing: one pass over the payload costs {:.1} CPU-s of SM3 + {:.1} CPU-s of SHA-256 at the rates above;",
        payload as f64 / MB / speed.sm3,
        payload as f64 / MB / speed.sha256
    );
    println!("           collect, the disc read-back and the disk read-back each make at least one (see tests/BENCHMARKS.md)");
    println!();

    // Free the space of our copies before dd writes its own.
    if !options.keep {
        for dir in ["witness-data", "drive-bd1", "disk-copies"] {
            let _ = std::fs::remove_dir_all(work_path.join(dir));
        }
    }
    let dd_dir = work_path.join("dd");
    std::fs::create_dir_all(&dd_dir)?;
    make_cold(&work_path, &files)?;
    println!("-- dd baselines, same payload, same file system, right after --");
    println!("   write: cat <every payload file> | dd of=FILE bs=4M iflag=fullblock conv=fsync (sources cold)");
    println!("   read:  posix_fadvise(DONTNEED) on FILE, then dd if=FILE of=/dev/null bs=4M");
    let image = dd_dir.join("image.bin");
    let copy = dd_dir.join("copy.bin");
    let w1 = dd_write(&files, &image)?;
    let r1 = dd_read(&image)?;
    let w2 = dd_write(&files, &copy)?;
    let r2 = dd_read(&copy)?;
    println!(
        "image write {:7.1} s  {:7.1} MB/s",
        secs(w1),
        rate(payload, w1)
    );
    println!(
        "image read  {:7.1} s  {:7.1} MB/s",
        secs(r1),
        rate(payload, r1)
    );
    println!("copy write  {:7.1} s  {:7.1} MB/s   (sources now in the page cache: read once, written twice)", secs(w2), rate(payload, w2));
    println!(
        "copy read   {:7.1} s  {:7.1} MB/s",
        secs(r2),
        rate(payload, r2)
    );
    println!();

    let base1 = w1 + r1;
    let base2 = base1 + w2 + r2;
    println!(
        "== side by side ({:.2} GiB, {cpus} CPUs) ==",
        payload as f64 / GIB as f64
    );
    println!(
        "{:<52} {:>8} {:>9} {:>11}",
        "", "seconds", "MB/s", "ours ÷ this"
    );
    let row = |label: &str, d: Duration| {
        println!(
            "{:<52} {:>8.1} {:>9.1} {:>10.2}×",
            label,
            secs(d),
            rate(payload, d),
            secs(ours.total) / secs(d)
        );
    };
    row(
        "witness: collect → ISO + disk copy, all verified",
        ours.total,
    );
    row("dd baseline 1: disc image write + read back", base1);
    row("dd baseline 2: + disk copy write + read back", base2);
    println!("load average at the end: {}", loadavg());
    drop(work);
    Ok(())
}
