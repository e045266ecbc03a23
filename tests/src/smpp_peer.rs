//! An in-process SMPP 3.4 server peer (a stand-in SMS gateway) on loopback: it checks the
//! bind credentials (bind_transmitter or bind_transceiver), decodes every submit_sm (UCS-2
//! text, message_payload TLV), records it, answers submit_sm_resp with a message id (after a
//! configurable delay, so several can be in flight), sends a delivery receipt (deliver_sm) to a
//! transceiver with a configurable stat per destination, answers enquire_link, and on command
//! throttles (ESME_RTHROTTLED), drops the connection after reading a submit_sm without
//! answering (an outcome the sender cannot know), drops every session, or sends any receipt
//! text (a malformed one included).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use witness_schemas::smpp::{self, DeliveryReceipt, Pdu, SubmitSm};

/// How the peer answers the next submit_sm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmppFault {
    /// Answers ESME_RTHROTTLED: the message was not taken.
    Throttle,
    /// Records the message, then closes the connection without an answer.
    DropAfterSubmit,
}

/// The receipt sent for messages to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPlan {
    /// DELIVRD, UNDELIV, EXPIRED, REJECTD, …
    pub stat: String,
    pub err: String,
}

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

struct Connection {
    writer: Writer,
    transceiver: bool,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    faults: VecDeque<SmppFault>,
    received: Vec<SubmitSm>,
    binds: u64,
    refused_binds: u64,
    enquire_links: u64,
    next_id: u64,
    next_connection: u64,
    next_sequence: u32,
    connections: HashMap<u64, Connection>,
    /// Per destination (as sent, 86…); others get DELIVRD.
    receipt_plans: HashMap<String, ReceiptPlan>,
    receipt_delay: Duration,
    /// Receipts are sent to transceivers unless switched off (the benchmark compares the
    /// transport alone too).
    no_receipts: bool,
    answer_delay: Duration,
    /// The deliver_sm sent and the command_status of their deliver_sm_resp, if one came.
    delivers: HashMap<u32, Option<u32>>,
    in_flight: u64,
    max_in_flight: u64,
}

pub struct SmppPeer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_pdu<R: AsyncRead + Unpin>(stream: &mut R) -> Option<Pdu> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.ok()?;
    let length = Pdu::length(header).ok()?;
    let mut bytes = header.to_vec();
    bytes.resize(length, 0);
    stream.read_exact(&mut bytes[4..]).await.ok()?;
    Pdu::decode(&bytes).ok()
}

async fn write(writer: &Writer, pdu: Pdu) -> bool {
    writer.lock().await.write_all(&pdu.encode()).await.is_ok()
}

/// Sends a deliver_sm receipt; returns its sequence number.
async fn deliver(
    inner: &Mutex<Inner>,
    writer: &Writer,
    handset: &str,
    text: &str,
    id: Option<&str>,
) {
    let sequence = {
        let mut guard = lock(inner);
        guard.next_sequence += 1;
        let sequence = guard.next_sequence;
        guard.delivers.insert(sequence, None);
        sequence
    };
    let body = smpp::deliver_receipt(handset, "WITNESS", text, id);
    write(writer, Pdu::new(smpp::DELIVER_SM, 0, sequence, body)).await;
}

