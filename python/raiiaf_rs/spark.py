"""The catalog as a PySpark job, for archives too large for one machine or spread over many.

The rows are exactly those of ``raiiaf index`` (same Rust code, same schema: CATALOG.md): the
file list is split over Spark's executors, each partition runs :func:`raiiaf_rs` on its files
and hands Arrow record batches back (``mapInArrow``), and the result is written as Parquet, one
file per partition, optionally Hive-partitioned by columns. raiiaf-rs must be installed on every
executor (``pip install raiiaf-rs``, or ship a venv with ``--archives``).

Two ways to reach the files:

- ``source="path"`` (default): the executors open the files by path, so every executor must see
  the archive at the same path (one machine, NFS, a FUSE mount of a bucket). Only headers and
  manifests are read. The driver lists the files (:func:`find_files`) unless given a list.
- ``source="binary"``: Spark's ``binaryFile`` source reads the files through Hadoop's file
  systems (``s3a://``, ``gs://``, ``abfss://``, ``hdfs://``, ``file:``); each file's bytes travel
  to an executor whole. ``path`` is then the URI Spark reports and ``mtime_ns`` has Hadoop's
  millisecond precision. The driver lists the files by the indexer's rules (CATALOG.md, "Which
  files": any-case ``.raiiaf``/``.gen5`` names, dotfiles included, symlinked directories not
  followed; local paths are listed by the indexer itself), not by ``binaryFile``'s, which
  follows symlinked directories and skips names starting with ``.`` or ``_`` and empty files.
  Files that ``binaryFile`` cannot hand over get their row on the driver, the row the indexer
  gives: empty files and broken links (an error row), dotfiles and ``_`` files (read on the
  driver through the same file system), and files over Spark's ``binaryFile`` limit
  (``spark.sql.sources.binaryFile.maxLength``, 2 GiB; an error row saying so, never an aborted
  job: index such files with ``source="path"``).

Command line (``spark-submit`` runs the same ``main``)::

    python -m raiiaf_rs.spark /archive -o catalog/ [--master local[*]] [--partitions N]
    spark-submit --master yarn "$(python -c 'import raiiaf_rs.spark as s; print(s.__file__)')" \\
        s3a://bucket/archive --source binary -o s3a://bucket/catalog
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import raiiaf_rs
from raiiaf_rs._extension import native


def find_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The ``.raiiaf`` files under ``paths`` (absolute, sorted), as ``raiiaf index`` finds them."""
    return native._find_files([os.fspath(p) for p in paths])


def local_mode_environment() -> None:
    """Settings for Spark's local mode, unless already set: workers run this Python (the one
    with raiiaf-rs, not the first on PATH), and Spark binds to the loopback address instead of
    resolving the host name (which fails on machines whose name is in no DNS or hosts file)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("SPARK_LOCAL_HOSTNAME", "localhost")


def spark_schema() -> Any:
    """The catalog schema as a Spark ``StructType``."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(pa.schema(native._catalog_files([])))


def _index_partition(
    batches: Iterator[Any], hash: bool, verify: bool, max_decoded_bytes: int | None
) -> Iterator[Any]:
    import pyarrow as pa

    for batch in batches:
        files = batch.column(0).to_pylist()
        table = pa.table(native._catalog_files(files, hash, verify, max_decoded_bytes))
        yield from table.to_batches()


def _index_binary_partition(
    batches: Iterator[Any], hash: bool, verify: bool, max_decoded_bytes: int | None
) -> Iterator[Any]:
    import pyarrow as pa

    for batch in batches:
        paths = batch.column("path").to_pylist()
        contents = batch.column("content").to_pylist()
        # Spark's timestamps are microseconds since the epoch.
        mtimes = batch.column("modificationTime").cast(pa.int64()).to_pylist()
        items = [(p, c, int(m) * 1000) for p, c, m in zip(paths, contents, mtimes)]
        table = pa.table(native._catalog_bytes(items, hash, verify, max_decoded_bytes))
        yield from table.to_batches()


#: Spark's ``binaryFile`` refuses larger files (``spark.sql.sources.binaryFile.maxLength``).
_BINARY_MAX_DEFAULT = 2**31 - 1

#: Characters Hadoop reads as a glob in a path given to ``load``.
_GLOB_CHARS = re.compile(r"([{}\[\]*?\\])")


