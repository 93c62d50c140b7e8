//! The rings of recent lines that sed commands edit.
//!
//! Like the original, the plugin remembers the last [`HISTORY_LINES`] lines of each channel, in
//! memory only, `/me` actions included; the host never sends the bot's own lines, so they are
//! never here. Unlike the original, which kept every private message in one shared bucket (so
//! one user's `s/…/…/` in private could echo another user's private line), each private sender
//! gets a bucket of their own. Since senders are unbounded, the number of buckets is capped at
//! [`MAX_BUCKETS`], dropping the one idle longest, and each stored line at [`MAX_STORED_BYTES`].
//! Channel and nick names are compared with IRC's RFC 1459 case folding.

use std::collections::{HashMap, VecDeque};

use hamper_protocol::{CaseMapping, Message};

/// How many lines each bucket keeps.
pub const HISTORY_LINES: usize = 100;
/// How many buckets (channels and private senders) are kept at once.
pub const MAX_BUCKETS: usize = 1024;
/// The most bytes of a line's text that are kept. IRC lines are shorter than this; it only
/// bounds memory against a host that sends longer text.
pub const MAX_STORED_BYTES: usize = 1024;

/// Which bucket a message belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BucketKey {
    /// A channel, by its case-folded name.
    Channel(String),
    /// Private messages from one sender, by their case-folded nick.
    Private(String),
}

impl BucketKey {
    /// The bucket of `msg`: its channel, or its sender for a private message, with names
    /// folded as the server folds them.
    pub fn for_message(msg: &Message, mapping: CaseMapping) -> BucketKey {
        match &msg.channel {
            Some(channel) => BucketKey::Channel(mapping.fold(channel)),
            None => BucketKey::Private(mapping.fold(&msg.nick)),
        }
    }
}

/// One remembered line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Who said it.
    pub nick: String,
    /// What they said, exactly as received (for an action, the action text), up to
    /// [`MAX_STORED_BYTES`].
    pub text: String,
    /// Whether sed may edit this line: it contains no `s/` and was not itself a sed command.
    pub editable: bool,
}

