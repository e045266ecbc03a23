//! SOAP 1.2 for ONVIF: envelopes carrying a WS-Security UsernameToken with PasswordDigest, a
//! small namespace-aware element tree read with quick-xml, and SOAP Faults turned into errors.
//!
//! The stand-in recorder of the tests reads requests with the same tree and checks tokens with
//! the same digest function (checked here against the ONVIF Application Programmer's Guide
//! example), as the Hikvision stand-in shares `digest`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use sha1::{Digest as _, Sha1};
use time::OffsetDateTime;

use crate::recording::{digest, RecordingError};

pub const SOAP_ENVELOPE: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PASSWORD_DIGEST: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
const BASE64_BINARY: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// WS-Security's PasswordDigest: Base64(SHA-1(nonce + created + password)), the nonce taken as
/// the raw bytes (not its Base64 text).
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(nonce);
    sha.update(created.as_bytes());
    sha.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Decodes a token's Base64 nonce (for the stand-in's check).
pub fn decode_nonce(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

/// A fresh 16-byte nonce: a hash of the time, the process and a counter. It only has to differ
/// between requests (replay protection), not be secret.
fn fresh_nonce() -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut sha = Sha1::new();
    sha.update(
        OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_le_bytes(),
    );
    sha.update(std::process::id().to_le_bytes());
    sha.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    sha.finalize()[..16].to_vec()
}

/// A SOAP 1.2 envelope around `body` with a UsernameToken made at `created`.
pub fn envelope(user: &str, password: &str, nonce: &[u8], created: &str, body: &str) -> String {
    let digest = password_digest(nonce, created, password);
    let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
    let user = quick_xml::escape::escape(user);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{SOAP_ENVELOPE}"><s:Header><wsse:Security s:mustUnderstand="1" xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username><wsse:Password Type="{PASSWORD_DIGEST}">{digest}</wsse:Password><wsse:Nonce EncodingType="{BASE64_BINARY}">{nonce}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// One XML element: namespace, local name, its own text and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub namespace: String,
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `path` (local names) below this one, or an error naming what is missing.
    pub fn required(&self, path: &[&str]) -> Result<&Element, RecordingError> {
        let mut element = self;
        for (depth, name) in path.iter().enumerate() {
            element = element.child(name).ok_or_else(|| {
                let mut wanted = vec![self.name.as_str()];
                wanted.extend(&path[..=depth]);
                RecordingError::BadReply(format!(
                    "ONVIF 回复缺少元素 {} (element missing from the reply)",
                    wanted.join("/")
                ))
            })?;
        }
        Ok(element)
    }

    /// The trimmed text at `path`, or an error naming what is missing or empty.
    pub fn required_text(&self, path: &[&str]) -> Result<&str, RecordingError> {
        let text = self.required(path)?.text.trim();
        if text.is_empty() {
            return Err(RecordingError::BadReply(format!(
                "ONVIF 回复中元素 {}/{} 为空 (element empty in the reply)",
                self.name,
                path.join("/")
            )));
        }
        Ok(text)
    }
}

/// Parses a whole document into its root element, namespaces resolved.
pub fn parse(xml: &str) -> Result<Element, RecordingError> {
    let bad = |e: &dyn std::fmt::Display| {
        RecordingError::BadReply(format!("XML 无法解析 (the XML does not parse): {e}"))
    };
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (namespace, event) = reader.read_resolved_event().map_err(|e| bad(&e))?;
        let namespace = match namespace {
            ResolveResult::Bound(ns) => ns.0.to_string(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) => stack.push(Element {
                namespace,
                name: e.local_name().as_ref().to_string(),
                ..Element::default()
            }),
            Event::Empty(e) => {
                let element = Element {
                    namespace,
                    name: e.local_name().as_ref().to_string(),
                    ..Element::default()
                };
                close(&mut stack, &mut root, element);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| bad(&"unbalanced end tag"))?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                // Entities such as &amp; arrive as their own events.
                let resolved = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c.to_string(),
                    None => match r.as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(bad(&format!("unknown entity &{other};"))),
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad(&"the document ends inside an element"));
    }
    root.ok_or_else(|| bad(&"no root element"))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

/// A SOAP Fault: its code, subcodes (QName text as sent, e.g. `ter:NotAuthorized`) and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: String,
    pub subcodes: Vec<String>,
    pub reason: String,
}

impl Fault {
    /// Whether a code or subcode has this local name (prefixes differ between devices).
    pub fn has(&self, local: &str) -> bool {
        std::iter::once(&self.code)
            .chain(&self.subcodes)
            .any(|q| q.rsplit(':').next() == Some(local))
    }
}

