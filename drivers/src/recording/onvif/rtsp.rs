//! RTSP 1.0 framing on a TCP connection: requests and responses (start line, headers, body by
//! Content-Length) and interleaved binary data (`$`, channel, 16-bit length, RTP/RTCP packet).
//!
//! Shared by the replay relay and the stand-in recorder's RTSP front in the tests.

use std::io::{self, BufRead, Write};

/// The longest header block accepted; RTSP heads are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// One thing read from an RTSP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request or a response: the start line, the headers in order, the body.
    Text(TextMessage),
    /// Interleaved data on `channel`, passed on byte for byte.
    Interleaved { channel: u8, data: Vec<u8> },
}

/// A request (`PLAY rtsp://… RTSP/1.0`) or a response (`RTSP/1.0 200 OK`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextMessage {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TextMessage {
    /// A request with a CSeq and no body.
    pub fn request(method: &str, url: &str, cseq: u32) -> TextMessage {
        TextMessage {
            start_line: format!("{method} {url} RTSP/1.0"),
            headers: vec![("CSeq".into(), cseq.to_string())],
            body: Vec::new(),
        }
    }

    /// A response to `request` (its CSeq copied) with this status.
    pub fn response_to(request: &TextMessage, status: u16, reason: &str) -> TextMessage {
        let mut response = TextMessage {
            start_line: format!("RTSP/1.0 {status} {reason}"),
            ..TextMessage::default()
        };
        if let Some(cseq) = request.header("CSeq") {
            response.headers.push(("CSeq".into(), cseq.to_string()));
        }
        response
    }

    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every header of this name with one of the value given.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.to_string(), value.to_string()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The method of a request (`PLAY`), `None` for a response.
    pub fn method(&self) -> Option<&str> {
        let first = self.start_line.split(' ').next()?;
        (!first.starts_with("RTSP/")).then_some(first)
    }

    /// The request URI of a request.
    pub fn uri(&self) -> Option<&str> {
        self.method()?;
        self.start_line.split(' ').nth(1)
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let mut parts = self.start_line.split(' ');
        parts.next().filter(|v| v.starts_with("RTSP/"))?;
        parts.next()?.parse().ok()
    }

    /// Sets the body and its Content-Length.
    pub fn set_body(&mut self, body: Vec<u8>) {
        if body.is_empty() {
            self.remove_header("Content-Length");
        } else {
            self.set_header("Content-Length", &body.len().to_string());
        }
        self.body = body;
    }

    /// The message as sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(256 + self.body.len());
        bytes.extend_from_slice(self.start_line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

impl Message {
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Message::Text(text) => out.write_all(&text.to_bytes()),
            Message::Interleaved { channel, data } => {
                let length = u16::try_from(data.len())
                    .map_err(|_| io::Error::other("interleaved packet over 65535 bytes"))?;
                let mut head = [b'$', *channel, 0, 0];
                head[2..].copy_from_slice(&length.to_be_bytes());
                out.write_all(&head)?;
                out.write_all(data)
            }
        }
    }
}

/// Reads the next message; `Ok(None)` at a clean end of the connection.
pub fn read_message(input: &mut impl BufRead) -> io::Result<Option<Message>> {
    let first = loop {
        let available = input.fill_buf()?;
        match available.first() {
            None => return Ok(None),
            // Blank lines between messages are allowed (RFC 2326 §4).
            Some(b'\r' | b'\n') => input.consume(1),
            Some(&byte) => break byte,
        }
    };
    if first == b'$' {
        let mut head = [0u8; 4];
        input.read_exact(&mut head)?;
        let mut data = vec![0u8; usize::from(u16::from_be_bytes([head[2], head[3]]))];
        input.read_exact(&mut data)?;
        return Ok(Some(Message::Interleaved {
            channel: head[1],
            data,
        }));
    }
    let mut message = TextMessage::default();
    let mut head_bytes = 0;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside an RTSP message head",
            ));
        }
        head_bytes += line.len();
        if head_bytes > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "RTSP message head too long",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if message.start_line.is_empty() {
            message.start_line = line.to_string();
        } else if let Some((name, value)) = line.split_once(':') {
            message
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("RTSP header line without a colon: {line:?}"),
            ));
        }
    }
    let length = match message.header("Content-Length") {
        Some(text) => text.parse::<usize>().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad Content-Length {text:?}"),
            )
        })?,
        None => 0,
    };
    if length > MAX_HEAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "RTSP body too long",
        ));
    }
    message.body = vec![0u8; length];
    input.read_exact(&mut message.body)?;
    Ok(Some(Message::Text(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_data_and_responses_round_trip() {
        let mut request = TextMessage::request("DESCRIBE", "rtsp://h/x", 2);
        request.set_header("Accept", "application/sdp");
        let mut response = TextMessage::response_to(&request, 200, "OK");
        response.set_body(b"v=0\r\n".to_vec());
        let data = Message::Interleaved {
            channel: 1,
            data: vec![0x80, 0xc8, 0, 6],
        };
        let mut wire = Vec::new();
        for m in [
            Message::Text(request.clone()),
            data.clone(),
            Message::Text(response.clone()),
        ] {
            m.write_to(&mut wire).unwrap();
        }
        let mut input = io::BufReader::new(&wire[..]);
        assert_eq!(
            read_message(&mut input).unwrap(),
            Some(Message::Text(request))
        );
        assert_eq!(read_message(&mut input).unwrap(), Some(data));
        let Some(Message::Text(back)) = read_message(&mut input).unwrap() else {
            panic!("no response");
        };
        assert_eq!(back.status(), Some(200));
        assert_eq!(back.header("cseq"), Some("2"));
        assert_eq!(back.body, b"v=0\r\n");
        assert_eq!(read_message(&mut input).unwrap(), None);
        let mut cut = io::BufReader::new(&b"PLAY rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n"[..]);
        assert!(read_message(&mut cut).is_err());
    }
}
