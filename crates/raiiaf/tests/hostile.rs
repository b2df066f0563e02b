//! A `.raiiaf` is untrusted input: every damaged or forged file must give a
//! clear error (never a panic, a crash or an outsized allocation), and no
//! damage to a payload may go unnoticed.

mod support;

use raiiaf::format::{self, envc, inner_header, Archive, Codec, Contents, ReadOptions};
use raiiaf::{DType, Error, TensorRef};
use serde_json::{json, Map, Value};
use support::noise;

/// A small file with two latents, an image and an environment.
fn sample(codec: Codec) -> Vec<u8> {
    let a = noise(2 * 4 * 8 * 8, 1);
    let b = noise(2 * 4 * 8 * 8, 2);
    let image = b"\x89PNG\r\n\x1a\nnot really a png but bytes are bytes".to_vec();
    let mut metadata = Map::new();
    metadata.insert("prompt".into(), "a lighthouse".into());
    metadata.insert("seed".into(), 7.into());
    let contents = Contents {
        latents: vec![
            (
                "initial_noise".into(),
                TensorRef::new(DType::F32, vec![2, 4, 8, 8], &a).unwrap(),
            ),
            (
                "final_latent".into(),
                TensorRef::new(DType::F32, vec![2, 4, 8, 8], &b).unwrap(),
            ),
        ],
        image: Some(&image),
        image_extra: Map::new(),
        metadata,
        environment: Some(envc::document([("python", "name=python;version=3.11.7")])),
    };
    format::encode(&contents, codec).unwrap()
}

fn read(bytes: &[u8]) -> Result<format::Artifact, Error> {
    Archive::parse(bytes, ReadOptions::default())?.read_all()
}

/// Rebuilds the META chunk after `edit` changes the manifest JSON.
fn with_manifest(file: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let archive = Archive::parse(file, ReadOptions::default()).unwrap();
    let mut json = archive.manifest().json().clone();
    edit(&mut json);
    let text = serde_json::to_vec(&json).unwrap();
    let meta = zstd::bulk::compress(
        &[
            &inner_header::build(b"META", b"0000", text.len() as u32)[..],
            &text,
        ]
        .concat(),
        3,
    )
    .unwrap();
    let at = archive.header().meta_offset as usize;
    let mut out = file[..at].to_vec();
    out.extend_from_slice(&meta);
    out[13..17].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    out
}

fn chunk(json: &mut Value, i: usize) -> &mut Value {
    &mut json["raiiaf_metadata"]["chunks"][i]
}

#[test]
fn every_truncation_is_an_error() {
    for codec in [Codec::Raw, Codec::Compact, Codec::Zfp] {
        let file = sample(codec);
        read(&file).unwrap();
        for cut in 0..file.len() {
            assert!(
                read(&file[..cut]).is_err(),
                "{codec:?}: cut at {cut} was accepted"
            );
        }
    }
}

/// Flipping any byte either fails or leaves every payload exactly intact
/// (the manifest's descriptive text may change, the data may not).
#[test]
fn no_flipped_byte_changes_a_payload_silently() {
    for codec in [Codec::Raw, Codec::Compact, Codec::Zfp] {
        let file = sample(codec);
        let good = read(&file).unwrap();
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x41;
            if let Ok(art) = read(&bad) {
                assert_eq!(art.latents, good.latents, "{codec:?}: byte {i}");
                assert_eq!(art.image, good.image, "{codec:?}: byte {i}");
            }
        }
    }
}

