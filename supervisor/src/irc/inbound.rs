//! What the bot does with each line from the server: typed irc-proto [`Command`]s become
//! [`Inbound`] events for the router, and the replies the connection owes itself (PONG, CTCP,
//! capability negotiation and SASL, NickServ, winning the nick back, rejoining after a kick).
//!
//! Kept apart from [`super::connection`], which owns the socket, the timers and the send queue;
//! this is the protocol knowledge, one match over the commands hamper understands.

use tokio::time::Instant;
use tracing::{info, warn};

use super::connection::{Halt, IrcError, Session, NICKSERV_WAIT, REJOIN_DELAY};
use super::message::{build, render, source_parts, Command, Message, Response};
use super::outbound::Me;
use super::send_queue::MAX_LANE;
use super::tags;
use crate::chat::{Inbound, Origin, Outbound, Source};
use hamper_protocol::names::has_channel_prefix;
use hamper_protocol::CaseMapping;

impl Session<'_> {
    /// Handles one server line; an error ends the connection (or, for a fatal one, the bot).
    pub(super) async fn on_line(&mut self, msg: Message) -> Result<(), Halt> {
        let source = source_of(&msg);
        let time = tags::server_time(&msg);
        let sasl = self.negotiation.on_command(&msg.command);
        let sasl = sasl.map_err(|source| {
            Halt::Fatal(IrcError::Sasl {
                server: self.settings.server.clone(),
                source,
            })
        })?;
        for command in sasl {
            self.send_now(&command);
        }
        if self.announce && !is_welcome_burst(&msg.command) {
            self.announce = false;
            self.emit(Inbound::Connected {
                nick: self.me.nick.clone(),
                server: self.settings.server.clone(),
                casemapping: self.casemapping,
            })
            .await;
            // Only now: the `005` lines say whether the server offers MONITOR.
            for command in self
                .regain
                .start(&self.me.nick, self.casemapping, Instant::now())
            {
                self.send_paced(&command);
            }
            if self.regain.active() {
                info!(nick = %self.me.nick, wanted = %self.regain.wanted(), "registered under another nick; watching for the configured one to come free");
            }
        }
        match msg.command {
            Command::PING(token, _) => self.send_now(&Command::PONG(token, None)),
            Command::Response(response, args) => self.on_numeric(response, args)?,
            Command::ERROR(reason) => return Err(Halt::Lost(format!("server error: {reason}"))),
            Command::CHGHOST(user, host) if self.is_me(&source.nick) => {
                self.me.user = Some(user);
                self.me.host = Some(host);
            }
            Command::NOTICE(_, text)
                if self.nickserv_until.is_some()
                    && source.nick.eq_ignore_ascii_case("NickServ") =>
            {
                if text.contains("Password accepted") || text.contains("You are now identified") {
                    info!("identified with NickServ");
                    self.join_channels();
                } else if text.contains("Password incorrect") || text.contains("Invalid password") {
                    tracing::error!("NickServ refused the password; check `password` in the config (joining anyway)");
                    self.join_channels();
                }
            }
            Command::PRIVMSG(target, text) if !source.nick.is_empty() => {
                self.on_privmsg(source, target, text, time).await;
            }
            Command::JOIN(channel, _, _) => {
                if self.is_me(&source.nick) {
                    self.joined = true;
                    // Our own JOIN shows our prefix as others see it: the real budget for a line.
                    if source.user.is_some() && source.host.is_some() {
                        self.me.user = source.user.clone();
                        self.me.host = source.host.clone();
                    }
                }
                self.emit(Inbound::Join { source, channel }).await
            }
            Command::PART(channel, reason) => {
                self.emit(Inbound::Part {
                    source,
                    channel,
                    reason,
                })
                .await
            }
            Command::QUIT(reason) => self.emit(Inbound::Quit { source, reason }).await,
            Command::KICK(channel, nick, reason) => {
                if self.settings.live.borrow().rejoin_on_kick && self.is_me(&nick) {
                    warn!(%channel, by = %source.nick, "kicked; joining again in {}s", REJOIN_DELAY.as_secs());
                    self.rejoins
                        .push((Instant::now() + REJOIN_DELAY, channel.clone()));
                }
                self.emit(Inbound::Kick {
                    source,
                    channel,
                    nick,
                    reason,
                })
                .await
            }
            Command::NICK(new) => {
                if self.is_me(&source.nick) {
                    self.me.nick = new.clone();
                    self.on_own_nick();
                }
                self.emit(Inbound::Nick { source, new }).await
            }
            Command::TOPIC(channel, Some(topic)) => {
                self.emit(Inbound::Topic {
                    source,
                    channel,
                    topic,
                })
                .await
            }
            Command::INVITE(_, channel) => {
                let owner = self
                    .settings
                    .live
                    .borrow()
                    .access
                    .owners
                    .iter()
                    .any(|o| o.matches(&source, self.casemapping));
                if owner && has_channel_prefix(&channel) {
                    info!(%channel, by = %source.nick, "invited by an owner; joining");
                    self.enqueue(
                        &Origin::Bot,
                        Outbound::Join {
                            channel: channel.clone(),
                            key: None,
                        },
                    );
                } else {
                    info!(%channel, by = %source.nick, "invited; not an owner, so not joining");
                }
                self.emit(Inbound::Invite { source, channel }).await
            }
            _ => {}
        }
        Ok(())
    }

    fn on_numeric(&mut self, response: Response, args: Vec<String>) -> Result<(), Halt> {
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        match response {
            Response::RPL_WELCOME => {
                self.registered = true;
                if !arg(0).is_empty() {
                    self.me = Me::new(arg(0));
                }
                info!(nick = %self.me.nick, "registered");
                self.announce = true;
                if let Err(source) = self.negotiation.on_registered() {
                    return Err(Halt::Fatal(IrcError::Sasl {
                        server: self.settings.server.clone(),
                        source,
                    }));
                }
                if self.identify() {
                    self.nickserv_until = Some(Instant::now() + NICKSERV_WAIT);
                } else {
                    self.join_channels();
                }
            }
            Response::ERR_ERRONEOUSNICKNAME
            | Response::ERR_NICKNAMEINUSE
            | Response::ERR_NICKCOLLISION
            | Response::ERR_UNAVAILRESOURCE
                if !self.registered =>
            {
                if response == Response::ERR_ERRONEOUSNICKNAME
                    && self.casemapping.same(arg(1), self.regain.wanted())
                {
                    warn!(nick = %arg(1), "the server does not accept the configured nick at all; not trying to win it back");
                    let _ = self.regain.refuse();
                }
                self.nick_tries += 1;
                if self.nick_tries > 8 {
                    return Err(Halt::Lost(
                        "no usable nick: every alternative was refused".into(),
                    ));
                }
                self.me = Me::new(&alternative_nick(&self.settings.nickname, self.nick_tries));
                warn!(nick = %self.me.nick, "nick refused; trying another");
                self.send_now(&Command::NICK(self.me.nick.clone()));
            }
            Response::ERR_ERRONEOUSNICKNAME if self.regain.active() => {
                warn!(nick = %arg(1), "the server does not accept the configured nick at all; not trying to win it back");
                for command in self.regain.refuse() {
                    self.send_paced(&command);
                }
            }
            Response::RPL_ISUPPORT => self.on_isupport(&args),
            // RPL_VISIBLEHOST: the host others see, once the server changes it (a cloak).
            Response::RPL_HOSTHIDDEN if args.len() >= 2 => self.me.host = Some(arg(1).to_string()),
            Response::RPL_ISON => {
                if let Some(nick) = self.regain.on_ison(arg(1)) {
                    info!(nick = %self.regain.wanted(), "the configured nick is free (ISON); taking it");
                    self.send_paced(&nick);
                }
            }
            Response::ERR_MONLISTFULL => {
                warn!("the server's MONITOR list is full; asking with ISON instead");
                self.regain.monitor_full(Instant::now());
            }
            Response::RPL_MONOFFLINE => {
                if let Some(nick) = self.regain.on_offline(arg(1)) {
                    info!(nick = %self.regain.wanted(), "the configured nick is free (MONITOR); taking it");
                    self.send_paced(&nick);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_isupport(&mut self, args: &[String]) {
        // `005 <nick> TOKEN TOKEN=value … :are supported by this server`.
        let tokens = args.iter().skip(1).take(args.len().saturating_sub(2));
        for token in tokens {
            let (name, value) = token.split_once('=').unwrap_or((token, ""));
            match name {
                "CASEMAPPING" => match CaseMapping::from_isupport(value) {
                    Some(mapping) => self.casemapping = mapping,
                    None => {
                        warn!(casemapping = %value, "the server compares names in a way hamper does not know; using rfc1459")
                    }
                },
                "MONITOR" => self.regain.offer_monitor(),
                _ => {}
            }
        }
    }

    /// The bot's own nick changed (the server's `NICK` echo).
    fn on_own_nick(&mut self) {
        let regaining = self.regain.active();
        for command in self
            .regain
            .start(&self.me.nick, self.casemapping, Instant::now())
        {
            self.send_paced(&command);
        }
        if regaining && !self.regain.active() {
            info!(nick = %self.me.nick, "won the configured nick back");
            self.identify();
        } else if !regaining && self.regain.active() {
            info!(nick = %self.me.nick, wanted = %self.regain.wanted(), "lost the configured nick; watching for it to come free");
        }
    }

    /// Identifies with NickServ, as the original did, when there is a `password` and no SASL
    /// login. Returns whether it did.
    fn identify(&mut self) -> bool {
        let Some(pass) = &self.settings.password else {
            return false;
        };
        if self.negotiation.logged_in() {
            return false;
        }
        let line = build(
            "PRIVMSG",
            &["NickServ", &format!("IDENTIFY {}", pass.expose())],
        );
        if let Ok(line) = line {
            self.queue.push(&Origin::Bot, line);
        }
        true
    }

    async fn on_privmsg(
        &mut self,
        source: Source,
        target: String,
        text: String,
        time: Option<u64>,
    ) {
        let Some(ctcp) = text.strip_prefix('\u{1}') else {
            return self
                .emit(Inbound::Privmsg {
                    source,
                    target,
                    text,
                    action: false,
                    time,
                })
                .await;
        };
        let ctcp = ctcp.strip_suffix('\u{1}').unwrap_or(ctcp);
        let (kind, body) = ctcp.split_once(' ').unwrap_or((ctcp, ""));
        match kind.to_ascii_uppercase().as_str() {
            "ACTION" => {
                self.emit(Inbound::Privmsg {
                    source,
                    target,
                    text: body.to_string(),
                    action: true,
                    time,
                })
                .await
            }
            "VERSION" => self.ctcp_reply(
                &source.nick,
                &format!("VERSION hamper {}", env!("CARGO_PKG_VERSION")),
            ),
            "PING" => self.ctcp_reply(&source.nick, &format!("PING {body}")),
            "TIME" => self.ctcp_reply(&source.nick, &format!("TIME {}", utc_now())),
            "CLIENTINFO" => self.ctcp_reply(
                &source.nick,
                "CLIENTINFO ACTION CLIENTINFO PING SOURCE TIME VERSION",
            ),
            "SOURCE" => self.ctcp_reply(
                &source.nick,
                &format!("SOURCE {}", env!("CARGO_PKG_REPOSITORY")),
            ),
            _ => {}
        }
    }

    pub(super) fn is_me(&self, nick: &str) -> bool {
        self.casemapping.same(nick, &self.me.nick)
    }

    pub(super) fn join_channels(&mut self) {
        self.nickserv_until = None;
        for ch in self.settings.channels() {
            let key = ch.key.as_ref().map(|k| k.expose().to_string());
            self.enqueue(
                &Origin::Bot,
                Outbound::Join {
                    channel: ch.name.clone(),
                    key,
                },
            );
        }
    }

    /// Sends `command` ahead of the queue and its pacing (registration, PONG, SASL).
    fn send_now(&mut self, command: &Command) {
        match render(command) {
            Ok(line) => self.urgent.push(line),
            Err(err) => warn!(error = %err, "refused to send a malformed line"),
        }
    }

    /// Queues `command` behind the bot's other lines, paced.
    pub(super) fn send_paced(&mut self, command: &Command) {
        match render(command) {
            Ok(line) => {
                self.queue.push(&Origin::Bot, line);
            }
            Err(err) => warn!(error = %err, "refused to send a malformed line"),
        }
    }

    /// Answers a CTCP request with a NOTICE to its sender (never to a channel), at most a few
    /// every few seconds, so that a CTCP flood cannot get the bot killed for flooding.
    fn ctcp_reply(&mut self, nick: &str, body: &str) {
        let body: String = body.chars().filter(|c| !c.is_control()).collect();
        // CTCP replies wait behind real output and are the first thing a full queue drops.
        if self.queue.waiting_from(&Origin::Bot) >= MAX_LANE / 2
            || !self.ctcp_budget.take(Instant::now())
        {
            return;
        }
        if let Ok(line) = build("NOTICE", &[nick, &format!("\u{1}{body}\u{1}")]) {
            self.queue.push(&Origin::Bot, line);
        }
    }
}

/// The lines a server sends right after `001`, before the bot tells plugins it is connected.
fn is_welcome_burst(command: &Command) -> bool {
    matches!(
        command,
        Command::Response(
            Response::RPL_YOURHOST
                | Response::RPL_CREATED
                | Response::RPL_MYINFO
                | Response::RPL_ISUPPORT,
            _
        )
    )
}

/// The sender of `msg`, with the account its `account` tag names.
fn source_of(msg: &Message) -> Source {
    let Some(prefix) = &msg.prefix else {
        return Source::default();
    };
    let (nick, user, host) = source_parts(prefix);
    Source {
        nick: nick.to_string(),
        user: user.map(str::to_string),
        host: host.map(str::to_string),
        account: tags::account(msg),
    }
}

/// The `tries`-th nick to try when the configured one is refused: `nick_`, `nick__`, then the
/// first seven characters and two digits, which fits the common nine-character limit.
fn alternative_nick(nick: &str, tries: u32) -> String {
    if tries <= 2 {
        let base: String = nick.chars().take(28).collect();
        format!("{base}{}", "_".repeat(tries as usize))
    } else {
        let base: String = nick.chars().take(7).collect();
        format!("{base}{:02}", (tries * 37) % 100)
    }
}

/// The time now in UTC, as `Sun, 29 Nov 2026 14:04:11 +0000`, for CTCP TIME.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {h:02}:{m:02}:{s:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctcp_time_is_rfc_2822_in_utc() {
        assert_eq!(format_utc(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(format_utc(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(format_utc(1_795_961_051), "Sun, 29 Nov 2026 14:04:11 +0000");
    }

    #[test]
    fn alternative_nicks_are_valid_distinct_and_fit_nine_characters_soon() {
        let nicks: Vec<String> = (1..=8).map(|t| alternative_nick("hamperbot", t)).collect();
        assert_eq!(nicks[0], "hamperbot_");
        assert_eq!(nicks[1], "hamperbot__");
        for n in &nicks {
            assert!(hamper_protocol::names::valid_nick(n), "{n}");
        }
        assert!(nicks[2..].iter().all(|n| n.len() <= 9), "{nicks:?}");
        let mut unique = nicks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), nicks.len(), "{nicks:?}");
    }

    #[test]
    fn the_sender_carries_its_account() {
        let msg =
            crate::irc::message::parse("@account=alice :al!u@h PRIVMSG #c :hi").expect("parses");
        let source = source_of(&msg);
        assert_eq!(source.nick, "al");
        assert_eq!(source.user.as_deref(), Some("u"));
        assert_eq!(source.account.as_deref(), Some("alice"));
        let server = crate::irc::message::parse(":irc.example.org NOTICE * :hi").expect("parses");
        assert_eq!(source_of(&server).nick, "irc.example.org");
    }
}
