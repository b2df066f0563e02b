//! One file's catalog row. It is read from the header, the manifest and the environment chunk
//! only: no tensor or image is decoded unless the run verifies. Metadata keys are looked up
//! where the hosts' common layer writes them (`raiiaf_rs.host`: `model_info` and the
//! normalised top-level `metadata` keys), with the older places as fallbacks.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::passes::{passes_of, MetaView, PassEntry};
use super::scan::FileEntry;
use super::IndexOptions;
use raiiaf::error::{Error, Result};
use raiiaf::format::header::Flavor;
use raiiaf::format::manifest::{DATA, ENVC};
use raiiaf::format::{codecs, hex, inflate_limit, sha256_hex, Archive, ChunkRecord};
use raiiaf_env::drift::{affects_pixels, keyed};

/// A stored tensor, as listed in the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<i64>,
    pub dtype: String,
    /// The codec's name in the file (`raw`, `zfp`, `shuffle-zstd`; `zstd` in GEN5 files).
    pub codec: String,
    /// SHA-256 of the decoded elements: equal tensors have equal digests whatever the codec.
    pub sha256: String,
    /// Bytes decoded / bytes stored.
    pub bytes: i64,
    pub stored_bytes: i64,
}

/// One LoRA applied to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Lora {
    pub name: String,
    pub sha256: Option<String>,
    pub strength_model: Option<f64>,
    pub strength_clip: Option<f64>,
}

/// One environment component (FORMAT.md §6): its id (repeated ids numbered `gpu[1]`…), its
/// canonical string and whether it can change pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvComponent {
    pub id: String,
    pub canonical: String,
    pub affects_pixels: bool,
}

/// The environment components that get a column of their own (`env_<id>`): the canonical
/// string without its `name=<id>;` prefix, several occurrences (GPUs) joined by ` | `.
pub const ENV_COLUMNS: [&str; 14] = [
    "torch",
    "cuda",
    "gpu",
    "torch_backends",
    "os",
    "python",
    "numpy",
    "cpu",
    "ram",
    "host",
    "attention",
    "dtype",
    "noise_device",
    "determinism",
];

/// One row of the catalog. Every field but the file's own (`path`, `size`, `mtime_ns`) is
/// `None` (or empty) when the file does not say. A row with an `error` keeps only the file's
/// own fields and `file_sha256`, with `verified` false (CATALOG.md, "Null, empty and error").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub path: String,
    pub size: i64,
    pub mtime_ns: i64,
    pub file_sha256: Option<String>,
    pub flavor: Option<String>,
    pub format_version: Option<String>,
    pub created: Option<String>,
    pub host_app: Option<String>,
    pub host_version: Option<String>,
    pub model_name: Option<String>,
    pub model_sha256: Option<String>,
    pub loras: Vec<Lora>,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    /// Seeds reach 2^64 - 1 (ComfyUI), beyond i64: stored as DECIMAL(20, 0).
    pub seed: Option<i128>,
    pub steps: Option<i64>,
    pub cfg: Option<f64>,
    pub sampler: Option<String>,
    pub scheduler: Option<String>,
    pub denoise: Option<f64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub batch_index: Option<i64>,
    pub batch_size: Option<i64>,
    pub batch_id: Option<String>,
    pub tensors: Vec<TensorEntry>,
    /// The `initial_noise` tensor's SHA-256: files sharing one noise share this value.
    pub noise_sha256: Option<String>,
    pub has_image: Option<bool>,
    pub image_sha256: Option<String>,
    pub environment: Vec<EnvComponent>,
    /// `env_<id>` for each id of [`ENV_COLUMNS`], in that order.
    pub env: [Option<String>; ENV_COLUMNS.len()],
    /// The `driver` field of the GPU components, joined by ` | `.
    pub env_gpu_driver: Option<String>,
    /// SHA-256 over the pixel-affecting components (sorted `id=canonical` lines): two files with
    /// the same value were made in environments that agree on everything that can move pixels.
    pub env_pixel_sha256: Option<String>,
    /// How many sampler passes the file records (`None`: a malformed `passes` value).
    pub pass_count: Option<i64>,
    /// The passes in run order (the `passes` key, or the old-file rules).
    pub passes: Vec<PassEntry>,
    /// With `--verify`: every chunk decoded and every SHA-256 matched.
    pub verified: Option<bool>,
    /// Why the file (or part of it) could not be read; `None` for a good file.
    pub error: Option<String>,
    /// What kind of file the row was read from (CATALOG.md); `None`: a `.raiiaf` file.
    pub source_kind: Option<&'static str>,
    /// The image this row describes: the image itself, or the one beside a `.raiiaf`.
    pub image_path: Option<String>,
    /// The webui's short model hash (A1111 infotext `Model hash`).
    pub model_hash: Option<String>,
}

