//! An in-process SMPP 3.4 server peer (a stand-in SMS gateway) on loopback: it checks the
//! bind credentials, decodes every submit_sm (UCS-2 text, message_payload TLV), records it,
//! answers submit_sm_resp with a message id, and on command throttles (ESME_RTHROTTLED) or drops
//! the connection after reading a submit_sm without answering (an outcome the sender cannot
//! know).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use witness_schemas::smpp::{self, Pdu, SubmitSm};

/// How the peer answers the next submit_sm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmppFault {
    /// Answers ESME_RTHROTTLED: the message was not taken.
    Throttle,
    /// Records the message, then closes the connection without an answer.
    DropAfterSubmit,
}

#[derive(Debug, Default)]
struct Inner {
    faults: VecDeque<SmppFault>,
    received: Vec<SubmitSm>,
    binds: u64,
    refused_binds: u64,
    next_id: u64,
}

pub struct SmppPeer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_pdu(stream: &mut TcpStream) -> Option<Pdu> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.ok()?;
    let length = Pdu::length(header).ok()?;
    let mut bytes = header.to_vec();
    bytes.resize(length, 0);
    stream.read_exact(&mut bytes[4..]).await.ok()?;
    Pdu::decode(&bytes).ok()
}

async fn serve(
    mut stream: TcpStream,
    inner: Arc<Mutex<Inner>>,
    system_id: String,
    password: String,
) {
    let mut bound = false;
    while let Some(pdu) = read_pdu(&mut stream).await {
        let answer = match pdu.command_id {
            smpp::BIND_TRANSMITTER => {
                let ok = smpp::parse_bind(&pdu.body)
                    .is_ok_and(|(id, pw)| id == system_id && pw == password);
                let mut guard = lock(&inner);
                if ok {
                    guard.binds += 1;
                    bound = true;
                } else {
                    guard.refused_binds += 1;
                }
                let status = if ok {
                    smpp::ESME_ROK
                } else {
                    smpp::ESME_RINVPASWD
                };
                Pdu::new(
                    smpp::BIND_TRANSMITTER_RESP,
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
                    let _ = stream.write_all(&nack.encode()).await;
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
                        lock(&inner).received.push(sm);
                        return;
                    }
                    None => {
                        let mut guard = lock(&inner);
                        guard.next_id += 1;
                        let id = format!("MSG{:06}", guard.next_id);
                        guard.received.push(sm);
                        Pdu::new(
                            smpp::SUBMIT_SM_RESP,
                            smpp::ESME_ROK,
                            pdu.sequence,
                            smpp::submit_sm_resp(&id),
                        )
                    }
                }
            }
            smpp::UNBIND => {
                let resp = Pdu::new(smpp::UNBIND_RESP, smpp::ESME_ROK, pdu.sequence, Vec::new());
                let _ = stream.write_all(&resp.encode()).await;
                return;
            }
            _ => Pdu::new(
                smpp::GENERIC_NACK,
                smpp::ESME_RBINDFAIL,
                pdu.sequence,
                Vec::new(),
            ),
        };
        if stream.write_all(&answer.encode()).await.is_err() {
            return;
        }
    }
}

impl SmppPeer {
    /// Starts on a free loopback port, accepting `system_id` / `password`.
    pub async fn start(system_id: &str, password: &str) -> anyhow::Result<SmppPeer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Arc::clone(&inner);
        let (system_id, password) = (system_id.to_string(), password.to_string());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(
                    stream,
                    Arc::clone(&shared),
                    system_id.clone(),
                    password.clone(),
                ));
            }
        });
        Ok(SmppPeer { addr, inner, task })
    }

    pub fn push_faults(&self, faults: &[SmppFault]) {
        lock(&self.inner).faults.extend(faults.iter().copied());
    }

    /// Every submit_sm received (including ones whose answer was dropped).
    pub fn received(&self) -> Vec<SubmitSm> {
        lock(&self.inner).received.clone()
    }

    pub fn refused_binds(&self) -> u64 {
        lock(&self.inner).refused_binds
    }
}

impl Drop for SmppPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
