//! The login keys: SASL (`sasl_username`, `sasl_password`, `sasl_mechanism`, `sasl_required`)
//! and the TLS client certificate (`ssl_cert`, `ssl_key`) that SASL EXTERNAL logs in with.
//!
//! They only make sense together, so they are read together: PLAIN needs a name and a password,
//! EXTERNAL needs a certificate and its key over TLS, and a mistake names the key to set.

use std::path::PathBuf;

use serde_json::Value;

use super::error::KeyError;
use super::model::{Sasl, SaslMechanism, Secret};
use super::value::{boolean, path, scalar_string, show};

/// The login keys, read.
pub(super) struct Login {
    pub(super) sasl: Option<Sasl>,
    pub(super) ssl_cert: Option<PathBuf>,
    pub(super) ssl_key: Option<PathBuf>,
}

/// Reads the login keys through `get`; problems go to `errors`, likely mistakes to `warnings`.
pub(super) fn parse_login<'a>(
    get: impl Fn(&str) -> Option<&'a Value>,
    ssl: bool,
    errors: &mut Vec<KeyError>,
    warnings: &mut Vec<String>,
) -> Login {
    let ssl_cert = path(
        get("ssl_cert"),
        "ssl_cert",
        "set ssl_cert to the path of the PEM file holding the client certificate, e.g. ssl_cert: /etc/hamper/bot.crt",
        errors,
    );
    let ssl_key = path(
        get("ssl_key"),
        "ssl_key",
        "set ssl_key to the path of the PEM file holding the certificate's private key, e.g. ssl_key: /etc/hamper/bot.key",
        errors,
    );
    match (&ssl_cert, &ssl_key) {
        (Some(_), None) => errors.push(KeyError::new(
            "ssl_key",
            "is not set, but ssl_cert is: a client certificate needs its private key",
            "set ssl_key to the PEM file holding the certificate's private key",
        )),
        (None, Some(_)) => errors.push(KeyError::new(
            "ssl_cert",
            "is not set, but ssl_key is: a private key needs its certificate",
            "set ssl_cert to the PEM file holding the client certificate",
        )),
        _ => {}
    }
    if ssl_cert.is_some() && !ssl {
        warnings.push("`ssl_cert` is set but `ssl` is not, so the client certificate is never presented; set ssl: true".to_string());
    }

    let username = match get("sasl_username") {
        None => None,
        Some(v) => match scalar_string(v).filter(|u| !u.is_empty() && !u.contains('\0')) {
            Some(u) => Some(u),
            None => {
                errors.push(KeyError::new(
                    "sasl_username",
                    &format!("`{}` is not an account name", show(v)),
                    "set the account name you log in with, e.g. sasl_username: hamper",
                ));
                None
            }
        },
    };
    let password = match get("sasl_password") {
        None => None,
        // The value is never shown, not even in an error.
        Some(v) => match scalar_string(v).filter(|p| !p.is_empty() && !p.contains('\0')) {
            Some(p) => Some(Secret(p)),
            None => {
                errors.push(KeyError::new(
                    "sasl_password",
                    "is not a password (an empty value, a list or a mapping)",
                    "quote it: sasl_password: \"…\", or better sasl_password: $IRC_SASL_PASSWORD",
                ));
                None
            }
        },
    };
    let required = boolean(
        get("sasl_required"),
        "sasl_required",
        true,
        "leave it out (true: a failed login stops the bot) or set sasl_required: false to carry on without the login",
        errors,
    );
    let named = match get("sasl_mechanism") {
        None => None,
        Some(v) => match scalar_string(v).map(|m| m.to_ascii_uppercase()).as_deref() {
            Some("PLAIN") => Some(false),
            Some("EXTERNAL") => Some(true),
            _ => {
                errors.push(KeyError::new(
                    "sasl_mechanism",
                    &format!("`{}` is not a SASL mechanism hamper knows", show(v)),
                    "set sasl_mechanism: PLAIN (with sasl_username and sasl_password) or sasl_mechanism: EXTERNAL (with ssl_cert and ssl_key), or leave it out for PLAIN",
                ));
                return Login {
                    sasl: None,
                    ssl_cert,
                    ssl_key,
                };
            }
        },
    };
    let external = named.unwrap_or(false);
    let mechanism = if external {
        if ssl_cert.is_none() {
            errors.push(KeyError::new(
                "ssl_cert",
                "is not set, but sasl_mechanism is EXTERNAL, which logs in with a client certificate",
                "set ssl_cert and ssl_key to the PEM files of the certificate registered with your account, or use sasl_mechanism: PLAIN with sasl_username and sasl_password",
            ));
        }
        if !ssl {
            errors.push(KeyError::new(
                "ssl",
                "is false, but sasl_mechanism is EXTERNAL, which needs the certificate presented over TLS",
                "set ssl: true (and the TLS port, usually 6697)",
            ));
        }
        if username.is_some() || password.is_some() {
            warnings.push("`sasl_username` and `sasl_password` are not used with sasl_mechanism: EXTERNAL (the certificate names the account)".to_string());
        }
        Some(SaslMechanism::External)
    } else {
        match (username, password) {
            (Some(username), Some(password)) => Some(SaslMechanism::Plain { username, password }),
            (None, None) if named.is_none() => None,
            (username, _) => {
                let missing = if username.is_none() {
                    "sasl_username"
                } else {
                    "sasl_password"
                };
                errors.push(KeyError::new(
                    missing,
                    "is not set, but SASL PLAIN needs both sasl_username and sasl_password",
                    &format!("set {missing} too (the account name and its password with the network's services), or remove the other sasl_ keys to connect without SASL"),
                ));
                None
            }
        }
    };
    Login {
        sasl: mechanism.map(|mechanism| Sasl {
            mechanism,
            required,
        }),
        ssl_cert,
        ssl_key,
    }
}
