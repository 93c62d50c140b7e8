//! A fake host for testing a Rust plugin without the supervisor.
//!
//! [`TestHost`] runs a [`Plugin`] through the SDK's own [`serve`] loop over an in-memory pipe and
//! plays the host's part: it reads the plugin's hello, sends the host's hello, answers the
//! plugin's requests with a function of the test's choosing, and after each event sends a ping
//! and collects everything the plugin wrote before the pong. Since the SDK answers a ping only
//! after the events before it, the pong proves that nothing else was sent in between.
//!
//! ```no_run
//! # use hamper_protocol::testing::{self, TestHost};
//! # use hamper_protocol::{Message, ToPlugin};
//! # async fn demo(plugin: impl hamper_protocol::sdk::Plugin + 'static) {
//! let config = serde_json::Value::Null;
//! let (mut host, hello) = TestHost::start(plugin, config, testing::unknown_method).await;
//! assert_eq!(hello.name, "echo");
//! let said = ToPlugin::Message(Message {
//!     channel: Some("#c".into()),
//!     nick: "alice".into(),
//!     text: "hi".into(),
//!     message: "hi".into(),
//!     ..Message::default()
//! });
//! assert_eq!(host.replies(said).await, ["hi"]);
//! host.stop().await.expect("the plugin stops cleanly");
//! # }
//! ```
//!
//! The plugin's serve loop is polled by the test's own task while a [`TestHost`] method is being
//! awaited, not spawned, so neither the plugin nor its futures need to be `Send`. It needs a Tokio
//! runtime with timers (`#[tokio::test]` will do). Every wait is bounded (ten seconds unless
//! [`TestHostBuilder::timeout`] says otherwise), so a plugin that hangs fails the test with a
//! panic that says what it sent so far, instead of hanging it.

use std::future::Future;
use std::pin::{pin, Pin};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codec::NdjsonCodec;
use crate::sdk::{serve, Plugin, SdkError};
use crate::wire::*;
use crate::{MAX_LINE_BYTES, PROTOCOL_VERSION};

/// How long a [`TestHost`] waits for the plugin unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer to any request: an `unknown_method` error. The default of [`TestHostBuilder`].
pub fn unknown_method(request: &Request) -> Outcome {
    error(
        ErrorCode::UnknownMethod,
        format!("unknown method {}", request.method),
    )
}

/// An error outcome with `code` and `message`, for answer functions.
pub fn error(code: ErrorCode, message: impl Into<String>) -> Outcome {
    Outcome::Error(ErrorBody {
        code,
        message: message.into(),
    })
}

/// How the fake host answers the plugin's requests.
type Answer = Box<dyn FnMut(&Request) -> Outcome>;

/// The plugin's serve loop, polled by whoever awaits a [`TestHost`] method.
type Serving = Pin<Box<dyn Future<Output = Result<(), SdkError>>>>;

/// Sets up a [`TestHost`]: the config and bot in the host's hello, the answer to requests, and
/// how long to wait for the plugin. Made by [`TestHost::builder`].
pub struct TestHostBuilder {
    config: Value,
    bot: BotInfo,
    answer: Answer,
    timeout: Duration,
}

