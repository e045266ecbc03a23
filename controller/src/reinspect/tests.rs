//! Re-inspection in process, on the simulated clock: a disk copy that lost a byte fails and
//! raises a re-burn job, the cycle tightens, a real disc on a shelf is refused honestly, and a
//! re-read a crash interrupted is recorded as such.

use std::time::Duration as StdDuration;

use time::macros::datetime;
use time::Duration;

use super::*;
use crate::catalog;
use crate::schedule::tests::{add_project, engine_with};

/// Waits (real time, the job runs in the background) until the job has ended.
async fn finished(engine: &Engine, job: i64) -> String {
    for _ in 0..600 {
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
            .bind(job)
            .fetch_one(&engine.pool)
            .await
            .unwrap();
        if status != "queued" && status != "running" {
            return status;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("job {job} did not finish");
}

#[tokio::test]
async fn a_disk_copy_that_lost_a_byte_fails_and_raises_a_reburn_job() {
    let (dir, engine, clock) = engine_with(datetime!(2027-05-01 09:00 +8), "").await;
    add_project(
        &engine,
        dir.path(),
        "GC-2027-077",
        "2027-04-30T09:00:00+08:00",
    )
    .await;
    let job = engine.submit_backup("GC-2027-077").await.unwrap();
    assert_eq!(finished(&engine, job.id).await, "succeeded");
    let copy = catalog::job_discs(&engine.pool, job.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.kind == "disk" && d.status == "verified")
        .expect("a verified disk copy");

    // Due 730 days after verification (2028 has 29 February, so one day short of two years).
    let due_of =
        |list: Vec<InspectionDue>| list.into_iter().find(|d| d.disc_id == copy.id).unwrap();
    let first = due_of(due(&engine).await.unwrap());
    assert_eq!(first.due_at, "2029-04-30T09:00:00+08:00");
    assert!(!first.overdue && !first.tightened);

    let passed = inspect(&engine, copy.id).await.unwrap();
    assert_eq!((passed.result.as_str(), passed.problems), ("passed", 0));

    let file = std::path::Path::new(&copy.location).join("data/src-GC-2027-077/评标报告.txt");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();
    clock.advance(Duration::days(30));
    let failed = inspect(&engine, copy.id).await.unwrap();
    assert_eq!(failed.result, "failed");
    assert_eq!(
        failed.detail,
        "data/src-GC-2027-077/评标报告.txt 的 SHA-256 摘要不符"
    );
    let reburn = failed.reburn_job_id.expect("a re-burn job");
    let row = catalog::job(&engine.pool, reburn).await.unwrap();
    assert_eq!((row.origin.as_str(), row.priority), ("reburn", 8));
    assert_eq!(finished(&engine, reburn).await, "succeeded");

    // The failed copy is now on the 365-day cycle from its failed re-read (31 May 2027).
    let after = due_of(due(&engine).await.unwrap());
    assert!(after.tightened);
    assert_eq!(after.due_at, "2028-05-30T09:00:00+08:00");
}

#[tokio::test]
async fn a_real_disc_on_a_shelf_is_not_reread_and_says_so() {
    let (dir, engine, _clock) = engine_with(
        datetime!(2027-05-01 09:00 +8),
        "[[drives]]\nname = \"sr0\"\nkind = \"optical\"\ndevice = \"/dev/sr0\"\nmedia = \"bd-r\"\n",
    )
    .await;
    add_project(
        &engine,
        dir.path(),
        "GC-2027-078",
        "2027-04-30T09:00:00+08:00",
    )
    .await;
    // A verified disc as a real drive leaves it (the drive is not on this machine).
    sqlx::query("INSERT INTO jobs (id, project_id, status, step, medium, capacity, part_size, copies_optical, copies_disk, package_uuid, created_at, updated_at) VALUES (50, 1, 'succeeded', 'done', 'bd-r', 1, 1, 1, 0, 'u', '2027-05-01T09:00:00+08:00', '2027-05-01T09:00:00+08:00')")
        .execute(&engine.pool).await.unwrap();
    sqlx::query("INSERT INTO discs (id, job_id, kind, set_index, set_count, copy_index, medium, target, location, volume_id, status, created_at, verified_at, shelf) VALUES (9, 50, 'optical', 1, 1, 1, 'bd-r', 'sr0', '/dev/sr0', 'V', 'verified', '2027-05-01T09:00:00+08:00', '2027-05-01T09:00:00+08:00', 'B柜-1层-3盒')")
        .execute(&engine.pool).await.unwrap();
    let error = inspect(&engine, 9).await.unwrap_err();
    assert_eq!(error.kind, crate::error::ErrorKind::FailedPrecondition);
    assert!(
        error.message.contains("尚不支持") && error.message.contains("B柜-1层-3盒"),
        "{error}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inspections")
        .fetch_one(&engine.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a refused re-read leaves no record");
    // Bad shelf text is refused; a good one is stored.
    assert!(set_shelf(&engine, 9, &"柜".repeat(101)).await.is_err());
    assert_eq!(
        set_shelf(&engine, 9, " A柜-3层-12盒 ").await.unwrap().shelf,
        "A柜-3层-12盒"
    );
    assert_eq!(
        set_shelf(&engine, 404, "x").await.unwrap_err().kind,
        crate::error::ErrorKind::NotFound
    );
}

#[tokio::test]
async fn a_reread_interrupted_by_a_crash_is_recorded_as_interrupted() {
    let (dir, engine, _clock) = engine_with(datetime!(2027-05-01 09:00 +8), "").await;
    add_project(
        &engine,
        dir.path(),
        "GC-2027-079",
        "2027-04-30T09:00:00+08:00",
    )
    .await;
    let job = engine.submit_backup("GC-2027-079").await.unwrap();
    assert_eq!(finished(&engine, job.id).await, "succeeded");
    let copy = catalog::job_discs(&engine.pool, job.id).await.unwrap()[0].id;
    sqlx::query("INSERT INTO inspections (disc_id, result, started_at) VALUES (?, 'running', '2027-05-01T09:00:00+08:00')")
        .bind(copy)
        .execute(&engine.pool)
        .await
        .unwrap();
    assert_eq!(
        inspect(&engine, copy).await.unwrap_err().kind,
        crate::error::ErrorKind::AlreadyExists
    );
    recover(&engine).await.unwrap();
    let listed = list(&engine).await.unwrap();
    assert_eq!(listed[0].result, "interrupted");
    assert_eq!(inspect(&engine, copy).await.unwrap().result, "passed");
}