/// The Fault in `body`, if the body is one.
pub fn fault(body: &Element) -> Option<Fault> {
    let fault = body.child("Fault")?;
    let code = fault.child("Code");
    let mut subcodes = Vec::new();
    let mut sub = code.and_then(|c| c.child("Subcode"));
    while let Some(s) = sub {
        subcodes.extend(s.child("Value").map(|v| v.text.trim().to_string()));
        sub = s.child("Subcode");
    }
    Some(Fault {
        code: code
            .and_then(|c| c.child("Value"))
            .map(|v| v.text.trim().to_string())
            .unwrap_or_default(),
        subcodes,
        reason: fault
            .child("Reason")
            .and_then(|r| r.child("Text"))
            .map(|t| t.text.trim().to_string())
            .unwrap_or_default(),
    })
}

/// A SOAP 1.2 Fault document (`Sender` or `Receiver`, ONVIF `ter:` subcodes), for stand-ins.
pub fn fault_document(code: &str, subcodes: &[&str], reason: &str) -> String {
    let mut nested = String::new();
    for subcode in subcodes.iter().rev() {
        nested = format!("<s:Subcode><s:Value>{subcode}</s:Value>{nested}</s:Subcode>");
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{SOAP_ENVELOPE}" xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault><s:Code><s:Value>s:{code}</s:Value>{nested}</s:Code><s:Reason><s:Text xml:lang="en">{}</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#,
        quick_xml::escape::escape(reason)
    )
}

/// Someone to call: user and password for the UsernameToken, how long to wait, and how far
/// the device's clock is from ours.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub password: String,
    pub timeout: Duration,
    /// The device's UTC clock minus ours, in milliseconds ([`Caller::sync_clock`]). Devices
    /// refuse a token whose `Created` is far from their own clock (replay protection), and an
    /// NVR's clock is often minutes or hours off the archive appliance's.
    clock_offset_ms: Arc<AtomicI64>,
}

