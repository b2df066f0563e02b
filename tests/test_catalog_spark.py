"""The catalog's PySpark job (raiiaf_rs.spark) in Spark local mode: its rows equal `raiiaf index`'s,
by path and by bytes (binaryFile), with the real pyspark from PyPI and the machine's Java."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
import raiiaf_rs
from catalog_check import rows_by_path
from test_catalog import archive  # noqa: F401  (the fixture)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    if shutil.which("java") is None:
        pytest.fail("Java is not installed: dev/setup.sh installs it (the Spark tests need it)")
    from raiiaf_rs.spark import local_mode_environment

    local_mode_environment()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("raiiaf-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


def normalised(rows: dict) -> dict:
    """Spark writes DECIMAL seeds and nested lists as Parquet has them; compare as values."""
    out = {}
    for path, r in rows.items():
        r = dict(r)
        if isinstance(r.get("seed"), Decimal):
            r["seed"] = int(r["seed"])
        out[path] = r
    return out


def test_spark_rows_equal_the_local_indexer(spark, archive, tmp_path):  # noqa: F811
    from raiiaf_rs import spark as rspark

    local = tmp_path / "local.parquet"
    raiiaf_rs.index(archive, local)
    out = str(tmp_path / "spark-catalog")
    n = rspark.index(spark, [archive], out, partitions=3)
    want = normalised(rows_by_path(pq.read_table(local)))
    got = normalised(rows_by_path(pq.read_table(out)))
    assert n == len(want) == 12
    assert got.keys() == want.keys()
    for path in want:
        assert got[path] == want[path], path
    # Three partitions, three Parquet files.
    assert len([f for f in os.listdir(out) if f.endswith(".parquet")]) == 3


def test_spark_hive_partitions_and_binary_source(spark, archive, tmp_path):  # noqa: F811
    from raiiaf_rs import spark as rspark

    local = normalised(rows_by_path(pq.read_table(_local(archive, tmp_path))))
    out = str(tmp_path / "by-format")
    rspark.index(spark, [archive], out, partition_by=["format_version"])
    assert {d for d in os.listdir(out) if d.startswith("format_version=")} >= {
        "format_version=1.0",
        "format_version=1.1",
    }
    got = normalised(rows_by_path(pq.read_table(out)))
    for path, want in local.items():
        assert {k: v for k, v in got[path].items() if k != "format_version"} == {
            k: v for k, v in want.items() if k != "format_version"
        }
    # Bytes through Hadoop's file system (what object storage uses): same rows, with the URI
    # Spark reports as path and its millisecond modification time.
    out = str(tmp_path / "binary")
    rspark.index(spark, [str(archive)], out, source="binary")
    got = normalised(rows_by_path(pq.read_table(out)))
    assert len(got) == len(local)
    for uri, row in got.items():
        path = uri.removeprefix("file:")
        want = local[path]
        assert row["mtime_ns"] == want["mtime_ns"] // 10**6 * 10**6  # Hadoop: milliseconds
        same = {k for k in want if k not in ("path", "mtime_ns")}
        assert {k: row[k] for k in same} == {k: want[k] for k in same}, path


def _local(archive, tmp_path):  # noqa: F811
    out = tmp_path / "local-2.parquet"
    raiiaf_rs.index(archive, out)
    return out


def test_spark_command_line(archive, tmp_path):  # noqa: F811
    out = tmp_path / "cli"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    # The command line must set up local mode itself (loopback, this Python).
    for key in ("SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "raiiaf_rs.spark", str(archive), "-o", str(out)]
    r = subprocess.run(
        [*cmd, "--master", "local[1]"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{out}: 12 rows" in r.stdout
    assert len(pq.read_table(out)) == 12
