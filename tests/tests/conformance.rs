//! hamper's IRC parsing and building (irc-proto's types behind `hamper::irc::message`) and its
//! hostmask matching against the public ircdocs parser-test vectors in
//! `../shared/conformance/ircdocs-parser-tests/`.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;

use hamper::irc::message::{build, parse, source_parts, Command, Prefix};
use hamper::mask;
use serde::Deserialize;

fn vectors<T: for<'de> Deserialize<'de>>(file: &str) -> T {
    let path = hamper_tests::shared_dir()
        .join("conformance/ircdocs-parser-tests")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the conformance vectors are missing ({}: {e}); they live in ../shared beside the project",
            path.display()
        )
    });
    serde_yaml_ng::from_str(&text).expect("vectors parse")
}

#[derive(Deserialize)]
struct SplitFile {
    tests: Vec<SplitCase>,
}

#[derive(Deserialize)]
struct SplitCase {
    input: String,
    atoms: Atoms,
}

#[derive(Deserialize, Default)]
struct Atoms {
    #[serde(default)]
    tags: BTreeMap<String, Option<String>>,
    #[serde(default)]
    source: Option<String>,
    verb: String,
    #[serde(default)]
    params: Vec<String>,
}

/// The verb and parameters, typed the way irc-proto types them: a vector passes when the
/// line splits into the expected atoms, which then make the same [`Command`].
fn command(atoms: &Atoms) -> Command {
    let params = atoms.params.iter().map(String::as_str).collect();
    Command::new(&atoms.verb, params).expect("the expected atoms make a command")
}

#[test]
fn every_msg_split_vector() {
    let file: SplitFile = vectors("msg-split.yaml");
    assert!(file.tests.len() > 30, "all vectors were read");
    for case in &file.tests {
        let msg = parse(&case.input).unwrap_or_else(|| panic!("no parse for {:?}", case.input));
        let tags: BTreeMap<String, String> = msg
            .tags
            .iter()
            .flatten()
            .map(|t| (t.0.clone(), t.1.clone().unwrap_or_default()))
            .collect();
        let want: BTreeMap<String, String> = case
            .atoms
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        assert_eq!(tags, want, "tags of {:?}", case.input);
        assert_eq!(
            msg.prefix.as_ref().map(Prefix::to_string),
            case.atoms.source,
            "source of {:?}",
            case.input
        );
        assert_eq!(
            msg.command,
            command(&case.atoms),
            "verb and params of {:?}",
            case.input
        );
    }
}

#[derive(Deserialize)]
struct JoinFile {
    tests: Vec<JoinCase>,
}

#[derive(Deserialize)]
struct JoinCase {
    atoms: Atoms,
    matches: Vec<String>,
}

/// `line` without its tags and source, which a client never sends.
fn command_part(line: &str) -> &str {
    let line = match line.strip_prefix('@') {
        Some(rest) => rest.split_once(' ').map_or("", |(_, tail)| tail),
        None => line,
    };
    match line.strip_prefix(':') {
        Some(rest) => rest.split_once(' ').map_or("", |(_, tail)| tail),
        None => line,
    }
}

#[test]
fn every_msg_join_vector_builds_its_command() {
    let file: JoinFile = vectors("msg-join.yaml");
    assert!(file.tests.len() > 15, "all vectors were read");
    for case in &file.tests {
        let params: Vec<&str> = case.atoms.params.iter().map(String::as_str).collect();
        let line = build(&case.atoms.verb, &params)
            .unwrap_or_else(|e| panic!("cannot build {:?} {params:?}: {e}", case.atoms.verb));
        assert!(
            case.matches.iter().any(|m| command_part(m) == line),
            "built {line:?}; expected one of {:?}",
            case.matches
        );
    }
}

#[derive(Deserialize)]
struct UserhostFile {
    tests: Vec<UserhostCase>,
}

#[derive(Deserialize)]
struct UserhostCase {
    source: String,
    atoms: UserhostAtoms,
}

#[derive(Deserialize)]
struct UserhostAtoms {
    nick: Option<String>,
    user: Option<String>,
    host: Option<String>,
}

#[test]
fn every_userhost_split_vector() {
    let file: UserhostFile = vectors("userhost-split.yaml");
    assert!(!file.tests.is_empty());
    for case in &file.tests {
        let prefix = Prefix::new_from_str(&case.source);
        let (nick, user, host) = source_parts(&prefix);
        assert_eq!(
            Some(nick.to_string()),
            case.atoms.nick,
            "nick of {:?}",
            case.source
        );
        assert_eq!(
            user.map(str::to_string),
            case.atoms.user,
            "user of {:?}",
            case.source
        );
        assert_eq!(
            host.map(str::to_string),
            case.atoms.host,
            "host of {:?}",
            case.source
        );
    }
}

#[derive(Deserialize)]
struct MaskFile {
    tests: Vec<MaskCase>,
}

#[derive(Deserialize)]
struct MaskCase {
    mask: String,
    #[serde(default)]
    matches: Vec<String>,
    #[serde(default)]
    fails: Vec<String>,
}

#[test]
fn every_mask_match_vector() {
    let file: MaskFile = vectors("mask-match.yaml");
    assert!(!file.tests.is_empty());
    for case in &file.tests {
        for text in &case.matches {
            assert!(
                mask::matches(&case.mask, text, hamper_protocol::CaseMapping::Rfc1459),
                "{} should match {text}",
                case.mask
            );
        }
        for text in &case.fails {
            assert!(
                !mask::matches(&case.mask, text, hamper_protocol::CaseMapping::Rfc1459),
                "{} should not match {text}",
                case.mask
            );
        }
    }
}
