//! The manifest: the JSON document in the META chunk that indexes every
//! other chunk. Parsing is strict about everything needed to locate and
//! decode payloads, and lenient about descriptive metadata.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::header::Flavor;
use super::{json, pyjson};
use crate::error::{Error, Result};
use crate::tensor::{self, DType};

/// Chunk type tags.
pub const LATN: &str = "LATN";
/// The image chunk's type tag.
pub const DATA: &str = "DATA";
/// The environment chunk's type tag.
pub const ENVC: &str = "ENVC";

/// One entry of the manifest's `chunks` array.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    /// Position in the file, from 0.
    pub index: u64,
    /// The chunk type (`LATN`, `DATA`, `ENVC`).
    pub kind: String,
    /// The inner header's flags without trailing NULs (a latent's dtype).
    pub flags: String,
    /// Where the chunk starts in the file.
    pub offset: u64,
    /// The chunk's length in the file, inner header included.
    pub compressed_size: u64,
    /// The payload's length once decoded.
    pub uncompressed_size: u64,
    /// Lowercase hex SHA-256 of the uncompressed payload.
    pub hash: String,
    /// The record's `extra` object (a latent's shape, dtype and name).
    pub extra: Map<String, Value>,
    /// Whether the payload is compressed.
    pub compressed: bool,
    /// The codec's header length (FORMAT.md §3.3); absent in gen5 files.
    pub len_header: Option<u64>,
    /// The codec's data length (FORMAT.md §3.3); absent in gen5 files.
    pub len_data: Option<u64>,
    /// The tensor codec's name, when not implied by `compressed`.
    pub codec: Option<String>,
}

impl ChunkRecord {
    /// How error messages name this chunk: `LATN 'initial_noise' (#0)`.
    pub fn label(&self) -> String {
        match self.extra.get("key").and_then(Value::as_str) {
            Some(name) => format!("{} {name:?} (#{})", self.kind, self.index),
            None => format!("{} (#{})", self.kind, self.index),
        }
    }

