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
  millisecond precision.

Command line (``spark-submit`` runs the same ``main``)::

    python -m raiiaf_rs.spark /archive -o catalog/ [--master local[*]] [--partitions N]
    spark-submit --master yarn "$(python -c 'import raiiaf_rs.spark as s; print(s.__file__)')" \\
        s3a://bucket/archive --source binary -o s3a://bucket/catalog
"""

from __future__ import annotations

import argparse
import os
import sys
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
        df = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.{raiiaf,gen5,RAIIAF,GEN5}")
            .load(paths)
        )
        if partitions:
            df = df.repartition(partitions)
        return df.mapInArrow(lambda it: _index_binary_partition(it, *args), schema)
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
