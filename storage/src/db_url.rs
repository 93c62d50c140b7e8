//! Reading a database URL (the `db` setting or `DATABASE_URL`) into a backend, and redacting it.
//!
//! Two kinds of people write these URLs. People coming from the original Hamper have SQLAlchemy
//! URLs: `sqlite:///hamper.db` is the *relative* file `hamper.db`, `sqlite:////var/lib/h.db` is
//! absolute, `sqlite://` is in memory, and Heroku hands out `postgres://`. People who know sqlx
//! write `sqlite:hamper.db` or `sqlite://hamper.db`. Both are accepted. Where the two readings
//! disagree (three slashes, which sqlx reads as an absolute path) SQLAlchemy wins, so that an
//! existing Hamper config keeps pointing at the same file. A bare path is a SQLite file too.
//!
//! A URL can carry a password, so nothing here puts the URL itself in an error or a log: every
//! message uses [`redact_url`].

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::StorageError;

/// Where the data lives, as parsed from a URL.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A SQLite file (relative paths are relative to the working directory).
    SqliteFile(PathBuf),
    /// A SQLite database in memory, gone when the process exits.
    SqliteMemory,
    /// A PostgreSQL server.
    Postgres(Box<PgConnectOptions>),
}

impl Target {
    /// How the target is shown in logs and errors: never with a password.
    pub(crate) fn describe(&self, url: &str) -> String {
        match self {
            Target::SqliteFile(path) => format!("sqlite:{}", path.display()),
            Target::SqliteMemory => "sqlite::memory:".to_string(),
            Target::Postgres(_) => redact_url(url.trim()),
        }
    }
}

/// Parses a database URL; see the module docs for the accepted forms.
pub(crate) fn parse(url: &str) -> Result<Target, StorageError> {
    let url = url.trim();
    let unsupported = |reason: &str| StorageError::UnsupportedUrl {
        url: redact_url(url),
        reason: reason.to_string(),
    };
    if url.is_empty() {
        return Err(unsupported("it is empty"));
    }
    let Some((scheme, rest)) = split_scheme(url) else {
        return Ok(sqlite_path(url));
    };
    // SQLAlchemy spells a driver after a plus: `postgresql+psycopg2://`, `sqlite+pysqlite:///`.
    let base = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    match base.as_str() {
        "sqlite" | "sqlite3" => {
            let path = match rest.strip_prefix("//") {
                // SQLAlchemy: the third slash ends an empty host; what follows is the path.
                Some(after) => after.strip_prefix('/').unwrap_or(after),
                None => rest,
            };
            let path = match path.split_once('?') {
                Some((path, query)) => {
                    tracing::warn!(%query, "ignoring the query part of a sqlite database URL");
                    path
                }
                None => path,
            };
            Ok(sqlite_path(path))
        }
        "postgres" | "postgresql" => {
            if !rest.starts_with("//") {
                return Err(unsupported("a PostgreSQL URL starts with `postgres://`"));
            }
            let options = PgConnectOptions::from_str(&format!("postgres:{rest}"))
                .map_err(|e| unsupported(&format!("it is not a valid PostgreSQL URL ({e})")))?;
            Ok(Target::Postgres(Box::new(options)))
        }
        _ => Err(unsupported(&format!(
            "`{scheme}` databases are not supported, only SQLite and PostgreSQL"
        ))),
    }
}

fn sqlite_path(path: &str) -> Target {
    if path.is_empty() || path == ":memory:" {
        Target::SqliteMemory
    } else {
        Target::SqliteFile(Path::new(path).to_path_buf())
    }
}

/// Splits `scheme:rest` when the text before the first colon looks like a URL scheme (RFC 3986:
/// a letter, then letters, digits, `+`, `-` or `.`). A single letter is left alone, so that a
/// path such as `C:\bot\hamper.db` stays a path.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let is_scheme = scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some((scheme, rest))
}

