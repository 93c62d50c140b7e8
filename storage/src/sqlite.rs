//! A SQLite database on connections that stay open: one writer and a few readers.
//!
//! sqlx's pool pings a connection when it hands it out (`test_before_acquire`) and again when
//! it takes it back, so through the pool one read costs three round trips to the connection's
//! worker thread instead of one. Those pings find dead connections to a server; a SQLite file
//! does not go away like that, so here the connections are held instead:
//!
//! * Every write goes through the one writer connection, one at a time, so hamper's own writers
//!   never meet `SQLITE_BUSY`. The busy timeout stays for other processes on the same file (a
//!   `hamper import-hamper`, a person with `sqlite3`).
//! * Reads take one of a few reader connections. In WAL mode a reader sees every write committed
//!   before it started and never blocks the writer. Readers are opened with `query_only`, so a
//!   statement in the wrong place fails instead of writing around the writer.
//! * An in-memory database is one connection for both, since every connection to `:memory:`
//!   would be a database of its own.
//!
//! Connections are opened when first needed and kept until [`Sqlite::close`]; one that broke
//! (its worker thread died) is dropped and replaced on the next use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::PoisonError;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};

use crate::storage::ACQUIRE_TIMEOUT;

/// Reader connections per SQLite file, beside the one writer.
const READERS: u32 = 3;

/// The connections to one SQLite database.
pub(crate) struct Sqlite {
    writer_options: SqliteConnectOptions,
    /// `None` in memory, where reads use the writer.
    reader_options: Option<SqliteConnectOptions>,
    writer: Mutex<Option<SqliteConnection>>,
    /// One permit per reader connection that may be open.
    readers: Semaphore,
    idle_readers: std::sync::Mutex<Vec<SqliteConnection>>,
    closed: AtomicBool,
}

impl Sqlite {
    /// A file database: `options` for the writer, and readers derived from them.
    pub(crate) fn file(options: SqliteConnectOptions) -> Sqlite {
        let readers = options.clone().pragma("query_only", "ON");
        Sqlite::new(options, Some(readers))
    }

    /// An in-memory database: one connection for reads and writes.
    pub(crate) fn memory(options: SqliteConnectOptions) -> Sqlite {
        Sqlite::new(options, None)
    }

    fn new(
        writer_options: SqliteConnectOptions,
        reader_options: Option<SqliteConnectOptions>,
    ) -> Sqlite {
        Sqlite {
            writer_options,
            reader_options,
            writer: Mutex::new(None),
            readers: Semaphore::new(READERS as usize),
            idle_readers: std::sync::Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// The writer connection, once the writes before have finished (at most [`ACQUIRE_TIMEOUT`]).
    pub(crate) async fn writer(&self) -> Result<Held<'_>, sqlx::Error> {
        let mut slot = tokio::time::timeout(ACQUIRE_TIMEOUT, self.writer.lock())
            .await
            .map_err(|_elapsed| sqlx::Error::PoolTimedOut)?;
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let conn = match slot.take() {
            Some(conn) => conn,
            None => SqliteConnection::connect_with(&self.writer_options).await?,
        };
        Ok(Held {
            conn: Some(conn),
            slot: Slot::Writer(slot),
        })
    }

    /// A reader connection (the writer, in memory).
    pub(crate) async fn reader(&self) -> Result<Held<'_>, sqlx::Error> {
        let Some(options) = &self.reader_options else {
            return self.writer().await;
        };
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.readers.acquire())
            .await
            .map_err(|_elapsed| sqlx::Error::PoolTimedOut)?
            .map_err(|_closed| sqlx::Error::PoolClosed)?;
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = self
            .idle_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => SqliteConnection::connect_with(options).await?,
        };
        Ok(Held {
            conn: Some(conn),
            slot: Slot::Reader {
                idle: &self.idle_readers,
                _permit: permit,
            },
        })
    }

    /// Refuses later calls, waits for those in flight, and closes every connection, the writer
    /// last: closing the last connection checkpoints the WAL file into the database.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let writer = self.writer.lock().await.take();
        if self.reader_options.is_some() {
            // Every permit back means no reader is in flight.
            if let Ok(all) = self.readers.acquire_many(READERS).await {
                all.forget();
            }
            self.readers.close();
        }
        let readers: Vec<SqliteConnection> = self
            .idle_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for conn in readers.into_iter().chain(writer) {
            if let Err(error) = conn.close().await {
                tracing::debug!(%error, "closing a sqlite connection failed");
            }
        }
    }
}

