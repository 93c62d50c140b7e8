//! Drives the real sed plugin through the SDK's serve loop over an in-memory pipe, the way the
//! host would: hello both ways, chat messages and actions in, replies out, goodbye.
//!
//! Every message is followed by a `ping`; since the SDK answers a ping only after the events
//! before it, the `pong` proves that nothing else was sent in between.
#![allow(
    clippy::expect_used,
    reason = "helpers outside #[test] fns; a failed expectation is a test failure"
)]

use std::time::Duration;

use hamper_protocol::sdk::serve;
use hamper_protocol::{FromPlugin, Subscription, PROTOCOL_VERSION};
use hamper_sed::SedPlugin;
use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;

struct Host {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    out: WriteHalf<DuplexStream>,
    next_ping: u64,
    task: JoinHandle<Result<(), hamper_protocol::sdk::SdkError>>,
}

impl Host {
    /// Starts the plugin, checks its hello and answers with `config`.
    async fn start(config: Value) -> Host {
        let (host_side, plugin_side) = tokio::io::duplex(64 * 1024);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let task = tokio::spawn(serve(SedPlugin::default(), plugin_in, plugin_out));
        let (host_in, out) = tokio::io::split(host_side);
        let mut host = Host {
            lines: BufReader::new(host_in).lines(),
            out,
            next_ping: 1,
            task,
        };

        let hello: FromPlugin = serde_json::from_value(host.read().await).expect("a valid hello");
        let FromPlugin::Hello(hello) = hello else {
            panic!("expected the plugin's hello first, got {hello:?}");
        };
        assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
        assert_eq!(hello.name, "sed");
        assert_eq!(
            hello.description,
            "s/find/replace/ - Perform sed style find and replace."
        );
        assert!(
            hello.help.starts_with("Use like \"s/foo/bar/\""),
            "{}",
            hello.help
        );
        assert!(hello.commands.is_empty());
        assert_eq!(
            hello.subscriptions,
            [Subscription::Message, Subscription::Action]
        );

        host.write(json!({
            "type": "hello",
            "protocol_version": PROTOCOL_VERSION,
            "name": "sed",
            "subscriptions": ["message", "action"],
            "config": config,
        }))
        .await;
        host
    }

    async fn write(&mut self, line: Value) {
        let mut text = line.to_string();
        text.push('\n');
        self.out
            .write_all(text.as_bytes())
            .await
            .expect("writing to the plugin");
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("the plugin should answer within 10 seconds")
            .expect("reading from the plugin")
            .expect("the plugin closed its output early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends `message`, then a ping, and returns everything the plugin sent before the pong.
    async fn exchange(&mut self, message: Value) -> Vec<Value> {
        self.write(message).await;
        let id = self.next_ping;
        self.next_ping += 1;
        self.write(json!({"type": "ping", "id": id})).await;
        let mut sent = Vec::new();
        loop {
            let line = self.read().await;
            if line == json!({"type": "pong", "id": id}) {
                return sent;
            }
            sent.push(line);
        }
    }

    async fn goodbye(mut self) {
        self.write(json!({"type": "goodbye", "reason": "test over"}))
            .await;
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the plugin should stop after goodbye")
            .expect("the plugin task panicked")
            .expect("the plugin should stop cleanly");
    }
}

/// A chat message as the host sends it. `message` is the text with the bot's addressing removed.
fn message(channel: Option<&str>, nick: &str, text: &str, message: &str, directed: bool) -> Value {
    json!({
        "type": "message",
        "channel": channel,
        "nick": nick,
        "user": "~u",
        "host": "example.org",
        "text": text,
        "message": message,
        "directed": directed,
        "private": channel.is_none(),
        "action": false,
        "time": 1_700_000_000_000u64,
    })
}

fn say(nick: &str, text: &str) -> Value {
    message(Some("#hamper"), nick, text, text, false)
}

fn action(nick: &str, text: &str) -> Value {
    let mut m = say(nick, text);
    m["action"] = json!(true);
    m
}

fn reply(channel: Option<&str>, nick: &str, text: &str) -> Vec<Value> {
    vec![json!({"type": "reply", "channel": channel, "nick": nick, "text": text})]
}

#[tokio::test]
async fn a_conversation_end_to_end() {
    let mut host = Host::start(Value::Null).await;
    let none: Vec<Value> = Vec::new();
    let script: Vec<(Value, Vec<Value>)> = vec![
        (
            say("bob", "s/a/b/"),
            reply(
                Some("#hamper"),
                "bob",
                "Who are you?! How did you get in my house?!",
            ),
        ),
        (say("alice", "hello wrold"), none.clone()),
        (
            say("bob", "s/wrold/world/"),
            reply(Some("#hamper"), "bob", "alice actually meant: hello world"),
        ),
        (action("carol", "waves helo"), none.clone()),
        (
            message(
                Some("#hamper"),
                "bob",
                "hamper: s/helo/hello/",
                "s/helo/hello/",
                true,
            ),
            reply(Some("#hamper"), "bob", "carol actually meant: waves hello"),
        ),
        (
            message(
                Some("#hamper"),
                "dave",
                "alice: s/x/y/",
                "alice: s/x/y/",
                false,
            ),
            none.clone(),
        ),
        (say("alice", "apple banana apple banana"), none.clone()),
        (
            say("bob", "s/apple/orange/g s/banana/grape/"),
            reply(
                Some("#hamper"),
                "bob",
                "alice actually meant: orange grape orange banana",
            ),
        ),
        (
            say("bob", r"s/(\w+) (\w+)/\2 costs $5, \1/m"),
            reply(
                Some("#hamper"),
                "bob",
                "Sorry, I couldn't match '(\\w+) (\\w+)'.",
            ),
        ),
        (
            say("alice", r"s/(\w+) (\w+)/\2 costs $5, \1/m"),
            reply(
                Some("#hamper"),
                "alice",
                "alice actually meant: banana costs $5, apple apple banana",
            ),
        ),
        (
            say("bob", "s/(/x/"),
            reply(Some("#hamper"), "bob", "Do you even lift?"),
        ),
        (
            message(None, "alice", "s/wrold/world/", "s/wrold/world/", true),
            reply(None, "alice", "Who are you?! How did you get in my house?!"),
        ),
    ];
    for (i, (input, want)) in script.into_iter().enumerate() {
        let got = host.exchange(input.clone()).await;
        assert_eq!(got, want, "step {i}: {input}");
    }
    host.goodbye().await;
}

#[tokio::test]
async fn only_directed_comes_from_the_host_hello() {
    let mut host = Host::start(json!({"only-directed": true})).await;
    assert_eq!(
        host.exchange(say("alice", "hello wrold")).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        host.exchange(say("bob", "s/wrold/world/")).await,
        Vec::<Value>::new(),
        "an undirected command is ignored"
    );
    assert_eq!(
        host.exchange(message(
            Some("#hamper"),
            "bob",
            "!s/wrold/world/",
            "s/wrold/world/",
            true
        ))
        .await,
        reply(Some("#hamper"), "bob", "alice actually meant: hello world")
    );
    host.goodbye().await;
}