def is_catalog_name(name: str) -> bool:
    """The indexer's name rule (``scan.rs``, Rust's ``Path::extension``): the text after the
    last dot is ``raiiaf`` or ``gen5`` in any case, and something comes before that dot (a file
    named just ``.raiiaf`` has no extension)."""
    stem, dot, ext = name.rpartition(".")
    return bool(dot and stem) and ext.lower() in ("raiiaf", "gen5")


def _is_local(path: str) -> bool:
    scheme = urllib.parse.urlsplit(path).scheme
    return len(scheme) <= 1 or scheme == "file"  # "C:" is a drive, not a scheme


def _local_path(path: str) -> str:
    """A local root as a path: ``file:///x`` and ``file:/x`` are ``/x`` (Hadoop paths are not
    percent-encoded)."""
    for prefix in ("file://", "file:"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _hadoop_listing(spark: Any, root: str) -> list[tuple[str, int, int]]:
    """``(uri, size, mtime_ns)`` of the catalog files under ``root`` on a Hadoop file system,
    by the indexer's rules: recursive, symlinked directories not followed, any-case names,
    dotfiles and ``_`` files included, a file named directly taken whatever its name."""
    jvm = spark._jvm
    root_path = jvm.org.apache.hadoop.fs.Path(root)
    fs = root_path.getFileSystem(spark._jsc.hadoopConfiguration())
    out = []

    def add(status: Any) -> None:
        out.append(
            (
                status.getPath().toString(),
                int(status.getLen()),
                int(status.getModificationTime()) * 10**6,
            )
        )

    top = fs.getFileStatus(root_path)  # a missing root fails the run, as `raiiaf index`'s
    if not top.isDirectory():
        add(top)
        return out
    stack = [root_path]
    while stack:
        for status in fs.listStatus(stack.pop()):
            if status.isSymlink():
                continue
            if status.isDirectory():
                stack.append(status.getPath())
            elif is_catalog_name(status.getPath().getName()):
                add(status)
    return out


def _read_hadoop(spark: Any, uri: str) -> bytes:
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark._jsc.hadoopConfiguration()).open(path)
    try:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def _replaced(table: Any, **columns: Any) -> Any:
    """``table`` with these columns' values replaced, fields (and nullability) kept."""
    for name, values in columns.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), values)
    return table


def _binary_dataframe(
    spark: Any, paths: list[str], schema: Any, partitions: int | None, args: tuple
) -> Any:
    """``source="binary"``: the files listed by the indexer's rules; ``binaryFile`` reads those
    it can hand over, the driver makes the rows of the others (see the module docstring)."""
    import pyarrow as pa

    limit = int(spark.conf.get("spark.sql.sources.binaryFile.maxLength", str(_BINARY_MAX_DEFAULT)))
    verify, max_decoded = args[1:]
    through_spark: list[str] = []
    driver_tables = []

    def driver_row(uri: str, content: bytes, mtime_ns: int) -> None:
        driver_tables.append(pa.table(native._catalog_bytes([(uri, content, mtime_ns)], *args)))

    def unread_row(uri: str, size: int, mtime_ns: int, error: str) -> None:
        # A file not read at all: its own columns and why (no file_sha256: nothing was hashed).
        table = pa.table(native._catalog_bytes([(uri, b"", mtime_ns)], False, verify, max_decoded))
        table = _replaced(table, size=pa.array([size], pa.int64()), error=pa.array([error]))
        driver_tables.append(table)

    listed: list[tuple[str, int, int, str | None]] = []  # (uri, size, mtime_ns, local path)
    for root in paths:
        if not _is_local(root):
            listed.extend((u, n, m, None) for u, n, m in _hadoop_listing(spark, root))
            continue
        for path in find_files([_local_path(root)]):
            try:
                st = os.stat(path)
            except OSError:  # a broken link: the indexer's own error row
                table = pa.table(native._catalog_files([path], *args))
                driver_tables.append(_replaced(table, path=pa.array(["file:" + path])))
                continue
            if stat.S_ISDIR(st.st_mode):  # the walk could not list it: the indexer's row
                try:
                    os.listdir(path)
                except OSError as e:
                    error = f"cannot list the directory: {e.strerror} (os error {e.errno})"
                    unread_row("file:" + path, 0, 0, error)
                continue
            listed.append(("file:" + path, st.st_size, st.st_mtime_ns // 10**6 * 10**6, path))
    for uri, size, mtime_ns, local in listed:
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        if size > limit:
            error = (
                f"{size} bytes: over Spark's binaryFile limit of {limit} bytes "
                "(spark.sql.sources.binaryFile.maxLength); index it with source='path'"
            )
            unread_row(uri, size, mtime_ns, error)
        elif size == 0 or name.startswith((".", "_")):
            if size == 0:
                content = b""
            elif local:
                with open(local, "rb") as f:
                    content = f.read()
            else:
                content = _read_hadoop(spark, uri)
            driver_row(uri, content, mtime_ns)
        else:
            through_spark.append(uri)
    frames = []
    if through_spark:
        df = spark.read.format("binaryFile").load(
            [_GLOB_CHARS.sub(r"\\\1", u) for u in through_spark]
        )
        if partitions:
            df = df.repartition(partitions)
        frames.append(df.mapInArrow(lambda it: _index_binary_partition(it, *args), schema))
    if driver_tables:
        frames.append(spark.createDataFrame(pa.concat_tables(driver_tables), schema=schema))
    if not frames:
        return spark.createDataFrame([], schema)
    return frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])


