//! The help plugin for hamper: lists every command and describes one command or plugin.
//!
//! It owns no help texts of its own beyond its manifest: it asks the host for every plugin's
//! manifest (`plugins.list`) at each request, so external plugins and the supervisor's own
//! commands are covered with no extra work. [`catalog`] holds the pure lookup and formatting;
//! [`plugin`] wires it to the host.

pub mod catalog;
pub mod plugin;

pub use plugin::{manifest, Help};
