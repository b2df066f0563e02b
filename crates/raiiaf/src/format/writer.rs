//! Writing. The default codec produces files the reference decoder
//! (`raiiaf==1.1.0`) reads back unchanged; everything this project adds
//! lives in manifest keys the reference ignores. The compact codec and
//! bfloat16 / non-4-D tensors need format 1.1 readers.

use std::borrow::Cow;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use super::codecs::{self, Part, TensorCodec};
use super::header::{Flavor, Header, RAIIAF_HEADER_LEN};
use super::manifest::{ChunkRecord, DATA, ENVC, LATN};
use super::{inner_header, json_inflate_limit, pyjson, sha256_hex};
use crate::codec::zstd_frame;
use crate::error::{Error, Result};
use crate::tensor::{DType, TensorRef};

/// The tensor codec a file is written with: a handle on a registered
/// [`TensorCodec`] (see [`super::codecs`]). `Codec::Raw` (default),
/// `Codec::Compact` (`shuffle-zstd`) and `Codec::Zfp` are the built-in ones;
/// [`Codec::from_name`] finds any registered codec by name or alias.
#[derive(Clone, Copy)]
pub struct Codec(&'static dyn TensorCodec);

#[allow(non_upper_case_globals)]
impl Codec {
    /// Raw element bytes; the image in a zstd frame as the reference expects.
    /// Readable by the reference decoder (float32/float16, 4-D).
    pub const Raw: Codec = Codec(&codecs::Raw);
    /// The reference's "compressed" mode: zfp reversible. float32, 1-4-D.
    /// Kept for interoperability only: it makes noise 3.8x larger.
    pub const Zfp: Codec = Codec(&codecs::Zfp);
    /// Format 1.1 `shuffle-zstd`: byte-shuffled planes, one zstd-1 frame each
    /// (1.18x on f32/f16 noise, 1.45x on bf16); the image is stored as is.
    pub const Compact: Codec = Codec(&codecs::ShuffleZstd);

    /// A codec by name or alias (`raw`, `compact` or `shuffle-zstd`, `zfp`, or
    /// one added with [`codecs::register`]).
    pub fn from_name(name: &str) -> Result<Codec> {
        codecs::by_api_name(name).map(Codec).ok_or_else(|| {
            Error::invalid(format!(
                "unknown codec {name:?}: use {} (raw: reference-compatible, default; compact: \
                 smallest, format 1.1; zfp: the reference's compressed mode)",
                codecs::api_names()
            ))
        })
    }

    /// A handle on any codec (e.g. one registered at run time).
    pub fn new(codec: &'static dyn TensorCodec) -> Codec {
        Codec(codec)
    }

    /// The name the APIs list it under (`compact` for `shuffle-zstd`).
    pub fn name(self) -> &'static str {
        self.0.api_name()
    }

    /// The name files record (`shuffle-zstd`).
    pub fn file_name(self) -> &'static str {
        self.0.name()
    }

    /// The codec itself.
    pub fn codec(self) -> &'static dyn TensorCodec {
        self.0
    }
}

impl Default for Codec {
    fn default() -> Self {
        Codec::Raw
    }
}

impl PartialEq for Codec {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Codec {}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Codec({:?})", self.0.name())
    }
}

/// What goes into a file.
#[derive(Debug, Clone, Default)]
pub struct Contents<'a> {
    /// Named tensors, written in this order (`initial_noise` first by convention).
    pub latents: Vec<(String, TensorRef<'a>)>,
    /// An encoded image file (PNG), stored byte for byte.
    pub image: Option<&'a [u8]>,
    /// The image record's `extra` object (e.g. width, height).
    pub image_extra: Map<String, Value>,
    /// Metadata. `model_name`, `model_version`, `date`, `prompt`, `tags`,
    /// `generation_settings` and `hardware_info` fill the reference's
    /// `model_info`; every other key goes to the `metadata` object.
    pub metadata: Map<String, Value>,
    /// The ENVC document (`env_version`, `components`); see [`super::envc`].
    pub environment: Option<Value>,
}

