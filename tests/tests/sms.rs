//! SMS notices to bidders: through the real SMS worker over a real SQLite catalog with a
//! simulated clock, to an in-process SMPP 3.4 gateway peer and to an HTTP template stand-in.
//! Every bidder with a phone gets the notice once; a bidder without one is named; a throttled
//! message is retried; a message whose outcome is unknown is never resent automatically.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::macros::datetime;
use witness_controller::clock::{Clock, SimulatedClock};
use witness_controller::error::ErrorKind;
use witness_controller::integrations::sms::{self, SmsDelivery};
use witness_controller::{catalog, db};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::integration::{
    MessageState, NewBidder, NewSmsNotice, SmsConfig, SmsNoticeKind, SmsProviderKind, SMS,
};
use witness_tests::smpp_peer::{SmppFault, SmppPeer};

const PROJECT: &str = "LKGC-2026-0318";
const NAME: &str = "兰考县城区道路改造工程施工";

struct World {
    dir: tempfile::TempDir,
    pool: SqlitePool,
    clock: Arc<SimulatedClock>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let pool = db::open(dir.path()).await.unwrap();
    let clock = Arc::new(SimulatedClock::new(datetime!(2026-03-17 15:00 +8)));
    catalog::create_project(
        &pool,
        &NewProject {
            number: PROJECT.to_string(),
            name: NAME.to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        },
        clock.now(),
    )
    .await
    .unwrap();
    for (name, phone) in [
        ("河南兰考建设集团有限公司", Some("13812345678")),
        ("开封市政工程有限公司", Some("13900001111")),
        ("商丘路桥有限公司", None),
    ] {
        sms::add_bidder(
            &pool,
            PROJECT,
            &NewBidder {
                name: name.to_string(),
                phone: phone.map(str::to_string),
            },
            clock.now(),
        )
        .await
        .unwrap();
    }
    World { dir, pool, clock }
}

fn smpp_config(w: &World, addr: &str, password: &str) -> SmsConfig {
    let password_file = w.dir.path().join("smpp.password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    SmsConfig {
        provider: SmsProviderKind::Smpp,
        smpp_address: Some(addr.to_string()),
        smpp_system_id: Some("witness".to_string()),
        smpp_password_file: Some(password_file),
        smpp_source_addr: "LKJYZX".to_string(),
        http_url: None,
        http_token_file: None,
        http_sign_name: "兰考县公共资源交易中心".to_string(),
        http_templates: BTreeMap::new(),
        center_name: "兰考县公共资源交易中心".to_string(),
        max_attempts: 24,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        timeout_seconds: 2.0,
    }
}

fn worker(w: &World, config: SmsConfig) -> SmsDelivery {
    let provider = sms::provider(&config).unwrap();
    SmsDelivery::new(
        w.pool.clone(),
        Arc::clone(&w.clock) as Arc<dyn Clock>,
        config,
        provider,
    )
}

async fn messages(pool: &SqlitePool) -> Vec<witness_schemas::integration::OutboxMessage> {
    witness_controller::integrations::outbox::messages(pool, SMS, None, 100)
        .await
        .unwrap()
}

