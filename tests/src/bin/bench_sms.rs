//! SMS throughput benchmark: messages/s through the real SMS worker (`integrations::sms`, SQLite
//! catalog as the daemon opens it) to the in-process SMPP 3.4 peer on loopback, with the kept-open
//! transceiver session (window 8 and window 1 without delivery receipts, so that only the
//! transport differs; window 8 with a receipt per message recorded), beside the old way as the
//! baseline: one bind_transmitter / submit_sm / unbind session per message, through the same
//! worker. Run at the peer's answer delays given (0 = loopback, 5 ms = a gateway a WAN away).
//!
//! `cargo run --release -p witness-tests --bin bench_sms -- [MESSAGES] [DELAY_MS…]`
//! (defaults: 2000 messages, delays 0 and 5)

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use witness_controller::clock::{Clock, SimulatedClock};
use witness_controller::integrations::sms::{
    self, SendFuture, Sms, SmsDelivery, SmsOutcome, SmsProvider,
};
use witness_controller::{catalog, db};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::integration::{
    MessageState, NewBidder, NewSmsNotice, SmsConfig, SmsNoticeKind, SmsProviderKind, SMS,
};
use witness_schemas::smpp::{self, Pdu, SubmitSm};
use witness_tests::smpp_peer::SmppPeer;

const PROJECT: &str = "BENCH-SMS-0001";
const PASSWORD: &str = "bench-pw";

/// The old provider, kept here as the baseline: a session per message, nothing in flight
/// beside it.
struct PerMessageSmpp {
    address: String,
}

async fn read_pdu(stream: &mut TcpStream) -> std::io::Result<Pdu> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length = Pdu::length(header).map_err(std::io::Error::other)?;
    let mut bytes = header.to_vec();
    bytes.resize(length, 0);
    stream.read_exact(&mut bytes[4..]).await?;
    Pdu::decode(&bytes).map_err(std::io::Error::other)
}

impl PerMessageSmpp {
    async fn session(&self, sms: &Sms) -> std::io::Result<SmsOutcome> {
        let mut stream = TcpStream::connect(&self.address).await?;
        let bind = Pdu::new(
            smpp::BIND_TRANSMITTER,
            0,
            1,
            smpp::bind_transmitter("witness", PASSWORD),
        );
        stream.write_all(&bind.encode()).await?;
        let answer = read_pdu(&mut stream).await?;
        if answer.status != 0 {
            return Ok(SmsOutcome::NotSent("bind refused".to_string()));
        }
        let submit = SubmitSm {
            source_addr: "JYZX".to_string(),
            destination_addr: format!("86{}", sms.phone),
            text: sms.text.clone(),
        };
        stream
            .write_all(&Pdu::new(smpp::SUBMIT_SM, 0, 2, submit.encode()).encode())
            .await?;
        let answer = read_pdu(&mut stream).await?;
        let id = smpp::Reader::new(&answer.body)
            .c_string()
            .unwrap_or_default();
        stream
            .write_all(&Pdu::new(smpp::UNBIND, 0, 3, Vec::new()).encode())
            .await?;
        read_pdu(&mut stream).await?;
        Ok(SmsOutcome::Accepted(id))
    }
}

impl SmsProvider for PerMessageSmpp {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a> {
        Box::pin(async move {
            self.session(sms)
                .await
                .unwrap_or_else(|e| SmsOutcome::Unknown(e.to_string()))
        })
    }
}

fn config(dir: &std::path::Path, address: &str) -> Result<SmsConfig> {
    let password_file = dir.join("smpp.password");
    std::fs::write(&password_file, PASSWORD)?;
    Ok(SmsConfig {
        provider: SmsProviderKind::Smpp,
        smpp_address: Some(address.to_string()),
        smpp_system_id: Some("witness".to_string()),
        smpp_password_file: Some(password_file),
        smpp_source_addr: "JYZX".to_string(),
        http_url: None,
        http_token_file: None,
        http_sign_name: "基准".to_string(),
        http_templates: Default::default(),
        center_name: "基准交易中心".to_string(),
        max_attempts: 24,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        timeout_seconds: 10.0,
        smpp_window: 8,
        smpp_enquire_link_seconds: 30.0,
        http_status_url: None,
        http_status_poll_seconds: 60,
    })
}