/// Files up to this size are read whole, in one call; larger ones are opened and read chunk by
/// chunk (header, manifest, environment; the rest only to verify).
const WHOLE_FILE_BELOW: u64 = 16 * 1024;

impl Row {
    /// The row of one file. Never fails: what went wrong goes into `error`.
    pub fn read(entry: &FileEntry, options: IndexOptions) -> Row {
        let mut row = Row {
            path: entry.path.to_string_lossy().into_owned(),
            size: i64::try_from(entry.size).unwrap_or(i64::MAX),
            mtime_ns: entry.mtime_ns,
            ..Row::default()
        };
        if let Some(e) = &entry.error {
            row.fail(e.clone());
            return row;
        }
        let path = &entry.path;
        let read = if entry.size <= WHOLE_FILE_BELOW {
            READ_BUF.with_borrow_mut(|buf| {
                read_whole(path, entry.size, buf)?;
                if options.hash {
                    row.file_sha256 = Some(sha256_hex(buf));
                }
                row.fill(&Archive::parse(buf, options.read)?, options)
            })
        } else {
            let hashed = if options.hash {
                hash_file(path).map(|h| row.file_sha256 = Some(h))
            } else {
                Ok(())
            };
            hashed.and_then(|()| row.fill(&Archive::open(path, options.read)?, options))
        };
        row.record(read);
        row
    }

    /// A failed read leaves only what is true of the file whatever its content (`path`, `size`,
    /// `mtime_ns`, `file_sha256`), `verified` false and the reason: no half-read metadata, so
    /// `WHERE seed = …` never matches a damaged file and `WHERE NOT verified` lists every one.
    fn record(&mut self, read: Result<()>) {
        if let Err(e) = read {
            self.fail(e.to_string());
        }
    }

    fn fail(&mut self, error: String) {
        *self = Row {
            path: std::mem::take(&mut self.path),
            size: self.size,
            mtime_ns: self.mtime_ns,
            file_sha256: self.file_sha256.take(),
            verified: Some(false),
            error: Some(error),
            ..Row::default()
        };
    }

    /// The row of a file whose bytes are already in memory (e.g. fetched from object storage
    /// by a Spark job); `path` and `mtime_ns` are recorded as given.
    pub fn from_bytes(path: String, bytes: &[u8], mtime_ns: i64, options: IndexOptions) -> Row {
        let mut row = Row {
            path,
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            mtime_ns,
            ..Row::default()
        };
        if options.hash {
            row.file_sha256 = Some(sha256_hex(bytes));
        }
        let read = Archive::parse(bytes, options.read).and_then(|a| row.fill(&a, options));
        row.record(read);
        row
    }

    /// Fills the row from a validated archive: its header, manifest and environment (and, to
    /// verify, everything).
    fn fill(&mut self, archive: &Archive<'_>, options: IndexOptions) -> Result<()> {
        let header = archive.header();
        self.flavor = Some(header.flavor.magic_str().to_owned());
        self.format_version = Some(format!("{}.{}", header.version_major, header.version_minor));
        let manifest = archive.manifest();
        let (info, meta) = manifest.pick(INFO_KEYS, META_KEYS);
        let (info, meta) = (Picked::new(info, INFO_KEYS), Picked::new(meta, META_KEYS));
        self.fill_metadata(&info, &meta);
        for rec in archive.latent_records() {
            // A declared size the stored bytes cannot hold (a 1.5 KB file announcing a 64 GiB
            // tensor) is an error without --verify too: the manifest alone shows it.
            rec.check_latent_size()?;
            self.tensors.push(tensor_entry(rec, header.flavor));
        }
        let names: Vec<&str> = self.tensors.iter().map(|t| t.name.as_str()).collect();
        let view = MetaView {
            info: &info.map,
            meta: &meta.map,
        };
        match passes_of(view, &names) {
            Some(passes) => {
                self.pass_count = Some(passes.len() as i64);
                self.passes = passes;
            }
            None => self.pass_count = None,
        }
        self.noise_sha256 = self
            .tensors
            .iter()
            .find(|t| t.name == "initial_noise")
            .map(|t| t.sha256.clone());
        let image = manifest.chunks().iter().find(|r| r.kind == DATA);
        self.has_image = Some(image.is_some());
        if let Some(rec) = image {
            // As for tensors: an image whose declared size no stored frame can inflate to.
            let limit = inflate_limit(rec.compressed_size);
            if rec.compressed && rec.uncompressed_size > limit {
                return Err(Error::LimitExceeded {
                    what: format!("chunk {}", rec.label()),
                    declared: rec.uncompressed_size,
                    limit,
                });
            }
            self.image_sha256 = Some(rec.hash.clone());
            self.width = self.width.or_else(|| rec.extra.get("width").and_then(as_i64));
            self.height = self.height.or_else(|| rec.extra.get("height").and_then(as_i64));
        }
        if let Some(env) = environment_of(archive)? {
            env.apply(self);
        }
        if options.verify {
            archive.verify_all()?;
            self.verified = Some(true);
        }
        Ok(())
    }

