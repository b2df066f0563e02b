//! zfp reversible (lossless) codec, the LATN "compressed" encoding of raiiaf 1.x (reference writer: zfpy).
//!
//! The reference writes a compressed latent with zfpy 1.0.1 `compress_numpy(arr)`: a float32 field
//! with `nx` = last numpy axis, reversible mode, the full 96-bit zfp header
//! (`zfp_write_header(.., ZFP_HEADER_FULL)`), then `zfp_compress`, serial execution. [`encode_f32`]
//! makes exactly those calls through `zfp-rs-ffi`, a pure-Rust port of libzfp 1.0.1 behind the same
//! C API (so building needs no cmake, libclang or C compiler), and its output is byte-identical to
//! zfpy's: `tests/zfp_interop.py` checks both directions against the real libzfp in zfpy.
//!
//! Decoding is where the danger lies: libzfp's decoder (and the port, which keeps its raw-pointer
//! API) does no bounds checking at all. It reads the
//! stream one 64-bit word at a time and trusts the header's dimensions, so a forged header or a short
//! stream makes it read past the end of the buffer (the reference decoder segfaults on a 5 KB file).
//! [`decode_f32_into`] therefore
//!
//! 1. parses the 96-bit header itself and rejects it unless it says codec 5, float32, reversible
//!    mode and exactly the caller's shape (which comes from the manifest and sized `out`);
//! 2. reads the stream into an owned, 8-byte aligned word buffer a window at a time
//!    ([`WINDOW_BYTES`], 16 MiB), with zero padding after it: zfp blocks carry no state from one
//!    to the next besides the bit position, so when the next block could need bytes past the
//!    window, the window moves on to the word holding the read position;
//! 3. drives libzfp block by block (the same loop and calls as `zfp_decompress`) and, before each
//!    block, checks that the read position is still inside the window's real bytes with room for
//!    the worst case, or in the stream's last window, inside the real stream. One reversible float
//!    block can consume at most `zfp_stream_maximum_size(one block)` bytes, and that much padding
//!    (plus a word) follows the window, so no block can read outside the buffer. A stream that
//!    ends early is reported as [`ZfpError::Truncated`] as soon as a block would start past its
//!    end.
//!
//! This costs at most 16 MiB plus about 1 KiB of extra memory whatever the stream's size (a
//! batch-1 noise stream is 3.8x its tensor), instead of a copy of the stream, let alone padding
//! it to `zfp_stream_maximum_size` of the whole field (which, for shapes with size-1 axes, can be
//! dozens of times the output size even when the stream is tiny).

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use zfp_rs_ffi as sys;

/// zfp codec version written by libzfp 1.0.x (zfpy 1.0.1); streams of other versions are refused.
const CODEC_VERSION: u8 = 5;
/// 12-bit short mode code that zfp writes for reversible mode (`2048 + 128`).
const MODE_REVERSIBLE: u16 = 2176;
/// Full header of a reversible stream: 32-bit magic + 52-bit field metadata + 12-bit mode.
const HEADER_BITS: u64 = 96;
const HEADER_BYTES: usize = 12;
/// zfp_type codes as stored in the header (`type - 1` in the two low metadata bits).
const TYPE_NAMES: [&str; 4] = ["int32", "int64", "float32", "float64"];

/// Errors from [`encode_f32`] and [`decode_f32_into`]. On any error from the decoder the contents
/// of `out` are unspecified (partially written).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZfpError {
    /// zfp stores 1-D to 4-D fields only.
    #[error("zfp supports arrays of rank 1 to 4, got rank {rank}")]
    UnsupportedRank {
        /// The rank asked for.
        rank: usize,
    },
    /// An axis is empty or larger than the zfp header can record for this rank.
    #[error("axis {axis} has size {size}; a rank-{rank} zfp array needs every axis in 1..={max}")]
    DimensionOutOfRange {
        /// The axis (numpy order, outermost first).
        axis: usize,
        /// Its size.
        size: u64,
        /// The array's rank.
        rank: usize,
        /// The largest size the header can record at this rank.
        max: u64,
    },
    /// The element count or byte size of the shape does not fit in `usize`.
    #[error("array of shape {shape:?} is too large for this platform")]
    TooLarge {
        /// The shape.
        shape: Vec<u64>,
    },
    /// `data` given to the encoder is not `product(shape) * 4` bytes.
    #[error("input holds {actual} bytes but float32 shape {shape:?} needs {expected}")]
    InputLength {
        /// The shape.
        shape: Vec<u64>,
        /// The bytes the shape needs.
        expected: usize,
        /// The bytes given.
        actual: usize,
    },
    /// `out` given to the decoder is not `product(shape) * 4` bytes.
    #[error("output buffer holds {actual} bytes but float32 shape {shape:?} needs {expected}")]
    OutputLength {
        /// The shape.
        shape: Vec<u64>,
        /// The bytes the shape needs.
        expected: usize,
        /// The bytes the buffer holds.
        actual: usize,
    },
    /// Fewer than the 12 bytes of a full zfp header.
    #[error("zfp stream of {len} bytes is too short to hold the 12-byte zfp header")]
    HeaderTooShort {
        /// The stream's length in bytes.
        len: usize,
    },
    /// The stream does not start with `b"zfp"`.
    #[error("not a zfp stream: first bytes are {found:02x?}, expected 7a 66 70 (\"zfp\")")]
    BadMagic {
        /// The first three bytes.
        found: [u8; 3],
    },
    /// The codec version byte after the magic is not 5 (zfp 1.0.x).
    #[error("zfp codec version {found} is not supported (expected {CODEC_VERSION}, zfp 1.0.x)")]
    UnsupportedCodecVersion {
        /// The version byte.
        found: u8,
    },
    /// The header's scalar type is not float32.
    #[error("zfp stream holds {found} values, expected float32")]
    NotFloat32 {
        /// The scalar type the header names.
        found: &'static str,
    },
    /// The header's mode is not reversible (lossless). `mode` is the 12-bit field; 4095 means a
    /// 64-bit expert-mode word follows, which zfpy never writes.
    #[error(
        "zfp stream is not in reversible (lossless) mode: header mode field is {mode}, expected {MODE_REVERSIBLE}"
    )]
    NotReversible {
        /// The header's 12-bit mode field.
        mode: u16,
    },
    /// The header's rank or dimensions (numpy order, outermost first) differ from the expected shape.
    #[error("zfp header says shape {header:?} but the expected shape is {expected:?}")]
    ShapeMismatch {
        /// The shape in the zfp header.
        header: Vec<u64>,
        /// The shape the caller expects.
        expected: Vec<u64>,
    },
    /// Decoding needed bits beyond the end of the stream: the stream is truncated or corrupt.
    #[error(
        "zfp stream truncated or corrupt: decoding needs more than the {available} bytes given \
         (it had consumed {consumed} bytes when this was detected)"
    )]
    Truncated {
        /// Bytes consumed when the overrun was detected.
        consumed: u64,
        /// Bytes the stream holds.
        available: usize,
    },
    /// libzfp reported a failure (out of memory, or an internal inconsistency).
    #[error("libzfp failed: {0}")]
    Libzfp(&'static str),
    /// The stream's bytes could not be read (a file that failed or shrank).
    #[error("{0}")]
    Read(String),
}

