//! Hostmask matching (`nick!user@host` against `*!*@example.org`), for owners and the ACL.
//!
//! Matching is case-insensitive under the server's casemapping (RFC 1459's by default, where
//! `[]\~` are the upper case of `{}|^`). `*` matches any run of characters and `?` exactly one; `\` escapes the next one.

use hamper_protocol::CaseMapping;

/// Whether `mask` matches `text`, folding case as `mapping` says.
pub fn matches(mask: &str, text: &str, mapping: CaseMapping) -> bool {
    let fold = |c: char| mapping.fold_char(c);
    let mut pat: Vec<(char, bool)> = Vec::new();
    let mut chars = mask.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => pat.push((fold(next), true)),
                None => pat.push((fold('\\'), true)),
            },
            c => pat.push((if c == '*' || c == '?' { c } else { fold(c) }, false)),
        }
    }
    let text: Vec<char> = text.chars().map(fold).collect();
    // Iterative wildcard matching with backtracking to the last `*`: linear in practice.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(('*', false)) => {
                star = Some((p, t));
                p += 1;
            }
            Some(('?', false)) => {
                p += 1;
                t += 1;
            }
            Some((c, _)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|(c, escaped)| *c == '*' && !escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_table() {
        let cases = [
            ("*!*@example.org", "bob!u@example.org", true),
            ("*!*@example.org", "bob!u@evil.org", false),
            ("Bob!*@*", "bob!x@y", true),
            ("[a]!*@*", "{A}!x@y", true),
            ("b?b!*@*", "bob!x@y", true),
            ("b?b!*@*", "bb!x@y", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*", "", true),
            ("", "x", false),
        ];
        for (mask, text, want) in cases {
            assert_eq!(
                matches(mask, text, CaseMapping::Rfc1459),
                want,
                "{mask} ~ {text}"
            );
        }
    }

    #[test]
    fn the_servers_casemapping_decides_what_folds() {
        assert!(matches("[a]!*@*", "{A}!x@y", CaseMapping::Rfc1459));
        assert!(!matches("[a]!*@*", "{A}!x@y", CaseMapping::Ascii));
        assert!(matches("a~!*@*", "A^!x@y", CaseMapping::Rfc1459));
        assert!(!matches("a~!*@*", "A^!x@y", CaseMapping::Rfc1459Strict));
        assert!(matches("Bob!*@*", "bob!x@y", CaseMapping::Ascii));
    }
}
