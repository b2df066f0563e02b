"""SQL over a catalog with DuckDB (``raiiaf query``; ``pip install duckdb``).

:func:`connect` opens an in-memory DuckDB with three relations:

- ``catalog``: the catalog's rows (a Parquet file written by ``raiiaf index``, or a directory of
  Parquet files written by the Spark job, Hive partitions included);
- ``current_env``: one row, the environment columns of this machine now (torch included when
  installed);
- ``drift``: per catalog row, ``pixel_drift``, the pixel-affecting environment columns whose
  value differs from ``current_env``'s, where both are known (a component this process cannot
  see, such as the UI's attention backend, is unknown, not different).

>>> con = connect("catalog.parquet")
>>> con.sql("SELECT path FROM drift WHERE len(pixel_drift) > 0").fetchall()
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from raiiaf_rs.indexing import environment_row

#: The ``env_*`` columns whose components can change pixels (FORMAT.md §6.1); a test checks
#: this list against the Rust side's classification.
PIXEL_ENV_COLUMNS: tuple[str, ...] = (
    "env_torch",
    "env_cuda",
    "env_gpu",
    "env_torch_backends",
    "env_host",
    "env_attention",
    "env_dtype",
    "env_noise_device",
    "env_determinism",
)


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as e:
        raise ImportError(
            "raiiaf query needs DuckDB: pip install duckdb (or query the Parquet file with any "
            "engine: polars, pyarrow, Spark)"
        ) from e
    return duckdb


def _source(catalog: str) -> str:
    """The DuckDB table function reading ``catalog`` (a file or a Spark output directory)."""
    path = os.fspath(catalog)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path}: no such catalog; write one with: raiiaf index DIR -o {path}"
        )
    quoted = path.replace("'", "''")
    if os.path.isdir(path):
        return f"read_parquet('{quoted}/**/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{quoted}')"


def connect(catalog: str | os.PathLike[str], *, environment: dict[str, Any] | None = None) -> Any:
    """An in-memory DuckDB connection with ``catalog``, ``current_env`` and ``drift`` (module
    docstring). ``environment``: the ENVC document to compare with (default: this process's)."""
    duckdb = _duckdb()
    con = duckdb.connect()
    con.execute(f"CREATE VIEW catalog AS SELECT * FROM {_source(os.fspath(catalog))}")
    env = environment_row(environment)
    con.register("current_env_arrow", env)
    con.execute("CREATE TABLE current_env AS SELECT * FROM current_env_arrow")
    con.unregister("current_env_arrow")
    checks = ", ".join(
        f"CASE WHEN e.{c} IS NOT NULL AND c.{c} IS NOT NULL AND c.{c} <> e.{c} "
        f"THEN '{c[len('env_') :]}' END"
        for c in PIXEL_ENV_COLUMNS
    )
    con.execute(
        "CREATE VIEW drift AS SELECT c.path, "
        f"list_filter([{checks}], lambda x: x IS NOT NULL) AS pixel_drift "
        "FROM catalog c, current_env e"
    )
    return con


def main(argv: list[str]) -> int:
    """``raiiaf query SQL [--catalog FILE] [--csv | --json]``."""
    parser = argparse.ArgumentParser(
        prog="raiiaf query",
        description="Run SQL (DuckDB) over a catalog written by `raiiaf index`. Relations: "
        "catalog (one row per file), current_env (this machine's environment columns), "
        "drift (path, pixel_drift: pixel-affecting components that differ from this machine).",
    )
    parser.add_argument("sql", help='e.g. "SELECT model_name, count(*) FROM catalog GROUP BY 1"')
    parser.add_argument(
        "-c",
        "--catalog",
        default="catalog.parquet",
        help="the catalog: a Parquet file, or a directory of them (default: catalog.parquet)",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    fmt.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args(argv)
    try:
        con = connect(args.catalog)
        rel = con.sql(args.sql)
    except (ImportError, FileNotFoundError) as e:
        print(f"raiiaf query: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # DuckDB's parser, binder and catalog errors
        print(f"raiiaf query: {e}", file=sys.stderr)
        return 1
    if rel is None:
        return 0
    if args.csv or args.json:
        import csv
        import json

        columns = rel.columns
        rows = rel.fetchall()
        if args.csv:
            w = csv.writer(sys.stdout)
            w.writerow(columns)
            w.writerows(rows)
        else:
            for row in rows:
                print(json.dumps(dict(zip(columns, row)), default=str, ensure_ascii=False))
    else:
        rel.show(max_width=200, max_rows=1000)
    return 0
