//! One process of a plugin, from spawn to exit: the handshake, then serving it (its stdin fed
//! from the inbox, its stdout read through the bounded codec, its requests served in its lane,
//! its liveness checked by pings) until it stops, crashes or is asked to stop.
//!
//! What happens between processes (restarts, retries, an owner's commands) is the runner's
//! loop, in the parent module.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hamper_protocol::{
    FromPlugin, Goodbye, Message, NdjsonCodec, Ping, PingId, PluginHello, ToPlugin,
    PROTOCOL_VERSION,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::FramedRead;
use tracing::{info, warn, Instrument};

use super::{sleep_until_opt, Ask, End, Runner, Stop};
use crate::plugin::lane::{response_line, Lane, Services};
use crate::plugin::process::{self, Launch, Process};
use crate::plugin::{encode, Control, Delivery, FromRunner, Line, State};
use crate::queue::{ByteReceiver, ByteSender};

/// Malformed lines within [`MALFORMED_WINDOW`] that count as a crash.
const MALFORMED_FLOOD: usize = 20;
const MALFORMED_WINDOW: Duration = Duration::from_secs(10);
/// Lines written to a plugin in one write, at most this many bytes, when several are ready.
const WRITE_BATCH: usize = 64 * 1024;
/// Bytes of events written to a plugin ahead of its pongs, at most (see [`write_lines`]).
const WINDOW: u64 = 64 * 1024;

type Lines = FramedRead<tokio::process::ChildStdout, NdjsonCodec<FromPlugin, ToPlugin>>;
/// What the handshake deadline gives: nothing in time, end of stream, an I/O error, a bad line,
/// or a message.
type FirstLine = Result<
    Option<Result<Result<FromPlugin, hamper_protocol::LineError>, std::io::Error>>,
    tokio::time::error::Elapsed,
>;

impl Runner {
    /// Starts one process of the plugin and supervises it until it ends.
    pub(super) async fn run_once(&mut self) -> End {
        // The generation goes up first, so that a response for the previous process that is
        // still on its way is refused from now on; then what was queued for it is dropped.
        self.set_status(|s| {
            s.state = State::Starting;
            s.generation += 1;
            s.next_start = None;
        });
        if !std::mem::take(&mut self.carry_inbox) {
            self.collect_orphans();
        }
        if !self.orphans.is_empty() {
            let text = format!(
                "Sorry, the {} plugin is restarting; try again in a moment.",
                self.name()
            );
            self.send_orphans(text).await;
        }
        let launch =
            match process::resolve(&self.settings.spec, self.settings.plugin_dir.as_deref()) {
                Ok(launch) => launch,
                Err(err) => return End::Permanent(err.to_string()),
            };
        let process = match process::spawn(self.name(), &launch, self.settings.guard.as_ref()) {
            Ok(p) => p,
            Err(err) if err.is_permanent() => return End::Permanent(err.to_string()),
            Err(err) => return End::Crashed(err.to_string()),
        };
        let generation = self.generation();
        let span =
            // `plugin`, not `name` as the style guide has it: the JSON log writes the span's own
            // name ("plugin") under `name`, and a second `name` would hide the plugin's.
            tracing::info_span!("plugin", plugin = %self.name(), pid = process.pid, generation);
        self.supervise(process, &launch).instrument(span).await
    }

