//! Drives the real sed plugin through the SDK's serve loop over an in-memory pipe, the way the
//! host would: hello both ways, chat messages and actions in, replies out, goodbye.
//!
//! [`TestHost`] follows every message with a `ping`; since the SDK answers a ping only after the
//! events before it, the `pong` proves that nothing else was sent in between.

use hamper_protocol::testing::TestHost;
use hamper_protocol::{
    CaseMapping, Connected, FromPlugin, Message, Reply, Subscription, ToPlugin, PROTOCOL_VERSION,
};
use hamper_sed::SedPlugin;
use serde_json::{json, Value};

/// Starts the plugin, checks its hello and answers with `config`. The plugin makes no requests.
async fn start(config: Value) -> TestHost {
    let (host, hello) = TestHost::start(SedPlugin::default(), config, |req| {
        panic!("the sed plugin makes no requests, but sent {req:?}")
    })
    .await;
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
        [
            Subscription::Message,
            Subscription::Action,
            Subscription::Connected
        ]
    );
    host
}

/// A chat message as the host sends it. `message` is the text with the bot's addressing removed.
fn message(
    channel: Option<&str>,
    nick: &str,
    text: &str,
    message: &str,
    directed: bool,
) -> ToPlugin {
    ToPlugin::Message(Message {
        channel: channel.map(str::to_string),
        nick: nick.into(),
        user: Some("~u".into()),
        host: Some("example.org".into()),
        text: text.into(),
        message: message.into(),
        directed,
        private: channel.is_none(),
        action: false,
        time: 1_700_000_000_000,
        ..Message::default()
    })
}

fn say(nick: &str, text: &str) -> ToPlugin {
    message(Some("#hamper"), nick, text, text, false)
}

fn action(nick: &str, text: &str) -> ToPlugin {
    let mut m = say(nick, text);
    if let ToPlugin::Message(m) = &mut m {
        m.action = true;
    }
    m
}

fn reply(channel: Option<&str>, nick: &str, text: &str) -> Vec<FromPlugin> {
    vec![FromPlugin::Reply(Reply {
        channel: channel.map(str::to_string),
        nick: nick.into(),
        text: text.into(),
    })]
}

#[tokio::test]
async fn a_conversation_end_to_end() {
    let mut host = start(Value::Null).await;
    let none: Vec<FromPlugin> = Vec::new();
    let script: Vec<(ToPlugin, Vec<FromPlugin>)> = vec![
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
        assert_eq!(got, want, "step {i}: {input:?}");
    }
    host.stop().await.expect("the plugin should stop cleanly");
}

#[tokio::test]
async fn only_directed_comes_from_the_host_hello() {
    let mut host = start(json!({"only-directed": true})).await;
    assert_eq!(
        host.exchange(say("alice", "hello wrold")).await,
        Vec::<FromPlugin>::new()
    );
    assert_eq!(
        host.exchange(say("bob", "s/wrold/world/")).await,
        Vec::<FromPlugin>::new(),
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
    host.stop().await.expect("the plugin should stop cleanly");
}

#[tokio::test]
async fn whose_line_is_whose_follows_the_servers_casemapping() {
    let mut host = start(Value::Null).await;
    // Under rfc1459 (until the server says otherwise) `alice[` and `ALICE{` are one nick, so
    // `m` (only my own lines) finds the line.
    host.replies(say("alice[", "hello wrold")).await;
    assert_eq!(
        host.replies(say("ALICE{", "s/wrold/world/m")).await,
        ["alice[ actually meant: hello world"]
    );
    let connected = ToPlugin::Connected(Connected {
        nick: "hamper".into(),
        server: "irc.example.org".into(),
        casemapping: CaseMapping::Ascii,
    });
    assert!(host.exchange(connected).await.is_empty());
    host.replies(say("bob[", "good mornign")).await;
    assert_eq!(
        host.replies(say("BOB{", "s/mornign/morning/m")).await,
        ["Sorry, I couldn't match 'mornign'."]
    );
    assert_eq!(
        host.replies(say("BOB[", "s/mornign/morning/m")).await,
        ["bob[ actually meant: good morning"]
    );
    host.stop().await.expect("clean stop");
}
