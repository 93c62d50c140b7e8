//! The hamper supervisor's storage: one database, shared by every plugin through the
//! `kv.*` requests of the plugin protocol.
//!
//! Plugins are child processes in any language and never touch the database themselves; the
//! supervisor owns it and serves a small key-value API over the protocol, namespaced per plugin.
//! That keeps plugins simple (no driver, no schema, no credentials) and lets the one owner
//! choose the backend: a SQLite file for a bot on a small machine, or PostgreSQL where the
//! original Hamper ran (Heroku's `DATABASE_URL`).
//!
//! This crate knows nothing of the protocol's messages: the supervisor reads a request's JSON
//! and calls the typed API here, and turns its results and [`KvError`]s into responses. Only the
//! protocol's limits ([`Key`], [`KeyPrefix`] and values are held to them) are shared.
//!
//! * [`Storage::open`] opens either backend from a URL and applies the embedded migrations.
//! * [`Storage::get`], [`Storage::set`], [`Storage::delete`], [`Storage::incr`] and
//!   [`Storage::list`] answer with a value or a [`KvError`], never a panic or a hang, and at
//!   once while the database is known to be down ([`Storage::is_down`]).
//! * [`import_hamper`] carries karma over from the original Hamper's tables.

#![warn(missing_docs)]

mod db_url;
mod error;
mod health;
mod import;
mod kv;
mod kv_error;
mod limits;
mod sqlite;
mod storage;

pub use db_url::{redact_url, url_secrets};
pub use error::StorageError;
pub use health::{PROBE_INTERVAL, PROBE_TIMEOUT};
pub use import::{import_hamper, ImportReport, KARMA_NAMESPACE, KARMA_SCORE_PREFIX};
pub use kv::{KvEntry, ListOrder, ListQuery, CALL_TIMEOUT, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
pub use kv_error::{KvError, KvErrorKind};
pub use limits::{json_kind, Key, KeyPrefix};
pub use storage::{
    MigrateReport, MigrationInfo, Storage, ACQUIRE_TIMEOUT, CONNECT_TIMEOUT, SQLITE_BUSY_TIMEOUT,
};
