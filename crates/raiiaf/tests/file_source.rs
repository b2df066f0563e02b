//! Reading from a file (`Archive::open`, chunks read on demand) gives what
//! reading the same bytes from memory (`Archive::parse`) gives: the same
//! tensors, image and environment, and on damaged files the same errors.

mod support;

use std::path::{Path, PathBuf};

use raiiaf::format::{self, envc, Archive, Codec, Contents, ReadOptions};
use raiiaf::{DType, Error, TensorRef};
use serde_json::Map;
use support::noise;

fn data_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(sub)
}

fn files_in(dir: &Path, ext: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| ext.iter().any(|x| e == *x)))
        .collect();
    out.sort();
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Latents (name, bytes), image, environment (JSON text).
type Everything = (Vec<(String, Vec<u8>)>, Option<Vec<u8>>, Option<String>);

/// Everything an archive decodes, or the error's text.
fn read_everything(archive: Result<Archive<'_>, Error>) -> Result<Everything, String> {
    let archive = archive.map_err(|e| e.to_string())?;
    let art = archive.read_all().map_err(|e| e.to_string())?;
    Ok((
        art.latents
            .into_iter()
            .map(|(n, t)| (n, t.data().to_vec()))
            .collect(),
        art.image,
        art.environment.map(|v| v.to_string()),
    ))
}

fn contents<'a>(data: &'a [u8], shape: &[u64], image: &'a [u8]) -> Contents<'a> {
    Contents {
        latents: vec![(
            "initial_noise".into(),
            TensorRef::new(DType::F32, shape.to_vec(), data).unwrap(),
        )],
        image: Some(image),
        image_extra: Map::new(),
        metadata: Map::new(),
        environment: Some(envc::document([("python", "name=python;version=3.11.7")])),
    }
}

#[test]
fn every_codec_reads_the_same_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // Small (one thread) and above the two-thread threshold (4 MiB).
    for shape in [&[1u64, 4, 32, 32][..], &[1, 4, 512, 640]] {
        let n = shape.iter().product::<u64>() as usize;
        let data = noise(n, 9);
        for codec in [Codec::Raw, Codec::Compact, Codec::Zfp] {
            let bytes = format::encode(&contents(&data, shape, &image), codec).unwrap();
            let path = write(dir.path(), "f.raiiaf", &bytes);
            let from_file = read_everything(Archive::open(&path, ReadOptions::default()));
            let from_memory = read_everything(Archive::parse(&bytes, ReadOptions::default()));
            let (latents, img, env) = from_file.clone().unwrap();
            assert_eq!(latents[0].1, data, "{codec:?} {shape:?}");
            assert_eq!(img.as_deref(), Some(&image[..]));
            assert!(env.unwrap().contains("python"));
            assert!(from_file == from_memory, "{codec:?} {shape:?}");
            assert!(format::read_file(&path, ReadOptions::default()).is_ok());
        }
    }
}

#[test]
fn damage_is_found_the_same_way_in_a_file() {
    // One byte flipped anywhere in a compact tensor of 4 MiB (the two-thread path) and in a
    // raw one: a hash mismatch or a corrupt chunk, identical from memory and from the file.
    let dir = tempfile::tempdir().unwrap();
    let shape = [1u64, 4, 512, 512];
    let data = noise(shape.iter().product::<u64>() as usize, 3);
    for codec in [Codec::Raw, Codec::Compact, Codec::Zfp] {
        let good = format::encode(&contents(&data, &shape, b"png"), codec).unwrap();
        let archive = Archive::parse(&good, ReadOptions::default()).unwrap();
        let rec = archive.latent_record("initial_noise").unwrap();
        let (start, end) = (rec.offset as usize, (rec.offset + rec.compressed_size) as usize);
        for at in [start + 3, start + 40, start + 100, (start + end) / 2, end - 4096] {
            let mut bad = good.clone();
            bad[at] ^= 0x24;
            let path = write(dir.path(), "bad.raiiaf", &bad);
            let from_file = read_everything(Archive::open(&path, ReadOptions::default()));
            let from_memory = read_everything(Archive::parse(&bad, ReadOptions::default()));
            // zfp may decode a flipped bit to the same floats (bits of the padding values that
            // fill 3/4 of each block of a batch-1 tensor are decoded, then dropped).
            if codec != Codec::Zfp {
                assert!(from_file.is_err(), "{codec:?} byte {at} was not noticed");
            }
            assert_eq!(from_file, from_memory, "{codec:?} byte {at}");
        }
    }
}

#[test]
fn corpus_files_read_the_same_from_a_file() {
    // The adversarial corpus (hostile files), the reference's vectors and GEN5 files: the same
    // results, error texts included, as from memory.
    let mut paths = files_in(&data_dir("adversarial"), &["raiiaf"]);
    paths.extend(files_in(&data_dir("vectors/reference-1.1.0"), &["raiiaf"]));
    paths.extend(files_in(&data_dir("vectors/gen5-0.1.0"), &["gen5"]));
    assert!(paths.len() >= 45, "{} files", paths.len());
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        for verify_hashes in [true, false] {
            let options = ReadOptions {
                verify_hashes,
                ..ReadOptions::default()
            };
            let from_file = read_everything(Archive::open(&path, options));
            let from_memory = read_everything(Archive::parse(&bytes, options));
            assert_eq!(from_file, from_memory, "{}", path.display());
        }
    }
}

#[test]
fn opening_reads_only_the_header_and_manifest() {
    // A file whose tensor bytes are gone (cut off after opening) still gives its manifest and
    // environment; decoding the tensor then fails as truncated, without a panic.
    // 4 MiB: compact decodes on two threads, and the helper's read fails too.
    let dir = tempfile::tempdir().unwrap();
    let shape = [1u64, 4, 512, 512];
    let data = noise(shape.iter().product::<u64>() as usize, 5);
    for codec in [Codec::Raw, Codec::Compact, Codec::Zfp] {
        let bytes = format::encode(&contents(&data, &shape, b"png"), codec).unwrap();
        let path = write(dir.path(), "cut.raiiaf", &bytes);
        let archive = Archive::open(&path, ReadOptions::default()).unwrap();
        assert_eq!(archive.file_len(), bytes.len() as u64);
        let rec = archive.latent_record("initial_noise").unwrap();
        // Truncate the file in place to the middle of the tensor.
        let cut = rec.offset + rec.compressed_size / 2;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        assert!(archive.manifest().chunks().len() >= 2);
        match archive.tensor("initial_noise") {
            Err(Error::Truncated { what, file_len, .. }) => {
                assert!(what.contains("shrank"), "{what}");
                assert!(file_len <= cut, "{file_len} > {cut}");
            }
            other => panic!("{codec:?}: {other:?}"),
        }
    }
}

#[test]
fn open_reports_a_missing_file_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.raiiaf");
    match Archive::open(&path, ReadOptions::default()) {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}
