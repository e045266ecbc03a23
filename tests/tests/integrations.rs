//! The expert-library integration against the stand-in provincial platform on loopback: a
//! contract test per exchange (valid by schema, right content for a sample project, the
//! drawing result in the gates' draws), the fault test (down for a simulated day, then flaky:
//! every message delivered exactly once by idempotency key and the reconciliation report says
//! so), and kill -9 of the daemon while it delivers.
//!
//! The in-process tests drive the real delivery worker (`Delivery::pass`) over a real SQLite
//! catalog with a simulated clock, so a day of outage takes no day.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::macros::datetime;
use witness_controller::clock::{Clock, SimulatedClock};
use witness_controller::integrations::expert_library::{self, ExpertLibrary};
use witness_controller::integrations::{self, Delivery};
use witness_controller::{catalog, db, gates};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::gate::{BadgeEvent, EventKind, GateEvent, NewGate, SyncBatch};
use witness_schemas::integration::{
    Candidate, EvaluationRecord, ExpertLibraryConfig, ExpertScore, MessageState, TargetStatus,
    TradeCodes, EXPERT_LIBRARY,
};
use witness_tests::daemon::Daemon;
use witness_tests::standin::{id_number, sample_experts, Fault, StandIn};

const PROJECT: &str = "LKGC-2026-0318";
const DEAL_CODE: &str = "A41022520260318001";
const SECTION: &str = "LKGC-2026-0318-001";

fn config(url: &str) -> ExpertLibraryConfig {
    ExpertLibraryConfig {
        base_url: url.to_string(),
        platform_code: "HNLK001".to_string(),
        token_file: None,
        max_attempts: 72,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        probe_seconds: 60,
        timeout_seconds: 0.5,
        expert_count: 5,
        evaluation_place: "兰考县公共资源交易中心三楼评标区".to_string(),
    }
}

struct World {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    pool: SqlitePool,
    clock: Arc<SimulatedClock>,
    delivery: Delivery,
}

/// A catalog with the sample project (opening today 09:30, trade codes recorded) and a
/// delivery worker pointed at `url`; the clock stands at 08:00 on the opening day.
async fn world(url: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let pool = db::open(&data).await.unwrap();
    let clock = Arc::new(SimulatedClock::new(datetime!(2026-03-18 08:00 +8)));
    add_project(&pool, clock.now(), PROJECT, Some((DEAL_CODE, SECTION))).await;
    let delivery = Delivery::new(
        pool.clone(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        ExpertLibrary::adapter(config(url)),
        None,
    )
    .unwrap();
    World {
        _dir: dir,
        data,
        pool,
        clock,
        delivery,
    }
}

async fn add_project(
    pool: &SqlitePool,
    now: time::OffsetDateTime,
    number: &str,
    codes: Option<(&str, &str)>,
) {
    catalog::create_project(
        pool,
        &NewProject {
            number: number.to_string(),
            name: "兰考县城区道路改造工程施工".to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        },
        now,
    )
    .await
    .unwrap();
    if let Some((deal, section)) = codes {
        integrations::set_trade_codes(
            pool,
            number,
            &TradeCodes {
                unified_deal_code: deal.to_string(),
                bid_section_code: section.to_string(),
            },
            "archivist",
            now,
        )
        .await
        .unwrap();
    }
}

fn bidder_code(n: u32) -> String {
    format!("91410225MA4{n:07}")
}

fn records() -> Vec<EvaluationRecord> {
    let experts = sample_experts();
    vec![
        EvaluationRecord::ExpertScores {
            scores: vec![
                ExpertScore {
                    expert_name: experts[0].0.clone(),
                    id_number: experts[0].1.clone(),
                    bidder_name: "河南兰考建设集团有限公司".to_string(),
                    bidder_code: bidder_code(1),
                    score: 91.5,
                },
                ExpertScore {
                    expert_name: experts[1].0.clone(),
                    id_number: experts[1].1.clone(),
                    bidder_name: "河南兰考建设集团有限公司".to_string(),
                    bidder_code: bidder_code(1),
                    score: 88.0,
                },
            ],
        },
        EvaluationRecord::CandidatePublicity {
            publicity_start: "2026-03-19T09:00:00+08:00".to_string(),
            publicity_end: "2026-03-22T09:00:00+08:00".to_string(),
            candidates: vec![
                Candidate {
                    rank: 1,
                    bidder_name: "河南兰考建设集团有限公司".to_string(),
                    bidder_code: bidder_code(1),
                    bid_price: "12345678.90".to_string(),
                },
                Candidate {
                    rank: 2,
                    bidder_name: "开封市政工程有限公司".to_string(),
                    bidder_code: bidder_code(2),
                    bid_price: "12500000".to_string(),
                },
            ],
        },
        EvaluationRecord::ResultAnnouncement {
            winner_name: "河南兰考建设集团有限公司".to_string(),
            winner_code: bidder_code(1),
            win_price: "12345678.90".to_string(),
            notice_time: "2026-03-23T10:00:00+08:00".to_string(),
        },
        EvaluationRecord::ExpertCredit {
            expert_name: experts[2].0.clone(),
            id_number: experts[2].1.clone(),
            credit_type: "bad".to_string(),
            content: "评标期间擅自离开评标区".to_string(),
            record_time: "2026-03-18T15:00:00+08:00".to_string(),
        },
    ]
}

/// Runs passes until nothing is attempted (the clock does not move).
async fn drain(world: &World) {
    for _ in 0..100 {
        if world.delivery.pass().await.unwrap().attempted == 0 {
            return;
        }
    }
    panic!("the queue did not drain");
}

async fn states(pool: &SqlitePool) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT idempotency_key, exchange, state FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A daemon configured for the stand-in (plus `extra` lines of `[integrations.expert_library]`)
/// holding the sample project, with its trade codes when `codes`.
async fn daemon_with_project(
    dir: &std::path::Path,
    standin: &StandIn,
    extra: &str,
    codes: bool,
) -> Daemon {
    let config_path = dir.join("witness.toml");
    std::fs::write(
        &config_path,
        format!(
            "[integrations.expert_library]\nbase_url = \"{}\"\nplatform_code = \"HNLK001\"\n{extra}",
            standin.url()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&dir.join("data"), Some(&config_path))
        .await
        .unwrap();
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: PROJECT.to_string(),
            name: "兰考县城区道路改造工程施工".to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        })
        .await
        .unwrap();
    if codes {
        client
            .put_trade_codes(PROJECT, DEAL_CODE, SECTION)
            .await
            .unwrap();
    }
    daemon
}

