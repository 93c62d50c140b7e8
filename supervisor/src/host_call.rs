//! The methods a plugin can call on the host: reading a request once into a typed call, and
//! answering the storage calls.
//!
//! A plugin may be written in any language and may send anything, so a request's `params` are
//! read field by field: a refusal names the field and says what it should have been
//! (``kv.incr: `by` must be an integer between -2^63 and 2^63-1, not a string``), and keys,
//! prefixes and values are held to the protocol's limits ([`Key`], [`KeyPrefix`]) before
//! anything touches the database. Every method is one row of [`METHODS`], so adding one is done
//! there, and the `unknown_method` error lists them from the same table.
//!
//! The storage crate knows nothing of the protocol: [`call_kv`] calls its typed API and turns
//! the results and [`KvError`]s into the protocol's result shapes and error codes.

use hamper_protocol::{ErrorBody, ErrorCode, KvItem, ListOrder as WireOrder, Outcome};
use hamper_storage::{
    json_kind, Key, KeyPrefix, KvError, KvErrorKind, ListOrder, ListQuery, Storage,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

/// A request, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum HostCall {
    /// `plugins.list`: every plugin and its commands.
    PluginsList,
    /// `bot.info`: the bot's nick, channels and prefix.
    BotInfo,
    /// A `kv.*` call in the plugin's namespace.
    Kv(KvCall),
}

/// A `kv.*` call, with its parameters checked.
#[derive(Debug, Clone, PartialEq)]
pub enum KvCall {
    /// `kv.get`.
    Get {
        /// The key.
        key: Key,
    },
    /// `kv.set`.
    Set {
        /// The key.
        key: Key,
        /// The value, any JSON (its size is checked by storage).
        value: Value,
    },
    /// `kv.delete`.
    Delete {
        /// The key.
        key: Key,
    },
    /// `kv.incr`.
    Incr {
        /// The key.
        key: Key,
        /// How much to add (default 1).
        by: i64,
    },
    /// `kv.list`.
    List(ListQuery),
}

/// One method of the host: its name and how its params are read.
struct Method {
    name: &'static str,
    parse: fn(Params) -> Result<HostCall, ErrorBody>,
}

/// Every method the host serves, in the order the `unknown_method` error lists them.
const METHODS: &[Method] = &[
    Method {
        name: "plugins.list",
        // Takes no params, and ignores any it is given.
        parse: |_| Ok(HostCall::PluginsList),
    },
    Method {
        name: "bot.info",
        parse: |_| Ok(HostCall::BotInfo),
    },
    Method {
        name: "kv.get",
        parse: |p| by_key(p, |key| KvCall::Get { key }),
    },
    Method {
        name: "kv.set",
        parse: |p| {
            let mut p = p.object()?;
            let key = p.key()?;
            // `null` is a value like any other here, so this field is not read with `optional`.
            let value = p.present("value")?;
            Ok(HostCall::Kv(KvCall::Set { key, value }))
        },
    },
    Method {
        name: "kv.delete",
        parse: |p| by_key(p, |key| KvCall::Delete { key }),
    },
    Method {
        name: "kv.incr",
        parse: |p| {
            let mut p = p.object()?;
            let key = p.key()?;
            let by = p
                .optional("by", "an integer between -2^63 and 2^63-1")?
                .unwrap_or(1);
            Ok(HostCall::Kv(KvCall::Incr { key, by }))
        },
    },
    Method {
        name: "kv.list",
        parse: |p| {
            let mut p = p.object()?;
            let prefix: String = p.optional("prefix", "a string")?.unwrap_or_default();
            let prefix = KeyPrefix::new(prefix).map_err(|e| kv_error_body(p.method, e))?;
            let order = match p
                .optional("order", "\"key\", \"value_asc\" or \"value_desc\"")?
                .unwrap_or_default()
            {
                WireOrder::Key => ListOrder::Key,
                WireOrder::ValueAsc => ListOrder::ValueAsc,
                WireOrder::ValueDesc => ListOrder::ValueDesc,
            };
            let defaults = ListQuery::default();
            let limit = p
                .optional("limit", "a non-negative integer")?
                .unwrap_or(defaults.limit);
            let offset = p
                .optional("offset", "a non-negative integer")?
                .unwrap_or(defaults.offset);
            Ok(HostCall::Kv(KvCall::List(ListQuery {
                prefix,
                order,
                limit,
                offset,
            })))
        },
    },
];

