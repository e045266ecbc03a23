//! The part of SMPP 3.4 (Short Message Peer-to-Peer, the SMS gateways' protocol) that SMS
//! notices need: the PDU header, bind_transmitter / bind_transceiver, submit_sm, deliver_sm with
//! the delivery receipt text of the specification's appendix B, enquire_link, unbind and their
//! responses, with UCS-2 text (data_coding 8) and the message_payload TLV for texts over 140
//! bytes. Used by the controller's SMPP provider and by the in-process SMPP peer of the tests.

use thiserror::Error;

pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
pub const BIND_TRANSMITTER_RESP: u32 = 0x8000_0002;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
pub const UNBIND: u32 = 0x0000_0006;
pub const UNBIND_RESP: u32 = 0x8000_0006;
pub const GENERIC_NACK: u32 = 0x8000_0000;
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
pub const DELIVER_SM: u32 = 0x0000_0005;
pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
/// The bit of command_id that marks a response.
pub const RESPONSE_BIT: u32 = 0x8000_0000;

/// command_status values used here.
pub const ESME_ROK: u32 = 0x0000_0000;
pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
pub const ESME_RINVPASWD: u32 = 0x0000_000E;
pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
pub const ESME_RSYSERR: u32 = 0x0000_0008;
/// "Temporary application error": the SMSC keeps a deliver_sm answered so and delivers it again
/// later (used when a receipt could not be stored yet).
pub const ESME_RX_T_APPN: u32 = 0x0000_0064;

/// esm_class bits 2–5 = 0001: the deliver_sm is an SMSC delivery receipt.
pub const ESM_CLASS_DELIVERY_RECEIPT: u8 = 0x04;
/// The TLV naming the message a receipt is about (SMPP 3.4 §5.3.2.12).
pub const TAG_RECEIPTED_MESSAGE_ID: u16 = 0x001E;

/// data_coding 8: UCS-2 (big-endian), the coding for Chinese text.
pub const DATA_CODING_UCS2: u8 = 8;
/// The TLV that carries a message longer than short_message's 254 (in practice 140) bytes.
pub const TAG_MESSAGE_PAYLOAD: u16 = 0x0424;
/// The most bytes put into short_message; longer texts go into message_payload.
pub const SHORT_MESSAGE_MAX: usize = 140;
/// PDUs larger than this are refused (no SMS needs more).
pub const MAX_PDU: usize = 64 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SmppError {
    #[error("SMPP PDU truncated")]
    Truncated,
    #[error("SMPP PDU length {0} out of range")]
    BadLength(usize),
    #[error("SMPP C-string not terminated")]
    Unterminated,
    #[error("SMPP text is not valid UCS-2")]
    BadText,
    #[error("not an SMPP delivery receipt: {0}")]
    BadReceipt(String),
}

/// A PDU: header fields and the body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub command_id: u32,
    pub status: u32,
    pub sequence: u32,
    pub body: Vec<u8>,
}

