//! Hostmask matching (`nick!user@host` against `*!*@example.org`), for owners and the ACL.
//!
//! Matching is case-insensitive under RFC 1459 casemapping, where `[]\~` are the upper case of
//! `{}|^`. `*` matches any run of characters and `?` exactly one; `\` escapes the next one.
//! Nicks, accounts and channels are compared under the same casemapping ([`same`]).

fn fold(c: char) -> char {
    match c {
        '[' => '{',
        ']' => '}',
        '\\' => '|',
        '~' => '^',
        c => c.to_ascii_lowercase(),
    }
}

/// Whether two nicks, accounts or channel names are the same under RFC 1459 casemapping.
pub fn same(a: &str, b: &str) -> bool {
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// Whether `mask` matches `text`.
pub fn matches(mask: &str, text: &str) -> bool {
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
            assert_eq!(matches(mask, text), want, "{mask} ~ {text}");
        }
    }

    #[test]
    fn same_folds_case_and_rfc1459_brackets() {
        assert!(same("Alice", "alice"));
        assert!(same("#Chan[1]", "#chan{1}"));
        assert!(same("a\\b~", "A|B^"));
        assert!(!same("alice", "alice_"));
        assert!(!same("alice", "alic"));
    }
}
