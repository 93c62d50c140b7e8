//! Python `re.sub` replacement templates, expanded without the `regex` crate's `$` syntax.
//!
//! Users of the original bot wrote replacements the way Python 2's `re.sub` reads them: `\1`,
//! `\g<name>`, `\g<0>`, `\\` for a backslash, `\n` for a newline. The `regex` crate has its own
//! template language in which `$1` and `${name}` are group references, so handing it user text
//! would turn a literal `$` into a reference. Instead the template is parsed here once, into
//! literal text and group indices checked against the compiled pattern, and expanded into a
//! [`BoundedText`] that stops growing at its limit, so that no replacement can make the plugin
//! build a huge string.

use regex::{Captures, Regex};

/// Why a replacement template was refused. Python raises the same errors for the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template ends with a single backslash.
    #[error("replacement ends with a lone backslash")]
    TrailingBackslash,
    /// `\g` is not followed by `<name>`, or the name is empty.
    #[error("`\\g` needs a group name in angle brackets")]
    MissingGroupName,
    /// `\g<` has no closing `>`.
    #[error("group name after `\\g<` is not closed with `>`")]
    UnterminatedGroupName,
    /// `\g<name>` names a group the pattern does not have.
    #[error("pattern has no group named `{0}`")]
    UnknownGroupName(String),
    /// `\N` or `\g<N>` refers to a group number the pattern does not have.
    #[error("pattern has no group {0}")]
    InvalidGroupReference(String),
}

/// One part of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

/// A parsed replacement template, ready to expand matches of one pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source` with Python 2.7's `re.sub` template rules, checking group references
    /// against `regex`.
    ///
    /// Backslash escapes: `\1` to `\99` and `\g<N>` are numbered groups (`\g<0>` is the whole
    /// match), `\g<name>` a named group, `\0`, `\0NN` and three-digit `\NNN` octal characters,
    /// `\a \b \f \n \r \t \v \\` the usual control characters and backslash. Any other escape,
    /// such as `\d` or `\$`, stays as written, backslash included. Everything else, `$` among
    /// it, is literal.
    pub fn parse(source: &str, regex: &Regex) -> Result<Template, TemplateError> {
        let mut builder = Builder::default();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\\' {
                builder.literal_char(c);
                continue;
            }
            let Some(escaped) = chars.next() else {
                return Err(TemplateError::TrailingBackslash);
            };
            match escaped {
                'g' => {
                    if chars.next_if_eq(&'<').is_none() {
                        return Err(TemplateError::MissingGroupName);
                    }
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(TemplateError::UnterminatedGroupName),
                            Some('>') => break,
                            Some(ch) => name.push(ch),
                        }
                    }
                    builder.group(resolve_group(&name, regex)?);
                }
                '0' => {
                    let mut value = 0u32;
                    for _ in 0..2 {
                        match chars.next_if(is_octal) {
                            Some(d) => value = value * 8 + digit(d),
                            None => break,
                        }
                    }
                    builder.literal_char(octal_char(value));
                }
                '1'..='9' => {
                    let mut number = escaped.to_string();
                    if let Some(second) = chars.next_if(char::is_ascii_digit) {
                        number.push(second);
                        if is_octal(&escaped) && is_octal(&second) {
                            if let Some(third) = chars.next_if(is_octal) {
                                let value = digit(escaped) * 64 + digit(second) * 8 + digit(third);
                                builder.literal_char(octal_char(value));
                                continue;
                            }
                        }
                    }
                    builder.group(numbered_group(&number, regex)?);
                }
                'a' => builder.literal_char('\x07'),
                'b' => builder.literal_char('\x08'),
                'f' => builder.literal_char('\x0c'),
                'n' => builder.literal_char('\n'),
                'r' => builder.literal_char('\r'),
                't' => builder.literal_char('\t'),
                'v' => builder.literal_char('\x0b'),
                '\\' => builder.literal_char('\\'),
                other => {
                    builder.literal_char('\\');
                    builder.literal_char(other);
                }
            }
        }
        Ok(builder.finish())
    }

    /// Appends the expansion of this template for one match to `out`. A group that did not take
    /// part in the match expands to nothing, as in Python 3.
    pub fn expand(&self, caps: &Captures<'_>, out: &mut BoundedText) {
        for piece in &self.pieces {
            let text = match piece {
                Piece::Literal(text) => text.as_str(),
                Piece::Group(index) => caps.get(*index).map_or("", |m| m.as_str()),
            };
            if !out.push(text) {
                return;
            }
        }
    }
}

#[derive(Default)]
struct Builder {
    pieces: Vec<Piece>,
}

impl Builder {
    fn literal_char(&mut self, c: char) {
        match self.pieces.last_mut() {
            Some(Piece::Literal(text)) => text.push(c),
            _ => self.pieces.push(Piece::Literal(c.to_string())),
        }
    }

    fn group(&mut self, index: usize) {
        self.pieces.push(Piece::Group(index));
    }

    fn finish(self) -> Template {
        Template {
            pieces: self.pieces,
        }
    }
}

fn is_octal(c: &char) -> bool {
    matches!(c, '0'..='7')
}

fn digit(c: char) -> u32 {
    c.to_digit(10).unwrap_or(0)
}

/// Python 2 masks an octal escape to one byte; the byte is taken as a Latin-1 character.
fn octal_char(value: u32) -> char {
    char::from((value & 0xff) as u8)
}

fn resolve_group(name: &str, regex: &Regex) -> Result<usize, TemplateError> {
    if name.is_empty() {
        return Err(TemplateError::MissingGroupName);
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return numbered_group(name, regex);
    }
    regex
        .capture_names()
        .position(|n| n == Some(name))
        .ok_or_else(|| TemplateError::UnknownGroupName(name.to_string()))
}

