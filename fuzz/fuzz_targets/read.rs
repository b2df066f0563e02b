//! The whole reader (header, META, manifest, layout, every codec, hashes)
//! on arbitrary bytes, with hash verification on and off.
#![no_main]

#[path = "../../crates/raiiaf/tests/fuzz_harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::read(data));
