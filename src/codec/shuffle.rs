//! `shuffle-zstd`, the compact lossless tensor codec of format 1.1.
//!
//! Gaussian noise is incompressible except for its exponent bits, which all
//! sit in the most significant byte of each element. Transposing the
//! elements into byte planes (plane k holds byte k of every element) puts
//! that redundancy into one plane; compressing every plane as its own zstd
//! frame at level 1 then gets within 2-5 % of the entropy limit (1.18x for
//! f32/f16, 1.45x for bf16 noise). One frame for all planes would mix their
//! statistics in zstd's 128 KiB blocks and lose most of the gain, and higher
//! levels are no better on these planes (see FORMAT.md). Planes of 1 MiB or
//! more are tried on samples first: incompressible ones are stored as raw
//! blocks (and generated from the tensor only as the file is written), and
//! i.i.d. ones are literal-coded, which beats level 1 on size and speed.
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
/// One thread, one transposed copy, each plane encoded on its own: the
/// reference [`encode_and_hash`] is checked against.
pub fn encode(data: &[u8], itemsize: usize) -> Result<Vec<u8>, String> {
    check_elements(data, itemsize)?;
    let n = data.len() / itemsize;
    let planes = transpose(data, itemsize);
    let mut frames = Vec::with_capacity(itemsize);
    for k in 0..itemsize {
        let plane = &planes[k * n..(k + 1) * n];
        let mode = CCTX.with_borrow_mut(|cctx| plan_plane(cctx, data, itemsize, k))?;
        frames.push(match mode {
            PlaneMode::Stored => stored_plane_frame(plane).ok_or("a plane exceeds 4 GiB")?,
            mode => compress_plane(k, mode, plane)?,
        });
    }
    let mut out = payload_head(&frames);
    for frame in &frames {
        out.extend_from_slice(frame);
    }
    Ok(out)
}

/// Tensors at least this large are encoded by [`encode_and_hash`] on two
/// threads; smaller ones (an SDXL latent is 256 KiB) stay on the caller's.
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// The payload of [`encode`] as pieces (prefix and length table, then one
/// zstd frame per plane), plus the SHA-256 of `data`, computed together.
/// Byte-identical to [`encode`], whatever the number of threads.
pub fn encode_and_hash(data: &[u8], itemsize: usize) -> Result<(Vec<Vec<u8>>, [u8; 32]), String> {
    let (pieces, hash) = encode_and_hash_lazy(data, itemsize)?;
    Ok((pieces.into_iter().map(Piece::into_vec).collect(), hash))
}

/// A piece of an encoded payload: bytes, or a stored plane that is only
/// generated from the tensor when its bytes are copied or written.
#[derive(Debug)]
pub enum Piece<'a> {
    Bytes(Vec<u8>),
    Stored(StoredPlane<'a>),
}

impl Piece<'_> {
    pub fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Stored(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, generated if need be.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Piece::Bytes(b) => b,
            Piece::Stored(p) => {
                let mut out = vec![0u8; p.len()];
                p.fill(0, &mut out);
                out
            }
        }
    }
}

/// [`encode_and_hash`] with the stored (incompressible) planes left to be
/// generated from `data` when the payload is written ([`StoredPlane`]):
/// only the planes that are compressed are gathered into buffers. For
/// float32 noise that is the exponent plane, a quarter of the tensor; the
/// other three quarters go from the tensor to the file through a small
/// buffer. Above [`PARALLEL_MIN_BYTES`] the SHA-256 (one pass over the
/// tensor, the longest single job) runs on a second thread meanwhile.
pub fn encode_and_hash_lazy(data: &[u8], itemsize: usize) -> Result<(Vec<Piece<'_>>, [u8; 32]), String> {
    use sha2::{Digest, Sha256};
    check_elements(data, itemsize)?;
    let (pieces, hash) = if data.len() >= PARALLEL_MIN_BYTES {
        std::thread::scope(|scope| {
            let hasher = scope.spawn(|| <[u8; 32]>::from(Sha256::digest(data)));
            let pieces = encode_planes(data, itemsize);
            let hash = hasher.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (pieces, hash)
        })
    } else {
        (encode_planes(data, itemsize), Sha256::digest(data).into())
    };
    Ok((with_head(pieces?), hash))
}