    fn fill_metadata(&mut self, info: &Picked, meta: &Picked) {
        let empty = Map::new();
        let settings = info
            .get("generation_settings")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        // The normalised place first, then older or host-specific ones.
        let pick = |keys: &[&str]| -> Option<&Value> {
            keys.iter()
                .find_map(|k| settings.get(*k).or_else(|| meta.get(k)).filter(|v| !v.is_null()))
        };
        self.created = text(info.get("date"));
        self.prompt = text(info.get("prompt")).or_else(|| text(meta.get("prompt")));
        self.negative_prompt =
            text(meta.get("negative_prompt")).or_else(|| text(info.get("negative_prompt")));
        self.model_name = text(info.get("model_name")).or_else(|| text(meta.get("model_name")));
        self.seed = pick(&["seed"]).and_then(as_i128);
        self.steps = pick(&["steps"]).and_then(as_i64);
        self.cfg = pick(&["cfg_scale", "cfg"]).and_then(as_f64);
        self.sampler = text(pick(&["sampler", "sampler_name"]));
        self.scheduler = text(pick(&["scheduler"]));
        self.denoise = meta.get("denoise").and_then(as_f64);
        self.width = meta.get("width").and_then(as_i64);
        self.height = meta.get("height").and_then(as_i64);
        self.batch_index = meta.get("batch_index").and_then(as_i64);
        self.batch_size = meta.get("batch_size").and_then(as_i64);
        self.batch_id = text(meta.get("batch_id"));
        if let Some(host) = meta.get("host").and_then(Value::as_object) {
            self.host_app = text(host.get("app"));
            self.host_version = text(host.get("version"));
        }
        let models = meta.get("models").and_then(Value::as_array);
        let checkpoint = models.and_then(|list| {
            let role = |m: &&Value| {
                let r = m.get("role").and_then(Value::as_str).unwrap_or("");
                matches!(r, "checkpoint" | "ckpt_name" | "unet" | "unet_name" | "model")
            };
            list.iter().find(role).or_else(|| list.first())
        });
        if let Some(m) = checkpoint {
            self.model_sha256 = text(m.get("sha256"));
            self.model_hash = text(m.get("short_hash")).map(|h| h.to_ascii_lowercase());
            if self.model_name.is_none() {
                self.model_name = text(m.get("name"));
            }
        }
        for l in meta.get("loras").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = text(l.get("name")) else {
                continue;
            };
            self.loras.push(Lora {
                name,
                sha256: text(l.get("sha256")),
                strength_model: l
                    .get("strength_model")
                    .or_else(|| l.get("strength"))
                    .and_then(as_f64),
                strength_clip: l.get("strength_clip").and_then(as_f64),
            });
        }
    }

    /// A row holding only the environment columns of an ENVC document (`path` empty): the
    /// current environment, to compare a catalog with.
    pub fn from_environment(doc: &Value) -> Row {
        let mut row = Row::default();
        row.fill_environment(doc);
        row
    }

    fn fill_environment(&mut self, doc: &Value) {
        EnvSummary::of(doc).apply(self);
    }
}

/// What an ENVC document gives a row: its environment columns, and the host when the
/// metadata does not name one.
#[derive(Debug, Clone, Default)]
struct EnvSummary {
    environment: Vec<EnvComponent>,
    env: [Option<String>; ENV_COLUMNS.len()],
    env_gpu_driver: Option<String>,
    env_pixel_sha256: Option<String>,
    host_app: Option<String>,
    host_version: Option<String>,
}

