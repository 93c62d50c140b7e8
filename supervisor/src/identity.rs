//! Who someone is: the forms an owner or an ACL entry can take, and whether a sender is one.
//!
//! A nick is whatever the sender typed after `/nick`, so on its own it proves nothing. An entry
//! is therefore one of:
//!
//! - a hostmask, `nick!user@host` with `*` and `?` ([`crate::mask`]), matched against the
//!   sender's full prefix (a user without ident shows as `~user`; people who share a host, a
//!   shell box or a web client's gateway, look alike to a hostmask);
//! - a services account, `$a:alice`, matched against the account the network reports for the
//!   sender (`account-tag`, `extended-join`, `WHOX`); a sender whose account is not known (not
//!   logged in, or a network or connection that does not report accounts) matches no account;
//! - a bare nick, written explicitly as `nick:alice`, which anyone can take, so `check-config`
//!   warns about it.
//!
//! A bare word (`alice`) is none of these: as an owner it is refused, and in the ACL it keeps the
//! original's meaning only where that cannot let anyone in (see [`crate::acl`]).

use std::fmt;

use hamper_protocol::CaseMapping;

use crate::chat::Source;
use crate::mask;

/// One owner or ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `nick!user@host`, with wildcards.
    Mask(String),
    /// `$a:NAME`: a services account.
    Account(String),
    /// `nick:NAME`: whoever has the nick.
    Nick(String),
}

/// Why a string is not an [`Identity`] (or, in [`crate::acl`], not a valid selector, member or
/// pattern): what is wrong and how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, e.g. "`alice` is only a nick".
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// The prefix of a services account entry.
pub const ACCOUNT_PREFIX: &str = "$a:";
/// The prefix of an explicit bare nick entry.
pub const NICK_PREFIX: &str = "nick:";

