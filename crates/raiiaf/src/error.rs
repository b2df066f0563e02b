//! The one error type of the crate. Every variant says what is wrong and,
//! where it helps, what to do; the Python bindings map each variant to an
//! exception class (see `python/raiiaf_rs/errors.py`).

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a `.raiiaf` file.
///
/// ```
/// use raiiaf::{Archive, Error, ReadOptions};
/// let err = Archive::parse(b"PNG, not raiiaf", ReadOptions::default()).unwrap_err();
/// assert!(matches!(err, Error::BadMagic { .. } | Error::Truncated { .. }), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file ends before a structure the header or manifest announced.
    #[error("truncated file: {what} needs bytes {start}..{end} but the file has {file_len} bytes")]
    Truncated {
        /// The structure (header, chunk, META).
        what: String,
        /// Its first byte's offset.
        start: u64,
        /// The offset just past its last byte.
        end: u64,
        /// The file's actual length.
        file_len: u64,
    },

    /// The first bytes are neither `raiiaf` nor the legacy `GEN5`.
    #[error("not a .raiiaf file: the file starts with {found:?}, expected \"raiiaf\" (or legacy \"GEN5\")")]
    BadMagic {
        /// The first bytes, as text.
        found: String,
    },

    /// A major version this reader does not know; minor versions are compatible.
    #[error(
        "unsupported format version {major}.{minor}: this reader handles major version 1; upgrade raiiaf-rs"
    )]
    UnsupportedVersion {
        /// The header's major version.
        major: u8,
        /// The header's minor version.
        minor: u8,
    },

    /// The manifest (the META chunk's JSON) is unreadable or breaks the format's rules.
    #[error("invalid manifest: {0}")]
    Manifest(String),

    /// A chunk's bytes do not decode as its record says.
    #[error("corrupt chunk {chunk}: {reason}")]
    CorruptChunk {
        /// How the chunk is named in messages (type, name, index).
        chunk: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A chunk decoded, but its SHA-256 differs from the one stored in the manifest.
    #[error("hash mismatch in chunk {chunk}: manifest says {expected}, content hashes to {actual}; the file was altered or damaged")]
    HashMismatch {
        /// How the chunk is named in messages (type, name, index).
        chunk: String,
        /// The SHA-256 the manifest records (lowercase hex).
        expected: String,
        /// The SHA-256 of the decoded content (lowercase hex).
        actual: String,
    },

    /// A size declared by the file is larger than its bytes can justify
    /// (decompression bombs, forged shapes).
    #[error(
        "{what} declares {declared} bytes, more than the limit of {limit} bytes that this file can justify"
    )]
    LimitExceeded {
        /// The structure whose size is declared.
        what: String,
        /// The size the file declares, in bytes.
        declared: u64,
        /// The most its bytes can justify.
        limit: u64,
    },

    /// Decoding would produce more bytes than the caller allows
    /// (`max_decoded_bytes`, default 1 GiB per file): checked before anything
    /// is allocated, so a small file cannot make a reader allocate gigabytes.
    #[error(
        "{what} would decode to {declared} bytes, more than the limit of {limit} bytes; if the file is \
         trusted, raise max_decoded_bytes (CLI: --max-decoded-bytes, environment: {DECODED_LIMIT_ENV})"
    )]
    DecodedSizeLimit {
        /// What would be decoded.
        what: String,
        /// The decoded size, in bytes.
        declared: u64,
        /// The caller's limit (`max_decoded_bytes`).
        limit: u64,
    },

    /// The caller asked for something impossible or lossy without permission.
    #[error("{0}")]
    InvalidArgument(String),

    /// A valid request that this format or build cannot serve.
    #[error("{0}")]
    Unsupported(String),

    /// The target file exists and overwriting was not requested.
    #[error("{0} already exists; pass overwrite=True (CLI: --overwrite) to replace it")]
    AlreadyExists(PathBuf),

    /// A bug in raiiaf-rs or a library it uses (a panic, a compressor
    /// failure), never the input's fault; please report it.
    #[error("internal error in raiiaf-rs (please report it): {0}")]
    Internal(String),
}

/// The environment variable that sets the default `max_decoded_bytes`.
pub const DECODED_LIMIT_ENV: &str = "RAIIAF_MAX_DECODED_BYTES";

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A chunk whose bytes are wrong: `chunk` names it, `reason` says what is wrong.
    pub fn corrupt(chunk: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::CorruptChunk {
            chunk: chunk.into(),
            reason: reason.into(),
        }
    }

    /// A manifest that breaks the format's rules.
    pub fn manifest(msg: impl Into<String>) -> Self {
        Error::Manifest(msg.into())
    }

    /// An argument the caller passed that cannot be used.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}
