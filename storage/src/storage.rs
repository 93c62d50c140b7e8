//! Opening the one database, keeping its schema current, and closing it.
//!
//! The supervisor owns a single database for every plugin, so this is where the operational
//! choices live, each made for a bot that must keep chatting while its database comes and goes:
//!
//! * A PostgreSQL pool acquires with a short timeout ([`ACQUIRE_TIMEOUT`]) and tests a
//!   connection before handing it out, so that when the server comes back after an outage the
//!   pool replaces its dead connections by itself. While the server is known to be down, calls
//!   do not reach the pool at all: they fail at once and a probe watches for the server's
//!   return (the `health` module).
//! * SQLite runs in WAL mode with `synchronous = FULL` on connections that stay open, one writer
//!   and a few readers (the `sqlite` module): readers do not block the writer, a request is
//!   answered only after its commit reached the disk, and writes take turns on the writer.
//! * Migrations are embedded at compile time. On PostgreSQL they run on a connection of their
//!   own, so that the advisory lock sqlx takes while migrating dies with that connection if
//!   anything fails, instead of going back to the pool still held; on SQLite, on the writer.
//! * [`Storage::open`] connects and migrates before it returns, and reports a server that is
//!   down as an error ([`StorageError::is_unavailable`] tells it apart from a bad setting).
//!   [`Storage::open_lazy`] does neither: it returns at once and migrates on the first request
//!   that finds the database reachable. The supervisor chooses: retry `open`, or go lazy and
//!   let plugins see `unavailable` until the database is back.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::Connection;
use tokio::sync::OnceCell;

use crate::db_url::{self, Target};
use crate::health::{self, Health, Probe, PROBE_TIMEOUT};
use crate::sqlite::Sqlite;
use crate::StorageError;

/// How long a request waits for a connection (including connecting to PostgreSQL) before it
/// fails with `unavailable`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long opening, migrating and importing wait for a new connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SQLite writer waits for another process's writer before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections to PostgreSQL: plenty for a bot, and polite to a small hosted plan.
const POSTGRES_MAX_CONNECTIONS: u32 = 5;

/// The supervisor's database: a cheap, cloneable handle on its connections.
///
/// The key-value calls ([`Storage::get`], [`Storage::set`], [`Storage::delete`],
/// [`Storage::incr`], [`Storage::list`]) are in the `kv` module.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    description: String,
    migrated: OnceCell<()>,
    health: Health,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.health.stop();
    }
}

/// The connections of whichever backend the URL named.
pub(crate) enum Backend {
    /// A SQLite file, or memory (boxed: its connect options are large).
    Sqlite(Box<Sqlite>),
    /// A PostgreSQL server.
    Postgres(PgPool),
}

/// One migration in a [`MigrateReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its version, the number its file name starts with.
    pub version: i64,
    /// Its description, the rest of its file name.
    pub description: String,
}

/// What [`Storage::migrate`] did, for `hamper migrate` to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// The database, redacted.
    pub database: String,
    /// The migrations applied by this run, oldest first.
    pub applied: Vec<MigrationInfo>,
    /// How many migrations had been applied before this run.
    pub already_applied: usize,
}

impl fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            return write!(
                f,
                "{}: schema up to date ({} migration(s) applied earlier)",
                self.database, self.already_applied
            );
        }
        let names: Vec<String> = self
            .applied
            .iter()
            .map(|m| format!("{:04} {}", m.version, m.description))
            .collect();
        write!(
            f,
            "{}: applied {} migration(s): {}",
            self.database,
            self.applied.len(),
            names.join(", ")
        )
    }
}

