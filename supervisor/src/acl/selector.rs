//! Selectors (`*`, `alice`, `@ops`, `#hamper`, `$a:alice@ops#hamper`) and group members: who a
//! rule of the ACL is about.
//!
//! As in the original, a selector is a user (the leading run of characters that are neither `@`
//! nor `#`), an `@group` and a `#channel`, each optional and in any order after the user, and all
//! parts present must match. A user or group member is an [`Identity`] or, as the original
//! wrote it, a bare name. A bare name means a nick, which anyone can take, so a rule that picks
//! a sender only by a bare name may deny but never grant: it matches with [`Strength::Weak`].

use std::collections::BTreeMap;
use std::fmt;

use hamper_protocol::CaseMapping;

use crate::chat::Source;
use crate::identity::{Identity, Invalid};

/// How a sender matched: by something a nick change cannot fake, or by a bare nick alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// Only by a bare name (the original's form): enough to deny, never to grant.
    Weak,
    /// By a hostmask, an account, an explicit `nick:`, or no user at all.
    Strong,
}

/// A user in a selector or a member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A hostmask, account or explicit nick.
    Known(Identity),
    /// A bare name, as the original wrote nicks: matched by nick, weakly.
    Bare(String),
}

fn is_bare_name(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "!@#$:*?,".contains(c))
}