/// A zfp stream that is read a window at a time: a slice, or a range of a file.
pub trait StreamSource {
    /// The stream's length in bytes.
    fn len(&self) -> u64;
    /// Whether the stream is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` with the bytes at `pos` (`pos + buf.len()` <= `len()`).
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), String>;
}

impl StreamSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), String> {
        let src = usize::try_from(pos)
            .ok()
            .and_then(|p| self.get(p..p.checked_add(buf.len())?))
            .ok_or("a read outside the zfp stream")?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Bytes of the stream held in memory at a time while decoding: the decoder
/// reads the stream in windows of this size (plus one block's worst case),
/// never the whole stream, which for noise is 3.8x the tensor.
pub const WINDOW_BYTES: usize = 16 << 20;

/// Largest extent of one axis that a zfp header can hold *and read back*, for a rank-`rank` array
/// (`None` for ranks other than 1..=4). The 52-bit metadata keeps 48 bits for the dimensions:
/// 12 bits per axis in 4-D, 16 in 3-D, 24 in 2-D; in 1-D zfp writes 48 bits but
/// `zfp_field_set_metadata` reads back only 32 of them, so 2^32 is the real 1-D limit.
pub fn max_dim(rank: usize) -> Option<u64> {
    match rank {
        1 => Some(1 << 32),
        2 => Some(1 << 24),
        3 => Some(1 << 16),
        4 => Some(1 << 12),
        _ => None,
    }
}

/// A validated shape in zfp terms.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    rank: usize,
    /// (nx, ny, nz, nw): nx is the last (fastest) numpy axis; axes beyond `rank` are 1.
    ext: [usize; 4],
    /// Number of elements.
    count: usize,
}

impl Geometry {
    fn new(shape: &[u64]) -> Result<Self, ZfpError> {
        let rank = shape.len();
        let max = max_dim(rank).ok_or(ZfpError::UnsupportedRank { rank })?;
        let too_large = || ZfpError::TooLarge {
            shape: shape.to_vec(),
        };
        let mut ext = [1usize; 4];
        let mut count = 1usize;
        for (axis, &size) in shape.iter().enumerate() {
            if size == 0 || size > max {
                return Err(ZfpError::DimensionOutOfRange {
                    axis,
                    size,
                    rank,
                    max,
                });
            }
            let size = usize::try_from(size).map_err(|_| too_large())?;
            ext[rank - 1 - axis] = size;
            count = count.checked_mul(size).ok_or_else(too_large)?;
        }
        // The byte size must fit too, and in isize, so that element offsets and zfp's ptrdiff_t
        // strides cannot overflow.
        match count.checked_mul(4) {
            Some(bytes) if isize::try_from(bytes).is_ok() => {}
            _ => return Err(too_large()),
        }
        Ok(Self { rank, ext, count })
    }

    fn byte_len(&self) -> usize {
        // Cannot overflow: checked in `new`.
        self.count * 4
    }

    /// Number of 4^rank blocks (at most `count`).
    fn blocks(&self) -> u64 {
        self.ext.iter().map(|&e| e.div_ceil(4) as u64).product()
    }

    /// A `zfp_field` as `zfp_field_{1,2,3,4}d(data, zfp_type_float, nx, ..)` builds it: unused
    /// dimensions 0, strides 0 (contiguous, C order).
    fn field(&self, data: *mut c_void) -> sys::zfp_field {
        let dim = |i: usize| if i < self.rank { self.ext[i] } else { 0 };
        sys::zfp_field {
            r#type: sys::zfp_type_zfp_type_float,
            nx: dim(0),
            ny: dim(1),
            nz: dim(2),
            nw: dim(3),
            sx: 0,
            sy: 0,
            sz: 0,
            sw: 0,
            data,
        }
    }
}

/// The 96-bit header at the start of a zfp stream, as written with `ZFP_HEADER_FULL`.
#[derive(Debug)]
struct Header {
    /// zfp_type code (1 int32, 2 int64, 3 float, 4 double).
    type_code: u8,
    /// Dimensions in numpy order (outermost first).
    shape: Vec<u64>,
    /// 12-bit mode field.
    mode: u16,
}

impl Header {
    /// zfp writes bits LSB first into little-endian 64-bit words, so the first 12 bytes read as one
    /// little-endian integer hold: bits 0-31 magic "zfp" + codec version, bits 32-83 metadata,
    /// bits 84-95 mode.
    fn parse(stream: &[u8]) -> Result<Self, ZfpError> {
        let Some(head) = stream.get(..HEADER_BYTES) else {
            return Err(ZfpError::HeaderTooShort { len: stream.len() });
        };
        if &head[..3] != b"zfp" {
            return Err(ZfpError::BadMagic {
                found: [head[0], head[1], head[2]],
            });
        }
        if head[3] != CODEC_VERSION {
            return Err(ZfpError::UnsupportedCodecVersion { found: head[3] });
        }
        let mut bytes = [0u8; 16];
        bytes[..HEADER_BYTES].copy_from_slice(head);
        let v = u128::from_le_bytes(bytes);
        let meta = ((v >> 32) & ((1u128 << 52) - 1)) as u64;
        let mode = ((v >> 84) & 0xfff) as u16;

        // Mirror of zfp_field_set_metadata, except that in 1-D all 48 dimension bits are kept
        // (zfp ignores the top 16): a header with those bits set then disagrees with any valid
        // shape instead of silently meaning something else.
        let type_code = (meta & 3) as u8 + 1;
        let rank = ((meta >> 2) & 3) as usize + 1;
        let bits_per_dim = 48 / rank as u32;
        let mask = (1u64 << bits_per_dim) - 1;
        let dims = meta >> 4;
        let mut shape: Vec<u64> = (0..rank)
            .map(|i| ((dims >> (bits_per_dim * i as u32)) & mask) + 1)
            .collect();
        shape.reverse(); // zfp stores nx first; numpy lists the outermost axis first
        Ok(Self {
            type_code,
            shape,
            mode,
        })
    }

