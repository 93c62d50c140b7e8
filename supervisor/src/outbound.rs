//! The choke point every outgoing text passes, whatever the frontend.
//!
//! A plugin (or a user whose words a plugin echoes) must never be able to start a new IRC
//! command: CR, LF and NUL end a line on the wire. Text is therefore split on them into separate
//! lines, each sent as its own message, with a cap on how many one action may produce. CTCP's
//! `\x01` is removed too, so echoed text cannot forge a CTCP request. The IRC frontend then splits
//! each line again at the 512-byte limit ([`crate::irc::outbound`]).

/// The default cap on lines produced by one action.
pub const DEFAULT_MAX_LINES: usize = 10;

/// The lines of one text, at most `max_lines`, and how many more were dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lines {
    /// The lines to send, none empty, none holding CR, LF, NUL or `\x01`.
    pub lines: Vec<String>,
    /// Non-empty lines that were over the cap and not sent.
    pub dropped: usize,
}

/// Splits `text` into sendable lines.
pub fn split_text(text: &str, max_lines: usize) -> Lines {
    let mut out = Lines::default();
    for piece in text.split(['\r', '\n', '\0']) {
        let line: String = piece.chars().filter(|c| *c != '\u{1}').collect();
        if line.trim().is_empty() {
            continue;
        }
        if out.lines.len() < max_lines {
            out.lines.push(line);
        } else {
            out.dropped += 1;
        }
    }
    out
}

/// Whether `s` may go on the wire as (part of) one line.
pub fn is_single_line(s: &str) -> bool {
    !s.contains(['\r', '\n', '\0'])
}

/// Removes CR, LF and NUL, for one-word parameters such as channel names and keys.
pub fn strip_line_breaks(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_table() {
        let cases: &[(&str, usize, &[&str], usize)] = &[
            ("hello", 10, &["hello"], 0),
            ("a\nb", 10, &["a", "b"], 0),
            ("a\r\nb\rc\0d", 10, &["a", "b", "c", "d"], 0),
            ("a\n\n  \nb", 10, &["a", "b"], 0),
            ("x\r\nQUIT :pwned", 10, &["x", "QUIT :pwned"], 0),
            ("1\n2\n3\n4", 2, &["1", "2"], 2),
            ("\u{1}ACTION waves\u{1}", 10, &["ACTION waves"], 0),
            ("", 10, &[], 0),
            ("\n\r\0", 10, &[], 0),
            (
                "bold \u{2}b\u{2} reset\u{f}",
                10,
                &["bold \u{2}b\u{2} reset\u{f}"],
                0,
            ),
        ];
        for (text, max, lines, dropped) in cases {
            let got = split_text(text, *max);
            assert_eq!(got.lines, *lines, "text {text:?}");
            assert_eq!(got.dropped, *dropped, "text {text:?}");
            assert!(got.lines.iter().all(|l| is_single_line(l)));
        }
    }

    #[test]
    fn strip_line_breaks_removes_only_breaks() {
        assert_eq!(strip_line_breaks("#a\r\nb\0c"), "#abc");
    }
}
