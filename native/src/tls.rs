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
    let certs: Result<Vec<_>, _> =
        CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read certificate file {path}: {e}"))?.collect();
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

/// A client certificate checker to run once the handshake is done.
pub type ClientCheck = Arc<dyn rustls::server::danger::ClientCertVerifier>;

/// The zipper's side: its certificate, and with `verify_peer` a client certificate that
/// is checked against the CA once the handshake is done (`ClientCheck`), so that a client
/// without one, or with an untrusted one, is told why in words, as on the pure-Python path.
pub fn server_config(tls: &Tls) -> Result<(rustls::ServerConfig, Option<ClientCheck>), String> {
    let (Some(cert), Some(key_path)) = (&tls.cert_file, &tls.key_file) else {
        return Err("the zipper needs a certificate and key".into());
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let mut check = None;
    let builder = if tls.verify_peer {
        let ca = tls.ca_file.as_deref().ok_or("mutual TLS needs a CA file")?;
        let verifier: ClientCheck =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                .build()
                .map_err(|e| format!("mutual TLS: {e}"))?;
        check = Some(verifier.clone());
        builder.with_client_cert_verifier(Arc::new(AfterHandshake(verifier)))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs(cert)?, key(key_path)?)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    // No session tickets: Go's clients never resume (no session cache) and ours dial
    // with a fresh configuration, so tickets would cost every handshake for nothing.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok((config, check))
}

/// Asks every client for a certificate (naming no CA, so clients send theirs whatever
/// signed it), checks the handshake signatures, and leaves the chain to `ClientCheck`.
#[derive(Debug)]
struct AfterHandshake(ClientCheck);

impl rustls::server::danger::ClientCertVerifier for AfterHandshake {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Check a client's certificate chain after the handshake; the reason when it fails.
pub fn check_client(check: &ClientCheck, identity: Option<Box<dyn std::any::Any>>) -> Result<(), String> {
    let chain = identity.and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok());
    let Some(chain) = chain.filter(|c| !c.is_empty()) else {
        return Err("mutual TLS: the client presented no certificate".into());
    };
    check
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map(|_| ())
        .map_err(|e| format!("mutual TLS: client certificate not trusted: {e}"))
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
