//! `shuffle-zstd`, the compact lossless tensor codec of format 1.1.
//!
//! Gaussian noise is incompressible except for its exponent bits, which all
//! sit in the most significant byte of each element. Transposing the
//! elements into byte planes (plane k holds byte k of every element) puts
//! that redundancy into one plane; compressing every plane as its own zstd
//! frame at level 1 then gets within 2-5 % of the entropy limit (1.18x for
//! f32/f16, 1.45x for bf16 noise). One frame for all planes would mix their
//! statistics in zstd's 128 KiB blocks and lose most of the gain, and higher
//! levels are no better on these planes (see FORMAT.md).
//!
//! Payload layout (after the chunk's 12-byte inner header):
//! ```text
//! u8   plane count P (= element size: 4 for f32, 2 for f16/bf16)
//! u8×7 reserved, zero
//! u64×P compressed length of each plane's frame, little-endian
//! P zstd frames, plane 0 (least significant byte) first
//! ```

use zstd::zstd_safe;

/// zstd level for planes: level 1 beats 2-12 on i.i.d. exponent bytes.
pub const LEVEL: i32 = 1;
const PREFIX: usize = 8;

/// Encodes `data` (elements of `itemsize` bytes) into a shuffle-zstd payload.
/// One thread, one transposed copy: the reference [`encode_and_hash`] is
/// checked against.
pub fn encode(data: &[u8], itemsize: usize) -> Result<Vec<u8>, String> {
    debug_assert!(itemsize > 0 && data.len().is_multiple_of(itemsize));
    let n = data.len() / itemsize;
    let planes = transpose(data, itemsize);
    let mut out = Vec::with_capacity(PREFIX + 8 * itemsize + data.len() + 64 * itemsize);
    out.push(itemsize as u8);
    out.extend_from_slice(&[0u8; 7]);
    let lengths_at = out.len();
    out.resize(lengths_at + 8 * itemsize, 0);
    CCTX.with_borrow_mut(|cctx| compress_planes(cctx, &planes, n, itemsize, lengths_at, &mut out))?;
    Ok(out)
}

/// Tensors at least this large are encoded by [`encode_and_hash`] on two
/// threads; smaller ones (an SDXL latent is 256 KiB) stay on the caller's.
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// Encoded planes as (plane index, zstd frame).
type Frames = Vec<(usize, Vec<u8>)>;

/// The payload of [`encode`] as pieces (prefix and length table, then one
/// zstd frame per plane), plus the SHA-256 of `data`, computed together:
/// the hash runs beside the transposition, then the planes are work items
/// shared by two threads (the caller's and one more). Byte-identical to
/// [`encode`].
pub fn encode_and_hash(data: &[u8], itemsize: usize) -> Result<(Vec<Vec<u8>>, [u8; 32]), String> {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicUsize, Ordering};
    if itemsize == 0 || !data.len().is_multiple_of(itemsize) {
        return Err(format!(
            "{} bytes are not whole elements of {itemsize} bytes",
            data.len()
        ));
    }
    let n = data.len() / itemsize;
    // Phase 1: the hash on a second thread while this one transposes (one
    // pass over the tensor). Phase 2: the planes as work items on both
    // threads, longest first: the top plane (the exponents, the only one
    // zstd compresses, about 3x slower than storing the others).
    let two_threads = data.len() >= PARALLEL_MIN_BYTES;
    let (planes, hash) = if two_threads {
        std::thread::scope(|scope| {
            let hasher = scope.spawn(|| <[u8; 32]>::from(Sha256::digest(data)));
            let planes = transpose(data, itemsize);
            let hash = hasher.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (planes, hash)
        })
    } else {
        (transpose(data, itemsize), Sha256::digest(data).into())
    };
    let next = AtomicUsize::new(0);
    let work = |cctx: &mut zstd_safe::CCtx<'static>| -> Result<Frames, String> {
        let mut done = Vec::new();
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= itemsize {
                return Ok(done);
            }
            let k = itemsize - 1 - item;
            let plane = &planes[k * n..(k + 1) * n];
            done.push((k, encode_plane(cctx, k, plane)?));
        }
    };
    let results: Vec<Result<Frames, String>> = if two_threads {
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| work(&mut plane_context()));
            let mine = CCTX.with_borrow_mut(|cctx| work(cctx));
            let theirs = helper.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            vec![mine, theirs]
        })
    } else {
        vec![CCTX.with_borrow_mut(|cctx| work(cctx))]
    };
    drop(planes);
    let mut frames: Vec<Option<Vec<u8>>> = (0..itemsize).map(|_| None).collect();
    for result in results {
        for (k, frame) in result? {
            frames[k] = Some(frame);
        }
    }
    let mut head = Vec::with_capacity(PREFIX + 8 * itemsize);
    head.push(itemsize as u8);
    head.extend_from_slice(&[0u8; 7]);
    let mut pieces = vec![];
    for frame in frames {
        let frame = frame.ok_or("a plane was not encoded")?;
        head.extend_from_slice(&(frame.len() as u64).to_le_bytes());
        pieces.push(frame);
    }
    pieces.insert(0, head);
    Ok((pieces, hash))
}

