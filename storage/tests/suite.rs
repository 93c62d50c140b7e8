//! The storage behaviours, each written once against `Storage` and run on both backends:
//! SQLite always, PostgreSQL when `HAMPER_TEST_POSTGRES_URL` names a server.

// Test helpers panic with a message on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{key, TestDb};
use hamper_protocol::wire::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use hamper_storage::{
    import_hamper, Key, KeyPrefix, KvEntry, KvErrorKind, ListOrder, ListQuery, Storage,
    StorageError,
};
use serde_json::{json, Value};

/// Generates `sqlite::<behaviour>` and `postgres::<behaviour>` tests for each behaviour.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::common::TestDb::sqlite();
                    crate::behaviours::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::common::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    crate::behaviours::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

suite!(
    set_then_get_returns_the_same_json,
    get_of_a_missing_key_is_not_found,
    delete_reports_whether_it_deleted,
    incr_adds_and_creates,
    incr_refuses_non_integers_and_overflow,
    list_orders_limits_and_offsets,
    list_prefix_is_literal_and_case_sensitive,
    namespaces_are_isolated,
    every_error_kind,
    size_limits_are_exact,
    concurrent_incr_adds_up,
    writes_survive_reopening,
    migrations_apply_to_an_empty_database_once,
    lazy_open_migrates_on_first_call,
    import_from_the_original_schema,
    import_without_karmastats,
    import_refuses_a_database_without_karma,
);

mod behaviours {
    use super::*;

    async fn set(s: &Storage, namespace: &str, k: &str, value: Value) {
        s.set(namespace, &key(k), &value)
            .await
            .unwrap_or_else(|e| panic!("set {k}: {e}"));
    }

    async fn get(s: &Storage, namespace: &str, k: &str) -> Option<Value> {
        s.get(namespace, &key(k))
            .await
            .unwrap_or_else(|e| panic!("get {k}: {e}"))
    }

    async fn incr(s: &Storage, namespace: &str, k: &str, by: i64) -> i64 {
        s.incr(namespace, &key(k), by)
            .await
            .unwrap_or_else(|e| panic!("incr {k} by {by}: {e}"))
    }

    async fn list(s: &Storage, namespace: &str, query: ListQuery) -> Vec<KvEntry> {
        s.list(namespace, &query)
            .await
            .unwrap_or_else(|e| panic!("list {query:?}: {e}"))
    }

    async fn keys(s: &Storage, namespace: &str, query: ListQuery) -> Vec<String> {
        list(s, namespace, query)
            .await
            .into_iter()
            .map(|entry| entry.key)
            .collect()
    }

    /// A query with these settings and the defaults for the rest.
    fn query(order: ListOrder, limit: u32, offset: u32) -> ListQuery {
        ListQuery {
            order,
            limit,
            offset,
            ..ListQuery::default()
        }
    }

    fn ordered(order: ListOrder) -> ListQuery {
        ListQuery {
            order,
            ..ListQuery::default()
        }
    }

    fn prefixed(prefix: &str) -> ListQuery {
        ListQuery {
            prefix: KeyPrefix::new(prefix).expect("a valid prefix"),
            ..ListQuery::default()
        }
    }

    pub async fn set_then_get_returns_the_same_json(db: &TestDb) {
        let s = db.open().await;
        let values = [
            json!(null),
            json!(true),
            json!(0),
            json!(-42),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(2.5),
            json!(-0.125),
            json!(1e300),
            json!(""),
            json!("héllo wörld ☃ 𝄞"),
            json!("nul \u{0} inside, \"quotes\", back\\slash, new\nline"),
            json!([1, "two", [3], {"four": 4}]),
            json!({"nested": {"a": [true, null]}, "b": 1.5, "z": "last"}),
        ];
        for (i, value) in values.iter().enumerate() {
            let key = format!("k{i}");
            set(&s, "p", &key, value.clone()).await;
            assert_eq!(get(&s, "p", &key).await.as_ref(), Some(value), "{value}");
        }
        // Overwriting replaces, whatever the old and new types.
        set(&s, "p", "k0", json!({"now": "an object"})).await;
        assert_eq!(get(&s, "p", "k0").await, Some(json!({"now": "an object"})));
        set(&s, "p", "k0", json!(7)).await;
        assert_eq!(get(&s, "p", "k0").await, Some(json!(7)));
        // A set answers nothing but success.
        assert_eq!(s.set("p", &key("x"), &json!(1)).await, Ok(()));
        s.close().await;
    }