    /// End offset, checked for overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.compressed_size)
    }

    /// The latent's name (`extra.key`), or `latent_<index>` for unnamed ones.
    pub fn latent_name(&self) -> String {
        self.extra
            .get("key")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("latent_{}", self.index))
    }

    /// Stored shape (`extra.shape`).
    pub fn shape(&self) -> Result<Vec<u64>> {
        let shape = self
            .extra
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::corrupt(self.label(), "the record has no extra.shape list"))?;
        shape
            .iter()
            .map(|d| {
                d.as_u64().ok_or_else(|| {
                    Error::corrupt(
                        self.label(),
                        format!("shape entry {d} is not a non-negative integer"),
                    )
                })
            })
            .collect()
    }

    /// Stored dtype: the manifest's `flags` (what the reference decoder
    /// trusts, via the inner header) must agree with `extra.dtype`.
    pub fn dtype(&self) -> Result<DType> {
        let from_flags = DType::from_flags(self.flags.as_bytes())
            .ok_or_else(|| Error::corrupt(self.label(), format!("unknown latent flags {:?}", self.flags)))?;
        if let Some(name) = self.extra.get("dtype").and_then(Value::as_str) {
            let named = DType::from_name(name).map_err(|e| Error::corrupt(self.label(), e.to_string()))?;
            if named != from_flags {
                return Err(Error::corrupt(
                    self.label(),
                    format!("flags say {from_flags} but extra.dtype says {named}"),
                ));
            }
        }
        Ok(from_flags)
    }

    /// Checks that shape, dtype and `uncompressed_size` agree, and that the
    /// size is one the chunk's bytes can justify (no decompression bombs).
    pub fn check_latent_size(&self) -> Result<(Vec<u64>, DType)> {
        let shape = self.shape()?;
        let dtype = self.dtype()?;
        let size =
            tensor::byte_size(&shape, dtype).map_err(|e| Error::corrupt(self.label(), e.to_string()))?;
        if size != self.uncompressed_size {
            return Err(Error::corrupt(
                self.label(),
                format!(
                    "shape {shape:?} of {dtype} is {size} bytes but uncompressed_size says {}",
                    self.uncompressed_size
                ),
            ));
        }
        let limit = super::inflate_limit(self.compressed_size);
        if size > limit {
            return Err(Error::LimitExceeded {
                what: format!("chunk {}", self.label()),
                declared: size,
                limit,
            });
        }
        Ok((shape, dtype))
    }

    /// The record at `span` of a manifest [`json::validate`] accepted.
    fn parse(
        text: &str,
        outline: &json::Outline,
        span: Range<usize>,
        position: usize,
    ) -> Result<ChunkRecord> {
        let obj = Fields::of(text, outline, span)
            .ok_or_else(|| Error::manifest(format!("chunks[{position}] is not an object")))?;
        let field = |k: &str| {
            obj.get(k)
                .ok_or_else(|| Error::manifest(format!("chunks[{position}] has no {k:?}")))
        };
        let uint = |k: &str| -> Result<u64> {
            json::u64_value(text, field(k)?).ok_or_else(|| {
                Error::manifest(format!("chunks[{position}].{k} is not a non-negative integer"))
            })
        };
        let string = |k: &str| -> Result<String> {
            json::string_value(text, field(k)?)
                .map(Cow::into_owned)
                .ok_or_else(|| Error::manifest(format!("chunks[{position}].{k} is not a string")))
        };
        // Absent or null: None.
        let present = |k: &str| obj.get(k).filter(|s| &text[s.clone()] != "null");
        let opt_uint = |k: &str| -> Result<Option<u64>> {
            present(k)
                .map(|s| {
                    json::u64_value(text, s).ok_or_else(|| {
                        Error::manifest(format!("chunks[{position}].{k} is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        let hash = string("hash")?.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::manifest(format!(
                "chunks[{position}].hash is not a 64-digit hex SHA-256"
            )));
        }
        let extra = match present("extra").map(|s| json::parse_value(text, s)) {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(Error::manifest(format!(
                    "chunks[{position}].extra is not an object"
                )))
            }
        };
        let codec = match present("codec") {
            None => None,
            Some(s) => Some(
                json::string_value(text, s)
                    .map(Cow::into_owned)
                    .ok_or_else(|| Error::manifest(format!("chunks[{position}].codec is not a string")))?,
            ),
        };
        Ok(ChunkRecord {
            index: opt_uint("index")?.unwrap_or(position as u64),
            kind: string("type")?,
            flags: string("flags")?,
            offset: uint("offset")?,
            compressed_size: uint("compressed_size")?,
            uncompressed_size: uint("uncompressed_size")?,
            hash,
            extra,
            compressed: match &text[field("compressed")?] {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(Error::manifest(format!(
                        "chunks[{position}].compressed is not a boolean"
                    )))
                }
            },
            len_header: opt_uint("len_header")?,
            len_data: opt_uint("len_data")?,
            codec,
        })
    }

    /// The JSON object for this record, keys in the reference's order
    /// (`codec` is appended only when set: format 1.1).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("index".into(), self.index.into());
        m.insert("type".into(), self.kind.clone().into());
        m.insert("flags".into(), self.flags.clone().into());
        m.insert("offset".into(), self.offset.into());
        m.insert("compressed_size".into(), self.compressed_size.into());
        m.insert("uncompressed_size".into(), self.uncompressed_size.into());
        m.insert("hash".into(), self.hash.clone().into());
        m.insert("extra".into(), Value::Object(self.extra.clone()));
        m.insert("compressed".into(), self.compressed.into());
        m.insert(
            "len_header".into(),
            self.len_header.map_or(Value::Null, Value::from),
        );
        m.insert("len_data".into(), self.len_data.map_or(Value::Null, Value::from));
        if let Some(codec) = &self.codec {
            m.insert("codec".into(), codec.clone().into());
        }
        Value::Object(m)
    }
}

/// A parsed manifest: the JSON text, validated whole, plus its typed chunk records. The
/// document as a `Value` tree is built only when asked for ([`Manifest::json`]): the catalog
/// reads thousands of manifests and needs a few fields of each ([`Manifest::pick`]), which it
/// gets from the validated text ([`json`]) without building the rest.
#[derive(Debug, Clone)]
pub struct Manifest {
    // Private: the records and spans are read from `text` and must stay in step.
    text: String,
    json: OnceLock<Value>,
    chunks: Vec<ChunkRecord>,
    root_key: &'static str,
    /// Where the outer containers of `text` end.
    outline: json::Outline,
    /// Where `model_info` and `metadata` are in `text` (the last of repeated keys).
    model_info: Option<Range<usize>>,
    metadata: Option<Range<usize>>,
}

impl Manifest {
    /// Parses and checks the manifest JSON of a file of `flavor`.
    pub fn parse(text: &[u8], flavor: Flavor) -> Result<Manifest> {
        Manifest::parse_owned(text.to_vec(), flavor)
    }

