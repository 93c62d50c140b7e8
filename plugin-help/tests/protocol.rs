//! Drives the real help plugin through the SDK's serve loop, against a tiny fake host whose
//! `plugins.list` answer each test sets (or breaks).

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use hamper_help::Help;
use hamper_protocol::testing::{self, error, TestHost};
use hamper_protocol::{
    CommandEvent, CommandSpec, ErrorCode, FromPlugin, Message, Outcome, PluginHello, PluginInfo,
    PluginsList, Say, ToPlugin,
};
use serde_json::{json, Value};

/// What the fake host answers to `plugins.list`: the list, or an error.
type Answer = Arc<Mutex<Result<PluginsList, ErrorCode>>>;

/// Starts the help plugin against a fake host that answers `plugins.list` with `list` until the
/// test changes the answer.
async fn start(list: PluginsList) -> (TestHost, Answer, PluginHello) {
    let answer: Answer = Arc::new(Mutex::new(Ok(list)));
    let answers = answer.clone();
    let (host, hello) = TestHost::start(Help, Value::Null, move |req| {
        match (req.method.as_str(), &*answers.lock().unwrap()) {
            ("plugins.list", Ok(list)) => Outcome::Result(json!(list)),
            ("plugins.list", Err(code)) => error(*code, "the supervisor is busy"),
            _ => testing::unknown_method(req),
        }
    })
    .await;
    (host, answer, hello)
}

fn help(args: &str, channel: Option<&str>) -> ToPlugin {
    let line = format!("help {args}").trim().to_string();
    ToPlugin::Command(CommandEvent {
        command: "help".into(),
        invoked_as: "help".into(),
        args: args.into(),
        message: Message {
            channel: channel.map(str::to_string),
            nick: "alice".into(),
            text: format!("!{line}"),
            message: line,
            directed: true,
            private: channel.is_none(),
            ..Message::default()
        },
    })
}

fn says_to_alice(out: Vec<FromPlugin>) -> Vec<String> {
    out.into_iter()
        .map(|msg| match msg {
            FromPlugin::Say(Say { target, text }) if target == "alice" => text,
            other => panic!("expected a private message to alice, got {other:?}"),
        })
        .collect()
}

fn plugins() -> PluginsList {
    let karma = CommandSpec {
        aliases: vec!["score".into()],
        usage: "karma [name|--top|--bottom]".into(),
        long_help: "!karma username - Show the user's karma count".into(),
        ..CommandSpec::new("karma", "Show someone's karma, or the top or bottom five")
    };
    PluginsList {
        command_prefix: "!".into(),
        plugins: vec![
            PluginInfo {
                name: "karma".into(),
                description: "karma/score - Give or take karma from someone".into(),
                state: "running".into(),
                commands: vec![karma],
                ..PluginInfo::default()
            },
            PluginInfo {
                name: "help".into(),
                description: "help [command] - Show help for commands.".into(),
                state: "running".into(),
                commands: hamper_help::manifest().commands,
                ..PluginInfo::default()
            },
            PluginInfo {
                name: "sed".into(),
                description: "s/find/replace/ - Perform sed style find and replace.".into(),
                help: "Use like \"s/foo/bar/\".".into(),
                state: "running".into(),
                ..PluginInfo::default()
            },
            PluginInfo {
                name: "dice".into(),
                description: "Roll dice".into(),
                state: "failed".into(),
                commands: vec![CommandSpec::new("roll", "Roll dice.")],
                ..PluginInfo::default()
            },
        ],
    }
}

#[tokio::test]
async fn help_lists_in_private_and_describes_in_place() {
    let (mut host, answer, hello) = start(plugins()).await;
    assert_eq!(hello.name, "help");
    assert_eq!(hello.commands[0].name, "help");

    let overview = [
        "Available commands",
        "!help [command|plugin] - Show help for commands.",
        "!karma [name|--top|--bottom] - Show someone's karma, or the top or bottom five",
        "s/find/replace/ - Perform sed style find and replace.",
    ];
    // Asked in a channel: everything goes to the asker in private, nothing to the channel.
    assert_eq!(
        says_to_alice(host.exchange(help("", Some("#c"))).await),
        overview
    );
    assert_eq!(says_to_alice(host.exchange(help("", None)).await), overview);

    assert_eq!(
        host.replies(help("!score", Some("#c"))).await,
        [
            "!karma [name|--top|--bottom] - Show someone's karma, or the top or bottom five",
            "!karma username - Show the user's karma count",
        ]
    );
    assert_eq!(
        host.replies(help("sed", None)).await,
        [
            "s/find/replace/ - Perform sed style find and replace.",
            "Use like \"s/foo/bar/\".",
        ]
    );
    assert_eq!(
        host.replies(help("roll", Some("#c"))).await,
        ["Unknown command"]
    );

    // The catalog is asked for again at every request.
    let mut fewer = plugins();
    fewer.plugins.retain(|p| p.name != "sed");
    *answer.lock().unwrap() = Ok(fewer);
    assert_eq!(
        says_to_alice(host.exchange(help("", Some("#c"))).await).len(),
        3
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_plugins_list_is_reported() {
    let (mut host, answer, _) = start(plugins()).await;
    *answer.lock().unwrap() = Err(ErrorCode::Unavailable);
    assert_eq!(
        host.replies(help("", Some("#c"))).await,
        ["Sorry, I can't get the list of commands right now."]
    );
    assert_eq!(
        host.replies(help("karma", None)).await,
        ["Sorry, I can't get the list of commands right now."]
    );
    // Chat that is not a command is ignored.
    let chat = ToPlugin::Message(Message {
        channel: Some("#c".into()),
        nick: "alice".into(),
        text: "help".into(),
        message: "help".into(),
        ..Message::default()
    });
    assert!(host.exchange(chat).await.is_empty());
    host.stop().await.unwrap();
}
