//! The karma plugin for hamper: `name++` gives karma, `name--` takes it, `!karma` shows it.
//!
//! It follows the original Hamper's karma plugin (reference §2.1) with hamper's deliberate
//! deviations (§6.4): self-karma is caught whatever the case, `1 point` is singular, and the
//! random opinions are off unless the config turns them on. The parser, the reply strings and
//! the opinions are pure and tested here; [`plugin`] wires them to the host.

pub mod opinion;
pub mod parse;
pub mod plugin;
pub mod replies;

pub use plugin::{manifest, Karma, KarmaConfig};
