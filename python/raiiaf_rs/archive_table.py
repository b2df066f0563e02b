"""One loaded version of a catalog, as the archive browser searches it (:mod:`raiiaf_rs.archive`).

DuckDB reads the catalog's Parquet once per catalog version and computes, for every row, what
the browser filters and sorts on (client names, dates, the drift against this machine, batches)
and a prompt-search index (table ``tokens``: one row per word of a prompt, sorted by word, so
a word is found by a range scan instead of a scan of every prompt). The per-query work then
runs on column arrays held here: each filter is a vectorised comparison over the rows, each
sort order is computed once and reused, and a page's columns are taken from an Arrow table by
position. A search of 300,000 rows costs a few milliseconds, whatever the filters.

Rows are numbered (``rid``) newest first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from raiiaf_rs import query

#: What separates words, in DuckDB's RE2 (for the index) and in Python (for a search).
_NOT_WORD_SQL = r"[^\p{L}\p{N}]+"
_NOT_WORD = re.compile(r"[\W_]+")

#: Sort keys, and the column holding each (``rid`` for the date: rows are numbered newest first).
SORT_COLUMNS: dict[str, str] = {
    "date": "rid",
    "name": "name",
    "seed": "seed",
    "model": "model_name",
    "sampler": "sampler",
    "steps": "steps",
    "cfg": "cfg",
    "size": "width * height",
}

#: The columns a listed row carries (the page's payload).
LIST_COLUMNS = (
    "name",
    "left(prompt, 240) AS prompt",
    "model_name",
    "seed",
    "sampler",
    "scheduler",
    "steps",
    "cfg",
    "width",
    "height",
    "date",
    "host_app",
    "batch_id",
    "batch_index",
    "batch_count",
    "pixel_drift",
    "image_sha256 IS NOT NULL AS has_thumbnail",
    "error",
)


def words(text: str) -> list[str]:
    """The words of a search, split as the index splits prompts (letters and digits)."""
    return [w for w in _NOT_WORD.split(text.lower()) if w]


def _names_sql(roots: Sequence[tuple[str, str]]) -> str:
    """SQL giving each catalog path its client name (NULL outside every root): the longest
    root holding it wins, so a directory nested in another keeps its own tag."""
    cases = []
    for tag, root in sorted(roots, key=lambda r: -len(r[1])):
        prefix = os.path.join(root, "").replace("'", "''")
        cases.append(
            f"WHEN starts_with(c.path, '{prefix}') THEN "
            f"replace(substr(c.path, {len(prefix) + 1}), '{os.sep}', '/') || "
            f"'{tag.replace(chr(39), chr(39) * 2)}'"
        )
    return "CASE " + " ".join(cases) + " END"


class Table:
    """The catalog ``catalog`` (Parquet) loaded for searching; ``roots`` name the files,
    ``environment`` is the ENVC document drift is measured against."""

    def __init__(
        self, catalog: str, roots: Sequence[tuple[str, str]], environment: dict[str, Any]
    ) -> None:
        con = query.connect(catalog, environment=environment)
        con.execute(f"""
            CREATE TABLE archive AS
            WITH named AS (
                SELECT c.* EXCLUDE (environment),
                    {_names_sql(roots)} AS name,
                    coalesce(try_cast(c.created AS TIMESTAMPTZ),
                             make_timestamptz(c.mtime_ns // 1000)) AS date
                FROM catalog c
            )
            SELECT (row_number() OVER (ORDER BY n.date DESC, n.name) - 1)::INTEGER AS rid,
                n.*,
                d.pixel_drift,
                count(*) OVER (PARTITION BY coalesce(n.batch_id, n.path)) AS batch_count,
                row_number() OVER (PARTITION BY coalesce(n.batch_id, n.path)
                                   ORDER BY n.batch_index NULLS LAST, n.path) = 1 AS batch_head
            FROM named n JOIN drift d ON d.path = n.path
            WHERE n.name IS NOT NULL
            ORDER BY rid
        """)
        con.execute(f"""
            CREATE TABLE tokens AS
            SELECT word, rid FROM (
                SELECT rid, unnest(list_distinct(string_split(regexp_replace(
                    lower(concat_ws(' ', prompt, negative_prompt)), '{_NOT_WORD_SQL}', ' ', 'g'),
                    ' '))) AS word
                FROM archive)
            WHERE word <> ''
            ORDER BY word, rid
        """)
        con.execute("DROP VIEW drift")
        con.execute("DROP VIEW catalog")
        self.con = con
        self.rows = con.execute("SELECT count(*) FROM archive").fetchone()[0]
        cols = con.execute("""
            SELECT
                coalesce(lower(model_name), '') || chr(0) || coalesce(model_sha256, '')
                    AS model_key,
                coalesce(sampler, '') AS sampler,
                coalesce(lower(host_app), '') AS host,
                epoch_us(date) AS date_us,
                coalesce(width, -1) AS width,
                coalesce(height, -1) AS height,
                TRY_CAST(seed AS UBIGINT) AS seed,
                len(pixel_drift) > 0 AS drifted,
                batch_head
            FROM archive ORDER BY rid
        """).fetchnumpy()
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {
            k: _categorical(cols[k]) for k in ("model_key", "sampler", "host")
        }
        self.date_us = np.asarray(cols["date_us"], dtype=np.int64)
        self.width = np.asarray(cols["width"], dtype=np.int64)
        self.height = np.asarray(cols["height"], dtype=np.int64)
        seed = cols["seed"]
        self.seed_known = ~np.ma.getmaskarray(seed)
        self.seed = np.ma.getdata(seed).astype(np.uint64)
        self.drifted = np.asarray(cols["drifted"], dtype=bool)
        self.batch_head = np.asarray(cols["batch_head"], dtype=bool)
        # One chunk per column: taking rows from many chunks would concatenate them each time.
        self.payload = (
            con.sql(f"SELECT {', '.join(LIST_COLUMNS)} FROM archive ORDER BY rid")
            .to_arrow_table()
            .combine_chunks()
        )
        self._orders: dict[str, np.ndarray] = {}
        for key in SORT_COLUMNS:  # every order now, so that no search waits for one
            for descending in (False, True):
                self.order(key, descending)
        self.page(np.arange(min(1, self.rows)))  # Arrow's first take loads its kernels (~1 s)
        self.text_mask("a")  # and DuckDB's first query of a prepared statement

    # --- filters ---------------------------------------------------------------------------
    def text_mask(self, search: str) -> np.ndarray | None:
        """Rows whose prompt or negative prompt holds, for each word of ``search``, a word
        starting with it; None when ``search`` has no words."""
        mask = None
        cur = self.con.cursor()  # one per call: searches run on several threads at once
        try:
            for w in words(search):
                rids = cur.execute(
                    "SELECT rid FROM tokens WHERE word >= ? AND word < ? || chr(1114111)", [w, w]
                ).fetchnumpy()["rid"]
                hit = np.zeros(self.rows, dtype=bool)
                hit[np.asarray(rids, dtype=np.int64)] = True
                mask = hit if mask is None else mask & hit
        finally:
            cur.close()
        return mask

    def category_mask(self, column: str, accept: Any) -> np.ndarray:
        """Rows whose ``column`` (``model_key``, ``sampler``, ``host``) value passes
        ``accept(value)``: decided once per distinct value."""
        values, codes = self._codes[column]
        ok = np.fromiter((bool(accept(v)) for v in values), dtype=bool, count=len(values))
        return ok[codes]

    # --- sorting ---------------------------------------------------------------------------
    def order(self, key: str, descending: bool) -> np.ndarray:
        """The rids sorted by ``key`` (:data:`SORT_COLUMNS`), unknown values last, ties by
        rid (newest first); computed once per key and direction."""
        name = f"{key}:{descending}"
        if name not in self._orders:
            column = SORT_COLUMNS[key]
            if column == "rid":  # newest first: descending dates are ascending rids
                newest = np.arange(self.rows, dtype=np.int64)
                self._orders[name] = newest if descending else newest[::-1].copy()
            else:
                direction = "DESC" if descending else "ASC"
                self._orders[name] = np.asarray(
                    self.con.execute(
                        f"SELECT rid FROM archive ORDER BY {column} {direction} NULLS LAST, rid"
                    ).fetchnumpy()["rid"],
                    dtype=np.int64,
                )
        return self._orders[name]

    def page(self, rids: np.ndarray) -> list[dict[str, Any]]:
        """The listed columns of rows ``rids``, in that order."""
        return self.payload.take(rids).to_pylist()


def _categorical(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, each row's index into them)."""
    distinct, codes = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    return distinct, codes.astype(np.int32)
