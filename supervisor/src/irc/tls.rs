//! TLS for the IRC connection: rustls, with certificates verified by default.
//!
//! A server's chain may end in any of three sets of roots, gathered once at start-up: the webpki
//! roots built in (the public CAs, so a fresh container without a CA bundle still reaches public
//! networks), the system's certificate store (where an organisation installs its own CA), and the
//! PEM file named by `ssl_ca` (a private server's CA, without touching the system).
//!
//! `ssl_verify: false` exists for self-signed test servers only; it is logged as a warning at
//! every connection.
//!
//! With `ssl_cert` and `ssl_key` the bot presents a client certificate in the handshake, which
//! is how SASL EXTERNAL logs in: the pair is read and checked (the key must belong to the
//! certificate) once at start-up, so a mistake is a configuration error, not a failed login.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WantsClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::KeyError;

/// Why the `ssl_ca` file cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("{path} is not valid PEM: {problem}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader says.
        problem: String,
    },
    /// The file holds no certificate.
    #[error("{path} holds no PEM certificate (no -----BEGIN CERTIFICATE----- section)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in the file cannot serve as a root.
    #[error("{path}: certificate {index} cannot be trusted: {source}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Its position in the file, from 1.
        index: usize,
        /// Why.
        #[source]
        source: rustls::Error,
    },
}

impl CaFileError {
    /// The problem as a configuration error naming `ssl_ca`, with the fix.
    pub fn key_error(&self) -> KeyError {
        KeyError {
            key: "ssl_ca".to_string(),
            problem: self.to_string(),
            fix: self.fix().to_string(),
        }
    }

    fn fix(&self) -> &'static str {
        match self {
            CaFileError::Unreadable { .. } => "set ssl_ca to the path of a readable PEM file holding the server's CA certificate, or leave it out to trust the public and system CAs only",
            CaFileError::BadPem { .. }
            | CaFileError::NoCertificate { .. }
            | CaFileError::BadCertificate { .. } => "give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----), e.g. converted with `openssl x509 -inform der -in ca.der -out ca.pem`",
        }
    }
}

/// The certificates in the PEM file `path` as roots: at least one, each usable.
pub fn read_ca_file(path: &Path) -> Result<RootCertStore, CaFileError> {
    let pem = std::fs::read(path).map_err(|source| CaFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| CaFileError::BadPem {
            path: path.to_path_buf(),
            problem: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaFileError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|source| CaFileError::BadCertificate {
                path: path.to_path_buf(),
                index: i + 1,
                source,
            })?;
    }
    Ok(roots)
}

/// Why the client certificate (`ssl_cert`, `ssl_key`) cannot be presented.
#[derive(Debug, thiserror::Error)]
pub enum ClientCertError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// `ssl_cert` or `ssl_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path} holds no PEM certificate (no -----BEGIN CERTIFICATE----- section)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("{path} holds no PEM private key (no -----BEGIN PRIVATE KEY----- section or its RSA or EC form): {problem}")]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM reader says.
        problem: String,
    },
    /// The key cannot be used, or is not the certificate's.
    #[error("the key in {key_path} cannot sign for the certificate in {cert_path}: {source}")]
    Unusable {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
        /// What rustls says.
        #[source]
        source: rustls::Error,
    },
}

impl ClientCertError {
    /// The problem as a configuration error naming the key to fix.
    pub fn key_error(&self) -> KeyError {
        let (key, fix) = match self {
            ClientCertError::Unreadable { key, .. } => (*key, "set it to the path of a readable PEM file"),
            ClientCertError::NoCertificate { .. } => ("ssl_cert", "give the client certificate in PEM form (-----BEGIN CERTIFICATE-----)"),
            ClientCertError::NoKey { .. } => ("ssl_key", "give the certificate's private key in PEM form, unencrypted (e.g. `openssl pkey -in key.pem -out key-plain.pem`)"),
            ClientCertError::Unusable { .. } => ("ssl_key", "give the private key that belongs to the certificate in ssl_cert (an RSA, ECDSA or Ed25519 key)"),
        };
        KeyError {
            key: key.to_string(),
            problem: self.to_string(),
            fix: fix.to_string(),
        }
    }
}

