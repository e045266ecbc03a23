//! Disc printers: the `DiscPrinter` trait, a printer reached through CUPS over IPP (Print-Job
//! with an application/pdf document, RFC 8011) and a fake that writes the rendered files into a
//! folder, used when no printer is configured and by the tests.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One disc face, rendered, ready to print.
#[derive(Debug, Clone)]
pub struct PrintRequest {
    /// Job name shown in the printer queue, e.g. `ZB2026-0001 1/2`.
    pub title: String,
    /// A file-name-safe name for this print, e.g. `disc-17`; folder printers name files after it.
    pub file_stem: String,
    /// The face as a one-page PDF of the disc's size (what is printed).
    pub pdf: Vec<u8>,
    /// The same face as a PNG (preview; printers that take raster input).
    pub png: Vec<u8>,
}

/// What a printer did with a print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintReceipt {
    pub printer: String,
    /// The IPP job id, or the PDF file the folder printer wrote.
    pub reference: String,
}

/// A printer's state as IPP reports it (`printer-state`, RFC 8011 §5.4.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterState {
    pub name: String,
    pub kind: &'static str,
    pub state: PrinterStatus,
    /// `printer-state-reasons`, e.g. `media-empty`, `none`.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrinterStatus {
    Idle,
    Processing,
    Stopped,
}