/// Reads the params of a call that takes only a key.
fn by_key(params: Params, call: fn(Key) -> KvCall) -> Result<HostCall, ErrorBody> {
    Ok(HostCall::Kv(call(params.object()?.key()?)))
}

impl HostCall {
    /// Reads a request of `method` with `params` (absent params are `null`), or the error to
    /// answer it with: `unknown_method` naming the methods there are, or `bad_request` or
    /// `too_large` naming the field.
    pub fn parse(method: &str, params: Value) -> Result<HostCall, ErrorBody> {
        let Some(known) = METHODS.iter().find(|m| m.name == method) else {
            let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
            return Err(error_body(
                ErrorCode::UnknownMethod,
                format!(
                    "unknown method `{method}`; this host knows {}",
                    names.join(", ")
                ),
            ));
        };
        (known.parse)(Params {
            method: known.name,
            params,
        })
    }
}

impl KvCall {
    /// The protocol method this call came from, for messages.
    pub fn method(&self) -> &'static str {
        match self {
            KvCall::Get { .. } => "kv.get",
            KvCall::Set { .. } => "kv.set",
            KvCall::Delete { .. } => "kv.delete",
            KvCall::Incr { .. } => "kv.incr",
            KvCall::List(_) => "kv.list",
        }
    }
}

/// Runs `call` in `plugin`'s namespace and answers it as the protocol says (§8 of
/// `docs/protocol.md`): `{"value"}`, `{}`, `{"deleted"}`, `{"value"}` and `{"items"}`, or an
/// error whose code the plugin can act on. Never panics or hangs (see [`Storage`]).
pub async fn call_kv(storage: &Storage, plugin: &str, call: KvCall) -> Outcome {
    let method = call.method();
    let refusal = |e| kv_error_body(method, e);
    let answer = match call {
        KvCall::Get { key } => match storage.get(plugin, &key).await {
            Ok(Some(value)) => Ok(json!({ "value": value })),
            Ok(None) => Err(error_body(
                ErrorCode::NotFound,
                format!("no value for key `{key}`"),
            )),
            Err(e) => Err(refusal(e)),
        },
        KvCall::Set { key, value } => storage
            .set(plugin, &key, &value)
            .await
            .map(|()| json!({}))
            .map_err(refusal),
        KvCall::Delete { key } => storage
            .delete(plugin, &key)
            .await
            .map(|deleted| json!({ "deleted": deleted }))
            .map_err(refusal),
        KvCall::Incr { key, by } => storage
            .incr(plugin, &key, by)
            .await
            .map(|value| json!({ "value": value }))
            .map_err(refusal),
        KvCall::List(query) => storage
            .list(plugin, &query)
            .await
            .map(|entries| {
                let items: Vec<KvItem> = entries
                    .into_iter()
                    .map(|e| KvItem {
                        key: e.key,
                        value: e.value,
                    })
                    .collect();
                json!({ "items": items })
            })
            .map_err(refusal),
    };
    match answer {
        Ok(result) => Outcome::Result(result),
        Err(body) => {
            tracing::debug!(plugin, method, code = %body.code, message = %body.message, "storage request refused");
            Outcome::Error(body)
        }
    }
}

/// The protocol error for a storage error of `method`. Errors about the call itself carry the
/// method, as every refusal of a request does (`kv.incr: key `k` holds a string, not an
/// integer`); errors about storage are said as storage says them.
fn kv_error_body(method: &str, error: KvError) -> ErrorBody {
    let about_the_call = |code| error_body(code, format!("{method}: {}", error.message));
    match error.kind {
        KvErrorKind::BadRequest => about_the_call(ErrorCode::BadRequest),
        KvErrorKind::TooLarge => about_the_call(ErrorCode::TooLarge),
        KvErrorKind::Contended => about_the_call(ErrorCode::Unavailable),
        KvErrorKind::Unavailable => error_body(ErrorCode::Unavailable, error.message),
        KvErrorKind::Internal => error_body(ErrorCode::Internal, error.message),
    }
}

fn error_body(code: ErrorCode, message: String) -> ErrorBody {
    ErrorBody { code, message }
}

/// A request's params before they are known to be an object.
struct Params {
    method: &'static str,
    params: Value,
}

