//! The market-subject library (主体库) against the stand-in platform on loopback: a contract
//! test per push (valid by schema, right content for the sample bidder and project), the order
//! of a blacklist listing and its revocation, bad records refused before anything is stored,
//! legal-person queries through the cache (hit, expiry, a stale answer with its age while the
//! library is down or misbehaving, a clear error with nothing cached), QR-code fetch (the PNG
//! decodes to the library's text) and scan (bad payloads refused clearly), and, through the
//! real daemon, a bidder's ID number never in full in the logs or answers.
//!
//! The in-process tests drive the real delivery worker and query code over a real SQLite
//! catalog with a simulated clock, so a time to live of an hour takes no hour.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::SqlitePool;
use time::macros::datetime;
use witness_controller::clock::{Clock, SimulatedClock};
use witness_controller::error::ErrorKind;
use witness_controller::integrations::market_subject::{query, records, MarketSubject};
use witness_controller::integrations::{self, Delivery};
use witness_controller::{catalog, db};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::integration::{MessageState, TradeCodes};
use witness_schemas::market_subject::{
    AnswerSource, ContractStatus, HashAlgorithm, LegalPersonAnswer, MarketSubjectConfig,
    PerformanceRating, PersonRole, QrScan, QueryDetail, RecordedSubject, RewardLevel,
    ScannedSubject, SubjectKind, SubjectQrCode, SubjectRecord, SubjectRecordSummary, SubjectRole,
    MARKET_SUBJECT_LIBRARY,
};
use witness_tests::daemon::Daemon;
use witness_tests::standin::{id_number, Fault, StandIn};
use witness_tests::standin_subject::{self, sample_bidder, sample_blacklisted, SubjectDirectory};

const PROJECT: &str = "LKGC-2026-0318";
const PROJECT_NAME: &str = "兰考县城区道路改造工程施工";
const DEAL_CODE: &str = "A41022520260318001";
const SECTION: &str = "LKGC-2026-0318-001";
const TTL_SECONDS: u64 = 3600;

fn config(url: &str) -> MarketSubjectConfig {
    MarketSubjectConfig {
        base_url: url.to_string(),
        platform_code: "HNLK001".to_string(),
        token_file: None,
        max_attempts: 72,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        probe_seconds: 60,
        timeout_seconds: 0.5,
        query_cache_ttl_seconds: TTL_SECONDS,
    }
}

/// The project manager the sample bidder names: a valid, fictitious ID number.
fn manager_id() -> String {
    id_number("41022519850312153")
}

struct World {
    dir: tempfile::TempDir,
    pool: SqlitePool,
    clock: Arc<SimulatedClock>,
    config: MarketSubjectConfig,
    delivery: Delivery,
    standin: Arc<StandIn>,
    directory: Arc<SubjectDirectory>,
}