fn common_fields(payload: &Value) {
    assert_eq!(payload["PLATFORM_CODE"], "HNLK001");
    assert_eq!(payload["TENDER_PROJECT_CODE"], PROJECT);
    assert_eq!(payload["UNIFIED_DEAL_CODE"], DEAL_CODE);
    assert_eq!(payload["BID_SECTION_CODE"], SECTION);
    assert_eq!(payload["DATA_TIMESTAMP"], "20260318080000");
}

#[tokio::test]
async fn contract_expert_draw_request_and_its_result_feeds_the_gates() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    let day = w.clock.now().date();
    let ids = integrations::enqueue_draw_requests(&w.pool, day, None, None, w.clock.now())
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    // Asking again the same day queues nothing new.
    let again = integrations::enqueue_draw_requests(&w.pool, day, None, None, w.clock.now())
        .await
        .unwrap();
    assert!(again.is_empty());
    drain(&w).await;
    let got = standin.received_of("expert-draw-request");
    assert_eq!(got.len(), 1);
    let payload = &got[0].payload;
    common_fields(payload);
    assert_eq!(payload["TENDER_PROJECT_NAME"], "兰考县城区道路改造工程施工");
    assert_eq!(payload["BID_OPEN_TIME"], "20260318093000");
    assert_eq!(payload["EXPERT_COUNT"], 5);
    assert!(standin.invalid().is_empty(), "{:?}", standin.invalid());
    // The drawing result is in the draws the gates' lists are made from.
    let draws = gates::list_draws(&w.pool, PROJECT, true).await.unwrap();
    let drawn: Vec<_> = sample_experts().into_iter().take(5).collect();
    assert_eq!(draws.len(), 5);
    for (draw, (name, id)) in draws.iter().zip(&drawn) {
        assert_eq!(&draw.name, name);
        assert_eq!(&draw.id_number, id);
        assert_eq!(draw.window_start, "2026-03-18T09:30:00+08:00");
        assert_eq!(draw.window_end, "2026-03-18T17:30:00+08:00");
        assert_eq!(draw.created_by, "省专家库");
    }
}

