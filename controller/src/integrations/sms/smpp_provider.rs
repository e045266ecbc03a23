//! The SMPP 3.4 provider of SMS notices: ONE kept-open bind_transceiver session, up to a
//! window of submit_sm in flight matched to their answers by sequence number, enquire_link
//! keep-alives, a new bind after the gateway dropped the session, a pause after
//! ESME_RTHROTTLED, and the gateway's delivery receipts (deliver_sm) stored, then answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use witness_schemas::smpp::{self, Pdu, SubmitSm};

use super::{lock, Receipt, Receipts, SendFuture, Sms, SmsOutcome, SmsProvider};
use crate::auth::mask_phone;

/// Where and how the SMPP provider binds.
#[derive(Clone)]
pub struct SmppSettings {
    pub address: String,
    pub system_id: String,
    pub password: String,
    pub source_addr: String,
    pub timeout: Duration,
    /// submit_sm in flight at once.
    pub window: usize,
    pub enquire_link: Duration,
}

impl std::fmt::Debug for SmppSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppSettings")
            .field("address", &self.address)
            .field("system_id", &self.system_id)
            .finish_non_exhaustive()
    }
}

/// SMPP 3.4 over one kept-open transceiver session: bound once and reused for every message,
/// with up to `window` submit_sm in flight matched to their answers by sequence number,
/// enquire_link keep-alives, a new bind when the gateway dropped the session, a pause after
/// ESME_RTHROTTLED, and the gateway's delivery receipts (deliver_sm) recorded and answered.
pub struct SmppProvider {
    settings: SmppSettings,
    receipts: Receipts,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    window: Semaphore,
    throttle: StdMutex<Throttle>,
}

#[derive(Debug, Default)]
struct Throttle {
    until: Option<tokio::time::Instant>,
    pause: Duration,
}

/// The first pause after ESME_RTHROTTLED; it doubles while the gateway keeps throttling.
const THROTTLE_PAUSE: Duration = Duration::from_millis(500);
const THROTTLE_PAUSE_MAX: Duration = Duration::from_secs(30);

impl std::fmt::Debug for SmppProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppProvider")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

async fn read_pdu<R: AsyncRead + Unpin>(stream: &mut R) -> std::io::Result<Pdu> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length =
        Pdu::length(header).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut bytes = header.to_vec();
    bytes.resize(length, 0);
    stream.read_exact(&mut bytes[4..]).await?;
    Pdu::decode(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// One bound session: the write half shared by whoever sends a PDU, and the requests waiting
/// for their answers by sequence number (the reader task hands each answer over).
struct Session {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: StdMutex<HashMap<u32, oneshot::Sender<Pdu>>>,
    sequence: AtomicU32,
    closed: AtomicBool,
    tasks: StdMutex<Vec<JoinHandle<()>>>,
    timeout: Duration,
    /// deliver_sm handed to the session's receipt task.
    delivers: mpsc::UnboundedSender<Pdu>,
}

/// How a request on a session ended.
enum Answer {
    Answered(Pdu),
    /// Nothing was written: the session was already closed.
    NotWritten(String),
    /// Written (maybe partly) and no answer came.
    Unknown(String),
}

impl Session {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Marks the session closed: the requests still waiting learn that no answer will come
    /// (their senders are dropped), and the reader and keep-alive stop.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.pending).clear();
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
    }

    fn next_sequence(&self) -> u32 {
        loop {
            // Sequence numbers run 1..=0x7FFFFFFF and wrap (SMPP 3.4 §5.1.4).
            let sequence = self.sequence.fetch_add(1, Ordering::SeqCst) & 0x7FFF_FFFF;
            if sequence != 0 {
                return sequence;
            }
        }
    }

    async fn write(&self, pdu: &Pdu) -> std::io::Result<()> {
        let bytes = pdu.encode();
        match tokio::time::timeout(self.timeout, async {
            self.writer.lock().await.write_all(&bytes).await
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "写入超时",
            )),
        }
    }

    /// Sends a request and waits for the answer with its sequence number.
    async fn request(&self, command_id: u32, body: Vec<u8>) -> Answer {
        if self.is_closed() {
            return Answer::NotWritten("短信网关会话已断开".to_string());
        }
        let sequence = self.next_sequence();
        let (sender, answer) = oneshot::channel();
        lock(&self.pending).insert(sequence, sender);
        if self.is_closed() {
            lock(&self.pending).remove(&sequence);
            return Answer::NotWritten("短信网关会话已断开".to_string());
        }
        if let Err(e) = self.write(&Pdu::new(command_id, 0, sequence, body)).await {
            // A failed write may still have delivered part or all of the PDU.
            lock(&self.pending).remove(&sequence);
            self.close();
            return Answer::Unknown(format!("发送时连接中断：{e}"));
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(pdu)) => Answer::Answered(pdu),
            Ok(Err(_)) => Answer::Unknown("应答之前短信网关会话中断".to_string()),
            Err(_) => {
                lock(&self.pending).remove(&sequence);
                Answer::Unknown("应答超时".to_string())
            }
        }
    }

    async fn respond(&self, command_id: u32, status: u32, sequence: u32, body: Vec<u8>) {
        if let Err(e) = self
            .write(&Pdu::new(command_id, status, sequence, body))
            .await
        {
            tracing::warn!(error = %e, "SMPP: answering the gateway failed; session closed");
            self.close();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
    }
}

