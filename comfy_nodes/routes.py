"""HTTP routes for the front-end extension (comfy_nodes/web/raiiaf.js):

- ``GET  /raiiaf/inspect?file=NAME``: what a ``.raiiaf`` the loader may read holds
  (NAME is a loader choice: a path in the input directory, or ``name [output]``);
- ``POST /raiiaf/upload`` (multipart, field ``file``): checks an uploaded file (every
  SHA-256), stores it in the input directory under a safe name and answers like
  inspect, plus ``name``, the loader choice. An invalid file is never stored.

Both answer JSON: ``{name, workflow, prompt, summary, drift, thumbnail}``, or
``{error}`` with HTTP 400 (413 for an upload over ``--max-upload-size``, 503 while the
decode budget is in use, see decode_budget). Files are found through paths.resolve, like
the loader's, and no answer holds a path on the server: names are the loader's, and
errors name the file as the client did. Every request is bounded: a file's tensors and
its embedded image (read from its header first) count against the decoded-size limit,
and the requests decoding at once against the decode budget; an image over the limit
is not decoded (``summary.image.refused`` says why) and the rest of the file still shows.
ComfyUI adds every route under ``/api`` too (``api.fetchApi`` uses that one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io as _io
import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from typing import Any

import folder_paths
import raiiaf_rs
from aiohttp import web
from raiiaf_rs import host as raiiaf_host
from raiiaf_rs import replay as raiiaf_replay

from . import decode_budget, host, paths

INSPECT = "/raiiaf/inspect"
UPLOAD = "/raiiaf/upload"
THUMBNAIL_SIZE = 256  # longest side of the thumbnail, pixels
_registered = False


class RequestError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- what a file holds ----------------------------------------------------------------
def _thumbnail(
    png: bytes | None, decoded_already: int = 0, name: str = "the file"
) -> tuple[str | None, dict[str, Any] | None]:
    """A PNG data URL at most THUMBNAIL_SIZE pixels wide and high, and the image size
    (with ``refused``, the reason, when the image is not decoded). The decode is checked
    first from the header, against the decoded-size limit (with the file's tensors,
    ``decoded_already`` bytes), and held in the decode budget while it runs."""
    if not png:
        return None, None
    check = raiiaf_host.check_image(
        png, max_decoded_bytes=max_decoded_bytes(), decoded_already=decoded_already
    )
    header = check.header
    size: dict[str, Any] = {
        "width": header.width if header else None,
        "height": header.height if header else None,
    }
    if check.refused:
        return None, {**size, "refused": check.refused}
    try:
        from PIL import Image

        held = decode_budget.budget().hold(check.decoded_bytes, name)
        with held, Image.open(_io.BytesIO(png)) as img:
            if max(img.size) > THUMBNAIL_SIZE or img.format != "PNG":
                img.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))  # JPEG: decode reduced
                img.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                out = _io.BytesIO()
                img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, "PNG")
                png = out.getvalue()
    except decode_budget.BudgetError as e:
        if e.status == 503:
            raise  # busy: the whole request is retried
        return None, {**size, "refused": f"the embedded image is not shown: {e}"}
    except Exception as e:  # not an image PIL decodes: the rest of the file still shows
        return None, {**size, "refused": f"the embedded image is not shown: {type(e).__name__}"}
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii"), size


def _drift(art: raiiaf_rs.Artifact) -> list[dict[str, Any]]:
    """:func:`host.drift` as JSON; a malformed environment must not hide the rest."""
    try:
        drifts = host.drift(art)
    except Exception as e:
        logging.warning("[raiiaf] environment comparison failed: %s", e)
        return []
    return [d.to_json() for d in drifts]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> int | float | str | None:
    """A finite number; an integer JavaScript cannot hold exactly (seeds up to 2**64) as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > 2**53 - 1:
        return str(value)
    return value if math.isfinite(value) else None


