//! Generation metadata embedded in PNG, JPEG and WebP files, read from the containers'
//! own structure without decoding a pixel: the dimensions (PNG IHDR, JPEG SOFn, WebP
//! VP8X/VP8/VP8L) and the text the hosts write:
//!
//! - PNG `tEXt`/`zTXt`/`iTXt` chunks `parameters` (A1111/Forge infotext), `prompt` (ComfyUI's
//!   API graph) and `workflow` (its UI graph);
//! - JPEG APP1 and WebP `EXIF`: the EXIF `UserComment` (A1111/Forge, via piexif: an 8-byte
//!   charset prefix, `UNICODE` text in UTF-16 of either byte order, or `ASCII`), and the IFD0
//!   strings `prompt:{json}` / `workflow:{json}` that ComfyUI's WebP saves write.
//!
//! Every length is checked against the file before it is read; a text over [`MAX_TEXT`]
//! (stored or decompressed) is refused with an error rather than read or cut, so a hostile
//! file costs at most that much memory. Errors are messages for the row's `error` column.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// The largest metadata text read (stored, and decompressed): 4 MiB. Infotexts are a few
/// KiB and API graphs rarely reach 1 MiB; a larger one is refused, never truncated.
pub const MAX_TEXT: usize = 4 << 20;

/// How much of a file is read in the first call: the metadata of the files the hosts write
/// sits in it (PNG text chunks precede IDAT); the rest is reached by positioned reads.
pub const HEAD: usize = 64 * 1024;

/// The container, from the file's first bytes (never from its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Webp => "webp",
        }
    }

    /// The container of a file starting with `head`, if it is one of the three.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(Format::Webp)
        } else {
            None
        }
    }
}

/// What a file holds: its size in pixels and the generation metadata found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embedded {
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// A1111/Forge infotext (PNG `parameters`, or the EXIF UserComment).
    pub parameters: Option<String>,
    /// ComfyUI's API graph (JSON text).
    pub comfy_prompt: Option<String>,
    /// ComfyUI's UI graph (JSON text, not parsed by the catalog).
    pub comfy_workflow: Option<String>,
}

type Res<T> = std::result::Result<T, String>;

/// A file's bytes: what is in memory (the whole file, or its head) and, for a file on disk,
/// the handle to read the rest by position.
pub struct Source<'a> {
    data: &'a [u8],
    file: Option<&'a File>,
    len: u64,
}

impl<'a> Source<'a> {
    /// A file entirely in memory.
    pub fn bytes(data: &'a [u8]) -> Self {
        Source {
            data,
            file: None,
            len: data.len() as u64,
        }
    }

    /// A file of `len` bytes whose first bytes are `head`.
    pub fn file(head: &'a [u8], file: &'a File, len: u64) -> Self {
        Source {
            data: head,
            file: Some(file),
            len,
        }
    }

    /// `n` bytes at `off`; an error names `what` when the file ends before.
    fn get(&self, off: u64, n: usize, what: &str) -> Res<Cow<'a, [u8]>> {
        let end = off.checked_add(n as u64).filter(|&e| e <= self.len);
        let Some(end) = end else {
            return Err(format!(
                "truncated file: {what} needs bytes {off}..{} but the file has {} bytes",
                off.saturating_add(n as u64),
                self.len
            ));
        };
        if end <= self.data.len() as u64 {
            return Ok(Cow::Borrowed(&self.data[off as usize..end as usize]));
        }
        let Some(mut file) = self.file else {
            return Err(format!("truncated file: {what} ends past the data given"));
        };
        let mut buf = vec![0u8; n];
        file.seek(SeekFrom::Start(off))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| format!("reading {what}: {e}"))?;
        Ok(Cow::Owned(buf))
    }
}