thread_local! {
    /// One compression context per thread: creating one per tensor cost 5 %
    /// of an SDXL save.
    static CCTX: std::cell::RefCell<zstd_safe::CCtx<'static>> = std::cell::RefCell::new(plane_context());
}

fn plane_context() -> zstd_safe::CCtx<'static> {
    let mut cctx = zstd_safe::CCtx::create();
    let _ = cctx.set_parameter(zstd_safe::CParameter::CompressionLevel(LEVEL));
    // The planes are i.i.d. bytes: short matches cost more than the literals
    // they replace. Requiring 7-byte matches brings bf16 noise from 94.9 %
    // to 96.4 % of the entropy limit at the same speed.
    let _ = cctx.set_parameter(zstd_safe::CParameter::MinMatch(7));
    cctx
}

fn compress_planes(
    cctx: &mut zstd_safe::CCtx<'static>,
    planes: &[u8],
    n: usize,
    itemsize: usize,
    lengths_at: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    for (k, plane) in planes.chunks_exact(n.max(1)).take(itemsize).enumerate() {
        let frame = encode_plane(cctx, k, plane)?;
        out.extend_from_slice(&frame);
        out[lengths_at + 8 * k..lengths_at + 8 * k + 8].copy_from_slice(&(frame.len() as u64).to_le_bytes());
    }
    Ok(())
}

/// Planes at least this large are first tried on samples: one zstd cannot
/// shrink is stored instead of compressed.
const SAMPLED_MIN: usize = 1 << 20;
const SAMPLE: usize = 32 * 1024;

/// One plane as one zstd frame with its content size: compressed at
/// [`LEVEL`], or, when samples show zstd cannot shrink it (the uniform
/// mantissa bytes of noise), as stored blocks, the size zstd itself would
/// give (it stores such blocks raw), without the search (~100 ms per 64 MiB).
fn encode_plane(cctx: &mut zstd_safe::CCtx<'static>, k: usize, plane: &[u8]) -> Result<Vec<u8>, String> {
    let fail = |c| {
        format!(
            "zstd compression of plane {k} failed: {}",
            zstd_safe::get_error_name(c)
        )
    };
    if plane.len() >= SAMPLED_MIN {
        let mut scratch = Vec::with_capacity(zstd_safe::compress_bound(SAMPLE));
        let mut compressible = false;
        for i in 0..4 {
            let at = (plane.len() - SAMPLE) / 3 * i;
            scratch.clear();
            cctx.compress2(&mut scratch, &plane[at..at + SAMPLE])
                .map_err(fail)?;
            // 0.5 % smaller than stored is worth the search.
            compressible |= scratch.len() < SAMPLE - SAMPLE / 200;
        }
        if !compressible {
            if let Some(frame) = stored_plane_frame(plane) {
                return Ok(frame);
            }
        }
    }
    let mut frame = Vec::with_capacity(zstd_safe::compress_bound(plane.len()));
    // compress2 writes the content size into the frame header, which the
    // decoder checks against the expected plane size.
    cctx.compress2(&mut frame, plane).map_err(fail)?;
    Ok(frame)
}

