//! Which files an index run reads: `.raiiaf` (and legacy `.gen5`) files and PNG, JPEG and WebP
//! images under the given directories (recursively, not following symlinked directories, so a
//! link cycle cannot loop), plus files named directly. An image beside a `.raiiaf` of the same
//! stem is noted on that file's entry instead of being one of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

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
        let meta = fs::metadata(&path);
        FileEntry::of(path, meta)
    }

    /// The entry of `meta`, `path`'s metadata (or why it could not be read).
    fn of(path: PathBuf, meta: std::io::Result<fs::Metadata>) -> FileEntry {
        match meta {
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
    // (Stable: of one path named twice, the first root's entry stays. Each directory's entries
    // come out in path order already, so this is mostly a check.)
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    super::image_row::pair_sidecars(&mut out);
    Ok(out)
}

/// Appends the files under `dir` to `out`, in path order. Subdirectories are walked in
/// parallel (rayon's pool), and each file is statted relative to its open directory (the
/// `statx` of a directory entry, `AT_SYMLINK_NOFOLLOW`) rather than by its full path, which
/// the kernel would look up again component by component; a symlink is statted through its
/// path, so a link to a file is indexed as the file it points to, as before.
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
    // Files and directories by name: the walk's output is then in path order (a directory's
    // files sort among its other entries by the directory's name), and the final sort has
    // next to nothing to do.
    let mut found: Vec<(std::ffi::OsString, Found)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let file = Path::new(&name);
        match entry.file_type() {
            Ok(t) if t.is_dir() => found.push((name, Found::Dir)),
            Ok(t) if is_raiiaf_name(file) || is_image_name(file) => {
                let meta = if t.is_symlink() {
                    fs::metadata(entry.path())
                } else {
                    entry.metadata()
                };
                found.push((name, Found::File(meta)));
            }
            _ => {}
        }
    }
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let dirs = found.iter().filter(|(_, f)| matches!(f, Found::Dir)).count();
    if dirs <= 1 {
        for (name, f) in found {
            match f {
                Found::Dir => walk(&dir.join(name), out),
                Found::File(meta) => out.push(FileEntry::of(dir.join(name), meta)),
            }
        }
        return;
    }
    // Each subdirectory, and each run of files between two, is one part; the parts are done
    // in parallel and joined in order.
    let mut parts: Vec<Vec<(std::ffi::OsString, Found)>> = Vec::new();
    for (name, f) in found {
        let new_part = matches!(f, Found::Dir)
            || parts
                .last()
                .is_none_or(|p| matches!(p.first(), Some((_, Found::Dir))));
        if new_part {
            parts.push(Vec::new());
        }
        if let Some(p) = parts.last_mut() {
            p.push((name, f));
        }
    }
    let parts: Vec<Vec<FileEntry>> = parts
        .into_par_iter()
        .map(|part| {
            let mut entries = Vec::new();
            for (name, f) in part {
                match f {
                    Found::Dir => walk(&dir.join(name), &mut entries),
                    Found::File(meta) => entries.push(FileEntry::of(dir.join(name), meta)),
                }
            }
            entries
        })
        .collect();
    out.reserve(parts.iter().map(Vec::len).sum());
    parts.into_iter().for_each(|p| out.extend(p));
}

/// A directory entry [`walk`] keeps.
enum Found {
    Dir,
    File(std::io::Result<fs::Metadata>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk as it was before it went parallel: one full-path stat per file, then a sort.
    fn reference(roots: &[PathBuf]) -> Vec<FileEntry> {
        fn walk(dir: &Path, out: &mut Vec<FileEntry>) {
            let Ok(entries) = fs::read_dir(dir) else {
                out.push(FileEntry {
                    path: dir.to_path_buf(),
                    size: 0,
                    mtime_ns: 0,
                    error: Some("unreadable".into()),
                    image: None,
                });
                return;
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
        let mut out = Vec::new();
        for root in roots {
            let root = std::path::absolute(root).unwrap();
            if root.is_dir() {
                walk(&root, &mut out);
            } else {
                out.push(FileEntry::stat(root));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        crate::image_row::pair_sidecars(&mut out);
        out
    }

    #[test]
    fn the_parallel_walk_finds_what_the_serial_one_did_in_the_same_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // "a-b" sorts before "a/..." byte by byte, after it by path component.
        for dir in ["a", "a-b", "a/x", "a/y", "a/y/deep", "b", "c.raiiaf.d", "z"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let files = [
            "0.raiiaf",
            "a.raiiaf",
            "a/1.raiiaf",
            "a/m.gen5",
            "a/x/2.RAIIAF",
            "a/x/2.png",
            "a/y/deep/3.raiiaf",
            "a/y/deep/3.jpg",
            "a/y/deep/4.webp",
            "a/zz.raiiaf",
            "a-b/5.raiiaf",
            "a-b/notes.txt",
            "b/6.jpeg",
            "c.raiiaf.d/7.raiiaf",
            "z/8.raiiaf",
        ];
        for (i, f) in files.iter().enumerate() {
            fs::write(root.join(f), vec![0u8; i]).unwrap();
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("a/1.raiiaf"), root.join("b/link.raiiaf")).unwrap();
            std::os::unix::fs::symlink(root.join("nowhere"), root.join("b/broken.raiiaf")).unwrap();
            // A symlinked directory is not followed.
            std::os::unix::fs::symlink(root.join("a"), root.join("z/linked")).unwrap();
        }
        let roots = [
            root.to_path_buf(),
            root.join("a/x"),
            root.join("z/8.raiiaf"),
            root.join("b/6.jpeg"),
        ];
        let got = find_files(&roots).unwrap();
        assert_eq!(got, reference(&roots));
        assert!(got
            .iter()
            .any(|f| f.path.ends_with("b/link.raiiaf") && f.size == 2 && f.error.is_none()));
        assert!(got
            .iter()
            .any(|f| f.path.ends_with("b/broken.raiiaf") && f.error.is_some()));
        assert!(!got.iter().any(|f| f.path.starts_with(root.join("z/linked"))));
        let paths: Vec<_> = got
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        assert!(paths.windows(2).all(|w| w[0] < w[1]), "{paths:?}");
    }
}
