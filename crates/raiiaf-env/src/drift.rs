//! Drift: how the environment that wrote a file differs from the current one,
//! component by component, each marked as able to change pixels or not.

use serde_json::Value;

/// Components whose change can alter the generated image. Unknown
/// components count as able to, to be safe.
const HARMLESS: &[&str] = &["python", "numpy", "os", "cpu", "ram"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    /// Both sides have the component, with different values.
    Changed,
    /// The file has it, the current environment does not.
    MissingNow,
    /// The current environment has it, the file did not record it (files
    /// from other writers record less); unknown rather than different.
    NotInFile,
}

impl DriftKind {
    pub fn name(self) -> &'static str {
        match self {
            DriftKind::Changed => "changed",
            DriftKind::MissingNow => "missing_now",
            DriftKind::NotInFile => "not_in_file",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Component id; repeated ids are numbered from the second on: `gpu`, `gpu[1]`.
    pub component: String,
    pub kind: DriftKind,
    pub stored: Option<String>,
    pub current: Option<String>,
    pub affects_pixels: bool,
}

/// Whether a change of this component can change pixels.
pub fn affects_pixels(component_id: &str) -> bool {
    let base = component_id.split('[').next().unwrap_or(component_id);
    !HARMLESS.contains(&base)
}

/// `(id, canonical string)` per component of an ENVC document, with
/// repeated ids numbered so that several GPUs compare one by one.
pub fn keyed(doc: &Value) -> Vec<(String, String)> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut out = Vec::new();
    for c in doc
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = c.get("component_id").and_then(Value::as_str) else {
            continue;
        };
        let canonical = c.get("cononical_str").and_then(Value::as_str).unwrap_or_default();
        let n = match seen.iter_mut().find(|(i, _)| i == id) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((id.to_owned(), 0));
                0
            }
        };
        let key = if n == 0 {
            id.to_owned()
        } else {
            format!("{id}[{n}]")
        };
        out.push((key, canonical.to_owned()));
    }
    out
}

/// Differences between a file's ENVC document and the current one, in the
/// file's component order, then components only the current one has.
/// Identical environments give an empty list.
pub fn compare(stored: &Value, current: &Value) -> Vec<Drift> {
    let (old, new) = (keyed(stored), keyed(current));
    let mut out = Vec::new();
    for (id, s) in &old {
        match new.iter().find(|(i, _)| i == id) {
            Some((_, c)) if c == s => {}
            Some((_, c)) => out.push(Drift {
                component: id.clone(),
                kind: DriftKind::Changed,
                stored: Some(s.clone()),
                current: Some(c.clone()),
                affects_pixels: affects_pixels(id),
            }),
            None => out.push(Drift {
                component: id.clone(),
                kind: DriftKind::MissingNow,
                stored: Some(s.clone()),
                current: None,
                affects_pixels: affects_pixels(id),
            }),
        }
    }
    for (id, c) in &new {
        if !old.iter().any(|(i, _)| i == id) {
            out.push(Drift {
                component: id.clone(),
                kind: DriftKind::NotInFile,
                stored: None,
                current: Some(c.clone()),
                affects_pixels: affects_pixels(id),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::capture::Gpu;
    use super::super::components::{document, tests as fx};
    use super::*;

    #[test]
    fn identical_environments_do_not_drift() {
        let doc = document(&fx::machine(vec![]), &fx::host());
        assert!(compare(&doc, &doc).is_empty());
    }

    #[test]
    fn classifies_changes() {
        let gpu = |name: &str, driver: &str| Gpu {
            name: name.into(),
            driver: driver.into(),
            cuda_driver: Some("12.4".into()),
            memory_mb: 24564,
            compute_capability: Some("8.9".into()),
        };
        let old = document(
            &fx::machine(vec![gpu("RTX 4090", "550.54"), gpu("RTX 4090", "550.54")]),
            &fx::host(),
        );
        let mut m = fx::machine(vec![gpu("RTX 4090", "550.54"), gpu("RTX 3090", "550.54")]);
        m.ram_bytes = 64 << 30;
        let mut h = fx::host();
        h["python"] = "3.12.1".into();
        h["attention"] = "xformers".into();
        h.remove("numpy");
        h.insert("noise_device".into(), "cuda".into());
        let new = document(&m, &h);
        let d = compare(&old, &new);
        let get = |id: &str| {
            d.iter()
                .find(|x| x.component == id)
                .unwrap_or_else(|| panic!("{id}: {d:?}"))
        };
        assert_eq!(d.len(), 6, "{d:#?}");
        assert!(get("gpu[1]").affects_pixels && get("gpu[1]").kind == DriftKind::Changed);
        assert!(get("attention").affects_pixels);
        assert!(!get("python").affects_pixels);
        assert!(!get("ram").affects_pixels);
        assert_eq!(get("numpy").kind, DriftKind::MissingNow);
        assert_eq!(get("noise_device").kind, DriftKind::NotInFile);
        assert_eq!(
            get("attention").stored.as_deref(),
            Some("name=attention;backend=sdpa")
        );
        assert_eq!(
            get("attention").current.as_deref(),
            Some("name=attention;backend=xformers")
        );
        assert!(d.iter().all(|x| x.component != "gpu"));
    }

    #[test]
    fn unknown_components_count_as_pixel_affecting() {
        assert!(affects_pixels("some_new_thing"));
        assert!(affects_pixels("gpu[3]"));
        assert!(!affects_pixels("cpu"));
    }
}
