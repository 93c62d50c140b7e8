//! Parsing and building single IRC lines, in the vocabulary of the `irc-proto` crate.
//!
//! A line parses into irc-proto's [`Message`]: its tags, a [`Prefix`] and a typed [`Command`]
//! (numerics as a [`Response`]), so the connection matches on commands instead of verb strings.
//! irc-proto was tried against the ircdocs parser-test vectors before it was adopted (the
//! evidence is in `docs/architecture.md`); this module adds the guarantees it leaves out:
//!
//! - a line without a verb (`:src` alone, `@tags` alone) is `None`, not an empty command, and
//!   an extra space before the verb (which irc-proto reads as an empty verb) is tolerated;
//! - building refuses CR, LF and NUL, which irc-proto's `Display` would write as they are;
//! - building refuses a command whose line does not parse back to the same command, which is
//!   how a middle parameter holding a space (that `Display` would silently turn into two
//!   parameters) or an empty one is caught.
//!
//! Parsing never panics on hostile input; the tests below and the conformance test hold it to
//! that, and the line codec ([`super::codec`]) has already bounded the length.

pub use irc_proto::{CapSubCommand, Command, Message, Prefix, Response};

/// Parses one line (without its line ending). `None` for a line with no verb.
pub fn parse(line: &str) -> Option<Message> {
    let mut msg: Message = line.parse().ok()?;
    if let Command::Raw(verb, args) = &msg.command {
        if verb.is_empty() {
            let (verb, params) = args.split_first()?;
            let params = params.iter().map(String::as_str).collect();
            msg.command = Command::new(verb, params).ok()?;
        }
    }
    Some(msg)
}

/// The value of the tag `key`, unescaped; "" for a tag sent without a value.
pub fn tag<'a>(msg: &'a Message, key: &str) -> Option<&'a str> {
    msg.tags
        .as_deref()?
        .iter()
        .find(|t| t.0 == key)
        .map(|t| t.1.as_deref().unwrap_or(""))
}

/// The nick (or server name), user and host of a source.
pub fn source_parts(prefix: &Prefix) -> (&str, Option<&str>, Option<&str>) {
    fn non_empty(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    match prefix {
        Prefix::ServerName(name) => (name, None, None),
        Prefix::Nickname(nick, user, host) => (nick, non_empty(user), non_empty(host)),
    }
}

/// Why a line could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A part holds CR, LF or NUL.
    #[error("a parameter holds CR, LF or NUL")]
    LineBreak,
    /// A middle parameter is empty, holds a space or starts with ':'.
    #[error("parameter {0} must be one word not starting with ':'")]
    BadMiddle(usize),
    /// The line would not read back as the command it was built from.
    #[error("the line would not read back as the same command")]
    Malformed,
}

/// Builds `VERB p1 p2 :last` (no line ending) through irc-proto's [`Command`]. The last
/// parameter is given a `:` when it needs one (it is empty, holds a space, or starts with `:`).
pub fn build(verb: &str, params: &[&str]) -> Result<String, BuildError> {
    if verb.contains(['\r', '\n', '\0']) {
        return Err(BuildError::LineBreak);
    }
    for (i, p) in params.iter().enumerate() {
        if p.contains(['\r', '\n', '\0']) {
            return Err(BuildError::LineBreak);
        }
        let last = i + 1 == params.len();
        if !last && (p.is_empty() || p.contains(' ') || p.starts_with(':')) {
            return Err(BuildError::BadMiddle(i));
        }
    }
    let command = Command::new(verb, params.to_vec()).map_err(|_| BuildError::Malformed)?;
    let line = render(&command)?;
    // irc-proto 1.1 turns an `ISON` into a `USERHOST`: a line must keep the verb it was asked for.
    match line.split(' ').next() {
        Some(built) if built.eq_ignore_ascii_case(verb) => Ok(line),
        _ => Err(BuildError::Malformed),
    }
}

