//! raiiaf-rs: reads and writes `.raiiaf` files, the container that keeps an
//! AI-generated image together with the exact initial noise it came from,
//! its latents, generation settings and environment, so the image can be
//! regenerated bit for bit.
//!
//! Layout:
//! - [`format`]: the container (header, chunks, manifest, reader, writer);
//! - [`codec`]: the tensor and chunk codecs;
//! - [`tensor`]: dtypes and tensors;
//! - [`env`]: environment capture, drift, model fingerprints;
//! - [`catalog`]: one row per file, as Arrow/Parquet, for querying whole archives;
//! - [`cli`]: the `raiiaf` command;
//! - `python` (feature `python`): the PyO3 bindings, a thin layer on top.
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

pub mod catalog;
pub mod cli;
pub mod codec;
pub mod env;
pub mod error;
pub mod format;
pub mod image;
pub mod tensor;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
pub use format::{read_file, Archive, Artifact, Codec, Contents, ReadOptions, WriteOptions};
pub use tensor::{DType, Tensor, TensorRef};