impl Pdu {
    pub fn new(command_id: u32, status: u32, sequence: u32, body: Vec<u8>) -> Pdu {
        Pdu {
            command_id,
            status,
            sequence,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.body.len());
        out.extend_from_slice(&((16 + self.body.len()) as u32).to_be_bytes());
        out.extend_from_slice(&self.command_id.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// The command_length of a PDU from its first four bytes, checked.
    pub fn length(header: [u8; 4]) -> Result<usize, SmppError> {
        let length = u32::from_be_bytes(header) as usize;
        if !(16..=MAX_PDU).contains(&length) {
            return Err(SmppError::BadLength(length));
        }
        Ok(length)
    }

    /// Decodes one whole PDU (as framed by [`Pdu::length`]).
    pub fn decode(bytes: &[u8]) -> Result<Pdu, SmppError> {
        if bytes.len() < 16 {
            return Err(SmppError::Truncated);
        }
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let length = Pdu::length([bytes[0], bytes[1], bytes[2], bytes[3]])?;
        if bytes.len() != length {
            return Err(SmppError::BadLength(bytes.len()));
        }
        Ok(Pdu {
            command_id: word(4),
            status: word(8),
            sequence: word(12),
            body: bytes[16..].to_vec(),
        })
    }
}

fn c_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

/// Reads C-strings and octets from a body.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub fn c_string(&mut self) -> Result<String, SmppError> {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(SmppError::Unterminated)?;
        self.at += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    pub fn u8(&mut self) -> Result<u8, SmppError> {
        let b = *self.bytes.get(self.at).ok_or(SmppError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], SmppError> {
        let slice = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(SmppError::Truncated)?;
        self.at += n;
        Ok(slice)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let slice = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        slice
    }
}

/// bind_transmitter body: system_id, password, system_type, interface_version 3.4, any address.
pub fn bind_transmitter(system_id: &str, password: &str) -> Vec<u8> {
    bind_body(system_id, password)
}

/// bind_transceiver body (the same fields as bind_transmitter): one session that submits
/// messages and receives their delivery receipts.
pub fn bind_transceiver(system_id: &str, password: &str) -> Vec<u8> {
    bind_body(system_id, password)
}

fn bind_body(system_id: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::new();
    c_string(&mut out, system_id);
    c_string(&mut out, password);
    c_string(&mut out, "");
    out.push(0x34);
    out.push(0);
    out.push(0);
    c_string(&mut out, "");
    out
}

/// (system_id, password) of a bind body.
pub fn parse_bind(body: &[u8]) -> Result<(String, String), SmppError> {
    let mut reader = Reader::new(body);
    Ok((reader.c_string()?, reader.c_string()?))
}

/// A short message to one mobile number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitSm {
    pub source_addr: String,
    pub destination_addr: String,
    pub text: String,
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn from_ucs2(bytes: &[u8]) -> Result<String, SmppError> {
    let pairs = bytes.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err(SmppError::BadText);
    }
    let units: Vec<u16> = pairs.map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| SmppError::BadText)
}

impl SubmitSm {
    /// The submit_sm body: UCS-2 text, a delivery receipt requested; texts over 140 bytes in
    /// the message_payload TLV (one message, the gateway splits it), not concatenated parts.
    pub fn encode(&self) -> Vec<u8> {
        let text = ucs2(&self.text);
        let mut out = Vec::new();
        c_string(&mut out, ""); // service_type
        out.extend_from_slice(&[5, 0]); // source TON alphanumeric / NPI unknown
        c_string(&mut out, &self.source_addr);
        out.extend_from_slice(&[1, 1]); // destination TON international / NPI E.164
        c_string(&mut out, &self.destination_addr);
        out.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority_flag
        c_string(&mut out, ""); // schedule_delivery_time: now
        c_string(&mut out, ""); // validity_period: the gateway's default
        out.extend_from_slice(&[1, 0, DATA_CODING_UCS2, 0]); // receipt, replace, coding, default id
        if text.len() <= SHORT_MESSAGE_MAX {
            out.push(text.len() as u8);
            out.extend_from_slice(&text);
        } else {
            out.push(0);
            out.extend_from_slice(&TAG_MESSAGE_PAYLOAD.to_be_bytes());
            out.extend_from_slice(&(text.len() as u16).to_be_bytes());
            out.extend_from_slice(&text);
        }
        out
    }

    pub fn decode(body: &[u8]) -> Result<SubmitSm, SmppError> {
        let sm = ShortMessage::decode(body)?;
        Ok(SubmitSm {
            source_addr: sm.source_addr,
            destination_addr: sm.destination_addr,
            text: sm.text,
        })
    }
}

/// The fields submit_sm and deliver_sm share (their bodies have the same layout), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortMessage {
    pub source_addr: String,
    pub destination_addr: String,
    pub esm_class: u8,
    pub text: String,
    /// The receipted_message_id TLV, when the SMSC sent it.
    pub receipted_message_id: Option<String>,
}

impl ShortMessage {
    pub fn decode(body: &[u8]) -> Result<ShortMessage, SmppError> {
        let mut r = Reader::new(body);
        r.c_string()?;
        r.u8()?;
        r.u8()?;
        let source_addr = r.c_string()?;
        r.u8()?;
        r.u8()?;
        let destination_addr = r.c_string()?;
        let esm_class = r.u8()?;
        r.bytes(2)?;
        r.c_string()?;
        r.c_string()?;
        r.bytes(2)?;
        let coding = r.u8()?;
        r.u8()?;
        let length = r.u8()? as usize;
        let mut text = r.bytes(length)?.to_vec();
        let mut receipted_message_id = None;
        let mut tlvs = r.rest();
        while tlvs.len() >= 4 {
            let tag = u16::from_be_bytes([tlvs[0], tlvs[1]]);
            let len = u16::from_be_bytes([tlvs[2], tlvs[3]]) as usize;
            let value = tlvs.get(4..4 + len).ok_or(SmppError::Truncated)?;
            match tag {
                TAG_MESSAGE_PAYLOAD => text = value.to_vec(),
                TAG_RECEIPTED_MESSAGE_ID => {
                    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
                    receipted_message_id =
                        Some(String::from_utf8_lossy(&value[..end]).into_owned());
                }
                _ => {}
            }
            tlvs = &tlvs[4 + len..];
        }
        let text = if coding == DATA_CODING_UCS2 {
            from_ucs2(&text)?
        } else {
            String::from_utf8_lossy(&text).into_owned()
        };
        Ok(ShortMessage {
            source_addr,
            destination_addr,
            esm_class,
            text,
            receipted_message_id,
        })
    }

