//! Drives the real karma plugin through the SDK's serve loop, against a tiny fake host that keeps
//! its key-value store in a map and can pretend that storage is down.

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hamper_karma::opinion::{Random, XorShift};
use hamper_karma::Karma;
use hamper_protocol::testing::{error, TestHost};
use hamper_protocol::{
    CommandEvent, ErrorCode, Message, Outcome, PluginHello, Request, ToPlugin, PROTOCOL_VERSION,
};
use serde_json::{json, Value};

#[derive(Default)]
struct Store {
    values: Mutex<BTreeMap<String, Value>>,
    requests: Mutex<Vec<Request>>,
    down: AtomicBool,
}

impl Store {
    fn answer(&self, req: &Request) -> Outcome {
        self.requests.lock().unwrap().push(req.clone());
        if self.down.load(Ordering::SeqCst) {
            return error(ErrorCode::Unavailable, "database is down");
        }
        let mut values = self.values.lock().unwrap();
        let key = req.params["key"].as_str().unwrap_or_default().to_string();
        match req.method.as_str() {
            "kv.incr" => {
                let by = req.params["by"].as_i64().unwrap_or(1);
                let Some(old) = values.get(&key).map_or(Some(0), Value::as_i64) else {
                    return error(ErrorCode::BadRequest, "not an integer");
                };
                values.insert(key, json!(old + by));
                Outcome::Result(json!({ "value": old + by }))
            }
            "kv.get" => match values.get(&key) {
                Some(value) => Outcome::Result(json!({ "value": value })),
                None => error(ErrorCode::NotFound, "no such key"),
            },
            "kv.list" => {
                let prefix = req.params["prefix"].as_str().unwrap_or_default();
                let mut items: Vec<(&String, &Value)> = values
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .collect();
                let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
                match req.params["order"].as_str() {
                    Some("value_desc") => {
                        items.sort_by(|a, b| number(b.1).total_cmp(&number(a.1)).then(a.0.cmp(b.0)))
                    }
                    Some("value_asc") => {
                        items.sort_by(|a, b| number(a.1).total_cmp(&number(b.1)).then(a.0.cmp(b.0)))
                    }
                    _ => {}
                }
                let offset = req.params["offset"].as_u64().unwrap_or(0) as usize;
                let limit = req.params["limit"].as_u64().unwrap_or(100) as usize;
                let items: Vec<Value> = items
                    .into_iter()
                    .skip(offset)
                    .take(limit)
                    .map(|(k, v)| json!({ "key": k, "value": v }))
                    .collect();
                Outcome::Result(json!({ "items": items }))
            }
            _ => error(ErrorCode::UnknownMethod, "unknown method"),
        }
    }
}

impl Store {
    fn score(&self, name: &str) -> Option<Value> {
        self.values
            .lock()
            .unwrap()
            .get(&format!("score/{name}"))
            .cloned()
    }

    fn set_scores(&self, scores: &[(&str, i64)]) {
        let mut values = self.values.lock().unwrap();
        for (name, score) in scores {
            values.insert(format!("score/{name}"), json!(score));
        }
    }
}

/// Starts `plugin` against a fake host whose storage is a fresh [`Store`], with `config`.
async fn start(plugin: Karma<Dice>, config: Value) -> (TestHost, Arc<Store>, PluginHello) {
    let store = Arc::new(Store::default());
    let served = store.clone();
    let (host, hello) = TestHost::start(plugin, config, move |req| served.answer(req)).await;
    (host, store, hello)
}

fn chat(nick: &str, text: &str) -> ToPlugin {
    ToPlugin::Message(Message {
        channel: Some("#c".into()),
        nick: nick.into(),
        text: text.into(),
        message: text.into(),
        ..Message::default()
    })
}

fn karma(args: &str) -> ToPlugin {
    let line = format!("karma {args}").trim().to_string();
    ToPlugin::Command(CommandEvent {
        command: "karma".into(),
        invoked_as: "karma".into(),
        args: args.into(),
        message: Message {
            channel: Some("#c".into()),
            nick: "alice".into(),
            text: format!("!{line}"),
            message: line,
            directed: true,
            ..Message::default()
        },
    })
}

