//! A bounded newline-delimited JSON codec.
//!
//! Unlike `tokio_util::codec::LinesCodec` inside a `FramedRead`, a bad line never ends the stream:
//! an over-long line or a line that is not valid JSON of the expected type is yielded as an item
//! error ([`LineError`]) and decoding continues with the next line. Only real I/O errors end the
//! stream. That is what lets the host count a plugin's faults instead of losing the plugin.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder};

use crate::decode::DecodeLine;

/// A line that could not be decoded. Decoding goes on with the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line was longer than the limit; the rest of it up to the next newline was skipped.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The line was not UTF-8, not JSON, or not a known message.
    #[error("malformed line: {reason} (line starts: {start:?})")]
    Malformed {
        /// What serde said.
        reason: String,
        /// The first few characters of the line, for the log.
        start: String,
    },
}

/// Newline-delimited JSON: decodes `D` and encodes `E`, with a bound on line length.
#[derive(Debug)]
pub struct NdjsonCodec<D, E> {
    max_length: usize,
    /// Where to resume scanning for a newline.
    next_index: usize,
    /// True while skipping the rest of an over-long line.
    discarding: bool,
    _types: PhantomData<fn(E) -> D>,
}

impl<D, E> NdjsonCodec<D, E> {
    /// A codec that refuses lines longer than `max_length` bytes (newline not counted).
    pub fn new(max_length: usize) -> Self {
        NdjsonCodec {
            max_length,
            next_index: 0,
            discarding: false,
            _types: PhantomData,
        }
    }
}

impl<D, E> Default for NdjsonCodec<D, E> {
    fn default() -> Self {
        Self::new(crate::MAX_LINE_BYTES)
    }
}

fn parse_line<D: DecodeLine>(line: &[u8]) -> Result<D, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(msg) = D::decode_line(line) {
        return Ok(msg);
    }
    serde_json::from_slice(line).map_err(|err| LineError::Malformed {
        reason: explain(&err, line),
        start: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
    })
}

/// Says what is wrong with a line in the words of a plugin author, who did not write serde's
/// types and needs to know what to change. Only runs for a line that failed to decode.
fn explain(err: &serde_json::Error, line: &[u8]) -> String {
    let said = err.to_string();
    let said = said.split(" at line ").next().unwrap_or(&said);
    let text = String::from_utf8_lossy(line);
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(_) => {
            let trimmed = text.trim_start();
            let repr = trimmed.starts_with("{'")
                || [": True", ": False", ": None"]
                    .iter()
                    .any(|w| trimmed.contains(w));
            return if repr {
                format!("not JSON but a Python repr ({said}): JSON has double quotes and true, false, null; write the line with json.dumps(message)")
            } else {
                format!("not JSON ({said}); stdout carries protocol lines only: write logs and debugging output to stderr")
            };
        }
    };
    let kind = match &value {
        serde_json::Value::Object(map) => map.get("type"),
        other => {
            let what = match other {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                _ => "not an object",
            };
            return format!("JSON, but {what}: each line must be one object with a `type`");
        }
    };
    match kind {
        None => "the object has no `type`: each line needs one, e.g. {\"type\":\"reply\",…}".into(),
        Some(serde_json::Value::String(kind)) => {
            match said.strip_prefix("unknown variant ") {
                Some(rest) => {
                    let known = rest
                        .split_once("expected one of ")
                        .map(|(_, list)| list.replace('`', ""))
                        .unwrap_or_default();
                    format!("`type` \"{kind}\" is not a message type of this protocol; use one of: {known}")
                }
                None => format!("a `{kind}` line: {said}"),
            }
        }
        Some(other) => format!("`type` is {other}, not the name of a message such as \"reply\""),
    }
}

impl<D: DecodeLine, E> Decoder for NdjsonCodec<D, E> {
    type Item = Result<D, LineError>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        loop {
            let scan_to = buf.len().min(self.max_length.saturating_add(1));
            let newline = memchr::memchr(b'\n', &buf[self.next_index.min(scan_to)..scan_to])
                .map(|i| i + self.next_index.min(scan_to));
            match (self.discarding, newline) {
                (true, Some(at)) => {
                    buf.advance(at + 1);
                    self.discarding = false;
                    self.next_index = 0;
                }
                (true, None) => {
                    buf.advance(scan_to);
                    self.next_index = 0;
                    if buf.is_empty() {
                        return Ok(None);
                    }
                }
                (false, Some(at)) => {
                    let line = buf.split_to(at + 1);
                    self.next_index = 0;
                    let body = &line[..at];
                    if body.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Ok(Some(parse_line(body)));
                }
                (false, None) if buf.len() > self.max_length => {
                    self.discarding = true;
                    self.next_index = 0;
                    return Ok(Some(Err(LineError::TooLong {
                        max: self.max_length,
                    })));
                }
                (false, None) => {
                    self.next_index = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if self.discarding || buf.iter().all(u8::is_ascii_whitespace) {
            buf.clear();
            self.discarding = false;
            self.next_index = 0;
            return Ok(None);
        }
        let rest = buf.split();
        self.next_index = 0;
        Ok(Some(parse_line(&rest)))
    }
}

impl<D, E: Serialize> Encoder<E> for NdjsonCodec<D, E> {
    type Error = std::io::Error;

    fn encode(&mut self, item: E, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let mut writer = dst.writer();
        serde_json::to_writer(&mut writer, &item)?;
        writer.into_inner().put_u8(b'\n');
        Ok(())
    }
}

/// Encodes one value as a protocol line, newline included.
pub fn encode_line<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let mut line = serde_json::to_string(value)?;
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FromPlugin, PingId, Pong};