/// How a file is written: the latents' codec, overwriting, fsync.
///
/// ```
/// use raiiaf::{Codec, WriteOptions};
/// let options = WriteOptions { codec: Codec::Compact, ..WriteOptions::default() };
/// assert!(!options.overwrite);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// The codec for every latent.
    pub codec: Codec,
    /// Replace an existing file (otherwise an existing target is an error).
    pub overwrite: bool,
    /// fsync the file and its directory before returning (costs milliseconds).
    pub fsync: bool,
}

/// Metadata keys that belong to the reference's `model_info`, with the
/// on-disk name and the JSON type they must have.
const MODEL_INFO_KEYS: [(&str, &str, Kind); 7] = [
    ("model_name", "model_name", Kind::Str),
    ("model_version", "version", Kind::Str),
    ("date", "date", Kind::Str),
    ("prompt", "prompt", Kind::Str),
    ("tags", "tags", Kind::StrList),
    ("generation_settings", "generation_settings", Kind::Object),
    ("hardware_info", "hardware_info", Kind::Object),
];

#[derive(Clone, Copy)]
enum Kind {
    Str,
    StrList,
    Object,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::Object => v.is_object(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::StrList => "a list of strings",
            Kind::Object => "an object (dict)",
        }
    }
}

/// The file as a list of byte pieces (borrowed where no encoding is needed,
/// so raw tensors and stored images are never copied).
struct Layout<'a> {
    pieces: Vec<Part<'a>>,
    len: u64,
}

/// Encodes `contents` into the bytes of a complete file.
pub fn encode(contents: &Contents<'_>, codec: Codec) -> Result<Vec<u8>> {
    let layout = build(contents, codec)?;
    let mut out = Vec::with_capacity(layout.len as usize);
    for p in &layout.pieces {
        match p {
            Part::Bytes(b) => out.extend_from_slice(b),
            Part::Plane(_) => {
                let at = out.len();
                out.resize(at + p.len(), 0);
                p.fill(0, &mut out[at..]);
            }
        }
    }
    Ok(out)
}

/// A complete encoded file as pieces that borrow the caller's tensors and
/// image: [`EncodedFile::copy_to`] fills a buffer of [`EncodedFile::len`]
/// bytes (a bytes object, say) with one copy and no intermediate file.
pub struct EncodedFile<'a> {
    layout: Layout<'a>,
}

impl EncodedFile<'_> {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.layout.len
    }

    /// Never true: a file has at least its header and META.
    pub fn is_empty(&self) -> bool {
        self.layout.len == 0
    }

    /// Copies the file into `out`, which should be [`Self::len`] bytes; a
    /// shorter `out` gets a prefix, a longer one keeps its tail.
    pub fn copy_to(&self, out: &mut [u8]) {
        let mut at = 0;
        for p in &self.layout.pieces {
            let n = p.len().min(out.len() - at);
            p.fill(0, &mut out[at..at + n]);
            at += n;
        }
    }
}

/// Encodes `contents` without joining the pieces (see [`EncodedFile`]).
pub fn encode_file<'a>(contents: &Contents<'a>, codec: Codec) -> Result<EncodedFile<'a>> {
    Ok(EncodedFile {
        layout: build(contents, codec)?,
    })
}

