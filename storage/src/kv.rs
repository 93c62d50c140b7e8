//! The `kv.*` methods plugins call: get, set, delete, incr and list in the plugin's namespace.
//!
//! A plugin may be written in any language and may send anything, so every request is checked
//! field by field first (the `params` module), and every failure becomes an `Outcome::Error`
//! whose code the plugin can act on: `bad_request` and `too_large` for its own mistakes, `not_found` for a missing key,
//! `unavailable` when the database is down or busy (try again later), and `internal` otherwise.
//! Database errors are logged here with the redacted database and never sent to the plugin.
//!
//! Each request is one statement in autocommit mode, so the answer comes after the commit.
//! `kv.incr` is a single `INSERT … ON CONFLICT DO UPDATE … RETURNING`, so concurrent increments
//! never lose an update on either backend. The host derives `num` and `ival` from each value it
//! writes (see the migrations), so no JSON has to be parsed in SQL.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use hamper_protocol::wire::{
    ErrorBody, ErrorCode, IncrParams, KeyParams, KvItem, ListOrder, ListParams, Outcome,
};
use serde_json::{json, Value};

use crate::params::{kind_of, Params, Refusal, Row};
use crate::storage::Pool;
use crate::{Storage, StorageError};

/// How long one request may take in all before it fails with `unavailable`. Longer than the
/// pool's acquire timeout and SQLite's busy timeout, so those report first.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// `kv.list` returns this many items when `limit` is not given.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// `kv.list` returns at most this many items; a larger `limit` is lowered to it.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Whether `method` is one that [`Storage::call`] serves (`kv.*`).
pub fn is_storage_method(method: &str) -> bool {
    method.starts_with("kv.")
}

/// The statements of one backend. Both use `$n` parameters (SQLite accepts them too); they
/// differ where PostgreSQL's `json` column needs casts and SQLite's text column does not.
struct Sql {
    get: &'static str,
    set: &'static str,
    delete: &'static str,
    incr: &'static str,
    incr_state: &'static str,
    list_by_key: &'static str,
    list_by_value_asc: &'static str,
    list_by_value_desc: &'static str,
}

/// `$1` plugin, `$2` lowest key, `$3` key bound (exclusive, NULL for none), `$4` limit,
/// `$5` offset. Ties in value order go by key; non-numbers (`num` NULL) come last.
macro_rules! list_sql {
    ($value:literal, $order:literal) => {
        concat!(
            "SELECT key, ",
            $value,
            " FROM kv WHERE plugin = $1 AND key >= $2 AND ($3 IS NULL OR key < $3) ORDER BY ",
            $order,
            " LIMIT $4 OFFSET $5"
        )
    };
}

const SQLITE: Sql = Sql {
    get: "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
    set: "INSERT INTO kv (plugin, key, value, num, ival) VALUES ($1, $2, $3, $4, $5) \
          ON CONFLICT (plugin, key) DO UPDATE \
          SET value = excluded.value, num = excluded.num, ival = excluded.ival",
    delete: "DELETE FROM kv WHERE plugin = $1 AND key = $2",
    incr: "INSERT INTO kv (plugin, key, value, num, ival) \
           VALUES ($1, $2, CAST($3 AS TEXT), $3, $3) \
           ON CONFLICT (plugin, key) DO UPDATE \
           SET value = CAST(kv.ival + $3 AS TEXT), num = kv.ival + $3, ival = kv.ival + $3 \
           WHERE kv.ival IS NOT NULL AND kv.ival BETWEEN $4 AND $5 \
           RETURNING ival",
    incr_state: "SELECT ival, value FROM kv WHERE plugin = $1 AND key = $2",
    list_by_key: list_sql!("value", "key"),
    list_by_value_asc: list_sql!("value", "num ASC NULLS LAST, ival ASC NULLS LAST, key"),
    list_by_value_desc: list_sql!("value", "num DESC NULLS LAST, ival DESC NULLS LAST, key"),
};

