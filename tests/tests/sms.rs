//! SMS notices to bidders: through the real SMS worker over a real SQLite catalog with a
//! simulated clock, to an in-process SMPP 3.4 gateway peer and to an HTTP template stand-in.
//! Every bidder with a phone gets the notice once; a bidder without one is named; a throttled
//! message is retried; a message whose outcome is unknown is never resent automatically; one
//! kept-open session carries many messages (bound again after the gateway drops it); delivery
//! reports are recorded against their messages, and a failed one is resent only by hand.

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
    MessageState, NewBidder, NewSmsNotice, SmsConfig, SmsDeliveryReport, SmsNoticeKind,
    SmsProviderKind, SMS,
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
        smpp_window: 8,
        smpp_enquire_link_seconds: 30.0,
        http_status_url: None,
        http_status_poll_seconds: 60,
    }
}

fn worker(w: &World, config: SmsConfig) -> SmsDelivery {
    let receipts = sms::Receipts::new(w.pool.clone(), Arc::clone(&w.clock) as Arc<dyn Clock>);
    let provider = sms::provider(&config, receipts).unwrap();
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

/// A daemon sending SMS through `peer` (logging in with `password`) and holding the project.
async fn daemon_with_project(
    peer: &SmppPeer,
    password: &str,
    dir: &std::path::Path,
) -> witness_tests::daemon::Daemon {
    let config_path = dir.join("witness.toml");
    std::fs::write(&config_path, peer.sms_section(dir, password).unwrap()).unwrap();
    let daemon = witness_tests::daemon::Daemon::start(&dir.join("data"), Some(&config_path))
        .await
        .unwrap();
    daemon
        .client()
        .add_project(&NewProject {
            number: PROJECT.to_string(),
            name: NAME.to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        })
        .await
        .unwrap();
    daemon
}

/// Through the daemon's API: bidders registered, a notice sent, the SMPP gateway reached, the
/// failed delivery report listed and resent by hand (audited); the password in its file and
/// the full phone number never appear in the log.
#[tokio::test]
async fn the_daemon_sends_a_notice_through_its_api() {
    let peer = SmppPeer::start("witness", "pw-SMPP-daemon").await.unwrap();
    peer.set_receipt("13812345678", "UNDELIV", "001");
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_project(&peer, "pw-SMPP-daemon", dir.path()).await;
    let client = daemon.client();
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

    // The handset's report says undeliverable: listed as failed, resent by hand once (a new
    // message), and the resend is in the audit log.
    let failed = loop {
        let failed: Vec<Value> = client
            .get_json("/api/integrations/sms/deliveries?failed=true")
            .await
            .unwrap();
        if !failed.is_empty() {
            break failed;
        }
        assert!(std::time::Instant::now() < deadline, "no failed receipt");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(failed[0]["delivery_state"], "UNDELIV");
    assert_eq!(failed[0]["phone"], "138****5678");
    let id = failed[0]["id"].as_i64().unwrap();
    peer.set_receipt("13812345678", "DELIVRD", "000");
    let resend = format!("/api/integrations/sms/messages/{id}/resend");
    let resent: Value = client.post_json(&resend).await.unwrap();
    assert_ne!(resent["id"].as_i64(), Some(id));
    let twice = client.post_json::<Value>(&resend).await.unwrap_err();
    assert!(twice.to_string().contains("已重发"), "{twice}");
    while peer.received().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the resend did not go out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let audit: Vec<Value> = client.get_json("/api/audit").await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e["target"].as_str().unwrap_or_default().contains(&resend)),
        "the resend is audited"
    );
    assert!(!daemon.log_text().contains("pw-SMPP-daemon"));
    assert!(
        !daemon.log_text().contains("13812345678"),
        "phones are masked in the log"
    );
}

