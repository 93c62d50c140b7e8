//! The little of IRC the benchmark needs to read: a line's verb and a PRIVMSG's parts.
//!
//! Both sides use it: the scripted server reads what the bot says, and the floor reads what the
//! fake user says. It is deliberately not the bot's own parser, so that the benchmark does not
//! measure the bot with the bot's code.

/// The longest line either side accepts, in bytes. An IRC line is at most 512 bytes; the slack
/// only keeps a misbehaving peer from making a reader buffer without end.
pub const MAX_LINE: usize = 8 * 1024;

/// A PRIVMSG, borrowed from its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privmsg<'a> {
    /// The sender's nick, when the line has a prefix (lines from a client have none).
    pub nick: Option<&'a str>,
    /// The channel or nick it is sent to.
    pub target: &'a str,
    /// The text after ` :`.
    pub text: &'a str,
}

/// The prefix (without `:`) and the rest of a line.
fn split_prefix(line: &str) -> (Option<&str>, &str) {
    match line.strip_prefix(':') {
        Some(rest) => match rest.split_once(' ') {
            Some((prefix, rest)) => (Some(prefix), rest.trim_start_matches(' ')),
            None => (Some(rest), ""),
        },
        None => (None, line),
    }
}

/// The command of a line (`PRIVMSG`, `001`, `PING`), after any prefix.
pub fn verb(line: &str) -> &str {
    let (_, rest) = split_prefix(line);
    rest.split(' ').next().unwrap_or_default()
}

/// The parts of a `PRIVMSG target :text` line, or `None` for any other line.
pub fn privmsg(line: &str) -> Option<Privmsg<'_>> {
    let (prefix, rest) = split_prefix(line);
    let rest = rest.strip_prefix("PRIVMSG ")?;
    let (target, text) = rest.split_once(' ')?;
    let text = text.strip_prefix(':').unwrap_or(text);
    let nick = prefix.map(|p| p.split('!').next().unwrap_or(p));
    Some(Privmsg { nick, target, text })
}

/// The token of a `PING token` or `PING :token` line.
pub fn ping_token(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("PING ")?;
    Some(rest.strip_prefix(':').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts a line should give: sender nick, target, text.
    type Parts<'a> = Option<(Option<&'a str>, &'a str, &'a str)>;

    #[test]
    fn privmsg_parts() {
        let table: &[(&str, Parts)] = &[
            (
                "PRIVMSG #bench :foo has 1 point",
                Some((None, "#bench", "foo has 1 point")),
            ),
            (
                ":alice!a@h PRIVMSG #bench :!karma foo",
                Some((Some("alice"), "#bench", "!karma foo")),
            ),
            (
                ":alice PRIVMSG benchbot :s/a/b/ c",
                Some((Some("alice"), "benchbot", "s/a/b/ c")),
            ),
            ("PRIVMSG #bench word", Some((None, "#bench", "word"))),
            ("PRIVMSG #bench :", Some((None, "#bench", ""))),
            ("NOTICE #bench :hi", None),
            (":srv 001 benchbot :Welcome", None),
            ("PRIVMSG #bench", None),
        ];
        for (line, want) in table {
            let got = privmsg(line).map(|p| (p.nick, p.target, p.text));
            assert_eq!(got, *want, "{line}");
        }
    }

    #[test]
    fn verbs_and_pings() {
        assert_eq!(verb(":srv 001 benchbot :Welcome"), "001");
        assert_eq!(verb("JOIN #bench"), "JOIN");
        assert_eq!(verb(":only-a-prefix"), "");
        assert_eq!(ping_token("PING :keepalive"), Some("keepalive"));
        assert_eq!(ping_token("PING token"), Some("token"));
        assert_eq!(ping_token("PONG token"), None);
    }
}
