//! Why a key-value call failed, and which driver errors mean the database is down.
//!
//! A call's caller (the supervisor, answering a plugin) can only act on a kind: its own mistake
//! (`BadRequest`, `TooLarge`), a conflict worth retrying at once (`Contended`), a database that
//! is down or busy (`Unavailable`, try again later), or a bug (`Internal`). Driver errors are
//! sorted into those kinds here and logged where they happen; their text never leaves the host.

/// Why a key-value call failed.
///
/// `message` is a lowercase fragment for a person. For `BadRequest`, `TooLarge` and `Contended`
/// it is about the call and names the field (``"`key` must not be empty"``), but not the
/// protocol method, which a caller may prefix. For `Unavailable` and `Internal` it is about
/// storage and says what to do (`storage is unavailable; try again later`); the details are
/// in the host's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KvError {
    /// What kind of failure it is.
    pub kind: KvErrorKind,
    /// What went wrong, for a person.
    pub message: String,
}

/// What kind of failure a [`KvError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvErrorKind {
    /// The call is wrong: an empty key, a NUL, an increment of a non-integer or past 64 bits.
    BadRequest,
    /// A key, prefix or value is over its limit.
    TooLarge,
    /// The key kept changing under an increment; the same call may work at once.
    Contended,
    /// The database is down, unreachable, busy, slow or closed; the same call may work later.
    Unavailable,
    /// A bug, or a stored value that is not JSON; the details are in the host's log.
    Internal,
}

impl KvError {
    /// An error of `kind` with `message`.
    pub fn new(kind: KvErrorKind, message: impl Into<String>) -> KvError {
        KvError {
            kind,
            message: message.into(),
        }
    }

    /// The `Unavailable` error a call gets while the database is down or closed.
    pub(crate) fn unavailable() -> KvError {
        KvError::new(
            KvErrorKind::Unavailable,
            "storage is unavailable; try again later",
        )
    }

    /// The `Internal` error a call gets for a failure whose details are only in the log.
    pub(crate) fn internal() -> KvError {
        KvError::new(
            KvErrorKind::Internal,
            "storage failed; the host's log has the details",
        )
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

/// Whether a PostgreSQL driver error means the server cannot be reached at all (the connection
/// failed or broke, no connection came within the acquire timeout, the server is shutting down
/// or starting), as opposed to one statement failing on a server that is up. After such an
/// error storage stops sending calls to the server until a probe reaches it again.
pub(crate) fn is_outage(error: &sqlx::Error) -> bool {
    use sqlx::Error;
    match error {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut => true,
        Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| postgres_code_is_outage(pg.code())),
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

/// SQLSTATEs of a connection that is lost or of a server that is not serving: the subset of
/// [`postgres_code_is_unavailable`] that no other statement would escape either.
fn postgres_code_is_outage(code: &str) -> bool {
    const CODES: [&str; 3] = [
        "57P01", // admin_shutdown
        "57P02", // crash_shutdown
        "57P03", // cannot_connect_now
    ];
    code.starts_with("08") || CODES.contains(&code)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes() {
        // (SQLSTATE, unavailable, outage)
        let cases = [
            ("08006", true, true),
            ("08001", true, true),
            ("57P01", true, true),
            ("57P02", true, true),
            ("57P03", true, true),
            ("53300", true, false),
            ("40001", true, false),
            ("25006", true, false),
            ("57014", true, false),
            ("55P03", true, false),
            ("23505", false, false),
            ("42P01", false, false),
            ("22003", false, false),
        ];
        for (code, unavailable, outage) in cases {
            assert_eq!(postgres_code_is_unavailable(code), unavailable, "{code}");
            assert_eq!(postgres_code_is_outage(code), outage, "{code}");
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
        let refused =
            || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&refused()));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(is_outage(&sqlx::Error::PoolTimedOut));
        assert!(is_outage(&refused()));
        // A closed storage is not an outage: nothing is there to probe.
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(!is_outage(&sqlx::Error::PoolClosed));
        assert!(!is_outage(&sqlx::Error::RowNotFound));
    }
}
