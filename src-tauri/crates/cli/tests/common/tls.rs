//! TLS for the tests: a certificate authority of their own (rcgen), a server certificate for
//! 127.0.0.1 and localhost, a client certificate, all written as PEM files; and a TLS server
//! on 127.0.0.1 that demands a client certificate from that CA. The server stands in for a TAK
//! server's client-certificate port (taky's TLS mode is not set up in `tests/peers`); it speaks
//! real TLS over a real socket, so the engine's own TLS client is what is tested.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The PEM files of one test PKI.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Makes a CA, a server certificate and a client certificate in `dir`.
pub fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "cityops test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issue = |names: Vec<String>, cn: &str| {
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue(vec!["127.0.0.1".into(), "localhost".into()], "127.0.0.1");
    let (client_cert, client_key) = issue(vec!["cityops-outbox".into()], "cityops-outbox");
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
    }
}

/// What one connection to [`TlsServer`] brought.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The subject of the client certificate, as the server verified it.
    pub client_cert: bool,
    pub received: Vec<u8>,
}

/// A TLS server on 127.0.0.1 requiring a client certificate from the test CA. It writes
/// `greeting` to each client, then records what the client sends until it closes.
pub struct TlsServer {
    pub port: u16,
    pub sessions: Arc<Mutex<Vec<Session>>>,
}

impl TlsServer {
    pub async fn start(pki: &Pki, greeting: Vec<u8>) -> TlsServer {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&pki.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
        let record = sessions.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, record, greeting) = (acceptor.clone(), record.clone(), greeting.clone());
                tokio::spawn(async move {
                    // A client without a certificate from the CA fails the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let client_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                    let index = {
                        let mut r = record.lock().unwrap();
                        r.push(Session {
                            client_cert,
                            received: Vec::new(),
                        });
                        r.len() - 1
                    };
                    let _ = tls.write_all(&greeting).await;
                    let _ = tls.flush().await;
                    let mut buf = [0u8; 4096];
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => record.lock().unwrap()[index].received.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        TlsServer { port, sessions }
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }
}
