//! The scripted IRC server: a loopback listener that plays just enough of a server for one bot.
//!
//! It answers registration with `001`, echoes the bot's JOIN the way a server does, and answers
//! PING. Everything else is the benchmark's: it writes the fake user's lines and reads the bot's
//! replies on the same connection, in the calling task, so that a measured round trip holds no
//! hop between tasks, only the two sockets and the bot.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio_util::codec::{FramedRead, LinesCodec};

use crate::line::{self, MAX_LINE};

/// The channel every bot joins.
pub const CHANNEL: &str = "#bench";

/// A listener on 127.0.0.1 with a port of the system's choosing.
pub struct Listener {
    inner: TcpListener,
    port: u16,
}

impl Listener {
    /// Binds 127.0.0.1:0.
    pub async fn bind() -> anyhow::Result<Listener> {
        let inner = TcpListener::bind("127.0.0.1:0")
            .await
            .context("failed to bind a loopback port for the scripted IRC server")?;
        let port = inner.local_addr()?.port();
        Ok(Listener { inner, port })
    }

    /// The port to give the bot.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (at most `within`) for the bot to connect.
    pub async fn accept(&self, within: Duration) -> anyhow::Result<Conn> {
        let (stream, _) = tokio::time::timeout(within, self.inner.accept())
            .await
            .with_context(|| format!("nothing connected within {within:?}"))??;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        Ok(Conn {
            lines: FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LINE)),
            writer,
            nick: String::new(),
        })
    }
}

/// One bot's connection, seen from the server.
pub struct Conn {
    lines: FramedRead<OwnedReadHalf, LinesCodec>,
    writer: OwnedWriteHalf,
    /// The nick the bot registered with.
    pub nick: String,
}

impl Conn {
    /// Plays registration: waits for NICK and USER, welcomes the bot, then waits for its JOIN
    /// of [`CHANNEL`] and echoes it. Returns when the JOIN was read.
    pub async fn register(&mut self, within: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + within;
        let mut user = false;
        let mut welcomed = false;
        loop {
            let Some(line) = self.next_line(deadline).await? else {
                bail!("the bot did not register and join {CHANNEL} within {within:?}");
            };
            match line::verb(&line) {
                "NICK" => {
                    self.nick = line.split(' ').nth(1).unwrap_or_default().to_string();
                }
                "USER" => user = true,
                "JOIN" if line.split(' ').nth(1) == Some(CHANNEL) => {
                    let joined = Instant::now();
                    let echo = format!(":{}!bench@127.0.0.1 JOIN {CHANNEL}", self.nick);
                    self.send(&echo).await?;
                    return Ok(joined);
                }
                _ => {}
            }
            if user && !welcomed && !self.nick.is_empty() {
                let welcome = format!(":bench.local 001 {} :Welcome to the bench", self.nick);
                self.send(&welcome).await?;
                welcomed = true;
            }
        }
    }

    /// Writes one line (the CR LF is added).
    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.writer
            .write_all(&bytes)
            .await
            .context("failed to write to the bot")
    }

    /// The next line from the bot, answering PING on the way; `None` at `deadline`. The
    /// connection closing is an error: the bot is gone.
    pub async fn next_line(&mut self, deadline: Instant) -> anyhow::Result<Option<String>> {
        loop {
            let read = tokio::time::timeout_at(deadline.into(), self.lines.next()).await;
            let line = match read {
                Err(_) => return Ok(None),
                Ok(None) => bail!("the bot closed its connection"),
                Ok(Some(line)) => line.context("failed to read a line from the bot")?,
            };
            if let Some(token) = line::ping_token(&line) {
                let pong = format!("PONG :{token}");
                self.send(&pong).await?;
                continue;
            }
            return Ok(Some(line));
        }
    }

    /// The text of the next PRIVMSG to [`CHANNEL`]; `None` at `deadline`.
    pub async fn next_reply(&mut self, deadline: Instant) -> anyhow::Result<Option<String>> {
        while let Some(line) = self.next_line(deadline).await? {
            if let Some(msg) = line::privmsg(&line).filter(|m| m.target == CHANNEL) {
                return Ok(Some(msg.text.to_string()));
            }
        }
        Ok(None)
    }

    /// Plays the server while the bot shuts down: answers its QUIT by closing, as a server
    /// does, or closes after `within`.
    pub async fn close_on_quit(mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while let Ok(Some(line)) = self.next_line(deadline).await {
            if line::verb(&line) == "QUIT" {
                let _ = self.send("ERROR :Closing link (quit)").await;
                break;
            }
        }
    }

    /// Writes `bytes` in one go while counting the replies that satisfy `want`, until none has
    /// come for `quiet` or `cap` has passed since the start. PINGs are not answered meanwhile
    /// (a bot pings only after minutes of silence).
    pub async fn flood(
        &mut self,
        bytes: &[u8],
        want: fn(&str) -> bool,
        quiet: Duration,
        cap: Duration,
    ) -> anyhow::Result<Flood> {
        let started = Instant::now();
        let Conn { lines, writer, .. } = self;
        let write = async {
            writer.write_all(bytes).await?;
            anyhow::Ok(Instant::now())
        };
        let read = async {
            let mut flood = Flood {
                started,
                written: None,
                matched: 0,
                other: 0,
                first: None,
                last: None,
            };
            let end = started + cap;
            loop {
                let until = (Instant::now() + quiet).min(end);
                match tokio::time::timeout_at(until.into(), lines.next()).await {
                    Err(_) => break,
                    Ok(None) => bail!("the bot closed its connection during the burst"),
                    Ok(Some(line)) => {
                        let line = line.context("failed to read a line from the bot")?;
                        let text = line::privmsg(&line)
                            .filter(|m| m.target == CHANNEL)
                            .map(|m| m.text);
                        if text.is_some_and(want) {
                            let now = Instant::now();
                            flood.first.get_or_insert(now);
                            flood.last = Some(now);
                            flood.matched += 1;
                        } else {
                            flood.other += 1;
                        }
                    }
                }
            }
            anyhow::Ok(flood)
        };
        let (written, flood) = tokio::join!(write, read);
        let mut flood = flood?;
        flood.written = Some(written.context("failed to write the burst")?);
        Ok(flood)
    }
}

/// What [`Conn::flood`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    /// When the write began.
    pub started: Instant,
    /// When the last byte was handed to the kernel.
    pub written: Option<Instant>,
    /// Replies that satisfied the predicate.
    pub matched: usize,
    /// Any other line.
    pub other: usize,
    /// The first matching reply.
    pub first: Option<Instant>,
    /// The last matching reply.
    pub last: Option<Instant>,
}
