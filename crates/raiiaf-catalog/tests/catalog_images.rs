//! Catalog rows of PNG, JPEG and WebP files with generation metadata (CATALOG.md, "Images
//! from other tools"), from hand-made files: every container form the hosts write, and the
//! malformed, huge and odd ones, which must give error rows (or no row), never a panic.

use std::io::Write;
use std::path::Path;

use raiiaf_catalog::image_row::from_bytes;
use raiiaf_catalog::{self as catalog, IndexOptions, Row};

const INFOTEXT: &str = "a red fox, <lora:fox:0.7>\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 4242, Size: 64x48, Model hash: 6CE0161689, Model: tiny, Lora hashes: \"fox: abcdef012345\", Version: v1.10.1";

fn crc_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    out
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn ihdr(w: u32, h: u32) -> Vec<u8> {
    let mut d = w.to_be_bytes().to_vec();
    d.extend_from_slice(&h.to_be_bytes());
    d.extend_from_slice(&[8, 2, 0, 0, 0]);
    crc_chunk(b"IHDR", &d)
}

/// A PNG of `w`x`h` with `chunks` between IHDR and a (dummy) IDAT.
fn png(w: u32, h: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(ihdr(w, h));
    chunks.iter().for_each(|c| out.extend(c));
    out.extend(crc_chunk(b"IDAT", &zlib(&[0; 64])));
    out.extend(crc_chunk(b"IEND", b""));
    out
}

fn text(key: &str, value: &[u8]) -> Vec<u8> {
    crc_chunk(b"tEXt", &[key.as_bytes(), b"\0", value].concat())
}

fn ztxt(key: &str, value: &[u8]) -> Vec<u8> {
    crc_chunk(b"zTXt", &[key.as_bytes(), b"\0\0", &zlib(value)].concat())
}

fn itxt(key: &str, value: &str, compressed: bool) -> Vec<u8> {
    let body = if compressed {
        zlib(value.as_bytes())
    } else {
        value.as_bytes().to_vec()
    };
    let flag = [compressed as u8, 0];
    crc_chunk(
        b"iTXt",
        &[key.as_bytes(), b"\0", &flag, b"en\0\0", &body].concat(),
    )
}

fn row(name: &str, bytes: &[u8]) -> Option<Row> {
    from_bytes(format!("/x/{name}"), bytes, 0, IndexOptions::default())
}

fn error_of(name: &str, bytes: &[u8]) -> String {
    let r = row(name, bytes).expect("an error row");
    r.error.clone().unwrap_or_else(|| panic!("no error: {r:?}"))
}

fn assert_a1111(r: &Row, kind: &str) {
    assert_eq!(r.error, None);
    assert_eq!(r.source_kind, Some(kind));
    assert_eq!(r.prompt.as_deref(), Some("a red fox, <lora:fox:0.7>"));
    assert_eq!(r.negative_prompt.as_deref(), Some("blurry"));
    assert_eq!((r.steps, r.cfg, r.seed), (Some(20), Some(6.5), Some(4242)));
    assert_eq!(r.sampler.as_deref(), Some("DPM++ 2M"));
    assert_eq!(r.scheduler.as_deref(), Some("Karras"));
    assert_eq!(r.model_name.as_deref(), Some("tiny"));
    assert_eq!(r.model_hash.as_deref(), Some("6ce0161689"));
    assert_eq!(r.host_version.as_deref(), Some("v1.10.1"));
    assert_eq!(r.loras.len(), 1);
    assert_eq!(
        (r.loras[0].name.as_str(), r.loras[0].strength_model),
        ("fox", Some(0.7))
    );
}

