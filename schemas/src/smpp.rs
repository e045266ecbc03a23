//! The part of SMPP 3.4 (Short Message Peer-to-Peer, the SMS gateways' protocol) that SMS
//! notices need: the PDU header, bind_transmitter, submit_sm, unbind and their responses, with
//! UCS-2 text (data_coding 8) and the message_payload TLV for texts over 140 bytes. Used by the
//! controller's SMPP provider and by the in-process SMPP peer of the tests.

use thiserror::Error;

pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
pub const BIND_TRANSMITTER_RESP: u32 = 0x8000_0002;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
pub const UNBIND: u32 = 0x0000_0006;
pub const UNBIND_RESP: u32 = 0x8000_0006;
pub const GENERIC_NACK: u32 = 0x8000_0000;

/// command_status values used here.
pub const ESME_ROK: u32 = 0x0000_0000;
pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
pub const ESME_RINVPASWD: u32 = 0x0000_000E;
pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
pub const ESME_RSYSERR: u32 = 0x0000_0008;

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
        let mut r = Reader::new(body);
        r.c_string()?;
        r.u8()?;
        r.u8()?;
        let source_addr = r.c_string()?;
        r.u8()?;
        r.u8()?;
        let destination_addr = r.c_string()?;
        r.bytes(3)?;
        r.c_string()?;
        r.c_string()?;
        r.bytes(2)?;
        let coding = r.u8()?;
        r.u8()?;
        let length = r.u8()? as usize;
        let mut text = r.bytes(length)?.to_vec();
        let mut tlvs = r.rest();
        while tlvs.len() >= 4 {
            let tag = u16::from_be_bytes([tlvs[0], tlvs[1]]);
            let len = u16::from_be_bytes([tlvs[2], tlvs[3]]) as usize;
            let value = tlvs.get(4..4 + len).ok_or(SmppError::Truncated)?;
            if tag == TAG_MESSAGE_PAYLOAD {
                text = value.to_vec();
            }
            tlvs = &tlvs[4 + len..];
        }
        let text = if coding == DATA_CODING_UCS2 {
            from_ucs2(&text)?
        } else {
            String::from_utf8_lossy(&text).into_owned()
        };
        Ok(SubmitSm {
            source_addr,
            destination_addr,
            text,
        })
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
}
