//! The IPP disc printer against a stand-in IPP server on loopback: a real HTTP server that
//! decodes each request with its own IPP parser (written from RFC 8010 here, not shared with the
//! driver), checks the operation, the attributes in their required order and the document, and
//! answers like CUPS does. No disc printer is attached to this machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use witness_drivers::printer::{DiscPrinter, IppPrinter, PrintError, PrintRequest, PrinterStatus};

/// One decoded request as the stand-in saw it.
#[derive(Debug)]
struct Seen {
    path: String,
    content_type: String,
    version: (u8, u8),
    operation: u16,
    request_id: u32,
    /// (group tag, value tag, name, value) in wire order.
    attributes: Vec<(u8, u8, String, Vec<u8>)>,
    document: Vec<u8>,
}

impl Seen {
    fn value(&self, name: &str) -> Option<(u8, String)> {
        self.attributes
            .iter()
            .find(|a| a.2 == name)
            .map(|a| (a.1, String::from_utf8_lossy(&a.3).into_owned()))
    }
}

fn parse_ipp(body: &[u8]) -> (Seen, usize) {
    let u16_at = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
    let mut seen = Seen {
        path: String::new(),
        content_type: String::new(),
        version: (body[0], body[1]),
        operation: u16_at(2),
        request_id: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
        attributes: Vec::new(),
        document: Vec::new(),
    };
    let mut i = 8;
    let mut group = 0;
    loop {
        let tag = body[i];
        i += 1;
        match tag {
            0x03 => break,
            0x00..=0x0f => group = tag,
            _ => {
                let name_len = u16_at(i) as usize;
                let name = String::from_utf8(body[i + 2..i + 2 + name_len].to_vec()).unwrap();
                i += 2 + name_len;
                let value_len = u16_at(i) as usize;
                let value = body[i + 2..i + 2 + value_len].to_vec();
                i += 2 + value_len;
                seen.attributes.push((group, tag, name, value));
            }
        }
    }
    seen.document = body[i..].to_vec();
    (seen, i)
}

fn attribute(out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// A response with the operation attributes every IPP response starts with, then `extra`.
fn response(status: u16, request_id: u32, message: &str, extra: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0];
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&request_id.to_be_bytes());
    out.push(0x01);
    attribute(&mut out, 0x47, "attributes-charset", b"utf-8");
    attribute(&mut out, 0x48, "attributes-natural-language", b"en");
    attribute(&mut out, 0x41, "status-message", message.as_bytes());
    out.extend_from_slice(extra);
    out.push(0x03);
    out
}

/// How the stand-in answers one request it has decoded.
type Answer = Box<dyn Fn(&Seen) -> Vec<u8> + Send>;

/// Serves `answers.len()` requests, one per connection, and reports what each one carried.
fn stand_in(answers: Vec<Answer>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for answer in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            assert_eq!(parts.next(), Some("POST"), "{request_line}");
            let path = parts.next().unwrap().to_string();
            let (mut length, mut chunked, mut content_type) = (None, false, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = Some(value.trim().parse::<usize>().unwrap()),
                    "transfer-encoding" => chunked = value.trim() == "chunked",
                    "content-type" => content_type = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = Vec::new();
            if chunked {
                loop {
                    let mut size = String::new();
                    reader.read_line(&mut size).unwrap();
                    let size = usize::from_str_radix(size.trim(), 16).unwrap();
                    let mut chunk = vec![0; size + 2];
                    reader.read_exact(&mut chunk).unwrap();
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..size]);
                }
            } else {
                body.resize(length.expect("a Content-Length"), 0);
                reader.read_exact(&mut body).unwrap();
            }
            let (mut seen, _) = parse_ipp(&body);
            seen.path = path;
            seen.content_type = content_type;
            let reply = answer(&seen);
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.len()
            )
            .unwrap();
            stream.write_all(&reply).unwrap();
            tx.send(seen).unwrap();
        }
    });
    (format!("ipp://127.0.0.1:{port}/printers/PP-100"), rx)
}

fn request() -> PrintRequest {
    PrintRequest {
        title: "ZB2026-0042 2/3".into(),
        file_stem: "disc-7".into(),
        pdf: b"%PDF-1.7\n% a disc face\n%%EOF".to_vec(),
        png: vec![0x89, b'P', b'N', b'G'],
    }
}

