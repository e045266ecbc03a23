//! The online supervision platform (在线监管平台) and the finance bureau (财政局) against
//! schema-validating stand-ins on loopback: a contract test per data set and per stage that
//! the catalog feeds (valid by schema, right content for the sample projects), the data sets
//! without a source refused as not supported, a schema violation in our own data caught
//! before sending and shown as our fault, the target down and then flaky (every message
//! delivered exactly once by idempotency key), and the daemon configured with both targets.
//!
//! The in-process tests drive the real delivery workers (`Delivery::pass`) over a real SQLite
//! catalog with a simulated clock.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::macros::datetime;
use witness_controller::clock::{Clock, SimulatedClock};
use witness_controller::error::ErrorKind;
use witness_controller::integrations::finance::FinanceBureau;
use witness_controller::integrations::supervision::SupervisionPlatform;
use witness_controller::integrations::{self, extract, outbox, sms, Delivery};
use witness_controller::{catalog, db, gates};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::gate::NewDraw;
use witness_schemas::integration::{
    Candidate, DataSet, Enqueued, EvaluationRecord, ExtractionOrder, HttpTargetConfig,
    MessageState, NewBidder, TargetStatus, TradeCodes, FINANCE_BUREAU, SUPERVISION_PLATFORM,
};
use witness_tests::daemon::Daemon;
use witness_tests::standin::{sample_experts, Fault, StandIn};

const PLATFORM: &str = "HNLK001";
/// Opening of every sample project; the clock starts at 08:00 that day.
const OPENING: &str = "2026-03-18T09:30:00+08:00";

/// One sample project per category: (number, name, category, 统一交易标识码, 标段编号).
const PROJECTS: [(&str, &str, Category, &str, &str); 5] = [
    (
        "LKGC-2026-0318",
        "兰考县城区道路改造工程施工",
        Category::Construction,
        "A41022520260318001",
        "LKGC-2026-0318-001",
    ),
    (
        "LKCG-2026-0042",
        "兰考县第一高级中学教学设备采购",
        Category::Procurement,
        "B41022520260318002",
        "LKCG-2026-0042-01",
    ),
    (
        "LKTD-2026-0007",
        "兰考县城东片区 2026-07 号地块国有建设用地使用权挂牌出让",
        Category::Land,
        "C41022520260318003",
        "LKTD-2026-0007",
    ),
    (
        "LKKY-2026-0002",
        "兰考县某建筑用砂矿采矿权拍卖出让",
        Category::Mining,
        "D41022520260318004",
        "LKKY-2026-0002",
    ),
    (
        "LKCQ-2026-0011",
        "县属国有企业报废车辆等实物资产转让",
        Category::Property,
        "E41022520260318005",
        "LKCQ-2026-0011",
    ),
];
const CONSTRUCTION: usize = 0;
const PROCUREMENT: usize = 1;

fn transport(url: &str, platform_code: &str) -> HttpTargetConfig {
    HttpTargetConfig {
        base_url: url.to_string(),
        platform_code: platform_code.to_string(),
        token_file: None,
        max_attempts: 72,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        probe_seconds: 60,
        timeout_seconds: 0.5,
    }
}

struct World {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    pool: SqlitePool,
    clock: Arc<SimulatedClock>,
    supervision: Arc<StandIn>,
    finance: Arc<StandIn>,
    supervision_delivery: Delivery,
    finance_delivery: Delivery,
}

