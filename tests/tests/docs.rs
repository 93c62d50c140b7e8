//! The documentation in `docs/` is tested like code, so that it cannot drift from hamper:
//!
//! - every JSON example in `docs/protocol.md` is a real wire message (it parses as the protocol
//!   types, and has no field those types would ignore), and the reference covers every message
//!   type, request method, error code and subscription;
//! - every JSON and YAML block in every document parses, and every `# file: hamper.conf` example
//!   passes `hamper check-config` without a warning;
//! - the worked Python and shell plugins run under `hamper console` and `hamper plugin`, and say
//!   exactly what their transcripts in the documentation say; the shell plugin writes valid JSON
//!   whatever it is fed;
//! - the conversations shown in `docs/plugins.md` (those of the built-in plugins; the example
//!   plugins' are run by `sdks.rs`) and the errors and warnings shown in
//!   `docs/config.md` are what the bot prints, and its example ACL means what the text says.

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hamper_protocol::{
    CommandEvent, ErrorCode, FromPlugin, IncrParams, KeyParams, ListParams, Message, PingId,
    SetParams, Subscription, ToPlugin,
};
use hamper_tests::markdown::{
    docs_dir, example_name, fenced_blocks, file_block, read_doc, split_transcript, transcript_after,
};
use hamper_tests::{assert_success, run_with_input, skip_or_fail, stdout_lines, Sandbox};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Every Markdown file in `docs/`, by file name.
fn all_docs() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(docs_dir())
        .expect("read docs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "protocol.md"),
        "docs/protocol.md is missing"
    );
    names
        .into_iter()
        .map(|n| {
            let text = read_doc(&n);
            (n, text)
        })
        .collect()
}

