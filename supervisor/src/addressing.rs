//! Message addressing, exactly as the original Hamper did it (reference §1.5), with hamper's
//! deviation that a private message is always addressed (§6.1) and a configurable command prefix.
//!
//! Plugins rely on these facts (`directed`, `target`, the processed `message`) to decide whether a
//! line is meant for the bot, so they are computed once here and sent with every event.

use std::sync::OnceLock;

use hamper_protocol::CaseMapping;
use regex::Regex;

/// What addressing made of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    /// The text with the bot's addressing removed; `bob: rest` when addressed to someone else.
    pub message: String,
    /// Whether the line is addressed to the bot.
    pub directed: bool,
    /// The nick before `: ` or `, `, if any.
    pub target: Option<String>,
}

fn target_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Invariant: a constant pattern, checked by every test in this module.
        #[allow(clippy::expect_used)]
        Regex::new(r"(?is)^(?:([a-z_\-\[\]\\^{}|`][a-z0-9_\-\[\]\\^{}|`]*)[:,] )? *(.*)$")
            .expect("addressing regex compiles")
    })
}

/// Works out whether `text` is addressed to `bot_nick`, as the original Hamper did; nicks
/// compare under the server's `mapping`.
pub fn address(
    text: &str,
    bot_nick: &str,
    mapping: CaseMapping,
    command_prefix: &str,
    private: bool,
) -> Addressed {
    let (target, rest) = match target_regex().captures(text) {
        Some(caps) => (
            caps.get(1).map(|m| m.as_str().to_string()),
            caps.get(2).map_or("", |m| m.as_str()),
        ),
        None => (None, text),
    };
    let (mut message, mut directed) = match &target {
        Some(t) if mapping.same(t, bot_nick) => (rest.to_string(), true),
        Some(t) => (format!("{t}: {rest}"), false),
        None => (rest.to_string(), private),
    };
    let addressed_to_other = target
        .as_deref()
        .is_some_and(|t| !mapping.same(t, bot_nick));
    if !command_prefix.is_empty() && !addressed_to_other {
        if let Some(stripped) = message.strip_prefix(command_prefix) {
            message = stripped.to_string();
            directed = true;
        }
    }
    // A private message is always for the bot (§6.1), even when it starts `bob: `.
    directed |= private;
    if directed {
        message.truncate(message.trim_end().len());
    }
    Addressed {
        message,
        directed,
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_table() {
        // (raw, private, target, message, directed) from reference §1.5 and §6.1.
        let cases: &[(&str, bool, Option<&str>, &str, bool)] = &[
            ("hamper: hi", false, Some("hamper"), "hi", true),
            ("hamper, hi", false, Some("hamper"), "hi", true),
            ("HAMPER:   hi", false, Some("HAMPER"), "hi", true),
            ("hamper:hi", false, None, "hamper:hi", false),
            ("bob, hi", false, Some("bob"), "bob: hi", false),
            ("!hi  ", false, None, "hi", true),
            ("  !hi", false, None, "hi", true),
            ("hamper: !hi", false, Some("hamper"), "hi", true),
            ("bob: !hi", false, Some("bob"), "bob: !hi", false),
            ("1bob: hi", false, None, "1bob: hi", false),
            ("hamper: ", false, Some("hamper"), "", true),
            ("hi", true, None, "hi", true),
            ("!hi", true, None, "hi", true),
            ("hamper: hi", true, Some("hamper"), "hi", true),
            ("bob: hi", true, Some("bob"), "bob: hi", true),
            ("foo++ bar", false, None, "foo++ bar", false),
            ("  leading spaces  ", false, None, "leading spaces  ", false),
            ("[m]bob: yo", false, Some("[m]bob"), "[m]bob: yo", false),
            ("", false, None, "", false),
        ];
        for (raw, private, target, message, directed) in cases {
            let got = address(raw, "hamper", CaseMapping::Rfc1459, "!", *private);
            assert_eq!(
                got,
                Addressed {
                    message: message.to_string(),
                    directed: *directed,
                    target: target.map(str::to_string)
                },
                "input {raw:?} private={private}"
            );
        }
    }

    #[test]
    fn a_configured_prefix_replaces_the_bang() {
        assert_eq!(
            address(".karma bob", "hamper", CaseMapping::Rfc1459, ".", false).message,
            "karma bob"
        );
        assert!(address(".karma", "hamper", CaseMapping::Rfc1459, ".", false).directed);
        let bang = address("!karma", "hamper", CaseMapping::Rfc1459, ".", false);
        assert!(!bang.directed);
        assert_eq!(bang.message, "!karma");
        let multi = address("~~help", "hamper", CaseMapping::Rfc1459, "~~", false);
        assert_eq!((multi.message.as_str(), multi.directed), ("help", true));
    }

    #[test]
    fn control_characters_do_not_break_matching() {
        let got = address(
            "hamper: a\u{1}b\u{0}",
            "hamper",
            CaseMapping::Rfc1459,
            "!",
            false,
        );
        assert!(got.directed);
        assert_eq!(got.message, "a\u{1}b\u{0}");
    }
}