const POSTGRES: Sql = Sql {
    get: "SELECT value::text FROM kv WHERE plugin = $1 AND key = $2",
    set: "INSERT INTO kv (plugin, key, value, num, ival) VALUES ($1, $2, $3::json, $4, $5) \
          ON CONFLICT (plugin, key) DO UPDATE \
          SET value = excluded.value, num = excluded.num, ival = excluded.ival",
    delete: "DELETE FROM kv WHERE plugin = $1 AND key = $2",
    incr: "INSERT INTO kv (plugin, key, value, num, ival) \
           VALUES ($1, $2, to_json($3::bigint), $3, $3) \
           ON CONFLICT (plugin, key) DO UPDATE \
           SET value = to_json(kv.ival + $3), num = kv.ival + $3, ival = kv.ival + $3 \
           WHERE kv.ival IS NOT NULL AND kv.ival BETWEEN $4 AND $5 \
           RETURNING ival",
    incr_state: "SELECT ival, value::text FROM kv WHERE plugin = $1 AND key = $2",
    list_by_key: list_sql!("value::text", "key"),
    list_by_value_asc: list_sql!(
        "value::text",
        "num ASC NULLS LAST, ival ASC NULLS LAST, key"
    ),
    list_by_value_desc: list_sql!(
        "value::text",
        "num DESC NULLS LAST, ival DESC NULLS LAST, key"
    ),
};

/// Runs `$body` with `$pool` bound to the backend's pool and `$sql` to its statements. The
/// body is compiled once per backend, so the same sqlx calls serve both.
macro_rules! with_pool {
    ($storage:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $storage.pool() {
            Pool::Sqlite($pool) => {
                let $sql = &SQLITE;
                $body
            }
            Pool::Postgres($pool) => {
                let $sql = &POSTGRES;
                $body
            }
        }
    };
}

/// Why a request failed, before it becomes an [`ErrorBody`].
#[derive(Debug)]
enum CallError {
    /// The plugin's mistake, or a missing key: answered as is, logged only at debug.
    Plugin(ErrorCode, String),
    /// A statement failed.
    Db(sqlx::Error),
    /// Opening (the lazy migration) failed.
    Open(StorageError),
    /// A stored value is not JSON: someone wrote to the table by hand.
    Corrupt(String),
    /// The whole request took longer than [`CALL_TIMEOUT`].
    Timeout,
    /// A bug: the request panicked.
    Panic,
}

impl From<sqlx::Error> for CallError {
    fn from(e: sqlx::Error) -> Self {
        CallError::Db(e)
    }
}

impl From<Refusal> for CallError {
    fn from(r: Refusal) -> Self {
        CallError::Plugin(r.code, r.message)
    }
}

fn bad_request(message: String) -> CallError {
    CallError::Plugin(ErrorCode::BadRequest, message)
}

impl Storage {
    /// Serves one protocol request for `plugin`'s namespace: `kv.get`, `kv.set`, `kv.delete`,
    /// `kv.incr` or `kv.list`.
    ///
    /// Never panics and never hangs: every failure, including a database that is down
    /// (`unavailable`) or a request over [`CALL_TIMEOUT`], is an `Outcome::Error` with a code.
    /// A successful write has been committed when this returns.
    pub async fn call(&self, plugin: &str, method: &str, params: Value) -> Outcome {
        let work = AssertUnwindSafe(self.dispatch(plugin, method, params)).catch_unwind();
        let error = match tokio::time::timeout(CALL_TIMEOUT, work).await {
            Ok(Ok(Ok(result))) => return Outcome::Result(result),
            Ok(Ok(Err(error))) => error,
            Ok(Err(_panic)) => CallError::Panic,
            Err(_elapsed) => CallError::Timeout,
        };
        Outcome::Error(self.error_body(plugin, method, error))
    }

