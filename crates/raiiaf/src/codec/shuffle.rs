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

use super::zstd_frame::{FrameDecoder, Input, SliceInput};

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
    /// Bytes already encoded.
    Bytes(Vec<u8>),
    /// A plane stored as it is, generated from the tensor on demand.
    Stored(StoredPlane<'a>),
}

impl Piece<'_> {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Stored(p) => p.len(),
        }
    }

    /// Whether it holds no bytes.
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
/// 8 MiB. The writer's level-1 frames use 512 KiB at most; larger windows
/// are refused, so decoding holds at most `itemsize` windows besides `out`
/// (32 MiB for float32 in the worst case).
pub const MAX_WINDOW_LOG: u32 = 23;

/// Elements decoded per plane before they are interleaved into `out` by
/// [`Decoder::fill`]: the scratch space is `itemsize` x this many bytes,
/// whatever the tensor size.
const ROUND: usize = 64 * 1024;

/// Elements per region of [`Decoder::fill_parallel`]: its scratch space is
/// about (`itemsize` + 1) x this many bytes (1 MiB regions of float32, which
/// measured faster than 4 MiB ones: less of each pass leaves the caches).
const REGION: usize = 1 << 18;

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

/// Where a payload's plane frames lie, from its prefix and length table.
#[derive(Debug, Clone)]
pub struct Layout {
    itemsize: usize,
    /// Elements in the tensor.
    n: usize,
    /// (offset in the payload, length) of each plane's frame, plane 0 first.
    planes: Vec<(u64, u64)>,
}

impl Layout {
    /// Bytes of the prefix and table of a payload with `itemsize` planes.
    pub fn table_len(itemsize: usize) -> usize {
        PREFIX + 8 * itemsize
    }

    /// Checks the prefix and table (`head`: the payload's first bytes, at
    /// least [`table_len`](Layout::table_len) of them when the payload has
    /// that many) of a payload of `payload_len` bytes for a tensor of
    /// `out_len` bytes: every plane inside the payload, nothing after the last.
    pub fn parse(head: &[u8], payload_len: u64, itemsize: usize, out_len: usize) -> Result<Layout, String> {
        if payload_len < PREFIX as u64 || head.len() < PREFIX {
            return Err(format!(
                "shuffle-zstd payload is {payload_len} bytes, shorter than its 8-byte prefix"
            ));
        }
        if head[0] as usize != itemsize || itemsize == 0 {
            return Err(format!(
                "shuffle-zstd payload has {} byte planes, the dtype needs {itemsize}",
                head[0]
            ));
        }
        if head[1..PREFIX].iter().any(|&b| b != 0) {
            return Err("shuffle-zstd reserved bytes are not zero".into());
        }
        if !out_len.is_multiple_of(itemsize) {
            return Err("output size is not a whole number of elements".into());
        }
        let table_end = Layout::table_len(itemsize);
        let table = head
            .get(PREFIX..table_end)
            .filter(|_| payload_len >= table_end as u64)
            .ok_or_else(|| {
                format!("shuffle-zstd payload is too short for its table of {itemsize} plane lengths")
            })?;
        let mut pos = table_end as u64;
        let mut planes = Vec::with_capacity(itemsize);
        for (k, entry) in table.chunks_exact(8).enumerate() {
            let mut len_bytes = [0u8; 8];
            len_bytes.copy_from_slice(entry);
            let len = u64::from_le_bytes(len_bytes);
            let end = pos.checked_add(len).filter(|&e| e <= payload_len).ok_or_else(|| {
                format!(
                    "plane {k} claims {len} bytes at offset {pos}, past the payload's end ({payload_len} bytes)"
                )
            })?;
            planes.push((pos, len));
            pos = end;
        }
        if pos != payload_len {
            return Err(format!(
                "{} unexpected bytes after the last plane",
                payload_len - pos
            ));
        }
        Ok(Layout {
            itemsize,
            n: out_len / itemsize,
            planes,
        })
    }

    /// (offset in the payload, length) of each plane's frame, plane 0 first.
    pub fn planes(&self) -> &[(u64, u64)] {
        &self.planes
    }
}

