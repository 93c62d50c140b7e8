//! The scripted IRC server: the test plays the server, line by line, against a real
//! `hamper run`, for exact protocol flows that a real server cannot be made to produce on cue
//! (a taken nick, a refused login, a nick that comes free).

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::ircd::{accept_within, IrcClient};
use crate::{Sandbox, Session};

/// How long one step of a scripted flow may take.
const T: Duration = Duration::from_secs(20);

/// `hamper run` in `sb` against a server on 127.0.0.1:`port`, logging at trace level, with a
/// server password, a keyed channel and karma, and `env` on top.
pub fn bot_command(sb: &Sandbox, port: u16, env: &[(&str, &str)]) -> Command {
    let mut cmd = sb.hamper();
    cmd.arg("run")
        .env("RUST_LOG", "trace")
        .env("server", "127.0.0.1")
        .env("port", port.to_string())
        .env("password", "s3cr3t-pass")
        .env("channels", "[\"#keyed sesame-key\"]")
        .env("plugins", "[karma]")
        .envs(env.iter().copied());
    cmd
}

/// Starts [`bot_command`] against a scripted server on a free port and accepts its connection.
pub fn bot_and_peer(env: &[(&str, &str)]) -> (Sandbox, Session, IrcClient) {
    bot_and_peer_in(Sandbox::new(), env)
}

/// [`bot_and_peer`] in a sandbox prepared beforehand (a config file, an ACL file).
pub fn bot_and_peer_in(sb: Sandbox, env: &[(&str, &str)]) -> (Sandbox, Session, IrcClient) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bot = Session::start(bot_command(&sb, port, env));
    let stream = accept_within(&listener, T, "the bot's connection");
    (sb, bot, IrcClient::from_stream(stream))
}

/// The `plugins` value for karma and the misbehaving fixture as `bad` in `mode` (`extra` adds
/// to its entry).
pub fn misbehave_plugins(mode: &str, extra: &str) -> String {
    misbehave_plugins_with(&format!("MISBEHAVE: {mode}"), extra)
}

/// [`misbehave_plugins`] with `plugin_env` as the fixture's `env` mapping.
fn misbehave_plugins_with(plugin_env: &str, extra: &str) -> String {
    format!(
        "[karma, {{name: bad, command: [\"{}\"], env: {{{plugin_env}}}{extra}}}]",
        crate::bin("hamper-misbehave").display()
    )
}

/// The bot as `hb`, with no password, karma and the misbehaving fixture as `bad` in `mode`
/// (`extra` adds to its entry), `env` on top; registered and joined to `#keyed`.
pub fn registered_bot(
    mode: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> (Sandbox, Session, IrcClient) {
    registered_bot_in(Sandbox::new(), &format!("MISBEHAVE: {mode}"), extra, env)
}

/// [`registered_bot`] in a prepared sandbox, with `plugin_env` as the fixture's `env` mapping.
pub fn registered_bot_in(
    sb: Sandbox,
    plugin_env: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> (Sandbox, Session, IrcClient) {
    let plugins = misbehave_plugins_with(plugin_env, extra);
    let mut all = vec![
        ("nickname", "hb"),
        ("password", ""),
        ("plugins", plugins.as_str()),
        ("RUST_LOG", "info"),
    ];
    all.extend_from_slice(env);
    let (sb, bot, mut peer) = bot_and_peer_in(sb, &all);
    peer.expect(T, "USER", |l| l.starts_with("USER "));
    peer.send_bytes(b":srv 001 hb :Welcome");
    peer.expect(T, "the join", |l| l.starts_with("JOIN #keyed"));
    (sb, bot, peer)
}
