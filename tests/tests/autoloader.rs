//! The disc publishing robot (the fake autoloader) end to end through a real `witness serve`:
//! every disc is loaded from an input bin, burned, read back, moved to the printer and into the
//! output bin — a failed one into the reject bin, never the output bin; a jammed arm stops the
//! work with an alert and keeps what is verified; vendor robots are refused as not supported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use witness_controller::cli::Client;
use witness_schemas::api::{
    Alert, AutoloaderInfo, CopyKind, Disc, DiscStatus, Drive, Job, JobStatus,
};
use witness_tests::burning::{add_project, virtual_drive, write_sources};
use witness_tests::daemon::Daemon;

const DISC: u64 = 8 << 20;
const FILE: usize = 5 << 20;

fn config(dir: &Path, drives: &str, robot: &str) -> Result<PathBuf> {
    let path = dir.join("witness.toml");
    std::fs::write(
        &path,
        format!("{drives}[copies]\noptical = 1\ndisk = 0\n\n[autoloader]\n{robot}"),
    )?;
    Ok(path)
}

/// Queues a backup and waits for it to end, successfully or not.
async fn run_job(client: &Client, number: &str) -> Result<Job> {
    let job = client.backup(number).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let job = client.job(job.id).await?;
        if matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
            return Ok(job);
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "job {} did not end",
            job.id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn optical(discs: &[Disc], job_id: i64) -> Vec<&Disc> {
    discs
        .iter()
        .filter(|d| d.job_id == job_id && d.kind == CopyKind::Optical)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_discs_reach_the_output_bin_and_a_failed_one_the_reject_bin() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // "bad" fails its first disc; three blanks in bin 1, then bin 2 takes over.
    let drives = format!(
        "{}{}",
        virtual_drive("bd1", DISC, None, None),
        virtual_drive("bad", DISC, None, Some(1)),
    );
    let config = config(
        tmp.path(),
        &drives,
        "kind = \"fake\"\ninput_bins = [3, 10]\nbin_capacity = 50\n",
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let result = async {
        let client = daemon.client();
        let sources = tmp.path().join("src");
        write_sources(&sources, 4, FILE, 11)?;
        add_project(&client, "BOT-2026-0001", &sources).await?;
        let job = run_job(&client, "BOT-2026-0001").await?;
        ensure!(job.status == JobStatus::Succeeded, "{job:#?}");

        let all = client.discs().await?;
        let discs = optical(&all, job.id);
        let verified = discs
            .iter()
            .filter(|d| d.status == DiscStatus::Verified)
            .count() as u32;
        let rejected: Vec<&&Disc> = discs
            .iter()
            .filter(|d| d.status == DiscStatus::Rejected)
            .collect();
        ensure!(verified == 4, "{discs:#?}");
        ensure!(
            rejected.len() == 1 && rejected[0].target == "bad",
            "{rejected:#?}"
        );

        let robot: AutoloaderInfo = client.get_json("/api/autoloader").await?;
        // Five blanks used: bin 1 emptied, bin 2 gave the rest.
        ensure!(robot.input_bins == vec![0, 8], "{robot:#?}");
        ensure!(robot.output_count == verified, "{robot:#?}");
        ensure!(robot.reject_count == 1, "{robot:#?}");
        ensure!(
            robot.drives_loaded.is_empty() && !robot.printer_loaded && robot.jammed.is_none(),
            "{robot:#?}"
        );
        // Three logged moves per disc, all of them successful, each disc's in order.
        ensure!(robot.moves == 15, "{robot:#?}");
        ensure!(robot.recent_moves.len() == 15, "{:#?}", robot.recent_moves);
        ensure!(
            robot.recent_moves.iter().all(|m| m.error.is_none()),
            "{:#?}",
            robot.recent_moves
        );
        let to_reject = robot
            .recent_moves
            .iter()
            .filter(|m| m.to == "废盘仓")
            .count();
        ensure!(to_reject == 1, "{:#?}", robot.recent_moves);
        for drive in ["bd1", "bad"] {
            let place = format!("刻录机 {drive}");
            let path: Vec<(&str, &str)> = robot
                .recent_moves
                .iter()
                .filter(|m| m.to == place || m.from == place)
                .map(|m| (m.from.as_str(), m.to.as_str()))
                .collect();
            ensure!(!path.is_empty(), "no moves for {drive}");
            for pair in path.chunks(2) {
                ensure!(
                    pair.len() == 2 && pair[0].0.starts_with("输入仓") && pair[1].1 == "打印机",
                    "{drive}: {path:?}"
                );
            }
        }

        // Faces printed on the way (the default folder printer keeps each as a PDF): the
        // verified discs' faces, the rejected one's REJECT face and never its normal face.
        let printed = tmp.path().join("data/printers/folder1");
        for disc in &discs {
            let face = printed.join(format!("disc-{}.pdf", disc.id));
            let reject = printed.join(format!("disc-{}-reject.pdf", disc.id));
            let verified = disc.status == DiscStatus::Verified;
            ensure!(
                face.exists() == verified && reject.exists() != verified,
                "disc {} ({:?}): face {}, reject face {}",
                disc.id,
                disc.status,
                face.exists(),
                reject.exists()
            );
        }
        let alerts: Vec<Alert> = client.get_json("/api/alerts").await?;
        ensure!(alerts.is_empty(), "{alerts:#?}");

        let drives: Vec<Drive> = client.get_json("/api/drives").await?;
        let bad = drives.iter().find(|d| d.name == "bad").context("bad")?;
        ensure!(bad.bad_discs == 1, "{bad:#?}");
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("daemon log:\n{}", daemon.log_text());
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jammed_arm_stops_the_work_with_an_alert_and_keeps_verified_discs() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // Moves 1-3 take the first disc to the output bin; move 4, loading the second, jams.
    let config = config(
        tmp.path(),
        &virtual_drive("bd1", DISC, None, None),
        "kind = \"fake\"\ninput_bins = [10]\nfault_jam_on_move = 4\n",
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let result = async {
        let client = daemon.client();
        let sources = tmp.path().join("src");
        write_sources(&sources, 2, FILE, 12)?;
        add_project(&client, "JAM-2026-0001", &sources).await?;
        let job = run_job(&client, "JAM-2026-0001").await?;
        ensure!(job.status == JobStatus::Failed, "{job:#?}");
        let error = job.error.clone().unwrap_or_default();
        ensure!(
            error.contains("机械手卡住") && error.contains("剩余的 1 份副本"),
            "{error}"
        );
        let all = client.discs().await?;
        let discs = optical(&all, job.id);
        ensure!(
            discs.len() == 1 && discs[0].status == DiscStatus::Verified,
            "{discs:#?}"
        );
        let robot: AutoloaderInfo = client.get_json("/api/autoloader").await?;
        ensure!(
            robot.output_count == 1 && robot.input_bins == vec![9] && robot.jammed.is_some(),
            "{robot:#?}"
        );
        let alerts: Vec<Alert> = client.get_json("/api/alerts").await?;
        ensure!(
            alerts
                .iter()
                .any(|a| a.kind == "autoloader" && a.message.contains("机械手卡住")),
            "{alerts:#?}"
        );
        let drives: Vec<Drive> = client.get_json("/api/drives").await?;
        ensure!(
            drives[0].state == "idle" && drives[0].good_discs == 1,
            "{drives:#?}"
        );

        // The robot stays jammed (its state file remembers it across restarts) until an
        // administrator says the arm was freed; then a new backup of the project goes through.
        let robot: AutoloaderInfo = client.post_json("/api/autoloader/clear-jam").await?;
        ensure!(robot.jammed.is_none(), "{robot:#?}");
        let again = client
            .post_json::<AutoloaderInfo>("/api/autoloader/clear-jam")
            .await
            .unwrap_err()
            .to_string();
        ensure!(again.contains("没有卡住"), "{again}");
        let alerts: Vec<Alert> = client.get_json("/api/alerts").await?;
        ensure!(
            alerts
                .iter()
                .filter(|a| a.kind == "autoloader")
                .all(|a| a.resolved_at.is_some()),
            "{alerts:#?}"
        );
        let job = run_job(&client, "JAM-2026-0001").await?;
        ensure!(job.status == JobStatus::Succeeded, "{job:#?}");
        let robot: AutoloaderInfo = client.get_json("/api/autoloader").await?;
        ensure!(robot.output_count == 3, "{robot:#?}");
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("daemon log:\n{}", daemon.log_text());
    }
    result
}

/// kill -9 while a disc records: after the restart the half-written disc is rejected and leaves
/// its drive through the printer (REJECT face) into the reject bin, and the volume is burned again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disc_cut_off_by_kill_9_goes_to_the_reject_bin() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // 17 MiB volumes at 8 MB/s record for about 2 s: time to pull the plug mid-disc.
    let config = config(
        tmp.path(),
        &virtual_drive("bd1", 20 << 20, Some(8_000_000), None),
        "kind = \"fake\"\ninput_bins = [5]\n",
    )?;
    let mut daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let result = async {
        let client = daemon.client();
        let sources = tmp.path().join("src");
        write_sources(&sources, 2, 17 << 20, 13)?;
        add_project(&client, "CUT-2026-0001", &sources).await?;
        let job = client.backup("CUT-2026-0001").await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let drives: Vec<Drive> = client.get_json("/api/drives").await?;
            if drives[0].state == "recording" {
                break;
            }
            ensure!(std::time::Instant::now() < deadline, "never recording");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        daemon.restart().await?;
        let client = daemon.client();
        witness_controller::cli::wait(&client, job.id).await?;

        let all = client.discs().await?;
        let discs = optical(&all, job.id);
        let rejected: Vec<&&Disc> = discs
            .iter()
            .filter(|d| d.status == DiscStatus::Rejected)
            .collect();
        ensure!(
            rejected.len() == 1
                && rejected[0]
                    .error
                    .as_deref()
                    .unwrap_or_default()
                    .contains("中断"),
            "{discs:#?}"
        );
        let verified = discs
            .iter()
            .filter(|d| d.status == DiscStatus::Verified)
            .count();
        ensure!(verified == 2, "{discs:#?}");
        let robot: AutoloaderInfo = client.get_json("/api/autoloader").await?;
        ensure!(
            robot.input_bins == vec![2]
                && robot.output_count == 2
                && robot.reject_count == 1
                && robot.drives_loaded.is_empty()
                && !robot.printer_loaded,
            "{robot:#?}"
        );
        let printed = tmp.path().join("data/printers/folder1");
        ensure!(
            printed
                .join(format!("disc-{}-reject.pdf", rejected[0].id))
                .exists(),
            "no REJECT face for the interrupted disc"
        );
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("daemon log:\n{}", daemon.log_text());
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_robots_are_refused_as_not_supported_yet() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    for (kind, model) in [("rimage", "Rimage"), ("primera", "Primera")] {
        let config = config(
            tmp.path(),
            &virtual_drive("bd1", DISC, None, None),
            &format!("kind = \"{kind}\"\n"),
        )?;
        let started = Daemon::start(&tmp.path().join(format!("data-{kind}")), Some(&config)).await;
        let error = match started {
            Ok(_) => anyhow::bail!("a {model} robot was accepted"),
            Err(e) => format!("{e:#}"),
        };
        ensure!(
            error.contains(&format!("尚不支持 {model} 机械手")),
            "{error}"
        );
    }
    Ok(())
}