/// A catalog with the sample project (trade codes recorded), the stand-in library with its two
/// sample subjects, and a delivery worker for the library; 08:00 on 2026-03-18.
async fn world() -> World {
    let (standin, directory) = standin_subject::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pool = db::open(dir.path()).await.unwrap();
    let clock = Arc::new(SimulatedClock::new(datetime!(2026-03-18 08:00 +8)));
    add_project(&pool, clock.now(), PROJECT, true).await;
    let config = config(&standin.url());
    let delivery = Delivery::new(
        pool.clone(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        MarketSubject::adapter(config.clone()),
        None,
    )
    .unwrap();
    World {
        dir,
        pool,
        clock,
        config,
        delivery,
        standin,
        directory,
    }
}

async fn add_project(pool: &SqlitePool, now: time::OffsetDateTime, number: &str, codes: bool) {
    catalog::create_project(
        pool,
        &NewProject {
            number: number.to_string(),
            name: PROJECT_NAME.to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        },
        now,
    )
    .await
    .unwrap();
    if codes {
        integrations::set_trade_codes(
            pool,
            number,
            &TradeCodes {
                unified_deal_code: DEAL_CODE.to_string(),
                bid_section_code: SECTION.to_string(),
            },
            "archivist",
            now,
        )
        .await
        .unwrap();
    }
}

/// Runs passes until nothing is attempted (the clock does not move).
async fn drain(w: &World) {
    for _ in 0..100 {
        if w.delivery.pass().await.unwrap().attempted == 0 {
            return;
        }
    }
    panic!("the queue did not drain");
}

async fn record(w: &World, record: &SubjectRecord) -> RecordedSubject {
    records::add_record(&w.pool, record, "archivist", w.clock.now())
        .await
        .unwrap()
}

fn bidder_code() -> String {
    sample_bidder().code
}

/// One sample record of each kind, about the sample bidder and project.
fn sample(kind: &str) -> SubjectRecord {
    let code = bidder_code();
    let name = "河南兰考建设集团有限公司".to_string();
    match kind {
        "legal-person" => SubjectRecord::LegalPerson {
            credit_code: code,
            name,
            legal_representative: "王建设".to_string(),
            role: SubjectRole::Bidder,
            registered_capital: Some("5000".to_string()),
            established_on: Some("2008-05-20".to_string()),
            address: "河南省开封市兰考县城关镇裕禄大道 88 号".to_string(),
            business_scope: Some("房屋建筑工程施工总承包".to_string()),
        },
        "natural-person" => SubjectRecord::NaturalPerson {
            id_number: manager_id(),
            name: "赵项目".to_string(),
            role: PersonRole::ProjectManager,
            employer_code: Some(code),
            employer_name: Some(name),
            qualification: Some("一级注册建造师".to_string()),
            qualification_cert_no: Some("豫141080900123".to_string()),
        },
        "performance" => SubjectRecord::Performance {
            credit_code: code,
            name,
            project_name: "兰考县第二高级中学教学楼".to_string(),
            owner: "兰考县教育体育局".to_string(),
            contract_amount: "23800000.00".to_string(),
            started_on: "2023-03-01".to_string(),
            completed_on: Some("2024-06-30".to_string()),
        },
        "reward" => SubjectRecord::Reward {
            credit_code: code,
            name,
            reward_name: "河南省建设工程“中州杯”".to_string(),
            level: RewardLevel::Provincial,
            authority: "河南省住房和城乡建设厅".to_string(),
            awarded_on: "2024-11-15".to_string(),
        },
        "violation" => SubjectRecord::Violation {
            credit_code: code,
            name,
            content: "投标文件中项目经理业绩弄虚作假".to_string(),
            authority: "兰考县住房和城乡建设局".to_string(),
            decision_no: "兰建罚〔2026〕3号".to_string(),
            decided_on: "2026-03-16".to_string(),
            project_number: Some(PROJECT.to_string()),
        },
        "blacklist" => SubjectRecord::Blacklist {
            credit_code: code,
            name,
            reason: "弄虚作假骗取中标".to_string(),
            authority: "兰考县公共资源交易监督管理委员会".to_string(),
            decision_no: "兰公管〔2026〕1号".to_string(),
            listed_on: "2026-03-17".to_string(),
            ends_on: Some("2027-03-16".to_string()),
        },
        "contract-performance" => SubjectRecord::ContractPerformance {
            project_number: PROJECT.to_string(),
            credit_code: code,
            name,
            contract_no: "LKGC-HT-2026-018".to_string(),
            contract_amount: "12345678.90".to_string(),
            status: ContractStatus::InProgress,
            rating: Some(PerformanceRating::Good),
            description: Some("按期完成路基工程".to_string()),
            recorded_at: "2026-03-18T10:15:00+08:00".to_string(),
        },
        "bid-file-upload" => SubjectRecord::BidFileUpload {
            project_number: PROJECT.to_string(),
            credit_code: code,
            name,
            file_name: "投标文件-河南兰考建设集团.zbj".to_string(),
            file_size: 52_428_800,
            file_hash: "AB".repeat(32),
            hash_algorithm: HashAlgorithm::Sm3,
            uploaded_at: "2026-03-18T09:10:05+08:00".to_string(),
        },
        other => panic!("no sample {other}"),
    }
}

/// Records `record`, delivers it, and returns the payload the stand-in received on `wire`,
/// after the checks every push shares.
async fn pushed(w: &World, record: &SubjectRecord, wire: &str) -> Value {
    let recorded = self::record(w, record).await;
    drain(w).await;
    assert!(w.standin.invalid().is_empty(), "{:?}", w.standin.invalid());
    let got = w.standin.received_of(wire);
    assert_eq!(got.len(), 1, "{wire}");
    let message = integrations::outbox::message(&w.pool, recorded.message_id)
        .await
        .unwrap();
    assert_eq!(message.state, MessageState::Acked);
    assert_eq!(message.target, MARKET_SUBJECT_LIBRARY);
    let payload = got[0].payload.clone();
    assert_eq!(payload["PLATFORM_CODE"], "HNLK001");
    assert_eq!(payload["DATA_TIMESTAMP"], "20260318080000");
    assert_eq!(
        payload["RECORD_ID"],
        format!("market-subject:record-{}", recorded.record_id)
    );
    assert_eq!(got[0].key, payload["RECORD_ID"]);
    payload
}

fn legal_fields(payload: &Value) {
    assert_eq!(payload["UNIFIED_SOCIAL_CREDIT_CODE"], bidder_code());
    assert_eq!(payload["LEGAL_PERSON_NAME"], "河南兰考建设集团有限公司");
}

fn project_fields(payload: &Value) {
    assert_eq!(payload["TENDER_PROJECT_CODE"], PROJECT);
    assert_eq!(payload["UNIFIED_DEAL_CODE"], DEAL_CODE);
    assert_eq!(payload["BID_SECTION_CODE"], SECTION);
}

#[tokio::test]
async fn contract_legal_person() {
    let w = world().await;
    let p = pushed(&w, &sample("legal-person"), "legal-person").await;
    legal_fields(&p);
    assert_eq!(p["LEGAL_REPRESENTATIVE"], "王建设");
    assert_eq!(p["SUBJECT_ROLE"], "2");
    assert_eq!(p["REGISTERED_CAPITAL"], "5000");
    assert_eq!(p["ESTABLISH_DATE"], "20080520");
    assert_eq!(
        p["REGISTERED_ADDRESS"],
        "河南省开封市兰考县城关镇裕禄大道 88 号"
    );
}

#[tokio::test]
async fn contract_natural_person_carries_the_full_id_number_to_the_library_only() {
    let w = world().await;
    let p = pushed(&w, &sample("natural-person"), "natural-person").await;
    assert_eq!(p["ID_CARD_NO"], manager_id());
    assert_eq!(p["PERSON_NAME"], "赵项目");
    assert_eq!(p["PERSON_ROLE"], "1");
    assert_eq!(p["EMPLOYER_CREDIT_CODE"], bidder_code());
    assert_eq!(p["QUALIFICATION_NAME"], "一级注册建造师");
    // Our own list shows the number masked.
    let list = records::list(&w.pool, None, 10).await.unwrap();
    assert_eq!(list[0].subject_code, "410225********1535");
    assert!(!serde_json::to_string(&list)
        .unwrap()
        .contains(&manager_id()));
}

#[tokio::test]
async fn contract_performance() {
    let w = world().await;
    let p = pushed(&w, &sample("performance"), "performance").await;
    legal_fields(&p);
    assert_eq!(p["PERFORMANCE_PROJECT_NAME"], "兰考县第二高级中学教学楼");
    assert_eq!(p["PERFORMANCE_OWNER"], "兰考县教育体育局");
    assert_eq!(p["CONTRACT_AMOUNT"], "23800000.00");
    assert_eq!(p["START_DATE"], "20230301");
    assert_eq!(p["COMPLETION_DATE"], "20240630");
}

#[tokio::test]
async fn contract_reward() {
    let w = world().await;
    let p = pushed(&w, &sample("reward"), "reward").await;
    legal_fields(&p);
    assert_eq!(p["REWARD_NAME"], "河南省建设工程“中州杯”");
    assert_eq!(p["REWARD_LEVEL"], "2");
    assert_eq!(p["AWARDING_AUTHORITY"], "河南省住房和城乡建设厅");
    assert_eq!(p["AWARD_DATE"], "20241115");
}

#[tokio::test]
async fn contract_violation_names_its_project() {
    let w = world().await;
    let p = pushed(&w, &sample("violation"), "violation").await;
    legal_fields(&p);
    project_fields(&p);
    assert_eq!(p["VIOLATION_CONTENT"], "投标文件中项目经理业绩弄虚作假");
    assert_eq!(p["PENALTY_DECISION_NO"], "兰建罚〔2026〕3号");
    assert_eq!(p["PENALTY_DATE"], "20260316");
    // The reconciliation report groups it under the project's codes.
    let (deal, section): (Option<String>, Option<String>) =
        sqlx::query_as(
            "SELECT unified_deal_code, bid_section_code FROM outbox WHERE target = 'market_subject_library'",
        )
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(deal.as_deref(), Some(DEAL_CODE));
    assert_eq!(section.as_deref(), Some(SECTION));
}

#[tokio::test]
async fn contract_blacklist() {
    let w = world().await;
    let p = pushed(&w, &sample("blacklist"), "blacklist").await;
    legal_fields(&p);
    assert_eq!(p["BLACKLIST_REASON"], "弄虚作假骗取中标");
    assert_eq!(p["DECISION_AUTHORITY"], "兰考县公共资源交易监督管理委员会");
    assert_eq!(p["DECISION_NO"], "兰公管〔2026〕1号");
    assert_eq!(p["START_DATE"], "20260317");
    assert_eq!(p["END_DATE"], "20270316");
}

#[tokio::test]
async fn contract_blacklist_revocation_refers_to_its_listing() {
    let w = world().await;
    let listing = record(&w, &sample("blacklist")).await;
    let revocation = SubjectRecord::BlacklistRevocation {
        blacklist_record_id: listing.record_id,
        reason: "信用修复完成".to_string(),
        authority: "兰考县公共资源交易监督管理委员会".to_string(),
        revoked_on: "2026-09-17".to_string(),
    };
    let p = pushed(&w, &revocation, "blacklist-revocation").await;
    legal_fields(&p);
    assert_eq!(
        p["BLACKLIST_RECORD_ID"],
        format!("market-subject:record-{}", listing.record_id)
    );
    assert_eq!(p["REVOKE_REASON"], "信用修复完成");
    assert_eq!(p["REVOKE_DATE"], "20260917");
    let list = records::list(&w.pool, Some("blacklist"), 10).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].revoked_by, Some(listing.record_id + 1));
}

