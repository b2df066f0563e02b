"""The archive browser's HTTP API, as plain functions of (path, query parameters), so that both
homes serve the same answers: ``raiiaf serve`` (stdlib ``http.server``, :mod:`raiiaf_rs.serve`)
and the ComfyUI sidebar tab (aiohttp, ``comfy_nodes/archive_routes.py``).

Routes, under :data:`PREFIX` (ComfyUI also adds them under ``/api``):

- ``GET  search?text=&model=&seed=&sampler=&host=&date_from=&date_to=&min_width=&...&drift=
  &sort=&descending=&group=&page=&per_page=``: a page of rows (:class:`raiiaf_rs.archive.Query`);
- ``GET  facets``: the samplers, hosts and models the filters offer;
- ``GET  detail?file=NAME``: one file's settings, drift and passes, plus what the home adds
  (``regenerate``);
- ``GET  thumbnail?file=NAME``: a JPEG (from the disk cache);
- ``POST index``: re-index (incremental) and reload; ``{files, read, reused, dropped, errors}``;
- ``GET  app.js``: the page's JavaScript (one module for both homes);
- ``GET  answer.js``: how a page reads these answers (and the ComfyUI pack's routes'), a module
  that app.js and the pack's front end (comfy_nodes/web/) import.

Errors are ``{"error": message}`` with status 400, 404 or 503; nothing answers with a path
on the server (files are named as the client names them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from raiiaf_rs import host
from raiiaf_rs.archive import Archive, ArchiveError, Query

PREFIX = "/raiiaf/archive/"
#: (status, content type, body) of an answer.
Answer = tuple[int, str, bytes]
#: What a home adds to a file's detail (e.g. how to regenerate it there), from its name,
#: its detail and its metadata.
Extra = Callable[[Archive, str, dict[str, Any]], dict[str, Any]]


#: The JavaScript modules served under :data:`PREFIX`: route -> file of ``raiiaf_rs/web``.
SCRIPTS = {"app.js": "archive.js", "answer.js": "answer.js"}


def asset(name: str) -> bytes:
    """A file of the page (``archive.js``, ``archive.html``), shipped in the package."""
    return resources.files("raiiaf_rs").joinpath("web", name).read_bytes()


def script(method: str, route: str) -> Answer | None:
    """The answer when ``route`` is one of :data:`SCRIPTS` (None otherwise): a home can give
    it before it has an archive (ComfyUI's front end imports answer.js at start-up)."""
    if method == "GET" and route in SCRIPTS:
        return 200, "text/javascript; charset=utf-8", asset(SCRIPTS[route])
    return None


def json_answer(body: Any, status: int = 200) -> Answer:
    """``body`` as a JSON answer."""
    text = json.dumps(body, allow_nan=False, default=str, ensure_ascii=False)
    return status, "application/json", text.encode()


def file_param(params: Mapping[str, str]) -> str:
    """The ``file`` parameter: a file's name as the search gave it."""
    name = params.get("file", "")
    if not name:
        raise ArchiveError("no file named: pass ?file=NAME (a name from the search)")
    if "\x00" in name:
        raise ArchiveError("the file name holds a NUL character")
    return name


def handle(
    archive: Archive,
    method: str,
    route: str,
    params: Mapping[str, str],
    extra: Extra | None = None,
) -> Answer:
    """The answer to ``method`` ``route`` (the path after :data:`PREFIX`) with ``params``.
    Blocking (DuckDB, file reads): run it off an event loop."""
    try:
        if method == "GET" and route == "search":
            return json_answer(archive.search(Query.from_params(params)))
        if method == "GET" and route == "facets":
            return json_answer(archive.facets())
        if method == "GET" and route == "detail":
            name = file_param(params)
            body = archive.detail(name)
            if extra is not None:
                body.update(extra(archive, name, body))
            return json_answer(host.json_safe(body))
        if method == "GET" and route == "thumbnail":
            return 200, "image/jpeg", archive.thumbnail(file_param(params))
        if method == "POST" and route == "index":
            return json_answer(dict(archive.index()))
        js = script(method, route)
        if js is not None:
            return js
        return json_answer({"error": f"no such route: {method} {PREFIX}{route}"}, 404)
    except ArchiveError as e:
        return json_answer({"error": str(e)}, e.status)
    except Exception as e:  # a bug: logged, and the server keeps running
        logging.exception("[raiiaf] archive request failed")
        return json_answer(
            {"error": f"internal error ({type(e).__name__}); see the server log"}, 500
        )
