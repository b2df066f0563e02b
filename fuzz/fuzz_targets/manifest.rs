//! The manifest (META JSON) layer: first byte picks a sample file, the rest
//! is manifest JSON, parsed alone and as that file's META chunk.
#![no_main]

#[path = "../../crates/raiiaf/tests/fuzz_harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::manifest(data));
