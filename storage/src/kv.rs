//! The key-value calls: get, set, delete, incr and list, each in a namespace of its own (the
//! supervisor uses the plugin's name).
//!
//! Every call returns a value or a [`KvError`], never a panic or a hang: the work runs under
//! `catch_unwind` and [`CALL_TIMEOUT`], a database that is known to be down is not even tried
//! (the `health` module), and driver errors are logged here, with the redacted database, and
//! turned into `Unavailable` or `Internal` without their text.
//!
//! Each call is one statement in autocommit mode, so it returns after the commit. `incr` is a
//! single `INSERT … ON CONFLICT DO UPDATE … RETURNING`, so concurrent increments never lose an
//! update on either backend. The host derives `num` and `ival` from each value it writes (see
//! the migrations and [`crate::limits`]), so no JSON has to be parsed in SQL.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use sqlx::Connection;

use crate::kv_error::{is_outage, is_unavailable};
use crate::limits::{json_kind, Row};
use crate::sqlite;
use crate::storage::Backend;
use crate::{Key, KeyPrefix, KvError, KvErrorKind, Storage, StorageError};

/// How long one call may take in all before it fails with `Unavailable`. Longer than the
/// acquire timeout and SQLite's busy timeout, so those report first.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// [`ListQuery::default`] lists this many entries.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// [`Storage::list`] returns at most this many entries; a larger limit is lowered to it.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// The order of [`Storage::list`]'s entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ListOrder {
    /// By key, in code point order.
    #[default]
    Key,
    /// By numeric value, smallest first; values that are not numbers last; ties by key.
    ValueAsc,
    /// By numeric value, largest first; values that are not numbers last; ties by key.
    ValueDesc,
}

/// Which entries [`Storage::list`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only keys that start with this (all keys when empty).
    pub prefix: KeyPrefix,
    /// The order.
    pub order: ListOrder,
    /// At most this many, and never more than [`MAX_LIST_LIMIT`].
    pub limit: u32,
    /// Skip this many first.
    pub offset: u32,
}