/// Waits (bounded) until `done` holds; the SMPP peer answers from its own tasks.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn notice(w: &World, config: &SmsConfig, kind: SmsNoticeKind) -> Vec<i64> {
    let deadline = matches!(
        kind,
        SmsNoticeKind::Clarification | SmsNoticeKind::SecondQuotation
    )
    .then(|| "2026-03-18T14:00:00+08:00".to_string());
    sms::send_notice(
        &w.pool,
        Some(config),
        PROJECT,
        &NewSmsNotice { kind, deadline },
        "archivist",
        w.clock.now(),
    )
    .await
    .unwrap()
    .message_ids
}

async fn reports(pool: &SqlitePool) -> Vec<SmsDeliveryReport> {
    sms::deliveries(pool, false, 1000).await.unwrap()
}

/// How many times the peer received each (destination, text).
fn copies(peer: &SmppPeer) -> BTreeMap<(String, String), usize> {
    let mut copies = BTreeMap::new();
    for m in peer.received() {
        *copies.entry((m.destination_addr, m.text)).or_default() += 1;
    }
    copies
}

#[tokio::test]
async fn smpp_receipts_are_recorded_against_their_messages_and_a_failure_is_resent_by_hand() {
    let peer = SmppPeer::start("witness", "pw-SMPP-1").await.unwrap();
    peer.set_receipt("13900001111", "UNDELIV", "052");
    let w = world().await;
    let config = smpp_config(&w, &peer.addr.to_string(), "pw-SMPP-1");
    let delivery = worker(&w, config.clone());
    let ids = notice(&w, &config, SmsNoticeKind::BidOpening).await;
    assert_eq!(delivery.pass().await.unwrap(), 2);
    eventually("both receipts recorded", || async {
        reports(&w.pool)
            .await
            .iter()
            .all(|r| r.delivery_state.is_some())
    })
    .await;
    let all = reports(&w.pool).await;
    let by_id = |id: i64| all.iter().find(|r| r.id == id).unwrap().clone();
    let (first, second) = (by_id(ids[0]), by_id(ids[1]));
    assert_eq!(first.phone, "138****5678");
    assert_eq!(first.delivery_state.as_deref(), Some("DELIVRD"));
    assert!(!first.delivery_failed);
    // The receipt's done date (2603180931, China Standard Time).
    assert_eq!(
        first.delivered_at.as_deref(),
        Some("2026-03-18T09:31:00+08:00")
    );
    assert_eq!(second.bidder, "开封市政工程有限公司");
    assert_eq!(second.delivery_state.as_deref(), Some("UNDELIV"));
    assert_eq!(second.delivery_error.as_deref(), Some("052"));
    assert!(second.delivery_failed);
    assert_eq!(second.delivered_at, None);
    // The gateway did accept both: the outbox says acked, and nothing is resent by itself.
    assert!(all.iter().all(|r| r.state == MessageState::Acked));
    let failed = sms::deliveries(&w.pool, true, 100).await.unwrap();
    assert_eq!(
        failed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    for _ in 0..3 {
        w.clock.advance(time::Duration::hours(1));
        delivery.pass().await.unwrap();
    }
    assert_eq!(peer.received().len(), 2);
    // Every receipt was answered with ESME_ROK.
    eventually("receipts answered", || async {
        let (answered, waiting) = peer.deliver_answers();
        waiting == 0 && answered.len() == 2
    })
    .await;
    assert!(peer.deliver_answers().0.iter().all(|s| *s == 0));

    // Only a failed one can be resent, once, as a new message with a new key.
    let refused = sms::resend(&w.pool, ids[0], "admin", w.clock.now())
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::FailedPrecondition);
    assert!(refused.message.contains("没有失败回执"), "{refused}");
    peer.set_receipt("13900001111", "DELIVRD", "000");
    let resent = sms::resend(&w.pool, ids[1], "admin", w.clock.now())
        .await
        .unwrap();
    assert_ne!(resent.id, ids[1]);
    assert!(resent
        .idempotency_key
        .ends_with(&format!(":resend-of-{}", ids[1])));
    let again = sms::resend(&w.pool, ids[1], "admin", w.clock.now())
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::FailedPrecondition);
    assert!(again
        .message
        .contains(&format!("已重发为消息 {}", resent.id)));
    delivery.pass().await.unwrap();
    eventually("the resent SMS delivered", || async {
        reports(&w.pool)
            .await
            .iter()
            .any(|r| r.id == resent.id && r.delivery_state.as_deref() == Some("DELIVRD"))
    })
    .await;
    let copies = copies(&peer);
    let to = |phone: &str| {
        copies
            .iter()
            .filter(|((d, _), _)| d == &format!("86{phone}"))
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert_eq!(to("13812345678"), 1);
    assert_eq!(to("13900001111"), 2, "the failed one once more, by hand");
    let old = reports(&w.pool).await;
    assert_eq!(
        old.iter().find(|r| r.id == ids[1]).unwrap().resent_as,
        Some(resent.id)
    );
    // All of it over one session.
    assert_eq!(peer.binds(), 1);
}

