//! Reading: every structure is bounds-checked before use, every size is
//! checked before anything is allocated, every payload's SHA-256 is verified.

use serde_json::Value;

use super::codecs::{self, ChunkInput};
use super::header::{Flavor, Header};
use super::manifest::{ChunkRecord, Manifest, DATA, ENVC, LATN};
use super::source::{Chunk, FileSource, ReadErrors, Source};
use super::{inflate_limit, inner_header, json_inflate_limit, sha256_hex, INNER_HEADER_LEN};
use crate::codec::zstd_frame;
use crate::error::{Error, Result, DECODED_LIMIT_ENV};
use crate::tensor::{DType, Tensor};

/// Default of [`ReadOptions::max_decoded_bytes`]: 1 GiB per file.
pub const DEFAULT_MAX_DECODED_BYTES: u64 = 1 << 30;

/// How a file is read: hash verification and the decoded-size limit.
///
/// ```
/// let options = raiiaf::ReadOptions::default();
/// assert!(options.verify_hashes);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Verify each chunk's SHA-256 (on by default). Turning it off is meant
    /// for forensics on damaged files only.
    pub verify_hashes: bool,
    /// The most bytes one call may decode from a file: the declared sizes of
    /// the tensors, image and environment it decodes, added up, are checked
    /// against it before anything is allocated (default 1 GiB). The relative
    /// inflation limits of FORMAT.md §3.2 apply as well; this one is absolute,
    /// so a 33 KB file declaring a 1 GiB tensor is refused unless asked for.
    pub max_decoded_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify_hashes: true,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
        }
    }
}

impl ReadOptions {
    /// The defaults, with `max_decoded_bytes` taken from the environment
    /// variable `RAIIAF_MAX_DECODED_BYTES` when it is set (what the CLI and the
    /// Python API use when the caller gives no limit).
    pub fn from_env() -> Result<ReadOptions> {
        Ok(ReadOptions {
            max_decoded_bytes: max_decoded_bytes_from_env()?,
            ..ReadOptions::default()
        })
    }
}

/// `RAIIAF_MAX_DECODED_BYTES` parsed with [`parse_byte_size`], or
/// [`DEFAULT_MAX_DECODED_BYTES`] when it is unset or empty.
pub fn max_decoded_bytes_from_env() -> Result<u64> {
    match std::env::var(DECODED_LIMIT_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_byte_size(&v)
            .map_err(|e| Error::invalid(format!("environment variable {DECODED_LIMIT_ENV}={v:?}: {e}"))),
        _ => Ok(DEFAULT_MAX_DECODED_BYTES),
    }
}

/// A byte count: an integer, optionally followed by `K`, `M`, `G` or `T`
/// (powers of 1024, with or without `iB`/`B`): `1073741824`, `512MiB`, `4G`.
pub fn parse_byte_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count such as 1073741824, 512MiB or 4G"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit; use K, M, G or T (powers of 1024)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} does not fit in 64 bits"))
}

/// A parsed file: header and manifest validated, payloads decoded on demand.
///
/// [`Archive::parse`] reads a file held in memory, in place;
/// [`Archive::open`] reads a file on disk: opening it reads only the header
/// and the META chunk (the manifest), and each chunk's bytes are read when a
/// call decodes it, streamed into the output in bounded windows.
#[derive(Debug)]
pub struct Archive<'a> {
    source: Source<'a>,
    // Private: validated together in `parse`, never changed after.
    header: Header,
    manifest: Manifest,
    options: ReadOptions,
}

/// Everything a file holds, decoded.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The file's header.
    pub header: Header,
    /// The file's manifest.
    pub manifest: Manifest,
    /// Latents by name, in file order.
    pub latents: Vec<(String, Tensor)>,
    /// The embedded image file (PNG), as stored.
    pub image: Option<Vec<u8>>,
    /// The ENVC document (`env_version`, `components`).
    pub environment: Option<Value>,
}

