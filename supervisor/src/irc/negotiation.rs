//! Capability negotiation and SASL, while the server holds registration open.
//!
//! The bot opens every connection with `CAP LS 302` before `NICK` and `USER`, so a server that
//! knows IRCv3 waits for `CAP END` before it registers the bot. hamper asks only for what it
//! uses: `server-time` and `account-tag` (the time and account of a message, for plugins),
//! `message-tags` (which they ride on), `multi-prefix`, `cap-notify` (capabilities that come
//! and go later), and `sasl` when a SASL login is configured. The login (PLAIN or EXTERNAL)
//! finishes before `CAP END`, so the bot is logged in before it can join anything.
//!
//! A server that does not know CAP answers `421` or simply registers the bot (`001`); either
//! ends the negotiation and registration goes on as without it. A SASL login that cannot happen
//! or fails is a [`SaslError`]: the caller stops the bot unless `sasl_required: false`, in which
//! case the failure is logged here and the bot carries on without the login.
//!
//! This is a state machine over irc-proto [`Command`]s, with no I/O and no clock, so that every
//! flow is tested below as a table of lines.

use std::collections::BTreeSet;

use base64::Engine;
use tracing::{info, warn};

use super::message::{CapSubCommand, Command, Response};
use crate::config::{Sasl, SaslMechanism};

/// The capabilities hamper uses, requested whenever the server offers them (besides `sasl`,
/// requested only when a login is configured).
pub const WANTED: &[&str] = &[
    "server-time",
    "account-tag",
    "message-tags",
    "multi-prefix",
    "cap-notify",
];

/// The longest piece of an `AUTHENTICATE` payload on one line, in base64 bytes.
const CHUNK: usize = 400;

/// What the client sends once the server says `AUTHENTICATE +`.
fn payload(mechanism: &SaslMechanism) -> Vec<u8> {
    match mechanism {
        // authzid (empty: the same as authcid), authcid, password.
        SaslMechanism::Plain { username, password } => {
            format!("\0{username}\0{}", password.expose()).into_bytes()
        }
        // The identity is the certificate; an empty response asks for the account it names.
        SaslMechanism::External => Vec::new(),
    }
}

/// What to change when a login with `mechanism` fails.
fn fix(mechanism: &SaslMechanism) -> &'static str {
    match mechanism {
        SaslMechanism::Plain { .. } => "check sasl_username and sasl_password (the account name and its password with the network's services), or set sasl_required: false to connect without logging in",
        SaslMechanism::External => "check that the certificate in ssl_cert is registered with the account (on most networks: /msg NickServ CERT ADD while identified), or set sasl_required: false to connect without logging in",
    }
}

/// A SASL login that could not happen or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SASL {mechanism} login failed: {reason}; fix: {fix}")]
pub struct SaslError {
    /// `PLAIN` or `EXTERNAL`.
    pub mechanism: &'static str,
    /// What happened, with the server's words when it gave any.
    pub reason: String,
    /// What to change.
    pub fix: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `CAP LS 302` sent; gathering the (possibly multi-line) list.
    Listing,
    /// `CAP REQ` sent; waiting for ACK or NAK.
    Requested,
    /// `AUTHENTICATE <mechanism>` sent; waiting for `+`, then for the outcome.
    Authenticating,
    /// `CAP END` sent, or the server does not negotiate.
    Done,
}

/// One connection's capability negotiation.
#[derive(Debug)]
pub struct Negotiation {
    sasl: Option<Sasl>,
    phase: Phase,
    /// Capabilities offered so far, with their values (`sasl=PLAIN,EXTERNAL`).
    offered: Vec<(String, Option<String>)>,
    enabled: BTreeSet<String>,
    /// The mechanisms the server named in a `908`, for the error message.
    mechanisms: Option<String>,
    logged_in: bool,
}

impl Negotiation {
    /// A negotiation that logs in with `sasl`, if given.
    pub fn new(sasl: Option<Sasl>) -> Negotiation {
        Negotiation {
            sasl,
            phase: Phase::Listing,
            offered: Vec::new(),
            enabled: BTreeSet::new(),
            mechanisms: None,
            logged_in: false,
        }
    }

    /// The line that opens the negotiation, sent before `NICK` and `USER`.
    pub fn start() -> Command {
        Command::CAP(None, CapSubCommand::LS, Some("302".into()), None)
    }

    /// Whether the SASL login succeeded on this connection.
    pub fn logged_in(&self) -> bool {
        self.logged_in
    }

    /// Whether the server enabled `cap` on this connection.
    pub fn enabled(&self, cap: &str) -> bool {
        self.enabled.contains(cap)
    }

