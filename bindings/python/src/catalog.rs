//! The catalog (`crate::catalog`) for Python: `_catalog(paths)` returns a `CatalogTable`, an
//! Arrow table handed over through the Arrow PyCapsule interface (`__arrow_c_stream__`), so
//! pyarrow, polars and DuckDB take the columns without a copy and without this package
//! depending on any of them.

use std::ffi::CString;
use std::path::PathBuf;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::ffi::FFI_ArrowSchema;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use serde_json::Value;

use raiiaf::error::Error;
use raiiaf_catalog::{self as catalog, FileEntry, IndexOptions, Row};

use super::errors::{detach_guarded, to_pyerr};
use super::read_options;

/// An Arrow table of catalog rows (schema: CATALOG.md). Pass it to `pyarrow.table()`,
/// `polars.DataFrame()` or DuckDB (it implements the Arrow PyCapsule interface).
#[pyclass(module = "raiiaf_rs", name = "CatalogTable", frozen)]
pub struct CatalogTable {
    batch: RecordBatch,
}

#[pymethods]
impl CatalogTable {
    /// The number of rows (files).
    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn __len__(&self) -> usize {
        self.batch.num_rows()
    }

    fn __repr__(&self) -> String {
        format!(
            "<raiiaf_rs.CatalogTable: {} rows, {} columns>",
            self.batch.num_rows(),
            self.batch.num_columns()
        )
    }

    /// The schema as an `arrow_schema` PyCapsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.batch.schema().as_ref())
            .map_err(|e| to_pyerr(py, Error::Internal(format!("exporting the schema: {e}"))))?;
        PyCapsule::new(py, schema, Some(capsule_name("arrow_schema")))
    }

    /// The rows as an `arrow_array_stream` PyCapsule (one batch). `requested_schema` is
    /// accepted and ignored, as the interface allows: the schema is fixed.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = RecordBatchIterator::new([Ok(self.batch.clone())], self.batch.schema());
        let stream = FFI_ArrowArrayStream::new(Box::new(batches));
        PyCapsule::new(py, stream, Some(capsule_name("arrow_array_stream")))
    }
}

fn capsule_name(name: &str) -> CString {
    CString::new(name).unwrap_or_default()
}

fn table(py: Python<'_>, rows: &[Row]) -> PyResult<CatalogTable> {
    let batch = catalog::rows_to_batch(rows).map_err(|e| to_pyerr(py, e))?;
    Ok(CatalogTable { batch })
}

fn index_options(
    py: Python<'_>,
    hash: bool,
    verify: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<IndexOptions> {
    Ok(IndexOptions {
        hash,
        verify,
        read: read_options(py, true, max_decoded_bytes)?,
    })
}

/// `_catalog(paths, hash, verify, max_decoded_bytes) -> CatalogTable`: the rows of every
/// `.raiiaf` file under `paths` (files or directories), sorted by path.
#[pyfunction]
#[pyo3(signature = (paths, hash=false, verify=false, max_decoded_bytes=None))]
pub fn _catalog(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    hash: bool,
    verify: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<CatalogTable> {
    let options = index_options(py, hash, verify, max_decoded_bytes)?;
    let rows = detach_guarded(py, || catalog::index_paths(&paths, options))?;
    table(py, &rows)
}

/// `_catalog_files(files, hash, verify, max_decoded_bytes) -> CatalogTable`: the rows of
/// exactly these files, in this order (no directory walk; a missing file gets a row with an
/// `error`, never an exception): what each Spark partition runs.
#[pyfunction]
#[pyo3(signature = (files, hash=false, verify=false, max_decoded_bytes=None))]
pub fn _catalog_files(
    py: Python<'_>,
    files: Vec<PathBuf>,
    hash: bool,
    verify: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<CatalogTable> {
    let options = index_options(py, hash, verify, max_decoded_bytes)?;
    let rows = detach_guarded(py, || {
        let entries: Vec<_> = files.into_iter().map(FileEntry::stat).collect();
        Ok(catalog::index_entries(&entries, options))
    })?;
    table(py, &rows)
}

/// `_catalog_bytes(items, hash, verify, max_decoded_bytes) -> CatalogTable`: rows of files
/// given as `(path, bytes, mtime_ns)`, in this order.
#[pyfunction]
#[pyo3(signature = (items, hash=false, verify=false, max_decoded_bytes=None))]
pub fn _catalog_bytes(
    py: Python<'_>,
    items: Vec<(String, Vec<u8>, i64)>,
    hash: bool,
    verify: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<CatalogTable> {
    use rayon::prelude::*;
    let options = index_options(py, hash, verify, max_decoded_bytes)?;
    let rows = detach_guarded(py, || {
        Ok(items
            .into_par_iter()
            .map(|(path, bytes, mtime_ns)| Row::from_bytes(path, &bytes, mtime_ns, options))
            .collect::<Vec<_>>())
    })?;
    table(py, &rows)
}

/// `_find_files(paths) -> list[str]`: the `.raiiaf` files under `paths`, absolute, sorted.
#[pyfunction]
pub fn _find_files(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Vec<String>> {
    let files = detach_guarded(py, || catalog::find_files(&paths))?;
    Ok(files
        .into_iter()
        .map(|f| f.path.to_string_lossy().into_owned())
        .collect())
}

/// `_index(paths, output, hash, verify, full, max_decoded_bytes) -> dict`: `raiiaf index`.
#[pyfunction]
#[pyo3(signature = (paths, output, hash=false, verify=false, full=false, max_decoded_bytes=None))]
pub fn _index<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    output: PathBuf,
    hash: bool,
    verify: bool,
    full: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = index_options(py, hash, verify, max_decoded_bytes)?;
    let r = detach_guarded(py, || catalog::index_to_parquet(&paths, &output, options, full))?;
    let d = PyDict::new(py);
    d.set_item("files", r.files)?;
    d.set_item("read", r.read)?;
    d.set_item("reused", r.reused)?;
    d.set_item("dropped", r.dropped)?;
    d.set_item("errors", r.errors)?;
    Ok(d)
}

/// `_catalog_environment(envc_json) -> CatalogTable`: one row holding only the environment
/// columns of an ENVC document (the current environment, to compare files against).
#[pyfunction]
pub fn _catalog_environment(py: Python<'_>, envc_json: &str) -> PyResult<CatalogTable> {
    let doc: Value = serde_json::from_str(envc_json)
        .map_err(|e| to_pyerr(py, Error::invalid(format!("environment document: {e}"))))?;
    table(py, &[Row::from_environment(&doc)])
}