/// [`decode_into`] in steps: [`Decoder::fill`] decodes the next elements
/// into each buffer it is given (a whole number of elements each, in order),
/// so a caller can hash or copy what is decoded while the rest decodes.
/// The frames come from any [`Input`]: a payload in memory, or windows of a
/// file.
pub struct Decoder<I> {
    itemsize: usize,
    /// Elements still to decode.
    left: usize,
    planes: Vec<PlaneReader<I>>,
    scratch: Vec<u8>,
}

impl<'a> Decoder<SliceInput<'a>> {
    /// Checks the payload's prefix, table and frame headers for a tensor of
    /// `out_len` bytes; allocates only the bounded scratch space.
    pub fn new(payload: &'a [u8], itemsize: usize, out_len: usize) -> Result<Self, String> {
        let layout = Layout::parse(payload, payload.len() as u64, itemsize, out_len)?;
        let mut inputs = Vec::with_capacity(itemsize);
        for (k, &(at, len)) in layout.planes.iter().enumerate() {
            let frame = &payload[at as usize..(at + len) as usize];
            if let Ok(l) = zstd_safe::find_frame_compressed_size(frame) {
                if l != frame.len() {
                    return Err(format!("plane {k}'s zstd frame is damaged or has trailing bytes"));
                }
            }
            inputs.push(SliceInput::new(frame));
        }
        Decoder::from_inputs(&layout, inputs)
    }
}

impl<I: Input> Decoder<I> {
    /// A decoder of the planes of `layout`, each read from its input (plane 0
    /// first): checks each frame's header (its content size must be the
    /// element count); allocates only the bounded scratch space.
    pub fn from_inputs(layout: &Layout, inputs: Vec<I>) -> Result<Self, String> {
        if inputs.len() != layout.itemsize {
            return Err(format!(
                "{} plane inputs for {} planes",
                inputs.len(),
                layout.itemsize
            ));
        }
        let n = layout.n;
        let mut planes = Vec::with_capacity(inputs.len());
        for (k, input) in inputs.into_iter().enumerate() {
            let frame = match StoredFrame::new(input) {
                Ok(stored) => Plane::Stored(stored),
                Err(input) => Plane::Zstd(FrameDecoder::new(input, MAX_WINDOW_LOG).map_err(|e| {
                    if e.contains("content size") || e.contains("frame header") {
                        format!("plane {k} is not a zstd frame with a content size")
                    } else {
                        format!("plane {k}: {e}")
                    }
                })?),
            };
            if frame.declared() != n as u64 {
                return Err(format!(
                    "plane {k} declares {} bytes, the tensor needs {n}",
                    frame.declared()
                ));
            }
            planes.push(PlaneReader {
                k,
                frame: Some(frame),
            });
        }
        Ok(Decoder {
            itemsize: layout.itemsize,
            left: n,
            planes,
            scratch: Vec::new(),
        })
    }

    /// Decodes the next `out.len() / itemsize` elements into `out`.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), String> {
        let itemsize = self.itemsize;
        if !out.len().is_multiple_of(itemsize) || out.len() / itemsize > self.left {
            return Err("output size does not fit the elements left to decode".into());
        }
        let round = ROUND.min(self.left.max(1));
        if self.scratch.len() < round * itemsize {
            self.scratch = vec![0u8; round * itemsize];
        }
        for piece in out.chunks_mut(round * itemsize) {
            let m = piece.len() / itemsize;
            for (k, plane) in self.planes.iter_mut().enumerate() {
                plane.fill(&mut self.scratch[k * round..k * round + m])?;
            }
            let planes: Vec<&[u8]> = (0..itemsize)
                .map(|k| &self.scratch[k * round..k * round + m])
                .collect();
            interleave(&planes, piece);
            self.left -= m;
        }
        Ok(())
    }

    /// After the last element: every frame must end exactly there.
    pub fn finish(&mut self) -> Result<(), String> {
        if self.left != 0 {
            return Err(format!("{} elements were not decoded", self.left));
        }
        for plane in &mut self.planes {
            plane.finish()?;
        }
        Ok(())
    }
}

