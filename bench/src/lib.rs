//! `hamper-bench`, the benchmark of issue 8: the whole bot (`hamper run`, its guards and its
//! plugins) measured from outside, through a scripted IRC server on 127.0.0.1, beside a floor
//! that does the same work in one process.
//!
//! Everything is measured from the wire, the way a user on IRC would see it, so the figures
//! stay comparable whatever the lead changes inside the message path. See docs/performance.md.
//!
//! The crate is an edge: errors are `anyhow` with context, reported by `main`.

pub mod callgrind;
pub mod floor;
pub mod launch;
pub mod line;
pub mod machine;
pub mod procs;
pub mod report;
pub mod run;
pub mod server;
pub mod stats;
pub mod workload;

pub use run::{run, Options};