/// Returns the URL with any password replaced by `********`: the one in `user:password@` and
/// any query parameter named like a secret (`password=`, `sslpassword=`, `auth_token=`). Text
/// that is not a `scheme://` URL, such as a SQLite path, is returned unchanged.
///
/// When a URL is ambiguous (an unescaped `@` after the host, say) it errs towards hiding more.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, userinfo, tail)) = split_url(url) else {
        return url.to_string();
    };
    let shown = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, _password)) => format!("{user}:********"),
            None => info.to_string(),
        },
        None => String::new(),
    };
    let tail = match tail.split_once('?') {
        Some((before, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if secret_parameter(key) => format!("{key}=********"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{before}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{shown}{tail}")
}

/// The secrets in a URL, which [`redact_url`] hides: the password of `user:password@` and the
/// values of query parameters named like secrets, each as written and percent-decoded, so that
/// they can be masked wherever else they show up (a driver's error message, a log line).
pub fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, userinfo, tail)) = split_url(url) else {
        return Vec::new();
    };
    let password = userinfo
        .and_then(|info| info.split_once(':'))
        .map(|(_, password)| password);
    let params = tail
        .split_once('?')
        .map(|(_, query)| query)
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| secret_parameter(key))
        .map(|(_, value)| value);
    let mut out = Vec::new();
    for raw in password.into_iter().chain(params).filter(|v| !v.is_empty()) {
        let decoded = percent_decode(raw);
        if decoded != raw {
            out.push(decoded);
        }
        out.push(raw.to_string());
    }
    out
}

