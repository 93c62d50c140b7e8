//! Reading a protocol line straight into its message type.
//!
//! [`FromPlugin`] and [`ToPlugin`] are internally tagged enums (`{"type":"message",…}`), and
//! serde's derived code for those first copies the whole object into a tree of its own, every
//! string allocated twice, and then reads the variant from the tree; a `command` or a `response`,
//! whose structs flatten another type into them, goes through such a tree once more. That was
//! most of what a plugin spent on each event and a good part of what the host spent on each line
//! a plugin wrote. Every line either side writes with this crate, and with `json.dumps` or
//! `JSON.stringify` from an object literal written in the protocol's order, starts with its
//! `type`, so [`DecodeLine::decode_line`] reads the tag there and then the line directly as the
//! variant's struct, which ignores the `type` field like any field it does not know.
//!
//! It is only a faster way to the same value: when the tag is not first, or the line does not
//! decode this way, it answers `None` and the codec decodes with `Deserialize`, whose errors are
//! the ones a plugin author reads.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::wire::*;

/// A message that can be read from a line without serde's buffering of tagged enums.
pub trait DecodeLine: DeserializeOwned {
    /// The message on `line` (without its newline), or `None` when this way does not apply;
    /// then `serde_json::from_slice` gives the same value or the error.
    fn decode_line(line: &[u8]) -> Option<Self>;
}

impl DecodeLine for ToPlugin {
    fn decode_line(line: &[u8]) -> Option<Self> {
        Some(match leading_tag(line)? {
            "message" => ToPlugin::Message(direct(line)?),
            "command" => ToPlugin::Command(command(line)?),
            "response" => ToPlugin::Response(response(line)?),
            "ping" => ToPlugin::Ping(direct(line)?),
            "hello" => ToPlugin::Hello(direct(line)?),
            "join" => ToPlugin::Join(direct(line)?),
            "part" => ToPlugin::Part(direct(line)?),
            "quit" => ToPlugin::Quit(direct(line)?),
            "kick" => ToPlugin::Kick(direct(line)?),
            "nick" => ToPlugin::Nick(direct(line)?),
            "topic" => ToPlugin::Topic(direct(line)?),
            "invite" => ToPlugin::Invite(direct(line)?),
            "connected" => ToPlugin::Connected(direct(line)?),
            "disconnected" => ToPlugin::Disconnected(direct(line)?),
            "goodbye" => ToPlugin::Goodbye(direct(line)?),
            _ => return None,
        })
    }
}

impl DecodeLine for FromPlugin {
    fn decode_line(line: &[u8]) -> Option<Self> {
        Some(match leading_tag(line)? {
            "reply" => FromPlugin::Reply(direct(line)?),
            "pong" => FromPlugin::Pong(direct(line)?),
            "request" => FromPlugin::Request(direct(line)?),
            "say" => FromPlugin::Say(direct(line)?),
            "me" => FromPlugin::Me(direct(line)?),
            "notice" => FromPlugin::Notice(direct(line)?),
            "join" => FromPlugin::Join(direct(line)?),
            "part" => FromPlugin::Part(direct(line)?),
            "raw" => FromPlugin::Raw(direct(line)?),
            "hello" => FromPlugin::Hello(direct(line)?),
            _ => return None,
        })
    }
}