    /// [`Manifest::parse`] of text already owned (the decoded META chunk), without a copy.
    pub fn parse_owned(text: Vec<u8>, flavor: Flavor) -> Result<Manifest> {
        let text = String::from_utf8(text)
            .map_err(|e| Error::manifest(format!("the manifest is not UTF-8 ({})", e.utf8_error())))?;
        let root_key = flavor.manifest_root();
        // The whole document is checked (so the text is valid JSON exactly when a `Value`
        // could be built from it, numbers in range included; nesting is limited to 127
        // levels, so hostile documents cannot exhaust the stack), then only what is needed is
        // parsed.
        let (text, outline) = match json::validate(&text) {
            Some(outline) => (text, outline),
            None => valid_or_reason(text)?,
        };
        let mut root = None;
        for (k, span) in json::members(&text, &outline, 0..text.len())
            .into_iter()
            .flatten()
        {
            if k == root_key {
                root = Some(span);
            }
        }
        let no_root = || Error::manifest(format!("no {root_key:?} object at the top level"));
        let root = json::members(&text, &outline, root.ok_or_else(no_root)?).ok_or_else(no_root)?;
        let (mut chunks, mut model_info, mut metadata) = (None, None, None);
        for (k, span) in root {
            match k.as_ref() {
                "chunks" => chunks = Some(span),
                "model_info" => model_info = Some(span),
                "metadata" => metadata = Some(span),
                _ => {}
            }
        }
        let chunks = chunks
            .and_then(|span| json::elements(&text, &outline, span))
            .ok_or_else(|| Error::manifest(format!("{root_key}.chunks is missing or not a list")))?
            .enumerate()
            .map(|(i, span)| ChunkRecord::parse(&text, &outline, span, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Manifest {
            text,
            outline,
            json: OnceLock::new(),
            chunks,
            root_key,
            model_info,
            metadata,
        })
    }

    /// The whole JSON document (parsed on the first call).
    pub fn json(&self) -> &Value {
        // The text was validated in `parse_owned`: this parse cannot fail.
        self.json
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    /// The manifest's JSON text, as stored (a lone surrogate escape replaced, §7.3).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The keys `info_keys` of `model_info` and `meta_keys` of the free-form `metadata`, each
    /// as the `Value` [`Manifest::json`] holds there (the last of repeated keys, as there);
    /// every other value is skipped without building it. A section that is absent or not an
    /// object gives an empty map.
    pub fn pick(&self, info_keys: &[&str], meta_keys: &[&str]) -> (Map<String, Value>, Map<String, Value>) {
        let section = |span: &Option<Range<usize>>, keys: &[&str]| -> Map<String, Value> {
            let mut out = Map::new();
            let Some(members) = span
                .clone()
                .and_then(|s| json::members(&self.text, &self.outline, s))
            else {
                return out;
            };
            for (k, span) in members {
                if keys.contains(&k.as_ref()) {
                    out.insert(k.into_owned(), json::parse_value(&self.text, span));
                }
            }
            out
        };
        (
            section(&self.model_info, info_keys),
            section(&self.metadata, meta_keys),
        )
    }

    /// The chunk records, in the manifest's order.
    pub fn chunks(&self) -> &[ChunkRecord] {
        &self.chunks
    }

    fn root(&self) -> Option<&Map<String, Value>> {
        self.json().get(self.root_key).and_then(Value::as_object)
    }

    /// `model_info` (model name, prompt, generation settings…), if present.
    pub fn model_info(&self) -> Option<&Map<String, Value>> {
        self.root()?.get("model_info")?.as_object()
    }

    /// The format-1.1 free-form `metadata` object, if present.
    pub fn extra_metadata(&self) -> Option<&Map<String, Value>> {
        self.root()?.get("metadata")?.as_object()
    }

    /// The metadata as the APIs present it: `model_info`'s fields (with
    /// `version` named `model_version`) followed by the free-form keys.
    pub fn metadata(&self) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(info) = self.model_info() {
            for (k, v) in info {
                let key = if k == "version" {
                    "model_version"
                } else {
                    k.as_str()
                };
                out.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(extra) = self.extra_metadata() {
            for (k, v) in extra {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

/// A manifest `json::validate` refused: the same text with lone surrogate escapes read as
/// U+FFFD (Python writes one for a lone surrogate in a prompt, and reads it back: §7.3) when
/// that makes it valid, else serde_json's account of what is wrong.
#[cold]
fn valid_or_reason(text: String) -> Result<(String, json::Outline)> {
    if let Cow::Owned(replaced) = pyjson::replace_lone_surrogates(&text) {
        if let Some(outline) = json::validate(&replaced) {
            return Ok((replaced, outline));
        }
    }
    match serde_json::from_str::<IgnoredAny>(&text).and_then(|_| serde_json::from_str::<Value>(&text)) {
        Err(e) => Err(Error::manifest(format!("the manifest is not valid JSON ({e})"))),
        // The validator is checked against serde_json by the fuzzer; were they ever to
        // disagree, serde_json's reading stands.
        Ok(_) => {
            debug_assert!(false, "json::validate refused what serde_json reads");
            Ok((text, json::Outline::default()))
        }
    }
}

/// An object's members by key (the last of repeated keys), as spans.
struct Fields<'a>(Vec<(Cow<'a, str>, Range<usize>)>);

impl<'a> Fields<'a> {
    fn of(text: &'a str, outline: &'a json::Outline, span: Range<usize>) -> Option<Fields<'a>> {
        json::members(text, outline, span).map(|m| Fields(m.collect()))
    }

    fn get(&self, key: &str) -> Option<Range<usize>> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(root: &str) -> Vec<u8> {
        format!(r#"{{"raiiaf_metadata": {root}}}"#).into_bytes()
    }

    #[test]
    fn pick_keeps_what_json_holds_for_the_keys_asked() {
        let text = doc(
            r#"{"chunks": [], "model_info": {"prompt": "a", "x": {"deep": [1, 2]}, "prompt": "b"},
                "metadata": {"seed": 18446744073709551615, "graph": {"1": {"inputs": {}}},
                             "cfg": 7.5, "host": {"app": "ComfyUI"}}}"#,
        );
        let m = Manifest::parse_owned(text, Flavor::Raiiaf).unwrap();
        let (info, meta) = m.pick(&["prompt", "date"], &["seed", "cfg", "host"]);
        // The last of repeated keys, as in the Value tree; unlisted keys are not there.
        assert_eq!(Value::Object(info), serde_json::json!({"prompt": "b"}));
        let want =
            serde_json::json!({"seed": 18446744073709551615u64, "cfg": 7.5, "host": {"app": "ComfyUI"}});
        assert_eq!(Value::Object(meta.clone()), want);
        // The same from the tree, once it has been built.
        assert_eq!(m.json()["raiiaf_metadata"]["model_info"]["prompt"], "b");
        assert_eq!(Value::Object(m.pick(&[], &["seed", "cfg", "host"]).1), want);
    }

    #[test]
    fn sections_that_are_not_objects_pick_nothing() {
        let m = Manifest::parse_owned(
            doc(r#"{"chunks": [], "model_info": [1], "metadata": "x"}"#),
            Flavor::Raiiaf,
        )
        .unwrap();
        let (info, meta) = m.pick(&["prompt"], &["seed"]);
        assert!(info.is_empty() && meta.is_empty());
    }

    #[test]
    fn skipped_values_are_validated_like_a_value_tree() {
        // Out of range or malformed anywhere, even where nothing is kept: refused, as a
        // `Value` parse refuses it.
        for bad in [
            r#"{"chunks": [], "metadata": {"x": 1e400}}"#,
            r#"{"chunks": [], "metadata": {"x": [1, 2,]}}"#,
            r#"{"chunks": []} trailing"#,
        ] {
            assert!(serde_json::from_slice::<Value>(&doc(bad)).is_err(), "{bad}");
            let err = Manifest::parse_owned(doc(bad), Flavor::Raiiaf).unwrap_err();
            assert!(err.to_string().contains("not valid JSON"), "{bad}: {err}");
        }
        // A lone surrogate escape is the one thing read where a `Value` parse refuses it: as
        // U+FFFD (§7.3), in the kept keys and the whole tree alike.
        let lone = doc(r#"{"chunks": [], "metadata": {"x": "\ud800 lone", "seed": "\udc00"}}"#);
        assert!(serde_json::from_slice::<Value>(&lone).is_err());
        let m = Manifest::parse_owned(lone, Flavor::Raiiaf).unwrap();
        assert_eq!(m.pick(&[], &["seed"]).1["seed"], "\u{fffd}");
        assert_eq!(m.json()["raiiaf_metadata"]["metadata"]["x"], "\u{fffd} lone");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let err = Manifest::parse_owned(doc(&format!(r#"{{"chunks": [], "x": {deep}}}"#)), Flavor::Raiiaf)
            .unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }

    #[test]
    fn missing_root_or_chunks_are_reported_as_before() {
        for (text, want) in [
            (br#"[1]"#.to_vec(), "no \"raiiaf_metadata\" object"),
            (
                br#"{"raiiaf_metadata": 3}"#.to_vec(),
                "no \"raiiaf_metadata\" object",
            ),
            (
                br#"{"raiiaf_metadata": {"chunks": {}}}"#.to_vec(),
                "chunks is missing or not a list",
            ),
            (
                br#"{"raiiaf_metadata": {}}"#.to_vec(),
                "chunks is missing or not a list",
            ),
            // The last of two roots counts, as in the Value tree.
            (
                br#"{"raiiaf_metadata": {"chunks": []}, "raiiaf_metadata": 1}"#.to_vec(),
                "no \"raiiaf_metadata\" object",
            ),
        ] {
            let err = Manifest::parse_owned(text, Flavor::Raiiaf).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