/// [`encode_and_hash_lazy`] without the hash, on the caller's thread (the
/// file writer hashes large tensors on a thread of its own meanwhile).
pub fn encode_lazy(data: &[u8], itemsize: usize) -> Result<Vec<Piece<'_>>, String> {
    check_elements(data, itemsize)?;
    Ok(with_head(encode_planes(data, itemsize)?))
}

/// The plane frames behind the payload's prefix and length table.
fn with_head(mut pieces: Vec<Piece<'_>>) -> Vec<Piece<'_>> {
    let mut head = Vec::with_capacity(PREFIX + 8 * pieces.len());
    head.push(pieces.len() as u8);
    head.extend_from_slice(&[0u8; 7]);
    for piece in &pieces {
        head.extend_from_slice(&(piece.len() as u64).to_le_bytes());
    }
    pieces.insert(0, Piece::Bytes(head));
    pieces
}

fn check_elements(data: &[u8], itemsize: usize) -> Result<(), String> {
    if itemsize == 0 || itemsize > usize::from(u8::MAX) || !data.len().is_multiple_of(itemsize) {
        return Err(format!(
            "{} bytes are not whole elements of {itemsize} bytes",
            data.len()
        ));
    }
    Ok(())
}

/// The payload's prefix (plane count, reserved bytes) and length table.
fn payload_head(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut head = Vec::with_capacity(PREFIX + 8 * frames.len() + 1);
    head.push(frames.len() as u8);
    head.extend_from_slice(&[0u8; 7]);
    for frame in frames {
        head.extend_from_slice(&(frame.len() as u64).to_le_bytes());
    }
    head
}

/// Every plane's frame, in plane order (see [`encode_and_hash_lazy`]).
fn encode_planes(data: &[u8], itemsize: usize) -> Result<Vec<Piece<'_>>, String> {
    let n = data.len() / itemsize;
    let mut pieces = Vec::with_capacity(itemsize);
    let mut plane = Vec::new();
    for k in 0..itemsize {
        let mode = CCTX.with_borrow_mut(|cctx| plan_plane(cctx, data, itemsize, k))?;
        pieces.push(match mode {
            PlaneMode::Stored => {
                let stored = StoredPlane { data, itemsize, k };
                if u32::try_from(n).is_err() {
                    return Err("a plane exceeds 4 GiB".into());
                }
                Piece::Stored(stored)
            }
            mode => {
                if plane.is_empty() {
                    plane = vec![0u8; n];
                }
                gather(data, itemsize, k, &mut plane);
                Piece::Bytes(compress_plane(k, mode, &plane)?)
            }
        });
    }
    Ok(pieces)
}

