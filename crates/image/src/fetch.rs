//! The HTTP(S) client of image downloads: ureq with rustls, either the system's trust or exactly
//! one pinned certificate (a self-signed image server's, as `warren-build serve` makes), checked
//! with real signature verification.

use std::sync::Arc;

/// Accepts exactly the pinned certificate (the server's self-signed one), with real signature checks.
#[derive(Debug)]
struct Pinned {
    cert: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not the pinned one".into(),
            ))
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
    let mut b = ureq::AgentBuilder::new()
        .user_agent(user_agent)
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(60));
    if let Some(cert) = pinned {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if let Ok(builder) = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
        {
            let cfg = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
                .with_no_client_auth();
            b = b.tls_config(Arc::new(cfg));
        }
    }
    b.build()
}

/// The first certificate of a PEM text, as DER.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(|c| c.ok())
        .map(|c| c.to_vec())
}