/// A zstd frame of raw blocks holding `plane`: frame header descriptor 0x80
/// (4-byte content size, not single-segment, no checksum), window 128 KiB
/// (raw blocks need no history; a small window keeps streaming decoders
/// small), then blocks of 128 KiB. `None` above 4 GiB.
fn stored_plane_frame(plane: &[u8]) -> Option<Vec<u8>> {
    const BLOCK: usize = 128 * 1024;
    let size = u32::try_from(plane.len()).ok()?;
    let blocks = plane.len().div_ceil(BLOCK).max(1);
    let mut out = Vec::with_capacity(10 + 3 * blocks + plane.len());
    out.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0x80, 7 << 3]);
    out.extend_from_slice(&size.to_le_bytes());
    let mut chunks = plane.chunks(BLOCK).peekable();
    if plane.is_empty() {
        out.extend_from_slice(&1u32.to_le_bytes()[..3]); // one empty last block
    }
    while let Some(block) = chunks.next() {
        let last = u32::from(chunks.peek().is_none());
        out.extend_from_slice(&(last | ((block.len() as u32) << 3)).to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
    Some(out)
}

/// Largest zstd window (log2 bytes) a plane frame may need when decoding:
/// 16 MiB. The writer's level-1 frames use 512 KiB at most; larger windows
/// are refused, so decoding holds at most `itemsize` windows besides `out`.
pub const MAX_WINDOW_LOG: u32 = 24;

/// Elements decoded per plane before they are interleaved into `out`: the
/// scratch space is `itemsize` x this many bytes, whatever the tensor size.
const ROUND: usize = 64 * 1024;

/// Decodes a shuffle-zstd payload into `out`, whose length fixes the element
/// count; `itemsize` comes from the manifest's dtype. Every length and frame
/// size is checked before use. The planes are decoded in lockstep by
/// streaming decoders into a small scratch buffer and interleaved straight
/// into `out`: memory besides `out` is bounded (a few windows of at most
/// 2^[`MAX_WINDOW_LOG`] bytes and `itemsize` x 64 KiB), never a second
/// tensor-sized buffer.
pub fn decode_into(payload: &[u8], itemsize: usize, out: &mut [u8]) -> Result<(), String> {
    let mut decoder = Decoder::new(payload, itemsize, out.len())?;
    decoder.fill(out)?;
    decoder.finish()
}

/// [`decode_into`] in steps: [`Decoder::fill`] decodes the next elements
/// into each buffer it is given (a whole number of elements each, in order),
/// so a caller can hash or copy what is decoded while the rest decodes.
pub struct Decoder<'a> {
    itemsize: usize,
    /// Elements still to decode.
    left: usize,
    planes: Vec<PlaneReader<'a>>,
    scratch: Vec<u8>,
}

