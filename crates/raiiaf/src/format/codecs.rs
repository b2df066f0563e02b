//! The tensor codecs: how a LATN payload is stored. A codec is one type
//! implementing [`TensorCodec`], listed once in [`BUILTIN`]; the writer, the
//! reader, the CLI (`convert --codec`), the Python `CODECS` and FORMAT.md's
//! table (checked by tests) all come from that list. A codec's
//! [`name`](TensorCodec::name) is what files record in the record's `codec`
//! key and what the APIs accept; [`aliases`](TensorCodec::aliases) are extra
//! API names (`compact` for `shuffle-zstd`).
//!
//! An application (or a test) may add a codec at run time with [`register`].

use std::borrow::Cow;
use std::sync::RwLock;

use super::header::Flavor;
use super::manifest::ChunkRecord;
use super::source::{Chunk, ReadErrors, Source, ZfpInput};
use super::{inner_header, sha256_hex, INNER_HEADER_LEN};
use crate::codec::{shuffle, zfp, zstd_frame};
use crate::error::{Error, Result};
use crate::tensor::{DType, TensorRef};

/// One encoded LATN chunk: its bytes (borrowing the caller's where stored as
/// is) and what its manifest record says about them.
pub struct EncodedLatent<'a> {
    /// The chunk's bytes in order: inner header (or its zstd frame), payload.
    pub parts: Vec<Cow<'a, [u8]>>,
    /// The record's `compressed` flag.
    pub compressed: bool,
    /// The record's `len_header`: the bytes of `parts` before the payload.
    pub len_header: u64,
    /// Lowercase hex SHA-256 of the tensor's bytes.
    pub hash: String,
}

/// A piece of an encoded LATN chunk as the writer takes it: bytes, or a
/// stored shuffle-zstd plane the writer generates from the tensor as it
/// copies or writes the file, so that it never exists whole in memory.
pub enum Part<'a> {
    /// Bytes, borrowed or owned.
    Bytes(Cow<'a, [u8]>),
    /// A stored shuffle-zstd plane, generated from the tensor on demand.
    Plane(shuffle::StoredPlane<'a>),
}

impl Part<'_> {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::Plane(p) => p.len(),
        }
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `offset..offset + out.len()` of the part into `out`; bytes past
    /// its end are set to zero.
    pub fn fill(&self, offset: usize, out: &mut [u8]) {
        match self {
            Part::Bytes(b) => {
                let have = b.get(offset..).unwrap_or_default();
                let n = have.len().min(out.len());
                out[..n].copy_from_slice(&have[..n]);
                out[n..].fill(0);
            }
            Part::Plane(p) => p.fill(offset, out),
        }
    }
}

/// [`EncodedLatent`] with [`Part`]s: what the writer asks a codec for
/// ([`TensorCodec::encode_parts`]).
pub struct EncodedParts<'a> {
    /// The chunk's bytes, in order.
    pub parts: Vec<Part<'a>>,
    /// The record's `compressed`.
    pub compressed: bool,
    /// The record's `len_header`.
    pub len_header: u64,
    /// The record's `hash`: lowercase hex SHA-256 of the uncompressed elements.
    pub hash: String,
}

impl<'a> From<EncodedLatent<'a>> for EncodedParts<'a> {
    fn from(e: EncodedLatent<'a>) -> Self {
        EncodedParts {
            parts: e.parts.into_iter().map(Part::Bytes).collect(),
            compressed: e.compressed,
            len_header: e.len_header,
            hash: e.hash,
        }
    }
}

/// What a codec is given to decode one LATN chunk.
pub struct DecodeInput<'a> {
    /// The chunk's manifest record.
    pub record: &'a ChunkRecord,
    /// The whole chunk, `record.compressed_size` bytes.
    pub chunk: &'a [u8],
    /// The latent's shape (`extra.shape`).
    pub shape: &'a [u64],
    /// The latent's element type.
    pub dtype: DType,
    /// Whether the caller verifies hashes (a codec may hash while decoding).
    pub verify: bool,
}

