//! Line framing for the IRC connection: bounded, lossy about encoding, never fatal.
//!
//! Servers and other users send what they like. A line that is not UTF-8 is decoded lossily and
//! an over-long line is skipped, so no hostile text can end the connection or grow memory.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The longest incoming line accepted: 512 bytes plus 8191 for IRCv3 tags.
pub const MAX_INCOMING: usize = 512 + 8191;

/// CR LF (or LF) separated lines.
#[derive(Debug, Default)]
pub struct IrcLineCodec {
    discarding: bool,
}

impl Decoder for IrcLineCodec {
    type Item = String;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, Self::Error> {
        loop {
            let scan = buf.len().min(MAX_INCOMING + 2);
            match buf[..scan].iter().position(|b| *b == b'\n') {
                Some(at) => {
                    let line = buf.split_to(at + 1);
                    if std::mem::take(&mut self.discarding) {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line[..at]);
                    let text = text.trim_end_matches('\r');
                    if text.is_empty() {
                        continue;
                    }
                    return Ok(Some(text.to_string()));
                }
                None if buf.len() > MAX_INCOMING => {
                    if !self.discarding {
                        tracing::warn!(
                            max = MAX_INCOMING,
                            "over-long line from the server; skipped"
                        );
                    }
                    self.discarding = true;
                    buf.advance(scan);
                }
                None => return Ok(None),
            }
        }
    }
}

impl Encoder<String> for IrcLineCodec {
    type Error = std::io::Error;

    fn encode(&mut self, line: String, dst: &mut BytesMut) -> Result<(), Self::Error> {
        if line.contains(['\r', '\n', '\0']) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "refusing to send a line holding CR, LF or NUL",
            ));
        }
        dst.reserve(line.len() + 2);
        dst.put_slice(line.as_bytes());
        dst.put_slice(b"\r\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_bounded_and_resilient() {
        let mut codec = IrcLineCodec::default();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"PING :a\r\n:x PRIVMSG #c :\xff\xfe bad\r\n");
        buf.extend_from_slice(&vec![b'z'; MAX_INCOMING + 100]);
        buf.extend_from_slice(b"\r\nPING :b\n");
        let mut lines = Vec::new();
        while let Some(l) = codec.decode(&mut buf).expect("decode") {
            lines.push(l);
        }
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], "PING :a");
        assert!(lines[1].contains('\u{fffd}'));
        assert_eq!(lines[2], "PING :b");
    }

    #[test]
    fn refuses_to_encode_a_second_command() {
        let mut codec = IrcLineCodec::default();
        let mut buf = BytesMut::new();
        assert!(codec
            .encode("PRIVMSG #c :a\r\nQUIT".into(), &mut buf)
            .is_err());
        assert!(buf.is_empty());
    }
}
