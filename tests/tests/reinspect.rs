//! The archivist's routine tools against the real daemon: select and burn (one job per chosen
//! project), shelf locations, re-inspection of a virtual disc whose image lost a byte (the
//! re-read fails, a re-burn job makes a fresh verified copy), an immediate schedule that fires
//! once even across kill -9, and the batch template through the CLI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use witness_schemas::api::{CopyKind, Disc, DiscStatus, Job, JobStatus, NewProject};
use witness_schemas::schedule::{
    BackupMany, BackupResult, Inspection, InspectionDue, NewSchedule, RuleKind, Schedule,
    ScheduleRun, SelectionKind,
};
use witness_tests::daemon::Daemon;

const TIMEOUT: Duration = Duration::from_secs(120);
/// Text only this project's file holds, so the test can find its bytes inside the disc image.
const MARKER: &str = "复检标记-REINSPECT-MARKER-0123456789";

fn write_config(tmp: &Path) -> Result<PathBuf> {
    let hdd = tmp.join("hdd1");
    std::fs::create_dir_all(&hdd)?;
    let config = tmp.join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 8388608\n\n\
             [[disks]]\nname = \"hdd1\"\npath = {:?}\n\n[copies]\noptical = 1\ndisk = 1\n",
            hdd.display().to_string()
        ),
    )?;
    Ok(config)
}

async fn register(daemon: &Daemon, tmp: &Path, number: &str, content: &str) -> Result<()> {
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: number.into(),
            name: format!("复检测试项目 {number}"),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-03-18T09:30:00+08:00".into(),
        })
        .await?;
    let dir = tmp.join(format!("src-{number}"));
    std::fs::create_dir_all(dir.join("评标报告"))?;
    std::fs::write(dir.join("评标报告/报告.txt"), content.repeat(200))?;
    client
        .add_sources(number, vec![dir.display().to_string()])
        .await?;
    Ok(())
}

async fn finish(daemon: &Daemon, job: i64) -> Result<Job> {
    tokio::time::timeout(
        TIMEOUT,
        witness_controller::cli::wait(&daemon.client(), job),
    )
    .await
    .context("the job did not finish within 120 s")?
}

fn verified_optical(discs: &[Disc], job: i64) -> Result<Disc> {
    discs
        .iter()
        .find(|d| {
            d.job_id == job && d.kind == CopyKind::Optical && d.status == DiscStatus::Verified
        })
        .cloned()
        .with_context(|| format!("no verified disc for job {job}: {discs:?}"))
}

/// Flips one byte of `needle`'s first occurrence in the file.
fn corrupt(image: &Path, needle: &[u8]) -> Result<()> {
    let mut bytes = std::fs::read(image)?;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .context("the marker is not in the image")?;
    bytes[at + 3] ^= 0x01;
    std::fs::write(image, bytes)?;
    Ok(())
}

#[tokio::test]
async fn a_disc_that_lost_a_byte_fails_its_reinspection_and_is_reburned() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = write_config(tmp.path())?;
    let daemon = Daemon::start(&tmp.path().join("var"), Some(&config)).await?;
    let client = daemon.client();
    register(&daemon, tmp.path(), "FJ-2026-001", MARKER).await?;
    register(&daemon, tmp.path(), "FJ-2026-002", "第二个项目").await?;

    // Select and burn: two projects, one job each; an unknown number is reported, not fatal.
    let results: Vec<BackupResult> = client
        .send_json(
            Method::POST,
            "/api/backups",
            &BackupMany {
                numbers: vec!["FJ-2026-001".into(), "FJ-2026-002".into(), "NO-SUCH".into()],
                priority: Some(6),
            },
        )
        .await?;
    ensure!(results.len() == 3, "{results:?}");
    ensure!(
        results[2].job.is_none()
            && results[2]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("NO-SUCH")
    );
    let first = results[0].job.clone().context("job of FJ-2026-001")?;
    ensure!(first.priority == 6, "{first:?}");
    let second = results[1].job.clone().context("job of FJ-2026-002")?;
    finish(&daemon, first.id).await?;
    finish(&daemon, second.id).await?;

    let discs = client.discs().await?;
    let disc = verified_optical(&discs, first.id)?;
    let (ok, out, err) = daemon.cli(&["disc", "shelf", &disc.id.to_string(), "A柜-3层-12盒"]);
    ensure!(ok, "{out}{err}");
    let discs = client.discs().await?;
    ensure!(discs
        .iter()
        .any(|d| d.id == disc.id && d.shelf == "A柜-3层-12盒"));

    // A sound disc passes.
    let (ok, out, err) = daemon.cli(&["disc", "inspect", &disc.id.to_string()]);
    ensure!(ok && out.contains("复检通过"), "{out}{err}");

    // One byte of the report changes inside the image: the re-read names the file, a re-burn
    // job is raised, and it produces a fresh verified disc.
    corrupt(Path::new(&disc.location), MARKER.as_bytes())?;
    let (ok, out, err) = daemon.cli(&["disc", "inspect", &disc.id.to_string(), "--json"]);
    ensure!(!ok, "a corrupted disc passed: {out}{err}");
    let inspection: Inspection = serde_json::from_str(&out).context(out.clone())?;
    ensure!(
        inspection.result == "failed" && inspection.problems == 1,
        "{inspection:?}"
    );
    ensure!(
        inspection.detail == "data/src-FJ-2026-001/评标报告/报告.txt 的 SHA-256 摘要不符",
        "{inspection:?}"
    );
    let reburn = inspection.reburn_job_id.context("no re-burn job")?;
    let job = finish(&daemon, reburn).await?;
    ensure!(
        job.status == JobStatus::Succeeded && job.origin == "reburn" && job.priority == 8,
        "{job:?}"
    );
    let discs = client.discs().await?;
    let fresh = verified_optical(&discs, reburn)?;
    ensure!(fresh.project_number == "FJ-2026-001");
    // The disc list tells the failed copy from the sound ones.
    let old_disc = discs
        .iter()
        .find(|d| d.id == disc.id)
        .context("old disc listed")?;
    ensure!(
        old_disc.inspection_result.as_deref() == Some("failed") && old_disc.inspected_at.is_some(),
        "{old_disc:?}"
    );
    ensure!(fresh.inspection_result.is_none(), "{fresh:?}");
    let (ok, out, err) = daemon.cli(&["disc", "inspect", &fresh.id.to_string()]);
    ensure!(ok, "the re-burned disc failed: {out}{err}");

    // The failed disc is now on the tighter cycle (1 year instead of 2).
    let due: Vec<InspectionDue> = client.get_json("/api/inspections/due").await?;
    let old = due
        .iter()
        .find(|d| d.disc_id == disc.id)
        .context("old disc not listed")?;
    ensure!(
        old.tightened && old.last_result.as_deref() == Some("failed"),
        "{old:?}"
    );
    let new = due
        .iter()
        .find(|d| d.disc_id == fresh.id)
        .context("new disc not listed")?;
    ensure!(!new.tightened && !new.overdue, "{new:?}");
    Ok(())
}

