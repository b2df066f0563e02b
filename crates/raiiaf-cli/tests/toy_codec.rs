//! A new codec is one type implementing `TensorCodec` plus one registration:
//! this file adds a toy codec (the element bytes XOR 0x5A) and round-trips a
//! file through it, without touching anything else. The registry's lists
//! (CLI help, FORMAT.md's table) are checked here too.

use std::borrow::Cow;

use raiiaf::format::codecs::{self, DecodeInput, EncodedLatent, TensorCodec};
use raiiaf::format::{self, Archive, Codec, Contents, ReadOptions};
use raiiaf::{DType, Error, Result, TensorRef};

struct Xor;

impl TensorCodec for Xor {
    fn name(&self) -> &'static str {
        "toy-xor"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["toy"]
    }
    fn summary(&self) -> &'static str {
        "every byte XOR 0x5A (a test)"
    }
    fn encode<'a>(&self, _: &str, t: &TensorRef<'a>) -> Result<EncodedLatent<'a>> {
        let body: Vec<u8> = t.data().iter().map(|b| b ^ 0x5a).collect();
        Ok(EncodedLatent {
            parts: vec![
                Cow::Owned(codecs::latn_header(t.dtype(), body.len())?.to_vec()),
                Cow::Owned(body),
            ],
            compressed: true,
            len_header: 12,
            hash: format::sha256_hex(t.data()),
        })
    }
    fn decode(&self, input: &DecodeInput<'_>, out: &mut [u8]) -> Result<Option<String>> {
        let (_, body) = codecs::split_latn(input)?;
        if body.len() != out.len() {
            return Err(Error::InvalidArgument("toy payload has the wrong size".into()));
        }
        for (o, b) in out.iter_mut().zip(body) {
            *o = b ^ 0x5a;
        }
        Ok(None)
    }
}

fn contents(data: &[u8]) -> Contents<'_> {
    Contents {
        latents: vec![(
            "initial_noise".into(),
            TensorRef::new(DType::F16, vec![2, 3, 4], data).unwrap(),
        )],
        image: Some(b"not a png"),
        ..Contents::default()
    }
}

#[test]
fn a_toy_codec_in_one_file() {
    let data: Vec<u8> = (0..48u8).collect();
    // Unknown before registration: on write, and on read of a file naming it.
    assert!(Codec::from_name("toy").is_err());
    codecs::register(&Xor).unwrap();
    assert!(matches!(codecs::register(&Xor), Err(Error::InvalidArgument(_))));
    let codec = Codec::from_name("toy").unwrap();
    assert_eq!(codec, Codec::from_name("toy-xor").unwrap());
    assert_eq!((codec.name(), codec.file_name()), ("toy", "toy-xor"));
    let file = format::encode(&contents(&data), codec).unwrap();
    let archive = Archive::parse(&file, ReadOptions::default()).unwrap();
    let rec = archive.latent_record("initial_noise").unwrap();
    assert_eq!(rec.codec.as_deref(), Some("toy-xor")); // the file says its name
    assert_eq!(archive.header().version_minor, 1); // not a 1.0 codec
    let art = archive.read_all().unwrap();
    assert_eq!(art.latents[0].1.data(), data);
    assert_eq!(art.image.as_deref(), Some(&b"not a png"[..]));
    // Listed with the others.
    assert!(codecs::all().iter().any(|c| c.name() == "toy-xor"));
    assert!(raiiaf_cli::codec_help().contains("toy or toy-xor"));
}

#[test]
fn builtin_codecs_and_their_names() {
    let names: Vec<_> = codecs::BUILTIN.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["raw", "shuffle-zstd", "zfp"]);
    let api: Vec<_> = codecs::BUILTIN.iter().map(|c| c.api_name()).collect();
    assert_eq!(api, ["raw", "compact", "zfp"]);
    assert_eq!(Codec::from_name("compact").unwrap(), Codec::Compact);
    assert_eq!(Codec::from_name("shuffle-zstd").unwrap(), Codec::Compact);
    assert_eq!(Codec::default(), Codec::Raw);
    let err = Codec::from_name("lz4").unwrap_err().to_string();
    assert!(err.contains("\"raw\", \"compact\", \"zfp\""), "{err}");
    let help = raiiaf_cli::codec_help();
    for c in codecs::BUILTIN {
        assert!(help.contains(c.name()) && help.contains(c.summary()), "{help}");
    }
}

#[test]
fn format_md_lists_every_builtin_codec() {
    // FORMAT.md §3.3's table: the `codec` values a record may hold.
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../FORMAT.md")).unwrap();
    let section = spec
        .split("### 3.3")
        .nth(1)
        .and_then(|s| s.split("### 3.4").next())
        .unwrap();
    let mut in_table: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| `\""))
        .filter_map(|l| l.split('`').nth(1))
        .map(|s| s.trim_matches('"').to_owned())
        .collect();
    in_table.sort();
    in_table.dedup();
    let mut names: Vec<String> = codecs::BUILTIN.iter().map(|c| c.name().to_owned()).collect();
    names.sort();
    assert_eq!(
        in_table, names,
        "FORMAT.md §3.3 and crates/raiiaf/src/format/codecs.rs disagree"
    );
}
