//! PNG encoding of generated images, for the PNG a UI saves beside each
//! `.raiiaf` file.
//!
//! [`encode_png`] produces the file ComfyUI's `SaveImage` node writes, an
//! order of magnitude faster: float pixels are converted to bytes exactly as
//! `SaveImage` does (`np.clip(255. * x, 0, 255).astype(np.uint8)`), and text
//! chunks are written exactly as Pillow's `PngInfo.add_text` writes them. Only
//! the compressed image data differs (a faster DEFLATE, see [`PngLevel`]);
//! every decoder gets the same pixels and text back.
//!
//! ```
//! use raiiaf::image::{encode_png, Pixels, PngLevel};
//! let pixels = vec![0.5f32; 4 * 2 * 3]; // (height 2, width 4, 3 channels), row-major
//! let text = [("prompt".to_owned(), "{}".to_owned())];
//! let png = encode_png(Pixels::F32(&pixels), 4, 2, 3, &text, PngLevel::Fast).unwrap();
//! assert!(png.starts_with(b"\x89PNG"));
//! ```

use png::chunk::{self, ChunkType};

use crate::error::{Error, Result};

/// Largest width or height a PNG can declare (the format stores 31 bits).
pub const MAX_DIMENSION: usize = i32::MAX as usize;

/// Row-major, interleaved samples of an image: `height` rows of `width`
/// pixels of `channels` samples each (a ComfyUI `IMAGE` slice `(H, W, C)`).
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    /// Floating-point samples, nominally in `[0, 1]` (ComfyUI's `IMAGE`),
    /// converted to bytes by [`f32_to_u8`] as ComfyUI's `SaveImage` does.
    F32(&'a [f32]),
    /// 8-bit samples, stored as they are.
    U8(&'a [u8]),
}

impl Pixels<'_> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Pixels::F32(s) => s.len(),
            Pixels::U8(s) => s.len(),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How hard the image data is compressed. Every level stores the same
/// pixels; they differ in time and size only.
///
/// On a 1024×1024 RGB diffusion-like image (smooth content plus noise,
/// `bench/bench_png.py`, one core of a 2-core x86-64 VM), against Pillow
/// `compress_level=4` (ComfyUI's `SaveImage`: 289 ms, 1,565,405 bytes):
/// `Fast` 8.7 ms, 1,657,389 bytes (+5.9 %); `Balanced` 253 ms and `High`
/// 244 ms, both 1,684,837 bytes (+7.6 %). On flat graphics (large uniform
/// areas) `Balanced`/`High` make files half the size of `Fast`'s or smaller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PngLevel {
    /// The default: [fdeflate](https://crates.io/crates/fdeflate), a DEFLATE
    /// specialised for filtered image rows, with the adaptive (per row,
    /// minimum sum of absolute differences) filter choice. ~33× faster than
    /// Pillow's level 4 and ~6 % larger on the benchmark's generated-like image.
    #[default]
    Fast,
    /// zlib-style DEFLATE level 6 (miniz_oxide), adaptive filters.
    Balanced,
    /// zlib-style DEFLATE level 9 (miniz_oxide), adaptive filters: the
    /// smallest files for flat graphics; no better than `Fast` on noisy images.
    High,
}

impl PngLevel {
    /// The names [`PngLevel::from_name`] accepts, in order of increasing effort.
    pub const NAMES: [&'static str; 3] = ["fast", "balanced", "high"];

    /// `"fast"`, `"balanced"` or `"high"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "fast" => Ok(PngLevel::Fast),
            "balanced" => Ok(PngLevel::Balanced),
            "high" => Ok(PngLevel::High),
            _ => Err(Error::invalid(format!(
                "unknown PNG compression level {name:?}; use one of {:?}",
                Self::NAMES
            ))),
        }
    }

    /// The level's name, as [`PngLevel::from_name`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            PngLevel::Fast => "fast",
            PngLevel::Balanced => "balanced",
            PngLevel::High => "high",
        }
    }

    fn compression(self) -> png::Compression {
        match self {
            PngLevel::Fast => png::Compression::Fast,
            PngLevel::Balanced => png::Compression::Balanced,
            PngLevel::High => png::Compression::High,
        }
    }
}

/// One sample as ComfyUI's `SaveImage` converts it:
/// `np.clip(255. * x, 0, 255).astype(np.uint8)` on a float32 array. The
/// product is a float32 (numpy keeps the array's precision for a Python
/// float scalar), the clip keeps NaN, and the cast truncates toward zero;
/// numpy casts NaN to 0 on x86-64 and aarch64, as Rust's `as` does.
#[inline]
pub fn f32_to_u8(x: f32) -> u8 {
    (x * 255.0).clamp(0.0, 255.0) as u8
}

