//! What the karma command is asked, and the words it answers with (reference §2.1 and §6.4).
//!
//! The reply strings are the original's, except the deliberate deviations: `1 point` is singular
//! (issue #87) and `No karma for <name>` has no trailing space.

use hamper_protocol::sdk::RequestError;
use hamper_protocol::ErrorCode;

use crate::parse::is_space;

/// The storage key prefix of every score. `score/<lowercased name>` holding an integer is a
/// contract shared with the importer of the original's database.
pub const SCORE_PREFIX: &str = "score/";

/// How many rows `--top` and `--bottom` show.
pub const LIST_MAX: u32 = 5;

/// The answer to giving yourself karma.
pub const SELF_KARMA: &str = "Nice try, no modifying your own karma";

/// The answer to `--top` or `--bottom` when no one has a score.
pub const NO_KARMA_YET: &str = "No one has any karma yet :-(";

/// The answer when the host is reachable but storage misbehaved.
pub const DATABASE_BROKEN: &str = "Sorry, something went wrong with my database.";

/// The answer when storage cannot be reached.
pub const DATABASE_DOWN: &str = "Sorry, I can't reach my database right now.";

/// The storage key for a name.
pub fn score_key(name: &str) -> String {
    format!("{SCORE_PREFIX}{name}")
}

/// What `!karma <args>` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// One name's score (lowercased and stripped).
    Name(String),
    /// The five highest scores.
    Top,
    /// The five lowest scores.
    Bottom,
    /// An option this command does not know.
    Unknown,
}

/// Reads the command's arguments. No arguments means the asker's own score.
///
/// The original matched `--top` and `--bottom` exactly and ignored any other argument starting
/// with `-`; here an unknown `--option` gets the usage instead of silence, and a name that starts
/// with a single `-` (which `-foo++` can create) can be looked up.
pub fn parse_query(args: &str, asker: &str) -> Query {
    let args = args.trim_matches(is_space);
    if args.is_empty() {
        return Query::Name(asker.trim_matches(is_space).to_lowercase());
    }
    let lowered = args.to_lowercase();
    match lowered.as_str() {
        "--top" => Query::Top,
        "--bottom" => Query::Bottom,
        _ if lowered.starts_with("--") => Query::Unknown,
        _ => Query::Name(lowered),
    }
}

/// `<name> has N points`, with `point` for 1 and −1.
pub fn score_line(name: &str, score: i64) -> String {
    let unit = if matches!(score, 1 | -1) {
        "point"
    } else {
        "points"
    };
    format!("{name} has {score} {unit}")
}

/// The answer for a name that has never been given karma.
pub fn no_karma_line(name: &str) -> String {
    format!("No karma for {name}")
}

/// One row of `--top` or `--bottom`.
///
/// The original's `'%s\x0f: %d'` is kept: `\x0f` resets IRC formatting, so a name that ends in a
/// bold, colour or underline code (names are free text) does not bleed into the score, and a
/// name ending in a bare colour code `\x03` cannot swallow the digits after it. Clients that
/// strip formatting show nothing for it, and the host passes it through.
pub fn list_line(name: &str, score: i64) -> String {
    format!("{name}\x0f: {score}")
}

/// The usage, for an unknown option.
pub fn usage_line(prefix: &str) -> String {
    format!("Usage: {prefix}karma [name|--top|--bottom]")
}

/// What to tell the user when a storage request failed.
pub fn storage_error_line(err: &RequestError) -> &'static str {
    match err {
        RequestError::Host {
            code: ErrorCode::Unavailable,
            ..
        }
        | RequestError::Closed => DATABASE_DOWN,
        _ => DATABASE_BROKEN,
    }
}

/// What to tell the user when some karma could not be stored.
pub fn not_counted_line(err: &RequestError, names: &[&str]) -> String {
    format!(
        "{} Karma for {} was not counted.",
        storage_error_line(err),
        names.join(", ")
    )
}

/// What to tell the user when a name is too long to be a storage key.
pub fn too_long_line() -> &'static str {
    "Sorry, that name is too long for me to keep karma for."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let cases: &[(&str, &str, Query)] = &[
            ("", "Bob", Query::Name("bob".into())),
            ("  ", "Bob", Query::Name("bob".into())),
            ("foo", "bob", Query::Name("foo".into())),
            ("  FOO  ", "bob", Query::Name("foo".into())),
            ("Foo Bar", "bob", Query::Name("foo bar".into())),
            ("(foo bar)", "bob", Query::Name("(foo bar)".into())),
            ("-foo", "bob", Query::Name("-foo".into())),
            ("Über", "bob", Query::Name("über".into())),
            ("--top", "bob", Query::Top),
            ("--TOP", "bob", Query::Top),
            ("--bottom", "bob", Query::Bottom),
            ("--top 10", "bob", Query::Unknown),
            ("--giver", "bob", Query::Unknown),
            ("--", "bob", Query::Unknown),
        ];
        for (args, asker, want) in cases {
            assert_eq!(parse_query(args, asker), *want, "args {args:?}");
        }
    }

    #[test]
    fn score_lines() {
        let cases: &[(&str, i64, &str)] = &[
            ("foo", 0, "foo has 0 points"),
            ("foo", 1, "foo has 1 point"),
            ("foo", -1, "foo has -1 point"),
            ("foo", 2, "foo has 2 points"),
            ("foo", -2, "foo has -2 points"),
            ("foo bar", 1000, "foo bar has 1000 points"),
            ("x", i64::MIN, "x has -9223372036854775808 points"),
        ];
        for (name, score, want) in cases {
            assert_eq!(score_line(name, *score), *want);
        }
    }

    #[test]
    fn fixed_lines() {
        assert_eq!(no_karma_line("foo"), "No karma for foo");
        assert_eq!(list_line("foo", 5), "foo\u{f}: 5");
        assert_eq!(list_line("bar", -3), "bar\u{f}: -3");
        assert_eq!(usage_line("!"), "Usage: !karma [name|--top|--bottom]");
        assert_eq!(score_key("foo bar"), "score/foo bar");
    }

    #[test]
    fn storage_errors() {
        let down = RequestError::Host {
            code: ErrorCode::Unavailable,
            message: "database is down".into(),
        };
        let bad = RequestError::Host {
            code: ErrorCode::BadRequest,
            message: "not an integer".into(),
        };
        assert_eq!(
            storage_error_line(&down),
            "Sorry, I can't reach my database right now."
        );
        assert_eq!(
            storage_error_line(&RequestError::Closed),
            "Sorry, I can't reach my database right now."
        );
        assert_eq!(
            storage_error_line(&bad),
            "Sorry, something went wrong with my database."
        );
        assert_eq!(
            not_counted_line(&down, &["foo", "bar"]),
            "Sorry, I can't reach my database right now. Karma for foo, bar was not counted."
        );
    }
}
