//! hamper's `sed` plugin: `s/find/replace/` corrections of recent chat lines.
//!
//! The original Hamper let anyone fix a typo by saying `s/wrold/world/`; the bot answered with
//! `alice actually meant: hello world`. This crate keeps that behaviour (the *intended* one of the
//! reference, §2.4, with several expressions per line and the `g`, `i` and `m` flags) while making
//! sure no input can stall the plugin or blow up its memory: patterns run on the linear-time
//! `regex` crate under size limits, and every string the plugin builds or keeps is capped.
//!
//! The pure logic lives in the library so that it can be tested without a host:
//! [`expr`] parses and runs expressions, [`template`] expands Python-style replacements,
//! [`history`] keeps the per-channel ring of recent lines, and [`plugin`] ties them to the
//! protocol. `main.rs` only hands [`SedPlugin`] to the SDK.

#![warn(missing_docs)]

pub mod expr;
pub mod history;
pub mod plugin;
pub mod template;

pub use plugin::{SedConfig, SedPlugin};
