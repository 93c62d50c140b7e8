//! The plugin helpers of `sdk/` and the example plugins of `docs/plugins.md` written with them.
//!
//! Every example is taken from the documentation as it stands, so the docs cannot drift:
//!
//! - each runs under `hamper console` and prints exactly its transcript;
//! - each runs alone under `hamper plugin PATH --trace`, prints its transcript (less the
//!   `!help` lines, with no help plugin running) and writes exactly the protocol lines expected,
//!   the `!seen` plugins the same ones in every language;
//! - fed a scripted host directly, each helper answers a ping that arrived while it waited for a
//!   response only after the reply to the event before it, ignores a response to nothing it
//!   asked, and stops reading at `goodbye`;
//! - in each language, a handler that fails is reported on stderr and the plugin carries on, a
//!   storage error reaches the plugin with its code, and debugging output on stdout is kept out
//!   of the protocol;
//! - a file run by path is named after it (`seen_short.py` runs as `seen-short`), and the trace
//!   says so.
//!
//! A language whose interpreter (or `jq`, for shell) is missing is skipped with a visible
//! `SKIP:`, and fails the test in CI.

// Test helpers outside `#[test]` functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hamper_tests::markdown::{exchanges, file_block, read_doc, transcript_block_after};
use hamper_tests::{
    assert_success, run_with_input, skip_or_fail, stdout_lines, wait_for, workspace_root, Sandbox,
};
use serde_json::{json, Value};

/// One language's helper: how to run a plugin in it, and the file to put next to the plugin.
struct Language {
    /// The code block's info string in the docs.
    info: &'static str,
    /// The extension of its example files.
    ext: &'static str,
    /// The interpreter.
    interpreter: &'static str,
    /// The `#!` line that makes an example executable.
    shebang: &'static str,
    /// The helper, relative to the workspace root.
    helper: &'static str,
    /// Programs the helper needs besides the interpreter.
    needs: &'static [&'static str],
    /// A plugin (not from the docs) whose command `boom` fails, whose command `count` replies
    /// with the code of a storage error, and which writes `loading` to stdout as it starts and
    /// `debug words` in a handler.
    faulty: &'static str,
}

const PYTHON: Language = Language {
    info: "python",
    ext: "py",
    interpreter: "python3",
    shebang: "#!/usr/bin/env python3",
    helper: "sdk/python/hamper_plugin.py",
    needs: &[],
    faulty: r#"
from hamper_plugin import command, kv, run, HamperError
print("loading")

@command("boom")
def boom(cmd):
    raise ValueError("ka" + "boom")

@command("count")
def count(cmd):
    print("debug words")
    kv.set("word", "not a number")
    try:
        kv.incr("word")
    except HamperError as error:
        return "error code: " + error.code

run()
"#,
};

const SHELL: Language = Language {
    info: "sh",
    ext: "sh",
    interpreter: "sh",
    shebang: "#!/bin/sh",
    helper: "sdk/sh/hamper.sh",
    needs: &["jq"],
    faulty: r#"
. "$(dirname "$0")/hamper.sh"
echo loading
boom() { echo "ka""boom" >&2; return 3; }
count() {
    echo "debug words"
    kv_set word "not a number"
    kv_incr word || reply "error code: $error_code"
}
hamper_command boom boom
hamper_command count count
hamper_run
"#,
};

const NODE: Language = Language {
    info: "javascript",
    ext: "js",
    interpreter: "node",
    shebang: "#!/usr/bin/env node",
    helper: "sdk/node/hamper-plugin.js",
    needs: &[],
    faulty: r#"
const { command, kv, run } = require("./hamper-plugin");
console.log("loading");
command("boom", () => { throw new Error("ka" + "boom"); });
command("count", async () => {
    console.log("debug words");
    await kv.set("word", "not a number");
    try { await kv.incr("word"); } catch (err) { return "error code: " + err.code; }
});
run();
"#,
};

const LANGUAGES: [&Language; 3] = [&PYTHON, &SHELL, &NODE];

/// The languages whose interpreter is installed; each missing one is a `SKIP:` (or, in CI, a
/// failure).
fn available_languages() -> Vec<&'static Language> {
    LANGUAGES.into_iter().filter(|l| l.available()).collect()
}

/// Whether `program` can be started; if not, skips (or fails, in CI) saying what it was
/// needed for.
fn have(program: &str, why: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        skip_or_fail(&format!("`{program}` is needed {why}"));
    }
    found
}

