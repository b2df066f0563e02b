//! The ENVC chunk: the software/hardware environment that produced a file,
//! as components with a canonical string each (`name=torch;version=2.13.0;
//! cuda=13.0`) and its SHA-256. The JSON key `cononical_str` is misspelt on
//! purpose: the reference's files spell it so.

use serde_json::{json, Value};

use super::sha256_hex;
use crate::error::{Error, Result};

/// The ENVC document's `env_version`.
pub const ENV_VERSION: u64 = 1;

/// Builds the ENVC document from `(component_id, canonical_string)` pairs.
/// Several components may share an id (one `gpu` per device).
pub fn document<'a>(components: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let components: Vec<Value> = components
        .into_iter()
        .map(|(id, canonical)| {
            json!({
                "component_id": id,
                "cononical_str": canonical,
                "component_sha256_digest": sha256_hex(canonical.as_bytes()),
            })
        })
        .collect();
    json!({ "env_version": ENV_VERSION, "components": components })
}

/// Checks a caller-supplied ENVC document before it is written.
pub fn validate(doc: &Value) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("invalid environment document: {why}")));
    let Some(obj) = doc.as_object() else {
        return bad("not an object");
    };
    if !obj.get("env_version").is_some_and(Value::is_u64) {
        return bad("env_version must be a non-negative integer");
    }
    let Some(components) = obj.get("components").and_then(Value::as_array) else {
        return bad("components must be a list");
    };
    for c in components {
        let id = c.get("component_id").and_then(Value::as_str);
        let canonical = c.get("cononical_str").and_then(Value::as_str);
        let digest = c.get("component_sha256_digest").and_then(Value::as_str);
        match (id, canonical, digest) {
            (Some(_), Some(s), Some(d)) if sha256_hex(s.as_bytes()) == d => {}
            (Some(id), Some(_), Some(_)) => {
                return bad(&format!(
                    "component {id:?} has a digest that is not the SHA-256 of its string"
                ))
            }
            _ => {
                return bad(
                    "each component needs component_id, cononical_str, component_sha256_digest strings",
                )
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_reference() {
        // Digest taken from the reference's own v1 vector.
        let doc = document([("torch", "name=torch;version=2.13.0;cuda=13.0")]);
        assert_eq!(
            doc["components"][0]["component_sha256_digest"],
            "411228fd8b6c666182fb7b2275f47ce12f8f2c4d9813c25657fbdd7f7d19f865"
        );
        validate(&doc).unwrap();
        let mut forged = doc.clone();
        forged["components"][0]["cononical_str"] = "name=torch;version=9".into();
        assert!(validate(&forged).is_err());
        assert!(validate(&json!({"components": []})).is_err());
    }
}
