//! Drives the real help plugin through the SDK's serve loop, against a tiny fake host whose
//! `plugins.list` answer each test sets (or breaks).

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hamper_help::Help;
use hamper_protocol::sdk::{serve, SdkError};
use hamper_protocol::{
    BotInfo, CommandEvent, CommandSpec, ErrorBody, ErrorCode, FromPlugin, Goodbye, HostHello,
    Message, Outcome, Ping, PingId, PluginHello, PluginInfo, PluginsList, Reply, Response, Say,
    ToPlugin, PROTOCOL_VERSION,
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// What the fake host answers to `plugins.list`: the list, or an error.
type Answer = Arc<Mutex<Result<PluginsList, ErrorCode>>>;

struct FakeHost {
    to_plugin: mpsc::UnboundedSender<ToPlugin>,
    from_plugin: mpsc::UnboundedReceiver<FromPlugin>,
    answer: Answer,
    task: JoinHandle<Result<(), SdkError>>,
    next_ping: u64,
}

impl FakeHost {
    async fn start(list: PluginsList) -> (Self, PluginHello) {
        let (host_side, plugin_side) = tokio::io::duplex(64 * 1024);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_side);
        let task = tokio::spawn(serve(Help, plugin_in, plugin_out));
        let (host_in, mut host_out) = tokio::io::split(host_side);

        let (to_plugin, mut outbox) = mpsc::unbounded_channel::<ToPlugin>();
        tokio::spawn(async move {
            while let Some(msg) = outbox.recv().await {
                let mut line = serde_json::to_string(&msg).unwrap();
                line.push('\n');
                if host_out.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });

        let answer: Answer = Arc::new(Mutex::new(Ok(list)));
        let (inbox, mut from_plugin) = mpsc::unbounded_channel::<FromPlugin>();
        let responses = to_plugin.clone();
        let answers = answer.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(host_in).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let msg: FromPlugin = serde_json::from_str(&line).unwrap();
                if let FromPlugin::Request(req) = &msg {
                    let outcome = match (req.method.as_str(), &*answers.lock().unwrap()) {
                        ("plugins.list", Ok(list)) => Outcome::Result(json!(list)),
                        ("plugins.list", Err(code)) => Outcome::Error(ErrorBody {
                            code: *code,
                            message: "the supervisor is busy".into(),
                        }),
                        _ => Outcome::Error(ErrorBody {
                            code: ErrorCode::UnknownMethod,
                            message: "unknown method".into(),
                        }),
                    };
                    let _ = responses.send(ToPlugin::Response(Response {
                        id: req.id,
                        outcome,
                    }));
                } else if inbox.send(msg).is_err() {
                    break;
                }
            }
        });

        let hello = match timeout(WAIT, from_plugin.recv()).await {
            Ok(Some(FromPlugin::Hello(hello))) => hello,
            other => panic!("expected the plugin's hello, got {other:?}"),
        };
        to_plugin
            .send(ToPlugin::Hello(HostHello {
                protocol_version: PROTOCOL_VERSION,
                name: hello.name.clone(),
                commands: vec!["help".into()],
                config: serde_json::Value::Null,
                bot: BotInfo {
                    nick: "hamper".into(),
                    command_prefix: "!".into(),
                    ..BotInfo::default()
                },
                ..HostHello::default()
            }))
            .unwrap();
        let host = FakeHost {
            to_plugin,
            from_plugin,
            answer,
            task,
            next_ping: 1,
        };
        (host, hello)
    }

    /// Sends `event`, then a ping, and returns everything the plugin sent before the pong.
    async fn exchange(&mut self, event: ToPlugin) -> Vec<FromPlugin> {
        self.to_plugin.send(event).unwrap();
        let id = PingId(self.next_ping);
        self.next_ping += 1;
        self.to_plugin.send(ToPlugin::Ping(Ping { id })).unwrap();
        let mut out = Vec::new();
        loop {
            match timeout(WAIT, self.from_plugin.recv()).await {
                Ok(Some(FromPlugin::Pong(p))) if p.id == id => return out,
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => panic!("the plugin closed its output"),
                Err(_) => panic!("no pong within {WAIT:?}; got so far {out:?}"),
            }
        }
    }

    async fn stop(self) {
        self.to_plugin
            .send(ToPlugin::Goodbye(Goodbye::default()))
            .unwrap();
        timeout(WAIT, self.task)
            .await
            .expect("the plugin stops after goodbye")
            .unwrap()
            .unwrap();
    }
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

fn replies_in(channel: Option<&str>, out: Vec<FromPlugin>) -> Vec<String> {
    out.into_iter()
        .map(|msg| match msg {
            FromPlugin::Reply(Reply {
                channel: c,
                nick,
                text,
            }) if c.as_deref() == channel && nick == "alice" => text,
            other => panic!("expected a reply to alice in {channel:?}, got {other:?}"),
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
    let (mut host, hello) = FakeHost::start(plugins()).await;
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
        replies_in(Some("#c"), host.exchange(help("!score", Some("#c"))).await),
        [
            "!karma [name|--top|--bottom] - Show someone's karma, or the top or bottom five",
            "!karma username - Show the user's karma count",
        ]
    );
    assert_eq!(
        replies_in(None, host.exchange(help("sed", None)).await),
        [
            "s/find/replace/ - Perform sed style find and replace.",
            "Use like \"s/foo/bar/\".",
        ]
    );
    assert_eq!(
        replies_in(Some("#c"), host.exchange(help("roll", Some("#c"))).await),
        ["Unknown command"]
    );

    // The catalog is asked for again at every request.
    let mut fewer = plugins();
    fewer.plugins.retain(|p| p.name != "sed");
    *host.answer.lock().unwrap() = Ok(fewer);
    assert_eq!(
        says_to_alice(host.exchange(help("", Some("#c"))).await).len(),
        3
    );
    host.stop().await;
}

#[tokio::test]
async fn a_failed_plugins_list_is_reported() {
    let (mut host, _) = FakeHost::start(plugins()).await;
    *host.answer.lock().unwrap() = Err(ErrorCode::Unavailable);
    assert_eq!(
        replies_in(Some("#c"), host.exchange(help("", Some("#c"))).await),
        ["Sorry, I can't get the list of commands right now."]
    );
    assert_eq!(
        replies_in(None, host.exchange(help("karma", None)).await),
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
    host.stop().await;
}