#[tokio::test]
async fn contract_contract_performance() {
    let w = world().await;
    let p = pushed(&w, &sample("contract-performance"), "contract-performance").await;
    legal_fields(&p);
    project_fields(&p);
    assert_eq!(p["TENDER_PROJECT_NAME"], PROJECT_NAME);
    assert_eq!(p["CONTRACT_NO"], "LKGC-HT-2026-018");
    assert_eq!(p["CONTRACT_AMOUNT"], "12345678.90");
    assert_eq!(p["PERFORMANCE_STATUS"], "1");
    assert_eq!(p["PERFORMANCE_EVALUATION"], "2");
    assert_eq!(p["RECORD_TIME"], "20260318101500");
}

#[tokio::test]
async fn contract_bid_file_upload() {
    let w = world().await;
    let p = pushed(&w, &sample("bid-file-upload"), "bid-file-upload").await;
    legal_fields(&p);
    project_fields(&p);
    assert_eq!(p["TENDER_PROJECT_NAME"], PROJECT_NAME);
    assert_eq!(p["FILE_NAME"], "投标文件-河南兰考建设集团.zbj");
    assert_eq!(p["FILE_SIZE"], 52_428_800);
    assert_eq!(p["FILE_HASH"], "ab".repeat(32));
    assert_eq!(p["HASH_ALGORITHM"], "SM3");
    assert_eq!(p["UPLOAD_TIME"], "20260318091005");
}