#[tokio::test]
async fn a_malformed_receipt_is_answered_and_does_not_break_the_session() {
    let peer = SmppPeer::start("witness", "pw-SMPP-1").await.unwrap();
    let w = world().await;
    let config = smpp_config(&w, &peer.addr.to_string(), "pw-SMPP-1");
    let delivery = worker(&w, config.clone());
    notice(&w, &config, SmsNoticeKind::BidOpening).await;
    delivery.pass().await.unwrap();
    eventually("the two receipts answered", || async {
        peer.deliver_answers().0.len() == 2
    })
    .await;
    // Garbage, an unknown stat, a receipt about no message of ours, a truncated one.
    for text in [
        "\u{1}\u{2}garbage",
        "id:MSG000001 sub:001 stat:WHATEVER",
        "id:NOT-OURS stat:UNDELIV err:001",
        "id:MSG00",
    ] {
        peer.send_receipt_text(text).await;
    }
    eventually("the four odd receipts answered", || async {
        peer.deliver_answers().0.len() == 6
    })
    .await;
    let (answered, waiting) = peer.deliver_answers();
    assert_eq!(waiting, 0);
    assert!(answered.iter().all(|s| *s == 0), "{answered:?}");
    // None of them changed a message; the one about no message of ours is kept.
    let states: Vec<Option<String>> = reports(&w.pool)
        .await
        .into_iter()
        .map(|r| r.delivery_state)
        .collect();
    assert_eq!(states, vec![Some("DELIVRD".to_string()); 2]);
    let kept: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sms_receipts WHERE receipt_id = 'NOT-OURS'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(kept.0, 1);
    // The session still carries messages and receipts.
    notice(&w, &config, SmsNoticeKind::ChangeNotice).await;
    delivery.pass().await.unwrap();
    assert_eq!(peer.received().len(), 4);
    assert!(messages(&w.pool)
        .await
        .iter()
        .all(|m| m.state == MessageState::Acked));
    eventually("receipts of the second notice", || async {
        reports(&w.pool)
            .await
            .iter()
            .all(|r| r.delivery_state.as_deref() == Some("DELIVRD"))
    })
    .await;
    assert_eq!(peer.binds(), 1);
}

#[tokio::test]
async fn one_bind_carries_many_messages_with_several_in_flight_and_keep_alives() {
    let peer = SmppPeer::start("witness", "pw-SMPP-1").await.unwrap();
    // A gateway's latency: with one message per round trip, 40 messages would take 40 delays.
    peer.set_answer_delay(std::time::Duration::from_millis(30));
    let w = world().await;
    for i in 0..38 {
        sms::add_bidder(
            &w.pool,
            PROJECT,
            &NewBidder {
                name: format!("投标人{i:02}"),
                phone: Some(format!("137{i:08}")),
            },
            w.clock.now(),
        )
        .await
        .unwrap();
    }
    let config = SmsConfig {
        smpp_enquire_link_seconds: 0.05,
        ..smpp_config(&w, &peer.addr.to_string(), "pw-SMPP-1")
    };
    let delivery = worker(&w, config.clone());
    let ids = notice(&w, &config, SmsNoticeKind::BidOpening).await;
    assert_eq!(ids.len(), 40);
    assert_eq!(delivery.pass().await.unwrap(), 40);
    assert!(messages(&w.pool)
        .await
        .iter()
        .all(|m| m.state == MessageState::Acked));
    assert_eq!(peer.received().len(), 40);
    assert_eq!(copies(&peer).values().max(), Some(&1));
    assert_eq!(peer.binds(), 1, "one session for every message");
    let in_flight = peer.max_in_flight();
    assert!(
        (2..=8).contains(&in_flight),
        "submit_sm outstanding at once: {in_flight} (window 8)"
    );
    // Idle: the session is kept alive with enquire_link and not bound again.
    eventually("keep-alives answered", || async {
        peer.enquire_links() >= 3
    })
    .await;
    notice(&w, &config, SmsNoticeKind::ChangeNotice).await;
    delivery.pass().await.unwrap();
    assert_eq!(peer.received().len(), 80);
    assert_eq!(peer.binds(), 1);
}

