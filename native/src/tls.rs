//! TLS (the Python concept `TlsConfig`): rustls configurations from the PEM files that
//! `TlsConfig` names, with the `YOMO_TLS_*` semantics: clients verify the zipper only
//! with `verify_peer`; a zipper with `verify_peer` requires a client certificate signed
//! by the CA (mutual TLS). ALPN is `yomo` both ways.

use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime};

pub const ALPN: &[u8] = b"yomo";

/// The TLS settings handed in from Python (`yomo.transport.TlsConfig`).
#[derive(Clone, Debug, Default)]
pub struct Tls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub ca_file: Option<String>,
    pub verify_peer: bool,
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificate file {path}: {e}"))?
        .collect();
    let certs = certs.map_err(|e| format!("bad certificate in {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {path}"));
    }
    Ok(certs)
}

fn key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("cannot read private key from {path}: {e}"))
}

fn roots(path: &str) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certs(path)? {
        store.add(cert).map_err(|e| format!("bad CA certificate in {path}: {e}"))?;
    }
    Ok(store)
}

/// The zipper's side: its certificate, and with `verify_peer` a required client certificate.
pub fn server_config(tls: &Tls) -> Result<rustls::ServerConfig, String> {
    let (Some(cert), Some(key_path)) = (&tls.cert_file, &tls.key_file) else {
        return Err("the zipper needs a certificate and key".into());
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let builder = if tls.verify_peer {
        let ca = tls.ca_file.as_deref().ok_or("mutual TLS needs a CA file")?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
            .build()
            .map_err(|e| format!("mutual TLS: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs(cert)?, key(key_path)?)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    Ok(config)
}

/// A client's side: verify the zipper with the CA only when `verify_peer`; present the
/// certificate when one is configured (mutual TLS).
pub fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let builder = if tls.verify_peer {
        let ca = tls.ca_file.as_deref().ok_or("verifying the zipper needs a CA file")?;
        builder.with_root_certificates(roots(ca)?)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    };
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(k)) => builder
            .with_client_auth_cert(certs(cert)?, key(k)?)
            .map_err(|e| format!("certificate and key do not fit together: {e}"))?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The name to check the zipper's certificate against: an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad server name {host:?}: {e}"))
}

/// Development mode (no `YOMO_TLS_VERIFY_PEER`): the zipper's certificate is not checked,
/// as Go's clients do; the handshake signatures still are.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