/// Reads the session's PDUs: answers go to their waiting requests; deliver_sm (receipts),
/// enquire_link and unbind from the gateway are handled here. Holds the session only weakly,
/// so dropping the provider ends it.
async fn read_loop(mut reader: OwnedReadHalf, session: Weak<Session>) {
    loop {
        let pdu = read_pdu(&mut reader).await;
        let Some(session) = session.upgrade() else {
            return;
        };
        let pdu = match pdu {
            Ok(pdu) => pdu,
            Err(e) => {
                tracing::warn!(error = %e, "SMPP session ended by the gateway; the next SMS binds again");
                session.close();
                return;
            }
        };
        if pdu.command_id & smpp::RESPONSE_BIT != 0 {
            let waiting = lock(&session.pending).remove(&pdu.sequence);
            match waiting {
                Some(sender) => {
                    let _ = sender.send(pdu);
                }
                None => tracing::warn!(
                    sequence = pdu.sequence,
                    command = format_args!("0x{:08X}", pdu.command_id),
                    "SMPP answer to no waiting request (late after a time-out): ignored"
                ),
            }
            continue;
        }
        match pdu.command_id {
            smpp::DELIVER_SM => {
                // Stored before it is answered, off the reader so answers keep flowing.
                let _ = session.delivers.send(pdu);
            }
            smpp::ENQUIRE_LINK => {
                session
                    .respond(
                        smpp::ENQUIRE_LINK_RESP,
                        smpp::ESME_ROK,
                        pdu.sequence,
                        Vec::new(),
                    )
                    .await;
            }
            smpp::UNBIND => {
                session
                    .respond(smpp::UNBIND_RESP, smpp::ESME_ROK, pdu.sequence, Vec::new())
                    .await;
                tracing::info!("SMPP gateway unbound the session; the next SMS binds again");
                session.close();
                return;
            }
            other => {
                tracing::warn!(
                    command = format_args!("0x{other:08X}"),
                    "SMPP: unexpected request from the gateway"
                );
                session
                    .respond(smpp::GENERIC_NACK, ESME_RINVCMDID, pdu.sequence, Vec::new())
                    .await;
            }
        }
    }
}

/// ESME_RINVCMDID: a command we do not take.
const ESME_RINVCMDID: u32 = 0x0000_0003;