/// The plugin's own dice, or dice that always roll 0 (every opinion is voiced and is the first
/// positive one).
enum Dice {
    Real(XorShift),
    AlwaysZero,
}

impl Random for Dice {
    fn unit(&mut self) -> f64 {
        match self {
            Dice::Real(rng) => rng.unit(),
            Dice::AlwaysZero => 0.0,
        }
    }
}

fn plain() -> Karma<Dice> {
    Karma::with_rng(Dice::Real(XorShift::from_entropy()))
}

fn always_zero() -> Karma<Dice> {
    Karma::with_rng(Dice::AlwaysZero)
}

#[tokio::test]
async fn gives_takes_and_shows_karma() {
    let (mut host, store, hello) = start(plain(), Value::Null).await;
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(hello.name, "karma");
    assert_eq!(hello.commands[0].aliases, ["score"]);

    assert_eq!(
        host.replies(karma("--top")).await,
        ["No one has any karma yet :-("]
    );
    assert_eq!(
        host.replies(karma("--bottom")).await,
        ["No one has any karma yet :-("]
    );

    assert!(host
        .replies(chat("alice", "foo++ bar++ baz--"))
        .await
        .is_empty());
    assert!(host
        .replies(chat("alice", "Foo++ and c++ is great"))
        .await
        .is_empty());
    assert!(host
        .replies(chat("alice", "i like (Foo Bar)++ a lot"))
        .await
        .is_empty());
    assert_eq!(store.score("foo"), Some(json!(2)));
    assert_eq!(store.score("bar"), Some(json!(1)));
    assert_eq!(store.score("baz"), Some(json!(-1)));
    assert_eq!(store.score("c"), Some(json!(1)));
    assert_eq!(store.score("foo bar"), Some(json!(1)));

    assert_eq!(host.replies(karma("foo")).await, ["foo has 2 points"]);
    assert_eq!(host.replies(karma("  FOO ")).await, ["foo has 2 points"]);
    assert_eq!(host.replies(karma("bar")).await, ["bar has 1 point"]);
    assert_eq!(host.replies(karma("baz")).await, ["baz has -1 point"]);
    assert_eq!(
        host.replies(karma("foo bar")).await,
        ["foo bar has 1 point"]
    );
    assert_eq!(host.replies(karma("nobody")).await, ["No karma for nobody"]);
    assert_eq!(host.replies(karma("")).await, ["No karma for alice"]);
    assert_eq!(
        host.replies(karma("--sideways")).await,
        ["Usage: !karma [name|--top|--bottom]"]
    );

    // `!score foo` arrives as the same command.
    let ToPlugin::Command(mut score) = karma("foo") else {
        unreachable!()
    };
    score.invoked_as = "score".into();
    assert_eq!(
        host.replies(ToPlugin::Command(score)).await,
        ["foo has 2 points"]
    );

    host.stop().await.unwrap();
}