impl Identity {
    /// Parses `nick!user@host`, `$a:NAME` or `nick:NAME`.
    pub fn parse(text: &str) -> Result<Identity, Invalid> {
        let err = |problem: String, fix: String| Err(Invalid { problem, fix });
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return err(
                format!("`{}` is empty or holds spaces", text.escape_debug()),
                "write a hostmask `alice!*@alice.example`, an account `$a:alice` or a nick `nick:alice`".into(),
            );
        }
        if let Some(name) = text.strip_prefix(ACCOUNT_PREFIX) {
            return match name {
                "" => err(
                    format!("`{text}` names no account"),
                    "write the account after `$a:`, e.g. `$a:alice`".into(),
                ),
                name => Ok(Identity::Account(name.to_string())),
            };
        }
        if let Some(name) = text.strip_prefix(NICK_PREFIX) {
            return match name {
                "" => err(
                    format!("`{text}` names no nick"),
                    "write the nick after `nick:`, e.g. `nick:alice`".into(),
                ),
                name if name.contains(['!', '@', '*', '?']) => err(
                    format!("`{text}` is not a nick"),
                    format!("`nick:` takes a plain nick; for a hostmask drop the prefix: `{name}`"),
                ),
                name => Ok(Identity::Nick(name.to_string())),
            };
        }
        if text.chars().all(|c| c == '*' || c == '?') {
            return err(
                format!("`{text}` is not a hostmask"),
                "write a hostmask with all three parts, `*!*@alice.example`; `*!*@*` would be everyone".into(),
            );
        }
        match (text.find('!'), text.rfind('@')) {
            (Some(bang), Some(at)) if bang > 0 && at > bang + 1 && at + 1 < text.len() => {
                Ok(Identity::Mask(text.to_string()))
            }
            (None, None) => err(
                format!("`{text}` is only a nick, and anyone can take a nick"),
                format!(
                    "write a hostmask `{text}!*@host`, the services account `$a:{text}`, or `nick:{text}` to trust the nick anyway (spoofable)"
                ),
            ),
            _ => err(
                format!("`{text}` is not a hostmask"),
                "write all three parts, `nick!user@host`, using `*` for any: `*!*@alice.example`".into(),
            ),
        }
    }

    /// Whether `who` is this identity, folding case as the server does. A hostmask needs the
    /// sender's user and host; an account needs the account the network reported.
    pub fn matches(&self, who: &Source, mapping: CaseMapping) -> bool {
        match self {
            Identity::Mask(m) => {
                who.user.is_some() && who.host.is_some() && mask::matches(m, &who.mask(), mapping)
            }
            Identity::Account(a) => who.account.as_deref().is_some_and(|b| mapping.same(a, b)),
            Identity::Nick(n) => mapping.same(n, &who.nick),
        }
    }

    /// Why this entry is weaker than it looks, for `check-config` and the log; `None` if it is
    /// as good as its form allows.
    pub fn warning(&self) -> Option<String> {
        match self {
            Identity::Nick(n) => Some(format!(
                "`{self}` matches whoever takes the nick {n}: a bare nick is spoofable; prefer the services account `$a:{n}` or a hostmask `{n}!*@host`"
            )),
            Identity::Mask(m) => {
                let (nick, rest) = m.split_once('!').unwrap_or((m, ""));
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                let any = |s: &str| s.chars().all(|c| c == '*' || c == '?');
                if !any(host) {
                    return None;
                }
                Some(if any(nick) {
                    format!("`{m}` matches everyone")
                } else {
                    format!(
                        "`{m}` matches any host, so whoever takes the nick {nick} matches it: as spoofable as a bare nick; name the host, e.g. `{nick}!*@{nick}.example`"
                    )
                })
            }
            Identity::Account(_) => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Mask(m) => f.write_str(m),
            Identity::Account(a) => write!(f, "{ACCOUNT_PREFIX}{a}"),
            Identity::Nick(n) => write!(f, "{NICK_PREFIX}{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC: CaseMapping = CaseMapping::Rfc1459;

    fn sender(nick: &str, user: &str, host: &str, account: Option<&str>) -> Source {
        Source {
            nick: nick.into(),
            user: Some(user.into()),
            host: Some(host.into()),
            account: account.map(str::to_string),
        }
    }

    #[test]
    fn parse_table() {
        let ok = [
            (
                "alice!*@alice.example",
                Identity::Mask("alice!*@alice.example".into()),
            ),
            ("*!*@*", Identity::Mask("*!*@*".into())),
            (
                "*!~alice@*.example",
                Identity::Mask("*!~alice@*.example".into()),
            ),
            ("$a:alice", Identity::Account("alice".into())),
            ("nick:alice", Identity::Nick("alice".into())),
        ];
        for (text, want) in ok {
            assert_eq!(Identity::parse(text), Ok(want.clone()), "{text}");
            assert_eq!(want.to_string(), text, "round trip");
        }
        let bad = [
            ("alice", "only a nick"),
            ("*", "not a hostmask"),
            ("alice@host", "not a hostmask"),
            ("alice!user", "not a hostmask"),
            ("!u@h", "not a hostmask"),
            ("a!@h", "not a hostmask"),
            ("a!u@", "not a hostmask"),
            ("$a:", "names no account"),
            ("nick:", "names no nick"),
            ("nick:a!*@h", "not a nick"),
            ("", "empty"),
            ("a b!c@d", "spaces"),
        ];
        for (text, problem) in bad {
            let e = Identity::parse(text).expect_err(text);
            assert!(e.problem.contains(problem), "{text}: {e:?}");
            assert!(!e.fix.is_empty(), "{text}");
        }
    }

    #[test]
    fn a_bare_word_is_refused_with_the_three_ways_to_write_it() {
        let e = Identity::parse("alice").expect_err("bare");
        assert!(e.fix.contains("`alice!*@host`"), "{}", e.fix);
        assert!(e.fix.contains("`$a:alice`"), "{}", e.fix);
        assert!(e.fix.contains("`nick:alice`"), "{}", e.fix);
    }

    #[test]
    fn matching_table() {
        let owner = sender("alice", "~alice", "alice.example", Some("Alice"));
        let spoofer = sender("alice", "x", "evil.example", None);
        let logged_in_spoofer = sender("alice", "x", "evil.example", Some("mallory"));
        let renamed = sender("alice_away", "~alice", "alice.example", Some("alice"));
        let cases = [
            ("alice!*@alice.example", &owner, true),
            ("ALICE!*@ALICE.EXAMPLE", &owner, true),
            ("alice!*@alice.example", &spoofer, false),
            ("alice!alice@alice.example", &owner, false), // no ident: the user is `~alice`
            ("alice!*alice@alice.example", &owner, true),
            ("*!*@alice.example", &renamed, true),
            ("alice!*@alice.example", &renamed, false),
            ("$a:alice", &owner, true),
            ("$a:alice", &renamed, true),
            ("$a:alice", &spoofer, false),
            ("$a:alice", &logged_in_spoofer, false),
            ("nick:alice", &owner, true),
            ("nick:Alice", &spoofer, true),
            ("nick:alice", &renamed, false),
        ];
        for (entry, who, want) in cases {
            let id = Identity::parse(entry).expect(entry);
            assert_eq!(id.matches(who, RFC), want, "{entry} ~ {who:?}");
        }
    }

    #[test]
    fn a_hostmask_needs_a_known_user_and_host() {
        let id = Identity::parse("*!*@*").expect("mask");
        assert!(!id.matches(&Source::nick("alice"), RFC));
        assert!(Identity::parse("nick:alice")
            .expect("nick")
            .matches(&Source::nick("alice"), RFC));
    }

    #[test]
    fn spoofable_entries_are_warned_about() {
        let warned = |t: &str| Identity::parse(t).expect(t).warning();
        assert!(
            warned("nick:alice").is_some_and(|w| w.contains("spoofable") && w.contains("$a:alice"))
        );
        assert!(warned("alice!*@*").is_some_and(|w| w.contains("spoofable")));
        assert!(warned("*!*@*").is_some_and(|w| w.contains("everyone")));
        assert_eq!(warned("alice!*@alice.example"), None);
        assert_eq!(warned("*!*@alice.example"), None);
        assert_eq!(warned("$a:alice"), None);
    }
}
