//! Rows to one Arrow record batch with the catalog schema (CATALOG.md). The schema is built in
//! one place, [`schema`], and every column is filled in [`rows_to_batch`] in the same order;
//! a test checks the two agree and CATALOG.md lists every column.

use std::sync::Arc;

use arrow_array::builder::{Decimal128Builder, Float64Builder, Int64Builder, ListBuilder};
use arrow_array::{ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};

use super::row::{Row, ENV_COLUMNS};
use crate::error::{Error, Result};

/// Changes whenever a column is added, removed or changes type; stored in the Parquet
/// file's metadata. A catalog of another version is re-indexed from scratch.
pub const SCHEMA_VERSION: &str = "1";

/// DECIMAL(20, 0): every u64 seed (ComfyUI's reach 2^64 - 1) and every i64.
const SEED_TYPE: DataType = DataType::Decimal128(20, 0);

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn i64f(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

fn f64f(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        true,
    )
}

fn tensor_fields() -> Fields {
    Fields::from(vec![
        utf8("name"),
        list_of("shape", DataType::Int64),
        utf8("dtype"),
        utf8("codec"),
        utf8("sha256"),
        i64f("bytes"),
        i64f("stored_bytes"),
    ])
}

fn lora_fields() -> Fields {
    Fields::from(vec![
        utf8("name"),
        utf8("sha256"),
        f64f("strength_model"),
        f64f("strength_clip"),
    ])
}

fn env_fields() -> Fields {
    Fields::from(vec![
        utf8("id"),
        utf8("canonical"),
        Field::new("affects_pixels", DataType::Boolean, true),
    ])
}

/// The catalog's schema, in column order.
pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("mtime_ns", DataType::Int64, false),
        utf8("file_sha256"),
        utf8("flavor"),
        utf8("format_version"),
        utf8("created"),
        utf8("host_app"),
        utf8("host_version"),
        utf8("model_name"),
        utf8("model_sha256"),
        list_of("loras", DataType::Struct(lora_fields())),
        utf8("prompt"),
        utf8("negative_prompt"),
        Field::new("seed", SEED_TYPE, true),
        i64f("steps"),
        f64f("cfg"),
        utf8("sampler"),
        utf8("scheduler"),
        f64f("denoise"),
        i64f("width"),
        i64f("height"),
        i64f("batch_index"),
        i64f("batch_size"),
        utf8("batch_id"),
        list_of("tensors", DataType::Struct(tensor_fields())),
        utf8("noise_sha256"),
        Field::new("has_image", DataType::Boolean, true),
        utf8("image_sha256"),
        list_of("environment", DataType::Struct(env_fields())),
    ];
    fields.extend(ENV_COLUMNS.iter().map(|id| utf8(&format!("env_{id}"))));
    fields.extend([
        utf8("env_gpu_driver"),
        utf8("env_pixel_sha256"),
        Field::new("verified", DataType::Boolean, true),
        utf8("error"),
    ]);
    Arc::new(Schema::new(fields))
}

fn strings<'a>(rows: &'a [Row], f: impl Fn(&'a Row) -> Option<&'a str>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

fn ints(rows: &[Row], f: impl Fn(&Row) -> Option<i64>) -> ArrayRef {
    let mut b = Int64Builder::with_capacity(rows.len());
    rows.iter().for_each(|r| b.append_option(f(r)));
    Arc::new(b.finish())
}

fn floats(rows: &[Row], f: impl Fn(&Row) -> Option<f64>) -> ArrayRef {
    let mut b = Float64Builder::with_capacity(rows.len());
    rows.iter().for_each(|r| b.append_option(f(r)));
    Arc::new(b.finish())
}

fn bools(rows: &[Row], f: impl Fn(&Row) -> Option<bool>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<BooleanArray>())
}

/// A `list<struct>` column: `items(row)` gives each row's entries, `columns` turns all
/// entries (flattened) into the struct's child arrays, in `fields` order.
fn struct_list<'a, T: 'a>(
    rows: &'a [Row],
    fields: Fields,
    items: impl Fn(&'a Row) -> &'a [T],
    columns: impl Fn(&[&'a T]) -> Vec<ArrayRef>,
) -> std::result::Result<ArrayRef, ArrowError> {
    let flat: Vec<&T> = rows.iter().flat_map(|r| items(r).iter()).collect();
    let values = StructArray::try_new(fields.clone(), columns(&flat), None)?;
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| items(r).len()));
    let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
    Ok(Arc::new(ListArray::try_new(
        item,
        offsets,
        Arc::new(values),
        None,
    )?))
}

/// The rows as one record batch with [`schema`].
pub fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(rows).map_err(|e| Error::Internal(format!("building the catalog table: {e}")))
}