#[tokio::test]
async fn a_dropped_session_is_bound_again_without_a_duplicate() {
    let peer = SmppPeer::start("witness", "pw-SMPP-1").await.unwrap();
    let w = world().await;
    let config = smpp_config(&w, &peer.addr.to_string(), "pw-SMPP-1");
    let delivery = worker(&w, config.clone());
    notice(&w, &config, SmsNoticeKind::BidOpening).await;
    delivery.pass().await.unwrap();
    assert_eq!(peer.binds(), 1);
    // The gateway restarts while the session is idle. Give the reader a moment to see the
    // end of the connection (were a submit to beat it, that SMS would be dead as "unknown"
    // and the assertions below would say so).
    peer.drop_sessions().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    notice(&w, &config, SmsNoticeKind::ChangeNotice).await;
    delivery.pass().await.unwrap();
    assert_eq!(peer.binds(), 2, "bound again after the drop");
    // The gateway drops the session after reading a submit: that SMS may have been sent, so
    // it is not sent again; the others go out over a third session.
    peer.push_faults(&[SmppFault::DropAfterSubmit]);
    let third = notice(&w, &config, SmsNoticeKind::Clarification).await;
    delivery.pass().await.unwrap();
    for _ in 0..5 {
        w.clock.advance(time::Duration::hours(1));
        delivery.pass().await.unwrap();
    }
    assert_eq!(
        copies(&peer).values().max(),
        Some(&1),
        "no SMS reached the gateway twice: {:?}",
        copies(&peer)
    );
    let stored = messages(&w.pool).await;
    for m in &stored {
        if third.contains(&m.id) {
            // In flight together when the session dropped: dead as unknown, or (when its
            // submit was not yet written) sent on a new session.
            assert!(
                m.state == MessageState::Acked
                    || (m.state == MessageState::Dead && m.fault.as_deref() == Some("unknown")),
                "{m:?}"
            );
        } else {
            assert_eq!(m.state, MessageState::Acked, "{m:?}");
        }
    }
    assert!(stored
        .iter()
        .any(|m| m.state == MessageState::Dead && m.fault.as_deref() == Some("unknown")));
}

/// What the HTTP stand-in's status query answers, per BizId.
type Statuses = Arc<Mutex<BTreeMap<String, Value>>>;