/// Whether a driver error leaves the connection unusable, so that it must be replaced.
pub(crate) fn is_broken(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_)
    )
}

/// A connection taken from [`Sqlite`]; it goes back when dropped.
pub(crate) struct Held<'a> {
    /// `Some` from the checkout until drop or [`Held::discard`], which consumes the `Held`.
    conn: Option<SqliteConnection>,
    slot: Slot<'a>,
}

enum Slot<'a> {
    /// Holding the writer's lock for as long as the connection is out.
    Writer(MutexGuard<'a, Option<SqliteConnection>>),
    /// Holding a reader permit; the connection goes back to the idle list.
    Reader {
        idle: &'a std::sync::Mutex<Vec<SqliteConnection>>,
        _permit: SemaphorePermit<'a>,
    },
}

impl Held<'_> {
    /// The connection.
    #[allow(clippy::expect_used)]
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        // Invariant: `conn` is `Some` from the checkout until the `Held` is dropped or
        // discarded, and `discard` consumes it.
        self.conn
            .as_mut()
            .expect("a held connection is present until dropped")
    }

    /// Drops the connection instead of returning it: it broke, and the next use opens a new one.
    pub(crate) fn discard(mut self) {
        self.conn = None;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match &mut self.slot {
            Slot::Writer(slot) => **slot = Some(conn),
            Slot::Reader { idle, .. } => idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn file_db() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        (dir, Sqlite::file(options))
    }

    /// Runs `sql` on the held connection.
    async fn run(held: &mut Held<'_>, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql).execute(held.conn()).await.map(drop)
    }

    #[tokio::test]
    async fn connections_are_reused_and_readers_cannot_write() {
        let (_dir, db) = file_db().await;
        let writes = [
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)",
            // A temporary table lives only on its connection: the same one must come back.
            "CREATE TEMP TABLE mine (x INTEGER)",
            "SELECT * FROM mine",
        ];
        for sql in writes {
            let mut w = db.writer().await.expect("writer");
            run(&mut w, sql).await.expect(sql);
        }

        let mut r = db.reader().await.expect("reader");
        let x: i64 = sqlx::query_scalar("SELECT x FROM t")
            .fetch_one(r.conn())
            .await
            .expect("a reader sees the committed write");
        assert_eq!(x, 1);
        assert!(
            run(&mut r, "INSERT INTO t VALUES (2)").await.is_err(),
            "a reader wrote"
        );
        drop(r);

        // At most READERS readers are out at once; each goes back to be reused.
        let idle = || db.idle_readers.lock().expect("not poisoned").len();
        let mut held = Vec::new();
        for _ in 0..READERS {
            held.push(db.reader().await.expect("reader"));
        }
        assert_eq!(db.readers.available_permits(), 0, "the next reader waits");
        assert_eq!(idle(), 0);
        drop(held);
        assert_eq!(db.readers.available_permits(), READERS as usize);
        assert_eq!(idle(), READERS as usize, "every reader came back");
        drop(db.reader().await.expect("a reader once they are back"));
        assert_eq!(idle(), READERS as usize, "a reader was reused, not opened");
    }

    #[tokio::test]
    async fn close_refuses_later_calls() {
        let (dir, db) = file_db().await;
        let mut w = db.writer().await.expect("writer");
        run(&mut w, "CREATE TABLE t (x INTEGER)")
            .await
            .expect("write");
        drop(w);
        drop(db.reader().await.expect("reader"));
        assert!(dir.path().join("t.db-wal").is_file());
        db.close().await;
        assert!(matches!(db.writer().await, Err(sqlx::Error::PoolClosed)));
        assert!(matches!(db.reader().await, Err(sqlx::Error::PoolClosed)));
        assert!(
            !dir.path().join("t.db-wal").exists(),
            "the last close checkpointed and removed the WAL file"
        );
        db.close().await;
    }

    #[tokio::test]
    async fn memory_is_one_connection() {
        let db = Sqlite::memory(SqliteConnectOptions::new().in_memory(true));
        let mut w = db.writer().await.expect("writer");
        run(&mut w, "CREATE TABLE t (x INTEGER)")
            .await
            .expect("write");
        drop(w);
        let mut r = db.reader().await.expect("reader");
        run(&mut r, "SELECT * FROM t")
            .await
            .expect("the reader is the writer");
    }
}