    pub fn is_delivery_receipt(&self) -> bool {
        self.esm_class & 0x3C == ESM_CLASS_DELIVERY_RECEIPT
    }
}

/// A deliver_sm body carrying a delivery receipt (what an SMSC sends; the test peer uses it):
/// the handset as source, our sender as destination, the receipt text in the default coding and
/// the receipted_message_id TLV.
pub fn deliver_receipt(
    handset: &str,
    sender: &str,
    text: &str,
    receipted_message_id: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    c_string(&mut out, ""); // service_type
    out.extend_from_slice(&[1, 1]);
    c_string(&mut out, handset);
    out.extend_from_slice(&[5, 0]);
    c_string(&mut out, sender);
    out.extend_from_slice(&[ESM_CLASS_DELIVERY_RECEIPT, 0, 0]);
    c_string(&mut out, "");
    c_string(&mut out, "");
    out.extend_from_slice(&[0, 0, 0, 0]); // registered_delivery, replace, data_coding 0, sm id
    let bytes = text.as_bytes();
    let length = bytes.len().min(254);
    out.push(length as u8);
    out.extend_from_slice(&bytes[..length]);
    if let Some(id) = receipted_message_id {
        out.extend_from_slice(&TAG_RECEIPTED_MESSAGE_ID.to_be_bytes());
        out.extend_from_slice(&((id.len() + 1) as u16).to_be_bytes());
        c_string(&mut out, id);
    }
    out
}

/// deliver_sm_resp body: message_id, unused (NULL).
pub fn deliver_sm_resp() -> Vec<u8> {
    vec![0]
}

/// The delivery receipt text of SMPP 3.4 appendix B:
/// `id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
/// err:E text:…`. Gateways vary (letter case, seconds in the dates, missing sub/dlvrd/text,
/// hexadecimal ids), so only `id` and `stat` are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub id: String,
    /// DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD or ENROUTE.
    pub stat: String,
    pub err: Option<String>,
    /// YYMMDDhhmm[ss] as sent, in the SMSC's local time.
    pub submit_date: Option<String>,
    pub done_date: Option<String>,
}

/// The receipt states of SMPP 3.4 §5.2.28 in their receipt spelling.
pub const RECEIPT_STATES: [&str; 8] = [
    "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE",
];

impl DeliveryReceipt {
    pub fn parse(text: &str) -> Result<DeliveryReceipt, SmppError> {
        // The free text after `text:` may contain anything, including "id:"; look only before.
        let lower = text.to_ascii_lowercase();
        let head_end = lower.find("text:").unwrap_or(lower.len());
        let head = &lower[..head_end];
        let field = |key: &str| -> Option<String> {
            let mut from = 0;
            while let Some(found) = head[from..].find(key) {
                let at = from + found;
                // A key starts the text or follows a space ("id:" is not the end of "xid:").
                if at == 0 || head.as_bytes()[at - 1] == b' ' {
                    let start = at + key.len();
                    let value: String = text[start..head_end]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    return Some(value);
                }
                from = at + key.len();
            }
            None
        };
        let id = field("id:")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SmppError::BadReceipt("no id".to_string()))?;
        if id.len() > 65 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SmppError::BadReceipt("bad id".to_string()));
        }
        let stat = field("stat:")
            .map(|v| v.to_ascii_uppercase())
            .ok_or_else(|| SmppError::BadReceipt("no stat".to_string()))?;
        if !RECEIPT_STATES.contains(&stat.as_str()) {
            return Err(SmppError::BadReceipt(format!(
                "unknown stat {:?}",
                stat.chars().take(16).collect::<String>()
            )));
        }
        let date = |key: &str| {
            // All zeros: some gateways' way of saying "no date".
            field(key).filter(|v| {
                (v.len() == 10 || v.len() == 12)
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && v.bytes().any(|b| b != b'0')
            })
        };
        Ok(DeliveryReceipt {
            id,
            stat,
            err: field("err:").filter(|v| !v.is_empty()),
            submit_date: date("submit date:"),
            done_date: date("done date:"),
        })
    }

    /// The receipt text as an SMSC writes it.
    pub fn format(&self) -> String {
        format!(
            "id:{} sub:001 dlvrd:{} submit date:{} done date:{} stat:{} err:{} text:",
            self.id,
            if self.stat == "DELIVRD" { "001" } else { "000" },
            self.submit_date.as_deref().unwrap_or("0000000000"),
            self.done_date.as_deref().unwrap_or("0000000000"),
            self.stat,
            self.err.as_deref().unwrap_or("000"),
        )
    }
}