impl Default for ListQuery {
    /// Every key in key order, the first [`DEFAULT_LIST_LIMIT`].
    fn default() -> ListQuery {
        ListQuery {
            prefix: KeyPrefix::default(),
            order: ListOrder::Key,
            limit: DEFAULT_LIST_LIMIT,
            offset: 0,
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct KvEntry {
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: Value,
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

/// The `set` statement of `$sql` bound to one row: the same for [`Storage::set`] and the import.
macro_rules! set_row {
    ($sql:expr, $namespace:expr, $key:expr, $row:expr) => {
        sqlx::query($sql.set)
            .bind($namespace)
            .bind($key)
            .bind(&$row.text)
            .bind($row.num)
            .bind($row.ival)
    };
}

/// Runs `$body` with `$conn` bound to a `&mut` connection of the backend and `$sql` to its
/// statements; the body is compiled once per backend, so the same sqlx calls serve both.
/// `$access` is `reader` or `writer`, which on SQLite picks the connection (PostgreSQL's pool
/// serves both). The body's error type must come `From<sqlx::Error>` and be a [`DriverError`];
/// a SQLite connection that broke is replaced.
macro_rules! on_connection {
    ($storage:expr, $access:ident, |$conn:ident, $sql:ident| $body:expr) => {
        match $storage.backend() {
            Backend::Sqlite(db) => {
                let $sql = &SQLITE;
                let mut held = db.$access().await?;
                let $conn = held.conn();
                let result = $body;
                if result
                    .as_ref()
                    .err()
                    .and_then(DriverError::driver_error)
                    .is_some_and(sqlite::is_broken)
                {
                    held.discard();
                }
                result
            }
            Backend::Postgres(pool) => {
                let $sql = &POSTGRES;
                let mut pooled = pool.acquire().await?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

/// An error that may be the driver's, for [`on_connection!`] to spot a broken connection.
trait DriverError {
    fn driver_error(&self) -> Option<&sqlx::Error>;
}

impl DriverError for sqlx::Error {
    fn driver_error(&self) -> Option<&sqlx::Error> {
        Some(self)
    }
}

/// Why a call failed, before it becomes a [`KvError`].
#[derive(Debug)]
enum CallError {
    /// Refused for what the call asked: answered as is.
    Refused(KvError),
    /// A statement failed.
    Db(sqlx::Error),
    /// Opening (the lazy migration) failed.
    Open(StorageError),
    /// A stored value is not JSON: someone wrote to the table by hand.
    Corrupt(String),
    /// The whole call took longer than [`CALL_TIMEOUT`].
    Timeout,
    /// A bug: the call panicked.
    Panic,
}

impl From<sqlx::Error> for CallError {
    fn from(e: sqlx::Error) -> Self {
        CallError::Db(e)
    }
}

impl DriverError for CallError {
    fn driver_error(&self) -> Option<&sqlx::Error> {
        match self {
            CallError::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl Storage {
    /// The value at `key` in `namespace`, or `None` if there is none.
    pub async fn get(&self, namespace: &str, key: &Key) -> Result<Option<Value>, KvError> {
        self.guarded(namespace, "get", async {
            let now = match self.backend() {
                Backend::Sqlite(db) => db.read_now(|conn| {
                    use rusqlite::OptionalExtension;
                    conn.prepare_cached(SQLITE.get)?
                        .query_row((namespace, key.as_str()), |row| row.get::<_, String>(0))
                        .optional()
                }),
                Backend::Postgres(_) => None,
            };
            let text: Option<String> = match now {
                Some(text) => text,
                None => on_connection!(self, reader, |conn, sql| {
                    sqlx::query_scalar(sql.get)
                        .bind(namespace)
                        .bind(key.as_str())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(CallError::from)
                })?,
            };
            text.map(|text| parse_stored(key.as_str(), &text))
                .transpose()
        })
        .await
    }

    /// Stores `value` at `key` in `namespace`, replacing what was there; committed when this
    /// returns. `TooLarge` if the value's JSON is over the protocol's limit.
    pub async fn set(&self, namespace: &str, key: &Key, value: &Value) -> Result<(), KvError> {
        let row = Row::new(value)?;
        self.guarded(namespace, "set", async {
            on_connection!(self, writer, |conn, sql| {
                set_row!(sql, namespace, key.as_str(), row)
                    .execute(&mut *conn)
                    .await
                    .map(drop)
                    .map_err(CallError::from)
            })
        })
        .await
    }

    /// Deletes `key` in `namespace`; whether there was a value to delete.
    pub async fn delete(&self, namespace: &str, key: &Key) -> Result<bool, KvError> {
        self.guarded(namespace, "delete", async {
            on_connection!(self, writer, |conn, sql| {
                sqlx::query(sql.delete)
                    .bind(namespace)
                    .bind(key.as_str())
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected() > 0)
                    .map_err(CallError::from)
            })
        })
        .await
    }

    /// Adds `by` to the integer at `key` in `namespace` (a missing key counts as 0) in one
    /// atomic statement, and returns the new value. `BadRequest` if the key holds anything but
    /// an integer or the sum would overflow 64 bits; the value is then left as it was.
    pub async fn incr(&self, namespace: &str, key: &Key, by: i64) -> Result<i64, KvError> {
        // The old value must lie in [low, high] for old + by to fit in an i64.
        let low = if by < 0 { i64::MIN - by } else { i64::MIN };
        let high = if by > 0 { i64::MAX - by } else { i64::MAX };
        let key = key.as_str();
        self.guarded(namespace, "incr", async {
            on_connection!(self, writer, |conn, sql| {
                async {
                    // The upsert answers nothing when its WHERE refuses the old value; then the
                    // row says why. If another writer changed it in between, try again.
                    for _ in 0..3 {
                        let value: Option<i64> = sqlx::query_scalar(sql.incr)
                            .bind(namespace)
                            .bind(key)
                            .bind(by)
                            .bind(low)
                            .bind(high)
                            .fetch_optional(&mut *conn)
                            .await?;
                        if let Some(value) = value {
                            return Ok(value);
                        }
                        let state: Option<(Option<i64>, String)> = sqlx::query_as(sql.incr_state)
                            .bind(namespace)
                            .bind(key)
                            .fetch_optional(&mut *conn)
                            .await?;
                        match state {
                            None => continue,
                            Some((Some(old), _)) if (low..=high).contains(&old) => continue,
                            Some((Some(old), _)) => {
                                return Err(refused(
                                    KvErrorKind::BadRequest,
                                    format!(
                                        "{old} + {by} at key `{key}` overflows a 64-bit integer"
                                    ),
                                ))
                            }
                            Some((None, text)) => {
                                let kind = json_kind(&parse_stored(key, &text)?);
                                return Err(refused(
                                    KvErrorKind::BadRequest,
                                    format!("key `{key}` holds {kind}, not an integer"),
                                ));
                            }
                        }
                    }
                    Err(refused(
                        KvErrorKind::Contended,
                        format!("key `{key}` kept changing; try again"),
                    ))
                }
                .await
            })
        })
        .await
    }

    /// The entries of `namespace` that `query` selects, in its order.
    pub async fn list(&self, namespace: &str, query: &ListQuery) -> Result<Vec<KvEntry>, KvError> {
        let limit = i64::from(query.limit.min(MAX_LIST_LIMIT));
        let offset = i64::from(query.offset);
        let prefix = query.prefix.as_str();
        let bound = prefix_upper_bound(prefix);
        self.guarded(namespace, "list", async {
            let rows: Vec<(String, String)> = on_connection!(self, reader, |conn, sql| {
                let statement = match query.order {
                    ListOrder::Key => sql.list_by_key,
                    ListOrder::ValueAsc => sql.list_by_value_asc,
                    ListOrder::ValueDesc => sql.list_by_value_desc,
                };
                sqlx::query_as(statement)
                    .bind(namespace)
                    .bind(prefix)
                    .bind(&bound)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(CallError::from)
            })?;
            rows.into_iter()
                .map(|(key, text)| {
                    let value = parse_stored(&key, &text)?;
                    Ok(KvEntry { key, value })
                })
                .collect()
        })
        .await
    }

    /// Writes many keys of one namespace in one transaction (for the import).
    pub(crate) async fn set_many(
        &self,
        namespace: &str,
        items: &[(Key, Value)],
    ) -> Result<(), StorageError> {
        let mut rows = Vec::with_capacity(items.len());
        for (key, value) in items {
            let row = Row::new(value).map_err(|refusal| StorageError::InvalidValue {
                key: key.to_string(),
                reason: refusal.message,
            })?;
            rows.push((key, row));
        }
        self.ensure_migrated().await?;
        let written: Result<(), sqlx::Error> = async {
            on_connection!(self, writer, |conn, sql| {
                async {
                    let mut tx = conn.begin().await?;
                    for (key, row) in &rows {
                        set_row!(sql, namespace, key.as_str(), row)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                }
                .await
            })
        }
        .await;
        written.map_err(|source| StorageError::Query {
            db: self.describe(),
            action: "write imported values",
            source,
        })
    }

    /// Runs one call's `work` after the checks every call shares: refused at once while the
    /// database is known to be down, migrated first, bounded by [`CALL_TIMEOUT`], and a panic
    /// caught. Failures are logged and become [`KvError`]s.
    async fn guarded<T>(
        &self,
        namespace: &str,
        op: &'static str,
        work: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, KvError> {
        if self.is_down() {
            tracing::debug!(
                namespace,
                op,
                "storage call refused at once: the database is down"
            );
            return Err(KvError::unavailable());
        }
        let work = AssertUnwindSafe(async {
            self.ensure_migrated().await.map_err(CallError::Open)?;
            work.await
        })
        .catch_unwind();
        let error = match tokio::time::timeout(CALL_TIMEOUT, work).await {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(error))) => error,
            Ok(Err(_panic)) => CallError::Panic,
            Err(_elapsed) => CallError::Timeout,
        };
        Err(self.kv_error(namespace, op, error))
    }

    fn kv_error(&self, namespace: &str, op: &'static str, error: CallError) -> KvError {
        let db = self.describe();
        match error {
            CallError::Refused(error) => error,
            CallError::Db(error) => {
                let unavailable = is_unavailable(&error);
                tracing::warn!(namespace, op, %db, unavailable, %error, "storage call failed");
                if is_outage(&error) {
                    self.mark_down();
                }
                failure(unavailable)
            }
            CallError::Open(error) => {
                let unavailable = error.is_unavailable();
                tracing::warn!(namespace, op, %db, unavailable, %error, "storage could not be opened");
                if error.is_outage() {
                    self.mark_down();
                }
                failure(unavailable)
            }
            CallError::Corrupt(message) => {
                tracing::error!(namespace, op, %db, %message, "storage holds a value that is not JSON");
                KvError::internal()
            }
            CallError::Timeout => {
                tracing::warn!(namespace, op, %db, timeout = ?CALL_TIMEOUT, "storage call timed out");
                // A server that stops answering on an open connection is down too, as far as
                // calls can tell; the probe finds out at once if it is not.
                self.mark_down();
                KvError::new(
                    KvErrorKind::Unavailable,
                    format!("storage did not answer within {CALL_TIMEOUT:?}; try again later"),
                )
            }
            CallError::Panic => {
                tracing::error!(namespace, op, %db, "storage call panicked");
                KvError::internal()
            }
        }
    }
}

/// The error for a call the database failed, without the driver's words: `Unavailable` if
/// trying again later may work, `Internal` otherwise.
fn failure(unavailable: bool) -> KvError {
    if unavailable {
        KvError::unavailable()
    } else {
        KvError::internal()
    }
}

fn refused(kind: KvErrorKind, message: String) -> CallError {
    CallError::Refused(KvError::new(kind, message))
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
    fn the_default_query_lists_the_first_hundred_by_key() {
        let query = ListQuery::default();
        assert_eq!(query.prefix.as_str(), "");
        assert_eq!(query.order, ListOrder::Key);
        assert_eq!((query.limit, query.offset), (DEFAULT_LIST_LIMIT, 0));
    }
}