impl<I: Input + Send> Decoder<I> {
    /// Decodes all the elements left into `out` on two threads, planes in
    /// parallel: the top plane (the exponents, the only one zstd compresses
    /// in noise) on a helper thread, the others and the interleaving on the
    /// caller's, region by region (1 MiB of float32). With `hash`, a third
    /// thread hashes each region once it is complete and the SHA-256 of
    /// `out` is returned. Memory besides `out`: about (`itemsize` + 1) x
    /// 256 KiB and the frames' windows.
    pub fn fill_parallel(&mut self, out: &mut [u8], hash: bool) -> Result<Option<[u8; 32]>, String> {
        use sha2::{Digest, Sha256};
        use std::sync::mpsc::sync_channel;
        let itemsize = self.itemsize;
        if out.len() != self.left * itemsize {
            return Err("output size does not fit the elements left to decode".into());
        }
        let n = self.left;
        let round = REGION.min(n.max(1));
        let split = itemsize.saturating_sub(1).max(1).min(self.planes.len());
        let (mine, theirs) = self.planes.split_at_mut(split);
        let result = std::thread::scope(|scope| {
            let (full_tx, full_rx) = sync_channel::<Result<Vec<u8>, String>>(2);
            let (free_tx, free_rx) = sync_channel::<Vec<u8>>(2);
            let helper_planes = theirs.len();
            for _ in 0..2 {
                // Cannot fail: the receiver is alive and the channel has room.
                let _ = free_tx.send(vec![0u8; round * helper_planes]);
            }
            let helper = scope.spawn(move || {
                let mut left = n;
                while left > 0 {
                    let m = left.min(round);
                    let Ok(mut buf) = free_rx.recv() else { return };
                    let filled = theirs
                        .iter_mut()
                        .enumerate()
                        .try_for_each(|(j, p)| p.fill(&mut buf[j * round..j * round + m]));
                    let failed = filled.is_err();
                    if full_tx.send(filled.map(|()| buf)).is_err() || failed {
                        return;
                    }
                    left -= m;
                }
            });
            let (hash_tx, hasher) = if hash {
                let (tx, rx) = sync_channel::<&[u8]>(2);
                let hasher = scope.spawn(move || {
                    let mut h = Sha256::new();
                    for piece in rx {
                        h.update(piece);
                    }
                    <[u8; 32]>::from(h.finalize())
                });
                (Some(tx), Some(hasher))
            } else {
                (None, None)
            };
            // The caller's share; its channels end with it, which stops the
            // helper and the hasher on an error.
            let result = caller_share(out, mine, round, helper_planes, full_rx, free_tx, hash_tx);
            // Panics there are bugs, not damage: passed on (the bindings
            // report them as internal errors).
            helper.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let digest = hasher.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            result.map(|()| digest)
        })?;
        self.left = 0;
        Ok(result)
    }
}

/// The caller's share of [`Decoder::fill_parallel`]: its planes (all but
/// the helper's `helper_planes`), the interleaving of each region of `round`
/// elements, and handing each finished region to the hasher.
fn caller_share<'o, I: Input>(
    out: &'o mut [u8],
    mine: &mut [PlaneReader<I>],
    round: usize,
    helper_planes: usize,
    full_rx: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    free_tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    hash_tx: Option<std::sync::mpsc::SyncSender<&'o [u8]>>,
) -> Result<(), String> {
    let split = mine.len();
    let itemsize = split + helper_planes;
    let mut scratch = vec![0u8; round * split];
    for region in out.chunks_mut(round * itemsize) {
        let m = region.len() / itemsize;
        for (k, p) in mine.iter_mut().enumerate() {
            p.fill(&mut scratch[k * round..k * round + m])?;
        }
        let helped = full_rx
            .recv()
            .map_err(|_| "the plane decoding thread stopped".to_string())??;
        let planes: Vec<&[u8]> = (0..split)
            .map(|k| &scratch[k * round..k * round + m])
            .chain((0..helper_planes).map(|j| &helped[j * round..j * round + m]))
            .collect();
        interleave(&planes, region);
        // The helper may have stopped after its last region: nothing to tell it.
        let _ = free_tx.send(helped);
        if let Some(tx) = &hash_tx {
            let done: &[u8] = region;
            tx.send(done)
                .map_err(|_| "the hashing thread stopped".to_string())?;
        }
    }
    Ok(())
}

