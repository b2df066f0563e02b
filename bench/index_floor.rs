//! The floor an indexer is measured against (bench/bench_catalog.py): the least work any
//! per-file reader must do, over the same files with the same number of threads.
//!
//! ```text
//! cargo run --release --example index_floor -- DIR [--threads N] [--ext raiiaf] [--runs R]
//! ```
//!
//! Lists the files under DIR whose extension is `--ext` (any case; untimed), then times, on N
//! threads (default 2) each taking every N-th file of the list:
//!
//! - `open`: open + one read of up to 8 KB + close, per file;
//! - `open_sha256`: the same, plus the SHA-256 of the bytes read;
//! - `open_inflate` (`.raiiaf` files only): the same as `open`, plus finding META through the
//!   header and inflating it (zstd, one reused context and buffer);
//! - `open_manifest` (`.raiiaf` files only): `open_inflate`, plus checking that the manifest
//!   is valid JSON with the core crate's own scanner (`raiiaf::format::json::validate`). That
//!   is what any indexer that gives a damaged file no clean row must do at least, and nothing
//!   else: no row, no chunk records, no Parquet. The manifest of a file written by ComfyUI is
//!   5-10 KB of JSON (its graph), so this is the floor of the format, not of the disk.
//!
//! Each is run R times (default 3), interleaved, and the best is printed as one JSON line
//! `{"mode": ..., "files": ..., "seconds": ..., "bytes": ...}` so the Python benchmark can
//! parse it. The buffer is reused per thread: the floor allocates nothing per file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use raiiaf::codec::zstd_frame;
use raiiaf::format::{json, Header};
use sha2::{Digest, Sha256};

/// What a pass does per file besides open + read + close.
#[derive(Clone, Copy, PartialEq)]
enum Extra {
    None,
    Sha256,
    /// Inflate the manifest; `true`: validate it too.
    Manifest(bool),
}

/// Inflates the META chunk of the file in `file` into `out` and (`validate`) checks its JSON;
/// false if any step fails (the bytes read must hold the whole chunk).
fn manifest_ok(file: &[u8], out: &mut Vec<u8>, validate: bool) -> bool {
    let Ok(h) = Header::parse(file) else {
        return false;
    };
    let (Ok(start), Ok(len)) = (usize::try_from(h.meta_offset), usize::try_from(h.meta_size)) else {
        return false;
    };
    let Some(frame) = file.get(start..start.saturating_add(len)) else {
        return false;
    };
    let Ok(size) = zstd_frame::declared_size(frame) else {
        return false;
    };
    let Ok(size) = usize::try_from(size) else {
        return false;
    };
    if !(12..=1 << 24).contains(&size) {
        return false;
    }
    out.resize(size, 0);
    zstd_frame::decompress_exact_into(frame, out).is_ok()
        && (!validate || std::str::from_utf8(&out[12..]).is_ok_and(|text| json::validate(text).is_some()))
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, ext, out),
            Ok(_) => {
                let matches = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case(ext));
                if matches {
                    out.push(path);
                }
            }
            Err(_) => {}
        }
    }
}

/// One pass over `files` on `threads` threads; returns (seconds, bytes read). With
/// [`Extra::Manifest`], a file whose manifest fails exits the program: the floor must do the
/// same work on every file as the indexer.
fn pass(files: &[PathBuf], threads: usize, extra: Extra) -> (f64, u64) {
    let t0 = Instant::now();
    let bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut buf = vec![0u8; 8192];
                    let mut manifest = Vec::new();
                    let mut total = 0u64;
                    let mut sink = 0u8;
                    for path in files.iter().skip(t).step_by(threads) {
                        let Ok(mut f) = File::open(path) else {
                            continue;
                        };
                        let n = f.read(&mut buf).unwrap_or(0);
                        total += n as u64;
                        match extra {
                            Extra::None => {}
                            Extra::Sha256 => sink ^= Sha256::digest(&buf[..n])[0],
                            Extra::Manifest(validate) => {
                                if !manifest_ok(&buf[..n], &mut manifest, validate) {
                                    eprintln!("{}: no valid manifest in its first 8 KB", path.display());
                                    std::process::exit(1);
                                }
                            }
                        }
                    }
                    std::hint::black_box(sink);
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (t0.elapsed().as_secs_f64(), bytes)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut threads, mut ext, mut runs) = (None, 2usize, "raiiaf".to_owned(), 3usize);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--threads" => threads = value("--threads").parse().unwrap_or(2).max(1),
            "--ext" => ext = value("--ext"),
            "--runs" => runs = value("--runs").parse().unwrap_or(3).max(1),
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => {
                eprintln!("usage: index_floor DIR [--threads N] [--ext EXT] [--runs R]");
                std::process::exit(2)
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: index_floor DIR [--threads N] [--ext EXT] [--runs R]");
        std::process::exit(2)
    };
    let mut files = Vec::new();
    walk(&dir, &ext, &mut files);
    files.sort();
    pass(&files, threads, Extra::None); // warm-up: page cache and dentries warm, as for the indexer
    let mut modes = vec![("open", Extra::None), ("open_sha256", Extra::Sha256)];
    if ext.eq_ignore_ascii_case("raiiaf") {
        modes.push(("open_inflate", Extra::Manifest(false)));
        modes.push(("open_manifest", Extra::Manifest(true)));
    }
    let mut best = vec![(f64::INFINITY, 0u64); modes.len()];
    for _ in 0..runs {
        for (i, &(_, extra)) in modes.iter().enumerate() {
            let (s, b) = pass(&files, threads, extra);
            if s < best[i].0 {
                best[i] = (s, b);
            }
        }
    }
    for ((mode, _), (seconds, bytes)) in modes.iter().zip(best) {
        println!(
            "{{\"mode\": \"{mode}\", \"files\": {}, \"threads\": {threads}, \"seconds\": {seconds:.6}, \"bytes\": {bytes}}}",
            files.len()
        );
    }
}