#[tokio::test]
async fn a_revocation_never_overtakes_its_listing() {
    let w = world().await;
    // The listing's first attempt fails; the revocation written after it must wait.
    w.standin.push_faults(&[Fault::Error500]);
    let listing = record(&w, &sample("blacklist")).await;
    record(
        &w,
        &SubjectRecord::BlacklistRevocation {
            blacklist_record_id: listing.record_id,
            reason: "信用修复完成".to_string(),
            authority: "兰考县公共资源交易监督管理委员会".to_string(),
            revoked_on: "2026-09-17".to_string(),
        },
    )
    .await;
    let stats = w.delivery.pass().await.unwrap();
    assert_eq!((stats.attempted, stats.failed), (1, 1), "{stats:?}");
    assert!(w.standin.received().is_empty());
    w.clock.advance(time::Duration::minutes(5));
    drain(&w).await;
    let order: Vec<String> = w
        .standin
        .received()
        .into_iter()
        .map(|r| r.exchange)
        .collect();
    assert_eq!(order, ["blacklist", "blacklist-revocation"]);

    // A listing is revoked once; only listings can be revoked; the listing must exist.
    let again = records::add_record(
        &w.pool,
        &SubjectRecord::BlacklistRevocation {
            blacklist_record_id: listing.record_id,
            reason: "重复".to_string(),
            authority: "某机关".to_string(),
            revoked_on: "2026-09-18".to_string(),
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(again.kind, ErrorKind::AlreadyExists, "{again}");
    let reward = record(&w, &sample("reward")).await;
    for (id, kind) in [
        (reward.record_id, ErrorKind::InvalidArgument),
        (9999, ErrorKind::NotFound),
    ] {
        let error = records::add_record(
            &w.pool,
            &SubjectRecord::BlacklistRevocation {
                blacklist_record_id: id,
                reason: "撤销".to_string(),
                authority: "某机关".to_string(),
                revoked_on: "2026-09-18".to_string(),
            },
            "archivist",
            w.clock.now(),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind, kind, "{error}");
    }
}

#[tokio::test]
async fn bad_records_are_refused_before_anything_is_stored() {
    let w = world().await;
    let mut bad_id = manager_id();
    bad_id.pop();
    bad_id.push(if manager_id().ends_with('0') {
        '1'
    } else {
        '0'
    });
    let cases: Vec<(SubjectRecord, ErrorKind, &str)> = vec![
        (
            match sample("legal-person") {
                SubjectRecord::LegalPerson {
                    name,
                    legal_representative,
                    role,
                    registered_capital,
                    established_on,
                    address,
                    business_scope,
                    ..
                } => SubjectRecord::LegalPerson {
                    // One character off: the GB 32100 check character no longer matches.
                    credit_code: format!("{}A", &bidder_code()[..17]),
                    name,
                    legal_representative,
                    role,
                    registered_capital,
                    established_on,
                    address,
                    business_scope,
                },
                _ => unreachable!(),
            },
            ErrorKind::InvalidArgument,
            "校验位",
        ),
        (
            SubjectRecord::NaturalPerson {
                id_number: bad_id.clone(),
                name: "赵项目".to_string(),
                role: PersonRole::ProjectManager,
                employer_code: None,
                employer_name: None,
                qualification: None,
                qualification_cert_no: None,
            },
            ErrorKind::InvalidArgument,
            "身份证号校验位不符",
        ),
        (
            SubjectRecord::Reward {
                credit_code: bidder_code(),
                name: "河南兰考建设集团有限公司".to_string(),
                reward_name: "中州杯".to_string(),
                level: RewardLevel::Provincial,
                authority: "河南省住房和城乡建设厅".to_string(),
                awarded_on: "2024/11/15".to_string(),
            },
            ErrorKind::InvalidArgument,
            "授予日期",
        ),
        (
            SubjectRecord::Performance {
                credit_code: bidder_code(),
                name: "河南兰考建设集团有限公司".to_string(),
                project_name: "教学楼".to_string(),
                owner: "教育局".to_string(),
                contract_amount: "2,380万".to_string(),
                started_on: "2023-03-01".to_string(),
                completed_on: None,
            },
            ErrorKind::InvalidArgument,
            "合同金额",
        ),
        (
            SubjectRecord::Violation {
                credit_code: bidder_code(),
                name: "河南兰考建设集团有限公司".to_string(),
                content: "x".repeat(2001),
                authority: "住建局".to_string(),
                decision_no: "1号".to_string(),
                decided_on: "2026-03-16".to_string(),
                project_number: None,
            },
            ErrorKind::InvalidArgument,
            "VIOLATION_CONTENT",
        ),
        (
            match sample("bid-file-upload") {
                SubjectRecord::BidFileUpload {
                    credit_code,
                    name,
                    file_name,
                    file_size,
                    file_hash,
                    hash_algorithm,
                    uploaded_at,
                    ..
                } => SubjectRecord::BidFileUpload {
                    project_number: "NO-SUCH-PROJECT".to_string(),
                    credit_code,
                    name,
                    file_name,
                    file_size,
                    file_hash,
                    hash_algorithm,
                    uploaded_at,
                },
                _ => unreachable!(),
            },
            ErrorKind::NotFound,
            "NO-SUCH-PROJECT",
        ),
    ];
    for (record, kind, needle) in cases {
        let error = records::add_record(&w.pool, &record, "archivist", w.clock.now())
            .await
            .unwrap_err();
        assert_eq!(error.kind, kind, "{error}");
        assert!(error.message.contains(needle), "{error}");
        // An ID number in an error is masked.
        assert!(!error.message.contains(&bad_id), "{error}");
    }
    let (stored, queued): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM subject_records), \
         (SELECT COUNT(*) FROM outbox WHERE target = 'market_subject_library')",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!((stored, queued), (0, 0));
}

#[tokio::test]
async fn a_project_without_trade_codes_is_our_fault_and_not_sent() {
    let w = world().await;
    add_project(&w.pool, w.clock.now(), "LKGC-2026-0320", false).await;
    let mut upload = sample("bid-file-upload");
    if let SubjectRecord::BidFileUpload { project_number, .. } = &mut upload {
        *project_number = "LKGC-2026-0320".to_string();
    }
    let recorded = record(&w, &upload).await;
    drain(&w).await;
    let message = integrations::outbox::message(&w.pool, recorded.message_id)
        .await
        .unwrap();
    assert_eq!(message.state, MessageState::Dead);
    assert_eq!(message.fault.as_deref(), Some("ours"));
    assert!(
        message
            .last_error
            .as_deref()
            .unwrap()
            .contains("统一交易标识码"),
        "{message:?}"
    );
    assert_eq!(w.standin.requests(), 0);
}

#[tokio::test]
async fn down_then_flaky_every_record_delivered_exactly_once() {
    let w = world().await;
    w.standin.down();
    let kinds = [
        "legal-person",
        "natural-person",
        "performance",
        "reward",
        "violation",
        "blacklist",
        "contract-performance",
        "bid-file-upload",
    ];
    let mut ids = Vec::new();
    for _ in 0..3 {
        for kind in kinds {
            ids.push(record(&w, &sample(kind)).await.message_id);
        }
    }
    for _ in 0..(6 * 12) {
        w.clock.advance(time::Duration::minutes(5));
        w.delivery.pass().await.unwrap();
    }
    w.standin.up().await.unwrap();
    w.standin.set_pattern(&[
        Fault::Error500,
        Fault::None,
        Fault::Garbage,
        Fault::Slow(Duration::from_millis(800)),
        Fault::Partial,
        Fault::None,
    ]);
    for passes in 0.. {
        w.clock.advance(time::Duration::minutes(30));
        w.delivery.pass().await.unwrap();
        let (waiting,): (i64,) =
            sqlx::query_as(
            "SELECT COUNT(*) FROM outbox WHERE target = 'market_subject_library' AND state != 'acked'",
        )
                .fetch_one(&w.pool)
                .await
                .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(passes < 300, "{waiting} messages still not delivered");
    }
    let keys: Vec<String> = w.standin.received().into_iter().map(|r| r.key).collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), ids.len());
    assert_eq!(unique.len(), ids.len());
    assert!(w.standin.invalid().is_empty(), "{:?}", w.standin.invalid());
    let report = integrations::reconcile::generate(
        &w.pool,
        w.dir.path(),
        MARKET_SUBJECT_LIBRARY,
        time::macros::date!(2026 - 03 - 18),
        w.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(report.total, ids.len() as i64);
    assert_eq!(report.acked, ids.len() as i64);
    assert!(report.all_delivered);
}

