//! A certificate authority made by the test, and server and client certificates it signs, as
//! PEM files: what an operator of a private IRC server with its own CA has, and what a bot that
//! logs in with SASL EXTERNAL presents. [`TlsFront`] puts TLS (with a client certificate
//! required) in front of a scripted server.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA's certificate and key, the CA certificate written to `ca.pem` in a folder of its own.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: tempfile::TempDir,
}

/// A certificate and its key, as PEM files.
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA whose certificate names it `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write ca.pem");
        TestCa { cert, key, dir }
    }

    /// The CA certificate's PEM file: what `ssl_ca` names.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for a server on 127.0.0.1, signed by this CA, written into `dir`.
    pub fn server_cert(&self, dir: &Path) -> CertFiles {
        let params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server params");
        self.issue(params, "irc.hamper.test", &dir.join("server"))
    }

    /// A client certificate naming `name`, signed by this CA, written into `dir`.
    pub fn client_cert(&self, dir: &Path, name: &str) -> CertFiles {
        let params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        self.issue(params, name, &dir.join("client"))
    }

    /// The DER of this CA's certificate.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Signs `params` for `name`, writing `<stem>-cert.pem` and `<stem>-key.pem`.
    fn issue(&self, mut params: CertificateParams, name: &str, stem: &Path) -> CertFiles {
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the certificate");
        let out = CertFiles {
            cert: PathBuf::from(format!("{}-cert.pem", stem.display())),
            key: PathBuf::from(format!("{}-key.pem", stem.display())),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&out.key, key.serialize_pem()).expect("write the key");
        out
    }
}

/// TLS in front of a scripted server: accepts one connection with the server certificate it is
/// given, requires a client certificate signed by the CA, and relays the plaintext to a loopback
/// socket that the test reads and writes as the server.
pub struct TlsFront {
    /// The TLS port.
    pub port: u16,
    accepted: mpsc::Receiver<Result<(TcpStream, Vec<u8>), String>>,
}

impl TlsFront {
    /// Listens on a free port of 127.0.0.1 with `server` as its certificate, trusting client
    /// certificates that `ca` signed.
    pub fn start(ca: &TestCa, server: &CertFiles) -> TlsFront {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der()).expect("the CA is a root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let chain = CertificateDer::pem_file_iter(&server.cert)
            .expect("server certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("server certificate PEM");
        let key = PrivateKeyDer::from_pem_file(&server.key).expect("server key");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server config");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let (tx, accepted) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(relay(listener, Arc::new(config), tx));
        });
        TlsFront { port, accepted }
    }

    /// Waits for the bot's connection: the plaintext socket to play the server on, and the DER
    /// of the client certificate the bot presented.
    pub fn accept(&self, timeout: Duration) -> (TcpStream, Vec<u8>) {
        match self.accepted.recv_timeout(timeout) {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(err)) => panic!("the TLS handshake with the bot failed: {err}"),
            Err(_) => panic!("no TLS connection from the bot within {timeout:?}"),
        }
    }
}

async fn relay(
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    tx: mpsc::Sender<Result<(TcpStream, Vec<u8>), String>>,
) {
    let step = async {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let presented = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.as_ref().to_vec())
            .ok_or("the bot presented no client certificate")?;
        let inner = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let test_side = TcpStream::connect(inner.local_addr().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let (relay_side, _) = inner.accept().map_err(|e| e.to_string())?;
        relay_side
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let relay_side = tokio::net::TcpStream::from_std(relay_side).map_err(|e| e.to_string())?;
        Ok::<_, String>((tls, relay_side, test_side, presented))
    };
    match step.await {
        Ok((mut tls, mut relay_side, test_side, presented)) => {
            let _ = tx.send(Ok((test_side, presented)));
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut relay_side).await;
        }
        Err(err) => {
            let _ = tx.send(Err(err));
        }
    }
}

/// The DER of the first certificate in the PEM file `path`.
pub fn cert_der(path: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(path)
        .expect("certificate file")
        .next()
        .expect("a certificate")
        .expect("certificate PEM")
        .as_ref()
        .to_vec()
}
