//! Catalog rows for the images users already have: PNG, JPEG and WebP files with A1111/Forge
//! infotext or ComfyUI graphs (embedded.rs reads the containers, a1111.rs and comfy_graph.rs
//! the metadata). An image with no generation metadata gets no row; one that cannot be read
//! gets an error row. An image beside a `.raiiaf` of the same stem (the save nodes write
//! `x.png` + `x.raiiaf`) is not a row of its own: the `.raiiaf`'s row names it in
//! `image_path`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::embedded::{self, Embedded, Format, Source, HEAD};
use super::row::{as_f64, as_i128, as_i64, hash_file, Lora, Row};
use super::scan::{is_raiiaf_name, FileEntry};
use super::{a1111, comfy_graph, IndexOptions};
use raiiaf::format::pyjson::replace_lone_surrogates;
use raiiaf::format::sha256_hex;

/// True for names ending in `.png`, `.jpg`, `.jpeg` or `.webp`, in any case.
pub fn is_image_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["png", "jpg", "jpeg", "webp"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Drops the images that have a `.raiiaf` of the same stem in `files`, noting each on that
/// file's entry (the first in path order, when several images share the stem).
pub fn pair_sidecars(files: &mut Vec<FileEntry>) {
    // (No image, nothing to pair: spares hashing the stem of every `.raiiaf`.)
    if !files.iter().any(|f| is_image_name(&f.path)) {
        return;
    }
    let stems: HashMap<PathBuf, usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| is_raiiaf_name(&f.path))
        .map(|(i, f)| (f.path.with_extension(""), i))
        .collect();
    if stems.is_empty() {
        return;
    }
    let mut paired = vec![false; files.len()];
    for i in 0..files.len() {
        if !is_image_name(&files[i].path) {
            continue;
        }
        if let Some(&j) = stems.get(&files[i].path.with_extension("")) {
            paired[i] = true;
            if files[j].image.is_none() {
                files[j].image = Some(files[i].path.clone());
            }
        }
    }
    let mut k = 0;
    files.retain(|_| {
        k += 1;
        !paired[k - 1]
    });
}

/// The row of `entry`: an image by its metadata (`None`: it has none), any other file as a
/// `.raiiaf`.
pub fn row_for(entry: &FileEntry, options: IndexOptions) -> Option<Row> {
    if !is_image_name(&entry.path) {
        let mut row = Row::read(entry, options);
        row.image_path = entry.image.as_ref().map(|p| p.to_string_lossy().into_owned());
        return Some(row);
    }
    let mut row = Row {
        path: entry.path.to_string_lossy().into_owned(),
        size: i64::try_from(entry.size).unwrap_or(i64::MAX),
        mtime_ns: entry.mtime_ns,
        source_kind: Some("image"),
        ..Row::default()
    };
    if let Some(e) = &entry.error {
        row.error = Some(e.clone());
        return Some(row);
    }
    let read = (|| -> Parsed {
        let io = |what: &str, e: std::io::Error| (None, format!("cannot {what} the file: {e}"));
        let file = File::open(&entry.path).map_err(|e| io("open", e))?;
        let mut head = Vec::with_capacity(HEAD.min(entry.size as usize));
        (&file)
            .take(HEAD as u64)
            .read_to_end(&mut head)
            .map_err(|e| io("read", e))?;
        if options.hash {
            row.file_sha256 = Some(hash_file(&entry.path).map_err(|e| (None, e.to_string()))?);
        }
        let len = (entry.size).max(head.len() as u64);
        parse(&head, Source::file(&head, &file, len))
    })();
    finish(row, read)
}

/// The row of an image whose bytes are in memory (`None`: no generation metadata).
pub fn from_bytes(path: String, bytes: &[u8], mtime_ns: i64, options: IndexOptions) -> Option<Row> {
    let mut row = Row {
        path,
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        mtime_ns,
        source_kind: Some("image"),
        ..Row::default()
    };
    if options.hash {
        row.file_sha256 = Some(sha256_hex(bytes));
    }
    let read = parse(bytes, Source::bytes(bytes));
    finish(row, read)
}

/// The container and what it holds, or (the container if known, why it cannot be read).
type Parsed = std::result::Result<(Format, Embedded), (Option<Format>, String)>;

fn parse(head: &[u8], src: Source<'_>) -> Parsed {
    if head.is_empty() {
        return Err((None, "empty file: not a PNG, JPEG or WebP image".into()));
    }
    let Some(format) = Format::sniff(head) else {
        let start = &head[..head.len().min(8)];
        let why = format!(
            "not a PNG, JPEG or WebP image (the file starts with {:?})",
            String::from_utf8_lossy(start)
        );
        return Err((None, why));
    };
    embedded::read(format, &src)
        .map(|e| (format, e))
        .map_err(|e| (Some(format), e))
}

