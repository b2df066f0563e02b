//! Settings out of ComfyUI's API graph (`{node_id: {"class_type", "inputs"}}`, the PNG
//! `prompt` chunk), by the rules the pack's save node follows (comfy_nodes/graph.py,
//! passes.py, save.py): the save node's passes are the samplers upstream of its `images`
//! input, upstream first; the file's settings are the first one's (through the nodes feeding
//! a SamplerCustomAdvanced), its prompts the one text encoder behind its positive and
//! negative inputs, its model the checkpoint (or UNet) loader upstream of it.
//!
//! A PNG holds the whole graph, not which save node wrote it: the save node is the one whose
//! `filename_prefix` names the file (`<prefix>_00001_.png`), else the only one, else any as
//! long as they all lead to the same sampler. A linked widget is followed through primitive
//! and text nodes; one that cannot be known is left null, never guessed.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

type Graph = Map<String, Value>;

/// What the catalog takes from a graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub seed: Option<Value>,
    pub steps: Option<Value>,
    pub cfg: Option<Value>,
    pub sampler: Option<String>,
    pub scheduler: Option<String>,
    pub denoise: Option<Value>,
    pub model_name: Option<String>,
    /// (name, strength_model, strength_clip), the first applied first.
    pub loras: Vec<(String, Option<f64>, Option<f64>)>,
}

const SAMPLER_CLASSES: [&str; 4] = [
    "KSampler",
    "KSamplerAdvanced",
    "SamplerCustom",
    "SamplerCustomAdvanced",
];
const COND_INPUTS: [&str; 6] = [
    "conditioning",
    "conditioning_1",
    "conditioning_2",
    "conditioning_to",
    "conditioning_from",
    "cond",
];
const TEXT_INPUTS: [&str; 4] = ["text", "text_g", "clip_l", "t5xxl"];

fn is_link(v: &Value) -> bool {
    matches!(v.as_array(), Some(a) if a.len() == 2 && (a[0].is_string() || a[0].is_u64()))
}

/// A link's node id and output index.
fn link(v: &Value) -> Option<(String, u64)> {
    let a = v.as_array().filter(|_| is_link(v))?;
    let id = match &a[0] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some((id, a[1].as_u64().unwrap_or(0)))
}

fn inputs<'a>(g: &'a Graph, id: &str) -> Option<&'a Map<String, Value>> {
    g.get(id)?.get("inputs")?.as_object()
}

