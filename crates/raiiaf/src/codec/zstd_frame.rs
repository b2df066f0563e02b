//! Single zstd frames with sizes checked before anything is allocated.
//!
//! The reference decompresses every frame with the size its header declares,
//! so a 5 KB file can ask for 64 GiB. Here a frame must declare its content
//! size, and that size must equal what the manifest expects.

/// Level the reference uses for DATA, ENVC and META frames.
pub const REFERENCE_LEVEL: i32 = 3;

/// Compresses `data` as one frame with its content size in the header,
/// byte-identical to python-zstandard's one-shot `ZstdCompressor().compress`
/// for the same libzstd (1.5.7). Compressing from memory into a buffer of
/// `compress_bound` bytes fails only on an invalid level or a libzstd fault:
/// that error is returned, never turned into an empty frame.
pub fn compress(data: &[u8], level: i32) -> Result<Vec<u8>, String> {
    zstd::bulk::compress(data, level).map_err(|e| format!("zstd compression failed: {e}"))
}

/// Compresses the concatenation of `parts` as one frame (used for inner
/// header + payload without copying them together first).
pub fn compress_parts(parts: &[&[u8]], level: i32) -> Result<Vec<u8>, String> {
    if parts.len() == 1 {
        return compress(parts[0], level);
    }
    compress(&parts.concat(), level)
}

/// Like [`compress_parts`], plus zstd's XXH64 content checksum, which every
/// zstd decoder (the reference's included) verifies. Used for the manifest,
/// the one chunk the format gives no SHA-256.
pub fn compress_parts_checksummed(parts: &[&[u8]], level: i32) -> Result<Vec<u8>, String> {
    let joined = parts.concat();
    let fail = |c| format!("zstd compression failed: {}", zstd::zstd_safe::get_error_name(c));
    let mut cctx = zstd::zstd_safe::CCtx::create();
    cctx.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))
        .map_err(fail)?;
    cctx.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(fail)?;
    let mut out = vec![0u8; zstd::zstd_safe::compress_bound(joined.len())];
    let n = cctx.compress2(&mut out[..], &joined).map_err(fail)?;
    out.truncate(n);
    Ok(out)
}

/// Largest block a zstd frame may hold (RFC 8878, Block_Maximum_Size).
const MAX_BLOCK: usize = 128 * 1024;

/// A zstd frame of stored ("raw") blocks holding `head` followed by `body`,
/// as byte pieces that borrow `body`. Any zstd decoder reads it, and writing
/// it costs nothing: no compression is attempted. For data that does not
/// compress (PNG gains 0.0 % at zstd level 3 and costs 0.4 ms per 1.7 MB).
///
/// Layout: magic, frame header descriptor 0xA0 (single segment, 4-byte
/// content size, no checksum), the content size, then blocks of at most
/// 128 KiB, each behind a 3-byte header (last-block bit, type 0 = raw, size).
pub fn stored_frame<'a>(head: &[u8], body: &'a [u8]) -> Option<Vec<std::borrow::Cow<'a, [u8]>>> {
    use std::borrow::Cow;
    let total = head.len() + body.len();
    let total32 = u32::try_from(total).ok()?;
    let mut pieces: Vec<Cow<'a, [u8]>> = Vec::with_capacity(2 * (total / MAX_BLOCK + 1) + 1);
    let mut owned = Vec::with_capacity(32 + head.len());
    owned.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xa0]);
    owned.extend_from_slice(&total32.to_le_bytes());
    let mut head_left = head;
    let mut body_left = body;
    let mut remaining = total;
    loop {
        let size = remaining.min(MAX_BLOCK);
        remaining -= size;
        let last = u32::from(remaining == 0);
        let block_header = last | ((size as u32) << 3); // type 0: raw
        owned.extend_from_slice(&block_header.to_le_bytes()[..3]);
        let from_head = size.min(head_left.len());
        owned.extend_from_slice(&head_left[..from_head]);
        head_left = &head_left[from_head..];
        let from_body = size - from_head;
        if from_body > 0 {
            pieces.push(Cow::Owned(std::mem::take(&mut owned)));
            pieces.push(Cow::Borrowed(&body_left[..from_body]));
            body_left = &body_left[from_body..];
        }
        if remaining == 0 {
            break;
        }
    }
    if !owned.is_empty() {
        pieces.push(Cow::Owned(owned));
    }
    Some(pieces)
}

