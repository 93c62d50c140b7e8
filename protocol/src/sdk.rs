//! A small SDK that turns a Rust handler into a hamper plugin binary.
//!
//! A plugin implements [`Plugin`] and its `main` calls [`run`]. The SDK sends the hello, reads
//! events in order and hands each to the handler, answers pings after the events before them
//! (so a pong means "everything before this is done"), matches responses to requests, and exits
//! cleanly on stdin EOF or the host's goodbye.

use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codec::NdjsonCodec;
use crate::wire::*;
use crate::PROTOCOL_VERSION;

/// What a plugin receives after the handshake.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A chat message or `/me` action.
    Message(Message),
    /// A command this plugin owns.
    Command(CommandEvent),
    /// Any other subscribed event (join, part, quit, kick, nick, topic, invite, connected,
    /// disconnected), as the host sent it.
    Other(ToPlugin),
}

/// A hamper plugin written in Rust.
pub trait Plugin {
    /// The manifest sent in the hello. `protocol_version` is filled in by the SDK.
    fn hello(&self) -> PluginHello;

    /// Called once with the host's hello, before any event. The default does nothing.
    fn start(
        &mut self,
        _host: &HostHello,
        _ctx: &Context,
    ) -> impl Future<Output = anyhow::Result<()>> {
        async { Ok(()) }
    }

    /// Called for each event, in order. An error is logged to stderr; the plugin carries on.
    fn handle(&mut self, event: Event, ctx: &Context) -> impl Future<Output = anyhow::Result<()>>;
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// The host answered with an error.
    #[error("{code}: {message}")]
    Host {
        /// The error code.
        code: ErrorCode,
        /// The host's words.
        message: String,
    },
    /// The connection to the host closed before the answer came.
    #[error("the host closed the connection")]
    Closed,
    /// The result did not have the expected shape.
    #[error("unexpected result: {0}")]
    BadResult(String),
}

impl RequestError {
    /// The host's error code, if the host answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RequestError::Host { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Errors that end [`serve`].
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// Reading stdin or writing stdout failed.
    #[error("protocol i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The host refused the plugin.
    #[error("the host refused this plugin: {0}")]
    Refused(String),
    /// The host closed stdin before its hello.
    #[error("the host closed the connection before its hello")]
    NoHello,
    /// The plugin's `start` failed.
    #[error("plugin start-up failed: {0:#}")]
    Start(anyhow::Error),
}

/// Requests waiting for their response; `None` once the host has closed stdin, so that a request
/// made after that fails at once instead of waiting forever.
type Pending = Arc<Mutex<Option<HashMap<RequestId, oneshot::Sender<Outcome>>>>>;

/// The plugin's handle on the host: send actions, make requests.
#[derive(Debug, Clone)]
pub struct Context {
    out: mpsc::UnboundedSender<FromPlugin>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    host: Arc<Mutex<HostHello>>,
}

impl Context {
    fn send(&self, msg: FromPlugin) {
        // The writer task only stops when stdout is gone, and then nothing can be delivered.
        let _ = self.out.send(msg);
    }

    /// The plugin's config section from the host's hello (`null` if none).
    pub fn config(&self) -> Value {
        self.lock_host().config.clone()
    }

    /// The host's hello.
    pub fn host(&self) -> HostHello {
        self.lock_host().clone()
    }

    fn lock_host(&self) -> std::sync::MutexGuard<'_, HostHello> {
        self.host.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reply where `msg` came from: its channel, or its sender in private.
    pub fn reply(&self, msg: &Message, text: impl Into<String>) {
        self.send(FromPlugin::Reply(Reply {
            channel: msg.channel.clone(),
            nick: msg.nick.clone(),
            text: text.into(),
        }));
    }

    /// Send a message to a channel or nick.
    pub fn say(&self, target: impl Into<String>, text: impl Into<String>) {
        self.send(FromPlugin::Say(Say {
            target: target.into(),
            text: text.into(),
        }));
    }

    /// Send a `/me` action to a channel or nick.
    pub fn me(&self, target: impl Into<String>, text: impl Into<String>) {
        self.send(FromPlugin::Me(Say {
            target: target.into(),
            text: text.into(),
        }));
    }

    /// Send a notice to a channel or nick.
    pub fn notice(&self, target: impl Into<String>, text: impl Into<String>) {
        self.send(FromPlugin::Notice(Say {
            target: target.into(),
            text: text.into(),
        }));
    }

    /// Ask the bot to join a channel (needs the `join` grant).
    pub fn join(&self, channel: impl Into<String>, key: Option<String>) {
        self.send(FromPlugin::Join(JoinChannel {
            channel: channel.into(),
            key,
        }));
    }

