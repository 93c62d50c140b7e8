//! Storage through the whole bot: SQLite and PostgreSQL, restarts, an outage, migrations and the
//! import from an original Hamper database.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use hamper_tests::pg::{host_port, through_port, Proxy, Schema};
use hamper_tests::{assert_success, stdout_lines, Sandbox, Session};

fn console_with_db(sb: &Sandbox, db: &str, script: &str) -> Vec<String> {
    let mut cmd = sb.hamper();
    cmd.arg("console").env("DATABASE_URL", db);
    let out = hamper_tests::run_with_input(cmd, script);
    assert_success(&out);
    stdout_lines(&out)
}

#[test]
fn counts_survive_a_restart_on_postgres() {
    let Some(schema) = Schema::create("counts_survive_a_restart_on_postgres") else {
        return;
    };
    let sb = Sandbox::new();
    console_with_db(&sb, &schema.url(), "pg++\npg++\npg--\npg++\n");
    let lines = console_with_db(&sb, &schema.url(), "!karma pg\n");
    assert_eq!(lines, ["<hamper> pg has 2 points"]);
    assert_eq!(
        schema.psql("SELECT count(*) FROM kv WHERE plugin = 'karma'"),
        "1"
    );
    assert!(
        !sb.path().join("hamper.db").exists(),
        "no SQLite file when PostgreSQL is used"
    );
}

#[test]
fn a_postgres_outage_gives_errors_then_recovers_without_a_crash() {
    let Some(schema) = Schema::create("a_postgres_outage_gives_errors_then_recovers") else {
        return;
    };
    let proxy = Proxy::start(host_port(schema.base()));
    let url =
        hamper_tests::pg::with_search_path(&through_port(schema.base(), proxy.port), &schema.name);
    let sb = Sandbox::new();
    let mut cmd = sb.hamper();
    cmd.arg("console").env("DATABASE_URL", &url);
    let mut s = Session::start(cmd);
    s.send("up++");
    s.ask("!karma up", "up has 1 point");

    proxy.cut();
    s.send("up++");
    s.ask("!karma up", "Sorry, I can't reach my database right now.");
    s.ask("!plugins", "karma: running");

    proxy.restore();
    s.ask_until("!karma up", "up has", Duration::from_secs(30));
    s.send("up++");
    let line = s.ask("!karma up", "up has");
    assert!(
        line.ends_with("points"),
        "counting again after the outage: {line}\nstdout:\n{}\nstderr:\n{}",
        s.seen.join("\n"),
        s.stderr_text()
    );
    assert!(s.finish(Duration::from_secs(20)).success(), "no crash");
}

#[test]
fn migrate_applies_once_on_both_backends() {
    let sb = Sandbox::new();
    let run = |db: &str| {
        let out = sb
            .hamper()
            .arg("migrate")
            .env("DATABASE_URL", db)
            .output()
            .expect("run");
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = run("sqlite:migrated.db");
    let second = run("sqlite:migrated.db");
    assert_ne!(
        first, second,
        "the second run applies nothing new:\n{first}\n{second}"
    );
    assert!(sb.path().join("migrated.db").is_file());
    if let Some(schema) = Schema::create("migrate_applies_once_on_both_backends") {
        let first = run(&schema.url());
        let second = run(&schema.url());
        assert_ne!(first, second);
        assert_eq!(schema.psql("SELECT count(*) FROM _sqlx_migrations"), "1");
    }
}

const ORIGINAL_TABLES: &str = "CREATE TABLE karma (user VARCHAR NOT NULL PRIMARY KEY, kcount INTEGER);\
CREATE TABLE karmastats (id INTEGER NOT NULL PRIMARY KEY, giver VARCHAR, receiver VARCHAR, kcount INTEGER, datetime DATETIME);";

const ORIGINAL_ROWS: &str = "INSERT INTO karma VALUES ('alice', 5), ('bob', -2), ('c', 1);\
INSERT INTO karmastats (id, giver, receiver, kcount, datetime) VALUES \
(1, 'bob', 'alice', 1, '2018-01-01 10:00:00'), (2, 'alice', 'bob', -1, '2018-01-01 11:00:00'), \
(3, 'c', 'dave', 3, '2018-01-02 12:00:00');";

/// Imports from `from` twice (the second run must change nothing) and checks the totals.
fn import_twice_and_check(sb: &Sandbox, from: &str) {
    for _ in 0..2 {
        let out = sb
            .hamper()
            .args(["import-hamper", "--from", from])
            .output()
            .expect("run");
        assert_success(&out);
    }
    let lines = console_with_db(
        sb,
        "sqlite:hamper.db",
        "!karma alice\n!karma bob\n!karma c\n!karma dave\n",
    );
    assert_eq!(
        lines,
        [
            "<hamper> alice has 6 points",
            "<hamper> bob has -3 points",
            "<hamper> c has 1 point",
            "<hamper> dave has 3 points",
        ]
    );
}

#[test]
fn import_from_an_original_sqlite_database_twice() {
    let sb = Sandbox::new();
    let orig = sb.path().join("original.db");
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.executescript({:?}); c.commit()",
            orig.display().to_string(),
            format!("{ORIGINAL_TABLES}{ORIGINAL_ROWS}")
        ))
        .status()
        .expect("python3");
    assert!(status.success());
    import_twice_and_check(&sb, "sqlite:///original.db");
}

#[test]
fn import_from_an_original_postgres_database() {
    let Some(schema) = Schema::create("import_from_an_original_postgres_database") else {
        return;
    };
    schema.psql(
        &ORIGINAL_TABLES
            .replace("(user VARCHAR", "(\"user\" VARCHAR")
            .replace("DATETIME", "TIMESTAMP"),
    );
    schema.psql(ORIGINAL_ROWS);
    let sb = Sandbox::new();
    import_twice_and_check(&sb, &schema.url());
}

#[test]
fn kill_9_loses_no_acknowledged_write_on_postgres() {
    let Some(schema) = Schema::create("kill_9_loses_no_acknowledged_write_on_postgres") else {
        return;
    };
    let sb = Sandbox::new();
    let lines = hamper_tests::acknowledged_karma_after_kill9(&sb, Some(&schema.url()), "durable");
    assert_eq!(lines, ["<hamper> durable has 25 points"]);
}
