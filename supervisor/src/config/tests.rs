//! Loading whole configurations: file, environment and validation together.

use std::collections::HashMap;
use std::time::Duration;

use hamper_protocol::CaseMapping;
use serde_json::{json, Value};

use super::*;
use hamper_protocol::names::valid_nick;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_str(yaml: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hamper.conf");
    std::fs::write(&path, yaml).expect("write");
    Config::load(Some(&path), &env(pairs))
}

#[test]
fn defaults_run_the_three_plugins_on_sqlite() {
    let c = Config::defaults();
    let names: Vec<_> = c.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["karma", "help", "sed"]);
    assert_eq!(c.db.expose(), DEFAULT_DB);
    assert_eq!(
        (c.nickname.as_str(), c.port, c.ssl, c.ssl_verify),
        ("hamper", 6667, false, true)
    );
    assert_eq!(c.command_prefix, "!");
    assert!(c.check_runnable().is_err(), "run needs a server");
}

#[test]
fn environment_alone_as_in_the_heroku_guide() {
    let c = load_str(
        "",
        &[
            ("nickname", "my_hamper"),
            ("plugins", "[karma,help,sed]"),
            ("server", "irc.example.org"),
            ("port", "6697"),
            ("ssl", "true"),
            ("channels", "[\"#hamper-testing\", \"#secret sesame\"]"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ],
    )
    .expect("valid");
    assert_eq!(c.nickname, "my_hamper");
    assert_eq!(c.server.as_deref(), Some("irc.example.org"));
    assert_eq!((c.port, c.ssl), (6697, true));
    assert_eq!(c.channels[0].name, "#hamper-testing");
    assert_eq!(
        c.channels[1].key.as_ref().map(Secret::expose),
        Some("sesame")
    );
    assert_eq!(c.plugins.len(), 3);
    assert!(!c.sections.contains_key("PATH"));
    c.check_runnable().expect("runnable");
}

#[test]
fn environment_overrides_the_file_and_database_url_wins() {
    let c = load_str(
        "nickname: filebot\nport: 7000\ndb: sqlite:file.db\nsed:\n  only-directed: false\n",
        &[
            ("nickname", "envbot"),
            ("DATABASE_URL", "postgres://u:pw@db.example/x"),
            ("sed", "{only-directed: true}"),
        ],
    )
    .expect("valid");
    assert_eq!(c.nickname, "envbot");
    assert_eq!(c.port, 7000);
    assert_eq!(c.db.expose(), "postgres://u:pw@db.example/x");
    assert_eq!(c.section("sed"), json!({"only-directed": true}));
    assert_eq!(c.section("karma"), Value::Null);
}

#[test]
fn flood_is_off_a_bucket_or_an_error_naming_the_fix() {
    assert_eq!(Config::defaults().flood, Flood::default());
    for off in ["flood: off\n", "flood: false\n", "flood: \"off\"\n"] {
        assert_eq!(load_str(off, &[]).expect(off).flood, Flood::Off, "{off}");
    }
    assert_eq!(
        load_str("", &[("flood", "off")]).expect("env").flood,
        Flood::Off
    );
    let c = load_str("flood: {burst: 10, per_second: 0.5}\n", &[]).expect("bucket");
    assert_eq!(
        c.flood,
        Flood::Bucket {
            burst: 10,
            per_second: 0.5
        }
    );
    let c = load_str("", &[("flood", "{burst: 3}")]).expect("env bucket");
    assert_eq!(
        c.flood,
        Flood::Bucket {
            burst: 3,
            per_second: Flood::DEFAULT_PER_SECOND
        }
    );
    for bad in [
        "flood: fast\n",
        "flood: {burst: 0}\n",
        "flood: {burst: 2.5}\n",
        "flood: {per_second: -1}\n",
        "flood: {rate: 3}\n",
    ] {
        let err = load_str(bad, &[]).expect_err(bad);
        assert_eq!(err.errors[0].key, "flood", "{bad}");
        assert!(err.errors[0].fix.contains("flood: off"), "{bad}");
    }
}

#[test]
fn inbox_is_a_size_in_bytes_and_an_old_count_is_refused_with_the_fix() {
    let limits = |yaml: &str| load_str(yaml, &[]).map(|c| c.plugins[0].limits.inbox);
    assert_eq!(limits("plugins: [karma]\n"), Ok(DEFAULT_INBOX));
    for (value, bytes) in [
        ("8MiB", 8 << 20),
        ("512KiB", 512 << 10),
        ("64k", 64 << 10),
        ("1048576", 1 << 20),
        ("2 MB", 2 << 20),
    ] {
        let yaml = format!("plugins: [{{name: karma, inbox: {value}}}]\n");
        assert_eq!(limits(&yaml), Ok(bytes), "{value}");
    }
    let err = limits("plugins: [{name: karma, inbox: 256}]\n").expect_err("a count");
    assert_eq!(err.errors[0].key, "plugins[0].inbox");
    assert!(
        err.errors[0].problem.contains("not a count"),
        "{}",
        err.errors[0]
    );
    assert!(err.errors[0].fix.contains("8MiB"), "{}", err.errors[0]);
    let err = limits("plugins: [{name: karma, inbox: lots}]\n").expect_err("words");
    assert!(err.errors[0].fix.contains("512KiB"), "{}", err.errors[0]);
}

#[test]
fn secrets_are_masked_by_value_under_any_key() {
    let c = load_str(
            "password: hunter2secret\nweather:\n  api: $WEATHER_KEY\n  note: \"hunter2secret\"\nchannels: [\"#c sesame-key\"]\ngreeter:\n  message: the key is sesame-key\n",
            &[("WEATHER_KEY", "w-abc123xyz")],
        )
        .expect("valid");
    let shown = c.masked().to_string();
    for secret in ["w-abc123xyz", "hunter2secret", "sesame-key"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(shown.contains("the key is ********"), "{shown}");
    assert_eq!(
        c.section("weather")["api"],
        "w-abc123xyz",
        "the value itself is intact"
    );
}

#[test]
fn dollar_values_come_from_the_environment() {
    let c = load_str(
        "password: $IRC_PASS\nkarma:\n  token: $TOK\n",
        &[("IRC_PASS", "hunter2"), ("TOK", "t")],
    )
    .expect("valid");
    assert_eq!(c.password.as_ref().map(Secret::expose), Some("hunter2"));
    assert_eq!(c.section("karma"), json!({"token": "t"}));
    let err = load_str("password: $MISSING\n", &[]).expect_err("missing var");
    assert_eq!(err.errors[0].key, "password");
    assert!(err.errors[0].problem.contains("MISSING"));
}

#[test]
fn every_bad_key_is_named_with_a_fix() {
    let err = load_str(
            "port: lots\nssl: maybe\nchannels: [\"hamper\"]\nnickname: 9lives\nplugins: [karma, {command: [x]}, karma]\ncommand_prefix: \"\"\n",
            &[],
        )
        .expect_err("invalid");
    let keys: Vec<_> = err.errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "port",
        "ssl",
        "channels[0]",
        "nickname",
        "plugins[1].name",
        "plugins[2]",
        "command_prefix",
    ] {
        assert!(keys.contains(&key), "{key} not reported in {keys:?}");
    }
    assert!(err.errors.iter().all(|e| !e.fix.is_empty()));
}

#[test]
fn a_bare_hash_channel_from_the_environment_explains_the_comment() {
    let err = load_str("", &[("channels", "#hamper")]).expect_err("comment");
    assert_eq!(err.errors[0].key, "channels");
    assert!(
        err.errors[0].fix.contains("[\"#hamper\"]"),
        "{}",
        err.errors[0].fix
    );
}

#[test]
fn external_plugins_with_args_env_grants_and_limits() {
    let c = load_str(
            "plugins:\n  - karma\n  - name: weather\n    command: [python3, plugins/weather.py]\n    args: [--metric]\n    env: {API_TOKEN: abc, UNITS: metric}\n    grants: [join, part]\n    ping_interval: 0.5\n    max_restarts: 2\nweather:\n  city: Oslo\n  api_key: s3cret\n",
            &[],
        )
        .expect("valid");
    let w = &c.plugins[1];
    assert_eq!(
        w.command.as_deref(),
        Some(&["python3".to_string(), "plugins/weather.py".to_string()][..])
    );
    assert_eq!(w.args, ["--metric"]);
    assert!(w.has(Grant::Join) && w.has(Grant::Part) && !w.has(Grant::Raw));
    assert_eq!(w.limits.ping_interval, Duration::from_millis(500));
    assert_eq!(w.limits.max_restarts, 2);
    assert_eq!(c.section("weather")["city"], "Oslo");
    let shown = serde_json::to_string(&c.masked()).expect("json");
    assert!(
        !shown.contains("s3cret") && !shown.contains("abc"),
        "{shown}"
    );
    assert!(shown.contains("metric"));
}

#[test]
fn secrets_never_show() {
    let c = load_str(
            "password: hunter2\nchannels: [\"#c key123\"]\ndb: postgres://bob:pw123@h:5432/d?sslmode=require&password=qq\n",
            &[],
        )
        .expect("valid");
    let shown = serde_json::to_string(&c.masked()).expect("json");
    for secret in ["hunter2", "key123", "pw123", "qq"] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert!(shown.contains("postgres://bob:********@h:5432/d?sslmode=require"));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn an_empty_or_non_mapping_file() {
    assert!(load_str("", &[]).is_ok());
    assert!(load_str("# only a comment\n", &[]).is_ok());
    let err = load_str("- a\n- b\n", &[]).expect_err("list");
    assert!(err.errors[0].problem.contains("mapping"));
    let err = load_str("nickname: [unclosed\n", &[]).expect_err("yaml");
    assert!(err.errors[0].problem.contains("not valid YAML"));
}

#[test]
fn misspelt_keys_are_warned_about_and_other_sections_kept() {
    let c = load_str("nicknme: bot\nweather:\n  city: Oslo\n", &[]).expect("valid");
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("did you mean `nickname`")),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.section("weather")["city"], "Oslo");
    let err = load_str("", &[("channels", "#a,#b")]).expect_err("comment");
    assert!(
        err.errors[0].fix.contains(r##"channels='["#a", "#b"]'"##),
        "{}",
        err.errors[0].fix
    );
}

#[test]
fn nick_validity() {
    for ok in ["hamper", "h4mper", "[bot]", "_x", "a-b"] {
        assert!(valid_nick(ok), "{ok}");
    }
    for bad in ["", "9x", "a b", "a:b", "a\r\nQUIT"] {
        assert!(!valid_nick(bad), "{bad:?}");
    }
}

#[test]
fn failed_retry_is_seconds_or_off() {
    let entry = |value: &str| {
        format!("plugins:\n  - name: w\n    command: [x]\n    failed_retry: {value}\n")
    };
    let retry =
        |value: &str| load_str(&entry(value), &[]).map(|c| c.plugins[0].limits.failed_retry);
    let cases = [
        ("60", Some(Duration::from_secs(60))),
        ("0.5", Some(Duration::from_millis(500))),
        ("\"90\"", Some(Duration::from_secs(90))),
        ("off", None),
        ("false", None),
        ("0", None),
    ];
    for (value, want) in cases {
        assert_eq!(retry(value).expect(value), want, "{value}");
    }
    let default = load_str("plugins: [karma]\n", &[]).expect("valid");
    assert_eq!(
        default.plugins[0].limits.failed_retry,
        Some(crate::config::DEFAULT_FAILED_RETRY)
    );
    for bad in ["-1", "never", "100000", "[1]"] {
        let err = retry(bad).expect_err(bad);
        assert_eq!(err.errors[0].key, "plugins[0].failed_retry", "{bad}");
        assert!(err.errors[0].fix.contains("off"), "{bad}");
    }
}

#[test]
fn ssl_ca_is_a_path_from_the_file_or_the_environment() {
    let c = load_str("ssl: true\nssl_ca: /etc/hamper/ca.pem\n", &[]).expect("valid");
    assert_eq!(
        c.ssl_ca.as_deref(),
        Some(std::path::Path::new("/etc/hamper/ca.pem"))
    );
    let c = load_str("", &[("ssl_ca", "certs/ca.pem")]).expect("valid");
    assert_eq!(
        c.ssl_ca.as_deref(),
        Some(std::path::Path::new("certs/ca.pem"))
    );
    assert_eq!(c.masked()["ssl_ca"], json!("certs/ca.pem"));
    assert_eq!(Config::defaults().ssl_ca, None);
    let err = load_str("ssl_ca: [a, b]\n", &[]).expect_err("a list is no path");
    assert_eq!(err.errors[0].key, "ssl_ca");
    assert!(err.errors[0].fix.contains("PEM file"), "{}", err.errors[0]);
}

#[test]
fn sasl_plain_from_the_environment_is_masked() {
    let c = load_str(
        "",
        &[
            ("sasl_username", "hamperbot"),
            ("sasl_password", "sasl pass phrase"),
        ],
    )
    .expect("valid");
    let sasl = c.sasl.clone().expect("a login");
    assert!(sasl.required, "required unless said otherwise");
    match &sasl.mechanism {
        SaslMechanism::Plain { username, password } => {
            assert_eq!(username, "hamperbot");
            assert_eq!(password.expose(), "sasl pass phrase");
        }
        other => panic!("{other:?}"),
    }
    let shown = serde_json::to_string(&c.masked()).expect("json");
    assert!(!shown.contains("sasl pass phrase"), "{shown}");
    assert_eq!(c.masked()["sasl_password"], json!("********"));
    assert_eq!(c.masked()["sasl_username"], json!("hamperbot"));
    assert_eq!(c.masked()["sasl_mechanism"], json!("PLAIN"));
    assert!(!format!("{c:?}").contains("sasl pass phrase"));
    let redacted = c.redactor().redact("said sasl pass phrase").into_owned();
    assert!(!redacted.contains("sasl pass phrase"), "{redacted}");

    let c = load_str(
        "sasl_username: a\nsasl_password: b\nsasl_required: false\n",
        &[],
    )
    .expect("valid");
    assert!(!c.sasl.expect("a login").required);
    assert_eq!(Config::defaults().sasl, None);
}

#[test]
fn sasl_mistakes_name_the_key_and_the_fix() {
    let key_of = |yaml: &str| -> Vec<String> {
        load_str(yaml, &[])
            .expect_err("refused")
            .errors
            .iter()
            .map(|e| e.key.clone())
            .collect()
    };
    assert_eq!(key_of("sasl_username: a\n"), ["sasl_password"]);
    assert_eq!(key_of("sasl_password: b\n"), ["sasl_username"]);
    assert_eq!(key_of("sasl_mechanism: PLAIN\n"), ["sasl_username"]);
    assert_eq!(
        key_of("ssl: true\nsasl_mechanism: EXTERNAL\n"),
        ["ssl_cert"]
    );
    assert_eq!(
        key_of("sasl_mechanism: EXTERNAL\nssl_cert: c.pem\nssl_key: k.pem\n"),
        ["ssl"]
    );
    assert_eq!(key_of("ssl: true\nssl_cert: c.pem\n"), ["ssl_key"]);
    assert_eq!(key_of("ssl: true\nssl_key: k.pem\n"), ["ssl_cert"]);
    assert_eq!(key_of("sasl_required: maybe\n"), ["sasl_required"]);
    let err = load_str("sasl_mechanism: SCRAM-SHA-256\n", &[]).expect_err("unknown");
    assert_eq!(err.errors[0].key, "sasl_mechanism");
    assert!(
        err.errors[0].problem.contains("SCRAM-SHA-256"),
        "{}",
        err.errors[0]
    );
    assert!(
        err.errors[0].fix.contains("PLAIN") && err.errors[0].fix.contains("EXTERNAL"),
        "{}",
        err.errors[0]
    );
    let err = load_str("sasl_username: a\nsasl_password: [x]\n", &[]).expect_err("a list");
    assert_eq!(err.errors[0].key, "sasl_password");

    let c = load_str(
        "ssl: true\nsasl_mechanism: external\nssl_cert: c.pem\nssl_key: k.pem\n",
        &[],
    )
    .expect("valid");
    assert_eq!(c.sasl.expect("a login").mechanism, SaslMechanism::External);
    assert_eq!(c.ssl_cert.as_deref(), Some(std::path::Path::new("c.pem")));
    let c = load_str("ssl_cert: c.pem\nssl_key: k.pem\n", &[]).expect("valid");
    assert!(
        c.warnings.iter().any(|w| w.contains("ssl: true")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn owners_are_hostmasks_accounts_or_explicit_nicks() {
    let c = load_str(
        "owners: [\"alice!*@alice.example\", \"$a:bob\", \"nick:carol\"]\n",
        &[],
    )
    .expect("valid, and `$a:bob` is no variable");
    let shown: Vec<String> = c.access.owners.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["alice!*@alice.example", "$a:bob", "nick:carol"]);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with("owners[2]: `nick:carol` matches whoever takes the nick carol"),
        "{:?}",
        c.warnings
    );
    let env = load_str("", &[("owners", "[\"$a:bob\"]")]).expect("from the environment");
    assert_eq!(env.access.owners[0].to_string(), "$a:bob");

    let err = load_str("owners: [alice, \"alice@host\", 3]\n", &[]).expect_err("bad owners");
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["owners[0]", "owners[1]", "owners[2]"]);
    assert!(
        err.errors[0].fix.contains("`$a:alice`"),
        "{}",
        err.errors[0]
    );
    let err = load_str("owners: \"alice!*@h\"\n", &[]).expect_err("not a list");
    assert_eq!(err.errors[0].key, "owners");
}

#[test]
fn acl_inline_in_the_file_or_from_the_environment() {
    let c = load_str(
        "acl:\n  groups:\n    \"@ops\": [\"$a:alice\"]\n  permissions:\n    \"@ops\": [\"*\"]\n    \"#hamper\": [\"karma.*\", \"-karma.reset\"]\n",
        &[],
    )
    .expect("valid");
    let acl = c.access.acl.as_ref().expect("an ACL");
    let alice = crate::chat::Source {
        account: Some("alice".into()),
        ..crate::chat::Source::nick("a")
    };
    assert!(acl.allows(&alice, None, "admin.restart", CaseMapping::Rfc1459));
    assert!(acl.allows(
        &crate::chat::Source::nick("x"),
        Some("#hamper"),
        "karma.add",
        CaseMapping::Rfc1459
    ));
    assert!(!acl.allows(
        &crate::chat::Source::nick("x"),
        Some("#hamper"),
        "karma.reset",
        CaseMapping::Rfc1459
    ));
    assert_eq!(
        c.masked()["acl"]["permissions"]["#hamper"],
        json!(["karma.*", "-karma.reset"])
    );

    let env = load_str("", &[("acl", "{permissions: {\"#c\": [\"*\"]}}")]).expect("env");
    assert!(env.access.acl.is_some());
    assert!(
        Config::defaults().access.acl.is_none(),
        "no ACL unless configured"
    );
}

#[test]
fn acl_file_in_the_original_format_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).expect("mkdir");
    std::fs::write(
        etc.join("acl.json"),
        r##"{"permissions": {"#channel": ["*"], "#channel2": ["*", "-factoid"]}}"##,
    )
    .expect("write acl");
    std::fs::write(etc.join("hamper.conf"), "acl: acl.json\n").expect("write conf");
    let c = Config::load(Some(&etc.join("hamper.conf")), &env(&[])).expect("valid");
    assert_eq!(c.acl_file.as_deref(), Some(etc.join("acl.json").as_path()));
    assert_eq!(c.masked()["acl"], json!(etc.join("acl.json")));
    let acl = c.access.acl.expect("loaded");
    let anyone = crate::chat::Source::nick("anyone");
    assert!(acl.allows(&anyone, Some("#channel2"), "quote", CaseMapping::Rfc1459));
    assert!(!acl.allows(&anyone, Some("#channel2"), "factoid", CaseMapping::Rfc1459));

    std::fs::write(etc.join("hamper.conf"), "acl: missing.json\n").expect("write conf");
    let err = Config::load(Some(&etc.join("hamper.conf")), &env(&[])).expect_err("missing");
    assert_eq!(err.errors[0].key, "acl");
    assert!(
        err.errors[0].problem.contains("missing.json"),
        "{}",
        err.errors[0]
    );

    std::fs::write(etc.join("acl.json"), "{\"groups\": ").expect("write acl");
    std::fs::write(etc.join("hamper.conf"), "acl: acl.json\n").expect("write conf");
    let err = Config::load(Some(&etc.join("hamper.conf")), &env(&[])).expect_err("not json");
    assert!(
        err.errors[0].problem.contains("is not valid JSON"),
        "{}",
        err.errors[0]
    );

    std::fs::write(
        etc.join("acl.json"),
        r##"{"groups": {"@ops": ["*"]}, "permissions": {"a@b@c": ["x"], "@ops": ["quote*"]}}"##,
    )
    .expect("write acl");
    let err = Config::load(Some(&etc.join("hamper.conf")), &env(&[])).expect_err("bad entries");
    let prefix = format!("acl ({})", etc.join("acl.json").display());
    let keys: Vec<String> = err.errors.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        [
            format!("{prefix}.groups.@ops[0]"),
            format!("{prefix}.permissions.@ops[0]"),
            format!("{prefix}.permissions.a@b@c"),
        ]
    );
}

#[test]
fn acl_that_is_neither_a_mapping_nor_a_path_is_refused() {
    for bad in ["acl: [a, b]\n", "acl: 3\n", "acl: \"\"\n"] {
        let err = load_str(bad, &[]).expect_err(bad);
        assert_eq!(err.errors[0].key, "acl", "{bad}");
    }
}
