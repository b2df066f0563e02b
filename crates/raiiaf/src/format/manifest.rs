//! The manifest: the JSON document in the META chunk that indexes every
//! other chunk. Parsing is strict about everything needed to locate and
//! decode payloads, and lenient about descriptive metadata.

use serde_json::{Map, Value};

use super::header::Flavor;
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

    fn parse(v: &Value, position: usize) -> Result<ChunkRecord> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::manifest(format!("chunks[{position}] is not an object")))?;
        let field = |k: &str| {
            obj.get(k)
                .ok_or_else(|| Error::manifest(format!("chunks[{position}] has no {k:?}")))
        };
        let uint = |k: &str| -> Result<u64> {
            field(k)?.as_u64().ok_or_else(|| {
                Error::manifest(format!("chunks[{position}].{k} is not a non-negative integer"))
            })
        };
        let string = |k: &str| -> Result<String> {
            field(k)?
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::manifest(format!("chunks[{position}].{k} is not a string")))
        };
        let opt_uint = |k: &str| -> Result<Option<u64>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x.as_u64().map(Some).ok_or_else(|| {
                    Error::manifest(format!("chunks[{position}].{k} is not a non-negative integer"))
                }),
            }
        };
        let hash = string("hash")?.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::manifest(format!(
                "chunks[{position}].hash is not a 64-digit hex SHA-256"
            )));
        }
        let extra = match obj.get("extra") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(Error::manifest(format!(
                    "chunks[{position}].extra is not an object"
                )))
            }
        };
        let codec = match obj.get("codec") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(Error::manifest(format!(
                    "chunks[{position}].codec is not a string"
                )))
            }
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
            compressed: field("compressed")?
                .as_bool()
                .ok_or_else(|| Error::manifest(format!("chunks[{position}].compressed is not a boolean")))?,
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

/// A parsed manifest: the whole JSON document plus its typed chunk records.
#[derive(Debug, Clone)]
pub struct Manifest {
    // Private: the records are parsed from `json` and must stay in step.
    json: Value,
    chunks: Vec<ChunkRecord>,
    root_key: &'static str,
}

impl Manifest {
    /// Parses and checks the manifest JSON of a file of `flavor`.
    pub fn parse(text: &[u8], flavor: Flavor) -> Result<Manifest> {
        let text = std::str::from_utf8(text)
            .map_err(|e| Error::manifest(format!("the manifest is not UTF-8 ({e})")))?;
        // serde_json refuses nesting deeper than 128 levels, so hostile
        // documents cannot exhaust the stack.
        let json: Value = serde_json::from_str(text)
            .map_err(|e| Error::manifest(format!("the manifest is not valid JSON ({e})")))?;
        let root_key = flavor.manifest_root();
        let root = json
            .get(root_key)
            .and_then(Value::as_object)
            .ok_or_else(|| Error::manifest(format!("no {root_key:?} object at the top level")))?;
        let chunks = root
            .get("chunks")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::manifest(format!("{root_key}.chunks is missing or not a list")))?
            .iter()
            .enumerate()
            .map(|(i, v)| ChunkRecord::parse(v, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Manifest {
            json,
            chunks,
            root_key,
        })
    }

    /// The whole JSON document.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The chunk records, in the manifest's order.
    pub fn chunks(&self) -> &[ChunkRecord] {
        &self.chunks
    }

    fn root(&self) -> Option<&Map<String, Value>> {
        self.json.get(self.root_key).and_then(Value::as_object)
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