    /// Handles one server command; returns the commands to send now. An error is a SASL login
    /// that failed while `sasl_required` holds: the bot must stop.
    pub fn on_command(&mut self, command: &Command) -> Result<Vec<Command>, SaslError> {
        match command {
            Command::CAP(target, sub, a, b) => {
                let Some((sub, params)) = cap_parts(target.as_deref(), *sub, a, b) else {
                    return Ok(Vec::new());
                };
                self.on_cap(sub, &params)
            }
            Command::AUTHENTICATE(data) if self.phase == Phase::Authenticating && data == "+" => {
                let payload = self
                    .sasl
                    .as_ref()
                    .map(|s| payload(&s.mechanism))
                    .unwrap_or_default();
                Ok(authenticate_lines(&payload))
            }
            Command::Response(response, args) => self.on_numeric(*response, args),
            _ => Ok(Vec::new()),
        }
    }

    /// The server registered the bot (`001`). A negotiation still open means the server ignored
    /// CAP; a login that did not happen by now never will.
    pub fn on_registered(&mut self) -> Result<(), SaslError> {
        match self.phase {
            Phase::Done => Ok(()),
            Phase::Listing => self.without_cap().map(|_| ()),
            Phase::Requested | Phase::Authenticating => {
                self.phase = Phase::Done;
                warn!("the server registered the bot before capability negotiation ended");
                self.fail("the server registered the bot before the login ended".into())
            }
        }
    }

    fn without_cap(&mut self) -> Result<Vec<Command>, SaslError> {
        if self.phase == Phase::Done {
            return Ok(Vec::new());
        }
        self.phase = Phase::Done;
        info!("the server does not negotiate capabilities; registering without them");
        self.fail(
            "the server does not support capability negotiation (CAP), so it cannot do SASL".into(),
        )
        .map(|_| Vec::new())
    }