impl<'a> Decoder<'a> {
    /// Checks the payload's prefix, table and frame headers for a tensor of
    /// `out_len` bytes; allocates only the bounded scratch space.
    pub fn new(payload: &'a [u8], itemsize: usize, out_len: usize) -> Result<Decoder<'a>, String> {
        if payload.len() < PREFIX {
            return Err(format!(
                "shuffle-zstd payload is {} bytes, shorter than its 8-byte prefix",
                payload.len()
            ));
        }
        if payload[0] as usize != itemsize || itemsize == 0 {
            return Err(format!(
                "shuffle-zstd payload has {} byte planes, the dtype needs {itemsize}",
                payload[0]
            ));
        }
        if payload[1..PREFIX].iter().any(|&b| b != 0) {
            return Err("shuffle-zstd reserved bytes are not zero".into());
        }
        if !out_len.is_multiple_of(itemsize) {
            return Err("output size is not a whole number of elements".into());
        }
        let n = out_len / itemsize;
        let table_end = PREFIX + 8 * itemsize;
        let table = payload.get(PREFIX..table_end).ok_or_else(|| {
            format!("shuffle-zstd payload is too short for its table of {itemsize} plane lengths")
        })?;
        let mut pos = table_end;
        let mut planes = Vec::with_capacity(itemsize);
        for (k, entry) in table.chunks_exact(8).enumerate() {
            let mut len_bytes = [0u8; 8];
            len_bytes.copy_from_slice(entry);
            let len = u64::from_le_bytes(len_bytes);
            let end = (pos as u64)
                .checked_add(len)
                .filter(|&e| e <= payload.len() as u64)
                .ok_or_else(|| {
                    format!(
                        "plane {k} claims {len} bytes at offset {pos}, past the payload's end ({} bytes)",
                        payload.len()
                    )
                })? as usize;
            let frame = &payload[pos..end];
            match zstd_safe::get_frame_content_size(frame) {
                Ok(Some(size)) if size == n as u64 => {}
                Ok(Some(size)) => {
                    return Err(format!("plane {k} declares {size} bytes, the tensor needs {n}"))
                }
                _ => return Err(format!("plane {k} is not a zstd frame with a content size")),
            }
            match zstd_safe::find_frame_compressed_size(frame) {
                Ok(l) if l == frame.len() => {}
                _ => return Err(format!("plane {k}'s zstd frame is damaged or has trailing bytes")),
            }
            planes.push(PlaneReader::new(k, frame)?);
            pos = end;
        }
        if pos != payload.len() {
            return Err(format!(
                "{} unexpected bytes after the last plane",
                payload.len() - pos
            ));
        }
        Ok(Decoder {
            itemsize,
            left: n,
            planes,
            scratch: vec![0u8; ROUND.min(n.max(1)) * itemsize],
        })
    }

    /// Decodes the next `out.len() / itemsize` elements into `out`.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), String> {
        let itemsize = self.itemsize;
        if !out.len().is_multiple_of(itemsize) || out.len() / itemsize > self.left {
            return Err("output size does not fit the elements left to decode".into());
        }
        let round = self.scratch.len() / itemsize;
        for piece in out.chunks_mut(round * itemsize) {
            let m = piece.len() / itemsize;
            for (k, plane) in self.planes.iter_mut().enumerate() {
                plane.fill(&mut self.scratch[k * round..k * round + m])?;
            }
            interleave(&self.scratch, round, m, itemsize, piece);
            self.left -= m;
        }
        Ok(())
    }

    /// After the last element: every frame must end exactly there.
    pub fn finish(mut self) -> Result<(), String> {
        if self.left != 0 {
            return Err(format!("{} elements were not decoded", self.left));
        }
        for plane in &mut self.planes {
            plane.finish()?;
        }
        Ok(())
    }
}

/// One plane's frame, decoded incrementally into caller-sized pieces.
struct PlaneReader<'a> {
    k: usize,
    dctx: zstd_safe::DCtx<'static>,
    input: zstd_safe::InBuffer<'a>,
    /// The frame has ended (the decoder returned 0).
    ended: bool,
}

impl<'a> PlaneReader<'a> {
    fn new(k: usize, frame: &'a [u8]) -> Result<Self, String> {
        let mut dctx = zstd_safe::DCtx::create();
        dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(MAX_WINDOW_LOG))
            .map_err(|c| format!("plane {k}: {}", zstd_safe::get_error_name(c)))?;
        Ok(PlaneReader {
            k,
            dctx,
            input: zstd_safe::InBuffer::around(frame),
            ended: false,
        })
    }

    /// Fills `buf` completely, or fails if the frame ends or breaks first.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let k = self.k;
        let want = buf.len();
        let mut output = zstd_safe::OutBuffer::around(buf);
        while output.pos() < want {
            if self.ended {
                return Err(format!("plane {k} ends before its declared size"));
            }
            let (before_in, before_out) = (self.input.pos, output.pos());
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut self.input)
                .map_err(|c| format!("plane {k}: {}", zstd_safe::get_error_name(c)))?;
            self.ended = hint == 0;
            if !self.ended && self.input.pos == before_in && output.pos() == before_out {
                return Err(format!("plane {k}'s zstd frame is truncated"));
            }
        }
        Ok(())
    }

    /// After every declared byte: the frame must end here, with no more content.
    fn finish(&mut self) -> Result<(), String> {
        let k = self.k;
        let mut probe = [0u8; 1];
        while !self.ended {
            let mut output = zstd_safe::OutBuffer::around(&mut probe[..]);
            let before_in = self.input.pos;
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut self.input)
                .map_err(|c| format!("plane {k}: {}", zstd_safe::get_error_name(c)))?;
            if output.pos() > 0 {
                return Err(format!("plane {k} inflates beyond its declared size"));
            }
            self.ended = hint == 0;
            if !self.ended && self.input.pos == before_in {
                return Err(format!("plane {k}'s zstd frame is truncated"));
            }
        }
        if self.input.pos != self.input.src.len() {
            return Err(format!("plane {k}'s zstd frame has trailing bytes"));
        }
        Ok(())
    }
}