/// Encodes `contents` and writes them to `path` atomically: a crash leaves
/// either no file or the complete file, never a partial one under `path`.
/// Returns the file size.
///
/// Tensors of [`HASH_ASIDE_MIN_BYTES`] or more are hashed on threads of
/// their own while the chunks are encoded and written: only the manifest,
/// written last, needs their SHA-256, and the header (which needs the
/// manifest's size) is written at the start of the file once it is known.
pub fn write_file(path: &Path, contents: &Contents<'_>, options: WriteOptions) -> Result<u64> {
    let aside: Vec<bool> = contents
        .latents
        .iter()
        .map(|(_, t)| t.data().len() >= HASH_ASIDE_MIN_BYTES)
        .collect();
    if !aside.contains(&true) {
        let layout = build(contents, options.codec)?;
        persist(path, options, |out, tmp| write_parts(out, &layout.pieces, tmp))?;
        return Ok(layout.len);
    }
    std::thread::scope(|scope| {
        let hashers: Vec<_> = contents
            .latents
            .iter()
            .zip(&aside)
            .map(|((_, t), &aside)| aside.then(|| scope.spawn(move || sha256_hex(t.data()))))
            .collect();
        let mut chunks = build_chunks(contents, options.codec, &aside)?;
        let mut len = 0;
        persist(path, options, |out, tmp| {
            let io = |e| Error::io(tmp, e);
            out.seek(SeekFrom::Start(RAIIAF_HEADER_LEN as u64)).map_err(io)?;
            write_parts(out, &chunks.pieces, tmp)?;
            for (record, hasher) in chunks.records.iter_mut().zip(hashers) {
                let Some(hasher) = hasher else { continue };
                let hash = hasher
                    .join()
                    .map_err(|_| Error::Internal("a tensor hashing thread panicked".into()))?;
                // A codec that hashed anyway (the default `encode_parts`) agrees.
                if record.hash.is_empty() {
                    record.hash = hash;
                }
            }
            let (header, meta) = finish(&chunks)?;
            out.write_all(&meta).map_err(io)?;
            out.seek(SeekFrom::Start(0)).map_err(io)?;
            out.write_all(&header).map_err(io)?;
            len = chunks.meta_offset + meta.len() as u64;
            Ok(())
        })?;
        Ok(len)
    })
}

/// Tensors at least this large are hashed aside by [`write_file`].
pub const HASH_ASIDE_MIN_BYTES: usize = crate::codec::shuffle::PARALLEL_MIN_BYTES;

/// The chunks of a file (everything between the header and META), their
/// records, and what the manifest needs besides.
struct Chunks<'a> {
    pieces: Vec<Part<'a>>,
    records: Vec<ChunkRecord>,
    meta_offset: u64,
    minor: u8,
    model_info: Map<String, Value>,
    extra_metadata: Map<String, Value>,
}

/// One chunk as byte pieces that borrow the caller's bytes wherever they
/// are stored as is (raw tensors, the image).
struct Encoded<'a> {
    parts: Vec<Part<'a>>,
    record: ChunkRecord,
}

fn build<'a>(contents: &Contents<'a>, codec: Codec) -> Result<Layout<'a>> {
    let chunks = build_chunks(contents, codec, &[])?;
    let (header, meta) = finish(&chunks)?;
    let len = chunks.meta_offset + meta.len() as u64;
    let mut pieces = Vec::with_capacity(chunks.pieces.len() + 2);
    pieces.push(Part::Bytes(Cow::Owned(header.to_vec())));
    pieces.extend(chunks.pieces);
    pieces.push(Part::Bytes(Cow::Owned(meta)));
    Ok(Layout { pieces, len })
}