#[test]
fn hash_mismatch_names_the_chunk() {
    let file = sample(Codec::Raw);
    let mut bad = file.clone();
    bad[33 + 12 + 5] ^= 1; // inside the first raw latent
    match read(&bad) {
        Err(Error::HashMismatch { chunk, .. }) => assert!(chunk.contains("initial_noise"), "{chunk}"),
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    // The forensic opt-out returns the altered data.
    let art = Archive::parse(
        &bad,
        ReadOptions {
            verify_hashes: false,
            ..ReadOptions::default()
        },
    )
    .unwrap()
    .read_all()
    .unwrap();
    assert_ne!(art.latents[0].1.data(), read(&file).unwrap().latents[0].1.data());
}

#[test]
fn header_forgeries() {
    let file = sample(Codec::Raw);
    let mut f = file.clone();
    f[..6].copy_from_slice(b"RIFF\0\0");
    assert!(matches!(read(&f), Err(Error::BadMagic { .. })));
    let mut f = file.clone();
    f[6] = 2;
    assert!(matches!(
        read(&f),
        Err(Error::UnsupportedVersion { major: 2, .. })
    ));
    let mut f = file.clone();
    f[9..13].copy_from_slice(&u32::MAX.to_le_bytes()); // META offset past the end
    assert!(matches!(read(&f), Err(Error::Truncated { .. })));
    let mut f = file.clone();
    f[13..17].copy_from_slice(&u32::MAX.to_le_bytes()); // META size overflows the file
    assert!(matches!(read(&f), Err(Error::Truncated { .. })));
    let mut f = file.clone();
    f[17..21].copy_from_slice(&9u32.to_le_bytes());
    assert!(matches!(read(&f), Err(Error::Manifest(_))));
}

#[test]
fn manifest_forgeries() {
    let file = sample(Codec::Raw);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "offset beyond the file",
            Box::new(|j| chunk(j, 0)["offset"] = json!(1u64 << 40)),
        ),
        (
            "offset + size overflows u64",
            Box::new(|j| {
                chunk(j, 0)["offset"] = json!(u64::MAX - 3);
            }),
        ),
        ("negative offset", Box::new(|j| chunk(j, 0)["offset"] = json!(-5))),
        (
            "overlap",
            Box::new(|j| {
                let o = chunk(j, 0)["offset"].clone();
                chunk(j, 1)["offset"] = o;
            }),
        ),
        (
            "duplicate names",
            Box::new(|j| chunk(j, 1)["extra"]["key"] = json!("initial_noise")),
        ),
        (
            "shape disagrees with size",
            Box::new(|j| chunk(j, 0)["extra"]["shape"] = json!([2, 4, 8, 9])),
        ),
        (
            "shape overflows",
            Box::new(|j| {
                chunk(j, 0)["extra"]["shape"] = json!([u64::MAX, u64::MAX]);
            }),
        ),
        (
            "rank 9",
            Box::new(|j| chunk(j, 0)["extra"]["shape"] = json!([1, 1, 1, 1, 1, 1, 1, 1, 512])),
        ),
        (
            "flags disagree with dtype",
            Box::new(|j| chunk(j, 0)["flags"] = json!("F16")),
        ),
        ("unknown flags", Box::new(|j| chunk(j, 0)["flags"] = json!("F64"))),
        ("hash not hex", Box::new(|j| chunk(j, 0)["hash"] = json!("zz"))),
        ("unknown codec", Box::new(|j| chunk(j, 0)["codec"] = json!("pco"))),
        (
            "second image",
            Box::new(|j| {
                let img = chunk(j, 2).clone();
                j["raiiaf_metadata"]["chunks"].as_array_mut().unwrap().push(img);
            }),
        ),
        (
            "chunks not a list",
            Box::new(|j| j["raiiaf_metadata"]["chunks"] = json!({})),
        ),
        ("no root", Box::new(|j| *j = json!({"other": 1}))),
        (
            "image declares 64 GiB",
            Box::new(|j| chunk(j, 2)["uncompressed_size"] = json!(64u64 << 30)),
        ),
    ];
    for (what, edit) in cases {
        let f = with_manifest(&file, edit);
        let err = read(&f).expect_err(what);
        assert!(!err.to_string().is_empty(), "{what}");
    }
    // Unknown chunk types are listed but skipped (forward compatibility).
    let f = with_manifest(&file, |j| chunk(j, 3)["type"] = json!("XTRA"));
    let art = read(&f).unwrap();
    assert!(art.environment.is_none());
    assert_eq!(art.latents.len(), 2);
}

#[test]
fn json_bombs_and_garbage() {
    let file = sample(Codec::Raw);
    let at = Archive::parse(&file, ReadOptions::default())
        .unwrap()
        .header()
        .meta_offset as usize;
    let replace_meta = |text: &[u8]| {
        let meta = zstd::bulk::compress(
            &[
                &inner_header::build(b"META", b"0000", text.len() as u32)[..],
                text,
            ]
            .concat(),
            3,
        )
        .unwrap();
        let mut out = file[..at].to_vec();
        out.extend_from_slice(&meta);
        out[13..17].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        out
    };
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    for text in [
        deep.as_bytes(),
        b"{\"raiiaf_metadata\": NaN}".as_slice(),
        b"\xff\xfe not utf-8".as_slice(),
        b"".as_slice(),
    ] {
        assert!(matches!(read(&replace_meta(text)), Err(Error::Manifest(_))));
    }
    // A META frame that claims 1 TiB of content is refused before allocation.
    let mut f = replace_meta(b"{}");
    let frame_at = at;
    // Frame header: magic(4) + descriptor; rewrite as a single-segment frame
    // with an 8-byte content size.
    let forged = [
        &[0x28, 0xb5, 0x2f, 0xfd, 0xe0][..],
        &(1u64 << 40).to_le_bytes(),
        &[0x01, 0x00, 0x00],
    ]
    .concat();
    f.truncate(frame_at);
    f.extend_from_slice(&forged);
    f[13..17].copy_from_slice(&(forged.len() as u32).to_le_bytes());
    assert!(matches!(read(&f), Err(Error::LimitExceeded { .. })));
}