/// Reads the dimensions and metadata of a file of `format`.
pub fn read(format: Format, src: &Source<'_>) -> Res<Embedded> {
    match format {
        Format::Png => read_png(src),
        Format::Jpeg => read_jpeg(src),
        Format::Webp => read_webp(src),
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn too_big(what: &str, n: usize) -> String {
    format!(
        "{what} is {n} bytes, over the {} MiB the catalog reads; its metadata is not indexed",
        MAX_TEXT >> 20
    )
}

/// Keeps the first value of a key (a later duplicate is ignored, as the hosts' readers do).
fn keep(slot: &mut Option<String>, value: String) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

// --- PNG -----------------------------------------------------------------------------------

/// The text chunk keywords the catalog reads.
const KEYWORDS: [&str; 3] = ["parameters", "prompt", "workflow"];

fn read_png(src: &Source<'_>) -> Res<Embedded> {
    let mut out = Embedded::default();
    let mut off = 8u64;
    let mut first = true;
    loop {
        let head = src.get(off, 8, &format!("the PNG chunk header at offset {off}"))?;
        let len = be32(&head[..4]) as u64;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let name = String::from_utf8_lossy(&kind).into_owned();
        if len > i32::MAX as u64 || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(format!("malformed PNG: bad chunk header at offset {off}"));
        }
        let end = off + 12 + len;
        if end > src.len {
            return Err(format!(
                "truncated PNG: chunk {name} at offset {off} declares {len} bytes, past the end of the file ({} bytes)",
                src.len
            ));
        }
        if first && &kind != b"IHDR" {
            return Err("malformed PNG: the first chunk is not IHDR".into());
        }
        first = false;
        match &kind {
            b"IHDR" => {
                if len != 13 {
                    return Err(format!("malformed PNG: IHDR is {len} bytes, not 13"));
                }
                let data = chunk(src, off, len as usize, &name)?;
                out.width = Some(be32(&data[..4]) as i64);
                out.height = Some(be32(&data[4..8]) as i64);
            }
            b"tEXt" | b"zTXt" | b"iTXt" => text_chunk(src, off, len as usize, &name, &mut out)?,
            b"IEND" => break,
            _ => {}
        }
        off = end;
    }
    Ok(out)
}

/// A chunk's data, its CRC checked.
fn chunk<'a>(src: &Source<'a>, off: u64, len: usize, name: &str) -> Res<Cow<'a, [u8]>> {
    let all = src.get(off + 4, len + 8, &format!("PNG chunk {name}"))?;
    let (body, crc) = all.split_at(len + 4);
    if crc32fast::hash(body) != be32(crc) {
        return Err(format!(
            "malformed PNG: chunk {name} at offset {off} fails its CRC (the file is damaged)"
        ));
    }
    Ok(match all {
        Cow::Borrowed(b) => Cow::Borrowed(&b[4..4 + len]),
        Cow::Owned(v) => Cow::Owned(v[4..4 + len].to_vec()),
    })
}

fn text_chunk(src: &Source<'_>, off: u64, len: usize, name: &str, out: &mut Embedded) -> Res<()> {
    // The keyword first (1-79 bytes and a NUL): only the chunks read are loaded whole.
    let peek = src.get(off + 8, len.min(80), &format!("PNG chunk {name}"))?;
    let Some(nul) = peek.iter().position(|&b| b == 0) else {
        return if len >= 80 {
            Ok(()) // a keyword longer than PNG allows: not one of ours
        } else {
            Err(format!(
                "malformed PNG: {name} chunk at offset {off} has no keyword"
            ))
        };
    };
    let keyword = String::from_utf8_lossy(&peek[..nul]).into_owned();
    let Some(key) = KEYWORDS.iter().find(|k| **k == keyword) else {
        return Ok(());
    };
    let what = format!("the PNG {name} chunk {key:?}");
    if len - (nul + 1) > MAX_TEXT {
        return Err(too_big(&what, len - (nul + 1)));
    }
    let data = chunk(src, off, len, name)?;
    let rest = &data[nul + 1..];
    let text = match name {
        "tEXt" => latin1(rest),
        "zTXt" => {
            let (&method, z) = rest
                .split_first()
                .ok_or_else(|| format!("malformed PNG: {what} has no compression method"))?;
            if method != 0 {
                return Err(format!("malformed PNG: {what} has compression method {method}"));
            }
            latin1(&inflate(z, &what)?)
        }
        _ => {
            // iTXt: compression flag, method, language tag\0, translated keyword\0, UTF-8 text.
            if rest.len() < 2 {
                return Err(format!("malformed PNG: {what} is cut short"));
            }
            let (flag, method) = (rest[0], rest[1]);
            let mut tail = &rest[2..];
            for part in ["language tag", "translated keyword"] {
                let end = tail
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| format!("malformed PNG: {what} has no end to its {part}"))?;
                tail = &tail[end + 1..];
            }
            let bytes = match (flag, method) {
                (0, _) => Cow::Borrowed(tail),
                (1, 0) => Cow::Owned(inflate(tail, &what)?),
                _ => return Err(format!("malformed PNG: {what} has compression {flag}/{method}")),
            };
            String::from_utf8(bytes.into_owned())
                .map_err(|e| format!("malformed PNG: {what} is not valid UTF-8 ({e})"))?
        }
    };
    match *key {
        "parameters" => keep(&mut out.parameters, text),
        "prompt" => keep(&mut out.comfy_prompt, text),
        _ => keep(&mut out.comfy_workflow, text),
    }
    Ok(())
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// zlib data, decompressed to at most [`MAX_TEXT`] bytes (a larger result is an error).
fn inflate(z: &[u8], what: &str) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(z)
        .take(MAX_TEXT as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("malformed PNG: {what} does not decompress ({e})"))?;
    if out.len() > MAX_TEXT {
        return Err(too_big(&format!("{what}, decompressed,"), out.len()));
    }
    Ok(out)
}