#[tokio::test]
async fn contract_evaluation_video_references_the_archived_videos() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    // A finished backup job of the project: one video and one document in its package.
    let project = catalog::project(&w.pool, PROJECT).await.unwrap();
    let job_id = sqlx::query(
        "INSERT INTO jobs (project_id, status, step, medium, capacity, part_size, copies_optical, copies_disk, \
         package_uuid, created_at, updated_at) VALUES (?, 'succeeded', 'done', 'bd-r', 1, 1, 1, 1, 'u', 'now', 'now')",
    )
    .bind(project.id)
    .execute(&w.pool)
    .await
    .unwrap()
    .last_insert_rowid();
    let sha = "ab".repeat(32);
    for (path, kind) in [
        ("评标监控/评标室1-20260318.mp4", "video"),
        ("投标文件/商务标.pdf", "document"),
    ] {
        sqlx::query(
            "INSERT INTO package_files (job_id, rel_path, size, sha256, sm3, kind) VALUES (?, ?, 1048576, ?, ?, ?)",
        )
        .bind(job_id)
        .bind(path)
        .bind(&sha)
        .bind(&sha)
        .bind(kind)
        .execute(&w.pool)
        .await
        .unwrap();
    }
    let mut tx = w.pool.begin().await.unwrap();
    expert_library::enqueue_archived_videos(&mut tx, job_id, PROJECT, w.clock.now())
        .await
        .unwrap()
        .expect("a message");
    tx.commit().await.unwrap();
    drain(&w).await;
    let got = standin.received_of("evaluation-video");
    assert_eq!(got.len(), 1);
    common_fields(&got[0].payload);
    assert_eq!(
        got[0].payload["VIDEO_LIST"],
        json!([{
            "FILE_NAME": "评标室1-20260318.mp4",
            "FILE_PATH": "评标监控/评标室1-20260318.mp4",
            "FILE_SIZE": 1048576,
            "FILE_FORMAT": "mp4",
            "SHA256": sha,
        }])
    );
    assert!(standin.invalid().is_empty(), "{:?}", standin.invalid());
}

/// Records one evaluation record through the API function and checks what the stand-in got.
async fn contract_record(index: usize, exchange: &str, check: impl Fn(&Value)) {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    let record = records().swap_remove(index);
    integrations::add_record(&w.pool, PROJECT, &record, "archivist", w.clock.now())
        .await
        .unwrap();
    drain(&w).await;
    let got = standin.received_of(exchange);
    assert_eq!(got.len(), 1, "{exchange}");
    common_fields(&got[0].payload);
    check(&got[0].payload);
    assert!(standin.invalid().is_empty(), "{:?}", standin.invalid());
    assert_eq!(states(&w.pool).await[0].2, "acked");
}

#[tokio::test]
async fn contract_expert_scores() {
    contract_record(0, "expert-scores", |p| {
        let list = p["SCORE_LIST"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["EXPERT_NAME"], "张建国");
        assert_eq!(list[0]["ID_CARD_NO"], sample_experts()[0].1);
        assert_eq!(list[0]["SCORE"], 91.5);
        assert_eq!(list[1]["BIDDER_CODE"], bidder_code(1));
    })
    .await;
}

#[tokio::test]
async fn contract_candidate_publicity() {
    contract_record(1, "candidate-publicity", |p| {
        assert_eq!(p["PUBLICITY_START_TIME"], "20260319090000");
        assert_eq!(p["PUBLICITY_END_TIME"], "20260322090000");
        assert_eq!(p["CANDIDATE_LIST"][0]["RANK"], 1);
        assert_eq!(p["CANDIDATE_LIST"][0]["BID_PRICE"], "12345678.90");
        assert_eq!(
            p["CANDIDATE_LIST"][1]["BIDDER_NAME"],
            "开封市政工程有限公司"
        );
    })
    .await;
}

#[tokio::test]
async fn contract_result_announcement() {
    contract_record(2, "result-announcement", |p| {
        assert_eq!(p["WIN_BIDDER_NAME"], "河南兰考建设集团有限公司");
        assert_eq!(p["WIN_BIDDER_CODE"], bidder_code(1));
        assert_eq!(p["WIN_BID_PRICE"], "12345678.90");
        assert_eq!(p["NOTICE_TIME"], "20260323100000");
    })
    .await;
}