impl Member {
    /// Parses a member: an [`Identity`], or a bare name.
    pub fn parse(text: &str) -> Result<Member, Invalid> {
        if is_bare_name(text) {
            return Ok(Member::Bare(text.to_string()));
        }
        match Identity::parse(text) {
            Ok(id) => Ok(Member::Known(id)),
            Err(_) if text == "*" => Err(Invalid {
                problem: "`*` is not a member".into(),
                fix: "for everyone use the hostmask `*!*@*`, or give the permissions to the selector `*`".into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Whether `who` is this member, and how surely.
    pub fn matches(&self, who: &Source, mapping: CaseMapping) -> Option<Strength> {
        match self {
            Member::Known(id) => id.matches(who, mapping).then_some(Strength::Strong),
            Member::Bare(nick) => mapping.same(nick, &who.nick).then_some(Strength::Weak),
        }
    }

    /// Why this member is weaker than it looks, for `check-config` and the log.
    pub fn warning(&self) -> Option<String> {
        match self {
            Member::Known(id) => id.warning(),
            Member::Bare(n) => Some(format!(
                "`{n}` is a bare nick (the original's form), which anyone can take, so hamper uses it only to deny, never to grant; write the services account `$a:{n}`, a hostmask `{n}!*@host` (in a group), or `nick:{n}` to grant by nick anyway (spoofable)"
            )),
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::Known(id) => id.fmt(f),
            Member::Bare(n) => f.write_str(n),
        }
    }
}

/// Who a rule is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The user, if the selector names one.
    pub user: Option<Member>,
    /// The group, with its `@`.
    pub group: Option<String>,
    /// The channel, with its `#`.
    pub channel: Option<String>,
}

impl Selector {
    /// Parses a selector, refusing one the original would have read in a surprising way
    /// (`a@b@c`, `alice!*@host`, `@`).
    pub fn parse(text: &str) -> Result<Selector, Invalid> {
        let invalid = |problem: String, fix: String| Err(Invalid { problem, fix });
        if text == "*" {
            return Ok(Selector::default());
        }
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid(
                format!("`{}` is empty or holds spaces", text.escape_debug()),
                "write `*`, a user, `@group`, `#channel`, or a combination such as `@ops#hamper`"
                    .into(),
            );
        }
        let starts = text.match_indices(['@', '#']).map(|(i, _)| i);
        let mut bounds: Vec<usize> = std::iter::once(0).chain(starts).collect();
        bounds.dedup();
        bounds.push(text.len());
        let mut selector = Selector::default();
        for w in bounds.windows(2) {
            let part = &text[w[0]..w[1]];
            let (slot, what) = match part.chars().next() {
                Some('@') => (&mut selector.group, "group"),
                Some('#') => (&mut selector.channel, "channel"),
                _ => {
                    selector.user = Some(parse_user(text, part)?);
                    continue;
                }
            };
            if part.len() == 1 {
                return invalid(
                    format!("`{text}` has a `{part}` with no {what} name after it"),
                    format!("write the {what} name right after `{part}`, e.g. `{part}ops`"),
                );
            }
            if slot.is_some() {
                return invalid(
                    format!("`{text}` names more than one {what}"),
                    format!("a selector has at most one user, one group and one channel; write one rule per {what}"),
                );
            }
            *slot = Some(part.to_string());
        }
        Ok(selector)
    }

    /// Whether a sender in `channel` (`None` in private) is picked, given the groups it is in,
    /// and how surely: the weakest part decides.
    pub fn matches(
        &self,
        who: &Source,
        channel: Option<&str>,
        groups: &BTreeMap<&str, Strength>,
        mapping: CaseMapping,
    ) -> Option<Strength> {
        let mut strength = Strength::Strong;
        if let Some(user) = &self.user {
            strength = strength.min(user.matches(who, mapping)?);
        }
        if let Some(group) = &self.group {
            strength = strength.min(*groups.get(group.as_str())?);
        }
        if let Some(want) = &self.channel {
            if !channel.is_some_and(|c| mapping.same(want, c)) {
                return None;
            }
        }
        Some(strength)
    }
}

fn parse_user(selector: &str, user: &str) -> Result<Member, Invalid> {
    if user.contains('!') {
        return Err(Invalid {
            problem: format!(
                "`{selector}` starts with a hostmask, but in a selector `@` starts a group"
            ),
            fix: format!(
                "put the hostmask in a group, groups: {{\"@admins\": [\"{}\"]}}, and select `@admins`",
                selector.split('#').next().unwrap_or(selector)
            ),
        });
    }
    if user == "*" {
        return Err(Invalid {
            problem: format!("`{selector}` has `*` as its user"),
            fix: "leave the user out to match anyone: `#hamper` rather than `*#hamper`".into(),
        });
    }
    Member::parse(user)
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.user.is_none() && self.group.is_none() && self.channel.is_none() {
            return f.write_str("*");
        }
        if let Some(u) = &self.user {
            u.fmt(f)?;
        }
        for part in [&self.group, &self.channel].into_iter().flatten() {
            f.write_str(part)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC: CaseMapping = CaseMapping::Rfc1459;

    /// `(user, group, channel)` as the original's `parse_selector` returned them.
    fn parts(text: &str) -> (Option<String>, Option<String>, Option<String>) {
        let s = Selector::parse(text).expect(text);
        (s.user.map(|u| u.to_string()), s.group, s.channel)
    }

    /// The original's `TestACLParser`, every case (reference §4).
    #[test]
    fn selector_parsing_table_from_the_original() {
        let some = |s: &str| Some(s.to_string());
        let cases = [
            ("*", (None, None, None)),
            ("foo", (some("foo"), None, None)),
            ("bar", (some("bar"), None, None)),
            ("@foo", (None, some("@foo"), None)),
            ("@bar", (None, some("@bar"), None)),
            ("#foo", (None, None, some("#foo"))),
            ("#bar", (None, None, some("#bar"))),
            ("foo@bar", (some("foo"), some("@bar"), None)),
            ("baz@qux", (some("baz"), some("@qux"), None)),
            ("foo#bar", (some("foo"), None, some("#bar"))),
            ("baz#qux", (some("baz"), None, some("#qux"))),
            ("@foo#bar", (None, some("@foo"), some("#bar"))),
            ("#baz@qux", (None, some("@qux"), some("#baz"))),
            ("foo@bar#baz", (some("foo"), some("@bar"), some("#baz"))),
            ("foo#baz@bar", (some("foo"), some("@bar"), some("#baz"))),
        ];
        for (text, want) in cases {
            assert_eq!(parts(text), want, "{text}");
        }
    }

    #[test]
    fn users_may_be_accounts_or_explicit_nicks() {
        let s = Selector::parse("$a:alice@ops#hamper").expect("account selector");
        assert_eq!(
            s.user,
            Some(Member::Known(Identity::Account("alice".into())))
        );
        assert_eq!(s.group.as_deref(), Some("@ops"));
        assert_eq!(s.channel.as_deref(), Some("#hamper"));
        let s = Selector::parse("nick:bob").expect("nick selector");
        assert_eq!(s.user, Some(Member::Known(Identity::Nick("bob".into()))));
        assert_eq!(s.to_string(), "nick:bob");
    }

    #[test]
    fn surprising_selectors_are_refused_with_a_fix() {
        let cases = [
            ("", "empty"),
            ("a b", "spaces"),
            ("@", "no group name"),
            ("foo#", "no channel name"),
            ("a@b@c", "more than one group"),
            ("#a#b", "more than one channel"),
            ("alice!*@host", "hostmask"),
            ("*#hamper", "`*` as its user"),
            ("$a:@ops", "names no account"),
        ];
        for (text, problem) in cases {
            let e = Selector::parse(text).expect_err(text);
            assert!(e.problem.contains(problem), "{text:?}: {e:?}");
            assert!(!e.fix.is_empty());
        }
    }

    #[test]
    fn members_table() {
        let cases = [
            ("uberj", Ok(Member::Bare("uberj".into()))),
            ("[m]x", Ok(Member::Bare("[m]x".into()))),
            (
                "$a:uberj",
                Ok(Member::Known(Identity::Account("uberj".into()))),
            ),
            (
                "nick:uberj",
                Ok(Member::Known(Identity::Nick("uberj".into()))),
            ),
            ("u!*@h", Ok(Member::Known(Identity::Mask("u!*@h".into())))),
        ];
        for (text, want) in cases {
            assert_eq!(
                Member::parse(text).map_err(|_| ()),
                want.map_err(|_: ()| ()),
                "{text}"
            );
        }
        for bad in ["*", "a@b", "u!x", ""] {
            assert!(Member::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bare_name_matches_weakly_and_is_warned_about() {
        let who = Source {
            nick: "Uberj".into(),
            user: Some("u".into()),
            host: Some("h".into()),
            account: None,
        };
        let bare = Member::parse("uberj").expect("bare");
        assert_eq!(bare.matches(&who, RFC), Some(Strength::Weak));
        assert!(bare.warning().is_some_and(|w| w.contains("never to grant")));
        let explicit = Member::parse("nick:uberj").expect("nick");
        assert_eq!(explicit.matches(&who, RFC), Some(Strength::Strong));
        let mask = Member::parse("*!u@h").expect("mask");
        assert_eq!(mask.matches(&who, RFC), Some(Strength::Strong));
        assert_eq!(mask.warning(), None);
    }

    #[test]
    fn channels_compare_without_case_and_never_match_in_private() {
        let s = Selector::parse("#Hamper").expect("channel");
        let who = Source::nick("x");
        let none = BTreeMap::new();
        assert_eq!(
            s.matches(&who, Some("#hamper"), &none, RFC),
            Some(Strength::Strong)
        );
        assert_eq!(s.matches(&who, Some("#other"), &none, RFC), None);
        assert_eq!(s.matches(&who, None, &none, RFC), None);
    }
}