/// The content size a frame declares, if its header is readable and has one.
pub fn declared_size(frame: &[u8]) -> Result<u64, String> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err("the zstd frame does not declare its content size".into()),
        Err(_) => Err("not a zstd frame (unreadable frame header)".into()),
    }
}

/// Decompresses exactly one frame that must inflate to `expected` bytes,
/// into `out` (whose length is `expected`). Extra bytes after the frame,
/// a different declared size, or a short output are all errors.
pub fn decompress_exact_into(frame: &[u8], out: &mut [u8]) -> Result<(), String> {
    let declared = declared_size(frame)?;
    if declared != out.len() as u64 {
        return Err(format!(
            "the zstd frame declares {declared} bytes of content, the manifest expects {}",
            out.len()
        ));
    }
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(frame)
        .map_err(|code| format!("damaged zstd frame: {}", zstd::zstd_safe::get_error_name(code)))?;
    if frame_len != frame.len() {
        return Err(format!(
            "{} unexpected bytes follow the zstd frame",
            frame.len().saturating_sub(frame_len)
        ));
    }
    let written = with_dctx(|dctx| dctx.decompress(out, frame))
        .map_err(|code| format!("damaged zstd frame: {}", zstd::zstd_safe::get_error_name(code)))?;
    if written != out.len() {
        return Err(format!(
            "the zstd frame inflated to {written} bytes instead of {}",
            out.len()
        ));
    }
    Ok(())
}

thread_local! {
    /// One decompression context per thread for one-shot frames: creating one costs more than
    /// decoding a small manifest (a sixth of the catalog's time went to `ZSTD_createDCtx`).
    /// One-shot decompression starts every frame afresh, so nothing carries over.
    static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's one-shot decompression context (a fresh one if it is in use).
fn with_dctx<T>(f: impl FnOnce(&mut zstd::zstd_safe::DCtx<'static>) -> T) -> T {
    DCTX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(zstd::zstd_safe::DCtx::create)),
        Err(_) => f(&mut zstd::zstd_safe::DCtx::create()),
    })
}

/// Like [`decompress_exact_into`], allocating the output.
pub fn decompress_exact(frame: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; expected];
    decompress_exact_into(frame, &mut out)?;
    Ok(out)
}

/// Largest window (log2 bytes) [`decompress_exact_split`] accepts: 32 MiB.
/// zstd level 3 frames (the reference's) use 2 MiB at most.
pub const MAX_STREAM_WINDOW_LOG: u32 = 25;

/// Any window zstd allows: for frames whose content is tiny (the zfp inner
/// header's 12 bytes), where the decoder's buffer is the content size anyway.
pub const MAX_ANY_WINDOW_LOG: u32 = if cfg!(target_pointer_width = "64") { 31 } else { 30 };

/// Compressed bytes that arrive in pieces: a slice in memory, or a range of
/// a file read a window at a time.
pub trait Input {
    /// The next bytes not yet consumed; empty only when all were consumed.
    fn fill(&mut self) -> Result<&[u8], String>;
    /// Marks `n` bytes of the last [`fill`](Input::fill) as consumed.
    fn consume(&mut self, n: usize);
    /// Bytes not yet consumed.
    fn remaining(&self) -> u64;
    /// Goes back to the first byte.
    fn restart(&mut self);
}

/// A slice as an [`Input`].
pub struct SliceInput<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> SliceInput<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        SliceInput { bytes, pos: 0 }
    }
}

impl Input for SliceInput<'_> {
    fn fill(&mut self) -> Result<&[u8], String> {
        Ok(&self.bytes[self.pos.min(self.bytes.len())..])
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos.min(self.bytes.len())) as u64
    }
    fn restart(&mut self) {
        self.pos = 0;
    }
}