/// Validates and encodes every chunk. A latent whose `hash_aside` entry is
/// true may get an empty hash: the caller hashes it.
fn build_chunks<'a>(contents: &Contents<'a>, codec: Codec, hash_aside: &[bool]) -> Result<Chunks<'a>> {
    let (model_info, extra_metadata) = split_metadata(&contents.metadata)?;
    let mut names = std::collections::HashSet::new();
    for (name, t) in &contents.latents {
        if name.is_empty() {
            return Err(Error::invalid("latent names must not be empty"));
        }
        if !names.insert(name.as_str()) {
            return Err(Error::invalid(format!("two latents are named {name:?}")));
        }
        check_codec(codec, name, t)?;
    }
    if let Some(env) = &contents.environment {
        super::envc::validate(env)?;
    }

    // The image (hash + zstd of ~2 MB) is encoded on a second thread while
    // this one compresses and hashes the tensors: on two cores this halves
    // the time to write an SDXL-sized record.
    let (latents, image) = std::thread::scope(|scope| {
        enum Job<'s, T> {
            Thread(std::thread::ScopedJoinHandle<'s, T>),
            Done(T),
        }
        let image_job = contents.image.map(|img| {
            if img.len() > 256 * 1024 {
                Job::Thread(scope.spawn(move || encode_image(img, codec)))
            } else {
                Job::Done(encode_image(img, codec))
            }
        });
        let latents: Vec<Result<Encoded<'a>>> = contents
            .latents
            .iter()
            .enumerate()
            .map(|(i, (name, t))| encode_latent(name, t, codec, !hash_aside.get(i).copied().unwrap_or(false)))
            .collect();
        let image = image_job.map(|job| match job {
            Job::Thread(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the image encoder thread panicked".into()))),
            Job::Done(done) => done,
        });
        (latents, image)
    });

    let mut pieces: Vec<Part<'a>> = Vec::with_capacity(2 * contents.latents.len() + 6);
    let mut records = Vec::new();
    let mut offset = RAIIAF_HEADER_LEN as u64;
    let mut push = |chunk: Encoded<'a>| {
        let Encoded { parts, mut record } = chunk;
        record.index = records.len() as u64;
        record.offset = offset;
        offset += record.compressed_size;
        pieces.extend(parts.into_iter().filter(|p| !p.is_empty()));
        records.push(record);
    };
    for latent in latents {
        push(latent?);
    }
    if let Some(image) = image {
        let mut image = image?;
        image.record.extra = contents.image_extra.clone();
        push(image);
    }
    if let Some(env) = &contents.environment {
        push(wrap_zstd(ENVC, pyjson::to_string_indent2(env).as_bytes())?);
    }

    Ok(Chunks {
        pieces,
        records,
        meta_offset: offset,
        minor: u8::from(needs_v1_1(contents, codec)),
        model_info,
        extra_metadata,
    })
}

/// The header and the META chunk for `chunks` (whose records are complete).
fn finish(chunks: &Chunks<'_>) -> Result<([u8; RAIIAF_HEADER_LEN], Vec<u8>)> {
    let Chunks {
        records,
        meta_offset,
        minor,
        model_info,
        extra_metadata,
        ..
    } = chunks;
    let (meta_offset, minor) = (*meta_offset, *minor);
    let chunk_count = records.len() as u64;
    let records_json: Vec<Value> = records.iter().map(ChunkRecord::to_json).collect();
    let manifest = |file_size: u64, padding: usize| {
        let mut file_info = Map::new();
        file_info.insert("magic".into(), "raiiaf".into());
        file_info.insert("version_major".into(), 1.into());
        file_info.insert("version_minor".into(), minor.into());
        file_info.insert("file_size".into(), file_size.into());
        file_info.insert("chunk_count".into(), chunk_count.into());
        let mut root = Map::new();
        root.insert("file_info".into(), Value::Object(file_info));
        root.insert("model_info".into(), Value::Object(model_info.clone()));
        root.insert("chunks".into(), Value::Array(records_json.clone()));
        if !extra_metadata.is_empty() {
            root.insert("metadata".into(), Value::Object(extra_metadata.clone()));
        }
        let mut top = Map::new();
        top.insert(Flavor::Raiiaf.manifest_root().into(), Value::Object(root));
        let mut json = pyjson::to_string_indent2(&Value::Object(top)).into_bytes();
        json.resize(json.len() + padding, b' ');
        let len = u32::try_from(json.len())
            .map_err(|_| Error::Unsupported("the manifest JSON exceeds 4 GiB".into()))?;
        // The manifest carries no SHA-256 of its own: a zstd checksum
        // guards it (the reference decoder verifies it too).
        let head = inner_header::build(b"META", b"0000", len);
        let frame = zstd_frame::compress_parts_checksummed(&[&head, &json], zstd_frame::REFERENCE_LEVEL)
            .map_err(Error::Internal)?;
        Ok::<_, Error>(json_frame_within_limit(frame, &head, &json))
    };
    let meta = settle_file_size(meta_offset, manifest)?;
    let file_size = meta_offset + meta.len() as u64;
    let header = Header {
        flavor: Flavor::Raiiaf,
        version_major: 1,
        version_minor: minor,
        flags: 0,
        meta_offset,
        meta_size: meta.len() as u64,
        chunk_count,
        file_size,
        reserved: 0,
    };
    Ok((header.to_bytes()?, meta))
}

