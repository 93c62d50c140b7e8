//! The Heroku dyno, proven locally: the repository's `Procfile` run by a Procfile runner
//! (`honcho`), configured from the environment alone, with `DATABASE_URL` on a real PostgreSQL
//! and the bot on a real ngircd; then SIGTERM to the runner, as a dyno restart sends it, ends
//! every process of the dyno within 10 s, and the server sees the bot's QUIT.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hamper_tests::ircd::{IrcClient, Ngircd, BOT};
use hamper_tests::pg::Schema;
use hamper_tests::{bin_dir, procs, workspace_root, Session};

/// The variable `.ci/run` sets to the `honcho` it installed.
const HONCHO_ENV: &str = "HAMPER_TEST_HONCHO";

/// The `honcho` executable, or `None` after [`hamper_tests::skip_or_fail`].
fn honcho() -> Option<PathBuf> {
    match std::env::var_os(HONCHO_ENV).map(PathBuf::from) {
        Some(path) if path.is_file() => Some(path),
        found => {
            hamper_tests::skip_or_fail(&format!(
                "the Procfile test needs honcho ({HONCHO_ENV}={}): run .ci/run once, or `python3 -m venv V && V/bin/pip install honcho` and set {HONCHO_ENV}=V/bin/honcho",
                found.map_or("unset".to_string(), |p| p.display().to_string())
            ));
            None
        }
    }
}

/// An application folder as the slug has it after the build: the repository's own `Procfile`,
/// and `target/release` holding `hamper` and its plugins. Here `target/release` is a link to the
/// folder the tests' binaries were built in, so the Procfile runs them unchanged; `hamper`
/// finds its plugins and guard beside its own resolved path, as on the dyno.
fn slug() -> tempfile::TempDir {
    let app = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        workspace_root().join("Procfile"),
        app.path().join("Procfile"),
    )
    .expect("copy the Procfile");
    std::fs::create_dir(app.path().join("target")).expect("mkdir target");
    std::os::unix::fs::symlink(bin_dir(), app.path().join("target/release"))
        .expect("link target/release");
    app
}

/// The command name of a live process.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn the_procfile_runs_under_honcho_on_postgres_and_sigterm_ends_every_process() {
    let Some(honcho) = honcho() else {
        return;
    };
    let Some(server) = Ngircd::start() else {
        return;
    };
    let Some(schema) = Schema::create("the Procfile test") else {
        return;
    };
    let app = slug();
    let mut alice = IrcClient::connect(server.port, "alice");
    alice.send("JOIN #test");
    alice.expect(Duration::from_secs(10), "alice's own join", |l| {
        l.starts_with(":alice!") && l.contains(" JOIN ")
    });

    // Config vars only, as `heroku config:set` gives them: no hamper.conf in the slug.
    let mut cmd = Command::new(&honcho);
    cmd.arg("start")
        .current_dir(app.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", app.path())
        .env("nickname", BOT)
        .env("server", "127.0.0.1")
        .env("port", server.port.to_string())
        .env("channels", "[\"#test\"]")
        .env("DATABASE_URL", schema.base())
        // One PostgreSQL for several bots, each in a schema of its own (docs/heroku.md).
        .env("PGOPTIONS", format!("-c search_path={}", schema.name));
    let mut runner = Session::start(cmd);
    alice.expect(Duration::from_secs(30), "the bot to join #test", |l| {
        l.starts_with(&format!(":{BOT}!")) && l.contains(" JOIN ")
    });
    alice.send("PRIVMSG #test :heroku++");
    alice.send("PRIVMSG #test :!karma heroku");
    alice.expect_privmsg(BOT, "#test", "karma from the dyno", |t| {
        t == "heroku has 1 point"
    });
    assert_eq!(
        schema.psql("SELECT count(*) FROM kv WHERE plugin = 'karma'"),
        "1",
        "the karma is in the bot's own schema"
    );

    let dyno = procs::descendants(runner.pid());
    let names: Vec<String> = dyno.iter().map(|p| comm(*p)).collect();
    for wanted in [
        "hamper",
        "hamper-guard",
        "hamper-karma",
        "hamper-help",
        "hamper-sed",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} runs under honcho: {names:?}"
        );
    }
    // The process groups of the dyno's processes (not the test's own, which honcho shares).
    let own = procs::group_of(std::process::id());
    let mut groups: Vec<u32> = dyno
        .iter()
        .filter_map(|p| procs::group_of(*p))
        .filter(|g| Some(*g) != own)
        .collect();
    groups.sort_unstable();
    groups.dedup();

    let stopping = Instant::now();
    runner.signal("TERM", &[]);
    // honcho itself exits 143 after a SIGTERM, whatever its processes did; what hamper did is
    // in honcho's report of the process.
    let stopped = runner.expect(
        Duration::from_secs(10),
        "honcho's report that irc.1 stopped",
        |l| l.contains("irc.1 stopped"),
    );
    assert!(
        stopped.contains("irc.1 stopped (rc=0)"),
        "hamper's exit after SIGTERM: {stopped}\n{}",
        runner.seen.join("\n")
    );
    let (_, _) = runner.wait_with_log(Duration::from_secs(10));
    let took = stopping.elapsed();
    eprintln!(
        "honcho and the {} processes under it ended {:.2} s after SIGTERM",
        dyno.len(),
        took.as_secs_f64()
    );
    alice.expect(Duration::from_secs(10), "the bot's QUIT", |l| {
        l.starts_with(&format!(":{BOT}!")) && l.contains(" QUIT ")
    });
    let deadline = stopping + Duration::from_secs(10);
    loop {
        let left: Vec<(u32, String)> = dyno
            .iter()
            .copied()
            .chain(groups.iter().flat_map(|g| procs::group_members(*g)))
            .filter(|p| procs::alive(*p))
            .map(|p| (p, comm(p)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM to honcho: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
