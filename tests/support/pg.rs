//! PostgreSQL for the end-to-end tests: a fresh schema per test on the server named by
//! `HAMPER_TEST_POSTGRES_URL`, and a TCP proxy that can cut the bot off from it.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The variable naming the server.
pub const POSTGRES_ENV: &str = "HAMPER_TEST_POSTGRES_URL";

/// A fresh schema, dropped on drop.
pub struct Schema {
    base: String,
    /// Its name.
    pub name: String,
}

impl Schema {
    /// Creates a schema, or returns `None` after [`crate::skip_or_fail`] when there is no server.
    pub fn create(test: &str) -> Option<Schema> {
        let base = match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                crate::skip_or_fail(&format!(
                    "{test}: set {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test to run it against PostgreSQL"
                ));
                return None;
            }
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hamper_e2e_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let schema = Schema { base, name };
        schema.psql(&format!("CREATE SCHEMA {}", schema.name));
        Some(schema)
    }

    /// The server URL as the test was given it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A URL whose connections use this schema.
    pub fn url(&self) -> String {
        with_search_path(&self.base, &self.name)
    }

    /// Runs SQL through `psql` in this schema, failing the test on error; returns stdout.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(&self.base)
            .args(["-v", "ON_ERROR_STOP=1", "-qAtX", "-c"])
            .arg(format!("SET search_path TO {}; {sql}", self.name))
            .output()
            .expect("psql is installed (postgresql-client)");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.base)
            .args(["-qAtX", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .output();
    }
}

/// `url` with `search_path` set for every connection.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// `url` with its host and port replaced by `127.0.0.1:port`.
pub fn through_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}{tail}")
}

/// The host and port of a PostgreSQL URL.
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(5432)),
        None => (hostport.to_string(), 5432),
    }
}

/// A TCP proxy on a fixed local port that can be cut and restored.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    upstream: (String, u16),
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub fn start(upstream: (String, u16)) -> Proxy {
        let proxy = Proxy {
            port: crate::free_port(),
            upstream,
            up: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.restore();
        proxy
    }

    /// Listens again and forwards new connections.
    pub fn restore(&self) {
        let listener = crate::wait_for(Duration::from_secs(10), "the proxy port", || {
            TcpListener::bind(("127.0.0.1", self.port)).ok()
        });
        listener.set_nonblocking(true).expect("nonblocking");
        self.up.store(true, Ordering::SeqCst);
        let up = self.up.clone();
        let conns = self.conns.clone();
        let upstream = self.upstream.clone();
        std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1))
                        else {
                            continue;
                        };
                        let mut list = conns.lock().expect("lock");
                        list.push(client.try_clone().expect("clone"));
                        list.push(server.try_clone().expect("clone"));
                        pipe(
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        );
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
    }

    /// Stops listening and breaks every open connection, as a database going away would.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        crate::wait_for(
            Duration::from_secs(5),
            "the proxy to stop listening",
            || {
                TcpStream::connect(("127.0.0.1", self.port))
                    .is_err()
                    .then_some(())
            },
        );
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
