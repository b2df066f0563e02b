//! Build script. Does nothing unless the optional `torch` feature is on; then it
//! records which torch the extension is linked against, so the Python package can
//! refuse, with a clear message, to run it under another torch (whose C++ ABI differs).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    // torch-sys (links = "tch") publishes the libtorch library folder it linked:
    // <site-packages>/torch/lib when built with LIBTORCH_USE_PYTORCH=1.
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    let version_py = Path::new(&lib).join("..").join("version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    let version = std::fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let value = line
                    .strip_prefix("__version__")?
                    .trim_start()
                    .strip_prefix('=')?
                    .trim();
                Some(value.trim_matches(|c| c == '\'' || c == '"').to_owned())
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "the torch feature needs libtorch from a Python torch install (LIBTORCH_USE_PYTORCH=1); \
                 no torch/version.py next to {lib:?}"
            )
        });
    println!("cargo:rustc-env=RAIIAF_LINKED_TORCH={version}");
}
