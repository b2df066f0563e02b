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
//! - `open_sha256`: the same, plus the SHA-256 of the bytes read.
//!
//! Each is run R times (default 3), interleaved, and the best is printed as one JSON line
//! `{"mode": ..., "files": ..., "seconds": ..., "bytes": ...}` so the Python benchmark can
//! parse it. The buffer is reused per thread: the floor allocates nothing per file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

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

/// One pass over `files` on `threads` threads; returns (seconds, bytes read).
fn pass(files: &[PathBuf], threads: usize, sha: bool) -> (f64, u64) {
    let t0 = Instant::now();
    let bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut buf = vec![0u8; 8192];
                    let mut total = 0u64;
                    let mut sink = 0u8;
                    for path in files.iter().skip(t).step_by(threads) {
                        let Ok(mut f) = File::open(path) else {
                            continue;
                        };
                        let n = f.read(&mut buf).unwrap_or(0);
                        total += n as u64;
                        if sha {
                            sink ^= Sha256::digest(&buf[..n])[0];
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
    pass(&files, threads, false); // warm-up: page cache and dentries warm, as for the indexer
    let mut best = [(f64::INFINITY, 0u64); 2];
    for _ in 0..runs {
        for (i, sha) in [false, true].into_iter().enumerate() {
            let (s, b) = pass(&files, threads, sha);
            if s < best[i].0 {
                best[i] = (s, b);
            }
        }
    }
    for (mode, (seconds, bytes)) in ["open", "open_sha256"].iter().zip(best) {
        println!(
            "{{\"mode\": \"{mode}\", \"files\": {}, \"threads\": {threads}, \"seconds\": {seconds:.6}, \"bytes\": {bytes}}}",
            files.len()
        );
    }
}