#[test]
fn png_parameters_in_every_text_chunk_form() {
    for chunk in [
        text("parameters", INFOTEXT.as_bytes()),
        ztxt("parameters", INFOTEXT.as_bytes()),
        itxt("parameters", INFOTEXT, false),
        itxt("parameters", INFOTEXT, true),
    ] {
        let r = row("a.png", &png(640, 480, &[text("Software", b"x"), chunk])).unwrap();
        assert_a1111(&r, "png-a1111");
        // The header's size, not the infotext's Size.
        assert_eq!((r.width, r.height), (Some(640), Some(480)));
        assert_eq!(r.image_path, None, "filled by the column: the path itself");
    }
    // Unicode: iTXt is UTF-8; tEXt is Latin-1.
    let r = row(
        "u.png",
        &png(
            1,
            1,
            &[itxt(
                "parameters",
                "猫 🐱 café\nSteps: 1, Sampler: Euler, Seed: 1",
                true,
            )],
        ),
    )
    .unwrap();
    assert_eq!(r.prompt.as_deref(), Some("猫 🐱 café"));
    let r = row("l.png", &png(1, 1, &[text("parameters", b"caf\xe9")])).unwrap();
    assert_eq!(r.prompt.as_deref(), Some("café"));
    // A text chunk after IDAT is read too.
    let mut late = png(2, 2, &[]);
    let iend = late.len() - 12;
    late.splice(iend..iend, text("parameters", INFOTEXT.as_bytes()));
    assert_a1111(&row("late.png", &late).unwrap(), "png-a1111");
}

fn comfy_graph(seed: &str) -> String {
    format!(
        r#"{{"4": {{"class_type": "CheckpointLoaderSimple", "inputs": {{"ckpt_name": "tiny.safetensors"}}}},
        "6": {{"class_type": "CLIPTextEncode", "inputs": {{"text": "a \ud83d\udc31 cat", "clip": ["4", 1]}}}},
        "7": {{"class_type": "CLIPTextEncode", "inputs": {{"text": "bad \ud800 one", "clip": ["4", 1]}}}},
        "3": {{"class_type": "KSampler", "inputs": {{"seed": {seed}, "steps": 3, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0]}}}},
        "8": {{"class_type": "VAEDecode", "inputs": {{"samples": ["3", 0]}}}},
        "9": {{"class_type": "SaveImage", "inputs": {{"filename_prefix": "ComfyUI", "images": ["8", 0]}}}}}}"#
    )
}

#[test]
fn png_comfyui_graph() {
    let graph = comfy_graph("18446744073709551615");
    let bytes = png(
        8,
        8,
        &[
            ztxt("prompt", graph.as_bytes()),
            text("workflow", b"{\"nodes\": []}"),
        ],
    );
    let r = row("ComfyUI_00001_.png", &bytes).unwrap();
    assert_eq!(r.error, None);
    assert_eq!(r.source_kind, Some("png-comfyui"));
    assert_eq!(r.host_app.as_deref(), Some("ComfyUI"));
    assert_eq!(r.prompt.as_deref(), Some("a 🐱 cat"));
    // A lone surrogate (Python writes one) is U+FFFD, not a failed graph.
    assert_eq!(r.negative_prompt.as_deref(), Some("bad \u{FFFD} one"));
    assert_eq!(r.seed, Some(18446744073709551615));
    assert_eq!((r.steps, r.cfg, r.denoise), (Some(3), Some(8.0), Some(1.0)));
    assert_eq!(r.sampler.as_deref(), Some("euler"));
    assert_eq!(r.model_name.as_deref(), Some("tiny.safetensors"));
    // Only a workflow: a row, settings unknown.
    let r = row("w.png", &png(8, 8, &[text("workflow", b"{}")])).unwrap();
    assert_eq!(
        (r.source_kind, r.seed, r.error),
        (Some("png-comfyui"), None, None)
    );
    // A graph that is not JSON: an error row.
    let e = error_of("b.png", &png(8, 8, &[text("prompt", b"{\"1\": ")]));
    assert!(e.contains("not valid JSON"), "{e}");
}

#[test]
fn huge_and_bomb_text_chunks_are_refused_not_read() {
    let huge = vec![b'a'; (4 << 20) + 10];
    let e = error_of("h.png", &png(1, 1, &[text("parameters", &huge)]));
    assert!(e.contains("over the 4 MiB"), "{e}");
    // 4 MiB + of zeros compress to a few KiB: the decompressed size is capped.
    let e = error_of("z.png", &png(1, 1, &[ztxt("parameters", &huge)]));
    assert!(e.contains("decompressed") && e.contains("over the 4 MiB"), "{e}");
    let e = error_of(
        "i.png",
        &png(1, 1, &[itxt("prompt", std::str::from_utf8(&huge).unwrap(), true)]),
    );
    assert!(e.contains("over the 4 MiB"), "{e}");
    // A huge chunk with another keyword is skipped, not refused.
    let r = row(
        "o.png",
        &png(
            1,
            1,
            &[text("Comment", &huge), text("parameters", INFOTEXT.as_bytes())],
        ),
    );
    assert_a1111(&r.unwrap(), "png-a1111");
}