    /// Ask the bot to leave a channel (needs the `part` grant).
    pub fn part(&self, channel: impl Into<String>, reason: Option<String>) {
        self.send(FromPlugin::Part(PartChannel {
            channel: channel.into(),
            reason,
        }));
    }

    /// Send a raw IRC line (needs the `raw` grant).
    pub fn raw(&self, line: impl Into<String>) {
        self.send(FromPlugin::Raw(RawLine { line: line.into() }));
    }

    /// Make a request and wait for its one response.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, RequestError> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        match self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(pending) => pending.insert(id, tx),
            None => return Err(RequestError::Closed),
        };
        self.send(FromPlugin::Request(Request {
            id,
            method: method.to_string(),
            params,
        }));
        match rx.await {
            Ok(Outcome::Result(value)) => Ok(value),
            Ok(Outcome::Error(e)) => Err(RequestError::Host {
                code: e.code,
                message: e.message,
            }),
            Err(_) => Err(RequestError::Closed),
        }
    }

    async fn request_as<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RequestError> {
        let value = self.request(method, params).await?;
        serde_json::from_value(value).map_err(|e| RequestError::BadResult(e.to_string()))
    }

    /// `plugins.list`: every plugin with its commands and help.
    pub async fn plugins_list(&self) -> Result<PluginsList, RequestError> {
        self.request_as("plugins.list", json!({})).await
    }

    /// `bot.info`: the bot's nick and channels.
    pub async fn bot_info(&self) -> Result<BotInfo, RequestError> {
        self.request_as("bot.info", json!({})).await
    }

    /// `kv.get`: the value of `key`, or `None` when it does not exist.
    pub async fn kv_get(&self, key: &str) -> Result<Option<Value>, RequestError> {
        #[derive(serde::Deserialize)]
        struct Got {
            value: Value,
        }
        match self
            .request_as::<Got>("kv.get", json!({ "key": key }))
            .await
        {
            Ok(got) => Ok(Some(got.value)),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `kv.set`: store `value` under `key`; returns once it is committed.
    pub async fn kv_set(&self, key: &str, value: Value) -> Result<(), RequestError> {
        self.request("kv.set", json!({ "key": key, "value": value }))
            .await
            .map(drop)
    }

    /// `kv.delete`: remove `key`; returns whether it existed.
    pub async fn kv_delete(&self, key: &str) -> Result<bool, RequestError> {
        #[derive(serde::Deserialize)]
        struct Deleted {
            deleted: bool,
        }
        self.request_as::<Deleted>("kv.delete", json!({ "key": key }))
            .await
            .map(|d| d.deleted)
    }

    /// `kv.incr`: add `by` to the integer at `key` (missing counts as 0); returns the new value.
    pub async fn kv_incr(&self, key: &str, by: i64) -> Result<i64, RequestError> {
        #[derive(serde::Deserialize)]
        struct Incremented {
            value: i64,
        }
        self.request_as::<Incremented>("kv.incr", json!({ "key": key, "by": by }))
            .await
            .map(|i| i.value)
    }

    /// `kv.list`: keys with a prefix, ordered and paged.
    pub async fn kv_list(&self, params: &ListParams) -> Result<Vec<KvItem>, RequestError> {
        #[derive(serde::Deserialize)]
        struct Listed {
            items: Vec<KvItem>,
        }
        let params =
            serde_json::to_value(params).map_err(|e| RequestError::BadResult(e.to_string()))?;
        self.request_as::<Listed>("kv.list", params)
            .await
            .map(|l| l.items)
    }
}

/// Runs a plugin on stdin/stdout and maps the outcome to an exit code.
///
/// When stdin is a terminal (someone started the binary by hand), prints a one-line hint to
/// use `hamper plugin <name>` and exits with status 2 instead of waiting silently.
pub fn run<P: Plugin>(plugin: P) -> ExitCode {
    let name = plugin.hello().name;
    if std::io::stdin().is_terminal() {
        eprintln!(
            "hamper-{name} is a hamper plugin and speaks JSON on stdin/stdout; \
             to try it by hand, run `hamper plugin {name}`"
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match (pipe_in(), pipe_out()) {
            (Some(input), Some(output)) => serve(plugin, input, output).await,
            (Some(input), None) => serve(plugin, input, tokio::io::stdout()).await,
            (None, Some(output)) => serve(plugin, tokio::io::stdin(), output).await,
            (None, None) => serve(plugin, tokio::io::stdin(), tokio::io::stdout()).await,
        }
    });
    // Reading stdin blocks a thread that cannot be interrupted: waiting for it would keep a
    // plugin whose start-up failed alive until the host happened to write another line.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Stdin as a non-blocking pipe read by the runtime itself, when it is a pipe (as under the
/// host): `tokio::io::stdin` would hand every read to a blocking thread and back.
fn pipe_in() -> Option<tokio::net::unix::pipe::Receiver> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok()
}

/// Stdout as a non-blocking pipe, when it is one; see [`pipe_in`].
fn pipe_out() -> Option<tokio::net::unix::pipe::Sender> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok()
}