/// Converts float samples to bytes with [`f32_to_u8`].
pub fn f32_to_u8_vec(src: &[f32]) -> Vec<u8> {
    src.iter().map(|&x| f32_to_u8(x)).collect()
}

/// Encodes an image as a PNG file, 8 bits per sample: grayscale (1 channel),
/// RGB (3) or RGBA (4), not interlaced.
///
/// `text` becomes one chunk per pair, in order, between the header and the
/// image data, exactly as Pillow's `PngInfo.add_text(keyword, text)` writes
/// it: an uncompressed `tEXt` chunk (Latin-1) when the text is Latin-1,
/// otherwise an uncompressed `iTXt` chunk (UTF-8, no language tag) — so
/// Pillow's `Image.open(...).text` returns the same dict. Keywords must be 1
/// to 79 Latin-1 characters without NUL, as the PNG specification requires.
/// Text is written as given, like Pillow (JSON from `json.dumps` never holds
/// a NUL; a raw NUL would make the chunk invalid for strict readers).
///
/// Errors ([`Error::InvalidArgument`]): a channel count other than 1, 3 or
/// 4; a zero or too large width or height; a sample count other than
/// `width * height * channels`; an invalid keyword.
pub fn encode_png(
    pixels: Pixels<'_>,
    width: usize,
    height: usize,
    channels: usize,
    text: &[(String, String)],
    level: PngLevel,
) -> Result<Vec<u8>> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => {
            return Err(Error::invalid(format!(
                "an image with {channels} channels cannot be stored as PNG; \
                 use 1 (grayscale), 3 (RGB) or 4 (RGBA) channels"
            )))
        }
    };
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::invalid(format!(
            "a PNG image must be 1 to {MAX_DIMENSION} pixels wide and high; this one is \
             {width} wide and {height} high"
        )));
    }
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .ok_or_else(|| Error::invalid(format!("a {width}x{height}x{channels} image is too large")))?;
    if pixels.len() != expected {
        return Err(Error::invalid(format!(
            "{} samples do not make a {height}x{width} image of {channels} channels \
             (height x width x channels = {expected})",
            pixels.len()
        )));
    }
    let chunks = text
        .iter()
        .map(|(keyword, value)| text_chunk(keyword, value))
        .collect::<Result<Vec<_>>>()?;

    let converted;
    let bytes = match pixels {
        Pixels::U8(s) => s,
        Pixels::F32(s) => {
            converted = f32_to_u8_vec(s);
            &converted[..]
        }
    };

    // The dimensions were checked against MAX_DIMENSION above.
    let (w, h) = (width as u32, height as u32);
    let text_len: usize = chunks.iter().map(|(_, d)| d.len() + 12).sum();
    let mut out = Vec::with_capacity(bytes.len() / 2 + text_len + 1024);
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(level.compression());
    let mut writer = encoder.write_header().map_err(png_error)?;
    for (kind, data) in &chunks {
        writer.write_chunk(*kind, data).map_err(png_error)?;
    }
    writer.write_image_data(bytes).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

fn png_error(e: png::EncodingError) -> Error {
    Error::invalid(format!("PNG encoding failed: {e}"))
}