impl Caller {
    pub fn new(user: &str, password: &str, timeout: Duration) -> Caller {
        Caller {
            user: user.to_string(),
            password: password.to_string(),
            timeout,
            clock_offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Asks the device for its UTC time (`GetSystemDateAndTime`, which ONVIF devices answer
    /// without authentication) and dates later tokens by the device's clock. A device without
    /// an answer keeps our clock.
    pub fn sync_clock(&self, device_url: &str) -> Result<(), RecordingError> {
        let body = format!(
            r#"<tds:GetSystemDateAndTime xmlns:tds="{}"/>"#,
            super::DEVICE_WSDL
        );
        let asked = OffsetDateTime::now_utc();
        let response = match self.exchange(
            device_url,
            &format!("{}/GetSystemDateAndTime", super::DEVICE_WSDL),
            &body,
            false,
        ) {
            Ok(response) => response,
            Err(e @ RecordingError::Unreachable { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "the ONVIF device did not tell its time; using ours");
                return Ok(());
            }
        };
        match device_utc(&response) {
            Some(device) => {
                let offset = device - asked;
                self.clock_offset_ms
                    .store(offset.whole_milliseconds() as i64, Ordering::Relaxed);
            }
            None => tracing::warn!("the ONVIF device's time has no UTCDateTime; using ours"),
        }
        Ok(())
    }

    /// POSTs `body` (one request element) to the service at `url` and returns the response's
    /// first Body element. Faults and HTTP errors become errors; `ter:NotAuthorized` and HTTP
    /// 401 become [`RecordingError::Unauthorized`].
    pub fn call(&self, url: &str, action: &str, body: &str) -> Result<Element, RecordingError> {
        self.exchange(url, action, body, true)
    }

    fn exchange(
        &self,
        url: &str,
        action: &str,
        body: &str,
        with_token: bool,
    ) -> Result<Element, RecordingError> {
        let request = if with_token {
            let created = (OffsetDateTime::now_utc()
                + time::Duration::milliseconds(self.clock_offset_ms.load(Ordering::Relaxed)))
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .unwrap_or_default();
            envelope(&self.user, &self.password, &fresh_nonce(), &created, body)
        } else {
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{SOAP_ENVELOPE}"><s:Body>{body}</s:Body></s:Envelope>"#
            )
        };
        // Scheme and authority apart from the path, which HTTP Digest signs.
        let path_start = url
            .split_once("://")
            .and_then(|(scheme, rest)| rest.find('/').map(|i| scheme.len() + 3 + i))
            .ok_or_else(|| {
                RecordingError::BadReply(format!(
                    "服务地址无效 (a service address must be http://host/path): {url}"
                ))
            })?;
        let login = digest::Login {
            base_url: &url[..path_start],
            user: &self.user,
            password: &self.password,
        };
        let content_type = format!("application/soap+xml; charset=utf-8; action=\"{action}\"");
        // Most recorders read the UsernameToken; some also guard the path with HTTP Digest,
        // which `send` answers (a second 401 is Unauthorized).
        let response = digest::send(
            &digest::agent(self.timeout),
            &login,
            "POST",
            &url[path_start..],
            Some((&content_type, &request)),
        )?;
        let (status, text) = digest::reply_text(response)?;
        let root = parse(&text).map_err(|e| {
            if (200..300).contains(&status) {
                e
            } else {
                RecordingError::BadReply(format!("HTTP {status} from {url}"))
            }
        })?;
        if root.name != "Envelope" || root.namespace != SOAP_ENVELOPE {
            return Err(RecordingError::BadReply(format!(
                "回复不是 SOAP 1.2 信封 (the reply of {url} is not a SOAP 1.2 envelope: <{}>)",
                root.name
            )));
        }
        let soap_body = root.required(&["Body"])?;
        if let Some(fault) = fault(soap_body) {
            if fault.has("NotAuthorized") {
                return Err(RecordingError::Unauthorized(url.to_string()));
            }
            return Err(RecordingError::BadReply(format!(
                "ONVIF 错误 (SOAP Fault) from {url}: {} {} {}",
                fault.code,
                fault.subcodes.join(" "),
                fault.reason
            )));
        }
        if !(200..300).contains(&status) {
            return Err(RecordingError::BadReply(format!(
                "HTTP {status} from {url}"
            )));
        }
        soap_body.children.first().cloned().ok_or_else(|| {
            RecordingError::BadReply(format!("SOAP Body of the reply of {url} is empty"))
        })
    }
}

/// The `UTCDateTime` of a `GetSystemDateAndTimeResponse`.
fn device_utc(response: &Element) -> Option<OffsetDateTime> {
    let utc = response
        .required(&["SystemDateAndTime", "UTCDateTime"])
        .ok()?;
    let number = |path: &[&str]| -> Option<i64> { utc.required_text(path).ok()?.parse().ok() };
    let date = time::Date::from_calendar_date(
        i32::try_from(number(&["Date", "Year"])?).ok()?,
        time::Month::try_from(u8::try_from(number(&["Date", "Month"])?).ok()?).ok()?,
        u8::try_from(number(&["Date", "Day"])?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(number(&["Time", "Hour"])?).ok()?,
        u8::try_from(number(&["Time", "Minute"])?).ok()?,
        u8::try_from(number(&["Time", "Second"])?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the ONVIF Application Programmer's Guide (v1.0, 2011, §6.1.1.3).
    #[test]
    fn password_digest_matches_the_onvif_programmers_guide() {
        let nonce = decode_nonce("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        assert_eq!(
            password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"),
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        );
        assert_ne!(
            password_digest(&nonce, "2010-09-16T07:50:46Z", "userpassword"),
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        );
    }

    #[test]
    fn envelope_parses_back_with_namespaces() {
        let xml = envelope(
            "ad<min",
            "pw",
            b"0123456789abcdef",
            "2026-11-20T00:00:00Z",
            r#"<GetRecordings xmlns="http://www.onvif.org/ver10/recording/wsdl"/>"#,
        );
        let root = parse(&xml).unwrap();
        assert_eq!(
            (root.namespace.as_str(), root.name.as_str()),
            (SOAP_ENVELOPE, "Envelope")
        );
        let token = root
            .required(&["Header", "Security", "UsernameToken"])
            .unwrap();
        assert_eq!(token.namespace, WSSE);
        assert_eq!(token.required_text(&["Username"]).unwrap(), "ad<min");
        let nonce = decode_nonce(token.required_text(&["Nonce"]).unwrap()).unwrap();
        assert_eq!(nonce, b"0123456789abcdef");
        assert_eq!(
            token.required_text(&["Password"]).unwrap(),
            password_digest(&nonce, "2026-11-20T00:00:00Z", "pw")
        );
        let request = &root.required(&["Body"]).unwrap().children[0];
        assert_eq!(request.name, "GetRecordings");
        assert_eq!(
            request.namespace,
            "http://www.onvif.org/ver10/recording/wsdl"
        );
    }

    #[test]
    fn missing_elements_and_garbage_are_named() {
        let root = parse("<a:R xmlns:a=\"urn:x\"><a:B>t</a:B></a:R>").unwrap();
        let message = root.required(&["B", "C"]).unwrap_err().to_string();
        assert!(message.contains("R/B/C"), "{message}");
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("not xml at all").is_err());
    }

    #[test]
    fn the_devices_utc_time_is_read() {
        let xml = r#"<tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>23</tt:Hour><tt:Minute>5</tt:Minute><tt:Second>9</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>11</tt:Month><tt:Day>19</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"#;
        assert_eq!(
            device_utc(&parse(xml).unwrap()),
            Some(time::macros::datetime!(2026-11-19 23:05:09 UTC))
        );
        let local_only = xml.replace("UTCDateTime", "LocalDateTime");
        assert_eq!(device_utc(&parse(&local_only).unwrap()), None);
    }

    #[test]
    fn faults_are_read_with_their_subcodes() {
        let xml = fault_document("Sender", &["ter:NotAuthorized"], "Sender not authorized");
        let root = parse(&xml).unwrap();
        let fault = fault(root.required(&["Body"]).unwrap()).unwrap();
        assert_eq!(fault.code, "s:Sender");
        assert_eq!(fault.subcodes, ["ter:NotAuthorized"]);
        assert!(fault.has("NotAuthorized"));
        assert_eq!(fault.reason, "Sender not authorized");
    }
}