#[test]
fn malformed_pngs_give_error_rows() {
    let good = png(4, 4, &[text("parameters", INFOTEXT.as_bytes())]);
    // A damaged metadata chunk (CRC).
    let mut bad = good.clone();
    let at = bad.windows(10).position(|w| w == b"parameters").unwrap() + 12;
    bad[at] ^= 1;
    let e = error_of("c.png", &bad);
    assert!(e.contains("CRC"), "{e}");
    // Truncated in the middle of a chunk.
    let e = error_of("t.png", &good[..good.len() - 20]);
    assert!(e.contains("truncated"), "{e}");
    // Not a PNG at all, empty, a first chunk that is not IHDR, no keyword end.
    assert!(error_of("n.png", b"hello world").contains("not a PNG, JPEG or WebP"));
    assert_eq!(row("n.png", b"hello").unwrap().source_kind, Some("image"));
    assert!(error_of("e.png", b"").contains("empty"));
    let mut no_ihdr = b"\x89PNG\r\n\x1a\n".to_vec();
    no_ihdr.extend(crc_chunk(b"IEND", b""));
    assert!(error_of("i.png", &no_ihdr).contains("IHDR"));
    let e = error_of("k.png", &png(1, 1, &[crc_chunk(b"tEXt", b"parameters")]));
    assert!(e.contains("no keyword"), "{e}");
    assert_eq!(
        row("k.png", &png(1, 1, &[crc_chunk(b"tEXt", b"x")]))
            .unwrap()
            .source_kind,
        Some("png")
    );
    // iTXt that is not UTF-8; zTXt that does not decompress; an unknown method.
    let e = error_of(
        "u.png",
        &png(1, 1, &[crc_chunk(b"iTXt", b"parameters\0\0\0\0\0\xff\xfe")]),
    );
    assert!(e.contains("UTF-8"), "{e}");
    let e = error_of(
        "d.png",
        &png(1, 1, &[crc_chunk(b"zTXt", b"parameters\0\0garbage")]),
    );
    assert!(e.contains("decompress"), "{e}");
    let e = error_of("m.png", &png(1, 1, &[crc_chunk(b"zTXt", b"parameters\0\x07x")]));
    assert!(e.contains("method 7"), "{e}");
}

#[test]
fn every_cut_and_flipped_byte_gives_a_row_or_none_never_a_panic() {
    let files = [
        (
            "a.png",
            png(
                4,
                4,
                &[
                    ztxt("parameters", INFOTEXT.as_bytes()),
                    itxt("prompt", &comfy_graph("1"), true),
                ],
            ),
        ),
        (
            "a.jpg",
            jpeg(&exif_block(false, &user_comment_unicode(INFOTEXT, false)), true),
        ),
        (
            "a.webp",
            webp(&[
                vp8x(9, 7),
                riff_chunk(b"EXIF", &exif_block(true, &user_comment_unicode(INFOTEXT, true))),
            ]),
        ),
    ];
    for (name, bytes) in files {
        assert!(row(name, &bytes).unwrap().error.is_none(), "{name}");
        for n in 0..bytes.len() {
            let _ = row(name, &bytes[..n]);
            let mut flipped = bytes.clone();
            flipped[n] ^= 0xA5;
            let _ = row(name, &flipped);
        }
    }
}

// --- JPEG and WebP ---------------------------------------------------------------------------

fn user_comment_unicode(text: &str, little_endian: bool) -> Vec<u8> {
    let mut out = b"UNICODE\0".to_vec();
    for u in text.encode_utf16() {
        out.extend(if little_endian {
            u.to_le_bytes()
        } else {
            u.to_be_bytes()
        });
    }
    out
}