/// What a codec is given to decode one LATN chunk that may still be in its
/// file: the chunk's bytes are read on demand, so a codec that streams them
/// needs memory for the output and bounded windows only.
pub struct ChunkInput<'a> {
    /// The chunk's manifest record.
    pub record: &'a ChunkRecord,
    /// The whole chunk, `record.compressed_size` bytes.
    pub chunk: Chunk<'a>,
    /// The latent's shape (`extra.shape`).
    pub shape: &'a [u64],
    /// The latent's element type.
    pub dtype: DType,
    /// Whether the caller verifies hashes (a codec may hash while decoding).
    pub verify: bool,
}

impl<'a> ChunkInput<'a> {
    /// The chunk's first 12 bytes, checked as a LATN inner header against the
    /// record; returns its length field.
    pub fn latn_header(&self) -> Result<u32> {
        let rec = self.record;
        if self.chunk.len() < INNER_HEADER_LEN as u64 {
            return Err(Error::corrupt(
                rec.label(),
                format!(
                    "{} bytes, shorter than the 12-byte inner header",
                    self.chunk.len()
                ),
            ));
        }
        let mut head = [0u8; INNER_HEADER_LEN];
        self.chunk.read_at(0, &mut head)?;
        check_header(rec, self.dtype, &head)
    }

    /// The chunk after its inner header.
    pub fn body(&self) -> Chunk<'a> {
        let at = (INNER_HEADER_LEN as u64).min(self.chunk.len());
        self.chunk.sub(at, self.chunk.len() - at).unwrap_or(self.chunk)
    }
}

/// A tensor codec. Implementations must never panic on input and must
/// write every byte of `out` when [`decode`](TensorCodec::decode) succeeds.
pub trait TensorCodec: Send + Sync + 'static {
    /// The name in the API and in files (the record's `codec` key).
    fn name(&self) -> &'static str;
    /// Other names the APIs accept for it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// The name the APIs list it under (the first alias, else the name).
    fn api_name(&self) -> &'static str {
        self.aliases().first().copied().unwrap_or(self.name())
    }
    /// One line for help texts.
    fn summary(&self) -> &'static str;
    /// Written as format 1.0 (no `codec` key; `compressed` tells it apart):
    /// only the reference's own encodings, raw and zfp.
    fn format_1_0(&self) -> bool {
        false
    }
    /// Files written with it store the image plain (format 1.1) instead of
    /// in a zstd frame of stored blocks, as the reference expects.
    fn plain_image(&self) -> bool {
        !self.format_1_0()
    }
    /// Refuses tensors it cannot store, naming the latent.
    fn check(&self, latent: &str, t: &TensorRef<'_>) -> Result<()> {
        let _ = (latent, t);
        Ok(())
    }
    /// Encodes one tensor (already checked).
    fn encode<'a>(&self, latent: &str, t: &TensorRef<'a>) -> Result<EncodedLatent<'a>>;
    /// [`encode`](Self::encode) for the writer, whose parts may be generated
    /// only as the file is written (the same bytes). With `hash` false the
    /// codec may leave the hash empty: the writer hashes the tensor itself,
    /// on another thread while it encodes and writes. By default, `encode`'s
    /// parts and hash.
    fn encode_parts<'a>(&self, latent: &str, t: &TensorRef<'a>, hash: bool) -> Result<EncodedParts<'a>> {
        let _ = hash;
        self.encode(latent, t).map(EncodedParts::from)
    }
    /// Decodes into `out` (exactly the tensor's bytes). Returns the hex
    /// SHA-256 of `out` when it computed it along the way, else `None` (the
    /// reader then hashes `out` itself when verifying).
    fn decode(&self, input: &DecodeInput<'_>, out: &mut [u8]) -> Result<Option<String>>;
    /// Decodes a chunk read on demand (from a file, or from memory). The
    /// default reads the whole chunk into memory (`compressed_size` bytes)
    /// and calls [`decode`](TensorCodec::decode); the built-in codecs stream
    /// it instead, in bounded windows.
    fn decode_chunk(&self, input: &ChunkInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        let bytes = input.chunk.load()?;
        self.decode(
            &DecodeInput {
                record: input.record,
                chunk: &bytes,
                shape: input.shape,
                dtype: input.dtype,
                verify: input.verify,
            },
            out,
        )
    }
}

