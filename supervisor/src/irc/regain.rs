//! Winning the configured nick back after the bot had to register under another.
//!
//! When the configured nick is taken (a ghost of the bot's last connection, or someone else),
//! the bot registers as `nick_` and would keep that forever. Instead it watches for the nick to
//! come free: with `MONITOR` where the server's ISUPPORT offers it (the server then says `731`
//! the moment the nick goes offline), else by asking `ISON` once at once and then every
//! [`POLL_INTERVAL`]. When the nick is free the bot sends `NICK` for it; the server's `NICK`
//! echo is what says it worked.
//!
//! A state machine with no I/O: the connection feeds it what the server says and the time, and
//! sends what it returns.

use std::time::Duration;

use hamper_protocol::CaseMapping;
use tokio::time::Instant;

use super::message::Command;

/// How often `ISON` asks whether the nick is free, on a server without `MONITOR`.
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);

/// The watch on the configured nick for one connection.
#[derive(Debug)]
pub struct Regain {
    wanted: String,
    casemapping: CaseMapping,
    /// The server offers `MONITOR` (ISUPPORT).
    monitor: bool,
    /// `MONITOR +` was sent for the nick.
    watching: bool,
    /// When to ask `ISON` next, while polling.
    next_poll: Option<Instant>,
    /// The bot has the wanted nick, or gave up on it.
    idle: bool,
    /// The server refused the nick as invalid: it can never be had.
    refused: bool,
}

impl Regain {
    /// A watch for `wanted`, idle until [`Regain::start`].
    pub fn new(wanted: &str) -> Regain {
        Regain {
            wanted: wanted.to_string(),
            casemapping: CaseMapping::default(),
            monitor: false,
            watching: false,
            next_poll: None,
            idle: true,
            refused: false,
        }
    }

    /// The server offers `MONITOR` (an ISUPPORT token `MONITOR` or `MONITOR=<limit>`).
    pub fn offer_monitor(&mut self) {
        self.monitor = true;
    }

    /// The bot is known as `current` (after registering, or after a `NICK` of its own): starts
    /// watching when that is not the wanted nick, and stops when it is. Returns what to send.
    pub fn start(&mut self, current: &str, casemapping: CaseMapping, now: Instant) -> Vec<Command> {
        self.casemapping = casemapping;
        if self.refused || self.casemapping.same(current, &self.wanted) {
            return self.stop();
        }
        self.idle = false;
        if self.monitor {
            if self.watching {
                return Vec::new();
            }
            self.watching = true;
            self.next_poll = None;
            vec![Command::MONITOR("+".into(), Some(self.wanted.clone()))]
        } else {
            self.next_poll.get_or_insert(now);
            Vec::new()
        }
    }

    /// The server's MONITOR list is full (`734`): asks with `ISON` instead, from `now` on.
    pub fn monitor_full(&mut self, now: Instant) {
        self.monitor = false;
        self.watching = false;
        if self.active() {
            self.next_poll.get_or_insert(now);
        }
    }

    /// The bot has the wanted nick, or it cannot be had: stops watching.
    pub fn stop(&mut self) -> Vec<Command> {
        self.idle = true;
        self.next_poll = None;
        if std::mem::take(&mut self.watching) {
            vec![Command::MONITOR("-".into(), Some(self.wanted.clone()))]
        } else {
            Vec::new()
        }
    }

    /// The server said the nick is not valid there (`432`): never try it again on this
    /// connection.
    pub fn refuse(&mut self) -> Vec<Command> {
        self.refused = true;
        self.stop()
    }

    /// Whether the bot is trying to win the nick back.
    pub fn active(&self) -> bool {
        !self.idle
    }

    /// The configured nick.
    pub fn wanted(&self) -> &str {
        &self.wanted
    }

    /// When [`Regain::poll`] has something to do.
    pub fn next_poll(&self) -> Option<Instant> {
        self.next_poll.filter(|_| !self.idle)
    }

    /// The `ISON` to send at `now`, if one is due; the next one is due an interval later.
    pub fn poll(&mut self, now: Instant) -> Option<Command> {
        let due = self.next_poll().filter(|at| *at <= now)?;
        self.next_poll = Some(due.max(now) + POLL_INTERVAL);
        Some(Command::ISON(vec![self.wanted.clone()]))
    }

    /// A `303` (ISON) reply naming the `online` nicks: the `NICK` to send if ours is free.
    pub fn on_ison(&self, online: &str) -> Option<Command> {
        let taken = online
            .split_whitespace()
            .any(|n| self.casemapping.same(n, &self.wanted));
        self.claim(!taken)
    }