// --- JPEG ----------------------------------------------------------------------------------

fn read_jpeg(src: &Source<'_>) -> Res<Embedded> {
    let mut out = Embedded::default();
    let mut off = 2u64;
    loop {
        let m = src.get(off, 2, &format!("the JPEG marker at offset {off}"))?;
        if m[0] != 0xFF {
            return Err(format!("malformed JPEG: no marker at offset {off}"));
        }
        let marker = m[1];
        if marker == 0xFF {
            off += 1; // fill byte
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            break; // end of image, start of scan: every header segment came before
        }
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            off += 2;
            continue;
        }
        let l = src.get(off + 2, 2, "a JPEG segment length")?;
        let len = u16::from_be_bytes([l[0], l[1]]) as usize;
        if len < 2 {
            return Err(format!(
                "malformed JPEG: segment at offset {off} has length {len}"
            ));
        }
        let body_off = off + 4;
        let body_len = len - 2;
        match marker {
            0xE1 => {
                let body = src.get(body_off, body_len, "the JPEG APP1 segment")?;
                if let Some(tiff) = body.strip_prefix(b"Exif\0\0") {
                    if out.parameters.is_none() && out.comfy_prompt.is_none() {
                        exif(tiff, &mut out)?;
                    }
                }
            }
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let body = src.get(body_off, body_len.min(5), "the JPEG frame header")?;
                if body.len() == 5 && out.width.is_none() {
                    out.height = Some(u16::from_be_bytes([body[1], body[2]]) as i64);
                    out.width = Some(u16::from_be_bytes([body[3], body[4]]) as i64);
                }
            }
            _ => {}
        }
        off = body_off + body_len as u64;
    }
    Ok(out)
}

// --- WebP ----------------------------------------------------------------------------------

fn read_webp(src: &Source<'_>) -> Res<Embedded> {
    let mut out = Embedded::default();
    let riff = src.get(4, 4, "the RIFF size")?;
    let end = (le32(&riff) as u64 + 8).min(src.len);
    let mut off = 12u64;
    while off + 8 <= end {
        let h = src.get(off, 8, &format!("the WebP chunk header at offset {off}"))?;
        let kind: [u8; 4] = [h[0], h[1], h[2], h[3]];
        let len = le32(&h[4..8]) as usize;
        let body = off + 8;
        if body + len as u64 > src.len {
            return Err(format!(
                "truncated WebP: chunk {} at offset {off} declares {len} bytes, past the end of the file ({} bytes)",
                String::from_utf8_lossy(&kind),
                src.len
            ));
        }
        match &kind {
            b"VP8X" if len >= 10 => {
                let d = src.get(body, 10, "the WebP VP8X chunk")?;
                let u24 = |b: &[u8]| (b[0] as i64 | (b[1] as i64) << 8 | (b[2] as i64) << 16) + 1;
                out.width = Some(u24(&d[4..7]));
                out.height = Some(u24(&d[7..10]));
            }
            b"VP8 " if len >= 10 && out.width.is_none() => {
                let d = src.get(body, 10, "the WebP VP8 frame header")?;
                if d[3..6] == [0x9D, 0x01, 0x2A] {
                    out.width = Some((u16::from_le_bytes([d[6], d[7]]) & 0x3FFF) as i64);
                    out.height = Some((u16::from_le_bytes([d[8], d[9]]) & 0x3FFF) as i64);
                }
            }
            b"VP8L" if len >= 5 && out.width.is_none() => {
                let d = src.get(body, 5, "the WebP VP8L header")?;
                if d[0] == 0x2F {
                    let bits = le32(&d[1..5]);
                    out.width = Some((bits & 0x3FFF) as i64 + 1);
                    out.height = Some(((bits >> 14) & 0x3FFF) as i64 + 1);
                }
            }
            b"EXIF" => {
                if len > MAX_TEXT + 1024 {
                    return Err(too_big("the WebP EXIF chunk", len));
                }
                let d = src.get(body, len, "the WebP EXIF chunk")?;
                // Pillow strips the JPEG-style "Exif\0\0" prefix; other writers keep it.
                exif(d.strip_prefix(b"Exif\0\0").unwrap_or(&d), &mut out)?;
            }
            _ => {}
        }
        off = body + len as u64 + (len as u64 & 1);
    }
    Ok(out)
}

