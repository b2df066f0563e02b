//! raiiaf: reads and writes `.raiiaf` files, the container that keeps an
//! AI-generated image together with the exact initial noise it came from,
//! its latents, generation settings and environment, so the image can be
//! regenerated bit for bit.
//!
//! This is the format's core: pure Rust, no Python, Arrow or CLI dependencies.
//! - [`format`](mod@format): the container (header, chunks, manifest, reader, writer);
//! - [`codec`]: the tensor and chunk codecs;
//! - [`tensor`]: dtypes and tensors;
//! - [`error`]: the one error type every operation returns;
//! - `image` (feature `png`): PNG encoding of generated images.
//!
//! Built on it, in the same workspace: `raiiaf-env` (environment capture, drift,
//! model fingerprints), `raiiaf-catalog` (one row per file as Arrow/Parquet),
//! `raiiaf-cli` (the `raiiaf` command) and the PyO3 bindings (`raiiaf_rs` on PyPI).
//!
//! ```no_run
//! use raiiaf::format::{Archive, ReadOptions};
//! // Reads the header and the manifest only; chunks are read as they decode.
//! let archive = Archive::open("image.raiiaf", ReadOptions::default()).unwrap();
//! let artifact = archive.read_all().unwrap(); // every hash verified
//! for (name, t) in &artifact.latents {
//!     println!("{name}: {} {:?}", t.dtype(), t.shape());
//! }
//! // A file already in memory is read in place.
//! let bytes = std::fs::read("image.raiiaf").unwrap();
//! let archive = Archive::parse(&bytes, ReadOptions::default()).unwrap();
//! ```

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
pub mod error;
pub mod format;
#[cfg(feature = "png")]
#[cfg_attr(docsrs, doc(cfg(feature = "png")))]
pub mod image;
pub mod tensor;

pub use error::{Error, Result};
pub use format::{read_file, Archive, Artifact, Codec, Contents, ReadOptions, WriteOptions};
pub use tensor::{DType, Tensor, TensorRef};
