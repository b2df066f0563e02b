//! The bodies of the fuzz targets, shared by the libFuzzer crate in `fuzz/`
//! (`#[path]`-included there) and by `tests/fuzz_regressions.rs`, which
//! replays every saved crash input and the adversarial corpus through them.
//! A target may return or fail an `assert!` on a broken invariant; it must
//! never panic otherwise, abort, or allocate more than the format's limits.
#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

use std::sync::OnceLock;

use raiiaf::format::{
    self, envc, inner_header, pyjson, Archive, Codec, Contents, Flavor, Manifest, ReadOptions,
};
use raiiaf::{DType, TensorRef};
use serde_json::{Map, Value};
use support::noise;

/// The decode budget of the targets (ReadOptions::max_decoded_bytes). The 1 GiB default let
/// one hostile 64 KiB input make every run decode up to a gibibyte several times over:
/// 4 executions per second. The budget check is the same code whatever the number (its
/// default is tested in limits.rs); a small one lets the fuzzer reach the rest of the reader
/// millions of times.
pub const MAX_DECODED_BYTES: u64 = 16 << 20;

/// The options every target reads with: hashes verified, the fuzzing decode budget.
pub fn options() -> ReadOptions {
    ReadOptions {
        max_decoded_bytes: MAX_DECODED_BYTES,
        ..ReadOptions::default()
    }
}

/// `read`: the whole reader on arbitrary bytes, with hash verification on
/// and off. A file that reads with verification must read identically
/// without it, and must survive being written again.
pub fn read(data: &[u8]) {
    let verified = Archive::parse(data, options()).and_then(|a| a.read_all());
    let unverified = Archive::parse(
        data,
        ReadOptions {
            verify_hashes: false,
            ..options()
        },
    );
    if let Ok(archive) = &unverified {
        let _ = archive.verify_all();
        let _ = archive.image_size();
        let _ = archive.manifest().metadata();
        for rec in archive.latent_records() {
            let _ = rec.label();
            let _ = archive.decode_latent(rec);
        }
    }
    let unverified = unverified.and_then(|a| a.read_all());
    if let Ok(art) = verified {
        let plain = unverified.expect("a file that reads verified must read unverified");
        assert_eq!(art.latents, plain.latents);
        assert_eq!(art.image, plain.image);
        rewrite_round_trip(&art);
    }
}

