//! The ACL as a whole: read from the original's JSON shape, checked entry by entry, and asked
//! whether a sender holds a permission in a channel.

use std::collections::BTreeMap;

use hamper_protocol::CaseMapping;
use serde_json::{Map, Value};

use super::pattern::{Pattern, Verdict};
use super::selector::{Member, Selector, Strength};
use crate::chat::Source;
use crate::identity::{Identity, Invalid};

/// One problem in an ACL, named by its path, e.g. `acl.permissions.a@b@c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclProblem {
    /// Where it is: the prefix given to [`Acl::from_json`] and the path inside the ACL.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// A loaded ACL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    groups: Vec<(String, Vec<Member>)>,
    rules: Vec<(Selector, Vec<Pattern>)>,
}

/// What the ACL's two keys hold, for the error when one holds something else.
const SHAPE: &str = "an ACL is {\"groups\": {\"@ops\": [\"$a:alice\", \"bob!*@bob.example\"]}, \"permissions\": {\"#hamper\": [\"karma.*\"], \"@ops\": [\"*\", \"-admin.restart\"]}}";

impl Acl {
    /// Reads an ACL in the original's shape (both keys optional, so `{}` denies everything),
    /// collecting every problem. `prefix` starts each problem's key (`acl`, or the file's path).
    /// On success, also returns the warnings: entries that are valid but weaker than they look,
    /// and rules that can match nobody.
    pub fn from_json(value: &Value, prefix: &str) -> Result<(Acl, Vec<String>), Vec<AclProblem>> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut problem = |key: String, e: Invalid| {
            problems.push(AclProblem {
                key,
                problem: e.problem,
                fix: e.fix,
            })
        };
        let Some(top) = value.as_object() else {
            problem(
                prefix.to_string(),
                Invalid {
                    problem: format!("is {}, not a mapping", kind(value)),
                    fix: SHAPE.into(),
                },
            );
            return Err(problems);
        };
        for key in top.keys().filter(|k| *k != "groups" && *k != "permissions") {
            problem(
                format!("{prefix}.{key}"),
                Invalid {
                    problem: format!("`{key}` is not an ACL key"),
                    fix: format!("an ACL has only `groups` and `permissions`: {SHAPE}"),
                },
            );
        }

        let mut acl = Acl::default();
        for (name, members) in lists(top, "groups", prefix, &mut problem) {
            let key = format!("{prefix}.groups.{name}");
            if !valid_group_name(name) {
                problem(
                    key.clone(),
                    Invalid {
                        problem: format!("`{name}` is not a group name"),
                        fix: format!(
                            "a group name starts with `@` and holds no `@`, `#` or spaces: `@{}`",
                            name.trim_start_matches('@')
                        ),
                    },
                );
            }
            let mut parsed = Vec::new();
            for (i, text) in members {
                match Member::parse(text) {
                    Ok(m) => {
                        if let Some(w) = m.warning() {
                            warnings.push(format!("{key}[{i}]: {w}"));
                        }
                        parsed.push(m);
                    }
                    Err(e) => problem(format!("{key}[{i}]"), e),
                }
            }
            acl.groups.push((name.to_string(), parsed));
        }

