//! Importing karma from the original Hamper's database, so that moving to hamper keeps scores.
//!
//! The original (Python, SQLAlchemy) kept classic karma in `karma("user", kcount)` and, with
//! the karma_adv plugin, one row per gift in `karmastats(giver, receiver, kcount, datetime)`.
//! A name's intended total is `karma.kcount` plus the sum of its `karmastats.kcount` as
//! receiver. The original stored names lowercased already; we lowercase and trim again and
//! add up names that then collide, so that hand edits or older rows cannot split a score.
//!
//! Totals are written with set, not add, into the karma plugin's namespace as
//! `score/<name>` → JSON integer: that layout is the contract with the karma plugin. Running
//! the import twice therefore changes nothing, and all keys are written in one transaction.
//! The source is only read (a SQLite file is opened read-only and never created), and may be
//! the very database hamper now uses: the original's tables do not clash with `kv`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;

use crate::db_url::{self, Target};
use crate::storage::CONNECT_TIMEOUT;
use crate::{Key, Storage, StorageError};

/// The karma plugin's storage namespace.
pub const KARMA_NAMESPACE: &str = "karma";
/// The prefix of the karma plugin's score keys: `score/<lowercased name>`.
pub const KARMA_SCORE_PREFIX: &str = "score/";

/// What [`import_hamper`] read and wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// The source database, redacted.
    pub source: String,
    /// How many names got a score (after lowercasing, trimming and merging).
    pub names: usize,
    /// Rows read from `karma`.
    pub karma_rows: u64,
    /// Rows read from `karmastats`.
    pub karmastats_rows: u64,
    /// Whether the source has a `karma` table.
    pub karma_present: bool,
    /// Whether the source has a `karmastats` table (the karma_adv plugin's).
    pub karmastats_present: bool,
    /// Names that cannot be keys (empty once trimmed, holding NUL, or too long), skipped.
    pub skipped: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported karma for {} name(s) from {}: {} karma row(s), ",
            self.names, self.source, self.karma_rows
        )?;
        if self.karmastats_present {
            write!(f, "{} karmastats row(s)", self.karmastats_rows)?;
        } else {
            write!(f, "no karmastats table")?;
        }
        if !self.skipped.is_empty() {
            write!(f, "; skipped {} unusable name(s)", self.skipped.len())?;
        }
        Ok(())
    }
}

/// Reads the original Hamper's karma from `from_url` (SQLite or PostgreSQL, SQLAlchemy URLs
/// accepted) and writes each name's total into `into` under namespace [`KARMA_NAMESPACE`],
/// key `score/<name>`, as a JSON integer. Idempotent.
pub async fn import_hamper(from_url: &str, into: &Storage) -> Result<ImportReport, StorageError> {
    let target = db_url::parse(from_url)?;
    let db = target.describe(from_url);
    let mut source = Source::connect(&target, &db).await?;
    let query_error = |action: &'static str| {
        let db = db.clone();
        move |source| StorageError::Query { db, action, source }
    };

    let mut report = ImportReport {
        source: db.clone(),
        ..ImportReport::default()
    };
    (report.karma_present, report.karmastats_present) = source
        .tables()
        .await
        .map_err(query_error("look for the karma tables"))?;
    if !report.karma_present && !report.karmastats_present {
        return Err(StorageError::NotHamperDatabase { db });
    }

    let mut totals: BTreeMap<Key, i64> = BTreeMap::new();
    let mut add = |raw: &str, count: i64, report: &mut ImportReport| {
        let name = raw.trim().to_lowercase();
        let key = match Key::new(format!("{KARMA_SCORE_PREFIX}{name}")) {
            Ok(key) if !name.is_empty() => key,
            _ => {
                report.skipped.push(raw.to_string());
                return Ok(());
            }
        };
        let total = totals.entry(key).or_insert(0);
        *total = total
            .checked_add(count)
            .ok_or_else(|| StorageError::ImportOverflow {
                db: report.source.clone(),
                name,
            })?;
        Ok(())
    };
    if report.karma_present {
        for (name, count) in source
            .karma()
            .await
            .map_err(query_error("read the karma table"))?
        {
            report.karma_rows += 1;
            add(&name, count, &mut report)?;
        }
    }
    if report.karmastats_present {
        for (name, sum, rows) in source
            .karmastats()
            .await
            .map_err(query_error("read the karmastats table"))?
        {
            report.karmastats_rows += u64::try_from(rows).unwrap_or(0);
            add(&name, sum, &mut report)?;
        }
    }
    source.close().await;

    let items: Vec<(Key, Value)> = totals
        .into_iter()
        .map(|(key, total)| (key, Value::from(total)))
        .collect();
    into.set_many(KARMA_NAMESPACE, &items).await?;
    report.names = items.len();
    tracing::info!(
        source = %report.source,
        into = %into.describe(),
        names = report.names,
        karma_rows = report.karma_rows,
        karmastats_rows = report.karmastats_rows,
        skipped = report.skipped.len(),
        "imported karma from the original hamper"
    );
    Ok(report)
}

