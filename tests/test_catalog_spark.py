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


def test_binary_source_finds_the_indexers_files_and_never_aborts(spark, archive, tmp_path):  # noqa: F811
    """`source="binary"` on a local file system: the files `raiiaf index` finds, no more, no less
    (any-case names, dotfiles, `_` files, empty files, broken links, glob characters; a
    symlinked directory loop not followed), with the same rows; a file over Spark's binaryFile
    limit gets an error row instead of aborting the job."""
    from raiiaf_rs import spark as rspark

    good = archive / "day1" / "img_0.raiiaf"
    small = archive / "day1" / "img_1.raiiaf"  # the largest one is over the limit set below
    (archive / "odd").mkdir()
    for name in (".hidden.raiiaf", "_under.raiiaf", "MIXED.Raiiaf", "we{ir}d [1].raiiaf"):
        shutil.copy(good, archive / "odd" / name)
    (archive / "odd" / ".raiiaf").write_bytes(good.read_bytes())  # no extension: not indexed
    (archive / "odd" / "zero.raiiaf").write_bytes(b"")
    (archive / "odd" / "broken.raiiaf").symlink_to(archive / "nowhere.raiiaf")
    (archive / "odd" / "loop").symlink_to(archive)  # followed, it would list everything again
    (archive / "odd" / "linked.raiiaf").symlink_to(small)  # a link to a file is a file
    local = normalised(rows_by_path(pq.read_table(_local(archive, tmp_path))))
    assert len(local) == 12 + 7
    sizes = sorted(r["size"] for r in local.values())
    limit = sizes[-3]  # the two largest files are over it
    spark.conf.set("spark.sql.sources.binaryFile.maxLength", str(limit))
    try:
        out = str(tmp_path / "binary-odd")
        n = rspark.index(spark, [str(archive)], out, source="binary")
    finally:
        spark.conf.unset("spark.sql.sources.binaryFile.maxLength")
    got = {
        uri.removeprefix("file:"): row
        for uri, row in normalised(rows_by_path(pq.read_table(out))).items()
    }
    assert n == len(got) and sorted(got) == sorted(local)
    over = 0
    for path, want in local.items():
        row = got[path]
        assert row["path"] == "file:" + path
        assert row["mtime_ns"] == want["mtime_ns"] // 10**6 * 10**6, path
        if want["size"] > limit:
            over += 1
            assert row["error"].startswith(f"{want['size']} bytes: over Spark's binaryFile limit")
            assert (row["size"], row["verified"], row["prompt"]) == (want["size"], False, None)
            continue
        same = {k for k in want if k not in ("path", "mtime_ns")}
        assert {k: row[k] for k in same} == {k: want[k] for k in same}, path
    assert over == 2
    assert local[str(archive / "odd" / "zero.raiiaf")]["error"]
    assert "cannot stat" in local[str(archive / "odd" / "broken.raiiaf")]["error"]


def test_binary_listing_of_a_hadoop_file_system_follows_the_indexers_rules(spark, archive):  # noqa: F811
    """The listing used for `s3a://`, `hdfs://`… (no local indexer there), run through Hadoop's
    local file system: the same files as the indexer's walk, by URI."""
    from raiiaf_rs import spark as rspark

    for name in (".hidden.raiiaf", "_under.raiiaf", "MIXED.Raiiaf", ".raiiaf", "zero.gen5"):
        (archive / "day1" / name).write_bytes(b"")
    listed = rspark._hadoop_listing(spark, "file:" + str(archive))
    want = rspark.find_files([archive])
    assert sorted(u.removeprefix("file:") for u, _, _ in listed) == want
    assert all(n == os.path.getsize(u.removeprefix("file:")) for u, n, _ in listed)
