//! The HTTP(S) client of image downloads: ureq with rustls, either the system's trust or exactly
//! one pinned certificate (a self-signed image server's, as `warren-build serve` makes), checked
//! with real signature verification.

use std::sync::Arc;

/// What the verifier accepts as the server's certificate.
#[derive(Debug)]
enum Check {
    /// Exactly this one (the server's self-signed one).
    Pinned(Vec<u8>),
    /// Any, kept to show the user its fingerprint before they pin it (as `incus remote add`).
    Capture(std::sync::Mutex<Option<Vec<u8>>>),
}

/// A certificate check of our own, with rustls's real signature checks of the handshake.
#[derive(Debug)]
struct Verifier {
    check: Check,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.check {
            Check::Pinned(cert) if end_entity.as_ref() == cert.as_slice() => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            Check::Pinned(_) => Err(rustls::Error::General(
                "the server's certificate is not the pinned one".into(),
            )),
            Check::Capture(seen) => {
                if let Ok(mut s) = seen.lock() {
                    *s = Some(end_entity.to_vec());
                }
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An agent that says `user_agent`; with `pinned` (a DER certificate), it accepts only that one.
pub fn agent(user_agent: &str, pinned: Option<Vec<u8>>) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new()
        .user_agent(user_agent)
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(60));
    let Some(cert) = pinned else {
        return builder.build();
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => builder
            .tls_config(Arc::new(
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(Verifier {
                        check: Check::Pinned(cert),
                        provider,
                    }))
                    .with_no_client_auth(),
            ))
            .build(),
        Err(_) => builder.build(),
    }
}

/// An agent for an Incus-protocol server: only its `pinned` certificate (DER) accepted, and the
/// client's own certificate and key (PEM) shown, by which the server knows it.
pub fn client_agent(
    user_agent: &str,
    pinned: Vec<u8>,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<ureq::Agent, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(client_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("client certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(client_key_pem.as_bytes())
        .map_err(|e| format!("client key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            check: Check::Pinned(pinned),
            provider,
        }))
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("client certificate and key: {e}"))?;
    Ok(ureq::AgentBuilder::new()
        .user_agent(user_agent)
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(60))
        .tls_config(Arc::new(cfg))
        .build())
}

/// The first certificate of a PEM text, as DER.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(|c| c.ok())
        .map(|c| c.to_vec())
}

/// The certificate (DER) an HTTPS server at `url` presents, whoever signed it.
pub fn peer_certificate(url: &str) -> Result<Vec<u8>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let capture = Arc::new(Verifier {
        check: Check::Capture(std::sync::Mutex::new(None)),
        provider: provider.clone(),
    });
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(Arc::new(cfg))
        .timeout_connect(std::time::Duration::from_secs(10))
        .timeout_read(std::time::Duration::from_secs(10))
        .build();
    // any answer will do: the handshake is what shows the certificate
    let answer = agent.get(url).call();
    if let Check::Capture(seen) = &capture.check {
        if let Some(cert) = seen.lock().ok().and_then(|s| s.clone()) {
            return Ok(cert);
        }
    }
    Err(match answer {
        Err(ureq::Error::Transport(t)) => format!("{url}: {t}"),
        _ => format!("{url}: the server presented no certificate (is it HTTPS?)"),
    })
}

/// A DER certificate as PEM.
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