#[test]
fn print_job_sends_the_pdf_with_the_required_attributes_and_returns_the_job_id() {
    let (uri, seen) = stand_in(vec![Box::new(|s: &Seen| {
        let mut job = vec![0x02];
        attribute(&mut job, 0x21, "job-id", &42i32.to_be_bytes());
        attribute(&mut job, 0x23, "job-state", &3i32.to_be_bytes());
        response(0x0000, s.request_id, "successful-ok", &job)
    })]);
    let printer = IppPrinter::new("pp100", &uri).unwrap();
    let receipt = printer.print(&request()).unwrap();
    assert_eq!(receipt.printer, "pp100");
    assert_eq!(receipt.reference, "job 42");

    let s = seen.recv().unwrap();
    assert_eq!(s.path, "/printers/PP-100");
    assert_eq!(s.content_type, "application/ipp");
    assert_eq!(s.version, (2, 0));
    assert_eq!(s.operation, 0x0002, "Print-Job");
    assert_ne!(
        s.request_id, 0,
        "request ids are 1 or more (RFC 8011 §4.1.1)"
    );
    // RFC 8011 §4.1.4: charset first, natural language second, then printer-uri.
    let names: Vec<&str> = s.attributes.iter().map(|a| a.2.as_str()).collect();
    assert_eq!(
        &names[..3],
        [
            "attributes-charset",
            "attributes-natural-language",
            "printer-uri"
        ]
    );
    assert!(
        s.attributes.iter().all(|a| a.0 == 0x01),
        "operation group only"
    );
    assert_eq!(s.value("attributes-charset"), Some((0x47, "utf-8".into())));
    assert_eq!(s.value("printer-uri"), Some((0x45, uri.clone())));
    assert_eq!(
        s.value("requesting-user-name"),
        Some((0x42, "witness".into()))
    );
    assert_eq!(s.value("job-name"), Some((0x42, "ZB2026-0042 2/3".into())));
    assert_eq!(
        s.value("document-format"),
        Some((0x49, "application/pdf".into()))
    );
    assert_eq!(
        s.document,
        request().pdf,
        "the PDF follows end-of-attributes"
    );
}

#[test]
fn a_refusal_and_the_printer_state_are_reported() {
    let (uri, seen) = stand_in(vec![
        Box::new(|s: &Seen| {
            response(
                0x040A,
                s.request_id,
                "Unsupported format 'application/pdf'.",
                &[],
            )
        }),
        Box::new(|s: &Seen| {
            let mut printer = vec![0x04];
            attribute(&mut printer, 0x23, "printer-state", &5i32.to_be_bytes());
            attribute(
                &mut printer,
                0x44,
                "printer-state-reasons",
                b"media-empty-error",
            );
            attribute(&mut printer, 0x44, "", b"cover-open-warning");
            response(0x0000, s.request_id, "successful-ok", &printer)
        }),
    ]);
    let printer = IppPrinter::new("pp100", &uri).unwrap();
    match printer.print(&request()) {
        Err(PrintError::Refused { detail, .. }) => {
            assert!(detail.contains("0x040a"), "{detail}");
            assert!(detail.contains("Unsupported format"), "{detail}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    seen.recv().unwrap();

    let state = printer.state().unwrap();
    assert_eq!(state.state, PrinterStatus::Stopped);
    assert_eq!(state.reasons, ["media-empty-error", "cover-open-warning"]);
    let s = seen.recv().unwrap();
    assert_eq!(s.operation, 0x000B, "Get-Printer-Attributes");
    let requested: Vec<String> = s
        .attributes
        .iter()
        .skip_while(|a| a.2 != "requested-attributes")
        .take_while(|a| a.2 == "requested-attributes" || a.2.is_empty())
        .map(|a| String::from_utf8_lossy(&a.3).into_owned())
        .collect();
    assert_eq!(requested, ["printer-state", "printer-state-reasons"]);
}

#[test]
fn bad_uris_and_an_absent_printer_are_clear_errors() {
    for (uri, expected) in [
        ("http://host/printers/x", "not an ipp:// URI"),
        ("ipps://host/printers/x", "not supported yet"),
        ("ipp:///printers/x", "no valid host"),
    ] {
        let e = IppPrinter::new("p", uri).unwrap_err();
        assert!(e.to_string().contains(expected), "{uri}: {e}");
    }
    // Nothing listens on the port: unreachable, not a hang or a panic.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let printer = IppPrinter::new("p", &format!("ipp://127.0.0.1:{port}/printers/x")).unwrap();
    assert!(matches!(
        printer.print(&request()),
        Err(PrintError::Unreachable { .. })
    ));
}