#[tokio::test]
async fn http_template_delivery_reports_are_queried_and_recorded() {
    let statuses: Statuses = Arc::default();
    let tokens: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let sent = Arc::new(Mutex::new(0u32));
    let (statuses_for_app, tokens_for_app) = (Arc::clone(&statuses), Arc::clone(&tokens));
    let app = Router::new()
        .route(
            "/sms",
            post(move || {
                let sent = Arc::clone(&sent);
                async move {
                    let mut n = sent.lock().unwrap();
                    *n += 1;
                    Json(json!({"Code": "OK", "BizId": format!("BIZ{n}")}))
                }
            }),
        )
        .route(
            "/status",
            post(
                move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                    let statuses = Arc::clone(&statuses_for_app);
                    let tokens = Arc::clone(&tokens_for_app);
                    async move {
                        tokens.lock().unwrap().push(
                            headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string),
                        );
                        let statuses = statuses.lock().unwrap();
                        let details: Vec<Value> = body["BizIds"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter_map(|id| statuses.get(id.as_str().unwrap()).cloned())
                            .collect();
                        Json(json!({"Code": "OK", "Details": details}))
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let w = world().await;
    let token_file = w.dir.path().join("sms.token");
    std::fs::write(&token_file, "tok-SMS-9\n").unwrap();
    let templates = SmsNoticeKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), "SMS_1".to_string()))
        .collect();
    let config = SmsConfig {
        provider: SmsProviderKind::HttpTemplate,
        http_url: Some(format!("http://{addr}/sms")),
        http_status_url: Some(format!("http://{addr}/status")),
        http_token_file: Some(token_file),
        http_templates: templates,
        ..smpp_config(&w, "unused:1", "unused")
    };
    let delivery = worker(&w, config.clone());
    let ids = notice(&w, &config, SmsNoticeKind::ChangeNotice).await;
    delivery.pass().await.unwrap();
    // Nothing reported yet (SendStatus 1: waiting): nothing recorded, asked again later.
    for id in ["BIZ1", "BIZ2"] {
        statuses
            .lock()
            .unwrap()
            .insert(id.to_string(), json!({"BizId": id, "SendStatus": 1}));
    }
    assert_eq!(delivery.query_receipts().await.unwrap(), 0);
    statuses.lock().unwrap().insert(
        "BIZ1".to_string(),
        json!({"BizId": "BIZ1", "SendStatus": 3, "ErrCode": "DELIVERED", "ReceiveDate": "2026-03-17 15:00:07"}),
    );
    statuses.lock().unwrap().insert(
        "BIZ2".to_string(),
        json!({"BizId": "BIZ2", "SendStatus": 2, "ErrCode": "MOBILE_NOT_ON_SERVICE", "ReceiveDate": "2026-03-17 15:00:09"}),
    );
    assert_eq!(delivery.query_receipts().await.unwrap(), 2);
    let all = reports(&w.pool).await;
    let by_id = |id: i64| all.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(ids[0]).delivery_state.as_deref(), Some("DELIVRD"));
    assert_eq!(
        by_id(ids[0]).delivered_at.as_deref(),
        Some("2026-03-17T15:00:07+08:00")
    );
    assert_eq!(by_id(ids[1]).delivery_state.as_deref(), Some("UNDELIV"));
    assert_eq!(
        by_id(ids[1]).delivery_error.as_deref(),
        Some("MOBILE_NOT_ON_SERVICE")
    );
    // Messages with a final report are not asked about again.
    assert_eq!(delivery.query_receipts().await.unwrap(), 0);
    // Three queries went out: the worker's pass asks by itself (first query due at once),
    // then the two above; the last call had nothing left to ask about.
    assert_eq!(tokens.lock().unwrap().len(), 3);
    assert!(tokens
        .lock()
        .unwrap()
        .iter()
        .all(|t| t.as_deref() == Some("Bearer tok-SMS-9")));
}