    fn check(&self, expected: &[u64]) -> Result<(), ZfpError> {
        if u32::from(self.type_code) != sys::zfp_type_zfp_type_float.0 {
            return Err(ZfpError::NotFloat32 {
                found: TYPE_NAMES[usize::from(self.type_code - 1)],
            });
        }
        if self.mode != MODE_REVERSIBLE {
            return Err(ZfpError::NotReversible { mode: self.mode });
        }
        if self.shape != expected {
            return Err(ZfpError::ShapeMismatch {
                header: self.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }
}

/// Owned `zfp_stream`, set to reversible mode and serial execution.
struct ZfpStream(NonNull<sys::zfp_stream>);

impl ZfpStream {
    fn open_reversible() -> Result<Self, ZfpError> {
        // SAFETY: zfp_stream_open(NULL) only allocates and initialises a zfp_stream; it returns
        // NULL on allocation failure, which NonNull::new turns into an error.
        let raw = unsafe { sys::zfp_stream_open(ptr::null_mut()) };
        let zs = Self(NonNull::new(raw).ok_or(ZfpError::Libzfp("zfp_stream_open: out of memory"))?);
        // SAFETY: zs.0 is a valid, exclusively owned zfp_stream.
        let serial =
            unsafe { sys::zfp_stream_set_execution(zs.0.as_ptr(), sys::zfp_exec_policy_zfp_exec_serial) };
        if serial == 0 {
            return Err(ZfpError::Libzfp("zfp_stream_set_execution(serial) refused"));
        }
        // SAFETY: as above; this only sets the four mode parameters.
        unsafe { sys::zfp_stream_set_reversible(zs.0.as_ptr()) };
        Ok(zs)
    }

    fn as_ptr(&self) -> *mut sys::zfp_stream {
        self.0.as_ptr()
    }

    /// `zfp_stream_maximum_size`: worst-case stream bytes (header included, rounded up to 64-bit
    /// words) for `field` in the stream's current mode; 0 if it does not fit in `usize`.
    fn maximum_size(&self, field: &sys::zfp_field) -> usize {
        // SAFETY: both pointers are valid; the function only reads them (it never touches
        // field->data).
        unsafe { sys::zfp_stream_maximum_size(self.as_ptr(), field) }
    }
}

impl Drop for ZfpStream {
    fn drop(&mut self) {
        // SAFETY: the pointer came from zfp_stream_open and is closed exactly once. zfp_stream_close
        // frees only the zfp_stream, not an attached bit stream (that is BitStream's job).
        unsafe { sys::zfp_stream_close(self.0.as_ptr()) };
    }
}

/// Owned libzfp `bitstream` over a borrowed word buffer; the borrow keeps the buffer alive and
/// unaliased for as long as libzfp may read or write it.
struct BitStream<'a> {
    raw: NonNull<sys::bitstream>,
    _buf: PhantomData<&'a mut [u64]>,
}

impl<'a> BitStream<'a> {
    fn open(buf: &'a mut [u64]) -> Result<Self, ZfpError> {
        // SAFETY: stream_open only records the pointer and byte capacity (a whole number of 64-bit
        // words, correctly aligned for libzfp's word accesses); the PhantomData borrow keeps `buf`
        // valid and exclusively ours while the bitstream exists.
        let raw = unsafe { sys::stream_open(buf.as_mut_ptr().cast::<c_void>(), buf.len() * 8) };
        Ok(Self {
            raw: NonNull::new(raw).ok_or(ZfpError::Libzfp("stream_open: out of memory"))?,
            _buf: PhantomData,
        })
    }

    /// Bit offset of the next bit to be read.
    fn read_pos(&self) -> u64 {
        // SAFETY: valid bitstream; stream_rtell only reads its fields.
        unsafe { sys::stream_rtell(self.raw.as_ptr()) }
    }
}

impl Drop for BitStream<'_> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from stream_open and is closed exactly once; stream_close frees
        // the bitstream struct only, never the caller's buffer.
        unsafe { sys::stream_close(self.raw.as_ptr()) };
    }
}

/// Compresses float32 data (little-endian bytes, C order, numpy shape `shape`) exactly like zfpy
/// 1.0.1 `compress_numpy(arr)`: reversible mode, full header, serial zfp 1.0.1. Rank 1..=4 (the
/// reference only writes rank 4), each axis in `1..=max_dim(rank)` (4096 for rank 4).
pub fn encode_f32(data: &[u8], shape: &[u64]) -> Result<Vec<u8>, ZfpError> {
    let geom = Geometry::new(shape)?;
    if data.len() != geom.byte_len() {
        return Err(ZfpError::InputLength {
            shape: shape.to_vec(),
            expected: geom.byte_len(),
            actual: data.len(),
        });
    }
    // libzfp reads the input as native `float`s: use the bytes in place when that is what they
    // already are (little-endian host, 4-byte aligned), otherwise convert into an aligned copy.
    let converted: Vec<f32>;
    let values: *const f32 = if cfg!(target_endian = "little") && data.as_ptr().cast::<f32>().is_aligned() {
        data.as_ptr().cast()
    } else {
        converted = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        converted.as_ptr()
    };
    // zfp_compress takes the field through a const pointer and only reads `data`; the *mut cast
    // is what the C struct type requires.
    let field = geom.field(values.cast_mut().cast());

    let zs = ZfpStream::open_reversible()?;
    let max_bytes = zs.maximum_size(&field);
    if max_bytes == 0 {
        return Err(ZfpError::TooLarge {
            shape: shape.to_vec(),
        });
    }
    // u64 words: libzfp writes whole 64-bit words, so the buffer must be word aligned.
    let mut words = vec![0u64; max_bytes.div_ceil(8)];
    let written = {
        let bs = BitStream::open(&mut words)?;
        // SAFETY: zs and bs are valid and owned here; `field` describes `geom.count` floats at
        // `values`, which stay alive (borrowed `data` or `converted`) until after zfp_compress.
        // The buffer holds zfp_stream_maximum_size bytes, the documented worst case for this field
        // and mode including the header, so the writer stays inside it. bs outlives every use of
        // zs that touches it (zs is not used after this block).
        unsafe {
            sys::zfp_stream_set_bit_stream(zs.as_ptr(), bs.raw.as_ptr());
            sys::zfp_stream_rewind(zs.as_ptr());
            if sys::zfp_write_header(zs.as_ptr(), &field, sys::ZFP_HEADER_FULL) as u64 != HEADER_BITS {
                return Err(ZfpError::Libzfp("zfp_write_header failed"));
            }
            // Returns the flushed stream size in bytes (a multiple of 8), 0 on failure.
            sys::zfp_compress(zs.as_ptr(), &field)
        }
    };
    if written == 0 || written % 8 != 0 || written > max_bytes {
        return Err(ZfpError::Libzfp("zfp_compress failed"));
    }
    // Words back to bytes in little-endian order: the same bytes zfpy returns on x86/ARM.
    Ok(words[..written / 8]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect())
}

/// Decodes into `out` (exactly product(shape)*4 bytes). Validates the full zfp header against `shape`
/// (rank, every dimension, type float32, reversible mode) BEFORE decoding.
///
/// `out` receives little-endian float32 bytes in C order, bit-exact (NaN payloads, -0.0 kept).
/// Bytes after the end of the zfp data are ignored, as zfpy does. A stream that ends before the
/// decoder has read all the bits it needs gives [`ZfpError::Truncated`]; if only trailing padding
/// bits of the last 64-bit word are missing, the data is complete and decoding succeeds.
pub fn decode_f32_into(stream: &[u8], shape: &[u64], out: &mut [u8]) -> Result<(), ZfpError> {
    decode_f32_from(stream, shape, out)
}

/// [`decode_f32_into`] from any [`StreamSource`]: the stream is read in
/// windows of [`WINDOW_BYTES`], so memory besides `out` stays bounded
/// whatever the stream's size.
pub fn decode_f32_from<S: StreamSource + ?Sized>(
    stream: &S,
    shape: &[u64],
    out: &mut [u8],
) -> Result<(), ZfpError> {
    decode_windowed(stream, shape, out, WINDOW_BYTES)
}