    /// A `731` (MONITOR: offline) reply naming `targets`: the `NICK` to send if ours is one.
    pub fn on_offline(&self, targets: &str) -> Option<Command> {
        let free = targets.split(',').any(|target| {
            let nick = target.split_once('!').map_or(target, |(nick, _)| nick);
            self.casemapping.same(nick, &self.wanted)
        });
        self.claim(free)
    }

    fn claim(&self, free: bool) -> Option<Command> {
        (free && self.active()).then(|| Command::NICK(self.wanted.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irc::message::render;

    fn line(command: Option<Command>) -> Option<String> {
        command.map(|c| render(&c).expect("renders"))
    }

    #[tokio::test(start_paused = true)]
    async fn ison_asks_at_once_then_every_minute_until_the_nick_is_free() {
        let mut r = Regain::new("hamper");
        let t0 = Instant::now();
        assert!(r.start("hamper_", CaseMapping::Rfc1459, t0).is_empty());
        assert_eq!(r.next_poll(), Some(t0));
        assert_eq!(line(r.poll(t0)).as_deref(), Some("ISON hamper"));
        assert_eq!(r.poll(t0), None, "one question at a time");
        assert_eq!(line(r.on_ison("Hamper")), None, "still taken");

        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(r.poll(Instant::now()), None, "not yet");
        assert_eq!(r.next_poll(), Some(t0 + POLL_INTERVAL));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(line(r.poll(Instant::now())).as_deref(), Some("ISON hamper"));
        assert_eq!(line(r.on_ison("")).as_deref(), Some("NICK hamper"));

        // The server's NICK echo: the bot has it, and stops asking.
        assert!(r
            .start("hamper", CaseMapping::Rfc1459, Instant::now())
            .is_empty());
        assert!(!r.active());
        assert_eq!(r.next_poll(), None);
        assert_eq!(r.on_ison(""), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_poll_does_not_bunch_up() {
        let mut r = Regain::new("hamper");
        let t0 = Instant::now();
        r.start("hamper_", CaseMapping::Rfc1459, t0);
        r.poll(t0);
        let late = t0 + Duration::from_secs(200);
        assert!(r.poll(late).is_some());
        assert_eq!(r.next_poll(), Some(late + POLL_INTERVAL));
    }

    #[test]
    fn monitor_watches_and_claims_on_offline() {
        let mut r = Regain::new("hamper");
        r.offer_monitor();
        let now = Instant::now();
        let sent: Vec<String> = r
            .start("hamper_", CaseMapping::Rfc1459, now)
            .iter()
            .map(|c| render(c).expect("renders"))
            .collect();
        assert_eq!(sent, ["MONITOR + hamper"]);
        assert_eq!(r.next_poll(), None, "no polling with MONITOR");
        assert!(r.start("hamper_", CaseMapping::Rfc1459, now).is_empty());
        assert_eq!(line(r.on_offline("someone,other")), None);
        assert_eq!(
            line(r.on_offline("other,HAMPER")).as_deref(),
            Some("NICK hamper")
        );
        assert_eq!(
            line(r.on_offline("hamper!u@h")).as_deref(),
            Some("NICK hamper")
        );
        let sent: Vec<String> = r
            .start("hamper", CaseMapping::Rfc1459, now)
            .iter()
            .map(|c| render(c).expect("renders"))
            .collect();
        assert_eq!(sent, ["MONITOR - hamper"]);
        assert_eq!(r.on_offline("hamper"), None, "done");
    }

    #[test]
    fn a_nick_the_server_calls_invalid_is_never_tried_again() {
        let mut r = Regain::new("hamper");
        r.refuse();
        let now = Instant::now();
        assert!(r.start("hamper_", CaseMapping::Rfc1459, now).is_empty());
        assert!(!r.active());
        assert_eq!(r.next_poll(), None);
        assert_eq!(r.on_ison(""), None);
    }

    #[test]
    fn a_full_monitor_list_falls_back_to_ison() {
        let mut r = Regain::new("hamper");
        r.offer_monitor();
        let now = Instant::now();
        assert_eq!(r.start("hamper_", CaseMapping::Rfc1459, now).len(), 1);
        r.monitor_full(now);
        assert_eq!(line(r.poll(now)).as_deref(), Some("ISON hamper"));
        assert_eq!(line(r.on_ison("")).as_deref(), Some("NICK hamper"));
        assert!(
            r.start("hamper", CaseMapping::Rfc1459, now).is_empty(),
            "no MONITOR - for a watch the server never took"
        );
    }

    #[test]
    fn the_servers_casemapping_decides_what_is_the_same_nick() {
        let mut r = Regain::new("ham[per]");
        let now = Instant::now();
        assert!(r.start("ham{per}", CaseMapping::Rfc1459, now).is_empty());
        assert!(!r.active(), "the same nick under rfc1459");
        r.start("ham{per}", CaseMapping::Ascii, now);
        assert!(r.active(), "another nick under ascii");
    }
}
