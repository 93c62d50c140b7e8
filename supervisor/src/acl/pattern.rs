//! Permission patterns: `quote.add`, `quote.*`, `*`, and `-quote.add` to deny.
//!
//! A permission is dotted segments. A pattern's `*` stands for one segment; when the last
//! segment is `*`, the pattern also matches names with more or fewer segments (the original
//! compared the zipped segments only), so `quote.*` matches `quote`, `quote.add` and
//! `quote.a.b`. Otherwise the segment counts must be equal. Names compare case-sensitively, as
//! in the original.

use std::fmt;

use crate::identity::Invalid;

/// What a matching pattern says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The permission is granted (unless some deny matches too).
    Allow,
    /// The permission is denied, whatever else allows it.
    Deny,
}

/// One permission pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    deny: bool,
    segments: Vec<String>,
}

impl Pattern {
    /// Parses a pattern, refusing what could never match as meant (`foo*`, `a..b`, spaces).
    pub fn parse(text: &str) -> Result<Pattern, Invalid> {
        let (deny, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let invalid = |problem: String, fix: &str| {
            Err(Invalid {
                problem,
                fix: fix.to_string(),
            })
        };
        if body.is_empty() {
            return invalid(
                format!("`{text}` names no permission"),
                "write a dotted permission name such as `quote.add`, `quote.*` or `*`, with `-` before it to deny",
            );
        }
        if body.starts_with('-') {
            return invalid(
                format!("`{text}` starts with more than one `-`"),
                "one `-` before the name denies it: `-quote.add`",
            );
        }
        if body.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid(
                format!("`{}` holds spaces", text.escape_debug()),
                "a permission is dotted words without spaces, e.g. `quote.add`; list several as separate strings",
            );
        }
        let segments: Vec<String> = body.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return invalid(
                format!("`{text}` has an empty segment"),
                "separate segments with single dots and no dot at either end, e.g. `quote.add`",
            );
        }
        if let Some(i) = segments.iter().position(|s| s.contains('*') && s != "*") {
            let mut whole = segments[..i].to_vec();
            whole.extend([segments[i].replace('*', ""), "*".to_string()]);
            whole.retain(|s| !s.is_empty());
            return Err(Invalid {
                problem: format!("`{text}` has `*` inside the segment `{}`", segments[i]),
                fix: format!(
                    "`*` stands for a whole segment: write `{}{}`",
                    if deny { "-" } else { "" },
                    whole.join(".")
                ),
            });
        }
        Ok(Pattern { deny, segments })
    }

    /// Whether this is a deny (`-…`).
    pub fn is_deny(&self) -> bool {
        self.deny
    }

    /// What this pattern says about `permission`, or `None` if it does not match it.
    pub fn verdict(&self, permission: &str) -> Option<Verdict> {
        let names: Vec<&str> = permission.split('.').collect();
        let open_ended = self.segments.last().is_some_and(|s| s == "*");
        if names.len() != self.segments.len() && !open_ended {
            return None;
        }
        let all = names
            .iter()
            .zip(&self.segments)
            .all(|(name, pat)| pat == "*" || pat == name);
        match (all, self.deny) {
            (false, _) => None,
            (true, false) => Some(Verdict::Allow),
            (true, true) => Some(Verdict::Deny),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deny {
            f.write_str("-")?;
        }
        f.write_str(&self.segments.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original's `TestPermissionGlobbing`, every case (reference §4).
    #[test]
    fn globbing_table_from_the_original() {
        use Verdict::{Allow, Deny};
        let cases: &[(&str, &str, Option<Verdict>)] = &[
            ("foo", "foo", Some(Allow)),
            ("foo", "bar", None),
            ("foo.bar", "foo.bar", Some(Allow)),
            ("foo.bar", "foo.baz", None),
            ("foo", "foo.bar", None),
            ("foo.bar", "foo", None),
            ("foo.bar", "foo.*", Some(Allow)),
            ("foo.bar", "bar.*", None),
            ("foo.bar.baz", "foo.*.baz", Some(Allow)),
            ("foo.bar.baz", "foo.*.qux", None),
            ("foo.bar.baz", "foo.*", Some(Allow)),
            ("foo.bar.baz", "bar.*", None),
            ("foo", "-foo", Some(Deny)),
            ("foo.bar", "-foo.bar", Some(Deny)),
            ("foo", "-foo.bar", None),
        ];
        for (permission, pattern, want) in cases {
            let p = Pattern::parse(pattern).expect(pattern);
            assert_eq!(p.verdict(permission), *want, "{permission} ~ {pattern}");
        }
    }

    /// Reference §1.7: a trailing `*` matches more or fewer segments; `*` matches everything.
    #[test]
    fn a_trailing_star_is_open_ended() {
        let cases = [
            ("quote", "quote.*", true),
            ("quote.add", "quote.*", true),
            ("quote.a.b", "quote.*", true),
            ("quotes", "quote.*", false),
            ("anything", "*", true),
            ("any.thing.at.all", "*", true),
            ("admin.restart", "admin.*", true),
            ("a.b", "*.b", true),
            ("a.b.c", "*.b", false),
            ("Quote", "quote", false),
        ];
        for (permission, pattern, want) in cases {
            let p = Pattern::parse(pattern).expect(pattern);
            assert_eq!(
                p.verdict(permission).is_some(),
                want,
                "{permission} ~ {pattern}"
            );
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_a_fix() {
        let cases = [
            ("", "names no permission"),
            ("-", "names no permission"),
            ("quote*", "inside the segment"),
            ("quote.a*", "inside the segment"),
            ("quote..add", "empty segment"),
            (".quote", "empty segment"),
            ("quote.", "empty segment"),
            ("quote add", "spaces"),
            ("--quote", "more than one `-`"),
        ];
        for (text, problem) in cases {
            let e = Pattern::parse(text).expect_err(text);
            assert!(e.problem.contains(problem), "{text:?}: {e:?}");
            assert!(!e.fix.is_empty());
        }
        for (text, fix) in [("karma*", "`karma.*`"), ("-quote.a*", "`-quote.a.*`")] {
            let e = Pattern::parse(text).expect_err(text);
            assert!(e.fix.ends_with(fix), "{text}: {}", e.fix);
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["quote", "-quote.add", "*", "foo.*.baz"] {
            assert_eq!(Pattern::parse(text).expect(text).to_string(), text);
        }
    }
}
