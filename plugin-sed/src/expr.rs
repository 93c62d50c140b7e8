//! Parsing and running `s/pattern/replacement/flags` commands.
//!
//! The original bot recognised a sed command with one Python regex,
//! `s/(.*?)/(.*?)/([mig]*)(?:\s+s/(.*?)/(.*?)/([mig]*))*`, matched case-insensitively at the
//! start of the message. [`SedCommand::parse`] reads the same language by hand, left to right,
//! which gives the same split (shortest pattern, shortest replacement, then as many further
//! whitespace-separated expressions as parse) and adds one thing the original lacked: `\/`
//! puts a slash inside a pattern or replacement.
//!
//! Compiling is separate from parsing because the plugin must answer "no history" before it
//! reports a bad pattern, as the original did. Every regex is built by the `regex` crate, whose
//! search time is linear in the text, with compiled-size limits; pattern, replacement and
//! expression count are capped, and results are built in a [`BoundedText`].

use regex::{Regex, RegexBuilder};

use crate::template::{BoundedText, Template, TemplateError};

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// The longest replacement accepted, in bytes.
pub const MAX_REPLACEMENT_BYTES: usize = 256;
/// The most expressions one command may chain.
pub const MAX_EXPRESSIONS: usize = 10;
/// The limit, in bytes, on a compiled pattern and on the lazy DFA's cache.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a command could not be compiled. The plugin answers every one of these with the
/// original's `Do you even lift?`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExprError {
    /// The command chains more than [`MAX_EXPRESSIONS`] expressions.
    #[error("command chains more than {MAX_EXPRESSIONS} expressions")]
    TooManyExpressions,
    /// A pattern is longer than [`MAX_PATTERN_BYTES`].
    #[error("pattern of {len} bytes is longer than the {MAX_PATTERN_BYTES}-byte limit")]
    PatternTooLong {
        /// The pattern's length in bytes.
        len: usize,
    },
    /// A replacement is longer than [`MAX_REPLACEMENT_BYTES`].
    #[error("replacement of {len} bytes is longer than the {MAX_REPLACEMENT_BYTES}-byte limit")]
    ReplacementTooLong {
        /// The replacement's length in bytes.
        len: usize,
    },
    /// The pattern is not a valid regex, or compiles past [`REGEX_SIZE_LIMIT`].
    #[error("invalid pattern: {0}")]
    Pattern(#[from] regex::Error),
    /// The replacement is not a valid template for the pattern.
    #[error("invalid replacement: {0}")]
    Replacement(#[from] TemplateError),
}

/// The flags after an expression's last slash, read case-insensitively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `g`: replace every match, not just the first.
    pub global: bool,
    /// `i`: match case-insensitively.
    pub ignore_case: bool,
    /// `m`: only edit the sender's own lines (for the whole command).
    pub mine: bool,
}

impl Flags {
    fn parse(letters: &str) -> Flags {
        let mut flags = Flags::default();
        for c in letters.chars() {
            match c.to_ascii_lowercase() {
                'g' => flags.global = true,
                'i' => flags.ignore_case = true,
                'm' => flags.mine = true,
                _ => {}
            }
        }
        flags
    }
}

/// One `s/pattern/replacement/flags` expression, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    /// The pattern exactly as typed, for the "couldn't match" reply.
    pub source: String,
    /// The pattern with `\/` turned into `/`; other escapes are left for the regex.
    pub pattern: String,
    /// The replacement with `\/` turned into `/`; other escapes are left for the template.
    pub replacement: String,
    /// The flags.
    pub flags: Flags,
}

impl Expression {
    /// Builds the regex and replacement template, under the size limits.
    pub fn compile(&self) -> Result<CompiledExpression, ExprError> {
        if self.pattern.len() > MAX_PATTERN_BYTES {
            return Err(ExprError::PatternTooLong {
                len: self.pattern.len(),
            });
        }
        if self.replacement.len() > MAX_REPLACEMENT_BYTES {
            return Err(ExprError::ReplacementTooLong {
                len: self.replacement.len(),
            });
        }
        let regex = RegexBuilder::new(&self.pattern)
            .case_insensitive(self.flags.ignore_case)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()?;
        let template = Template::parse(&self.replacement, &regex)?;
        Ok(CompiledExpression {
            regex,
            template,
            global: self.flags.global,
        })
    }
}

/// A sed command: one or more expressions to apply in turn to the same line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SedCommand {
    expressions: Vec<Expression>,
}

