//! Reading the documentation as test data: the fenced code blocks of a Markdown file, the
//! examples in them (a block whose first line is `# file: NAME` or `// file: NAME`), and the
//! console transcripts that follow them.

use std::path::PathBuf;

use crate::workspace_root;

/// One fenced code block of a Markdown file.
#[derive(Debug, Clone)]
pub struct Block {
    /// The info string after the opening fence, e.g. `json`.
    pub info: String,
    /// The 1-based line of the opening fence, for messages.
    pub line: usize,
    /// The content, with the fence's indentation removed, each line ending in `\n`.
    pub body: String,
}

/// The fenced (```) code blocks of `markdown`, in order.
pub fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, usize, String)> = None;
    for (i, raw) in markdown.lines().enumerate() {
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        match open.as_mut() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((info.trim().to_string(), i + 1, indent, String::new()));
                }
            }
            Some((_, _, fence_indent, body)) => {
                if trimmed == "```" {
                    let (info, line, _, body) = open.take().unwrap();
                    blocks.push(Block { info, line, body });
                } else {
                    body.push_str(&raw[indent.min(*fence_indent)..]);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "a code fence is never closed");
    blocks
}

/// The `docs/` folder.
pub fn docs_dir() -> PathBuf {
    workspace_root().join("docs")
}

/// The text of `docs/NAME`.
pub fn read_doc(name: &str) -> String {
    let path = docs_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The file name an example block declares on its first line (`# file: NAME` or
/// `// file: NAME`), if it is one.
pub fn example_name(block: &Block) -> Option<&str> {
    let first = block.body.lines().next()?;
    first
        .strip_prefix("# file: ")
        .or_else(|| first.strip_prefix("// file: "))
        .map(str::trim)
}

/// The code block of language `info` that declares the example file `name`, and its index
/// among the document's blocks.
pub fn file_block(doc: &str, info: &str, name: &str) -> (usize, Block) {
    let found: Vec<(usize, Block)> = fenced_blocks(doc)
        .into_iter()
        .enumerate()
        .filter(|(_, b)| b.info == info && example_name(b) == Some(name))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one ```{info} block starting with `# file: {name}` (or `// file: {name}`)"
    );
    found.into_iter().next().unwrap()
}

/// A console transcript from the docs: the lines typed (`you> …`) and the lines printed.
pub fn split_transcript(body: &str) -> (String, Vec<String>) {
    let mut input = String::new();
    let mut output = Vec::new();
    for line in body.lines() {
        match line.strip_prefix("you> ") {
            Some(typed) => {
                input.push_str(typed);
                input.push('\n');
            }
            None if line.trim().is_empty() => {}
            None => output.push(line.to_string()),
        }
    }
    (input, output)
}

/// The first ```text block after block number `index`: the example's transcript.
pub fn transcript_after(doc: &str, index: usize) -> (String, Vec<String>) {
    split_transcript(&transcript_block_after(doc, index).body)
}

/// The first ```text block after block number `index`.
pub fn transcript_block_after(doc: &str, index: usize) -> Block {
    fenced_blocks(doc)
        .into_iter()
        .skip(index + 1)
        .find(|b| b.info == "text")
        .expect("a transcript follows the example")
}

/// A transcript as exchanges: each line typed, with the lines printed after it.
pub fn exchanges(body: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in body.lines() {
        match (line.strip_prefix("you> "), out.last_mut()) {
            (Some(typed), _) => out.push((typed.to_string(), Vec::new())),
            (None, _) if line.trim().is_empty() => {}
            (None, Some((_, printed))) => printed.push(line.to_string()),
            (None, None) => panic!("a transcript starts with a printed line: {line}"),
        }
    }
    out
}