/// [`TensorCodec::decode`] of an in-memory chunk through
/// [`TensorCodec::decode_chunk`] (the built-in codecs implement only that one).
fn decode_in_memory(
    codec: &dyn TensorCodec,
    input: &DecodeInput<'_>,
    out: &mut [u8],
) -> Result<Option<String>> {
    let source = Source::Bytes(input.chunk);
    let chunk = source
        .range(0, input.chunk.len() as u64)
        .ok_or_else(|| Error::Internal("a chunk longer than itself".into()))?;
    codec.decode_chunk(
        &ChunkInput {
            record: input.record,
            chunk,
            shape: input.shape,
            dtype: input.dtype,
            verify: input.verify,
        },
        out,
    )
}

/// The built-in codecs, in the order the APIs list them. The one place a
/// codec is registered.
pub static BUILTIN: [&dyn TensorCodec; 3] = [&Raw, &ShuffleZstd, &Zfp];

static EXTRA: RwLock<Vec<&'static dyn TensorCodec>> = RwLock::new(Vec::new());

/// Adds a codec for this process (after the built-in ones). Its name and
/// aliases must be new.
pub fn register(codec: &'static dyn TensorCodec) -> Result<()> {
    for n in std::iter::once(codec.name()).chain(codec.aliases().iter().copied()) {
        if by_api_name(n).is_some() {
            return Err(Error::invalid(format!(
                "a codec named {n:?} is already registered"
            )));
        }
    }
    let mut extra = EXTRA
        .write()
        .map_err(|_| Error::Internal("the codec registry is poisoned".into()))?;
    extra.push(codec);
    Ok(())
}

/// Every codec: the built-in ones, then those registered at run time.
pub fn all() -> Vec<&'static dyn TensorCodec> {
    let mut out: Vec<&'static dyn TensorCodec> = BUILTIN.to_vec();
    if let Ok(extra) = EXTRA.read() {
        out.extend(extra.iter().copied());
    }
    out
}

/// The codec a file names in a record's `codec` key (names only).
pub fn by_file_name(name: &str) -> Option<&'static dyn TensorCodec> {
    all().into_iter().find(|c| c.name() == name)
}

/// The codec an API caller names (name or alias).
pub fn by_api_name(name: &str) -> Option<&'static dyn TensorCodec> {
    all()
        .into_iter()
        .find(|c| c.name() == name || c.aliases().contains(&name))
}

