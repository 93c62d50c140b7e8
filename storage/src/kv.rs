//! The `kv.*` methods plugins call: get, set, delete, incr and list in the plugin's namespace.
//!
//! A plugin may be written in any language and may send anything, so every request is checked
//! here, field by field, and every failure becomes an `Outcome::Error` whose code the plugin can
//! act on: `bad_request` and `too_large` for its own mistakes, `not_found` for a missing key,
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
    ErrorBody, ErrorCode, IncrParams, KeyParams, KvItem, ListOrder, ListParams, Outcome, SetParams,
    MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

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

fn bad_request(message: String) -> CallError {
    CallError::Plugin(ErrorCode::BadRequest, message)
}

fn too_large(message: String) -> CallError {
    CallError::Plugin(ErrorCode::TooLarge, message)
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
            let row = match Row::new(value) {
                Ok(row) => row,
                Err(CallError::Plugin(_, reason)) => {
                    return Err(StorageError::InvalidValue {
                        key: key.clone(),
                        reason,
                    })
                }
                Err(other) => {
                    return Err(StorageError::InvalidValue {
                        key: key.clone(),
                        reason: format!("{other:?}"),
                    })
                }
            };
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

/// A request's parameters, read field by field so that an error names the field.
struct Params<'a> {
    method: &'a str,
    fields: Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Missing or `null` params count as `{}`; anything but an object is refused.
    fn new(method: &'a str, params: Value) -> Result<Self, CallError> {
        let fields = match params {
            Value::Object(fields) => fields,
            Value::Null => Map::new(),
            other => {
                return Err(bad_request(format!(
                    "{method}: params must be an object, not {}",
                    kind_of(&other)
                )))
            }
        };
        Ok(Params { method, fields })
    }

    /// The field, or `None` when it is absent or `null`.
    fn optional<T: DeserializeOwned>(
        &mut self,
        name: &str,
        want: &str,
    ) -> Result<Option<T>, CallError> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let kind = kind_of(&value);
                serde_json::from_value(value).map(Some).map_err(|_| {
                    bad_request(format!(
                        "{}: `{name}` must be {want}, not {kind}",
                        self.method
                    ))
                })
            }
        }
    }

    fn required<T: DeserializeOwned>(&mut self, name: &str, want: &str) -> Result<T, CallError> {
        self.optional(name, want)?
            .ok_or_else(|| bad_request(format!("{}: `{name}` is missing", self.method)))
    }

    fn key(&mut self) -> Result<String, CallError> {
        let key: String = self.required("key", "a string")?;
        check_key(self.method, "key", &key)?;
        Ok(key)
    }

    fn key_params(mut self) -> Result<KeyParams, CallError> {
        Ok(KeyParams { key: self.key()? })
    }

    fn set_params(mut self) -> Result<SetParams, CallError> {
        let key = self.key()?;
        // `null` is a value like any other here, so this field is not read with `optional`.
        let value = self
            .fields
            .remove("value")
            .ok_or_else(|| bad_request(format!("{}: `value` is missing", self.method)))?;
        Ok(SetParams { key, value })
    }

    fn incr_params(mut self) -> Result<IncrParams, CallError> {
        let key = self.key()?;
        let by = self
            .optional("by", "an integer between -2^63 and 2^63-1")?
            .unwrap_or(1);
        Ok(IncrParams { key, by })
    }

    fn list_params(mut self) -> Result<ListParams, CallError> {
        let prefix: String = self.optional("prefix", "a string")?.unwrap_or_default();
        if prefix.contains('\0') {
            return Err(bad_request(format!(
                "{}: `prefix` must not contain NUL",
                self.method
            )));
        }
        if prefix.len() > MAX_KEY_BYTES {
            return Err(too_large(format!(
                "{}: `prefix` is {} bytes, longer than the longest key ({MAX_KEY_BYTES})",
                self.method,
                prefix.len()
            )));
        }
        let order = self
            .optional("order", "\"key\", \"value_asc\" or \"value_desc\"")?
            .unwrap_or_default();
        let limit = self.optional("limit", "a non-negative integer")?;
        let offset = self.optional("offset", "a non-negative integer")?;
        Ok(ListParams {
            prefix,
            order,
            limit,
            offset,
        })
    }
}

