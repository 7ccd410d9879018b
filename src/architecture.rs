//! The rooms and arrows of DESIGN.md, enforced: a test reads every source file under `src/`
//! and fails when a room imports one it may not.
//!
//! The table [`ALLOWED`] is the picture of DESIGN.md in code. Test code (`tests.rs`,
//! `*_tests.rs`, and what follows a `#[cfg(test)]` module in a file) is not held to it: a
//! client's tests may start the emulator, for example.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Modules any room may use, which themselves use no room (only each other: settings are
/// checked with the quantity parser).
const LEAVES: &[&str] = &[
    "config",
    "election",
    "expiring",
    "https",
    "quantity",
    "reference",
];

/// Each room, and the rooms it may import (leaves aside).
const ALLOWED: &[(&str, &[&str])] = &[
    // The one edge: wires everything.
    (
        "cli",
        &[
            "agent",
            "eci",
            "emulator",
            "imagecache",
            "kubelet",
            "metrics",
            "node",
            "pods",
            "profile",
        ],
    ),
    ("main", &["cli"]),
    ("node", &[]),
    ("pods", &["imagecache", "eci", "metrics", "profile"]),
    // The eci-profile and its webhook: leaves only.
    ("profile", &[]),
    ("imagecache", &["eci"]),
    ("kubelet", &["pods", "eci"]),
    ("metrics", &["eci", "imagecache"]),
    ("eci", &[]),
    // The stand-in for the cloud: it verifies with the client's own signing and speaks the
    // client's wire types, and drives the agent.
    ("emulator", &["agent", "eci"]),
    ("agent", &[]),
];

/// Root-level items that are not rooms (free functions of `lib.rs`).
const ROOT_ITEMS: &[&str] = &["error_chain"];

/// The room a file under `src/` belongs to, and its module depth (`pods/pass.rs` is 2,
/// `pods/mod.rs` is 1).
fn room_of(relative: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let first = parts.first()?;
    let room = first.strip_suffix(".rs").unwrap_or(first).to_owned();
    if matches!(
        room.as_str(),
        "lib" | "architecture" | "readme_paths" | "fuzz_inputs"
    ) {
        return None;
    }
    let depth = if parts.last().is_some_and(|l| l == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((room, depth))
}

/// Whether a file holds only tests.
fn is_test_file(relative: &Path) -> bool {
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || relative.iter().any(|c| c == "tests")
}

/// The code of a file without its test module and comments.
fn shipped_code(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        code.push_str(&without_strings_and_comment(line));
        code.push('\n');
    }
    code
}

/// A line with the text of its string literals blanked and its `//` comment cut, so neither
/// a `"http://…"` hides the code after it nor a `"crate::x"` in a message counts as an import.
fn without_strings_and_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            // A char literal `'"'` is not the start of a string.
            '\'' if chars.peek() == Some(&'"') => {
                chars.next();
                out.push_str("'_");
            }
            '/' if chars.peek() == Some(&'/') => break,
            c => out.push(c),
        }
    }
    out
}

/// The root-level names (`crate::X`, or `super::…::X` climbing to the root) that `code`, a
/// module at `depth`, refers to.
fn root_names(code: &str, depth: usize) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let preceded_by_ident =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !preceded_by_ident && rest.starts_with("crate::") {
            collect_after(&rest["crate::".len()..], &mut names);
            i += "crate::".len();
            continue;
        }
        if !preceded_by_ident && rest.starts_with("super::") {
            let mut climbed = 0;
            let mut tail = rest;
            while let Some(after) = tail.strip_prefix("super::") {
                climbed += 1;
                tail = after;
            }
            if climbed >= depth && depth > 0 {
                collect_after(tail, &mut names);
            }
            i += rest.len() - tail.len();
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    names
}

