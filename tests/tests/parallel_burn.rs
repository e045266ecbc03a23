//! Several drives burning at once, end to end through a real `witness serve` with virtual drives
//! (xorriso/libburn on `stdio:` images; the parallel test's paced by libburn `-speed`):
//! - four drives work a set of eight volumes concurrently (the drives' recording intervals
//!   overlap), and every volume ends verified;
//! - a drive whose writes fail has its discs rejected, the volumes are re-burned on the other
//!   drives, and every file of the project is on a verified disc, byte for byte;
//! - a drive that fails twice in a row is taken out of service with an alert, gets no work from
//!   later jobs, keeps its counters across a kill -9, and only an administrator returns it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use witness_controller::cli::{self, Client};
use witness_drivers::iso9660;
use witness_schemas::api::{Alert, CopyKind, Disc, DiscStatus, Drive};
use witness_schemas::auth::AuditEntry;
use witness_tests::burning::{
    add_project, max_overlap, print_timeline, recordings, virtual_drive, write_sources,
};
use witness_tests::daemon::Daemon;

/// 8 MiB discs and 5 MiB files: every file takes a disc of its own.
const DISC: u64 = 8 << 20;
const FILE: usize = 5 << 20;
/// The parallel test's discs: 20 MiB, files of 17 MiB. libburn paces a `stdio:` drive in steps
/// of about 16 MiB (a smaller image is written at full speed), so at 8 MB/s each of these discs
/// records for about 2 s, long enough for the drives' overlap not to depend on luck.
const BIG_DISC: u64 = 20 << 20;
const BIG_FILE: usize = 17 << 20;
const RATE: u64 = 8_000_000;

fn config(dir: &Path, drives: &str) -> Result<PathBuf> {
    let path = dir.join("witness.toml");
    std::fs::write(&path, format!("{drives}[copies]\noptical = 1\ndisk = 0\n"))?;
    Ok(path)
}

async fn backup(client: &Client, number: &str) -> Result<i64> {
    let job = client.backup(number).await?;
    cli::wait(client, job.id).await?;
    Ok(job.id)
}

fn discs_of(discs: &[Disc], job_id: i64) -> Vec<&Disc> {
    discs
        .iter()
        .filter(|d| d.job_id == job_id && d.kind == CopyKind::Optical)
        .collect()
}

/// Every volume of the set has exactly one verified disc.
fn one_verified_per_volume(discs: &[&Disc], volumes: i64) -> Result<()> {
    let verified: Vec<i64> = discs
        .iter()
        .filter(|d| d.status == DiscStatus::Verified)
        .map(|d| d.set_index)
        .collect();
    let expected: Vec<i64> = (1..=volumes).collect();
    let mut got = verified.clone();
    got.sort();
    ensure!(
        got == expected,
        "verified volumes {got:?}, expected {expected:?}"
    );
    ensure!(
        discs.iter().all(|d| d.set_count == volumes),
        "set counts: {discs:#?}"
    );
    Ok(())
}