    pub async fn get_of_a_missing_key_is_not_found(db: &TestDb) {
        let s = db.open().await;
        assert_eq!(s.get("p", &key("nope")).await, Ok(None));
        set(&s, "p", "null", json!(null)).await;
        assert_eq!(
            s.get("p", &key("null")).await,
            Ok(Some(json!(null))),
            "a stored null is a value, not a missing key"
        );
        s.close().await;
    }

    pub async fn delete_reports_whether_it_deleted(db: &TestDb) {
        let s = db.open().await;
        set(&s, "p", "k", json!("v")).await;
        assert_eq!(s.delete("p", &key("k")).await, Ok(true));
        assert_eq!(get(&s, "p", "k").await, None);
        assert_eq!(s.delete("p", &key("k")).await, Ok(false));
        s.close().await;
    }

    pub async fn incr_adds_and_creates(db: &TestDb) {
        let s = db.open().await;
        assert_eq!(incr(&s, "p", "n", 1).await, 1);
        assert_eq!(incr(&s, "p", "n", 1).await, 2);
        assert_eq!(incr(&s, "p", "n", 10).await, 12);
        assert_eq!(incr(&s, "p", "n", -20).await, -8);
        assert_eq!(incr(&s, "p", "n", 0).await, -8);
        assert_eq!(get(&s, "p", "n").await, Some(json!(-8)));
        assert_eq!(incr(&s, "p", "m", -3).await, -3);
        set(&s, "p", "set", json!(40)).await;
        assert_eq!(incr(&s, "p", "set", 2).await, 42);
        // An incremented value is a number for ordering too.
        assert_eq!(
            keys(&s, "p", ordered(ListOrder::ValueDesc)).await,
            ["set", "m", "n"]
        );
        set(&s, "p", "edge", json!(i64::MAX - 1)).await;
        assert_eq!(incr(&s, "p", "edge", 1).await, i64::MAX);
        set(&s, "p", "low", json!(i64::MIN + 1)).await;
        assert_eq!(incr(&s, "p", "low", -1).await, i64::MIN);
        s.close().await;
    }

    pub async fn incr_refuses_non_integers_and_overflow(db: &TestDb) {
        let s = db.open().await;
        let cases = [
            (json!("5"), 1, "a string"),
            (json!(2.5), 1, "a floating-point number"),
            (json!(2.0), 1, "a floating-point number"),
            (json!(null), 1, "null"),
            (json!({"a": 1}), 0, "an object"),
            (json!(u64::MAX), 1, "beyond the 64-bit range"),
            (json!(i64::MAX), 1, "overflows"),
            (json!(i64::MIN), -1, "overflows"),
            (json!(i64::MIN), i64::MIN, "overflows"),
            (json!(1), i64::MAX, "overflows"),
        ];
        for (i, (value, by, fragment)) in cases.into_iter().enumerate() {
            let k = format!("k{i}");
            set(&s, "p", &k, value.clone()).await;
            let error = s.incr("p", &key(&k), by).await.expect_err("refused");
            assert_eq!(
                error.kind,
                KvErrorKind::BadRequest,
                "{value} + {by}: {error}"
            );
            assert!(error.message.contains(fragment), "{value} + {by}: {error}");
            assert!(
                error.message.contains(&format!("`{k}`")),
                "names the key: {error}"
            );
            assert_eq!(get(&s, "p", &k).await, Some(value), "unchanged");
        }
        s.close().await;
    }

