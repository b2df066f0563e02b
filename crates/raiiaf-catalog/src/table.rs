//! Rows to one Arrow record batch with the catalog schema (CATALOG.md). Each column is defined
//! once, in [`columns`]: its name, nullability and how it is filled from a row; the schema and
//! the batches are both made from that list. A test checks CATALOG.md lists every column.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};

use super::row::{Row, ENV_COLUMNS};
use raiiaf::error::{Error, Result};

/// Changes whenever a column is added, removed or changes type; stored in the Parquet
/// file's metadata. A catalog of another version is re-indexed from scratch.
pub const SCHEMA_VERSION: &str = "2";

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

/// How a column's values come out of a [`Row`]; the Arrow type follows from it.
pub enum Fill {
    Str(StrGetter),
    Int(fn(&Row) -> Option<i64>),
    Float(fn(&Row) -> Option<f64>),
    Bool(fn(&Row) -> Option<bool>),
    /// DECIMAL(20, 0).
    Seed(fn(&Row) -> Option<i128>),
    Loras,
    Tensors,
    Environment,
    /// `list<string>`, `list<decimal(20, 0)>`, `list<bool>`: one value per item of the row
    /// (e.g. per sampler pass); an empty list when the row has none.
    StrList(for<'a> fn(&'a Row) -> Vec<Option<&'a str>>),
    SeedList(fn(&Row) -> Vec<Option<i128>>),
    BoolList(fn(&Row) -> Vec<Option<bool>>),
}

/// A string column's getter (boxed: the `env_<id>` columns capture their index).
pub type StrGetter = Box<dyn for<'a> Fn(&'a Row) -> Option<&'a str> + Send + Sync>;

/// One catalog column: its name, whether it may be null, and how it is filled. The schema and
/// every batch are both made from the list of these ([`columns`]), so a column is added in
/// exactly one place (and documented in CATALOG.md, which `tests/catalog.rs` checks).
pub struct Column {
    pub name: String,
    pub nullable: bool,
    pub fill: Fill,
}

impl Column {
    /// A nullable column.
    pub fn new(name: impl Into<String>, fill: Fill) -> Self {
        Column {
            name: name.into(),
            nullable: true,
            fill,
        }
    }

    /// A nullable string column.
    pub fn string(name: impl Into<String>, get: for<'a> fn(&'a Row) -> Option<&'a str>) -> Self {
        Column::new(name, Fill::Str(Box::new(get)))
    }

    /// The same column, never null.
    pub fn required(self) -> Self {
        Column {
            nullable: false,
            ..self
        }
    }

    /// Its Arrow type.
    pub fn data_type(&self) -> DataType {
        let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
        match &self.fill {
            Fill::Str(_) => DataType::Utf8,
            Fill::Int(_) => DataType::Int64,
            Fill::Float(_) => DataType::Float64,
            Fill::Bool(_) => DataType::Boolean,
            Fill::Seed(_) => SEED_TYPE,
            Fill::Loras => list(DataType::Struct(lora_fields())),
            Fill::Tensors => list(DataType::Struct(tensor_fields())),
            Fill::Environment => list(DataType::Struct(env_fields())),
            Fill::StrList(_) => list(DataType::Utf8),
            Fill::SeedList(_) => list(SEED_TYPE),
            Fill::BoolList(_) => list(DataType::Boolean),
        }
    }

    /// Its Arrow field.
    pub fn field(&self) -> Field {
        Field::new(&self.name, self.data_type(), self.nullable)
    }

    /// Its values for `rows`.
    pub fn array(&self, rows: &[Row]) -> std::result::Result<ArrayRef, ArrowError> {
        Ok(match &self.fill {
            Fill::Str(get) => strings(rows, get),
            Fill::Int(get) => ints(rows, get),
            Fill::Float(get) => floats(rows, get),
            Fill::Bool(get) => bools(rows, get),
            Fill::Seed(get) => {
                let mut b = Decimal128Builder::with_capacity(rows.len());
                rows.iter().for_each(|r| b.append_option(get(r)));
                Arc::new(b.finish().with_data_type(SEED_TYPE))
            }
            Fill::Loras => loras(rows)?,
            Fill::Tensors => tensors(rows)?,
            Fill::Environment => environment(rows)?,
            Fill::StrList(get) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for r in rows {
                    get(r).into_iter().for_each(|v| b.values().append_option(v));
                    b.append(true);
                }
                Arc::new(b.finish())
            }
            Fill::SeedList(get) => {
                let mut b = ListBuilder::new(Decimal128Builder::new().with_data_type(SEED_TYPE));
                for r in rows {
                    get(r).into_iter().for_each(|v| b.values().append_option(v));
                    b.append(true);
                }
                Arc::new(b.finish())
            }
            Fill::BoolList(get) => {
                let mut b = ListBuilder::new(BooleanBuilder::new());
                for r in rows {
                    get(r).into_iter().for_each(|v| b.values().append_option(v));
                    b.append(true);
                }
                Arc::new(b.finish())
            }
        })
    }
}