#[tokio::test]
async fn self_karma_net_zero_and_directed_lines() {
    let (mut host, store, _) = start(plain(), Value::Null).await;

    // Self-karma is refused whatever the case; the other names on the line still count.
    assert_eq!(
        host.replies(chat("Alice", "alice++ bob++")).await,
        ["Nice try, no modifying your own karma"]
    );
    assert_eq!(
        host.replies(chat("alice", "ALICE--")).await,
        ["Nice try, no modifying your own karma"]
    );
    assert_eq!(store.score("alice"), None);
    assert_eq!(store.score("bob"), Some(json!(1)));

    // A net zero still touches the key.
    assert!(host
        .replies(chat("alice", "zero++ zero--"))
        .await
        .is_empty());
    assert_eq!(store.score("zero"), Some(json!(0)));
    assert_eq!(host.replies(karma("zero")).await, ["zero has 0 points"]);

    // Addressed to the bot or private: no karma. Addressed to someone else: karma.
    let mut directed = chat("alice", "!bob++");
    if let ToPlugin::Message(m) = &mut directed {
        m.message = "bob++".into();
        m.directed = true;
    }
    assert!(host.replies(directed).await.is_empty());
    let private = ToPlugin::Message(Message {
        channel: None,
        nick: "alice".into(),
        text: "bob++".into(),
        message: "bob++".into(),
        directed: true,
        private: true,
        ..Message::default()
    });
    assert!(host.exchange(private).await.is_empty());
    assert_eq!(store.score("bob"), Some(json!(1)));
    assert!(host.replies(chat("alice", "carol: bob++")).await.is_empty());
    assert_eq!(store.score("bob"), Some(json!(2)));

    let incrs: Vec<Value> = store
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "kv.incr")
        .map(|r| r.params.clone())
        .collect();
    assert_eq!(
        incrs,
        [
            json!({"key": "score/bob", "by": 1}),
            json!({"key": "score/zero", "by": 0}),
            json!({"key": "score/bob", "by": 1}),
        ]
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn top_and_bottom_five() {
    let (mut host, store, _) = start(plain(), Value::Null).await;
    store.set_scores(&[
        ("a", 10),
        ("b", -4),
        ("c", 7),
        ("d", 0),
        ("e", 3),
        ("f", -9),
        ("g", 1),
    ]);
    assert_eq!(
        host.replies(karma("--top")).await,
        ["a\x0f: 10", "c\x0f: 7", "e\x0f: 3", "g\x0f: 1", "d\x0f: 0"]
    );
    assert_eq!(
        host.replies(karma("--bottom")).await,
        ["f\x0f: -9", "b\x0f: -4", "d\x0f: 0", "g\x0f: 1", "e\x0f: 3"]
    );
    let list = store
        .requests
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.method == "kv.list")
        .map(|r| r.params.clone());
    assert_eq!(
        list,
        Some(json!({"prefix": "score/", "order": "value_desc", "limit": 5}))
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn storage_down_is_reported_not_swallowed() {
    let (mut host, store, _) = start(plain(), Value::Null).await;
    store.down.store(true, Ordering::SeqCst);
    assert_eq!(
        host.replies(chat("alice", "foo++ bar--")).await,
        ["Sorry, I can't reach my database right now. Karma for foo, bar was not counted."]
    );
    let down = ["Sorry, I can't reach my database right now."];
    assert_eq!(host.replies(karma("foo")).await, down);
    assert_eq!(host.replies(karma("--top")).await, down);
    assert_eq!(host.replies(karma("")).await, down);

    store.down.store(false, Ordering::SeqCst);
    assert!(host.replies(chat("alice", "foo++")).await.is_empty());
    assert_eq!(host.replies(karma("foo")).await, ["foo has 1 point"]);
    host.stop().await.unwrap();
}

#[tokio::test]
async fn overlong_names_are_refused_out_loud() {
    let (mut host, store, _) = start(plain(), Value::Null).await;
    let long = "x".repeat(300);
    assert_eq!(
        host.replies(chat("alice", &format!("{long}++ foo++")))
            .await,
        ["Sorry, that name is too long for me to keep karma for."]
    );
    assert_eq!(store.score("foo"), Some(json!(1)));
    assert_eq!(
        host.replies(karma(&long)).await,
        [format!("No karma for {long}")]
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn opinions_only_when_configured() {
    let (mut host, _, _) = start(always_zero(), Value::Null).await;
    assert!(host.replies(chat("alice", "foo++ bar--")).await.is_empty());
    host.stop().await.unwrap();

    let (mut host, _, _) = start(always_zero(), json!({"opinions": true})).await;
    assert_eq!(
        host.replies(chat("alice", "foo++ bar--")).await,
        ["Heck yeah, foo and bar!"]
    );
    assert!(host
        .replies(chat("alice", "no karma here"))
        .await
        .is_empty());
    assert_eq!(
        host.replies(chat("alice", "alice++")).await,
        ["Nice try, no modifying your own karma"]
    );
    assert_eq!(
        host.replies(chat("alice", "alice++ bob++")).await,
        ["Nice try, no modifying your own karma", "Heck yeah, bob!"]
    );
    host.stop().await.unwrap();

    // A config the plugin cannot read falls back to the defaults instead of failing start-up.
    let (mut host, store, _) = start(always_zero(), json!({"opinions": "yes"})).await;
    assert!(host.replies(chat("alice", "foo++")).await.is_empty());
    assert_eq!(store.score("foo"), Some(json!(1)));
    host.stop().await.unwrap();
}