    pub async fn list_orders_limits_and_offsets(db: &TestDb) {
        let s = db.open().await;
        let rows = [
            ("alice", json!(5)),
            ("bob", json!(-2)),
            ("carol", json!(5)),
            ("dave", json!(2.5)),
            ("erin", json!("text")),
            ("frank", json!(100)),
            ("gina", json!(null)),
            ("hal", json!(-2.5)),
        ];
        for (key, value) in &rows {
            set(&s, "p", key, value.clone()).await;
        }
        assert_eq!(
            keys(&s, "p", ListQuery::default()).await,
            ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hal"]
        );
        assert_eq!(
            keys(&s, "p", ordered(ListOrder::ValueAsc)).await,
            ["hal", "bob", "dave", "alice", "carol", "frank", "erin", "gina"]
        );
        assert_eq!(
            keys(&s, "p", ordered(ListOrder::ValueDesc)).await,
            ["frank", "alice", "carol", "dave", "bob", "hal", "erin", "gina"]
        );
        assert_eq!(
            keys(&s, "p", query(ListOrder::ValueDesc, 3, 0)).await,
            ["frank", "alice", "carol"]
        );
        assert_eq!(
            keys(&s, "p", query(ListOrder::ValueDesc, 3, 3)).await,
            ["dave", "bob", "hal"]
        );
        assert_eq!(keys(&s, "p", query(ListOrder::Key, 100, 7)).await, ["hal"]);
        assert!(keys(&s, "p", query(ListOrder::Key, 100, 8))
            .await
            .is_empty());
        assert!(keys(&s, "p", query(ListOrder::Key, 0, 0)).await.is_empty());
        assert_eq!(keys(&s, "p", query(ListOrder::Key, 5000, 0)).await.len(), 8);
        // Entries carry their values.
        assert_eq!(
            list(&s, "p", query(ListOrder::ValueDesc, 1, 0)).await,
            [KvEntry {
                key: "frank".into(),
                value: json!(100)
            }]
        );
        // A limit over the maximum is lowered to it.
        for i in 0..1005 {
            set(&s, "max", &format!("k{i:04}"), json!(i)).await;
        }
        assert_eq!(
            keys(&s, "max", query(ListOrder::Key, u32::MAX, 0))
                .await
                .len(),
            1000
        );
        // Ordering by value is numeric, not textual, and exact for large integers.
        set(&s, "q", "nine", json!(9)).await;
        set(&s, "q", "ten", json!(10)).await;
        set(&s, "q", "big", json!(9_007_199_254_740_993_i64)).await;
        set(&s, "q", "big2", json!(9_007_199_254_740_992_i64)).await;
        assert_eq!(
            keys(&s, "q", ordered(ListOrder::ValueAsc)).await,
            ["nine", "ten", "big2", "big"]
        );
        // The default limit is 100.
        for i in 0..105 {
            set(&s, "many", &format!("k{i:03}"), json!(i)).await;
        }
        let listed = keys(&s, "many", ListQuery::default()).await;
        assert_eq!(listed.len(), 100);
        assert_eq!(listed.first().map(String::as_str), Some("k000"));
        assert_eq!(listed.last().map(String::as_str), Some("k099"));
        s.close().await;
    }

    pub async fn list_prefix_is_literal_and_case_sensitive(db: &TestDb) {
        let s = db.open().await;
        for key in [
            "a",
            "a%",
            "a%b",
            "a_b",
            "axb",
            "ab",
            "A%b",
            "b",
            "é1",
            "é2",
            "f",
            "score/bob",
            "score/al",
            "score0",
            "scores",
            "a\\b",
            "a\\%",
        ] {
            set(&s, "p", key, json!(1)).await;
        }
        let cases: [(&str, &[&str]); 10] = [
            ("a%", &["a%", "a%b"]),
            ("a_", &["a_b"]),
            ("A", &["A%b"]),
            ("é", &["é1", "é2"]),
            ("score/", &["score/al", "score/bob"]),
            ("a\\", &["a\\%", "a\\b"]),
            ("zzz", &[]),
            ("ab", &["ab"]),
            ("%", &[]),
            ("_", &[]),
        ];
        for (prefix, want) in cases {
            assert_eq!(
                keys(&s, "p", prefixed(prefix)).await,
                want,
                "prefix {prefix:?}"
            );
        }
        assert_eq!(keys(&s, "p", prefixed("")).await.len(), 17);
        s.close().await;
    }

