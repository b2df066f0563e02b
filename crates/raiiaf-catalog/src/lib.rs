//! The catalog: one row per `.raiiaf` file (and per PNG/JPEG/WebP with generation metadata:
//! [`image_row`]), as an Arrow table stored in Parquet, so an archive
//! of many thousands of generations can be queried (DuckDB, polars, pyarrow, Spark) instead of
//! opened file by file. The schema is specified in CATALOG.md.
//!
//! - [`scan`]: which files (directory walk, size and mtime);
//! - [`row`]: one file's row, read from its header, manifest and environment only;
//! - [`passes`]: the sampler passes (`pass_*` columns), by the pass schema's rules;
//! - [`table`]: rows to an Arrow record batch with the documented schema;
//! - [`store`]: the Parquet file, and incremental re-indexing against it.
//!
//! Indexing never stops on one bad file: a file that cannot be read gets a row whose `error`
//! column says why.

pub mod a1111;
pub mod comfy_graph;
pub mod embedded;
pub mod image_row;
pub mod passes;
pub mod row;
pub mod scan;
pub mod store;
pub mod table;

use std::path::PathBuf;

use rayon::prelude::*;

pub use row::Row;
pub use scan::{find_files, FileEntry};
pub use store::{index_to_parquet, read_catalog, write_catalog, IndexReport};
pub use table::{
    batch_of, columns, rows_to_batch, schema, schema_of, Column, Fill, StrGetter, SCHEMA_VERSION,
};

use raiiaf::format::ReadOptions;

/// What an index run reads besides headers and manifests.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexOptions {
    /// Also compute each file's SHA-256 (reads every byte).
    pub hash: bool,
    /// Also decode every chunk and check every SHA-256 (column `verified`).
    pub verify: bool,
    /// Limits for the reads (`max_decoded_bytes` matters with `verify`).
    pub read: ReadOptions,
}

/// Rows for `files`, in the same order (images without generation metadata have none), read
/// in parallel (rayon's pool: one thread per core
/// unless `RAYON_NUM_THREADS` says otherwise).
pub fn index_entries(files: &[FileEntry], options: IndexOptions) -> Vec<Row> {
    files
        .par_iter()
        .filter_map(|entry| image_row::row_for(entry, options))
        .collect()
}

/// Finds the `.raiiaf` files under `roots` (files named directly are taken as they are) and
/// reads their rows, sorted by path.
pub fn index_paths(roots: &[PathBuf], options: IndexOptions) -> raiiaf::Result<Vec<Row>> {
    let files = find_files(roots)?;
    Ok(index_entries(&files, options))
}