fn drive<'a>(drives: &'a [Drive], name: &str) -> Result<&'a Drive> {
    drives
        .iter()
        .find(|d| d.name == name)
        .with_context(|| format!("drive {name} missing from {drives:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_drives_burn_eight_volumes_at_once() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let names = ["bd1", "bd2", "bd3", "bd4"];
    let drives: String = names
        .iter()
        .map(|n| virtual_drive(n, BIG_DISC, Some(RATE), None))
        .collect();
    let config = config(tmp.path(), &drives)?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let result = async {
        let client = daemon.client();
        let sources = tmp.path().join("src");
        write_sources(&sources, 8, BIG_FILE, 1)?;
        add_project(&client, "PAR-2026-0001", &sources).await?;
        let job_id = backup(&client, "PAR-2026-0001").await?;

        let all = client.discs().await?;
        let discs = discs_of(&all, job_id);
        ensure!(discs.len() == 8, "8 discs, no rejects: {discs:#?}");
        one_verified_per_volume(&discs, 8)?;
        let used: BTreeSet<&str> = discs.iter().map(|d| d.target.as_str()).collect();
        ensure!(used.len() == 4, "every drive burned: {used:?}");

        let timeline = recordings(&client, &names).await?;
        eprintln!("recording intervals:");
        print_timeline(&timeline);
        ensure!(timeline.len() == 8, "8 recordings: {timeline:#?}");
        ensure!(
            timeline.iter().all(|r| r.ended_by == "verifying"),
            "every recording went on to read-back: {timeline:#?}"
        );
        // All four drives recorded at the same instant: the set is spread over them, not
        // burned one disc after another.
        let overlap = max_overlap(&timeline);
        ensure!(overlap == 4, "at most {overlap} drives recorded at once");

        // The drives page shows each drive's result and good-disc counter.
        let listed: Vec<Drive> = client.get_json("/api/drives").await?;
        for name in names {
            let d = drive(&listed, name)?;
            let burned = discs.iter().filter(|x| x.target == name).count() as i64;
            ensure!(
                d.state == "complete" && d.good_discs == burned && d.bad_discs == 0,
                "{d:#?}"
            );
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("daemon log:\n{}", daemon.log_text());
    }
    result
}

/// Reads every file of every verified disc image and checks the project's files come back whole
/// and unchanged.
fn files_on_discs(discs: &[&Disc]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for disc in discs.iter().filter(|d| d.status == DiscStatus::Verified) {
        let mut image = std::fs::File::open(&disc.location)
            .with_context(|| format!("disc {} image {}", disc.id, disc.location))?;
        let (_, files) = iso9660::read_tree(&mut image)?;
        for file in files {
            if let Some(rel) = file.path.strip_prefix("data/") {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut iso9660::file_reader(&mut image, &file),
                    &mut bytes,
                )?;
                ensure!(
                    out.insert(rel.to_string(), bytes).is_none(),
                    "{rel} is on two verified discs"
                );
            }
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_drive_loses_nothing_its_volumes_go_to_the_others() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // "bad" fails every write after 1 MiB.
    let drives = format!(
        "{}{}{}",
        virtual_drive("bd1", DISC, None, None),
        virtual_drive("bd2", DISC, None, None),
        virtual_drive("bad", DISC, None, Some(1000)),
    );
    let config = config(tmp.path(), &drives)?;
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data, Some(&config)).await?;
    let result = async {
        let client = daemon.client();
        let sources = tmp.path().join("src");
        let files = write_sources(&sources, 6, FILE, 2)?;
        add_project(&client, "FLT-2026-0001", &sources).await?;
        let job_id = backup(&client, "FLT-2026-0001").await?;

        let all = client.discs().await?;
        let discs = discs_of(&all, job_id);
        one_verified_per_volume(&discs, 6)?;
        let rejected: Vec<&&Disc> = discs
            .iter()
            .filter(|d| d.status == DiscStatus::Rejected)
            .collect();
        // The bad drive got a disc and failed it; whether it gets a second one (and is then
        // taken out after two failures in a row) depends on whether the good drives have
        // taken every remaining volume by the time it is free again.
        ensure!(
            (1..=2).contains(&rejected.len()),
            "rejected discs: {rejected:#?}"
        );
        for disc in &rejected {
            ensure!(disc.target == "bad", "{disc:#?}");
            let error = disc.error.as_deref().unwrap_or_default();
            ensure!(
                error.contains("刻录失败") && error.contains("injected fault"),
                "{error}"
            );
            ensure!(
                !Path::new(&disc.location).exists(),
                "the rejected image {} was not thrown away",
                disc.location
            );
            // Its volume was burned again, on another drive.
            let again = discs
                .iter()
                .find(|d| d.set_index == disc.set_index && d.status == DiscStatus::Verified)
                .context("re-burned volume")?;
            ensure!(again.target != "bad", "{again:#?}");
        }
        ensure!(
            discs
                .iter()
                .all(|d| d.target != "bad" || d.status == DiscStatus::Rejected),
            "nothing of the bad drive counts: {discs:#?}"
        );

        // Nothing lost: every source file is on exactly one verified disc, byte for byte (the
        // discs also carry the project's audit-log export under _witness/).
        let on_discs = files_on_discs(&discs)?;
        let names: BTreeSet<&String> = on_discs
            .keys()
            .filter(|k| !k.starts_with("_witness/"))
            .collect();
        let expected: BTreeSet<&String> = files.keys().collect();
        ensure!(
            names == expected,
            "files on discs {names:?} vs {expected:?}"
        );
        for (rel, path) in &files {
            ensure!(
                on_discs[rel] == std::fs::read(path)?,
                "{rel} differs from its source"
            );
        }

        let listed: Vec<Drive> = client.get_json("/api/drives").await?;
        let bad = drive(&listed, "bad")?;
        let expected_state = if rejected.len() == 2 {
            "out_of_service"
        } else {
            "record_failed"
        };
        ensure!(
            bad.state == expected_state
                && bad.bad_discs == rejected.len() as i64
                && bad.good_discs == 0,
            "{bad:#?}"
        );
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("daemon log:\n{}", daemon.log_text());
    }
    result
}

/// A token of another role, made by the admin.
async fn token_for(daemon: &Daemon, role: &str) -> Result<Client> {
    let response = reqwest::Client::new()
        .post(format!("{}/api/tokens", daemon.url))
        .bearer_auth(daemon.admin_token().context("admin token")?)
        .json(&serde_json::json!({ "name": format!("{role}-token"), "role": role }))
        .send()
        .await?;
    ensure!(response.status().is_success(), "{}", response.text().await?);
    let created: serde_json::Value = response.json().await?;
    let secret = created["secret"].as_str().context("secret")?.to_string();
    Ok(Client::new(&daemon.url).with_token(Some(secret)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_failing_twice_is_out_of_service_until_an_admin_returns_it() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // "bad" fails its first two discs only; after that it would work again.
    let drives = format!(
        "{}{}",
        virtual_drive("bd1", DISC, None, None),
        virtual_drive("bad", DISC, None, Some(2)),
    );
    let config = config(tmp.path(), &drives)?;
    let data = tmp.path().join("data");
    let mut daemon = Daemon::start(&data, Some(&config)).await?;
    let result = async {
        let client = daemon.client();
        let first = tmp.path().join("p1");
        // Eight volumes: the good drive cannot take them all while the bad one fails its first
        // disc, so the bad drive surely gets (and fails) a second one.
        write_sources(&first, 8, FILE, 3)?;
        add_project(&client, "OOS-2026-0001", &first).await?;
        backup(&client, "OOS-2026-0001").await?;

        let listed: Vec<Drive> = client.get_json("/api/drives").await?;
        let bad = drive(&listed, "bad")?;
        ensure!(bad.state == "out_of_service", "{bad:#?}");
        ensure!(
            (bad.good_discs, bad.bad_discs, bad.failures_in_row) == (0, 2, 2),
            "{bad:#?}"
        );
        let reason = bad.out_of_service_reason.clone().unwrap_or_default();
        ensure!(reason.contains("连续 2 张光盘失败"), "{reason}");
        let alerts: Vec<Alert> = client.get_json("/api/alerts").await?;
        ensure!(
            alerts.len() == 1
                && alerts[0].kind == "drive_out_of_service"
                && alerts[0].subject == "bad"
                && alerts[0].resolved_at.is_none(),
            "{alerts:#?}"
        );

        // The drive is repaired (its fault removed from the configuration) and the daemon
        // killed and started again: counters and the out-of-service flag are in the catalog.
        std::fs::write(
            &config,
            format!(
                "{}{}[copies]\noptical = 1\ndisk = 0\n",
                virtual_drive("bd1", DISC, None, None),
                virtual_drive("bad", DISC, None, None),
            ),
        )?;
        daemon.restart().await?;
        let client = daemon.client();
        let listed: Vec<Drive> = client.get_json("/api/drives").await?;
        let bad = drive(&listed, "bad")?;
        ensure!(
            bad.state == "out_of_service" && bad.bad_discs == 2,
            "after restart: {bad:#?}"
        );

        // Out of service, it gets no work (repaired, a disc it did take would succeed and show
        // up here).
        let second = tmp.path().join("p2");
        write_sources(&second, 3, FILE, 4)?;
        add_project(&client, "OOS-2026-0002", &second).await?;
        let job2 = backup(&client, "OOS-2026-0002").await?;
        let all = client.discs().await?;
        let discs = discs_of(&all, job2);
        one_verified_per_volume(&discs, 3)?;
        ensure!(discs.iter().all(|d| d.target == "bd1"), "{discs:#?}");

        // Only an administrator returns it to service.
        let operator = token_for(&daemon, "operator").await?;
        let refused = operator
            .post_json::<Vec<Drive>>("/api/drives/bad/return-to-service")
            .await
            .unwrap_err()
            .to_string();
        ensure!(refused.contains("403"), "{refused}");
        let missing = client
            .post_json::<Vec<Drive>>("/api/drives/nope/return-to-service")
            .await
            .unwrap_err()
            .to_string();
        ensure!(
            missing.contains("没有名为") && missing.contains("404"),
            "{missing}"
        );
        let listed: Vec<Drive> = client
            .post_json("/api/drives/bad/return-to-service")
            .await?;
        let bad = drive(&listed, "bad")?;
        ensure!(
            bad.state == "idle" && bad.failures_in_row == 0 && bad.bad_discs == 2,
            "{bad:#?}"
        );
        let again = client
            .post_json::<Vec<Drive>>("/api/drives/bad/return-to-service")
            .await
            .unwrap_err()
            .to_string();
        ensure!(again.contains("没有停用"), "{again}");
        let audit: Vec<AuditEntry> = client
            .get_json("/api/audit?action=return-to-service&limit=50")
            .await?;
        let entry = audit
            .iter()
            .find(|e| e.target == "/api/drives/bad/return-to-service" && e.result == "200")
            .with_context(|| format!("the return is in the audit log: {audit:#?}"))?;
        let alerts: Vec<Alert> = client.get_json("/api/alerts").await?;
        ensure!(
            alerts.len() == 1 && alerts[0].resolved_by.as_deref() == Some(entry.actor.as_str()),
            "the alert is resolved by the admin: {alerts:#?}"
        );

        // Back in service it takes work again and counts good discs.
        let third = tmp.path().join("p3");
        write_sources(&third, 4, FILE, 5)?;
        add_project(&client, "OOS-2026-0003", &third).await?;
        let job3 = backup(&client, "OOS-2026-0003").await?;
        let all = client.discs().await?;
        let on_bad = discs_of(&all, job3)
            .into_iter()
            .filter(|d| d.target == "bad" && d.status == DiscStatus::Verified)
            .count() as i64;
        ensure!(on_bad > 0, "the returned drive burned nothing");
        let listed: Vec<Drive> = client.get_json("/api/drives").await?;
        let bad = drive(&listed, "bad")?;
        ensure!(bad.good_discs == on_bad && bad.bad_discs == 2, "{bad:#?}");
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("daemon log:\n{}", daemon.log_text());
    }
    result
}
