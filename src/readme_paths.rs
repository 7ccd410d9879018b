//! The README names only files that are in the repository: every backticked path it mentions
//! (under the project's own folders, or a top-level file of the project) exists.

use std::path::Path;

/// Folders and files of the repository a README path starts with.
const ROOTS: &[&str] = &[
    "src/",
    "integration/",
    "scripts/",
    "charts/",
    "examples/",
    "benches/",
    "fuzz/",
    "proto/",
    ".ci/",
    "Dockerfile",
    "Cargo.toml",
    "DESIGN.md",
    "BENCHMARKS.md",
    "RELIABILITY.md",
];

/// The backticked words of `text` that look like paths of the repository.
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|word| {
            // A command line names its path first (`scripts/up.sh --flag`); a path may end in
            // punctuation of the sentence or a `:line`.
            let word = word.split_whitespace().next()?;
            let word = word.split(':').next()?.trim_end_matches(['.', ',', ')']);
            ROOTS
                .iter()
                .any(|root| word.starts_with(root) && !word.contains(['*', '<', '…', '{']))
                .then(|| word.to_owned())
        })
        .collect()
}

#[test]
fn every_path_the_readme_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let named = named_paths(&readme);
    assert!(named.len() > 20, "too few paths found: {named:?}");
    let missing: Vec<&String> = named.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "README.md names paths that do not exist: {missing:?}"
    );
}

#[test]
fn paths_are_found_in_code_spans_and_commands() {
    assert_eq!(
        named_paths("run `scripts/up.sh --purge`, see `src/eci/client.rs:12`, not `eci-vk run`."),
        ["scripts/up.sh", "src/eci/client.rs"]
    );
    // A path that is not there is reported by the test above.
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/nope.rs")
            .exists()
    );
}