/// The session's deliver_sm, in bursts: each delivery receipt is stored (one transaction for
/// the burst), then answered; one that cannot be read is logged and answered too (the gateway
/// would otherwise send it again and again), and receipts that could not be stored are
/// answered with a temporary error so that the gateway delivers them again later.
async fn receipt_loop(
    mut delivers: mpsc::UnboundedReceiver<Pdu>,
    session: Weak<Session>,
    receipts: Receipts,
) {
    while let Some(first) = delivers.recv().await {
        let mut burst = vec![first];
        while burst.len() < 200 {
            match delivers.try_recv() {
                Ok(pdu) => burst.push(pdu),
                Err(_) => break,
            }
        }
        // (sequence, index into `parsed` when it is a receipt to store)
        let mut answers: Vec<(u32, Option<usize>)> = Vec::with_capacity(burst.len());
        let mut parsed = Vec::new();
        for pdu in &burst {
            let receipt = match smpp::ShortMessage::decode(&pdu.body) {
                Err(e) => {
                    tracing::warn!(error = %e, "SMPP deliver_sm undecodable: answered, not recorded");
                    None
                }
                Ok(sm) if !sm.is_delivery_receipt() => {
                    tracing::info!(from = %mask_phone(sm.source_addr.trim_start_matches("86")), "SMPP: a reply SMS (not a receipt) ignored");
                    None
                }
                Ok(sm) => match smpp::DeliveryReceipt::parse(&sm.text) {
                    Err(e) => {
                        tracing::warn!(error = %e, "SMPP: malformed delivery receipt answered, not recorded");
                        None
                    }
                    Ok(r) => Some(Receipt::from_smpp(&r, sm.receipted_message_id)),
                },
            };
            answers.push((
                pdu.sequence,
                receipt.map(|r| {
                    parsed.push(r);
                    parsed.len() - 1
                }),
            ));
        }
        let stored = parsed.is_empty()
            || {
                match receipts.record_all(&parsed).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "SMPP: storing delivery receipts failed; the gateway will resend them");
                        false
                    }
                }
            };
        let Some(session) = session.upgrade() else {
            return;
        };
        for (sequence, receipt) in answers {
            let status = if receipt.is_some() && !stored {
                smpp::ESME_RX_T_APPN
            } else {
                smpp::ESME_ROK
            };
            session
                .respond(
                    smpp::DELIVER_SM_RESP,
                    status,
                    sequence,
                    smpp::deliver_sm_resp(),
                )
                .await;
        }
    }
}

/// Sends enquire_link every `every`; an unanswered one closes the session (a gateway or NAT
/// that silently dropped the connection), so the next SMS binds again.
async fn keep_alive(session: Weak<Session>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(session) = session.upgrade() else {
            return;
        };
        if session.is_closed() {
            return;
        }
        match session.request(smpp::ENQUIRE_LINK, Vec::new()).await {
            Answer::Answered(pdu) if pdu.command_id == smpp::ENQUIRE_LINK_RESP => {}
            _ => {
                tracing::warn!(
                    "SMPP enquire_link unanswered: session closed, the next SMS binds again"
                );
                session.close();
                return;
            }
        }
    }
}

impl SmppProvider {
    pub fn new(settings: SmppSettings, receipts: Receipts) -> SmppProvider {
        let window = settings.window.max(1);
        SmppProvider {
            settings,
            receipts,
            session: tokio::sync::Mutex::new(None),
            window: Semaphore::new(window),
            throttle: StdMutex::new(Throttle::default()),
        }
    }