def describe(art: raiiaf_rs.Artifact, name: str) -> dict[str, Any]:
    """The JSON answer for a file read as ``art``; ``name`` is the client's name for it."""
    meta = art.metadata if isinstance(art.metadata, dict) else {}
    gen = meta.get("generation_settings")
    gen = gen if isinstance(gen, dict) else {}
    comfy = meta.get("comfyui")
    comfy = comfy if isinstance(comfy, dict) else {}
    models = meta.get("models")
    models = [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []
    workflow = comfy.get("workflow")
    prompt = comfy.get("prompt")
    tensors = sum(int(getattr(arr, "nbytes", 0)) for arr in art.latents.values())
    thumbnail, image_size = _thumbnail(art.image, tensors, name)
    summary = {
        "file": name,
        "format": art.version,
        "prompt": _text(meta.get("prompt")),
        "negative": _text(meta.get("negative_prompt")),
        "seed": _number(gen.get("seed")),
        "steps": _number(gen.get("steps")),
        "sampler": _text(gen.get("sampler")),
        "scheduler": _text(gen.get("scheduler")),
        "cfg": _number(gen.get("cfg_scale")),
        "denoise": _number(meta.get("denoise")),
        "model": _text(meta.get("model_name")),
        "model_hash": next(
            (_text(m.get("short_hash")) for m in models if m.get("short_hash")), None
        ),
        "noise": [
            {"name": key, "shape": list(arr.shape), "dtype": art.dtypes.get(key)}
            for key, arr in art.latents.items()
        ],
        "image": image_size,
        "comfyui_version": _text(comfy.get("version")),
        "warning": _text(meta.get("warning")),
        "pre_noised": _text(meta.get("pre_noised")),
    }
    try:
        found = raiiaf_replay.passes(art)
    except raiiaf_replay.ReadError:
        found = []
    summary["passes"] = [raiiaf_replay.pass_text(p) for p in found]
    summary["not_exact_here"] = [
        d.text() for d in raiiaf_replay.cross_host_differences(found, meta, "comfyui")
    ]
    return {
        "name": name,
        "workflow": workflow if isinstance(workflow, dict) else None,
        "prompt": prompt if isinstance(prompt, dict) and prompt else None,
        "summary": summary,
        "drift": _drift(art),
        "thumbnail": thumbnail,
    }


def max_decoded_bytes() -> int | None:
    """The hosts' decoded-size limit (raiiaf_rs.replay: 256 MiB, $RAIIAF_MAX_DECODED_BYTES)."""
    return raiiaf_replay.max_decoded_bytes()


def _declared(path: str) -> int:
    """What reading ``path`` will decode, from its manifest (header and META only): the
    declared sizes of its tensors, image file and environment; 0 when over the limit, as
    the read then fails before allocating anything."""
    limit = raiiaf_host.decode_limit(max_decoded_bytes())
    art = raiiaf_rs.read_metadata(path, max_decoded_bytes=limit)
    sizes = [c.get("uncompressed_size") for c in art.chunks if c.get("type") != "META"]
    total = sum(s for s in sizes if isinstance(s, int) and s > 0)
    return total if total <= limit else 0


def _read_described(path: str, shown: str, name: str) -> dict[str, Any]:
    """describe() of ``path``, read and verified while the decode budget holds what it
    declares; errors name the file ``shown`` and never the path."""
    need = _read(path, shown, _declared) + decode_budget.READ_OVERHEAD
    with decode_budget.budget().hold(need, shown):
        return describe(_read(path, shown), name)


def _read(path: str, name: str, how: Any = None) -> Any:
    """Read and verify ``path`` (or call ``how(path)``, a step of reading it); errors
    (raiiaf_rs.replay's messages) name the file ``name`` and never the path."""
    try:
        if how is not None:
            return how(path)
        return raiiaf_replay.read(path, name, hide=hidden(path, name))
    except Exception as e:
        raise RequestError(str(raiiaf_replay.read_error(e, name, hidden(path, name)))) from None


def hidden(path: str, name: str) -> dict[str, str]:
    """What a message must not show: the file's path (as ``name``) and ComfyUI's
    directories."""
    out = {p: name for p in (path, os.path.realpath(path))}
    for root in (folder_paths.get_input_directory(), folder_paths.get_output_directory()):
        for r in (root, os.path.realpath(root)):
            out[r + os.sep] = ""
            out.setdefault(r, "")
    return out


def inspect_file(choice: str) -> dict[str, Any]:
    """inspect's answer for a loader choice (blocking: run it in an executor)."""
    try:
        path = paths.resolve(choice)
    except ValueError as e:
        raise RequestError(str(e)) from None
    return _read_described(path, choice, choice)


# --- uploads ----------------------------------------------------------------------------
def safe_name(filename: str | None) -> str:
    """A file name for an upload: its base name (no folders), letters, digits and
    ``_-.,()+=@ `` only, no leading dot, at most 100 characters, ending in .raiiaf."""
    base = unicodedata.normalize("NFC", str(filename or "")).replace("\\", "/").split("/")[-1]
    if base.lower().endswith(paths.SUFFIX):
        base = base[: -len(paths.SUFFIX)]
    stem = re.sub(r"[^\w\-.,()+=@ ]", "_", base)
    stem = re.sub(r"\s+", " ", stem).strip(" .")[:100].strip(" .")
    return (stem or "upload") + paths.SUFFIX


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _store(tmp: str, name: str) -> str:
    """Link the checked upload ``tmp`` into the input directory as ``name``, or as
    ``stem (N).raiiaf`` when another file has that name; a file with the same bytes
    is reused. Never replaces a file. Returns the name used."""
    root = folder_paths.get_input_directory()
    stem = name[: -len(paths.SUFFIX)]
    digest = None
    for i in range(1000):
        candidate = name if i == 0 else f"{stem} ({i}){paths.SUFFIX}"
        target = os.path.join(root, candidate)
        if not os.path.lexists(target):
            try:
                _place(tmp, target)
                return candidate
            except FileExistsError:
                pass  # another upload took the name meanwhile: compare with it below
        # Every collision compares contents, so identical uploads racing for one name
        # end up as one file whichever wins.
        if os.path.isfile(target) and not os.path.islink(target):
            digest = digest or _sha256(tmp)
            if _sha256(target) == digest:
                return candidate
    raise RequestError(f"too many files named like {name} in the input directory")


def _place(tmp: str, target: str) -> None:
    """``tmp`` as ``target``, complete or not at all where hard links exist;
    FileExistsError when ``target`` exists."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here: an exclusive create and a copy
        with open(tmp, "rb") as src, open(target, "xb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)


def _max_upload_bytes() -> int:
    try:
        from comfy.cli_args import args

        return int(args.max_upload_size * 1024 * 1024)
    except Exception:
        return 100 * 1024 * 1024


async def _receive(request: web.Request, tmp_fd: int) -> str:
    """Stream the multipart field ``file`` into ``tmp_fd``; returns its file name. A body
    that is not such an upload (empty, another boundary, a bad header...) is a 400."""
    try:
        return await _receive_part(request, tmp_fd)
    except RequestError:
        raise
    except Exception as e:  # aiohttp's parser errors have no common class
        logging.info("[raiiaf] malformed upload: %s: %s", type(e).__name__, e)
        raise RequestError(
            "expected a multipart/form-data upload with a 'file' field "
            f"(the request could not be parsed: {type(e).__name__})"
        ) from None


async def _receive_part(request: web.Request, tmp_fd: int) -> str:
    reader = await request.multipart()
    limit = _max_upload_bytes()
    while True:
        part = await reader.next()
        if part is None:
            raise RequestError("expected a multipart/form-data upload with a 'file' field")
        if getattr(part, "name", None) == "file":
            break
        await part.release()
    filename = part.filename or ""
    if "\x00" in filename:
        raise RequestError("the uploaded file's name holds a NUL character")
    size = 0
    with os.fdopen(tmp_fd, "wb", closefd=False) as out:
        while chunk := await part.read_chunk(1 << 20):
            size += len(chunk)
            if size > limit:
                raise RequestError(
                    f"{safe_name(filename)} is larger than the upload limit "
                    f"({limit // (1024 * 1024)} MB, ComfyUI's --max-upload-size)",
                    413,
                )
            out.write(chunk)
    return filename


def _check_and_store(tmp: str, filename: str) -> dict[str, Any]:
    name = safe_name(filename)
    shown = os.path.basename(str(filename).replace("\\", "/")) or name
    body = _read_described(tmp, shown, name)  # raises before anything is stored
    stored = _store(tmp, name)
    body["name"] = body["summary"]["file"] = stored
    return body


# --- handlers ---------------------------------------------------------------------------
def _json(body: Any, status: int = 200) -> web.Response:
    try:
        text = json.dumps(body, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere in the metadata: JSON has none
        text = json.dumps(raiiaf_host.json_safe(body))
    return web.Response(text=text, status=status, content_type="application/json")


def _error(e: Exception) -> web.Response:
    """The JSON answer for an error: its own status, or 500 (logged) for a bug."""
    if isinstance(e, (RequestError, decode_budget.BudgetError)):
        headers = {"Retry-After": "1"} if e.status == 503 else None
        response = _json({"error": str(e)}, e.status)
        response.headers.update(headers or {})
        return response
    logging.exception("[raiiaf] request failed")
    return _json({"error": f"internal error ({type(e).__name__}); see the server log"}, 500)


async def inspect_handler(request: web.Request) -> web.Response:
    try:
        choice = request.query.get("file", "")
        if "\x00" in choice:
            raise RequestError("the file name holds a NUL character")
        body = await asyncio.get_running_loop().run_in_executor(None, inspect_file, choice)
    except Exception as e:
        return _error(e)
    return _json(body)


async def upload_handler(request: web.Request) -> web.Response:
    root = folder_paths.get_input_directory()
    try:
        os.makedirs(root, exist_ok=True)
        # In the input directory, so that storing it is a link; not listed (not *.raiiaf).
        fd, tmp = tempfile.mkstemp(prefix=".raiiaf-upload-", suffix=".part", dir=root)
    except OSError as e:
        return _json({"error": f"cannot write to the input directory ({e.strerror})"}, 500)
    try:
        try:
            filename = await _receive(request, fd)
        finally:
            os.close(fd)
        body = await asyncio.get_running_loop().run_in_executor(
            None, _check_and_store, tmp, filename
        )
    except Exception as e:
        return _error(e)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return _json(body)


def register() -> bool:
    """Add the routes to ComfyUI's server (once); False when there is no server."""
    global _registered
    if _registered:
        return True
    try:
        from server import PromptServer

        routes = PromptServer.instance.routes
    except (ImportError, AttributeError):
        return False
    routes.get(INSPECT)(inspect_handler)
    routes.post(UPLOAD)(upload_handler)
    _registered = True
    return True
