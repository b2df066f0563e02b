//! Interoperability with files written by the reference implementations:
//! raiiaf 1.1.0 (`tests/data/vectors/reference-1.1.0`, with the reference
//! decoder's own output in `expected.json`) and gen5 0.1.0.

use std::path::PathBuf;

use raiiaf::format::{self, Archive, Codec, Contents, ReadOptions};
use raiiaf::DType;
use serde_json::Value;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(vectors().join("reference-1.1.0/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn reads_every_reference_file_like_the_reference_decoder() {
    let expected = expected();
    let expected = expected.as_object().unwrap();
    assert_eq!(expected.len(), 4);
    for (name, exp) in expected {
        let bytes = std::fs::read(vectors().join("reference-1.1.0").join(name)).unwrap();
        let archive = Archive::parse(&bytes, ReadOptions::default()).unwrap();
        let h = &archive.header();
        assert_eq!(
            h.meta_offset,
            exp["header"]["chunk_table_offset"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            h.chunk_count,
            exp["header"]["chunk_count"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(h.file_size, bytes.len() as u64, "{name}");
        let art = archive.read_all().unwrap(); // verifies every hash
        let decoded = exp["decoded_latents"].as_array().unwrap();
        assert_eq!(art.latents.len(), decoded.len(), "{name}");
        for ((key, t), d) in art.latents.iter().zip(decoded) {
            assert_eq!(key, d["key"].as_str().unwrap());
            assert_eq!(t.dtype().name(), d["dtype"].as_str().unwrap());
            let shape: Vec<u64> = d["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape(), shape);
            assert_eq!(
                format::sha256_hex(t.data()),
                d["sha256"].as_str().unwrap(),
                "{name}/{key}"
            );
            let first: Vec<f64> = match t.dtype() {
                DType::F32 => t.data()[..16]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                _ => t.data()[..8]
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f64())
                    .collect(),
            };
            let want: Vec<f64> = d["first4"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(first, want, "{name}/{key}");
        }
        match exp["image_sha256"].as_str() {
            Some(sha) => assert_eq!(format::sha256_hex(art.image.as_deref().unwrap()), sha),
            None => assert!(art.image.is_none()),
        }
        let env = art.environment.expect("the reference always writes ENVC");
        assert_eq!(env["components"].as_array().unwrap().len(), 5);
        let meta = art.manifest.metadata();
        assert_eq!(meta["model_name"], "TestModel");
        assert_eq!(meta["model_version"], "1.0");
        assert_eq!(meta["prompt"], exp["params"]["prompt"]);
    }
}

/// Re-encoding a reference file with the same contents reproduces its LATN
/// and ENVC chunks byte for byte (same zstd frames, same zfp streams, same
/// JSON text), and its manifest up to offsets, the image frame's size and
/// the file size, which the reference records a few bytes short.
#[test]
fn rewrites_reference_files_byte_for_byte() {
    for (name, codec) in [
        ("v1_f32_zfp_png.raiiaf", Codec::Zfp),
        ("v2_f16_raw_png.raiiaf", Codec::Raw),
        ("v3_two_latents_f32_raw_noimg.raiiaf", Codec::Raw),
        ("v4_two_latents_f32_zfp_png_unicode.raiiaf", Codec::Zfp),
    ] {
        let original = std::fs::read(vectors().join("reference-1.1.0").join(name)).unwrap();
        let archive = Archive::parse(&original, ReadOptions::default()).unwrap();
        let art = archive.read_all().unwrap();
        let image_extra = art
            .manifest
            .chunks()
            .iter()
            .find(|r| r.kind == "DATA")
            .map(|r| r.extra.clone())
            .unwrap_or_default();
        let contents = Contents {
            latents: art.latents.iter().map(|(n, t)| (n.clone(), t.as_ref())).collect(),
            image: art.image.as_deref(),
            image_extra,
            metadata: art.manifest.metadata(),
            environment: art.environment.clone(),
        };
        let ours = format::encode(&contents, codec).unwrap();
        let mine = Archive::parse(&ours, ReadOptions::default()).unwrap();
        for (theirs, rec) in archive.manifest().chunks().iter().zip(mine.manifest().chunks()) {
            let span = |r: &format::ChunkRecord| r.offset as usize..(r.offset + r.compressed_size) as usize;
            if rec.kind == "DATA" {
                // The image goes into a zstd frame of stored blocks rather
                // than a level-3 frame: same payload, no compression attempt.
                assert_eq!(rec.hash, theirs.hash);
                assert_eq!(rec.extra, theirs.extra);
            } else {
                assert_eq!(
                    &ours[span(rec)],
                    &original[span(theirs)],
                    "{name}: {} differs",
                    rec.label()
                );
            }
        }
        assert_eq!(
            mine.header().version_minor,
            0,
            "{name}: a plain file must say format 1.0"
        );
        let strip = |mut v: Value| {
            v["raiiaf_metadata"]["file_info"]["file_size"] = Value::Null;
            for c in v["raiiaf_metadata"]["chunks"].as_array_mut().unwrap() {
                c["offset"] = Value::Null;
                if c["type"] == "DATA" {
                    c["compressed_size"] = Value::Null;
                }
            }
            v
        };
        assert_eq!(
            strip(mine.manifest().json().clone()),
            strip(archive.manifest().json().clone()),
            "{name}"
        );
        // Unlike the reference, the stored size is the real one.
        assert_eq!(
            mine.manifest().json()["raiiaf_metadata"]["file_info"]["file_size"],
            ours.len()
        );
    }
}

#[test]
fn reads_legacy_gen5_files() {
    for (name, dtype) in [
        ("gen5_f16_zstd_png.gen5", DType::F16),
        ("gen5_f32_raw_png.gen5", DType::F32),
    ] {
        let bytes = std::fs::read(vectors().join("gen5-0.1.0").join(name)).unwrap();
        let archive = Archive::parse(&bytes, ReadOptions::default()).unwrap();
        assert_eq!(archive.flavor(), format::Flavor::Gen5);
        let art = archive.read_all().unwrap();
        assert_eq!(art.latents.len(), 1);
        let (key, t) = &art.latents[0];
        assert_eq!(key, "initial_noise");
        assert_eq!((t.dtype(), t.shape()), (dtype, &[1u64, 4, 8, 8][..]));
        assert_eq!(art.image.as_ref().map(Vec::len), Some(86));
        assert_eq!(art.manifest.metadata()["prompt"], "p");
    }
    // The f16 file holds the f32 file's values rounded to half precision.
    let read = |n: &str| {
        let b = std::fs::read(vectors().join("gen5-0.1.0").join(n)).unwrap();
        Archive::parse(&b, ReadOptions::default())
            .unwrap()
            .read_all()
            .unwrap()
            .latents[0]
            .1
            .clone()
    };
    let (f16, f32) = (read("gen5_f16_zstd_png.gen5"), read("gen5_f32_raw_png.gen5"));
    for (h, f) in f16.data().chunks_exact(2).zip(f32.data().chunks_exact(4)) {
        let f = f32::from_le_bytes(f.try_into().unwrap());
        assert_eq!(
            half::f16::from_le_bytes(h.try_into().unwrap()),
            half::f16::from_f32(f)
        );
    }
}
