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
//! * A point read (`kv.get`, the most frequent call: `!karma foo`) is answered on the caller's
//!   own thread by one more reader connection, opened with rusqlite rather than sqlx, when it can
//!   be ([`Sqlite::read_now`]). sqlx drives each connection from a thread of its own, so through
//!   it a read is two hand-offs between threads, which cost more than the read itself: in a burst
//!   of `!karma foo` the sqlx thread spent some 50 µs of CPU on each, mostly waking and sleeping.
//!   Reading one row from SQLite's page cache takes a few microseconds, blocking nothing for
//!   longer than a hand-off would. It never waits: SQLite's busy timeout is zero on it, and a read
//!   that fails for any reason (busy, an I/O error) is done again through sqlx, which reports
//!   errors as every other call does.
//!
//! Connections are opened when first needed and kept until [`Sqlite::close`]; one that broke
//! (its worker thread died) is dropped and replaced on the next use.

use std::path::{Path, PathBuf};
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
    /// The file, for [`Sqlite::read_now`]; `None` in memory.
    path: Option<PathBuf>,
    /// The reader that [`Sqlite::read_now`] drives on the caller's thread, once opened.
    nearby: std::sync::Mutex<Option<rusqlite::Connection>>,
    closed: AtomicBool,
}

impl Sqlite {
    /// A file database: `options` for the writer, and readers derived from them.
    pub(crate) fn file(options: SqliteConnectOptions) -> Sqlite {
        let readers = options.clone().pragma("query_only", "ON");
        let path = options.get_filename().to_path_buf();
        let mut db = Sqlite::new(options, Some(readers));
        db.path = Some(path);
        db
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
            path: None,
            nearby: std::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `read` at once on this thread, on a reader connection of its own, or `None` when
    /// that cannot be done: in memory, after [`Sqlite::close`], when the connection cannot be
    /// opened, or when `read` fails (then the connection is dropped, to be opened afresh next
    /// time). The caller then reads through [`Sqlite::reader`], which waits and reports as usual.
    pub(crate) fn read_now<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let path = self.path.as_ref()?;
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        // Never contended: the supervisor reads on one thread. Should another thread be reading,
        // this one goes the usual way rather than wait.
        let mut slot = self.nearby.try_lock().ok()?;
        if slot.is_none() {
            *slot = open_nearby(path)
                .map_err(|error| tracing::debug!(%error, "cannot open the nearby sqlite reader"))
                .ok();
        }
        let conn = slot.as_ref()?;
        match read(conn) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::debug!(%error, "a nearby sqlite read failed; reading through sqlx");
                *slot = None;
                None
            }
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
        drop(
            self.nearby
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
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

/// The connection for [`Sqlite::read_now`]: an existing file (the writer created and migrated
/// it), read-only, never waiting on a lock.
fn open_nearby(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
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
    async fn read_now_sees_committed_writes_and_steps_aside_when_it_cannot_read() {
        let (_dir, db) = file_db().await;
        let mut w = db.writer().await.expect("writer");
        run(
            &mut w,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)",
        )
        .await
        .expect("write");
        drop(w);
        let read = |conn: &rusqlite::Connection| {
            conn.query_row("SELECT max(x) FROM t", (), |row| row.get::<_, i64>(0))
        };
        assert_eq!(db.read_now(read), Some(1));
        let mut w = db.writer().await.expect("writer");
        run(&mut w, "INSERT INTO t VALUES (2)")
            .await
            .expect("write");
        drop(w);
        assert_eq!(db.read_now(read), Some(2), "the next read sees the commit");
        assert_eq!(
            db.read_now(|conn| conn.execute("INSERT INTO t VALUES (3)", ())),
            None,
            "the nearby reader cannot write"
        );
        assert_eq!(db.read_now(read), Some(2), "and reads again afterwards");
        db.close().await;
        assert_eq!(db.read_now(read), None, "closed");

        let memory = Sqlite::memory(SqliteConnectOptions::new().in_memory(true));
        assert_eq!(
            memory.read_now(|_| Ok(1)),
            None,
            "in memory, reads go through sqlx"
        );
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