/// A TIFF block: IFD0 with an ImageDescription and the Exif IFD pointer; the Exif IFD with the
/// UserComment (type UNDEFINED), as piexif.dump lays it out.
fn exif_block(le: bool, comment: &[u8]) -> Vec<u8> {
    let u16b = |v: u16| {
        if le {
            v.to_le_bytes().to_vec()
        } else {
            v.to_be_bytes().to_vec()
        }
    };
    let u32b = |v: u32| {
        if le {
            v.to_le_bytes().to_vec()
        } else {
            v.to_be_bytes().to_vec()
        }
    };
    let mut t = if le { b"II".to_vec() } else { b"MM".to_vec() };
    t.extend(u16b(42));
    t.extend(u32b(8));
    // IFD0 at 8: 2 entries, then next-IFD 0; description data after.
    let desc = b"a camera\0";
    let ifd0_len = 2 + 2 * 12 + 4;
    let desc_at = 8 + ifd0_len;
    let exif_at = desc_at + desc.len();
    t.extend(u16b(2));
    t.extend(
        [
            u16b(0x010E),
            u16b(2),
            u32b(desc.len() as u32),
            u32b(desc_at as u32),
        ]
        .concat(),
    );
    t.extend([u16b(0x8769), u16b(4), u32b(1), u32b(exif_at as u32)].concat());
    t.extend(u32b(0));
    t.extend(desc);
    let comment_at = exif_at + 2 + 12 + 4;
    t.extend(u16b(1));
    t.extend(
        [
            u16b(0x9286),
            u16b(7),
            u32b(comment.len() as u32),
            u32b(comment_at as u32),
        ]
        .concat(),
    );
    t.extend(u32b(0));
    t.extend(comment);
    t
}

fn jpeg(tiff: &[u8], with_sof: bool) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let app1 = [b"Exif\0\0".as_slice(), tiff].concat();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend([0xFF, 0xDB, 0x00, 0x04, 0x00, 0x00]); // a table segment
    if with_sof {
        out.extend([
            0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x30, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00,
        ]);
    }
    out.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xD9]);
    out
}

fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

fn vp8x(w: u32, h: u32) -> Vec<u8> {
    let mut d = vec![0x08, 0, 0, 0];
    d.extend(&(w - 1).to_le_bytes()[..3]);
    d.extend(&(h - 1).to_le_bytes()[..3]);
    riff_chunk(b"VP8X", &d)
}

fn webp(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend(((body.len() + 4) as u32).to_le_bytes());
    out.extend(b"WEBP");
    out.extend(body);
    out
}

#[test]
fn jpeg_user_comment_variants() {
    for (le_tiff, comment) in [
        (false, user_comment_unicode(INFOTEXT, false)), // piexif: UTF-16BE in a big-endian TIFF
        (true, user_comment_unicode(INFOTEXT, true)),   // UTF-16LE in a little-endian TIFF
        (false, user_comment_unicode(INFOTEXT, true)),  // LE text in a BE TIFF: told by the zeros
        (true, [b"ASCII\0\0\0".as_slice(), INFOTEXT.as_bytes()].concat()),
        (
            false,
            [b"\0\0\0\0\0\0\0\0".as_slice(), INFOTEXT.as_bytes(), b"\0\0"].concat(),
        ),
    ] {
        let r = row("a.jpg", &jpeg(&exif_block(le_tiff, &comment), true)).unwrap();
        assert_a1111(&r, "jpeg-a1111");
        assert_eq!((r.width, r.height), (Some(64), Some(48)));
    }
    // Unicode beyond the BMP (surrogate pairs) in UTF-16.
    let r = row(
        "u.jpg",
        &jpeg(
            &exif_block(
                false,
                &user_comment_unicode("🐱 猫\nSteps: 1, Sampler: Euler, Seed: 2", false),
            ),
            false,
        ),
    )
    .unwrap();
    assert_eq!((r.prompt.as_deref(), r.width), (Some("🐱 猫"), None));
    // A camera's comment, an empty one, none at all: no generation metadata, no row.
    assert!(row(
        "c.jpg",
        &jpeg(&exif_block(true, b"ASCII\0\0\0Holiday, beach"), true)
    )
    .is_none());
    assert!(row("c.jpg", &jpeg(&exif_block(true, b"ASCII\0\0\0        "), true)).is_none());
    assert!(row("p.png", &png(3, 3, &[text("Software", b"GIMP")])).is_none());
    // A lone surrogate in UTF-16: an error row.
    let bad = [b"UNICODE\0".as_slice(), &[0xD8, 0x00, 0x00, 0x41]].concat();
    assert!(error_of("s.jpg", &jpeg(&exif_block(false, &bad), true)).contains("UTF-16"));
    // An EXIF offset past its end: an error row.
    let mut broken = exif_block(false, &user_comment_unicode(INFOTEXT, false));
    broken[4..8].copy_from_slice(&9999u32.to_be_bytes());
    assert!(error_of("o.jpg", &jpeg(&broken, true)).contains("EXIF"));
}