impl SedCommand {
    /// Reads a command at the start of `message` (the text with the bot's addressing removed).
    ///
    /// `s` may be upper case. Further expressions follow after whitespace; the first thing that
    /// is not one ends the command, and the text from there on is ignored. Returns `None` when
    /// the message does not start with a complete expression. At most one expression past
    /// [`MAX_EXPRESSIONS`] is read, so that [`compile`](Self::compile) can refuse the command.
    pub fn parse(message: &str) -> Option<SedCommand> {
        let (first, mut rest) = parse_expression(message)?;
        let mut expressions = vec![first];
        while expressions.len() <= MAX_EXPRESSIONS {
            let next = rest.trim_start_matches(is_python_space);
            if next.len() == rest.len() {
                break;
            }
            let Some((expression, after)) = parse_expression(next) else {
                break;
            };
            expressions.push(expression);
            rest = after;
        }
        Some(SedCommand { expressions })
    }

    /// The expressions, in order; never empty.
    pub fn expressions(&self) -> &[Expression] {
        &self.expressions
    }

    /// The first expression's pattern as typed, quoted by the "couldn't match" reply.
    pub fn first_source(&self) -> &str {
        // `parse` never builds an empty command.
        self.expressions.first().map_or("", |e| e.source.as_str())
    }

    /// Whether `m` is set on any expression, which restricts the whole command to the
    /// sender's own lines.
    pub fn mine_only(&self) -> bool {
        self.expressions.iter().any(|e| e.flags.mine)
    }

    /// Compiles every expression; the first failure wins.
    pub fn compile(&self) -> Result<CompiledCommand, ExprError> {
        if self.expressions.len() > MAX_EXPRESSIONS {
            return Err(ExprError::TooManyExpressions);
        }
        let expressions = self
            .expressions
            .iter()
            .map(Expression::compile)
            .collect::<Result<_, _>>()?;
        Ok(CompiledCommand { expressions })
    }
}

/// One expression with its regex and template built.
#[derive(Debug, Clone)]
pub struct CompiledExpression {
    regex: Regex,
    template: Template,
    global: bool,
}

impl CompiledExpression {
    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// Replaces the first match in `text` (every match with `g`), like Python's `re.sub`.
    /// The result holds at most `limit` bytes; the flag says whether it was cut.
    pub fn apply(&self, text: &str, limit: usize) -> (String, bool) {
        let mut out = BoundedText::new(limit);
        let mut last = 0;
        let count = if self.global { usize::MAX } else { 1 };
        for caps in self.regex.captures_iter(text).take(count) {
            let Some(whole) = caps.get(0) else {
                continue;
            };
            out.push(&text[last..whole.start()]);
            self.template.expand(&caps, &mut out);
            if out.is_truncated() {
                return out.finish();
            }
            last = whole.end();
        }
        out.push(&text[last..]);
        out.finish()
    }
}

/// A compiled sed command.
#[derive(Debug, Clone)]
pub struct CompiledCommand {
    expressions: Vec<CompiledExpression>,
}

impl CompiledCommand {
    /// Whether `text` is a line this command edits: its first pattern matches.
    pub fn targets(&self, text: &str) -> bool {
        self.expressions.first().is_some_and(|e| e.is_match(text))
    }

    /// Applies every expression in turn to `text`. The result holds at most `limit` bytes; the
    /// flag says whether anything was cut on the way.
    pub fn apply(&self, text: &str, limit: usize) -> (String, bool) {
        let mut current = text.to_string();
        let mut truncated = false;
        for expression in &self.expressions {
            let (next, cut) = expression.apply(&current, limit);
            current = next;
            truncated |= cut;
        }
        (current, truncated)
    }
}

/// Python 2's `\s` on a byte string: space, `\t`, `\n`, `\r`, `\f` and `\v`.
fn is_python_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn parse_expression(text: &str) -> Option<(Expression, &str)> {
    let text = text.strip_prefix(['s', 'S'])?.strip_prefix('/')?;
    let (source, pattern, text) = split_segment(text)?;
    let (_, replacement, text) = split_segment(text)?;
    let flags_len = text
        .find(|c: char| !matches!(c, 'g' | 'i' | 'm' | 'G' | 'I' | 'M'))
        .unwrap_or(text.len());
    let expression = Expression {
        source: source.to_string(),
        pattern,
        replacement,
        flags: Flags::parse(&text[..flags_len]),
    };
    Some((expression, &text[flags_len..]))
}