    /// The bound session, binding first if there is none (one bind at a time: concurrent
    /// sends wait for it and share it).
    async fn session(&self) -> std::result::Result<Arc<Session>, String> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(Arc::clone(session));
        }
        *slot = None;
        let session = self.bind().await?;
        *slot = Some(Arc::clone(&session));
        Ok(session)
    }

    async fn bind(&self) -> std::result::Result<Arc<Session>, String> {
        let timeout = self.settings.timeout;
        let stream =
            match tokio::time::timeout(timeout, TcpStream::connect(&self.settings.address)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("无法连接短信网关：{e}")),
                Err(_) => return Err("连接短信网关超时".to_string()),
            };
        // Small PDUs back to back: without TCP_NODELAY, Nagle's algorithm holds each one behind
        // the peer's delayed ACK of the previous (tens of ms), defeating the window.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "SMPP: TCP_NODELAY not set");
        }
        let (mut reader, mut writer) = stream.into_split();
        let bind = Pdu::new(
            smpp::BIND_TRANSCEIVER,
            0,
            1,
            smpp::bind_transceiver(&self.settings.system_id, &self.settings.password),
        );
        let answer = tokio::time::timeout(timeout, async {
            writer.write_all(&bind.encode()).await?;
            read_pdu(&mut reader).await
        })
        .await;
        match answer {
            Ok(Ok(pdu)) if pdu.command_id == smpp::BIND_TRANSCEIVER_RESP && pdu.status == 0 => {}
            Ok(Ok(pdu)) => {
                return Err(format!(
                    "短信网关拒绝登录（command_status 0x{:08X}）",
                    pdu.status
                ))
            }
            Ok(Err(e)) => return Err(format!("短信网关登录失败：{e}")),
            Err(_) => return Err("短信网关登录超时".to_string()),
        }
        let (delivers, delivered) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            delivers,
            writer: tokio::sync::Mutex::new(writer),
            pending: StdMutex::new(HashMap::new()),
            sequence: AtomicU32::new(2),
            closed: AtomicBool::new(false),
            tasks: StdMutex::new(Vec::new()),
            timeout,
        });
        let reader_task = tokio::spawn(read_loop(reader, Arc::downgrade(&session)));
        let receipt_task = tokio::spawn(receipt_loop(
            delivered,
            Arc::downgrade(&session),
            self.receipts.clone(),
        ));
        let keep_alive_task = tokio::spawn(keep_alive(
            Arc::downgrade(&session),
            self.settings.enquire_link,
        ));
        lock(&session.tasks).extend([reader_task, receipt_task, keep_alive_task]);
        tracing::info!(address = %self.settings.address, "SMPP session bound (transceiver)");
        Ok(session)
    }

    async fn wait_throttle(&self) {
        let until = lock(&self.throttle).until;
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn throttled(&self) {
        let mut throttle = lock(&self.throttle);
        throttle.pause = if throttle.pause.is_zero() {
            THROTTLE_PAUSE
        } else {
            (throttle.pause * 2).min(THROTTLE_PAUSE_MAX)
        };
        throttle.until = Some(tokio::time::Instant::now() + throttle.pause);
    }

    async fn submit(&self, sms: &Sms) -> SmsOutcome {
        let Ok(_permit) = self.window.acquire().await else {
            return SmsOutcome::NotSent("短信发送窗口已关闭".to_string());
        };
        self.wait_throttle().await;
        let session = match self.session().await {
            Ok(session) => session,
            Err(e) => return SmsOutcome::NotSent(e),
        };
        let body = SubmitSm {
            source_addr: self.settings.source_addr.clone(),
            destination_addr: format!("86{}", sms.phone),
            text: sms.text.clone(),
        }
        .encode();
        match session.request(smpp::SUBMIT_SM, body).await {
            Answer::NotWritten(e) => SmsOutcome::NotSent(e),
            Answer::Unknown(e) => SmsOutcome::Unknown(format!("submit_sm {e}")),
            Answer::Answered(pdu)
                if pdu.command_id == smpp::SUBMIT_SM_RESP && pdu.status == smpp::ESME_ROK =>
            {
                lock(&self.throttle).pause = Duration::ZERO;
                SmsOutcome::Accepted(smpp::Reader::new(&pdu.body).c_string().unwrap_or_default())
            }
            Answer::Answered(pdu) if pdu.status == smpp::ESME_RTHROTTLED => {
                self.throttled();
                SmsOutcome::NotSent("短信网关限流（ESME_RTHROTTLED），稍后重试".to_string())
            }
            // The gateway answered with an error: it did not take the message.
            Answer::Answered(pdu) => SmsOutcome::NotSent(format!(
                "短信网关未接收（command_status 0x{:08X}）",
                pdu.status
            )),
        }
    }
}

impl SmsProvider for SmppProvider {
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a> {
        Box::pin(self.submit(sms))
    }

    fn window(&self) -> usize {
        self.settings.window.max(1)
    }
}