/// Byte `k` of every element of `src` into `out` (one byte per element).
fn gather(src: &[u8], itemsize: usize, k: usize, out: &mut [u8]) {
    /// Elements per step of the fixed-size loops: whole little-endian
    /// words, split with a shift, vectorise.
    const LANES: usize = 32;
    match itemsize {
        4 => {
            let shift = 8 * k as u32;
            let full = out.len().min(src.len() / 4) / LANES * LANES;
            for (s, o) in src
                .chunks_exact(4 * LANES)
                .zip(out[..full].chunks_exact_mut(LANES))
            {
                for (b, e) in o.iter_mut().zip(s.chunks_exact(4)) {
                    *b = (u32::from_le_bytes([e[0], e[1], e[2], e[3]]) >> shift) as u8;
                }
            }
            for (b, e) in out[full..].iter_mut().zip(src[4 * full..].chunks_exact(4)) {
                *b = e[k];
            }
        }
        2 => {
            let shift = 8 * k as u32;
            let full = out.len().min(src.len() / 2) / LANES * LANES;
            for (s, o) in src
                .chunks_exact(2 * LANES)
                .zip(out[..full].chunks_exact_mut(LANES))
            {
                for (b, e) in o.iter_mut().zip(s.chunks_exact(2)) {
                    *b = (u16::from_le_bytes([e[0], e[1]]) >> shift) as u8;
                }
            }
            for (b, e) in out[full..].iter_mut().zip(src[2 * full..].chunks_exact(2)) {
                *b = e[k];
            }
        }
        _ => {
            for (b, e) in out.iter_mut().zip(src.chunks_exact(itemsize)) {
                *b = e[k];
            }
        }
    }
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

/// The context for [`PlaneMode::Literals`]: zstd's fast strategy at
/// acceleration 100 (level -100) with a 256-entry hash table and a 128 KiB
/// window hardly looks for matches, and Huffman-codes the literals (which
/// negative levels otherwise leave raw). On i.i.d. bytes (the exponents of
/// noise) that is 3-4x faster than level 1 and 8 % smaller: every match
/// level 1 finds there costs more bits than the literals it replaces.
fn literal_context() -> Result<zstd_safe::CCtx<'static>, String> {
    use zstd_safe::{CParameter as P, ParamSwitch};
    let mut cctx = zstd_safe::CCtx::try_create().ok_or("zstd could not allocate a context")?;
    for param in [
        P::CompressionLevel(LITERAL_LEVEL),
        P::LiteralCompressionMode(ParamSwitch::Enable),
        P::MinMatch(7),
        P::HashLog(8),
        P::WindowLog(17),
    ] {
        cctx.set_parameter(param)
            .map_err(|c| format!("zstd parameter refused: {}", zstd_safe::get_error_name(c)))?;
    }
    Ok(cctx)
}

/// zstd level of [`literal_context`] (an acceleration factor of 100).
const LITERAL_LEVEL: i32 = -100;

/// How one plane is encoded; chosen by [`plan_plane`] from the tensor's bytes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlaneMode {
    /// zstd level 1, minimum match 7 ([`plane_context`]).
    Search,
    /// Literals only, nearly ([`literal_context`]): for i.i.d. bytes.
    Literals,
    /// A frame of raw blocks ([`stored_plane_frame`]): incompressible bytes.
    Stored,
}

/// Planes at least this large are first tried on samples: one zstd cannot
/// shrink is stored instead of compressed, and one that compresses no worse
/// without a match search gets [`PlaneMode::Literals`].
const SAMPLED_MIN: usize = 1 << 20;
const SAMPLE: usize = 32 * 1024;

/// Picks plane `k`'s encoding from four 32 KiB samples of it, gathered
/// from `data` (the planes need not exist yet). Below [`SAMPLED_MIN`]
/// elements, always [`PlaneMode::Search`].
fn plan_plane(
    cctx: &mut zstd_safe::CCtx<'static>,
    data: &[u8],
    itemsize: usize,
    k: usize,
) -> Result<PlaneMode, String> {
    let n = data.len() / itemsize;
    if n < SAMPLED_MIN {
        return Ok(PlaneMode::Search);
    }
    let fail = |c| {
        format!(
            "zstd compression of plane {k} failed: {}",
            zstd_safe::get_error_name(c)
        )
    };
    let mut literal = literal_context()?;
    let mut sample = vec![0u8; SAMPLE];
    let mut scratch = Vec::with_capacity(zstd_safe::compress_bound(SAMPLE));
    let (mut searched, mut literals, mut compressible) = (0, 0, false);
    for i in 0..4 {
        let at = (n - SAMPLE) / 3 * i;
        let elements = data[at * itemsize..(at + SAMPLE) * itemsize].chunks_exact(itemsize);
        for (b, e) in sample.iter_mut().zip(elements) {
            *b = e[k];
        }
        scratch.clear();
        cctx.compress2(&mut scratch, &sample).map_err(fail)?;
        searched += scratch.len();
        // 0.5 % smaller than stored is worth the search.
        compressible |= scratch.len() < SAMPLE - SAMPLE / 200;
        scratch.clear();
        literal.compress2(&mut scratch, &sample).map_err(fail)?;
        literals += scratch.len();
    }
    Ok(if !compressible {
        PlaneMode::Stored
    } else if literals <= searched {
        PlaneMode::Literals
    } else {
        PlaneMode::Search
    })
}