/// The keys of `doc` (recursively) that `wire` does not have: fields the types ignored, which
/// means a misspelt or invented field in the documentation.
fn ignored_fields(doc: &Value, wire: &Value, path: &str, out: &mut Vec<String>) {
    match (doc, wire) {
        (Value::Object(d), Value::Object(w)) => {
            for (key, value) in d {
                let here = format!("{path}.{key}");
                match w.get(key) {
                    Some(wv) => ignored_fields(value, wv, &here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(d), Value::Array(w)) => {
            for (i, (dv, wv)) in d.iter().zip(w).enumerate() {
                ignored_fields(dv, wv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Parses `value` as `T` and checks that re-encoding keeps every field it had.
fn parses_exactly<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let parsed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let again = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    let mut ignored = Vec::new();
    ignored_fields(value, &again, "", &mut ignored);
    if ignored.is_empty() {
        Ok(())
    } else {
        Err(format!("fields not in the wire types: {ignored:?}"))
    }
}

/// Checks a request's params against the parameter type of its method.
fn check_request_params(value: &Value) -> Result<(), String> {
    let params = match value.get("params") {
        None | Some(Value::Null) => json!({}),
        Some(p) => p.clone(),
    };
    match value["method"].as_str().unwrap_or("") {
        "kv.get" | "kv.delete" => parses_exactly::<KeyParams>(&params),
        "kv.set" => parses_exactly::<SetParams>(&params),
        "kv.incr" => parses_exactly::<IncrParams>(&params),
        "kv.list" => parses_exactly::<ListParams>(&params),
        "plugins.list" | "bot.info" => match params.as_object() {
            Some(o) if o.is_empty() => Ok(()),
            _ => Err("this method takes no params".into()),
        },
        other => Err(format!("`{other}` is not a method of this host")),
    }
}

/// Every protocol line in the ```json blocks of protocol.md: (line number, value).
fn protocol_examples() -> Vec<(usize, Value)> {
    let doc = read_doc("protocol.md");
    let mut out = Vec::new();
    for block in fenced_blocks(&doc).into_iter().filter(|b| b.info == "json") {
        for (i, line) in block.body.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = block.line + 1 + i;
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("protocol.md:{at}: not one JSON object: {e}\n{line}"));
            assert!(
                value.is_object(),
                "protocol.md:{at}: a JSON example line must be an object"
            );
            out.push((at, value));
        }
    }
    out
}

#[test]
fn protocol_json_examples_are_real_wire_messages() {
    let examples = protocol_examples();
    assert!(
        examples.len() >= 50,
        "only {} JSON lines found in protocol.md; is the block extraction broken?",
        examples.len()
    );
    let mut failures = Vec::new();
    for (at, value) in &examples {
        if value.get("type").is_none() {
            continue;
        }
        let from = parses_exactly::<FromPlugin>(value);
        let to = parses_exactly::<ToPlugin>(value);
        if let (Err(f), Err(t)) = (&from, &to) {
            failures.push(format!(
                "protocol.md:{at}: neither a plugin message ({f}) nor a host message ({t})"
            ));
            continue;
        }
        if value["type"] == "request" {
            if let Err(e) = check_request_params(value) {
                failures.push(format!("protocol.md:{at}: request params: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn protocol_reference_covers_every_type_method_code_and_subscription() {
    let doc = read_doc("protocol.md");
    let examples = protocol_examples();
    let mut from_types = BTreeSet::new();
    let mut to_types = BTreeSet::new();
    let mut methods = BTreeSet::new();
    for (_, value) in &examples {
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            continue;
        };
        if serde_json::from_value::<FromPlugin>(value.clone()).is_ok() {
            from_types.insert(kind.to_string());
        }
        if serde_json::from_value::<ToPlugin>(value.clone()).is_ok() {
            to_types.insert(kind.to_string());
        }
        if kind == "request" {
            methods.insert(value["method"].as_str().unwrap_or("").to_string());
        }
    }
    let want_from = [
        "hello", "reply", "say", "me", "notice", "join", "part", "raw", "request", "pong",
    ];
    let want_to = [
        "hello",
        "message",
        "command",
        "join",
        "part",
        "quit",
        "kick",
        "nick",
        "topic",
        "invite",
        "connected",
        "disconnected",
        "response",
        "ping",
        "goodbye",
    ];
    let want_methods = [
        "plugins.list",
        "bot.info",
        "kv.get",
        "kv.set",
        "kv.delete",
        "kv.incr",
        "kv.list",
    ];
    for t in want_from {
        assert!(
            from_types.contains(t),
            "no example of the plugin message `{t}`"
        );
    }
    for t in want_to {
        assert!(to_types.contains(t), "no example of the host message `{t}`");
    }
    for m in want_methods {
        assert!(methods.contains(m), "no example request for `{m}`");
    }
    for code in [
        ErrorCode::NotFound,
        ErrorCode::TooLarge,
        ErrorCode::BadRequest,
        ErrorCode::UnknownMethod,
        ErrorCode::Unavailable,
        ErrorCode::Forbidden,
        ErrorCode::Internal,
    ] {
        assert!(
            doc.contains(&format!("`{}`", code.as_str())),
            "the error code `{code}` is not documented"
        );
    }
    for sub in Subscription::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", sub.as_str())),
            "the subscription `{}` is not in the table",
            sub.as_str()
        );
    }
    for limit in [
        hamper_protocol::MAX_LINE_BYTES,
        hamper_protocol::MAX_KEY_BYTES,
        hamper_protocol::MAX_VALUE_BYTES,
    ] {
        let spelled = limit
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            doc.contains(&limit.to_string()) || doc.contains(&spelled),
            "the limit {limit} is not stated"
        );
    }
}

#[test]
fn json_and_yaml_blocks_in_every_doc_parse() {
    let mut checked = 0;
    for (name, text) in all_docs() {
        for block in fenced_blocks(&text) {
            match block.info.as_str() {
                "json" => {
                    let whole = serde_json::from_str::<Value>(&block.body).is_ok();
                    if !whole {
                        for (i, line) in block.body.lines().enumerate() {
                            if !line.trim().is_empty() {
                                serde_json::from_str::<Value>(line).unwrap_or_else(|e| {
                                    panic!("{name}:{}: not JSON: {e}", block.line + 1 + i)
                                });
                            }
                        }
                    }
                    checked += 1;
                }
                "yaml" => {
                    serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&block.body)
                        .unwrap_or_else(|e| panic!("{name}:{}: not YAML: {e}", block.line));
                    checked += 1;
                }
                _ => {}
            }
        }
    }
    assert!(checked > 10, "only {checked} blocks checked");
}

/// The `$NAME`s a YAML example refers to.
fn dollar_vars(text: &str) -> BTreeSet<String> {
    regex::Regex::new(r"\$([A-Za-z_][A-Za-z0-9_]*)")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

/// Creates, as executable files, the paths the plugin `command`s of a `hamper.conf` example
/// name (`plugins/echo.py`), which `check-config` checks are there.
fn create_plugin_files(sb: &Sandbox, yaml: &str) {
    use std::os::unix::fs::PermissionsExt;
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    let entries = config.get("plugins").and_then(|p| p.as_sequence()).cloned();
    for entry in entries.unwrap_or_default() {
        let words = entry.get("command").and_then(|c| c.as_sequence()).cloned();
        for word in words.unwrap_or_default().iter().filter_map(|w| w.as_str()) {
            if word.contains('/') {
                let path = sb.path().join(word);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, "").unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }
}

#[test]
fn hamper_conf_examples_pass_check_config() {
    let mut checked = 0;
    for (name, text) in all_docs() {
        for block in fenced_blocks(&text) {
            if block.info != "yaml" || !block.body.starts_with("# file: hamper.conf\n") {
                continue;
            }
            let sb = Sandbox::new();
            sb.write_config(&block.body);
            create_plugin_files(&sb, &block.body);
            let mut cmd = sb.hamper();
            cmd.arg("check-config");
            for var in dollar_vars(&block.body) {
                // A value that is a valid channel is also a valid password, token or key.
                cmd.env(var, "#docs-test");
            }
            let out = cmd.output().expect("run check-config");
            assert!(
                out.status.success(),
                "{name}:{}: check-config refused the example:\n{}",
                block.line,
                String::from_utf8_lossy(&out.stderr)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("warning:"),
                "{name}:{}: check-config warns about the example:\n{stderr}",
                block.line
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} hamper.conf examples found");
}

/// The lines after the first of a ```text block that contains `needle`.
fn transcript_after_command(doc: &str, needle: &str) -> Vec<String> {
    let block = fenced_blocks(doc)
        .into_iter()
        .find(|b| b.info == "text" && b.body.contains(needle))
        .unwrap_or_else(|| panic!("no text block containing {needle:?}"));
    block.body.lines().skip(1).map(str::to_string).collect()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The body of the first ```` ```info ```` block of `doc` that contains `needle`.
fn block_containing(doc: &str, info: &str, needle: &str) -> String {
    fenced_blocks(doc)
        .into_iter()
        .find(|b| b.info == info && b.body.contains(needle))
        .unwrap_or_else(|| panic!("no {info} block containing {needle:?}"))
        .body
}

/// Runs `check-config` in `sb`, checks its exit status and that its stderr is the transcript in
/// `doc` that contains `needle`; returns its output.
fn check_config_prints(sb: &Sandbox, doc: &str, code: i32, needle: &str) -> Output {
    let out = sb.hamper().arg("check-config").output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(code),
        "the exit status for {needle:?}"
    );
    assert_eq!(stderr_lines(&out), transcript_after_command(doc, needle));
    out
}

#[test]
fn config_error_transcripts_are_what_hamper_prints() {
    let doc = read_doc("config.md");

    let sb = Sandbox::new();
    let out = sb
        .hamper()
        .arg("check-config")
        .env("channels", "#hamper")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_lines(&out),
        transcript_after_command(&doc, "is a YAML comment")
    );

    let sb = Sandbox::new();
    let out = sb
        .hamper()
        .arg("check-config")
        .env("channels", "#hamper,#secret")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_lines(&out),
        transcript_after_command(&doc, "channels='#hamper,#secret'")
    );

    let sb = Sandbox::new();
    sb.write_config("server: irc.libera.chat\nnicknmae: my_hamper\nweather:\n  city: Oslo\n");
    let out = check_config_prints(&sb, &doc, 0, "did you mean");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("weather:\n  city: Oslo"),
        "the unknown key is kept as a section:\n{shown}"
    );

    let sb = Sandbox::new();
    std::fs::write(sb.path().join("irc-ca.der"), b"\x30\x82\x03\x1d DER").unwrap();
    let out = sb
        .hamper()
        .arg("check-config")
        .env("ssl_ca", "irc-ca.der")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_lines(&out),
        transcript_after_command(&doc, "ssl_ca=irc-ca.der")
    );

    let sb = Sandbox::new();
    let out = sb
        .hamper()
        .arg("check-config")
        .env("sasl_mechanism", "EXTERNAL")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_lines(&out),
        transcript_after_command(&doc, "sasl_mechanism=EXTERNAL hamper check-config")
    );

    let sb = Sandbox::new();
    sb.write_config("port: lots\nchannels: [hamper]\nplugins: [karma, {command: [x]}]\n");
    check_config_prints(&sb, &doc, 2, "is not a port number");
}

#[test]
fn owner_and_acl_transcripts_are_what_hamper_prints() {
    let doc = read_doc("config.md");

    let sb = Sandbox::new();
    sb.write_config("server: irc.example.org\nowners: [\"nick:alice\"]\n");
    check_config_prints(&sb, &doc, 0, "`nick:alice` matches whoever");

    let sb = Sandbox::new();
    sb.write_config("server: irc.example.org\nacl: acl.json\n");
    std::fs::write(
        sb.path().join("acl.json"),
        r##"{"groups": {"@ops": ["uberj"]}, "permissions": {"@ops": ["*"], "#hamper": ["karma.*"]}}"##,
    )
    .unwrap();
    check_config_prints(&sb, &doc, 0, "`uberj` is a bare nick");

    let sb = Sandbox::new();
    sb.write_config(&block_containing(&doc, "yaml", "owners: [alice]"));
    check_config_prints(&sb, &doc, 2, "starts with a hostmask");
}

/// The ACL shown in `config.md` does what the paragraph after it says.
#[test]
fn the_acl_example_means_what_config_md_says() {
    use hamper::acl::Acl;
    use hamper::chat::Source;
    let doc = read_doc("config.md");
    let block = block_containing(&doc, "json", "\"permissions\"");
    let value: Value = serde_json::from_str(&block).unwrap();
    let (acl, warnings) = Acl::from_json(&value, "acl").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let anyone = Source {
        nick: "dave".into(),
        user: Some("~dave".into()),
        host: Some("dave.example".into()),
        account: None,
    };
    let bob = Source {
        nick: "bob".into(),
        user: Some("b".into()),
        host: Some("bob.example".into()),
        account: None,
    };
    let alice = Source {
        account: Some("alice".into()),
        ..anyone.clone()
    };
    let cases = [
        (&anyone, Some("#hamper"), "quote", true),
        (&anyone, Some("#hamper"), "karma.add", true),
        (&anyone, Some("#hamper"), "quote.delete", false),
        (&anyone, Some("#elsewhere"), "quote", false),
        (&bob, Some("#hamper"), "quote.delete", false),
        (&bob, Some("#elsewhere"), "quote.delete", true),
        (&alice, None, "admin.restart", true),
        (&alice, Some("#quiet"), "karma.add", false),
        (&alice, Some("#quiet"), "quote", true),
    ];
    for (who, channel, permission, want) in cases {
        assert_eq!(
            acl.allows(
                who,
                channel,
                permission,
                hamper_protocol::CaseMapping::Rfc1459
            ),
            want,
            "{} in {channel:?}: {permission}",
            who.nick
        );
    }
}

#[test]
fn check_config_names_each_plugin_that_cannot_start_and_the_fix() {
    let doc = read_doc("config.md");
    let yaml = block_containing(&doc, "yaml", "command: sh plugins/shout.sh");
    let sb = Sandbox::new();
    sb.write_config(&yaml);
    std::fs::write(sb.path().join("roll.py"), "print()\n").unwrap();
    let out = sb.hamper().arg("check-config").output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stderr_lines(&out),
        transcript_after_command(&doc, "plugins[1] (seen)")
    );
    assert!(out.stdout.is_empty());

    // Fixed as the messages say, the same configuration passes.
    let fixed = yaml
        .replace(
            "command: sh plugins/shout.sh",
            "command: [sh, plugins/shout.sh]",
        )
        .replace("pyhton3", "python3")
        .replace(
            "  - weather\n",
            "  - {name: weather, command: [python3, plugins/weather.py]}\n",
        );
    sb.write_config(&fixed);
    create_plugin_files(&sb, &fixed);
    std::fs::write(sb.path().join("echo.py"), "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        sb.path().join("roll.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = sb.hamper().arg("check-config").output().expect("run");
    assert_success(&out);
}

fn have_python() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip_or_fail("python3 is needed to run the Python example of docs/protocol.md");
    }
    found
}

/// Writes the Python example into the sandbox as `echo.py`; with `shebang`, as an executable.
fn write_echo_py(sb: &Sandbox, shebang: bool) -> PathBuf {
    let (_, block) = file_block(&read_doc("protocol.md"), "python", "echo.py");
    let path = sb.path().join("echo.py");
    let text = if shebang {
        format!("#!/usr/bin/env python3\n{}", block.body)
    } else {
        block.body
    };
    std::fs::write(&path, text).expect("write echo.py");
    if shebang {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    path
}

fn console(sb: &Sandbox, args: &[&str], script: &str) -> Output {
    let out = sb.console(args, script);
    assert_success(&out);
    out
}

#[test]
fn python_example_runs_under_the_console_as_its_transcript_says() {
    if !have_python() {
        return;
    }
    let doc = read_doc("protocol.md");
    let sb = Sandbox::new();
    let path = write_echo_py(&sb, false);
    sb.write_config(&format!(
        "plugins:\n  - {{name: echo, command: [python3, {}]}}\n  - help\n",
        json!(path.to_string_lossy())
    ));

    let (index, _) = file_block(&doc, "python", "echo.py");
    let (script, want) = transcript_after(&doc, index);
    assert!(script.contains("!echo") && want.len() >= 5, "{script}");
    assert_eq!(stdout_lines(&console(&sb, &[], &script)), want);

    // The count is in storage: a new run of the whole bot goes on from where it stopped, and
    // `!help` lists the command (in private).
    let out = console(&sb, &[], "!echo again\n!help\n");
    let lines = stdout_lines(&out);
    assert_eq!(lines[0], "<hamper> echo #5: again");
    assert!(
        lines.contains(&"[you] <hamper> !echo TEXT - Say TEXT back, numbered.".to_string()),
        "{lines:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("malformed"), "{err}");
}

#[test]
fn python_example_runs_under_hamper_plugin_with_a_trace() {
    if !have_python() {
        return;
    }
    let sb = Sandbox::new();
    write_echo_py(&sb, true);

    let mut cmd = sb.hamper();
    cmd.args(["plugin", "./echo.py"]);
    let out = run_with_input(cmd, "!echo hi\n/msg echo there\n");
    assert_success(&out);
    assert_eq!(
        stdout_lines(&out),
        ["<hamper> echo #1: hi", "[you] <hamper> echo #2: there"]
    );

    let mut cmd = sb.hamper();
    cmd.args(["plugin", "./echo.py", "--trace"]);
    let out = run_with_input(cmd, "!echo traced\n");
    assert_success(&out);
    assert_eq!(stdout_lines(&out), ["<hamper> echo #3: traced"]);
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        r#"[echo] <- {"type":"hello","protocol_version":1,"name":"echo""#,
        r#"[echo] -> {"type":"hello","protocol_version":1,"name":"echo","commands":["echo"]"#,
        r#"[echo] -> {"type":"command","command":"echo","invoked_as":"echo","args":"traced""#,
        r#"[echo] <- {"type":"request","id":1,"method":"kv.incr""#,
        r#"[echo] -> {"type":"response","id":1,"result":{"value":3}}"#,
        r##"[echo] <- {"type":"reply","channel":"#hamper","nick":"you","text":"echo #3: traced"}"##,
        r#"[echo] <- {"type":"pong","id":"#,
        r#"[echo] -> {"type":"goodbye""#,
    ] {
        assert!(err.contains(want), "{want} not in the trace:\n{err}");
    }
    assert!(!err.contains("malformed"), "{err}");
}

fn write_shout_sh(sb: &Sandbox) -> PathBuf {
    let (_, block) = file_block(&read_doc("protocol.md"), "sh", "shout.sh");
    let path = sb.path().join("shout.sh");
    std::fs::write(&path, block.body).expect("write shout.sh");
    path
}

#[test]
fn shell_example_runs_under_the_console_as_its_transcript_says() {
    let doc = read_doc("protocol.md");
    let sb = Sandbox::new();
    let path = write_shout_sh(&sb);
    sb.write_config(&format!(
        "plugins:\n  - {{name: shout, command: [sh, {}]}}\n  - help\n",
        json!(path.to_string_lossy())
    ));

    let (index, _) = file_block(&doc, "sh", "shout.sh");
    let (script, want) = transcript_after(&doc, index);
    assert!(
        script.contains('"') && script.contains('\\'),
        "the transcript should show quotes and backslashes: {script}"
    );
    assert_eq!(stdout_lines(&console(&sb, &[], &script)), want);

    let script =
        "!shout\n!shout back\\\\slash \"quoted\" \\u0041 {\"type\":\"ping\"}\n!help shout\n";
    let out = console(&sb, &["--trace"], script);
    assert_eq!(
        stdout_lines(&out),
        [
            "<hamper> Usage: shout TEXT",
            r#"<hamper> BACK\\SLASH "QUOTED" \U0041 {"TYPE":"PING"}"#,
            "<hamper> !shout TEXT - Say TEXT back in capitals.",
        ]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("malformed"), "{err}");
    assert!(err.contains(r#"[shout] <- {"type":"pong","id":"#), "{err}");
}

/// xorshift64*, for repeatable hostile input.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// What shout.sh promises to make of `args`: a–z upper-cased, control characters as spaces.
fn shouted(args: &str) -> String {
    if args.is_empty() {
        return "Usage: shout TEXT".into();
    }
    args.chars()
        .map(|c| match c {
            c if (c as u32) < 0x20 => ' ',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

#[test]
fn shell_example_never_writes_invalid_json() {
    let sb = Sandbox::new();
    let path = write_shout_sh(&sb);
    let pieces = [
        "a",
        "Z",
        "q",
        "\"",
        "\\",
        "/",
        "\n",
        "\t",
        "\r",
        "\u{8}",
        "\u{c}",
        "\u{1}",
        "\u{1f}",
        "\u{7f}",
        "é",
        "日本",
        "\u{2028}",
        " ",
        "n",
        "u",
        "0",
        "{",
        "}",
        ":",
        ",",
        "\\n",
        "\\u0041",
        "\\\"",
        "\"args\":\"",
        "\"channel\":\"x\"",
        "{\"type\":\"ping\",\"id\":9}",
    ];
    let channels = [Some("#hamper"), None, Some("#a\"b\\c")];
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let mut input = String::from("{\"type\":\"hello\",\"protocol_version\":1}\n");
    let mut expected = Vec::new();
    for i in 0..300u64 {
        let args: String = (0..dice.below(10))
            .map(|_| pieces[dice.below(pieces.len())])
            .collect();
        let channel = channels[dice.below(channels.len())].map(str::to_string);
        let event = ToPlugin::Command(CommandEvent {
            command: "shout".into(),
            invoked_as: "shout".into(),
            args: args.clone(),
            message: Message {
                private: channel.is_none(),
                channel: channel.clone(),
                nick: "n\\i\"ck".into(),
                text: format!("!shout {args}"),
                message: format!("shout {args}"),
                directed: true,
                ..Message::default()
            },
        });
        input.push_str(&serde_json::to_string(&event).unwrap());
        input.push('\n');
        input.push_str(
            &serde_json::to_string(&ToPlugin::Ping(hamper_protocol::Ping { id: PingId(i) }))
                .unwrap(),
        );
        input.push('\n');
        expected.push((channel, shouted(&args), i));
    }
    let mut cmd = Command::new("sh");
    cmd.arg(&path);
    let out = run_with_input(cmd, &input);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout.clone()).expect("UTF-8 output");
    let lines: Vec<&str> = stdout.split_terminator('\n').collect();
    assert_eq!(lines.len(), 1 + 2 * expected.len(), "{stdout}");
    let parse = |line: &str| -> FromPlugin {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid output ({e}): {line}"))
    };
    assert!(matches!(parse(lines[0]), FromPlugin::Hello(h) if h.commands[0].name == "shout"));
    for (pair, (channel, text, id)) in lines[1..].chunks(2).zip(expected) {
        match parse(pair[0]) {
            FromPlugin::Reply(r) => {
                assert_eq!(r.channel, channel, "{}", pair[0]);
                assert_eq!(r.nick, "n\\i\"ck");
                assert_eq!(r.text, text, "{}", pair[0]);
            }
            other => panic!("expected a reply, got {other:?}"),
        }
        assert_eq!(
            parse(pair[1]),
            FromPlugin::Pong(hamper_protocol::Pong { id: PingId(id) })
        );
    }
}

/// `IRC formatting reset` (`\x0f`) is invisible in a terminal and left out of the docs.
fn visible(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().map(|l| l.replace('\u{f}', "")).collect()
}

#[test]
fn conversations_in_plugins_md_are_what_the_bot_says() {
    let doc = read_doc("plugins.md");
    let mut checked = 0;
    let blocks = fenced_blocks(&doc);
    for (i, block) in blocks.iter().enumerate() {
        // Blocks with process ids or shell commands are illustrations, not transcripts. The
        // conversation after an example plugin is that plugin's, and tests/tests/sdks.rs runs it.
        if block.info != "text" || !block.body.contains("you> ") || block.body.contains("pid ") {
            continue;
        }
        if i > 0 && example_name(&blocks[i - 1]).is_some() {
            continue;
        }
        let (script, want) = split_transcript(&block.body);
        let sb = Sandbox::new();
        let got = visible(stdout_lines(&console(&sb, &[], &script)));
        assert_eq!(got, want, "plugins.md:{}", block.line);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} conversations found");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn links_between_docs_resolve() {
    let docs = all_docs();
    let link = regex::Regex::new(r"\]\(([^)\s]*)\)").unwrap();
    let mut checked = 0;
    for (name, text) in &docs {
        let prose: String = {
            let mut in_code = false;
            text.lines()
                .filter(|l| {
                    if l.trim_start().starts_with("```") {
                        in_code = !in_code;
                        return false;
                    }
                    !in_code
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        for caps in link.captures_iter(&prose) {
            let target = &caps[1];
            if target.contains("://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() { name.as_str() } else { file };
            let Some((_, body)) = docs.iter().find(|(n, _)| n == file) else {
                panic!("{name}: link to {target}: no docs/{file}");
            };
            if !anchor.is_empty() {
                assert!(
                    anchors(body).contains(anchor),
                    "{name}: link to {target}: {file} has no heading with that anchor"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} links checked");
}

#[test]
fn the_block_parser_handles_indented_fences() {
    let md = "text\n\n   ```yaml\n   a: 1\n     b: 2\n   ```\n```json\n{}\n```\n";
    let blocks = fenced_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (blocks[0].info.as_str(), blocks[0].body.as_str()),
        ("yaml", "a: 1\n  b: 2\n")
    );
    assert_eq!((blocks[1].line, blocks[1].body.as_str()), (7, "{}\n"));
    assert!(Path::new(&docs_dir()).is_dir());
}

/// The Procfile `docs/heroku.md` shows is the repository's, which `heroku.rs` runs.
#[test]
fn the_procfile_in_heroku_md_is_the_repositorys() {
    let doc = read_doc("heroku.md");
    let shown: Vec<String> = fenced_blocks(&doc)
        .into_iter()
        .filter(|b| b.body.starts_with("irc:"))
        .map(|b| b.body)
        .collect();
    let procfile = std::fs::read_to_string(hamper_tests::workspace_root().join("Procfile"))
        .expect("read the Procfile");
    assert_eq!(shown, vec![procfile], "the Procfile block of heroku.md");
}

/// The keys a reload cannot change are the ones the docs name: a key added to the code's list
/// and not to the docs would be a surprise to an operator whose `!reload` seems to ignore it.
#[test]
fn the_keys_a_reload_cannot_change_are_all_named_in_the_docs() {
    let config = read_doc("config.md");
    let section = config
        .split("### Changing the configuration while the bot runs")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("config.md has the reload section");
    let plugins = read_doc("plugins.md");
    let owner = plugins
        .split("### Owner commands")
        .nth(1)
        .expect("plugins.md has the owner commands");
    for key in hamper::reload::RESTART_ONLY {
        let quoted = format!("`{key}`");
        assert!(
            section.contains(&quoted),
            "config.md's reload section does not name {quoted}"
        );
        assert!(
            owner.contains(&quoted),
            "plugins.md's owner commands do not name {quoted}"
        );
    }
}