/// Finds a META chunk whose recorded file size is the real one. The size
/// depends on the chunk's compressed length, which depends on the size's
/// digits: iterate to a fixed point (two or three passes as a rule). The
/// length can also oscillate between two values with no fixed point; then
/// trailing spaces after the JSON (valid JSON whitespace) shift the
/// compressed length until one exists. (The reference stops after two
/// passes and records a size a few bytes short.)
fn settle_file_size(meta_offset: u64, manifest: impl Fn(u64, usize) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    let mut meta = manifest(0, 0)?;
    for padding in 0..32 {
        let mut seen = vec![meta.len()];
        for _ in 0..4 {
            let next = manifest(meta_offset + meta.len() as u64, padding)?;
            let converged = next.len() == meta.len();
            seen.push(next.len());
            meta = next;
            if converged {
                return Ok(meta);
            }
        }
        let (lo, hi) = (*seen.iter().min().unwrap_or(&0), *seen.iter().max().unwrap_or(&0));
        for len in lo..=hi {
            let candidate = manifest(meta_offset + len as u64, padding)?;
            if candidate.len() == len {
                return Ok(candidate);
            }
        }
    }
    // Not reached in practice; the size field is informational anyway.
    Ok(meta)
}

/// Format 1.1 is needed for bfloat16, ranks other than 4, and every codec
/// but the reference's own (raw, zfp).
fn needs_v1_1(contents: &Contents<'_>, codec: Codec) -> bool {
    !codec.0.format_1_0()
        || contents
            .latents
            .iter()
            .any(|(_, t)| t.dtype() == DType::BF16 || t.shape().len() != 4)
}

fn check_codec(codec: Codec, name: &str, t: &TensorRef<'_>) -> Result<()> {
    if u32::try_from(t.data().len()).is_err() {
        return Err(Error::Unsupported(format!(
            "latent {name:?} is {} bytes; a chunk holds at most 4 GiB",
            t.data().len()
        )));
    }
    codec.0.check(name, t)
}

/// One LATN chunk: the codec's pieces (raw latents borrow the caller's
/// buffer, so writing them copies nothing) and its record.
fn encode_latent<'a>(name: &str, t: &TensorRef<'a>, codec: Codec, hash: bool) -> Result<Encoded<'a>> {
    let encoded = codec.0.encode_parts(name, t, hash)?;
    let compressed_size: u64 = encoded.parts.iter().map(|p| p.len() as u64).sum();
    let mut extra = Map::new();
    extra.insert("shape".into(), Value::from(t.shape().to_vec()));
    extra.insert("dtype".into(), t.dtype().name().into());
    extra.insert("key".into(), name.into());
    let record = ChunkRecord {
        index: 0,
        kind: LATN.into(),
        flags: t.dtype().flags_str().into(),
        offset: 0,
        compressed_size,
        uncompressed_size: t.data().len() as u64,
        hash: encoded.hash,
        extra,
        compressed: encoded.compressed,
        len_header: Some(encoded.len_header),
        len_data: Some(compressed_size.saturating_sub(encoded.len_header)),
        // Format 1.0 codecs are told apart by `compressed`; others are named.
        codec: (!codec.0.format_1_0()).then(|| codec.0.name().to_owned()),
    };
    Ok(Encoded {
        parts: encoded.parts,
        record,
    })
}

