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
    let documented: Vec<(String, String)> = text
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