#[tokio::test]
async fn smpp_notice_reaches_every_bidder_with_a_phone_exactly_once() {
    let peer = SmppPeer::start("witness", "pw-SMPP-1").await.unwrap();
    let w = world().await;
    let config = smpp_config(&w, &peer.addr.to_string(), "pw-SMPP-1");
    let delivery = worker(&w, config.clone());
    let result = sms::send_notice(
        &w.pool,
        Some(&config),
        PROJECT,
        &NewSmsNotice {
            kind: SmsNoticeKind::BidOpening,
            deadline: None,
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(result.message_ids.len(), 2);
    assert_eq!(result.without_phone, vec!["商丘路桥有限公司".to_string()]);
    assert_eq!(delivery.pass().await.unwrap(), 2);
    // Nothing is due any more: a second pass sends nothing again.
    assert_eq!(delivery.pass().await.unwrap(), 0);
    let received = peer.received();
    assert_eq!(received.len(), 2);
    let expected = format!(
        "【兰考县公共资源交易中心】您投标的项目{NAME}（{PROJECT}）将于2026年3月18日09:30开标，请准时参加。"
    );
    assert_eq!(received[0].destination_addr, "8613812345678");
    assert_eq!(received[1].destination_addr, "8613900001111");
    assert!(received
        .iter()
        .all(|m| m.text == expected && m.source_addr == "LKJYZX"));
    let stored = messages(&w.pool).await;
    assert!(stored.iter().all(|m| m.state == MessageState::Acked));

    // A clarification with its deadline: a longer text, carried in message_payload.
    let config_long = SmsConfig {
        center_name: "兰考县公共资源交易中心（县政务服务中心三楼）".to_string(),
        ..config.clone()
    };
    sms::send_notice(
        &w.pool,
        Some(&config_long),
        PROJECT,
        &NewSmsNotice {
            kind: SmsNoticeKind::Clarification,
            deadline: Some("2026-03-18T14:00:00+08:00".to_string()),
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    delivery.pass().await.unwrap();
    let long = &peer.received()[2];
    assert!(long.text.encode_utf16().count() > 70, "{}", long.text);
    assert!(
        long.text
            .contains("请于2026年3月18日14:00前登录交易平台答复"),
        "{}",
        long.text
    );
}

#[tokio::test]
async fn throttled_sms_are_retried_and_unknown_outcomes_are_never_resent() {
    let peer = SmppPeer::start("witness", "pw-SMPP-1").await.unwrap();
    let w = world().await;
    let config = smpp_config(&w, &peer.addr.to_string(), "pw-SMPP-1");
    let delivery = worker(&w, config.clone());
    peer.push_faults(&[SmppFault::Throttle, SmppFault::DropAfterSubmit]);
    sms::send_notice(
        &w.pool,
        Some(&config),
        PROJECT,
        &NewSmsNotice {
            kind: SmsNoticeKind::ChangeNotice,
            deadline: None,
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    delivery.pass().await.unwrap();
    for _ in 0..20 {
        w.clock.advance(time::Duration::hours(1));
        delivery.pass().await.unwrap();
    }
    let received = peer.received();
    let to = |phone: &str| {
        received
            .iter()
            .filter(|m| m.destination_addr == format!("86{phone}"))
            .count()
    };
    // The throttled one went out on a later attempt; the dropped one reached the gateway once
    // and was not sent again.
    assert_eq!(to("13812345678"), 1);
    assert_eq!(to("13900001111"), 1);
    let stored = messages(&w.pool).await;
    let first = stored
        .iter()
        .find(|m| m.attempts == 2)
        .expect("the throttled one");
    assert_eq!(first.state, MessageState::Acked);
    let unknown = stored
        .iter()
        .find(|m| m.state == MessageState::Dead)
        .expect("a dead letter");
    assert_eq!(unknown.fault.as_deref(), Some("unknown"));
    assert!(unknown.last_error.as_deref().unwrap().contains("结果未知"));

    // A wrong password is refused at bind: nothing is sent, the message waits.
    let wrong = worker(&w, smpp_config(&w, &peer.addr.to_string(), "wrong"));
    sms::send_notice(
        &w.pool,
        Some(&config),
        PROJECT,
        &NewSmsNotice {
            kind: SmsNoticeKind::ChangeNotice,
            deadline: None,
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    wrong.pass().await.unwrap();
    assert_eq!(peer.refused_binds(), 2);
    assert_eq!(peer.received().len(), 2);
    let waiting = messages(&w.pool).await;
    assert!(waiting
        .iter()
        .filter(|m| m.state == MessageState::Pending)
        .all(|m| m
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("拒绝登录")));
}

/// What the HTTP SMS peer received: the idempotency key and the body of each request.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

#[tokio::test]
async fn http_template_provider_sends_the_registered_template_with_its_parameters() {
    let seen: Received = Arc::default();
    let shared = Arc::clone(&seen);
    let app = Router::new().route(
        "/sms",
        post(
            move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                let shared = Arc::clone(&shared);
                async move {
                    let key = headers
                        .get("Idempotency-Key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let mut guard = shared.lock().unwrap();
                    guard.push((key, body));
                    Json(json!({"Code": "OK", "BizId": format!("BIZ{}", guard.len())}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let w = world().await;
    let mut templates = BTreeMap::new();
    for kind in SmsNoticeKind::ALL {
        templates.insert(
            kind.as_str().to_string(),
            format!("SMS_{}", kind.as_str().len()),
        );
    }
    let config = SmsConfig {
        provider: SmsProviderKind::HttpTemplate,
        http_url: Some(format!("http://{addr}/sms")),
        http_templates: templates,
        ..smpp_config(&w, "unused:1", "unused")
    };
    let delivery = worker(&w, config.clone());
    sms::send_notice(
        &w.pool,
        Some(&config),
        PROJECT,
        &NewSmsNotice {
            kind: SmsNoticeKind::SecondQuotation,
            deadline: Some("2026-03-18T16:30:00+08:00".to_string()),
        },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap();
    delivery.pass().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let (key, body) = &seen[0];
    assert_eq!(body["PhoneNumbers"], "13812345678");
    assert_eq!(body["TemplateCode"], "SMS_16");
    assert_eq!(body["SignName"], "兰考县公共资源交易中心");
    assert_eq!(key.as_deref(), body["OutId"].as_str());
    let params: Value = serde_json::from_str(body["TemplateParam"].as_str().unwrap()).unwrap();
    assert_eq!(params["project"], NAME);
    assert_eq!(params["time"], "2026年3月18日16:30");
    let stored = messages(&w.pool).await;
    assert!(stored.iter().all(|m| m.state == MessageState::Acked));
}

#[tokio::test]
async fn bad_sms_input_is_refused_clearly() {
    let w = world().await;
    let error = sms::add_bidder(
        &w.pool,
        PROJECT,
        &NewBidder {
            name: "某公司".to_string(),
            phone: Some("0371-1234".to_string()),
        },
        w.clock.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert!(error.message.contains("手机号"), "{error}");
    let notice = NewSmsNotice {
        kind: SmsNoticeKind::Clarification,
        deadline: None,
    };
    let error = sms::send_notice(&w.pool, None, PROJECT, &notice, "a", w.clock.now())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::FailedPrecondition);
    let config = smpp_config(&w, "127.0.0.1:1", "x");
    let error = sms::send_notice(&w.pool, Some(&config), PROJECT, &notice, "a", w.clock.now())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert!(error.message.contains("截止时间") || error.message.contains("deadline"));
    assert!(messages(&w.pool).await.is_empty(), "nothing queued");
}

/// Through the daemon's API: bidders registered, a notice sent, the SMPP gateway reached; the
/// password in its file never appears in the log.
#[tokio::test]
async fn the_daemon_sends_a_notice_through_its_api() {
    use witness_tests::daemon::Daemon;
    let peer = SmppPeer::start("witness", "pw-SMPP-daemon").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("smpp.password");
    std::fs::write(&password_file, "pw-SMPP-daemon\n").unwrap();
    let config_path = dir.path().join("witness.toml");
    std::fs::write(
        &config_path,
        format!(
            "[integrations.sms]\nprovider = \"smpp\"\nsmpp_address = \"{}\"\nsmpp_system_id = \"witness\"\n\
             smpp_password_file = \"{}\"\ncenter_name = \"兰考县公共资源交易中心\"\n",
            peer.addr,
            password_file.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config_path))
        .await
        .unwrap();
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: PROJECT.to_string(),
            name: NAME.to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        })
        .await
        .unwrap();
    for body in [
        json!({"name": "河南兰考建设集团有限公司", "phone": "13812345678"}),
        json!({"name": "商丘路桥有限公司"}),
    ] {
        let _: Value = client
            .send_json(
                reqwest::Method::POST,
                &format!("/api/projects/{PROJECT}/bidders"),
                &body,
            )
            .await
            .unwrap();
    }
    let bidders: Vec<Value> = client
        .get_json(&format!("/api/projects/{PROJECT}/bidders"))
        .await
        .unwrap();
    assert_eq!(bidders[0]["phone"], "138****5678", "phones are masked");
    let result: Value = client
        .send_json(
            reqwest::Method::POST,
            &format!("/api/projects/{PROJECT}/sms-notices"),
            &json!({"kind": "change_notice"}),
        )
        .await
        .unwrap();
    assert_eq!(result["without_phone"], json!(["商丘路桥有限公司"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while peer.received().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no SMS reached the gateway"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(peer.received()[0].destination_addr, "8613812345678");
    assert!(peer.received()[0].text.contains("变更公告"));
    assert!(!daemon.log_text().contains("pw-SMPP-daemon"));
}