impl PrinterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PrinterStatus::Idle => "idle",
            PrinterStatus::Processing => "processing",
            PrinterStatus::Stopped => "stopped",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("printer {printer} is not reachable: {detail}")]
    Unreachable { printer: String, detail: String },
    #[error("printer {printer} refused the job: {detail}")]
    Refused { printer: String, detail: String },
    #[error("printer {printer} sent a malformed IPP response: {detail}")]
    Protocol { printer: String, detail: String },
    #[error("printer {printer}: {detail}")]
    Unsupported { printer: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A disc printer (Epson Discproducer, Primera, Rimage… behind CUPS, or a folder).
/// Blocking: callers run it on a blocking thread, like the burners.
pub trait DiscPrinter: Send + Sync {
    fn name(&self) -> &str;
    fn print(&self, request: &PrintRequest) -> Result<PrintReceipt, PrintError>;
    fn state(&self) -> Result<PrinterState, PrintError>;
}

/// A fake printer: every print becomes `<stem>.pdf` and `<stem>.png` in a folder.
#[derive(Debug, Clone)]
pub struct FolderPrinter {
    pub name: String,
    pub path: PathBuf,
}

impl DiscPrinter for FolderPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn print(&self, request: &PrintRequest) -> Result<PrintReceipt, PrintError> {
        let stem = &request.file_stem;
        if stem.is_empty() || stem.contains(['/', '\\', '\0']) || stem.starts_with('.') {
            return Err(PrintError::Unsupported {
                printer: self.name.clone(),
                detail: format!("file stem {stem:?} is not a plain file name"),
            });
        }
        std::fs::create_dir_all(&self.path).map_err(|source| PrintError::Io {
            context: format!("creating {}", self.path.display()),
            source,
        })?;
        let pdf = self.path.join(format!("{stem}.pdf"));
        write_atomically(&self.path.join(format!("{stem}.png")), &request.png)?;
        // The PDF last: a test or a person watching the folder sees a finished print once it
        // appears.
        write_atomically(&pdf, &request.pdf)?;
        Ok(PrintReceipt {
            printer: self.name.clone(),
            reference: pdf.display().to_string(),
        })
    }

    fn state(&self) -> Result<PrinterState, PrintError> {
        Ok(PrinterState {
            name: self.name.clone(),
            kind: "folder",
            state: PrinterStatus::Idle,
            reasons: vec!["none".into()],
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PrintError> {
    let tmp = path.with_extension("part");
    let io = |source| PrintError::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A printer behind CUPS (or any IPP printer): `ipp://host:631/printers/NAME`.
#[derive(Debug, Clone)]
pub struct IppPrinter {
    pub name: String,
    /// The `ipp://` URI, sent as `printer-uri`.
    pub uri: String,
    /// The same URI as `http://`, where the request is POSTed.
    http_url: String,
    pub timeout: Duration,
}

impl IppPrinter {
    /// Checks the URI: `ipp://host[:port]/path` (port 631 by default). `ipps://` needs TLS,
    /// which this build does not carry.
    pub fn new(name: &str, uri: &str) -> Result<IppPrinter, PrintError> {
        let unsupported = |detail: String| PrintError::Unsupported {
            printer: name.to_string(),
            detail,
        };
        let rest = if let Some(rest) = uri.strip_prefix("ipp://") {
            rest
        } else if uri.starts_with("ipps://") {
            return Err(unsupported(
                "ipps:// (IPP over TLS) is not supported yet; use ipp:// on the LAN".into(),
            ));
        } else {
            return Err(unsupported(format!(
                "URI {uri:?} is not an ipp:// URI (like ipp://host:631/printers/NAME)"
            )));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains(['@', ' ']) {
            return Err(unsupported(format!("URI {uri:?} has no valid host")));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.contains(']')
        }) {
            authority.to_string()
        } else {
            format!("{authority}:631")
        };
        Ok(IppPrinter {
            name: name.to_string(),
            uri: uri.to_string(),
            http_url: format!("http://{authority}{path}"),
            timeout: Duration::from_secs(30),
        })
    }

    /// Sends one IPP request and returns the decoded response.
    fn call(&self, body: Vec<u8>) -> Result<ipp::Message, PrintError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .post(&self.http_url)
            .header("Content-Type", "application/ipp")
            .send(&body[..])
            .map_err(|e| PrintError::Unreachable {
                printer: self.name.clone(),
                detail: e.to_string(),
            })?;
        let status = response.status();
        if status != 200 {
            return Err(PrintError::Refused {
                printer: self.name.clone(),
                detail: format!("HTTP {status} from {}", self.http_url),
            });
        }
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(1 << 20)
            .read_to_end(&mut bytes)
            .map_err(|source| PrintError::Io {
                context: format!("reading the IPP response of {}", self.name),
                source,
            })?;
        ipp::Message::decode(&bytes).map_err(|detail| PrintError::Protocol {
            printer: self.name.clone(),
            detail,
        })
    }

    fn operation(&self, operation: u16, request_id: u32) -> ipp::Message {
        let mut message = ipp::Message::request(operation, request_id);
        message.operation_attribute(ipp::TAG_URI, "printer-uri", self.uri.as_bytes());
        message.operation_attribute(ipp::TAG_NAME, "requesting-user-name", b"witness");
        message
    }
}

impl DiscPrinter for IppPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn print(&self, request: &PrintRequest) -> Result<PrintReceipt, PrintError> {
        let mut message = self.operation(ipp::PRINT_JOB, 1);
        message.operation_attribute(ipp::TAG_NAME, "job-name", request.title.as_bytes());
        message.operation_attribute(ipp::TAG_MIME_TYPE, "document-format", b"application/pdf");
        let mut body = message.encode();
        body.extend_from_slice(&request.pdf);
        let response = self.call(body)?;
        if response.code >= 0x0100 {
            return Err(PrintError::Refused {
                printer: self.name.clone(),
                detail: format!(
                    "status 0x{:04x} {}",
                    response.code,
                    response
                        .text("status-message")
                        .unwrap_or_else(|| ipp::status_name(response.code).into())
                ),
            });
        }
        let job_id = response
            .integer("job-id")
            .ok_or_else(|| PrintError::Protocol {
                printer: self.name.clone(),
                detail: "Print-Job succeeded without a job-id".into(),
            })?;
        Ok(PrintReceipt {
            printer: self.name.clone(),
            reference: format!("job {job_id}"),
        })
    }

    fn state(&self) -> Result<PrinterState, PrintError> {
        let mut message = self.operation(ipp::GET_PRINTER_ATTRIBUTES, 1);
        message.operation_attribute(ipp::TAG_KEYWORD, "requested-attributes", b"printer-state");
        message.additional_value(ipp::TAG_KEYWORD, b"printer-state-reasons");
        let response = self.call(message.encode())?;
        if response.code >= 0x0100 {
            return Err(PrintError::Refused {
                printer: self.name.clone(),
                detail: format!("status 0x{:04x}", response.code),
            });
        }
        let state = match response.integer("printer-state") {
            Some(3) => PrinterStatus::Idle,
            Some(4) => PrinterStatus::Processing,
            Some(5) => PrinterStatus::Stopped,
            other => {
                return Err(PrintError::Protocol {
                    printer: self.name.clone(),
                    detail: format!("printer-state {other:?} is not 3, 4 or 5"),
                })
            }
        };
        Ok(PrinterState {
            name: self.name.clone(),
            kind: "ipp",
            state,
            reasons: response.texts("printer-state-reasons"),
        })
    }
}

/// The IPP/1.1 message encoding (RFC 8010): a version, an operation or status code, a request
/// id, attribute groups of tagged name/value pairs, end-of-attributes, then the document.
pub mod ipp {
    pub const PRINT_JOB: u16 = 0x0002;
    pub const GET_PRINTER_ATTRIBUTES: u16 = 0x000B;

    pub const TAG_OPERATION: u8 = 0x01;
    pub const TAG_JOB: u8 = 0x02;
    pub const TAG_END: u8 = 0x03;
    pub const TAG_PRINTER: u8 = 0x04;
    pub const TAG_UNSUPPORTED_GROUP: u8 = 0x05;
    pub const TAG_INTEGER: u8 = 0x21;
    pub const TAG_ENUM: u8 = 0x23;
    pub const TAG_TEXT: u8 = 0x41;
    pub const TAG_NAME: u8 = 0x42;
    pub const TAG_KEYWORD: u8 = 0x44;
    pub const TAG_URI: u8 = 0x45;
    pub const TAG_CHARSET: u8 = 0x47;
    pub const TAG_LANGUAGE: u8 = 0x48;
    pub const TAG_MIME_TYPE: u8 = 0x49;

    /// One attribute value; an attribute with several values repeats with an empty name.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Attribute {
        pub group: u8,
        pub tag: u8,
        pub name: String,
        pub value: Vec<u8>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Message {
        pub version: (u8, u8),
        /// Operation id in a request, status code in a response.
        pub code: u16,
        pub request_id: u32,
        pub attributes: Vec<Attribute>,
        /// Bytes after end-of-attributes (the document of a Print-Job).
        pub data: Vec<u8>,
    }

    impl Message {
        /// An IPP/2.0 request with the two attributes every request starts with.
        pub fn request(operation: u16, request_id: u32) -> Message {
            let mut message = Message {
                version: (2, 0),
                code: operation,
                request_id,
                attributes: Vec::new(),
                data: Vec::new(),
            };
            message.operation_attribute(TAG_CHARSET, "attributes-charset", b"utf-8");
            message.operation_attribute(TAG_LANGUAGE, "attributes-natural-language", b"zh-cn");
            message
        }

        pub fn operation_attribute(&mut self, tag: u8, name: &str, value: &[u8]) {
            self.attributes.push(Attribute {
                group: TAG_OPERATION,
                tag,
                name: name.into(),
                value: value.into(),
            });
        }

        /// Another value of the attribute added last (`1setOf`).
        pub fn additional_value(&mut self, tag: u8, value: &[u8]) {
            let group = self.attributes.last().map_or(TAG_OPERATION, |a| a.group);
            self.attributes.push(Attribute {
                group,
                tag,
                name: String::new(),
                value: value.into(),
            });
        }

        pub fn encode(&self) -> Vec<u8> {
            let mut out = vec![self.version.0, self.version.1];
            out.extend_from_slice(&self.code.to_be_bytes());
            out.extend_from_slice(&self.request_id.to_be_bytes());
            let mut group = None;
            for attribute in &self.attributes {
                if group != Some(attribute.group) {
                    out.push(attribute.group);
                    group = Some(attribute.group);
                }
                out.push(attribute.tag);
                out.extend_from_slice(&(attribute.name.len() as u16).to_be_bytes());
                out.extend_from_slice(attribute.name.as_bytes());
                out.extend_from_slice(&(attribute.value.len() as u16).to_be_bytes());
                out.extend_from_slice(&attribute.value);
            }
            out.push(TAG_END);
            out.extend_from_slice(&self.data);
            out
        }

        pub fn decode(bytes: &[u8]) -> Result<Message, String> {
            let mut at = 0usize;
            let mut take = |n: usize| -> Result<&[u8], String> {
                let slice = bytes
                    .get(at..at + n)
                    .ok_or_else(|| format!("message ends at byte {at}, {n} more expected"))?;
                at += n;
                Ok(slice)
            };
            let head = take(8)?;
            let version = (head[0], head[1]);
            let code = u16::from_be_bytes([head[2], head[3]]);
            let request_id = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            let mut attributes: Vec<Attribute> = Vec::new();
            let mut group = None;
            loop {
                let tag = take(1)?[0];
                if tag == TAG_END {
                    break;
                }
                if tag < 0x10 {
                    group = Some(tag);
                    continue;
                }
                let group = group.ok_or("an attribute before any group tag")?;
                let len = take(2)?;
                let name = take(u16::from_be_bytes([len[0], len[1]]) as usize)?;
                let name = String::from_utf8(name.to_vec())
                    .map_err(|_| "an attribute name is not UTF-8".to_string())?;
                let len = take(2)?;
                let value = take(u16::from_be_bytes([len[0], len[1]]) as usize)?.to_vec();
                if name.is_empty() && attributes.is_empty() {
                    return Err("an additional value without an attribute".into());
                }
                attributes.push(Attribute {
                    group,
                    tag,
                    name,
                    value,
                });
            }
            Ok(Message {
                version,
                code,
                request_id,
                attributes,
                data: bytes[at..].to_vec(),
            })
        }

        /// The values of the named attribute (its first value and the nameless ones after it).
        pub fn values(&self, name: &str) -> Vec<&Attribute> {
            let mut out = Vec::new();
            let mut inside = false;
            for attribute in &self.attributes {
                if attribute.name == name {
                    inside = true;
                    out.push(attribute);
                } else if inside && attribute.name.is_empty() {
                    out.push(attribute);
                } else {
                    inside = false;
                }
            }
            out
        }

        pub fn integer(&self, name: &str) -> Option<i32> {
            let value = &self.values(name).first()?.value;
            Some(i32::from_be_bytes(value.as_slice().try_into().ok()?))
        }

        pub fn text(&self, name: &str) -> Option<String> {
            self.texts(name).into_iter().next()
        }

        pub fn texts(&self, name: &str) -> Vec<String> {
            self.values(name)
                .iter()
                .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                .collect()
        }
    }

    /// Names of the status codes a printer commonly answers with (RFC 8011 §B).
    pub fn status_name(code: u16) -> &'static str {
        match code {
            0x0000 => "successful-ok",
            0x0400 => "client-error-bad-request",
            0x0401 => "client-error-forbidden",
            0x0402 => "client-error-not-authenticated",
            0x0406 => "client-error-not-found",
            0x040A => "client-error-document-format-not-supported",
            0x0500 => "server-error-internal-error",
            0x0506 => "server-error-not-accepting-jobs",
            0x0507 => "server-error-busy",
            _ => "unknown status",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipp_uris_are_posted_to_their_http_address() {
        for (uri, http) in [
            (
                "ipp://cups/printers/PP-100",
                "http://cups:631/printers/PP-100",
            ),
            (
                "ipp://10.0.0.5:8631/ipp/print",
                "http://10.0.0.5:8631/ipp/print",
            ),
            ("ipp://[::1]/printers/x", "http://[::1]:631/printers/x"),
            (
                "ipp://[::1]:8631/printers/x",
                "http://[::1]:8631/printers/x",
            ),
            ("ipp://cups", "http://cups:631/"),
        ] {
            assert_eq!(IppPrinter::new("p", uri).unwrap().http_url, http, "{uri}");
        }
    }

    #[test]
    fn ipp_messages_round_trip_and_truncation_is_an_error() {
        let mut message = ipp::Message::request(ipp::PRINT_JOB, 7);
        message.operation_attribute(ipp::TAG_URI, "printer-uri", b"ipp://h/p");
        message.operation_attribute(ipp::TAG_KEYWORD, "requested-attributes", b"a");
        message.additional_value(ipp::TAG_KEYWORD, b"b");
        message.data = b"%PDF".to_vec();
        let bytes = message.encode();
        let decoded = ipp::Message::decode(&bytes).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.texts("requested-attributes"), ["a", "b"]);
        assert_eq!(decoded.text("printer-uri").as_deref(), Some("ipp://h/p"));
        for cut in [3, 9, 20, bytes.len() - 5] {
            assert!(ipp::Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_folder_printer_writes_both_files_and_refuses_paths() {
        let dir = tempfile::tempdir().unwrap();
        let printer = FolderPrinter {
            name: "tray".into(),
            path: dir.path().join("out"),
        };
        let mut request = PrintRequest {
            title: "t".into(),
            file_stem: "disc-1".into(),
            pdf: b"%PDF".to_vec(),
            png: b"PNG".to_vec(),
        };
        let receipt = printer.print(&request).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out/disc-1.pdf")).unwrap(),
            b"%PDF"
        );
        assert_eq!(
            std::fs::read(dir.path().join("out/disc-1.png")).unwrap(),
            b"PNG"
        );
        assert!(receipt.reference.ends_with("disc-1.pdf"));
        for stem in ["../x", "", ".hidden"] {
            request.file_stem = stem.into();
            assert!(printer.print(&request).is_err(), "{stem:?}");
        }
    }
}
