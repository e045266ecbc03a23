//! Benchmark (not a test) of evaluation video, each figure beside its baseline:
//!
//! 1. Pull throughput: Witness's Hikvision pull (RTSP → stream copy → faststart MP4, in process)
//!    against the `ffmpeg -c copy -movflags +faststart` command line on the same playback URL of
//!    the stand-in NVR: wall time, media seconds per second, and CPU time of both. Also the
//!    ONVIF pull of the same window from the stand-in ONVIF recorder in front of that NVR (SOAP,
//!    then RTSP replay through Witness's loopback relay and the stand-in's RTSP front: two extra
//!    hops, the second one the stand-in's own, both in this process's CPU time).
//!    Then the folder source cutting the same window out of the stand-in's recording file
//!    (named as an NVR export) against `ffmpeg -ss -t -c copy -movflags +faststart` on it.
//! 2. Range serving: 20 concurrent clients fetching random 1 MiB ranges of the pulled MP4 from
//!    `witness serve` (`/api/video/pulls/{id}/file`, bearer token) and from nginx serving the
//!    same file (apt package nginx-light).
//!
//! ```text
//! cargo build --release --bins -p witness-controller -p witness-tests
//! WITNESS_BIN=$PWD/target/release/witness ./target/release/bench_video [--minutes 10] [--size 640x360] [--fps 25]
//! ```

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use reqwest::Method;
use time::macros::datetime;
use time::OffsetDateTime;
use witness_controller::cli::encode;
use witness_drivers::recording::{
    FolderSource, HikvisionIsapi, OnvifRecorder, PullRequest, RecordingSource, TimeWindow,
};
use witness_schemas::api::NewProject;
use witness_schemas::video::{NewVideoPull, VideoChannel, VideoPull, VideoPullStatus};
use witness_tests::daemon::Daemon;
use witness_tests::nvr::onvif::StandInOnvif;
use witness_tests::nvr::{Segment, StandInNvr};

const T0: OffsetDateTime = datetime!(2026-11-20 00:00 UTC);
const CLIENTS: usize = 20;
const RANGE: u64 = 1 << 20;
// 200 × 20 × 1 MiB ≈ 4 GiB a side: a few seconds, so start-up and the first faults of the
// page cache do not decide the figure.
const REQUESTS_PER_CLIENT: usize = 200;

