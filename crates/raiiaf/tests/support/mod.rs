//! Helpers shared by the integration tests (`mod support;`) and by the fuzz
//! harness (`fuzz_harness/mod.rs`, which the fuzz targets `#[path]`-include).
//! A folder, not `tests/support.rs`: cargo would build that as a test of its own.
#![allow(dead_code)]

/// `n` float32 values in [-2, 2] (xorshift32), as little-endian bytes: the same
/// bytes for the same seed on every machine.
pub fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .flat_map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            ((s as f32 / u32::MAX as f32) * 4.0 - 2.0).to_le_bytes()
        })
        .collect()
}
