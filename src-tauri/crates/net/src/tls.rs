//! TLS for the connections that are not HTTP: MQTT (feeds and device commands) and TCP
//! (Cursor-on-Target feeds and taskings, including a TAK server's client-certificate port).
//!
//! One rustls stack with the aws-lc-rs provider, the same reqwest uses for HTTPS. A
//! configuration names the CAs to trust (the system's roots when it names none) and, for a
//! server that wants one, the certificate and key this side presents. Paths are relative to
//! the configuration file's folder. The key file holds a secret: like every credential it lives
//! outside the configuration, and nothing here logs its content.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;

/// How to speak TLS to one server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// A PEM file of the certificate authorities to trust; the system's roots when absent.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A PEM certificate chain presented to the server (a TAK server's client-certificate
    /// port asks for one); needs `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the host connected to.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Why a TLS configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match its certificate, say).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// Not a name or address a certificate can be checked against.
    #[error("{0:?} is not a valid server name for TLS")]
    ServerName(String),
    /// Only one of `client_cert` and `client_key` is given.
    #[error("client_cert and client_key go together")]
    HalfClientAuth,
}

impl TlsSpec {
    /// Checks what can be checked without reading files: the client pair is whole.
    pub fn validate(&self) -> Result<(), TlsError> {
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(TlsError::HalfClientAuth);
        }
        Ok(())
    }

    /// The client side, ready to connect: the rustls configuration, built by reading the files
    /// relative to `base`, and the name to check the server's certificate against.
    pub fn client(&self, base: &Path) -> Result<Tls, TlsError> {
        Ok(Tls {
            config: self.client_config(base)?,
            server_name: self.server_name.clone(),
        })
    }

    fn client_config(&self, base: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        self.validate()?;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                let path = base.join(ca);
                for cert in certificates(&path)? {
                    roots.add(cert).map_err(|e| TlsError::File {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
            }
            None => {
                // Unreadable system certificates are skipped: the ones that load still count.
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(&base.join(cert))?;
                let key_path = base.join(key);
                let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::File {
                    path: key_path,
                    reason: format!("no usable private key: {e}"),
                })?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// A TLS client side ready to connect (see [`TlsSpec::client`]).
#[derive(Debug, Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

impl Tls {
    /// The name to check the server's certificate against: the configured one, else `host`.
    fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName(name.to_owned()))
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            path: path.to_owned(),
            reason: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

/// A TCP connection, over TLS when `tls` is given: what CoT feeds and taskings write to and
/// read from.
pub enum Stream {
    /// Plain TCP.
    Plain(tokio::net::TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Stream {
    /// Connects to `host:port`, then shakes hands when `tls` is given. The error says whether
    /// the server was unreachable (`true`: nothing reached it) or refused us after connecting.
    pub async fn connect(host: &str, port: u16, tls: Option<&Tls>) -> Result<Stream, (std::io::Error, bool)> {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| (e, true))?;
        let Some(tls) = tls else { return Ok(Stream::Plain(tcp)) };
        let name = tls.server_name(host).map_err(|e| {
            (
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
                false,
            )
        })?;
        let tls = tokio_rustls::TlsConnector::from(tls.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| (e, false))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The MQTT transport for `tls`: TLS with this configuration, or plain TCP. (rumqttc checks the
/// broker's certificate against the host it connects to.)
pub fn mqtt_transport(tls: Option<&Tls>) -> rumqttc::Transport {
    match tls {
        Some(tls) => rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.config.clone())),
        None => rumqttc::Transport::tcp(),
    }
}
