//! The send queue: lines waiting for the pacing, a share for each sender, taken in turn.
//!
//! With the default pacing (two lines a second) a plugin that writes a hundred lines would hold
//! the wire for fifty seconds, and everything the other plugins and the bot itself want to say
//! would wait behind it. So each sender ([`Origin`]) has a lane of its own, capped at
//! [`MAX_LANE`] lines, and lines leave round-robin: one from each sender with something to say,
//! then again. A sender whose lane is full loses its newest lines, counted against it (in the log
//! and, for a plugin, in `!plugins`); the others are not affected.
//!
//! A flush marker (the console's "is everything out?") is answered once every line queued before
//! it, from whichever sender, has left.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;
use tracing::warn;

use crate::chat::Origin;

/// Lines one sender may have waiting.
pub const MAX_LANE: usize = 250;

struct Lane {
    origin: Origin,
    /// Lines with their sequence numbers, oldest first.
    lines: VecDeque<(u64, String)>,
    /// Lines dropped from this lane during this connection, for the log.
    dropped: u64,
}

/// Lines waiting to be sent, by sender.
#[derive(Default)]
pub struct SendQueue {
    /// Lanes with lines waiting, in the order they get their next turn.
    turn: VecDeque<Lane>,
    /// Empty lanes, kept for their drop counts.
    idle: Vec<Lane>,
    /// Flush markers with the sequence number they wait for.
    flushes: VecDeque<(u64, oneshot::Sender<()>)>,
    next_seq: u64,
    len: usize,
}

impl SendQueue {
    /// Whether no line waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lines waiting from `origin`.
    pub fn waiting_from(&self, origin: &Origin) -> usize {
        self.turn
            .iter()
            .find(|l| l.origin.same(origin))
            .map_or(0, |l| l.lines.len())
    }

    /// Queues `line` from `origin`; false when the sender's lane is full and the line was
    /// dropped (and counted).
    pub fn push(&mut self, origin: &Origin, line: String) -> bool {
        let seq = self.next_seq;
        self.next_seq += 1;
        let at = match self.turn.iter().position(|l| l.origin.same(origin)) {
            Some(at) => at,
            None => {
                let lane = match self.idle.iter().position(|l| l.origin.same(origin)) {
                    Some(i) => self.idle.swap_remove(i),
                    None => Lane {
                        origin: origin.clone(),
                        lines: VecDeque::new(),
                        dropped: 0,
                    },
                };
                self.turn.push_back(lane);
                self.turn.len() - 1
            }
        };
        let lane = &mut self.turn[at];
        if lane.lines.len() >= MAX_LANE {
            lane.dropped += 1;
            if let Origin::Plugin { unsent, .. } = &lane.origin {
                unsent.fetch_add(1, Ordering::Relaxed);
            }
            if lane.dropped == 1 || lane.dropped % 100 == 0 {
                warn!(
                    plugin = lane.origin.name(),
                    max = MAX_LANE,
                    dropped = lane.dropped,
                    "send queue share full; dropping this sender's lines"
                );
            }
            return false;
        }
        lane.lines.push_back((seq, line));
        self.len += 1;
        true
    }

    /// Answers `done` once every line queued so far has left.
    pub fn flush_marker(&mut self, done: oneshot::Sender<()>) {
        if self.is_empty() {
            let _ = done.send(());
        } else {
            self.flushes.push_back((self.next_seq, done));
        }
    }

    /// The next line, from the sender whose turn it is.
    pub fn pop(&mut self) -> Option<String> {
        let mut lane = self.turn.pop_front()?;
        let line = lane.lines.pop_front().map(|(_, line)| line);
        if lane.lines.is_empty() {
            self.idle.push(lane);
        } else {
            self.turn.push_back(lane);
        }
        if line.is_some() {
            self.len -= 1;
        }
        self.answer_flushes();
        line
    }

    fn answer_flushes(&mut self) {
        let oldest = self
            .turn
            .iter()
            .filter_map(|l| l.lines.front().map(|(seq, _)| *seq))
            .min()
            .unwrap_or(u64::MAX);
        while self.flushes.front().is_some_and(|(seq, _)| *seq <= oldest) {
            if let Some((_, done)) = self.flushes.pop_front() {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    use super::*;

    fn plugin(name: &str) -> Origin {
        Origin::Plugin {
            name: Arc::from(name),
            unsent: Arc::new(AtomicU64::new(0)),
        }
    }

    fn drain(q: &mut SendQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn senders_take_turns() {
        let (a, b) = (plugin("a"), plugin("b"));
        let mut q = SendQueue::default();
        for i in 0..5 {
            q.push(&a, format!("a{i}"));
        }
        q.push(&b, "b0".into());
        q.push(&Origin::Bot, "bot0".into());
        q.push(&b, "b1".into());
        assert_eq!(
            drain(&mut q),
            ["a0", "b0", "bot0", "a1", "b1", "a2", "a3", "a4"]
        );
        assert!(q.is_empty());
        // A sender that comes back after its lane emptied queues behind those waiting.
        q.push(&a, "a5".into());
        q.push(&b, "b2".into());
        q.push(&a, "a6".into());
        assert_eq!(drain(&mut q), ["a5", "b2", "a6"]);
    }

    #[test]
    fn a_full_share_drops_only_that_senders_lines_and_counts_them() {
        let (a, b) = (plugin("a"), plugin("b"));
        let mut q = SendQueue::default();
        for i in 0..MAX_LANE + 7 {
            q.push(&a, format!("a{i}"));
        }
        assert!(q.push(&b, "b0".into()), "another sender still has room");
        assert_eq!(q.waiting_from(&a), MAX_LANE);
        let Origin::Plugin { unsent, .. } = &a else {
            unreachable!()
        };
        assert_eq!(unsent.load(Ordering::Relaxed), 7);
        let out = drain(&mut q);
        assert_eq!(out.len(), MAX_LANE + 1);
        assert_eq!(out[1], "b0", "b waits for one line of a at most");
    }

    #[test]
    fn a_flush_waits_for_every_line_queued_before_it() {
        let (a, b) = (plugin("a"), plugin("b"));
        let mut q = SendQueue::default();
        let (tx, mut rx) = oneshot::channel();
        q.flush_marker(tx);
        assert!(rx.try_recv().is_ok(), "an empty queue answers at once");

        q.push(&a, "a0".into());
        q.push(&a, "a1".into());
        q.push(&b, "b0".into());
        let (tx, mut rx) = oneshot::channel();
        q.flush_marker(tx);
        q.push(&b, "b1".into());
        assert_eq!(q.pop().as_deref(), Some("a0"));
        assert_eq!(q.pop().as_deref(), Some("b0"));
        assert!(rx.try_recv().is_err(), "a1 is still waiting");
        assert_eq!(q.pop().as_deref(), Some("a1"));
        assert!(
            rx.try_recv().is_ok(),
            "all three before it are out; b1 came after"
        );
        assert_eq!(q.pop().as_deref(), Some("b1"));
    }
}