/// One plane's frame, decoded incrementally into caller-sized pieces.
struct PlaneReader<I> {
    k: usize,
    /// `None` only after a failed switch from stored to zstd decoding.
    frame: Option<Plane<I>>,
}

/// How a plane's frame is decoded.
enum Plane<I> {
    /// By zstd's streaming decoder.
    Zstd(FrameDecoder<I>),
    /// A frame of the writer's stored form, copied block by block.
    Stored(StoredFrame<I>),
}

impl<I: Input> Plane<I> {
    fn declared(&self) -> u64 {
        match self {
            Plane::Zstd(f) => f.declared(),
            Plane::Stored(f) => f.declared,
        }
    }
}

impl<I: Input> PlaneReader<I> {
    /// Fills `buf` completely, or fails if the frame ends or breaks first.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let k = self.k;
        let fail = |e: String| format!("plane {k}: {e}");
        let done = match self.frame.as_mut() {
            None => return Err(fail("an earlier error stopped this plane".into())),
            Some(Plane::Zstd(f)) => return f.fill(buf).map_err(fail),
            Some(Plane::Stored(f)) => f.fill(buf).map_err(fail)?,
        };
        let Some(done) = done else { return Ok(()) };
        // A block the stored form does not have: zstd decodes the frame
        // from its start, the bytes already produced are skipped.
        let Some(Plane::Stored(stored)) = self.frame.take() else {
            return Err(fail("lost its frame".into()));
        };
        let produced = stored.produced;
        let mut input = stored.input;
        input.restart();
        let mut zstd = FrameDecoder::new(input, MAX_WINDOW_LOG).map_err(fail)?;
        zstd.skip(produced).map_err(fail)?;
        zstd.fill(&mut buf[done..]).map_err(fail)?;
        self.frame = Some(Plane::Zstd(zstd));
        Ok(())
    }

    /// After every declared byte: the frame must end here, with no more content.
    fn finish(&mut self) -> Result<(), String> {
        let k = self.k;
        match self.frame.as_mut() {
            None => Err(format!("plane {k}: an earlier error stopped this plane")),
            Some(Plane::Zstd(f)) => f.finish().map_err(|e| format!("plane {k}: {e}")),
            Some(Plane::Stored(f)) => f.finish().map_err(|e| format!("plane {k}: {e}")),
        }
    }
}

/// The frame header [`stored_plane_frame`] writes: magic, descriptor 0x80
/// (4-byte content size, not single-segment, no checksum, no dictionary),
/// window 128 KiB; then the content size.
const STORED_FRAME_PREFIX: [u8; 6] = [0x28, 0xb5, 0x2f, 0xfd, 0x80, 7 << 3];
const STORED_BLOCK_MAX: u32 = 128 * 1024;

/// A plane frame in the writer's stored form, decoded without zstd: its
/// raw (and RLE) blocks are copied from the input straight into the output,
/// where zstd's streaming decoder would copy each byte twice more. Checks
/// what zstd checks: block types and sizes, the content size, the frame's
/// end. A compressed block (valid zstd, though the writer never puts one in
/// this form) hands the frame back to zstd.
struct StoredFrame<I> {
    input: I,
    declared: u64,
    produced: u64,
    /// Bytes left in the current block, its type (0 raw, 1 RLE) and RLE byte.
    block_left: u32,
    rle: Option<u8>,
    /// The last block's header has been read.
    last: bool,
}

impl<I: Input> StoredFrame<I> {
    /// The frame, if its header is the stored form's; else the input back.
    fn new(mut input: I) -> Result<Self, I> {
        let declared = match input.fill() {
            Ok(head) if head.len() >= 10 && head[..6] == STORED_FRAME_PREFIX => {
                u64::from(u32::from_le_bytes([head[6], head[7], head[8], head[9]]))
            }
            _ => return Err(input),
        };
        input.consume(10);
        Ok(StoredFrame {
            input,
            declared,
            produced: 0,
            block_left: 0,
            rle: None,
            last: false,
        })
    }

