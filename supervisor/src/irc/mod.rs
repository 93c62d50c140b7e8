//! The IRC frontend: one connection, hardened against hostile input.

pub mod codec;
pub mod connection;
pub mod message;
pub mod outbound;
pub mod pacing;
pub mod send_queue;
pub mod tls;

pub use connection::{run, IrcSettings};