    pub async fn namespaces_are_isolated(db: &TestDb) {
        let s = db.open().await;
        set(&s, "karma", "score/bob", json!(3)).await;
        set(&s, "seen", "score/bob", json!("yesterday")).await;
        assert_eq!(get(&s, "karma", "score/bob").await, Some(json!(3)));
        assert_eq!(get(&s, "seen", "score/bob").await, Some(json!("yesterday")));
        assert_eq!(get(&s, "other", "score/bob").await, None);
        assert_eq!(keys(&s, "karma", ListQuery::default()).await, ["score/bob"]);
        assert!(keys(&s, "other", ListQuery::default()).await.is_empty());
        assert_eq!(incr(&s, "karma", "score/bob", 1).await, 4);
        assert_eq!(get(&s, "seen", "score/bob").await, Some(json!("yesterday")));
        assert_eq!(s.delete("seen", &key("score/bob")).await, Ok(true));
        assert_eq!(get(&s, "karma", "score/bob").await, Some(json!(4)));
        s.close().await;
    }

    pub async fn every_error_kind(db: &TestDb) {
        let s = db.open().await;
        // Keys and prefixes are checked when they are made, before any call.
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let cases = [
            (Key::new(long_key.clone()).err(), KvErrorKind::TooLarge),
            (Key::new("").err(), KvErrorKind::BadRequest),
            (Key::new("nul\u{0}").err(), KvErrorKind::BadRequest),
            (KeyPrefix::new(long_key).err(), KvErrorKind::TooLarge),
            (KeyPrefix::new("nul\u{0}").err(), KvErrorKind::BadRequest),
        ];
        for (error, want) in cases {
            let error = error.expect("refused");
            assert_eq!(error.kind, want, "{error}");
            assert!(!error.message.is_empty());
        }
        let big = json!("v".repeat(MAX_VALUE_BYTES));
        let error = s.set("p", &key("k"), &big).await.expect_err("too large");
        assert_eq!(error.kind, KvErrorKind::TooLarge, "{error}");
        set(&s, "p", "text", json!("five")).await;
        let error = s
            .incr("p", &key("text"), 1)
            .await
            .expect_err("not an integer");
        assert_eq!(error.kind, KvErrorKind::BadRequest, "{error}");
        // Refused writes left nothing behind.
        assert_eq!(keys(&s, "p", ListQuery::default()).await, ["text"]);
        s.close().await;
        // A closed storage answers `Unavailable` to every call, not a panic or a hang.
        let k = key("k");
        let results = [
            s.get("p", &k).await.err(),
            s.set("p", &k, &json!(1)).await.err(),
            s.delete("p", &k).await.err(),
            s.incr("p", &k, 1).await.err(),
            s.list("p", &ListQuery::default()).await.err(),
        ];
        for error in results {
            let error = error.expect("refused after close");
            assert_eq!(error.kind, KvErrorKind::Unavailable, "{error}");
            assert_eq!(error.message, "storage is unavailable; try again later");
        }
        assert!(
            !s.is_down(),
            "a closed storage is not a database that is down"
        );
    }

    pub async fn size_limits_are_exact(db: &TestDb) {
        let s = db.open().await;
        let longest = "é".repeat(MAX_KEY_BYTES / 2);
        assert_eq!(longest.len(), MAX_KEY_BYTES);
        // A string of n bytes is n + 2 bytes of JSON.
        let value = json!("v".repeat(MAX_VALUE_BYTES - 2));
        set(&s, "p", &longest, value.clone()).await;
        assert_eq!(get(&s, "p", &longest).await, Some(value));
        let error = Key::new(format!("{longest}x")).expect_err("a byte too long");
        assert_eq!(error.kind, KvErrorKind::TooLarge, "{error}");
        let over = json!("v".repeat(MAX_VALUE_BYTES - 1));
        let error = s.set("p", &key("k"), &over).await.expect_err("too large");
        assert_eq!(error.kind, KvErrorKind::TooLarge, "{error}");
        s.close().await;
    }

