//! A certificate authority made by the test, and a server certificate it signs, as PEM files:
//! what an operator of a private IRC server with its own CA has.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA's certificate and key, the CA certificate written to `ca.pem` in a folder of its own.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: tempfile::TempDir,
}

/// A server certificate (for `127.0.0.1` and `localhost`) and its key, as PEM files.
pub struct ServerCert {
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
    pub fn server_cert(&self, dir: &Path) -> ServerCert {
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "irc.hamper.test");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the server certificate");
        let out = ServerCert {
            cert: dir.join("server-cert.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write the server certificate");
        std::fs::write(&out.key, key.serialize_pem()).expect("write the server key");
        out
    }
}
