//! Turning the bot's [`Outbound`] commands into wire lines that fit.
//!
//! A server relays our PRIVMSG to others as `:nick!user@host PRIVMSG target :text\r\n`, and
//! the whole of that must fit in 512 bytes. Once the bot has seen its own prefix (the echo of
//! its JOIN, a `396` cloak or a `CHGHOST`) the budget uses it; before, it assumes the longest
//! usual user@host. Text over the budget is split into several messages at a space where one
//! is near, and never inside a UTF-8 character.

use super::message::{build, BuildError};
use crate::chat::Outbound;
use crate::outbound::strip_line_breaks;

/// The IRC line limit, CR LF included.
pub const MAX_LINE: usize = 512;
/// Room assumed for `!user@host` in our prefix as the server relays it.
const USERHOST_ROOM: usize = 1 + 10 + 1 + 63;
/// Pieces one line may be split into at most; the rest is dropped.
pub const MAX_PIECES: usize = 4;

/// The bot as others see it on the wire: `nick!user@host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// The nick the bot has now.
    pub nick: String,
    /// The user (ident) as the server shows it, once seen.
    pub user: Option<String>,
    /// The host as the server shows it, once seen.
    pub host: Option<String>,
}

impl Me {
    /// Known by nick only.
    pub fn new(nick: &str) -> Me {
        Me {
            nick: nick.to_string(),
            user: None,
            host: None,
        }
    }

    /// The bytes of `nick!user@host`: the real ones when known, else the longest usual.
    fn prefix_len(&self) -> usize {
        let userhost = match (&self.user, &self.host) {
            (Some(user), Some(host)) => 1 + user.len() + 1 + host.len(),
            _ => USERHOST_ROOM,
        };
        self.nick.len() + userhost
    }
}

/// The most text bytes that fit in one `verb target :text` relayed with our prefix.
pub fn text_budget(me: &Me, verb: &str, target: &str, extra: usize) -> usize {
    // ":" prefix " " verb " " target " :" text "\r\n"
    let overhead = 1 + me.prefix_len() + 1 + verb.len() + 1 + target.len() + 2 + 2;
    MAX_LINE.saturating_sub(overhead + extra).max(16)
}

/// Splits `text` into pieces of at most `max` bytes, preferring to break at a space in the
/// last quarter of a piece, never inside a character.
pub fn split_bytes(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(' ') {
            if space >= cut * 3 / 4 && space > 0 {
                cut = space;
            }
        }
        out.push(&rest[..cut]);
        rest = rest[cut..].strip_prefix(' ').unwrap_or(&rest[cut..]);
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The wire lines for one outbound command.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Lines without CR LF, in order.
    pub lines: Vec<String>,
    /// Pieces of a long text beyond [`MAX_PIECES`] that were not sent.
    pub cut: usize,
}

/// The wire lines (without CR LF) for one outbound command, or none if it is not for the wire.
pub fn render(out: &Outbound, me: &Me) -> Result<Rendered, BuildError> {
    let mut cut = 0;
    let lines = render_lines(out, me, &mut cut)?;
    Ok(Rendered { lines, cut })
}