fn numbered_group(number: &str, regex: &Regex) -> Result<usize, TemplateError> {
    number
        .parse::<usize>()
        .ok()
        .filter(|&index| index < regex.captures_len())
        .ok_or_else(|| TemplateError::InvalidGroupReference(number.to_string()))
}

/// A string that stops growing at a byte limit, cutting only at character boundaries, and
/// remembers whether anything was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedText {
    text: String,
    limit: usize,
    truncated: bool,
}

impl BoundedText {
    /// An empty text that will hold at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        BoundedText {
            text: String::new(),
            limit,
            truncated: false,
        }
    }

    /// Appends as much of `s` as fits. Returns false once the text is full and something was
    /// cut, after which further pushes do nothing.
    pub fn push(&mut self, s: &str) -> bool {
        if self.truncated {
            return false;
        }
        let room = self.limit - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return true;
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        self.truncated = true;
        false
    }

    /// Whether something was cut off.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The text and whether it was cut.
    pub fn finish(self) -> (String, bool) {
        (self.text, self.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(pattern: &str, template: &str, haystack: &str) -> Result<String, TemplateError> {
        let regex = Regex::new(pattern).unwrap();
        let template = Template::parse(template, &regex)?;
        let caps = regex
            .captures(haystack)
            .expect("the test pattern must match");
        let mut out = BoundedText::new(1000);
        template.expand(&caps, &mut out);
        Ok(out.finish().0)
    }

    #[test]
    fn templates_expand_like_python_re_sub() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // (pattern, template, haystack, expansion)
            ("b", "x", "abc", "x"),
            (r"(\w+) (\w+)", r"\2 \1", "hello world", "world hello"),
            (r"(\w+) (\w+)", r"\g<2> \g<1>", "hello world", "world hello"),
            (
                r"(?P<first>\w+) (?P<second>\w+)",
                r"\g<second>-\g<first>",
                "a b",
                "b-a",
            ),
            (r"(?<first>\w+)", r"[\g<first>]", "a", "[a]"),
            (r"\w+", r"<\g<0>>", "hey", "<hey>"),
            ("b", "$0 $1 ${1} $$", "b", "$0 $1 ${1} $$"),
            (r"(b)", "$1", "b", "$1"),
            ("b", r"\\", "b", r"\"),
            ("b", r"\\1", "b", r"\1"),
            ("b", r"a\nb", "b", "a\nb"),
            ("b", r"\t\r\a\f\v\b", "b", "\t\r\x07\x0c\x0b\x08"),
            ("b", r"\d\$\.\/", "b", r"\d\$\.\/"),
            ("b", r"\0", "b", "\0"),
            ("b", r"\07", "b", "\x07"),
            ("b", r"\0101", "b", "\x081"),
            ("b", r"\101", "b", "A"),
            ("b", r"\1011", "b", "A1"),
            ("b", r"\777", "b", "\u{ff}"),
            ("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", r"\10", "abcdefghij", "j"),
            ("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", r"\1x", "abcdefghij", "ax"),
            (
                "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)",
                r"\g<10>0",
                "abcdefghij",
                "j0",
            ),
            ("(a)|(b)", r"[\1][\2]", "b", "[][b]"),
            ("b", "ünï ☃", "b", "ünï ☃"),
        ];
        for (pattern, template, haystack, want) in cases {
            assert_eq!(
                expand(pattern, template, haystack).as_deref(),
                Ok(*want),
                "s/{pattern}/{template}/ on {haystack:?}"
            );
        }
    }

    #[test]
    fn bad_templates_are_refused() {
        use TemplateError::*;
        let cases: &[(&str, &str, TemplateError)] = &[
            ("b", "x\\", TrailingBackslash),
            ("b", r"\g", MissingGroupName),
            ("b", r"\g1", MissingGroupName),
            ("b", r"\g<>", MissingGroupName),
            ("b", r"\g<1", UnterminatedGroupName),
            ("(b)", r"\g<nope>", UnknownGroupName("nope".into())),
            ("(b)", r"\g<-1>", UnknownGroupName("-1".into())),
            ("b", r"\1", InvalidGroupReference("1".into())),
            ("(b)", r"\2", InvalidGroupReference("2".into())),
            ("(b)", r"\12", InvalidGroupReference("12".into())),
            ("(b)", r"\g<2>", InvalidGroupReference("2".into())),
            (
                "(b)",
                r"\g<99999999999999999999999>",
                InvalidGroupReference("99999999999999999999999".into()),
            ),
        ];
        for (pattern, template, want) in cases {
            assert_eq!(
                expand(pattern, template, "b").as_ref(),
                Err(want),
                "s/{pattern}/{template}/"
            );
        }
    }

    #[test]
    fn bounded_text_cuts_at_char_boundaries() {
        let cases: &[(usize, &[&str], &str, bool)] = &[
            // (limit, pushes, text, truncated)
            (5, &["ab", "cd"], "abcd", false),
            (4, &["ab", "cd"], "abcd", false),
            (3, &["ab", "cd"], "abc", true),
            (3, &["abcd", "e"], "abc", true),
            (3, &["ab", "é"], "ab", true),
            (4, &["ab", "é", "x"], "abé", true),
            (0, &["", ""], "", false),
            (0, &["a"], "", true),
        ];
        for (limit, pushes, want, cut) in cases {
            let mut text = BoundedText::new(*limit);
            for p in *pushes {
                text.push(p);
            }
            assert_eq!(text.is_truncated(), *cut, "{pushes:?} into {limit}");
            assert_eq!(
                text.finish(),
                (want.to_string(), *cut),
                "{pushes:?} into {limit}"
            );
        }
    }
}