#[test]
fn zfp_header_forged_to_huge_dimensions() {
    // The reference segfaults here: libzfp trusts the stream's dimensions.
    let file = sample(Codec::Zfp);
    let archive = Archive::parse(&file, ReadOptions::default()).unwrap();
    let rec = archive.latent_records().next().unwrap().clone();
    let zfp_at = (rec.offset + rec.len_header.unwrap()) as usize;
    let mut f = file.clone();
    // Header bits 32..84 hold type, rank and dims - 1 (12 bits each):
    // forge 4096 x 4096 x 64 x 1 floats.
    let mut v = u128::from_le_bytes({
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(&f[zfp_at..zfp_at + 12]);
        b
    });
    let meta: u128 = 2 | (3 << 2) | (4095 << 4) | (4095 << 16) | (63 << 28);
    v = (v & !(((1u128 << 52) - 1) << 32)) | (meta << 32);
    f[zfp_at..zfp_at + 12].copy_from_slice(&v.to_le_bytes()[..12]);
    assert!(matches!(read(&f), Err(Error::CorruptChunk { .. })));
}

#[test]
fn compact_plane_bomb_is_refused() {
    // A shuffle-zstd plane whose frame claims far more than the shape needs.
    let file = sample(Codec::Compact);
    let f = with_manifest(&file, |j| {
        chunk(j, 0)["extra"]["shape"] = json!([1u64 << 20, 1u64 << 20]);
        chunk(j, 0)["uncompressed_size"] = json!(4u64 << 40);
    });
    assert!(matches!(read(&f), Err(Error::LimitExceeded { .. })));
}

#[test]
fn json_frames_get_the_tighter_json_limit() {
    // 1.2 MB of `0,` compresses to a few hundred bytes: within the tensor
    // limit (32 768x), far beyond the JSON one (64x, 1 MiB floor). Parsed,
    // such a document took ~55 bytes of memory per byte of text.
    let file = sample(Codec::Raw);
    let at = Archive::parse(&file, ReadOptions::default())
        .unwrap()
        .header()
        .meta_offset as usize;
    let text = [&b"{\"x\":["[..], &b"0,".repeat(600_000), b"0]}"].concat();
    let meta = zstd::bulk::compress(
        &[
            &inner_header::build(b"META", b"0000", text.len() as u32)[..],
            &text,
        ]
        .concat(),
        19,
    )
    .unwrap();
    assert!((text.len() as u64) < format::inflate_limit(meta.len() as u64));
    let mut f = file[..at].to_vec();
    f.extend_from_slice(&meta);
    f[13..17].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    assert!(matches!(read(&f), Err(Error::LimitExceeded { .. })));

    // The writer stores such JSON uncompressed, so what it writes reads back.
    let mut metadata = Map::new();
    metadata.insert("zeros".into(), Value::Array(vec![json!(0); 200_000]));
    let environment = envc::document([("pad", &*"x".repeat(2 << 20))]);
    let contents = Contents {
        latents: vec![],
        image: None,
        image_extra: Map::new(),
        metadata,
        environment: Some(environment.clone()),
    };
    for codec in [Codec::Raw, Codec::Compact] {
        let bytes = format::encode(&contents, codec).unwrap();
        let art = read(&bytes).unwrap();
        assert_eq!(
            art.manifest.metadata()["zeros"].as_array().unwrap().len(),
            200_000
        );
        assert_eq!(art.environment.as_ref(), Some(&environment));
    }
}

#[test]
fn large_compact_tensors_are_verified_while_decoding() {
    // Above shuffle::PARALLEL_MIN_BYTES the hash runs on a second thread,
    // region by region, while the planes decode: it must still catch a
    // changed tensor, and a damaged plane must still be an error.
    let data = noise(3 << 20, 9); // 12 MiB of float32
    let contents = Contents {
        latents: vec![(
            "big".into(),
            TensorRef::new(DType::F32, vec![3, 1024, 1024], &data).unwrap(),
        )],
        ..Contents::default()
    };
    let file = format::encode(&contents, Codec::Compact).unwrap();
    let art = read(&file).unwrap();
    assert_eq!(art.latents[0].1.data(), data);
    let forged = with_manifest(&file, |j| {
        chunk(j, 0)["hash"] = json!("0".repeat(64));
    });
    assert!(matches!(read(&forged), Err(Error::HashMismatch { .. })));
    let mut damaged = file.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x55;
    assert!(read(&damaged).is_err());
}