impl fmt::Debug for Storage {
    /// Shows the redacted description only: the pool's options hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("db", &self.inner.description)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens the database at `url`, creating a SQLite file if needed, and applies pending
    /// migrations. Fails if the database cannot be reached; see
    /// [`StorageError::is_unavailable`] and [`Storage::open_lazy`].
    ///
    /// URL forms: `sqlite:PATH`, `sqlite://PATH`, `sqlite:///RELATIVE`, `sqlite:////ABSOLUTE`,
    /// a bare path, `sqlite::memory:`, and `postgres://` or `postgresql://` (with `sslmode`).
    pub async fn open(url: &str) -> Result<Storage, StorageError> {
        let storage = Storage::open_lazy(url)?;
        storage.ensure_migrated().await?;
        tracing::info!(db = %storage.describe(), "storage opened");
        Ok(storage)
    }

    /// Checks the URL and builds the pool without connecting; migrations run on the first
    /// request that reaches the database, and until then requests fail with `unavailable`.
    ///
    /// Only setting problems fail here (an unsupported URL, a missing SQLite directory). Must
    /// be called within a Tokio runtime.
    pub fn open_lazy(url: &str) -> Result<Storage, StorageError> {
        let target = db_url::parse(url)?;
        let description = target.describe(url);
        let backend = match &target {
            Target::SqliteFile(path) => {
                if let Some(dir) = path.parent() {
                    if !dir.as_os_str().is_empty() && !dir.is_dir() {
                        return Err(StorageError::MissingDirectory {
                            path: path.display().to_string(),
                            dir: dir.display().to_string(),
                        });
                    }
                }
                Backend::Sqlite(Box::new(Sqlite::file(
                    SqliteConnectOptions::new()
                        .filename(path)
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT),
                )))
            }
            Target::SqliteMemory => {
                tracing::warn!("storage is in memory: nothing plugins store survives a restart");
                // One connection, held until close: the database lives as long as it does.
                Backend::Sqlite(Box::new(Sqlite::memory(
                    SqliteConnectOptions::new()
                        .in_memory(true)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT),
                )))
            }
            Target::Postgres(options) => {
                let mut options = (**options).clone();
                if options.get_application_name().is_none() {
                    options = options.application_name("hamper");
                }
                Backend::Postgres(
                    PgPoolOptions::new()
                        .max_connections(POSTGRES_MAX_CONNECTIONS)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .test_before_acquire(true)
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(Storage {
            inner: Arc::new(Inner {
                backend,
                description,
                migrated: OnceCell::new(),
                health: Health::new(),
            }),
        })
    }

    /// Applies pending migrations to the database at `url` and reports what was applied, for
    /// `hamper migrate`. Running it again applies nothing.
    pub async fn migrate(url: &str) -> Result<MigrateReport, StorageError> {
        let storage = Storage::open_lazy(url)?;
        let report = storage.run_migrations().await;
        storage.close().await;
        report
    }

    /// A description of the backend for logs, without any password: `sqlite:hamper.db` or
    /// `postgres://postgres@127.0.0.1:5432/test`.
    pub fn describe(&self) -> String {
        self.inner.description.clone()
    }

    /// Closes the connections, waiting for requests in flight; later requests fail with
    /// `unavailable`. Checkpoints a SQLite WAL file into the database.
    pub async fn close(&self) {
        self.inner.health.stop();
        match &self.inner.backend {
            Backend::Sqlite(db) => db.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Whether the database is known to be down: calls answer `unavailable` at once, without
    /// waiting for a connection, until a probe in the background reaches the database again
    /// (about every second). Only a PostgreSQL server goes down this way; a SQLite file's
    /// failures are those of single statements.
    pub fn is_down(&self) -> bool {
        self.inner.health.is_down()
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Notes a call that failed because the database could not be reached: from now on calls
    /// fail at once, and one probe runs until the database answers again.
    pub(crate) fn mark_down(&self) {
        if !matches!(self.inner.backend, Backend::Postgres(_)) || !self.inner.health.mark_down() {
            return;
        }
        tracing::warn!(
            db = %self.inner.description,
            "database unreachable; storage calls fail at once until it answers again"
        );
        let inner = Arc::downgrade(&self.inner);
        let probe = health::probe_until_up(self.inner.health.stop_token(), move || {
            let inner = inner.clone();
            async move {
                let Some(inner) = inner.upgrade() else {
                    return Probe::Gone;
                };
                if !inner.reachable().await {
                    return Probe::Down;
                }
                inner.health.mark_up();
                tracing::info!(db = %inner.description, "database reachable again");
                Probe::Up
            }
        });
        tokio::spawn(probe);
    }

    /// Applies the migrations once per `Storage`; after a failure the next caller tries again.
    pub(crate) async fn ensure_migrated(&self) -> Result<(), StorageError> {
        self.inner
            .migrated
            .get_or_try_init(|| async {
                self.run_migrations().await?;
                Ok::<(), StorageError>(())
            })
            .await?;
        Ok(())
    }

    async fn run_migrations(&self) -> Result<MigrateReport, StorageError> {
        let db = self.describe();
        let migrate_error = |source| StorageError::Migrate {
            db: db.clone(),
            source,
        };
        let (applied, already_applied) = match &self.inner.backend {
            Backend::Postgres(pool) => {
                let options = pool.connect_options();
                let mut conn =
                    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
                        .await
                        .map_err(|_| StorageError::ConnectTimeout {
                            db: db.clone(),
                            timeout: CONNECT_TIMEOUT,
                        })?
                        .map_err(|source| StorageError::Connect {
                            db: db.clone(),
                            source,
                        })?;
                let result = apply(&mut conn, sqlx::migrate!("../migrations/postgres")).await;
                // On failure the connection is dropped unclosed, which also ends its session
                // and so releases the advisory lock.
                if result.is_ok() {
                    let _ = conn.close().await;
                }
                result.map_err(migrate_error)?
            }
            Backend::Sqlite(sqlite) => {
                let mut writer = sqlite
                    .writer()
                    .await
                    .map_err(|source| StorageError::Connect {
                        db: db.clone(),
                        source,
                    })?;
                apply(writer.conn(), sqlx::migrate!("../migrations/sqlite"))
                    .await
                    .map_err(migrate_error)?
            }
        };
        let report = MigrateReport {
            database: db,
            applied,
            already_applied,
        };
        if report.applied.is_empty() {
            tracing::debug!(db = %report.database, "storage schema up to date");
        } else {
            tracing::info!(db = %report.database, applied = report.applied.len(), "storage migrations applied");
        }
        Ok(report)
    }
}

impl Inner {
    /// Whether the database answers now: a new connection and a ping within [`PROBE_TIMEOUT`].
    /// A fresh connection rather than the pool's, whose idle connections may be the dead ones.
    async fn reachable(&self) -> bool {
        match &self.backend {
            Backend::Postgres(pool) => {
                let options = pool.connect_options();
                let attempt = async {
                    let mut conn = PgConnection::connect_with(&options).await?;
                    conn.ping().await?;
                    conn.close().await
                };
                matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
                    Ok(Ok(()))
                )
            }
            Backend::Sqlite(_) => true,
        }
    }
}

/// Runs `migrator` on `conn` under sqlx's lock and returns what it applied and how many
/// migrations were applied before.
///
/// `Migrator::run` reports nothing, so the applied set is read under the same lock first.
async fn apply<C: Migrate>(
    conn: &mut C,
    mut migrator: Migrator,
) -> Result<(Vec<MigrationInfo>, usize), sqlx::migrate::MigrateError> {
    conn.lock().await?;
    conn.ensure_migrations_table().await?;
    let before: HashSet<i64> = conn
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();
    // The lock is ours already, taken above so that the applied set is read under it.
    migrator.set_locking(false);
    // `run_direct` is `run` for a bare connection; sqlx keeps it public for generic callers
    // like this one, which `run`'s `Acquire` bound does not fit.
    migrator.run_direct(conn).await?;
    conn.unlock().await?;
    let applied = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
        .map(|m| MigrationInfo {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    Ok((applied, before.len()))
}