async fn ask(w: &World, code: &str, detail: QueryDetail) -> LegalPersonAnswer {
    query::legal_person(&w.pool, &w.config, code, detail, false, w.clock.now())
        .await
        .unwrap()
}

#[tokio::test]
async fn legal_person_basic_query_is_cached_until_its_time_to_live() {
    let w = world().await;
    let code = bidder_code();
    let first = ask(&w, &code, QueryDetail::Basic).await;
    assert_eq!(first.source, AnswerSource::Library);
    assert!(!first.stale);
    assert_eq!(first.basic.name, "河南兰考建设集团有限公司");
    assert_eq!(first.basic.legal_representative, "王建设");
    assert_eq!(first.basic.subject_type, "企业");
    assert_eq!(first.basic.operating_status, "存续");
    assert_eq!(first.basic.established_on, "2008-05-20");
    assert!(first.records.is_none());
    // The request was valid by schema and asked about the right subject.
    let asked = w.standin.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].exchange, "legal-person-basic");
    assert_eq!(asked[0].payload["UNIFIED_SOCIAL_CREDIT_CODE"], code);
    assert_eq!(asked[0].payload["PLATFORM_CODE"], "HNLK001");
    assert!(w.standin.invalid().is_empty());

    // Within the time to live: the cache answers, with the answer's age.
    w.clock.advance(time::Duration::minutes(30));
    let cached = ask(&w, &code, QueryDetail::Basic).await;
    assert_eq!(cached.source, AnswerSource::Cache);
    assert_eq!(cached.age_seconds, 1800);
    assert_eq!(cached.basic, first.basic);
    assert_eq!(w.standin.asked().len(), 1);

    // The registration changes at the library; past the time to live the answer is refreshed.
    w.directory
        .set_field(&code, "LEGAL_REPRESENTATIVE", "王新任");
    w.clock.advance(time::Duration::minutes(31));
    let refreshed = ask(&w, &code, QueryDetail::Basic).await;
    assert_eq!(refreshed.source, AnswerSource::Library);
    assert_eq!(refreshed.basic.legal_representative, "王新任");
    assert_eq!(w.standin.asked().len(), 2);
    // The refreshed entry is what the cache serves next.
    w.clock.advance(time::Duration::minutes(1));
    let again = ask(&w, &code, QueryDetail::Basic).await;
    assert_eq!(again.source, AnswerSource::Cache);
    assert_eq!(again.age_seconds, 60);
    assert_eq!(again.basic.legal_representative, "王新任");
    // Asked to refresh, the library is asked even within the time to live.
    let forced = query::legal_person(
        &w.pool,
        &w.config,
        &code,
        QueryDetail::Basic,
        true,
        w.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(forced.source, AnswerSource::Library);
    assert_eq!(w.standin.asked().len(), 3);
}

#[tokio::test]
async fn comprehensive_query_reads_every_list_in_chinese_terms() {
    let w = world().await;
    let answer = ask(&w, &bidder_code(), QueryDetail::Comprehensive).await;
    assert_eq!(w.standin.asked()[0].exchange, "legal-person-comprehensive");
    let records = answer.records.expect("the comprehensive lists");
    assert_eq!(records.qualifications.len(), 1);
    assert_eq!(records.qualifications[0].name, "建筑工程施工总承包");
    assert_eq!(records.qualifications[0].level.as_deref(), Some("一级"));
    assert_eq!(
        records.qualifications[0].valid_until.as_deref(),
        Some("2028-12-31")
    );
    assert_eq!(records.performances[0].contract_amount, "23800000.00");
    assert_eq!(records.rewards[0].level.as_deref(), Some("省级"));
    assert!(records.violations.is_empty());
    assert!(!records.blacklisted);
    assert!(records.blacklist[0].revoked);
    assert_eq!(records.blacklist[0].listed_on, "2021-03-01");

    let listed = ask(&w, &sample_blacklisted().code, QueryDetail::Comprehensive).await;
    assert_eq!(listed.basic.operating_status, "注销");
    let records = listed.records.unwrap();
    assert!(records.blacklisted);
    assert_eq!(records.violations[0].content, "串通投标");
    // Basic and comprehensive answers are cached apart.
    let basic = ask(&w, &bidder_code(), QueryDetail::Basic).await;
    assert_eq!(basic.source, AnswerSource::Library);
}

