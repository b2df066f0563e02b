"""The archive browser's routes in ComfyUI (the sidebar tab, comfy_nodes/web/raiiaf_archive.js):
the API of ``raiiaf_rs.archive_api`` under ``/raiiaf/archive/`` over the ``.raiiaf`` files of
ComfyUI's input and output directories, named as the loader names them (``x.raiiaf``,
``x.raiiaf [output]``) and found through the loader's own allow-list (paths.resolve), plus:

- ``GET /raiiaf/archive/workflow?file=NAME``: what "Regenerate" loads, ``{name, workflow,
  prompt, source}``: the file's stored workflow when it has a "Load .raiiaf" node (the page
  then selects the file there), else the pack's reload workflow (workflows/) for the file's
  passes, with the loader set to the file and the file's checkpoint.

The catalog is ``<user dir>/raiiaf/catalog.parquet``, indexed when the tab first asks (no
catalog yet) and by its "Re-index" button (incrementally: only new and changed files are read).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import folder_paths
from aiohttp import web
from raiiaf_rs import archive_api
from raiiaf_rs.archive import Archive, ArchiveError

from . import host, paths, routes

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
#: The loader node classes (the single file and the batch loader).
LOADERS = ("RaiiafLoad", "RaiiafLoadBatch")
_archive: Archive | None = None
_lock = threading.Lock()
_registered = False


def archive() -> Archive:
    """The archive of this server's input and output directories (made once)."""
    global _archive
    with _lock:
        if _archive is None:
            folder = os.path.join(folder_paths.get_user_directory(), "raiiaf")
            _archive = Archive(
                os.path.join(folder, "catalog.parquet"),
                [
                    ("", folder_paths.get_input_directory()),
                    (paths.OUTPUT_TAG, folder_paths.get_output_directory()),
                ],
                cache_dir=folder,
                resolve=paths.resolve,
                environment=host.environment([]),
                unknown_now=("dtype",),  # known only once a sampler ran
                max_decoded_bytes=routes.max_decoded_bytes(),
            )
        return _archive


def _reload_workflow(tensors: list[str]) -> tuple[str, dict[str, Any]]:
    """The pack's reload workflow fitting a file: hires when it holds a second pass."""
    second = any(t == "hires_noise" or t.startswith("noise_1_") for t in tensors)
    name = "raiiaf_reload_hires" if second else "raiiaf_reload_ksampler"
    return name, json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))


def regenerate(name: str) -> dict[str, Any]:
    """What "Regenerate" loads for the file ``name`` (module docstring)."""
    a = archive()
    detail = a.detail(name)
    meta = a.metadata(name)
    comfy = meta.get("comfyui") if isinstance(meta.get("comfyui"), dict) else {}
    stored = comfy.get("workflow")
    nodes = stored.get("nodes") if isinstance(stored, dict) else None
    if isinstance(nodes, list) and any(
        isinstance(n, dict) and n.get("type") in LOADERS for n in nodes
    ):
        return {"name": name, "workflow": stored, "prompt": None, "source": "stored"}
    source, workflow = _reload_workflow([t["name"] for t in detail["tensors"]])
    workflow = copy.deepcopy(workflow)
    model = meta.get("model_name")
    for node in workflow.get("nodes", []):
        values = node.get("widgets_values")
        if node.get("type") in LOADERS and values:
            values[0] = name
        elif node.get("type") == "CheckpointLoaderSimple" and values and model:
            values[0] = model
    return {"name": name, "workflow": workflow, "prompt": None, "source": source}


def _answer(route: str, method: str, params: dict[str, str]) -> archive_api.Answer:
    """The answer to a request (blocking: run in an executor)."""
    try:
        return _route(route, method, params)
    except ArchiveError as e:
        return archive_api.json_answer({"error": str(e)}, e.status)
    except Exception as e:  # a bug, or an index that failed: the server keeps running
        logging.exception("[raiiaf] archive request failed")
        return archive_api.json_answer({"error": f"{type(e).__name__}: {e}"}, 500)


def _route(route: str, method: str, params: dict[str, str]) -> archive_api.Answer:
    js = archive_api.script(method, route)
    if js is not None:  # no archive needed (the front end imports answer.js at start-up)
        return js
    a = archive()
    if route in ("search", "facets") and not os.path.exists(a.catalog):
        a.index()  # the first look: index once (later runs are incremental, on request)
    if route == "workflow" and method == "GET":
        return archive_api.json_answer(regenerate(archive_api.file_param(params)))
    return archive_api.handle(a, method, route, params)


async def handler(request: web.Request) -> web.Response:
    route = request.match_info.get("route", "")
    params = dict(request.query)
    status, ctype, body = await asyncio.get_running_loop().run_in_executor(
        None, _answer, route, request.method, params
    )
    response = web.Response(body=body, status=status)
    response.headers["Content-Type"] = ctype
    response.headers["Cache-Control"] = (
        "max-age=300" if route == "thumbnail" and status == 200 else "no-store"
    )
    return response


def register() -> bool:
    """Add the routes to ComfyUI's server (once); False when there is no server."""
    global _registered
    if _registered:
        return True
    try:
        from server import PromptServer

        table = PromptServer.instance.routes
    except (ImportError, AttributeError):
        return False
    table.get(archive_api.PREFIX + "{route}")(handler)
    table.post(archive_api.PREFIX + "{route}")(handler)
    _registered = True
    threading.Thread(target=_warm, name="raiiaf-archive", daemon=True).start()
    return True


def _warm() -> None:
    """Load an existing catalog at start-up, so that the tab's first search does not wait."""
    try:
        a = archive()
        if os.path.exists(a.catalog):
            a.table()
    except Exception as e:  # a damaged catalog: the tab says so when it asks
        logging.warning("[raiiaf] the archive's catalog could not be loaded: %s", e)