/// One plane as one zstd frame with its content size (which the decoder
/// checks against the expected plane size), no checksum.
fn compress_plane(k: usize, mode: PlaneMode, plane: &[u8]) -> Result<Vec<u8>, String> {
    let fail = |c| {
        format!(
            "zstd compression of plane {k} failed: {}",
            zstd_safe::get_error_name(c)
        )
    };
    let mut frame = Vec::with_capacity(zstd_safe::compress_bound(plane.len()));
    if mode == PlaneMode::Literals {
        literal_context()?.compress2(&mut frame, plane).map_err(fail)?;
    } else {
        CCTX.with_borrow_mut(|cctx| cctx.compress2(&mut frame, plane))
            .map_err(fail)?;
    }
    Ok(frame)
}

/// Block size of a stored plane frame, and the frame header's length.
const STORED_BLOCK: usize = 128 * 1024;
const STORED_HEADER: usize = 10;

/// Plane `k` of a tensor as a zstd frame of raw blocks, generated from the
/// tensor's bytes on demand ([`StoredPlane::fill`]): frame header
/// descriptor 0x80 (4-byte content size, not single-segment, no checksum),
/// window 128 KiB (raw blocks need no history; a small window keeps
/// streaming decoders small), then blocks of 128 KiB, each behind its
/// 3-byte header. The size zstd itself gives incompressible bytes (it
/// stores such blocks raw), without the search (~100 ms per 64 MiB).
#[derive(Clone, Copy, Debug)]
pub struct StoredPlane<'a> {
    data: &'a [u8],
    itemsize: usize,
    k: usize,
}

impl StoredPlane<'_> {
    fn elements(&self) -> usize {
        self.data.len() / self.itemsize
    }

    fn blocks(&self) -> usize {
        self.elements().div_ceil(STORED_BLOCK).max(1)
    }

    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        STORED_HEADER + 3 * self.blocks() + self.elements()
    }

    /// Never true: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame's bytes `offset..offset + out.len()` into `out`;
    /// bytes past the frame's end are set to zero.
    pub fn fill(&self, offset: usize, out: &mut [u8]) {
        let (n, blocks, total) = (self.elements(), self.blocks(), self.len());
        let mut head = [0u8; STORED_HEADER];
        head[..6].copy_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0x80, 7 << 3]);
        head[6..].copy_from_slice(&(n as u32).to_le_bytes());
        let (mut pos, mut o) = (offset, 0);
        while o < out.len() {
            let left = out.len() - o;
            if pos >= total {
                out[o..].fill(0);
                return;
            }
            if pos < STORED_HEADER {
                let take = (STORED_HEADER - pos).min(left);
                out[o..o + take].copy_from_slice(&head[pos..pos + take]);
                (pos, o) = (pos + take, o + take);
                continue;
            }
            let j = (pos - STORED_HEADER) / (STORED_BLOCK + 3);
            let within = (pos - STORED_HEADER) % (STORED_BLOCK + 3);
            let len = (n - j * STORED_BLOCK).min(STORED_BLOCK);
            if within < 3 {
                let last = u32::from(j + 1 == blocks);
                let header = (last | ((len as u32) << 3)).to_le_bytes();
                let take = (3 - within).min(left);
                out[o..o + take].copy_from_slice(&header[within..within + take]);
                (pos, o) = (pos + take, o + take);
                continue;
            }
            let first = j * STORED_BLOCK + within - 3;
            let take = (len - (within - 3)).min(left);
            let src = &self.data[first * self.itemsize..(first + take) * self.itemsize];
            gather(src, self.itemsize, self.k, &mut out[o..o + take]);
            (pos, o) = (pos + take, o + take);
        }
    }
}

