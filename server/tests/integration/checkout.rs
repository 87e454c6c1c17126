//! Tests and fixtures find the checkout at run time. `.ci/run` shares one
//! target directory between clean clones at changing paths, and cargo reuses
//! a test binary built in an earlier clone: a path compiled in with `env!`
//! then points at that clone, whose stale stack env (other passwords,
//! another data directory) once failed 19 integration tests of a landing.

use crate::support::repo_root;
use std::path::Path;

#[test]
fn no_source_compiles_in_the_path_of_its_checkout() {
    // Spelled in two halves, so that this file does not match itself.
    let needle = ["env!(\"CARGO_", "MANIFEST_DIR\")"].concat();
    let mut found = Vec::new();
    for krate in ["model", "domain", "app", "server", "frontend"] {
        rust_files_containing(&repo_root().join(krate), &needle, &mut found);
    }
    assert!(
        found.is_empty(),
        "read CARGO_MANIFEST_DIR at run time (std::env::var: cargo sets it when it runs a test), \
         not with {needle}, in {found:?}"
    );
}

fn rust_files_containing(dir: &Path, needle: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("target" | "node_modules")
            ) {
                rust_files_containing(&path, needle, found);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && std::fs::read_to_string(&path).is_ok_and(|s| s.contains(needle))
        {
            found.push(path.display().to_string());
        }
    }
}