impl Params {
    /// The fields; absent or `null` params count as `{}`, anything else but an object is
    /// refused.
    fn object(self) -> Result<Fields, ErrorBody> {
        let fields = match self.params {
            Value::Object(fields) => fields,
            Value::Null => Map::new(),
            other => {
                return Err(bad_request(format!(
                    "{}: params must be an object, not {}",
                    self.method,
                    json_kind(&other)
                )))
            }
        };
        Ok(Fields {
            method: self.method,
            fields,
        })
    }
}

/// A request's params, read field by field so that an error names the field.
struct Fields {
    method: &'static str,
    fields: Map<String, Value>,
}

impl Fields {
    /// The field, or `None` when it is absent or `null`.
    fn optional<T: DeserializeOwned>(
        &mut self,
        name: &str,
        want: &str,
    ) -> Result<Option<T>, ErrorBody> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let kind = json_kind(&value);
                serde_json::from_value(value).map(Some).map_err(|_| {
                    bad_request(format!(
                        "{}: `{name}` must be {want}, not {kind}",
                        self.method
                    ))
                })
            }
        }
    }

    /// The field, which may be `null` but must be there.
    fn present(&mut self, name: &str) -> Result<Value, ErrorBody> {
        self.fields.remove(name).ok_or_else(|| self.missing(name))
    }

    fn missing(&self, name: &str) -> ErrorBody {
        bad_request(format!("{}: `{name}` is missing", self.method))
    }

    /// The `key` field: a string within the limits.
    fn key(&mut self) -> Result<Key, ErrorBody> {
        let key: String = self
            .optional("key", "a string")?
            .ok_or_else(|| self.missing("key"))?;
        Key::new(key).map_err(|e| kv_error_body(self.method, e))
    }
}