#[test]
fn webp_riff_chunks() {
    let exif = exif_block(true, &user_comment_unicode(INFOTEXT, true));
    // Pillow strips "Exif\0\0"; other writers keep it. EXIF after the image data.
    for block in [exif.clone(), [b"Exif\0\0".as_slice(), &exif].concat()] {
        let bytes = webp(&[
            vp8x(300, 200),
            riff_chunk(b"VP8L", &[0x2F, 0, 0, 0, 0]),
            riff_chunk(b"EXIF", &block),
        ]);
        let r = row("a.webp", &bytes).unwrap();
        assert_a1111(&r, "webp-a1111");
        assert_eq!((r.width, r.height), (Some(300), Some(200)));
    }
    // Simple formats: the size from VP8L / VP8 (odd-sized chunk: padded).
    let bits: u32 = 99 | (49 << 14);
    let vp8l = [&[0x2F][..], &bits.to_le_bytes(), &[0]].concat();
    let r = row(
        "l.webp",
        &webp(&[riff_chunk(b"VP8L", &vp8l), riff_chunk(b"EXIF", &exif)]),
    )
    .unwrap();
    assert_eq!((r.width, r.height), (Some(100), Some(50)));
    let vp8 = [0, 0, 0, 0x9D, 0x01, 0x2A, 0x20, 0x00, 0x10, 0x00];
    let r = row(
        "v.webp",
        &webp(&[riff_chunk(b"VP8 ", &vp8), riff_chunk(b"EXIF", &exif)]),
    )
    .unwrap();
    assert_eq!((r.width, r.height), (Some(32), Some(16)));
    // ComfyUI's WebP saves: "prompt:{json}" in IFD0's Model tag, "workflow:" in Make.
    let graph = comfy_graph("5");
    let prompt = format!("prompt:{graph}\0");
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    t.extend(1u16.to_le_bytes());
    t.extend([0x10, 0x01, 2, 0]);
    t.extend((prompt.len() as u32).to_le_bytes());
    t.extend(26u32.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    t.extend(prompt.as_bytes());
    let r = row(
        "ComfyUI_00001_.webp",
        &webp(&[vp8x(8, 8), riff_chunk(b"EXIF", &t)]),
    )
    .unwrap();
    assert_eq!(
        (r.source_kind, r.seed, r.error),
        (Some("webp-comfyui"), Some(5), None)
    );
    // A chunk declaring more than the file holds.
    let mut cut = webp(&[vp8x(8, 8), riff_chunk(b"EXIF", &exif)]);
    cut.truncate(cut.len() - 10);
    assert!(error_of("t.webp", &cut).contains("truncated WebP"));
}

#[test]
fn a_png_beside_its_raiiaf_is_one_row_and_images_on_disk_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors/reference-1.1.0");
    let sidecar = std::fs::read_dir(&vectors)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "raiiaf"))
        .unwrap();
    std::fs::copy(&sidecar, dir.path().join("x.raiiaf")).unwrap();
    let info = png(5, 6, &[text("parameters", INFOTEXT.as_bytes())]);
    std::fs::write(dir.path().join("x.png"), &info).unwrap();
    std::fs::write(dir.path().join("y.PNG"), &info).unwrap();
    // A large image: the metadata after 64 KiB of image data is read by position.
    let mut big = png(7, 7, &[crc_chunk(b"IDAT", &vec![0; 200_000])]);
    let iend = big.len() - 12;
    big.splice(iend..iend, text("parameters", INFOTEXT.as_bytes()));
    std::fs::write(dir.path().join("big.png"), &big).unwrap();
    std::fs::write(dir.path().join("plain.png"), png(1, 1, &[])).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not indexed").unwrap();
    let rows = catalog::index_paths(&[dir.path().to_path_buf()], IndexOptions::default()).unwrap();
    let names: Vec<_> = rows
        .iter()
        .map(|r| {
            Path::new(&r.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["big.png", "x.raiiaf", "y.PNG"],
        "x.png is the sidecar's, plain.png has no metadata"
    );
    assert_eq!(rows[0].width, Some(7));
    assert_a1111(&rows[0], "png-a1111");
    assert_eq!(rows[1].source_kind, None);
    assert_eq!(rows[1].image_path.as_deref(), dir.path().join("x.png").to_str());
    assert_a1111(&rows[2], "png-a1111");

    // The table: source_kind and image_path as CATALOG.md says.
    let batch = catalog::rows_to_batch(&rows).unwrap();
    let col = |n: &str| {
        let a = batch.column_by_name(n).unwrap();
        let s = a.as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        (0..s.len())
            .map(|i| s.is_valid(i).then(|| s.value(i).to_owned()))
            .collect::<Vec<_>>()
    };
    use arrow_array::Array;
    assert_eq!(
        col("source_kind"),
        [
            Some("png-a1111".into()),
            Some("raiiaf".into()),
            Some("png-a1111".into())
        ]
    );
    assert_eq!(col("image_path")[2].as_deref(), Some(rows[2].path.as_str()));

    // Incremental: the image beside the .raiiaf going away re-reads the .raiiaf.
    let out = dir.path().join("c.parquet");
    let root = [dir.path().to_path_buf()];
    catalog::index_to_parquet(&root, &out, IndexOptions::default(), false).unwrap();
    let again = catalog::index_to_parquet(&root, &out, IndexOptions::default(), false).unwrap();
    assert_eq!(again.read, 1, "only plain.png, which has no row: {again:?}");
    std::fs::remove_file(dir.path().join("x.png")).unwrap();
    let after = catalog::index_to_parquet(&root, &out, IndexOptions::default(), false).unwrap();
    assert_eq!(after.read, 2, "plain.png and x.raiiaf: {after:?}");
    let (batch, _) = catalog::read_catalog(&out).unwrap().unwrap();
    assert_eq!(batch.num_rows(), 3);
    let paths = batch.column_by_name("image_path").unwrap();
    assert_eq!(paths.null_count(), 1, "x.raiiaf no longer names an image");
}

/// `raiiaf index` writes its rows in batches (2,048 files each) while the next batch is read,
/// reusing the batches' buffers: over several batches, with images that give no row among the
/// files and damaged files giving error rows, the catalog holds exactly the rows that
/// `index_paths` reads, in path order.
#[test]
fn a_catalog_written_in_batches_holds_every_row_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let mut sources: Vec<std::path::PathBuf> = Vec::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    for dir in ["vectors/reference-1.1.0", "vectors/gen5-0.1.0", "adversarial"] {
        for e in std::fs::read_dir(data.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "raiiaf" || ext == "gen5" {
                sources.push(p);
            }
        }
    }
    sources.sort();
    assert!(sources.len() > 20, "{sources:?}");
    // A PNG with no generation metadata: a file the walk finds that gives no row.
    let plain = png(1, 1, &[]);
    for i in 0..5000usize {
        let name = format!("{i:05}");
        if i % 97 == 0 {
            std::fs::write(files.join(format!("{name}.png")), &plain).unwrap();
        } else {
            let src = &sources[i % sources.len()];
            let ext = src.extension().unwrap().to_str().unwrap();
            std::fs::copy(src, files.join(format!("{name}.{ext}"))).unwrap();
        }
    }
    let out = tmp.path().join("catalog.parquet");
    let report =
        catalog::index_to_parquet(std::slice::from_ref(&files), &out, IndexOptions::default(), true).unwrap();
    assert_eq!(report.files, 5000);
    let (written, _) = catalog::read_catalog(&out).unwrap().unwrap();
    let rows = catalog::index_paths(&[files], IndexOptions::default()).unwrap();
    assert!(rows.len() < 5000 && rows.len() > 4900, "{}", rows.len());
    assert!(rows.iter().any(|r| r.error.is_some()) && rows.iter().any(|r| r.error.is_none()));
    assert!(rows.windows(2).all(|w| w[0].path < w[1].path));
    assert_eq!(report.errors, rows.iter().filter(|r| r.error.is_some()).count());
    assert_eq!(written, catalog::rows_to_batch(&rows).unwrap());
}