    async fn supervise(&mut self, process: Process, launch: &Launch) -> End {
        let Process {
            mut child,
            pid,
            stdin,
            stdout,
        } = process;
        self.set_status(|s| s.pid = Some(pid));
        info!(command = ?launch.argv, "plugin started");
        let mut lines: Lines = FramedRead::new(stdout, NdjsonCodec::default());
        let mut stdin = stdin;
        let grace = self.settings.grace;

        let hello = tokio::select! {
            _ = self.shutdown.cancelled() => {
                drop(stdin);
                process::terminate(self.name(), &mut child, pid, grace).await;
                return End::Shutdown;
            }
            first = tokio::time::timeout(self.settings.spec.limits.handshake_timeout, lines.next()) => {
                match self.check_hello(first) {
                    Ok(hello) => hello,
                    Err(reason) => {
                        drop(stdin);
                        process::kill_group(pid);
                        let _ = child.wait().await;
                        return End::Crashed(reason);
                    }
                }
            }
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            let reason = format!(
                "it speaks protocol version {}, this hamper speaks version {PROTOCOL_VERSION}; use a plugin built for version {PROTOCOL_VERSION}",
                hello.protocol_version
            );
            let _ = self
                .write(
                    &mut stdin,
                    &ToPlugin::Goodbye(Goodbye {
                        reason: reason.clone(),
                    }),
                )
                .await;
            drop(stdin);
            process::terminate(self.name(), &mut child, pid, grace).await;
            return End::Permanent(reason);
        }

        let (reply_tx, reply_rx) = oneshot::channel();
        let _ = self
            .router
            .send(FromRunner::Hello {
                plugin: self.settings.index,
                hello: hello.clone(),
                reply: reply_tx,
            })
            .await;
        let Ok(host_hello) = reply_rx.await else {
            drop(stdin);
            process::terminate(self.name(), &mut child, pid, grace).await;
            return End::Shutdown;
        };
        let handshake = tokio::time::timeout(
            self.settings.spec.limits.handshake_timeout,
            self.write(&mut stdin, &ToPlugin::Hello(host_hello)),
        )
        .await;
        if !matches!(handshake, Ok(Ok(()))) {
            process::kill_group(pid);
            let _ = child.wait().await;
            return End::Crashed("did not read the host's hello".into());
        }
        self.set_status(|s| {
            s.state = State::Running;
            s.hello = Some(hello);
            s.since = Some(tokio::time::Instant::now());
        });
        self.reached_running = true;
        info!("plugin running");
        for (asker, ask) in std::mem::take(&mut self.askers) {
            let text = match ask {
                Ask::Restart => format!("The {} plugin is running again, pid {pid}.", self.name()),
                Ask::Enable => format!(
                    "The {} plugin is enabled and running, pid {pid}.",
                    self.name()
                ),
            };
            self.tell(vec![asker], text).await;
        }

        let end = self.serve(&mut child, pid, stdin, &mut lines).await;
        if let End::Crashed(reason) = &end {
            if process::sweep_group(pid) {
                warn!(plugin = %self.name(), "plugin left processes behind in its group; killed them");
            }
            // Deliver what it wrote just before it stopped, without waiting on anything it
            // may have left holding its stdout. Its requests can no longer be answered.
            let drain = async {
                while let Some(Ok(Ok(msg))) = lines.next().await {
                    if !matches!(msg, FromPlugin::Request(_)) {
                        self.forward(msg).await;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
            info!(%reason, "plugin stopped");
        }
        end
    }

    fn check_hello(&self, first: FirstLine) -> Result<PluginHello, String> {
        if self.settings.trace {
            if let Ok(Some(Ok(Ok(msg)))) = &first {
                trace_line("<-", self.name(), msg);
            }
        }
        match first {
            Err(_) => Err(format!(
                "sent no hello within {}s; if it writes one, its stdout is probably buffered: flush after every line (print(..., flush=True) in Python, fflush(stdout) in C)",
                self.settings.spec.limits.handshake_timeout.as_secs_f64()
            )),
            Ok(None) | Ok(Some(Err(_))) => Err("exited or closed stdout before its hello".into()),
            Ok(Some(Ok(Err(err)))) => Err(format!("its first line was not a hello: {err}")),
            Ok(Some(Ok(Ok(FromPlugin::Hello(hello))))) => Ok(hello),
            Ok(Some(Ok(Ok(other)))) => Err(format!(
                "its first message was {}, not a hello",
                type_name(&other)
            )),
        }
    }

    /// Writes one message now, outside the running plugin's writer (handshake only).
    async fn write(&self, stdin: &mut ChildStdin, msg: &ToPlugin) -> std::io::Result<()> {
        let Some(line) = encode(msg) else {
            return Err(std::io::Error::other("cannot encode the message"));
        };
        if self.settings.trace {
            trace_bytes("->", self.name(), &line);
        }
        stdin.write_all(&line).await
    }

    async fn forward(&self, msg: FromPlugin) {
        let _ = self
            .router
            .send(FromRunner::Output {
                plugin: self.settings.index,
                msg,
            })
            .await;
    }

    /// The running plugin's loop. Returns when it stops or the bot shuts down.
    async fn serve(
        &mut self,
        child: &mut tokio::process::Child,
        pid: u32,
        stdin: ChildStdin,
        lines: &mut Lines,
    ) -> End {
        let limits = self.settings.spec.limits;
        let trace = self.settings.trace.then(|| self.settings.spec.name.clone());
        let index = self.settings.index;
        let mut lane = Lane::new(Services {
            plugin: index,
            name: self.settings.spec.name.as_str().into(),
            storage: self.settings.storage.clone(),
            router: self.router.clone(),
        });
        // Responses (and the goodbye) go ahead of queued events: the plugin is waiting for them.
        let (urgent_tx, urgent) = mpsc::unbounded_channel::<Line>();
        let mut urgent_tx = Some(urgent_tx);
        // Commands written to the plugin and not yet handled, in the order written.
        let (tickets_tx, mut tickets) = mpsc::unbounded_channel::<Ticket>();
        let mut open: VecDeque<Ticket> = VecDeque::new();
        let (acked_tx, acked) = watch::channel(0u64);
        // Boxed, not pinned on the stack, so that dropping it closes the plugin's stdin.
        let mut writer = Box::pin(write_lines(
            stdin,
            urgent,
            &mut self.inbox,
            tickets_tx,
            acked,
            self.next_ping.clone(),
            trace.clone(),
        ));
        let mut writer_done = false;
        let mut stdout_done = false;
        let mut pings = tokio::time::interval(limits.ping_interval);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pings.tick().await;
        let mut liveness: Option<(PingId, tokio::time::Instant)> = None;
        let mut syncs: HashMap<PingId, u64> = HashMap::new();
        let mut malformed: VecDeque<Instant> = VecDeque::new();
        // Why the plugin is being stopped on purpose, to tell it in the goodbye.
        let mut goodbye: Option<&str> = None;
        // Made once, not in every turn of the loop: each would register anew with the runtime.
        let shutdown = self.shutdown.clone();
        let mut cancelled = std::pin::pin!(shutdown.cancelled());
        let mut exited = Box::pin(child.wait());

        let end = loop {
            let deadline = liveness.map(|(_, sent)| sent + limits.ping_timeout);
            tokio::select! {
                biased;
                _ = &mut cancelled => {
                    goodbye = Some(if self.bot_shutdown.is_cancelled() {
                        "the bot is shutting down"
                    } else {
                        "the plugin was removed from the configuration"
                    });
                    break End::Shutdown;
                }
                status = &mut exited => {
                    self.exit = status.as_ref().ok().copied();
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    break End::Crashed(format!("exited ({status})"));
                }
                _ = &mut writer, if !writer_done => {
                    writer_done = true;
                }
                response = lane.next() => {
                    // Until now the plugin may have been waiting on the host, not hung: its ping
                    // clock starts again.
                    if let Some((_, sent)) = &mut liveness {
                        *sent = tokio::time::Instant::now();
                    }
                    let line = response_line(response);
                    if let (Some(tx), Some(line)) = (&urgent_tx, line) {
                        let _ = tx.send(line);
                    }
                }
                item = lines.next(), if !stdout_done && !lane.is_full() => match item {
                    None | Some(Err(_)) => stdout_done = true,
                    Some(Ok(Err(err))) => {
                        let total = self.counters.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                        warn!(plugin = %self.settings.spec.name, error = %err, total, "malformed line from plugin; ignored");
                        let now = Instant::now();
                        malformed.push_back(now);
                        while malformed.front().is_some_and(|t| now.duration_since(*t) > MALFORMED_WINDOW) {
                            malformed.pop_front();
                        }
                        if malformed.len() >= MALFORMED_FLOOD {
                            process::kill_group(pid);
                            let _ = (&mut exited).await;
                            break End::Crashed(format!("{MALFORMED_FLOOD} malformed lines within {}s", MALFORMED_WINDOW.as_secs()));
                        }
                    }
                    Some(Ok(Ok(msg))) => {
                        if let Some(name) = &trace {
                            trace_line("<-", name, &msg);
                        }
                        // A plugin working through a backlog answers its ping late but is not
                        // hung: any line it writes shows it is making progress.
                        if let Some((_, sent)) = &mut liveness {
                            *sent = tokio::time::Instant::now();
                        }
                        match msg {
                            FromPlugin::Pong(pong) => {
                                // Pongs come in order: every command written before this ping
                                // has been handled.
                                while let Ok(ticket) = tickets.try_recv() {
                                    open.push_back(ticket);
                                }
                                let mut upto = None;
                                while open.front().is_some_and(|t| t.ping.0 <= pong.id.0) {
                                    upto = open.pop_front().map(|t| t.upto);
                                }
                                if let Some(upto) = upto {
                                    acked_tx.send_if_modified(|acked| {
                                        let moved = upto > *acked;
                                        *acked = (*acked).max(upto);
                                        moved
                                    });
                                }
                                if liveness.is_some_and(|(id, _)| id == pong.id) {
                                    liveness = None;
                                }
                                if let Some(token) = syncs.remove(&pong.id) {
                                    let _ = self.router.send(FromRunner::Synced { plugin: index, token }).await;
                                }
                            }
                            FromPlugin::Hello(_) => warn!(plugin = %self.settings.spec.name, "plugin sent a second hello; ignored"),
                            FromPlugin::Request(request) => lane.push(request),
                            other => {
                                let _ = self.router.send(FromRunner::Output { plugin: index, msg: other }).await;
                            }
                        }
                    }
                },
                Some(ticket) = tickets.recv() => open.push_back(ticket),
                Some(ctl) = self.ctl.recv() => match ctl {
                    Control::Sync(token) => {
                        // Behind every event queued so far, so its pong means they were all handled.
                        let (id, queued) = ping(&self.next_ping, &self.inbox_tx);
                        if queued {
                            syncs.insert(id, token);
                        } else {
                            let _ = self.router.send(FromRunner::Synced { plugin: index, token }).await;
                        }
                    }
                    Control::Restart(asker) => {
                        goodbye = Some("restarted by an owner");
                        break End::Stopped(Stop::Restart(asker));
                    }
                    Control::Disable(asker) => {
                        goodbye = Some("disabled by an owner");
                        break End::Stopped(Stop::Disable(asker));
                    }
                    Control::Enable(asker) => {
                        if let Some(asker) = asker {
                            let text = format!("The {} plugin is not disabled; it is running.", self.settings.spec.name);
                            let _ = self.router.send(FromRunner::Tell { messages: vec![asker], text }).await;
                        }
                    }
                },
                _ = pings.tick(), if liveness.is_none() => {
                    // A full inbox still starts the clock: a plugin that stops reading is hung.
                    let (id, _) = ping(&self.next_ping, &self.inbox_tx);
                    liveness = Some((id, tokio::time::Instant::now()));
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() && !lane.is_full() => {
                    process::kill_group(pid);
                    let _ = (&mut exited).await;
                    break End::Crashed(format!("did not answer a ping within {}s (hung or not reading stdin)", limits.ping_timeout.as_secs_f64()));
                }
            }
        };
        if let Some(reason) = goodbye {
            let line = encode(&ToPlugin::Goodbye(Goodbye {
                reason: reason.into(),
            }));
            // Dropping the urgent sender after the goodbye makes the writer close stdin.
            if let (Some(tx), Some(line)) = (urgent_tx.take(), line) {
                let _ = tx.send(line);
            }
            if !writer_done {
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut writer).await;
            }
        }
        // The writer has sent the goodbye and closed stdin, or is dropped here.
        drop(writer);
        drop(exited);
        while let Ok(ticket) = tickets.try_recv() {
            open.push_back(ticket);
        }
        match end {
            End::Crashed(_) => {
                self.orphans
                    .extend(open.into_iter().filter_map(|t| t.message));
                return end;
            }
            // Commands it was given and did not answer before it stopped get an answer for it.
            End::Stopped(_) => self
                .orphans
                .extend(open.into_iter().filter_map(|t| t.message)),
            _ => {}
        }
        process::terminate(&self.settings.spec.name, child, pid, self.settings.grace).await;
        info!("plugin stopped");
        end
    }
}

/// A ping written to the plugin: after a command (whose message it holds), or to reopen the
/// window.
#[derive(Debug)]
struct Ticket {
    ping: PingId,
    message: Option<Arc<Message>>,
    /// The bytes written up to and including the ping: its pong acknowledges them.
    upto: u64,
}

/// Queues a ping behind the events already in the inbox; says whether it fit.
fn ping(next: &AtomicU64, inbox: &ByteSender<Delivery>) -> (PingId, bool) {
    let id = PingId(next.fetch_add(1, Ordering::Relaxed));
    let queued = encode(&ToPlugin::Ping(Ping { id })).is_some_and(|line| {
        inbox
            .try_send(Delivery {
                line,
                command: None,
            })
            .is_ok()
    });
    (id, queued)
}

/// Feeds the plugin's stdin: urgent lines (responses, the goodbye) first, then events from the
/// inbox, several lines to a write when several are ready. Each command is followed by a ping
/// whose pong says it was handled (`tickets` tells the runner).
///
/// At most [`WINDOW`] bytes of events are written ahead of what the plugin has acknowledged with
/// a pong (`acked`, in bytes written, which the runner advances); the rest of a burst waits in the
/// inbox, encoded once, instead of being read ahead and held, parsed, by the plugin. So that the
/// window always reopens, a write that leaves it half used ends with a ping. Urgent lines are
/// never held back: the plugin may be waiting for them. Ends when stdin fails or after the
/// goodbye (once the urgent sender is gone).
async fn write_lines(
    mut stdin: impl AsyncWrite + Unpin,
    mut urgent: mpsc::UnboundedReceiver<Line>,
    inbox: &mut ByteReceiver<Delivery>,
    tickets: mpsc::UnboundedSender<Ticket>,
    mut acked: watch::Receiver<u64>,
    next_ping: Arc<AtomicU64>,
    trace: Option<String>,
) {
    let mut batch: Vec<u8> = Vec::with_capacity(8 * 1024);
    let add = |batch: &mut Vec<u8>, line: &[u8]| {
        batch.extend_from_slice(line);
        if let Some(name) = &trace {
            trace_bytes("->", name, line);
        }
    };
    // Bytes of events and pings written so far (urgent lines are not counted: they are few and
    // never wait), and up to where the last ping covers them.
    let mut written: u64 = 0;
    let mut pinged: u64 = 0;
    let ping = |batch: &mut Vec<u8>, written: &mut u64, message: Option<Arc<Message>>| {
        let id = PingId(next_ping.fetch_add(1, Ordering::Relaxed));
        let mut buf = [0u8; PING_LINE_MAX];
        let line = ping_line(id, &mut buf);
        add(batch, line);
        *written += line.len() as u64;
        let _ = tickets.send(Ticket {
            ping: id,
            message,
            upto: *written,
        });
        *written
    };
    let mut last = false;
    while !last {
        let room = |written: u64, acked: &watch::Receiver<u64>| {
            written.saturating_sub(*acked.borrow()) < WINDOW
        };
        // An urgent line, or an event from the inbox (which counts against the window).
        let mut next = Some(tokio::select! {
            biased;
            line = urgent.recv() => match line {
                Some(line) => Next::Urgent(line),
                None => return,
            },
            Some(delivery) = inbox.recv(), if room(written, &acked) => Next::Event(delivery),
            changed = acked.changed(), if !room(written, &acked) => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        });
        while let Some(item) = next.take() {
            match item {
                Next::Urgent(line) => add(&mut batch, &line),
                Next::Event(delivery) => {
                    add(&mut batch, &delivery.line);
                    written += delivery.line.len() as u64;
                    if let Some(message) = delivery.command {
                        pinged = ping(&mut batch, &mut written, Some(message));
                    }
                }
            }
            if batch.len() >= WRITE_BATCH {
                break;
            }
            next = match urgent.try_recv() {
                Ok(line) => Some(Next::Urgent(line)),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    last = true;
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) if room(written, &acked) => {
                    inbox.try_recv().map(Next::Event)
                }
                Err(mpsc::error::TryRecvError::Empty) => None,
            };
        }
        if written > pinged && written.saturating_sub(*acked.borrow()) >= WINDOW / 2 {
            pinged = ping(&mut batch, &mut written, None);
        }
        if stdin.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
        crate::memory::release_after_burst(inbox.drained());
    }
}

/// The longest ping line: `{"type":"ping","id":18446744073709551615}` and its newline.
const PING_LINE_MAX: usize = 48;

/// A ping as a protocol line, the same bytes [`encode`] gives, written into `buf`: one follows
/// every command, so it is written without serde and without allocating.
fn ping_line(id: PingId, buf: &mut [u8; PING_LINE_MAX]) -> &[u8] {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // Invariant: the longest line fits in the buffer, so the write cannot fail.
    let _ = writeln!(cursor, r#"{{"type":"ping","id":{}}}"#, id.0);
    let end = cursor.position() as usize;
    &buf[..end]
}

/// What the writer takes next.
enum Next {
    Urgent(Line),
    Event(Delivery),
}

fn trace_line<T: serde::Serialize>(arrow: &str, name: &str, msg: &T) {
    let json = serde_json::to_string(msg).unwrap_or_else(|e| format!("<unencodable: {e}>"));
    crate::redact::eprintln(&format!("[{name}] {arrow} {json}"));
}

fn trace_bytes(arrow: &str, name: &str, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    crate::redact::eprintln(&format!(
        "[{name}] {arrow} {}",
        String::from_utf8_lossy(line)
    ));
}

fn type_name(msg: &FromPlugin) -> String {
    serde_json::to_value(msg)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::byte_queue;
    use bytes::Bytes;
    use futures::FutureExt;
    use std::future::Future;
    use tokio::io::{AsyncReadExt, DuplexStream};

    /// Polls the writer and reads what it wrote until neither makes progress: the writer then
    /// waits for something only the test can give (an ack, an urgent line). Whether it ended.
    async fn run_until_idle(
        writer: &mut (impl Future<Output = ()> + Unpin),
        plugin: &mut DuplexStream,
        got: &mut Vec<u8>,
    ) -> bool {
        let mut idle_rounds = 0;
        let mut buf = vec![0u8; 1 << 20];
        while idle_rounds < 3 {
            let done = futures::poll!(&mut *writer).is_ready();
            let before = got.len();
            while let Some(Ok(n)) = plugin.read(&mut buf).now_or_never() {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if done {
                return true;
            }
            idle_rounds = if got.len() == before {
                idle_rounds + 1
            } else {
                0
            };
            tokio::task::yield_now().await;
        }
        false
    }

    fn last_line(bytes: &[u8]) -> &str {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        std::str::from_utf8(&body[start..]).expect("utf-8")
    }

    #[test]
    fn a_ping_line_is_what_serde_writes() {
        for id in [0, 1, 42, u64::MAX] {
            let mut buf = [0u8; PING_LINE_MAX];
            let want = encode(&ToPlugin::Ping(Ping { id: PingId(id) })).expect("encodes");
            assert_eq!(ping_line(PingId(id), &mut buf), &want[..]);
        }
    }

    #[tokio::test]
    async fn the_writer_keeps_a_burst_within_the_window_and_always_reopens_it() {
        const LINES: usize = 1000;
        let (inbox_tx, mut inbox) = byte_queue::<Delivery>(64 << 20);
        for i in 0..LINES {
            let line = Bytes::from(format!("{i:04}{}\n", "x".repeat(995)));
            assert!(inbox_tx
                .try_send(Delivery {
                    line,
                    command: None
                })
                .is_ok());
        }
        let (mut plugin, host) = tokio::io::duplex(64 << 20);
        let (urgent_tx, urgent) = mpsc::unbounded_channel();
        let (tickets_tx, mut tickets) = mpsc::unbounded_channel();
        let (acked_tx, acked) = watch::channel(0u64);
        let mut writer = Box::pin(write_lines(
            host,
            urgent,
            &mut inbox,
            tickets_tx,
            acked,
            Arc::new(AtomicU64::new(1)),
            None,
        ));
        let mut got = Vec::new();

        assert!(!run_until_idle(&mut writer, &mut plugin, &mut got).await);
        let window = WINDOW as usize;
        assert!(
            got.len() >= window && got.len() < window + 2_000,
            "wrote {} bytes ahead of any pong, window {window}",
            got.len()
        );
        assert!(
            last_line(&got).starts_with(r#"{"type":"ping","#),
            "a full window ends with a ping, so that its pong reopens it: {}",
            last_line(&got)
        );

        // A response is written at once, full window or not.
        assert!(urgent_tx
            .send(Bytes::from_static(b"{\"urgent\":1}\n"))
            .is_ok());
        assert!(!run_until_idle(&mut writer, &mut plugin, &mut got).await);
        assert_eq!(last_line(&got), r#"{"urgent":1}"#);

        // Each pong reopens the window, until the whole burst is through, in order.
        let mut acks = 0;
        while got.iter().filter(|b| **b == b'x').count() < LINES * 995 {
            let mut upto = None;
            while let Ok(ticket) = tickets.try_recv() {
                upto = Some(ticket.upto);
            }
            let upto = upto.expect("the writer waits only behind a ping");
            acked_tx.send_replace(upto);
            acks += 1;
            assert!(acks < 100, "the burst never got through");
            let before = got.len();
            assert!(!run_until_idle(&mut writer, &mut plugin, &mut got).await);
            assert!(got.len() > before, "an ack let nothing more through");
        }
        let events: Vec<&str> = std::str::from_utf8(&got)
            .expect("utf-8")
            .lines()
            .filter(|l| l.ends_with('x'))
            .collect();
        assert_eq!(events.len(), LINES);
        for (i, line) in events.iter().enumerate() {
            assert!(
                line.starts_with(&format!("{i:04}")),
                "line {i} out of order"
            );
        }

        // The goodbye path: the urgent sender gone, the writer ends.
        drop(urgent_tx);
        assert!(run_until_idle(&mut writer, &mut plugin, &mut got).await);
    }
}