#[tokio::test]
async fn while_the_library_is_down_a_stale_answer_is_served_with_its_age() {
    let w = world().await;
    let code = bidder_code();
    ask(&w, &code, QueryDetail::Basic).await;
    w.clock.advance(time::Duration::hours(2));
    w.standin.down();
    let stale = ask(&w, &code, QueryDetail::Basic).await;
    assert_eq!(stale.source, AnswerSource::StaleCache);
    assert!(stale.stale);
    assert_eq!(stale.age_seconds, 7200);
    // Refused, or reset by the closing port: either way the request did not get through.
    let reason = stale.stale_reason.as_deref().unwrap();
    assert!(
        reason.contains("无法连接主体库") || reason.contains("请求失败"),
        "{stale:?}"
    );
    assert_eq!(stale.basic.name, "河南兰考建设集团有限公司");

    // Up but misbehaving counts as down: 500, garbage, cut-off JSON, no answer in time.
    w.standin.up().await.unwrap();
    for (fault, needle) in [
        (Fault::Error500, "HTTP 500"),
        (Fault::Garbage, "不是有效的 JSON"),
        (Fault::Partial, "不是有效的 JSON"),
        (Fault::Slow(Duration::from_millis(1500)), "timeout"),
    ] {
        w.standin.push_faults(&[fault]);
        let answer = ask(&w, &code, QueryDetail::Basic).await;
        assert!(answer.stale, "{fault:?}");
        let reason = answer.stale_reason.unwrap();
        assert!(reason.contains(needle), "{fault:?}: {reason}");
    }

    // Nothing cached and the library down: a clear error, no made-up answer.
    w.standin.down();
    let error = query::legal_person(
        &w.pool,
        &w.config,
        &sample_blacklisted().code,
        QueryDetail::Basic,
        false,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("没有"), "{error}");
    assert!(error.message.contains("缓存"), "{error}");

    // Back: the library answers and the entry is fresh again.
    w.standin.up().await.unwrap();
    let fresh = ask(&w, &code, QueryDetail::Basic).await;
    assert_eq!(fresh.source, AnswerSource::Library);
    assert_eq!(fresh.age_seconds, 0);
}

#[tokio::test]
async fn unknown_subjects_and_bad_codes_are_clear_errors() {
    let w = world().await;
    let error = query::configured(None).unwrap_err();
    assert_eq!(error.kind, ErrorKind::FailedPrecondition);
    assert!(
        error
            .message
            .contains("[integrations.market_subject_library]"),
        "{error}"
    );
    let bad = format!("{}0", &bidder_code()[..17]);
    let error = query::legal_person(
        &w.pool,
        &w.config,
        &bad,
        QueryDetail::Basic,
        false,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert!(error.message.contains("校验位"), "{error}");
    assert!(w.standin.asked().is_empty(), "a bad code is not sent");

    let unknown = standin_subject::credit_code("91410225MA44LK999");
    let error = query::legal_person(
        &w.pool,
        &w.config,
        &unknown,
        QueryDetail::Basic,
        false,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(error.message.contains(&unknown), "{error}");

    // A subject the library drops: past the time to live the cached answer goes too.
    let gone = sample_blacklisted().code;
    ask(&w, &gone, QueryDetail::Basic).await;
    w.directory.remove(&gone);
    w.clock
        .advance(time::Duration::seconds(TTL_SECONDS as i64 + 1));
    let error = query::legal_person(
        &w.pool,
        &w.config,
        &gone,
        QueryDetail::Basic,
        false,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    let (left,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM subject_query_cache WHERE subject_code = ?")
            .bind(&gone)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(left, 0);
}

/// Every QR code found in a PNG.
fn decode_qr(png: &[u8]) -> Vec<String> {
    let pixmap = tiny_skia::Pixmap::decode_png(png).expect("a PNG");
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let pixels = pixmap.pixels();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = pixels[y * w + x].demultiply();
        ((u16::from(p.red()) + u16::from(p.green()) + u16::from(p.blue())) / 3) as u8
    });
    image
        .detect_grids()
        .iter()
        .map(|g| g.decode().expect("QR decodes").1)
        .collect()
}

#[tokio::test]
async fn a_subjects_qr_code_is_fetched_drawn_and_scanned_back() {
    use base64::Engine as _;
    let w = world().await;
    let code = bidder_code();
    let qr = query::qr_code(&w.config, &code, w.clock.now())
        .await
        .unwrap();
    let asked = w.standin.asked();
    assert_eq!(asked[0].exchange, "qr-fetch");
    assert_eq!(asked[0].payload["UNIFIED_SOCIAL_CREDIT_CODE"], code);
    assert_eq!(qr.content, asked[0].reply["DATA"]["QR_CONTENT"]);
    assert_eq!(qr.valid_until, "2026-03-18T23:59:59+08:00");
    let png = base64::engine::general_purpose::STANDARD
        .decode(&qr.png_base64)
        .unwrap();
    assert_eq!(decode_qr(&png), std::slice::from_ref(&qr.content));

    let subject = query::scan(&w.config, &qr.content, w.clock.now())
        .await
        .unwrap();
    assert_eq!(subject.subject_kind, SubjectKind::LegalPerson);
    assert_eq!(subject.code, code);
    assert_eq!(subject.name, "河南兰考建设集团有限公司");
    assert_eq!(subject.operating_status.as_deref(), Some("存续"));
    assert_eq!(subject.blacklisted, Some(false));
    assert_eq!(w.standin.asked()[1].payload["QR_CONTENT"], qr.content);

    // A natural person's code resolves with the ID number masked.
    let person = w.directory.issue_person_qr(&manager_id(), "赵项目");
    let subject = query::scan(&w.config, &person, w.clock.now())
        .await
        .unwrap();
    assert_eq!(subject.subject_kind, SubjectKind::NaturalPerson);
    assert_eq!(subject.code, "410225********1535");
    assert!(w.standin.invalid().is_empty(), "{:?}", w.standin.invalid());
}

#[tokio::test]
async fn bad_qr_payloads_are_refused_clearly() {
    let w = world().await;
    // Refused before anything is sent.
    for (content, needle) in [
        ("", "为空"),
        ("https://ztk.hnggzy.example/qr/v1/1\u{0}", "控制字符"),
        (&"A".repeat(600) as &str, "512"),
    ] {
        let error = query::scan(&w.config, content, w.clock.now())
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument, "{error}");
        assert!(error.message.contains(needle), "{error}");
    }
    assert!(w.standin.asked().is_empty());
    // Text the library did not issue, and a code that has expired: the library says so.
    let issued = query::qr_code(&w.config, &bidder_code(), w.clock.now())
        .await
        .unwrap();
    w.directory.expire(&issued.content);
    for (content, needle) in [
        ("https://example.com/not-a-subject", "不是本库签发的二维码"),
        (issued.content.as_str(), "二维码已过期"),
    ] {
        let error = query::scan(&w.config, content, w.clock.now())
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument, "{error}");
        assert!(error.message.contains("二维码无效或已过期"), "{error}");
        assert!(error.message.contains(needle), "{error}");
    }
    // Down: unavailable, not "invalid".
    w.standin.down();
    let error = query::scan(&w.config, &issued.content, w.clock.now())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
}

