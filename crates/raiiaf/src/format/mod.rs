//! The `.raiiaf` container: header, chunks, manifest. Pure Rust, no Python.
//! FORMAT.md at the repository root is the specification this implements.
//!
//! ```text
//! header (33 bytes) | LATN… | DATA? | ENVC? | META (zstd: inner header + manifest JSON)
//! ```

pub mod codecs;
pub mod envc;
pub mod header;
pub mod json;
pub mod manifest;
pub mod pyjson;
pub mod reader;
pub mod source;
pub mod writer;

use sha2::{Digest, Sha256};

pub use codecs::TensorCodec;
pub use header::{Flavor, Header};
pub use manifest::{ChunkRecord, Manifest};
pub use reader::{
    max_decoded_bytes_from_env, parse_byte_size, read_bytes, read_file, Archive, Artifact, ReadOptions,
    DEFAULT_MAX_DECODED_BYTES,
};
pub use source::{Chunk, Source};
pub use writer::{encode, encode_file, write_file, Codec, Contents, EncodedFile, WriteOptions};

/// Every chunk payload is preceded by `<4s 4s I>`: type, flags, length.
pub const INNER_HEADER_LEN: usize = 12;

/// Smallest inflation allowance: small chunks may always expand to 1 MiB.
const INFLATE_FLOOR: u64 = 1 << 20;
/// zstd cannot expand its input by more than about 32768x (a 128 KiB RLE
/// block from 4 bytes), so a declared size beyond that is forged.
const INFLATE_RATIO: u64 = 32_768;

/// JSON (the manifest, the environment) is parsed into a document some 50x
/// larger than its text, so a JSON frame may inflate far less than a tensor:
/// at 32 768x a 3 KB META grew to 1.7 GB of memory. Real manifests compress
/// 2-10x (a ComfyUI workflow 6-7x); writers store JSON that would exceed
/// this in uncompressed blocks instead.
const JSON_INFLATE_RATIO: u64 = 64;

/// The most a compressed chunk of `compressed` bytes may inflate to. Sizes
/// above it are refused before anything is allocated.
pub fn inflate_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(INFLATE_RATIO).max(INFLATE_FLOOR)
}

/// [`inflate_limit`] for a zstd frame of JSON (META, ENVC).
pub fn json_inflate_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(JSON_INFLATE_RATIO).max(INFLATE_FLOOR)
}

/// Lowercase hex SHA-256, as the manifest stores it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of `bytes` (two digits per byte), as hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub mod inner_header {
    //! `<4s 4s I>`: chunk type, flags, payload length (u32 little-endian).
    use super::INNER_HEADER_LEN;

    /// The 12 bytes for a chunk of type `kind` with `flags` and `len` payload bytes.
    ///
    /// ```
    /// use raiiaf::format::inner_header;
    /// let h = inner_header::build(b"LATN", b"F32\0", 16);
    /// assert_eq!(inner_header::parse(&h), (*b"LATN", *b"F32\0", 16));
    /// ```
    pub fn build(kind: &[u8; 4], flags: &[u8; 4], len: u32) -> [u8; INNER_HEADER_LEN] {
        let mut h = [0u8; INNER_HEADER_LEN];
        h[..4].copy_from_slice(kind);
        h[4..8].copy_from_slice(flags);
        h[8..].copy_from_slice(&len.to_le_bytes());
        h
    }

    /// Splits a 12-byte header; callers pass exactly 12 bytes.
    pub fn parse(h: &[u8]) -> ([u8; 4], [u8; 4], u32) {
        let mut kind = [0u8; 4];
        let mut flags = [0u8; 4];
        kind.copy_from_slice(&h[..4]);
        flags.copy_from_slice(&h[4..8]);
        (kind, flags, u32::from_le_bytes([h[8], h[9], h[10], h[11]]))
    }
}
