//! Opening and outages: bad settings give clear errors, a database that is down gives
//! `Unavailable` quickly instead of a hang (and at once once it is known to be down), and calls
//! go through again when it comes back.

// Test helpers panic with a message on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{key, TestDb};
use hamper_protocol::wire::MAX_VALUE_BYTES;
use hamper_storage::{
    import_hamper, KvError, KvErrorKind, ListQuery, Storage, StorageError, ACQUIRE_TIMEOUT,
    PROBE_INTERVAL, PROBE_TIMEOUT,
};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Nothing listens on port 1 of the loopback interface.
const CLOSED: &str = "postgres://postgres@127.0.0.1:1/test";

#[tokio::test]
async fn open_against_a_closed_port_fails_fast_and_says_so() {
    let started = Instant::now();
    let error = Storage::open(CLOSED)
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("connect to postgres://postgres@127.0.0.1:1/test"),
        "{message}"
    );
}

#[tokio::test]
async fn a_lazy_storage_against_a_closed_port_answers_unavailable_fast() {
    let storage = Storage::open_lazy(CLOSED).expect("the URL is fine");
    assert_eq!(storage.describe(), CLOSED);
    assert!(!storage.is_down(), "nothing has tried the database yet");
    for (op, result) in every_call(&storage).await {
        let error = result.expect_err("nothing listens there");
        assert_eq!(error.kind, KvErrorKind::Unavailable, "{op}: {error}");
        assert_eq!(error.message, "storage is unavailable; try again later");
    }
    assert!(
        storage.is_down(),
        "a refused connection marks the database down"
    );
    // A value over the limit is still refused as such: it never reaches the database.
    let big = json!("v".repeat(MAX_VALUE_BYTES));
    let error = storage
        .set("p", &key("k"), &big)
        .await
        .expect_err("too large");
    assert_eq!(error.kind, KvErrorKind::TooLarge, "{error}");
}

/// Makes each kind of call once, timing it: it must answer within 5 s (the slow path, which
/// waits for a connection, takes [`ACQUIRE_TIMEOUT`]).
async fn every_call(storage: &Storage) -> Vec<(&'static str, Result<(), KvError>)> {
    let k = key("k");
    let mut results = Vec::new();
    for op in ["get", "set", "delete", "incr", "list"] {
        let started = Instant::now();
        let result = match op {
            "get" => storage.get("p", &k).await.map(drop),
            "set" => storage.set("p", &k, &json!(1)).await,
            "delete" => storage.delete("p", &k).await.map(drop),
            "incr" => storage.incr("p", &k, 1).await.map(drop),
            _ => storage.list("p", &ListQuery::default()).await.map(drop),
        };
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{op} took {took:?}");
        results.push((op, result));
    }
    results
}

#[tokio::test]
async fn settings_problems_are_clear_errors() {
    let error = Storage::open("mysql://root:hunter2@localhost/hamper")
        .await
        .expect_err("mysql");
    let message = error.to_string();
    assert!(
        matches!(error, StorageError::UnsupportedUrl { .. }),
        "{message}"
    );
    assert!(
        message.contains("DATABASE_URL") && message.contains("`db`"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!error.is_unavailable());

    let error = Storage::open("sqlite:/no/such/directory/hamper.db")
        .await
        .expect_err("missing directory");
    let message = error.to_string();
    assert!(
        matches!(error, StorageError::MissingDirectory { .. }),
        "{message}"
    );
    assert!(message.contains("/no/such/directory"), "{message}");
}

#[tokio::test]
async fn descriptions_hide_the_password() {
    let storage = Storage::open_lazy("postgresql://bob:hunter2@127.0.0.1:1/karma?sslmode=disable")
        .expect("lazy");
    assert_eq!(
        storage.describe(),
        "postgresql://bob:********@127.0.0.1:1/karma?sslmode=disable"
    );
    assert!(!format!("{storage:?}").contains("hunter2"));
}

#[tokio::test]
async fn sqlalchemy_absolute_urls_and_memory_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abs.db");
    // `sqlite:///` + an absolute path: four slashes, as in the original's Dockerfile.
    let url = format!("sqlite:///{}", path.display());
    let storage = Storage::open(&url).await.expect("open");
    assert_eq!(storage.describe(), format!("sqlite:{}", path.display()));
    storage.set("p", &key("k"), &json!(1)).await.expect("set");
    assert!(path.is_file(), "created at the absolute path");
    assert!(dir.path().join("abs.db-wal").is_file(), "in WAL mode");
    storage.close().await;

    let memory = Storage::open("sqlite::memory:").await.expect("memory");
    assert_eq!(memory.incr("p", &key("n"), 1).await, Ok(1));
    assert_eq!(memory.incr("p", &key("n"), 1).await, Ok(2));
    assert_eq!(
        memory.get("p", &key("n")).await,
        Ok(Some(json!(2))),
        "reads see the writes: one connection"
    );
}

#[tokio::test]
async fn import_from_a_missing_file_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("hamper.db");
    let into = Storage::open("sqlite::memory:").await.expect("memory");
    let error = import_hamper(&format!("sqlite:{}", missing.display()), &into)
        .await
        .expect_err("missing");
    assert!(matches!(error, StorageError::MissingFile { .. }), "{error}");
    assert!(!missing.exists());
}

