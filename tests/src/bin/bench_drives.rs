//! Benchmark (not a test): aggregate burn throughput of N throttled virtual drives against one.
//! Each drive is paced by libburn (`-speed`) at a real drive's rate (default 27 MB/s, BD-R 6x);
//! a project of V one-disc volumes is backed up once with one drive (the baseline) and once with
//! N, through a real `witness serve`. The burn phase runs from the first disc starting to record
//! to the last disc verified (read-back included, as on a real drive), taken from the drives'
//! event history; aggregate throughput is the set's bytes over that time.
//!
//! ```text
//! cargo build --release --workspace --bins      # the bench starts target/release/witness
//! cargo run --release -p witness-tests --bin bench_drives -- [--drives 4] [--volumes 8] [--mb 100] [--rate 27000000]
//! ```
//!
//! `WITNESS_BIN` overrides the daemon binary. Goal (issue 3): N = 4 reaches ≥ 3.6 × the baseline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use witness_schemas::api::{CopyKind, DiscStatus, JobStatus};
use witness_tests::burning::{
    add_project, drive_events, max_overlap, print_timeline, recordings, virtual_drive,
    write_sources,
};
use witness_tests::daemon::Daemon;

const MB: f64 = 1e6;

const USAGE: &str = "\
usage: bench_drives [--drives N] [--volumes V] [--mb M] [--rate BYTES_PER_SEC] [--dir PATH]
  --drives N   drives of the parallel run (default 4)
  --volumes V  volumes of the set, one file of M MB each (default 8)
  --mb M       size of each volume's file in MB (default 100)
  --rate R     each drive's write rate in bytes per second (default 27000000, BD-R 6x)
  --dir PATH   where the work folder is made (default: the cargo target folder)
Build first: cargo build --release --workspace --bins (or set WITNESS_BIN).";

struct Options {
    drives: usize,
    volumes: usize,
    mb: usize,
    rate: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        drives: 4,
        volumes: 8,
        mb: 100,
        rate: 27_000_000,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--drives" => o.drives = value("--drives")?.parse().context("--drives")?,
            "--volumes" => o.volumes = value("--volumes")?.parse().context("--volumes")?,
            "--mb" => o.mb = value("--mb")?.parse().context("--mb")?,
            "--rate" => o.rate = value("--rate")?.parse().context("--rate")?,
            "--dir" => o.dir = Some(PathBuf::from(value("--dir")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if o.drives < 2 || o.volumes < o.drives || o.mb == 0 || o.rate < 1_000_000 {
        bail!("need --drives ≥ 2, --volumes ≥ --drives, --mb ≥ 1, --rate ≥ 1000000\n{USAGE}");
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
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
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(options))
}

struct Measured {
    /// First recording start → last disc verified.
    phase: Duration,
    /// Sum of the discs' recording times.
    recording: Duration,
    overlap: usize,
}

async fn measure(
    o: &Options,
    work: &Path,
    sources: &Path,
    drives: usize,
) -> anyhow::Result<Measured> {
    let bytes = o.mb * 1_000_000;
    // One file per disc, with room for the bag's tag files.
    let capacity = (bytes as u64 + (8 << 20)).next_multiple_of(2048);
    let names: Vec<String> = (1..=drives).map(|i| format!("bd{i}")).collect();
    let config = work.join(format!("witness-{drives}.toml"));
    let sections: String = names
        .iter()
        .map(|n| virtual_drive(n, capacity, Some(o.rate), None))
        .collect();
    std::fs::write(
        &config,
        format!("{sections}[copies]\noptical = 1\ndisk = 0\n"),
    )?;
    let data = work.join(format!("data-{drives}"));
    let daemon = Daemon::start(&data, Some(&config)).await?;
    let client = daemon.client();
    let number = format!("BENCH-DRIVES-{drives}");
    add_project(&client, &number, sources).await?;
    let job = client.backup(&number).await?;
    loop {
        let now = client.job(job.id).await?;
        match now.status {
            JobStatus::Succeeded => break,
            JobStatus::Failed => bail!(
                "job failed: {}\n{}",
                now.error.unwrap_or_default(),
                daemon.log_text()
            ),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let discs = client.discs().await?;
    let verified = discs
        .iter()
        .filter(|d| d.kind == CopyKind::Optical && d.status == DiscStatus::Verified)
        .count();
    if verified != o.volumes || discs.len() != o.volumes {
        bail!(
            "expected {} verified discs and no rejects: {discs:#?}",
            o.volumes
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let timeline = recordings(&client, &refs).await?;
    print_timeline(&timeline);
    let start = timeline
        .iter()
        .map(|r| r.start)
        .min()
        .context("no recordings")?;
    let mut end = start;
    for name in &names {
        for event in drive_events(&client, name).await? {
            if event.state == "complete" {
                let at = time::OffsetDateTime::parse(
                    &event.at,
                    &time::format_description::well_known::Rfc3339,
                )?;
                end = end.max(at);
            }
        }
    }
    let recording: f64 = timeline
        .iter()
        .map(|r| (r.end - r.start).as_seconds_f64())
        .sum();
    drop(daemon);
    let _ = std::fs::remove_dir_all(&data);
    Ok(Measured {
        phase: Duration::from_secs_f64((end - start).as_seconds_f64()),
        recording: Duration::from_secs_f64(recording),
        overlap: max_overlap(&timeline),
    })
}

async fn run(o: Options) -> anyhow::Result<()> {
    let base = match &o.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("target folder")?
            .to_path_buf(),
    };
    let work = tempfile::Builder::new()
        .prefix("bench-drives-")
        .tempdir_in(&base)?;
    let sources = work.path().join("src");
    write_sources(&sources, o.volumes, o.mb * 1_000_000, 27)?;
    let total = (o.volumes * o.mb) as f64 * 1e6;
    println!(
        "bench_drives: {} volumes of {} MB, drives paced at {:.1} MB/s (libburn -speed), {} CPUs, load {}",
        o.volumes,
        o.mb,
        o.rate as f64 / MB,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    eprintln!("baseline: 1 drive");
    let one = measure(&o, work.path(), &sources, 1).await?;
    eprintln!("ours: {} drives", o.drives);
    let many = measure(&o, work.path(), &sources, o.drives).await?;
    let rate = |m: &Measured| total / m.phase.as_secs_f64() / MB;
    let per_drive = |m: &Measured| total / m.recording.as_secs_f64() / MB;
    println!(
        "{:<22} {:>10} {:>14} {:>18} {:>12}",
        "", "burn phase", "aggregate", "per-drive writing", "most at once"
    );
    for (label, m) in [
        ("baseline (1 drive)", &one),
        (&*format!("ours ({} drives)", o.drives), &many),
    ] {
        println!(
            "{:<22} {:>8.1} s {:>9.1} MB/s {:>13.1} MB/s {:>12}",
            label,
            m.phase.as_secs_f64(),
            rate(m),
            per_drive(m),
            m.overlap
        );
    }
    let ratio = rate(&many) / rate(&one);
    println!(
        "ratio: {ratio:.2}x aggregate throughput ({} drives vs 1; goal ≥ {:.1}x)",
        o.drives,
        0.9 * o.drives as f64
    );
    Ok(())
}