/// Writes what was read again (compact codec: every dtype and rank) and
/// reads it back: the payloads must come back bit for bit.
fn rewrite_round_trip(art: &format::Artifact) {
    let latents: Vec<(String, TensorRef<'_>)> = art
        .latents
        .iter()
        .map(|(name, t)| (name.clone(), t.as_ref()))
        .collect();
    let contents = Contents {
        latents,
        image: art.image.as_deref(),
        image_extra: Map::new(),
        metadata: Map::new(),
        environment: None,
    };
    let Ok(bytes) = format::encode(&contents, Codec::Compact) else {
        return; // e.g. an empty latent name the reader tolerates but the writer refuses
    };
    let again = Archive::parse(&bytes, options())
        .and_then(|a| a.read_all())
        .expect("a file this crate wrote must read back");
    assert_eq!(again.latents, art.latents);
    assert_eq!(again.image, art.image);
}

/// `manifest`: the manifest (META JSON) layer. `data[0]` picks one of the
/// sample files below, `data[1..]` is manifest JSON text. The text is
/// parsed as a raiiaf and a GEN5 manifest (every accessor exercised, the
/// Python-style JSON writer must round-trip it), then put into the sample's
/// META chunk in front of the sample's real chunk bytes and read as a file.
pub fn manifest(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    // The manifest's validator accepts exactly what serde_json reads into a Value.
    if let Ok(s) = std::str::from_utf8(text) {
        let serde = serde_json::from_str::<Value>(s).is_ok();
        assert_eq!(
            format::json::validate(s).is_some(),
            serde,
            "json::validate disagrees with serde_json"
        );
    }
    for flavor in [Flavor::Raiiaf, Flavor::Gen5] {
        let Ok(m) = Manifest::parse(text, flavor) else {
            continue;
        };
        check_pick(&m, flavor);
        let _ = m.metadata();
        let _ = m.model_info();
        for rec in m.chunks() {
            let _ = rec.label();
            let _ = rec.end();
            let _ = rec.latent_name();
            let _ = raiiaf::format::codecs::for_record(rec, flavor);
            let _ = rec.check_latent_size();
            let _ = rec.to_json();
        }
        for out in [
            pyjson::to_string_indent2(m.json()),
            pyjson::to_string_compact(m.json()),
        ] {
            let back: Value = serde_json::from_str(&out).expect("the JSON writer's output parses");
            assert_eq!(&back, m.json(), "the JSON writer changed the document");
        }
    }
    let sample = &samples()[pick as usize % 3];
    let file = with_meta(sample, text);
    read(&file);
}

/// `Manifest::pick`, read from the text's spans, gives what the `Value` tree holds: every key
/// of `model_info` and `metadata` asked for (and one that is not there).
fn check_pick(m: &Manifest, flavor: Flavor) {
    let root = m.json().get(flavor.manifest_root());
    let section = |name: &str| -> Map<String, Value> {
        root.and_then(|r| r.get(name))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (info, meta) = (section("model_info"), section("metadata"));
    let keys = |m: &Map<String, Value>| -> Vec<String> {
        m.keys().cloned().chain(["\u{0}absent".to_owned()]).collect()
    };
    let (info_keys, meta_keys) = (keys(&info), keys(&meta));
    fn as_str(k: &[String]) -> Vec<&str> {
        k.iter().map(String::as_str).collect()
    }
    let (picked_info, picked_meta) = m.pick(&as_str(&info_keys), &as_str(&meta_keys));
    assert_eq!(picked_info, info, "pick(model_info) differs from the tree");
    assert_eq!(picked_meta, meta, "pick(metadata) differs from the tree");
}

/// `sample[..meta_offset]` + a META chunk holding `json` (header patched).
/// The header's chunk count is taken from the JSON when it parses.
pub fn with_meta(sample: &[u8], json: &[u8]) -> Vec<u8> {
    let Ok(archive) = Archive::parse(sample, options()) else {
        return sample.to_vec();
    };
    let at = archive.header().meta_offset as usize;
    let count = Manifest::parse(json, Flavor::Raiiaf).map_or(0, |m| m.chunks().len() as u32);
    let Ok(len) = u32::try_from(json.len()) else {
        return sample.to_vec();
    };
    let meta = zstd::bulk::compress(
        &[&inner_header::build(b"META", b"0000", len)[..], json].concat(),
        1,
    )
    .unwrap_or_default();
    let mut out = sample[..at].to_vec();
    out.extend_from_slice(&meta);
    out[13..17].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    out[17..21].copy_from_slice(&count.to_le_bytes());
    out
}

/// Small files, one per codec (raw, compact, zfp), each with two latents,
/// an image and an environment; the compact one adds a float16 and a
/// bfloat16 tensor of other ranks. Built once; deterministic.
pub fn samples() -> &'static [Vec<u8>; 3] {
    static SAMPLES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    SAMPLES.get_or_init(|| [sample(Codec::Raw), sample(Codec::Compact), sample(Codec::Zfp)])
}

fn sample(codec: Codec) -> Vec<u8> {
    let a = noise(64, 1);
    let b = noise(64, 2);
    let half: Vec<u8> = noise(6, 3).chunks(4).flat_map(|c| [c[2], c[3]]).collect();
    let image = b"\x89PNG\r\n\x1a\nnot really a png but bytes are bytes".to_vec();
    let mut metadata = Map::new();
    metadata.insert("prompt".into(), "a lighthouse".into());
    metadata.insert("date".into(), "2026-01-01T00:00:00+00:00".into());
    metadata.insert("seed".into(), 7.into());
    metadata.insert("cfg".into(), 7.5.into());
    let mut latents = vec![
        (
            "initial_noise".to_string(),
            TensorRef::new(DType::F32, vec![1, 4, 4, 4], &a).unwrap(),
        ),
        (
            "final_latent".to_string(),
            TensorRef::new(DType::F32, vec![1, 4, 4, 4], &b).unwrap(),
        ),
    ];
    if codec == Codec::Compact {
        latents.push(("f16".into(), TensorRef::new(DType::F16, vec![6], &half).unwrap()));
        latents.push((
            "bf16".into(),
            TensorRef::new(DType::BF16, vec![3, 2], &half).unwrap(),
        ));
    }
    let contents = Contents {
        latents,
        image: Some(&image),
        image_extra: Map::new(),
        metadata,
        environment: Some(envc::document([("python", "name=python;version=3.11.7")])),
    };
    format::encode(&contents, codec).unwrap()
}

/// Seed inputs for the fuzzers: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, (codec, file)) in ["raw", "compact", "zfp"].iter().zip(samples()).enumerate() {
        out.push(("read", format!("sample-{codec}.raiiaf"), file.clone()));
        let archive = Archive::parse(file, ReadOptions::default()).unwrap();
        let mut json = vec![i as u8];
        json.extend_from_slice(archive.manifest().json().to_string().as_bytes());
        out.push(("manifest", format!("sample-{codec}.json"), json));
    }
    out
}
