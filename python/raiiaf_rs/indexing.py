"""The catalog: one row per ``.raiiaf`` file (settings, prompts, models, tensors, environment,
errors) as an Arrow table, so a whole archive can be queried. Schema: CATALOG.md.

>>> import raiiaf_rs, pyarrow as pa, polars as pl, duckdb
>>> table = raiiaf_rs.catalog(["outputs/"])      # reads headers and manifests only
>>> pa.table(table).num_rows                       # no copy: Arrow PyCapsule interface
>>> pl.DataFrame(table).select("path", "seed", "model_name")
>>> raiiaf_rs.index(["outputs/"], "catalog.parquet")   # Parquet, updated incrementally
>>> duckdb.sql("SELECT model_name, count(*) FROM 'catalog.parquet' GROUP BY 1")

The Rust core reads the files in parallel (one thread per core) with the GIL released.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, Union

from raiiaf_rs import environment as environment_module
from raiiaf_rs._extension import native

PathLike = Union[str, "os.PathLike[str]"]

#: An Arrow table of catalog rows; implements ``__arrow_c_stream__`` and
#: ``__arrow_c_schema__`` (pass it to ``pyarrow.table``, ``polars.DataFrame`` or DuckDB).
CatalogTable = native.CatalogTable


class IndexReport(TypedDict):
    """What :func:`index` did."""

    files: int  #: files found under the paths
    read: int  #: files read in this run (new or changed; all with ``full=True``)
    reused: int  #: rows kept unchanged from the existing catalog
    dropped: int  #: rows dropped because their file is gone
    errors: int  #: rows with an ``error``


def _paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = [os.fspath(p) for p in paths]
    if not out:
        raise ValueError("no paths given: pass files or directories to index")
    return out


def catalog(
    paths: PathLike | Iterable[PathLike],
    *,
    hash: bool = False,
    verify: bool = False,
    max_decoded_bytes: int | None = None,
) -> CatalogTable:
    """The catalog rows of every ``.raiiaf`` file under ``paths`` (files, or directories walked
    recursively), sorted by path, as an Arrow table.

    Only headers, manifests and environment chunks are read, unless ``hash`` (each file's
    SHA-256: reads every byte) or ``verify`` (decode every chunk and check every SHA-256:
    column ``verified``). A file that cannot be read still gets a row, with ``error`` saying
    why, ``verified`` false and no other metadata (CATALOG.md). A path that does not exist
    raises ``FileNotFoundError``.
    """
    return native._catalog(_paths(paths), hash, verify, max_decoded_bytes)


def index(
    paths: PathLike | Iterable[PathLike],
    output: PathLike,
    *,
    hash: bool = False,
    verify: bool = False,
    full: bool = False,
    max_decoded_bytes: int | None = None,
) -> IndexReport:
    """Writes the catalog of ``paths`` to the Parquet file ``output`` (``raiiaf index``).

    When ``output`` is a catalog made with the same options, only new and changed files
    (path, size, modification time) are read and rows of files that are gone are dropped;
    ``full=True`` reads everything again. The file is replaced atomically. An existing
    ``output`` that is not a raiiaf catalog is refused, never overwritten.
    """
    report = native._index(_paths(paths), os.fspath(output), hash, verify, full, max_decoded_bytes)
    return IndexReport(**report)


def environment_row(environment: Mapping[str, Any] | None = None) -> CatalogTable:
    """A one-row table with the catalog's environment columns (``env_*``, ``environment``,
    ``env_pixel_sha256``) for an ENVC document, by default this Python's current environment
    (torch included when installed): compare a catalog's rows with it.
    """
    if environment is None:
        environment = environment_module.capture(import_torch=True)
    return native._catalog_environment(json.dumps(environment))