/// The client certificate chain in `cert` and its private key in `key` (PEM files), checked to
/// belong together.
pub fn read_client_identity(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, ClientCertError> {
    let read = |which: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| ClientCertError::Unreadable {
            key: which,
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read("ssl_cert", cert)?;
    let key_pem = read("ssl_key", key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| ClientCertError::NoCertificate {
            path: cert.to_path_buf(),
        })?;
    let private =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| ClientCertError::NoKey {
            path: key.to_path_buf(),
            problem: err.to_string(),
        })?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, private, &provider)
        .map(Arc::new)
        .map_err(|source| ClientCertError::Unusable {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            source,
        })
}

/// The roots a server's certificate chain may end in: the webpki roots, the system's store,
/// and the certificates of `ssl_ca`. A system store that cannot be read is a warning: the other
/// roots still stand.
pub fn trusted_roots(ssl_ca: Option<&Path>) -> Result<RootCertStore, CaFileError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let system = rustls_native_certs::load_native_certs();
    for err in &system.errors {
        tracing::warn!(error = %err, "cannot read part of the system certificate store; it is not trusted");
    }
    let (added, ignored) = roots.add_parsable_certificates(system.certs);
    tracing::debug!(added, ignored, "system certificate store loaded");
    if let Some(path) = ssl_ca {
        roots.roots.extend(read_ca_file(path)?.roots);
    }
    Ok(roots)
}

/// Wraps `tcp` in TLS for `host`, verifying the certificate against `roots` unless `verify` is
/// false, and presenting `identity` as the client certificate when given.
pub async fn connect(
    tcp: TcpStream,
    host: &str,
    verify: bool,
    roots: &Arc<RootCertStore>,
    identity: Option<&Arc<CertifiedKey>>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?;
    let builder = if verify {
        builder.with_root_certificates(roots.clone())
    } else {
        tracing::warn!(server = host, "TLS certificate verification is OFF (ssl_verify: false); the connection can be intercepted");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    let config = with_identity(builder, identity);
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad server name: {e}"),
        )
    })?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(explain_certificate_error)
}

/// The client half of the config: the certificate to present, if any.
fn with_identity(
    builder: ConfigBuilder<ClientConfig, WantsClientCert>,
    identity: Option<&Arc<CertifiedKey>>,
) -> ClientConfig {
    match identity {
        Some(identity) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.clone())))
        }
        None => builder.with_no_client_auth(),
    }
}

/// A handshake refused for the server's certificate says so and what to do; other errors pass.
fn explain_certificate_error(err: std::io::Error) -> std::io::Error {
    let refused = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
    if !refused {
        return err;
    }
    std::io::Error::new(
        err.kind(),
        format!("TLS certificate verification failed: {err}; fix: if the server uses its own CA, set ssl_ca to that CA's PEM file (or install it in the system store)"),
    )
}

#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<RootCertStore, CaFileError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).expect("write");
        read_ca_file(&path)
    }

    #[test]
    fn a_ca_file_without_a_usable_certificate_is_refused_with_the_reason() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "holds no PEM certificate"),
            (b"\x30\x82\x01\x0a binary DER", "holds no PEM certificate"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds no PEM certificate",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                "is not valid PEM",
            ),
        ];
        for (text, want) in cases {
            let err = read(text).expect_err("refused");
            assert!(err.to_string().contains(want), "{err} for {text:?}");
            assert_eq!(err.key_error().key, "ssl_ca");
        }
        let err = read(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .expect_err("not a certificate");
        assert!(
            matches!(err, CaFileError::BadCertificate { index: 1, .. }),
            "{err}"
        );
        let missing = read_ca_file(Path::new("/nonexistent/ca.pem")).expect_err("missing");
        assert!(missing.key_error().fix.contains("readable PEM file"));
    }

    #[test]
    fn the_public_roots_are_trusted_without_a_ca_file() {
        let roots = trusted_roots(None).expect("roots");
        assert!(roots.len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }
}