    pub async fn concurrent_incr_adds_up(db: &TestDb) {
        const TASKS: usize = 3;
        const EACH: usize = 200;
        let s = db.open().await;
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut seen = Vec::with_capacity(EACH);
                for _ in 0..EACH {
                    seen.push(incr(&s, "p", "hits", 1).await);
                }
                seen
            }));
        }
        let mut all = Vec::new();
        for handle in handles {
            let seen = tokio::time::timeout(Duration::from_secs(120), handle)
                .await
                .expect("incr tasks finish within 2 minutes")
                .expect("task did not panic");
            all.extend(seen);
        }
        let total = (TASKS * EACH) as i64;
        assert_eq!(get(&s, "p", "hits").await, Some(json!(total)));
        // Each increment saw its own result: no two read the same old value.
        all.sort_unstable();
        assert_eq!(all, (1..=total).collect::<Vec<_>>());
        s.close().await;
    }

    pub async fn writes_survive_reopening(db: &TestDb) {
        let s = db.open().await;
        set(&s, "p", "kept", json!({"a": 1})).await;
        assert_eq!(incr(&s, "p", "n", 5).await, 5);
        drop(s);
        let s = db.open().await;
        assert_eq!(get(&s, "p", "kept").await, Some(json!({"a": 1})));
        assert_eq!(get(&s, "p", "n").await, Some(json!(5)));
        s.close().await;
        let s = db.open().await;
        assert_eq!(get(&s, "p", "n").await, Some(json!(5)));
        s.close().await;
    }

    pub async fn migrations_apply_to_an_empty_database_once(db: &TestDb) {
        let first = Storage::migrate(&db.url).await.expect("first migrate");
        assert_eq!(first.already_applied, 0);
        let versions: Vec<i64> = first.applied.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1]);
        assert_eq!(first.applied[0].description, "kv");
        assert!(first.to_string().contains("applied 1 migration"), "{first}");
        assert!(!first.database.is_empty());
        let second = Storage::migrate(&db.url).await.expect("second migrate");
        assert!(second.applied.is_empty(), "{second:?}");
        assert_eq!(second.already_applied, 1);
        assert!(second.to_string().contains("up to date"), "{second}");
        // And the schema works.
        let s = db.open().await;
        set(&s, "p", "k", json!(1)).await;
        s.close().await;
    }

    pub async fn lazy_open_migrates_on_first_call(db: &TestDb) {
        let s = Storage::open_lazy(&db.url).expect("open lazily");
        assert_eq!(get(&s, "p", "k").await, None);
        set(&s, "p", "k", json!(1)).await;
        s.close().await;
        let report = Storage::migrate(&db.url).await.expect("migrate");
        assert!(
            report.applied.is_empty(),
            "the first call migrated: {report:?}"
        );
    }

    /// The original's tables, exactly as SQLAlchemy created them (column names and types).
    const ORIGINAL_SCHEMA: &str = "
        CREATE TABLE karma (\"user\" VARCHAR NOT NULL, kcount INTEGER, PRIMARY KEY (\"user\"));
        CREATE TABLE karmastats (
            id INTEGER NOT NULL, giver VARCHAR, receiver VARCHAR, kcount INTEGER,
            datetime TIMESTAMP, PRIMARY KEY (id));
    ";

    pub async fn import_from_the_original_schema(db: &TestDb) {
        let source = db.sibling().await;
        source.exec(ORIGINAL_SCHEMA).await;
        source
            .exec(
                "INSERT INTO karma (\"user\", kcount) VALUES
                    ('bob', 10), ('alice', -3), ('Carol', 2), (' carol ', 1), ('zero', 0),
                    ('nullcount', NULL), ('   ', 4), ('c++', 7);
                 INSERT INTO karmastats (id, giver, receiver, kcount, datetime) VALUES
                    (1, 'alice', 'bob', 1, '2018-01-01 10:00:00'),
                    (2, 'alice', 'bob', 1, '2018-01-01 11:00:00'),
                    (3, 'bob', 'alice', -1, '2018-01-02 10:00:00'),
                    (4, 'bob', 'dave', 5, '2018-01-03 10:00:00'),
                    (5, 'bob', 'DAVE', -1, '2018-01-03 11:00:00'),
                    (6, 'bob', NULL, 9, '2018-01-03 12:00:00'),
                    (7, 'bob', 'carol', 3, NULL);",
            )
            .await;
        let s = db.open().await;
        // A stale score is overwritten; other keys and namespaces are left alone.
        set(&s, "karma", "score/bob", json!(999)).await;
        set(&s, "karma", "settings", json!({"keep": true})).await;
        set(&s, "other", "score/bob", json!("untouched")).await;

        let want = [
            ("score/alice", -4),
            ("score/bob", 12),
            ("score/c++", 7),
            ("score/carol", 6),
            ("score/dave", 4),
            ("score/nullcount", 0),
            ("score/zero", 0),
        ];
        for round in 0..2 {
            let report = import_hamper(&source.url, &s).await.expect("import");
            assert_eq!(report.names, want.len(), "round {round}: {report:?}");
            assert_eq!(report.karma_rows, 8);
            assert_eq!(
                report.karmastats_rows, 6,
                "the row without a receiver is not read"
            );
            assert!(report.karma_present && report.karmastats_present);
            assert_eq!(report.skipped, ["   "]);
            assert!(report.to_string().contains("7 name(s)"), "{report}");
            for (key, total) in want {
                assert_eq!(get(&s, "karma", key).await, Some(json!(total)), "{key}");
            }
            let listed = keys(&s, "karma", prefixed("score/")).await;
            assert_eq!(listed, want.map(|(k, _)| k));
        }
        assert_eq!(
            get(&s, "karma", "settings").await,
            Some(json!({"keep": true}))
        );
        assert_eq!(
            get(&s, "other", "score/bob").await,
            Some(json!("untouched"))
        );
        // The karma plugin's top list is a value-ordered list of this prefix.
        assert_eq!(
            keys(
                &s,
                "karma",
                ListQuery {
                    order: ListOrder::ValueDesc,
                    limit: 2,
                    ..prefixed("score/")
                }
            )
            .await,
            ["score/bob", "score/c++"]
        );
        s.close().await;
        source.cleanup().await;
    }

    pub async fn import_without_karmastats(db: &TestDb) {
        let source = db.sibling().await;
        source
            .exec(
                "CREATE TABLE karma (\"user\" VARCHAR NOT NULL, kcount INTEGER, PRIMARY KEY (\"user\"));
                 INSERT INTO karma (\"user\", kcount) VALUES ('bob', 3), ('eve', -1);",
            )
            .await;
        let s = db.open().await;
        let report = import_hamper(&source.url, &s).await.expect("import");
        assert_eq!(report.names, 2);
        assert!(report.karma_present && !report.karmastats_present);
        assert_eq!(report.karmastats_rows, 0);
        assert!(
            report.to_string().contains("no karmastats table"),
            "{report}"
        );
        assert_eq!(get(&s, "karma", "score/bob").await, Some(json!(3)));
        assert_eq!(get(&s, "karma", "score/eve").await, Some(json!(-1)));
        s.close().await;
        source.cleanup().await;
    }

    pub async fn import_refuses_a_database_without_karma(db: &TestDb) {
        let source = db.sibling().await;
        source
            .exec("CREATE TABLE quotes (id INTEGER PRIMARY KEY, text VARCHAR);")
            .await;
        let s = db.open().await;
        let error = import_hamper(&source.url, &s)
            .await
            .expect_err("not hamper's");
        assert!(
            matches!(error, StorageError::NotHamperDatabase { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("karma"), "{error}");
        s.close().await;
        source.cleanup().await;
    }
}