/// Speaks the protocol on `input`/`output` until EOF or goodbye.
pub async fn serve<P, R, W>(mut plugin: P, input: R, output: W) -> Result<(), SdkError>
where
    P: Plugin,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<FromPlugin>();
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut sink = FramedWrite::new(output, NdjsonCodec::<ToPlugin, FromPlugin>::default());
        loop {
            tokio::select! {
                msg = out_rx.recv() => match msg {
                    Some(msg) => {
                        // Whatever else is ready goes out in the same write.
                        sink.feed(msg).await?;
                        while let Ok(more) = out_rx.try_recv() {
                            sink.feed(more).await?;
                        }
                        sink.flush().await?;
                    }
                    None => break,
                },
                // The plugin is done even if a task it spawned still holds a `Context`: write
                // what is queued and stop.
                _ = &mut done_rx => {
                    while let Ok(msg) = out_rx.try_recv() {
                        sink.send(msg).await?;
                    }
                    break;
                }
            }
        }
        Ok::<_, std::io::Error>(())
    });

    let ctx = Context {
        out: out_tx,
        pending: Arc::new(Mutex::new(Some(HashMap::new()))),
        next_id: Arc::new(AtomicU64::new(1)),
        host: Arc::default(),
    };
    let mut hello = plugin.hello();
    hello.protocol_version = PROTOCOL_VERSION;
    ctx.send(FromPlugin::Hello(hello));

    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<ToPlugin>();
    let reader = tokio::spawn(read_lines(input, event_tx, ctx.pending.clone()));

    let result = serve_events(&mut plugin, &ctx, &mut event_rx).await;
    reader.abort();
    drop(ctx);
    let _ = done_tx.send(());
    // Flush what the handler sent; a closed stdout is not worth reporting at exit.
    let _ = writer.await;
    result
}

async fn serve_events<P: Plugin>(
    plugin: &mut P,
    ctx: &Context,
    events: &mut mpsc::UnboundedReceiver<ToPlugin>,
) -> Result<(), SdkError> {
    let host = loop {
        match events.recv().await {
            None => return Err(SdkError::NoHello),
            Some(ToPlugin::Hello(host)) => break host,
            Some(ToPlugin::Goodbye(g)) => return Err(SdkError::Refused(g.reason)),
            Some(ToPlugin::Ping(p)) => ctx.send(FromPlugin::Pong(Pong { id: p.id })),
            Some(_) => {}
        }
    };
    *ctx.host.lock().unwrap_or_else(|p| p.into_inner()) = host.clone();
    plugin.start(&host, ctx).await.map_err(SdkError::Start)?;

    while let Some(msg) = events.recv().await {
        let event = match msg {
            ToPlugin::Ping(p) => {
                ctx.send(FromPlugin::Pong(Pong { id: p.id }));
                continue;
            }
            ToPlugin::Goodbye(_) => break,
            ToPlugin::Hello(_) | ToPlugin::Response(_) => continue,
            ToPlugin::Message(m) => Event::Message(m),
            ToPlugin::Command(c) => Event::Command(c),
            other => Event::Other(other),
        };
        if let Err(err) = plugin.handle(event, ctx).await {
            eprintln!("error handling an event: {err:#}");
        }
    }
    Ok(())
}

