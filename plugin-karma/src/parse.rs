//! Finding karma changes in a chat line, exactly as the original Hamper did (reference §2.1).
//!
//! The original lowercases the line and runs `re.findall` with three alternatives tried in order
//! at each position:
//!
//! - A: `(?=\()[^\)]+\)(\+\++|--+)`, a parenthesised group ending in 2+ `+` or 2+ `-`;
//! - B: `^[^\s]+(\+\++|--+)`, at the start of the line, with nothing required after it;
//! - C: `[^\s]+?(\+\++|--+)((?=\s)|(?=$))`, followed by whitespace or the end of the line.
//!
//! The `regex` crate has no lookahead, so each alternative is matched here by hand, following the
//! backtracking the Python engine does. Every significant character (`(`, `)`, `+`, `-` and the
//! whitespace below) is ASCII, so the scan works on bytes and every index it stops at is a char
//! boundary. The original ran on Python 2 byte strings, so `\s` and `strip()` mean ASCII
//! whitespace only; a non-breaking space is part of a name, as it was.

/// The net karma change for one name in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The lowercased name.
    pub name: String,
    /// The sum of every `++` (+1) and `--` (−1) for this name in the line; may be 0.
    pub delta: i64,
}

/// Whitespace as Python 2's `re` (without `re.UNICODE`) and `str.strip()` see it.
pub fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn is_space_byte(b: u8) -> bool {
    is_space(char::from(b))
}

/// Parses one chat line into net changes per name, in order of first appearance.
///
/// This is steps 1 to 3 of §2.1: strip, lowercase, find every match, and fold each match into
/// `name → delta`. Every occurrence counts, and a name whose changes cancel out is still listed
/// with delta 0, because the original still touched its row.
pub fn parse_karma(line: &str) -> Vec<Change> {
    let text = line.trim_matches(is_space).to_lowercase();
    let mut changes: Vec<Change> = Vec::new();
    for found in karma_matches(&text) {
        let Some((name, delta)) = name_and_delta(found) else {
            continue;
        };
        match changes.iter_mut().find(|c| c.name == name) {
            Some(change) => change.delta += delta,
            None => changes.push(Change {
                name: name.to_string(),
                delta,
            }),
        }
    }
    changes
}

/// Every match of the original's regex in `text`, as `re.findall` returns them (whole matches).
///
/// `text` is taken as it is: [`parse_karma`] strips and lowercases it first.
pub fn karma_matches(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = match_parenthesised(bytes, at)
            .or_else(|| match_line_start(bytes, at))
            .or_else(|| match_followed_by_space(bytes, at));
        match end {
            Some(end) => {
                found.push(&text[at..end]);
                at = end;
            }
            None => at += text[at..].chars().next().map_or(1, char::len_utf8),
        }
    }
    found
}

/// Turns one match into its name and change, or `None` when nothing is left of the name.
fn name_and_delta(found: &str) -> Option<(&str, i64)> {
    let (delta, rest) = if found.ends_with('-') {
        (-1, found.trim_end_matches('-'))
    } else {
        (1, found.trim_end_matches('+'))
    };
    let rest = match rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) => inner,
        None => rest,
    };
    let name = rest.trim_matches(is_space);
    (!name.is_empty()).then_some((name, delta))
}

/// The end of a run of two or more `+` (or two or more `-`) starting at `at`, taken greedily.
fn sign_run(bytes: &[u8], at: usize) -> Option<usize> {
    let sign = *bytes.get(at)?;
    if !matches!(sign, b'+' | b'-') || bytes.get(at + 1) != Some(&sign) {
        return None;
    }
    let len = bytes[at..].iter().take_while(|&&b| b == sign).count();
    Some(at + len)
}

/// The end of the run of non-whitespace starting at `at`.
fn word_end(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..]
        .iter()
        .take_while(|&&b| !is_space_byte(b))
        .count()
}

/// Alternative A, `(?=\()[^\)]+\)(\+\++|--+)`.
///
/// `[^\)]+` can only stop at the first `)` (the `(` itself satisfies the `+`), and giving back
/// characters cannot help because none of them is a `)`. Nothing is required after the signs.
fn match_parenthesised(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes[at] != b'(' {
        return None;
    }
    let close = at + bytes[at..].iter().position(|&b| b == b')')?;
    sign_run(bytes, close + 1)
}

/// Alternative B, `^[^\s]+(\+\++|--+)`, which can only match at the start of the line.
///
/// The greedy `[^\s]+` takes the whole first word and gives characters back one at a time, so
/// the match ends at the sign run that starts furthest right in that word (after at least one
/// character). Nothing is required after the signs.
fn match_line_start(bytes: &[u8], at: usize) -> Option<usize> {
    if at != 0 {
        return None;
    }
    let end = word_end(bytes, 0);
    (1..end).rev().find_map(|start| sign_run(bytes, start))
}