/// The bytes of `s` in Latin-1, or None if it has a character above U+00FF.
fn latin1(s: &str) -> Option<Vec<u8>> {
    if s.is_ascii() {
        return Some(s.as_bytes().to_vec());
    }
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// A `tEXt` chunk if `text` is Latin-1, else an `iTXt` chunk; byte for byte
/// what Pillow's `PngInfo.add_text(keyword, text)` writes.
fn text_chunk(keyword: &str, text: &str) -> Result<(ChunkType, Vec<u8>)> {
    let key = latin1(keyword).ok_or_else(|| {
        Error::invalid(format!(
            "PNG text keyword {keyword:?} has characters outside Latin-1"
        ))
    })?;
    if key.is_empty() || key.len() > 79 || key.contains(&0) {
        return Err(Error::invalid(format!(
            "PNG text keyword {keyword:?} must be 1 to 79 characters long, without NUL"
        )));
    }
    Ok(match latin1(text) {
        Some(value) => {
            let mut data = Vec::with_capacity(key.len() + 1 + value.len());
            data.extend_from_slice(&key);
            data.push(0);
            data.extend_from_slice(&value);
            (chunk::tEXt, data)
        }
        None => {
            // keyword NUL, compression flag 0, method 0, language "" NUL,
            // translated keyword "" NUL, UTF-8 text.
            let mut data = Vec::with_capacity(key.len() + 5 + text.len());
            data.extend_from_slice(&key);
            data.extend_from_slice(&[0, 0, 0, 0, 0]);
            data.extend_from_slice(text.as_bytes());
            (chunk::iTXt, data)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>, Vec<(String, String)>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let meta = reader.info();
        let mut text: Vec<(String, String)> = meta
            .uncompressed_latin1_text
            .iter()
            .map(|c| (c.keyword.clone(), c.text.clone()))
            .collect();
        for c in &meta.utf8_text {
            text.push((c.keyword.clone(), c.get_text().unwrap()));
        }
        (info, buf, text)
    }

    #[test]
    fn conversion_matches_numpy() {
        // Expected bytes from numpy 2.4 on x86-64:
        // np.clip(255. * np.float32(x), 0, 255).astype(np.uint8).
        let cases: [(f32, u8); 12] = [
            (f32::NAN, 0),
            (-f32::NAN, 0),
            (f32::INFINITY, 255),
            (f32::NEG_INFINITY, 0),
            (1.0, 255),
            (0.999_999, 254),
            (-0.0, 0),
            (0.5, 127),
            (1.000_000_1, 255),
            (0.999_999_94, 254),
            (0.998_039_2, 254),
            (-3.0, 0),
        ];
        for (x, want) in cases {
            assert_eq!(f32_to_u8(x), want, "x = {x:e}");
        }
    }

    #[test]
    fn round_trip_all_channel_counts() {
        for channels in [1usize, 3, 4] {
            let (w, h) = (7, 5);
            let n = w * h * channels;
            let floats: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 * 1.2 - 0.1).collect();
            let png = encode_png(Pixels::F32(&floats), w, h, channels, &[], PngLevel::Fast).unwrap();
            let (info, buf, _) = decode(&png);
            assert_eq!((info.width, info.height), (w as u32, h as u32));
            assert_eq!(info.color_type.samples(), channels);
            assert_eq!(buf, f32_to_u8_vec(&floats));

            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            for level in [PngLevel::Fast, PngLevel::Balanced, PngLevel::High] {
                let png = encode_png(Pixels::U8(&bytes), w, h, channels, &[], level).unwrap();
                assert_eq!(decode(&png).1, bytes);
            }
        }
    }

    #[test]
    fn text_chunks() {
        let text = vec![
            (
                "prompt".to_owned(),
                r#"{"3": {"inputs": {"seed": 42}}}"#.to_owned(),
            ),
            ("latin".to_owned(), "café".to_owned()),
            ("unicode".to_owned(), "猫 🐈".to_owned()),
            ("empty".to_owned(), String::new()),
        ];
        let png = encode_png(Pixels::U8(&[1, 2, 3]), 1, 1, 3, &text, PngLevel::Fast).unwrap();
        let (_, buf, mut back) = decode(&png);
        assert_eq!(buf, [1, 2, 3]);
        let mut want = text.clone();
        want.sort();
        back.sort();
        assert_eq!(back, want);
        // Pillow's bytes: "latin" in Latin-1, "unicode" as iTXt.
        let find = |needle: &[u8]| png.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"tEXtlatin\0caf\xe9"));
        assert!(find("iTXtunicode\0\0\0\0\0猫".as_bytes()));
    }

    #[test]
    fn bad_arguments() {
        let px = [0u8; 12];
        let bad = |r: Result<Vec<u8>>| match r {
            Err(Error::InvalidArgument(msg)) => msg,
            other => panic!("expected InvalidArgument, got {other:?}"),
        };
        assert!(bad(encode_png(Pixels::U8(&px), 2, 3, 2, &[], PngLevel::Fast)).contains("2 channels"));
        assert!(bad(encode_png(Pixels::U8(&px), 2, 2, 4, &[], PngLevel::Fast)).contains("12 samples"));
        assert!(bad(encode_png(Pixels::U8(&[]), 0, 4, 3, &[], PngLevel::Fast)).contains("0 wide"));
        bad(encode_png(Pixels::U8(&px), usize::MAX, 2, 3, &[], PngLevel::Fast));
        bad(encode_png(
            Pixels::U8(&px),
            MAX_DIMENSION,
            MAX_DIMENSION,
            4,
            &[],
            PngLevel::Fast,
        ));
        for key in ["", "a\0b", "猫", &"k".repeat(80)] {
            let text = [(key.to_owned(), "v".to_owned())];
            assert!(bad(encode_png(Pixels::U8(&px), 2, 2, 3, &text, PngLevel::Fast)).contains("keyword"));
        }
        assert!(bad(PngLevel::from_name("fastest").map(|_| Vec::new())).contains("fastest"));
        for name in PngLevel::NAMES {
            assert_eq!(PngLevel::from_name(name).unwrap().name(), name);
        }
    }
}