// --- EXIF ----------------------------------------------------------------------------------

const USER_COMMENT: u16 = 0x9286;
const EXIF_IFD: u16 = 0x8769;

/// The metadata in a TIFF-structured EXIF block.
fn exif(t: &[u8], out: &mut Embedded) -> Res<()> {
    let bad = |why: &str| format!("malformed EXIF: {why}");
    if t.len() < 8 {
        return Err(bad("shorter than its header"));
    }
    let le = match &t[..2] {
        b"II" => true,
        b"MM" => false,
        _ => return Err(bad("no byte order mark")),
    };
    let u16_at = |o: usize| -> Res<u16> {
        let b = t
            .get(o..o + 2)
            .ok_or_else(|| bad("an offset points past its end"))?;
        Ok(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Res<u32> {
        let b = t
            .get(o..o + 4)
            .ok_or_else(|| bad("an offset points past its end"))?;
        Ok(if le { le32(b) } else { be32(b) })
    };
    // An IFD's entries: (tag, value bytes).
    let ifd = |o: usize| -> Res<Vec<(u16, &[u8])>> {
        let n = u16_at(o)? as usize;
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let e = o + 2 + 12 * i;
            let (tag, typ, count) = (u16_at(e)?, u16_at(e + 2)?, u32_at(e + 4)? as usize);
            let unit = match typ {
                1 | 2 | 6 | 7 => 1,
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 => 8,
                _ => continue,
            };
            let size = count
                .checked_mul(unit)
                .ok_or_else(|| bad("an entry's size overflows"))?;
            let start = if size <= 4 { e + 8 } else { u32_at(e + 8)? as usize };
            let value = start
                .checked_add(size)
                .and_then(|end| t.get(start..end))
                .ok_or_else(|| bad(&format!("tag {tag:#06x} points past its end")))?;
            entries.push((tag, value));
        }
        Ok(entries)
    };
    let ifd0 = ifd(u32_at(4)? as usize)?;
    for (tag, value) in &ifd0 {
        // ComfyUI's WebP saves: "prompt:{json}" in Model (0x0110), "workflow:{json}" in Make
        // (0x010f) and the tags below it.
        let s = String::from_utf8_lossy(value);
        let s = s.trim_end_matches('\0');
        if let Some(json) = s.strip_prefix("prompt:") {
            keep(&mut out.comfy_prompt, json.to_owned());
        } else if let Some(json) = s.strip_prefix("workflow:") {
            keep(&mut out.comfy_workflow, json.to_owned());
        } else if *tag == EXIF_IFD && value.len() == 4 {
            let sub = u32_at_bytes(value, le) as usize;
            if let Some((_, c)) = ifd(sub)?.into_iter().find(|(t, _)| *t == USER_COMMENT) {
                if let Some(text) = user_comment(c, le)? {
                    keep(&mut out.parameters, text);
                }
            }
        }
    }
    Ok(())
}

fn u32_at_bytes(b: &[u8], le: bool) -> u32 {
    if le {
        le32(b)
    } else {
        be32(b)
    }
}

/// The text of an EXIF UserComment (8-byte charset prefix, then the text); `None` when empty.
/// `UNICODE` is UTF-16: big-endian as piexif writes it, little-endian as some tools do; the
/// order is told from where the zero bytes of ASCII characters fall, else the TIFF's order.
pub fn user_comment(c: &[u8], tiff_le: bool) -> Res<Option<String>> {
    if c.len() < 8 {
        return Ok(None);
    }
    let (prefix, body) = c.split_at(8);
    let text = match prefix {
        b"UNICODE\0" => {
            let body = &body[..body.len() & !1];
            let zeros = |parity: usize| body.iter().skip(parity).step_by(2).filter(|&&b| b == 0).count();
            let le = match zeros(0).cmp(&zeros(1)) {
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => tiff_le,
            };
            let units = body.chunks_exact(2).map(|p| {
                if le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            });
            let s: String = char::decode_utf16(units)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| format!("malformed EXIF: the UNICODE UserComment is not valid UTF-16 ({e})"))?;
            s.trim_start_matches('\u{FEFF}').to_owned()
        }
        // ASCII, undefined (all zeros) and JIS: UTF-8 where it is, else one char per byte.
        _ => match std::str::from_utf8(body) {
            Ok(s) => s.to_owned(),
            Err(_) => latin1(body),
        },
    };
    let text = text.trim_end_matches(['\0', ' ']).to_owned();
    Ok((!text.trim().is_empty()).then_some(text))
}