impl<'a> Archive<'a> {
    /// Parses and validates the header, the manifest and the chunk layout
    /// of a file held in memory (read in place).
    pub fn parse(bytes: &'a [u8], options: ReadOptions) -> Result<Archive<'a>> {
        Archive::from_source(Source::Bytes(bytes), options)
    }

    fn from_source(source: Source<'a>, options: ReadOptions) -> Result<Archive<'a>> {
        // The longest header is 33 bytes; more is never looked at.
        let head = source
            .range(0, source.len().min(64))
            .ok_or_else(|| Error::Internal("the header range".into()))?
            .load()?;
        let header = Header::parse(&head)?;
        let file_len = source.len();
        let meta_end = header.meta_offset.saturating_add(header.meta_size);
        if header.meta_offset < header.flavor.header_len() as u64 || meta_end > file_len {
            return Err(Error::Truncated {
                what: "the META chunk (manifest)".into(),
                start: header.meta_offset,
                end: meta_end,
                file_len,
            });
        }
        let meta = source
            .range(header.meta_offset, header.meta_size)
            .ok_or_else(|| Error::Internal("the META range".into()))?
            .load()?;
        let manifest_json = decode_meta(&meta)?;
        let manifest = Manifest::parse_owned(manifest_json, header.flavor)?;
        if manifest.chunks().len() as u64 != header.chunk_count {
            return Err(Error::manifest(format!(
                "the header announces {} chunks but the manifest lists {}",
                header.chunk_count,
                manifest.chunks().len()
            )));
        }
        let archive = Archive {
            source,
            header,
            manifest,
            options,
        };
        archive.check_layout()?;
        Ok(archive)
    }

    /// Chunks must lie between the header and META, must not overlap, and
    /// names and singletons must be unique: a file is never ambiguous.
    fn check_layout(&self) -> Result<()> {
        let start = self.header.flavor.header_len() as u64;
        // Labels are made only for an error message (not one per chunk of every file).
        let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(self.manifest.chunks().len());
        let mut names = std::collections::HashSet::new();
        let (mut images, mut envs) = (0, 0);
        for (i, rec) in self.manifest.chunks().iter().enumerate() {
            let end = rec.end().unwrap_or(u64::MAX);
            if rec.offset < start {
                return Err(Error::manifest(format!(
                    "chunk {} starts at offset {}, inside the {start}-byte header",
                    rec.label(),
                    rec.offset
                )));
            }
            if end > self.header.meta_offset {
                return Err(Error::Truncated {
                    what: format!("chunk {}", rec.label()),
                    start: rec.offset,
                    end,
                    file_len: self.source.len(),
                });
            }
            match rec.kind.as_str() {
                LATN if !names.insert(rec.latent_name()) => {
                    return Err(Error::manifest(format!(
                        "two latents are named {:?}",
                        rec.latent_name()
                    )));
                }
                DATA => images += 1,
                ENVC => envs += 1,
                _ => {}
            }
            spans.push((rec.offset, end, i));
        }
        if images > 1 || envs > 1 {
            return Err(Error::manifest(format!(
                "the manifest lists {images} image and {envs} environment chunks; at most one of each is allowed"
            )));
        }
        let chunks = self.manifest.chunks();
        // Ties broken by label, as when the labels were the sort key.
        spans.sort_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| chunks[a.2].label().cmp(&chunks[b.2].label()))
        });
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                let label = |i: usize| chunks[i].label();
                return Err(Error::manifest(format!(
                    "chunks {} and {} overlap",
                    label(pair[0].2),
                    label(pair[1].2)
                )));
            }
        }
        Ok(())
    }

    /// The file's length in bytes (when opened: as it was then).
    pub fn file_len(&self) -> u64 {
        self.source.len()
    }

    /// raiiaf 1.x or gen5.
    pub fn flavor(&self) -> Flavor {
        self.header.flavor
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The bytes of one of this archive's records, read on demand (bounds
    /// were checked in `check_layout`; checked again rather than trusted).
    fn chunk(&self, rec: &ChunkRecord) -> Result<Chunk<'_>> {
        self.source
            .range(rec.offset, rec.compressed_size)
            .ok_or_else(|| Error::invalid(format!("{} lies outside this file", rec.label())))
    }

    /// The stored (undecoded, unverified) bytes of one of this archive's records: borrowed
    /// from a file in memory, read from a file on disk.
    pub fn stored_bytes(&self, rec: &ChunkRecord) -> Result<std::borrow::Cow<'_, [u8]>> {
        self.own_record(rec)?;
        self.chunk(rec)?.load()
    }

    /// `rec` must be one of this archive's records (not another file's, nor
    /// a copy edited after validation).
    fn own_record(&self, rec: &ChunkRecord) -> Result<()> {
        if self.manifest.chunks().iter().any(|r| std::ptr::eq(r, rec)) {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{} is not a record of this archive; look records up with latent_record(name)",
                rec.label()
            )))
        }
    }

    /// Decodes and verifies the latent called `name` (as safetensors'
    /// `tensor(name)`).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        self.decode_latent(self.require_latent(name)?)
    }

    /// The record of the latent called `name`, or an error listing the names.
    pub fn require_latent(&self, name: &str) -> Result<&ChunkRecord> {
        self.latent_record(name).ok_or_else(|| {
            let known: Vec<String> = self.latent_records().map(|r| r.latent_name()).collect();
            Error::invalid(format!("no latent named {name:?}; the file has {known:?}"))
        })
    }

    /// The LATN records in file order.
    pub fn latent_records(&self) -> impl Iterator<Item = &ChunkRecord> {
        self.manifest.chunks().iter().filter(|r| r.kind == LATN)
    }

    /// The record of the latent called `name`.
    pub fn latent_record(&self, name: &str) -> Option<&ChunkRecord> {
        self.latent_records().find(|r| r.latent_name() == name)
    }

    /// The options this archive was parsed with.
    pub fn options(&self) -> ReadOptions {
        self.options
    }

    /// Checks, before anything is allocated, that decoding `latents` (and the
    /// image and environment, when asked) stays within
    /// [`ReadOptions::max_decoded_bytes`]. Every decoding method checks its own
    /// chunk; call this first when decoding several into memory at once.
    pub fn check_decoded_size<'r>(
        &'r self,
        latents: impl IntoIterator<Item = &'r ChunkRecord>,
        image: bool,
        environment: bool,
    ) -> Result<()> {
        let limit = self.options.max_decoded_bytes;
        let singles = self
            .manifest
            .chunks()
            .iter()
            .filter(|r| (image && r.kind == DATA) || (environment && r.kind == ENVC));
        let mut total = 0u64;
        let mut count = 0usize;
        for rec in latents.into_iter().chain(singles) {
            // A forged size is reported as such, before the caller's limit.
            if rec.kind == LATN {
                rec.check_latent_size()?;
            } else {
                check_inflation(rec)?;
            }
            self.check_chunk_size(rec)?;
            total = total.saturating_add(rec.uncompressed_size);
            count += 1;
        }
        if total > limit {
            return Err(Error::DecodedSizeLimit {
                what: format!("the {count} chunks to decode"),
                declared: total,
                limit,
            });
        }
        Ok(())
    }

    /// One chunk's declared decoded size against `max_decoded_bytes`.
    fn check_chunk_size(&self, rec: &ChunkRecord) -> Result<()> {
        let limit = self.options.max_decoded_bytes;
        if rec.uncompressed_size > limit {
            return Err(Error::DecodedSizeLimit {
                what: format!("chunk {}", rec.label()),
                declared: rec.uncompressed_size,
                limit,
            });
        }
        Ok(())
    }

    fn verify(&self, rec: &ChunkRecord, payload: &[u8]) -> Result<()> {
        if !self.options.verify_hashes {
            return Ok(());
        }
        self.check_digest(rec, &sha256_hex(payload))
    }

    fn check_digest(&self, rec: &ChunkRecord, actual: &str) -> Result<()> {
        let actual = actual.to_owned();
        if actual != rec.hash {
            return Err(Error::HashMismatch {
                chunk: rec.label(),
                expected: rec.hash.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Decodes a latent into `out`, which must be exactly
    /// `rec.uncompressed_size` bytes (shape x itemsize), then verifies it.
    pub fn decode_latent_into(&self, rec: &ChunkRecord, out: &mut [u8]) -> Result<()> {
        self.own_record(rec)?;
        if rec.kind != LATN {
            return Err(Error::invalid(format!("{} is not a latent", rec.label())));
        }
        let (shape, dtype) = rec.check_latent_size()?;
        self.check_chunk_size(rec)?;
        if out.len() as u64 != rec.uncompressed_size {
            return Err(Error::invalid(format!(
                "output buffer is {} bytes, {} needs {}",
                out.len(),
                rec.label(),
                rec.uncompressed_size
            )));
        }
        let chunk = self.chunk(rec)?;
        let Some(codec) = codecs::for_record(rec, self.flavor())? else {
            // GEN5's compressed latents: one zstd frame of inner header +
            // elements, streamed into `out` (no second tensor-sized buffer).
            return self.decode_gen5(rec, chunk, dtype, out);
        };
        let input = ChunkInput {
            record: rec,
            chunk,
            shape: &shape,
            dtype,
            verify: self.options.verify_hashes,
        };
        match codec.decode_chunk(&input, out)? {
            Some(digest) if self.options.verify_hashes => self.check_digest(rec, &digest),
            _ => self.verify(rec, out),
        }
    }

    /// A GEN5 zstd-wrapped latent into `out`: from memory in one streaming
    /// pass, from a file in windows, hashed on a second thread when large.
    fn decode_gen5(&self, rec: &ChunkRecord, chunk: Chunk<'_>, dtype: DType, out: &mut [u8]) -> Result<()> {
        let mut head = [0u8; INNER_HEADER_LEN];
        if let Some(frame) = chunk.as_slice() {
            zstd_frame::decompress_exact_split(frame, &mut head, out)
                .map_err(|e| Error::corrupt(rec.label(), e))?;
            check_inner(rec, &head, Some(dtype))?;
            return self.verify(rec, out);
        }
        let errors = ReadErrors::new();
        let mut decoder = zstd_frame::FrameDecoder::new(
            chunk.input(INPUT_WINDOW, &errors),
            zstd_frame::MAX_STREAM_WINDOW_LOG,
        );
        let hashing = self.options.verify_hashes && out.len() >= codecs_parallel_min();
        let mut digest = None;
        let decoded = match &mut decoder {
            Err(e) => Err(Error::corrupt(rec.label(), e.clone())),
            Ok(d) if d.declared() != out.len() as u64 + INNER_HEADER_LEN as u64 => Err(Error::corrupt(
                rec.label(),
                format!(
                    "the zstd frame declares {} bytes of content, the manifest expects {}",
                    d.declared(),
                    out.len() + INNER_HEADER_LEN
                ),
            )),
            Ok(d) => (|| {
                let corrupt = |e: String| Error::corrupt(rec.label(), e);
                d.fill(&mut head).map_err(corrupt)?;
                check_inner(rec, &head, Some(dtype))?;
                if hashing {
                    digest = Some(codecs::fill_hashing(out, |_, piece| {
                        d.fill(piece).map_err(corrupt)
                    })?);
                } else {
                    d.fill(out).map_err(corrupt)?;
                }
                d.finish().map_err(corrupt)
            })(),
        };
        if let Err(e) = decoded {
            // A failed read is reported as itself, not as damage.
            return Err(errors.take().unwrap_or(e));
        }
        match digest {
            Some(digest) if self.options.verify_hashes => self.check_digest(rec, &digest),
            _ => self.verify(rec, out),
        }
    }

    /// Decodes a latent into a new tensor.
    pub fn decode_latent(&self, rec: &ChunkRecord) -> Result<Tensor> {
        let (shape, dtype) = rec.check_latent_size()?;
        self.check_chunk_size(rec)?;
        let mut data = vec![0u8; rec.uncompressed_size as usize];
        self.decode_latent_into(rec, &mut data)?;
        Tensor::new(dtype, shape, data)
    }

    /// zstd frame of inner header + payload, bounded and exact.
    fn inflate(&self, rec: &ChunkRecord, chunk: &[u8]) -> Result<Vec<u8>> {
        check_inflation(rec)?;
        self.check_chunk_size(rec)?;
        let expected = rec.uncompressed_size as usize + INNER_HEADER_LEN;
        zstd_frame::decompress_exact(chunk, expected).map_err(|e| Error::corrupt(rec.label(), e))
    }

    /// The payload of a DATA or ENVC chunk (zstd-wrapped, or raw when the
    /// record says `compressed: false`), verified.
    fn singleton_payload(&self, kind: &str) -> Result<Option<Vec<u8>>> {
        let Some(rec) = self.manifest.chunks().iter().find(|r| r.kind == kind) else {
            return Ok(None);
        };
        check_inflation(rec)?;
        self.check_chunk_size(rec)?;
        let chunk = self.chunk(rec)?;
        let payload = match chunk.as_slice() {
            Some(chunk) => self.singleton_in_memory(rec, chunk)?,
            // A small chunk (an ENVC is a few KB) is read whole and decoded at
            // once: a streaming decoder costs more to set up than that.
            None if chunk.len() <= INPUT_WINDOW as u64 => self.singleton_in_memory(rec, &chunk.load()?)?,
            None => self.singleton_from_file(rec, chunk)?,
        };
        self.verify(rec, &payload)?;
        Ok(Some(payload))
    }

    fn singleton_in_memory(&self, rec: &ChunkRecord, chunk: &[u8]) -> Result<Vec<u8>> {
        Ok(if rec.compressed {
            let mut whole = self.inflate(rec, chunk)?;
            check_inner(rec, &whole[..INNER_HEADER_LEN], None)?;
            whole.drain(..INNER_HEADER_LEN);
            whole
        } else {
            let (head, body) = split_inner(chunk).map_err(|e| Error::corrupt(rec.label(), e))?;
            check_inner(rec, head, None)?;
            check_plain_len(rec, body.len() as u64)?;
            body.to_vec()
        })
    }

    /// A DATA or ENVC chunk of a file, read or streamed straight into a
    /// buffer of its payload's size.
    fn singleton_from_file(&self, rec: &ChunkRecord, chunk: Chunk<'_>) -> Result<Vec<u8>> {
        let size = usize::try_from(rec.uncompressed_size)
            .map_err(|_| Error::Unsupported(format!("{} does not fit in memory", rec.label())))?;
        let mut head = [0u8; INNER_HEADER_LEN];
        if !rec.compressed {
            if chunk.len() < INNER_HEADER_LEN as u64 {
                return Err(Error::corrupt(
                    rec.label(),
                    format!("{} bytes, shorter than the 12-byte inner header", chunk.len()),
                ));
            }
            chunk.read_at(0, &mut head)?;
            check_inner(rec, &head, None)?;
            check_plain_len(rec, chunk.len() - INNER_HEADER_LEN as u64)?;
            let mut body = vec![0u8; size];
            chunk.read_at(INNER_HEADER_LEN as u64, &mut body)?;
            return Ok(body);
        }
        let errors = ReadErrors::new();
        let mut decoder =
            zstd_frame::FrameDecoder::new(chunk.input(INPUT_WINDOW, &errors), zstd_frame::MAX_ANY_WINDOW_LOG);
        let mut body = Vec::new();
        let decoded = match &mut decoder {
            Err(e) => Err(e.clone()),
            Ok(d) if d.declared() != rec.uncompressed_size + INNER_HEADER_LEN as u64 => Err(format!(
                "the zstd frame declares {} bytes of content, the manifest expects {}",
                d.declared(),
                rec.uncompressed_size + INNER_HEADER_LEN as u64
            )),
            Ok(d) => {
                body = vec![0u8; size];
                zstd_frame::decode_split(d, &mut head, &mut body)
            }
        };
        if let Err(e) = decoded {
            return Err(errors.take().unwrap_or_else(|| Error::corrupt(rec.label(), e)));
        }
        check_inner(rec, &head, None)?;
        Ok(body)
    }

    /// Size of the embedded image file, if any, without decoding it.
    pub fn image_size(&self) -> Option<u64> {
        self.manifest
            .chunks()
            .iter()
            .find(|r| r.kind == DATA)
            .map(|r| r.uncompressed_size)
    }

    /// The embedded image file, if any.
    pub fn image(&self) -> Result<Option<Vec<u8>>> {
        self.singleton_payload(DATA)
    }

    /// The environment document, if any. Each component's digest must be
    /// the SHA-256 of its canonical string.
    pub fn environment(&self) -> Result<Option<Value>> {
        let Some(bytes) = self.singleton_payload(ENVC)? else {
            return Ok(None);
        };
        let label = || format!("{ENVC} (environment)");
        let text =
            std::str::from_utf8(&bytes).map_err(|e| Error::corrupt(label(), format!("not UTF-8 ({e})")))?;
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| Error::corrupt(label(), format!("not valid JSON ({e})")))?;
        let components = doc
            .get("components")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::corrupt(label(), "no components list"))?;
        if self.options.verify_hashes {
            for c in components {
                let id = c.get("component_id").and_then(Value::as_str).unwrap_or("?");
                let canonical = c.get("cononical_str").and_then(Value::as_str);
                let digest = c.get("component_sha256_digest").and_then(Value::as_str);
                let (Some(canonical), Some(digest)) = (canonical, digest) else {
                    return Err(Error::corrupt(
                        label(),
                        format!("component {id:?} lacks cononical_str or component_sha256_digest"),
                    ));
                };
                let actual = sha256_hex(canonical.as_bytes());
                if !actual.eq_ignore_ascii_case(digest) {
                    return Err(Error::HashMismatch {
                        chunk: format!("{} component {id:?}", label()),
                        expected: digest.to_owned(),
                        actual,
                    });
                }
            }
        }
        Ok(Some(doc))
    }

    /// Decodes and verifies everything.
    pub fn read_all(&self) -> Result<Artifact> {
        self.check_decoded_size(self.latent_records(), true, true)?;
        let latents = self
            .latent_records()
            .map(|rec| Ok((rec.latent_name(), self.decode_latent(rec)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Artifact {
            header: self.header.clone(),
            manifest: self.manifest.clone(),
            latents,
            image: self.image()?,
            environment: self.environment()?,
        })
    }

    /// Decodes and verifies every chunk without keeping the results.
    pub fn verify_all(&self) -> Result<()> {
        self.check_decoded_size(self.latent_records(), true, true)?;
        for rec in self.latent_records() {
            self.decode_latent(rec)?;
        }
        self.image()?;
        self.environment()?;
        Ok(())
    }
}

/// Bytes of a chunk read from a file at a time by streaming zstd decoders.
const INPUT_WINDOW: usize = 1 << 20;

fn codecs_parallel_min() -> usize {
    crate::codec::shuffle::PARALLEL_MIN_BYTES
}

/// A plain chunk holds exactly `uncompressed_size` bytes after its inner header.
fn check_plain_len(rec: &ChunkRecord, body_len: u64) -> Result<()> {
    if body_len != rec.uncompressed_size {
        return Err(Error::corrupt(
            rec.label(),
            format!(
                "payload is {body_len} bytes, the record says {}",
                rec.uncompressed_size
            ),
        ));
    }
    Ok(())
}

/// A wrapped DATA or ENVC chunk may not declare more than its bytes can
/// inflate to (JSON: the tighter limit), FORMAT.md §3.2.
fn check_inflation(rec: &ChunkRecord) -> Result<()> {
    if !rec.compressed {
        return Ok(());
    }
    let limit = if rec.kind == ENVC {
        json_inflate_limit(rec.compressed_size)
    } else {
        inflate_limit(rec.compressed_size)
    };
    if rec.uncompressed_size > limit {
        return Err(Error::LimitExceeded {
            what: format!("chunk {}", rec.label()),
            declared: rec.uncompressed_size,
            limit,
        });
    }
    Ok(())
}

/// Decodes the META chunk: one zstd frame of inner header + manifest JSON.
fn decode_meta(meta: &[u8]) -> Result<Vec<u8>> {
    let label = "META (manifest)";
    let declared = zstd_frame::declared_size(meta).map_err(|e| Error::corrupt(label, e))?;
    let limit = json_inflate_limit(meta.len() as u64);
    if declared > limit {
        return Err(Error::LimitExceeded {
            what: label.into(),
            declared,
            limit,
        });
    }
    if declared < INNER_HEADER_LEN as u64 {
        return Err(Error::corrupt(
            label,
            format!("only {declared} bytes, less than its inner header"),
        ));
    }
    let mut whole =
        zstd_frame::decompress_exact(meta, declared as usize).map_err(|e| Error::corrupt(label, e))?;
    let (kind, _, len) = inner_header::parse(&whole[..INNER_HEADER_LEN]);
    if &kind != b"META" {
        return Err(Error::corrupt(
            label,
            format!("inner header type is {:?}", String::from_utf8_lossy(&kind)),
        ));
    }
    if len as u64 + INNER_HEADER_LEN as u64 != declared {
        return Err(Error::corrupt(
            label,
            format!(
                "inner header says {len} bytes of JSON, the frame holds {}",
                declared - INNER_HEADER_LEN as u64
            ),
        ));
    }
    whole.drain(..INNER_HEADER_LEN);
    Ok(whole)
}

fn split_inner(chunk: &[u8]) -> std::result::Result<(&[u8], &[u8]), String> {
    if chunk.len() < INNER_HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than the 12-byte inner header",
            chunk.len()
        ));
    }
    Ok(chunk.split_at(INNER_HEADER_LEN))
}