/// The line (no line ending) for `command`, refused unless it is one line that reads back as
/// `command` itself.
pub fn render(command: &Command) -> Result<String, BuildError> {
    let line = String::from(command);
    if line.contains(['\r', '\n', '\0']) {
        return Err(BuildError::LineBreak);
    }
    // irc-proto 1.1 reads `ISON` back as `USERHOST` (a slip in its `Command::new`).
    let expected = match command {
        Command::ISON(nicks) => Command::USERHOST(nicks.clone()),
        other => other.clone(),
    };
    match parse(&line) {
        Some(back) if back.command == expected => Ok(line),
        _ => Err(BuildError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_safely() {
        assert_eq!(
            build("PRIVMSG", &["#c", "hi there"]).as_deref(),
            Ok("PRIVMSG #c :hi there")
        );
        assert_eq!(
            build("PRIVMSG", &["#c", "hi"]).as_deref(),
            Ok("PRIVMSG #c hi")
        );
        assert_eq!(
            build("PRIVMSG", &["#c", ":)"]).as_deref(),
            Ok("PRIVMSG #c ::)")
        );
        assert_eq!(build("AWAY", &[""]).as_deref(), Ok("AWAY :"));
        assert_eq!(build("JOIN", &["#c", "key"]).as_deref(), Ok("JOIN #c key"));
        assert_eq!(
            build("PRIVMSG", &["#c", "a\r\nQUIT"]),
            Err(BuildError::LineBreak)
        );
        assert_eq!(build("JOIN", &["#a b", "k"]), Err(BuildError::BadMiddle(0)));
        // irc-proto makes a USERHOST of it; sending another command than asked is refused.
        assert_eq!(build("ISON", &["a"]), Err(BuildError::Malformed));
    }

    #[test]
    fn typed_commands_render_as_one_parameter_each_or_not_at_all() {
        assert_eq!(
            render(&Command::PASS("two words".into())).as_deref(),
            Ok("PASS :two words")
        );
        assert_eq!(
            render(&Command::USER(
                "hb".into(),
                "0".into(),
                "hamper IRC bot".into()
            ))
            .as_deref(),
            Ok("USER hb 0 * :hamper IRC bot")
        );
        assert_eq!(
            render(&Command::PRIVMSG("#c".into(), "x\r\nQUIT :bye".into())),
            Err(BuildError::LineBreak)
        );
        assert_eq!(
            render(&Command::PRIVMSG("#c".into(), "nul\0".into())),
            Err(BuildError::LineBreak)
        );
        assert_eq!(
            render(&Command::ISON(vec!["a".into(), "b".into()])).as_deref(),
            Ok("ISON a b")
        );
        // irc-proto's Display would write `ISON a b c`: three nicks where two were meant.
        assert_eq!(
            render(&Command::ISON(vec!["a b".into(), "c".into()])),
            Err(BuildError::Malformed)
        );
        assert_eq!(
            render(&Command::Raw(
                "PRIVMSG".into(),
                vec!["a b".into(), "x".into()]
            )),
            Err(BuildError::Malformed)
        );
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        for line in [
            "",
            " ",
            ":",
            "@",
            "@ :",
            ":src",
            "@a=\\",
            ":\u{0} \u{0}",
            "\u{1}\u{1}",
            "é :é",
            "CAP",
            "CAP * LS * *",
            "MODE #c +kkkkk",
            "MODE #c +-+-+-",
            "JOIN :",
            ":s 001",
        ] {
            let _ = parse(line);
        }
        assert_eq!(parse(":src"), None);
        for spaced in [":n!u@h  PRIVMSG #c :hi there", "  PRIVMSG #c :hi there"] {
            assert_eq!(
                parse(spaced).map(|m| m.command),
                Some(Command::PRIVMSG("#c".into(), "hi there".into())),
                "{spaced:?}"
            );
        }
        assert_eq!(parse(""), None);
        assert_eq!(parse("@a=b"), None);
    }

    #[test]
    fn tags_and_source() {
        let msg = parse("@time=2024-01-02T03:04:05.678Z;account=bob;flag :n!u@h PRIVMSG #c :hi")
            .expect("parses");
        assert_eq!(tag(&msg, "time"), Some("2024-01-02T03:04:05.678Z"));
        assert_eq!(tag(&msg, "account"), Some("bob"));
        assert_eq!(tag(&msg, "flag"), Some(""));
        assert_eq!(tag(&msg, "missing"), None);
        let prefix = msg.prefix.as_ref().expect("a source");
        assert_eq!(source_parts(prefix), ("n", Some("u"), Some("h")));
        assert_eq!(
            source_parts(&Prefix::new_from_str("irc.example.org")),
            ("irc.example.org", None, None)
        );
        assert_eq!(msg.command, Command::PRIVMSG("#c".into(), "hi".into()));
    }
}
