//! The contract between the hamper supervisor and its plugins.
//!
//! A plugin is any executable that reads newline-delimited JSON on stdin and writes it on stdout.
//! This crate holds the wire types ([`wire`]), the bounded NDJSON codec ([`codec`]) and a small
//! SDK ([`sdk`]) that turns a Rust handler into a plugin binary with one call, with a fake host
//! ([`testing`]) to test such a plugin without the supervisor. `docs/protocol.md`
//! describes the same contract for authors in any language; the types here are its source of truth.
#![warn(missing_docs)]

pub mod codec;
pub mod decode;
pub mod names;
pub mod sdk;
pub mod testing;
pub mod wire;

pub use codec::{LineError, NdjsonCodec};
pub use decode::DecodeLine;
pub use names::CaseMapping;
pub use wire::*;

/// The protocol version this crate speaks. A plugin whose `hello` names another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line, in bytes without the newline, that either side accepts.
///
/// Storage values are capped well below this (see [`wire::MAX_VALUE_BYTES`]), so every legal
/// message fits; a longer line is a fault of its sender.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
