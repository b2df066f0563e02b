//! The catalog on disk: one Parquet file (zstd), written atomically, with the schema version
//! and the options of the run in its key-value metadata. Re-indexing against an existing
//! catalog reads only the files that are new or whose size or modification time changed, keeps
//! the other rows as they are, and drops the rows of files that are gone.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array};
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use rayon::prelude::*;

use super::image_row::{self, is_image_name};
use super::scan::{find_files, FileEntry};
use super::table::{rows_to_batch, schema, SCHEMA_VERSION};
use super::{index_entries, IndexOptions};
use raiiaf::error::{Error, Result};

const KEY_SCHEMA: &str = "raiiaf.catalog.schema_version";
const KEY_OPTIONS: &str = "raiiaf.catalog.options";

/// What an index run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Files found under the roots.
    pub files: usize,
    /// Files read in this run (new, changed, previously failed, or all on a full run).
    pub read: usize,
    /// Rows kept from the existing catalog unchanged.
    pub reused: usize,
    /// Rows of the existing catalog dropped because their file is gone.
    pub dropped: usize,
    /// Rows with an `error`.
    pub errors: usize,
}

fn options_key(options: IndexOptions) -> String {
    format!("hash={};verify={}", options.hash as u8, options.verify as u8)
}

fn parquet_err(what: &str) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::invalid(format!("{what}: {e}"))
}

/// Writes `batch` to `path` as Parquet, atomically (a temporary file in the same directory,
/// renamed over the target), recording the options it was made with.
pub fn write_catalog(path: &Path, batch: &RecordBatch, options: IndexOptions) -> Result<()> {
    let mut writer = CatalogWriter::create(path, batch.schema(), options)?;
    writer.write(batch)?;
    writer.finish()
}

/// The catalog's zstd level. Level 1 rather than 3: a quarter less of the writer's CPU on
/// 20,000 rows of `.raiiaf` files (the pages are small, the columns repetitive) and, on those
/// rows, a smaller file (1.81 MB against 1.87), on A1111 PNGs the same size.
const ZSTD_LEVEL: i32 = 1;

/// Columns whose values are (nearly always) one per file: written without Parquet's
/// dictionary encoding, which would hash every value into a dictionary that grows to its
/// 1 MB limit and is then given up for the plain encoding anyway (or, for `path`, kept: a
/// dictionary of every value plus an index per row). Readers see the same values; the file is
/// 5% (`.raiiaf` rows) to 20% (PNG rows) smaller and its writing 10% cheaper.
const UNIQUE_COLUMNS: [&str; 6] = [
    "path",
    "image_path",
    "file_sha256",
    "image_sha256",
    "noise_sha256",
    "created",
];

/// A catalog being written, batch by batch: to a temporary file in the target's directory,
/// renamed over the target by [`CatalogWriter::finish`], removed if it is dropped unfinished.
struct CatalogWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<File>>,
}