/// kill -9 while SMS are in flight (the gateway slow to answer): after the restart they are
/// dead letters with an unknown outcome, and the gateway never gets them a second time.
#[tokio::test]
async fn sms_in_flight_at_a_kill_are_not_sent_again_after_the_restart() {
    let peer = SmppPeer::start("witness", "pw-SMPP-kill").await.unwrap();
    peer.set_answer_delay(std::time::Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon_with_project(&peer, "pw-SMPP-kill", dir.path()).await;
    let client = daemon.client();
    for (name, phone) in [("甲公司", "13812345678"), ("乙公司", "13900001111")] {
        let _: Value = client
            .send_json(
                reqwest::Method::POST,
                &format!("/api/projects/{PROJECT}/bidders"),
                &json!({"name": name, "phone": phone}),
            )
            .await
            .unwrap();
    }
    let _: Value = client
        .send_json(
            reqwest::Method::POST,
            &format!("/api/projects/{PROJECT}/sms-notices"),
            &json!({"kind": "bid_opening"}),
        )
        .await
        .unwrap();
    eventually("both submits at the gateway", || async {
        peer.received().len() == 2
    })
    .await;
    daemon.kill9();
    peer.set_answer_delay(std::time::Duration::ZERO);
    daemon.restart().await.unwrap();
    let client = daemon.client();
    eventually("the interrupted SMS are dead letters", || async {
        let dead: Vec<Value> = client
            .get_json("/api/integrations/sms/messages?state=dead")
            .await
            .unwrap_or_default();
        dead.len() == 2
    })
    .await;
    let dead: Vec<Value> = client
        .get_json("/api/integrations/sms/messages?state=dead")
        .await
        .unwrap();
    assert!(
        dead.iter()
            .all(|m| m["fault"] == "unknown"
                && m["last_error"].as_str().unwrap().contains("无法确认"))
    );
    assert_eq!(peer.received().len(), 2, "nothing sent a second time");
    assert_eq!(copies(&peer).values().max(), Some(&1));
}

/// The 对接 page as the first admin in headless Chromium: the SMS whose receipt says
/// undeliverable is listed under 回执失败 with its reason, and 人工重发 sends it once more.
#[tokio::test]
async fn the_integrations_page_lists_failed_receipts_and_resends_by_hand() {
    use witness_tests::browser::Browser;
    let peer = SmppPeer::start("witness", "pw-SMPP-page").await.unwrap();
    peer.set_receipt("13812345678", "EXPIRED", "027");
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_project(&peer, "pw-SMPP-page", dir.path()).await;
    let client = daemon.client();
    let _: Value = client
        .send_json(
            reqwest::Method::POST,
            &format!("/api/projects/{PROJECT}/bidders"),
            &json!({"name": "河南兰考建设集团有限公司", "phone": "13812345678"}),
        )
        .await
        .unwrap();
    let _: Value = client
        .send_json(
            reqwest::Method::POST,
            &format!("/api/projects/{PROJECT}/sms-notices"),
            &json!({"kind": "bid_opening"}),
        )
        .await
        .unwrap();
    eventually("the expired receipt recorded", || async {
        let failed: Vec<Value> = client
            .get_json("/api/integrations/sms/deliveries?failed=true")
            .await
            .unwrap_or_default();
        !failed.is_empty()
    })
    .await;
    peer.set_receipt("13812345678", "DELIVRD", "000");

    let browser = Browser::launch().await.unwrap();
    browser
        .open_as_first_admin(
            &format!("{}/integrations.html", daemon.url),
            &daemon.admin_password().expect("first admin password"),
            "Sms-Page-2026-new",
        )
        .await
        .unwrap();
    let text = "document.getElementById('targets').textContent";
    browser
        .wait_for(
            &format!(
                "{text}.includes('回执失败') && {text}.includes('已过期（EXPIRED）') \
                 && {text}.includes('138****5678') && {text}.includes('人工重发')"
            ),
            std::time::Duration::from_secs(20),
        )
        .await
        .unwrap();
    browser
        .eval("[...document.querySelectorAll('#targets h3')].find(h => h.textContent.startsWith('回执失败')).scrollIntoView()")
        .await
        .unwrap();
    browser
        .screenshot(&dir.path().join("integrations-sms.png"))
        .await
        .unwrap();
    if let Some(keep) = std::env::var_os("WITNESS_SCREENSHOT_DIR") {
        std::fs::copy(
            dir.path().join("integrations-sms.png"),
            std::path::Path::new(&keep).join("integrations-sms.png"),
        )
        .unwrap();
    }
    browser
        .eval(
            "window.confirm = () => true; \
             [...document.querySelectorAll('#targets button')].find(b => b.textContent === '人工重发').click()",
        )
        .await
        .unwrap();
    eventually("the resend reached the gateway", || async {
        peer.received().len() == 2
    })
    .await;
    browser
        .wait_for(
            &format!("{text}.includes('已重发为消息')"),
            std::time::Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(copies(&peer).values().sum::<usize>(), 2);
}