    type Codec = NdjsonCodec<FromPlugin, FromPlugin>;

    fn decode_all(codec: &mut Codec, input: &[u8]) -> Vec<Result<FromPlugin, LineError>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).expect("io") {
            out.push(item);
        }
        while let Some(item) = codec.decode_eof(&mut buf).expect("io") {
            out.push(item);
        }
        out
    }

    #[test]
    fn decodes_lines_and_survives_garbage() {
        let mut codec = Codec::new(1024);
        let items = decode_all(
            &mut codec,
            b"{\"type\":\"pong\",\"id\":1}\nnot json\n\n{\"type\":\"pong\",\"id\":2}\r\n",
        );
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0], Ok(FromPlugin::Pong(Pong { id: PingId(1) })));
        assert!(matches!(items[1], Err(LineError::Malformed { .. })));
        assert_eq!(items[2], Ok(FromPlugin::Pong(Pong { id: PingId(2) })));
    }

    #[test]
    fn a_bad_line_is_explained_in_an_authors_words() {
        let cases = [
            ("{'type': 'pong', 'id': 1}", "not JSON but a Python repr"),
            ("{\"type\": \"pong\", \"id\": None}", "not JSON but a Python repr"),
            ("starting up...", "write logs and debugging output to stderr"),
            ("[1, 2]", "JSON, but an array: each line must be one object with a `type`"),
            ("{\"id\": 1}", "the object has no `type`"),
            ("{\"type\": 1}", "`type` is 1, not the name of a message such as \"reply\""),
            ("{\"type\": \"replay\"}", "`type` \"replay\" is not a message type of this protocol; use one of: hello, reply, say"),
            ("{\"type\": \"reply\", \"text\": \"hi\"}", "a `reply` line: missing field `nick`"),
        ];
        for (line, want) in cases {
            let mut codec = Codec::new(1024);
            let items = decode_all(&mut codec, format!("{line}\n").as_bytes());
            match &items[..] {
                [Err(LineError::Malformed { reason, .. })] => {
                    assert!(reason.contains(want), "{line}: {reason}");
                    assert!(!reason.contains("variant identifier"), "{line}: {reason}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped() {
        let mut codec = Codec::new(32);
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\n{\"type\":\"pong\",\"id\":9}\n");
        let items = decode_all(&mut codec, &input);
        assert_eq!(
            items,
            vec![
                Err(LineError::TooLong { max: 32 }),
                Ok(FromPlugin::Pong(Pong { id: PingId(9) }))
            ]
        );
    }

    #[test]
    fn an_overlong_line_arriving_in_pieces_is_bounded() {
        let mut codec = Codec::new(32);
        let mut buf = BytesMut::new();
        let mut errors = 0;
        for _ in 0..10 {
            buf.extend_from_slice(&[b'y'; 10]);
            while let Some(item) = codec.decode(&mut buf).expect("io") {
                assert!(item.is_err());
                errors += 1;
            }
            assert!(buf.len() <= 33, "buffer grew to {}", buf.len());
        }
        buf.extend_from_slice(b"\n{\"type\":\"pong\",\"id\":1}\n");
        let next = codec.decode(&mut buf).expect("io");
        assert_eq!(errors, 1);
        assert_eq!(next, Some(Ok(FromPlugin::Pong(Pong { id: PingId(1) }))));
    }

    #[test]
    fn a_final_line_without_newline_is_decoded_at_eof() {
        let mut codec = Codec::new(1024);
        let items = decode_all(&mut codec, b"{\"type\":\"pong\",\"id\":5}");
        assert_eq!(items, vec![Ok(FromPlugin::Pong(Pong { id: PingId(5) }))]);
    }

    #[test]
    fn encoding_escapes_newlines_inside_strings() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::new();
        codec
            .encode(
                FromPlugin::Say(crate::wire::Say {
                    target: "#c".into(),
                    text: "a\nb\r\0".into(),
                }),
                &mut buf,
            )
            .expect("encode");
        let text = std::str::from_utf8(&buf).expect("utf8");
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with('\n'));
    }
}