    async fn dispatch(
        &self,
        plugin: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, CallError> {
        match method {
            "kv.get" => {
                let p = Params::new(method, params)?.key_params()?;
                self.ensure_migrated().await.map_err(CallError::Open)?;
                self.get(plugin, &p).await
            }
            "kv.set" => {
                let p = Params::new(method, params)?.set_params()?;
                let row = Row::new(&p.value)?;
                self.ensure_migrated().await.map_err(CallError::Open)?;
                self.set(plugin, &p.key, &row).await?;
                Ok(json!({}))
            }
            "kv.delete" => {
                let p = Params::new(method, params)?.key_params()?;
                self.ensure_migrated().await.map_err(CallError::Open)?;
                self.delete(plugin, &p).await
            }
            "kv.incr" => {
                let p = Params::new(method, params)?.incr_params()?;
                self.ensure_migrated().await.map_err(CallError::Open)?;
                self.incr(plugin, &p).await
            }
            "kv.list" => {
                let p = Params::new(method, params)?.list_params()?;
                self.ensure_migrated().await.map_err(CallError::Open)?;
                self.list(plugin, &p).await
            }
            _ => Err(CallError::Plugin(
                ErrorCode::UnknownMethod,
                format!(
                    "unknown storage method `{method}`; there are kv.get, kv.set, kv.delete, \
                     kv.incr and kv.list"
                ),
            )),
        }
    }

    async fn get(&self, plugin: &str, p: &KeyParams) -> Result<Value, CallError> {
        let text: Option<String> = with_pool!(self, |pool, sql| {
            sqlx::query_scalar(sql.get)
                .bind(plugin)
                .bind(&p.key)
                .fetch_optional(pool)
                .await
        })?;
        match text {
            Some(text) => Ok(json!({ "value": parse_stored(&p.key, &text)? })),
            None => Err(CallError::Plugin(
                ErrorCode::NotFound,
                format!("no value for key `{}`", p.key),
            )),
        }
    }

    async fn set(&self, plugin: &str, key: &str, row: &Row) -> Result<(), CallError> {
        with_pool!(self, |pool, sql| {
            sqlx::query(sql.set)
                .bind(plugin)
                .bind(key)
                .bind(&row.text)
                .bind(row.num)
                .bind(row.ival)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    async fn delete(&self, plugin: &str, p: &KeyParams) -> Result<Value, CallError> {
        let deleted = with_pool!(self, |pool, sql| {
            sqlx::query(sql.delete)
                .bind(plugin)
                .bind(&p.key)
                .execute(pool)
                .await
                .map(|done| done.rows_affected() > 0)
        })?;
        Ok(json!({ "deleted": deleted }))
    }

    async fn incr(&self, plugin: &str, p: &IncrParams) -> Result<Value, CallError> {
        let by = p.by;
        // The old value must lie in [low, high] for old + by to fit in an i64.
        let low = if by < 0 { i64::MIN - by } else { i64::MIN };
        let high = if by > 0 { i64::MAX - by } else { i64::MAX };
        // The upsert answers nothing when its WHERE refuses the old value; then we look at the
        // row to say why. If another request changed it in between, try again.
        for _ in 0..3 {
            let value: Option<i64> = with_pool!(self, |pool, sql| {
                sqlx::query_scalar(sql.incr)
                    .bind(plugin)
                    .bind(&p.key)
                    .bind(by)
                    .bind(low)
                    .bind(high)
                    .fetch_optional(pool)
                    .await
            })?;
            if let Some(value) = value {
                return Ok(json!({ "value": value }));
            }
            let state: Option<(Option<i64>, String)> = with_pool!(self, |pool, sql| {
                sqlx::query_as(sql.incr_state)
                    .bind(plugin)
                    .bind(&p.key)
                    .fetch_optional(pool)
                    .await
            })?;
            match state {
                None => continue,
                Some((Some(old), _)) if (low..=high).contains(&old) => continue,
                Some((Some(old), _)) => {
                    return Err(bad_request(format!(
                        "kv.incr: {old} + {by} at key `{}` overflows a 64-bit integer",
                        p.key
                    )))
                }
                Some((None, text)) => {
                    let kind = parse_stored(&p.key, &text).map(|v| kind_of(&v))?;
                    return Err(bad_request(format!(
                        "kv.incr: key `{}` holds {kind}, not an integer",
                        p.key
                    )));
                }
            }
        }
        Err(CallError::Plugin(
            ErrorCode::Unavailable,
            format!("kv.incr: key `{}` kept changing; try again", p.key),
        ))
    }

    async fn list(&self, plugin: &str, p: &ListParams) -> Result<Value, CallError> {
        let limit = i64::from(p.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT));
        let offset = i64::from(p.offset.unwrap_or(0));
        let bound = prefix_upper_bound(&p.prefix);
        let rows: Vec<(String, String)> = with_pool!(self, |pool, sql| {
            let statement = match p.order {
                ListOrder::Key => sql.list_by_key,
                ListOrder::ValueAsc => sql.list_by_value_asc,
                ListOrder::ValueDesc => sql.list_by_value_desc,
            };
            sqlx::query_as(statement)
                .bind(plugin)
                .bind(&p.prefix)
                .bind(&bound)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        let mut items = Vec::with_capacity(rows.len());
        for (key, text) in rows {
            let value = parse_stored(&key, &text)?;
            items.push(KvItem { key, value });
        }
        Ok(json!({ "items": items }))
    }

    /// Writes many keys of one namespace in one transaction (for the import).
    pub(crate) async fn set_many(
        &self,
        plugin: &str,
        items: &[(String, Value)],
    ) -> Result<(), StorageError> {
        let mut rows = Vec::with_capacity(items.len());
        for (key, value) in items {
            let row = Row::new(value).map_err(|refusal| StorageError::InvalidValue {
                key: key.clone(),
                reason: refusal.message,
            })?;
            rows.push((key, row));
        }
        let query_error = |source| StorageError::Query {
            db: self.describe(),
            action: "write imported values",
            source,
        };
        self.ensure_migrated().await?;
        with_pool!(self, |pool, sql| {
            async {
                let mut tx = pool.begin().await?;
                for (key, row) in &rows {
                    sqlx::query(sql.set)
                        .bind(plugin)
                        .bind(key.as_str())
                        .bind(&row.text)
                        .bind(row.num)
                        .bind(row.ival)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(query_error)
    }

    fn error_body(&self, plugin: &str, method: &str, error: CallError) -> ErrorBody {
        let db = self.describe();
        let (code, message) = match error {
            CallError::Plugin(code, message) => {
                tracing::debug!(plugin, method, %code, %message, "storage request refused");
                (code, message)
            }
            CallError::Db(error) => {
                let code = if is_unavailable(&error) {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::Internal
                };
                tracing::warn!(plugin, method, %db, %code, %error, "storage request failed");
                (code, failure_message(code))
            }
            CallError::Open(error) => {
                let code = if error.is_unavailable() {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::Internal
                };
                tracing::warn!(plugin, method, %db, %code, %error, "storage could not be opened");
                (code, failure_message(code))
            }
            CallError::Corrupt(message) => {
                tracing::error!(plugin, method, %db, %message, "storage holds a value that is not JSON");
                (ErrorCode::Internal, failure_message(ErrorCode::Internal))
            }
            CallError::Timeout => {
                tracing::warn!(plugin, method, %db, timeout = ?CALL_TIMEOUT, "storage request timed out");
                (
                    ErrorCode::Unavailable,
                    format!("storage did not answer within {CALL_TIMEOUT:?}; try again later"),
                )
            }
            CallError::Panic => {
                tracing::error!(plugin, method, %db, "storage request panicked");
                (ErrorCode::Internal, failure_message(ErrorCode::Internal))
            }
        };
        ErrorBody { code, message }
    }
}

fn failure_message(code: ErrorCode) -> String {
    if code == ErrorCode::Unavailable {
        "storage is unavailable; try again later".to_string()
    } else {
        "storage failed; the host's log has the details".to_string()
    }
}

/// Whether a driver error means the database is down, unreachable or too busy right now, so
/// that the same request may succeed later (`unavailable`), rather than a bug (`internal`).
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    use sqlx::Error;
    match error {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_code_is_unavailable(pg.code())
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                db.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(sqlite_code_is_unavailable)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLSTATEs of a server that is going away, starting, overloaded, out of disk, or refusing
/// writes during a failover; and of lock contention, which goes away on retry.
fn postgres_code_is_unavailable(code: &str) -> bool {
    const CLASSES: [&str; 3] = [
        "08", // connection exception
        "53", // insufficient resources: disk full, out of memory, too many connections
        "40", // transaction rollback: serialization failure, deadlock
    ];
    const CODES: [&str; 7] = [
        "57014", // query_canceled (statement_timeout)
        "57P01", // admin_shutdown
        "57P02", // crash_shutdown
        "57P03", // cannot_connect_now
        "57P05", // idle_session_timeout
        "25006", // read_only_sql_transaction (a standby, mid-failover)
        "55P03", // lock_not_available
    ];
    CLASSES.iter().any(|class| code.starts_with(class)) || CODES.contains(&code)
}

/// SQLite result codes (extended codes carry the primary one in their low byte) of a database
/// that is locked, out of memory or disk, or whose file cannot be read or written right now.
fn sqlite_code_is_unavailable(code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    matches!(
        code & 0xff,
        BUSY | LOCKED | NOMEM | READONLY | IOERR | FULL | CANTOPEN
    )
}

fn parse_stored(key: &str, text: &str) -> Result<Value, CallError> {
    serde_json::from_str(text).map_err(|e| CallError::Corrupt(format!("key `{key}`: {e}")))
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when
/// there is none (the prefix is all U+10FFFF). Keys compare in code point order on both
/// backends (SQLite BINARY, PostgreSQL `COLLATE "C"`), so `prefix <= key < bound` selects
/// exactly the keys that start with `prefix`, with no `LIKE` metacharacters to escape, and the
/// primary key index serves the range.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds() {
        let cases = [
            ("", None),
            ("a", Some("b")),
            ("score/", Some("score0")),
            ("a%", Some("a&")),
            ("a_", Some("a`")),
            ("é", Some("ê")),
            ("a\u{D7FF}", Some("a\u{E000}")),
            ("a\u{10FFFF}", Some("b")),
            ("a\u{10FFFF}\u{10FFFF}", Some("b")),
            ("\u{10FFFF}", None),
        ];
        for (prefix, want) in cases {
            assert_eq!(prefix_upper_bound(prefix).as_deref(), want, "{prefix:?}");
        }
    }

    #[test]
    fn error_classes() {
        let cases = [
            ("08006", true),
            ("08001", true),
            ("53300", true),
            ("57P01", true),
            ("57P03", true),
            ("40001", true),
            ("25006", true),
            ("23505", false),
            ("42P01", false),
            ("22003", false),
        ];
        for (code, want) in cases {
            assert_eq!(postgres_code_is_unavailable(code), want, "{code}");
        }
        let cases = [
            (5, true),
            (517, true),
            (6, true),
            (10, true),
            (266, true),
            (1, false),
            (19, false),
            (2067, false),
        ];
        for (code, want) in cases {
            assert_eq!(sqlite_code_is_unavailable(code), want, "{code}");
        }
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn storage_methods() {
        for (method, want) in [
            ("kv.get", true),
            ("kv.anything", true),
            ("kv", false),
            ("plugins.list", false),
            ("", false),
        ] {
            assert_eq!(is_storage_method(method), want, "{method}");
        }
    }
}
