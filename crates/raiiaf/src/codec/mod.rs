//! Tensor and chunk codecs. Each works on byte slices and knows nothing of
//! the container; the format layer picks one per chunk from the manifest.
//!
//! - [`zstd_frame`]: single zstd frames with exact, pre-checked sizes.
//! - [`shuffle`]: `shuffle-zstd`, the compact lossless codec (format 1.1).
//! - [`zfp`]: zfp reversible mode, the reference's "compressed" latents.

pub mod shuffle;
pub mod zfp;
pub mod zstd_frame;
