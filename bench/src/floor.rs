//! The floor: what one process does for the same requests, with nothing between the socket
//! and the work.
//!
//! `hamper-bench floor --port P --db PATH` connects to the scripted server like the bot,
//! registers and joins, then answers `!karma NAME` by reading a SQLite row (through sqlx, the
//! driver the bot uses) and `s/find/replace/` from an in-memory history, with the bot's reply
//! texts. It is the lower bound the bot's figures are compared with: the same client, the same
//! kind of server, the same database read, one process and no protocol in between.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::Context as _;
use futures::StreamExt as _;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, SqliteConnection};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, LinesCodec};

use crate::line::{self, MAX_LINE};

/// How many lines of a channel the floor remembers, like the sed plugin.
const HISTORY: usize = 100;

/// Serves until the server closes the connection.
pub async fn serve(port: u16, db: &Path, nick: &str, channel: &str) -> anyhow::Result<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .connect()
        .await
        .with_context(|| format!("failed to open {}", db.display()))?;
    sqlx::query("CREATE TABLE IF NOT EXISTS karma (name TEXT PRIMARY KEY, score INTEGER NOT NULL)")
        .execute(&mut conn)
        .await?;
    sqlx::query("INSERT OR IGNORE INTO karma (name, score) VALUES ('foo', 1)")
        .execute(&mut conn)
        .await?;

    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("failed to connect to 127.0.0.1:{port}"))?;
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LINE));
    let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :hamper-bench floor\r\n");
    writer.write_all(hello.as_bytes()).await?;

    let mut history = VecDeque::with_capacity(HISTORY);
    let mut out = String::new();
    while let Some(line) = lines.next().await {
        let line = line.context("failed to read from the server")?;
        out.clear();
        if let Some(token) = line::ping_token(&line) {
            out.push_str("PONG :");
            out.push_str(token);
        } else if line::verb(&line) == "001" {
            out.push_str("JOIN ");
            out.push_str(channel);
        } else if let Some(msg) = line::privmsg(&line) {
            if let Some(reply) = respond(&mut conn, &mut history, &msg).await? {
                out.push_str("PRIVMSG ");
                out.push_str(msg.target);
                out.push_str(" :");
                out.push_str(&reply);
            }
        }
        if !out.is_empty() {
            out.push_str("\r\n");
            writer.write_all(out.as_bytes()).await?;
        }
    }
    Ok(())
}

/// The answer to one message, if any; the message is then remembered unless it is a command.
async fn respond(
    db: &mut SqliteConnection,
    history: &mut VecDeque<(String, String)>,
    msg: &line::Privmsg<'_>,
) -> anyhow::Result<Option<String>> {
    let nick = msg.nick.unwrap_or_default();
    if let Some(name) = msg.text.strip_prefix("!karma ") {
        let name = name.trim().to_lowercase();
        let score: Option<i64> = sqlx::query_scalar("SELECT score FROM karma WHERE name = ?")
            .bind(&name)
            .fetch_optional(db)
            .await?;
        return Ok(Some(match score {
            Some(n @ (1 | -1)) => format!("{name} has {n} point"),
            Some(n) => format!("{name} has {n} points"),
            None => format!("No karma for {name}"),
        }));
    }
    if let Some(expr) = msg.text.strip_prefix("s/") {
        return Ok(Some(correct(history, expr)));
    }
    if history.len() == HISTORY {
        history.pop_back();
    }
    history.push_front((nick.to_string(), msg.text.to_string()));
    Ok(None)
}

/// The sed plugin's answer to `s/EXPR` (given without its `s/`): the newest line the pattern
/// matches, corrected, as `NICK actually meant: TEXT`.
fn correct(history: &VecDeque<(String, String)>, expr: &str) -> String {
    let mut parts = expr.splitn(3, '/');
    let find = parts.next().unwrap_or_default();
    let replace = parts.next().unwrap_or_default();
    let Ok(pattern) = regex::Regex::new(find) else {
        return "Do you even lift?".into();
    };
    match history.iter().find(|(_, text)| pattern.is_match(text)) {
        Some((who, text)) => format!("{who} actually meant: {}", pattern.replace(text, replace)),
        None => format!("Sorry, I couldn't match '{find}'."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections() {
        let history: VecDeque<(String, String)> = [
            ("bob", "hello wrold again"),
            ("alice", "hello wrold"),
            ("alice", "unrelated"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
        let table = [
            ("wrold/world/", "bob actually meant: hello world again"),
            ("unrel/rel/", "alice actually meant: related"),
            ("nothing/x/", "Sorry, I couldn't match 'nothing'."),
            ("(/x/", "Do you even lift?"),
        ];
        for (expr, want) in table {
            assert_eq!(correct(&history, expr), want, "s/{expr}");
        }
    }
}