impl EnvSummary {
    fn of(doc: &Value) -> EnvSummary {
        let mut out = EnvSummary::default();
        let mut pixel_lines = Vec::new();
        for (id, canonical) in keyed(doc) {
            let base = id.split('[').next().unwrap_or(&id).to_owned();
            let fields = canonical
                .strip_prefix(&format!("name={base}"))
                .map(|rest| rest.strip_prefix(';').unwrap_or(rest))
                .unwrap_or(&canonical)
                .to_owned();
            if let Some(i) = ENV_COLUMNS.iter().position(|c| *c == base) {
                join(&mut out.env[i], &fields);
            }
            if base == "gpu" {
                if let Some(driver) = field(&canonical, "driver") {
                    join(&mut out.env_gpu_driver, driver);
                }
            }
            if base == "host" {
                // The first host component that names them.
                out.host_app = out
                    .host_app
                    .take()
                    .or_else(|| field(&canonical, "app").map(str::to_owned));
                out.host_version = out
                    .host_version
                    .take()
                    .or_else(|| field(&canonical, "version").map(str::to_owned));
            }
            let pixels = affects_pixels(&id);
            if pixels {
                pixel_lines.push(format!("{id}={canonical}"));
            }
            out.environment.push(EnvComponent {
                id,
                canonical,
                affects_pixels: pixels,
            });
        }
        pixel_lines.sort();
        let mut h = Sha256::new();
        for line in &pixel_lines {
            h.update(line.as_bytes());
            h.update(b"\n");
        }
        out.env_pixel_sha256 = Some(hex(&h.finalize()));
        out
    }

    /// Into `row`: the environment columns; the host only where the metadata named none.
    fn apply(&self, row: &mut Row) {
        row.environment.clone_from(&self.environment);
        row.env.clone_from(&self.env);
        row.env_gpu_driver.clone_from(&self.env_gpu_driver);
        row.env_pixel_sha256.clone_from(&self.env_pixel_sha256);
        if row.host_app.is_none() {
            row.host_app.clone_from(&self.host_app);
        }
        if row.host_version.is_none() {
            row.host_version.clone_from(&self.host_version);
        }
    }
}

/// One environment chunk already read by this thread: the same stored bytes under the same
/// record, read with the same options, give the same summary. The files of one archive mostly
/// share a handful of environments (one per machine and software update), so most files skip
/// decompressing, parsing and hashing theirs.
struct EnvCached {
    flavor: Flavor,
    /// The record (compared without its place in the file: see `same_record`).
    record: ChunkRecord,
    stored: Vec<u8>,
    verify_hashes: bool,
    max_decoded_bytes: u64,
    summary: Rc<EnvSummary>,
}

/// How many distinct environments each thread remembers.
const ENV_CACHE_LEN: usize = 8;

thread_local! {
    static ENV_CACHE: RefCell<VecDeque<EnvCached>> = const { RefCell::new(VecDeque::new()) };
}

/// The summary of `archive`'s ENVC chunk (`None` without one), from this thread's cache when
/// the identical chunk was read before; a chunk that fails is never cached.
fn environment_of(archive: &Archive<'_>) -> Result<Option<Rc<EnvSummary>>> {
    let Some(rec) = archive.manifest().chunks().iter().find(|r| r.kind == ENVC) else {
        return Ok(None);
    };
    let options = archive.options();
    let stored = archive.stored_bytes(rec)?;
    let same = |c: &EnvCached| {
        c.flavor == archive.flavor()
            && c.verify_hashes == options.verify_hashes
            && c.max_decoded_bytes == options.max_decoded_bytes
            && *c.stored == *stored
            && same_record(&c.record, rec)
    };
    if let Some(hit) =
        ENV_CACHE.with_borrow(|cache| cache.iter().find(|c| same(c)).map(|c| c.summary.clone()))
    {
        return Ok(Some(hit));
    }
    let Some(doc) = archive.environment()? else {
        return Ok(None);
    };
    let summary = Rc::new(EnvSummary::of(&doc));
    ENV_CACHE.with_borrow_mut(|cache| {
        if cache.len() == ENV_CACHE_LEN {
            cache.pop_front();
        }
        cache.push_back(EnvCached {
            flavor: archive.flavor(),
            record: rec.clone(),
            stored: stored.into_owned(),
            verify_hashes: options.verify_hashes,
            max_decoded_bytes: options.max_decoded_bytes,
            summary: summary.clone(),
        });
    });
    Ok(Some(summary))
}

/// Equal records but for where they are in the file (`index`, `offset`: the stored bytes are
/// compared themselves), compared in place, without a clone per file.
fn same_record(a: &ChunkRecord, b: &ChunkRecord) -> bool {
    let ChunkRecord {
        index: _,
        offset: _,
        kind,
        flags,
        compressed_size,
        uncompressed_size,
        hash,
        extra,
        compressed,
        len_header,
        len_data,
        codec,
    } = a;
    *kind == b.kind
        && *flags == b.flags
        && *compressed_size == b.compressed_size
        && *uncompressed_size == b.uncompressed_size
        && *hash == b.hash
        && *extra == b.extra
        && *compressed == b.compressed
        && *len_header == b.len_header
        && *len_data == b.len_data
        && *codec == b.codec
}