/// submit_sm_resp body: the gateway's message id.
pub fn submit_sm_resp(message_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    c_string(&mut out, message_id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_sm_round_trips_short_and_long_chinese_texts() {
        for text in ["您投标的项目将于明日开标。", &"变更公告".repeat(30)] {
            let sm = SubmitSm {
                source_addr: "LKGGZY".to_string(),
                destination_addr: "8613812345678".to_string(),
                text: text.to_string(),
            };
            let pdu = Pdu::new(SUBMIT_SM, 0, 7, sm.encode()).encode();
            let back = Pdu::decode(&pdu).unwrap();
            assert_eq!(back.sequence, 7);
            assert_eq!(SubmitSm::decode(&back.body).unwrap(), sm);
        }
        assert_eq!(Pdu::length([0, 0, 0, 3]), Err(SmppError::BadLength(3)));
    }

    #[test]
    fn delivery_receipts_parse_in_their_common_spellings() {
        let check = |text: &str, id: &str, stat: &str, err: Option<&str>, done: Option<&str>| {
            let r = DeliveryReceipt::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (
                    r.id.as_str(),
                    r.stat.as_str(),
                    r.err.as_deref(),
                    r.done_date.as_deref()
                ),
                (id, stat, err, done),
                "{text}"
            );
        };
        check(
            "id:MSG000001 sub:001 dlvrd:001 submit date:2603180930 done date:2603180931 stat:DELIVRD err:000 text:您投标的项目",
            "MSG000001", "DELIVRD", Some("000"), Some("2603180931"),
        );
        // Lower case keys, seconds in the dates, no sub/dlvrd, "id:" inside the text.
        check(
            "id:7a3F stat:undeliv err:052 done date:260318093105 Text:id:nothing stat:DELIVRD",
            "7a3F",
            "UNDELIV",
            Some("052"),
            Some("260318093105"),
        );
        check("id:42 stat:EXPIRED", "42", "EXPIRED", None, None);
        for bad in [
            "",
            "hello",
            "stat:DELIVRD",
            "id:1 stat:WHATEVER",
            "id: stat:DELIVRD",
            "xid:1 stat:DELIVRD",
        ] {
            assert!(DeliveryReceipt::parse(bad).is_err(), "{bad:?}");
        }
        let r = DeliveryReceipt {
            id: "MSG9".to_string(),
            stat: "REJECTD".to_string(),
            err: Some("011".to_string()),
            submit_date: Some("2603180930".to_string()),
            done_date: None,
        };
        assert_eq!(DeliveryReceipt::parse(&r.format()).unwrap(), r);
    }

    #[test]
    fn deliver_sm_receipts_round_trip_with_the_receipted_message_id() {
        let body = deliver_receipt(
            "8613812345678",
            "LKJYZX",
            "id:MSG1 stat:DELIVRD",
            Some("MSG1"),
        );
        let sm = ShortMessage::decode(&body).unwrap();
        assert!(sm.is_delivery_receipt());
        assert_eq!(sm.source_addr, "8613812345678");
        assert_eq!(sm.text, "id:MSG1 stat:DELIVRD");
        assert_eq!(sm.receipted_message_id.as_deref(), Some("MSG1"));
        let submit = ShortMessage::decode(
            &SubmitSm {
                source_addr: "A".to_string(),
                destination_addr: "B".to_string(),
                text: "x".to_string(),
            }
            .encode(),
        )
        .unwrap();
        assert!(!submit.is_delivery_receipt());
    }
}