    /// The next `out.len()` bytes of the input.
    fn read(&mut self, out: &mut [u8]) -> Result<(), String> {
        let mut at = 0;
        while at < out.len() {
            let src = self.input.fill()?;
            if src.is_empty() {
                return Err("the zstd frame is truncated".into());
            }
            let n = src.len().min(out.len() - at);
            out[at..at + n].copy_from_slice(&src[..n]);
            self.input.consume(n);
            at += n;
        }
        Ok(())
    }

    /// Fills `buf`; `Ok(Some(done))` when a compressed block comes after
    /// `done` bytes of `buf` (zstd must take over), `Ok(None)` when full.
    fn fill(&mut self, buf: &mut [u8]) -> Result<Option<usize>, String> {
        let mut at = 0;
        while at < buf.len() {
            if self.block_left == 0 {
                if self.last {
                    return Err("the zstd frame ends before its declared size".into());
                }
                let mut h = [0u8; 3];
                self.read(&mut h)?;
                let header = u32::from_le_bytes([h[0], h[1], h[2], 0]);
                self.last = header & 1 == 1;
                let size = header >> 3;
                match (header >> 1) & 3 {
                    2 => {
                        self.produced += at as u64;
                        return Ok(Some(at));
                    }
                    3 => return Err("damaged zstd frame: Corrupted block detected".into()),
                    kind => {
                        if size > STORED_BLOCK_MAX {
                            return Err("damaged zstd frame: Corrupted block detected".into());
                        }
                        if self.produced + at as u64 + u64::from(size) > self.declared {
                            return Err("the zstd frame inflates beyond its declared size".into());
                        }
                        self.rle = None;
                        if kind == 1 {
                            let mut b = [0u8; 1];
                            self.read(&mut b)?;
                            self.rle = Some(b[0]);
                        }
                        self.block_left = size;
                    }
                }
                continue;
            }
            let n = (self.block_left as usize).min(buf.len() - at);
            match self.rle {
                Some(b) => buf[at..at + n].fill(b),
                None => self.read(&mut buf[at..at + n])?,
            }
            self.block_left -= n as u32;
            at += n;
        }
        self.produced += at as u64;
        Ok(None)
    }

    /// After every declared byte: no content left, and the frame fills its input.
    fn finish(&mut self) -> Result<(), String> {
        let beyond = || "the zstd frame inflates beyond its declared size".to_string();
        if self.produced != self.declared {
            return Err("the zstd frame ends before its declared size".into());
        }
        // Empty raw or RLE blocks may follow; anything else is content beyond the declared size.
        while !self.last || self.block_left != 0 {
            if self.block_left != 0 {
                return Err(beyond());
            }
            let mut h = [0u8; 3];
            self.read(&mut h)?;
            let header = u32::from_le_bytes([h[0], h[1], h[2], 0]);
            self.last = header & 1 == 1;
            match ((header >> 1) & 3, header >> 3) {
                (0, 0) => {}
                (1, 0) => self.read(&mut [0u8; 1])?,
                (3, _) => return Err("damaged zstd frame: Corrupted block detected".into()),
                _ => return Err(beyond()),
            }
        }
        if self.produced != self.declared {
            return Err("the zstd frame ends before its declared size".into());
        }
        let left = self.input.remaining();
        if left != 0 {
            return Err(format!("{left} unexpected bytes follow the zstd frame"));
        }
        Ok(())
    }
}

