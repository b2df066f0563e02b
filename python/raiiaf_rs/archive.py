"""The archive browser's query layer: search, detail and thumbnails over a catalog (the Parquet
file ``raiiaf index`` writes, CATALOG.md), for both homes of the browser (``raiiaf serve`` and
the ComfyUI sidebar tab), which only turn HTTP requests into these calls.

- :meth:`Archive.index` brings the catalog up to date (incremental: only new and changed files
  are read, CATALOG.md) and loads it;
- :meth:`Archive.search` filters (prompt text, model name or hash, seed, sampler, date, image
  size, host, drift against this machine), sorts, groups batches and pages, over the catalog
  as DuckDB loads it once per catalog version (:mod:`raiiaf_rs.archive_table`); every query
  answers in milliseconds on 300,000 rows;
- :meth:`Archive.detail` is one file's settings, environment drift and passes (its manifest
  only: no tensor or image is decoded);
- :meth:`Archive.thumbnail` a small JPEG from a disk cache (:mod:`raiiaf_rs.thumbnails`).

Files are named as the client sees them (relative to an allowed directory, with its tag) and
every file is found through ``resolve``, the host's allow-list (:mod:`raiiaf_rs.allowed`), so
nothing outside the allowed directories is read, whatever the catalog holds.

>>> a = Archive("catalog.parquet", [("", "/data/outputs")], cache_dir="/tmp/thumbs")
>>> a.index()
>>> a.search(Query(text="red fox", sampler="euler", sort="seed"))["rows"]
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np

import raiiaf_rs
from raiiaf_rs import allowed, host
from raiiaf_rs import environment as environment_module
from raiiaf_rs.archive_table import SORT_COLUMNS, Table
from raiiaf_rs.indexing import IndexReport
from raiiaf_rs.thumbnails import DEFAULT_MAX_BYTES, ThumbnailCache, ThumbnailError

#: The most rows one page may hold.
MAX_PER_PAGE = 500


class ArchiveError(ValueError):
    """A request the archive cannot answer; the message says why (HTTP 400 or 404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Query:
    """One search. Empty strings and None mean "any"."""

    text: str = ""  #: words that must all occur in the prompt or negative prompt (any case)
    model: str = ""  #: part of the model's name, or the start of its SHA-256
    seed: str = ""  #: the exact seed (text: seeds reach 2**64 - 1)
    sampler: str = ""  #: the sampler's name, exactly
    host: str = ""  #: the host application, e.g. ``ComfyUI`` (any case)
    date_from: str = ""  #: ISO date or time, inclusive
    date_to: str = ""  #: ISO date (that whole day) or time, inclusive
    min_width: int | None = None
    max_width: int | None = None
    min_height: int | None = None
    max_height: int | None = None
    #: ``pixels``: some pixel-affecting part of the environment differs from this machine's;
    #: ``none``: none does (or none is known to)
    drift: str = ""
    sort: str = "date"  #: a key of :data:`raiiaf_rs.archive_table.SORT_COLUMNS`
    descending: bool = True
    #: one row per batch (its first image, with ``batch_count``) instead of one per file
    group: bool = False
    page: int = 0
    per_page: int = 60

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Query:
        """A query from an HTTP query string's parameters (names as the fields); unknown
        parameters are ignored, a malformed value is an :class:`ArchiveError`."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if raw is None or raw == "":
                continue
            if f.type in ("int | None", "int"):
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ArchiveError(f"{f.name} must be a whole number, not {raw!r}") from None
            elif f.type == "bool":
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = str(raw)
        q = cls(**values)
        q.check()
        return q

    def check(self) -> None:
        """ArchiveError for values no search can take."""
        if self.sort not in SORT_COLUMNS:
            raise ArchiveError(f"sort must be one of {', '.join(SORT_COLUMNS)}, not {self.sort!r}")
        if self.drift not in ("", "pixels", "none"):
            raise ArchiveError(f"drift must be 'pixels' or 'none', not {self.drift!r}")
        if self.page < 0 or not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ArchiveError(f"page must be >= 0 and per_page 1 to {MAX_PER_PAGE}")
        if self.seed and not self.seed.strip().isdigit():
            raise ArchiveError(f"seed must be a whole number, not {self.seed!r}")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value:
                try:
                    _dt.datetime.fromisoformat(value)
                except ValueError:
                    raise ArchiveError(
                        f"{name} must be an ISO date such as 2025-01-31, not {value!r}"
                    ) from None


def _mask(t: Table, q: Query) -> Any:
    """The rows of ``t`` matching ``q``'s filters (a boolean array), None when none filters."""
    masks = []
    if q.text.strip():
        found = t.text_mask(q.text)
        if found is not None:
            masks.append(found)
    if q.model.strip():
        m = q.model.strip().lower()
        masks.append(
            t.category_mask(
                "model_key", lambda v: m in v.split("\0")[0] or v.split("\0")[1].startswith(m)
            )
        )
    if q.sampler:
        masks.append(t.category_mask("sampler", lambda v: v == q.sampler))
    if q.host:
        masks.append(t.category_mask("host", lambda v: v == q.host.lower()))
    if q.seed:
        seed = int(q.seed)
        masks.append(
            t.seed_known & (t.seed == np.uint64(seed))
            if seed < 2**64
            else np.zeros(t.rows, dtype=bool)
        )
    if q.date_from:
        masks.append(t.date_us >= _epoch_us(q.date_from))
    if q.date_to:
        end = _epoch_us(q.date_to)
        masks.append(t.date_us < end + 86_400_000_000 if len(q.date_to) == 10 else t.date_us <= end)
    for name, column, low in (
        ("min_width", t.width, True),
        ("max_width", t.width, False),
        ("min_height", t.height, True),
        ("max_height", t.height, False),
    ):
        value = getattr(q, name)
        if value is not None:
            masks.append((column >= value) if low else ((column >= 0) & (column <= value)))
    if q.drift:
        masks.append(t.drifted if q.drift == "pixels" else ~t.drifted)
    if q.group:
        masks.append(t.batch_head)
    if not masks:
        return None
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def _epoch_us(text: str) -> int:
    """Microseconds since the epoch of an ISO date or time (UTC unless it says otherwise)."""
    t = _dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return math.floor(t.timestamp() * 1_000_000)


class Archive:
    """A catalog of the files under ``roots`` ((tag, directory) pairs: a file's name is its
    path relative to the directory, plus the tag), queried through DuckDB.

    ``resolve`` maps a name to the real path of an allowed file (ValueError otherwise);
    by default :func:`raiiaf_rs.allowed.resolve` over ``roots``. ``environment``: the ENVC
    document drift is measured against (default: this process's, torch included);
    ``unknown_now``: its components that are not known yet (a missing one is no drift)."""

    def __init__(
        self,
        catalog: str | os.PathLike[str],
        roots: Sequence[tuple[str, str]],
        *,
        cache_dir: str | os.PathLike[str],
        resolve: Callable[[str], str] | None = None,
        environment: Mapping[str, Any] | None = None,
        unknown_now: Sequence[str] = (),
        thumbnail_bytes: int = DEFAULT_MAX_BYTES,
        max_decoded_bytes: int | None = None,
        where: str = "the archive's directories",
    ) -> None:
        self.catalog = os.path.abspath(os.fspath(catalog))
        self.roots = [(tag, os.path.abspath(os.fspath(root))) for tag, root in roots]
        self.resolve = resolve or partial(allowed.resolve, roots=self.roots, where=where)
        self.environment = dict(environment or environment_module.capture(import_torch=True))
        self.max_decoded_bytes = max_decoded_bytes
        self.unknown_now = tuple(unknown_now)
        self.thumbnails = ThumbnailCache(
            os.path.join(os.fspath(cache_dir), "thumbnails"),
            max_bytes=thumbnail_bytes,
            max_decoded_bytes=max_decoded_bytes,
        )
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._table: Table | None = None
        self._loaded: tuple[int, int] | None = None  # (mtime_ns, size) of the loaded catalog

    # --- the catalog ------------------------------------------------------------------------
    def index(self) -> IndexReport:
        """Bring the catalog up to date with the roots' files (only new and changed files are
        read) and load it. One run at a time; a second caller waits for it."""
        with self._index_lock:
            folders = [root for _tag, root in self.roots if os.path.isdir(root)]
            os.makedirs(os.path.dirname(self.catalog), exist_ok=True)
            report = raiiaf_rs.index(
                list(dict.fromkeys(folders)),
                self.catalog,
                max_decoded_bytes=self.max_decoded_bytes,
            )
        self.table()
        return report

    def table(self) -> Table:
        """The loaded catalog, loaded again when the catalog file changed since (re-indexed
        by this or another process). While a new version loads, other callers go on with the
        previous one; only the very first load is waited for."""
        try:
            st = os.stat(self.catalog)
        except FileNotFoundError:
            raise ArchiveError("no catalog yet: index the archive first", 503) from None
        stamp = (st.st_mtime_ns, st.st_size)
        current = self._table
        if current is not None and self._loaded == stamp:
            return current
        if not self._lock.acquire(blocking=current is None):
            return current  # another thread loads the new version meanwhile
        try:
            if self._table is None or self._loaded != stamp:
                self._table = Table(self.catalog, self.roots, self.environment)
                self._loaded = stamp
            return self._table
        finally:
            self._lock.release()

    # --- search --------------------------------------------------------------------------------
    def search(self, q: Query) -> dict[str, Any]:
        """One page of rows matching ``q``: ``{rows, total, page, per_page, pages}``; each row
        has the client ``name``, the prompt's start, model, seed (text), sampler, scheduler,
        steps, cfg, size, date, host, batch (``batch_id``, ``batch_count``), ``pixel_drift``
        (the pixel-affecting components that differ from this machine), ``has_thumbnail`` and
        ``error``."""
        q.check()
        t = self.table()
        mask = _mask(t, q)
        order = t.order(q.sort, q.descending)
        hits = order if mask is None else order[mask[order]]
        start = q.page * q.per_page
        rows = [host.json_safe(r) for r in t.page(hits[start : start + q.per_page])]
        total = int(hits.size)
        return {
            "rows": rows,
            "total": total,
            "page": q.page,
            "per_page": q.per_page,
            "pages": (total + q.per_page - 1) // q.per_page,
        }

    def facets(self) -> dict[str, list[str]]:
        """The values the filters offer: samplers, hosts and models, most used first."""
        cur = self.table().con.cursor()
        try:
            out = {}
            for key, column in (
                ("samplers", "sampler"),
                ("hosts", "host_app"),
                ("models", "model_name"),
            ):
                out[key] = [
                    r[0]
                    for r in cur.execute(
                        f"SELECT {column} FROM archive WHERE {column} IS NOT NULL "
                        f"GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 200"
                    ).fetchall()
                ]
            return out
        finally:
            cur.close()

    # --- one file ------------------------------------------------------------------------------
    def _row(self, name: str) -> dict[str, Any]:
        cur = self.table().con.cursor()
        try:
            cur.execute(
                "SELECT * EXCLUDE (rid, path, batch_head) FROM archive WHERE name = ?",
                [name],
            )
            found = cur.fetchone()
            if found is None:
                raise ArchiveError(f"{name!r} is not in the archive's catalog", 404)
            return dict(zip([d[0] for d in cur.description], found))
        finally:
            cur.close()

    def path_of(self, name: str) -> str:
        """The real path of the allowed file ``name`` (ArchiveError otherwise)."""
        try:
            return self.resolve(name)
        except ValueError as e:
            raise ArchiveError(str(e)) from None

    def detail(self, name: str) -> dict[str, Any]:
        """Everything the detail view shows of file ``name``: its catalog ``row``, its
        ``settings`` (the metadata as written), ``drift`` (each environment component that
        differs from this machine, pixel-affecting first; ``recorded`` false when the file
        has none) and ``passes`` (the ``passes`` records; older files: their ``captures``,
        or only the stored tensors; ``passes_source`` says which)."""
        path = self.path_of(name)
        row = self._row(name)
        try:
            art = raiiaf_rs.read_metadata(path, max_decoded_bytes=self.max_decoded_bytes)
        except (raiiaf_rs.RaiiafError, OSError) as e:
            raise ArchiveError(
                f"{name}: the file cannot be read ({type(e).__name__}: "
                f"{str(e).replace(path, name)})"
            ) from None
        meta = art.metadata if isinstance(art.metadata, dict) else {}
        drifts = (
            host.environment_drift(art, self.environment, unknown_now=self.unknown_now)
            if art.environment
            else []
        )
        tensors = [
            {k: t.get(k) for k in ("name", "shape", "dtype", "codec")}
            for t in row.pop("tensors", None) or []
        ]
        if isinstance(meta.get("passes"), list):
            source, passes = "passes", meta["passes"]
        elif isinstance(meta.get("captures"), list):
            source, passes = "captures", meta["captures"]
        else:
            source, passes = "tensors", []
        return host.json_safe(
            {
                "name": name,
                "row": row,
                "settings": {k: v for k, v in meta.items() if k != "comfyui"},
                "has_workflow": isinstance((meta.get("comfyui") or {}).get("workflow"), dict),
                "drift": {
                    "recorded": art.environment is not None,
                    "differences": [d.to_json() for d in drifts],
                    "summary": host.drift_summary(drifts, recorded=art.environment is not None),
                },
                "passes_source": source,
                "passes": passes,
                "tensors": tensors,
            }
        )

    def metadata(self, name: str) -> dict[str, Any]:
        """The metadata of the allowed file ``name`` (manifest only)."""
        path = self.path_of(name)
        try:
            art = raiiaf_rs.read_metadata(path, max_decoded_bytes=self.max_decoded_bytes)
        except (raiiaf_rs.RaiiafError, OSError) as e:
            raise ArchiveError(f"{name}: the file cannot be read ({type(e).__name__})") from None
        return art.metadata if isinstance(art.metadata, dict) else {}

    def thumbnail(self, name: str) -> bytes:
        """The JPEG thumbnail of file ``name``'s image (from the cache when it was made
        before: no image is decoded then); ArchiveError 404 when it has none."""
        path = self.path_of(name)
        cur = self.table().con.cursor()
        try:
            found = cur.execute(
                "SELECT image_sha256 FROM archive WHERE name = ?", [name]
            ).fetchone()
        finally:
            cur.close()
        if found is None:
            raise ArchiveError(f"{name!r} is not in the archive's catalog", 404)
        try:
            return self.thumbnails.get(path, found[0])
        except ThumbnailError as e:
            raise ArchiveError(f"{name}: {e}", 404) from None