fn bad_request(message: String) -> ErrorBody {
    error_body(ErrorCode::BadRequest, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamper_protocol::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

    fn key(k: &str) -> Key {
        Key::new(k).expect("a valid key")
    }

    fn prefix(p: &str) -> KeyPrefix {
        KeyPrefix::new(p).expect("a valid prefix")
    }

    fn kv(call: KvCall) -> Result<HostCall, (ErrorCode, &'static str)> {
        Ok(HostCall::Kv(call))
    }

    fn refused(
        code: ErrorCode,
        fragment: &'static str,
    ) -> Result<HostCall, (ErrorCode, &'static str)> {
        Err((code, fragment))
    }

    #[test]
    fn parameter_checks() {
        use ErrorCode::{BadRequest, TooLarge, UnknownMethod};
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let max_key = "k".repeat(MAX_KEY_BYTES);
        let big_value = "v".repeat(MAX_VALUE_BYTES);
        let list = |query: ListQuery| kv(KvCall::List(query));
        // (method, params, the call it reads as, or the code and a fragment of the message)
        type Case = (
            &'static str,
            Value,
            Result<HostCall, (ErrorCode, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            ("kv.get", json!({"key": "a"}), kv(KvCall::Get { key: key("a") })),
            ("kv.get", json!({"key": "a", "extra": 1}), kv(KvCall::Get { key: key("a") })),
            ("kv.get", json!({"key": max_key}), kv(KvCall::Get { key: key(&max_key) })),
            ("kv.get", json!({}), refused(BadRequest, "kv.get: `key` is missing")),
            ("kv.get", Value::Null, refused(BadRequest, "kv.get: `key` is missing")),
            ("kv.get", json!({"key": null}), refused(BadRequest, "kv.get: `key` is missing")),
            (
                "kv.get",
                json!({"key": 5}),
                refused(BadRequest, "kv.get: `key` must be a string, not an integer"),
            ),
            ("kv.get", json!({"key": ""}), refused(BadRequest, "kv.get: `key` must not be empty")),
            (
                "kv.get",
                json!({"key": "a\u{0}b"}),
                refused(BadRequest, "kv.get: `key` must not contain NUL"),
            ),
            (
                "kv.get",
                json!({"key": long_key}),
                refused(TooLarge, "kv.get: `key` is 257 bytes; the limit is 256"),
            ),
            (
                "kv.get",
                json!(["key"]),
                refused(BadRequest, "kv.get: params must be an object, not an array"),
            ),
            ("kv.get", json!("key"), refused(BadRequest, "not a string")),
            ("kv.get", json!(42), refused(BadRequest, "not an integer")),
            (
                "kv.set",
                json!({"key": "a", "value": null}),
                kv(KvCall::Set { key: key("a"), value: json!(null) }),
            ),
            (
                "kv.set",
                json!({"key": "a", "value": {"x": [1, 2]}}),
                kv(KvCall::Set { key: key("a"), value: json!({"x": [1, 2]}) }),
            ),
            // The value's size is storage's to check, when the call runs (see below).
            (
                "kv.set",
                json!({"key": "a", "value": big_value}),
                kv(KvCall::Set { key: key("a"), value: json!(big_value) }),
            ),
            ("kv.set", json!({"key": "a"}), refused(BadRequest, "kv.set: `value` is missing")),
            ("kv.set", json!({"value": 1}), refused(BadRequest, "kv.set: `key` is missing")),
            ("kv.set", json!({"key": ""}), refused(BadRequest, "`key` must not be empty")),
            (
                "kv.set",
                json!({"key": long_key, "value": 1}),
                refused(TooLarge, "kv.set: `key` is 257 bytes"),
            ),
            ("kv.delete", json!({"key": "a"}), kv(KvCall::Delete { key: key("a") })),
            (
                "kv.delete",
                json!({"key": long_key}),
                refused(TooLarge, "kv.delete: `key` is 257 bytes"),
            ),
            ("kv.incr", json!({"key": "a"}), kv(KvCall::Incr { key: key("a"), by: 1 })),
            ("kv.incr", json!({"key": "a", "by": -5}), kv(KvCall::Incr { key: key("a"), by: -5 })),
            ("kv.incr", json!({"key": "a", "by": null}), kv(KvCall::Incr { key: key("a"), by: 1 })),
            (
                "kv.incr",
                json!({"key": "a", "by": i64::MIN}),
                kv(KvCall::Incr { key: key("a"), by: i64::MIN }),
            ),
            (
                "kv.incr",
                json!({"key": "a", "by": 1.5}),
                refused(
                    BadRequest,
                    "kv.incr: `by` must be an integer between -2^63 and 2^63-1, not a floating-point number",
                ),
            ),
            ("kv.incr", json!({"key": "a", "by": "1"}), refused(BadRequest, "`by` must be an integer")),
            ("kv.incr", json!({"key": "k", "by": "one"}), refused(BadRequest, "`by` must be an integer")),
            (
                "kv.incr",
                json!({"key": "a", "by": u64::MAX}),
                refused(BadRequest, "`by` must be an integer"),
            ),
            (
                "kv.incr",
                json!({"key": long_key}),
                refused(TooLarge, "kv.incr: `key` is 257 bytes"),
            ),
            // The key is read first, as before: its error wins over the others.
            ("kv.incr", json!({"key": "", "by": "x"}), refused(BadRequest, "`key` must not be empty")),
            ("kv.list", json!({}), list(ListQuery::default())),
            ("kv.list", Value::Null, list(ListQuery::default())),
            (
                "kv.list",
                json!({"prefix": "a", "order": "value_desc", "limit": 5, "offset": 2}),
                list(ListQuery {
                    prefix: prefix("a"),
                    order: ListOrder::ValueDesc,
                    limit: 5,
                    offset: 2,
                }),
            ),
            (
                "kv.list",
                json!({"order": "value_asc", "limit": 5000}),
                list(ListQuery {
                    order: ListOrder::ValueAsc,
                    limit: 5000,
                    ..ListQuery::default()
                }),
            ),
            (
                "kv.list",
                json!({"order": "key", "prefix": null, "limit": null, "offset": null}),
                list(ListQuery::default()),
            ),
            (
                "kv.list",
                json!({"order": "sideways"}),
                refused(
                    BadRequest,
                    "kv.list: `order` must be \"key\", \"value_asc\" or \"value_desc\", not a string",
                ),
            ),
            ("kv.list", json!({"order": "random"}), refused(BadRequest, "`order` must be")),
            (
                "kv.list",
                json!({"limit": -1}),
                refused(BadRequest, "kv.list: `limit` must be a non-negative integer, not an integer"),
            ),
            ("kv.list", json!({"limit": "all"}), refused(BadRequest, "`limit` must be")),
            ("kv.list", json!({"offset": "2"}), refused(BadRequest, "`offset` must be")),
            (
                "kv.list",
                json!({"prefix": 1}),
                refused(BadRequest, "kv.list: `prefix` must be a string, not an integer"),
            ),
            (
                "kv.list",
                json!({"prefix": "a\u{0}"}),
                refused(BadRequest, "kv.list: `prefix` must not contain NUL"),
            ),
            (
                "kv.list",
                json!({"prefix": long_key}),
                refused(
                    TooLarge,
                    "kv.list: `prefix` is 257 bytes, longer than the longest key (256)",
                ),
            ),
            ("kv.list", json!(true), refused(BadRequest, "kv.list: params must be an object, not a boolean")),
            // The prefix is read first, as before.
            (
                "kv.list",
                json!({"prefix": "a\u{0}", "order": "random"}),
                refused(BadRequest, "`prefix` must not contain NUL"),
            ),
            // Methods without params take whatever they are given, as before.
            ("plugins.list", Value::Null, Ok(HostCall::PluginsList)),
            ("plugins.list", json!([1, 2]), Ok(HostCall::PluginsList)),
            ("bot.info", json!({}), Ok(HostCall::BotInfo)),
            ("bot.info", json!("x"), Ok(HostCall::BotInfo)),
            ("kv.frobnicate", json!({}), refused(UnknownMethod, "unknown method `kv.frobnicate`")),
            ("kv.", json!({}), refused(UnknownMethod, "unknown method `kv.`")),
            ("KV.GET", json!({"key": "a"}), refused(UnknownMethod, "unknown method `KV.GET`")),
            ("", Value::Null, refused(UnknownMethod, "unknown method ``")),
        ];
        for (method, params, want) in cases {
            let got = HostCall::parse(method, params.clone());
            match (&got, &want) {
                (Ok(call), Ok(want_call)) if call == want_call => {}
                (Err(e), Err((code, fragment)))
                    if e.code == *code && e.message.contains(fragment) => {}
                _ => panic!("{method} {params}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn an_unknown_method_is_told_every_method_of_the_table() {
        let Err(e) = HostCall::parse("nope", json!({})) else {
            panic!("parsed an unknown method")
        };
        assert_eq!(e.code, ErrorCode::UnknownMethod);
        assert_eq!(
            e.message,
            "unknown method `nope`; this host knows plugins.list, bot.info, kv.get, kv.set, \
             kv.delete, kv.incr, kv.list"
        );
    }

    #[test]
    fn every_method_of_the_table_parses_and_kv_calls_name_their_method() {
        let params = json!({"key": "k", "value": 1});
        for method in METHODS {
            match HostCall::parse(method.name, params.clone()) {
                Ok(HostCall::Kv(call)) => assert_eq!(call.method(), method.name),
                Ok(_) => assert!(!method.name.starts_with("kv."), "{}", method.name),
                Err(e) => panic!("{}: {e:?}", method.name),
            }
        }
    }

    #[test]
    fn storage_errors_become_protocol_errors() {
        let cases = [
            (
                KvErrorKind::BadRequest,
                "m",
                ErrorCode::BadRequest,
                "kv.incr: m",
            ),
            (
                KvErrorKind::TooLarge,
                "m",
                ErrorCode::TooLarge,
                "kv.incr: m",
            ),
            (
                KvErrorKind::Contended,
                "key `k` kept changing; try again",
                ErrorCode::Unavailable,
                "kv.incr: key `k` kept changing; try again",
            ),
            (
                KvErrorKind::Unavailable,
                "storage is unavailable; try again later",
                ErrorCode::Unavailable,
                "storage is unavailable; try again later",
            ),
            (
                KvErrorKind::Internal,
                "storage failed; the host's log has the details",
                ErrorCode::Internal,
                "storage failed; the host's log has the details",
            ),
        ];
        for (kind, message, code, want) in cases {
            let body = kv_error_body("kv.incr", KvError::new(kind, message));
            assert_eq!((body.code, body.message.as_str()), (code, want), "{kind:?}");
        }
    }

    /// Parses and runs a request as the router does, and returns the response's JSON without
    /// its `type` and `id`: `{"result": …}` or `{"error": {"code", "message"}}`.
    async fn answer(storage: &Storage, method: &str, params: Value) -> Value {
        let outcome = match HostCall::parse(method, params) {
            Ok(HostCall::Kv(call)) => call_kv(storage, "p", call).await,
            Ok(other) => panic!("{method} is not a storage call: {other:?}"),
            Err(e) => Outcome::Error(e),
        };
        serde_json::to_value(outcome).expect("an outcome is JSON")
    }

    #[tokio::test]
    async fn storage_calls_answer_as_the_protocol_says() {
        let storage = Storage::open("sqlite::memory:").await.expect("memory");
        let s = &storage;
        let big = "v".repeat(16_400);
        // (method, params, the response), in order: the examples of docs/protocol.md §8 first.
        let cases = [
            (
                "kv.set",
                json!({"key": "greeting", "value": {"text": "hi", "times": [1, 2.5, null]}}),
                json!({"result": {}}),
            ),
            (
                "kv.get",
                json!({"key": "greeting"}),
                json!({"result": {"value": {"text": "hi", "times": [1, 2.5, null]}}}),
            ),
            (
                "kv.get",
                json!({"key": "nope"}),
                json!({"error": {"code": "not_found", "message": "no value for key `nope`"}}),
            ),
            (
                "kv.incr",
                json!({"key": "score/foo", "by": -1}),
                json!({"result": {"value": -1}}),
            ),
            (
                "kv.incr",
                json!({"key": "score/bar", "by": 6}),
                json!({"result": {"value": 6}}),
            ),
            (
                "kv.incr",
                json!({"key": "score/baz", "by": 2}),
                json!({"result": {"value": 2}}),
            ),
            (
                "kv.list",
                json!({"prefix": "score/", "order": "value_desc", "limit": 2}),
                json!({"result": {"items": [
                    {"key": "score/bar", "value": 6},
                    {"key": "score/baz", "value": 2}
                ]}}),
            ),
            (
                "kv.set",
                json!({"key": "greeting", "value": "hello"}),
                json!({"result": {}}),
            ),
            (
                "kv.incr",
                json!({"key": "greeting"}),
                json!({"error": {"code": "bad_request",
                    "message": "kv.incr: key `greeting` holds a string, not an integer"}}),
            ),
            (
                "kv.delete",
                json!({"key": "greeting"}),
                json!({"result": {"deleted": true}}),
            ),
            (
                "kv.delete",
                json!({"key": "greeting"}),
                json!({"result": {"deleted": false}}),
            ),
            (
                "kv.set",
                json!({"key": "k", "value": big}),
                json!({"error": {"code": "too_large",
                    "message": "kv.set: `value` is 16402 bytes of JSON; the limit is 16384"}}),
            ),
            (
                "kv.set",
                json!({"key": "max", "value": i64::MAX}),
                json!({"result": {}}),
            ),
            (
                "kv.incr",
                json!({"key": "max"}),
                json!({"error": {"code": "bad_request",
                    "message": "kv.incr: 9223372036854775807 + 1 at key `max` overflows a 64-bit integer"}}),
            ),
            (
                "kv.get",
                json!({"key": "x".repeat(300)}),
                json!({"error": {"code": "too_large",
                    "message": "kv.get: `key` is 300 bytes; the limit is 256"}}),
            ),
            (
                "kv.set",
                json!({"key": ""}),
                json!({"error": {"code": "bad_request", "message": "kv.set: `key` must not be empty"}}),
            ),
            (
                "kv.list",
                json!({"prefix": "nothing/"}),
                json!({"result": {"items": []}}),
            ),
        ];
        for (method, params, want) in cases {
            let got = answer(s, method, params.clone()).await;
            assert_eq!(got, want, "{method} {params}");
        }
        // Refused writes left nothing behind.
        assert_eq!(
            answer(s, "kv.list", json!({})).await,
            json!({"result": {"items": [
                {"key": "max", "value": i64::MAX},
                {"key": "score/bar", "value": 6},
                {"key": "score/baz", "value": 2},
                {"key": "score/foo", "value": -1}
            ]}})
        );
        storage.close().await;
        // A closed storage answers `unavailable`, not a panic or a hang.
        for method in ["kv.get", "kv.set", "kv.delete", "kv.incr", "kv.list"] {
            assert_eq!(
                answer(s, method, json!({"key": "k", "value": 1})).await,
                json!({"error": {"code": "unavailable",
                    "message": "storage is unavailable; try again later"}}),
                "{method}"
            );
        }
    }
}
