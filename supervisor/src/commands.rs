//! The command table: which plugin owns each command name.
//!
//! A name (or alias) belongs to the first plugin that claims it and stays that plugin's across
//! its restarts, so a restart never lets another plugin steal a command. A second claim is
//! refused for the second plugin with a warning that names both. Matching is case-insensitive.

use std::collections::HashMap;

use hamper_protocol::{CommandSpec, PluginHello, Rejection};

/// Who owns a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The supervisor itself.
    Builtin,
    /// The plugin at this index.
    Plugin(usize),
}

#[derive(Debug, Clone)]
struct Entry {
    owner: Owner,
    canonical: String,
}

/// Every accepted command, by lowercased name and alias.
#[derive(Debug, Default)]
pub struct CommandTable {
    names: HashMap<String, Entry>,
    specs: HashMap<String, (Owner, CommandSpec)>,
}

/// The outcome of registering a plugin's manifest.
#[derive(Debug, Default, PartialEq)]
pub struct Registration {
    /// Canonical names accepted.
    pub accepted: Vec<String>,
    /// What was refused.
    pub rejected: Vec<Rejection>,
}

impl CommandTable {
    /// Adds the supervisor's own commands.
    pub fn add_builtin(&mut self, spec: CommandSpec) {
        let key = spec.name.to_lowercase();
        self.names.insert(
            key.clone(),
            Entry {
                owner: Owner::Builtin,
                canonical: key.clone(),
            },
        );
        self.specs.insert(key, (Owner::Builtin, spec));
    }

    /// Registers the commands of plugin `index` (named `name`) from its hello, replacing what it
    /// registered before. `owner_name` names an owner for warnings.
    pub fn register(
        &mut self,
        index: usize,
        name: &str,
        hello: &PluginHello,
        owner_name: impl Fn(Owner) -> String,
    ) -> Registration {
        let me = Owner::Plugin(index);
        self.names.retain(|_, e| e.owner != me);
        self.specs.retain(|_, (o, _)| *o != me);
        let mut out = Registration::default();
        for spec in &hello.commands {
            let canonical = spec.name.trim().to_lowercase();
            if let Some(reason) = invalid_name(&canonical) {
                out.rejected.push(reject("command", &spec.name, &reason));
                continue;
            }
            if let Some(other) = self.names.get(&canonical) {
                let other = owner_name(other.owner);
                tracing::warn!(plugin = %name, command = %canonical, owner = %other, "command already claimed by another plugin; refused for this one");
                out.rejected.push(reject(
                    "command",
                    &spec.name,
                    &format!("`{canonical}` is already claimed by plugin `{other}`"),
                ));
                continue;
            }
            self.names.insert(
                canonical.clone(),
                Entry {
                    owner: me,
                    canonical: canonical.clone(),
                },
            );
            let mut accepted_spec = spec.clone();
            accepted_spec.name = canonical.clone();
            let mut aliases = Vec::new();
            for alias in &spec.aliases {
                let a = alias.trim().to_lowercase();
                if let Some(reason) = invalid_name(&a) {
                    out.rejected.push(reject("alias", alias, &reason));
                    continue;
                }
                if let Some(other) = self.names.get(&a) {
                    let other = owner_name(other.owner);
                    tracing::warn!(plugin = %name, alias = %a, owner = %other, "alias already claimed; refused");
                    out.rejected.push(reject(
                        "alias",
                        alias,
                        &format!("`{a}` is already claimed by plugin `{other}`"),
                    ));
                    continue;
                }
                self.names.insert(
                    a.clone(),
                    Entry {
                        owner: me,
                        canonical: canonical.clone(),
                    },
                );
                aliases.push(a);
            }
            accepted_spec.aliases = aliases;
            self.specs.insert(canonical.clone(), (me, accepted_spec));
            out.accepted.push(canonical);
        }
        out
    }

    /// Releases every name of plugin `index` (it was removed from the config).
    pub fn release(&mut self, index: usize) {
        let me = Owner::Plugin(index);
        self.names.retain(|_, e| e.owner != me);
        self.specs.retain(|_, (o, _)| *o != me);
    }

    /// Hands every name of plugin `from` to plugin `to` (the same plugin, started anew in
    /// another slot by a reload), so that its commands wait for the new process rather than
    /// being unknown until it registers.
    pub fn reassign(&mut self, from: usize, to: usize) {
        let (from, to) = (Owner::Plugin(from), Owner::Plugin(to));
        for entry in self.names.values_mut().filter(|e| e.owner == from) {
            entry.owner = to;
        }
        for (owner, _) in self.specs.values_mut().filter(|(o, _)| *o == from) {
            *owner = to;
        }
    }

