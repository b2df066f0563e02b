//! Which files an index run reads: `.raiiaf` (and legacy `.gen5`) files and PNG, JPEG and WebP
//! images under the given directories (recursively, not following symlinked directories, so a
//! link cycle cannot loop), plus files named directly. An image beside a `.raiiaf` of the same
//! stem is noted on that file's entry instead of being one of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::image_row::is_image_name;
use raiiaf::error::{Error, Result};

/// A file to index, with what the incremental re-index compares: size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute (not canonicalised: a symlinked archive keeps the path the user gave).
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when the system has none).
    pub mtime_ns: i64,
    /// Why the file's metadata could not be read; its row then carries this error.
    pub error: Option<String>,
    /// The image beside a `.raiiaf` file (same stem), found by [`find_files`].
    pub image: Option<PathBuf>,
}

impl FileEntry {
    /// Stats `path` (following a symlink to a file). A failure is kept in `error`.
    pub fn stat(path: PathBuf) -> FileEntry {
        match fs::metadata(&path) {
            Ok(meta) => FileEntry {
                size: meta.len(),
                mtime_ns: meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_nanos()).ok())
                    .unwrap_or(0),
                path,
                error: None,
                image: None,
            },
            Err(e) => FileEntry {
                path,
                size: 0,
                mtime_ns: 0,
                error: Some(format!("cannot stat the file: {e}")),
                image: None,
            },
        }
    }
}

/// True for names ending in `.raiiaf`, or `.gen5` (the legacy format), in any case.
pub fn is_raiiaf_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("raiiaf") || e.eq_ignore_ascii_case("gen5"))
}

/// The `.raiiaf` and `.gen5` files under `roots`, absolute, sorted by path, each once. A root that is a
/// file is taken whatever its name; a root that does not exist is an error (a typo must not
/// index nothing and report success). Unreadable subdirectories are skipped with an entry
/// whose `error` names them, so the catalog shows what it could not see.
pub fn find_files(roots: &[PathBuf]) -> Result<Vec<FileEntry>> {
    let mut out = Vec::new();
    for root in roots {
        let root = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        let meta = fs::metadata(&root).map_err(|e| Error::io(&root, e))?;
        if meta.is_dir() {
            walk(&root, &mut out);
        } else {
            out.push(FileEntry::stat(root));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    super::image_row::pair_sidecars(&mut out);
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<FileEntry>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            out.push(FileEntry {
                path: dir.to_path_buf(),
                size: 0,
                mtime_ns: 0,
                error: Some(format!("cannot list the directory: {e}")),
                image: None,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(_) if is_raiiaf_name(&path) || is_image_name(&path) => out.push(FileEntry::stat(path)),
            _ => {}
        }
    }
}