/// The first identifier of `path`, or of each item of a `{…}` group.
fn collect_after(path: &str, names: &mut BTreeSet<String>) {
    let path = path.trim_start();
    if let Some(group) = path.strip_prefix('{') {
        let mut level = 0;
        let mut item_start = true;
        for (index, c) in group.char_indices() {
            match c {
                '{' => level += 1,
                '}' if level == 0 => break,
                '}' => level -= 1,
                ',' if level == 0 => item_start = true,
                c if item_start && !c.is_whitespace() => {
                    item_start = false;
                    if level == 0 {
                        let ident = leading_ident(&group[index..]);
                        if !ident.is_empty() && ident != "self" {
                            names.insert(ident.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
    } else if path.starts_with('*') {
        // A glob of the crate root hides which rooms it reaches: never allowed.
        names.insert("*".to_owned());
    } else {
        let ident = leading_ident(path);
        if !ident.is_empty() {
            names.insert(ident.to_owned());
        }
    }
}

fn leading_ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every room → the rooms and leaves its shipped code names, with one file that does.
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rooms: BTreeSet<&str> = ALLOWED.iter().map(|(room, _)| *room).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
        let Some((room, depth)) = room_of(&relative) else {
            continue;
        };
        if is_test_file(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let entry = graph.entry(room.clone()).or_default();
        let code = shipped_code(&text);
        // `use crate as c;` would let `c::emulator` past the scan.
        let aliased = code.contains("crate as ");
        for name in root_names(&code, depth)
            .into_iter()
            .chain(aliased.then(|| "crate as".to_owned()))
        {
            if name != room
                && (rooms.contains(name.as_str())
                    || LEAVES.contains(&name.as_str())
                    || name == "*"
                    || name == "crate as")
            {
                entry.entry(name).or_insert(relative.display().to_string());
            }
        }
    }
    graph
}

#[test]
fn every_module_of_the_crate_is_a_room_or_a_leaf() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let known: BTreeSet<&str> = ALLOWED
        .iter()
        .map(|(room, _)| *room)
        .chain(LEAVES.iter().copied())
        .chain(["architecture", "fuzz_inputs", "readme_paths"])
        .collect();
    for line in lib.lines() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
        else {
            continue;
        };
        let name = name.trim_end_matches(';').trim();
        assert!(
            known.contains(name),
            "src/lib.rs declares `{name}`, which is neither a room nor a leaf of the architecture table: add it to src/architecture.rs and DESIGN.md"
        );
    }
    for item in ROOT_ITEMS {
        assert!(
            lib.contains(&format!("fn {item}")),
            "{item} is gone from lib.rs"
        );
    }
}

#[test]
fn rooms_import_only_what_design_md_allows() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    let graph = imports();
    assert!(
        graph.contains_key("pods") && graph.contains_key("cli"),
        "the scan found no rooms: {graph:?}"
    );
    for (room, targets) in &graph {
        for (target, file) in targets {
            let ok = if LEAVES.contains(&room.as_str()) {
                LEAVES.contains(&target.as_str())
            } else {
                LEAVES.contains(&target.as_str())
                    || allowed
                        .get(room.as_str())
                        .is_some_and(|a| a.contains(&target.as_str()))
            };
            if !ok {
                violations.push(format!("{room} → {target} (src/{file})"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that DESIGN.md's arrows forbid:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn rooms_import_each_other_in_no_circle() {
    let graph = imports();
    // Depth-first search for a back edge.
    fn visit(
        room: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|r| r == room) {
            let mut circle = path[start..].to_vec();
            circle.push(room.to_owned());
            return Some(circle);
        }
        if done.contains(room) {
            return None;
        }
        path.push(room.to_owned());
        for target in graph.get(room).into_iter().flat_map(|t| t.keys()) {
            if let Some(circle) = visit(target, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(room.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for room in graph.keys() {
        if let Some(circle) = visit(room, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "rooms import each other in a circle: {}",
                circle.join(" → ")
            );
        }
    }
}

#[test]
fn the_scanner_sees_every_spelling_of_an_import() {
    let code = shipped_code(
        "use crate::{emulator::Handle, eci::{self, Tag}};\n\
         use crate::agent;\n\
         let x = crate::metrics::Metrics::default(); // crate::kubelet in a comment\n\
         use super::super::pods::x;\n\
         #[cfg(test)]\nmod tests { use crate::node; }\n",
    );
    let names = root_names(&code, 2);
    let expected: BTreeSet<String> = ["agent", "eci", "emulator", "metrics", "pods"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
    // A URL in a string does not hide the code after it; an import in a message is no import.
    let code = shipped_code(
        "let u = \"http://x\"; use crate::kubelet;\nlet m = \"see crate::node\"; let q = '\"';\n",
    );
    let names = root_names(&code, 1);
    assert_eq!(names, BTreeSet::from(["kubelet".to_owned()]), "{code}");
    assert_eq!(
        root_names("use crate::*;", 1),
        BTreeSet::from(["*".to_owned()])
    );
    // One `super` from depth 2 stays inside the room.
    assert!(root_names("use super::status;", 2).is_empty());
    assert_eq!(
        room_of(Path::new("pods/mod.rs")),
        Some(("pods".to_owned(), 1))
    );
    assert_eq!(
        room_of(Path::new("config.rs")),
        Some(("config".to_owned(), 1))
    );
}
