//! hamper's IRC parsing and hostmask matching against the public ircdocs parser-test vectors
//! in `../shared/conformance/ircdocs-parser-tests/`.
// Helpers outside #[test] functions fail the test by panicking, like the tests themselves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;

use hamper::irc::message::{parse, split_source};
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

#[test]
fn every_msg_split_vector() {
    let file: SplitFile = vectors("msg-split.yaml");
    assert!(file.tests.len() > 30, "all vectors were read");
    for case in &file.tests {
        let msg = parse(&case.input).unwrap_or_else(|| panic!("no parse for {:?}", case.input));
        let tags: BTreeMap<String, String> = case
            .atoms
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        assert_eq!(msg.tags, tags, "tags of {:?}", case.input);
        assert_eq!(msg.source, case.atoms.source, "source of {:?}", case.input);
        assert_eq!(msg.verb, case.atoms.verb, "verb of {:?}", case.input);
        assert_eq!(msg.params, case.atoms.params, "params of {:?}", case.input);
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
        let (nick, user, host) = split_source(&case.source);
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