/// The catalog's columns, in order.
pub fn columns() -> &'static [Column] {
    static COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| {
        let mut c = vec![
            Column::string("path", |r| Some(r.path.as_str())).required(),
            Column::string("source_kind", |r| Some(r.source_kind.unwrap_or("raiiaf"))).required(),
            Column::string("image_path", |r| {
                r.image_path
                    .as_deref()
                    .or(r.source_kind.is_some().then_some(r.path.as_str()))
            }),
            Column::new("size", Fill::Int(|r| Some(r.size))).required(),
            Column::new("mtime_ns", Fill::Int(|r| Some(r.mtime_ns))).required(),
            Column::string("file_sha256", |r| r.file_sha256.as_deref()),
            Column::string("flavor", |r| r.flavor.as_deref()),
            Column::string("format_version", |r| r.format_version.as_deref()),
            Column::string("created", |r| r.created.as_deref()),
            Column::string("host_app", |r| r.host_app.as_deref()),
            Column::string("host_version", |r| r.host_version.as_deref()),
            Column::string("model_name", |r| r.model_name.as_deref()),
            Column::string("model_sha256", |r| r.model_sha256.as_deref()),
            // The webui's short hash: written in an infotext, else the SHA-256's first 10 digits.
            Column::string("model_hash", |r| {
                r.model_hash
                    .as_deref()
                    .or_else(|| r.model_sha256.as_deref().and_then(|s| s.get(..10)))
            }),
            Column::new("loras", Fill::Loras),
            Column::string("prompt", |r| r.prompt.as_deref()),
            Column::string("negative_prompt", |r| r.negative_prompt.as_deref()),
            Column::new("seed", Fill::Seed(|r| r.seed)),
            Column::new("steps", Fill::Int(|r| r.steps)),
            Column::new("cfg", Fill::Float(|r| r.cfg)),
            Column::string("sampler", |r| r.sampler.as_deref()),
            Column::string("scheduler", |r| r.scheduler.as_deref()),
            Column::new("denoise", Fill::Float(|r| r.denoise)),
            Column::new("width", Fill::Int(|r| r.width)),
            Column::new("height", Fill::Int(|r| r.height)),
            Column::new("batch_index", Fill::Int(|r| r.batch_index)),
            Column::new("batch_size", Fill::Int(|r| r.batch_size)),
            Column::string("batch_id", |r| r.batch_id.as_deref()),
            Column::new("tensors", Fill::Tensors),
            Column::string("noise_sha256", |r| r.noise_sha256.as_deref()),
            Column::new("pass_count", Fill::Int(|r| r.pass_count)),
            Column::new(
                "pass_roles",
                Fill::StrList(|r| r.passes.iter().map(|p| p.role.as_deref()).collect()),
            ),
            Column::new(
                "pass_seeds",
                Fill::SeedList(|r| r.passes.iter().map(|p| p.seed).collect()),
            ),
            Column::new(
                "pass_hosts",
                Fill::StrList(|r| r.passes.iter().map(|p| p.host.as_deref()).collect()),
            ),
            Column::new(
                "pass_noise",
                Fill::StrList(|r| r.passes.iter().map(|p| p.noise.as_deref()).collect()),
            ),
            Column::new(
                "pass_samplers",
                Fill::StrList(|r| r.passes.iter().map(|p| p.sampler.as_deref()).collect()),
            ),
            Column::new(
                "pass_exact",
                Fill::BoolList(|r| r.passes.iter().map(|p| Some(p.exact)).collect()),
            ),
            Column::new("has_image", Fill::Bool(|r| r.has_image)),
            Column::string("image_sha256", |r| r.image_sha256.as_deref()),
            Column::new("environment", Fill::Environment),
        ];
        c.extend(ENV_COLUMNS.iter().enumerate().map(|(i, id)| {
            Column::new(
                format!("env_{id}"),
                Fill::Str(Box::new(move |r: &Row| r.env[i].as_deref())),
            )
        }));
        c.extend([
            Column::string("env_gpu_driver", |r| r.env_gpu_driver.as_deref()),
            Column::string("env_pixel_sha256", |r| r.env_pixel_sha256.as_deref()),
            Column::new("verified", Fill::Bool(|r| r.verified)),
            Column::string("error", |r| r.error.as_deref()),
        ]);
        c
    });
    &COLUMNS
}