    /// Finds the command named by the first word of `text`, with the rest as arguments.
    pub fn lookup<'a>(&self, text: &'a str) -> Option<Match<'a>> {
        let text = text.trim_start();
        let (word, args) = match text.find(char::is_whitespace) {
            Some(i) => (&text[..i], text[i..].trim()),
            None => (text, ""),
        };
        let invoked = word.to_lowercase();
        let entry = self.names.get(&invoked)?;
        let (_, spec) = self.specs.get(&entry.canonical)?;
        Some(Match {
            owner: entry.owner,
            spec: spec.clone(),
            invoked_as: invoked,
            args,
        })
    }

    /// The accepted commands of one owner, sorted by name.
    pub fn commands_of(&self, owner: Owner) -> Vec<CommandSpec> {
        let mut specs: Vec<CommandSpec> = self
            .specs
            .values()
            .filter(|(o, _)| *o == owner)
            .map(|(_, s)| s.clone())
            .collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }
}

/// A command found in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    /// Who owns it.
    pub owner: Owner,
    /// Its accepted spec.
    pub spec: CommandSpec,
    /// The name as typed, lowercased.
    pub invoked_as: String,
    /// The rest of the line, trimmed.
    pub args: &'a str,
}

fn invalid_name(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("a command name may not be empty".into())
    } else if name.len() > 32 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(
            "a command name is one word of at most 32 characters without control characters".into(),
        )
    } else {
        None
    }
}

fn reject(kind: &str, name: &str, reason: &str) -> Rejection {
    Rejection {
        kind: kind.into(),
        name: name.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(cmds: &[(&str, &[&str])]) -> PluginHello {
        PluginHello {
            commands: cmds
                .iter()
                .map(|(n, aliases)| {
                    let mut spec = CommandSpec::new(*n, "help");
                    spec.aliases = aliases.iter().map(|a| a.to_string()).collect();
                    spec
                })
                .collect(),
            ..PluginHello::default()
        }
    }

    fn names(o: Owner) -> String {
        match o {
            Owner::Builtin => "hamper".into(),
            Owner::Plugin(i) => format!("p{i}"),
        }
    }

    #[test]
    fn a_second_claim_is_refused_naming_the_owner() {
        let mut t = CommandTable::default();
        let first = t.register(0, "p0", &hello(&[("karma", &["score"])]), names);
        assert_eq!(first.accepted, ["karma"]);
        let second = t.register(
            1,
            "p1",
            &hello(&[("Karma", &[]), ("top", &["score"])]),
            names,
        );
        assert_eq!(second.accepted, ["top"]);
        assert_eq!(second.rejected.len(), 2);
        assert!(second.rejected[0].reason.contains("p0"));
        assert_eq!(second.rejected[1].kind, "alias");
        assert_eq!(
            t.lookup("SCORE bob").map(|m| m.owner),
            Some(Owner::Plugin(0))
        );
    }

    #[test]
    fn a_restart_keeps_and_refreshes_claims() {
        let mut t = CommandTable::default();
        t.register(0, "p0", &hello(&[("a", &[]), ("b", &[])]), names);
        let again = t.register(0, "p0", &hello(&[("a", &[])]), names);
        assert_eq!(again.accepted, ["a"]);
        assert!(t.lookup("b").is_none(), "a dropped command is released");
        assert_eq!(
            t.register(1, "p1", &hello(&[("b", &[])]), names).accepted,
            ["b"]
        );
    }

    #[test]
    fn lookup_splits_args() {
        let mut t = CommandTable::default();
        t.add_builtin(CommandSpec::new("plugins", "list plugins"));
        t.register(0, "p0", &hello(&[("karma", &["score"])]), names);
        let cases = [
            ("karma", Some(("karma", ""))),
            ("karma   bob  ", Some(("karma", "bob"))),
            ("score --top", Some(("score", "--top"))),
            ("  karma\tx y", Some(("karma", "x y"))),
            ("karmas", None),
            ("", None),
            ("plugins", Some(("plugins", ""))),
        ];
        for (text, want) in cases {
            let got = t.lookup(text).map(|m| (m.invoked_as, m.args.to_string()));
            assert_eq!(
                got,
                want.map(|(a, b)| (a.to_string(), b.to_string())),
                "{text:?}"
            );
        }
        assert_eq!(t.lookup("plugins").map(|m| m.owner), Some(Owner::Builtin));
    }

    #[test]
    fn released_names_are_free_and_reassigned_ones_follow_the_plugin() {
        let mut t = CommandTable::default();
        t.register(0, "p0", &hello(&[("karma", &["score"])]), names);
        t.register(1, "p1", &hello(&[("echo", &[])]), names);
        t.reassign(0, 2);
        assert_eq!(t.lookup("score").map(|m| m.owner), Some(Owner::Plugin(2)));
        assert_eq!(t.commands_of(Owner::Plugin(2)).len(), 1);
        assert!(t.commands_of(Owner::Plugin(0)).is_empty());
        t.release(1);
        assert!(t.lookup("echo").is_none());
        assert_eq!(
            t.register(3, "p3", &hello(&[("echo", &[])]), names)
                .accepted,
            ["echo"]
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let mut t = CommandTable::default();
        let r = t.register(
            0,
            "p0",
            &hello(&[("", &[]), ("two words", &[]), ("ok", &["bad\u{0}"])]),
            names,
        );
        assert_eq!(r.accepted, ["ok"]);
        assert_eq!(r.rejected.len(), 3);
    }
}