/// Reads up to the next unescaped `/`. Returns the segment as typed, the segment with `\/`
/// unescaped, and the text after the slash. A backslash keeps the character after it, so `\\/`
/// is an escaped backslash followed by the delimiter.
fn split_segment(text: &str) -> Option<(&str, String, &str)> {
    let mut unescaped = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((&text[..i], unescaped, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '/')) => unescaped.push('/'),
                Some((_, other)) => {
                    unescaped.push('\\');
                    unescaped.push(other);
                }
                None => return None,
            },
            _ => unescaped.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Renders a parse as `pattern|replacement|flags` per expression, flags as `gim` letters.
    fn render(command: &SedCommand) -> Vec<String> {
        command
            .expressions()
            .iter()
            .map(|e| {
                let mut flags = String::new();
                for (on, letter) in [
                    (e.flags.global, 'g'),
                    (e.flags.ignore_case, 'i'),
                    (e.flags.mine, 'm'),
                ] {
                    if on {
                        flags.push(letter);
                    }
                }
                format!("{}|{}|{}", e.pattern, e.replacement, flags)
            })
            .collect()
    }

    #[test]
    fn commands_parse_like_the_original_regex() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("s/a/b/", Some(&["a|b|"])),
            ("S/a/b/", Some(&["a|b|"])),
            ("s/a/b/gi", Some(&["a|b|gi"])),
            ("s/a/b/GIM", Some(&["a|b|gim"])),
            ("s/a/b/mgmg", Some(&["a|b|gm"])),
            ("s/a/b/gx", Some(&["a|b|g"])),
            ("s/a/b/ please", Some(&["a|b|"])),
            ("s/a/b/c/d/", Some(&["a|b|"])),
            ("s//b/", Some(&["|b|"])),
            ("s/a//", Some(&["a||"])),
            ("s///", Some(&["||"])),
            (r"s/\d+/N/g", Some(&[r"\d+|N|g"])),
            (
                "s/apple/orange/g s/banana/grape/",
                Some(&["apple|orange|g", "banana|grape|"]),
            ),
            ("s/a/b/ \t s/c/d/i trailing", Some(&["a|b|", "c|d|i"])),
            ("s/a/b/ S/c/d/ s/e/f/m", Some(&["a|b|", "c|d|", "e|f|m"])),
            ("s/a/b/gs/c/d/", Some(&["a|b|g"])),
            ("s/a/b/ s/c/d", Some(&["a|b|"])),
            ("s/a/b/ x s/c/d/", Some(&["a|b|"])),
            (r"s/a\/b/c\/d/", Some(&["a/b|c/d|"])),
            (r"s/a\\/b/", Some(&[r"a\\|b|"])),
            (r"s/a\.b/c\1/", Some(&[r"a\.b|c\1|"])),
            ("s/ünï/☃/", Some(&["ünï|☃|"])),
            ("s/a/b", None),
            (r"s/a/b\/", None),
            (r"s/a\", None),
            ("s/a", None),
            ("s/", None),
            ("s", None),
            ("", None),
            (" s/a/b/", None),
            ("xs/a/b/", None),
            ("bob: s/a/b/", None),
            ("s|a|b|", None),
            ("hello s/a/b/", None),
        ];
        for (input, want) in cases {
            let got = SedCommand::parse(input).map(|c| render(&c));
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "parsing {input:?}");
        }
    }

    #[test]
    fn source_keeps_the_pattern_as_typed_and_m_applies_to_all() {
        let cases: &[(&str, &str, bool)] = &[
            // (command, first_source, mine_only)
            ("s/a/b/", "a", false),
            (r"s/a\/b/c/", r"a\/b", false),
            ("s/a/b/m", "a", true),
            ("s/a/b/g s/c/d/m", "a", true),
            ("s/a/b/g s/c/d/i", "a", false),
        ];
        for (input, source, mine) in cases {
            let command = SedCommand::parse(input).expect(input);
            assert_eq!(command.first_source(), *source, "{input}");
            assert_eq!(command.mine_only(), *mine, "{input}");
        }
    }

    fn run(command: &str, text: &str, limit: usize) -> Result<(String, bool), String> {
        let command = SedCommand::parse(command).expect("test command must parse");
        let compiled = command.compile().map_err(|e| e.to_string())?;
        Ok(compiled.apply(text, limit))
    }

    #[test]
    fn expressions_replace_like_python_re_sub() {
        let cases: &[(&str, &str, &str)] = &[
            // (command, text, result)
            ("s/o/0/", "foo boo", "f0o boo"),
            ("s/o/0/g", "foo boo", "f00 b00"),
            ("s/FOO/bar/", "foo FOO", "foo bar"),
            ("s/FOO/bar/i", "foo FOO", "bar FOO"),
            ("s/FOO/bar/gi", "foo FOO", "bar bar"),
            ("s/zzz/y/", "foo", "foo"),
            ("s//x/", "foo", "xfoo"),
            ("s//-/g", "abc", "-a-b-c-"),
            ("s/x*/-/g", "abxd", "-a-b-d-"),
            (r"s/(\w+) (\w+)/\2 \1/", "hello world", "world hello"),
            (
                r"s/(?P<a>\w+) (?P<b>\w+)/\g<b> \g<a>/",
                "hello world",
                "world hello",
            ),
            (r"s/(\w+)/\g<1>\g<0>/", "hi", "hihi"),
            (r"s/(\w+)/$1 ${1} $0 \$/", "hi", r"$1 ${1} $0 \$"),
            (r"s/o/\\/g", "foo", r"f\\"),
            (r"s/and\/or/or/", "use and/or", "use or"),
            (r"s/x/\/\//", "axb", "a//b"),
            (r"s/b/\n/", "abc", "a\nc"),
            (r"s/\s+/ /g", "a  b\t\tc", "a b c"),
            (
                "s/apple/orange/g s/banana/grape/",
                "apple banana apple banana",
                "orange grape orange banana",
            ),
            ("s/a/b/ s/b/c/", "a", "c"),
            ("s/a/b/ s/zzz/y/", "a", "b"),
            ("s/é/e/g", "résumé", "resume"),
            ("s/É/e/gi", "résumé", "resume"),
        ];
        for (command, text, want) in cases {
            assert_eq!(
                run(command, text, 1000),
                Ok((want.to_string(), false)),
                "{command} on {text:?}"
            );
        }
    }

    #[test]
    fn results_are_capped() {
        let cases: &[(&str, &str, usize, &str, bool)] = &[
            // (command, text, limit, result, truncated)
            ("s/a/bbb/g", "aaaa", 12, "bbbbbbbbbbbb", false),
            ("s/a/bbb/g", "aaaa", 10, "bbbbbbbbbb", true),
            ("s/a/b/", "aaaa", 2, "ba", true),
            ("s/a/é/g", "aa", 3, "é", true),
            (
                r"s/(a+)/\1\1\1\1/ s/(a+)/\1\1\1\1/",
                "aa",
                20,
                "aaaaaaaaaaaaaaaaaaaa",
                true,
            ),
        ];
        for (command, text, limit, want, cut) in cases {
            assert_eq!(
                run(command, text, *limit),
                Ok((want.to_string(), *cut)),
                "{command} on {text:?} within {limit}"
            );
        }
    }

    #[test]
    fn bad_commands_do_not_compile() {
        let long_pattern = format!("s/{}/x/", "a".repeat(MAX_PATTERN_BYTES + 1));
        let long_replacement = format!("s/a/{}/", "x".repeat(MAX_REPLACEMENT_BYTES + 1));
        let many = ["s/a/b/"; MAX_EXPRESSIONS + 1].join(" ");
        let cases: &[(&str, &str)] = &[
            // (command, start of the error)
            ("s/(/x/", "invalid pattern"),
            ("s/[a/x/", "invalid pattern"),
            ("s/a{1000}{1000}/x/", "invalid pattern"),
            (r"s/\w{100}/x/", "invalid pattern"),
            (r"s/(a)\1/x/", "invalid pattern"),
            ("s/(?=a)/x/", "invalid pattern"),
            ("s/a/b/ s/(/x/", "invalid pattern"),
            (r"s/a/\1/", "invalid replacement"),
            (r"s/(a)/\g<b>/", "invalid replacement"),
            (r"s/a/\g/", "invalid replacement"),
            (&long_pattern, "pattern of 257 bytes"),
            (&long_replacement, "replacement of 257 bytes"),
            (&many, "command chains more than"),
        ];
        for (command, want) in cases {
            let err = run(command, "a", 100).expect_err(command);
            assert!(err.starts_with(want), "{command}: {err}");
        }
        let most = ["s/a/b/"; MAX_EXPRESSIONS + 5].join(" ");
        assert_eq!(
            SedCommand::parse(&most)
                .expect("parses")
                .expressions()
                .len(),
            MAX_EXPRESSIONS + 1,
            "parsing stops one past the limit"
        );
        let limit = ["s/a/b/"; MAX_EXPRESSIONS].join(" ");
        assert_eq!(run(&limit, "a", 100), Ok(("b".to_string(), false)));
        let pattern = format!("s/{}/x/", "a".repeat(MAX_PATTERN_BYTES));
        assert!(
            run(&pattern, "a", 100).is_ok(),
            "a pattern at the limit compiles"
        );
    }

    #[test]
    fn catastrophic_patterns_run_in_linear_time() {
        let haystack = "a".repeat(100_000);
        let cases: &[&str] = &[
            "s/(a*)*b/x/",
            "s/(a|aa)*c/x/g",
            "s/(a+)+$x/x/",
            "s/(.*)*(.*)*(.*)*!/x/",
            "s/(?:a?){30}a{30}/x/g",
            "s/(a|a)*b/x/i",
        ];
        for command in cases {
            let started = Instant::now();
            let compiled = SedCommand::parse(command)
                .expect(command)
                .compile()
                .expect(command);
            compiled.targets(&haystack);
            compiled.apply(&haystack, 512);
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "{command} took {took:?}");
        }
    }
}