async fn read_lines<R: AsyncRead + Unpin>(
    input: R,
    events: mpsc::UnboundedSender<ToPlugin>,
    pending: Pending,
) {
    let mut lines = FramedRead::new(input, NdjsonCodec::<ToPlugin, FromPlugin>::default());
    while let Some(item) = lines.next().await {
        let item = match item {
            Ok(item) => item,
            Err(err) => {
                eprintln!("reading from the host failed: {err}");
                break;
            }
        };
        match item {
            Ok(ToPlugin::Response(resp)) => {
                let waiter = pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                    .and_then(|p| p.remove(&resp.id));
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(resp.outcome);
                    }
                    None => eprintln!("response to unknown request {}", resp.id.0),
                }
            }
            Ok(msg) => {
                if events.send(msg).is_err() {
                    break;
                }
            }
            Err(err) => eprintln!("ignoring a line from the host: {err}"),
        }
    }
    // Dropping the waiters answers every open request with `Closed`.
    pending.lock().unwrap_or_else(|p| p.into_inner()).take();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    struct Echo;

    impl Plugin for Echo {
        fn hello(&self) -> PluginHello {
            PluginHello {
                name: "echo".into(),
                commands: vec![CommandSpec::new("echo", "echo TEXT - say TEXT back")],
                subscriptions: vec![Subscription::Message],
                ..PluginHello::default()
            }
        }

        async fn handle(&mut self, event: Event, ctx: &Context) -> anyhow::Result<()> {
            if let Event::Command(c) = event {
                let n = ctx.kv_incr("echoes", 1).await?;
                ctx.reply(&c.message, format!("{} ({n})", c.args));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn handshake_command_request_and_goodbye() {
        let (host_side, plugin_side) = tokio::io::duplex(4096);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let task = tokio::spawn(serve(Echo, plugin_in, plugin_out));
        let (host_in, mut host_out) = tokio::io::split(host_side);
        let mut lines = BufReader::new(host_in).lines();

        let hello: FromPlugin =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        let FromPlugin::Hello(hello) = hello else {
            panic!("expected hello, got {hello:?}")
        };
        assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
        assert_eq!(hello.commands[0].name, "echo");

        host_out
            .write_all(b"{\"type\":\"hello\",\"protocol_version\":1,\"name\":\"echo\"}\n")
            .await
            .unwrap();
        host_out
            .write_all(b"{\"type\":\"command\",\"command\":\"echo\",\"args\":\"hi\",\"channel\":\"#c\",\"nick\":\"bob\",\"text\":\"!echo hi\",\"message\":\"echo hi\"}\n{\"type\":\"ping\",\"id\":42}\n")
            .await
            .unwrap();

        let req: FromPlugin =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        let FromPlugin::Request(req) = req else {
            panic!("expected request, got {req:?}")
        };
        assert_eq!(req.method, "kv.incr");
        assert_eq!(req.params, json!({"key":"echoes","by":1}));
        host_out
            .write_all(
                format!(
                    "{{\"type\":\"response\",\"id\":{},\"result\":{{\"value\":3}}}}\n",
                    req.id.0
                )
                .as_bytes(),
            )
            .await
            .unwrap();

        let reply: FromPlugin =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(
            reply,
            FromPlugin::Reply(Reply {
                channel: Some("#c".into()),
                nick: "bob".into(),
                text: "hi (3)".into()
            })
        );
        let pong: FromPlugin =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(
            pong,
            FromPlugin::Pong(Pong { id: PingId(42) }),
            "pong comes after the reply"
        );

        host_out
            .write_all(b"{\"type\":\"goodbye\",\"reason\":\"test\"}\n")
            .await
            .unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_request_after_the_host_closed_stdin_fails_at_once() {
        let (host_side, plugin_side) = tokio::io::duplex(4096);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let task = tokio::spawn(serve(Echo, plugin_in, plugin_out));
        let (host_in, mut host_out) = tokio::io::split(host_side);
        host_out
            .write_all(b"{\"type\":\"hello\",\"protocol_version\":1}\n{\"type\":\"command\",\"command\":\"echo\",\"args\":\"x\",\"nick\":\"b\",\"text\":\"!echo x\",\"message\":\"echo x\"}\n")
            .await
            .unwrap();
        host_out.shutdown().await.unwrap();
        let _keep_reading = tokio::spawn(async move {
            let mut lines = BufReader::new(host_in).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the plugin exits instead of waiting for a response that cannot come")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn eof_before_hello_is_an_error_and_eof_after_is_clean() {
        let (host_side, plugin_side) = tokio::io::duplex(4096);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let task = tokio::spawn(serve(Echo, plugin_in, plugin_out));
        drop(host_side);
        assert!(matches!(task.await.unwrap(), Err(SdkError::NoHello)));

        let (host_side, plugin_side) = tokio::io::duplex(4096);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let task = tokio::spawn(serve(Echo, plugin_in, plugin_out));
        let (_host_in, mut host_out) = tokio::io::split(host_side);
        host_out
            .write_all(b"{\"type\":\"hello\",\"protocol_version\":1}\n")
            .await
            .unwrap();
        drop(host_out);
        drop(_host_in);
        task.await.unwrap().unwrap();
    }
}