impl Language {
    /// Whether everything this language needs is installed (skipping the test if not).
    fn available(&self) -> bool {
        let why = format!("to test the helper {}", self.helper);
        std::iter::once(&self.interpreter)
            .chain(self.needs)
            .all(|p| have(p, &why))
    }

    /// The example `file` of docs/plugins.md.
    fn example(&self, file: &str) -> String {
        file_block(&read_doc("plugins.md"), self.info, file).1.body
    }

    /// Writes `code` into the sandbox as `name`, with the helper beside it; `executable` adds
    /// the `#!` line and the exec bit.
    fn write(&self, sb: &Sandbox, name: &str, code: &str, executable: bool) -> PathBuf {
        let helper = workspace_root().join(self.helper);
        let helper_name = Path::new(self.helper).file_name().unwrap();
        std::fs::copy(&helper, sb.path().join(helper_name)).expect("copy the helper");
        let path = sb.path().join(name);
        let text = if executable {
            format!("{}\n{code}", self.shebang)
        } else {
            code.to_string()
        };
        std::fs::write(&path, text).expect("write the plugin");
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        path
    }

    /// A `plugins:` entry running `script` as `name`.
    fn entry(&self, name: &str, script: &Path) -> String {
        format!(
            "  - {{name: {name}, command: [{}, {}]}}\n",
            self.interpreter,
            json!(script.display().to_string())
        )
    }
}

/// The transcript after the example `file` in docs/plugins.md, as exchanges.
fn transcript_of(info: &str, file: &str) -> Vec<(String, Vec<String>)> {
    let doc = read_doc("plugins.md");
    let (index, _) = file_block(&doc, info, file);
    exchanges(&transcript_block_after(&doc, index).body)
}

/// What to type, and what the console must print, for `exchanges`.
fn script_and_output(exchanges: &[(String, Vec<String>)]) -> (String, Vec<String>) {
    let input = exchanges.iter().map(|(typed, _)| format!("{typed}\n"));
    let output = exchanges.iter().flat_map(|(_, printed)| printed.clone());
    (input.collect(), output.collect())
}

