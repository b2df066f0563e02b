//! Model fingerprints: the SHA-256 of checkpoint, VAE and LoRA files, with
//! the 10-hex short form A1111 and model sites show. Hashing a 6 GB
//! checkpoint takes seconds, so results are kept in a cache file in the
//! user's cache directory, keyed by (path, size, mtime): each file is hashed
//! once, and a touched or replaced file is hashed again.
//!
//! The cache holds absolute paths; it never leaves the machine. Files
//! record only the model's file name.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use raiiaf::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    pub size: u64,
    /// Whether the hash came from the cache.
    pub cached: bool,
}

impl Fingerprint {
    /// The first 10 hex digits: A1111's "short hash", Civitai's AutoV2.
    pub fn short(&self) -> &str {
        &self.sha256[..10]
    }
}

const CACHE_FILE: &str = "model-hashes.json";

/// `$RAIIAF_CACHE_DIR`, else `$XDG_CACHE_HOME/raiiaf-rs`, else
/// `~/.cache/raiiaf-rs` (`%LOCALAPPDATA%\raiiaf-rs` on Windows).
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("RAIIAF_CACHE_DIR") {
        return Some(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(dir.join("raiiaf-rs"));
    }
    if cfg!(windows) {
        return var("LOCALAPPDATA").map(|d| d.join("raiiaf-rs"));
    }
    var("HOME").map(|h| h.join(".cache").join("raiiaf-rs"))
}

/// Loaded cache files, by cache file path.
static CACHES: Mutex<Option<HashMap<PathBuf, Map<String, Value>>>> = Mutex::new(None);

fn load(file: &Path) -> Map<String, Value> {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("entries").and_then(Value::as_object).cloned())
        .unwrap_or_default()
}

/// Merges `key -> entry` into the cache file (re-reading it first, so
/// processes sharing it do not drop each other's entries) and replaces it
/// atomically.
fn store(file: &Path, key: &str, entry: Value) -> std::io::Result<Map<String, Value>> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut entries = load(file);
    entries.insert(key.to_owned(), entry);
    let text = serde_json::to_vec(&json!({ "version": 1, "entries": entries }))?;
    let tmp = file.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file)?;
    Ok(entries)
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((raiiaf::format::hex(&hasher.finalize()), size))
}

/// The fingerprint of `path`, from the cache in `cache_dir` (default:
/// [`default_cache_dir`]) when its size and mtime are unchanged. A cache
/// that cannot be read or written is skipped, never an error.
pub fn fingerprint(path: &Path, cache_dir: Option<&Path>) -> Result<Fingerprint> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!("{} is not a file", path.display())));
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    let size = meta.len();
    let key = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned();
    let cache_file = cache_dir
        .map(Path::to_path_buf)
        .or_else(default_cache_dir)
        .map(|d| d.join(CACHE_FILE));

    if let Some(file) = &cache_file {
        let mut caches = CACHES.lock().unwrap_or_else(|p| p.into_inner());
        let entries = caches
            .get_or_insert_with(HashMap::new)
            .entry(file.clone())
            .or_insert_with(|| load(file));
        if let Some(e) = entries.get(&key) {
            if e["size"].as_u64() == Some(size) && e["mtime_ns"].as_u64() == Some(mtime_ns) {
                if let Some(sha) = e["sha256"].as_str().filter(|s| s.len() == 64) {
                    return Ok(Fingerprint {
                        sha256: sha.to_owned(),
                        size,
                        cached: true,
                    });
                }
            }
        }
    }
    let (sha256, hashed) = sha256_file(path)?;
    if let Some(file) = &cache_file {
        // Only cache if the file did not change while it was hashed.
        let unchanged = std::fs::metadata(path).is_ok_and(|m| {
            m.len() == size
                && m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos() as u64)
                    == Some(mtime_ns)
        });
        if unchanged && hashed == size {
            let entry = json!({ "size": size, "mtime_ns": mtime_ns, "sha256": sha256 });
            if let Ok(entries) = store(file, &key, entry) {
                let mut caches = CACHES.lock().unwrap_or_else(|p| p.into_inner());
                caches
                    .get_or_insert_with(HashMap::new)
                    .insert(file.clone(), entries);
            }
        }
    }
    Ok(Fingerprint {
        sha256,
        size: hashed,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_once_then_hits_the_cache_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let model = dir.path().join("model.safetensors");
        std::fs::write(&model, b"abc").unwrap();
        let first = fingerprint(&model, Some(&cache)).unwrap();
        // SHA-256("abc")
        assert_eq!(
            first.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(first.short(), "ba7816bf8f");
        assert!(!first.cached);
        let second = fingerprint(&model, Some(&cache)).unwrap();
        assert!(second.cached);
        assert_eq!(second.sha256, first.sha256);
        assert!(cache.join(CACHE_FILE).exists());

        // A new content with a new mtime is re-hashed.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&model, b"abcd").unwrap();
        let third = fingerprint(&model, Some(&cache)).unwrap();
        assert!(!third.cached);
        assert_ne!(third.sha256, first.sha256);

        // A corrupt cache file is ignored, not an error.
        std::fs::write(cache.join(CACHE_FILE), b"{not json").unwrap();
        CACHES.lock().unwrap().take();
        assert!(!fingerprint(&model, Some(&cache)).unwrap().cached);
        assert!(fingerprint(&dir.path().join("missing"), Some(&cache)).is_err());
        assert!(fingerprint(dir.path(), Some(&cache)).is_err());
    }
}
