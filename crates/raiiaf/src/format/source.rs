//! Where an archive's bytes come from: a buffer in memory, or an open file
//! read with positional reads (`pread` on Unix, `ReadFile` at an offset on
//! Windows) only when a chunk is decoded. Never a memory map: a mapped file
//! truncated by another process would kill the reader (SIGBUS) instead of
//! failing one read.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::codec::{zfp, zstd_frame};
use crate::error::{Error, Result};

/// An open file and the length it had when it was opened.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
    path: PathBuf,
}

impl FileSource {
    /// Opens `path` for reading and takes its length from its metadata.
    pub fn open(path: &Path) -> Result<FileSource> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(FileSource {
            file,
            len,
            path: path.to_path_buf(),
        })
    }

    /// The file's path, as given to [`open`](FileSource::open).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills `buf` with the bytes at `pos`. A file that ends before them
    /// (it shrank after it was opened) is reported as truncated.
    fn read_exact_at(&self, pos: u64, buf: &mut [u8], what: &dyn Fn() -> String) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = pos + done as u64;
            match read_at(&self.file, &mut buf[done..], at) {
                Ok(0) => {
                    return Err(Error::Truncated {
                        what: format!("{} (the file shrank while it was read)", what()),
                        start: pos,
                        end: pos + buf.len() as u64,
                        file_len: at,
                    })
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(())
    }
}

/// One positional read: the only platform-specific call of the reader.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

/// One positional read: the only platform-specific call of the reader.
/// (`seek_read` also moves the file cursor, which nothing here uses.)
#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// An archive's bytes.
#[derive(Debug)]
pub enum Source<'a> {
    /// A whole file in memory (read in place).
    Bytes(&'a [u8]),
    /// An open file, read chunk by chunk.
    File(FileSource),
}

