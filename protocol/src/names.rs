//! IRC names: when two nicks or channel names are the same, and which nicks are valid.
//!
//! IRC compares names case-insensitively, but what "case" means is the server's choice, which it
//! announces as `CASEMAPPING` in its `005` (ISUPPORT) lines: under `rfc1459` (the default when a
//! server says nothing) `[]\~` are the upper case of `{}|^`, so `Dan[away]` and `dan{away}` are
//! one nick; under `ascii` only `A`-`Z` fold. The supervisor learns the server's mapping, uses it
//! for every comparison (is a message for the bot, does a hostmask match, which history is
//! whose), and tells plugins in the bot info (`casemapping`), so a plugin keyed by nick folds the
//! same way as the server.

use serde::{Deserialize, Serialize};

/// A server's case mapping: how nicks and channel names fold before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CaseMapping {
    /// `A`-`Z` fold to `a`-`z`, and `[]\~` to `{}|^`. What RFC 1459 says, and the default.
    #[default]
    #[serde(rename = "rfc1459")]
    Rfc1459,
    /// `A`-`Z` fold to `a`-`z`, and `[]\` to `{}|`, but `~` and `^` are different.
    #[serde(rename = "rfc1459-strict")]
    Rfc1459Strict,
    /// Only `A`-`Z` fold.
    #[serde(rename = "ascii")]
    Ascii,
}

impl CaseMapping {
    /// The mapping named by a server's `CASEMAPPING=` token. A name hamper does not know (such
    /// as `rfc7613`, which also folds non-ASCII letters) is `None`: the caller keeps what it has.
    pub fn from_isupport(name: &str) -> Option<CaseMapping> {
        match name.to_ascii_lowercase().as_str() {
            "rfc1459" => Some(CaseMapping::Rfc1459),
            "rfc1459-strict" | "strict-rfc1459" => Some(CaseMapping::Rfc1459Strict),
            "ascii" => Some(CaseMapping::Ascii),
            _ => None,
        }
    }

    /// The name servers use for it.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseMapping::Rfc1459 => "rfc1459",
            CaseMapping::Rfc1459Strict => "rfc1459-strict",
            CaseMapping::Ascii => "ascii",
        }
    }

    /// One character, folded.
    pub fn fold_char(self, c: char) -> char {
        match (self, c) {
            (CaseMapping::Rfc1459 | CaseMapping::Rfc1459Strict, '[') => '{',
            (CaseMapping::Rfc1459 | CaseMapping::Rfc1459Strict, ']') => '}',
            (CaseMapping::Rfc1459 | CaseMapping::Rfc1459Strict, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            (_, c) => c.to_ascii_lowercase(),
        }
    }

    /// A name, folded: equal folded names are the same nick or channel.
    pub fn fold(self, name: &str) -> String {
        name.chars().map(|c| self.fold_char(c)).collect()
    }

    /// Whether `a` and `b` name the same nick or channel.
    pub fn same(self, a: &str, b: &str) -> bool {
        a.len() == b.len()
            && a.chars()
                .zip(b.chars())
                .all(|(x, y)| self.fold_char(x) == self.fold_char(y))
    }
}

/// Whether `nick` is a valid IRC nick: RFC 2812's letters, digits and `_-[]\^{}|` and backtick,
/// not starting with a digit or `-`, at most 30 bytes (what most networks allow; the server may
/// still refuse a long one, and the bot then falls back to another).
pub fn valid_nick(nick: &str) -> bool {
    let special = |c: char| "_-[]\\^{}|`".contains(c);
    let mut chars = nick.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || (special(c) && c != '-'))
        && chars.all(|c| c.is_ascii_alphanumeric() || special(c))
        && nick.len() <= 30
}

/// The characters channel names start with on the usual networks.
pub const CHANNEL_PREFIXES: [char; 4] = ['#', '&', '+', '!'];

/// Whether `name` starts like a channel rather than a nick: a message to it is not private.
pub fn has_channel_prefix(name: &str) -> bool {
    name.starts_with(CHANNEL_PREFIXES)
}

/// Whether `name` is a usable channel name: a channel prefix and at least one more character,
/// with no space, comma, BEL, CR, LF or NUL.
pub fn is_channel(name: &str) -> bool {
    name.len() >= 2
        && has_channel_prefix(name)
        && !name.contains([' ', ',', '\u{7}', '\r', '\n', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_follows_the_servers_mapping() {
        let cases = [
            (CaseMapping::Rfc1459, "Dan[A]\\~", "dan{a}|^"),
            (CaseMapping::Rfc1459Strict, "Dan[A]\\~", "dan{a}|~"),
            (CaseMapping::Ascii, "Dan[A]\\~", "dan[a]\\~"),
        ];
        for (mapping, name, folded) in cases {
            assert_eq!(mapping.fold(name), folded, "{mapping:?}");
            assert!(mapping.same(name, folded), "{mapping:?}");
        }
        assert!(CaseMapping::Rfc1459.same("a~", "A^"));
        assert!(!CaseMapping::Rfc1459Strict.same("a~", "A^"));
        assert!(!CaseMapping::Ascii.same("a[", "a{"));
        assert!(!CaseMapping::Rfc1459.same("ab", "abc"));
        // Non-ASCII letters never fold: no mapping here claims to know them.
        assert!(!CaseMapping::Rfc1459.same("É", "é"));
    }

    #[test]
    fn isupport_names() {
        assert_eq!(
            CaseMapping::from_isupport("RFC1459"),
            Some(CaseMapping::Rfc1459)
        );
        assert_eq!(
            CaseMapping::from_isupport("strict-rfc1459"),
            Some(CaseMapping::Rfc1459Strict)
        );
        assert_eq!(
            CaseMapping::from_isupport("ascii"),
            Some(CaseMapping::Ascii)
        );
        assert_eq!(CaseMapping::from_isupport("rfc7613"), None);
        for m in [
            CaseMapping::Rfc1459,
            CaseMapping::Rfc1459Strict,
            CaseMapping::Ascii,
        ] {
            let json = serde_json::to_string(&m).expect("serialize");
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(CaseMapping::from_isupport(m.as_str()), Some(m));
        }
    }

    #[test]
    fn nick_and_channel_validity() {
        for ok in ["hamper", "h4mper", "[bot]", "a_b-c", "`x", "x{y}|z^"] {
            assert!(valid_nick(ok), "{ok}");
        }
        for bad in [
            "",
            "9x",
            "-x",
            "a b",
            "a:b",
            "a\r\nQUIT",
            "é",
            &"x".repeat(31),
        ] {
            assert!(!valid_nick(bad), "{bad:?}");
        }
        for ok in ["#c", "&local", "##x", "#日本"] {
            assert!(is_channel(ok), "{ok}");
        }
        for bad in ["#", "c", "#a b", "#a,#b", "#a\r\n"] {
            assert!(!is_channel(bad), "{bad:?}");
        }
    }
}
