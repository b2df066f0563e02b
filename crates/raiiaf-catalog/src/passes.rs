//! The sampler passes of a file, for the catalog's `pass_*` columns: the `passes` metadata key
//! as stored, or, for files written before it, the old-file rules of the pass schema
//! (FORMAT.md "Sampler passes"), exactly as `raiiaf_rs.passes.passes_of` applies them. Both
//! readers are tested against the same cases (`tests/data/passes/*.json`), so a catalog query
//! and a Python loader see the same passes in every file.
//!
//! Only what the columns hold is mapped (role, seed, host, noise, sampler, exact); the full
//! records stay in the file for the loaders.

use serde_json::{Map, Value};

/// One pass, reduced to the catalog's columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PassEntry {
    pub role: Option<String>,
    /// The seed the pass ran with (DECIMAL(20, 0) like `seed`).
    pub seed: Option<i128>,
    /// `source.host`: `comfyui`, `webui`, `diffusers`; `None` for other writers.
    pub host: Option<String>,
    /// Tensor name of the noise the pass added (`None`: stored nowhere).
    pub noise: Option<String>,
    /// `settings.sampler`.
    pub sampler: Option<String>,
    pub exact: bool,
}

/// The metadata as the APIs present it (`Manifest::metadata`: `model_info`'s keys, then the
/// free-form ones over them), looked up without copying either map.
#[derive(Clone, Copy)]
pub struct MetaView<'a> {
    pub info: &'a Map<String, Value>,
    pub meta: &'a Map<String, Value>,
}

impl<'a> MetaView<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.meta.get(key).or_else(|| self.info.get(key))
    }
}

/// The passes of a file in run order, from its metadata and the names of its stored tensors.
/// `None` when a stored `passes` value is malformed (not a list, a record that is not an object
/// or lacks `order`/`role`, a role outside the schema's): the columns are then null and empty,
/// as for any value of the wrong type, never an error for the whole row.
pub fn passes_of(view: MetaView<'_>, tensors: &[&str]) -> Option<Vec<PassEntry>> {
    if let Some(stored) = view.get("passes").filter(|v| !v.is_null()) {
        return stored_passes(stored);
    }
    match view.get("captures").and_then(Value::as_array) {
        Some(captures) if !captures.is_empty() => Some(from_captures(captures, tensors)),
        _ => Some(from_names(view, tensors)),
    }
}

const ROLES: [&str; 6] = ["txt2img", "img2img", "inpaint", "hires", "refiner", "other"];

fn stored_passes(stored: &Value) -> Option<Vec<PassEntry>> {
    let mut out = Vec::new();
    for rec in stored.as_array()? {
        let rec = rec.as_object()?;
        let order = rec.get("order")?.as_u64()?;
        let role = rec.get("role")?.as_str().filter(|r| ROLES.contains(r))?;
        let exact = rec.get("exact").map_or(Some(true), truthy)?;
        let reasons = rec.get("why_not_exact").and_then(Value::as_array);
        if exact && reasons.is_some_and(|r| !r.is_empty()) {
            return None; // the Python reader refuses it: "cannot be exact"
        }
        let source = rec.get("source").and_then(Value::as_object);
        let settings = rec.get("settings").and_then(Value::as_object);
        out.push((
            order,
            PassEntry {
                role: Some(role.to_owned()),
                seed: rec.get("seed").and_then(super::row::as_i128),
                host: string(source.and_then(|s| s.get("host"))),
                noise: string(rec.get("noise")),
                sampler: string(settings.and_then(|s| s.get("sampler"))),
                exact,
            },
        ));
    }
    // Stable, like Python's sorted().
    out.sort_by_key(|(order, _)| *order);
    Some(out.into_iter().map(|(_, p)| p).collect())
}

/// ComfyUI files before `passes`: one pass per `captures` record, in record order.
fn from_captures(captures: &[Value], tensors: &[&str]) -> Vec<PassEntry> {
    let stored = |name: Option<&str>| name.filter(|n| tensors.contains(n)).map(str::to_owned);
    let mut out = Vec::new();
    for (i, rec) in captures.iter().enumerate() {
        let Some(rec) = rec.as_object() else {
            continue;
        };
        let empty = Map::new();
        let settings = rec.get("settings").and_then(Value::as_object).unwrap_or(&empty);
        let role = if i > 0 {
            "hires"
        } else {
            let from_latent = rec.get("input_latent").is_some_and(|v| truthy(v) == Some(true));
            // Python: settings.get("denoise", 1.0) != 1.0
            let denoised = settings.get("denoise").is_some_and(|d| match d {
                Value::Number(n) => n.as_f64() != Some(1.0),
                Value::Bool(b) => !b,
                _ => true,
            });
            if from_latent || denoised {
                "img2img"
            } else {
                "txt2img"
            }
        };
        let sampler = match settings.get("sampler_name") {
            Some(v) => v,
            None => rec.get("sampler").unwrap_or(&Value::Null),
        };
        out.push(PassEntry {
            role: Some(role.to_owned()),
            seed: rec.get("seed").and_then(super::row::as_i128),
            host: Some("comfyui".to_owned()),
            noise: stored(rec.get("name").and_then(Value::as_str)),
            sampler: string(Some(sampler)),
            exact: true,
        });
    }
    out
}

/// Files of the webui before `passes` (`initial_noise`, `hires_noise` and an `a1111` object)
/// and of every other writer (`initial_noise` alone, host unknown).
fn from_names(view: MetaView<'_>, tensors: &[&str]) -> Vec<PassEntry> {
    let a1111 = view.get("a1111").and_then(Value::as_object);
    let webui = a1111.is_some();
    let gen = view.get("generation_settings").and_then(Value::as_object);
    let img2img = a1111.and_then(|a| a.get("mode")).and_then(Value::as_str) == Some("img2img");
    let mut out = Vec::new();
    if tensors.contains(&"initial_noise") {
        out.push(PassEntry {
            role: Some(if img2img { "img2img" } else { "txt2img" }.to_owned()),
            seed: gen.and_then(|g| g.get("seed")).and_then(super::row::as_i128),
            host: webui.then(|| "webui".to_owned()),
            noise: Some("initial_noise".to_owned()),
            sampler: string(gen.and_then(|g| g.get("sampler"))),
            exact: true,
        });
    }
    if webui && tensors.contains(&"hires_noise") {
        out.push(PassEntry {
            role: Some("hires".to_owned()),
            host: Some("webui".to_owned()),
            noise: Some("hires_noise".to_owned()),
            exact: true,
            ..PassEntry::default()
        });
    }
    out
}

/// Python's truth value of a JSON value (`None` for objects and lists, which no rule tests).
fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Null => Some(false),
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => Some(!s.is_empty()),
        Value::Array(a) => Some(!a.is_empty()),
        Value::Object(o) => Some(!o.is_empty()),
    }
}

/// A string value as is (other types: null, as everywhere in the catalog).
fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}
