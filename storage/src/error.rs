//! The errors of opening, migrating and importing.
//!
//! These are the failures a person must act on (a wrong URL, a server that is down, a database
//! that is not the original Hamper's), so each names the database, redacted, and where the fix
//! is knowable it says so. Failures of a single key-value call are not here: those are a
//! [`crate::KvError`], whose kind the supervisor turns into a protocol error code.

use std::time::Duration;

/// Why storage could not be opened, migrated or imported into.
///
/// Messages are lowercase fragments that read after "failed to …". Every `db` field is already
/// redacted with [`crate::redact_url`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL is not a form this crate accepts.
    #[error(
        "use database URL `{url}`: {reason}; set `db` (or `DATABASE_URL`) to `sqlite:PATH`, \
         `sqlite:///RELATIVE/PATH`, `sqlite:////ABSOLUTE/PATH`, a bare file path such as \
         `hamper.db`, or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`"
    )]
    UnsupportedUrl {
        /// The URL as given, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A SQLite file's directory does not exist (SQLite creates files, not directories).
    #[error(
        "open SQLite database `{path}`: directory `{dir}` does not exist; create it or change `db`"
    )]
    MissingDirectory {
        /// The database file.
        path: String,
        /// Its missing directory.
        dir: String,
    },
    /// A file to import from does not exist (it is opened read-only and never created).
    #[error("open `{path}` to import from: no such file")]
    MissingFile {
        /// The file.
        path: String,
    },
    /// The database refused or failed the connection.
    #[error("connect to {db}: {source}")]
    Connect {
        /// The database, redacted.
        db: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database did not answer in time.
    #[error("connect to {db}: no answer within {timeout:?}; is the server up and reachable?")]
    ConnectTimeout {
        /// The database, redacted.
        db: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// Applying the schema migrations failed.
    #[error("migrate {db}: {source}")]
    Migrate {
        /// The database, redacted.
        db: String,
        /// sqlx's migration error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed.
    #[error("{action} in {db}: {source}")]
    Query {
        /// The database, redacted.
        db: String,
        /// What we were doing, for example `read the karma table`.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A value to write in bulk was refused (too large for the protocol's limit).
    #[error("store `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The import source has neither of the original Hamper's karma tables.
    #[error(
        "import from {db}: it has neither a `karma` nor a `karmastats` table; is it the original \
         Hamper's database (its `db` setting)?"
    )]
    NotHamperDatabase {
        /// The source database, redacted.
        db: String,
    },
    /// An imported karma total does not fit in 64 bits.
    #[error("import from {db}: the karma total of `{name}` overflows a 64-bit integer")]
    ImportOverflow {
        /// The source database, redacted.
        db: String,
        /// The (normalised) name.
        name: String,
    },
}

impl StorageError {
    /// Whether this is the database being down or unreachable, so that trying again later may
    /// work (the supervisor retries, or opens with [`crate::Storage::open_lazy`]), as opposed
    /// to a setting or data problem that needs a person.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::ConnectTimeout { .. })
            || self
                .driver_error()
                .is_some_and(crate::kv_error::is_unavailable)
    }

    /// Whether this is a server that cannot be reached at all, so that calls should stop
    /// trying it until a probe does (see [`crate::kv_error::is_outage`]).
    pub(crate) fn is_outage(&self) -> bool {
        matches!(self, StorageError::ConnectTimeout { .. })
            || self.driver_error().is_some_and(crate::kv_error::is_outage)
    }

    /// The driver's error behind this one, if there is one.
    fn driver_error(&self) -> Option<&sqlx::Error> {
        match self {
            StorageError::Connect { source, .. } | StorageError::Query { source, .. } => {
                Some(source)
            }
            StorageError::Migrate {
                source:
                    sqlx::migrate::MigrateError::Execute(e)
                    | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
                ..
            } => Some(e),
            _ => None,
        }
    }
}