#[derive(Clone, Copy)]
enum Way {
    KeptOpen { window: u32, receipts: bool },
    PerMessage,
}

/// Queues one notice to `messages` bidders and times the worker until all are acknowledged.
async fn run(way: Way, messages: usize, delay: Duration) -> Result<f64> {
    let peer = SmppPeer::start("witness", PASSWORD).await?;
    peer.set_answer_delay(delay);
    peer.set_receipts(matches!(way, Way::KeptOpen { receipts: true, .. }));
    let dir = tempfile::tempdir()?;
    let pool = db::open(dir.path()).await?;
    let clock = Arc::new(SimulatedClock::new(datetime!(2026-03-17 15:00 +8)));
    catalog::create_project(
        &pool,
        &NewProject {
            number: PROJECT.to_string(),
            name: "基准项目".to_string(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".to_string(),
        },
        clock.now(),
    )
    .await?;
    for i in 0..messages {
        sms::add_bidder(
            &pool,
            PROJECT,
            &NewBidder {
                name: format!("投标人{i:05}"),
                phone: Some(format!("137{i:08}")),
            },
            clock.now(),
        )
        .await?;
    }
    let mut config = config(dir.path(), &peer.addr.to_string())?;
    let provider: Box<dyn SmsProvider> = match way {
        Way::KeptOpen { window, .. } => {
            config.smpp_window = window;
            let receipts = sms::Receipts::new(pool.clone(), Arc::clone(&clock) as Arc<dyn Clock>);
            sms::provider(&config, receipts)?
        }
        Way::PerMessage => Box::new(PerMessageSmpp {
            address: peer.addr.to_string(),
        }),
    };
    let delivery = SmsDelivery::new(
        pool.clone(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        config.clone(),
        provider,
    );
    sms::send_notice(
        &pool,
        Some(&config),
        PROJECT,
        &NewSmsNotice {
            kind: SmsNoticeKind::BidOpening,
            deadline: None,
        },
        "bench",
        clock.now(),
    )
    .await?;
    let started = Instant::now();
    while delivery.pass().await? > 0 {}
    let mut seconds = started.elapsed().as_secs_f64();
    let stored =
        witness_controller::integrations::outbox::messages(&pool, SMS, None, 10_000).await?;
    ensure!(
        stored.len() == messages && stored.iter().all(|m| m.state == MessageState::Acked),
        "not every SMS was acknowledged"
    );
    ensure!(
        peer.received().len() == messages,
        "the peer got a duplicate or missed one"
    );
    if let Way::KeptOpen { receipts, .. } = way {
        ensure!(peer.binds() == 1, "{} binds", peer.binds());
        if receipts {
            // Receipts come after the acknowledgements: wait (bounded) until all are stored.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (recorded, _, _) = sms::delivery_counts(&pool).await?;
                if recorded as usize == messages {
                    break;
                }
                ensure!(Instant::now() < deadline, "{recorded} receipts recorded");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seconds = started.elapsed().as_secs_f64();
        }
    }
    Ok(messages as f64 / seconds)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut delays: Vec<u64> = args.filter_map(|a| a.parse().ok()).collect();
    if delays.is_empty() {
        delays = vec![0, 5];
    }
    println!("messages: {messages}");
    for delay in delays {
        let delay = Duration::from_millis(delay);
        let open = |window, receipts| Way::KeptOpen { window, receipts };
        let kept = run(open(8, false), messages, delay).await?;
        let kept_one = run(open(1, false), messages, delay).await?;
        let with_receipts = run(open(8, true), messages, delay).await?;
        let baseline = run(Way::PerMessage, messages, delay).await?;
        println!("gateway answer delay {} ms:", delay.as_millis());
        println!("  kept-open session, window 8:                 {kept:8.0} msg/s");
        println!("  kept-open session, window 1:                 {kept_one:8.0} msg/s");
        println!("  kept-open, window 8, every receipt recorded: {with_receipts:8.0} msg/s");
        println!("  session per message (baseline):              {baseline:8.0} msg/s");
        println!(
            "  ratio to baseline: window 8 {:.2}, window 1 {:.2}, window 8 + receipts {:.2}",
            kept / baseline,
            kept_one / baseline,
            with_receipts / baseline
        );
    }
    Ok(())
}
