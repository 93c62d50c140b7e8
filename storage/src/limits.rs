//! What may be stored: keys, key prefixes and values, checked against the protocol's limits.
//!
//! The limits are the protocol's ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]) and are enforced here,
//! in Rust, so that both backends refuse exactly the same things: PostgreSQL cannot store NUL in
//! text, so SQLite refuses it too. [`Key`] and [`KeyPrefix`] are checked when they are made, so a
//! storage call cannot be handed one that breaks a limit. A refusal names the field (`key`,
//! `prefix`, `value`) but not the protocol method, which the caller adds.

use std::fmt;

use hamper_protocol::wire::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use serde_json::Value;

use crate::{KvError, KvErrorKind};

/// A key: 1 to [`MAX_KEY_BYTES`] bytes of UTF-8, without NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Checks `key` against the limits: `bad_request` if it is empty or holds NUL,
    /// `too_large` if it is over [`MAX_KEY_BYTES`].
    pub fn new(key: impl Into<String>) -> Result<Key, KvError> {
        let key = key.into();
        if key.is_empty() {
            return Err(KvError::new(
                KvErrorKind::BadRequest,
                "`key` must not be empty",
            ));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::new(
                KvErrorKind::TooLarge,
                format!("`key` is {} bytes; the limit is {MAX_KEY_BYTES}", key.len()),
            ));
        }
        if key.contains('\0') {
            return Err(KvError::new(
                KvErrorKind::BadRequest,
                "`key` must not contain NUL",
            ));
        }
        Ok(Key(key))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The prefix of a key listing: at most [`MAX_KEY_BYTES`] bytes without NUL; empty selects
/// every key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// Checks `prefix`: `bad_request` if it holds NUL, `too_large` if it is longer than the
    /// longest key, since then no key could start with it.
    pub fn new(prefix: impl Into<String>) -> Result<KeyPrefix, KvError> {
        let prefix = prefix.into();
        if prefix.contains('\0') {
            return Err(KvError::new(
                KvErrorKind::BadRequest,
                "`prefix` must not contain NUL",
            ));
        }
        if prefix.len() > MAX_KEY_BYTES {
            return Err(KvError::new(
                KvErrorKind::TooLarge,
                format!(
                    "`prefix` is {} bytes, longer than the longest key ({MAX_KEY_BYTES})",
                    prefix.len()
                ),
            ));
        }
        Ok(KeyPrefix(prefix))
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value as it is written: its JSON text and the two columns derived from it, `num` (the
/// value as a number, for ordering) and `ival` (as a 64-bit integer, for `incr`).
pub(crate) struct Row {
    pub(crate) text: String,
    pub(crate) num: Option<f64>,
    pub(crate) ival: Option<i64>,
}

impl Row {
    /// Encodes `value`; `too_large` if its compact JSON is over [`MAX_VALUE_BYTES`].
    pub(crate) fn new(value: &Value) -> Result<Row, KvError> {
        let text = serde_json::to_string(value).map_err(|e| {
            KvError::new(
                KvErrorKind::BadRequest,
                format!("`value` cannot be encoded: {e}"),
            )
        })?;
        if text.len() > MAX_VALUE_BYTES {
            return Err(KvError::new(
                KvErrorKind::TooLarge,
                format!(
                    "`value` is {} bytes of JSON; the limit is {MAX_VALUE_BYTES}",
                    text.len()
                ),
            ));
        }
        Ok(Row {
            text,
            num: value.as_f64(),
            ival: value.as_i64(),
        })
    }
}

/// The JSON type of a value, with its article, for messages: `a string`, `an integer`, `null`.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() => "an integer",
        Value::Number(n) if n.is_u64() => "an integer beyond the 64-bit range",
        Value::Number(_) => "a floating-point number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_prefixes() {
        use KvErrorKind::{BadRequest, TooLarge};
        let max = "k".repeat(MAX_KEY_BYTES);
        let over = "k".repeat(MAX_KEY_BYTES + 1);
        let two_byte_max = "é".repeat(MAX_KEY_BYTES / 2);
        // (text, what Key::new says, what KeyPrefix::new says): None for accepted, else the
        // kind and the exact message.
        type Want = Option<(KvErrorKind, &'static str)>;
        let cases: [(&str, Want, Want); 7] = [
            ("a", None, None),
            (&max, None, None),
            (&two_byte_max, None, None),
            ("", Some((BadRequest, "`key` must not be empty")), None),
            (
                "a\u{0}b",
                Some((BadRequest, "`key` must not contain NUL")),
                Some((BadRequest, "`prefix` must not contain NUL")),
            ),
            (
                &over,
                Some((TooLarge, "`key` is 257 bytes; the limit is 256")),
                Some((
                    TooLarge,
                    "`prefix` is 257 bytes, longer than the longest key (256)",
                )),
            ),
            (
                &format!("{over}\u{0}"),
                Some((TooLarge, "`key` is 258 bytes; the limit is 256")),
                Some((BadRequest, "`prefix` must not contain NUL")),
            ),
        ];
        for (text, want_key, want_prefix) in cases {
            let got = Key::new(text).map(|k| k.as_str().to_string());
            match (&got, want_key) {
                (Ok(k), None) => assert_eq!(k, text),
                (Err(e), Some((kind, message))) => {
                    assert_eq!((e.kind, e.message.as_str()), (kind, message), "{text:?}")
                }
                _ => panic!("Key::new({text:?}): got {got:?}, want {want_key:?}"),
            }
            let got = KeyPrefix::new(text).map(|p| p.as_str().to_string());
            match (&got, want_prefix) {
                (Ok(p), None) => assert_eq!(p, text),
                (Err(e), Some((kind, message))) => {
                    assert_eq!((e.kind, e.message.as_str()), (kind, message), "{text:?}")
                }
                _ => panic!("KeyPrefix::new({text:?}): got {got:?}, want {want_prefix:?}"),
            }
        }
    }

    #[test]
    fn values_and_their_derived_columns() {
        let cases = [
            (json!(5), Some(5.0), Some(5)),
            (json!(-3), Some(-3.0), Some(-3)),
            (json!(2.5), Some(2.5), None),
            (json!(2.0), Some(2.0), None),
            (json!(u64::MAX), Some(u64::MAX as f64), None),
            (json!("5"), None, None),
            (json!(null), None, None),
            (json!([1]), None, None),
            (json!({"x": [1, 2]}), None, None),
        ];
        for (value, num, ival) in cases {
            let row = Row::new(&value).expect("within the limit");
            assert_eq!((row.num, row.ival), (num, ival), "{value}");
            assert_eq!(row.text, value.to_string());
        }
        // A string of n bytes is n + 2 bytes of JSON.
        assert!(Row::new(&json!("v".repeat(MAX_VALUE_BYTES - 2))).is_ok());
        let Err(e) = Row::new(&json!("v".repeat(MAX_VALUE_BYTES))) else {
            panic!("over the limit")
        };
        assert_eq!(e.kind, KvErrorKind::TooLarge);
        assert_eq!(
            e.message,
            "`value` is 16386 bytes of JSON; the limit is 16384"
        );
    }

    #[test]
    fn kinds() {
        let cases = [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(-1), "an integer"),
            (json!(u64::MAX), "an integer beyond the 64-bit range"),
            (json!(2.0), "a floating-point number"),
            (json!("x"), "a string"),
            (json!([]), "an array"),
            (json!({}), "an object"),
        ];
        for (value, want) in cases {
            assert_eq!(json_kind(&value), want, "{value}");
        }
    }
}