fn encode_image(img: &[u8], codec: Codec) -> Result<Encoded<'_>> {
    let len = u32::try_from(img.len()).map_err(|_| Error::Unsupported("the image exceeds 4 GiB".into()))?;
    let head = inner_header::build(b"DATA", b"0000", len);
    let (parts, compressed) = if codec.0.plain_image() {
        // Format 1.1: stored as is.
        (vec![Cow::Owned(head.to_vec()), Cow::Borrowed(img)], false)
    } else {
        // The reference always zstd-decompresses the image: give it a zstd
        // frame of stored blocks (PNG does not compress; trying costs 0.4 ms).
        (
            zstd_frame::stored_frame(&head, img)
                .ok_or_else(|| Error::Unsupported("the image exceeds 4 GiB".into()))?,
            true,
        )
    };
    let size = parts.iter().map(|p| p.len() as u64).sum();
    Ok(Encoded {
        parts: parts.into_iter().map(Part::Bytes).collect(),
        record: record_for(DATA, img, size, compressed),
    })
}

/// An ENVC chunk as the reference writes it: one zstd-3 frame of inner
/// header + payload.
fn wrap_zstd<'a>(kind: &str, payload: &[u8]) -> Result<Encoded<'a>> {
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::Unsupported(format!("the {kind} chunk exceeds 4 GiB")))?;
    let mut tag = [0u8; 4];
    tag.copy_from_slice(kind.as_bytes());
    let head = inner_header::build(&tag, b"0000", len);
    let mut frame = zstd_frame::compress_parts(&[&head, payload], zstd_frame::REFERENCE_LEVEL)
        .map_err(Error::Internal)?;
    if kind == ENVC {
        frame = json_frame_within_limit(frame, &head, payload);
    }
    let record = record_for(kind, payload, frame.len() as u64, true);
    Ok(Encoded {
        parts: vec![Part::Bytes(Cow::Owned(frame))],
        record,
    })
}

/// A JSON frame that inflates beyond what readers allow JSON
/// ([`json_inflate_limit`]: extremely repetitive metadata) is stored in
/// uncompressed blocks instead, so every file written stays readable.
fn json_frame_within_limit(frame: Vec<u8>, head: &[u8], json: &[u8]) -> Vec<u8> {
    let total = (head.len() + json.len()) as u64;
    if total <= json_inflate_limit(frame.len() as u64) {
        return frame;
    }
    zstd_frame::stored_frame(head, json).map_or(frame, |pieces| pieces.concat())
}

fn record_for(kind: &str, payload: &[u8], compressed_size: u64, compressed: bool) -> ChunkRecord {
    ChunkRecord {
        index: 0,
        kind: kind.into(),
        flags: "0000".into(),
        offset: 0,
        compressed_size,
        uncompressed_size: payload.len() as u64,
        hash: sha256_hex(payload),
        extra: Map::new(),
        compressed,
        len_header: None,
        len_data: None,
        codec: None,
    }
}

/// Splits user metadata into the reference's `model_info` (always complete:
/// the reference schema requires model_name, version, date, prompt, tags)
/// and the free-form rest.
fn split_metadata(metadata: &Map<String, Value>) -> Result<(Map<String, Value>, Map<String, Value>)> {
    let mut info = Map::new();
    for (key, disk, kind) in MODEL_INFO_KEYS {
        match metadata.get(key) {
            Some(v) if kind.accepts(v) => {
                info.insert(disk.into(), v.clone());
            }
            Some(v) => {
                return Err(Error::invalid(format!(
                    "metadata[{key:?}] must be {}, got {v}",
                    kind.describe()
                )))
            }
            None => match key {
                "date" => {
                    info.insert(disk.into(), utc_now_iso().into());
                }
                "model_name" | "model_version" | "prompt" => {
                    info.insert(disk.into(), "".into());
                }
                "tags" => {
                    info.insert(disk.into(), Value::Array(vec![]));
                }
                // Optional in the reference schema, and its defaults break it.
                _ => {}
            },
        }
    }
    let rest = metadata
        .iter()
        .filter(|(k, _)| !MODEL_INFO_KEYS.iter().any(|(key, _, _)| key == k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((info, rest))
}

/// `datetime.now(UTC).isoformat()`: `2026-11-22T02:37:53.637134+00:00`.
pub fn utc_now_iso() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_from_unix(now.as_secs() as i64, now.subsec_micros())
}

fn iso_from_unix(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    if micros == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}+00:00")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{micros:06}+00:00")
    }
}

