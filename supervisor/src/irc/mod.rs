//! The IRC frontend: one connection, hardened against hostile input.

pub mod codec;
pub mod connection;
mod inbound;
pub mod message;
pub mod negotiation;
pub mod outbound;
pub mod pacing;
pub mod regain;
pub mod send_queue;
pub mod tags;
pub mod tls;

pub use connection::{run, IrcError, IrcSettings};