/// A read-only connection to the database being imported.
enum Source {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// `"user"` is quoted because it is a reserved word in PostgreSQL (bare, it is the current
/// role). Casts make both backends hand back TEXT and BIGINT whatever the column types, and
/// NULL counts are taken as 0.
const KARMA_SQL: &str =
    "SELECT CAST(\"user\" AS TEXT), CAST(COALESCE(kcount, 0) AS BIGINT) FROM karma \
     WHERE \"user\" IS NOT NULL";
const KARMASTATS_SQL: &str =
    "SELECT CAST(receiver AS TEXT), CAST(COALESCE(SUM(kcount), 0) AS BIGINT), COUNT(*) \
     FROM karmastats WHERE receiver IS NOT NULL GROUP BY receiver";

impl Source {
    async fn connect(target: &Target, db: &str) -> Result<Source, StorageError> {
        let connect_error = |source| StorageError::Connect {
            db: db.to_string(),
            source,
        };
        let timeout = |_| StorageError::ConnectTimeout {
            db: db.to_string(),
            timeout: CONNECT_TIMEOUT,
        };
        match target {
            Target::SqliteFile(path) => {
                if !Path::new(path).is_file() {
                    return Err(StorageError::MissingFile {
                        path: path.display().to_string(),
                    });
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .read_only(true)
                    .create_if_missing(false);
                let conn =
                    tokio::time::timeout(CONNECT_TIMEOUT, SqliteConnection::connect_with(&options))
                        .await
                        .map_err(timeout)?
                        .map_err(connect_error)?;
                Ok(Source::Sqlite(conn))
            }
            Target::SqliteMemory => Err(StorageError::UnsupportedUrl {
                url: db.to_string(),
                reason: "an in-memory database has nothing to import".to_string(),
            }),
            Target::Postgres(options) => {
                // Read-only, like the SQLite source: the import must never change the original.
                let options = options
                    .as_ref()
                    .clone()
                    .options([("default_transaction_read_only", "on")]);
                let conn =
                    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
                        .await
                        .map_err(timeout)?
                        .map_err(connect_error)?;
                Ok(Source::Postgres(conn))
            }
        }
    }

    /// Whether `karma` and `karmastats` exist (on PostgreSQL, in the search path).
    async fn tables(&mut self) -> Result<(bool, bool), sqlx::Error> {
        match self {
            Source::Sqlite(conn) => {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name IN ('karma', 'karmastats')",
                )
                .fetch_all(&mut *conn)
                .await?;
                Ok((
                    names.iter().any(|n| n == "karma"),
                    names.iter().any(|n| n == "karmastats"),
                ))
            }
            Source::Postgres(conn) => sqlx::query_as(
                "SELECT to_regclass('karma') IS NOT NULL, to_regclass('karmastats') IS NOT NULL",
            )
            .fetch_one(&mut *conn)
            .await,
        }
    }

    async fn karma(&mut self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        match self {
            Source::Sqlite(conn) => sqlx::query_as(KARMA_SQL).fetch_all(&mut *conn).await,
            Source::Postgres(conn) => sqlx::query_as(KARMA_SQL).fetch_all(&mut *conn).await,
        }
    }

    async fn karmastats(&mut self) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
        match self {
            Source::Sqlite(conn) => sqlx::query_as(KARMASTATS_SQL).fetch_all(&mut *conn).await,
            Source::Postgres(conn) => sqlx::query_as(KARMASTATS_SQL).fetch_all(&mut *conn).await,
        }
    }

    async fn close(self) {
        // The data is read; a failure to say goodbye politely changes nothing.
        let _ = match self {
            Source::Sqlite(conn) => conn.close().await,
            Source::Postgres(conn) => conn.close().await,
        };
    }
}
