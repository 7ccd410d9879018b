//! The fuzz targets' inputs kept in the repository, run by `cargo test` too: every seed of
//! `fuzz/corpus/<target>/` and every input that once crashed a target
//! (`fuzz/regressions/<target>/`), so a crash found by fuzzing stays a regression test.

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

#[test]
fn unpack_layer() {
    run("unpack_layer", crate::agent::fuzz::unpack_layer);
}

#[test]
fn oci_manifest() {
    run("oci_manifest", crate::agent::fuzz::oci_manifest);
}

#[test]
fn openapi_request() {
    run("openapi_request", crate::emulator::fuzz::request);
}