#[tokio::test]
async fn an_immediate_schedule_fires_once_even_across_kill_9() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = write_config(tmp.path())?;
    let mut daemon = Daemon::start(&tmp.path().join("var"), Some(&config)).await?;
    register(&daemon, tmp.path(), "DS-2026-001", "定时").await?;
    let schedule: Schedule = daemon
        .client()
        .send_json(
            Method::POST,
            "/api/schedules",
            &NewSchedule {
                name: "立即备份".into(),
                rule: RuleKind::Immediate,
                time: None,
                weekday: None,
                month_day: None,
                selection: SelectionKind::List,
                category: None,
                numbers: vec!["DS-2026-001".into()],
                priority: Some(3),
                enabled: true,
            },
        )
        .await?;
    let runs: Vec<ScheduleRun> = daemon
        .client()
        .get_json(&format!("/api/schedules/{}/runs", schedule.id))
        .await?;
    ensure!(runs.len() == 1 && runs[0].jobs_created == 1, "{runs:?}");
    daemon.restart().await?;
    let runs: Vec<ScheduleRun> = daemon
        .client()
        .get_json(&format!("/api/schedules/{}/runs", schedule.id))
        .await?;
    ensure!(runs.len() == 1, "fired again after the restart: {runs:?}");
    let jobs = daemon.client().jobs().await?;
    ensure!(
        jobs.len() == 1 && jobs[0].origin == "schedule" && jobs[0].priority == 3,
        "{jobs:?}"
    );
    finish(&daemon, jobs[0].id).await?;

    // 一键备份 with a priority from the CLI; a priority out of range is refused by name.
    let (ok, out, err) = daemon.cli(&["backup", "--project", "DS-2026-001", "--priority", "12"]);
    ensure!(!ok && err.contains("优先级 12 无效"), "{out}{err}");
    let (ok, out, err) = daemon.cli(&["backup", "--project", "DS-2026-001", "--priority", "9"]);
    ensure!(ok, "{out}{err}");
    let jobs = daemon.client().jobs().await?;
    ensure!(
        jobs[0].priority == 9 && jobs[0].origin == "manual",
        "{jobs:?}"
    );
    finish(&daemon, jobs[0].id).await?;

    // A monthly schedule from the CLI shows its rule in words.
    let (ok, out, err) = daemon.cli(&[
        "schedule",
        "add",
        "--name",
        "月末归档",
        "--rule",
        "monthly",
        "--day",
        "31",
        "--time",
        "02:00",
    ]);
    ensure!(ok && out.contains("每月最后一天 02:00"), "{out}{err}");
    let (ok, out, err) = daemon.cli(&[
        "schedule", "add", "--name", "坏", "--rule", "weekly", "--time", "02:00",
    ]);
    ensure!(!ok && err.contains("weekday"), "{out}{err}");

    // The template from the CLI, checked by a dry run: only the example row's folder is wrong.
    let template = tmp.path().join("模板.xlsx");
    let (ok, out, err) = daemon.cli(&[
        "batch",
        "template",
        "--out",
        &template.display().to_string(),
    ]);
    ensure!(ok, "{out}{err}");
    let (ok, out, err) = daemon.cli(&[
        "batch",
        "import",
        &template.display().to_string(),
        "--dry-run",
    ]);
    ensure!(!ok && out.contains("第 2 行 源文件夹"), "{out}{err}");
    Ok(())
}