/// The stored frame of `plane` as bytes ([`StoredPlane`] of a one-byte
/// "tensor"). `None` above 4 GiB.
fn stored_plane_frame(plane: &[u8]) -> Option<Vec<u8>> {
    u32::try_from(plane.len()).ok()?;
    Some(
        Piece::Stored(StoredPlane {
            data: plane,
            itemsize: 1,
            k: 0,
        })
        .into_vec(),
    )
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
            // Our header (128 KiB window), then a first block of type 0 (raw).
            let stored = frame[4..6] == [0x80, 7 << 3] && (frame[10] >> 1) & 3 == 0;
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
    fn stored_planes_fill_any_range() {
        // 300,000 elements of 2 bytes: three blocks, the last one short.
        let data: Vec<u8> = (0..600_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for k in 0..2 {
            let plane = StoredPlane {
                data: &data,
                itemsize: 2,
                k,
            };
            let mut whole = vec![0u8; plane.len()];
            plane.fill(0, &mut whole);
            let bytes: Vec<u8> = data.chunks_exact(2).map(|e| e[k]).collect();
            assert_eq!(zstd::bulk::decompress(&whole, bytes.len()).unwrap(), bytes);
            assert_eq!(Some(whole.clone()), stored_plane_frame(&bytes));
            for (offset, len) in [
                (0, 1),
                (3, 20),
                (9, 5),
                (10, 3),
                (131_080, 300),
                (131_083, 150_000),
            ] {
                let mut part = vec![0xaau8; len];
                plane.fill(offset, &mut part);
                assert!(part == whole[offset..offset + len], "k={k} {offset}+{len}");
            }
            // Past the end: zeros, no panic.
            let mut tail = vec![0xaau8; 8];
            plane.fill(whole.len() - 4, &mut tail);
            assert_eq!(tail[..4], whole[whole.len() - 4..]);
            assert_eq!(tail[4..], [0u8; 4]);
        }
    }

    #[test]
    fn planes_are_planned_from_samples() {
        let n = 1usize << 20;
        // float32 noise: uniform mantissa bytes are stored, the exponents
        // (i.i.d., few values) are coded as literals.
        let bytes: Vec<u8> = bytemuck::cast_slice(&noise(n, 9)).to_vec();
        let modes: Vec<PlaneMode> = (0..4)
            .map(|k| {
                CCTX.with_borrow_mut(|cctx| plan_plane(cctx, &bytes, 4, k))
                    .unwrap()
            })
            .collect();
        use PlaneMode::*;
        assert_eq!(modes, [Stored, Stored, Stored, Literals]);
        // A smooth, repeating signal: matches pay, so level 1 keeps them.
        let smooth: Vec<u8> = (0..n)
            .flat_map(|i| {
                let (x, y) = ((i % 128) as f32 / 128.0, (i / 128 % 128) as f32 / 128.0);
                ((x * 6.0).sin() * (y * 4.0).cos() * 2.0).to_le_bytes()
            })
            .collect();
        let k2 = CCTX
            .with_borrow_mut(|cctx| plan_plane(cctx, &smooth, 4, 2))
            .unwrap();
        assert_eq!(k2, Search);
        let literal = encode(&bytes, 4).unwrap().len();
        let mut search = CCTX
            .with_borrow_mut(|cctx| {
                let mut frame = Vec::with_capacity(zstd_safe::compress_bound(n));
                let exponents: Vec<u8> = bytes.chunks_exact(4).map(|e| e[3]).collect();
                cctx.compress2(&mut frame, &exponents).map(|_| frame)
            })
            .unwrap()
            .len();
        search += 3 * (n + 10 + 3 * 8) + 40;
        // Literal coding is smaller than level 1 on noise exponents.
        assert!(literal < search, "{literal} vs {search}");
        // Small planes are never sampled.
        let small = &bytes[..4 * (SAMPLED_MIN - 1)];
        assert_eq!(
            CCTX.with_borrow_mut(|cctx| plan_plane(cctx, small, 4, 3))
                .unwrap(),
            Search
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