/// Writes `pieces` to `out` in order.
fn write_parts(out: &mut impl Write, pieces: &[Part<'_>], tmp: &Path) -> Result<()> {
    // Pieces range from 3-byte block headers to megabyte tensors: the
    // BufWriter buffers the small ones and passes the large ones through.
    // Generated parts (stored planes) go through this buffer, small enough
    // to stay in the CPU's cache between filling and writing.
    let mut scratch = Vec::new();
    for p in pieces {
        match p {
            Part::Bytes(b) => out.write_all(b).map_err(|e| Error::io(tmp, e))?,
            Part::Plane(_) => {
                scratch.resize(256 * 1024, 0);
                let mut offset = 0;
                while offset < p.len() {
                    let n = (p.len() - offset).min(scratch.len());
                    p.fill(offset, &mut scratch[..n]);
                    out.write_all(&scratch[..n]).map_err(|e| Error::io(tmp, e))?;
                    offset += n;
                }
            }
        }
    }
    Ok(())
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `pieces` to a temporary file beside `path`, then moves it into
/// place: by rename when overwriting, by hard link otherwise, which fails
/// atomically if `path` appeared meanwhile (two writers never clobber each
/// other's files).
fn persist(
    path: &Path,
    options: WriteOptions,
    body: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>, &Path) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} does not name a file", path.display())))?;
    if !options.overwrite && path.exists() {
        return Err(Error::AlreadyExists(path.to_path_buf()));
    }
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, &mut file);
        body(&mut out, &tmp)?;
        out.flush().map_err(|e| Error::io(&tmp, e))?;
        drop(out);
        if options.fsync {
            file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        }
        drop(file);
        if options.overwrite {
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        } else {
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&tmp);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::AlreadyExists(path.to_path_buf()))
                }
                // File systems without hard links (FAT, some network shares):
                // rename if the name is free. A writer racing in between the
                // check and the rename could be replaced; nothing better exists
                // there without renameat2.
                Err(_) if !path.exists() => {
                    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
                }
                Err(_) => return Err(Error::AlreadyExists(path.to_path_buf())),
            }
        }
        if options.fsync {
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        remove_stale_temp_files(&dir);
    }
    result
}