    fn on_cap(&mut self, sub: CapSubCommand, params: &[&str]) -> Result<Vec<Command>, SaslError> {
        match sub {
            CapSubCommand::LS if self.phase == Phase::Listing => {
                // `CAP * LS * :caps` says more lines follow; the last has no `*`.
                let (more, caps) = match params {
                    ["*", caps] => (true, *caps),
                    [caps, ..] => (false, *caps),
                    [] => (false, ""),
                };
                self.offered.extend(
                    caps.split_whitespace()
                        .map(|cap| match cap.split_once('=') {
                            Some((name, value)) => (name.to_string(), Some(value.to_string())),
                            None => (cap.to_string(), None),
                        }),
                );
                if more {
                    return Ok(Vec::new());
                }
                self.request_after_listing()
            }
            CapSubCommand::ACK => {
                let caps = params.last().copied().unwrap_or("");
                for cap in caps.split_whitespace() {
                    match cap.strip_prefix('-') {
                        Some(gone) => self.enabled.remove(gone),
                        None => self.enabled.insert(cap.to_string()),
                    };
                }
                if self.phase != Phase::Requested {
                    return Ok(Vec::new());
                }
                info!(caps = %caps.trim(), "capabilities enabled");
                match &self.sasl {
                    Some(sasl) if self.enabled("sasl") => {
                        self.phase = Phase::Authenticating;
                        Ok(vec![Command::AUTHENTICATE(sasl.mechanism.name().into())])
                    }
                    _ => Ok(self.end()),
                }
            }
            CapSubCommand::NAK => {
                let caps = params.last().copied().unwrap_or("");
                warn!(caps = %caps.trim(), "the server refused the capabilities requested");
                if self.phase != Phase::Requested {
                    return Ok(Vec::new());
                }
                let mut out = Vec::new();
                if caps.split_whitespace().any(|c| c == "sasl") {
                    self.fail(format!(
                        "the server refused the `sasl` capability (CAP NAK :{caps})"
                    ))?;
                }
                out.extend(self.end());
                Ok(out)
            }
            CapSubCommand::NEW => {
                let caps = params.last().copied().unwrap_or("");
                let wanted: Vec<&str> = caps
                    .split_whitespace()
                    .map(|c| c.split_once('=').map_or(c, |(name, _)| name))
                    .filter(|c| WANTED.contains(c) && !self.enabled(c))
                    .collect();
                if wanted.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![request(&wanted)])
            }
            CapSubCommand::DEL => {
                let caps = params.last().copied().unwrap_or("");
                for cap in caps.split_whitespace() {
                    self.enabled.remove(cap);
                }
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn request_after_listing(&mut self) -> Result<Vec<Command>, SaslError> {
        let mut wanted: Vec<&str> = WANTED
            .iter()
            .copied()
            .filter(|w| self.offered.iter().any(|(name, _)| name == w))
            .collect();
        if let Some(sasl) = &self.sasl {
            let mechanism = sasl.mechanism.name();
            match self.offered.iter().find(|(name, _)| name == "sasl") {
                None => {
                    self.fail("the server does not offer SASL (no `sasl` in its CAP LS)".into())?
                }
                // `sasl=PLAIN,EXTERNAL` names the mechanisms; a bare `sasl` leaves it to trying.
                Some((_, Some(list)))
                    if !list.is_empty()
                        && !list.split(',').any(|m| m.eq_ignore_ascii_case(mechanism)) =>
                {
                    let list = list.clone();
                    self.fail(format!(
                        "the server offers the SASL mechanisms {list}, not {mechanism}"
                    ))?
                }
                Some(_) => wanted.push("sasl"),
            }
        }
        if wanted.is_empty() {
            return Ok(self.end());
        }
        self.phase = Phase::Requested;
        Ok(vec![request(&wanted)])
    }

    fn on_numeric(
        &mut self,
        response: Response,
        args: &[String],
    ) -> Result<Vec<Command>, SaslError> {
        let text = |i: usize| args.get(i).map_or("", String::as_str);
        match response {
            // 421 (or 451) for CAP: a server from before IRCv3. It registers the bot after
            // NICK and USER.
            Response::ERR_UNKNOWNCOMMAND | Response::ERR_NOTREGISTERED
                if text(1).eq_ignore_ascii_case("CAP") =>
            {
                self.without_cap()
            }
            Response::RPL_LOGGEDIN => {
                info!(account = %text(2), "logged in to the network's services");
                Ok(Vec::new())
            }
            Response::RPL_SASLSUCCESS | Response::ERR_SASLALREADY
                if self.phase == Phase::Authenticating =>
            {
                self.logged_in = true;
                info!(mechanism = self.mechanism(), "SASL login succeeded");
                Ok(self.end())
            }
            Response::RPL_SASLMECHS => {
                self.mechanisms = Some(text(1).to_string());
                Ok(Vec::new())
            }
            Response::ERR_SASLFAIL
            | Response::ERR_SASLTOOLONG
            | Response::ERR_SASLABORT
            | Response::ERR_NICKLOCKED
                if self.phase == Phase::Authenticating =>
            {
                let mut reason = format!(
                    "the server answered {:03} {:?}",
                    response as u16,
                    args.last().map_or("", String::as_str)
                );
                if let Some(mechanisms) = &self.mechanisms {
                    reason.push_str(&format!(" (it offers the mechanisms {mechanisms})"));
                }
                self.fail(reason)?;
                Ok(self.end())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A login that cannot happen: an error when it is required, else a warning.
    fn fail(&mut self, reason: String) -> Result<(), SaslError> {
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        let err = SaslError {
            mechanism: sasl.mechanism.name(),
            reason,
            fix: fix(&sasl.mechanism),
        };
        if sasl.required {
            tracing::error!(error = %err, "SASL login failed; stopping (sasl_required is true)");
            Err(err)
        } else {
            warn!(error = %err, "SASL login failed; carrying on without it (sasl_required: false)");
            Ok(())
        }
    }

    fn mechanism(&self) -> &'static str {
        self.sasl.as_ref().map_or("", |s| s.mechanism.name())
    }

    fn end(&mut self) -> Vec<Command> {
        if self.phase == Phase::Done {
            return Vec::new();
        }
        self.phase = Phase::Done;
        vec![Command::CAP(None, CapSubCommand::END, None, None)]
    }
}

fn request(caps: &[&str]) -> Command {
    // irc-proto renders `CAP(None, REQ, None, Some(caps))` the same, but reads the line back
    // into this form, so only this one passes `render`'s round trip.
    Command::CAP(None, CapSubCommand::REQ, Some(caps.join(" ")), None)
}

/// The subcommand and the parameters after it of a `CAP` from the server.
///
/// irc-proto reads `CAP <target> <sub> …` by trying the first parameter as a subcommand name
/// first, so when the target (the bot's nick) is itself such a name (`ls`, `ack`, `new`, …) it
/// takes the target for the subcommand and shifts the rest. A server always sends a target, so a
/// `CAP` without one is read again one place further on.
fn cap_parts<'a>(
    target: Option<&'a str>,
    sub: CapSubCommand,
    a: &'a Option<String>,
    b: &'a Option<String>,
) -> Option<(CapSubCommand, Vec<&'a str>)> {
    match target {
        Some(_) => Some((
            sub,
            [a, b].into_iter().flatten().map(String::as_str).collect(),
        )),
        None => {
            let sub = a.as_deref()?.parse().ok()?;
            Some((sub, b.iter().map(String::as_str).collect()))
        }
    }
}

/// `payload` in base64, in `AUTHENTICATE` lines of at most 400 bytes; a payload that is empty
/// or fills its last line exactly is ended by `AUTHENTICATE +`.
fn authenticate_lines(payload: &[u8]) -> Vec<Command> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
    let mut out: Vec<Command> = encoded
        .as_bytes()
        .chunks(CHUNK)
        .map(|chunk| Command::AUTHENTICATE(chunk.iter().map(|&b| char::from(b)).collect()))
        .collect();
    if encoded.len() % CHUNK == 0 {
        out.push(Command::AUTHENTICATE("+".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::irc::message::{parse, render};

    fn plain(required: bool) -> Option<Sasl> {
        Some(Sasl {
            mechanism: SaslMechanism::Plain {
                username: "user".into(),
                password: Secret::new("pass"),
            },
            required,
        })
    }

    /// Feeds server `lines` one by one; returns every line the bot sent, or the error.
    fn run(n: &mut Negotiation, lines: &[&str]) -> Result<Vec<String>, SaslError> {
        let mut sent = Vec::new();
        for line in lines {
            let msg = parse(line).expect("a test line parses");
            for command in n.on_command(&msg.command)? {
                sent.push(render(&command).expect("renders"));
            }
        }
        Ok(sent)
    }

    #[test]
    fn the_opening_line() {
        assert_eq!(render(&Negotiation::start()).as_deref(), Ok("CAP LS 302"));
    }

    #[test]
    fn requests_only_what_it_uses_from_a_multiline_list_then_ends() {
        let mut n = Negotiation::new(None);
        let sent = run(
            &mut n,
            &[
                ":srv CAP * LS * :away-notify server-time sasl=PLAIN batch",
                ":srv CAP * LS :account-tag extended-join multi-prefix",
            ],
        )
        .expect("no sasl, no failure");
        assert_eq!(sent, ["CAP REQ :server-time account-tag multi-prefix"]);
        let sent = run(
            &mut n,
            &[":srv CAP * ACK :server-time account-tag multi-prefix"],
        )
        .expect("ack");
        assert_eq!(sent, ["CAP END"]);
        assert!(n.enabled("server-time") && n.enabled("account-tag"));
        assert!(!n.enabled("away-notify"));
        assert!(n.on_registered().is_ok());
    }

    #[test]
    fn nothing_wanted_ends_at_once() {
        let mut n = Negotiation::new(None);
        assert_eq!(
            run(&mut n, &[":srv CAP * LS :batch echo-message"]).expect("ok"),
            ["CAP END"]
        );
    }

    #[test]
    fn sasl_plain_logs_in_before_cap_end() {
        let mut n = Negotiation::new(plain(true));
        let sent = run(
            &mut n,
            &[
                ":srv CAP * LS :sasl=PLAIN,EXTERNAL server-time",
                ":srv CAP * ACK :server-time sasl",
                "AUTHENTICATE +",
            ],
        )
        .expect("ok");
        assert_eq!(
            sent,
            [
                "CAP REQ :server-time sasl",
                "AUTHENTICATE PLAIN",
                "AUTHENTICATE AHVzZXIAcGFzcw==",
            ]
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode("AHVzZXIAcGFzcw==")
            .expect("base64");
        assert_eq!(decoded, b"\0user\0pass");
        assert!(!n.logged_in());
        let sent = run(
            &mut n,
            &[
                ":srv 900 hb hb!u@h user :You are now logged in as user",
                ":srv 903 hb :SASL authentication successful",
            ],
        )
        .expect("ok");
        assert_eq!(sent, ["CAP END"]);
        assert!(n.logged_in());
    }

    #[test]
    fn sasl_external_sends_an_empty_response() {
        let mut n = Negotiation::new(Some(Sasl {
            mechanism: SaslMechanism::External,
            required: true,
        }));
        let sent = run(
            &mut n,
            &[
                ":srv CAP * LS :sasl",
                ":srv CAP * ACK :sasl",
                "AUTHENTICATE +",
                ":srv 903 hb :ok",
            ],
        )
        .expect("ok");
        assert_eq!(
            sent,
            [
                "CAP REQ sasl",
                "AUTHENTICATE EXTERNAL",
                "AUTHENTICATE +",
                "CAP END"
            ]
        );
    }

    #[test]
    fn a_refused_login_stops_the_bot_or_carries_on_when_not_required() {
        let lines = [
            ":srv CAP * LS :sasl",
            ":srv CAP * ACK :sasl",
            "AUTHENTICATE +",
            ":srv 908 hb PLAIN,EXTERNAL :are available SASL mechanisms",
            ":srv 904 hb :SASL authentication failed",
        ];
        let err = run(&mut Negotiation::new(plain(true)), &lines).expect_err("required");
        assert_eq!(err.mechanism, "PLAIN");
        assert!(err.reason.contains("904"), "{err}");
        assert!(err.reason.contains("SASL authentication failed"), "{err}");
        assert!(err.reason.contains("PLAIN,EXTERNAL"), "{err}");
        assert!(err.to_string().contains("sasl_required: false"), "{err}");

        let mut n = Negotiation::new(plain(false));
        let sent = run(&mut n, &lines).expect("not required");
        assert_eq!(sent.last().map(String::as_str), Some("CAP END"));
        assert!(!n.logged_in());
    }

    #[test]
    fn a_server_without_sasl_or_without_cap() {
        let err = run(
            &mut Negotiation::new(plain(true)),
            &[":srv CAP * LS :server-time"],
        )
        .expect_err("no sasl offered");
        assert!(err.reason.contains("does not offer SASL"), "{err}");

        let err = run(
            &mut Negotiation::new(plain(true)),
            &[":srv CAP * LS :sasl=EXTERNAL"],
        )
        .expect_err("no PLAIN offered");
        assert!(err.reason.contains("EXTERNAL, not PLAIN"), "{err}");

        // A server from before IRCv3 says 421, or registers the bot at once.
        let mut n = Negotiation::new(None);
        assert_eq!(
            run(&mut n, &[":srv 421 * CAP :Unknown command"]).expect("ok"),
            Vec::<String>::new()
        );
        assert!(n.on_registered().is_ok());
        let mut n = Negotiation::new(None);
        assert!(n.on_registered().is_ok());
        let mut n = Negotiation::new(plain(true));
        let err = n.on_registered().expect_err("no CAP, no SASL");
        assert!(err.reason.contains("(CAP)"), "{err}");
        let mut n = Negotiation::new(plain(false));
        assert!(n.on_registered().is_ok());
        // A server that lets the bot in halfway through the login.
        let mut n = Negotiation::new(plain(true));
        run(&mut n, &[":srv CAP * LS :sasl", ":srv CAP * ACK :sasl"]).expect("ok");
        let err = n.on_registered().expect_err("no login");
        assert!(err.reason.contains("before the login ended"), "{err}");
    }

    #[test]
    fn caps_come_and_go_after_registration() {
        let mut n = Negotiation::new(None);
        run(
            &mut n,
            &[":srv CAP * LS :cap-notify", ":srv CAP * ACK cap-notify"],
        )
        .expect("ok");
        let sent = run(&mut n, &[":srv CAP hb NEW :server-time sasl batch"]).expect("ok");
        assert_eq!(sent, ["CAP REQ server-time"]);
        assert_eq!(
            run(&mut n, &[":srv CAP hb ACK server-time"]).expect("ok"),
            Vec::<String>::new(),
            "no second CAP END"
        );
        assert!(n.enabled("server-time"));
        run(&mut n, &[":srv CAP hb DEL :server-time"]).expect("ok");
        assert!(!n.enabled("server-time"));
    }

    #[test]
    fn a_nick_named_like_a_subcommand_is_still_the_target() {
        let mut n = Negotiation::new(None);
        run(&mut n, &[":srv CAP * LS :server-time"]).expect("ok");
        assert_eq!(
            run(&mut n, &[":srv CAP ls ACK :server-time"]).expect("ok"),
            ["CAP END"]
        );
        assert!(n.enabled("server-time"));
    }

    #[test]
    fn payloads_are_split_into_400_byte_lines() {
        let lines = |len: usize| -> Vec<String> {
            authenticate_lines(&vec![b'x'; len])
                .iter()
                .map(|c| render(c).expect("renders"))
                .collect()
        };
        assert_eq!(lines(0), ["AUTHENTICATE +"]);
        // 300 bytes are 400 in base64: a full line, then `+`.
        let full = lines(300);
        assert_eq!(full.len(), 2);
        assert_eq!(full[0].len(), "AUTHENTICATE ".len() + 400);
        assert_eq!(full[1], "AUTHENTICATE +");
        let longer = lines(301);
        assert_eq!(longer.len(), 2);
        assert_eq!(longer[1], "AUTHENTICATE eA==");
        assert_eq!(lines(1), ["AUTHENTICATE eA=="]);
    }
}