/// `m` elements from `planes` (one slice of `m` bytes per byte of an
/// element, plane 0 first) into `out` (`m * planes.len()` bytes).
fn interleave(planes: &[&[u8]], out: &mut [u8]) {
    match planes {
        [p0, p1, p2, p3] => {
            for (((e, &a), (&b, &c)), &d) in out
                .chunks_exact_mut(4)
                .zip(p0.iter())
                .zip(p1.iter().zip(p2.iter()))
                .zip(p3.iter())
            {
                e.copy_from_slice(&[a, b, c, d]);
            }
        }
        [p0, p1] => {
            for ((e, &a), &b) in out.chunks_exact_mut(2).zip(p0.iter()).zip(p1.iter()) {
                e[0] = a;
                e[1] = b;
            }
        }
        _ => {
            let itemsize = planes.len().max(1);
            for (i, e) in out.chunks_exact_mut(itemsize).enumerate() {
                for (b, plane) in e.iter_mut().zip(planes) {
                    *b = plane[i];
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

    /// One plane's frame through the decoder's plane reader, in odd-sized pieces.
    fn decode_plane(frame: &[u8], n: usize) -> Result<Vec<u8>, String> {
        let layout = Layout {
            itemsize: 1,
            n,
            planes: vec![(0, frame.len() as u64)],
        };
        let mut decoder = Decoder::from_inputs(&layout, vec![SliceInput::new(frame)])?;
        let mut out = vec![0u8; n];
        for piece in out.chunks_mut(7777) {
            decoder.fill(piece)?;
        }
        decoder.finish()?;
        Ok(out)
    }

    #[test]
    fn stored_form_decodes_as_zstd_does() {
        let mut state = 3u64;
        let random: Vec<u8> = (0..300_000)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        // The writer's stored form (copied without zstd).
        let stored = stored_plane_frame(&random).unwrap();
        assert_eq!(stored[..6], STORED_FRAME_PREFIX);
        assert_eq!(decode_plane(&stored, random.len()).unwrap(), random);
        // zstd's own frames with the same header (128 KiB window, 4-byte size, no checksum):
        // raw blocks first, then compressed ones, so the reader hands over to zstd midway.
        let mut mixed = random.clone();
        mixed.extend((0..300_000u32).map(|i| (i / 1000) as u8));
        let mut cctx = zstd_safe::CCtx::create();
        cctx.set_parameter(zstd_safe::CParameter::CompressionLevel(1))
            .unwrap();
        cctx.set_parameter(zstd_safe::CParameter::WindowLog(17)).unwrap();
        let mut frame = Vec::with_capacity(zstd_safe::compress_bound(mixed.len()));
        cctx.compress2(&mut frame, &mixed).unwrap();
        assert_eq!(frame[..6], STORED_FRAME_PREFIX, "zstd wrote another header");
        assert!(
            frame.len() < mixed.len() * 3 / 4,
            "the second half did not compress"
        );
        assert_eq!(decode_plane(&frame, mixed.len()).unwrap(), mixed);
        // Damage: every cut fails; flips fail or decode as libzstd decodes them.
        for f in [&stored, &frame] {
            let n = if f == &stored { random.len() } else { mixed.len() };
            for cut in [0, 5, 9, 10, 11, 12, 13, 1000, f.len() / 2, f.len() - 1] {
                assert!(decode_plane(&f[..cut], n).is_err(), "cut {cut}");
            }
            // (Not the descriptor: another header goes to zstd, whose window limit differs.)
            let _ = decode_plane(&[&f[..4], &[f[4] ^ 0x41], &f[5..]].concat(), n);
            for at in [6, 9, 10, 11, 12, 200, 131_084, 131_085, 131_086, f.len() - 1] {
                let mut bad = f.clone();
                bad[at] ^= 0x41;
                let ours = decode_plane(&bad, n).ok();
                let theirs = zstd::bulk::decompress(&bad, n).ok().filter(|d| d.len() == n);
                assert_eq!(ours.is_some(), theirs.is_some(), "byte {at}");
                assert!(ours == theirs, "byte {at}");
            }
            let mut trailing = f.clone();
            trailing.push(0);
            assert!(decode_plane(&trailing, n).is_err());
            assert!(decode_plane(f, n + 1).is_err() && decode_plane(f, n - 1).is_err());
        }
        // Empty blocks after the content are allowed, content beyond it is not.
        let mut empty_tail = stored_plane_frame(&random[..1000]).unwrap();
        empty_tail[10] &= !1; // the data block (header at 10) is no longer the last one
        empty_tail.extend_from_slice(&1u32.to_le_bytes()[..3]); // an empty last raw block
        assert_eq!(decode_plane(&empty_tail, 1000).unwrap(), &random[..1000]);
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
