//! HTTP Digest authentication (RFC 7616 with MD5 and qop=auth, RFC 2617 without qop), the
//! scheme Hikvision's ISAPI and Dahua's CGI ask for. The first request goes out bare; a 401
//! carries the challenge, and the request is sent once more with the answer.

use md5::{Digest as _, Md5};

use super::RecordingError;

/// The parts of a `WWW-Authenticate: Digest …` challenge we answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub qop_auth: bool,
}

/// Parses a Digest challenge; `None` for other schemes (Basic) or a challenge without nonce.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim().strip_prefix("Digest")?.trim_start();
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut qop_auth = false;
    for (key, value) in parameters(rest) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "nonce" => nonce = Some(value),
            "opaque" => opaque = Some(value),
            "qop" => qop_auth = value.split(',').any(|q| q.trim() == "auth"),
            "algorithm" if !value.eq_ignore_ascii_case("MD5") => return None,
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm.unwrap_or_default(),
        nonce: nonce?,
        opaque,
        qop_auth,
    })
}

/// Splits `a="x, y", b=z` into pairs, honouring quotes (challenges and answers alike).
pub fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return pairs;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
}

/// The NVR a request goes to, and who sends it.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// `http://host:port`, without a trailing slash.
    pub base_url: &'a str,
    pub user: &'a str,
    pub password: &'a str,
}

/// An HTTP client for NVR calls: statuses are answers (a 401 is a challenge), not errors.
pub fn agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Sends `method path` (path and query, exactly as the answer names it) with Digest
/// authentication: bare first, then once more answering the 401's challenge. A second 401 is
/// [`RecordingError::Unauthorized`]; other statuses are the caller's to judge. `body` is the
/// content type and the text.
pub fn send(
    agent: &ureq::Agent,
    login: &Login<'_>,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> Result<ureq::http::Response<ureq::Body>, RecordingError> {
    let url = format!("{}{path}", login.base_url);
    let unreachable = |reason: String| RecordingError::Unreachable {
        address: login.base_url.to_string(),
        reason,
    };
    let run = |authorization: Option<&str>| {
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let sent = match body {
            Some((content_type, text)) => request
                .header("Content-Type", content_type)
                .body(text.to_string())
                .map(|r| agent.run(r)),
            None => request.body(()).map(|r| agent.run(r)),
        };
        sent.map_err(|e| unreachable(e.to_string()))?
            .map_err(|e| unreachable(e.to_string()))
    };
    let response = run(None)?;
    if response.status().as_u16() != 401 {
        return Ok(response);
    }
    let challenge = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_challenge)
        .ok_or_else(|| {
            RecordingError::BadReply(
                "401 但没有 Digest 质询 (401 without a Digest challenge)".into(),
            )
        })?;
    // Unique enough per answer: the server only needs it to differ between answers.
    let cnonce = format!(
        "{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id())
    );
    let answer = authorization(
        &challenge,
        login.user,
        login.password,
        method,
        path,
        &cnonce,
    );
    let response = run(Some(&answer))?;
    if response.status().as_u16() == 401 {
        return Err(RecordingError::Unauthorized(login.base_url.to_string()));
    }
    Ok(response)
}

/// The status and text of a reply.
pub fn reply_text(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<(u16, String), RecordingError> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| RecordingError::BadReply(format!("reading the reply: {e}")))?;
    Ok((status, text))
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who answers a challenge, and in which realm.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub realm: &'a str,
}

/// The `response` value of an answer; `qop` is `(nc, cnonce)` when the server asked for
/// qop=auth. Servers (the stand-in NVR) compute the same value to check an answer.
pub fn response(
    credentials: &Credentials<'_>,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let Credentials {
        user,
        password,
        realm,
    } = credentials;
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The `Authorization` header answering `challenge` for `method` on `uri` (path and query).
/// `cnonce` must be fresh for each answer when the server uses qop.
pub fn authorization(
    challenge: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let nc = "00000001";
    let mut header = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm=MD5",
        challenge.realm, challenge.nonce
    );
    let qop = if challenge.qop_auth {
        header.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        Some((nc, cnonce))
    } else {
        None
    };
    let response = response(
        &Credentials {
            user,
            password,
            realm: &challenge.realm,
        },
        &challenge.nonce,
        method,
        uri,
        qop,
    );
    header.push_str(&format!(", response=\"{response}\""));
    if let Some(opaque) = &challenge.opaque {
        header.push_str(&format!(", opaque=\"{opaque}\""));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_rfc_2617_example() {
        // RFC 2617 section 3.5: Mufasa / "Circle Of Life".
        let challenge = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert!(challenge.qop_auth);
        let header = authorization(
            &challenge,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert!(
            header.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{header}"
        );
        assert!(header.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    #[test]
    fn other_schemes_are_not_digest() {
        assert_eq!(parse_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_challenge(r#"Digest realm="x""#), None);
        assert_eq!(
            parse_challenge(r#"Digest realm="x", nonce="n", algorithm=SHA-256"#),
            None
        );
    }
}