#[tokio::test]
async fn contract_expert_credit() {
    contract_record(3, "expert-credit", |p| {
        assert_eq!(p["EXPERT_NAME"], "王志强");
        assert_eq!(p["CREDIT_TYPE"], "BAD");
        assert_eq!(p["CREDIT_CONTENT"], "评标期间擅自离开评标区");
        assert_eq!(p["RECORD_TIME"], "20260318150000");
    })
    .await;
}

#[tokio::test]
async fn contract_gate_identity_events_from_the_gate_ingest() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    let now = w.clock.now();
    let gate = gates::register(
        &w.pool,
        &NewGate {
            name: "评标区东门".to_string(),
            location: String::new(),
            projects: vec![PROJECT.to_string()],
            token_id: None,
        },
        "admin",
        now,
    )
    .await
    .unwrap();
    let (name, id) = sample_experts()[0].clone();
    let badge = |allowed: bool, id: &str| {
        EventKind::Badge(BadgeEvent {
            id_number: id.to_string(),
            name: name.clone(),
            allowed,
            reason: (!allowed).then_some(witness_schemas::gate::DenyReason::NotDrawnToday),
            project_number: allowed.then(|| PROJECT.to_string()),
            decision_micros: 800,
            snapshot_base64: None,
        })
    };
    let stranger = id_number("41022519850505123");
    let batch = SyncBatch {
        log_id: "log-1".to_string(),
        events: vec![
            GateEvent {
                sequence: 1,
                at: "2026-03-18T09:01:00+08:00".to_string(),
                kind: EventKind::Online,
            },
            GateEvent {
                sequence: 2,
                at: "2026-03-18T09:02:00+08:00".to_string(),
                kind: badge(true, &id),
            },
            GateEvent {
                sequence: 3,
                at: "2026-03-18T09:03:00+08:00".to_string(),
                kind: badge(false, &stranger),
            },
        ],
        queue_depth: 0,
    };
    gates::ingest(&w.pool, gate.gate.token_id, &batch, now)
        .await
        .unwrap();
    // A resent batch stores nothing twice, so no second message either.
    gates::ingest(&w.pool, gate.gate.token_id, &batch, now)
        .await
        .unwrap();
    assert_eq!(gates::outbox_pending(&w.pool).await.unwrap(), 2);
    drain(&w).await;
    let got = standin.received_of("gate-identity");
    assert_eq!(got.len(), 2, "identity events only");
    assert_eq!(got[0].payload["GATE_NAME"], "评标区东门");
    assert_eq!(got[0].payload["EVENT_SEQUENCE"], 2);
    assert_eq!(got[0].payload["EVENT_TIME"], "20260318090200");
    assert_eq!(got[0].payload["ID_CARD_NO"], id);
    assert_eq!(got[0].payload["PASS_RESULT"], "1");
    assert_eq!(got[0].payload["TENDER_PROJECT_CODE"], PROJECT);
    assert_eq!(got[1].payload["ID_CARD_NO"], stranger);
    assert_eq!(got[1].payload["PASS_RESULT"], "0");
    assert_eq!(got[1].payload["DENY_REASON"], "not_drawn_today");
    assert!(standin.invalid().is_empty(), "{:?}", standin.invalid());
    assert_eq!(gates::outbox_pending(&w.pool).await.unwrap(), 0);
}