/// The inner header must name the record's type (and dtype, for latents).
fn check_inner_type(rec: &ChunkRecord, head: &[u8], dtype: Option<DType>) -> Result<()> {
    let (kind, flags, _) = inner_header::parse(head);
    if kind != rec.kind.as_bytes() {
        return Err(Error::corrupt(
            rec.label(),
            format!("inner header type is {:?}", String::from_utf8_lossy(&kind)),
        ));
    }
    if let Some(dtype) = dtype {
        if DType::from_flags(&flags) != Some(dtype) {
            return Err(Error::corrupt(
                rec.label(),
                format!(
                    "inner header flags {:?} disagree with the manifest's {dtype}",
                    String::from_utf8_lossy(&flags)
                ),
            ));
        }
    }
    Ok(())
}

/// Type, dtype and payload length of the inner header must match the record.
fn check_inner(rec: &ChunkRecord, head: &[u8], dtype: Option<DType>) -> Result<()> {
    check_inner_type(rec, head, dtype)?;
    let (_, _, len) = inner_header::parse(head);
    if len as u64 != rec.uncompressed_size {
        return Err(Error::corrupt(
            rec.label(),
            format!(
                "inner header says {len} payload bytes, the manifest says {}",
                rec.uncompressed_size
            ),
        ));
    }
    Ok(())
}

/// Reads a whole file into memory, naming the path in errors.
pub fn read_bytes(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Reads, decodes and verifies the file at `path`, chunk by chunk: memory
/// is what it returns plus bounded windows (FORMAT.md §3.2).
pub fn read_file(path: &std::path::Path, options: ReadOptions) -> Result<Artifact> {
    Archive::open(path, options)?.read_all()
}

impl Archive<'static> {
    /// Opens the file at `path`: reads and validates its header and META
    /// chunk (the manifest) exactly as [`Archive::parse`] does, and nothing
    /// else. Chunks are read from the file when a call decodes them, so
    /// opening a file for its manifest (or its environment) never touches
    /// its tensors. The file stays open while the archive lives; if it
    /// shrinks meanwhile, reads fail with [`Error::Truncated`].
    pub fn open(path: impl AsRef<std::path::Path>, options: ReadOptions) -> Result<Archive<'static>> {
        Archive::from_source(Source::File(FileSource::open(path.as_ref())?), options)
    }
}