/// `scheme`, the user information (up to the last `@`, so that a password may hold `/`, `?`,
/// `#` or `@`; an `@` later in the path or query only makes it hide more than needed) and the
/// rest, of a `scheme://` URL.
fn split_url(url: &str) -> Option<(&str, Option<&str>, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    Some(match rest.rfind('@') {
        Some(at) => (scheme, Some(&rest[..at]), &rest[at..]),
        None => (scheme, None, rest),
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a query parameter may hold a secret: `password`, `sslpassword`, and anything else
/// named like one (`auth_token`, `secret`), since hiding too much costs nothing here.
fn secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "auth", "credential"]
        .iter()
        .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Want {
        File(&'static str),
        Memory,
        Postgres {
            host: &'static str,
            port: u16,
            user: &'static str,
            db: &'static str,
        },
        Unsupported,
    }

    #[test]
    fn url_forms() {
        use Want::*;
        let cases = [
            ("hamper.db", File("hamper.db")),
            ("  hamper.db  ", File("hamper.db")),
            (
                "/var/lib/hamper/hamper.db",
                File("/var/lib/hamper/hamper.db"),
            ),
            ("./data/x.db", File("./data/x.db")),
            ("sqlite:hamper.db", File("hamper.db")),
            ("sqlite:/abs/h.db", File("/abs/h.db")),
            ("sqlite://hamper.db", File("hamper.db")),
            ("sqlite:///hamper.db", File("hamper.db")),
            ("sqlite:///data/hamper.db", File("data/hamper.db")),
            (
                "sqlite:////var/lib/hamper/hamper.db",
                File("/var/lib/hamper/hamper.db"),
            ),
            ("sqlite+pysqlite:///hamper.db", File("hamper.db")),
            ("SQLITE:hamper.db", File("hamper.db")),
            ("sqlite:hamper.db?mode=rwc", File("hamper.db")),
            ("sqlite://", Memory),
            ("sqlite::memory:", Memory),
            ("sqlite:///:memory:", Memory),
            (":memory:", Memory),
            (
                "postgres://postgres@127.0.0.1:5432/test",
                Postgres {
                    host: "127.0.0.1",
                    port: 5432,
                    user: "postgres",
                    db: "test",
                },
            ),
            (
                "postgresql://bob:pw@db.example:6000/karma?sslmode=require",
                Postgres {
                    host: "db.example",
                    port: 6000,
                    user: "bob",
                    db: "karma",
                },
            ),
            (
                "postgresql+psycopg2://bob@h/d",
                Postgres {
                    host: "h",
                    port: 5432,
                    user: "bob",
                    db: "d",
                },
            ),
            ("mysql://u:p@h/d", Unsupported),
            ("mongodb+srv://h/d", Unsupported),
            ("postgres:nohost", Unsupported),
            ("", Unsupported),
            ("   ", Unsupported),
        ];
        for (url, want) in cases {
            let got = match parse(url) {
                Ok(Target::SqliteFile(p)) => match want {
                    File(w) => {
                        assert_eq!(p, Path::new(w), "{url}");
                        continue;
                    }
                    _ => format!("file {p:?}"),
                },
                Ok(Target::SqliteMemory) => {
                    if want == Memory {
                        continue;
                    }
                    "memory".to_string()
                }
                Ok(Target::Postgres(o)) => {
                    if let Postgres {
                        host,
                        port,
                        user,
                        db,
                    } = want
                    {
                        assert_eq!(o.get_host(), host, "{url}");
                        assert_eq!(o.get_port(), port, "{url}");
                        assert_eq!(o.get_username(), user, "{url}");
                        assert_eq!(o.get_database(), Some(db), "{url}");
                        continue;
                    }
                    "postgres".to_string()
                }
                Err(StorageError::UnsupportedUrl { .. }) if want == Unsupported => continue,
                Err(e) => format!("error {e}"),
            };
            panic!("{url:?}: got {got}, want {want:?}");
        }
    }

    #[test]
    fn sslmode_is_honoured() {
        let Ok(Target::Postgres(o)) = parse("postgres://u@h/d?sslmode=require") else {
            panic!("not postgres");
        };
        assert!(matches!(
            o.get_ssl_mode(),
            sqlx::postgres::PgSslMode::Require
        ));
    }

    #[test]
    fn an_unsupported_url_names_the_setting_and_hides_the_password() {
        let err = parse("mysql://root:hunter2@h/d").expect_err("mysql");
        let msg = err.to_string();
        assert!(
            msg.contains("`db`") && msg.contains("DATABASE_URL"),
            "{msg}"
        );
        assert!(
            msg.contains("sqlite:") && msg.contains("postgres://"),
            "{msg}"
        );
        assert!(msg.contains("mysql"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn redaction() {
        let cases = [
            ("sqlite:hamper.db", "sqlite:hamper.db"),
            ("hamper.db", "hamper.db"),
            (
                "postgres://postgres@127.0.0.1:5432/test",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            ("postgres://u:p@h/d", "postgres://u:********@h/d"),
            ("postgres://u:@h/d", "postgres://u:********@h/d"),
            ("postgresql://u:p@ss@h:1/d", "postgresql://u:********@h:1/d"),
            ("postgres://u:a/b?c#d@h/d", "postgres://u:********@h/d"),
            (
                "postgres://h/d?user=u&password=secret&sslmode=require",
                "postgres://h/d?user=u&password=********&sslmode=require",
            ),
            (
                "postgres://u:secret@h/d?PASSWORD=secret",
                "postgres://u:********@h/d?PASSWORD=********",
            ),
            ("postgres://h/d", "postgres://h/d"),
            (
                "postgres://user:pa/ss@db.example.org/hamper",
                "postgres://user:********@db.example.org/hamper",
            ),
            (
                "postgres://user:p?w#x@h/d?sslmode=require",
                "postgres://user:********@h/d?sslmode=require",
            ),
            (
                "postgres://h/d?auth_token=abc&application_name=hamper",
                "postgres://h/d?auth_token=********&application_name=hamper",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn descriptions_never_show_the_password() {
        let url = "postgres://bob:hunter2@h:5432/d";
        let target = parse(url).expect("parse");
        assert_eq!(target.describe(url), "postgres://bob:********@h:5432/d");
        let url = "sqlite:///hamper.db";
        assert_eq!(parse(url).expect("parse").describe(url), "sqlite:hamper.db");
    }

    #[test]
    fn url_secrets_are_what_redact_url_hides_as_written_and_decoded() {
        let cases: [(&str, &[&str]); 6] = [
            ("postgres://bob:hunter2@db/karma", &["hunter2"]),
            ("postgres://bob:p%40ss%2Fw@db/k", &["p@ss/w", "p%40ss%2Fw"]),
            ("postgres://bob:a@b@db/k?sslmode=require", &["a@b"]),
            (
                "postgres://db/k?password=s3cret&auth_token=t0k&user=bob",
                &["s3cret", "t0k"],
            ),
            ("postgres://bob@db/k", &[]),
            ("sqlite:hamper.db", &[]),
        ];
        for (url, want) in cases {
            assert_eq!(url_secrets(url), want, "{url}");
            for secret in url_secrets(url) {
                assert!(!redact_url(url).contains(&secret), "{url}");
            }
        }
    }
}