fn render_lines(out: &Outbound, me: &Me, cut: &mut usize) -> Result<Vec<String>, BuildError> {
    let mut text_lines = |verb: &str, target: &str, text: &str, wrap: Option<(&str, &str)>| {
        let extra = wrap.map_or(0, |(a, b)| a.len() + b.len());
        let budget = text_budget(me, verb, target, extra);
        let pieces = split_bytes(text, budget);
        *cut += pieces.len().saturating_sub(MAX_PIECES);
        pieces
            .into_iter()
            .take(MAX_PIECES)
            .map(|piece| {
                let body = match wrap {
                    Some((a, b)) => format!("{a}{piece}{b}"),
                    None => piece.to_string(),
                };
                build(verb, &[target, &body])
            })
            .collect::<Result<Vec<_>, _>>()
    };
    match out {
        Outbound::Privmsg { target, text } => text_lines("PRIVMSG", target, text, None),
        Outbound::Action { target, text } => {
            text_lines("PRIVMSG", target, text, Some(("\u{1}ACTION ", "\u{1}")))
        }
        Outbound::Notice { target, text } => text_lines("NOTICE", target, text, None),
        Outbound::Join { channel, key } => {
            let channel = strip_line_breaks(channel);
            match key {
                Some(k) => Ok(vec![build("JOIN", &[&channel, &strip_line_breaks(k)])?]),
                None => Ok(vec![build("JOIN", &[&channel])?]),
            }
        }
        Outbound::Part { channel, reason } => {
            let channel = strip_line_breaks(channel);
            match reason {
                Some(r) => Ok(vec![build("PART", &[&channel, &strip_line_breaks(r)])?]),
                None => Ok(vec![build("PART", &[&channel])?]),
            }
        }
        Outbound::Raw(line) => {
            if line.contains(['\r', '\n', '\0']) {
                Err(BuildError::LineBreak)
            } else {
                Ok(vec![line.clone()])
            }
        }
        Outbound::Flush(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_split_within_512_bytes_and_on_char_boundaries() {
        let nick = "hamper";
        for text in [
            "word ".repeat(300),
            "é".repeat(700),
            "x".repeat(1500),
            "日本語".repeat(200),
        ] {
            let lines = render(
                &Outbound::Privmsg {
                    target: "#channel".into(),
                    text: text.clone(),
                },
                &Me::new(nick),
            )
            .expect("render")
            .lines;
            assert!(
                lines.len() > 1 && lines.len() <= MAX_PIECES,
                "{} pieces",
                lines.len()
            );
            for line in &lines {
                let relayed = format!(":{nick}!{}@{} {line}\r\n", "u".repeat(10), "h".repeat(63));
                assert!(relayed.len() <= MAX_LINE, "{} bytes", relayed.len());
                assert!(!line.contains(['\r', '\n']));
            }
        }
    }

    #[test]
    fn the_real_prefix_once_known_gives_the_budget() {
        let text = "y".repeat(470);
        let say = Outbound::Privmsg {
            target: "#c".into(),
            text: text.clone(),
        };
        let mut me = Me::new("hb");
        assert_eq!(render(&say, &me).expect("render").lines.len(), 2);
        me.user = Some("u".into());
        me.host = Some("h".into());
        let lines = render(&say, &me).expect("render").lines;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with(&text), "{lines:?}");
        let relayed = format!(":hb!u@h {}\r\n", lines[0]);
        assert!(relayed.len() <= MAX_LINE, "{}", relayed.len());
        // One byte more than fits with the real prefix is split again.
        let fits = MAX_LINE - ":hb!u@h PRIVMSG #c :\r\n".len();
        let exact = Outbound::Privmsg {
            target: "#c".into(),
            text: "z".repeat(fits),
        };
        assert_eq!(render(&exact, &me).expect("render").lines.len(), 1);
        let over = Outbound::Privmsg {
            target: "#c".into(),
            text: "z".repeat(fits + 1),
        };
        assert_eq!(render(&over, &me).expect("render").lines.len(), 2);
    }

    #[test]
    fn text_beyond_the_piece_cap_is_counted() {
        let r = render(
            &Outbound::Privmsg {
                target: "#c".into(),
                text: "z".repeat(400 * (MAX_PIECES + 3)),
            },
            &Me::new("hamper"),
        )
        .expect("render");
        assert_eq!(r.lines.len(), MAX_PIECES);
        assert!(r.cut >= 3, "{}", r.cut);
    }

    #[test]
    fn split_prefers_spaces() {
        assert_eq!(split_bytes("aaaa bbbb cccc", 9), ["aaaa bbbb", "cccc"]);
        assert_eq!(split_bytes("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(split_bytes("", 3), Vec::<&str>::new());
        assert_eq!(split_bytes("ééé", 3), ["é", "é", "é"]);
    }

    #[test]
    fn actions_are_wrapped_in_ctcp() {
        let lines = render(
            &Outbound::Action {
                target: "#c".into(),
                text: "waves".into(),
            },
            &Me::new("hamper"),
        )
        .expect("render")
        .lines;
        assert_eq!(lines, ["PRIVMSG #c :\u{1}ACTION waves\u{1}"]);
    }

    #[test]
    fn injection_attempts_never_make_a_second_line() {
        let sneaky = [
            Outbound::Raw("PRIVMSG #c :x\r\nQUIT".into()),
            Outbound::Privmsg {
                target: "#c".into(),
                text: "x\r\nQUIT :bye".into(),
            },
        ];
        for out in &sneaky {
            match render(out, &Me::new("hamper")) {
                Ok(r) => assert!(r.lines.iter().all(|l| !l.contains(['\r', '\n']))),
                Err(e) => assert_eq!(e, BuildError::LineBreak),
            }
        }
        let join = render(
            &Outbound::Join {
                channel: "#c\r\nQUIT".into(),
                key: None,
            },
            &Me::new("hamper"),
        )
        .expect("render")
        .lines;
        assert_eq!(join, ["JOIN #cQUIT"]);
    }
}
