//! Secrets masked by value, wherever they appear: the one implementation behind `check-config`'s
//! output and everything hamper writes to stderr (its log as text or JSON, the plugins' stderr
//! lines forwarded into it, `--trace`, error messages).
//!
//! Masking by key name cannot be enough: a secret pulled in with `$VAR` may sit under any key,
//! a plugin may print its settings, and a driver may quote a URL in an error. So the known
//! secret values themselves are looked for in every line, in each form a line can show them:
//! as they are, JSON-escaped (the JSON log) and `Debug`-escaped (a field logged with `?`).

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, RwLock};

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Values shorter than this are not masked by value: hiding every `1` or `on` would say nothing
/// about secrets and hide everything else.
pub const MIN_MASKED_LEN: usize = 4;

/// Whether a key's name says its value is a secret (`password`, `api_key`, `auth_token`, …).
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "auth", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

/// Replaces known secret values in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first, so that a secret holding another is masked
    /// whole.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for `secrets`; those shorter than [`MIN_MASKED_LEN`] are left out.
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Redactor {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.chars().count() < MIN_MASKED_LEN {
                continue;
            }
            let json = serde_json::to_string(secret).unwrap_or_default();
            let debug = format!("{secret:?}");
            for form in [
                secret,
                json.trim_matches('"'),
                debug.trim_start_matches('"').trim_end_matches('"'),
            ] {
                if !form.is_empty() && !needles.iter().any(|n| n == form) {
                    needles.push(form.to_string());
                }
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Redactor { needles }
    }

    /// A redactor that masks what `self` and `other` mask.
    pub fn merged(&self, other: &Redactor) -> Redactor {
        let mut needles = self.needles.clone();
        for needle in &other.needles {
            if !needles.contains(needle) {
                needles.push(needle.clone());
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Redactor { needles }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }

    /// Like [`Redactor::redact`], for text that was cut short: an end that could be the start
    /// of a secret is masked too, since the rest of it was cut away.
    pub fn redact_cut(&self, text: &str) -> String {
        let mut out = self.redact(text).into_owned();
        let cut_at = self
            .needles
            .iter()
            .filter_map(|needle| {
                (1..needle.len())
                    .rev()
                    .filter(|n| needle.is_char_boundary(*n))
                    .find(|n| out.ends_with(&needle[..*n]))
                    .map(|n| out.len() - n)
            })
            .min();
        if let Some(at) = cut_at {
            out.truncate(at);
            out.push_str(MASK);
        }
        out
    }
}

/// The secrets masked in everything written to stderr, set once the configuration is known and
/// added to by each reload.
static STDERR: RwLock<Option<Arc<Redactor>>> = RwLock::new(None);

/// Masks `redactor`'s secrets on stderr from now on, besides those masked already: a reload
/// adds the new configuration's secrets, and the old ones stay masked (a plugin started before
/// may still print them).
pub fn mask_on_stderr(redactor: Redactor) {
    let mut current = STDERR.write().unwrap_or_else(|p| p.into_inner());
    let merged = match current.as_deref() {
        Some(old) => old.merged(&redactor),
        None => redactor,
    };
    *current = Some(Arc::new(merged));
}

/// The redactor for stderr (masking nothing before [`mask_on_stderr`]).
pub fn stderr_redactor() -> Arc<Redactor> {
    STDERR
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Writes `line` and a newline to stderr with the secrets masked, ignoring failure (the reader
/// may be gone).
pub fn eprintln(line: &str) {
    let masked = stderr_redactor().redact(line);
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(masked.as_bytes());
    let _ = stderr.write_all(b"\n");
}

/// The log's writer: stderr, with the secrets masked. The log formats each event into one
/// buffer and writes it whole, so a secret is never split between two writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedStderr
    }
}

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let redactor = stderr_redactor();
        if redactor.is_empty() {
            return std::io::stderr().write(buf);
        }
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_masked_and_short_values_are_not() {
        let r = Redactor::new(["hunter2", "pa\"ss\\word", "abc", "hunter2-long"]);
        let cases = [
            ("login hunter2 ok", "login ******** ok"),
            ("hunter2-long", "********"),
            ("raw pa\"ss\\word", "raw ********"),
            (r#"{"v":"pa\"ss\\word"}"#, r#"{"v":"********"}"#),
            ("abc stays", "abc stays"),
            ("nothing here", "nothing here"),
        ];
        for (text, want) in cases {
            assert_eq!(r.redact(text), want, "{text}");
        }
        assert!(Redactor::new(["abc"]).is_empty());
    }

    #[test]
    fn a_cut_line_ending_in_the_start_of_a_secret_is_masked() {
        let r = Redactor::new(["hunter2secret"]);
        assert_eq!(
            r.redact_cut("the password is hunt"),
            "the password is ********"
        );
        assert_eq!(r.redact_cut("hunter2secret and h"), "******** and ********");
        assert_eq!(r.redact_cut("nothing to see"), "nothing to see");
    }

    #[test]
    fn a_merged_redactor_masks_both_and_the_longer_secret_whole() {
        let r = Redactor::new(["hunter2"]).merged(&Redactor::new(["hunter2-long", "sesame"]));
        assert_eq!(
            r.redact("hunter2 hunter2-long sesame"),
            "******** ******** ********"
        );
    }

    #[test]
    fn secret_looking_keys() {
        for (key, secret) in [
            ("password", true),
            ("api_key", true),
            ("AUTH_TOKEN", true),
            ("city", false),
            ("channels", false),
        ] {
            assert_eq!(looks_secret(key), secret, "{key}");
        }
    }
}