/// How long a dead writer's temporary file must have been left unchanged
/// before another writer removes it.
#[cfg(target_os = "linux")]
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// A writer that is killed (or crashes, or loses power) mid-write leaves its
/// hidden temporary file `.<name>.<pid>-<n>.tmp` behind, as large as the
/// file. The first successful write of each process into a directory removes
/// those whose process is gone (`/proc/<pid>`, so Linux only) and that have
/// not changed for [`STALE_TEMP_AGE`]; the age also covers a writer in
/// another PID namespace sharing the directory.
fn remove_stale_temp_files(dir: &Path) {
    #[cfg(target_os = "linux")]
    {
        static CLEANED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        {
            let Ok(mut cleaned) = CLEANED.lock() else {
                return;
            };
            if cleaned.iter().any(|d| d == dir) {
                return;
            }
            cleaned.push(dir.to_path_buf());
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let me = std::process::id();
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(temp_file_pid) else {
                continue;
            };
            if pid == me || Path::new("/proc").join(pid.to_string()).exists() {
                continue;
            }
            // DirEntry::metadata does not follow symbolic links.
            let stale = entry.metadata().is_ok_and(|m| {
                m.is_file()
                    && m.modified()
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age >= STALE_TEMP_AGE)
            });
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
}

/// The writer's pid in a temporary file name `.<name>.<pid>-<n>.tmp`.
#[cfg(any(target_os = "linux", test))]
fn temp_file_pid(file_name: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (head, n) = rest.rsplit_once('-')?;
    let (name, pid) = head.rsplit_once('.')?;
    (!name.is_empty() && digits(n) && digits(pid)).then(|| pid.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_names() {
        assert_eq!(temp_file_pid(".a.raiiaf.1234-0.tmp"), Some(1234));
        assert_eq!(temp_file_pid(".x.y.7-12.tmp"), Some(7));
        for not_ours in [
            "a.raiiaf.1234-0.tmp",
            ".a.raiiaf.1234-0.tmpx",
            ".a.raiiaf.12a4-0.tmp",
            ".a.raiiaf.1234-.tmp",
            "..1234-0.tmp",
            ".a.raiiaf.+12-0.tmp",
            ".a.raiiaf.99999999999-0.tmp",
        ] {
            assert_eq!(temp_file_pid(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn the_three_outputs_hold_the_same_bytes() {
        // 8 MiB of float32-like noise: above the two-thread threshold, with
        // planes the compact codec stores (generated as they are written)
        // and one it compresses. Bytes, a copied EncodedFile and a written
        // file must agree, for every codec, and read back.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let values: Vec<f32> = (0..2usize << 20)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let mantissa = (s >> 40) as u32 & 0x7f_ffff;
                f32::from_bits(((123 + (s & 7) as u32) << 23) | mantissa | ((s >> 63) as u32) << 31)
            })
            .collect();
        let data: &[u8] = bytemuck::cast_slice(&values);
        let contents = Contents {
            latents: vec![(
                "noise".into(),
                TensorRef::new(DType::F32, vec![1, 2, 1024, 1024], data).unwrap(),
            )],
            image: Some(b"not really a png"),
            // A fixed date: otherwise each encoding records its own time.
            metadata: [("date".to_string(), Value::from("2026-11-29T00:00:00+00:00"))]
                .into_iter()
                .collect(),
            ..Contents::default()
        };
        let dir = tempfile::tempdir().unwrap();
        for codec in [Codec::Raw, Codec::Compact] {
            let bytes = encode(&contents, codec).unwrap();
            let file = encode_file(&contents, codec).unwrap();
            let mut copied = vec![7u8; file.len() as usize];
            file.copy_to(&mut copied);
            assert!(copied == bytes, "{codec:?}: copy_to differs from encode");
            let path = dir.path().join(format!("{}.raiiaf", codec.name()));
            let options = WriteOptions {
                codec,
                ..WriteOptions::default()
            };
            assert_eq!(write_file(&path, &contents, options).unwrap(), bytes.len() as u64);
            assert!(
                std::fs::read(&path).unwrap() == bytes,
                "{codec:?}: the file differs"
            );
            let archive = super::super::Archive::parse(&bytes, super::super::ReadOptions::default()).unwrap();
            let back = archive.read_all().unwrap();
            assert!(back.latents[0].1.data() == data, "{codec:?}: read back differs");
        }
        // Compact stores three of the four planes: about 3/4 of the tensor
        // plus the compressed exponents.
        let compact = encode(&contents, Codec::Compact).unwrap().len();
        assert!(
            compact > data.len() * 3 / 4 && compact < data.len() * 7 / 8,
            "{compact}"
        );
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_from_unix(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            iso_from_unix(1_795_315_073, 637_134),
            "2026-11-22T02:37:53.637134+00:00"
        );
        assert_eq!(iso_from_unix(951_782_400, 5), "2000-02-29T00:00:00.000005+00:00");
    }

    #[test]
    fn metadata_is_split_and_typed() {
        let mut m = Map::new();
        m.insert("prompt".into(), "a cat".into());
        m.insert("model_version".into(), "1.5".into());
        m.insert("seed".into(), 42.into());
        let (info, rest) = split_metadata(&m).unwrap();
        assert_eq!(info["prompt"], "a cat");
        assert_eq!(info["version"], "1.5");
        assert_eq!(info["model_name"], "");
        assert!(info.contains_key("date"));
        assert!(!info.contains_key("generation_settings"));
        assert_eq!(rest["seed"], 42);
        m.insert("tags".into(), "not a list".into());
        assert!(split_metadata(&m).is_err());
    }
}