fn succeeded(out: Output) -> Output {
    assert_success(&out);
    out
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The examples of docs/plugins.md, by language.
fn examples(language: &Language) -> Vec<String> {
    let mut files = vec![format!("seen.{}", language.ext)];
    if language.info == "python" {
        files.insert(0, "hello.py".to_string());
    }
    files
}

#[test]
fn every_example_says_what_its_transcript_says() {
    for language in available_languages() {
        for file in examples(language) {
            let sb = Sandbox::new();
            let path = language.write(&sb, &file, &language.example(&file), false);
            let name = file.split('.').next().unwrap();
            sb.write_config(&format!(
                "plugins:\n{}  - help\n",
                language.entry(name, &path)
            ));
            let (script, want) = script_and_output(&transcript_of(language.info, &file));
            let out = succeeded(sb.console(&[], &script));
            assert_eq!(stdout_lines(&out), want, "{file}\n{}", stderr_of(&out));
            assert!(
                !stderr_of(&out).contains("WARN"),
                "{file}: {}",
                stderr_of(&out)
            );
        }
    }
}

/// What `hello.py` writes for its transcript, as the trace shows it: every line from the
/// plugin but its pongs.
const HELLO_TRACE: &[&str] = &[
    r##"{"type":"hello","protocol_version":1,"name":"hello","version":"","description":"hello [NAME] - Say hello to NAME, or to you.","help":"","commands":[{"name":"hello","aliases":[],"usage":"hello [NAME]","help":"Say hello to NAME, or to you.","long_help":"","directed":true,"permission":null}],"subscriptions":["message"]}"##,
    r##"{"type":"reply","channel":"#hamper","nick":"you","text":"Hello, you!"}"##,
    r##"{"type":"reply","channel":"#hamper","nick":"you","text":"Hello, world!"}"##,
    r##"{"type":"reply","channel":"#hamper","nick":"you","text":"You're welcome, you."}"##,
];

/// What every `!seen` example writes for its transcript (less `!help`), as the trace shows it.
const SEEN_TRACE: &[&str] = &[
    r##"{"type":"hello","protocol_version":1,"name":"seen","version":"","description":"seen NICK - Say what NICK last said in this channel.","help":"","commands":[{"name":"seen","aliases":[],"usage":"seen NICK","help":"Say what NICK last said in this channel.","long_help":"","directed":true,"permission":null}],"subscriptions":["message"]}"##,
    r##"{"type":"request","id":1,"method":"kv.set","params":{"key":"#hamper/you","value":"you last said: hello everyone"}}"##,
    r##"{"type":"request","id":2,"method":"kv.set","params":{"key":"#hamper/alice","value":"alice last said: I'm off to lunch"}}"##,
    r##"{"type":"request","id":3,"method":"kv.set","params":{"key":"#hamper/you","value":"you last said: !seen alice"}}"##,
    r##"{"type":"request","id":4,"method":"kv.get","params":{"key":"#hamper/alice"}}"##,
    r##"{"type":"reply","channel":"#hamper","nick":"you","text":"alice last said: I'm off to lunch"}"##,
    r##"{"type":"request","id":5,"method":"kv.set","params":{"key":"#hamper/you","value":"you last said: !seen ALICE"}}"##,
    r##"{"type":"request","id":6,"method":"kv.get","params":{"key":"#hamper/alice"}}"##,
    r##"{"type":"reply","channel":"#hamper","nick":"you","text":"alice last said: I'm off to lunch"}"##,
    r##"{"type":"request","id":7,"method":"kv.set","params":{"key":"#hamper/you","value":"you last said: !seen bob"}}"##,
    r##"{"type":"request","id":8,"method":"kv.get","params":{"key":"#hamper/bob"}}"##,
    r##"{"type":"reply","channel":"#hamper","nick":"you","text":"I haven't seen bob here."}"##,
];

#[test]
fn every_example_runs_alone_with_an_exact_trace() {
    for language in available_languages() {
        for file in examples(language) {
            let name = file.split('.').next().unwrap();
            let want_trace = if name == "hello" {
                HELLO_TRACE
            } else {
                SEEN_TRACE
            };
            let sb = Sandbox::new();
            language.write(&sb, &file, &language.example(&file), true);
            let alone: Vec<_> = transcript_of(language.info, &file)
                .into_iter()
                .filter(|(typed, _)| !typed.starts_with("!help"))
                .collect();
            let (script, want) = script_and_output(&alone);
            let mut cmd = sb.hamper();
            cmd.args(["plugin", &format!("./{file}"), "--trace"]);
            let out = succeeded(run_with_input(cmd, &script));
            assert_eq!(stdout_lines(&out), want, "{file}");
            let err = stderr_of(&out);
            let from_plugin = format!("[{name}] <- ");
            let sent: Vec<&str> = err
                .lines()
                .filter_map(|l| l.strip_prefix(from_plugin.as_str()))
                .filter(|l| !l.starts_with(r#"{"type":"pong""#))
                .collect();
            assert_eq!(sent, want_trace, "{file}:\n{err}");
            let pongs = err
                .matches(&format!(r#"[{name}] <- {{"type":"pong""#))
                .count();
            let pings = err
                .matches(&format!(r#"[{name}] -> {{"type":"ping""#))
                .count();
            assert_eq!(pongs, pings, "{file}: every ping answered:\n{err}");
            assert!(
                err.contains(&format!(r#"[{name}] -> {{"type":"goodbye""#)),
                "{err}"
            );
            assert!(!err.contains("WARN"), "{file}:\n{err}");
        }
    }
}

#[test]
fn a_file_run_by_path_is_named_after_it_and_the_trace_says_so() {
    for language in available_languages() {
        let file = format!("seen_short.{}", language.ext);
        let sb = Sandbox::new();
        let code = language.example(&format!("seen.{}", language.ext));
        // Not executable: `hamper plugin` picks the interpreter by the file's extension.
        language.write(&sb, &file, &code, false);
        let mut cmd = sb.hamper();
        cmd.args(["plugin", &file, "--trace"]);
        let out = succeeded(run_with_input(
            cmd,
            "/nick ann\nhi there\n/nick you\n!seen ann\n",
        ));
        assert_eq!(stdout_lines(&out), ["<hamper> ann last said: hi there"]);
        let err = stderr_of(&out);
        assert_eq!(
            err.lines().next(),
            Some(format!("[seen-short] {file} runs as the plugin `seen-short`: its storage namespace, config section and HAMPER_PLUGIN_NAME").as_str()),
            "{err}"
        );
        assert!(
            err.contains(
                r#"[seen-short] -> {"type":"hello","protocol_version":1,"name":"seen-short""#
            ),
            "{err}"
        );
    }
}

/// A plugin process driven line by line, as hamper would drive it, without hamper.
struct Driven {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    name: String,
}

impl Driven {
    fn start(mut cmd: Command, name: &str) -> Driven {
        use std::io::BufRead;
        use std::process::Stdio;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start the plugin");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Driven {
            child,
            stdin,
            lines,
            name: name.to_string(),
        }
    }

    fn send(&mut self, message: Value) {
        use std::io::Write;
        writeln!(self.stdin, "{message}").expect("write to the plugin");
    }

    /// The next line the plugin writes, within 20 s.
    fn next(&self, what: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{}: no {what} within 20s ({e})", self.name));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: {e}: {line}", self.name))
    }

    /// What the plugin writes until it exits by itself (with stdin still open), and its status.
    fn rest(mut self) -> (Vec<String>, std::process::ExitStatus) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!(
                    "{}: did not exit within 20s ({e}); wrote {rest:?}",
                    self.name
                ),
            }
        }
        let status = wait_for(Duration::from_secs(20), "the plugin's exit", || {
            self.child.try_wait().expect("try_wait")
        });
        (rest, status)
    }
}

#[test]
fn every_helper_answers_in_order_and_stops_at_goodbye() {
    for language in available_languages() {
        let file = format!("seen.{}", language.ext);
        let sb = Sandbox::new();
        let path = language.write(&sb, &file, &language.example(&file), false);
        let mut cmd = Command::new(language.interpreter);
        cmd.arg(&path).current_dir(sb.path());
        let mut plugin = Driven::start(cmd, &file);
        assert_eq!(plugin.next("hello")["type"], "hello");
        plugin.send(json!({"type":"hello","protocol_version":1,"name":"seen","commands":["seen"],"subscriptions":["message"],"rejected":[],"config":null,"bot":{"nick":"hamper","channels":[],"command_prefix":"!","connected":true}}));
        plugin.send(json!({"type":"command","command":"seen","invoked_as":"seen","args":"Alice","channel":"#c","nick":"bob","user":null,"host":null,"account":null,"text":"!seen Alice","message":"seen Alice","directed":true,"target":null,"private":false,"action":false,"time":1}));
        // Both arrive while the plugin waits for its answer: the ping is to be answered after
        // the reply, and the response to nothing it asked ignored.
        plugin.send(json!({"type":"ping","id":7}));
        plugin.send(json!({"type":"response","id":99,"result":{"value":"an answer to nothing"}}));
        assert_eq!(
            plugin.next("request"),
            json!({"type":"request","id":1,"method":"kv.get","params":{"key":"#c/alice"}})
        );
        plugin.send(json!({"type":"response","id":1,"result":{"value":"alice last said: hi"}}));
        assert_eq!(
            plugin.next("reply"),
            json!({"type":"reply","channel":"#c","nick":"bob","text":"alice last said: hi"})
        );
        assert_eq!(plugin.next("pong"), json!({"type":"pong","id":7}));
        plugin.send(json!({"type":"ping","id":8}));
        plugin.send(json!({"type":"goodbye","reason":"the test is over"}));
        plugin.send(json!({"type":"ping","id":9}));
        let (rest, status) = plugin.rest();
        assert_eq!(
            rest,
            [r#"{"type":"pong","id":8}"#],
            "{file}: nothing after goodbye"
        );
        assert!(status.success(), "{file}: {status}");
    }
}

#[test]
fn a_failing_handler_is_reported_and_the_plugin_carries_on() {
    for language in available_languages() {
        let sb = Sandbox::new();
        let file = format!("faulty.{}", language.ext);
        let path = language.write(&sb, &file, language.faulty, false);
        sb.write_config(&format!("plugins:\n{}", language.entry("faulty", &path)));
        let out = succeeded(sb.console(&[], "!boom\n!count\n!boom\n!count\n"));
        assert_eq!(
            stdout_lines(&out),
            [
                "<hamper> error code: bad_request",
                "<hamper> error code: bad_request"
            ],
            "{file}\n{}",
            stderr_of(&out)
        );
        let err = stderr_of(&out);
        assert_eq!(err.matches("kaboom").count(), 2, "{file}: {err}");
        assert!(err.contains("debug words"), "{file}: {err}");
        assert!(err.contains("loading"), "{file}: {err}");
        assert!(!err.contains("malformed"), "{file}: {err}");
    }
}