/// The value of `type` when it is the object's first key, as in `{"type":"ping","id":1}` or
/// `{"type": "ping", "id": 1}`; `None` otherwise, or when the tag holds an escape.
fn leading_tag(line: &[u8]) -> Option<&str> {
    let rest = skip_space(line).strip_prefix(b"{")?;
    let rest = skip_space(rest).strip_prefix(b"\"type\"")?;
    let rest = skip_space(rest).strip_prefix(b":")?;
    let rest = skip_space(rest).strip_prefix(b"\"")?;
    let end = rest.iter().position(|b| *b == b'"' || *b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn direct<T: DeserializeOwned>(line: &[u8]) -> Option<T> {
    serde_json::from_slice(line).ok()
}

/// A `command`'s own fields; the rest of the line is its [`Message`].
#[derive(Deserialize)]
struct CommandFields {
    command: String,
    #[serde(default)]
    invoked_as: String,
    #[serde(default)]
    args: String,
}

fn command(line: &[u8]) -> Option<CommandEvent> {
    let own: CommandFields = direct(line)?;
    Some(CommandEvent {
        command: own.command,
        invoked_as: own.invoked_as,
        args: own.args,
        message: direct(line)?,
    })
}

/// A `response`'s fields, its outcome read as the two keys it may be.
#[derive(Deserialize)]
struct ResponseFields {
    id: RequestId,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// A field that is there, even as `null` (which `Option` alone would read as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn response(line: &[u8]) -> Option<Response> {
    let fields: ResponseFields = direct(line)?;
    let outcome = match (fields.result, fields.error) {
        (Some(value), None) => Outcome::Result(value),
        (None, Some(error)) => Outcome::Error(error),
        // Neither or both: the derived code decides what that means.
        _ => return None,
    };
    Some(Response {
        id: fields.id,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of every kind, as the host, the SDK and plugins in other languages write them.
    const TO_PLUGIN: &[&str] = &[
        r##"{"type":"hello","protocol_version":1,"name":"karma","commands":["karma"],"subscriptions":["message"],"rejected":[],"config":{"opinions":true},"bot":{"nick":"hamper","channels":["#c"],"command_prefix":"!","connected":true}}"##,
        r##"{"type":"message","channel":"#c","nick":"alice","user":"a","host":"h","account":null,"text":"hi \"there\" \u00e9","message":"hi","directed":false,"target":null,"private":false,"action":false,"time":17}"##,
        r##"{"type":"message","channel":null,"nick":"bob","text":"x","message":"x","private":true}"##,
        r##"{"type":"command","command":"karma","invoked_as":"score","args":"foo bar","channel":"#c","nick":"alice","user":"a","host":"h","account":null,"text":"!score foo bar","message":"score foo bar","directed":true,"target":null,"private":false,"action":false,"time":5}"##,
        r##"{"type":"command","command":"echo","nick":"b","text":"!echo","message":"echo"}"##,
        r##"{"type":"response","id":3,"result":{"value":1}}"##,
        r##"{"type":"response","id":4,"result":null}"##,
        r##"{"type":"response","id":5,"error":{"code":"not_found","message":"no value"}}"##,
        r##"{"type":"response","id":6,"error":{"code":"some_new_code"}}"##,
        r##"{"type":"ping","id":42}"##,
        r##"{"type":"goodbye","reason":"bye"}"##,
        r##"{"type":"join","channel":"#c","nick":"n","user":null,"host":null,"is_bot":false}"##,
        r##"{"type":"part","channel":"#c","nick":"n","reason":"r","is_bot":true}"##,
        r##"{"type":"quit","nick":"n","reason":null}"##,
        r##"{"type":"kick","channel":"#c","nick":"n","by":"op","reason":"r","is_bot":false}"##,
        r##"{"type":"nick","old":"a","new":"b","is_bot":false}"##,
        r##"{"type":"topic","channel":"#c","nick":"n","topic":"t"}"##,
        r##"{"type":"invite","channel":"#c","nick":"n"}"##,
        r##"{"type":"connected","nick":"hamper","server":"irc.example"}"##,
        r##"{"type":"disconnected","reason":"gone"}"##,
        r##"{"type": "ping", "id": 7, "later": [1, {"x": null}]}"##,
        r##"  { "type" : "goodbye" }"##,
    ];

    const FROM_PLUGIN: &[&str] = &[
        r##"{"type":"hello","protocol_version":1,"name":"echo","commands":[{"name":"echo","help":"h"}],"subscriptions":["message","join"]}"##,
        r##"{"type":"reply","channel":"#c","nick":"alice","text":"hi\nthere"}"##,
        r##"{"type":"reply","channel":null,"nick":"alice","text":"in private"}"##,
        r##"{"type":"pong","id":9}"##,
        r##"{"type":"request","id":1,"method":"kv.get","params":{"key":"k"}}"##,
        r##"{"type":"request","id":2,"method":"bot.info"}"##,
        r##"{"type":"say","target":"#c","text":"t"}"##,
        r##"{"type":"me","target":"#c","text":"t"}"##,
        r##"{"type":"notice","target":"bob","text":"t"}"##,
        r##"{"type":"join","channel":"#d","key":null}"##,
        r##"{"type":"part","channel":"#d"}"##,
        r##"{"type":"raw","line":"PRIVMSG #c :x"}"##,
        r##"{"type": "reply", "channel": "#c", "nick": "a", "text": "python's spacing"}"##,
    ];

    /// Whatever the fast way gives, the derived code gives too; for these lines it applies.
    fn agrees<T: DecodeLine + PartialEq + std::fmt::Debug>(lines: &[&str]) {
        for line in lines {
            let derived: T = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let fast = T::decode_line(line.as_bytes());
            assert_eq!(fast.as_ref(), Some(&derived), "{line}");
        }
    }

    #[test]
    fn reads_every_kind_as_the_derived_code_does() {
        agrees::<ToPlugin>(TO_PLUGIN);
        agrees::<FromPlugin>(FROM_PLUGIN);
    }

    #[test]
    fn leaves_what_it_cannot_read_to_the_derived_code() {
        let cases: &[&str] = &[
            // The tag is not the first key.
            r##"{"id":1,"type":"pong"}"##,
            // An escape in the tag.
            r##"{"type":"po\u006eg","id":1}"##,
            // Not a type this direction knows, or not a tag at all.
            r##"{"type":"message","channel":"#c"}"##,
            r##"{"type":"replay","text":"x"}"##,
            r##"{"type":1}"##,
            r##"[1,2]"##,
            "not json",
            // A field of the wrong type.
            r##"{"type":"pong","id":"one"}"##,
        ];
        for line in cases {
            assert_eq!(FromPlugin::decode_line(line.as_bytes()), None, "{line}");
        }
        // A response with both or neither outcome goes the derived way, whatever it says.
        for line in [
            r##"{"type":"response","id":1}"##,
            r##"{"type":"response","id":1,"result":1,"error":{"code":"internal"}}"##,
        ] {
            assert_eq!(ToPlugin::decode_line(line.as_bytes()), None, "{line}");
        }
        // The tag first but the line not this direction's message: the derived code says why.
        assert_eq!(ToPlugin::decode_line(br#"{"type":"pong","id":1}"#), None);
    }
}
