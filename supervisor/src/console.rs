//! The console frontend: the whole bot against the terminal instead of IRC.
//!
//! Each input line is a message from the current nick in the console's channel; `/me`, `/msg`
//! and `/nick` play actions, private messages and other users. After each line the console waits
//! until every plugin has handled it, so output appears in conversation order and a script piped
//! in gets the same transcript every time. At end of input it exits once all is quiet.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::chat::{Inbound, Outbound, Outgoing, Source};
use crate::queue::{ByteSender, Refused};
use crate::router::RouterCtl;
use hamper_protocol::names::valid_nick;

/// How long to wait for plugins to go quiet after a line before moving on.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is speaking where.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The nick input lines come from.
    pub nick: String,
    /// The channel input lines go to.
    pub channel: String,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            nick: "you".into(),
            channel: "#hamper".into(),
        }
    }
}

/// What one input line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Say(String),
    Me(String),
    Msg(String),
    Nick(String),
    /// Print the text once everything before it is answered: a marker for scripts and tests.
    Echo(String),
    Nothing,
    Problem(String),
}

fn parse_input(line: &str) -> Input {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Input::Nothing;
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Input::Say(format!("/{rest}"));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Input::Say(line.to_string());
    };
    let (word, rest) = command.split_once(' ').unwrap_or((command, ""));
    match word {
        "me" if !rest.trim().is_empty() => Input::Me(rest.to_string()),
        "msg" if !rest.trim().is_empty() => Input::Msg(rest.to_string()),
        "nick" if valid_nick(rest.trim()) => Input::Nick(rest.trim().to_string()),
        "echo" => Input::Echo(rest.to_string()),
        "nick" => Input::Problem(format!("`{}` is not a valid nick", rest.trim())),
        "me" | "msg" => Input::Problem(format!("/{word} needs some text")),
        _ => Input::Problem(format!(
            "unknown console command /{word}; use /me TEXT, /msg TEXT, /nick NAME, /echo TEXT, or // to start a line with /"
        )),
    }
}

/// Drives the bot from `input` until it ends, printing output to `output`.
pub async fn run<R, W>(
    options: ConsoleOptions,
    bot_nick: String,
    input: R,
    output: W,
    net_in: ByteSender<Inbound>,
    net_out: mpsc::Receiver<Outgoing>,
    router: mpsc::Sender<RouterCtl>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (echo, echoes) = mpsc::unbounded_channel();
    let printer = tokio::spawn(print_output(
        net_out,
        echoes,
        output,
        bot_nick.clone(),
        options.channel.clone(),
        net_in.clone(),
    ));
    let bot = Source::nick(&bot_nick);
    let _ = send(
        &net_in,
        Inbound::Connected {
            nick: bot_nick.clone(),
            server: "console".into(),
            casemapping: Default::default(),
        },
    )
    .await;
    let _ = send(
        &net_in,
        Inbound::Join {
            source: bot,
            channel: options.channel.clone(),
        },
    )
    .await;

    let mut nick = options.nick.clone();
    let mut input = input;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw).await? == 0 {
            break;
        }
        // Whatever the terminal or script sends, a line that is not UTF-8 is still a line.
        let line = String::from_utf8_lossy(&raw);
        let (target, text, action) = match parse_input(&line) {
            Input::Nothing => continue,
            Input::Problem(p) => {
                eprintln!("console: {p}");
                continue;
            }
            Input::Nick(n) => {
                nick = n;
                continue;
            }
            Input::Echo(text) => {
                // Every line before has been answered and printed (each line is synced).
                let _ = echo.send(text);
                continue;
            }
            Input::Say(t) => (options.channel.clone(), t, false),
            Input::Me(t) => (options.channel.clone(), t, true),
            Input::Msg(t) => (bot_nick.clone(), t, false),
        };
        let sent = send(
            &net_in,
            Inbound::Privmsg {
                source: Source {
                    nick: nick.clone(),
                    user: Some(nick.clone()),
                    host: Some("console".into()),
                    account: None,
                },
                target,
                text,
                action,
                time: None,
            },
        )
        .await;
        if sent.is_err() {
            break;
        }
        sync(&router).await;
    }
    // Also covers what plugins said about the start (the bot's join), when no line was typed.
    sync(&router).await;
    drop(net_in);
    printer.abort();
    let _ = printer.await;
    Ok(())
}