/// A TCP proxy in front of PostgreSQL that the test can take down and bring back on the same
/// port, to play a server restart.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Proxy {
            addr: listener.local_addr().expect("address"),
            upstream,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = Arc::clone(&self.tasks);
        let upstream = self.upstream;
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().expect("not poisoned").push(relay);
            }
        });
        self.tasks.lock().expect("not poisoned").push(accept);
    }

    /// Closes the listener and every relayed connection, as a server going down would.
    async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> =
            self.tasks.lock().expect("not poisoned").drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the same port");
        self.serve(listener);
    }
}

/// A PostgreSQL test database behind a [`Proxy`], and a storage opened through it.
async fn through_a_proxy(test: &str) -> Option<(TestDb, Proxy, Storage)> {
    let db = TestDb::postgres(test).await?;
    let options = PgConnectOptions::from_str(&db.url).expect("test URL");
    let upstream = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .expect("resolve the test server")
        .next()
        .expect("an address");
    let proxy = Proxy::start(upstream).await;
    let url = through(&db.url, proxy.addr);
    let storage = Storage::open(&url).await.expect("open through the proxy");
    Some((db, proxy, storage))
}

/// Polls `condition` until it holds, failing the test with `what` after `limit`.
async fn wait_until(limit: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long the probe may take to notice that the database is back: an attempt that may just
/// have failed, the pause, and the attempt that succeeds, with room for a busy machine.
const RECOVERY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_pool_recovers_after_an_outage() {
    let Some((db, proxy, storage)) =
        through_a_proxy("the_postgres_pool_recovers_after_an_outage").await
    else {
        return;
    };
    storage.set("p", &key("k"), &json!(1)).await.expect("set");

    proxy.stop().await;
    for _ in 0..2 {
        let started = Instant::now();
        let error = storage.get("p", &key("k")).await.expect_err("down");
        assert_eq!(error.kind, KvErrorKind::Unavailable, "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    proxy.restart().await;
    assert!(RECOVERY > 2 * (PROBE_INTERVAL + PROBE_TIMEOUT));
    wait_until(RECOVERY, "the probe noticed the database is back", || {
        !storage.is_down()
    })
    .await;
    assert_eq!(
        storage.incr("p", &key("k"), 1).await,
        Ok(2),
        "the pool reconnected by itself"
    );
    storage.close().await;
    proxy.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_known_to_be_down_answers_at_once() {
    /// A known outage must answer within this; the slow path waits for a connection for
    /// [`ACQUIRE_TIMEOUT`], at least twice as long.
    const AT_ONCE: Duration = Duration::from_secs(1);
    assert!(AT_ONCE * 2 <= ACQUIRE_TIMEOUT);
    let Some((db, proxy, storage)) =
        through_a_proxy("a_database_known_to_be_down_answers_at_once").await
    else {
        return;
    };
    storage.set("p", &key("k"), &json!(1)).await.expect("set");
    assert!(!storage.is_down());

    proxy.stop().await;
    // The first call finds out, which may take up to the acquire timeout.
    let error = storage.get("p", &key("k")).await.expect_err("down");
    assert_eq!(error.kind, KvErrorKind::Unavailable, "{error}");
    assert!(
        storage.is_down(),
        "the failed call marked the database down"
    );

    // Now every call answers at once, each kind of call and many at the same time.
    for (op, result) in every_call(&storage).await {
        let error = result.expect_err("still down");
        assert_eq!(error.kind, KvErrorKind::Unavailable, "{op}: {error}");
    }
    let started = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.incr("p", &key("k"), 1).await })
        })
        .collect();
    for call in calls {
        let result = call.await.expect("the call did not panic");
        let error = result.expect_err("still down");
        assert_eq!(error.kind, KvErrorKind::Unavailable, "{error}");
    }
    let took = started.elapsed();
    assert!(
        took < AT_ONCE,
        "20 concurrent calls while the database is known down took {took:?}; waiting for a \
         connection takes {ACQUIRE_TIMEOUT:?}"
    );
    for op in 0..5 {
        let started = Instant::now();
        let error = storage.get("p", &key("k")).await.expect_err("still down");
        let took = started.elapsed();
        assert_eq!(error.kind, KvErrorKind::Unavailable, "{error}");
        assert!(took < AT_ONCE, "call {op} took {took:?}");
    }
    assert!(
        storage.is_down(),
        "no call reached the database to bring it back"
    );

    proxy.restart().await;
    wait_until(RECOVERY, "the probe noticed the database is back", || {
        !storage.is_down()
    })
    .await;
    // Nothing was lost, and none of the refused increments counted.
    assert_eq!(storage.get("p", &key("k")).await, Ok(Some(json!(1))));
    assert_eq!(storage.incr("p", &key("k"), 1).await, Ok(2));
    storage.close().await;
    proxy.stop().await;
    db.cleanup().await;
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let userinfo = authority
        .rsplit_once('@')
        .map(|(info, _)| format!("{info}@"));
    format!("{scheme}://{}{addr}{tail}", userinfo.unwrap_or_default())
}