impl Source<'_> {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Source::Bytes(b) => b.len() as u64,
            Source::File(f) => f.len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` bytes at `offset`, read on demand; `None` unless they lie
    /// inside the file.
    pub fn range(&self, offset: u64, len: u64) -> Option<Chunk<'_>> {
        let end = offset.checked_add(len)?;
        (end <= self.len()).then_some(Chunk {
            source: self,
            offset,
            len,
        })
    }
}

/// A range of an archive's bytes (a chunk, or part of one), read on demand.
/// It lies inside the file (as long as the file keeps its length).
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'s> {
    source: &'s Source<'s>,
    offset: u64,
    len: u64,
}

impl<'s> Chunk<'s> {
    /// The range's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, when the archive is in memory (no copy).
    pub fn as_slice(&self) -> Option<&'s [u8]> {
        match self.source {
            Source::Bytes(b) => usize::try_from(self.offset)
                .ok()
                .zip(usize::try_from(self.offset + self.len).ok())
                .and_then(|(s, e)| b.get(s..e)),
            Source::File(_) => None,
        }
    }

    /// The sub-range `start..start + len` of this one, or `None` when it
    /// does not fit inside.
    pub fn sub(&self, start: u64, len: u64) -> Option<Chunk<'s>> {
        let end = start.checked_add(len)?;
        (end <= self.len).then_some(Chunk {
            source: self.source,
            offset: self.offset + start,
            len,
        })
    }

    /// Fills `buf` with the bytes at `pos` within this range.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        let end = pos.checked_add(buf.len() as u64).filter(|&e| e <= self.len);
        let Some(end) = end else {
            return Err(Error::Internal(format!(
                "a read of {} bytes at {pos} outside a range of {} bytes",
                buf.len(),
                self.len
            )));
        };
        match self.source {
            Source::Bytes(_) => {
                let bytes = self
                    .as_slice()
                    .and_then(|s| s.get(pos as usize..end as usize))
                    .ok_or_else(|| Error::Internal("a range outside the buffer".into()))?;
                buf.copy_from_slice(bytes);
                Ok(())
            }
            Source::File(f) => {
                let (start, total) = (self.offset, self.len);
                f.read_exact_at(self.offset + pos, buf, &|| {
                    format!("bytes {start}..{} of the file", start + total)
                })
            }
        }
    }

    /// All the bytes: borrowed when in memory, read into a new buffer
    /// (of the range's length, bounded by the file's) otherwise.
    pub fn load(&self) -> Result<Cow<'s, [u8]>> {
        if let Some(s) = self.as_slice() {
            return Ok(Cow::Borrowed(s));
        }
        let len = usize::try_from(self.len)
            .map_err(|_| Error::Unsupported(format!("{} bytes do not fit in memory", self.len)))?;
        let mut buf = vec![0u8; len];
        self.read_at(0, &mut buf)?;
        Ok(Cow::Owned(buf))
    }

    /// The bytes in order, in pieces of at most `window` bytes (all at
    /// once when in memory), for streaming decoders. A failed read is kept
    /// in `errors` (shared by the inputs of one decode), since the decoder
    /// that meets it can report only a message.
    pub fn input(&self, window: usize, errors: &ReadErrors) -> ChunkStream<'s> {
        ChunkStream {
            chunk: *self,
            next: 0,
            buf: Vec::new(),
            window: window.max(1),
            pos: 0,
            memory: self.as_slice(),
            errors: errors.clone(),
        }
    }
}

/// Where the inputs of one decode keep the first read error they meet
/// (the decoders see only its message).
#[derive(Debug, Clone, Default)]
pub struct ReadErrors(std::sync::Arc<std::sync::Mutex<Option<Error>>>);

impl ReadErrors {
    /// No error yet.
    pub fn new() -> Self {
        ReadErrors::default()
    }

    /// Keeps `e` (unless an earlier error is kept) and returns its message.
    pub fn keep(&self, e: Error) -> String {
        let message = e.to_string();
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
        message
    }

    /// The read error kept, if any: what a failed decode reports instead of
    /// the decoder's message about it.
    pub fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut e| e.take())
    }
}

/// A [`Chunk`]'s bytes as a [`zstd_frame::Input`]. A failed read is kept in
/// its [`ReadErrors`] and reported to the decoder as a message.
pub struct ChunkStream<'s> {
    chunk: Chunk<'s>,
    /// Offset in the chunk of the first byte not yet in `buf`.
    next: u64,
    buf: Vec<u8>,
    window: usize,
    /// Bytes of `buf` (or `memory`) already consumed.
    pos: usize,
    memory: Option<&'s [u8]>,
    errors: ReadErrors,
}

impl zstd_frame::Input for ChunkStream<'_> {
    fn fill(&mut self) -> std::result::Result<&[u8], String> {
        if let Some(m) = self.memory {
            return Ok(&m[self.pos.min(m.len())..]);
        }
        if self.pos >= self.buf.len() && self.next < self.chunk.len {
            let n = (self.chunk.len - self.next).min(self.window as u64) as usize;
            self.buf.resize(n, 0);
            if let Err(e) = self.chunk.read_at(self.next, &mut self.buf) {
                self.buf.clear();
                return Err(self.errors.keep(e));
            }
            self.next += n as u64;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos.min(self.buf.len())..])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    fn remaining(&self) -> u64 {
        match self.memory {
            Some(m) => (m.len() - self.pos.min(m.len())) as u64,
            None => (self.buf.len() - self.pos.min(self.buf.len())) as u64 + (self.chunk.len - self.next),
        }
    }

    fn restart(&mut self) {
        self.pos = 0;
        if self.memory.is_none() {
            self.buf.clear();
            self.next = 0;
        }
    }
}

/// A [`Chunk`] as the random-access stream the zfp decoder reads in windows.
/// A failed read is kept in `errors`.
pub struct ZfpInput<'s> {
    /// The chunk's bytes.
    pub chunk: Chunk<'s>,
    /// Where a failed read is kept.
    pub errors: ReadErrors,
}

impl zfp::StreamSource for ZfpInput<'_> {
    fn len(&self) -> u64 {
        self.chunk.len
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        self.chunk.read_at(pos, buf).map_err(|e| self.errors.keep(e))
    }
}