/// [`decode_f32_from`] with windows of `window` bytes (tests use tiny ones).
fn decode_windowed<S: StreamSource + ?Sized>(
    stream: &S,
    shape: &[u64],
    out: &mut [u8],
    window: usize,
) -> Result<(), ZfpError> {
    let geom = Geometry::new(shape)?;
    if out.len() != geom.byte_len() {
        return Err(ZfpError::OutputLength {
            shape: shape.to_vec(),
            expected: geom.byte_len(),
            actual: out.len(),
        });
    }
    let mut head = [0u8; HEADER_BYTES];
    let head_len = HEADER_BYTES.min(usize::try_from(stream.len()).unwrap_or(HEADER_BYTES));
    stream.read_at(0, &mut head[..head_len]).map_err(ZfpError::Read)?;
    Header::parse(&head[..head_len])?.check(shape)?;

    // libzfp writes native `float`s: decode straight into `out` when it is an aligned little-endian
    // float buffer, otherwise into an aligned scratch buffer and convert.
    if cfg!(target_endian = "little") && out.as_ptr().cast::<f32>().is_aligned() {
        // SAFETY: `out` is 4-byte aligned, `geom.byte_len()` = count * 4 bytes long and exclusively
        // borrowed; every bit pattern is a valid f32, so viewing it as `count` f32s is sound.
        let floats = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), geom.count) };
        decode_validated(stream, &geom, floats, window)
    } else {
        let mut floats = vec![0f32; geom.count];
        decode_validated(stream, &geom, &mut floats, window)?;
        for (dst, v) in out.chunks_exact_mut(4).zip(&floats) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }
}

/// A window of the stream in a word buffer: `filled` real bytes from byte
/// `base` (a multiple of 8) of the stream, then zeros to the buffer's end.
struct Window {
    words: Vec<u64>,
    base: u64,
    filled: usize,
}

impl Window {
    /// Loads the stream's bytes from `base` (at most the buffer's size less
    /// `pad_words` words) of the first `stream_len` bytes.
    fn load<S: StreamSource + ?Sized>(
        &mut self,
        stream: &S,
        base: u64,
        stream_len: u64,
        pad_words: usize,
    ) -> Result<(), ZfpError> {
        let room = (self.words.len() - pad_words) * 8;
        let filled = (stream_len - base).min(room as u64) as usize;
        self.words.fill(0);
        // Read straight into the words' bytes (zfp's words are little-endian), then fix the
        // byte order where the platform's is not.
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.words);
        stream
            .read_at(base, &mut bytes[..filled])
            .map_err(ZfpError::Read)?;
        if cfg!(target_endian = "big") {
            for w in &mut self.words {
                *w = u64::from_le(*w);
            }
        }
        self.base = base;
        self.filled = filled;
        Ok(())
    }
}

/// Decodes a stream whose header has been checked against `geom` into `out` (`geom.count` floats).
fn decode_validated<S: StreamSource + ?Sized>(
    stream: &S,
    geom: &Geometry,
    out: &mut [f32],
    window_bytes: usize,
) -> Result<(), ZfpError> {
    debug_assert_eq!(out.len(), geom.count);
    let zs = ZfpStream::open_reversible()?;

    // Bytes past zfp_stream_maximum_size(field) can never be read by a valid decode, so do not
    // read (or keep) more than that.
    let field = geom.field(ptr::null_mut());
    let max_total = zs.maximum_size(&field) as u64;
    let copy_len = if max_total == 0 {
        stream.len()
    } else {
        stream.len().min(max_total)
    };
    let avail_bits = copy_len.saturating_mul(8);

    // Worst case consumed by one block of this rank: zfp_stream_maximum_size of a one-block field
    // (its header allowance of 148 bits makes it an over-estimate). For reversible float32 that is
    // at most 15 + (4^d - 1) + 32 * 4^d bits per block, i.e. 1064 bytes in 4-D.
    let one_block = Geometry {
        rank: geom.rank,
        ext: [4; 4],
        count: 1 << (2 * geom.rank),
    };
    let block_pad = zs.maximum_size(&one_block.field(ptr::null_mut()));
    if block_pad == 0 {
        return Err(ZfpError::Libzfp("zfp_stream_maximum_size failed for one block"));
    }

    // A word buffer holding a window of the stream followed by block_pad bytes + one word of
    // zeros. A block is only started while its read position is inside the window's real bytes
    // with block_pad bytes + a word of them left (else the window moves on), or, in the stream's
    // last window, inside the real data (< avail_bits): the words a block can touch then end
    // inside this buffer.
    let pad_words = block_pad.div_ceil(8) + 1;
    let window_words = (window_bytes / 8)
        .max(2 * pad_words)
        .min(usize::try_from(copy_len.div_ceil(8)).unwrap_or(usize::MAX));
    let n_words = window_words
        .checked_add(pad_words)
        .ok_or(ZfpError::Libzfp("stream too large"))?;
    let mut window = Window {
        words: vec![0u64; n_words],
        base: 0,
        filled: 0,
    };
    window.load(stream, 0, copy_len, pad_words)?;

    let mut block = 0u64;
    let blocks = geom.blocks();
    let mut pos_bits;
    {
        let bs = BitStream::open(&mut window.words)?;
        // Let libzfp read the header too (it positions the stream after it and sets the mode from
        // it), and make sure it sees exactly what we validated.
        let mut seen = geom.field(ptr::null_mut());
        seen.r#type = sys::zfp_type_zfp_type_none;
        // SAFETY: zs and bs are valid; the header occupies the first 2 words, which exist (the
        // buffer has at least block_pad > 16 bytes); `seen` is a plain struct that
        // zfp_read_header fills in.
        let (header_bits, mode) = unsafe {
            sys::zfp_stream_set_bit_stream(zs.as_ptr(), bs.raw.as_ptr());
            sys::zfp_stream_rewind(zs.as_ptr());
            let bits = sys::zfp_read_header(zs.as_ptr(), &mut seen, sys::ZFP_HEADER_FULL);
            (bits, sys::zfp_stream_compression_mode(zs.as_ptr()))
        };
        let expected = geom.field(ptr::null_mut());
        if header_bits as u64 != HEADER_BITS
            || mode != sys::zfp_mode_zfp_mode_reversible
            || seen.r#type != expected.r#type
            || (seen.nx, seen.ny, seen.nz, seen.nw) != (expected.nx, expected.ny, expected.nz, expected.nw)
        {
            return Err(ZfpError::Libzfp("libzfp read the zfp header differently"));
        }
        pos_bits = bs.read_pos();
    }

    loop {
        let last = window.base + window.filled as u64 == copy_len;
        // In a window that is not the stream's last, a block may start only where its worst case
        // still lies inside the window's real bytes.
        let limit_bits = if last {
            avail_bits - window.base * 8
        } else {
            (window.filled as u64 * 8).saturating_sub(8 * block_pad as u64 + 64)
        };
        let bs = BitStream::open(&mut window.words)?;
        // SAFETY: zs and bs are valid; the position lies inside the buffer's words.
        unsafe {
            sys::zfp_stream_set_bit_stream(zs.as_ptr(), bs.raw.as_ptr());
            sys::stream_rseek(bs.raw.as_ptr(), pos_bits - window.base * 8);
        }
        let stop = decode_blocks(&zs, &bs, geom, out, &mut block, blocks, limit_bits, last)?;
        pos_bits = window.base * 8 + bs.read_pos();
        drop(bs);
        match stop {
            Stop::Done => break,
            Stop::WindowEnd => {
                // Move on: the next window starts at the word holding the read position.
                window.load(stream, pos_bits / 64 * 8, copy_len, pad_words)?;
            }
        }
    }

    if pos_bits > avail_bits {
        return Err(ZfpError::Truncated {
            consumed: pos_bits.div_ceil(8),
            available: copy_len as usize,
        });
    }
    Ok(())
}