/// CPU time (user + system) of this process or of its waited-for children, in seconds.
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes one rusage struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn hik_time(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

struct Options {
    minutes: i64,
    size: String,
    fps: u32,
}

fn options() -> Result<Options> {
    let mut options = Options {
        minutes: 10,
        size: "640x360".into(),
        fps: 25,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the option");
        match arg.as_str() {
            "--minutes" => options.minutes = value()?.parse()?,
            "--size" => options.size = value()?,
            "--fps" => options.fps = value()?.parse()?,
            _ => bail!("usage: bench_video [--minutes N] [--size WxH] [--fps N]"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = options()?;
    let tmp = tempfile::tempdir()?;
    let nvr_dir = tmp.path().join("nvr");
    std::fs::create_dir_all(&nvr_dir)?;
    let seconds = options.minutes * 60;
    let segment = Segment {
        channel: 1,
        start: T0 - time::Duration::seconds(10),
        end: T0 + time::Duration::seconds(seconds + 10),
    };
    eprintln!(
        "generating {} min of {} at {} fps …",
        options.minutes, options.size, options.fps
    );
    let generated = Instant::now();
    let nvr = StandInNvr::start_with(
        &nvr_dir,
        "admin",
        "Witness12345",
        &[segment],
        &options.size,
        options.fps,
    )
    .await?;
    eprintln!("generated in {:.1} s", generated.elapsed().as_secs_f64());
    let window = TimeWindow {
        start: T0,
        end: T0 + time::Duration::seconds(seconds),
    };

    // 1. Pull throughput, each side twice (the first run warms the page cache of the
    //    recording); the second runs are reported.
    let onvif_recorder = StandInOnvif::start(&nvr).await?;
    let mut ours = (0.0, 0.0, 0u64);
    let mut onvif = (0.0, 0.0, 0u64);
    let mut theirs = (0.0, 0.0, 0u64);
    for round in 0..2 {
        let sources: [(&str, Box<dyn RecordingSource>); 2] = [
            (
                "hikvision",
                Box::new(HikvisionIsapi::new(&nvr.http_url, "admin", "Witness12345")),
            ),
            (
                "onvif",
                Box::new(OnvifRecorder::new(
                    &onvif_recorder.device_url,
                    "admin",
                    "Witness12345",
                )),
            ),
        ];
        for (name, source) in sources {
            let output = tmp.path().join(format!("ours-{name}-{round}.mp4"));
            let output_clone = output.clone();
            let cpu_before = cpu_seconds(libc::RUSAGE_SELF);
            let started = Instant::now();
            let report = tokio::task::spawn_blocking(move || {
                source.pull(
                    &PullRequest {
                        channel: 1,
                        window,
                        now: OffsetDateTime::now_utc(),
                        output: &output_clone,
                    },
                    &mut |_| {},
                )
            })
            .await??;
            let measured = (
                started.elapsed().as_secs_f64(),
                cpu_seconds(libc::RUSAGE_SELF) - cpu_before,
                std::fs::metadata(&output)?.len(),
            );
            ensure!(report.gaps.is_empty(), "{name}: {report:?}");
            if name == "onvif" {
                onvif = measured;
            } else {
                ours = measured;
            }
        }

        let url = format!(
            "rtsp://127.0.0.1:{}/Streaming/tracks/101?starttime={}&endtime={}&token={}",
            nvr.rtsp_port,
            hik_time(window.start),
            hik_time(window.end),
            OffsetDateTime::now_utc().unix_timestamp() + 3600
        );
        let output = tmp.path().join(format!("ffmpeg-{round}.mp4"));
        let cpu_before = cpu_seconds(libc::RUSAGE_CHILDREN);
        let started = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-rtsp_transport", "tcp", "-i", &url])
            .args(["-map", "0:v", "-c", "copy", "-movflags", "+faststart"])
            .arg(&output)
            .stdin(Stdio::null())
            .status()?;
        ensure!(status.success(), "ffmpeg failed");
        theirs = (
            started.elapsed().as_secs_f64(),
            cpu_seconds(libc::RUSAGE_CHILDREN) - cpu_before,
            std::fs::metadata(&output)?.len(),
        );
    }
    let media = seconds as f64;
    println!(
        "## Pull throughput ({} min of {} @ {} fps, all-intra H.264)",
        options.minutes, options.size, options.fps
    );
    println!("| | wall s | media s / s | MiB/s | CPU s | file MiB |");
    println!("|---|---|---|---|---|---|");
    for (name, (wall, cpu, bytes)) in [
        ("Witness pull", ours),
        ("Witness ONVIF pull (relay)", onvif),
        ("ffmpeg -c copy", theirs),
    ] {
        println!(
            "| {name} | {wall:.2} | {:.0} | {:.1} | {cpu:.2} | {:.1} |",
            media / wall,
            bytes as f64 / wall / 1048576.0,
            bytes as f64 / 1048576.0
        );
    }
    println!(
        "ratio (throughput Witness / ffmpeg): {:.2}; CPU Witness / ffmpeg: {:.2}\n",
        theirs.0 / ours.0,
        ours.1 / theirs.1.max(1e-9)
    );
    println!(
        "ratio (throughput ONVIF / ffmpeg): {:.2}; CPU ONVIF / ffmpeg: {:.2}; throughput ONVIF / \
         Hikvision: {:.2}\n",
        theirs.0 / onvif.0,
        onvif.1 / theirs.1.max(1e-9),
        ours.0 / onvif.0
    );

    // 1b. The folder source on the stand-in's own recording file, named as an NVR export,
    //     against `ffmpeg -ss -t -c copy` cutting the same window out of the same file.
    let folder_row = folder_pull(tmp.path(), &nvr_dir.join("ch01-0.mkv"), segment, window)?;
    println!(
        "## Folder source ({} min window out of one {}-second file)",
        options.minutes,
        seconds + 20
    );
    println!("| | wall s | media s / s | MiB/s | CPU s | file MiB |");
    println!("|---|---|---|---|---|---|");
    for (name, (wall, cpu, bytes)) in [
        ("Witness folder pull", folder_row.0),
        ("ffmpeg -ss -t -c copy", folder_row.1),
    ] {
        println!(
            "| {name} | {wall:.2} | {:.0} | {:.1} | {cpu:.2} | {:.1} |",
            media / wall,
            bytes as f64 / wall / 1048576.0,
            bytes as f64 / 1048576.0
        );
    }
    println!(
        "ratio (throughput Witness folder / ffmpeg): {:.2}; CPU Witness / ffmpeg: {:.2}\n",
        folder_row.1 .0 / folder_row.0 .0,
        folder_row.0 .1 / folder_row.1 .1.max(1e-9)
    );

    // 2. Range serving: the daemon pulls the same window, then both servers serve it.
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[nvrs]]\nname = \"nvr1\"\nurl = \"{}\"\nuser = \"admin\"\npassword = \"Witness12345\"\n",
            nvr.http_url
        ),
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let client = daemon.client();
    let number = "BENCH-VIDEO-1";
    client
        .add_project(&NewProject {
            number: number.into(),
            name: "录像基准".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T08:00:00+08:00".into(),
        })
        .await?;
    let base = format!("/api/projects/{}/video", encode(number));
    let _: Vec<VideoChannel> = client
        .send_json(
            Method::PUT,
            &format!("{base}/channels"),
            &vec![VideoChannel {
                room: "第一评标室".into(),
                nvr: "nvr1".into(),
                channel: 1,
                label: String::new(),
            }],
        )
        .await?;
    let _: Vec<VideoPull> = client
        .send_json(
            Method::POST,
            &format!("{base}/pulls"),
            &NewVideoPull {
                start: rfc3339(window.start),
                end: rfc3339(window.end),
            },
        )
        .await?;
    let pull = loop {
        let pulls: Vec<VideoPull> = client.get_json(&format!("{base}/pulls")).await?;
        match pulls.first() {
            Some(p) if p.status == VideoPullStatus::Done => break p.clone(),
            Some(p) if p.status == VideoPullStatus::Failed => bail!("pull failed: {:?}", p.error),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let stored = std::fs::read_dir(daemon.data.join("video"))?
        .map(|e| e.unwrap().path().join(format!("pull-{}.mp4", pull.id)))
        .find(|p| p.exists())
        .context("stored video")?;
    let size = std::fs::metadata(&stored)?.len();
    let token = daemon.admin_token().context("admin token")?;
    let witness_url = format!("{}/api/video/pulls/{}/file", daemon.url, pull.id);
    let witness = range_load(&witness_url, Some(&token), size).await?;

    let (nginx_url, mut nginx) = start_nginx(tmp.path(), &stored)?;
    let baseline = range_load(&nginx_url, None, size).await;
    stop_nginx(&mut nginx);
    let baseline = baseline?;
    println!(
        "## Range serving ({CLIENTS} clients × {REQUESTS_PER_CLIENT} random 1 MiB ranges of a {:.1} MiB MP4)",
        size as f64 / 1048576.0
    );
    println!("| | MiB/s | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for (name, r) in [
        ("witness serve (token auth)", &witness),
        ("nginx", &baseline),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} | {:.1} |",
            r.mib_per_second, r.requests_per_second, r.p50_ms, r.p99_ms
        );
    }
    println!(
        "ratio (throughput witness / nginx): {:.2}",
        witness.mib_per_second / baseline.mib_per_second
    );
    Ok(())
}

struct Load {
    mib_per_second: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `CLIENTS` clients, each with its own keep-alive connection, fetching random ranges.
/// Wall s, CPU s and output bytes of one cut.
type Measured = (f64, f64, u64);

/// Pulls `window` with [`FolderSource`] from `recording` (which holds `segment`) put into a
/// channel folder, and cuts the same window with the ffmpeg command line; the second of two
/// rounds of each (the first warms the page cache).
fn folder_pull(
    tmp: &Path,
    recording: &Path,
    segment: Segment,
    window: TimeWindow,
) -> Result<(Measured, Measured)> {
    let channel = tmp.join("folder").join("01");
    std::fs::create_dir_all(&channel)?;
    let named = channel.join(format!(
        "ch01_{}_{}.mkv",
        hik_time(segment.start),
        hik_time(segment.end)
    ));
    std::fs::hard_link(recording, &named)
        .or_else(|_| std::fs::copy(recording, &named).map(drop))?;
    let source = FolderSource::new(&tmp.join("folder")).with_stable_after(Duration::ZERO);
    let offset = (window.start - segment.start).as_seconds_f64();
    let length = window.length().as_secs_f64();
    let (mut ours, mut theirs) = ((0.0, 0.0, 0), (0.0, 0.0, 0));
    for round in 0..2 {
        let output = tmp.join(format!("folder-{round}.mp4"));
        let cpu_before = cpu_seconds(libc::RUSAGE_SELF);
        let started = Instant::now();
        let report = source.pull(
            &PullRequest {
                channel: 1,
                window,
                now: OffsetDateTime::now_utc(),
                output: &output,
            },
            &mut |_| {},
        )?;
        ensure!(report.gaps.is_empty(), "folder: {report:?}");
        ours = (
            started.elapsed().as_secs_f64(),
            cpu_seconds(libc::RUSAGE_SELF) - cpu_before,
            std::fs::metadata(&output)?.len(),
        );
        let output = tmp.join(format!("folder-ffmpeg-{round}.mp4"));
        let cpu_before = cpu_seconds(libc::RUSAGE_CHILDREN);
        let started = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", &offset.to_string(), "-i"])
            .arg(&named)
            .args(["-t", &length.to_string(), "-map", "0:v", "-c", "copy"])
            .args(["-movflags", "+faststart"])
            .arg(&output)
            .stdin(Stdio::null())
            .status()?;
        ensure!(status.success(), "ffmpeg failed");
        theirs = (
            started.elapsed().as_secs_f64(),
            cpu_seconds(libc::RUSAGE_CHILDREN) - cpu_before,
            std::fs::metadata(&output)?.len(),
        );
    }
    Ok((ours, theirs))
}

async fn range_load(url: &str, token: Option<&str>, size: u64) -> Result<Load> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let url = url.to_string();
        let token = token.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ client_index as u64;
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            for _ in 0..REQUESTS_PER_CLIENT {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let start = seed % size.saturating_sub(RANGE).max(1);
                let mut request = http
                    .get(&url)
                    .header("Range", format!("bytes={start}-{}", start + RANGE - 1));
                if let Some(token) = &token {
                    request = request.header("Authorization", format!("Bearer {token}"));
                }
                let at = Instant::now();
                let response = request.send().await?;
                anyhow::ensure!(response.status() == 206, "HTTP {}", response.status());
                bytes += response.bytes().await?.len() as u64;
                latencies.push(at.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok((bytes, latencies))
        }));
    }
    let mut bytes = 0u64;
    let mut latencies = Vec::new();
    for task in tasks {
        let (b, l) = task.await??;
        bytes += b;
        latencies.extend(l);
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Load {
        mib_per_second: bytes as f64 / wall / 1048576.0,
        requests_per_second: latencies.len() as f64 / wall,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

/// Stops nginx's master and workers (the process group it was started in).
fn stop_nginx(nginx: &mut std::process::Child) {
    let group = nginx.id() as libc::pid_t;
    // SAFETY: a signal to the process group of a child we started.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let _ = nginx.wait();
}

/// nginx serving `file` as /video.mp4 from its own prefix, on a free loopback port.
fn start_nginx(dir: &Path, file: &Path) -> Result<(String, std::process::Child)> {
    let prefix = dir.join("nginx");
    let root = prefix.join("root");
    std::fs::create_dir_all(prefix.join("logs"))?;
    std::fs::create_dir_all(&root)?;
    std::fs::copy(file, root.join("video.mp4"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nuser root root;\nworker_processes 2;\npid {pid};\nerror_log {log} error;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; sendfile on; keepalive_requests 10000;\n\
               client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};\n\
               uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
            pid = prefix.join("nginx.pid").display(),
            log = prefix.join("logs/error.log").display(),
            tmp = prefix.display(),
            root = root.display(),
        ),
    )?;
    // Its own process group, so stopping it stops its workers too (see `stop_nginx`).
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting nginx (apt package nginx-light)")?;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((format!("http://127.0.0.1:{port}/video.mp4"), child));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nginx did not start")
}
