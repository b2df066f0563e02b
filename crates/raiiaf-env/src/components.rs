//! The environment as ENVC components: one canonical string per component
//! (`name=torch;version=2.13.0;cuda=13.0`), hashed with SHA-256.
//!
//! The first five components (torch, numpy, python, cuda, os) are spelled
//! exactly as the reference writes them, so a file written by the reference
//! on the same stack shows no drift. The rest are this project's additions.

use serde_json::{Map, Value};

use super::capture::SystemFacts;
use raiiaf::format::envc;

/// Facts only the host process knows, passed in from Python. Every key is
/// optional; a missing fact gives no component (never a guessed one).
///
/// ```json
/// {"python": "3.11.7", "numpy": "2.4.6",
///  "torch": {"version": "2.14.1", "cuda": "13.0", "cudnn": "91002", "hip": null},
///  "host": {"app": "ComfyUI", "version": "0.3.75", "commit": "f8b981a"},
///  "attention": "sdpa", "dtypes": {"unet": "float16", "vae": "float32"},
///  "noise_device": "cpu",
///  "determinism": {"deterministic_algorithms": false, "cudnn_benchmark": false}}
/// ```
pub type HostFacts = Map<String, Value>;

/// A value as it appears in a canonical string: `None` for null (as
/// Python's f-string prints it), no `;` (the field separator).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::String(s) => s.replace(';', ","),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string().replace(';', ","),
    }
}

fn fields(name: &str, pairs: &[(&str, String)]) -> String {
    let mut s = format!("name={name}");
    for (k, v) in pairs {
        s.push_str(&format!(";{k}={v}"));
    }
    s
}

/// `name=X;k=v;...` for every entry of an object, in its order.
fn object_fields(name: &str, obj: &Map<String, Value>) -> String {
    let pairs: Vec<(&str, String)> = obj.iter().map(|(k, v)| (k.as_str(), text(v))).collect();
    fields(name, &pairs)
}

/// `(component_id, canonical_string)` pairs for the machine and the host.
pub fn components(system: &SystemFacts, host: &HostFacts) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |id: &str, s: String| out.push((id.to_owned(), s));
    let torch = host.get("torch").and_then(Value::as_object);
    let torch_cuda = torch.and_then(|t| t.get("cuda")).cloned().unwrap_or(Value::Null);
    if let Some(t) = torch {
        let version = t.get("version").map(text).unwrap_or_default();
        // The reference drops the local version (`2.13.0+cu130` -> `2.13.0`).
        let version = version.split('+').next().unwrap_or_default().to_owned();
        push(
            "torch",
            fields("torch", &[("version", version), ("cuda", text(&torch_cuda))]),
        );
    }
    if let Some(v) = host.get("numpy") {
        push("numpy", fields("numpy", &[("version", text(v))]));
    }
    if let Some(v) = host.get("python") {
        push("python", fields("python", &[("version", text(v))]));
    }
    if torch.is_some() {
        let cuda = if torch_cuda.is_null() {
            "none".into()
        } else {
            text(&torch_cuda)
        };
        push("cuda", fields("cuda", &[("version", cuda)]));
    }
    push(
        "os",
        fields(
            "os",
            &[("version", format!("{} {}", system.os_family, system.os_release))],
        ),
    );
    for gpu in &system.gpus {
        push(
            "gpu",
            fields(
                "gpu",
                &[
                    ("model", gpu.name.clone()),
                    ("driver", gpu.driver.clone()),
                    (
                        "cuda_driver",
                        gpu.cuda_driver.clone().unwrap_or_else(|| "None".into()),
                    ),
                    ("memory_mb", gpu.memory_mb.to_string()),
                    (
                        "compute_capability",
                        gpu.compute_capability.clone().unwrap_or_else(|| "None".into()),
                    ),
                ],
            ),
        );
    }
    if let Some(t) = torch {
        let get = |k: &str| t.get(k).map(text).unwrap_or_else(|| "None".into());
        push(
            "torch_backends",
            fields("torch_backends", &[("cudnn", get("cudnn")), ("hip", get("hip"))]),
        );
    }
    push(
        "cpu",
        fields(
            "cpu",
            &[
                ("model", system.cpu_model.clone()),
                (
                    "physical_cores",
                    system
                        .physical_cores
                        .map_or_else(|| "None".into(), |n| n.to_string()),
                ),
                ("logical_cores", system.logical_cores.to_string()),
            ],
        ),
    );
    push(
        "ram",
        fields("ram", &[("total_gb", format!("{:.1}", gib(system.ram_bytes)))]),
    );
    if let Some(Value::Object(h)) = host.get("host") {
        push("host", object_fields("host", h));
    }
    if let Some(v) = host.get("attention") {
        push("attention", fields("attention", &[("backend", text(v))]));
    }
    if let Some(Value::Object(d)) = host.get("dtypes") {
        push("dtype", object_fields("dtype", d));
    }
    if let Some(v) = host.get("noise_device") {
        push("noise_device", fields("noise_device", &[("device", text(v))]));
    }
    if let Some(Value::Object(d)) = host.get("determinism") {
        push("determinism", object_fields("determinism", d));
    }
    out
}