/// The `model_info` keys a row reads.
const INFO_KEYS: &[&str] = &[
    "date",
    "prompt",
    "negative_prompt",
    "model_name",
    "generation_settings",
    // the pass columns (passes.rs reads both sections)
    "passes",
    "captures",
    "a1111",
];

/// The free-form `metadata` keys a row reads. Only these are parsed: the rest of the manifest
/// (ComfyUI graphs, workflows) is skipped without building it.
const META_KEYS: &[&str] = &[
    "prompt",
    "negative_prompt",
    "model_name",
    "seed",
    "steps",
    "cfg_scale",
    "cfg",
    "sampler",
    "sampler_name",
    "scheduler",
    "denoise",
    "width",
    "height",
    "batch_index",
    "batch_size",
    "batch_id",
    "host",
    "models",
    "loras",
    // the pass columns (passes.rs reads both sections)
    "passes",
    "captures",
    "a1111",
    "generation_settings",
];

/// A manifest section holding only the keys of its list (INFO_KEYS or META_KEYS). Reading a
/// key that is not listed is a bug (it would always read as absent): debug builds, so the
/// tests, panic on it, saying which list to add it to.
struct Picked {
    map: Map<String, Value>,
    keys: &'static [&'static str],
}

impl Picked {
    fn new(map: Map<String, Value>, keys: &'static [&'static str]) -> Picked {
        Picked { map, keys }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        debug_assert!(
            self.keys.contains(&key),
            "the catalog reads {key:?}, which is not in INFO_KEYS / META_KEYS (src/catalog/row.rs): add it there"
        );
        self.map.get(key)
    }
}

fn tensor_entry(rec: &ChunkRecord, flavor: Flavor) -> TensorEntry {
    let codec = match codecs::for_record(rec, flavor) {
        Ok(Some(codec)) => codec.name().to_owned(),
        Ok(None) => "zstd".to_owned(),
        Err(_) => rec.codec.clone().unwrap_or_else(|| "unknown".to_owned()),
    };
    TensorEntry {
        name: rec.latent_name(),
        shape: rec
            .shape()
            .map(|s| s.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect())
            .unwrap_or_default(),
        dtype: rec.dtype().map(|d| d.name().to_owned()).unwrap_or_default(),
        codec,
        sha256: rec.hash.to_ascii_lowercase(),
        bytes: i64::try_from(rec.uncompressed_size).unwrap_or(i64::MAX),
        stored_bytes: i64::try_from(rec.compressed_size).unwrap_or(i64::MAX),
    }
}

thread_local! {
    /// Each indexing thread reads its small files into one buffer, reused: a fresh buffer per
    /// file cost the kernel a page to zero for every file.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads the whole file into `buf` (replacing its contents). `size` is the size the scan saw:
/// a file of that size is read with one `read`; one that has grown since is read to its end.
fn read_whole(path: &Path, size: u64, buf: &mut Vec<u8>) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let size = usize::try_from(size).unwrap_or(0);
    // Never shrunk: its pages stay mapped from one file to the next.
    if buf.len() < size + 1 {
        buf.resize(size + 1, 0);
    }
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(filled * 2, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                // The size the scan saw: done, without a second read to see the end.
                if filled == size {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    buf.truncate(filled);
    Ok(())
}

/// SHA-256 of a file, read in 1 MiB pieces (memory stays bounded whatever its size).
pub(super) fn hash_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(hex(&h.finalize()))
}

/// `key=value` field of a canonical string.
fn field<'a>(canonical: &'a str, key: &str) -> Option<&'a str> {
    canonical
        .split(';')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn join(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(s) => {
            s.push_str(" | ");
            s.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

/// A string as written, empty ones included (numbers and booleans as JSON prints them).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn as_i128(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(i128::from)
            .or_else(|| n.as_i64().map(i128::from))
            .or_else(|| {
                let f = n.as_f64()?;
                (f.fract() == 0.0 && f.abs() < 1e20).then_some(f as i128)
            }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    // DECIMAL(20, 0) holds |x| < 10^20.
    .filter(|x: &i128| x.unsigned_abs() < 100_000_000_000_000_000_000)
}

pub(super) fn as_i64(v: &Value) -> Option<i64> {
    as_i128(v).and_then(|x| i64::try_from(x).ok())
}