/// The schema of `columns`, in their order.
pub fn schema_of(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(Column::field).collect::<Vec<_>>()))
}

/// The catalog's schema, in column order.
pub fn schema() -> SchemaRef {
    schema_of(columns())
}

/// `rows` as one record batch of `columns`.
pub fn batch_of(columns: &[Column], rows: &[Row]) -> Result<RecordBatch> {
    let arrays = columns
        .iter()
        .map(|c| c.array(rows))
        .collect::<std::result::Result<Vec<_>, _>>();
    arrays
        .and_then(|a| RecordBatch::try_new(schema_of(columns), a))
        .map_err(|e| Error::Internal(format!("building the catalog table: {e}")))
}

/// The rows as one record batch with [`schema`].
pub fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch_of(columns(), rows)
}

fn strings(rows: &[Row], get: &StrGetter) -> ArrayRef {
    Arc::new(string_array(rows, get))
}

/// The strings `get` gives for `items`, in one buffer sized beforehand (a collected
/// `StringArray` starts at 1 KB and doubles, copying, up to the column's size).
fn string_array<'a, T>(items: &'a [T], get: impl Fn(&'a T) -> Option<&'a str>) -> StringArray {
    let bytes = items.iter().filter_map(&get).map(str::len).sum();
    let mut b = StringBuilder::with_capacity(items.len(), bytes);
    items.iter().for_each(|x| b.append_option(get(x)));
    b.finish()
}

/// [`string_array`] of items given by reference (the flattened entries of a list column).
fn string_array_of<'a, T>(items: &[&'a T], get: impl Fn(&'a T) -> Option<&'a str>) -> ArrayRef {
    Arc::new(string_array(items, |x| get(x)))
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

fn loras(rows: &[Row]) -> std::result::Result<ArrayRef, ArrowError> {
    struct_list(
        rows,
        lora_fields(),
        |r| &r.loras,
        |l| {
            vec![
                string_array_of(l, |x| Some(x.name.as_str())),
                string_array_of(l, |x| x.sha256.as_deref()),
                Arc::new(l.iter().map(|x| x.strength_model).collect::<Float64Array>()),
                Arc::new(l.iter().map(|x| x.strength_clip).collect::<Float64Array>()),
            ]
        },
    )
}

fn tensors(rows: &[Row]) -> std::result::Result<ArrayRef, ArrowError> {
    struct_list(
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
                string_array_of(t, |x| Some(x.name.as_str())),
                Arc::new(shape.finish()),
                string_array_of(t, |x| Some(x.dtype.as_str())),
                string_array_of(t, |x| Some(x.codec.as_str())),
                string_array_of(t, |x| Some(x.sha256.as_str())),
                Arc::new(t.iter().map(|x| Some(x.bytes)).collect::<Int64Array>()),
                Arc::new(t.iter().map(|x| Some(x.stored_bytes)).collect::<Int64Array>()),
            ]
        },
    )
}

fn environment(rows: &[Row]) -> std::result::Result<ArrayRef, ArrowError> {
    struct_list(
        rows,
        env_fields(),
        |r| &r.environment,
        |e| {
            vec![
                string_array_of(e, |x| Some(x.id.as_str())),
                string_array_of(e, |x| Some(x.canonical.as_str())),
                Arc::new(e.iter().map(|x| Some(x.affects_pixels)).collect::<BooleanArray>()),
            ]
        },
    )
}