/// Hands a typed line to the router, waiting while its queue is full: unlike the network, the
/// console can pause its input, and a line typed is never dropped.
async fn send(net_in: &ByteSender<Inbound>, event: Inbound) -> Result<(), Refused> {
    let mut event = event;
    loop {
        match net_in.try_send(event) {
            Ok(()) => return Ok(()),
            Err((_, Refused::Closed)) => return Err(Refused::Closed),
            Err((back, Refused::Full)) => {
                event = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Waits until every plugin has handled everything and its output is printed.
async fn sync(router: &mpsc::Sender<RouterCtl>) {
    let (tx, rx) = oneshot::channel();
    if router.send(RouterCtl::Sync(tx)).await.is_err() {
        return;
    }
    if tokio::time::timeout(SYNC_TIMEOUT, rx).await.is_err() {
        tracing::warn!(
            "plugins did not go quiet within {}s; carrying on",
            SYNC_TIMEOUT.as_secs()
        );
    }
}

/// Formats one outbound command as the console shows it, or `None` for markers.
fn format_line(out: &Outbound, bot: &str, channel: &str) -> Option<String> {
    let here = |target: &str, body: String| {
        if target.eq_ignore_ascii_case(channel) {
            body
        } else {
            format!("[{target}] {body}")
        }
    };
    Some(match out {
        Outbound::Privmsg { target, text } => here(target, format!("<{bot}> {text}")),
        Outbound::Action { target, text } => here(target, format!("* {bot} {text}")),
        Outbound::Notice { target, text } => here(target, format!("-{bot}- {text}")),
        Outbound::Join { channel, .. } => format!("*** {bot} joins {channel}"),
        Outbound::Part { channel, reason } => match reason {
            Some(r) => format!("*** {bot} leaves {channel} ({r})"),
            None => format!("*** {bot} leaves {channel}"),
        },
        Outbound::Raw(line) => format!("[raw] {line}"),
        Outbound::Flush(_) => return None,
    })
}

async fn print_output<W: AsyncWrite + Unpin>(
    mut net_out: mpsc::Receiver<Outgoing>,
    mut echoes: mpsc::UnboundedReceiver<String>,
    mut output: W,
    bot: String,
    channel: String,
    net_in: ByteSender<Inbound>,
) {
    loop {
        let out = tokio::select! {
            biased;
            out = net_out.recv() => match out {
                Some(out) => out.command,
                None => return,
            },
            Some(text) = echoes.recv() => {
                if output.write_all(format!("{text}\n").as_bytes()).await.is_err() {
                    return;
                }
                let _ = output.flush().await;
                continue;
            }
        };
        if let Some(line) = format_line(&out, &bot, &channel) {
            if output
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let _ = output.flush().await;
        }
        match out {
            Outbound::Flush(done) => {
                let _ = done.send(());
            }
            Outbound::Join { channel, .. } => {
                let _ = net_in.try_send(Inbound::Join {
                    source: Source::nick(&bot),
                    channel,
                });
            }
            Outbound::Part { channel, reason } => {
                let _ = net_in.try_send(Inbound::Part {
                    source: Source::nick(&bot),
                    channel,
                    reason,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_table() {
        let cases = [
            ("hello", Input::Say("hello".into())),
            ("/me waves", Input::Me("waves".into())),
            ("/msg karma bob", Input::Msg("karma bob".into())),
            ("/nick alice", Input::Nick("alice".into())),
            ("//slash", Input::Say("/slash".into())),
            ("", Input::Nothing),
            ("   ", Input::Nothing),
            ("s/a/b/", Input::Say("s/a/b/".into())),
            ("/echo -- mark --", Input::Echo("-- mark --".into())),
        ];
        for (line, want) in cases {
            assert_eq!(parse_input(line), want, "{line:?}");
        }
        for bad in ["/nick 9x", "/me", "/join #x"] {
            assert!(matches!(parse_input(bad), Input::Problem(_)), "{bad}");
        }
    }

    #[test]
    fn output_formats() {
        let f = |out: Outbound| format_line(&out, "hamper", "#hamper");
        let pm = |target: &str| Outbound::Privmsg {
            target: target.into(),
            text: "hi".into(),
        };
        assert_eq!(f(pm("#hamper")).as_deref(), Some("<hamper> hi"));
        assert_eq!(f(pm("#HAMPER")).as_deref(), Some("<hamper> hi"));
        assert_eq!(f(pm("you")).as_deref(), Some("[you] <hamper> hi"));
        assert_eq!(
            f(Outbound::Action {
                target: "#hamper".into(),
                text: "waves".into()
            })
            .as_deref(),
            Some("* hamper waves")
        );
        assert_eq!(
            f(Outbound::Notice {
                target: "#other".into(),
                text: "n".into()
            })
            .as_deref(),
            Some("[#other] -hamper- n")
        );
    }
}
