//! The `raiiaf` command: inspect, verify, extract and convert files.
//! Installed with the Python package (`raiiaf_rs.cli:main` calls [`main`])
//! and built as a plain binary (`cargo run --bin raiiaf`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde_json::Value;

use raiiaf::error::{Error, Result};
use raiiaf::format::{self, Archive, Codec, Contents, ReadOptions, WriteOptions};
use raiiaf::tensor::{DType, Tensor};
use raiiaf_catalog as catalog;
use raiiaf_env::{self as env, HostFacts};

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (mimalloc.h), linked in with the `mimalloc` crate.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (its 16th option): how many
/// milliseconds freed memory stays mapped before it is given back to the OS (default 10).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Has mimalloc, the allocator of the `raiiaf` binary and of the Python extension, keep freed
/// memory for a second before giving it back to the OS, instead of 10 ms. `raiiaf index` frees
/// and allocates its row and Parquet buffers every few tens of milliseconds, and with the
/// default the kernel spent a fifth of the run zeroing the pages it was handed again. Harmless
/// where mimalloc is linked but not the allocator.
pub fn keep_freed_memory() {
    // SAFETY: an option setter with no preconditions (mimalloc's options are atomics).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
}

#[derive(Parser)]
#[command(
    name = "raiiaf",
    version,
    about = "Inspect, verify, extract and convert .raiiaf files (AI image + exact initial noise + settings)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The most bytes to decode from one file (tensors + image + environment), e.g. 4G or
    /// 512MiB; default 1 GiB, or $RAIIAF_MAX_DECODED_BYTES. Checked before anything is allocated.
    #[arg(long, global = true, value_name = "BYTES")]
    max_decoded_bytes: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise a file: latents, image, prompt, settings, environment.
    Inspect {
        file: PathBuf,
        /// Print the header and the full manifest as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Decode every chunk and check every SHA-256; exit 1 if any file fails.
    Verify {
        /// Files; with --recursive, also directories (every *.raiiaf under them).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Walk directories and check every file in parallel, with a progress line and a
        /// summary (ok / damaged / unreadable); only failures are listed.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Write a catalog of every file under PATH (one row per file: settings, prompts, models,
    /// tensors, environment, errors) to a Parquet file, for DuckDB, polars or Spark. Only headers
    /// and manifests are read; re-running updates the catalog with new and changed files only.
    Index {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// The Parquet file to write (updated in place when it exists).
        #[arg(short, long)]
        output: PathBuf,
        /// Also record each file's SHA-256 (reads every byte).
        #[arg(long)]
        hash: bool,
        /// Also decode and verify every chunk (column `verified`).
        #[arg(long)]
        verify: bool,
        /// Read every file again, ignoring the existing catalog.
        #[arg(long)]
        full: bool,
    },
    /// Write the latents (.npy), the image, the metadata and the environment to a directory.
    Extract {
        file: PathBuf,
        /// Output directory (created if missing).
        #[arg(short, long)]
        output: PathBuf,
        /// Replace files that already exist in the output directory.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print the current environment, as a file written now would record it.
    Env {
        /// Print the ENVC document and hardware_info as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show how the environment that wrote FILE differs from the current one.
    Drift {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run SQL (DuckDB) over a catalog written by `index`: relations catalog, current_env and
    /// drift (see `raiiaf query --help`). Provided by the Python package, with DuckDB installed.
    Query {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Browse an archive in a web page: search, details, thumbnails, regenerate (see `raiiaf
    /// serve --help`). Provided by the Python package, with DuckDB installed.
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Re-encode a file with another codec; contents and hashes are unchanged.
    Convert {
        file: PathBuf,
        #[arg(long, help = codec_help())]
        codec: String,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        overwrite: bool,
    },
}

/// Runs the command line `args` (program name first); returns the exit code.
pub fn main(args: impl IntoIterator<Item = String>) -> i32 {
    main_with(args, &HostFacts::new())
}

/// Like [`main`], with the facts only a Python host knows (Python, numpy
/// and torch versions) for `env` and `drift`.
pub fn main_with(args: impl IntoIterator<Item = String>, host: &HostFacts) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let options = match read_options(cli.max_decoded_bytes.as_deref()) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("raiiaf: {e}");
            return 2;
        }
    };
    let result = match cli.command {
        Command::Inspect { file, json } => inspect(&file, json, options).map(|text| print!("{text}")),
        Command::Verify {
            files,
            recursive: false,
        } => return verify(&files, options),
        Command::Verify {
            files,
            recursive: true,
        } => return verify_recursive(&files, options),
        Command::Index {
            paths,
            output,
            hash,
            verify,
            full,
        } => {
            let options = catalog::IndexOptions {
                hash,
                verify,
                read: options,
            };
            index(&paths, &output, options, full).map(|line| println!("{line}"))
        }
        Command::Env { json } => Ok(show_env(host, json)).map(|text| print!("{text}")),
        Command::Drift { file, json } => drift(&file, host, json, options).map(|text| print!("{text}")),
        Command::Extract {
            file,
            output,
            overwrite,
        } => extract(&file, &output, overwrite, options).map(|lines| println!("{lines}")),
        Command::Query { .. } => Err(Error::Unsupported(
            "`raiiaf query` is part of the Python package (it runs DuckDB): pip install raiiaf-rs duckdb, \
             then run the `raiiaf` command it installs, or query the Parquet catalog with any engine"
                .into(),
        )),
        Command::Serve { .. } => Err(Error::Unsupported(
            "`raiiaf serve` is part of the Python package (it runs DuckDB): pip install raiiaf-rs duckdb, \
             then run the `raiiaf` command it installs"
                .into(),
        )),
        Command::Convert {
            file,
            codec,
            output,
            overwrite,
        } => convert(&file, &codec, &output, overwrite, options).map(|line| println!("{line}")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("raiiaf: {e}");
            1
        }
    }
}

/// Read options: `--max-decoded-bytes`, else `$RAIIAF_MAX_DECODED_BYTES`, else 1 GiB.
fn read_options(max_decoded_bytes: Option<&str>) -> Result<ReadOptions> {
    let mut options = ReadOptions::from_env()?;
    if let Some(text) = max_decoded_bytes {
        options.max_decoded_bytes =
            format::parse_byte_size(text).map_err(|e| Error::invalid(format!("--max-decoded-bytes: {e}")))?;
    }
    Ok(options)
}

/// `--codec`'s help: every registered codec, from the registry.
pub fn codec_help() -> String {
    let list: Vec<String> = format::codecs::all()
        .iter()
        .map(|c| {
            let aliases = c.aliases();
            if aliases.is_empty() {
                format!("{} ({})", c.name(), c.summary())
            } else {
                format!("{} or {} ({})", aliases.join(" or "), c.name(), c.summary())
            }
        })
        .collect();
    format!("The codec: {}", list.join("; "))
}

fn codec_label(rec: &format::ChunkRecord, flavor: format::Flavor) -> &'static str {
    match format::codecs::for_record(rec, flavor) {
        Ok(Some(codec)) => codec.name(),
        Ok(None) => "zstd (GEN5)",
        Err(_) => "unknown",
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(img: &[u8]) -> Option<(u32, u32)> {
    if img.len() >= 24 && img.starts_with(b"\x89PNG\r\n\x1a\n") && &img[12..16] == b"IHDR" {
        let w = u32::from_be_bytes(img[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(img[20..24].try_into().ok()?);
        return Some((w, h));
    }
    None
}

fn inspect(path: &Path, json: bool, options: ReadOptions) -> Result<String> {
    let archive = Archive::open(path, options)?;
    let h = &archive.header();
    if json {
        let doc = serde_json::json!({
            "header": {
                "magic": h.flavor.magic_str(),
                "version_major": h.version_major,
                "version_minor": h.version_minor,
                "flags": h.flags,
                "chunk_table_offset": h.meta_offset,
                "chunk_table_size": h.meta_size,
                "chunk_count": h.chunk_count,
                "file_size": h.file_size,
            },
            "manifest": archive.manifest().json(),
        });
        return Ok(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} format {}.{}, {} bytes, {} chunks",
        path.display(),
        h.flavor.magic_str(),
        h.version_major,
        h.version_minor,
        archive.file_len(),
        h.chunk_count
    );
    for rec in archive.latent_records() {
        let dtype = rec.dtype().map(DType::name).unwrap_or("?");
        let shape = rec
            .shape()
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|_| "?".into());
        let ratio = rec.uncompressed_size as f64 / rec.compressed_size.max(1) as f64;
        let _ = writeln!(
            out,
            "  latent {:<16} {dtype:<8} {shape:<20} {:<12} {} -> {} bytes ({ratio:.3}x)",
            rec.latent_name(),
            codec_label(rec, h.flavor),
            rec.uncompressed_size,
            rec.compressed_size
        );
    }
    for rec in archive.manifest().chunks() {
        if rec.kind == format::manifest::DATA {
            let size = archive
                .image()
                .ok()
                .flatten()
                .and_then(|img| png_size(&img))
                .map(|(w, h)| format!(" ({w}x{h} PNG)"))
                .unwrap_or_default();
            let _ = writeln!(out, "  image  {} bytes{size}", rec.uncompressed_size);
        }
    }
    let metadata = archive.manifest().metadata();
    for key in ["model_name", "prompt", "negative_prompt", "date"] {
        if let Some(Value::String(s)) = metadata.get(key) {
            if !s.is_empty() {
                let _ = writeln!(out, "  {key}: {}", ellipsize(s, 160));
            }
        }
    }
    if let Some(Value::Object(g)) = metadata.get("generation_settings") {
        let parts: Vec<String> = g.iter().map(|(k, v)| format!("{k}={}", scalar(v))).collect();
        let _ = writeln!(out, "  generation_settings: {}", parts.join(", "));
    }
    let others: Vec<&String> = metadata
        .keys()
        .filter(|k| {
            ![
                "model_name",
                "model_version",
                "prompt",
                "negative_prompt",
                "date",
                "tags",
                "generation_settings",
                "hardware_info",
            ]
            .contains(&k.as_str())
        })
        .collect();
    if !others.is_empty() {
        let names: Vec<&str> = others.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(out, "  other metadata: {}", names.join(", "));
    }
    match archive.environment() {
        Ok(Some(env)) => {
            let comps = env["components"].as_array().cloned().unwrap_or_default();
            let _ = writeln!(out, "  environment ({} components):", comps.len());
            for c in comps {
                let _ = writeln!(
                    out,
                    "    {:<10} {}",
                    c["component_id"].as_str().unwrap_or("?"),
                    c["cononical_str"].as_str().unwrap_or("?")
                );
            }
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(out, "  environment: unreadable ({e})");
        }
    }
    Ok(out)
}

fn show_env(host: &HostFacts, json: bool) -> String {
    let system = env::system();
    let doc = env::document(system, host);
    let info = env::hardware_info(system, host, None);
    if json {
        let both = serde_json::json!({ "environment": doc, "hardware_info": info });
        return serde_json::to_string_pretty(&both).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let gpus = if system.gpus.is_empty() {
        "none (no NVIDIA driver found)".to_owned()
    } else {
        system
            .gpus
            .iter()
            .map(|g| g.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "os:   {} ({} {})",
        system.os_name, system.os_family, system.os_release
    );
    let _ = writeln!(
        out,
        "cpu:  {} ({} logical cores), RAM {} GB",
        system.cpu_model, system.logical_cores, info["ram_gb"]
    );
    let _ = writeln!(out, "gpus: {gpus}");
    let _ = writeln!(out, "components (as a file written now records them):");
    for c in doc["components"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<15} {}",
            c["component_id"].as_str().unwrap_or("?"),
            c["cononical_str"].as_str().unwrap_or("?")
        );
    }
    out
}

fn drift(path: &Path, host: &HostFacts, json: bool, options: ReadOptions) -> Result<String> {
    let archive = Archive::open(path, options)?;
    let Some(stored) = archive.environment()? else {
        return Ok(format!("{}: the file records no environment\n", path.display()));
    };
    let current = env::document(env::system(), host);
    let drifts = env::compare(&stored, &current);
    if json {
        let list: Vec<Value> = drifts
            .iter()
            .map(|d| {
                serde_json::json!({
                    "component": d.component, "kind": d.kind.name(), "stored": d.stored,
                    "current": d.current, "affects_pixels": d.affects_pixels,
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n");
    }
    let mut out = String::new();
    let real: Vec<_> = drifts
        .iter()
        .filter(|d| d.kind != env::DriftKind::NotInFile)
        .collect();
    if real.is_empty() {
        let _ = writeln!(
            out,
            "{}: no drift, the recorded environment matches this one",
            path.display()
        );
    }
    for d in &real {
        let impact = if d.affects_pixels {
            "can change pixels"
        } else {
            "does not change pixels"
        };
        let what = if d.kind == env::DriftKind::Changed {
            "differs"
        } else {
            "missing in current system"
        };
        let _ = writeln!(out, "{} {what} ({impact})", d.component);
        let _ = writeln!(out, "  File:    {}", d.stored.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "  Current: {}", d.current.as_deref().unwrap_or("-"));
    }
    let unrecorded: Vec<&str> = drifts
        .iter()
        .filter(|d| d.kind == env::DriftKind::NotInFile)
        .map(|d| d.component.as_str())
        .collect();
    if !unrecorded.is_empty() {
        let _ = writeln!(out, "not recorded in the file: {}", unrecorded.join(", "));
    }
    Ok(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => ellipsize(s, 40),
        other => ellipsize(&other.to_string(), 40),
    }
}

fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

/// Decodes every chunk of one file and checks every hash; the number of chunks.
fn verify_file(path: &Path, options: ReadOptions) -> Result<usize> {
    let archive = Archive::open(path, options)?;
    archive.verify_all()?;
    Ok(archive.manifest().chunks().len())
}

fn verify(files: &[PathBuf], options: ReadOptions) -> i32 {
    let mut failed = 0;
    for path in files {
        match verify_file(path, options) {
            Ok(n) => println!("OK    {} ({n} chunks, all hashes match)", path.display()),
            Err(e) => {
                failed += 1;
                println!("FAIL  {}: {e}", path.display());
            }
        }
    }
    i32::from(failed > 0)
}

fn index(paths: &[PathBuf], output: &Path, options: catalog::IndexOptions, full: bool) -> Result<String> {
    let start = std::time::Instant::now();
    let r = catalog::index_to_parquet(paths, output, options, full)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(format!(
        "{}: {} files ({} read, {} unchanged, {} dropped, {} with errors) in {secs:.2} s ({:.0} files/s read)",
        output.display(),
        r.files,
        r.read,
        r.reused,
        r.dropped,
        r.errors,
        r.read as f64 / secs.max(1e-9),
    ))
}

/// How `verify --recursive` sorts a failure: the file's content is wrong (damaged), or it
/// could not be checked at all (unreadable: I/O, not a .raiiaf file, a newer major version, over
/// the decoding limit).
fn failure_kind(e: &Error) -> &'static str {
    match e {
        Error::Io { .. }
        | Error::BadMagic { .. }
        | Error::UnsupportedVersion { .. }
        | Error::DecodedSizeLimit { .. }
        | Error::Unsupported(_) => "unreadable",
        _ => "damaged",
    }
}

fn verify_recursive(paths: &[PathBuf], options: ReadOptions) -> i32 {
    use rayon::prelude::*;
    use std::io::{IsTerminal, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let files = match catalog::find_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("raiiaf: {e}");
            return 2;
        }
    };
    let total = files.len();
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let progress = std::io::stderr().is_terminal();
    let last = Mutex::new(std::time::Instant::now());
    let show = |n: usize| {
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rverifying: {n}/{total} files, {} failed",
            failed.load(Ordering::Relaxed)
        );
        let _ = err.flush();
    };
    let results: Vec<Result<usize>> = files
        .par_iter()
        .map(|f| {
            let result = match &f.error {
                Some(e) => Err(Error::io(&f.path, std::io::Error::other(e.clone()))),
                None => verify_file(&f.path, options),
            };
            if result.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if progress {
                if let Ok(mut t) = last.try_lock() {
                    if t.elapsed().as_millis() >= 100 {
                        *t = std::time::Instant::now();
                        show(n);
                    }
                }
            }
            result
        })
        .collect();
    if progress {
        show(total);
        eprintln!();
    }
    let (mut ok, mut damaged, mut unreadable) = (0, 0, 0);
    for (f, result) in files.iter().zip(&results) {
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                let kind = failure_kind(e);
                if kind == "damaged" {
                    damaged += 1;
                } else {
                    unreadable += 1;
                }
                println!("{:<10} {}: {e}", kind.to_uppercase(), f.path.display());
            }
        }
    }
    println!("{total} files: {ok} ok, {damaged} damaged, {unreadable} unreadable");
    i32::from(ok != total)
}

/// A `.npy` (format 1.0) file for a tensor. bfloat16, which numpy lacks,
/// is widened to float32, which represents every bfloat16 value exactly.
pub fn npy_bytes(t: &Tensor) -> Vec<u8> {
    let (descr, data): (&str, std::borrow::Cow<'_, [u8]>) = match t.dtype() {
        DType::F32 => ("<f4", t.data().into()),
        DType::F16 => ("<f2", t.data().into()),
        DType::BF16 => (
            "<f4",
            t.data()
                .chunks_exact(2)
                .flat_map(|b| ((u16::from_le_bytes([b[0], b[1]]) as u32) << 16).to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
    };
    let dims: Vec<String> = t.shape().iter().map(u64::to_string).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "latent".into(),
        s => s.to_owned(),
    }
}

/// One `.npy` file name per latent, distinct even where two names sanitise
/// alike (`a/b` and `a_b`) or differ only in case (case-insensitive file
/// systems): the later one gets `-2`, `-3`, ... So no latent ever replaces
/// another, with `--overwrite` or without.
fn latent_file_names(latents: &[(String, Tensor)]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    latents
        .iter()
        .map(|(name, _)| {
            let stem = safe_file_name(name);
            let mut candidate = format!("{stem}.npy");
            let mut n = 1;
            while !taken.insert(candidate.to_lowercase()) {
                n += 1;
                candidate = format!("{stem}-{n}.npy");
            }
            candidate
        })
        .collect()
}

fn extract(path: &Path, dir: &Path, overwrite: bool, options: ReadOptions) -> Result<String> {
    let artifact = Archive::open(path, options)?.read_all()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // (file name, bytes, the latent it holds)
    let mut files: Vec<(String, Vec<u8>, Option<&str>)> = Vec::new();
    for ((name, t), file) in artifact.latents.iter().zip(latent_file_names(&artifact.latents)) {
        files.push((file, npy_bytes(t), Some(name.as_str())));
    }
    if let Some(img) = &artifact.image {
        let ext = if png_size(img).is_some() { "png" } else { "bin" };
        files.push((format!("image.{ext}"), img.clone(), None));
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default().into_bytes();
    files.push((
        "metadata.json".into(),
        pretty(&Value::Object(artifact.manifest.metadata())),
        None,
    ));
    files.push(("manifest.json".into(), pretty(artifact.manifest.json()), None));
    if let Some(env) = &artifact.environment {
        files.push(("environment.json".into(), pretty(env), None));
    }
    // Every target is checked before the first is written: no partial extraction.
    if !overwrite {
        if let Some(existing) = files.iter().map(|(f, ..)| dir.join(f)).find(|t| t.exists()) {
            return Err(Error::AlreadyExists(existing));
        }
    }
    let mut written = Vec::new();
    for (file, data, latent) in files {
        let target = dir.join(&file);
        std::fs::write(&target, data).map_err(|e| Error::io(&target, e))?;
        match latent {
            Some(name) if format!("{name}.npy") != file => {
                written.push(format!("{} (latent {name:?})", target.display()))
            }
            _ => written.push(target.display().to_string()),
        }
    }
    Ok(written.join("\n"))
}

fn convert(path: &Path, codec: &str, output: &Path, overwrite: bool, options: ReadOptions) -> Result<String> {
    let codec = Codec::from_name(codec)?;
    let archive = Archive::open(path, options)?;
    let file_len = archive.file_len();
    let artifact = archive.read_all()?;
    drop(archive);
    let image_extra = artifact
        .manifest
        .chunks()
        .iter()
        .find(|r| r.kind == format::manifest::DATA)
        .map(|r| r.extra.clone())
        .unwrap_or_default();
    let contents = Contents {
        latents: artifact
            .latents
            .iter()
            .map(|(name, t)| (name.clone(), t.as_ref()))
            .collect(),
        image: artifact.image.as_deref(),
        image_extra,
        metadata: artifact.manifest.metadata(),
        environment: artifact.environment.clone(),
    };
    let size = format::write_file(
        output,
        &contents,
        WriteOptions {
            codec,
            overwrite,
            fsync: false,
        },
    )?;
    Ok(format!(
        "{} -> {} ({} codec): {} -> {size} bytes",
        path.display(),
        output.display(),
        codec.name(),
        file_len
    ))
}
