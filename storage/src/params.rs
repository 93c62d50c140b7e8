//! Reading and checking a `kv.*` request's parameters before anything touches the database.
//!
//! Plugins can be written in any language, so a request may hold anything. Each field is read
//! on its own, so that a refusal names the field and says what it should have been, and the
//! protocol's limits are enforced here, the same way for both backends. The results are the
//! protocol crate's own parameter types, so host and SDK agree on names and defaults.

use hamper_protocol::wire::{
    ErrorCode, IncrParams, KeyParams, ListParams, SetParams, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A request the plugin got wrong: `bad_request` or `too_large`, with a message for its author.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

fn bad_request(message: String) -> Refusal {
    Refusal {
        code: ErrorCode::BadRequest,
        message,
    }
}

fn too_large(message: String) -> Refusal {
    Refusal {
        code: ErrorCode::TooLarge,
        message,
    }
}

/// A request's parameters, read field by field so that an error names the field.
pub(crate) struct Params<'a> {
    method: &'a str,
    fields: Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Missing or `null` params count as `{}`; anything but an object is refused.
    pub(crate) fn new(method: &'a str, params: Value) -> Result<Self, Refusal> {
        let fields = match params {
            Value::Object(fields) => fields,
            Value::Null => Map::new(),
            other => {
                return Err(bad_request(format!(
                    "{method}: params must be an object, not {}",
                    kind_of(&other)
                )))
            }
        };
        Ok(Params { method, fields })
    }

    /// The field, or `None` when it is absent or `null`.
    fn optional<T: DeserializeOwned>(
        &mut self,
        name: &str,
        want: &str,
    ) -> Result<Option<T>, Refusal> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let kind = kind_of(&value);
                serde_json::from_value(value).map(Some).map_err(|_| {
                    bad_request(format!(
                        "{}: `{name}` must be {want}, not {kind}",
                        self.method
                    ))
                })
            }
        }
    }

    fn required<T: DeserializeOwned>(&mut self, name: &str, want: &str) -> Result<T, Refusal> {
        self.optional(name, want)?
            .ok_or_else(|| bad_request(format!("{}: `{name}` is missing", self.method)))
    }

    fn key(&mut self) -> Result<String, Refusal> {
        let key: String = self.required("key", "a string")?;
        check_key(self.method, "key", &key)?;
        Ok(key)
    }

    pub(crate) fn key_params(mut self) -> Result<KeyParams, Refusal> {
        Ok(KeyParams { key: self.key()? })
    }

    pub(crate) fn set_params(mut self) -> Result<SetParams, Refusal> {
        let key = self.key()?;
        // `null` is a value like any other here, so this field is not read with `optional`.
        let value = self
            .fields
            .remove("value")
            .ok_or_else(|| bad_request(format!("{}: `value` is missing", self.method)))?;
        Ok(SetParams { key, value })
    }

    pub(crate) fn incr_params(mut self) -> Result<IncrParams, Refusal> {
        let key = self.key()?;
        let by = self
            .optional("by", "an integer between -2^63 and 2^63-1")?
            .unwrap_or(1);
        Ok(IncrParams { key, by })
    }

    pub(crate) fn list_params(mut self) -> Result<ListParams, Refusal> {
        let prefix: String = self.optional("prefix", "a string")?.unwrap_or_default();
        if prefix.contains('\0') {
            return Err(bad_request(format!(
                "{}: `prefix` must not contain NUL",
                self.method
            )));
        }
        if prefix.len() > MAX_KEY_BYTES {
            return Err(too_large(format!(
                "{}: `prefix` is {} bytes, longer than the longest key ({MAX_KEY_BYTES})",
                self.method,
                prefix.len()
            )));
        }
        let order = self
            .optional("order", "\"key\", \"value_asc\" or \"value_desc\"")?
            .unwrap_or_default();
        let limit = self.optional("limit", "a non-negative integer")?;
        let offset = self.optional("offset", "a non-negative integer")?;
        Ok(ListParams {
            prefix,
            order,
            limit,
            offset,
        })
    }
}