async fn serve(
    connection: u64,
    mut reader: tokio::net::tcp::OwnedReadHalf,
    writer: Writer,
    inner: Arc<Mutex<Inner>>,
    system_id: String,
    password: String,
) {
    let mut bound = false;
    while let Some(pdu) = read_pdu(&mut reader).await {
        let answer = match pdu.command_id {
            smpp::BIND_TRANSMITTER | smpp::BIND_TRANSCEIVER => {
                let ok = smpp::parse_bind(&pdu.body)
                    .is_ok_and(|(id, pw)| id == system_id && pw == password);
                let transceiver = pdu.command_id == smpp::BIND_TRANSCEIVER;
                let mut guard = lock(&inner);
                if ok {
                    guard.binds += 1;
                    bound = true;
                    if let Some(c) = guard.connections.get_mut(&connection) {
                        c.transceiver = transceiver;
                    }
                } else {
                    guard.refused_binds += 1;
                }
                let status = if ok {
                    smpp::ESME_ROK
                } else {
                    smpp::ESME_RINVPASWD
                };
                Pdu::new(
                    pdu.command_id | smpp::RESPONSE_BIT,
                    status,
                    pdu.sequence,
                    b"peer\0".to_vec(),
                )
            }
            smpp::SUBMIT_SM if bound => {
                let Ok(sm) = SubmitSm::decode(&pdu.body) else {
                    let nack = Pdu::new(
                        smpp::GENERIC_NACK,
                        smpp::ESME_RSYSERR,
                        pdu.sequence,
                        Vec::new(),
                    );
                    write(&writer, nack).await;
                    continue;
                };
                let fault = lock(&inner).faults.pop_front();
                match fault {
                    Some(SmppFault::Throttle) => Pdu::new(
                        smpp::SUBMIT_SM_RESP,
                        smpp::ESME_RTHROTTLED,
                        pdu.sequence,
                        Vec::new(),
                    ),
                    Some(SmppFault::DropAfterSubmit) => {
                        let mut guard = lock(&inner);
                        guard.received.push(sm);
                        guard.connections.remove(&connection);
                        return;
                    }
                    None => {
                        let (id, answer_delay, receipt) = {
                            let mut guard = lock(&inner);
                            guard.next_id += 1;
                            guard.in_flight += 1;
                            guard.max_in_flight = guard.max_in_flight.max(guard.in_flight);
                            let id = format!("MSG{:06}", guard.next_id);
                            let transceiver = guard
                                .connections
                                .get(&connection)
                                .is_some_and(|c| c.transceiver);
                            let receipt = (transceiver && !guard.no_receipts).then(|| {
                                let plan = guard
                                    .receipt_plans
                                    .get(&sm.destination_addr)
                                    .cloned()
                                    .unwrap_or(ReceiptPlan {
                                        stat: "DELIVRD".to_string(),
                                        err: "000".to_string(),
                                    });
                                (plan, guard.receipt_delay)
                            });
                            guard.received.push(sm.clone());
                            (id, guard.answer_delay, receipt)
                        };
                        // Answered (and the receipt sent) off the reading loop, so several
                        // submit_sm can be outstanding as with a real gateway.
                        let (writer, inner) = (Arc::clone(&writer), Arc::clone(&inner));
                        let sequence = pdu.sequence;
                        tokio::spawn(async move {
                            if !answer_delay.is_zero() {
                                tokio::time::sleep(answer_delay).await;
                            }
                            lock(&inner).in_flight -= 1;
                            let resp = Pdu::new(
                                smpp::SUBMIT_SM_RESP,
                                smpp::ESME_ROK,
                                sequence,
                                smpp::submit_sm_resp(&id),
                            );
                            if !write(&writer, resp).await {
                                return;
                            }
                            let Some((plan, delay)) = receipt else { return };
                            tokio::time::sleep(delay).await;
                            let text = DeliveryReceipt {
                                id: id.clone(),
                                stat: plan.stat,
                                err: Some(plan.err),
                                submit_date: Some("2603180930".to_string()),
                                done_date: Some("2603180931".to_string()),
                            }
                            .format();
                            deliver(&inner, &writer, &sm.destination_addr, &text, Some(&id)).await;
                        });
                        continue;
                    }
                }
            }
            smpp::ENQUIRE_LINK => {
                lock(&inner).enquire_links += 1;
                Pdu::new(
                    smpp::ENQUIRE_LINK_RESP,
                    smpp::ESME_ROK,
                    pdu.sequence,
                    Vec::new(),
                )
            }
            smpp::DELIVER_SM_RESP => {
                if let Some(status) = lock(&inner).delivers.get_mut(&pdu.sequence) {
                    *status = Some(pdu.status);
                }
                continue;
            }
            smpp::UNBIND => {
                let resp = Pdu::new(smpp::UNBIND_RESP, smpp::ESME_ROK, pdu.sequence, Vec::new());
                write(&writer, resp).await;
                lock(&inner).connections.remove(&connection);
                return;
            }
            _ => Pdu::new(
                smpp::GENERIC_NACK,
                smpp::ESME_RBINDFAIL,
                pdu.sequence,
                Vec::new(),
            ),
        };
        if !write(&writer, answer).await {
            break;
        }
    }
    lock(&inner).connections.remove(&connection);
}

impl SmppPeer {
    /// The `[integrations.sms]` section of a daemon's configuration for this peer, logging in
    /// as `witness` with `password`, which it writes to `dir/smpp.password`.
    pub fn sms_section(&self, dir: &std::path::Path, password: &str) -> anyhow::Result<String> {
        let password_file = dir.join("smpp.password");
        std::fs::write(&password_file, format!("{password}\n"))?;
        Ok(format!(
            "[integrations.sms]\nprovider = \"smpp\"\nsmpp_address = \"{}\"\n\
             smpp_system_id = \"witness\"\nsmpp_password_file = \"{}\"\n\
             center_name = \"兰考县公共资源交易中心\"\n",
            self.addr,
            password_file.display()
        ))
    }