/// Alternative C, `[^\s]+?(\+\++|--+)((?=\s)|(?=$))`.
///
/// A sign run inside a word is followed by a non-space character, so the lookahead only holds
/// for a run that ends the word; shorter greedy runs are followed by another sign and fail too.
/// The lazy `[^\s]+?` tries the earliest start first, but any success ends at the end of the word.
fn match_followed_by_space(bytes: &[u8], at: usize) -> Option<usize> {
    let end = word_end(bytes, at);
    (at + 1..end)
        .any(|start| sign_run(bytes, start) == Some(end))
        .then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(line: &str) -> Vec<(String, i64)> {
        parse_karma(line)
            .into_iter()
            .map(|c| (c.name, c.delta))
            .collect()
    }

    /// Every row of the verified parse table in reference §2.1, one input per case.
    #[test]
    fn reference_parse_table() {
        let cases: &[(&str, &[(&str, i64)])] = &[
            ("foo++", &[("foo", 1)]),
            ("foo+++", &[("foo", 1)]),
            ("Foo++", &[("foo", 1)]),
            ("foo--", &[("foo", -1)]),
            ("foo---", &[("foo", -1)]),
            ("(foo bar)++", &[("foo bar", 1)]),
            ("i like (foo bar)++ a lot", &[("foo bar", 1)]),
            ("say (a b)++.", &[("a b", 1)]),
            ("c++ is great", &[("c", 1)]),
            ("great c++", &[("c", 1)]),
            ("foo++, bar++", &[("foo", 1), ("bar", 1)]),
            ("foo++.", &[("foo", 1)]),
            ("foo++bar", &[("foo", 1)]),
            ("say foo++.", &[]),
            ("say foo++bar", &[]),
            ("say foo++!", &[]),
            ("bar ++", &[]),
            ("++", &[]),
            ("--foo", &[]),
            ("foo --", &[]),
            ("foo+-", &[]),
            ("a++b++", &[("a++b", 1)]),
            ("x+++--", &[("x+++", -1)]),
            ("x--++", &[("x--", 1)]),
            ("a.b++", &[("a.b", 1)]),
            ("http://x.com/a--b", &[("http://x.com/a", -1)]),
            ("(foo)++", &[("foo", 1)]),
            ("yay (a)(b)++", &[("a)(b", 1)]),
            ("((a b))++", &[("b))", 1)]),
            // `bob: foo++` reaches plugins with the target kept in the processed message.
            ("bob: foo++", &[("foo", 1)]),
        ];
        for (line, want) in cases {
            let want: Vec<(String, i64)> = want.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            assert_eq!(changes(line), want, "line {line:?}");
        }
    }

    #[test]
    fn more_lines() {
        let cases: &[(&str, &[(&str, i64)])] = &[
            // Each occurrence counts, and a net zero is still a change.
            ("foo++ foo++", &[("foo", 2)]),
            ("foo++ foo--", &[("foo", 0)]),
            ("FOO++ Foo++ foo--", &[("foo", 1)]),
            ("foo-- bar++ baz--", &[("foo", -1), ("bar", 1), ("baz", -1)]),
            ("i love c++ and c--", &[("c", 0)]),
            ("bar++ foo++ bar++", &[("bar", 2), ("foo", 1)]),
            // Whitespace around the line or inside parentheses is stripped.
            ("  foo++  ", &[("foo", 1)]),
            ("\tfoo++\t", &[("foo", 1)]),
            ("(  foo  )++", &[("foo", 1)]),
            ("(foo\tbar)--", &[("foo\tbar", -1)]),
            ("(foo  bar)++", &[("foo  bar", 1)]),
            // Nothing left of the name.
            ("+++", &[]),
            ("----", &[]),
            ("()++", &[]),
            ("( )++", &[]),
            // Two groups, with or without a space between.
            ("(a b)++ (c d)--", &[("a b", 1), ("c d", -1)]),
            ("(a b)++(c d)--", &[("a b", 1), ("c d", -1)]),
            ("x (a b ++", &[]),
            ("(a)++b++", &[("a", 1), ("b", 1)]),
            ("(a b)c++", &[("b)c", 1)]),
            ("(foo)bar++", &[("(foo)bar", 1)]),
            // B gives back to the rightmost sign run of the first word.
            ("a+++b", &[("a", 1)]),
            ("foo++bar++ baz", &[("foo++bar", 1)]),
            ("say foo++bar++", &[("foo++bar", 1)]),
            ("foo++ bar", &[("foo", 1)]),
            ("foo++bar baz++", &[("foo", 1), ("baz", 1)]),
            ("a+-++", &[("a+-", 1)]),
            // C needs whitespace or the end after the signs.
            ("say foo++ bar", &[("foo", 1)]),
            ("say foo++\tbar", &[("foo", 1)]),
            ("say foo++\u{a0}", &[]),
            ("say (foo bar)++!", &[("foo bar", 1)]),
            // Unicode names are lowercased and kept whole; a non-breaking space is not whitespace.
            ("Ünïcödé++", &[("ünïcödé", 1)]),
            ("say ÜBER--", &[("über", -1)]),
            ("\u{a0}foo++", &[("\u{a0}foo", 1)]),
            ("日本++ 語--", &[("日本", 1), ("語", -1)]),
            // IRC formatting codes are part of the name.
            ("\u{2}bold\u{2}++", &[("\u{2}bold\u{2}", 1)]),
            ("", &[]),
            ("nothing to see here", &[]),
            ("a ++ b -- c", &[]),
        ];
        for (line, want) in cases {
            let want: Vec<(String, i64)> = want.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            assert_eq!(changes(line), want, "line {line:?}");
        }
    }

    /// The raw `findall` results, for the lines where they differ from the names.
    #[test]
    fn matches_are_whole_findall_matches() {
        let cases: &[(&str, &[&str])] = &[
            ("foo++, bar++", &["foo++", "bar++"]),
            ("+++", &["+++"]),
            ("----", &["----"]),
            ("a+++b", &["a+++"]),
            ("i like (foo bar)++ a lot", &["(foo bar)++"]),
            ("((a b))++", &["b))++"]),
            ("yay (a)(b)++", &["(a)(b)++"]),
            ("http://x.com/a--b", &["http://x.com/a--"]),
            ("x+++--", &["x+++--"]),
            ("say foo++.", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(karma_matches(line), *want, "line {line:?}");
        }
    }
}