fn batch(rows: &[Row]) -> std::result::Result<RecordBatch, ArrowError> {
    let mut seeds = Decimal128Builder::with_capacity(rows.len());
    rows.iter().for_each(|r| seeds.append_option(r.seed));
    let seeds = seeds.finish().with_data_type(SEED_TYPE);

    let loras = struct_list(
        rows,
        lora_fields(),
        |r| &r.loras,
        |l| {
            vec![
                Arc::new(l.iter().map(|x| Some(x.name.as_str())).collect::<StringArray>()) as ArrayRef,
                Arc::new(l.iter().map(|x| x.sha256.as_deref()).collect::<StringArray>()),
                Arc::new(
                    l.iter()
                        .map(|x| x.strength_model)
                        .collect::<arrow_array::Float64Array>(),
                ),
                Arc::new(
                    l.iter()
                        .map(|x| x.strength_clip)
                        .collect::<arrow_array::Float64Array>(),
                ),
            ]
        },
    )?;
    let tensors = struct_list(
        rows,
        tensor_fields(),
        |r| &r.tensors,
        |t| {
            let mut shape = ListBuilder::new(Int64Builder::new());
            for x in t {
                shape.values().append_slice(&x.shape);
                shape.append(true);
            }
            vec![
                Arc::new(t.iter().map(|x| Some(x.name.as_str())).collect::<StringArray>()) as ArrayRef,
                Arc::new(shape.finish()),
                Arc::new(t.iter().map(|x| Some(x.dtype.as_str())).collect::<StringArray>()),
                Arc::new(t.iter().map(|x| Some(x.codec.as_str())).collect::<StringArray>()),
                Arc::new(t.iter().map(|x| Some(x.sha256.as_str())).collect::<StringArray>()),
                Arc::new(
                    t.iter()
                        .map(|x| Some(x.bytes))
                        .collect::<arrow_array::Int64Array>(),
                ),
                Arc::new(
                    t.iter()
                        .map(|x| Some(x.stored_bytes))
                        .collect::<arrow_array::Int64Array>(),
                ),
            ]
        },
    )?;
    let environment = struct_list(
        rows,
        env_fields(),
        |r| &r.environment,
        |e| {
            vec![
                Arc::new(e.iter().map(|x| Some(x.id.as_str())).collect::<StringArray>()) as ArrayRef,
                Arc::new(
                    e.iter()
                        .map(|x| Some(x.canonical.as_str()))
                        .collect::<StringArray>(),
                ),
                Arc::new(e.iter().map(|x| Some(x.affects_pixels)).collect::<BooleanArray>()),
            ]
        },
    )?;

    let mut columns: Vec<ArrayRef> = vec![
        strings(rows, |r| Some(r.path.as_str())),
        Arc::new(rows.iter().map(|r| r.size).collect::<arrow_array::Int64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.mtime_ns)
                .collect::<arrow_array::Int64Array>(),
        ),
        strings(rows, |r| r.file_sha256.as_deref()),
        strings(rows, |r| r.flavor.as_deref()),
        strings(rows, |r| r.format_version.as_deref()),
        strings(rows, |r| r.created.as_deref()),
        strings(rows, |r| r.host_app.as_deref()),
        strings(rows, |r| r.host_version.as_deref()),
        strings(rows, |r| r.model_name.as_deref()),
        strings(rows, |r| r.model_sha256.as_deref()),
        loras,
        strings(rows, |r| r.prompt.as_deref()),
        strings(rows, |r| r.negative_prompt.as_deref()),
        Arc::new(seeds),
        ints(rows, |r| r.steps),
        floats(rows, |r| r.cfg),
        strings(rows, |r| r.sampler.as_deref()),
        strings(rows, |r| r.scheduler.as_deref()),
        floats(rows, |r| r.denoise),
        ints(rows, |r| r.width),
        ints(rows, |r| r.height),
        ints(rows, |r| r.batch_index),
        ints(rows, |r| r.batch_size),
        strings(rows, |r| r.batch_id.as_deref()),
        tensors,
        strings(rows, |r| r.noise_sha256.as_deref()),
        bools(rows, |r| r.has_image),
        strings(rows, |r| r.image_sha256.as_deref()),
        environment,
    ];
    for i in 0..ENV_COLUMNS.len() {
        columns.push(strings(rows, move |r| r.env[i].as_deref()));
    }
    columns.extend([
        strings(rows, |r| r.env_gpu_driver.as_deref()),
        strings(rows, |r| r.env_pixel_sha256.as_deref()),
        bools(rows, |r| r.verified),
        strings(rows, |r| r.error.as_deref()),
    ]);
    RecordBatch::try_new(schema(), columns)
}
