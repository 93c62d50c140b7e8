//! Parsing and building single IRC lines.
//!
//! Parsing follows the ircdocs rules (tags with escapes, a source, the verb, space-separated
//! parameters of which a `:`-prefixed last one may hold spaces) and is checked against the
//! ircdocs parser-test vectors. It never panics on hostile input: a line it cannot make sense of
//! is `None`. Building refuses CR, LF and NUL, so no parameter can smuggle in a second command.

use std::collections::BTreeMap;

/// One parsed IRC line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IrcMessage {
    /// Message tags (IRCv3), unescaped; a tag without value maps to "".
    pub tags: BTreeMap<String, String>,
    /// The source, without its leading colon.
    pub source: Option<String>,
    /// The verb (command or numeric), as sent.
    pub verb: String,
    /// The parameters, the trailing one included.
    pub params: Vec<String>,
}

impl IrcMessage {
    /// The nick part of the source (`nick` of `nick!user@host`).
    pub fn source_nick(&self) -> Option<&str> {
        self.source.as_deref().map(|s| split_source(s).0)
    }

    /// Parameter `i`, or "".
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

/// Splits `nick!user@host` into its parts.
pub fn split_source(source: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, host) = match source.split_once('@') {
        Some((r, h)) => (r, Some(h)),
        None => (source, None),
    };
    let (nick, user) = match rest.split_once('!') {
        Some((n, u)) => (n, Some(u)),
        None => (rest, None),
    };
    (nick, user, host)
}

fn unescape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Parses one line (without its line ending). Returns `None` for a line with no verb.
pub fn parse(line: &str) -> Option<IrcMessage> {
    let mut rest = line.trim_end_matches(['\r', '\n']).trim_start_matches(' ');
    let mut msg = IrcMessage::default();
    if let Some(after) = rest.strip_prefix('@') {
        let (tags, tail) = after.split_once(' ').unwrap_or((after, ""));
        for tag in tags.split(';').filter(|t| !t.is_empty()) {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            msg.tags.insert(key.to_string(), unescape_tag(value));
        }
        rest = tail.trim_start_matches(' ');
    }
    if let Some(after) = rest.strip_prefix(':') {
        let (source, tail) = after.split_once(' ').unwrap_or((after, ""));
        msg.source = Some(source.to_string());
        rest = tail.trim_start_matches(' ');
    }
    let (verb, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    if verb.is_empty() {
        return None;
    }
    msg.verb = verb.to_string();
    rest = tail;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            msg.params.push(trailing.to_string());
            break;
        }
        let (param, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        msg.params.push(param.to_string());
        rest = tail;
    }
    Some(msg)
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
}

/// Builds `VERB p1 p2 :last` (no line ending). The last parameter is given a `:` when it needs
/// one (it is empty, holds a space, or starts with `:`).
pub fn build(verb: &str, params: &[&str]) -> Result<String, BuildError> {
    let mut line = String::from(verb);
    if verb.contains(['\r', '\n', '\0']) {
        return Err(BuildError::LineBreak);
    }
    for (i, p) in params.iter().enumerate() {
        if p.contains(['\r', '\n', '\0']) {
            return Err(BuildError::LineBreak);
        }
        let last = i + 1 == params.len();
        line.push(' ');
        if last && (p.is_empty() || p.contains(' ') || p.starts_with(':')) {
            line.push(':');
        } else if p.is_empty() || p.contains(' ') || p.starts_with(':') {
            return Err(BuildError::BadMiddle(i));
        }
        line.push_str(p);
    }
    Ok(line)
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
        assert_eq!(
            build("PRIVMSG", &["#c", "a\r\nQUIT"]),
            Err(BuildError::LineBreak)
        );
        assert_eq!(build("JOIN", &["#a b", "k"]), Err(BuildError::BadMiddle(0)));
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
        ] {
            let _ = parse(line);
        }
        assert_eq!(parse(":src"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn source_split() {
        assert_eq!(
            split_source("nick!user@host"),
            ("nick", Some("user"), Some("host"))
        );
        assert_eq!(
            split_source("irc.example.org"),
            ("irc.example.org", None, None)
        );
        assert_eq!(split_source("nick@host"), ("nick", None, Some("host")));
    }
}