fn class_of<'a>(g: &'a Graph, id: &str) -> &'a str {
    g.get(id)
        .and_then(|n| n.get("class_type"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The widget value behind an input: itself, or through links the first of the upstream
/// node's value-like inputs (primitive and text nodes), at most 8 links deep.
fn resolve<'a>(g: &'a Graph, v: &'a Value, depth: usize) -> Option<&'a Value> {
    let Some((id, _)) = link(v) else {
        return Some(v).filter(|v| !v.is_null());
    };
    if depth > 8 {
        return None;
    }
    let ins = inputs(g, &id)?;
    let key = ["text", "value", "string", "seed", "noise_seed", "int", "float"]
        .into_iter()
        .find(|k| ins.contains_key(*k))?;
    resolve(g, &ins[key], depth + 1)
}

/// Every node upstream of `id` (through `only` inputs at the first step, if given), with its
/// depth: the longest path from it to `id`.
fn upstream(g: &Graph, id: &str, only: Option<&str>) -> HashMap<String, usize> {
    let mut depth: HashMap<String, usize> = HashMap::new();
    let mut stack: Vec<(String, usize)> = inputs(g, id)
        .into_iter()
        .flatten()
        .filter(|(k, _)| only.is_none_or(|o| o == k.as_str()))
        .filter_map(|(_, v)| link(v).map(|(n, _)| (n, 1)))
        .collect();
    while let Some((nid, d)) = stack.pop() {
        if depth.get(&nid).is_some_and(|&old| old >= d) || d > g.len() + 1 {
            continue;
        }
        depth.insert(nid.clone(), d);
        for v in inputs(g, &nid).into_iter().flat_map(|m| m.values()) {
            if let Some((n, _)) = link(v) {
                stack.push((n, d + 1));
            }
        }
    }
    depth
}

/// `depth`'s nodes upstream first (deepest first; ties by id, the shorter first).
fn in_path_order(depth: &HashMap<String, usize>) -> Vec<String> {
    let mut ids: Vec<&String> = depth.keys().collect();
    ids.sort_by_key(|n| (std::cmp::Reverse(depth[*n]), n.len(), n.as_str()));
    ids.into_iter().cloned().collect()
}

fn is_sampler(g: &Graph, id: &str) -> bool {
    SAMPLER_CLASSES.contains(&class_of(g, id))
}

/// The first sampler on the path to `save`'s images.
fn first_sampler(g: &Graph, save: &str) -> Option<String> {
    in_path_order(&upstream(g, save, Some("images")))
        .into_iter()
        .find(|n| is_sampler(g, n))
}

/// The save node of the file named `stem`, and the sampler its settings come from.
fn pick_sampler(g: &Graph, stem: &str) -> Option<String> {
    let saves: Vec<&String> = g
        .keys()
        .filter(|id| inputs(g, id).is_some_and(|i| i.contains_key("images")))
        .collect();
    let named: Vec<&&String> = saves
        .iter()
        .filter(|id| {
            let prefix = inputs(g, id)
                .and_then(|i| i.get("filename_prefix"))
                .and_then(Value::as_str);
            prefix.is_some_and(|p| {
                let base = p.rsplit(['/', '\\']).next().unwrap_or(p);
                !base.is_empty() && stem.starts_with(&format!("{base}_"))
            })
        })
        .collect();
    if let [one] = named.as_slice() {
        return first_sampler(g, one);
    }
    let candidates: Vec<&String> = if named.is_empty() {
        saves
    } else {
        named.into_iter().copied().collect()
    };
    let firsts: HashSet<Option<String>> = candidates.iter().map(|s| first_sampler(g, s)).collect();
    match firsts.len() {
        1 => firsts.into_iter().next().flatten(),
        _ => None,
    }
}

/// The text encoders whose conditioning reaches a CONDITIONING input.
fn encoders(g: &Graph, cond: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([cond.clone()]);
    while let Some(l) = queue.pop_front() {
        let Some((nid, out)) = link(&l) else {
            continue;
        };
        if !seen.insert((nid.clone(), out)) {
            continue;
        }
        let Some(ins) = inputs(g, &nid) else {
            continue;
        };
        if TEXT_INPUTS.iter().any(|k| ins.contains_key(*k)) {
            if !found.contains(&nid) {
                found.push(nid);
            }
            continue;
        }
        match (ins.get("positive"), ins.get("negative")) {
            (Some(p), Some(n)) => queue.push_back(if out == 1 { n.clone() } else { p.clone() }),
            (Some(p), None) => queue.push_back(p.clone()),
            _ => {}
        }
        queue.extend(COND_INPUTS.iter().filter_map(|k| ins.get(*k)).cloned());
    }
    found
}

/// The one prompt text behind a CONDITIONING input (None: none known, or several combined).
fn prompt_text(g: &Graph, cond: &Value) -> Option<String> {
    let [nid] = encoders(g, cond).try_into().ok()?;
    let ins = inputs(g, &nid)?;
    let key = TEXT_INPUTS.iter().find(|k| ins.contains_key(**k))?;
    resolve(g, &ins[*key], 0)?.as_str().map(str::to_owned)
}

/// The settings of the file named `stem` (without its extension) holding `graph`.
pub fn settings(graph: &Value, stem: &str) -> Settings {
    let mut out = Settings::default();
    let Some(g) = graph.as_object() else {
        return out;
    };
    let Some(sampler) = pick_sampler(g, stem) else {
        return out;
    };
    let ins = inputs(g, &sampler).cloned().unwrap_or_default();
    // SamplerCustomAdvanced: the nodes feeding it hold its settings.
    let mut sources = vec![sampler.clone()];
    sources.extend(
        ["noise", "guider", "sampler", "sigmas"]
            .iter()
            .filter_map(|k| ins.get(*k).and_then(link).map(|(n, _)| n)),
    );
    let get = |names: &[&str]| -> Option<Value> {
        for nid in &sources {
            let node = inputs(g, nid)?;
            if let Some(name) = names.iter().find(|n| node.contains_key(**n)) {
                return resolve(g, &node[*name], 0).cloned();
            }
        }
        None
    };
    let string = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    out.seed = get(&["seed", "noise_seed"]);
    out.steps = get(&["steps"]);
    out.cfg = get(&["cfg"]);
    out.sampler = string(get(&["sampler_name"]));
    out.scheduler = string(get(&["scheduler"]));
    out.denoise = get(&["denoise"]);
    for nid in &sources {
        let Some(node) = inputs(g, nid) else { continue };
        if let Some(p) = node.get("positive") {
            out.prompt = prompt_text(g, p);
            out.negative_prompt = node.get("negative").and_then(|n| prompt_text(g, n));
            break;
        }
        if *nid != sampler {
            if let Some(c) = node.get("conditioning") {
                out.prompt = prompt_text(g, c);
                break;
            }
        }
    }
    let depth = upstream(g, &sampler, None);
    // The checkpoint: model files upstream, breadth first as save.py's model_files finds them.
    out.model_name = model_name(g, &sampler);
    for nid in in_path_order(&depth) {
        let Some(node) = inputs(g, &nid) else { continue };
        let Some(name) = node
            .get("lora_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let strength = |k: &str| {
            node.get(k)
                .and_then(|v| resolve(g, v, 0))
                .filter(|v| !v.is_boolean())
                .and_then(Value::as_f64)
        };
        out.loras.push((
            name.to_owned(),
            strength("strength_model"),
            strength("strength_clip"),
        ));
    }
    out
}

/// The first `ckpt_name` or `unet_name` file found upstream of `id`, breadth first.
fn model_name(g: &Graph, id: &str) -> Option<String> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([id.to_owned()]);
    while let Some(nid) = queue.pop_front() {
        if !seen.insert(nid.clone()) {
            continue;
        }
        for (key, value) in inputs(g, &nid).into_iter().flatten() {
            if let Some((n, _)) = link(value) {
                queue.push_back(n);
            } else if matches!(key.as_str(), "ckpt_name" | "unet_name") {
                if let Some(s) = value.as_str() {
                    return Some(s.to_owned());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn txt2img() -> Value {
        json!({
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
            "10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "l.safetensors", "strength_model": 0.5, "strength_clip": 1}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["20", 0], "clip": ["10", 1]}},
            "20": {"class_type": "PrimitiveString", "inputs": {"value": "a cat 🐱"}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["10", 1]}},
            "3": {"class_type": "KSampler", "inputs": {"seed": 18446744073709551615u64, "steps": 4, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
        })
    }

    #[test]
    fn reads_the_default_graph() {
        let s = settings(&txt2img(), "ComfyUI_00001_");
        assert_eq!(s.prompt.as_deref(), Some("a cat 🐱"));
        assert_eq!(s.negative_prompt.as_deref(), Some("ugly"));
        assert_eq!(s.seed, Some(json!(18446744073709551615u64)));
        assert_eq!(s.steps, Some(json!(4)));
        assert_eq!(s.sampler.as_deref(), Some("euler"));
        assert_eq!(s.scheduler.as_deref(), Some("normal"));
        assert_eq!(s.model_name.as_deref(), Some("tiny.safetensors"));
        assert_eq!(s.loras, vec![("l.safetensors".into(), Some(0.5), Some(1.0))]);
    }

    #[test]
    fn the_save_node_named_by_the_file_picks_the_sampler() {
        let mut g = txt2img();
        let m = g.as_object_mut().unwrap();
        // A second branch: its own sampler (seed 2) and a save named "other".
        m.insert("13".into(), json!({"class_type": "KSampler", "inputs": {"seed": 2, "steps": 9, "cfg": 1, "sampler_name": "ddim", "scheduler": "karras", "denoise": 0.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["3", 0]}}));
        m.insert(
            "14".into(),
            json!({"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["4", 2]}}),
        );
        m.insert("15".into(), json!({"class_type": "SaveImage", "inputs": {"filename_prefix": "sub/other", "images": ["14", 0]}}));
        assert_eq!(
            settings(&Value::Object(m.clone()), "ComfyUI_00003_").seed,
            Some(json!(18446744073709551615u64))
        );
        // The second save's path starts with the first sampler (upstream first): its settings.
        assert_eq!(
            settings(&Value::Object(m.clone()), "other_00001_").steps,
            Some(json!(4))
        );
        // A file neither names, with saves on different first samplers: nothing guessed.
        m.insert("3".into(), json!({"class_type": "KSampler", "inputs": {"seed": 1, "steps": 4, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}}));
        m.insert("13".into(), json!({"class_type": "KSampler", "inputs": {"seed": 2, "steps": 9, "cfg": 1, "sampler_name": "ddim", "scheduler": "karras", "denoise": 0.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}}));
        assert_eq!(settings(&Value::Object(m.clone()), "renamed").seed, None);
        assert_eq!(
            settings(&Value::Object(m.clone()), "other_00002_").seed,
            Some(json!(2))
        );
    }

    #[test]
    fn sampler_custom_advanced_and_combined_prompts() {
        let g = json!({
            "1": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}},
            "2": {"class_type": "CFGGuider", "inputs": {"cfg": 3.5, "positive": ["5", 0], "negative": ["6", 0], "model": ["9", 0]}},
            "3": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
            "4": {"class_type": "BasicScheduler", "inputs": {"steps": 12, "scheduler": "karras", "denoise": 0.8, "model": ["9", 0]}},
            "5": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["7", 0], "conditioning_2": ["8", 0]}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["99", 0]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "a"}},
            "8": {"class_type": "CLIPTextEncode", "inputs": {"text": "b"}},
            "9": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux.safetensors"}},
            "10": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["1", 0], "guider": ["2", 0], "sampler": ["3", 0], "sigmas": ["4", 0]}},
            "11": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["12", 0]}},
            "12": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0]}}
        });
        let s = settings(&g, "x_00001_");
        assert_eq!(
            (s.seed, s.steps, s.cfg),
            (Some(json!(7)), Some(json!(12)), Some(json!(3.5)))
        );
        assert_eq!(s.sampler.as_deref(), Some("dpmpp_2m"));
        assert_eq!(s.scheduler.as_deref(), Some("karras"));
        assert_eq!(s.denoise, Some(json!(0.8)));
        assert_eq!(s.model_name.as_deref(), Some("flux.safetensors"));
        assert_eq!(s.prompt, None, "two encoders combined: no one text");
        assert_eq!(s.negative_prompt, None, "a link to a missing node: unknown");
    }

    #[test]
    fn odd_graphs_give_nothing_and_never_loop() {
        for g in [
            json!([]),
            json!({}),
            json!({"1": 5}),
            json!({"1": {"inputs": {"images": ["1", 0]}}}),
        ] {
            assert_eq!(settings(&g, "a"), Settings::default());
        }
        // A cycle through the conditioning.
        let g = json!({
            "1": {"class_type": "KSampler", "inputs": {"seed": 1, "positive": ["2", 0], "negative": ["2", 1], "model": ["1", 0]}},
            "2": {"class_type": "X", "inputs": {"positive": ["2", 0], "negative": ["2", 1]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
        });
        let s = settings(&g, "a");
        assert_eq!((s.seed, s.prompt), (Some(json!(1)), None));
    }
}
