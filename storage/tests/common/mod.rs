//! Test databases for the storage suites: a SQLite file in a temporary directory, or a fresh
//! PostgreSQL schema on the server named by `HAMPER_TEST_POSTGRES_URL`.
//!
//! Every PostgreSQL test gets its own schema (selected through the connection's `search_path`),
//! so tests run in parallel, each starting from an empty database. Without the variable a
//! PostgreSQL test prints `SKIP:` and passes, except under CI, where it fails.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hamper_storage::{Key, Storage};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;

/// The variable that names the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "HAMPER_TEST_POSTGRES_URL";

/// One empty database of either backend.
pub struct TestDb {
    /// The URL to hand to `Storage::open`.
    pub url: String,
    kind: Kind,
}

enum Kind {
    Sqlite {
        dir: TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        base_url: String,
        schema: String,
    },
}

/// The PostgreSQL URL for tests, or `None` after printing `SKIP` (and panicking under CI).
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: {POSTGRES_ENV} is not set, but CI is, and CI must run the PostgreSQL \
             tests; set {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test"
        ),
        _ => {
            eprintln!(
                "SKIP: {test}: no PostgreSQL to test against; set \
                 {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test"
            );
            None
        }
    }
}

/// `url` with `search_path` set to `schema` for every connection.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    /// A SQLite file (not yet created) in a fresh temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("hamper.db");
        TestDb {
            url: format!("sqlite:{}", path.display()),
            kind: Kind::Sqlite { dir, path },
        }
    }

    /// A fresh, empty schema on the test server, or `None` when there is none (see the module).
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let base_url = postgres_url(test)?;
        let schema = unique_name("hamper_test");
        let mut admin = PgConnection::connect(&base_url)
            .await
            .unwrap_or_else(|e| panic!("{test}: connect to {POSTGRES_ENV}: {e}"));
        sqlx::raw_sql(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut admin)
            .await
            .expect("create schema");
        admin.close().await.ok();
        Some(TestDb {
            url: with_search_path(&base_url, &schema),
            kind: Kind::Postgres { base_url, schema },
        })
    }

    /// Another empty database of the same backend (for an import source).
    pub async fn sibling(&self) -> TestDb {
        match &self.kind {
            Kind::Sqlite { .. } => TestDb::sqlite(),
            Kind::Postgres { .. } => TestDb::postgres("sibling")
                .await
                .expect("postgres is configured, since this database exists"),
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    /// Opens (and migrates) the storage.
    pub async fn open(&self) -> Storage {
        Storage::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    /// Runs raw SQL, several statements allowed, on this database directly.
    pub async fn exec(&self, sql: &str) {
        match &self.kind {
            Kind::Sqlite { path, .. } => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                let mut conn = SqliteConnection::connect_with(&options)
                    .await
                    .expect("connect sqlite");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
                conn.close().await.ok();
            }
            Kind::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url)
                    .await
                    .expect("connect postgres");
                sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
                conn.close().await.ok();
            }
        }
    }

    /// Drops the PostgreSQL schema (a test that failed leaves it, for a look).
    pub async fn cleanup(self) {
        match self.kind {
            Kind::Sqlite { dir, .. } => drop(dir),
            Kind::Postgres { base_url, schema } => {
                if let Ok(mut admin) = PgConnection::connect(&base_url).await {
                    sqlx::raw_sql(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                        .execute(&mut admin)
                        .await
                        .ok();
                    admin.close().await.ok();
                }
            }
        }
    }
}

/// `k` as a key, which the test knows to be valid.
pub fn key(k: &str) -> Key {
    Key::new(k).unwrap_or_else(|e| panic!("key {k:?}: {e}"))
}