/// Our own bad data is caught before it leaves, put to the dead letters as our fault, and goes
/// out after the data is fixed and the message retried by hand.
#[tokio::test]
async fn our_schema_violation_is_a_dead_letter_before_sending() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    add_project(&w.pool, w.clock.now(), "LKGC-2026-0999", None).await;
    let id = integrations::add_record(
        &w.pool,
        "LKGC-2026-0999",
        &records().swap_remove(3),
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    drain(&w).await;
    assert_eq!(standin.requests(), 0, "nothing was sent");
    let message = integrations::outbox::message(&w.pool, id).await.unwrap();
    assert_eq!(message.state, MessageState::Dead);
    assert_eq!(message.fault.as_deref(), Some("ours"));
    let error = message.last_error.unwrap();
    assert!(error.starts_with("本系统数据错误"), "{error}");
    assert!(error.contains("统一交易标识码"), "{error}");
    integrations::set_trade_codes(
        &w.pool,
        "LKGC-2026-0999",
        &TradeCodes {
            unified_deal_code: "A41022520260318999".to_string(),
            bid_section_code: "001".to_string(),
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    integrations::outbox::retry(&w.pool, id, w.clock.now())
        .await
        .unwrap();
    drain(&w).await;
    let message = integrations::outbox::message(&w.pool, id).await.unwrap();
    assert_eq!(message.state, MessageState::Acked);
    assert_eq!(standin.received().len(), 1);
}

#[tokio::test]
async fn a_day_down_then_flaky_delivers_every_message_exactly_once() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    standin.down();
    // Two projects' worth of messages of every exchange that has a recording path here.
    add_project(
        &w.pool,
        w.clock.now(),
        "LKGC-2026-0319",
        Some(("A41022520260319001", "LKGC-2026-0319-001")),
    )
    .await;
    let mut ids = integrations::enqueue_draw_requests(
        &w.pool,
        w.clock.now().date(),
        None,
        Some(3),
        w.clock.now(),
    )
    .await
    .unwrap();
    for round in 0..5 {
        for number in [PROJECT, "LKGC-2026-0319"] {
            for record in records() {
                ids.push(
                    integrations::add_record(&w.pool, number, &record, "archivist", w.clock.now())
                        .await
                        .unwrap(),
                );
            }
        }
        let _ = round;
    }
    let total = ids.len();
    assert_eq!(total, 2 + 5 * 2 * 4);

    // A simulated day of outage, a pass every five minutes.
    for _ in 0..(24 * 12) {
        w.clock.advance(time::Duration::minutes(5));
        w.delivery.pass().await.unwrap();
    }
    let after_outage = states(&w.pool).await;
    assert!(
        after_outage.iter().all(|(_, _, s)| s == "pending"),
        "a day down must not dead-letter anything: {after_outage:?}"
    );
    let attempts: Vec<(String, i64)> =
        sqlx::query_as("SELECT exchange, attempts FROM outbox ORDER BY id")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    let mut seen = BTreeSet::new();
    for (exchange, n) in &attempts {
        let first = seen.insert(exchange.clone());
        let ordered = exchange == "candidate-publicity" || exchange == "result-announcement";
        if ordered && !first {
            // Held back behind the first undelivered message of its exchange: never tried.
            assert_eq!(*n, 0, "{exchange}");
        } else {
            assert!(*n >= 2 && *n < 72, "{exchange}: {n} attempts");
        }
    }

    // Back, but flaky: 500s, garbage, slow answers after storing, partial JSON after storing.
    standin.up().await.unwrap();
    standin.set_pattern(&[
        Fault::Error500,
        Fault::None,
        Fault::Garbage,
        Fault::Slow(Duration::from_millis(800)),
        Fault::None,
        Fault::Partial,
        Fault::None,
    ]);
    let mut passes = 0;
    loop {
        w.clock.advance(time::Duration::minutes(30));
        w.delivery.pass().await.unwrap();
        passes += 1;
        let waiting = states(&w.pool)
            .await
            .iter()
            .filter(|(_, _, s)| s != "acked")
            .count();
        if waiting == 0 {
            break;
        }
        assert!(passes < 400, "{waiting} messages still not delivered");
    }

    // Exactly once by idempotency key: the stand-in holds each of our keys once, nothing else,
    // and refused nothing; the resends after slow and partial answers were absorbed.
    let ours: BTreeSet<String> = states(&w.pool)
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    let theirs: Vec<String> = standin.received().into_iter().map(|r| r.key).collect();
    let theirs_set: BTreeSet<String> = theirs.iter().cloned().collect();
    assert_eq!(theirs.len(), theirs_set.len());
    assert_eq!(ours, theirs_set);
    assert!(standin.invalid().is_empty(), "{:?}", standin.invalid());
    assert!(standin.duplicates() > 0, "the flaky phase caused resends");
    // Ordered exchanges arrived in the order they were written.
    for exchange in ["candidate-publicity", "result-announcement"] {
        let keys: Vec<String> = standin
            .received_of(exchange)
            .into_iter()
            .map(|r| r.key)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by_key(|k| k.rsplit('-').next().unwrap().parse::<i64>().unwrap());
        assert_eq!(keys, sorted, "{exchange} out of order");
    }
    // The drawing results reached the gates' draws (3 experts per project).
    assert_eq!(
        gates::list_draws(&w.pool, PROJECT, false)
            .await
            .unwrap()
            .len(),
        3
    );

    let day = time::macros::date!(2026 - 03 - 18);
    let report =
        integrations::reconcile::generate(&w.pool, &w.data, EXPERT_LIBRARY, day, w.clock.now())
            .await
            .unwrap();
    assert_eq!(report.total, total as i64);
    assert_eq!(report.acked, total as i64);
    assert_eq!(report.failed, 0);
    assert_eq!(report.waiting, 0);
    assert!(report.all_delivered);
    let duplicates: i64 = report.lines.iter().map(|l| l.duplicate_replies).sum();
    // Duplicate acknowledgements we received; the stand-in also counts resends whose answer
    // was lost again (slow or partial), so it may count more, never fewer.
    assert!(duplicates > 0 && duplicates as u64 <= standin.duplicates());
    let by_deal: BTreeSet<_> = report
        .lines
        .iter()
        .map(|l| l.unified_deal_code.clone().unwrap())
        .collect();
    assert_eq!(by_deal.len(), 2);
    // Archived as a file in the data folder, the same report.
    let archived: Value =
        serde_json::from_slice(&std::fs::read(w.data.join(&report.file)).unwrap()).unwrap();
    assert_eq!(archived["acked"], total as i64);
    assert_eq!(archived["all_delivered"], true);
}

#[tokio::test]
async fn dead_letter_after_the_configured_attempts_with_the_last_error() {
    let standin = StandIn::start().await.unwrap();
    let mut w = world(&standin.url()).await;
    w.delivery = Delivery::new(
        w.pool.clone(),
        Arc::clone(&w.clock) as Arc<dyn Clock>,
        ExpertLibrary::adapter(ExpertLibraryConfig {
            max_attempts: 3,
            ..config(&standin.url())
        }),
        None,
    )
    .unwrap();
    standin.set_pattern(&[Fault::Error500]);
    let id = integrations::add_record(
        &w.pool,
        PROJECT,
        &records().swap_remove(3),
        "a",
        w.clock.now(),
    )
    .await
    .unwrap();
    for _ in 0..10 {
        w.clock.advance(time::Duration::hours(2));
        w.delivery.pass().await.unwrap();
    }
    let message = integrations::outbox::message(&w.pool, id).await.unwrap();
    assert_eq!(message.state, MessageState::Dead);
    assert_eq!(message.attempts, 3);
    assert_eq!(message.fault.as_deref(), Some("theirs"));
    assert!(
        message.last_error.as_deref().unwrap().contains("HTTP 500"),
        "{message:?}"
    );
    assert_eq!(standin.requests(), 3);
    // Manual retry once the peer is healthy again.
    standin.set_pattern(&[]);
    integrations::outbox::retry(&w.pool, id, w.clock.now())
        .await
        .unwrap();
    drain(&w).await;
    assert_eq!(
        integrations::outbox::message(&w.pool, id)
            .await
            .unwrap()
            .state,
        MessageState::Acked
    );
}

/// kill -9 of the daemon while it delivers: after the restart every message is delivered,
/// none is lost, and the peer saw at most the one in flight twice (absorbed by its key).
#[tokio::test]
async fn kill_9_while_delivering_loses_nothing_and_duplicates_at_most_the_one_in_flight() {
    let standin = StandIn::start().await.unwrap();
    standin.require_token("s3cret-token-for-tests");
    standin.down();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("expert-library.token");
    std::fs::write(&token_file, "s3cret-token-for-tests\n").unwrap();
    let extra = format!(
        "token_file = \"{}\"\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 1\ntimeout_seconds = 5\n",
        token_file.display()
    );
    let mut daemon = daemon_with_project(dir.path(), &standin, &extra, true).await;
    let client = daemon.client();
    let n = 60;
    for i in 0..n {
        let record = records().swap_remove(i % 4);
        let _: Value = client
            .send_json(
                reqwest::Method::POST,
                &format!("/api/projects/{PROJECT}/evaluation-records"),
                &record,
            )
            .await
            .unwrap();
    }
    // Slow answers so the kill lands mid-delivery.
    standin.set_pattern(&[Fault::Slow(Duration::from_millis(50))]);
    standin.up().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while standin.received().len() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "delivery did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill9();
    let at_kill = standin.received().len();
    assert!(at_kill < n, "the kill came after everything was delivered");
    daemon.restart().await.unwrap();
    let client = daemon.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status: Vec<TargetStatus> = client.get_json("/api/integrations").await.unwrap();
        if status[0].acked == n as i64 && status[0].queue_depth == 0 {
            assert_eq!(status[0].dead, 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(standin.received().len(), n);
    assert!(
        standin.duplicates() <= 1,
        "duplicates {}",
        standin.duplicates()
    );
    assert!(standin.invalid().is_empty(), "{:?}", standin.invalid());
    // The token is a secret: it reaches the peer but never the log.
    assert!(!daemon.log_text().contains("s3cret-token-for-tests"));
    // The CLI shows the same, and archives the day's reconciliation report.
    let (ok, out, err) = daemon.cli(&["integrations", "status", "--json"]);
    assert!(ok, "{err}");
    let status: Vec<TargetStatus> = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0].acked, n as i64);
    let today = witness_controller::clock::SystemClock
        .now()
        .date()
        .to_string();
    let (ok, out, err) = daemon.cli(&["integrations", "report", &today]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["acked"], n as i64);
    assert_eq!(report["all_delivered"], true);
    assert!(daemon.data.join(report["file"].as_str().unwrap()).exists());
}

/// After an outage the backlog does not wait out hour-long back-offs: the oldest message is
/// probed every `probe_seconds`, and once it gets through every waiting message is due.
#[tokio::test]
async fn recovery_after_an_outage_waits_for_the_probe_not_the_backoff() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    standin.down();
    for record in records() {
        integrations::add_record(&w.pool, PROJECT, &record, "a", w.clock.now())
            .await
            .unwrap();
    }
    for _ in 0..(6 * 12) {
        w.clock.advance(time::Duration::minutes(5));
        w.delivery.pass().await.unwrap();
    }
    // Go on until no message is due by its own back-off within the next ten minutes.
    let mut quiet = false;
    for _ in 0..100 {
        let (earliest,): (String,) = sqlx::query_as("SELECT MIN(next_attempt_at) FROM outbox")
            .fetch_one(&w.pool)
            .await
            .unwrap();
        let horizon = w.clock.now() + time::Duration::minutes(10);
        if witness_controller::clock::rfc3339(horizon) < earliest {
            quiet = true;
            break;
        }
        w.clock.advance(time::Duration::minutes(5));
        w.delivery.pass().await.unwrap();
    }
    assert!(quiet, "back-offs never all reached ten minutes");
    standin.up().await.unwrap();
    // One probe interval later the oldest message is tried and gets through.
    w.clock.advance(time::Duration::seconds(61));
    drain(&w).await;
    assert!(states(&w.pool).await.iter().all(|(_, _, s)| s == "acked"));
    assert_eq!(standin.received().len(), 4);
}