fn check_key(method: &str, field: &str, key: &str) -> Result<(), CallError> {
    if key.is_empty() {
        return Err(bad_request(format!(
            "{method}: `{field}` must not be empty"
        )));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(too_large(format!(
            "{method}: `{field}` is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.contains('\0') {
        // PostgreSQL cannot store NUL in text; refuse it on SQLite too, so both behave alike.
        return Err(bad_request(format!(
            "{method}: `{field}` must not contain NUL"
        )));
    }
    Ok(())
}

/// A value as it is written: its JSON text and the two columns derived from it.
struct Row {
    text: String,
    num: Option<f64>,
    ival: Option<i64>,
}

impl Row {
    fn new(value: &Value) -> Result<Row, CallError> {
        let text = serde_json::to_string(value)
            .map_err(|e| bad_request(format!("kv.set: `value` cannot be encoded: {e}")))?;
        if text.len() > MAX_VALUE_BYTES {
            return Err(too_large(format!(
                "kv.set: `value` is {} bytes of JSON; the limit is {MAX_VALUE_BYTES}",
                text.len()
            )));
        }
        Ok(Row {
            text,
            num: value.as_f64(),
            ival: value.as_i64(),
        })
    }
}

fn parse_stored(key: &str, text: &str) -> Result<Value, CallError> {
    serde_json::from_str(text).map_err(|e| CallError::Corrupt(format!("key `{key}`: {e}")))
}

/// The JSON type of a value, with its article, for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() => "an integer",
        Value::Number(n) if n.is_u64() => "an integer beyond the 64-bit range",
        Value::Number(_) => "a floating-point number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

    fn parse(method: &str, params: Value) -> Result<(), (ErrorCode, String)> {
        let p = Params::new(method, params).map_err(unwrap_plugin)?;
        match method {
            "kv.get" => p.key_params().map(drop),
            "kv.set" => p.set_params().and_then(|p| Row::new(&p.value)).map(drop),
            "kv.incr" => p.incr_params().map(drop),
            "kv.list" => p.list_params().map(drop),
            _ => unreachable!("test table names only these methods"),
        }
        .map_err(unwrap_plugin)
    }

    fn unwrap_plugin(e: CallError) -> (ErrorCode, String) {
        match e {
            CallError::Plugin(code, message) => (code, message),
            other => panic!("not a plugin error: {other:?}"),
        }
    }

    #[test]
    fn parameter_checks() {
        use ErrorCode::{BadRequest, TooLarge};
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let max_key = "k".repeat(MAX_KEY_BYTES);
        let big_value = "v".repeat(MAX_VALUE_BYTES);
        // (method, params, expected error code and a fragment of its message, or None for ok)
        let cases: Vec<(&str, Value, Option<(ErrorCode, &str)>)> = vec![
            ("kv.get", json!({"key": "a"}), None),
            ("kv.get", json!({"key": "a", "extra": 1}), None),
            ("kv.get", json!({"key": max_key}), None),
            ("kv.get", json!({}), Some((BadRequest, "`key` is missing"))),
            (
                "kv.get",
                Value::Null,
                Some((BadRequest, "`key` is missing")),
            ),
            (
                "kv.get",
                json!({"key": null}),
                Some((BadRequest, "`key` is missing")),
            ),
            (
                "kv.get",
                json!({"key": 5}),
                Some((BadRequest, "`key` must be a string, not an integer")),
            ),
            (
                "kv.get",
                json!({"key": ""}),
                Some((BadRequest, "`key` must not be empty")),
            ),
            (
                "kv.get",
                json!({"key": "a\u{0}b"}),
                Some((BadRequest, "NUL")),
            ),
            (
                "kv.get",
                json!({"key": long_key}),
                Some((TooLarge, "`key` is 257 bytes")),
            ),
            (
                "kv.get",
                json!(["key"]),
                Some((BadRequest, "params must be an object, not an array")),
            ),
            ("kv.get", json!("key"), Some((BadRequest, "not a string"))),
            ("kv.set", json!({"key": "a", "value": null}), None),
            ("kv.set", json!({"key": "a", "value": {"x": [1, 2]}}), None),
            (
                "kv.set",
                json!({"key": "a"}),
                Some((BadRequest, "`value` is missing")),
            ),
            (
                "kv.set",
                json!({"value": 1}),
                Some((BadRequest, "`key` is missing")),
            ),
            (
                "kv.set",
                json!({"key": "a", "value": big_value}),
                Some((TooLarge, "`value` is 16386 bytes")),
            ),
            ("kv.incr", json!({"key": "a"}), None),
            ("kv.incr", json!({"key": "a", "by": -5}), None),
            ("kv.incr", json!({"key": "a", "by": null}), None),
            (
                "kv.incr",
                json!({"key": "a", "by": 1.5}),
                Some((BadRequest, "`by` must be an integer")),
            ),
            (
                "kv.incr",
                json!({"key": "a", "by": "1"}),
                Some((BadRequest, "`by` must be an integer")),
            ),
            (
                "kv.incr",
                json!({"key": "a", "by": u64::MAX}),
                Some((BadRequest, "`by` must be an integer")),
            ),
            ("kv.list", json!({}), None),
            (
                "kv.list",
                json!({"prefix": "a", "order": "value_desc", "limit": 5, "offset": 2}),
                None,
            ),
            (
                "kv.list",
                json!({"order": "sideways"}),
                Some((BadRequest, "`order` must be")),
            ),
            (
                "kv.list",
                json!({"limit": -1}),
                Some((BadRequest, "`limit` must be a non-negative integer")),
            ),
            (
                "kv.list",
                json!({"offset": "2"}),
                Some((BadRequest, "`offset` must be")),
            ),
            (
                "kv.list",
                json!({"prefix": 1}),
                Some((BadRequest, "`prefix` must be a string")),
            ),
            (
                "kv.list",
                json!({"prefix": long_key}),
                Some((TooLarge, "`prefix`")),
            ),
        ];
        for (method, params, want) in cases {
            let got = parse(method, params.clone());
            match (&got, want) {
                (Ok(()), None) => {}
                (Err((code, message)), Some((want_code, fragment)))
                    if *code == want_code && message.contains(fragment) => {}
                _ => panic!("{method} {params}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn derived_columns() {
        let cases = [
            (json!(5), Some(5.0), Some(5)),
            (json!(-3), Some(-3.0), Some(-3)),
            (json!(2.5), Some(2.5), None),
            (json!(2.0), Some(2.0), None),
            (json!(u64::MAX), Some(u64::MAX as f64), None),
            (json!("5"), None, None),
            (json!(null), None, None),
            (json!([1]), None, None),
        ];
        for (value, num, ival) in cases {
            let row = Row::new(&value).map_err(unwrap_plugin).expect("row");
            assert_eq!((row.num, row.ival), (num, ival), "{value}");
            assert_eq!(row.text, value.to_string());
        }
    }

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