        for (text, patterns) in lists(top, "permissions", prefix, &mut problem) {
            let key = format!("{prefix}.permissions.{text}");
            let selector = match Selector::parse(text) {
                Ok(s) => s,
                Err(e) => {
                    problem(key, e);
                    continue;
                }
            };
            if let Some(w) = selector.user.as_ref().and_then(Member::warning) {
                warnings.push(format!("{key}: {w}"));
            }
            if let Some(g) = &selector.group {
                if !acl.groups.iter().any(|(name, _)| name == g) {
                    warnings.push(format!(
                        "{key}: `{g}` is not a group in {prefix}.groups, so this rule matches nobody"
                    ));
                }
            }
            let mut parsed = Vec::new();
            for (i, p) in patterns {
                match Pattern::parse(p) {
                    Ok(p) => parsed.push(p),
                    Err(e) => problem(format!("{key}[{i}]"), e),
                }
            }
            acl.rules.push((selector, parsed));
        }
        if problems.is_empty() {
            Ok((acl, warnings))
        } else {
            Err(problems)
        }
    }

    /// The groups `who` is in, each with how surely.
    pub fn groups_of(&self, who: &Source, mapping: CaseMapping) -> BTreeMap<&str, Strength> {
        let mut out = BTreeMap::new();
        for (name, members) in &self.groups {
            if let Some(s) = members.iter().filter_map(|m| m.matches(who, mapping)).max() {
                out.insert(name.as_str(), s);
            }
        }
        out
    }

    /// Whether `who`, speaking in `channel` (`None` in private), holds `permission`: some rule
    /// that picks the sender surely allows it, and no rule that picks the sender at all denies it.
    /// Nicks and channels compare under the server's `mapping`.
    pub fn allows(
        &self,
        who: &Source,
        channel: Option<&str>,
        permission: &str,
        mapping: CaseMapping,
    ) -> bool {
        let groups = self.groups_of(who, mapping);
        let (mut allow, mut deny) = (false, false);
        for (selector, patterns) in &self.rules {
            let Some(strength) = selector.matches(who, channel, &groups, mapping) else {
                continue;
            };
            for p in patterns {
                match p.verdict(permission) {
                    Some(Verdict::Allow) if strength == Strength::Strong => allow = true,
                    Some(Verdict::Deny) => deny = true,
                    _ => {}
                }
            }
        }
        allow && !deny
    }

    /// The ACL in its JSON shape, for `check-config`.
    pub fn to_json(&self) -> Value {
        fn listing<'a, K: ToString + 'a, V: ToString + 'a>(
            entries: impl Iterator<Item = &'a (K, Vec<V>)>,
        ) -> Map<String, Value> {
            entries
                .map(|(key, items)| {
                    let items = items.iter().map(|i| Value::String(i.to_string()));
                    (key.to_string(), Value::Array(items.collect()))
                })
                .collect()
        }
        serde_json::json!({
            "groups": listing(self.groups.iter()),
            "permissions": listing(self.rules.iter()),
        })
    }
}

/// Who may use a command that names a permission: the owners, and whoever the ACL allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The bot's owners, who hold every permission.
    pub owners: Vec<Identity>,
    /// The ACL, if one is configured; without one, only owners hold permissions.
    pub acl: Option<Acl>,
}

impl Access {
    /// Whether `who` is one of the owners.
    pub fn is_owner(&self, who: &Source, mapping: CaseMapping) -> bool {
        self.owners.iter().any(|o| o.matches(who, mapping))
    }

    /// Whether `who`, speaking in `channel` (`None` in private), holds `permission`.
    pub fn allows(
        &self,
        who: &Source,
        channel: Option<&str>,
        permission: &str,
        mapping: CaseMapping,
    ) -> bool {
        self.is_owner(who, mapping)
            || self
                .acl
                .as_ref()
                .is_some_and(|acl| acl.allows(who, channel, permission, mapping))
    }
}

fn valid_group_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('@')
        && !name[1..]
            .chars()
            .any(|c| c == '@' || c == '#' || c.is_whitespace() || c.is_control())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The entries of `top[key]`, a mapping of lists of strings, reporting whatever is not.
