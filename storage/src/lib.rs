//! The hamper supervisor's storage: one database, shared by every plugin through the
//! `kv.*` requests of the plugin protocol.
//!
//! Plugins are child processes in any language and never touch the database themselves; the
//! supervisor owns it and serves a small key-value API over the protocol, namespaced per plugin.
//! That keeps plugins simple (no driver, no schema, no credentials) and lets the one owner
//! choose the backend: a SQLite file for a bot on a small machine, or PostgreSQL where the
//! original Hamper ran (Heroku's `DATABASE_URL`).
//!
//! * [`Storage::open`] opens either backend from a URL and applies the embedded migrations.
//! * [`Storage::call`] answers one request with an `Outcome`, never a panic or a hang.
//! * [`import_hamper`] carries karma over from the original Hamper's tables.

#![warn(missing_docs)]

mod db_url;
mod error;
mod import;
mod kv;
mod params;
mod storage;

pub use db_url::redact_url;
pub use error::StorageError;
pub use import::{import_hamper, ImportReport, KARMA_NAMESPACE, KARMA_SCORE_PREFIX};
pub use kv::{is_storage_method, CALL_TIMEOUT, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
pub use storage::{
    MigrateReport, MigrationInfo, Storage, ACQUIRE_TIMEOUT, CONNECT_TIMEOUT, SQLITE_BUSY_TIMEOUT,
};