impl Line {
    /// A line said by `nick`. `was_command` marks a line that parsed as a sed command; such a
    /// line is never edited, even when written `S/…/…/` so that it escapes the `s/` check.
    pub fn new(nick: &str, text: &str, was_command: bool) -> Line {
        let mut cut = text.len().min(MAX_STORED_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        Line {
            nick: nick.to_string(),
            text: text[..cut].to_string(),
            editable: !was_command && !text.contains("s/"),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    lines: VecDeque<Line>,
    last_used: u64,
}

/// Every bucket's recent lines.
#[derive(Debug, Default)]
pub struct History {
    buckets: HashMap<BucketKey, Bucket>,
    clock: u64,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Whether nothing at all has been said in this bucket (that is still remembered).
    pub fn is_empty(&self, key: &BucketKey) -> bool {
        self.buckets.get(key).is_none_or(|b| b.lines.is_empty())
    }

    /// The bucket's lines, newest first.
    pub fn newest_first(&self, key: &BucketKey) -> impl Iterator<Item = &Line> {
        self.buckets
            .get(key)
            .into_iter()
            .flat_map(|b| b.lines.iter().rev())
    }

    /// Appends a line to its bucket, dropping the bucket's oldest line past [`HISTORY_LINES`]
    /// and, for a new bucket past [`MAX_BUCKETS`], the bucket idle longest.
    pub fn record(&mut self, key: BucketKey, line: Line) {
        self.clock += 1;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_BUCKETS {
            let idle = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last_used)
                .map(|(k, _)| k.clone());
            if let Some(idle) = idle {
                self.buckets.remove(&idle);
            }
        }
        let bucket = self.buckets.entry(key).or_insert_with(|| Bucket {
            lines: VecDeque::with_capacity(HISTORY_LINES),
            last_used: 0,
        });
        bucket.last_used = self.clock;
        if bucket.lines.len() >= HISTORY_LINES {
            bucket.lines.pop_front();
        }
        bucket.lines.push_back(line);
    }

    /// How many buckets are held.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> BucketKey {
        BucketKey::Channel(name.to_string())
    }

    fn texts(history: &History, key: &BucketKey) -> Vec<String> {
        history.newest_first(key).map(|l| l.text.clone()).collect()
    }

    #[test]
    fn messages_map_to_buckets() {
        let cases: &[(Option<&str>, &str, BucketKey)] = &[
            (Some("#c"), "alice", channel("#c")),
            (Some("#Chan[1]"), "alice", channel("#chan{1}")),
            (None, "Alice", BucketKey::Private("alice".into())),
            (None, "bob[m]~", BucketKey::Private("bob{m}^".into())),
        ];
        for (chan, nick, want) in cases {
            let msg = Message {
                channel: chan.map(str::to_string),
                nick: nick.to_string(),
                ..Message::default()
            };
            assert_eq!(
                &BucketKey::for_message(&msg, CaseMapping::Rfc1459),
                want,
                "{chan:?} {nick}"
            );
        }
        let msg = Message {
            channel: Some("#Chan[1]".into()),
            ..Message::default()
        };
        assert_eq!(
            BucketKey::for_message(&msg, CaseMapping::Ascii),
            channel("#chan[1]"),
            "under ascii, [ is not the upper case of {{"
        );
    }

    #[test]
    fn lines_know_whether_they_are_editable() {
        let long = "é".repeat(MAX_STORED_BYTES);
        let cases: &[(&str, bool, &str, bool)] = &[
            // (text, was_command, stored text, editable)
            ("hello world", false, "hello world", true),
            ("s/a/b/", true, "s/a/b/", false),
            ("S/a/b/", true, "S/a/b/", false),
            (
                "see https://x.org/docs/api",
                false,
                "see https://x.org/docs/api",
                false,
            ),
            ("yes/no", false, "yes/no", false),
            ("YES/NO", false, "YES/NO", true),
            (&long, false, &long[..MAX_STORED_BYTES], true),
        ];
        for (text, was_command, stored, editable) in cases {
            let line = Line::new("alice", text, *was_command);
            assert_eq!(line.text, *stored, "{text}");
            assert_eq!(line.editable, *editable, "{text}");
        }
        let cut = Line::new("alice", &format!("a{long}"), false);
        assert_eq!(
            cut.text.len(),
            MAX_STORED_BYTES - 1,
            "cut at a character boundary"
        );
        let hidden = Line::new(
            "alice",
            &format!("{}s/", "a".repeat(MAX_STORED_BYTES)),
            false,
        );
        assert!(!hidden.editable, "`s/` past the stored part still counts");
    }

    #[test]
    fn buckets_keep_the_last_hundred_lines_newest_first() {
        let cases: &[(usize, &[&str])] = &[
            // (lines recorded, the newest and oldest remembered)
            (0, &[]),
            (1, &["line 0", "line 0"]),
            (HISTORY_LINES, &["line 99", "line 0"]),
            (HISTORY_LINES + 1, &["line 100", "line 1"]),
            (250, &["line 249", "line 150"]),
        ];
        for (count, ends) in cases {
            let mut history = History::new();
            let key = channel("#c");
            for i in 0..*count {
                history.record(key.clone(), Line::new("alice", &format!("line {i}"), false));
            }
            let got = texts(&history, &key);
            assert_eq!(got.len(), (*count).min(HISTORY_LINES), "{count} lines");
            assert_eq!(history.is_empty(&key), *count == 0, "{count} lines");
            if let [newest, oldest] = ends {
                assert_eq!(got.first().map(String::as_str), Some(*newest));
                assert_eq!(got.last().map(String::as_str), Some(*oldest));
            }
        }
    }

    #[test]
    fn buckets_are_separate_and_the_idle_one_goes_first() {
        let mut history = History::new();
        history.record(channel("#a"), Line::new("alice", "in a", false));
        history.record(channel("#b"), Line::new("bob", "in b", false));
        history.record(
            BucketKey::Private("carol".into()),
            Line::new("carol", "pm", false),
        );
        assert_eq!(texts(&history, &channel("#a")), ["in a"]);
        assert_eq!(texts(&history, &channel("#b")), ["in b"]);
        assert_eq!(texts(&history, &BucketKey::Private("carol".into())), ["pm"]);
        assert!(history.is_empty(&channel("#c")));
        assert!(history.is_empty(&BucketKey::Private("alice".into())));

        for i in 3..MAX_BUCKETS {
            history.record(channel(&format!("#{i}")), Line::new("x", "y", false));
        }
        history.record(channel("#a"), Line::new("alice", "a again", false));
        assert_eq!(history.bucket_count(), MAX_BUCKETS);
        history.record(channel("#new"), Line::new("dave", "hi", false));
        assert_eq!(history.bucket_count(), MAX_BUCKETS);
        assert!(history.is_empty(&channel("#b")), "#b was idle longest");
        assert_eq!(texts(&history, &channel("#a")), ["a again", "in a"]);
        assert_eq!(texts(&history, &channel("#new")), ["hi"]);
    }
}
