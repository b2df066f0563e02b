//! Replays every saved fuzz crash input (`tests/data/fuzz-regressions/<target>/`,
//! copied there by dev/fuzz.sh) and every file of the adversarial corpus
//! (`tests/data/adversarial/`) through the fuzz targets' bodies: each must end
//! in an error or a clean read, never a panic.

mod fuzz_harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use raiiaf::format::{Archive, ReadOptions};

fn data_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(sub)
}

/// The regular files directly in `dir` (none if it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs `target` on every file, collecting the names of those that panic.
fn replay(paths: &[PathBuf], target: fn(&[u8])) -> Vec<String> {
    let mut failed = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| target(&bytes))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    failed
}

#[test]
fn fuzz_regressions_never_panic() {
    let root = data_dir("fuzz-regressions");
    let read = files(&root.join("read"));
    let manifest = files(&root.join("manifest"));
    let mut failed = replay(&read, fuzz_harness::read);
    failed.extend(replay(&manifest, fuzz_harness::manifest));
    assert!(failed.is_empty(), "these inputs panic: {failed:#?}");
}

#[test]
fn adversarial_corpus_gives_errors_not_panics() {
    let paths: Vec<PathBuf> = files(&data_dir("adversarial"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "raiiaf"))
        .collect();
    assert!(
        paths.len() >= 40,
        "the adversarial corpus has {} files",
        paths.len()
    );
    let failed = replay(&paths, fuzz_harness::read);
    assert!(failed.is_empty(), "these inputs panic: {failed:#?}");
    // Every file there is hostile: none may read cleanly with verification.
    let accepted: Vec<_> = paths
        .iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            Archive::parse(&bytes, ReadOptions::default())
                .and_then(|a| a.read_all())
                .is_ok()
        })
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

#[test]
fn seed_samples_read_back() {
    for (_, name, bytes) in fuzz_harness::seeds() {
        if name.ends_with(".raiiaf") {
            fuzz_harness::read(&bytes);
        } else {
            fuzz_harness::manifest(&bytes);
        }
    }
}

/// Writes the generated fuzz seeds into `$RAIIAF_FUZZ_SEEDS/<target>/`
/// (dev/fuzz.sh runs this; `cargo test -- --ignored`).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("RAIIAF_FUZZ_SEEDS") else {
        return;
    };
    for (target, name, bytes) in fuzz_harness::seeds() {
        let sub = PathBuf::from(&dir).join(target);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(name), bytes).unwrap();
    }
}
