//! The catalog's schema against CATALOG.md, and rows of the vector and adversarial files.

use std::path::{Path, PathBuf};

use arrow_array::Array;
use arrow_schema::DataType;
use raiiaf_catalog::{self as catalog, IndexOptions};

fn type_text(t: &DataType) -> String {
    match t {
        DataType::Utf8 => "string".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "bool".into(),
        DataType::Decimal128(p, s) => format!("decimal({p}, {s})"),
        DataType::List(item) => format!("list<{}>", type_text(item.data_type())),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_text(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

#[test]
fn catalog_md_lists_every_column_in_order_with_its_type() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../CATALOG.md")).unwrap();
    // The table of the "Columns" section (other sections' tables name columns too).
    let section = text.split("\n## Columns").nth(1).expect("a Columns section");
    let section = section.split("\n## ").next().unwrap();
    let documented: Vec<(String, String)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(1)?.to_string()))
        })
        .collect();
    let schema = catalog::schema();
    let actual: Vec<(String, String)> = schema
        .fields()
        .iter()
        .map(|f| {
            let required = if f.is_nullable() { "" } else { ", required" };
            (
                f.name().clone(),
                format!("{}{required}", type_text(f.data_type())),
            )
        })
        .collect();
    assert_eq!(documented, actual);
}

fn data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(dir)
}

#[test]
fn vector_files_index_without_errors() {
    let rows = catalog::index_paths(&[data("vectors")], IndexOptions::default()).unwrap();
    assert_eq!(rows.len(), 6, "4 reference files and 2 GEN5 files");
    for r in &rows {
        assert_eq!(r.error, None, "{}", r.path);
        assert!(!r.tensors.is_empty() && r.noise_sha256.is_some(), "{}", r.path);
    }
    let batch = catalog::rows_to_batch(&rows).unwrap();
    assert_eq!(batch.num_rows(), 6);
    assert_eq!(batch.schema(), catalog::schema());
}

#[test]
fn hostile_files_give_rows_and_never_panic() {
    let options = IndexOptions {
        verify: true,
        ..IndexOptions::default()
    };
    let rows = catalog::index_paths(&[data("adversarial"), data("fuzz-regressions")], options).unwrap();
    assert!(rows.len() > 40);
    for r in &rows {
        assert!(r.verified.is_some(), "{}", r.path);
        assert_eq!(r.verified == Some(true), r.error.is_none(), "{}", r.path);
    }
    catalog::rows_to_batch(&rows).unwrap();
}

