//! Quick probe: quinn between two processes over loopback, 1 KiB frames on one
//! bidirectional stream. `server PORT FRAMES` / `client PORT FRAMES [zero-cid]`.
use std::{sync::Arc, time::Instant};

fn cpu() -> f64 {
    let mut ru: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut ru) };
    let secs = |t: &Timeval| t.sec as f64 + t.usec as f64 / 1e6;
    secs(&ru.utime) + secs(&ru.stime)
}
/// `struct timeval` (64-bit Linux).
#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}
/// `struct rusage` (64-bit Linux): the two times, then 14 longs.
#[repr(C)]
#[allow(non_camel_case_types)]
struct libc_rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[2].parse().unwrap();
    let frames: usize = args[3].parse().unwrap();
    let size = 1024usize;
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args[1] == "server" {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
        let mut tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key.into())
            .unwrap();
        tls.alpn_protocols = vec![b"yomo".to_vec()];
        let qc = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
        let sc = quinn::ServerConfig::with_crypto(Arc::new(qc));
        let ep = quinn::Endpoint::server(sc, format!("127.0.0.1:{port}").parse().unwrap()).unwrap();
        let conn = ep.accept().await.unwrap().await.unwrap();
        let (_s, mut r) = conn.accept_bi().await.unwrap();
        let total = frames * (size + 4);
        let mut got = 0usize;
        let mut t0 = None;
        let mut c0 = 0.0;
        while got < total {
            match r.read_chunk(1 << 20, true).await.unwrap() {
                Some(ch) => {
                    if t0.is_none() {
                        t0 = Some(Instant::now());
                        c0 = cpu();
                    }
                    got += ch.bytes.len();
                }
                None => break,
            }
        }
        let el = t0.unwrap().elapsed().as_secs_f64();
        let c = cpu() - c0;
        println!(
            "server: {} frames in {:.3}s = {:.0} frames/s, {:.0} MB/s, cpu {:.3}s = {:.2} us/frame",
            frames,
            el,
            frames as f64 / el,
            total as f64 / el / 1e6,
            c,
            c * 1e6 / frames as f64
        );
    } else {
        let zero = args.get(4).map(|s| s == "zero-cid").unwrap_or(false);
        let mut tls = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"yomo".to_vec()];
        let qc = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut epc = quinn::EndpointConfig::default();
        if zero {
            epc.cid_generator(|| Box::new(ZeroCid));
        }
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ep = quinn::Endpoint::new(epc, None, sock, Arc::new(quinn::TokioRuntime)).unwrap();
        ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(qc)));
        let conn = ep.connect(format!("127.0.0.1:{port}").parse().unwrap(), "localhost").unwrap().await.unwrap();
        let (mut s, _r) = conn.open_bi().await.unwrap();
        let mut frame = vec![b'a'; size + 4];
        frame[..4].copy_from_slice(&(size as u32).to_be_bytes());
        let batch: Vec<u8> = frame.repeat(16);
        let t0 = Instant::now();
        let c0 = cpu();
        let mut sent = 0;
        while sent < frames {
            s.write_all(&batch).await.unwrap();
            sent += 16;
        }
        s.finish().unwrap();
        let _ = s.stopped().await;
        let el = t0.elapsed().as_secs_f64();
        println!(
            "client{}: {} frames, {:.0} frames/s, cpu {:.2} us/frame",
            if zero { " (zero-length cid)" } else { "" },
            sent,
            sent as f64 / el,
            (cpu() - c0) * 1e6 / sent as f64
        );
        conn.close(0u32.into(), b"done");
        ep.wait_idle().await;
    }
}

#[derive(Debug)]
struct NoVerify;
impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// quic-go's choice: a zero-length connection id.
struct ZeroCid;
impl quinn::ConnectionIdGenerator for ZeroCid {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&[])
    }
    fn cid_len(&self) -> usize {
        0
    }
    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}