/// The integrations page, as an admin in a browser: a dead letter shows its reason (our data),
/// the trade codes are entered in the form, and the retry button sends the message.
#[tokio::test]
async fn the_integrations_page_shows_dead_letters_and_retries_them() {
    use witness_tests::browser::Browser;
    let standin = StandIn::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The trade codes are entered through the page's form below.
    let daemon = daemon_with_project(dir.path(), &standin, "", false).await;
    let client = daemon.client();
    let _: Value = client
        .send_json(
            reqwest::Method::POST,
            &format!("/api/projects/{PROJECT}/evaluation-records"),
            &records().swap_remove(3),
        )
        .await
        .unwrap();
    let _: Value = client
        .send_json(
            reqwest::Method::POST,
            "/api/users",
            &json!({"username": "duijie", "role": "admin", "password": "Duijie-2026-first"}),
        )
        .await
        .unwrap();

    let browser = Browser::launch().await.unwrap();
    browser
        .goto(&format!("{}/integrations.html", daemon.url))
        .await
        .unwrap();
    // Log in in the page (the one-time password must be changed first), then reload.
    let login = r#"(async () => {
        const post = (path, body, csrf) => fetch(path, {method: 'POST', body: JSON.stringify(body),
            headers: Object.assign({'Content-Type': 'application/json'}, csrf ? {'X-CSRF-Token': csrf} : {})});
        let r = await post('/api/login', {username: 'duijie', password: 'Duijie-2026-first'});
        const s = await r.json();
        r = await post('/api/account/password', {old_password: 'Duijie-2026-first', new_password: 'Duijie-2026-second'}, s.csrf_token);
        r = await post('/api/login', {username: 'duijie', password: 'Duijie-2026-second'});
        return r.status;
    })()"#;
    assert_eq!(browser.eval(login).await.unwrap(), json!(200));
    browser
        .goto(&format!("{}/integrations.html", daemon.url))
        .await
        .unwrap();
    let text = "document.getElementById('targets').textContent";
    browser
        .wait_for(
            &format!("{text}.includes('本系统数据错误') && {text}.includes('重发')"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(standin.requests(), 0);

    // Enter the missing codes through the form, then retry the dead letter.
    browser
        .eval(&format!(
            "document.getElementById('codes-deal').value = '{DEAL_CODE}'; \
             document.getElementById('codes-section').value = '{SECTION}';"
        ))
        .await
        .unwrap();
    browser
        .click("#codes-form button[type=submit]")
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('notice-text').textContent.includes('已保存')",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    browser
        .eval("[...document.querySelectorAll('#targets button')].find(b => b.textContent === '重发').click()")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while standin.received().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "not sent after the retry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.click("#refresh").await.unwrap();
    browser
        .wait_for(
            // The dead letter is gone from both tables once acknowledged.
            &format!("!{text}.includes('本系统数据错误')"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        standin.received()[0].payload["UNIFIED_DEAL_CODE"],
        DEAL_CODE
    );
    assert!(standin.invalid().is_empty());
}

/// A real one-click backup: when the project is recorded as archived, the references to its
/// archived videos (with the SHA-256 computed while collecting) go to the expert library.
#[tokio::test]
async fn archiving_a_project_sends_its_video_references() {
    let standin = StandIn::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_project(dir.path(), &standin, "", true).await;
    let video: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let local = dir.path().join("a.mp4");
    std::fs::write(&local, &video).unwrap();
    let http = reqwest::Client::new();
    for (path, body) in [
        ("评标监控/评标室1.mp4", video.clone()),
        ("评标报告/报告.txt", b"report".to_vec()),
    ] {
        let response = http
            .put(format!(
                "{}/api/projects/{PROJECT}/files/{}",
                daemon.url,
                witness_controller::cli::encode(path).replace("%2F", "/")
            ))
            .bearer_auth(daemon.admin_token().unwrap())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let (ok, _, err) = daemon.cli(&["backup", "--project", PROJECT, "--wait"]);
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while standin.received_of("evaluation-video").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no video references sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sha = std::process::Command::new("sha256sum")
        .arg(&local)
        .output()
        .unwrap();
    let sha = String::from_utf8(sha.stdout).unwrap();
    let list = &standin.received_of("evaluation-video")[0].payload["VIDEO_LIST"];
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["FILE_PATH"], "评标监控/评标室1.mp4");
    assert_eq!(list[0]["FILE_SIZE"], 300_000);
    assert_eq!(list[0]["SHA256"], sha.split_whitespace().next().unwrap());
}

/// A schema violation quotes the offending value; when that is an ID number, the stored error
/// (shown on the page) has it masked.
#[tokio::test]
async fn errors_about_id_numbers_are_stored_masked() {
    let standin = StandIn::start().await.unwrap();
    let w = world(&standin.url()).await;
    let mut tx = w.pool.begin().await.unwrap();
    let id = expert_library::enqueue_gate_identity(
        &mut tx,
        1,
        json!({"gate": "东门", "sequence": 1, "at": "2026-03-18T09:01:00+08:00",
               "id_number": "11010519491231002x", "name": "张三", "allowed": true}),
        w.clock.now(),
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    drain(&w).await;
    let message = integrations::outbox::message(&w.pool, id).await.unwrap();
    assert_eq!(message.state, MessageState::Dead);
    let error = message.last_error.unwrap();
    assert!(error.contains("ID_CARD_NO"), "{error}");
    assert!(!error.contains("11010519491231002x"), "{error}");
    assert!(error.contains("110105********002x"), "{error}");
    assert_eq!(standin.requests(), 0);
}