fn check_key(method: &str, field: &str, key: &str) -> Result<(), Refusal> {
    if key.is_empty() {
        return Err(bad_request(format!(
            "{method}: `{field}` must not be empty"
        )));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(too_large(format!(
            "{method}: `{field}` is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.contains('\0') {
        // PostgreSQL cannot store NUL in text; refuse it on SQLite too, so both behave alike.
        return Err(bad_request(format!(
            "{method}: `{field}` must not contain NUL"
        )));
    }
    Ok(())
}

/// A value as it is written: its JSON text and the two columns derived from it.
pub(crate) struct Row {
    pub(crate) text: String,
    pub(crate) num: Option<f64>,
    pub(crate) ival: Option<i64>,
}

impl Row {
    pub(crate) fn new(value: &Value) -> Result<Row, Refusal> {
        let text = serde_json::to_string(value)
            .map_err(|e| bad_request(format!("kv.set: `value` cannot be encoded: {e}")))?;
        if text.len() > MAX_VALUE_BYTES {
            return Err(too_large(format!(
                "kv.set: `value` is {} bytes of JSON; the limit is {MAX_VALUE_BYTES}",
                text.len()
            )));
        }
        Ok(Row {
            text,
            num: value.as_f64(),
            ival: value.as_i64(),
        })
    }
}

/// The JSON type of a value, with its article, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
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

    fn parse(method: &str, params: Value) -> Result<(), (ErrorCode, String)> {
        let p = Params::new(method, params).map_err(unwrap_plugin)?;
        match method {
            "kv.get" => p.key_params().map(drop),
            "kv.set" => p.set_params().and_then(|p| Row::new(&p.value)).map(drop),
            "kv.incr" => p.incr_params().map(drop),
            "kv.list" => p.list_params().map(drop),
            _ => unreachable!("test table names only these methods"),
        }
        .map_err(unwrap_plugin)
    }

    fn unwrap_plugin(e: Refusal) -> (ErrorCode, String) {
        (e.code, e.message)
    }

    #[test]
    fn parameter_checks() {
        use ErrorCode::{BadRequest, TooLarge};
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let max_key = "k".repeat(MAX_KEY_BYTES);
        let big_value = "v".repeat(MAX_VALUE_BYTES);
        // (method, params, expected error code and a fragment of its message, or None for ok)
        type Case = (&'static str, Value, Option<(ErrorCode, &'static str)>);
        let cases: Vec<Case> = vec![
            ("kv.get", json!({"key": "a"}), None),
            ("kv.get", json!({"key": "a", "extra": 1}), None),
            ("kv.get", json!({"key": max_key}), None),
            ("kv.get", json!({}), Some((BadRequest, "`key` is missing"))),
            (
                "kv.get",
                Value::Null,
                Some((BadRequest, "`key` is missing")),
            ),
            (
                "kv.get",
                json!({"key": null}),
                Some((BadRequest, "`key` is missing")),
            ),
            (
                "kv.get",
                json!({"key": 5}),
                Some((BadRequest, "`key` must be a string, not an integer")),
            ),
            (
                "kv.get",
                json!({"key": ""}),
                Some((BadRequest, "`key` must not be empty")),
            ),
            (
                "kv.get",
                json!({"key": "a\u{0}b"}),
                Some((BadRequest, "NUL")),
            ),
            (
                "kv.get",
                json!({"key": long_key}),
                Some((TooLarge, "`key` is 257 bytes")),
            ),
            (
                "kv.get",
                json!(["key"]),
                Some((BadRequest, "params must be an object, not an array")),
            ),
            ("kv.get", json!("key"), Some((BadRequest, "not a string"))),
            ("kv.set", json!({"key": "a", "value": null}), None),
            ("kv.set", json!({"key": "a", "value": {"x": [1, 2]}}), None),
            (
                "kv.set",
                json!({"key": "a"}),
                Some((BadRequest, "`value` is missing")),
            ),
            (
                "kv.set",
                json!({"value": 1}),
                Some((BadRequest, "`key` is missing")),
            ),
            (
                "kv.set",
                json!({"key": "a", "value": big_value}),
                Some((TooLarge, "`value` is 16386 bytes")),
            ),
            ("kv.incr", json!({"key": "a"}), None),
            ("kv.incr", json!({"key": "a", "by": -5}), None),
            ("kv.incr", json!({"key": "a", "by": null}), None),
            (
                "kv.incr",
                json!({"key": "a", "by": 1.5}),
                Some((BadRequest, "`by` must be an integer")),
            ),
            (
                "kv.incr",
                json!({"key": "a", "by": "1"}),
                Some((BadRequest, "`by` must be an integer")),
            ),
            (
                "kv.incr",
                json!({"key": "a", "by": u64::MAX}),
                Some((BadRequest, "`by` must be an integer")),
            ),
            ("kv.list", json!({}), None),
            (
                "kv.list",
                json!({"prefix": "a", "order": "value_desc", "limit": 5, "offset": 2}),
                None,
            ),
            (
                "kv.list",
                json!({"order": "sideways"}),
                Some((BadRequest, "`order` must be")),
            ),
            (
                "kv.list",
                json!({"limit": -1}),
                Some((BadRequest, "`limit` must be a non-negative integer")),
            ),
            (
                "kv.list",
                json!({"offset": "2"}),
                Some((BadRequest, "`offset` must be")),
            ),
            (
                "kv.list",
                json!({"prefix": 1}),
                Some((BadRequest, "`prefix` must be a string")),
            ),
            (
                "kv.list",
                json!({"prefix": long_key}),
                Some((TooLarge, "`prefix`")),
            ),
        ];
        for (method, params, want) in cases {
            let got = parse(method, params.clone());
            match (&got, want) {
                (Ok(()), None) => {}
                (Err((code, message)), Some((want_code, fragment)))
                    if *code == want_code && message.contains(fragment) => {}
                _ => panic!("{method} {params}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn derived_columns() {
        let cases = [
            (json!(5), Some(5.0), Some(5)),
            (json!(-3), Some(-3.0), Some(-3)),
            (json!(2.5), Some(2.5), None),
            (json!(2.0), Some(2.0), None),
            (json!(u64::MAX), Some(u64::MAX as f64), None),
            (json!("5"), None, None),
            (json!(null), None, None),
            (json!([1]), None, None),
        ];
        for (value, num, ival) in cases {
            let row = Row::new(&value).map_err(unwrap_plugin).expect("row");
            assert_eq!((row.num, row.ival), (num, ival), "{value}");
            assert_eq!(row.text, value.to_string());
        }
    }
}