def catalog_dataframe(
    spark: Any,
    paths: Iterable[str | os.PathLike[str]],
    *,
    source: str = "path",
    files: Sequence[str] | None = None,
    partitions: int | None = None,
    hash: bool = False,
    verify: bool = False,
    max_decoded_bytes: int | None = None,
) -> Any:
    """A Spark DataFrame of catalog rows for the ``.raiiaf`` files under ``paths``."""
    schema = spark_schema()
    args = (hash, verify, max_decoded_bytes)
    paths = [os.fspath(p) for p in paths]
    if source == "binary":
        return _binary_dataframe(spark, paths, schema, partitions, args)
    if source != "path":
        raise ValueError(f"source={source!r}: use 'path' or 'binary'")
    listed = list(files) if files is not None else find_files(paths)
    # About 2,000 files per task, at most four tasks per core.
    most = spark.sparkContext.defaultParallelism * 4
    n = partitions or max(1, min(len(listed) // 2000 + 1, most))
    df = spark.createDataFrame([(f,) for f in listed], "file string").repartition(n)
    return df.mapInArrow(lambda it: _index_partition(it, *args), schema)


def index(
    spark: Any,
    paths: Iterable[str | os.PathLike[str]],
    output: str,
    *,
    partition_by: Sequence[str] = (),
    mode: str = "overwrite",
    **options: Any,
) -> int:
    """Writes the catalog of ``paths`` to ``output`` (a Parquet directory) with Spark; returns
    the number of rows. ``options``: those of :func:`catalog_dataframe`."""
    df = catalog_dataframe(spark, paths, **options).cache()
    try:
        writer = df.write.mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(output)
        return df.count()
    finally:
        df.unpersist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m raiiaf_rs.spark",
        description="Index .raiiaf files into a Parquet catalog with Spark "
        "(the rows `raiiaf index` writes).",
    )
    parser.add_argument("paths", nargs="+", help="directories or files (URIs with --source binary)")
    parser.add_argument("-o", "--output", required=True, help="output directory (Parquet)")
    parser.add_argument("--source", choices=("path", "binary"), default="path")
    parser.add_argument("--master", help="Spark master when not run by spark-submit, e.g. local[*]")
    parser.add_argument("--partitions", type=int, help="Spark partitions (default: by file count)")
    parser.add_argument("--partition-by", action="append", default=[], help="Hive partition column")
    parser.add_argument("--hash", action="store_true", help="also each file's SHA-256")
    parser.add_argument("--verify", action="store_true", help="also decode and verify every chunk")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(f"raiiaf index {raiiaf_rs.__version__}")
    if args.master:
        builder = builder.master(args.master)
        if args.master.startswith("local"):
            local_mode_environment()
    spark = builder.getOrCreate()
    try:
        rows = index(
            spark,
            args.paths,
            args.output,
            partition_by=args.partition_by,
            source=args.source,
            partitions=args.partitions,
            hash=args.hash,
            verify=args.verify,
        )
    finally:
        spark.stop()
    print(f"{args.output}: {rows} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