fn lists<'a>(
    top: &'a Map<String, Value>,
    key: &str,
    prefix: &str,
    problem: &mut impl FnMut(String, Invalid),
) -> Vec<(&'a str, Vec<(usize, &'a str)>)> {
    let fix = || format!("`{key}` maps names to lists of strings: {SHAPE}");
    let map = match top.get(key) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            problem(
                format!("{prefix}.{key}"),
                Invalid {
                    problem: format!("is {}, not a mapping", kind(other)),
                    fix: fix(),
                },
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (name, v) in map {
        let items = match v {
            Value::Array(items) => items,
            other => {
                problem(
                    format!("{prefix}.{key}.{name}"),
                    Invalid {
                        problem: format!("is {}, not a list", kind(other)),
                        fix: fix(),
                    },
                );
                continue;
            }
        };
        let mut strings = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => strings.push((i, s.as_str())),
                other => problem(
                    format!("{prefix}.{key}.{name}[{i}]"),
                    Invalid {
                        problem: format!("is {}, not a string", kind(other)),
                        fix: fix(),
                    },
                ),
            }
        }
        out.push((name.as_str(), strings));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RFC: CaseMapping = CaseMapping::Rfc1459;

    fn load(v: Value) -> (Acl, Vec<String>) {
        Acl::from_json(&v, "acl").expect("a valid ACL")
    }

    fn problems(v: Value) -> Vec<AclProblem> {
        Acl::from_json(&v, "acl").expect_err("an invalid ACL")
    }

    /// Someone speaking from a host of their own, known by nick.
    fn nick(n: &str) -> Source {
        Source {
            nick: n.into(),
            user: Some(format!("~{n}")),
            host: Some(format!("{n}.example")),
            account: None,
        }
    }

    /// The original's test ACL (`tests/test_permissions.py`), with each user written as an
    /// explicit `nick:` as hamper asks; the cases below are the original's, unchanged.
    fn original_acl() -> Acl {
        load(json!({
            "groups": {
                "@ops": ["nick:uberj", "nick:mythmon"],
                "@spammers": ["nick:spambot"],
                "@7letters": ["nick:mythmon", "nick:spambot"],
            },
            "permissions": {
                "#channel1": ["figlet", "quote", "-quote.add"],
                "#channel2": ["*", "-figlet"],
                "@ops": ["*"],
                "nick:mythmon": ["quote.*"],
            }
        }))
        .0
    }

    /// The original's `TestACL`, every case (reference §4).
    #[test]
    fn permission_table_from_the_original() {
        let acl = original_acl();
        let cases = [
            // test_channel_star_perms
            ("uberj", "#channel2", "foo", true),
            // test_channel_perms
            ("foobar", "#channel1", "figlet", true),
            ("foobar", "#channel1", "quote", true),
            ("foobar", "#channel1", "quote.add", false),
            ("foobar", "#channel1", "channel.leave", false),
            // test_channel_everything_but_figlet
            ("foobar", "#channel2", "cmd", true),
            ("foobar", "#channel2", "anothercmd", true),
            ("foobar", "#channel2", "figlet", false),
            // test_group_permissions: not even ops can use figlet in #channel2
            ("uberj", "#channel3", "cmd", true),
            ("uberj", "#channel2", "figlet", false),
            // test_user_permission
            ("mythmon", "#channel3", "quote", true),
            ("mythmon", "#channel3", "quote.add", true),
            ("mythmon", "#channel3", "quote.delete", true),
        ];
        for (user, channel, permission, want) in cases {
            assert_eq!(
                acl.allows(&nick(user), Some(channel), permission, RFC),
                want,
                "{user} in {channel}: {permission}"
            );
        }
    }

    /// The original's `TestAddGroups`, every case (reference §4).
    #[test]
    fn groups_table_from_the_original() {
        let acl = original_acl();
        let cases: [(&str, &[&str]); 3] = [
            ("uberj", &["@ops"]),
            ("mythmon", &["@7letters", "@ops"]),
            ("edunham", &[]),
        ];
        for (user, want) in cases {
            let got: Vec<&str> = acl.groups_of(&nick(user), RFC).into_keys().collect();
            assert_eq!(got, want, "{user}");
        }
    }

    /// `ACL('{}')` must not error; with it, nothing is allowed.
    #[test]
    fn an_empty_acl_loads_and_denies_everything() {
        for empty in [
            json!({}),
            json!({"groups": {}, "permissions": {}}),
            json!({"groups": null}),
        ] {
            let (acl, warnings) = load(empty);
            assert!(warnings.is_empty());
            assert!(!acl.allows(&nick("uberj"), Some("#c"), "anything", RFC));
        }
    }

    /// The verbatim original ACL, bare names and all, loads unchanged. A bare name is a nick,
    /// which anyone can take: it still denies, but it no longer grants, and each is warned about.
    #[test]
    fn bare_names_from_an_old_file_deny_but_never_grant() {
        let (acl, warnings) = load(json!({
            "groups": {"@ops": ["uberj", "mythmon"]},
            "permissions": {
                "#channel2": ["*", "-figlet"],
                "@ops": ["*"],
                "mythmon": ["quote.*"],
                "troll": ["-karma"],
            }
        }));
        assert!(!acl.allows(&nick("uberj"), Some("#channel3"), "cmd", RFC));
        assert!(!acl.allows(&nick("mythmon"), Some("#channel3"), "quote.add", RFC));
        assert!(acl.allows(&nick("uberj"), Some("#channel2"), "cmd", RFC));
        assert!(acl.allows(&nick("someone"), Some("#channel2"), "karma", RFC));
        assert!(!acl.allows(&nick("troll"), Some("#channel2"), "karma", RFC));
        for key in [
            "acl.groups.@ops[0]",
            "acl.groups.@ops[1]",
            "acl.permissions.mythmon",
            "acl.permissions.troll",
        ] {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("{key}: ")) && w.contains("never to grant")),
                "{key} in {warnings:#?}"
            );
        }
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
    }

    #[test]
    fn the_original_dist_file_works_unchanged() {
        let (acl, warnings) =
            load(json!({"permissions": {"#channel": ["*"], "#channel2": ["*", "-factoid"]}}));
        assert!(warnings.is_empty(), "{warnings:?}");
        let anyone = nick("anyone");
        assert!(acl.allows(&anyone, Some("#channel"), "factoid", RFC));
        assert!(acl.allows(&anyone, Some("#CHANNEL2"), "quote", RFC));
        assert!(!acl.allows(&anyone, Some("#channel2"), "factoid", RFC));
        assert!(!acl.allows(&anyone, Some("#elsewhere"), "quote", RFC));
        assert!(
            !acl.allows(&anyone, None, "quote", RFC),
            "a private message is in no channel"
        );
    }

    #[test]
    fn identities_grant_only_to_whom_they_name() {
        let (acl, warnings) = load(json!({
            "groups": {"@admins": ["alice!*@alice.example", "$a:bob"]},
            "permissions": {"@admins": ["admin.*"], "$a:carol#ops": ["admin.restart"]}
        }));
        assert!(warnings.is_empty(), "{warnings:?}");
        let alice = nick("alice");
        let spoofer = Source {
            host: Some("evil.example".into()),
            ..nick("alice")
        };
        let bob = Source {
            account: Some("Bob".into()),
            ..nick("robert")
        };
        let carol = Source {
            account: Some("carol".into()),
            ..nick("c")
        };
        assert!(acl.allows(&alice, Some("#x"), "admin.restart", RFC));
        assert!(acl.allows(&alice, None, "admin.disable", RFC));
        assert!(!acl.allows(&spoofer, Some("#x"), "admin.restart", RFC));
        assert!(acl.allows(&bob, Some("#x"), "admin.restart", RFC));
        assert!(
            !acl.allows(&nick("bob"), Some("#x"), "admin.restart", RFC),
            "no account, no match"
        );
        assert!(acl.allows(&carol, Some("#ops"), "admin.restart", RFC));
        assert!(!acl.allows(&carol, Some("#elsewhere"), "admin.restart", RFC));
        assert!(!acl.allows(&carol, Some("#ops"), "admin.disable", RFC));
    }

    #[test]
    fn nicks_and_channels_fold_as_the_server_says() {
        let (acl, _) = load(json!({
            "groups": {"@ops": ["nick:[m]", "*!*@{host}"]},
            "permissions": {"@ops": ["ops"], "#Chan[1]": ["chan"]}
        }));
        let braces = nick("{M}");
        let host = Source {
            host: Some("[HOST]".into()),
            ..nick("x")
        };
        for (mapping, folds) in [(CaseMapping::Rfc1459, true), (CaseMapping::Ascii, false)] {
            assert_eq!(
                acl.allows(&braces, None, "ops", mapping),
                folds,
                "{mapping:?}"
            );
            assert_eq!(
                acl.allows(&host, None, "ops", mapping),
                folds,
                "{mapping:?}"
            );
            assert_eq!(
                acl.allows(&braces, Some("#chan{1}"), "chan", mapping),
                folds
            );
            assert!(acl.allows(&braces, Some("#CHAN[1]"), "chan", mapping));
        }
    }

    #[test]
    fn a_member_both_bare_and_known_is_in_the_group_surely() {
        let (acl, _) = load(json!({
            "groups": {"@ops": ["uberj", "$a:uberj"]},
            "permissions": {"@ops": ["*"]}
        }));
        let by_account = Source {
            account: Some("uberj".into()),
            ..nick("uberj")
        };
        assert!(acl.allows(&by_account, Some("#c"), "cmd", RFC));
        assert!(!acl.allows(&nick("uberj"), Some("#c"), "cmd", RFC));
    }

    #[test]
    fn every_problem_is_named_by_its_path_with_a_fix() {
        let found = problems(json!({
            "groups": {"ops": ["alice"], "@x": ["*", 3, "a!b"], "@y": "bob"},
            "permissions": {"a@b@c": ["x"], "#c": ["quote*", "ok", ""], "@x": "all"},
            "permisions": {}
        }));
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "acl.permisions",
            "acl.groups.ops",
            "acl.groups.@x[0]",
            "acl.groups.@x[1]",
            "acl.groups.@x[2]",
            "acl.groups.@y",
            "acl.permissions.a@b@c",
            "acl.permissions.#c[0]",
            "acl.permissions.#c[2]",
            "acl.permissions.@x",
        ] {
            assert!(keys.contains(&want), "{want} in {keys:?}");
        }
        assert_eq!(found.len(), 10, "{found:#?}");
        assert!(found.iter().all(|p| !p.fix.is_empty()));
        for bad in [json!([]), json!("acl.json"), json!({"groups": []})] {
            assert_eq!(problems(bad).len(), 1);
        }
    }

    #[test]
    fn a_rule_for_a_missing_group_is_warned_about() {
        let (_, warnings) =
            load(json!({"groups": {"@ops": ["$a:a"]}, "permissions": {"@opz": ["*"]}}));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("acl.permissions.@opz: `@opz` is not a group"),
            "{warnings:?}"
        );
    }

    #[test]
    fn owners_hold_every_permission_and_without_an_acl_only_they_do() {
        let owner = nick("alice");
        let access = Access {
            owners: vec![Identity::parse("alice!*@alice.example").expect("mask")],
            acl: None,
        };
        assert!(access.allows(&owner, Some("#c"), "admin.restart", RFC));
        assert!(!access.allows(&nick("bob"), Some("#c"), "admin.restart", RFC));
        let spoofer = Source {
            host: Some("evil.example".into()),
            ..nick("alice")
        };
        assert!(!access.allows(&spoofer, Some("#c"), "admin.restart", RFC));

        let (acl, _) = load(json!({"permissions": {"*": ["*", "-admin.*"], "#c": ["-karma"]}}));
        let access = Access {
            acl: Some(acl),
            ..access
        };
        assert!(
            access.allows(&owner, Some("#c"), "admin.restart", RFC),
            "a deny does not bind owners"
        );
        assert!(access.allows(&owner, Some("#c"), "karma", RFC));
        assert!(!access.allows(&nick("bob"), Some("#c"), "admin.restart", RFC));
        assert!(!access.allows(&nick("bob"), Some("#c"), "karma", RFC));
        assert!(access.allows(&nick("bob"), Some("#d"), "karma", RFC));
    }

    #[test]
    fn to_json_gives_back_the_shape() {
        let v = json!({
            "groups": {"@ops": ["uberj", "$a:x", "a!b@c"]},
            "permissions": {"#c@ops": ["*", "-figlet"], "*": ["help"]}
        });
        let (acl, _) = load(v);
        assert_eq!(
            acl.to_json(),
            json!({
                "groups": {"@ops": ["uberj", "$a:x", "a!b@c"]},
                "permissions": {"@ops#c": ["*", "-figlet"], "*": ["help"]}
            })
        );
    }
}