/// `"raw", "compact", "zfp"`: the API names, for messages.
pub fn api_names() -> String {
    all()
        .iter()
        .map(|c| format!("{:?}", c.api_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The codec of a LATN record: its `codec` key, or for a 1.0 record,
/// `compressed` false = raw, true = zfp. `None` for the GEN5 zstd encoding
/// (a read-only legacy form the reader handles itself).
pub fn for_record(record: &ChunkRecord, flavor: Flavor) -> Result<Option<&'static dyn TensorCodec>> {
    let name = match (record.codec.as_deref(), record.compressed, flavor) {
        (Some(name), _, Flavor::Gen5) if name == Zfp.name() => {
            return Err(Error::Unsupported(format!(
                "{} uses codec \"zfp\", which GEN5 files do not have",
                record.label()
            )))
        }
        (Some(name), _, _) => name,
        (None, false, _) => Raw.name(),
        (None, true, Flavor::Raiiaf) => Zfp.name(),
        (None, true, Flavor::Gen5) => return Ok(None),
    };
    by_file_name(name).map(Some).ok_or_else(|| {
        Error::Unsupported(format!(
            "{} uses codec {name:?}, which this version of raiiaf-rs cannot decode; upgrade it",
            record.label()
        ))
    })
}

// --- helpers for codecs ------------------------------------------------------------

/// The 12-byte inner header of a LATN chunk whose payload is `len` bytes.
pub fn latn_header(dtype: DType, len: usize) -> Result<[u8; INNER_HEADER_LEN]> {
    let len = u32::try_from(len)
        .map_err(|_| Error::Unsupported(format!("a LATN payload of {len} bytes exceeds 4 GiB")))?;
    Ok(inner_header::build(b"LATN", &dtype.flags(), len))
}

/// Splits a plain chunk into inner header and payload and checks the header's
/// type and flags against the record; returns (declared length, payload).
pub fn split_latn<'a>(input: &DecodeInput<'a>) -> Result<(u32, &'a [u8])> {
    let rec = input.record;
    if input.chunk.len() < INNER_HEADER_LEN {
        return Err(Error::corrupt(
            rec.label(),
            format!(
                "{} bytes, shorter than the 12-byte inner header",
                input.chunk.len()
            ),
        ));
    }
    let (head, body) = input.chunk.split_at(INNER_HEADER_LEN);
    let len = check_latn_header(input, head)?;
    Ok((len, body))
}

/// Checks an inner header's type and flags against the record; returns its length field.
pub fn check_latn_header(input: &DecodeInput<'_>, head: &[u8]) -> Result<u32> {
    check_header(input.record, input.dtype, head)
}

fn check_header(rec: &ChunkRecord, dtype: DType, head: &[u8]) -> Result<u32> {
    let (kind, flags, len) = inner_header::parse(head);
    if &kind != b"LATN" {
        return Err(Error::corrupt(
            rec.label(),
            format!("inner header type is {:?}", String::from_utf8_lossy(&kind)),
        ));
    }
    if DType::from_flags(&flags) != Some(dtype) {
        return Err(Error::corrupt(
            rec.label(),
            format!(
                "inner header flags {:?} disagree with the manifest's {}",
                String::from_utf8_lossy(&flags),
                dtype
            ),
        ));
    }
    Ok(len)
}

/// Tensors at least this large are hashed on a second thread while decoded.
const PARALLEL_MIN_BYTES: usize = shuffle::PARALLEL_MIN_BYTES;

// --- the built-in codecs -------------------------------------------------------------

/// `raw`: inner header + the element bytes (format 1.0, the default).
pub struct Raw;

impl TensorCodec for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn summary(&self) -> &'static str {
        "element bytes as they are; files the reference raiiaf 1.1.0 reads (default)"
    }
    fn format_1_0(&self) -> bool {
        true
    }
    fn encode<'a>(&self, _: &str, t: &TensorRef<'a>) -> Result<EncodedLatent<'a>> {
        Ok(EncodedLatent {
            parts: vec![
                Cow::Owned(latn_header(t.dtype(), t.data().len())?.to_vec()),
                Cow::Borrowed(t.data()),
            ],
            compressed: false,
            len_header: INNER_HEADER_LEN as u64,
            hash: sha256_hex(t.data()),
        })
    }
    fn encode_parts<'a>(&self, _: &str, t: &TensorRef<'a>, hash: bool) -> Result<EncodedParts<'a>> {
        Ok(EncodedParts {
            parts: vec![
                Part::Bytes(Cow::Owned(latn_header(t.dtype(), t.data().len())?.to_vec())),
                Part::Bytes(Cow::Borrowed(t.data())),
            ],
            compressed: false,
            len_header: INNER_HEADER_LEN as u64,
            hash: if hash { sha256_hex(t.data()) } else { String::new() },
        })
    }
    fn decode(&self, input: &DecodeInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        decode_in_memory(self, input, out)
    }
    fn decode_chunk(&self, input: &ChunkInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        let rec = input.record;
        let len = input.latn_header()?;
        if u64::from(len) != rec.uncompressed_size {
            return Err(Error::corrupt(
                rec.label(),
                format!(
                    "inner header says {len} payload bytes, the manifest says {}",
                    rec.uncompressed_size
                ),
            ));
        }
        let body = input.body();
        if body.len() != out.len() as u64 {
            return Err(Error::corrupt(
                rec.label(),
                format!(
                    "raw payload is {} bytes, the shape needs {}",
                    body.len(),
                    out.len()
                ),
            ));
        }
        let hashing = input.verify && out.len() >= PARALLEL_MIN_BYTES;
        if let Some(body) = body.as_slice() {
            if hashing {
                // The stored bytes are what is returned: hash them on a second
                // thread while this one copies them out.
                return Ok(Some(std::thread::scope(|scope| {
                    let hasher = scope.spawn(|| sha256_hex(body));
                    out.copy_from_slice(body);
                    hasher.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                })));
            }
            out.copy_from_slice(body);
            return Ok(None);
        }
        // From a file: read straight into `out` (no other buffer), each
        // piece hashed on a second thread while the next one is read.
        if hashing {
            return fill_hashing(out, |at, piece| body.read_at(at, piece)).map(Some);
        }
        body.read_at(0, out)?;
        Ok(None)
    }
}