impl CatalogWriter {
    fn create(path: &Path, schema: arrow_schema::SchemaRef, options: IndexOptions) -> Result<CatalogWriter> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(ZSTD_LEVEL).map_err(parquet_err("zstd level"))?,
            ))
            .set_key_value_metadata(Some(vec![
                KeyValue::new(KEY_SCHEMA.to_owned(), SCHEMA_VERSION.to_owned()),
                KeyValue::new(KEY_OPTIONS.to_owned(), options_key(options)),
            ]));
        for column in UNIQUE_COLUMNS {
            props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        let props = props.build();
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut out = CatalogWriter {
            path: path.to_path_buf(),
            tmp,
            writer: None,
        };
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_err(&out.what()))?;
        out.writer = Some(writer);
        Ok(out)
    }

    fn what(&self) -> String {
        format!("writing {}", self.tmp.display())
    }

    /// Encodes `batch` (columns are compressed as they come, not all at the end).
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let what = self.what();
        match &mut self.writer {
            Some(w) => w.write(batch).map_err(parquet_err(&what)),
            None => Err(Error::Internal("catalog writer used after finish".into())),
        }
    }

    /// Closes the file, syncs it and renames it over the target.
    fn finish(mut self) -> Result<()> {
        let what = self.what();
        let Some(writer) = self.writer.take() else {
            return Err(Error::Internal("catalog writer finished twice".into()));
        };
        let file = writer.into_inner().map_err(parquet_err(&what))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for CatalogWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Files read per batch when a catalog is written as it is read.
const STREAM_BATCH: usize = 2048;

/// Reads the rows of `files` (in order) and writes them to `output`, overlapping the two: the
/// reading threads fill one batch of rows while this thread encodes the previous one. Returns
/// how many rows have an `error`.
///
/// The batches' buffers go back and forth between the two threads and are reused: a fresh
/// batch of rows (a few MB) per 2,048 files cost the kernel a fifth of the run zeroing the
/// new pages.
fn index_streaming(files: &[FileEntry], output: &Path, options: IndexOptions) -> Result<usize> {
    let mut writer = CatalogWriter::create(output, schema(), options)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<super::Row>>(1);
    let (give_back, take_back) = std::sync::mpsc::channel::<Vec<super::Row>>();
    let mut errors = 0;
    std::thread::scope(|s| -> Result<()> {
        s.spawn(move || {
            // One slot per file, in order (`None`: an image without generation metadata).
            let mut slots: Vec<Option<super::Row>> = Vec::new();
            for part in files.chunks(STREAM_BATCH) {
                part.par_iter()
                    .map(|entry| image_row::row_for(entry, options))
                    .collect_into_vec(&mut slots);
                let mut rows = take_back.try_recv().unwrap_or_default();
                rows.extend(slots.drain(..).flatten());
                // A closed channel: the writer failed and stopped; so does reading.
                if tx.send(rows).is_err() {
                    break;
                }
            }
        });
        // Every batch is received even after a failure, so the reader never blocks.
        let mut result = Ok(());
        for mut rows in rx {
            errors += rows.iter().filter(|r| r.error.is_some()).count();
            if result.is_ok() {
                result = rows_to_batch(&rows).and_then(|batch| writer.write(&batch));
            }
            rows.clear();
            // (The reader may have finished: then the buffer is simply dropped.)
            let _ = give_back.send(rows);
        }
        result
    })?;
    if files.is_empty() {
        writer.write(&rows_to_batch(&[])?)?;
    }
    writer.finish()?;
    Ok(errors)
}

/// A catalog written by [`write_catalog`], with the options it was made with; `None` when it
/// has another schema version (an older raiiaf-rs): it is then rebuilt. A file that is not a
/// catalog is refused rather than overwritten: the output path may be a typo.
pub fn read_catalog(path: &Path) -> Result<Option<(RecordBatch, String)>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let what = format!("reading the catalog {}", path.display());
    let not_catalog = |why: String| {
        Error::invalid(format!(
            "{} exists and is not a raiiaf catalog ({why}); choose another output path, or delete it",
            path.display()
        ))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| not_catalog(e.to_string()))?;
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let get = |key: &str| kv.iter().find(|k| k.key == key).and_then(|k| k.value.clone());
    match get(KEY_SCHEMA) {
        None => return Err(not_catalog("no catalog schema version in its metadata".into())),
        Some(v) if v != SCHEMA_VERSION || builder.schema().fields() != schema().fields() => return Ok(None),
        Some(_) => {}
    }
    let options = get(KEY_OPTIONS).unwrap_or_default();
    let reader = builder.build().map_err(parquet_err(&what))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    let batch = concat_batches(&schema(), &batches).map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    Ok(Some((batch, options)))
}