/// A daemon with the stand-in library configured and the sample project with its codes.
async fn daemon(dir: &std::path::Path, standin: &StandIn) -> Daemon {
    let config_path = dir.join("witness.toml");
    std::fs::write(
        &config_path,
        format!(
            "[integrations.market_subject_library]\nbase_url = \"{}\"\nplatform_code = \"HNLK001\"\n\
             timeout_seconds = 1\nquery_cache_ttl_seconds = {TTL_SECONDS}\n",
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
            name: PROJECT_NAME.to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        })
        .await
        .unwrap();
    client
        .put_trade_codes(PROJECT, DEAL_CODE, SECTION)
        .await
        .unwrap();
    daemon
}

const BASE: &str = "/api/integrations/market_subject_library";

// Multi-threaded: the CLI runs as a blocking child process while the stand-in in this
// process must keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_daemon_a_bidders_id_number_never_appears_in_full() {
    let (standin, directory) = standin_subject::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path(), &standin).await;
    let client = daemon.client();
    let full = manager_id();
    let mut answers = String::new();

    // The project manager and the bid file, recorded through the API while the library is
    // down: queued, and a kill -9 before delivery loses neither.
    standin.down();
    for kind in ["natural-person", "bid-file-upload"] {
        let recorded: RecordedSubject = client
            .send_json(
                reqwest::Method::POST,
                &format!("{BASE}/records"),
                &sample(kind),
            )
            .await
            .unwrap();
        answers.push_str(&serde_json::to_string(&recorded).unwrap());
    }
    // A mistyped number is refused, masked in the error.
    let mut typo = sample("natural-person");
    if let SubjectRecord::NaturalPerson { id_number, .. } = &mut typo {
        id_number.replace_range(17.., if full.ends_with('0') { "1" } else { "0" });
    }
    let error = client
        .send_json::<_, Value>(reqwest::Method::POST, &format!("{BASE}/records"), &typo)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("身份证号校验位不符"), "{error}");
    answers.push_str(&error);
    daemon.restart().await.unwrap();
    let client = daemon.client();
    standin.up().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list: Vec<SubjectRecordSummary> =
            client.get_json(&format!("{BASE}/records")).await.unwrap();
        if list.len() == 2 && list.iter().all(|r| r.state.as_deref() == Some("acked")) {
            answers.push_str(&serde_json::to_string(&list).unwrap());
            assert!(list.iter().any(|r| r.subject_code == "410225********1535"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {list:?}\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The library got the full number, once.
    let got = standin.received_of("natural-person");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["ID_CARD_NO"], full);
    assert_eq!(standin.received_of("bid-file-upload").len(), 1);

    // Queries, QR code and scans through the API (the person's code resolves masked).
    let answer: LegalPersonAnswer = client
        .get_json(&format!(
            "{BASE}/legal-persons/{}?detail=comprehensive",
            bidder_code()
        ))
        .await
        .unwrap();
    assert_eq!(answer.source, AnswerSource::Library);
    let cached: LegalPersonAnswer = client
        .get_json(&format!(
            "{BASE}/legal-persons/{}?detail=comprehensive",
            bidder_code()
        ))
        .await
        .unwrap();
    assert_eq!(cached.source, AnswerSource::Cache);
    let qr: SubjectQrCode = client
        .get_json(&format!("{BASE}/legal-persons/{}/qr", bidder_code()))
        .await
        .unwrap();
    assert!(!qr.png_base64.is_empty());
    let person = directory.issue_person_qr(&full, "赵项目");
    let scanned: ScannedSubject = client
        .send_json(
            reqwest::Method::POST,
            &format!("{BASE}/qr-scans"),
            &QrScan { content: person },
        )
        .await
        .unwrap();
    assert_eq!(scanned.code, "410225********1535");
    answers.push_str(&serde_json::to_string(&scanned).unwrap());
    let bad = client
        .send_json::<_, Value>(
            reqwest::Method::POST,
            &format!("{BASE}/qr-scans"),
            &QrScan {
                content: "https://example.com/not-a-subject".to_string(),
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("二维码无效或已过期") && bad.contains("HTTP 400"),
        "{bad}"
    );
    let messages: Value = client
        .get_json(&format!(
            "/api/integrations/{MARKET_SUBJECT_LIBRARY}/messages"
        ))
        .await
        .unwrap();
    answers.push_str(&messages.to_string());
    // The CLI shows the same answer, from the cache.
    let (ok, out, err) = daemon.cli(&["subject", "query", &bidder_code(), "--comprehensive"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("河南兰考建设集团有限公司") && out.contains("缓存"),
        "{out}"
    );
    let person = directory.issue_person_qr(&full, "赵项目");
    let (ok, out, err) = daemon.cli(&["subject", "scan", &person]);
    assert!(ok, "{err}");
    assert!(
        out.contains("自然人：赵项目（410225********1535）"),
        "{out}"
    );
    answers.push_str(&out);
    let png = dir.path().join("qr.png");
    let (ok, out, err) = daemon.cli(&[
        "subject",
        "qr",
        &bidder_code(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("二维码内容：https://ztk.hnggzy.example/qr/v1/"),
        "{out}"
    );
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    let log = daemon.log_text();
    assert!(
        log.contains("subject record queued for the market-subject library"),
        "the log is the daemon's: {log}"
    );
    assert!(!log.contains(&full), "full ID number in the log");
    assert!(
        !answers.contains(&full),
        "full ID number in an answer: {answers}"
    );
    // The audit log has every change, without the number.
    let audit: Value = client.get_json("/api/audit?limit=500").await.unwrap();
    let audit = audit.to_string();
    assert!(audit.contains("/records"), "{audit}");
    assert!(!audit.contains(&full));
}

#[tokio::test]
async fn the_integrations_page_queries_a_subject_and_shows_a_stale_answer() {
    use witness_tests::browser::Browser;
    let (standin, directory) = standin_subject::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path(), &standin).await;
    let _: RecordedSubject = daemon
        .client()
        .send_json(
            reqwest::Method::POST,
            &format!("{BASE}/records"),
            &sample("natural-person"),
        )
        .await
        .unwrap();
    let browser = Browser::launch().await.unwrap();
    let page = format!("{}/integrations.html", daemon.url);
    browser
        .open_as_first_admin(
            &page,
            &daemon.admin_password().unwrap(),
            "Zhuti-2026-second",
        )
        .await
        .unwrap();
    // The recorded person is listed, masked.
    let records = "document.getElementById('subject-records').textContent";
    browser
        .wait_for(
            &format!(
                "{records}.includes('自然人信息') && {records}.includes('410225********1535')"
            ),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let result = "document.getElementById('subject-result').textContent";
    let query = |detail: &str, refresh: bool| {
        format!(
            "document.getElementById('subject-code').value = '{}'; \
             document.getElementById('subject-detail').value = '{detail}'; \
             document.getElementById('subject-refresh').checked = {refresh}; \
             document.getElementById('subject-result').textContent = '';",
            bidder_code()
        )
    };
    browser.eval(&query("comprehensive", false)).await.unwrap();
    browser
        .click("#subject-form button[type=submit]")
        .await
        .unwrap();
    browser
        .wait_for(
            &format!(
                "{result}.includes('来源：主体库') && {result}.includes('河南兰考建设集团有限公司') \
                 && {result}.includes('存续') && {result}.includes('建筑工程施工总承包') \
                 && {result}.includes('当前不在黑名单中')"
            ),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    // Asked again while the library is down and the cache is ignored: the cached answer, with
    // the reason the refresh failed.
    standin.down();
    browser.eval(&query("comprehensive", true)).await.unwrap();
    // Submitted from the page's script, not a mouse click at a computed spot: the answer
    // above may still be changing the layout, and a click landing beside the button
    // submitted nothing (a flaky failure).
    browser
        .eval("document.getElementById('subject-form').requestSubmit()")
        .await
        .unwrap();
    if let Err(e) = browser
        .wait_for(
            &format!("{result}.includes('来源：缓存') && {result}.includes('刷新失败')"),
            Duration::from_secs(20),
        )
        .await
    {
        let shown = browser.eval(result).await.unwrap();
        let banner = browser
            .eval("document.getElementById('error-text').textContent")
            .await
            .unwrap();
        panic!("{e}; shown: {shown}; banner: {banner}");
    }
    // Nothing cached for the other subject: the error says so.
    browser
        .eval(&format!(
            "document.getElementById('subject-code').value = '{}'; \
             document.getElementById('subject-refresh').checked = false;",
            sample_blacklisted().code
        ))
        .await
        .unwrap();
    browser
        .eval("document.getElementById('subject-form').requestSubmit()")
        .await
        .unwrap();
    browser
        .wait_for(
            &format!("{result}.includes('暂时无法访问') && {result}.includes('缓存')"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    // Up again: the QR code is shown, and its text resolves in the scan form.
    standin.up().await.unwrap();
    browser
        .eval(&format!(
            "document.getElementById('subject-code').value = '{}';",
            bidder_code()
        ))
        .await
        .unwrap();
    browser.click("#subject-qr").await.unwrap();
    browser
        .wait_for(
            "document.querySelector('#subject-result img') !== null",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let person = directory.issue_person_qr(&manager_id(), "赵项目");
    browser
        .eval(&format!(
            "document.getElementById('scan-content').value = {};",
            serde_json::to_string(&person).unwrap()
        ))
        .await
        .unwrap();
    browser
        .click("#scan-form button[type=submit]")
        .await
        .unwrap();
    let scanned = "document.getElementById('scan-result').textContent";
    browser
        .wait_for(
            &format!("{scanned}.includes('自然人') && {scanned}.includes('410225********1535')"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let page_text = browser
        .eval("document.body.textContent")
        .await
        .unwrap()
        .to_string();
    assert!(!page_text.contains(&manager_id()));
}

#[tokio::test]
async fn queries_carry_the_bearer_token_read_from_its_file() {
    let w = world().await;
    w.standin.require_token("ztk-secret-2026");
    let token_file = w.dir.path().join("market-subject.token");
    std::fs::write(&token_file, "ztk-secret-2026\n").unwrap();
    let config = MarketSubjectConfig {
        token_file: Some(token_file.clone()),
        ..w.config.clone()
    };
    let answer = query::legal_person(
        &w.pool,
        &config,
        &bidder_code(),
        QueryDetail::Basic,
        false,
        w.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(answer.source, AnswerSource::Library);
    // A wrong token is refused by the library: no answer, and nothing else cached to serve.
    std::fs::write(&token_file, "expired-token").unwrap();
    let error = query::legal_person(
        &w.pool,
        &config,
        &sample_blacklisted().code,
        QueryDetail::Basic,
        false,
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
    assert!(error.message.contains("HTTP 400"), "{error}");
    assert!(!error.message.contains("expired-token"), "{error}");
}