/// One zstd frame that fills all of its [`Input`], decoded incrementally
/// into caller-sized pieces with a bounded window: memory besides the
/// output is the decoder's window and the input's window, whatever the
/// frame's size.
pub struct FrameDecoder<I> {
    dctx: zstd::zstd_safe::DCtx<'static>,
    input: I,
    /// The frame has ended (the decoder returned 0).
    ended: bool,
    /// Bytes the frame header declares.
    declared: u64,
}

impl<I: Input> FrameDecoder<I> {
    /// Reads the frame header: it must declare its content size. Windows
    /// beyond 2^`max_window_log` bytes are refused when decoding.
    pub fn new(mut input: I, max_window_log: u32) -> Result<Self, String> {
        let declared = declared_size(input.fill()?)?;
        let mut dctx = zstd::zstd_safe::DCtx::create();
        dctx.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(max_window_log))
            .map_err(damaged)?;
        Ok(FrameDecoder {
            dctx,
            input,
            ended: false,
            declared,
        })
    }

    /// The content size the frame header declares.
    pub fn declared(&self) -> u64 {
        self.declared
    }

    /// The input, e.g. to take a read error it kept.
    pub fn input_mut(&mut self) -> &mut I {
        &mut self.input
    }

    /// Decodes and drops the next `n` bytes of content.
    pub fn skip(&mut self, mut n: u64) -> Result<(), String> {
        let mut scratch = vec![0u8; (n.min(64 << 10)) as usize];
        while n > 0 {
            let m = n.min(scratch.len() as u64) as usize;
            self.fill(&mut scratch[..m])?;
            n -= m as u64;
        }
        Ok(())
    }

    /// Fills `buf` completely, or fails if the frame ends or breaks first.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        use zstd::zstd_safe::{InBuffer, OutBuffer};
        let want = buf.len();
        let mut output = OutBuffer::around(buf);
        while output.pos() < want {
            if self.ended {
                return Err("the zstd frame ends before its declared size".into());
            }
            let before_out = output.pos();
            let src = self.input.fill()?;
            let mut input = InBuffer::around(src);
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut input)
                .map_err(damaged)?;
            let used = input.pos;
            self.input.consume(used);
            self.ended = hint == 0;
            if !self.ended && used == 0 && output.pos() == before_out {
                return Err("the zstd frame is truncated".into());
            }
        }
        Ok(())
    }

    /// After every declared byte: the frame must end here, with no more
    /// content, and fill its input exactly.
    pub fn finish(&mut self) -> Result<(), String> {
        use zstd::zstd_safe::{InBuffer, OutBuffer};
        let mut probe = [0u8; 1];
        while !self.ended {
            let mut output = OutBuffer::around(&mut probe[..]);
            let src = self.input.fill()?;
            let mut input = InBuffer::around(src);
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut input)
                .map_err(damaged)?;
            let used = input.pos;
            self.input.consume(used);
            if output.pos() > 0 {
                return Err("the zstd frame inflates beyond its declared size".into());
            }
            self.ended = hint == 0;
            if !self.ended && used == 0 {
                return Err("the zstd frame is truncated".into());
            }
        }
        let left = self.input.remaining();
        if left != 0 {
            return Err(format!("{left} unexpected bytes follow the zstd frame"));
        }
        Ok(())
    }
}

fn damaged(code: usize) -> String {
    format!("damaged zstd frame: {}", zstd::zstd_safe::get_error_name(code))
}

/// Decompresses exactly one frame whose content is `head` followed by `body`
/// (their lengths fix the expected size) straight into both, streaming: no
/// buffer of the content's size is allocated besides them, only the
/// decoder's window (at most 2^[`MAX_STREAM_WINDOW_LOG`] bytes).
pub fn decompress_exact_split(frame: &[u8], head: &mut [u8], body: &mut [u8]) -> Result<(), String> {
    // The frame's own length is known here: checked first, as one-shot decoding does.
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(frame).map_err(damaged);
    if let Ok(n) = frame_len {
        if n != frame.len() {
            return Err(format!(
                "{} unexpected bytes follow the zstd frame",
                frame.len().saturating_sub(n)
            ));
        }
    }
    let mut decoder = FrameDecoder::new(SliceInput::new(frame), MAX_STREAM_WINDOW_LOG)?;
    decode_split(&mut decoder, head, body)
}

