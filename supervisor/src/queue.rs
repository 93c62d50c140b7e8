//! A queue bounded by bytes rather than by a count of items.
//!
//! The queues between the IRC session, the router and the plugins must absorb a burst (ten
//! thousand short lines arrive in a few milliseconds) without letting a plugin that stopped
//! reading grow the bot's memory without end. A bound in items is wrong both ways: 256 items is
//! a small burst of short lines but a lot of long ones. So the bound is in bytes, the sender
//! never waits (a full queue refuses the item, and the caller counts the drop), and the
//! receiver gives the room back as it takes items out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Something with a size in bytes, for [`ByteQueue`] accounting.
pub trait Weigh {
    /// Roughly how many bytes this item holds.
    fn weight(&self) -> usize;
}

impl Weigh for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// The sending half: cheap to clone.
#[derive(Debug)]
pub struct ByteSender<T> {
    tx: mpsc::UnboundedSender<(T, usize)>,
    used: Arc<AtomicUsize>,
    capacity: usize,
}

impl<T> Clone for ByteSender<T> {
    fn clone(&self) -> Self {
        ByteSender {
            tx: self.tx.clone(),
            used: self.used.clone(),
            capacity: self.capacity,
        }
    }
}

/// The receiving half.
#[derive(Debug)]
pub struct ByteReceiver<T> {
    rx: mpsc::UnboundedReceiver<(T, usize)>,
    used: Arc<AtomicUsize>,
    /// The most bytes seen queued since the queue was last found empty by [`ByteReceiver::drained`].
    peak: usize,
}

/// Why [`ByteSender::try_send`] gave the item back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds `capacity` bytes already.
    Full,
    /// The receiver is gone.
    Closed,
}

/// A queue that holds at most `capacity` bytes of items (and always at least one item, however
/// large, so that an oversized item is not refused forever by an empty queue).
pub fn byte_queue<T: Weigh>(capacity: usize) -> (ByteSender<T>, ByteReceiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let used = Arc::new(AtomicUsize::new(0));
    (
        ByteSender {
            tx,
            used: used.clone(),
            capacity,
        },
        ByteReceiver { rx, used, peak: 0 },
    )
}

impl<T: Weigh> ByteSender<T> {
    /// Queues `item` without waiting, or refuses it when the queue is full or closed.
    pub fn try_send(&self, item: T) -> Result<(), (T, Refused)> {
        let weight = item.weight();
        let before = self.used.fetch_add(weight, Ordering::AcqRel);
        if before > 0 && before + weight > self.capacity {
            self.used.fetch_sub(weight, Ordering::AcqRel);
            return Err((item, Refused::Full));
        }
        self.tx.send((item, weight)).map_err(|e| {
            self.used.fetch_sub(weight, Ordering::AcqRel);
            (e.0 .0, Refused::Closed)
        })
    }

    /// Bytes queued now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

impl<T> ByteReceiver<T> {
    /// The next item, or `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        let (item, weight) = self.rx.recv().await?;
        self.took(weight);
        Some(item)
    }

    /// The next item if one is queued now.
    pub fn try_recv(&mut self) -> Option<T> {
        let (item, weight) = self.rx.try_recv().ok()?;
        self.took(weight);
        Some(item)
    }

    fn took(&mut self, weight: usize) {
        let before = self.used.fetch_sub(weight, Ordering::AcqRel);
        self.peak = self.peak.max(before);
    }

    /// When the queue is empty now: the most bytes it held since the last call that found it
    /// empty (0 when it is not empty). A burst that drained is worth giving memory back for.
    pub fn drained(&mut self) -> usize {
        if self.used.load(Ordering::Acquire) > 0 {
            return 0;
        }
        std::mem::take(&mut self.peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn item(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn refuses_past_capacity_and_gives_room_back_on_receive() {
        let (tx, mut rx) = byte_queue::<Bytes>(100);
        tx.try_send(item(60)).expect("fits");
        tx.try_send(item(40)).expect("fits exactly");
        assert_eq!(tx.try_send(item(1)).map_err(|e| e.1), Err(Refused::Full));
        assert_eq!(tx.used(), 100);
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(60));
        assert_eq!(tx.used(), 40);
        tx.try_send(item(60)).expect("room again");
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(40));
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(60));
        assert!(rx.try_recv().is_none());
        assert_eq!(tx.used(), 0);
    }

    #[tokio::test]
    async fn a_drained_queue_tells_its_peak_once() {
        let (tx, mut rx) = byte_queue::<Bytes>(1000);
        assert_eq!(rx.drained(), 0, "nothing was queued");
        tx.try_send(item(300)).expect("fits");
        tx.try_send(item(200)).expect("fits");
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(300));
        assert_eq!(rx.drained(), 0, "not empty yet");
        tx.try_send(item(100)).expect("fits");
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(200));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(100));
        assert_eq!(rx.drained(), 500, "the most that was queued at once");
        assert_eq!(rx.drained(), 0, "told once");
    }

    #[tokio::test]
    async fn an_empty_queue_takes_one_oversized_item() {
        let (tx, mut rx) = byte_queue::<Bytes>(10);
        tx.try_send(item(50)).expect("alone, it goes");
        assert_eq!(tx.try_send(item(1)).map_err(|e| e.1), Err(Refused::Full));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(50));
        tx.try_send(item(1)).expect("empty again");
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_and_keeps_no_bytes() {
        let (tx, rx) = byte_queue::<Bytes>(10);
        drop(rx);
        assert_eq!(tx.try_send(item(5)).map_err(|e| e.1), Err(Refused::Closed));
        assert_eq!(tx.used(), 0);
    }

    #[tokio::test]
    async fn concurrent_senders_never_exceed_the_capacity() {
        let (tx, mut rx) = byte_queue::<Bytes>(1000);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                (0..500).filter(|_| tx.try_send(item(10)).is_ok()).count()
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            accepted += t.await.expect("task");
        }
        assert_eq!(accepted, 100, "exactly the capacity was accepted");
        let mut received = 0;
        while rx.try_recv().is_some() {
            received += 1;
        }
        assert_eq!(received, 100);
    }
}