/// Indexes `roots` into the Parquet catalog at `output`. With an existing catalog made with
/// the same options (and `full` false), only new and changed files are read; rows of files no
/// longer under `roots` are dropped. Rows are sorted by path.
pub fn index_to_parquet(
    roots: &[PathBuf],
    output: &Path,
    options: IndexOptions,
    full: bool,
) -> Result<IndexReport> {
    let files = find_files(roots)?;
    let old = if full || !output.exists() {
        None
    } else {
        read_catalog(output)?.filter(|(_, o)| *o == options_key(options))
    };
    let mut report = IndexReport {
        files: files.len(),
        ..IndexReport::default()
    };
    // Which old rows still describe their file exactly.
    let mut reused: HashMap<&Path, u32> = HashMap::new();
    let (mut old_rows, mut old_seen) = (0, 0);
    if let Some((batch, _)) = &old {
        old_rows = batch.num_rows();
        let col = |name: &str| batch.column_by_name(name).cloned();
        let (Some(paths), Some(sizes), Some(mtimes), Some(errors), Some(images)) = (
            col("path"),
            col("size"),
            col("mtime_ns"),
            col("error"),
            col("image_path"),
        ) else {
            return Err(Error::Internal(
                "catalog columns missing after the schema check".into(),
            ));
        };
        let paths = paths.as_any().downcast_ref::<StringArray>();
        let sizes = sizes.as_any().downcast_ref::<arrow_array::Int64Array>();
        let mtimes = mtimes.as_any().downcast_ref::<arrow_array::Int64Array>();
        let images = images.as_any().downcast_ref::<StringArray>();
        let (Some(paths), Some(sizes), Some(mtimes), Some(images)) = (paths, sizes, mtimes, images) else {
            return Err(Error::Internal(
                "catalog column types after the schema check".into(),
            ));
        };
        let by_path: HashMap<&str, usize> = (0..old_rows).map(|i| (paths.value(i), i)).collect();
        for f in &files {
            let Some(&i) = f.path.to_str().and_then(|p| by_path.get(p)) else {
                continue;
            };
            old_seen += 1;
            let unchanged = f.error.is_none()
                && errors.is_null(i)
                && sizes.value(i) == i64::try_from(f.size).unwrap_or(-1)
                && mtimes.value(i) == f.mtime_ns
                // A .raiiaf whose image beside it appeared or went away is read again.
                && same_image(f, images, i);
            if unchanged {
                reused.insert(f.path.as_path(), i as u32);
            }
        }
    }
    report.dropped = old_rows.saturating_sub(old_seen);
    if reused.is_empty() {
        // Nothing kept: every row is new, written as it is read.
        report.read = files.len();
        report.errors = index_streaming(&files, output, options)?;
        return Ok(report);
    }
    let to_read: Vec<FileEntry> = files
        .iter()
        .filter(|f| !reused.contains_key(f.path.as_path()))
        .cloned()
        .collect();
    let new_rows = index_entries(&to_read, options);
    report.read = to_read.len();
    report.reused = reused.len();
    report.errors = new_rows.iter().filter(|r| r.error.is_some()).count();
    let new_batch = rows_to_batch(&new_rows)?;

    let batch = match &old {
        Some((old_batch, _)) if !reused.is_empty() => {
            // Old rows kept, then the new ones, put in path order (the files' order).
            let mut kept: Vec<(&Path, u32)> = reused.iter().map(|(p, i)| (*p, *i)).collect();
            kept.sort();
            let old_idx = UInt32Array::from(kept.iter().map(|(_, i)| *i).collect::<Vec<_>>());
            let kept_batch = take_record_batch(old_batch, &old_idx).map_err(arrow_err)?;
            let both = concat_batches(&schema(), [&kept_batch, &new_batch]).map_err(arrow_err)?;
            let mut order: Vec<(&Path, u32)> = kept
                .iter()
                .map(|(p, _)| *p)
                // (the rows read, not the files: an image without metadata has none)
                .chain(new_rows.iter().map(|r| Path::new(r.path.as_str())))
                .zip(0u32..)
                .collect();
            order.sort();
            let idx = UInt32Array::from(order.iter().map(|(_, i)| *i).collect::<Vec<_>>());
            take_record_batch(&both, &idx).map_err(arrow_err)?
        }
        _ => new_batch,
    };
    write_catalog(output, &batch, options)?;
    Ok(report)
}

/// Whether the old row's `image_path` is still the image this entry's row would name: the
/// image beside a `.raiiaf`, or the image file itself.
fn same_image(f: &FileEntry, images: &StringArray, i: usize) -> bool {
    let want = f
        .image
        .as_deref()
        .or(is_image_name(&f.path).then_some(f.path.as_path()));
    match want {
        None => images.is_null(i),
        Some(p) => images.is_valid(i) && p.to_str() == Some(images.value(i)),
    }
}

fn arrow_err(e: arrow_schema::ArrowError) -> Error {
    Error::Internal(format!("merging the catalog: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_columns_are_catalog_columns() {
        let schema = schema();
        for name in UNIQUE_COLUMNS {
            assert!(
                schema.field_with_name(name).is_ok(),
                "{name} is no catalog column"
            );
        }
    }
}