/// `shuffle-zstd` (API alias `compact`): byte planes, one zstd frame each (format 1.1).
pub struct ShuffleZstd;

impl TensorCodec for ShuffleZstd {
    fn name(&self) -> &'static str {
        "shuffle-zstd"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["compact"]
    }
    fn summary(&self) -> &'static str {
        "lossless byte planes, one zstd frame each; smallest (format 1.1)"
    }
    fn encode<'a>(&self, latent: &str, t: &TensorRef<'a>) -> Result<EncodedLatent<'a>> {
        let e = self.encode_parts(latent, t, true)?;
        let parts = e.parts.into_iter().map(|part| match part {
            Part::Bytes(b) => b,
            Part::Plane(_) => {
                let mut bytes = vec![0u8; part.len()];
                part.fill(0, &mut bytes);
                Cow::Owned(bytes)
            }
        });
        Ok(EncodedLatent {
            parts: parts.collect(),
            compressed: e.compressed,
            len_header: e.len_header,
            hash: e.hash,
        })
    }
    fn encode_parts<'a>(&self, latent: &str, t: &TensorRef<'a>, hash: bool) -> Result<EncodedParts<'a>> {
        // Planes compressed and the tensor hashed together, on two threads
        // when large; the stored planes are generated as they are written.
        let (pieces, hash) = if hash {
            let (pieces, hash) =
                shuffle::encode_and_hash_lazy(t.data(), t.dtype().itemsize()).map_err(Error::Internal)?;
            (pieces, super::hex(&hash))
        } else {
            let pieces = shuffle::encode_lazy(t.data(), t.dtype().itemsize()).map_err(Error::Internal)?;
            (pieces, String::new())
        };
        let body_len: usize = pieces.iter().map(shuffle::Piece::len).sum();
        if u32::try_from(body_len).is_err() {
            return Err(Error::Unsupported(format!(
                "latent {latent:?} compresses to more than 4 GiB"
            )));
        }
        let mut parts = vec![Part::Bytes(Cow::Owned(
            latn_header(t.dtype(), body_len)?.to_vec(),
        ))];
        parts.extend(pieces.into_iter().map(|piece| match piece {
            shuffle::Piece::Bytes(b) => Part::Bytes(Cow::Owned(b)),
            shuffle::Piece::Stored(p) => Part::Plane(p),
        }));
        Ok(EncodedParts {
            parts,
            compressed: true,
            len_header: INNER_HEADER_LEN as u64,
            hash,
        })
    }
    fn decode(&self, input: &DecodeInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        decode_in_memory(self, input, out)
    }
    fn decode_chunk(&self, input: &ChunkInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        let rec = input.record;
        let corrupt = |reason: String| Error::corrupt(rec.label(), reason);
        let declared = input.latn_header()?;
        let body = input.body();
        if u64::from(declared) != body.len() {
            return Err(corrupt(format!(
                "inner header says {declared} payload bytes, the chunk has {}",
                body.len()
            )));
        }
        let itemsize = input.dtype.itemsize();
        let parallel = out.len() >= PARALLEL_MIN_BYTES && itemsize >= 2;
        if let Some(payload) = body.as_slice() {
            let mut decoder = shuffle::Decoder::new(payload, itemsize, out.len()).map_err(corrupt)?;
            return run_planes(&mut decoder, out, input.verify, parallel).map_err(corrupt);
        }
        // From a file: the prefix and table, then each plane's frame read in
        // windows of PLANE_WINDOW bytes while it decodes.
        let table_len = (shuffle::Layout::table_len(itemsize) as u64).min(body.len());
        let mut head = vec![0u8; table_len as usize];
        body.read_at(0, &mut head)?;
        let layout = shuffle::Layout::parse(&head, body.len(), itemsize, out.len()).map_err(corrupt)?;
        let errors = ReadErrors::new();
        let inputs = layout
            .planes()
            .iter()
            .map(|&(at, len)| {
                body.sub(at, len)
                    .map(|frame| frame.input(PLANE_WINDOW, &errors))
                    .ok_or_else(|| Error::Internal("a plane outside its payload".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        shuffle::Decoder::from_inputs(&layout, inputs)
            .and_then(|mut decoder| run_planes(&mut decoder, out, input.verify, parallel))
            // A failed read is reported as itself, not as damage.
            .map_err(|e| errors.take().unwrap_or_else(|| corrupt(e)))
    }
}

/// Bytes of a plane's frame read from a file at a time.
const PLANE_WINDOW: usize = 2 << 20;

/// Decodes every element with `decoder`, on two threads when `parallel`
/// (returning the hex SHA-256 of `out` when `verify`), then checks that
/// every frame ends there.
fn run_planes<I: zstd_frame::Input + Send>(
    decoder: &mut shuffle::Decoder<I>,
    out: &mut [u8],
    verify: bool,
    parallel: bool,
) -> std::result::Result<Option<String>, String> {
    let digest = if parallel {
        decoder.fill_parallel(out, verify)?.map(|d| super::hex(&d))
    } else {
        decoder.fill(out)?;
        None
    };
    decoder.finish()?;
    Ok(digest)
}

/// Fills all of `out` with `fill(offset, piece)` in pieces of 8 MiB, each
/// hashed on a second thread while the next one fills; returns the hex
/// SHA-256 of `out`.
pub(crate) fn fill_hashing(
    out: &mut [u8],
    mut fill: impl FnMut(u64, &mut [u8]) -> Result<()>,
) -> Result<String> {
    use sha2::{Digest, Sha256};
    const PIECE: usize = 8 << 20;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(2);
        let hasher = scope.spawn(move || {
            let mut h = Sha256::new();
            for piece in rx {
                h.update(piece);
            }
            super::hex(&h.finalize())
        });
        let mut result = Ok(());
        let mut at = 0u64;
        for piece in out.chunks_mut(PIECE) {
            if let Err(e) = fill(at, piece) {
                result = Err(e);
                break;
            }
            at += piece.len() as u64;
            let done: &[u8] = piece;
            if tx.send(done).is_err() {
                result = Err(Error::Internal("the hashing thread stopped".into()));
                break;
            }
        }
        drop(tx);
        // A panic there is a bug, not damage: passed on (the bindings report it as internal).
        let digest = hasher.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        result.map(|()| digest)
    })
}

/// `zfp`: the reference's "compressed" mode, reversible zfp (format 1.0).
pub struct Zfp;

impl TensorCodec for Zfp {
    fn name(&self) -> &'static str {
        "zfp"
    }
    fn summary(&self) -> &'static str {
        "the reference's compressed mode (reversible zfp); larger for noise, interop only"
    }
    fn format_1_0(&self) -> bool {
        true
    }
    fn check(&self, latent: &str, t: &TensorRef<'_>) -> Result<()> {
        if t.dtype() != DType::F32 || t.shape().len() > 4 || t.shape().iter().any(|&d| d > 4096) {
            return Err(Error::invalid(format!(
                "latent {latent:?} ({} {:?}) cannot use the zfp codec, which stores float32 tensors of 1 to 4 \
                 dimensions up to 4096 each; use codec=\"compact\" (or \"raw\")",
                t.dtype(), t.shape()
            )));
        }
        Ok(())
    }
    fn encode<'a>(&self, _: &str, t: &TensorRef<'a>) -> Result<EncodedLatent<'a>> {
        let head = latn_header(t.dtype(), t.data().len())?;
        let stream = zfp::encode_f32(t.data(), t.shape()).map_err(|e| Error::invalid(e.to_string()))?;
        let frame = zstd_frame::compress(&head, zstd_frame::REFERENCE_LEVEL).map_err(Error::Internal)?;
        Ok(EncodedLatent {
            len_header: frame.len() as u64,
            parts: vec![Cow::Owned(frame), Cow::Owned(stream)],
            compressed: true,
            hash: sha256_hex(t.data()),
        })
    }
    fn decode(&self, input: &DecodeInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        decode_in_memory(self, input, out)
    }
    fn decode_chunk(&self, input: &ChunkInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        let rec = input.record;
        let corrupt = |reason: String| Error::corrupt(rec.label(), reason);
        let len_header = match (rec.len_header, rec.len_data) {
            (Some(h), Some(d)) if h > 0 && d > 0 && h.checked_add(d) == Some(rec.compressed_size) => h,
            _ => {
                return Err(corrupt(format!(
                    "a zfp latent needs len_header + len_data = compressed_size, got {:?} + {:?} and {}",
                    rec.len_header, rec.len_data, rec.compressed_size
                )))
            }
        };
        if input.dtype != DType::F32 {
            return Err(corrupt(format!(
                "zfp latents must be float32, flags say {}",
                input.dtype
            )));
        }
        let whole = input.chunk;
        let (Some(frame), Some(stream)) = (
            whole.sub(0, len_header),
            whole.sub(len_header, whole.len().saturating_sub(len_header)),
        ) else {
            return Err(corrupt(format!(
                "len_header {len_header} is past the chunk's {} bytes",
                whole.len()
            )));
        };
        // The inner header's frame, streamed (its 12 bytes need no window).
        let mut head = [0u8; INNER_HEADER_LEN];
        let errors = ReadErrors::new();
        zstd_frame::FrameDecoder::new(frame.input(64 << 10, &errors), zstd_frame::MAX_ANY_WINDOW_LOG)
            .and_then(|mut d| zstd_frame::decode_split(&mut d, &mut head, &mut []))
            .map_err(|e| {
                errors
                    .take()
                    .unwrap_or_else(|| corrupt(format!("inner header: {e}")))
            })?;
        let len = check_header(rec, input.dtype, &head)?;
        if u64::from(len) != rec.uncompressed_size {
            return Err(corrupt(format!(
                "inner header says {len} payload bytes, the manifest says {}",
                rec.uncompressed_size
            )));
        }
        // The zfp stream, read in windows of zfp::WINDOW_BYTES while it decodes.
        let source = ZfpInput {
            chunk: stream,
            errors: ReadErrors::new(),
        };
        if let Err(e) = zfp::decode_f32_from(&source, input.shape, out) {
            return Err(source.errors.take().unwrap_or_else(|| corrupt(e.to_string())));
        }
        Ok(None)
    }
}