/// Why [`decode_blocks`] returned.
enum Stop {
    /// Every block is decoded.
    Done,
    /// The next block may need bytes past the window: load the next one.
    WindowEnd,
}

/// The block loop of libzfp's `decompress_strided_float_{1,2,3,4}` (template/decompress.c), with a
/// bounds check before each block, resumable: decodes from block `*block` (blocks are 4^rank
/// values, visited with x fastest; edge blocks that stick out of the array use the partial-block
/// decoders, exactly as zfp_decompress does) until all `blocks` are done or, outside the
/// stream's `last` window, a block would start at or past `limit_bits` of this window.
#[allow(clippy::too_many_arguments)]
fn decode_blocks(
    zs: &ZfpStream,
    bs: &BitStream<'_>,
    geom: &Geometry,
    out: &mut [f32],
    block: &mut u64,
    blocks: u64,
    limit_bits: u64,
    last: bool,
) -> Result<Stop, ZfpError> {
    let [nx, ny, nz, nw] = geom.ext;
    let [bnx, bny, bnz] = [nx.div_ceil(4), ny.div_ceil(4), nz.div_ceil(4)];
    // Element strides of a C-order array; products are < count, which fits in isize (Geometry::new).
    let (sx, sy, sz, sw) = (1isize, nx as isize, (nx * ny) as isize, (nx * ny * nz) as isize);
    let base = out.as_mut_ptr();
    let zp = zs.as_ptr();
    while *block < blocks {
        let pos = bs.read_pos();
        if pos >= limit_bits {
            if !last {
                return Ok(Stop::WindowEnd);
            }
            // Every block consumes at least one bit, so a block starting at or past the end of
            // the real data needs bytes the caller did not give us.
            return Err(ZfpError::Truncated {
                consumed: pos.div_ceil(8),
                available: (limit_bits / 8) as usize,
            });
        }
        // Block coordinates, x fastest; `b` < blocks, so each is inside its axis.
        let b = *block as usize;
        let x = b % bnx * 4;
        let y = b / bnx % bny * 4;
        let z = b / (bnx * bny) % bnz * 4;
        let w = b / (bnx * bny * bnz) * 4;
        let (bx, by, bz, bw) = ((nx - x).min(4), (ny - y).min(4), (nz - z).min(4), (nw - w).min(4));
        // Only axes that exist count: the extent-1 padding axes of a lower rank are
        // not part of zfp's blocks.
        let partial = match geom.rank {
            1 => bx < 4,
            2 => bx < 4 || by < 4,
            3 => bx < 4 || by < 4 || bz < 4,
            _ => bx < 4 || by < 4 || bz < 4 || bw < 4,
        };
        let offset = x + nx * (y + ny * (z + nz * w));
        // SAFETY: (x, y, z, w) is inside the array, so `offset` < count = out.len()
        // and `p` points into `out`; the (partial) block written through p with these
        // strides covers only elements (x..x+bx, y..y+by, ..), all inside the array
        // (axes beyond `rank` have extent 1 and are never stepped). The stream read
        // position is < limit_bits, and one block reads at most `block_pad` bytes, all
        // inside the padded word buffer owned by `bs` (see decode_validated).
        unsafe {
            let p = base.add(offset);
            match (geom.rank, partial) {
                (1, false) => sys::zfp_decode_block_float_1(zp, p),
                (1, true) => sys::zfp_decode_partial_block_strided_float_1(zp, p, bx, sx),
                (2, false) => sys::zfp_decode_block_strided_float_2(zp, p, sx, sy),
                (2, true) => sys::zfp_decode_partial_block_strided_float_2(zp, p, bx, by, sx, sy),
                (3, false) => sys::zfp_decode_block_strided_float_3(zp, p, sx, sy, sz),
                (3, true) => sys::zfp_decode_partial_block_strided_float_3(zp, p, bx, by, bz, sx, sy, sz),
                (_, false) => sys::zfp_decode_block_strided_float_4(zp, p, sx, sy, sz, sw),
                (_, true) => {
                    sys::zfp_decode_partial_block_strided_float_4(zp, p, bx, by, bz, bw, sx, sy, sz, sw)
                }
            };
        }
        *block += 1;
    }
    Ok(Stop::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Instant;

    // ---- helpers ---------------------------------------------------------------------------

    fn vectors_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors/reference-1.1.0")
    }

    fn read_vector(name: &str) -> Vec<u8> {
        let path = vectors_dir().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Minimal .npz reader for the vectors: numpy's savez stores each .npy uncompressed, so the
    /// member's bytes appear verbatim after its name in the local file header.
    fn npz_array(npz: &[u8], key: &str) -> (Vec<u64>, Vec<u8>) {
        let name = format!("{key}.npy");
        let at = find(npz, name.as_bytes(), 0).expect("member name in npz");
        let npy = &npz[find(npz, b"\x93NUMPY", at).expect("npy magic after member name")..];
        let (header_len, start) = match npy[6] {
            1 => (usize::from(u16::from_le_bytes([npy[8], npy[9]])), 10),
            _ => (
                u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize,
                12,
            ),
        };
        let header = std::str::from_utf8(&npy[start..start + header_len]).unwrap();
        assert!(header.contains("'descr': '<f4'"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
        let dims = &header[header.find("'shape': (").unwrap() + 10..];
        let dims = &dims[..dims.find(')').unwrap()];
        let shape: Vec<u64> = dims
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| d.parse().unwrap())
            .collect();
        let n: u64 = shape.iter().product();
        let data = npy[start + header_len..][..n as usize * 4].to_vec();
        (shape, data)
    }

    fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    }

    /// The zfp payloads in the reference files: (file, LATN chunk offset, len_data, npz, key).
    /// Each LATN chunk is a 21-byte zstd frame (inner header) followed by the zfp stream.
    const VECTORS: [(&str, usize, usize, &str, &str); 3] = [
        (
            "v1_f32_zfp_png.raiiaf",
            33,
            61752,
            "v1_f32_zfp_png.inputs.npz",
            "initial_noise",
        ),
        (
            "v4_two_latents_f32_zfp_png_unicode.raiiaf",
            33,
            4160,
            "v4_two_latents_f32_zfp_png_unicode.inputs.npz",
            "initial_noise",
        ),
        (
            "v4_two_latents_f32_zfp_png_unicode.raiiaf",
            4214,
            4160,
            "v4_two_latents_f32_zfp_png_unicode.inputs.npz",
            "final_latent",
        ),
    ];

    /// (zfp payload, shape, float32 input bytes) for each vector.
    fn vector_cases() -> Vec<(Vec<u8>, Vec<u64>, Vec<u8>)> {
        VECTORS
            .iter()
            .map(|&(file, offset, len, npz, key)| {
                let raw = read_vector(file);
                assert_eq!(
                    &raw[offset..offset + 4],
                    b"\x28\xb5\x2f\xfd",
                    "zstd frame at {offset}"
                );
                let payload = raw[offset + 21..offset + 21 + len].to_vec();
                assert_eq!(&payload[..4], b"zfp\x05");
                let (shape, data) = npz_array(&read_vector(npz), key);
                (payload, shape, data)
            })
            .collect()
    }

    /// splitmix64: deterministic test data without extra dependencies.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        /// Roughly standard normal floats (Box-Muller), as little-endian bytes.
        fn normal_f32_bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n)
                .flat_map(|_| {
                    let u1 = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                    let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
                    let v = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    (v as f32).to_le_bytes()
                })
                .collect()
        }
    }

    /// Float bit patterns that a lossless codec must keep exactly.
    const SPECIAL_BITS: [u32; 16] = [
        0x8000_0000, // -0.0
        0x0000_0000, // +0.0
        0x7fc0_0000, // quiet NaN
        0x7fc0_0001, // quiet NaN with payload
        0xffc1_2345, // negative NaN with payload
        0x7f80_0001, // signalling NaN
        0xffbf_ffff, // negative signalling NaN, full payload
        0x7f80_0000, // +inf
        0xff80_0000, // -inf
        0x0000_0001, // smallest subnormal
        0x807f_ffff, // largest negative subnormal
        0x7f7f_ffff, // f32::MAX
        0xff7f_ffff, // f32::MIN
        0x3f80_0000, // 1.0
        0x0080_0000, // smallest normal
        0x4049_0fdb, // pi
    ];

    /// Random bit patterns (all classes of floats, NaN payloads included) with the special values
    /// at the front.
    fn test_data(rng: &mut Rng, n: usize) -> Vec<u8> {
        let mut data = rng.bytes(n * 4);
        for (i, bits) in SPECIAL_BITS.iter().enumerate().take(n) {
            data[i * 4..i * 4 + 4].copy_from_slice(&bits.to_le_bytes());
        }
        data
    }

    fn decode(stream: &[u8], shape: &[u64]) -> Result<Vec<u8>, ZfpError> {
        let n: u64 = shape.iter().product();
        let mut out = vec![0u8; n as usize * 4];
        decode_f32_into(stream, shape, &mut out).map(|()| out)
    }

    /// Reference decode with libzfp's own `zfp_decompress`, made safe the way the brief describes
    /// (buffer padded with zeros up to zfp_stream_maximum_size plus a word). Returns the decoded
    /// bytes and the stream size zfp reports (whole 64-bit words read).
    fn oracle_decode(stream: &[u8], shape: &[u64]) -> (Vec<u8>, usize) {
        let geom = Geometry::new(shape).unwrap();
        let zs = ZfpStream::open_reversible().unwrap();
        let max = zs.maximum_size(&geom.field(ptr::null_mut()));
        assert!(max > 0);
        let mut words = vec![0u64; stream.len().max(max).div_ceil(8) + 1];
        for (w, c) in words.iter_mut().zip(stream.chunks(8)) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            *w = u64::from_le_bytes(b);
        }
        let mut out = vec![0f32; geom.count];
        let mut field = geom.field(out.as_mut_ptr().cast());
        let mut seen = geom.field(ptr::null_mut());
        let capacity = words.len() * 8;
        let bs = BitStream::open(&mut words).unwrap();
        // SAFETY: valid stream objects; the header was validated by the caller's expectations
        // (checked below), `field` points at `count` floats, and the word buffer holds at least
        // zfp_stream_maximum_size bytes, the most a reversible decode of this field can read.
        let size = unsafe {
            sys::zfp_stream_set_bit_stream(zs.as_ptr(), bs.raw.as_ptr());
            sys::zfp_stream_rewind(zs.as_ptr());
            assert_eq!(
                sys::zfp_read_header(zs.as_ptr(), &mut seen, sys::ZFP_HEADER_FULL),
                96
            );
            assert_eq!(
                (seen.nx, seen.ny, seen.nz, seen.nw),
                (field.nx, field.ny, field.nz, field.nw)
            );
            sys::zfp_decompress(zs.as_ptr(), &mut field)
        };
        assert!(size > 0 && size <= capacity);
        (out.iter().flat_map(|v| v.to_le_bytes()).collect(), size)
    }

    fn header_value(stream: &[u8]) -> u128 {
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(&stream[..12]);
        u128::from_le_bytes(b)
    }

    fn set_header_value(stream: &mut [u8], v: u128) {
        stream[..12].copy_from_slice(&v.to_le_bytes()[..12]);
    }

    /// Overwrites the 52-bit metadata with a 4-D float32 field of the given numpy shape.
    fn forge_dims_4d(stream: &mut [u8], shape: [u64; 4]) {
        let [nw, nz, ny, nx] = shape;
        let dims = (nx - 1) | (ny - 1) << 12 | (nz - 1) << 24 | (nw - 1) << 36;
        let meta = u128::from(dims << 4 | 3 << 2 | 2);
        let v = header_value(stream) & !(((1u128 << 52) - 1) << 32) | meta << 32;
        set_header_value(stream, v);
    }

    fn set_mode(stream: &mut [u8], mode: u16) {
        let v = header_value(stream) & !(0xfffu128 << 84) | u128::from(mode) << 84;
        set_header_value(stream, v);
    }

    fn set_type_bits(stream: &mut [u8], type_minus_one: u8) {
        let v = header_value(stream) & !(3u128 << 32) | u128::from(type_minus_one) << 32;
        set_header_value(stream, v);
    }

    const SHAPES: &[&[u64]] = &[
        &[1],
        &[3],
        &[4],
        &[5],
        &[17],
        &[1, 1],
        &[3, 1],
        &[1, 7],
        &[4, 4],
        &[5, 9],
        &[1, 1, 1],
        &[1, 3, 1],
        &[2, 5, 9],
        &[4, 4, 4],
        &[1, 1, 1, 1],
        &[1, 4, 8, 8],
        &[2, 4, 8, 8],
        &[1, 4, 1, 9],
        &[3, 1, 1, 1],
        &[2, 3, 5, 7],
        &[5, 6, 7, 9],
    ];

    // ---- reference vectors -------------------------------------------------------------------

    #[test]
    fn encode_is_byte_identical_to_zfpy() {
        for (payload, shape, data) in vector_cases() {
            let encoded = encode_f32(&data, &shape).unwrap();
            assert_eq!(encoded.len(), payload.len(), "shape {shape:?}");
            assert!(
                encoded == payload,
                "zfp stream differs from zfpy for shape {shape:?}"
            );
        }
    }

    #[test]
    fn decode_of_reference_payloads_is_bit_exact() {
        for (payload, shape, data) in vector_cases() {
            assert!(decode(&payload, &shape).unwrap() == data, "shape {shape:?}");
            // zfpy ignores bytes after the zfp data; so do we.
            let mut longer = payload.clone();
            longer.extend_from_slice(&[0xa5; 100]);
            assert!(decode(&longer, &shape).unwrap() == data);
        }
    }

    #[test]
    fn header_fields_of_reference_payload() {
        let (payload, shape, _) = vector_cases().remove(0);
        let h = Header::parse(&payload).unwrap();
        assert_eq!((h.type_code, h.mode), (3, MODE_REVERSIBLE));
        assert_eq!(h.shape, shape);
        assert_eq!(shape, [1, 4, 32, 32]);
    }

    // ---- round trips -------------------------------------------------------------------------

    #[test]
    fn round_trip_ranks_1_to_4_bit_exact() {
        let mut rng = Rng(7);
        for shape in SHAPES {
            let n = shape.iter().product::<u64>() as usize;
            let data = test_data(&mut rng, n);
            let stream = encode_f32(&data, shape).unwrap();
            assert_eq!(stream.len() % 8, 0);
            let h = Header::parse(&stream).unwrap();
            assert_eq!(h.shape, *shape);
            assert!(decode(&stream, shape).unwrap() == data, "shape {shape:?}");
        }
    }

    #[test]
    fn windows_of_any_size_decode_the_same() {
        // The stream read in windows from 64 bytes (a slide before almost every block) up:
        // the same floats as one window, and truncations still fail.
        let mut rng = Rng(5);
        for shape in [&[1u64, 3, 9, 21][..], &[37, 50], &[5000], &[2, 5, 7]] {
            let n = shape.iter().product::<u64>() as usize;
            let data = test_data(&mut rng, n);
            let stream = encode_f32(&data, shape).unwrap();
            for window in [64, 1000, 4096, stream.len() / 3, stream.len() + 64] {
                let mut out = vec![0u8; data.len()];
                decode_windowed(&stream[..], shape, &mut out, window).unwrap();
                assert!(out == data, "shape {shape:?} window {window}");
                let cut = &stream[..stream.len() / 2];
                assert!(
                    decode_windowed(cut, shape, &mut out, window).is_err(),
                    "shape {shape:?} window {window}"
                );
            }
        }
    }

    #[test]
    fn special_values_survive() {
        let data: Vec<u8> = SPECIAL_BITS.iter().flat_map(|b| b.to_le_bytes()).collect();
        for shape in [&[16][..], &[4, 4], &[1, 2, 8], &[1, 1, 4, 4], &[2, 1, 8, 1]] {
            let stream = encode_f32(&data, shape).unwrap();
            let back = decode(&stream, shape).unwrap();
            let bits: Vec<u32> = back
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(bits, SPECIAL_BITS, "shape {shape:?}");
        }
        // An all-zero (and an all -0.0) array uses zfp's all-zero/constant block paths.
        for v in [0.0f32, -0.0, f32::NAN] {
            let data: Vec<u8> = (0..64).flat_map(|_| v.to_le_bytes()).collect();
            let stream = encode_f32(&data, &[1, 4, 4, 4]).unwrap();
            assert!(decode(&stream, &[1, 4, 4, 4]).unwrap() == data);
        }
    }

    #[test]
    fn block_driver_matches_zfp_decompress() {
        let mut rng = Rng(11);
        for shape in SHAPES {
            let n = shape.iter().product::<u64>() as usize;
            let stream = encode_f32(&test_data(&mut rng, n), shape).unwrap();
            let (expected, size) = oracle_decode(&stream, shape);
            assert_eq!(size, stream.len(), "zfp_decompress consumed the whole stream");
            assert!(decode(&stream, shape).unwrap() == expected, "shape {shape:?}");
        }
    }

    #[test]
    fn unaligned_buffers() {
        let mut rng = Rng(3);
        let shape = [1, 4, 5, 6];
        let data = test_data(&mut rng, 120);
        let expected = encode_f32(&data, &shape).unwrap();
        let mut shifted = vec![0u8; data.len() + 1];
        shifted[1..].copy_from_slice(&data);
        assert!(encode_f32(&shifted[1..], &shape).unwrap() == expected);
        let mut out = vec![0u8; data.len() + 1];
        decode_f32_into(&expected, &shape, &mut out[1..]).unwrap();
        assert!(out[1..] == data[..]);
        let mut stream_shifted = vec![0u8; expected.len() + 3];
        stream_shifted[3..].copy_from_slice(&expected);
        assert!(decode(&stream_shifted[3..], &shape).unwrap() == data);
    }

    // ---- hostile input -----------------------------------------------------------------------

    #[test]
    fn forged_header_dims_are_rejected() {
        let (payload, shape, _) = vector_cases().remove(1);
        // The reference's SIGSEGV case: dims forged to nx=4096, ny=4096, nz=64, nw=1.
        let mut forged = payload.clone();
        forge_dims_4d(&mut forged, [1, 64, 4096, 4096]);
        assert_eq!(
            decode(&forged, &shape),
            Err(ZfpError::ShapeMismatch {
                header: vec![1, 64, 4096, 4096],
                expected: shape.clone(),
            })
        );
        // Same element count, other shape; and another rank.
        let mut swapped = payload.clone();
        forge_dims_4d(&mut swapped, [4, 2, 8, 8]);
        assert!(matches!(
            decode(&swapped, &shape),
            Err(ZfpError::ShapeMismatch { .. })
        ));
        assert_eq!(
            decode(&payload, &[8, 8, 8]),
            Err(ZfpError::ShapeMismatch {
                header: shape.clone(),
                expected: vec![8, 8, 8],
            })
        );
        // If the caller's shape agrees with a forged header (a forged manifest too), the 4 KB
        // stream is far too short for 4M values: this must fail cleanly, not read out of bounds.
        let big = [1, 64, 256, 256];
        let mut forged_big = payload.clone();
        forge_dims_4d(&mut forged_big, big);
        assert!(matches!(
            decode(&forged_big, &big),
            Err(ZfpError::Truncated { available: 4160, .. })
        ));
    }

    #[test]
    fn one_d_header_with_high_dimension_bits_is_rejected() {
        let stream = encode_f32(&[0u8; 20], &[5]).unwrap();
        let mut forged = stream.clone();
        // Set bit 40 of the 48-bit 1-D extent: zfp would ignore it (it reads 32 bits), we refuse.
        let v = header_value(&forged) | 1u128 << (32 + 4 + 40);
        set_header_value(&mut forged, v);
        assert_eq!(
            decode(&forged, &[5]),
            Err(ZfpError::ShapeMismatch {
                header: vec![(1 << 40) + 5],
                expected: vec![5],
            })
        );
    }

    #[test]
    fn truncated_streams_fail_or_never_need_the_missing_bytes() {
        let mut rng = Rng(5);
        let mut cases = vec![(vector_cases().remove(1).0, vec![2u64, 4, 8, 8])];
        for shape in [&[5u64][..], &[3, 7], &[2, 3, 5], &[1, 4, 3, 5]] {
            let n = shape.iter().product::<u64>() as usize;
            cases.push((
                encode_f32(&test_data(&mut rng, n), shape).unwrap(),
                shape.to_vec(),
            ));
        }
        for (stream, shape) in cases {
            let full = decode(&stream, &shape).unwrap();
            for len in 0..stream.len() {
                match decode(&stream[..len], &shape) {
                    // Only zero padding after the last used bit may be missing.
                    Ok(out) => {
                        assert!(len > stream.len() - 8, "len {len} of {}", stream.len());
                        assert!(out == full, "len {len}");
                    }
                    Err(ZfpError::HeaderTooShort { len: l }) => assert!(l < 12 && l == len),
                    Err(ZfpError::Truncated { available, .. }) => assert_eq!(available, len),
                    Err(e) => panic!("len {len}: unexpected {e}"),
                }
            }
        }
    }

    #[test]
    fn garbage_bodies_behind_a_valid_header_are_handled_like_zfp_decompress() {
        let mut rng = Rng(99);
        for shape in SHAPES {
            let n = shape.iter().product::<u64>() as usize;
            let valid = encode_f32(&test_data(&mut rng, n), shape).unwrap();
            for round in 0..40 {
                // Random lengths (multiples of 8, as zfp writes) and random bits, biased to ones
                // on odd rounds (ones make blocks as long as possible).
                let len = 16 + 8 * (rng.next() as usize % (valid.len() / 8 + 4));
                let mut stream = rng.bytes(len);
                if round % 2 == 1 {
                    stream.iter_mut().for_each(|b| *b |= rng.next() as u8);
                }
                stream[..12].copy_from_slice(&valid[..12]);
                let (expected, size) = oracle_decode(&stream, shape);
                match decode(&stream, shape) {
                    Ok(out) => {
                        assert!(size <= len, "{shape:?}: zfp read {size} > {len}");
                        assert!(out == expected, "{shape:?}");
                    }
                    Err(ZfpError::Truncated { .. }) => assert!(size > len, "{shape:?}"),
                    Err(e) => panic!("{shape:?}: unexpected {e}"),
                }
            }
        }
    }

    #[test]
    fn wrong_magic_version_type_or_mode() {
        let (payload, shape, _) = vector_cases().remove(1);
        let mut s = payload.clone();
        s[0] = b'Z';
        assert_eq!(decode(&s, &shape), Err(ZfpError::BadMagic { found: *b"Zfp" }));
        let mut s = payload.clone();
        s[3] = 4;
        assert_eq!(
            decode(&s, &shape),
            Err(ZfpError::UnsupportedCodecVersion { found: 4 })
        );
        for (bits, name) in [(0, "int32"), (1, "int64"), (3, "float64")] {
            let mut s = payload.clone();
            set_type_bits(&mut s, bits);
            assert_eq!(decode(&s, &shape), Err(ZfpError::NotFloat32 { found: name }));
        }
        // 2175 = fixed precision 128, 0 = fixed rate 1 bit, 2177 = fixed accuracy, 4095 = long.
        for mode in [2175, 0, 2177, 4094, 4095] {
            let mut s = payload.clone();
            set_mode(&mut s, mode);
            assert_eq!(decode(&s, &shape), Err(ZfpError::NotReversible { mode }));
        }
        assert_eq!(
            decode(&payload[..11], &shape),
            Err(ZfpError::HeaderTooShort { len: 11 })
        );
        assert_eq!(decode(&[], &shape), Err(ZfpError::HeaderTooShort { len: 0 }));
    }

    #[test]
    fn argument_errors() {
        assert_eq!(
            encode_f32(&[], &[1, 4, 64, 4097]),
            Err(ZfpError::DimensionOutOfRange {
                axis: 3,
                size: 4097,
                rank: 4,
                max: 4096
            })
        );
        assert_eq!(encode_f32(&[], &[]), Err(ZfpError::UnsupportedRank { rank: 0 }));
        assert_eq!(
            encode_f32(&[], &[1; 5]),
            Err(ZfpError::UnsupportedRank { rank: 5 })
        );
        assert!(matches!(
            encode_f32(&[], &[0, 4]),
            Err(ZfpError::DimensionOutOfRange { axis: 0, size: 0, .. })
        ));
        assert!(matches!(
            encode_f32(&[], &[1, 1, 65537]),
            Err(ZfpError::DimensionOutOfRange { max: 65536, .. })
        ));
        assert!(matches!(
            encode_f32(&[], &[(1 << 24) + 1, 1]),
            Err(ZfpError::DimensionOutOfRange { max: 16_777_216, .. })
        ));
        assert!(matches!(
            encode_f32(&[], &[(1 << 32) + 1]),
            Err(ZfpError::DimensionOutOfRange {
                max: 4_294_967_296,
                ..
            })
        ));
        assert_eq!(
            encode_f32(&[0; 12], &[2, 2]),
            Err(ZfpError::InputLength {
                shape: vec![2, 2],
                expected: 16,
                actual: 12
            })
        );
        let stream = encode_f32(&[0; 16], &[2, 2]).unwrap();
        assert_eq!(
            decode_f32_into(&stream, &[2, 2], &mut [0; 20]),
            Err(ZfpError::OutputLength {
                shape: vec![2, 2],
                expected: 16,
                actual: 20
            })
        );
        // Lower ranks allow longer axes than 4-D: 4097 is fine in 3-D.
        let data = test_data(&mut Rng(1), 4097);
        let stream = encode_f32(&data, &[1, 1, 4097]).unwrap();
        assert!(decode(&stream, &[1, 1, 4097]).unwrap() == data);
        assert_eq!(max_dim(4), Some(4096));
        assert_eq!(max_dim(0), None);
        assert_eq!(max_dim(5), None);
    }

    #[test]
    fn errors_read_well() {
        let e = ZfpError::ShapeMismatch {
            header: vec![1, 64, 4096, 4096],
            expected: vec![2, 4, 8, 8],
        };
        assert_eq!(
            e.to_string(),
            "zfp header says shape [1, 64, 4096, 4096] but the expected shape is [2, 4, 8, 8]"
        );
    }

    /// Timing for a (1,4,128,128) float32 latent; run with
    /// `cargo test --release -- --ignored --nocapture timing`.
    #[test]
    #[ignore]
    fn timing_1x4x128x128() {
        let shape = [1, 4, 128, 128];
        let data = Rng(42).normal_f32_bytes(4 * 128 * 128);
        let mut out = vec![0u8; data.len()];
        let stream = encode_f32(&data, &shape).unwrap();
        let runs = 20;
        let t = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(encode_f32(&data, &shape).unwrap());
        }
        let enc = t.elapsed() / runs;
        let t = Instant::now();
        for _ in 0..runs {
            decode_f32_into(&stream, &shape, &mut out).unwrap();
        }
        let dec = t.elapsed() / runs;
        assert!(out == data);
        let t = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(oracle_decode(&stream, &shape));
        }
        let oracle = t.elapsed() / runs;
        println!(
            "(1,4,128,128) f32: {} -> {} bytes; encode {enc:?}, decode {dec:?} (zfp_decompress on padded copy: {oracle:?})",
            data.len(),
            stream.len()
        );
    }
}