fn finish(mut row: Row, read: Parsed) -> Option<Row> {
    match read {
        Ok((format, e)) => fill(&mut row, format, e).then_some(row),
        Err((format, why)) => {
            if let Some(f) = format {
                row.source_kind = Some(f.name());
            }
            row.error = Some(why);
            Some(row)
        }
    }
}

/// Fills `row` from the metadata found; false when there is none (the image is skipped).
fn fill(row: &mut Row, format: Format, e: Embedded) -> bool {
    let kind = |host: &str| -> &'static str {
        match (format, host) {
            (Format::Png, "a1111") => "png-a1111",
            (Format::Png, _) => "png-comfyui",
            (Format::Jpeg, "a1111") => "jpeg-a1111",
            (Format::Jpeg, _) => "jpeg-comfyui",
            (Format::Webp, "a1111") => "webp-a1111",
            (Format::Webp, _) => "webp-comfyui",
        }
    };
    row.width = e.width;
    row.height = e.height;
    if e.comfy_prompt.is_some() || e.comfy_workflow.is_some() {
        row.source_kind = Some(kind("comfyui"));
        row.host_app = Some("ComfyUI".into());
        if let Some(text) = &e.comfy_prompt {
            match parse_json(text) {
                Ok(graph) => fill_comfy(row, &graph),
                Err(err) => {
                    row.error = Some(format!("the ComfyUI prompt graph is not valid JSON: {err}"));
                }
            }
        }
        return true;
    }
    let Some(text) = e.parameters else {
        return false;
    };
    // EXIF UserComments hold all sorts of text: only an infotext's settings line makes one.
    if format != Format::Png && !a1111::looks_like_infotext(&text) {
        return false;
    }
    row.source_kind = Some(kind("a1111"));
    fill_a1111(row, &text);
    true
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn fill_a1111(row: &mut Row, text: &str) {
    let t = a1111::parse(text);
    let get = |k: &str| t.get(k).filter(|v| !v.is_empty());
    let string = |k: &str| get(k).map(str::to_owned);
    row.seed = get("Seed").and_then(|v| as_i128(&Value::String(v.into())));
    row.steps = get("Steps").and_then(|v| as_i64(&Value::String(v.into())));
    row.cfg = get("CFG scale").and_then(|v| as_f64(&Value::String(v.into())));
    row.denoise = get("Denoising strength").and_then(|v| as_f64(&Value::String(v.into())));
    row.sampler = string("Sampler");
    row.scheduler = string("Schedule type");
    row.model_name = string("Model");
    row.model_hash = get("Model hash").map(str::to_ascii_lowercase);
    row.host_version = string("Version");
    if row.width.is_none() {
        if let Some((w, h)) = get("Size").and_then(a1111::size) {
            (row.width, row.height) = (Some(w), Some(h));
        }
    }
    // LoRAs: the names of "Lora hashes", each with the strength its <lora:name:x> tag gives.
    for pair in get("Lora hashes").unwrap_or("").split(',') {
        let Some((name, _)) = pair.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let tag = format!("<lora:{name}:");
        let strength = t.prompt.find(&tag).and_then(|i| {
            let rest = &t.prompt[i + tag.len()..];
            let v = &rest[..rest.find(['>', ':']).unwrap_or(rest.len())];
            v.trim().parse().ok()
        });
        row.loras.push(Lora {
            name: name.to_owned(),
            sha256: None,
            strength_model: strength,
            strength_clip: None,
        });
    }
    row.prompt = nonempty(t.prompt);
    row.negative_prompt = nonempty(t.negative_prompt);
}

fn fill_comfy(row: &mut Row, graph: &Value) {
    let stem = Path::new(&row.path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let s = comfy_graph::settings(graph, &stem);
    row.prompt = s.prompt.and_then(nonempty);
    row.negative_prompt = s.negative_prompt.and_then(nonempty);
    row.seed = s.seed.as_ref().and_then(as_i128);
    row.steps = s.steps.as_ref().and_then(as_i64);
    row.cfg = s.cfg.as_ref().and_then(as_f64);
    row.denoise = s.denoise.as_ref().and_then(as_f64);
    row.sampler = s.sampler.and_then(nonempty);
    row.scheduler = s.scheduler.and_then(nonempty);
    row.model_name = s.model_name.and_then(nonempty);
    row.loras = s
        .loras
        .into_iter()
        .map(|(name, strength_model, strength_clip)| Lora {
            name,
            sha256: None,
            strength_model,
            strength_clip,
        })
        .collect();
}

/// JSON text; a lone UTF-16 surrogate escape (Python's json.dumps writes one for a lone
/// surrogate in a prompt) becomes U+FFFD instead of failing the whole graph, as in a manifest.
fn parse_json(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str(&replace_lone_surrogates(text))
}
