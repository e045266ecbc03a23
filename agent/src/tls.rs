//! HTTPS to the controller with a pinned certificate (`--pin-cert`): the gate trusts the one
//! certificate it was given (a copy of the controller's `<data>/tls/cert.pem`), byte for byte, and
//! no certificate authority at all.
//!
//! The TLS runs in a small loopback tunnel: the HTTP client talks plain HTTP to `127.0.0.1:<port>`
//! in this process, and every connection it opens there becomes one TLS connection to the
//! controller, verified by [`PinnedVerifier`]. (Turning on reqwest's own rustls support would
//! switch every reqwest client of the workspace to rustls, and those without an installed crypto
//! provider would panic when built; the tunnel keeps the agent's HTTP client as it is.)

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Reads the first certificate of a PEM file.
pub fn load_pinned(path: &Path) -> anyhow::Result<CertificateDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    CertificateDer::from_pem_slice(&pem)
        .map_err(|e| anyhow::anyhow!("{}: no PEM certificate in it ({e:?})", path.display()))
}

/// The pinned certificate is not the one the server showed.
#[derive(Debug)]
struct NotPinned;

impl std::fmt::Display for NotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server's certificate is not the pinned one (--pin-cert)")
    }
}

impl std::error::Error for NotPinned {}

/// Accepts the server only if its end-entity certificate is byte-for-byte the pinned one, and
/// checks the handshake signatures with that certificate's key. Names, dates and chains are not
/// looked at: the pin is the whole trust decision.
#[derive(Debug)]
pub struct PinnedVerifier {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    pub fn new(pinned: CertificateDer<'static>) -> PinnedVerifier {
        PinnedVerifier {
            pinned,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(NotPinned)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS client configuration (ring, TLS 1.2 and 1.3) trusting only `pinned`.
pub fn client_config(pinned: CertificateDer<'static>) -> anyhow::Result<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(pinned)))
    .with_no_client_auth();
    Ok(config)
}

/// Starts the loopback tunnel to the `https://` controller `server`, trusting only the
/// certificate in `pin`; returns the `http://127.0.0.1:<port>` URL (with the server URL's path) to
/// give the HTTP client instead. Runs until the process ends; must be called within Tokio.
pub async fn start_tunnel(server: &str, pin: &Path) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(server).with_context(|| format!("server URL {server:?}"))?;
    if url.scheme() != "https" {
        bail!("--pin-cert needs an https:// server URL, not {server:?}");
    }
    let host = url
        .host_str()
        .with_context(|| format!("no host in {server:?}"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let name = ServerName::try_from(host.clone())
        .with_context(|| format!("{host:?} is not a host name or address"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(load_pinned(pin)?)?));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("opening the loopback end of the TLS tunnel")?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (mut inner, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::error!(error = %e, "TLS tunnel: accepting failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let (connector, name, host) = (connector.clone(), name.clone(), host.clone());
            tokio::spawn(async move {
                let tcp = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS tunnel: controller unreachable");
                        return;
                    }
                };
                let mut outer = match connector.connect(name, tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        let pinning = e
                            .get_ref()
                            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                            .is_some_and(|e| {
                                matches!(
                                    e,
                                    rustls::Error::InvalidCertificate(CertificateError::Other(_))
                                )
                            });
                        let error = if pinning {
                            NotPinned.to_string()
                        } else {
                            e.to_string()
                        };
                        tracing::error!(error, "TLS handshake with the controller failed");
                        return;
                    }
                };
                let _ = tokio::io::copy_bidirectional(&mut inner, &mut outer).await;
            });
        }
    });
    let path = url.path().trim_end_matches('/');
    Ok(format!("http://{local}{path}"))
}