    /// Starts on a free loopback port, accepting `system_id` / `password`.
    pub async fn start(system_id: &str, password: &str) -> anyhow::Result<SmppPeer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Arc::clone(&inner);
        let (system_id, password) = (system_id.to_string(), password.to_string());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // Answers go back to back, as a gateway's do (no Nagle delay).
                let _ = stream.set_nodelay(true);
                let (reader, writer) = stream.into_split();
                let writer = Arc::new(tokio::sync::Mutex::new(writer));
                // Registered before the connection is served, so no PDU of it is missed.
                let mut guard = lock(&shared);
                guard.next_connection += 1;
                let id = guard.next_connection;
                let task = tokio::spawn(serve(
                    id,
                    reader,
                    Arc::clone(&writer),
                    Arc::clone(&shared),
                    system_id.clone(),
                    password.clone(),
                ));
                guard.connections.insert(
                    id,
                    Connection {
                        writer,
                        transceiver: false,
                        task,
                    },
                );
            }
        });
        Ok(SmppPeer { addr, inner, task })
    }

    pub fn push_faults(&self, faults: &[SmppFault]) {
        lock(&self.inner).faults.extend(faults.iter().copied());
    }

    /// The receipt for messages to `phone` (11 digits) from now on.
    pub fn set_receipt(&self, phone: &str, stat: &str, err: &str) {
        lock(&self.inner).receipt_plans.insert(
            format!("86{phone}"),
            ReceiptPlan {
                stat: stat.to_string(),
                err: err.to_string(),
            },
        );
    }

    /// How long after its submit_sm_resp a receipt is sent.
    pub fn set_receipt_delay(&self, delay: Duration) {
        lock(&self.inner).receipt_delay = delay;
    }

    /// Whether transceivers get delivery receipts (default yes).
    pub fn set_receipts(&self, on: bool) {
        lock(&self.inner).no_receipts = !on;
    }

    /// How long each submit_sm waits for its answer (a gateway's latency).
    pub fn set_answer_delay(&self, delay: Duration) {
        lock(&self.inner).answer_delay = delay;
    }

    /// Closes every connection at once, as a gateway restarting does.
    pub async fn drop_sessions(&self) {
        let connections: Vec<Connection> = lock(&self.inner)
            .connections
            .drain()
            .map(|(_, c)| c)
            .collect();
        for connection in connections {
            connection.task.abort();
            let _ = connection.writer.lock().await.shutdown().await;
        }
    }

    /// Sends a deliver_sm with this receipt text (and no receipted_message_id) on every
    /// transceiver session.
    pub async fn send_receipt_text(&self, text: &str) {
        let writers: Vec<Writer> = lock(&self.inner)
            .connections
            .values()
            .filter(|c| c.transceiver)
            .map(|c| Arc::clone(&c.writer))
            .collect();
        for writer in writers {
            deliver(&self.inner, &writer, "8613800000000", text, None).await;
        }
    }

    /// Every submit_sm received (including ones whose answer was dropped).
    pub fn received(&self) -> Vec<SubmitSm> {
        lock(&self.inner).received.clone()
    }

    /// Successful binds (one per session).
    pub fn binds(&self) -> u64 {
        lock(&self.inner).binds
    }

    pub fn refused_binds(&self) -> u64 {
        lock(&self.inner).refused_binds
    }

    pub fn enquire_links(&self) -> u64 {
        lock(&self.inner).enquire_links
    }

    /// The command_status of every deliver_sm_resp received, in no particular order, and how
    /// many deliver_sm are still unanswered.
    pub fn deliver_answers(&self) -> (Vec<u32>, usize) {
        let guard = lock(&self.inner);
        let answered = guard.delivers.values().filter_map(|s| *s).collect();
        let waiting = guard.delivers.values().filter(|s| s.is_none()).count();
        (answered, waiting)
    }

    /// The most submit_sm that were outstanding at once.
    pub fn max_in_flight(&self) -> u64 {
        lock(&self.inner).max_in_flight
    }

    /// Open connections.
    pub fn sessions(&self) -> usize {
        lock(&self.inner).connections.len()
    }
}

impl Drop for SmppPeer {
    fn drop(&mut self) {
        self.task.abort();
        for connection in lock(&self.inner).connections.values() {
            connection.task.abort();
        }
    }
}