#[test]
fn a_missing_root_fails_the_run() {
    let err = catalog::index_paths(&[data("no-such-dir")], IndexOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[test]
fn a_column_is_added_in_one_place() {
    // One more column, defined once: the schema and the batch both get it, in place.
    let columns = [
        catalog::Column::string("path", |r| Some(r.path.as_str())).required(),
        catalog::Column::new(
            "prompt_chars",
            catalog::Fill::Int(|r| r.prompt.as_ref().map(|p| p.chars().count() as i64)),
        ),
    ];
    let rows = catalog::index_paths(&[data("vectors")], IndexOptions::default()).unwrap();
    let batch = catalog::batch_of(&columns, &rows).unwrap();
    let schema = catalog::schema_of(&columns);
    assert_eq!(batch.schema(), schema);
    assert_eq!(schema.field(1).name(), "prompt_chars");
    assert_eq!(schema.field(1).data_type(), &arrow_schema::DataType::Int64);
    let lengths = batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .unwrap();
    for (i, r) in rows.iter().enumerate() {
        let expected = r.prompt.as_ref().map(|p| p.chars().count() as i64);
        assert_eq!(lengths.is_null(i), expected.is_none(), "{}", r.path);
        if let Some(n) = expected {
            assert_eq!(lengths.value(i), n, "{}", r.path);
        }
    }
    // The catalog's own list is the same kind of list.
    let names: Vec<&str> = catalog::columns().iter().map(|c| c.name.as_str()).collect();
    let schema = catalog::schema();
    let fields: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, fields);
}

/// The pass columns against the pass schema's cases (tests/data/passes/*.json), the same files
/// `raiiaf_rs.passes` is tested with: both readers map every old file kind alike.
#[test]
fn pass_columns_follow_the_pass_schema_cases() {
    use raiiaf_catalog::passes::{passes_of, MetaView, PassEntry};
    use serde_json::{Map, Value};
    let mut cases: Vec<PathBuf> = std::fs::read_dir(data("passes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "{cases:?}");
    for case in cases {
        let c: Value = serde_json::from_slice(&std::fs::read(&case).unwrap()).unwrap();
        let meta = c["metadata"].as_object().unwrap();
        let names: Vec<&str> = c["latents"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let empty = Map::new();
        // model_info or the free-form metadata: the view is the same either way.
        for (info, meta) in [(&empty, meta), (meta, &empty)] {
            let got = passes_of(MetaView { info, meta }, &names).unwrap();
            let want: Vec<PassEntry> = c["passes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| PassEntry {
                    role: p["role"].as_str().map(str::to_owned),
                    seed: p["seed"].as_u64().map(i128::from),
                    host: p["source"]["host"].as_str().map(str::to_owned),
                    noise: p["noise"].as_str().map(str::to_owned),
                    sampler: p["settings"]["sampler"].as_str().map(str::to_owned),
                    exact: p["exact"].as_bool().unwrap(),
                })
                .collect();
            assert_eq!(got, want, "{}", case.display());
        }
    }
}

#[test]
fn a_malformed_passes_value_gives_null_pass_columns_not_an_error() {
    use raiiaf_catalog::passes::{passes_of, MetaView};
    use serde_json::{json, Map, Value};
    let empty = Map::new();
    for bad in [
        json!({"order": 0}),
        json!([{"role": "txt2img"}]),
        json!([{"order": 0, "role": "upscale"}]),
        json!([3]),
        json!([{"order": 0, "role": "hires", "exact": true, "why_not_exact": ["x"]}]),
    ] {
        let meta: Map<String, Value> = [("passes".to_owned(), bad.clone())].into_iter().collect();
        let view = MetaView {
            info: &empty,
            meta: &meta,
        };
        assert_eq!(passes_of(view, &["initial_noise"]), None, "{bad}");
    }
}

/// A file declaring more bytes than it stores is an error row without `--verify` too: the
/// manifest alone shows the declared size cannot be.
#[test]
fn forged_sizes_are_errors_without_verify() {
    let dir = data("adversarial");
    for name in [
        "bomb-compact-shape-4-tib.raiiaf",
        "shape-16-gib-claimed.raiiaf",
        "bomb-data-declares-64-gib.raiiaf",
        "uncompressed-size-u64-max.raiiaf",
    ] {
        let rows = catalog::index_paths(&[dir.join(name)], IndexOptions::default()).unwrap();
        let r = &rows[0];
        assert!(r.error.is_some(), "{name}: {r:?}");
        assert_eq!(r.verified, Some(false), "{name}");
    }
}

/// An error row holds the file's own columns, `verified` false and the reason: nothing read
/// before the failure (so `WHERE seed = …` never matches a damaged file).
#[test]
fn error_rows_hold_no_metadata_and_are_not_verified() {
    let rows = catalog::index_paths(&[data("adversarial")], IndexOptions::default()).unwrap();
    let errors: Vec<_> = rows.iter().filter(|r| r.error.is_some()).collect();
    assert!(errors.len() > 40);
    for r in errors {
        let cleared = catalog::Row {
            path: r.path.clone(),
            size: r.size,
            mtime_ns: r.mtime_ns,
            verified: Some(false),
            error: r.error.clone(),
            ..catalog::Row::default()
        };
        assert_eq!(r, &cleared, "{}", r.path);
    }
    // A good file is not "verified" without --verify: null, not false.
    assert!(rows.iter().any(|r| r.error.is_none() && r.verified.is_none()));
}