/// [`decompress_exact_split`] from any [`Input`], checked against the
/// declared size first.
pub fn decode_split<I: Input>(
    decoder: &mut FrameDecoder<I>,
    head: &mut [u8],
    body: &mut [u8],
) -> Result<(), String> {
    let expected = (head.len() + body.len()) as u64;
    if decoder.declared() != expected {
        return Err(format!(
            "the zstd frame declares {} bytes of content, the manifest expects {expected}",
            decoder.declared()
        ));
    }
    decoder.fill(head)?;
    decoder.fill(body)?;
    decoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size_checks() {
        let data = b"hello hello hello hello".repeat(10);
        let frame = compress(&data, 3).unwrap();
        assert_eq!(declared_size(&frame).unwrap(), data.len() as u64);
        assert_eq!(decompress_exact(&frame, data.len()).unwrap(), data);
        assert!(decompress_exact(&frame, data.len() + 1).is_err());
        assert!(decompress_exact(&frame, data.len() - 1).is_err());
        let mut trailing = frame.clone();
        trailing.push(0);
        assert!(decompress_exact(&trailing, data.len()).is_err());
        assert!(decompress_exact(&frame[..frame.len() - 1], data.len()).is_err());
        assert!(decompress_exact(b"garbage!", 3).is_err());
        assert!(decompress_exact(b"", 0).is_err());
    }

    #[test]
    fn split_streaming_matches_one_shot() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let frame = compress(&data, 3).unwrap();
        let (mut head, mut body) = ([0u8; 12], vec![0u8; data.len() - 12]);
        decompress_exact_split(&frame, &mut head, &mut body).unwrap();
        assert_eq!(&head[..], &data[..12]);
        assert_eq!(&body[..], &data[12..]);
        let mut short = vec![0u8; data.len() - 13];
        assert!(decompress_exact_split(&frame, &mut head, &mut short).is_err());
        for cut in [1, 10, frame.len() / 2, frame.len() - 1] {
            assert!(decompress_exact_split(&frame[..cut], &mut head, &mut body).is_err());
        }
    }

    #[test]
    fn checksum_catches_damage() {
        let data = b"{\"chunks\": []} and some more text to compress".repeat(20);
        let frame = compress_parts_checksummed(&[&data], 3).unwrap();
        assert_eq!(decompress_exact(&frame, data.len()).unwrap(), data);
        let mut caught = 0;
        for i in 4..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x10;
            match decompress_exact(&bad, data.len()) {
                Ok(out) => assert_eq!(out, data, "byte {i} changed the content silently"),
                Err(_) => caught += 1,
            }
        }
        assert!(caught > frame.len() / 2);
    }

    #[test]
    fn stored_frames_decode_everywhere() {
        for n in [
            0usize,
            1,
            100,
            MAX_BLOCK - 12,
            MAX_BLOCK - 11,
            MAX_BLOCK,
            3 * MAX_BLOCK + 5,
        ] {
            let head = b"DATA0000\x01\x02\x03\x04";
            let body: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let frame: Vec<u8> = stored_frame(head, &body).unwrap().concat();
            let want: Vec<u8> = head.iter().chain(body.iter()).copied().collect();
            assert_eq!(zstd::bulk::decompress(&frame, want.len()).unwrap(), want, "n={n}");
            assert_eq!(decompress_exact(&frame, want.len()).unwrap(), want, "n={n}");
            assert_eq!(declared_size(&frame).unwrap(), want.len() as u64);
        }
    }

    #[test]
    fn parts_equal_joined() {
        let a = b"LATNF32\0\x04\0\0\0";
        let b = [1u8, 2, 3, 4];
        let joined: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(
            compress_parts(&[a, &b], 3).unwrap(),
            compress(&joined, 3).unwrap()
        );
    }
}