/// The ENVC document for the machine and the host.
pub fn document(system: &SystemFacts, host: &HostFacts) -> Value {
    let comps = components(system, host);
    envc::document(comps.iter().map(|(a, b)| (a.as_str(), b.as_str())))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The reference schema's `hardware_info`, filled from the facts (callers of
/// the reference had to write it by hand). `machine_name` stays empty unless
/// the user opts in: files get shared.
pub fn hardware_info(system: &SystemFacts, host: &HostFacts, machine_name: Option<&str>) -> Value {
    let torch = host.get("torch").and_then(Value::as_object);
    let framework = torch
        .and_then(|t| t.get("version"))
        .map(|v| format!("torch {}", text(v)))
        .unwrap_or_default();
    let compute_lib = match torch.and_then(|t| t.get("cuda")) {
        Some(v) if !v.is_null() => format!("cuda {}", text(v)),
        _ => match torch.and_then(|t| t.get("hip")) {
            Some(v) if !v.is_null() => format!("hip {}", text(v)),
            _ if torch.is_some() => "cpu".into(),
            _ => String::new(),
        },
    };
    let gpus: Vec<Value> = system
        .gpus
        .iter()
        .map(|g| {
            serde_json::json!({
                "name": g.name,
                "memory_gb": (g.memory_mb as f64 / 1024.0 * 10.0).round() / 10.0,
                "driver": g.driver,
                "cuda_version": g.cuda_driver.clone().unwrap_or_default(),
            })
        })
        .collect();
    let os = if system.os_name.is_empty() {
        format!("{} {}", system.os_family, system.os_release)
    } else {
        system.os_name.clone()
    };
    serde_json::json!({
        "machine_name": machine_name.unwrap_or(""),
        "os": os,
        "cpu": system.cpu_model,
        "cpu_cores": system.logical_cores.max(1),
        "gpu": gpus,
        "ram_gb": (gib(system.ram_bytes) * 10.0).round() / 10.0,
        "framework": framework,
        "compute_lib": compute_lib,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::capture::Gpu;
    use super::*;
    use serde_json::json;

    pub(crate) fn machine(gpus: Vec<Gpu>) -> SystemFacts {
        SystemFacts {
            os_family: "Linux".into(),
            os_release: "6.18.44-fc-v769".into(),
            os_name: "Debian GNU/Linux 12".into(),
            cpu_model: "AMD EPYC".into(),
            physical_cores: Some(1),
            logical_cores: 2,
            ram_bytes: 24 << 30,
            gpus,
        }
    }

    pub(crate) fn host() -> HostFacts {
        json!({
            "python": "3.11.7",
            "numpy": "2.4.6",
            "torch": {"version": "2.13.0+cu130", "cuda": "13.0", "cudnn": "91002", "hip": null},
            "attention": "sdpa",
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn reference_components_are_spelled_like_the_reference() {
        let comps = components(&machine(vec![]), &host());
        let find = |id: &str| comps.iter().find(|(i, _)| i == id).map(|(_, s)| s.as_str());
        // Strings and digests as in the reference's own vectors.
        assert_eq!(find("torch"), Some("name=torch;version=2.13.0;cuda=13.0"));
        assert_eq!(find("numpy"), Some("name=numpy;version=2.4.6"));
        assert_eq!(find("python"), Some("name=python;version=3.11.7"));
        assert_eq!(find("cuda"), Some("name=cuda;version=13.0"));
        assert_eq!(find("os"), Some("name=os;version=Linux 6.18.44-fc-v769"));
        let ids: Vec<&str> = comps.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(&ids[..5], ["torch", "numpy", "python", "cuda", "os"]);
        assert_eq!(find("attention"), Some("name=attention;backend=sdpa"));
        assert_eq!(
            find("torch_backends"),
            Some("name=torch_backends;cudnn=91002;hip=None")
        );
        assert!(find("gpu").is_none());
        let doc = document(&machine(vec![]), &host());
        assert_eq!(
            doc["components"][0]["component_sha256_digest"],
            "411228fd8b6c666182fb7b2275f47ce12f8f2c4d9813c25657fbdd7f7d19f865"
        );
    }

    #[test]
    fn cpu_only_torch_says_none_like_the_reference() {
        let mut h = host();
        h["torch"]["cuda"] = Value::Null;
        let comps = components(&machine(vec![]), &h);
        assert!(comps.contains(&("torch".into(), "name=torch;version=2.13.0;cuda=None".into())));
        assert!(comps.contains(&("cuda".into(), "name=cuda;version=none".into())));
        assert_eq!(hardware_info(&machine(vec![]), &h, None)["compute_lib"], "cpu");
    }

    #[test]
    fn gpus_and_hardware_info() {
        let gpu = Gpu {
            name: "NVIDIA H100 80GB HBM3".into(),
            driver: "550.54.15".into(),
            cuda_driver: Some("12.4".into()),
            memory_mb: 81559,
            compute_capability: Some("9.0".into()),
        };
        let m = machine(vec![gpu.clone(), gpu]);
        let comps = components(&m, &host());
        assert_eq!(comps.iter().filter(|(i, _)| i == "gpu").count(), 2);
        let info = hardware_info(&m, &host(), None);
        assert_eq!(info["machine_name"], "");
        assert_eq!(info["gpu"][0]["memory_gb"], 79.6);
        assert_eq!(info["cpu_cores"], 2);
        assert_eq!(info["ram_gb"], 24.0);
        assert_eq!(info["framework"], "torch 2.13.0+cu130");
        assert_eq!(info["compute_lib"], "cuda 13.0");
        assert_eq!(
            hardware_info(&m, &host(), Some("studio"))["machine_name"],
            "studio"
        );
    }
}
