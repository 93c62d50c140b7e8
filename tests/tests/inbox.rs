//! A plugin that stops reading never blocks anyone: deliveries to it are dropped and counted.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hamper::config::PluginSpec;
use hamper::plugin::{spawn_runner, FromRunner, RunnerSettings, State};
use hamper_protocol::{HostHello, Message, ToPlugin};
use hamper_tests::bin;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[tokio::test]
async fn deliveries_to_a_deaf_plugin_are_dropped_and_counted_without_blocking() {
    let mut spec = PluginSpec::named("deaf");
    spec.command = Some(vec![bin("hamper-misbehave").to_string_lossy().into_owned()]);
    spec.env.insert("MISBEHAVE".into(), "deaf".into());
    spec.limits.inbox = 64 * 1024;
    spec.limits.ping_interval = Duration::from_secs(3600);
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let handle = spawn_runner(RunnerSettings::new(0, spec), tx, shutdown.clone(), &tracker);

    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(FromRunner::Hello { reply, .. })) => {
            let _ = reply.send(HostHello {
                protocol_version: 1,
                ..HostHello::default()
            });
        }
        other => panic!("expected the plugin's hello, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.status().state != State::Running {
        assert!(Instant::now() < deadline, "plugin never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let message = Message {
        channel: Some("#c".into()),
        nick: "bob".into(),
        text: "x".repeat(400),
        message: "x".repeat(400),
        ..Message::default()
    };
    let line = hamper::plugin::encode(&ToPlugin::Message(message)).expect("encode");
    // A delivery that blocked would hang here; the timeout turns that into a clear failure.
    let accepted = tokio::time::timeout(Duration::from_secs(30), async {
        let mut accepted = 0u64;
        for _ in 0..2000 {
            if handle.deliver(&line) {
                accepted += 1;
            }
            tokio::task::yield_now().await;
        }
        accepted
    })
    .await
    .expect("deliveries to a plugin that does not read never block");
    let dropped = handle.counters().dropped.load(Ordering::Relaxed);
    assert!(dropped > 0, "some deliveries were dropped and counted");
    assert_eq!(
        accepted + dropped,
        2000,
        "every delivery was either queued or counted"
    );

    shutdown.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(20), tracker.wait())
        .await
        .expect("the deaf plugin was stopped");
}