impl std::fmt::Debug for TestHostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHostBuilder")
            .field("config", &self.config)
            .field("bot", &self.bot)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for TestHostBuilder {
    fn default() -> Self {
        TestHostBuilder {
            config: Value::Null,
            bot: BotInfo {
                nick: "hamper".into(),
                channels: Vec::new(),
                command_prefix: "!".into(),
                connected: true,
                casemapping: Default::default(),
            },
            answer: Box::new(unknown_method),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl TestHostBuilder {
    /// The plugin's config section in the host's hello (default `null`).
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// The bot in the host's hello (default: nick `hamper`, prefix `!`, connected, no channels).
    pub fn bot(mut self, bot: BotInfo) -> Self {
        self.bot = bot;
        self
    }

    /// Answers every request the plugin makes (default: [`unknown_method`]). It runs on the
    /// test's task, so it need not be `Send`, and a panic in it fails the test.
    pub fn answer(mut self, answer: impl FnMut(&Request) -> Outcome + 'static) -> Self {
        self.answer = Box::new(answer);
        self
    }

    /// How long to wait for the plugin's hello, each pong, and its exit after goodbye.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts `plugin`, reads its hello and sends the host's hello, which grants every command
    /// and subscription the plugin asked for. Returns the host and the plugin's hello.
    ///
    /// # Panics
    ///
    /// When the plugin's first message is not a hello, or it does not come in time.
    pub async fn start<P: Plugin + 'static>(self, plugin: P) -> (TestHost, PluginHello) {
        let (host_side, plugin_side) = tokio::io::duplex(MAX_LINE_BYTES);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let (host_in, host_out) = tokio::io::split(host_side);
        let mut host = TestHost {
            wire: Wire {
                from_plugin: FramedRead::new(host_in, NdjsonCodec::default()),
                to_plugin: FramedWrite::new(host_out, NdjsonCodec::default()),
                answer: self.answer,
            },
            serving: Some(Box::pin(serve(plugin, plugin_in, plugin_out))),
            served: None,
            next_ping: 1,
            timeout: self.timeout,
        };

        let (config, bot) = (self.config, self.bot);
        let wire = &mut host.wire;
        let handshake = async {
            let hello = match wire.next().await? {
                FromPlugin::Hello(hello) => hello,
                other => return Err(format!("expected the plugin's hello first, got {other:?}")),
            };
            wire.send(ToPlugin::Hello(HostHello {
                protocol_version: PROTOCOL_VERSION,
                name: hello.name.clone(),
                commands: hello.commands.iter().map(|c| c.name.clone()).collect(),
                subscriptions: hello.subscriptions.clone(),
                rejected: Vec::new(),
                config,
                bot,
            }))
            .await?;
            Ok(hello)
        };
        let outcome = run(&mut host.serving, &mut host.served, host.timeout, handshake).await;
        let hello = host.check("the plugin's hello", &[], outcome);
        (host, hello)
    }
}

/// The host side of one plugin run; see the [module documentation](self).
pub struct TestHost {
    wire: Wire,
    /// `None` once the serve loop has returned, into `served`.
    serving: Option<Serving>,
    served: Option<Result<(), SdkError>>,
    next_ping: u64,
    timeout: Duration,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("running", &self.serving.is_some())
            .field("served", &self.served)
            .field("next_ping", &self.next_ping)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// A builder, for a bot or timeout other than the default.
    pub fn builder() -> TestHostBuilder {
        TestHostBuilder::default()
    }

    /// Starts `plugin` with `config` in the host's hello and `answer` for its requests; see
    /// [`TestHostBuilder::start`].
    pub async fn start<P: Plugin + 'static>(
        plugin: P,
        config: Value,
        answer: impl FnMut(&Request) -> Outcome + 'static,
    ) -> (TestHost, PluginHello) {
        Self::builder()
            .config(config)
            .answer(answer)
            .start(plugin)
            .await
    }

    /// Sends `event`, then a ping, and returns everything the plugin sent before the pong, in
    /// order. Requests are answered on the way and left out; nothing else is.
    ///
    /// # Panics
    ///
    /// When the pong does not come in time, or the plugin writes a malformed line or stops.
    pub async fn exchange(&mut self, event: ToPlugin) -> Vec<FromPlugin> {
        let id = PingId(self.next_ping);
        self.next_ping += 1;
        let mut sent = Vec::new();
        let wire = &mut self.wire;
        let round_trip = async {
            wire.send(event).await?;
            wire.send(ToPlugin::Ping(Ping { id })).await?;
            loop {
                match wire.next().await? {
                    FromPlugin::Pong(pong) if pong.id == id => return Ok(()),
                    msg => sent.push(msg),
                }
            }
        };
        let outcome = run(
            &mut self.serving,
            &mut self.served,
            self.timeout,
            round_trip,
        )
        .await;
        self.check("the pong", &sent, outcome);
        sent
    }

    /// The texts of the replies to `event`, a message or command.
    ///
    /// # Panics
    ///
    /// As [`exchange`](Self::exchange), when `event` is neither a message nor a command, or when
    /// the plugin sends anything but a `reply` to where the event came from (its channel and
    /// nick).
    pub async fn replies(&mut self, event: ToPlugin) -> Vec<String> {
        let (channel, nick) = match &event {
            ToPlugin::Message(m) => (m.channel.clone(), m.nick.clone()),
            ToPlugin::Command(c) => (c.message.channel.clone(), c.message.nick.clone()),
            other => panic!("replies() takes a message or command, not {other:?}"),
        };
        self.exchange(event)
            .await
            .into_iter()
            .map(|msg| match msg {
                FromPlugin::Reply(reply) if reply.channel == channel && reply.nick == nick => {
                    reply.text
                }
                other => panic!("expected a reply to {nick} in {channel:?}, got {other:?}"),
            })
            .collect()
    }

    /// Says goodbye, waits for the plugin to exit and returns what its serve loop returned.
    /// Whatever the plugin writes after the goodbye is read and dropped.
    ///
    /// # Panics
    ///
    /// When the plugin does not exit in time.
    pub async fn stop(mut self) -> Result<(), SdkError> {
        let Some(serving) = self.serving.take() else {
            return self.served.take().unwrap_or(Ok(()));
        };
        let wire = &mut self.wire;
        let goodbye = ToPlugin::Goodbye(Goodbye {
            reason: "test over".into(),
        });
        let exit = async {
            // The plugin may have stopped already and closed its input.
            let _ = wire.to_plugin.send(goodbye).await;
            let drain = async {
                while let Some(Ok(_)) = wire.from_plugin.next().await {}
                std::future::pending::<()>().await;
            };
            tokio::select! {
                result = serving => result,
                () = drain => unreachable!("draining never ends"),
            }
        };
        match tokio::time::timeout(self.timeout, exit).await {
            Ok(result) => result,
            Err(_) => panic!(
                "the plugin did not stop within {:?} of the goodbye",
                self.timeout
            ),
        }
    }

    /// The value of `outcome`, or a panic that says what went wrong and what the plugin sent.
    fn check<T>(
        &self,
        waiting_for: &str,
        sent: &[FromPlugin],
        outcome: Option<Result<T, String>>,
    ) -> T {
        let serve = match &self.served {
            None => "still runs".to_string(),
            Some(Ok(())) => "has ended cleanly".to_string(),
            Some(Err(err)) => format!("has failed: {err}"),
        };
        match outcome {
            Some(Ok(value)) => value,
            Some(Err(problem)) => panic!(
                "{problem} while waiting for {waiting_for}; the plugin {serve}; it sent {sent:?}"
            ),
            None => panic!(
                "no sign of {waiting_for} within {:?}; the plugin {serve}; it sent {sent:?}",
                self.timeout
            ),
        }
    }
}

/// Awaits `work` within `timeout` (`None` when it runs out) while polling the plugin's serve
/// loop, and moves the loop's result into `served` if it returns meanwhile.
async fn run<T>(
    serving: &mut Option<Serving>,
    served: &mut Option<Result<(), SdkError>>,
    timeout: Duration,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = pin!(work);
    let both = async {
        if let Some(plugin) = serving.as_mut() {
            tokio::select! {
                biased;
                out = &mut work => return out,
                result = plugin.as_mut() => *served = Some(result),
            }
            *serving = None;
        }
        work.await
    };
    tokio::time::timeout(timeout, both).await.ok()
}

/// The host's ends of the pipe, and its answer to requests.
struct Wire {
    from_plugin: FramedRead<ReadHalf<DuplexStream>, NdjsonCodec<FromPlugin, ToPlugin>>,
    to_plugin: FramedWrite<WriteHalf<DuplexStream>, NdjsonCodec<FromPlugin, ToPlugin>>,
    answer: Answer,
}

impl Wire {
    async fn send(&mut self, msg: ToPlugin) -> Result<(), String> {
        self.to_plugin
            .send(msg)
            .await
            .map_err(|err| format!("writing to the plugin failed: {err}"))
    }

    /// The plugin's next message that is not a request, answering requests on the way.
    async fn next(&mut self) -> Result<FromPlugin, String> {
        loop {
            match self.from_plugin.next().await {
                None => return Err("the plugin closed its output".into()),
                Some(Err(err)) => return Err(format!("reading from the plugin failed: {err}")),
                Some(Ok(Err(err))) => return Err(format!("the plugin wrote a bad line: {err}")),
                Some(Ok(Ok(FromPlugin::Request(request)))) => {
                    let outcome = (self.answer)(&request);
                    self.send(ToPlugin::Response(Response {
                        id: request.id,
                        outcome,
                    }))
                    .await?;
                }
                Some(Ok(Ok(msg))) => return Ok(msg),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use serde_json::json;

    use super::*;
    use crate::sdk::{Context, Event};

    /// Counts `!count` commands in storage and says the config's greeting to joiners. It holds an
    /// `Rc`, so neither it nor its futures are `Send`.
    struct Counter {
        handled: Rc<RefCell<u32>>,
    }

    impl Plugin for Counter {
        fn hello(&self) -> PluginHello {
            PluginHello {
                name: "counter".into(),
                commands: vec![CommandSpec::new("count", "count - count")],
                subscriptions: vec![Subscription::Join],
                ..PluginHello::default()
            }
        }

        async fn handle(&mut self, event: Event, ctx: &Context) -> anyhow::Result<()> {
            let handled = self.handled.clone();
            match event {
                Event::Command(c) => match ctx.kv_incr("count", 1).await {
                    Ok(n) => ctx.reply(&c.message, format!("{n}")),
                    Err(err) => ctx.reply(&c.message, format!("no: {err}")),
                },
                Event::Other(ToPlugin::Join(j)) => {
                    let greeting = ctx.config()["greeting"].as_str().unwrap_or("hi").to_owned();
                    ctx.say(j.channel, format!("{greeting} {}", j.nick));
                }
                Event::Other(ToPlugin::Quit(_)) => std::future::pending().await,
                _ => {}
            }
            *handled.borrow_mut() += 1;
            Ok(())
        }
    }

    fn count(channel: Option<&str>) -> ToPlugin {
        ToPlugin::Command(CommandEvent {
            command: "count".into(),
            invoked_as: "count".into(),
            args: String::new(),
            message: Message {
                channel: channel.map(str::to_string),
                nick: "alice".into(),
                text: "!count".into(),
                message: "count".into(),
                directed: true,
                private: channel.is_none(),
                ..Message::default()
            },
        })
    }

    #[tokio::test]
    async fn drives_a_plugin_that_is_not_send() {
        let handled = Rc::new(RefCell::new(0));
        let plugin = Counter {
            handled: handled.clone(),
        };
        let requests = Rc::new(RefCell::new(Vec::new()));
        let seen = requests.clone();
        let (mut host, hello) = TestHost::start(plugin, json!({"greeting": "hello"}), move |req| {
            seen.borrow_mut().push(req.clone());
            match seen.borrow().len() {
                1 => Outcome::Result(json!({"value": 7})),
                _ => error(ErrorCode::Unavailable, "down"),
            }
        })
        .await;
        assert_eq!(hello.name, "counter");
        assert_eq!(hello.protocol_version, PROTOCOL_VERSION);

        assert_eq!(host.replies(count(Some("#c"))).await, ["7"]);
        assert_eq!(host.replies(count(None)).await, ["no: unavailable: down"]);
        assert_eq!(requests.borrow()[0].method, "kv.incr");
        assert_eq!(
            requests.borrow()[0].params,
            json!({"key": "count", "by": 1})
        );
        assert_eq!(requests.borrow().len(), 2);

        let join = ToPlugin::Join(Join {
            channel: "#c".into(),
            nick: "bob".into(),
            ..Join::default()
        });
        assert_eq!(
            host.exchange(join).await,
            [FromPlugin::Say(Say {
                target: "#c".into(),
                text: "hello bob".into()
            })]
        );
        assert_eq!(*handled.borrow(), 3);
        host.stop().await.unwrap();
    }

    #[tokio::test]
    #[should_panic(expected = "no sign of the pong within 50ms")]
    async fn a_plugin_that_hangs_fails_instead_of_hanging_the_test() {
        let plugin = Counter {
            handled: Rc::default(),
        };
        let (mut host, _) = TestHost::builder()
            .timeout(Duration::from_millis(50))
            .start(plugin)
            .await;
        host.exchange(ToPlugin::Quit(Quit::default())).await;
    }
}