/// `m` elements from `itemsize` planes laid out `stride` bytes apart in
/// `planes` into `out` (`m * itemsize` bytes).
fn interleave(planes: &[u8], stride: usize, m: usize, itemsize: usize, out: &mut [u8]) {
    match itemsize {
        4 => {
            let (p0, p1, p2, p3) = (
                &planes[..m],
                &planes[stride..stride + m],
                &planes[2 * stride..2 * stride + m],
                &planes[3 * stride..3 * stride + m],
            );
            for (i, e) in out.chunks_exact_mut(4).enumerate() {
                e.copy_from_slice(&[p0[i], p1[i], p2[i], p3[i]]);
            }
        }
        2 => {
            let (p0, p1) = (&planes[..m], &planes[stride..stride + m]);
            for (i, e) in out.chunks_exact_mut(2).enumerate() {
                e[0] = p0[i];
                e[1] = p1[i];
            }
        }
        _ => {
            for (i, e) in out.chunks_exact_mut(itemsize).enumerate() {
                for (k, b) in e.iter_mut().enumerate() {
                    *b = planes[k * stride + i];
                }
            }
        }
    }
}

/// Byte-plane transpose: element i's byte k goes to `k * n + i`.
fn transpose(data: &[u8], itemsize: usize) -> Vec<u8> {
    let n = data.len() / itemsize;
    let mut planes = vec![0u8; data.len()];
    match itemsize {
        // Specialised loops let the compiler keep every plane pointer in a
        // register and vectorise; the generic loop is 3x slower.
        4 => {
            let (p0, rest) = planes.split_at_mut(n);
            let (p1, rest) = rest.split_at_mut(n);
            let (p2, p3) = rest.split_at_mut(n);
            for (i, e) in data.chunks_exact(4).enumerate() {
                p0[i] = e[0];
                p1[i] = e[1];
                p2[i] = e[2];
                p3[i] = e[3];
            }
        }
        2 => {
            let (p0, p1) = planes.split_at_mut(n);
            for (i, e) in data.chunks_exact(2).enumerate() {
                p0[i] = e[0];
                p1[i] = e[1];
            }
        }
        _ => {
            for (i, e) in data.chunks_exact(itemsize).enumerate() {
                for (k, &b) in e.iter().enumerate() {
                    planes[k * n + i] = b;
                }
            }
        }
    }
    planes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        // Box-Muller over xorshift: Gaussian enough to exercise the codec.
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next().max(1e-300), next());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect()
    }

    #[test]
    fn round_trips_every_itemsize_bit_exactly() {
        let mut values = noise(4097, 7);
        values[0] = -0.0;
        values[1] = f32::from_bits(0x7fc0_1234); // NaN with a payload
        values[2] = f32::INFINITY;
        let bytes: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
        for itemsize in [1usize, 2, 4] {
            let enc = encode(&bytes, itemsize).unwrap();
            let mut out = vec![0u8; bytes.len()];
            decode_into(&enc, itemsize, &mut out).unwrap();
            assert_eq!(out, bytes, "itemsize {itemsize}");
        }
    }

    #[test]
    fn encode_and_hash_matches_encode() {
        use sha2::{Digest, Sha256};
        // Below and above the two-thread threshold, every itemsize.
        for (n, itemsize) in [(4097usize, 4usize), (1 << 20, 4), (3 << 20, 2), (1000, 1)] {
            let values = noise(n, 5);
            let bytes: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
            let (pieces, hash) = encode_and_hash(&bytes, itemsize).unwrap();
            assert_eq!(
                pieces.concat(),
                encode(&bytes, itemsize).unwrap(),
                "n={n} itemsize={itemsize}"
            );
            assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&bytes)));
        }
        assert!(encode_and_hash(&[0u8; 5], 4).is_err());
    }

    #[test]
    fn incompressible_planes_are_stored_and_read_everywhere() {
        // 4 MiB of float32-like elements: planes 0-2 are uniform bytes (stored), the
        // exponent plane compresses. Both decode here and with libzstd's
        // one-shot decoder; zero planes still compress.
        // Elements of three uniform random bytes (splitmix64) and an exponent-like top byte.
        let mut state = 11u64;
        let bytes: Vec<u8> = (0..1usize << 20)
            .flat_map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                let b = z.to_le_bytes();
                [b[0], b[1], b[2], [0x3e, 0x3f, 0x40, 0xbf][(b[3] & 3) as usize]]
            })
            .collect();
        let enc = encode(&bytes, 4).unwrap();
        let mut out = vec![0u8; bytes.len()];
        decode_into(&enc, 4, &mut out).unwrap();
        assert_eq!(out, bytes);
        let n = bytes.len() / 4;
        let mut pos = PREFIX + 32;
        for k in 0..4 {
            let len =
                u64::from_le_bytes(enc[PREFIX + 8 * k..PREFIX + 8 * k + 8].try_into().unwrap()) as usize;
            let frame = &enc[pos..pos + len];
            let stored = frame[4..6] == [0x80, 7 << 3]; // our header: 128 KiB window
            assert_eq!(stored, k < 3, "plane {k}");
            let plane: Vec<u8> = bytes.chunks_exact(4).map(|e| e[k]).collect();
            assert_eq!(zstd::bulk::decompress(frame, n).unwrap(), plane, "plane {k}");
            pos += len;
        }
        let zeros = vec![0u8; 4 << 20];
        assert!(encode(&zeros, 4).unwrap().len() < 4096);
        assert_eq!(
            stored_plane_frame(&[]).map(|f| zstd::bulk::decompress(&f, 0).unwrap()),
            Some(vec![])
        );
    }

    #[test]
    fn compresses_noise_near_the_entropy_limit() {
        let values = noise(65536, 1);
        let bytes: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
        let ratio = bytes.len() as f64 / encode(&bytes, 4).unwrap().len() as f64;
        assert!(ratio > 1.15, "f32 ratio {ratio}");
        let bf16: Vec<u8> = values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes())
            .collect();
        let ratio = bf16.len() as f64 / encode(&bf16, 2).unwrap().len() as f64;
        assert!(ratio > 1.40, "bf16 ratio {ratio}");
    }

    #[test]
    fn rejects_damage_without_panicking() {
        let bytes: Vec<u8> = bytemuck::cast_slice(&noise(1000, 3)).to_vec();
        let enc = encode(&bytes, 4).unwrap();
        let mut out = vec![0u8; bytes.len()];
        // Every truncation fails cleanly.
        for cut in 0..enc.len() {
            assert!(decode_into(&enc[..cut], 4, &mut out).is_err(), "cut {cut}");
        }
        // Wrong element size, wrong output size, forged plane lengths.
        assert!(decode_into(&enc, 2, &mut out).is_err());
        assert!(decode_into(&enc, 4, &mut vec![0u8; bytes.len() + 4]).is_err());
        let mut forged = enc.clone();
        forged[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_into(&forged, 4, &mut out).is_err());
        let mut trailing = enc.clone();
        trailing.push(0);
        assert!(decode_into(&trailing, 4, &mut out).is_err());
        // Flipping any byte never panics (it may still decode: frames carry
        // no checksum, the chunk's SHA-256 catches that).
        for i in 0..enc.len() {
            let mut flipped = enc.clone();
            flipped[i] ^= 0x5a;
            let _ = decode_into(&flipped, 4, &mut out);
        }
    }
}
