//! The absolute bound on what one read may decode (`max_decoded_bytes`),
//! checked before anything is allocated, for every codec.

use raiiaf::format::{self, envc, Archive, Codec, Contents, ReadOptions};
use raiiaf::{DType, Error, TensorRef};
use serde_json::Map;

/// A file holding zero tensors of `shape` (f32) named a, b, plus an environment.
fn zeros_file(codec: Codec, shape: &[u64]) -> (Vec<u8>, u64) {
    let n: u64 = shape.iter().product::<u64>() * 4;
    let data = vec![0u8; n as usize];
    let contents = Contents {
        latents: vec![
            (
                "a".into(),
                TensorRef::new(DType::F32, shape.to_vec(), &data).unwrap(),
            ),
            (
                "b".into(),
                TensorRef::new(DType::F32, shape.to_vec(), &data).unwrap(),
            ),
        ],
        image: None,
        image_extra: Map::new(),
        metadata: Map::new(),
        environment: Some(envc::document([("python", "name=python;version=3.11.7")])),
    };
    (format::encode(&contents, codec).unwrap(), n)
}

fn options(max_decoded_bytes: u64) -> ReadOptions {
    ReadOptions {
        max_decoded_bytes,
        ..ReadOptions::default()
    }
}

#[test]
fn default_is_one_gib() {
    assert_eq!(ReadOptions::default().max_decoded_bytes, 1 << 30);
    assert_eq!(format::DEFAULT_MAX_DECODED_BYTES, 1 << 30);
}

#[test]
fn every_codec_is_bounded_per_chunk_and_per_file() {
    for codec in [Codec::Raw, Codec::Compact, Codec::Zfp] {
        let (file, n) = zeros_file(codec, &[1, 4, 64, 64]);
        // Below one tensor: refused before decoding, naming the chunk.
        let archive = Archive::parse(&file, options(n - 1)).unwrap();
        let rec = archive.latent_record("a").unwrap();
        let mut out = vec![0u8; n as usize];
        match archive.decode_latent_into(rec, &mut out) {
            Err(Error::DecodedSizeLimit {
                what,
                declared,
                limit,
            }) => {
                assert!(what.contains("\"a\""), "{what}");
                assert_eq!((declared, limit), (n, n - 1));
            }
            other => panic!("{codec:?}: {other:?}"),
        }
        assert!(matches!(
            archive.decode_latent(rec),
            Err(Error::DecodedSizeLimit { .. })
        ));
        // One tensor fits, the whole file (two tensors + environment) does not.
        let archive = Archive::parse(&file, options(n + 100)).unwrap();
        archive
            .decode_latent(archive.latent_record("a").unwrap())
            .unwrap();
        for result in [archive.read_all().map(drop), archive.verify_all()] {
            match result {
                Err(Error::DecodedSizeLimit {
                    what,
                    declared,
                    limit,
                }) => {
                    assert!(what.contains("3 chunks"), "{what}");
                    assert!(declared > 2 * n && limit == n + 100);
                }
                other => panic!("{codec:?}: {other:?}"),
            }
        }
        // Raised: everything decodes.
        let archive = Archive::parse(&file, options(4 * n)).unwrap();
        let art = archive.read_all().unwrap();
        assert!(art.latents.iter().all(|(_, t)| t.data().iter().all(|&b| b == 0)));
        let err = Error::DecodedSizeLimit {
            what: "x".into(),
            declared: 2,
            limit: 1,
        }
        .to_string();
        assert!(err.contains("max_decoded_bytes") && err.contains("RAIIAF_MAX_DECODED_BYTES"));
    }
}

#[test]
fn check_decoded_size_counts_what_is_asked() {
    let (file, n) = zeros_file(Codec::Raw, &[1, 4, 8, 8]);
    let archive = Archive::parse(&file, options(n)).unwrap();
    let recs: Vec<_> = archive.latent_records().collect();
    archive
        .check_decoded_size(recs[..1].iter().copied(), true, false)
        .unwrap();
    archive.check_decoded_size([], true, true).unwrap();
    assert!(matches!(
        archive.check_decoded_size(recs.iter().copied(), false, false),
        Err(Error::DecodedSizeLimit { .. })
    ));
}

#[test]
fn byte_sizes_parse() {
    for (text, want) in [
        ("0", 0u64),
        ("1073741824", 1 << 30),
        ("512MiB", 512 << 20),
        ("4G", 4 << 30),
        (" 2 gb ", 2 << 30),
        ("3k", 3 << 10),
        ("1T", 1 << 40),
    ] {
        assert_eq!(format::parse_byte_size(text), Ok(want), "{text}");
    }
    for bad in ["", "G", "-1", "1.5G", "4X", "99999999999999999999", "16777216T"] {
        assert!(format::parse_byte_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn large_zero_tensors_decode_in_place() {
    // 64 MiB of zeros in a few KB: decoded with the limit raised, and the
    // decode needs no second tensor-sized buffer (measured in
    // tests/test_limits.py; here: correctness across many 64 Ki rounds).
    let (file, n) = zeros_file(Codec::Compact, &[1, 16, 1024, 1024]);
    assert!(file.len() < 64 * 1024, "{}", file.len());
    let archive = Archive::parse(&file, options(n)).unwrap();
    let rec = archive.latent_record("b").unwrap();
    let mut out = vec![1u8; n as usize];
    archive.decode_latent_into(rec, &mut out).unwrap();
    assert!(out.iter().all(|&b| b == 0));
}
