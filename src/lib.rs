//! eci-virtual-kubelet: a Kubernetes virtual node for Alibaba Cloud Elastic Container Instance.
//!
//! Each module is a room of `DESIGN.md` with one job; [`cli`] is the one edge that wires them
//! into a program, and `src/main.rs` only hands it the command line.

pub mod agent;
#[cfg(test)]
mod architecture;
pub mod cli;
pub mod config;
pub mod eci;
pub mod election;
pub mod emulator;
pub mod imagecache;
pub mod kubelet;
pub mod metrics;
pub mod node;
pub mod pods;
pub mod quantity;
#[cfg(test)]
mod readme_paths;
pub mod reference;

/// The fuzz targets' inputs kept in the repository, run by `cargo test` too: every seed of
/// `fuzz/corpus/<target>/` and every input that once crashed a target (`fuzz/regressions/<target>/`),
/// so a crash found by fuzzing stays a regression test.
#[cfg(test)]
mod fuzz_inputs {
    fn inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut found = Vec::new();
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                found.push((path, data));
            }
        }
        found
    }

    fn run(target: &str, entry: fn(&[u8])) {
        let found = inputs(target);
        assert!(!found.is_empty(), "fuzz/corpus/{target} has seeds");
        for (path, data) in found {
            eprintln!("{}", path.display());
            entry(&data);
        }
    }

    #[test]
    fn image_reference() {
        run("image_reference", crate::reference::fuzz::parse);
    }

    #[test]
    fn quantity() {
        run("quantity", crate::quantity::fuzz::parse);
    }

    #[test]
    fn pod_translate() {
        run("pod_translate", crate::pods::fuzz::translate);
    }

    #[test]
    fn imagecache_spec() {
        run("imagecache_spec", crate::imagecache::fuzz::spec);
    }
}

/// An error and its causes on one line (`outer: cause: root cause`), for messages that travel
/// where no `Debug` report is printed: gRPC statuses, events, CLI errors.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