/// The five sample projects without trade codes, both stand-ins, and a worker for each.
async fn world(platform_code: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let pool = db::open(&data).await.unwrap();
    let clock = Arc::new(SimulatedClock::new(datetime!(2026-03-18 08:00 +8)));
    for (number, name, category, ..) in PROJECTS {
        catalog::create_project(
            &pool,
            &NewProject {
                number: number.to_string(),
                name: name.to_string(),
                category,
                opening: OPENING.to_string(),
            },
            clock.now(),
        )
        .await
        .unwrap();
    }
    // As `integrations::configure` does at start for the configured targets.
    extract::configure_targets(&pool, &[SUPERVISION_PLATFORM, FINANCE_BUREAU], clock.now())
        .await
        .unwrap();
    let supervision = StandIn::start_for(SUPERVISION_PLATFORM).await.unwrap();
    let finance = StandIn::start_for(FINANCE_BUREAU).await.unwrap();
    let supervision_delivery = Delivery::new(
        pool.clone(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        SupervisionPlatform::adapter(transport(&supervision.url(), platform_code)),
        None,
    )
    .unwrap();
    let finance_delivery = Delivery::new(
        pool.clone(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        FinanceBureau::adapter(transport(&finance.url(), platform_code)),
        None,
    )
    .unwrap();
    World {
        _dir: dir,
        data,
        pool,
        clock,
        supervision,
        finance,
        supervision_delivery,
        finance_delivery,
    }
}

async fn set_codes(w: &World, index: usize) {
    let (number, _, _, deal, section) = PROJECTS[index];
    integrations::set_trade_codes(
        &w.pool,
        number,
        &TradeCodes {
            unified_deal_code: deal.to_string(),
            bid_section_code: section.to_string(),
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
}

async fn drain(delivery: &Delivery) {
    for _ in 0..100 {
        if delivery.pass().await.unwrap().attempted == 0 {
            return;
        }
    }
    panic!("the queue did not drain");
}

async fn drain_both(w: &World) {
    drain(&w.supervision_delivery).await;
    drain(&w.finance_delivery).await;
}

fn bidder_code(n: u32) -> String {
    format!("91410225MA4{n:07}")
}

fn publicity() -> EvaluationRecord {
    EvaluationRecord::CandidatePublicity {
        publicity_start: "2026-03-19T09:00:00+08:00".to_string(),
        publicity_end: "2026-03-22T09:00:00+08:00".to_string(),
        candidates: vec![
            Candidate {
                rank: 1,
                bidder_name: "河南兰考教育装备有限公司".to_string(),
                bidder_code: bidder_code(1),
                bid_price: "1286000.00".to_string(),
            },
            Candidate {
                rank: 2,
                bidder_name: "开封市科教仪器有限公司".to_string(),
                bidder_code: bidder_code(2),
                bid_price: "1299500.5".to_string(),
            },
        ],
    }
}

fn announcement() -> EvaluationRecord {
    EvaluationRecord::ResultAnnouncement {
        winner_name: "河南兰考教育装备有限公司".to_string(),
        winner_code: bidder_code(1),
        win_price: "1286000.00".to_string(),
        notice_time: "2026-03-23T10:00:00+08:00".to_string(),
    }
}

fn credit() -> EvaluationRecord {
    let (name, id) = sample_experts()[2].clone();
    EvaluationRecord::ExpertCredit {
        expert_name: name,
        id_number: id,
        credit_type: "bad".to_string(),
        content: "评标中未按评标办法打分，已责令改正".to_string(),
        record_time: "2026-03-18T16:20:00+08:00".to_string(),
    }
}

/// The fields every data set and stage identifies its project by.
fn assert_identified(payload: &Value, index: usize, code_field: &str, name_field: &str) {
    let (number, name, _, deal, section) = PROJECTS[index];
    assert_eq!(payload["PLATFORM_CODE"], PLATFORM);
    assert_eq!(payload[code_field], number);
    assert_eq!(payload[name_field], name);
    assert_eq!(payload["UNIFIED_DEAL_CODE"], deal);
    assert_eq!(payload["BID_SECTION_CODE"], section);
    assert_eq!(payload["DATA_TIMESTAMP"], "20260318080000");
}

#[tokio::test]
async fn contract_project_data_set_of_each_category() {
    let w = world(PLATFORM).await;
    for index in 0..PROJECTS.len() {
        set_codes(&w, index).await;
    }
    // Recording the same codes again is no change: nothing more is queued.
    set_codes(&w, CONSTRUCTION).await;
    drain_both(&w).await;
    assert!(
        w.supervision.invalid().is_empty(),
        "{:?}",
        w.supervision.invalid()
    );
    let expected = [
        ("construction-project", "BID_OPEN_TIME"),
        ("procurement-project", "BID_OPEN_TIME"),
        ("land-use-right", "TRADE_TIME"),
        ("mining-right", "TRADE_TIME"),
        ("state-property", "TRADE_TIME"),
    ];
    assert_eq!(w.supervision.received().len(), 5);
    for (index, (exchange, time_field)) in expected.into_iter().enumerate() {
        let received = w.supervision.received_of(exchange);
        assert_eq!(received.len(), 1, "{exchange}");
        let payload = &received[0].payload;
        assert_identified(payload, index, "TENDER_PROJECT_CODE", "TENDER_PROJECT_NAME");
        assert_eq!(payload[time_field], "20260318093000", "{exchange}");
    }
    // Only the procurement project is the finance bureau's.
    let finance = w.finance.received();
    assert_eq!(finance.len(), 1);
    assert_eq!(finance[0].exchange, "project");
    assert_identified(
        &finance[0].payload,
        PROCUREMENT,
        "PURCHASE_PROJECT_CODE",
        "PURCHASE_PROJECT_NAME",
    );
    assert_eq!(finance[0].payload["BID_OPEN_TIME"], "20260318093000");
    // Changed codes are reported again.
    w.clock.advance(time::Duration::minutes(5));
    integrations::set_trade_codes(
        &w.pool,
        PROJECTS[CONSTRUCTION].0,
        &TradeCodes {
            unified_deal_code: "A41022520260318099".to_string(),
            bid_section_code: "LKGC-2026-0318-002".to_string(),
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    drain_both(&w).await;
    let again = w.supervision.received_of("construction-project");
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].payload["UNIFIED_DEAL_CODE"], "A41022520260318099");
}

#[tokio::test]
async fn contract_credit() {
    let w = world(PLATFORM).await;
    set_codes(&w, CONSTRUCTION).await;
    integrations::add_record(
        &w.pool,
        PROJECTS[CONSTRUCTION].0,
        &credit(),
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    drain_both(&w).await;
    assert!(
        w.supervision.invalid().is_empty(),
        "{:?}",
        w.supervision.invalid()
    );
    let received = w.supervision.received_of("credit");
    assert_eq!(received.len(), 1);
    let payload = &received[0].payload;
    let (name, id) = sample_experts()[2].clone();
    assert_identified(
        payload,
        CONSTRUCTION,
        "TENDER_PROJECT_CODE",
        "TENDER_PROJECT_NAME",
    );
    assert_eq!(payload["SUBJECT_TYPE"], "EXPERT");
    assert_eq!(payload["SUBJECT_NAME"], name);
    assert_eq!(payload["ID_CARD_NO"], id);
    assert_eq!(payload["CREDIT_TYPE"], "BAD");
    assert_eq!(
        payload["CREDIT_CONTENT"],
        "评标中未按评标办法打分，已责令改正"
    );
    assert_eq!(payload["RECORD_TIME"], "20260318162000");
    // A construction project's credit record is nothing for the finance bureau.
    assert!(w.finance.received().is_empty());
}

/// Registers the two bidders of the procurement project (one without a phone).
async fn register_bidders(w: &World) {
    for (name, phone) in [
        ("河南兰考教育装备有限公司", Some("13800138000")),
        ("开封市科教仪器有限公司", None),
    ] {
        sms::add_bidder(
            &w.pool,
            PROJECTS[PROCUREMENT].0,
            &NewBidder {
                name: name.to_string(),
                phone: phone.map(str::to_string),
            },
            w.clock.now(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn contract_opening_evaluation() {
    let w = world(PLATFORM).await;
    let number = PROJECTS[PROCUREMENT].0;
    set_codes(&w, PROCUREMENT).await;
    register_bidders(&w).await;
    for (name, id) in sample_experts().into_iter().take(3) {
        gates::add_draw(
            &w.pool,
            number,
            &NewDraw {
                id_number: id,
                name,
                window_start: "2026-03-18T09:00:00+08:00".to_string(),
                window_end: "2026-03-18T18:00:00+08:00".to_string(),
            },
            "archivist",
            w.clock.now(),
        )
        .await
        .unwrap();
    }
    integrations::add_record(&w.pool, number, &publicity(), "archivist", w.clock.now())
        .await
        .unwrap();
    drain_both(&w).await;
    assert!(
        w.supervision.invalid().is_empty(),
        "{:?}",
        w.supervision.invalid()
    );
    let received = w.supervision.received_of("opening-evaluation");
    assert_eq!(received.len(), 1);
    let payload = &received[0].payload;
    assert_identified(
        payload,
        PROCUREMENT,
        "TENDER_PROJECT_CODE",
        "TENDER_PROJECT_NAME",
    );
    assert_eq!(payload["BID_OPEN_TIME"], "20260318093000");
    assert_eq!(
        payload["BIDDER_LIST"],
        json!([{"BIDDER_NAME": "河南兰考教育装备有限公司"}, {"BIDDER_NAME": "开封市科教仪器有限公司"}])
    );
    let experts: Vec<Value> = sample_experts()
        .into_iter()
        .take(3)
        .map(|(name, _)| json!({ "EXPERT_NAME": name }))
        .collect();
    assert_eq!(payload["EXPERT_LIST"], Value::Array(experts));
    // Names only: no ID number of an expert goes to the supervision platform here.
    assert!(!payload.to_string().contains(&sample_experts()[0].1));
    assert_eq!(payload["CANDIDATE_LIST"][0]["BIDDER_CODE"], bidder_code(1));
    assert_eq!(payload["CANDIDATE_LIST"][1]["BID_PRICE"], "1299500.5");
    assert_eq!(payload["PUBLICITY_START_TIME"], "20260319090000");
    assert_eq!(payload["PUBLICITY_END_TIME"], "20260322090000");
}

#[tokio::test]
async fn contract_finance_stages_in_order() {
    let w = world(PLATFORM).await;
    let number = PROJECTS[PROCUREMENT].0;
    set_codes(&w, PROCUREMENT).await;
    register_bidders(&w).await;
    // Before the opening the duty queues nothing; after it, the opening once.
    assert!(extract::enqueue_openings(&w.pool, w.clock.now())
        .await
        .unwrap()
        .is_empty());
    w.clock.advance(time::Duration::hours(2));
    assert_eq!(
        extract::enqueue_openings(&w.pool, w.clock.now())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(extract::enqueue_openings(&w.pool, w.clock.now())
        .await
        .unwrap()
        .is_empty());
    // A bidder registered after the opening is a bids stage, not in the opening's list.
    sms::add_bidder(
        &w.pool,
        number,
        &NewBidder {
            name: "商丘市迟到供应商有限公司".to_string(),
            phone: None,
        },
        w.clock.now(),
    )
    .await
    .unwrap();
    integrations::add_record(&w.pool, number, &publicity(), "archivist", w.clock.now())
        .await
        .unwrap();
    integrations::add_record(&w.pool, number, &announcement(), "archivist", w.clock.now())
        .await
        .unwrap();
    drain_both(&w).await;
    assert!(w.finance.invalid().is_empty(), "{:?}", w.finance.invalid());
    let exchanges: Vec<String> = w
        .finance
        .received()
        .into_iter()
        .map(|r| r.exchange)
        .collect();
    assert_eq!(
        exchanges,
        [
            "project",
            "bids",
            "bids",
            "opening",
            "bids",
            "evaluation",
            "award"
        ]
    );
    for r in w.finance.received() {
        assert_eq!(r.payload["PURCHASE_PROJECT_CODE"], number);
        assert_eq!(r.payload["UNIFIED_DEAL_CODE"], PROJECTS[PROCUREMENT].3);
    }
    let bids = w.finance.received_of("bids");
    assert_eq!(bids[0].payload["SUPPLIER_NAME"], "河南兰考教育装备有限公司");
    assert_eq!(bids[0].payload["REGISTER_TIME"], "20260318080000");
    assert_eq!(bids[2].payload["REGISTER_TIME"], "20260318100000");
    let opening = &w.finance.received_of("opening")[0].payload;
    assert_eq!(opening["BID_OPEN_TIME"], "20260318093000");
    assert_eq!(opening["SUPPLIER_COUNT"], 2);
    assert_eq!(
        opening["SUPPLIER_LIST"],
        json!([{"SUPPLIER_NAME": "河南兰考教育装备有限公司"}, {"SUPPLIER_NAME": "开封市科教仪器有限公司"}])
    );
    let evaluation = &w.finance.received_of("evaluation")[0].payload;
    assert_eq!(
        evaluation["CANDIDATE_LIST"][0]["SUPPLIER_NAME"],
        "河南兰考教育装备有限公司"
    );
    assert_eq!(evaluation["CANDIDATE_LIST"][0]["RANK"], 1);
    assert_eq!(evaluation["PUBLICITY_END_TIME"], "20260322090000");
    let award = &w.finance.received_of("award")[0].payload;
    assert_eq!(award["WIN_SUPPLIER_NAME"], "河南兰考教育装备有限公司");
    assert_eq!(award["WIN_SUPPLIER_CODE"], bidder_code(1));
    assert_eq!(award["WIN_PRICE"], "1286000.00");
    assert_eq!(award["NOTICE_TIME"], "20260323100000");
}

#[tokio::test]
async fn a_failed_stage_holds_back_the_later_stages_of_its_project_only() {
    let w = world(PLATFORM).await;
    set_codes(&w, PROCUREMENT).await;
    w.finance.push_faults(&[Fault::Error500]);
    register_bidders(&w).await;
    drain(&w.finance_delivery).await;
    // The project stage failed once; its bids waited behind it rather than overtake it.
    assert!(w.finance.received().is_empty());
    w.clock.advance(time::Duration::minutes(1));
    drain(&w.finance_delivery).await;
    let exchanges: Vec<String> = w
        .finance
        .received()
        .into_iter()
        .map(|r| r.exchange)
        .collect();
    assert_eq!(exchanges, ["project", "bids", "bids"]);
}

#[tokio::test]
async fn data_sets_without_a_source_are_refused_as_not_supported() {
    let w = world(PLATFORM).await;
    let number = PROJECTS[PROCUREMENT].0;
    for (target, data_set, label) in [
        (SUPERVISION_PLATFORM, "subject", "交易主体"),
        (SUPERVISION_PLATFORM, "approval", "审批核准"),
        (FINANCE_BUREAU, "tender", "采购公告"),
    ] {
        let e = extract::extract(&w.pool, target, data_set, number, w.clock.now())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
        assert!(
            e.message.contains("尚不支持")
                && e.message.contains(data_set)
                && e.message.contains(label),
            "{e}"
        );
    }
    let e = extract::extract(
        &w.pool,
        SUPERVISION_PLATFORM,
        "weather",
        number,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    // A data set of another category is refused, not sent with the wrong shape.
    let e = extract::extract(
        &w.pool,
        SUPERVISION_PLATFORM,
        "mining-right",
        number,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
    let e = extract::extract(
        &w.pool,
        FINANCE_BUREAU,
        "project",
        PROJECTS[CONSTRUCTION].0,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(count.0, 0, "a refused extraction queues nothing");
    // A supported one, extracted again by hand, is a new message (a new key).
    set_codes(&w, PROCUREMENT).await;
    let ids = extract::extract(
        &w.pool,
        SUPERVISION_PLATFORM,
        "procurement-project",
        number,
        w.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(ids.len(), 1);
    drain_both(&w).await;
    assert_eq!(w.supervision.received_of("procurement-project").len(), 2);
}

#[tokio::test]
async fn our_schema_violation_is_caught_before_sending_and_shown_as_ours() {
    // A platform code with hyphens breaks PLATFORM_CODE's pattern in every schema.
    let w = world("HN-LK-001").await;
    set_codes(&w, CONSTRUCTION).await;
    drain_both(&w).await;
    assert_eq!(w.supervision.requests(), 0, "nothing was sent");
    let dead = outbox::messages(&w.pool, SUPERVISION_PLATFORM, Some(MessageState::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].fault.as_deref(), Some("ours"));
    let error = dead[0].last_error.clone().unwrap();
    assert!(error.starts_with("本系统数据错误"), "{error}");
    assert!(
        error.contains("PLATFORM_CODE") && error.contains("construction-project"),
        "{error}"
    );
    // The integrations page shows it among the target's failures.
    let config = witness_schemas::integration::IntegrationsConfig {
        supervision_platform: Some(transport(&w.supervision.url(), "HN-LK-001")),
        ..Default::default()
    };
    let status: Vec<TargetStatus> = integrations::status(&w.pool, &config).await.unwrap();
    let target = status
        .iter()
        .find(|t| t.target == SUPERVISION_PLATFORM)
        .unwrap();
    assert!(target.configured);
    assert_eq!(target.dead, 1);
    assert_eq!(target.failures[0].fault.as_deref(), Some("ours"));
    // Fixed configuration, manual retry: delivered.
    let fixed = Delivery::new(
        w.pool.clone(),
        Arc::clone(&w.clock) as Arc<dyn Clock>,
        SupervisionPlatform::adapter(transport(&w.supervision.url(), PLATFORM)),
        None,
    )
    .unwrap();
    outbox::retry(&w.pool, dead[0].id, w.clock.now())
        .await
        .unwrap();
    drain(&fixed).await;
    assert_eq!(
        outbox::message(&w.pool, dead[0].id).await.unwrap().state,
        MessageState::Acked
    );
    assert_eq!(w.supervision.received().len(), 1);
}

#[tokio::test]
async fn down_then_flaky_every_message_delivered_exactly_once() {
    let w = world(PLATFORM).await;
    w.supervision.down();
    w.finance.down();
    for index in 0..PROJECTS.len() {
        set_codes(&w, index).await;
    }
    register_bidders(&w).await;
    for index in [CONSTRUCTION, PROCUREMENT] {
        integrations::add_record(
            &w.pool,
            PROJECTS[index].0,
            &credit(),
            "archivist",
            w.clock.now(),
        )
        .await
        .unwrap();
        integrations::add_record(
            &w.pool,
            PROJECTS[index].0,
            &publicity(),
            "archivist",
            w.clock.now(),
        )
        .await
        .unwrap();
    }
    integrations::add_record(
        &w.pool,
        PROJECTS[PROCUREMENT].0,
        &announcement(),
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    // Six hours down: every pass fails, nothing is lost or given up.
    for _ in 0..36 {
        w.clock.advance(time::Duration::minutes(10));
        w.supervision_delivery.pass().await.unwrap();
        w.finance_delivery.pass().await.unwrap();
    }
    let waiting: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox WHERE target IN (?, ?) AND state IN ('pending', 'sent')",
    )
    .bind(SUPERVISION_PLATFORM)
    .bind(FINANCE_BUREAU)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    // 5 project data sets + 2 credit + 2 opening/evaluation; finance: project, 2 bids,
    // evaluation, award.
    assert_eq!(waiting.0, 14);
    // Back, but flaky: errors, answers lost after the request was stored, garbage.
    let flaky = [
        Fault::Error500,
        Fault::Partial,
        Fault::None,
        Fault::Slow(std::time::Duration::from_secs(2)),
        Fault::Garbage,
        Fault::None,
    ];
    for standin in [&w.supervision, &w.finance] {
        standin.up().await.unwrap();
        standin.set_pattern(&flaky);
    }
    for _ in 0..200 {
        w.clock.advance(time::Duration::minutes(10));
        let a = w.supervision_delivery.pass().await.unwrap();
        let b = w.finance_delivery.pass().await.unwrap();
        let left: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM outbox WHERE target IN (?, ?) AND state != 'acked'",
        )
        .bind(SUPERVISION_PLATFORM)
        .bind(FINANCE_BUREAU)
        .fetch_one(&w.pool)
        .await
        .unwrap();
        if left.0 == 0 && a.attempted + b.attempted == 0 {
            break;
        }
    }
    for (target, standin) in [
        (SUPERVISION_PLATFORM, &w.supervision),
        (FINANCE_BUREAU, &w.finance),
    ] {
        let messages = outbox::messages(&w.pool, target, None, 100).await.unwrap();
        assert!(
            messages.iter().all(|m| m.state == MessageState::Acked),
            "{target}: {messages:?}"
        );
        let ours: BTreeSet<String> = messages.iter().map(|m| m.idempotency_key.clone()).collect();
        let theirs: Vec<String> = standin.received().into_iter().map(|r| r.key).collect();
        // Every message stored once by its key, none missing, none extra.
        assert_eq!(theirs.len(), ours.len(), "{target}");
        assert_eq!(
            theirs.into_iter().collect::<BTreeSet<_>>(),
            ours,
            "{target}"
        );
        assert!(
            standin.invalid().is_empty(),
            "{target}: {:?}",
            standin.invalid()
        );
        let report = integrations::reconcile::generate(
            &w.pool,
            &w.data,
            target,
            time::macros::date!(2026 - 03 - 18),
            w.clock.now(),
        )
        .await
        .unwrap();
        assert!(report.all_delivered, "{target}: {report:?}");
        // A reply cut in half after the request was stored made a resend that the stand-in
        // absorbed by its key; the report counts such answers.
        assert!(standin.duplicates() > 0, "{target}");
        assert!(
            report
                .lines
                .iter()
                .map(|l| l.duplicate_replies)
                .sum::<i64>()
                > 0
        );
        assert_eq!(report.total as usize, messages.len());
        assert_eq!(report.failed, 0);
    }
    // The finance stages still arrived in order despite the faults.
    let exchanges: Vec<String> = w
        .finance
        .received()
        .into_iter()
        .map(|r| r.exchange)
        .collect();
    assert_eq!(
        exchanges,
        ["project", "bids", "bids", "evaluation", "award"]
    );
}

/// A daemon delivering to both stand-ins (the supervision platform with `supervision_code` as
/// its platform code) holding the procurement project with its trade codes.
async fn daemon_with_procurement(
    config_path: &std::path::Path,
    supervision: &StandIn,
    finance: &StandIn,
    supervision_code: &str,
) -> Daemon {
    std::fs::write(
        config_path,
        format!(
            "[integrations.supervision_platform]\nbase_url = \"{}\"\nplatform_code = \"{supervision_code}\"\n\n\
             [integrations.finance_bureau]\nbase_url = \"{}\"\nplatform_code = \"{PLATFORM}\"\n",
            supervision.url(),
            finance.url()
        ),
    )
    .unwrap();
    let data = config_path.with_file_name("data");
    let daemon = Daemon::start(&data, Some(config_path)).await.unwrap();
    let client = daemon.client();
    let (number, name, category, deal, section) = PROJECTS[PROCUREMENT];
    client
        .add_project(&NewProject {
            number: number.to_string(),
            name: name.to_string(),
            category,
            opening: OPENING.to_string(),
        })
        .await
        .unwrap();
    client.put_trade_codes(number, deal, section).await.unwrap();
    daemon
}

/// The daemon with both targets configured: trade codes recorded through the API reach both
/// stand-ins, the page data lists both targets, and a data set without a source answers 409.
#[tokio::test]
async fn daemon_delivers_to_both_targets_and_lists_them() {
    let supervision = StandIn::start_for(SUPERVISION_PLATFORM).await.unwrap();
    let finance = StandIn::start_for(FINANCE_BUREAU).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("witness.toml");
    let daemon = daemon_with_procurement(&config_path, &supervision, &finance, PLATFORM).await;
    let client = daemon.client();
    let (number, ..) = PROJECTS[PROCUREMENT];
    // Acknowledged as the page shows it (the stand-in stores a message before the daemon
    // records its acknowledgement, so ask the daemon).
    let mut acked = Vec::new();
    for _ in 0..100 {
        let targets: Vec<TargetStatus> = client.get_json("/api/integrations").await.unwrap();
        acked = [SUPERVISION_PLATFORM, FINANCE_BUREAU]
            .iter()
            .map(|name| {
                let t = targets.iter().find(|t| t.target == *name).unwrap();
                assert!(t.configured, "{name}");
                t.acked
            })
            .collect();
        if acked == [1, 1] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(acked, [1, 1], "both targets acknowledged the project");
    assert_eq!(supervision.received().len(), 1);
    assert_eq!(supervision.received()[0].exchange, "procurement-project");
    assert_eq!(finance.received().len(), 1);
    assert_eq!(finance.received()[0].exchange, "project");
    let sets: Vec<DataSet> = client
        .get_json("/api/integrations/supervision_platform/data-sets")
        .await
        .unwrap();
    assert_eq!(sets.len(), 9);
    assert!(sets
        .iter()
        .any(|s| s.name == "subject" && s.source.is_none()));
    let refused = client
        .send_json::<_, Enqueued>(
            reqwest::Method::POST,
            "/api/integrations/finance_bureau/extractions",
            &ExtractionOrder {
                data_set: "tender".to_string(),
                project_number: number.to_string(),
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("尚不支持") && refused.contains("409"),
        "{refused}"
    );
    let again: Enqueued = client
        .send_json(
            reqwest::Method::POST,
            "/api/integrations/finance_bureau/extractions",
            &ExtractionOrder {
                data_set: "project".to_string(),
                project_number: number.to_string(),
            },
        )
        .await
        .unwrap();
    assert_eq!(again.message_ids.len(), 1);
    // The same through the CLI.
    let (ok, out, err) = daemon.cli(&["integrations", "data-sets", "--target", "finance_bureau"]);
    assert!(ok, "{err}");
    assert!(out.contains("tender") && out.contains("尚不支持"), "{out}");
    let (ok, _, err) = daemon.cli(&[
        "integrations",
        "extract",
        "--target",
        "finance_bureau",
        "--data-set",
        "tender",
        "--project",
        number,
    ]);
    assert!(!ok && err.contains("尚不支持"), "{err}");
    let (ok, out, err) = daemon.cli(&[
        "integrations",
        "extract",
        "--target",
        "supervision_platform",
        "--data-set",
        "procurement-project",
        "--project",
        number,
    ]);
    assert!(ok && out.contains("已排队消息"), "{out} {err}");
}

#[tokio::test]
async fn a_target_not_configured_gets_no_messages() {
    let w = world(PLATFORM).await;
    extract::configure_targets(&w.pool, &[SUPERVISION_PLATFORM], w.clock.now())
        .await
        .unwrap();
    set_codes(&w, PROCUREMENT).await;
    register_bidders(&w).await;
    integrations::add_record(
        &w.pool,
        PROJECTS[PROCUREMENT].0,
        &announcement(),
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    w.clock.advance(time::Duration::hours(2));
    assert!(extract::enqueue_openings(&w.pool, w.clock.now())
        .await
        .unwrap()
        .is_empty());
    let finance: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE target = ?")
        .bind(FINANCE_BUREAU)
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(finance.0, 0);
    let e = extract::extract(
        &w.pool,
        FINANCE_BUREAU,
        "project",
        PROJECTS[PROCUREMENT].0,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
    assert!(e.message.contains("未配置"), "{e}");
    // The configured one still gets its data set.
    drain(&w.supervision_delivery).await;
    assert_eq!(w.supervision.received_of("procurement-project").len(), 1);
}

/// The 对接 page shows both targets: a schema violation of ours with its reason, the data sets
/// with their sources and the unsupported ones, and pushes a project's stage again from its form.
#[tokio::test]
async fn the_page_shows_both_targets_and_pushes_a_data_set_again() {
    use witness_tests::browser::Browser;
    let supervision = StandIn::start_for(SUPERVISION_PLATFORM).await.unwrap();
    let finance = StandIn::start_for(FINANCE_BUREAU).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("witness.toml");
    // The supervision platform's code breaks its schema: every data set is our fault.
    let daemon = daemon_with_procurement(&config_path, &supervision, &finance, "HN-LK-001").await;
    let (number, ..) = PROJECTS[PROCUREMENT];

    let browser = Browser::launch().await.unwrap();
    let page = format!("{}/integrations.html", daemon.url);
    browser
        .open_as_first_admin(
            &page,
            &daemon.admin_password().unwrap(),
            "Jianguan-2026-second",
        )
        .await
        .unwrap();
    let card = |title: &str| {
        format!(
            "([...document.querySelectorAll('#targets section')].find(s => s.querySelector('h2').textContent.startsWith('{title}')) || {{textContent: ''}})"
        )
    };
    let supervision_card = card("在线监管平台");
    let finance_card = card("财政局");
    // Refreshed until the workers have dealt with both messages (figures read value, label).
    let mut shown = false;
    for _ in 0..40 {
        browser.click("#refresh").await.unwrap();
        let ready = browser
            .eval(&format!(
                "{supervision_card}.textContent.includes('本系统数据错误') && {supervision_card}.textContent.includes('PLATFORM_CODE') \
                 && {finance_card}.textContent.includes('1已确认')"
            ))
            .await
            .unwrap();
        if ready == json!(true) {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        shown,
        "the page shows our fault and the finance bureau's success"
    );
    assert_eq!(supervision.requests(), 0, "our bad data was not sent");
    let text = |card: &str| format!("{card}.textContent");
    for needle in [
        "交易主体",
        "审批核准",
        "尚不支持（本系统目录中没有此类数据）",
        "工程建设项目",
    ] {
        let found = browser
            .eval(&format!("{}.includes('{needle}')", text(&supervision_card)))
            .await
            .unwrap();
        assert_eq!(found, json!(true), "{needle}");
    }
    // Only the stages with a source are offered for pushing again.
    let options = browser
        .eval(&format!(
            "[...{finance_card}.querySelectorAll('form select')[1].options].map(o => o.value)"
        ))
        .await
        .unwrap();
    assert_eq!(
        options,
        json!(["project", "bids", "opening", "evaluation", "award"])
    );
    browser
        .eval(&format!(
            "(() => {{ const f = {finance_card}.querySelector('form'); \
               f.querySelectorAll('select')[0].value = '{number}'; f.querySelectorAll('select')[1].value = 'project'; \
               f.querySelector('button').click(); }})()"
        ))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('notice-text').textContent.includes('已排队 1 条消息')",
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while finance.received().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "not pushed again");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(finance.received_of("project").len(), 2);
}
