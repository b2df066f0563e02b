"""Replay: reading the ``.raiiaf`` files a user gave, checking them against the run,
and the plan of which stored noise goes into which image of which pass."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import raiiaf_rs

#: Tensor names in the files this extension writes, by sampling pass.
PASS_NAMES = {"first": "initial_noise", "hires": "hires_noise"}

STOP = "Stop with a message"
PROCEED = "Proceed without replay"
ON_MISMATCH = (STOP, PROCEED)


class ReplayError(RuntimeError):
    """A replay that cannot be done as asked; the message says why and what to do."""


@dataclass
class Source:
    """One given file: its name (for messages), its bytes' SHA-256, its decoded contents."""

    name: str
    sha256: str
    artifact: raiiaf_rs.Artifact

    def noise(self, which: str) -> np.ndarray | None:
        arr = self.artifact.latents.get(PASS_NAMES[which])
        if arr is None:
            return None
        if self.artifact.dtypes.get(PASS_NAMES[which]) != "float32":
            arr = np.asarray(arr, dtype=np.float32)
        return arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr

    @property
    def a1111(self) -> dict[str, Any]:
        return dict(self.artifact.metadata.get("a1111") or {})

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.artifact.metadata.get("generation_settings") or {})


def _items(value: Any) -> list[Any]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, (list, tuple)):
        return [v for v in value if v is not None]
    return [value]


def _load_bytes(item: Any) -> tuple[str, bytes]:
    """(display name, bytes) of one upload: bytes (gradio ``type="binary"``), a path, a
    base64 string (API), a dict with ``name``/``path``/``data``, or a tempfile wrapper."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return "uploaded file", bytes(item)
    if isinstance(item, dict):
        for key in ("path", "name"):
            if isinstance(item.get(key), str) and os.path.isfile(item[key]):
                return _load_bytes(item[key])
        if "data" in item:
            return _load_bytes(item["data"])
    name = getattr(item, "name", None)
    if isinstance(name, str) and not isinstance(item, str) and os.path.isfile(name):
        return _load_bytes(name)
    if isinstance(item, str):
        text = item.strip()
        if len(text) < 4096 and os.path.isfile(text):
            with open(text, "rb") as f:
                return os.path.basename(text), f.read()
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        try:
            return "base64 upload", base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ReplayError(
                "the replay file is neither an existing path nor base64 data"
            ) from None
    raise ReplayError(f"cannot read a replay file from a {type(item).__name__}")


def _decode(name: str, data: bytes) -> Source:
    digest = hashlib.sha256(data).hexdigest()
    fd, tmp = tempfile.mkstemp(suffix=".raiiaf")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            art = raiiaf_rs.read(tmp, verify=True)
        except raiiaf_rs.HashMismatchError as e:
            raise ReplayError(
                f"{name} fails its integrity check (a SHA-256 does not match: the file was "
                f"altered or damaged): {e}"
            ) from None
        except raiiaf_rs.RaiiafError as e:
            raise ReplayError(f"{name} is not a readable .raiiaf file: {e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if "initial_noise" not in art.latents:
        raise ReplayError(f"{name} holds no initial_noise tensor: nothing to replay")
    return Source(name=name, sha256=digest, artifact=art)


def load_sources(value: Any) -> list[Source]:
    """Every file given (one or several), decoded and verified; raises ReplayError."""
    out = []
    for item in _items(value):
        name, data = _load_bytes(item)
        out.append(_decode(name, data))
    return out


@dataclass
class Plan:
    """The files of a run, image k of the run taking file k's noise."""

    sources: list[Source]
    restore_seeds: bool
    applied: dict[tuple[str, int], bool] = field(default_factory=dict)

    def source(self, index: int) -> Source:
        return self.sources[index]

    def seeds(self) -> tuple[list[int], list[int]] | None:
        seeds, subseeds = [], []
        for src in self.sources:
            gen = src.settings
            a = src.a1111
            seed = a.get("seed", gen.get("seed"))
            if not isinstance(seed, int):
                return None
            seeds.append(seed)
            sub = a.get("subseed", seed)
            subseeds.append(sub if isinstance(sub, int) else seed)
        return seeds, subseeds


def shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        c, h, w = shape
        return f"{list(shape)} ({w * 8}x{h * 8} pixels, {c} latent channels)"
    return str(list(shape))


def check_count(plan: Plan, total: int) -> None:
    n = len(plan.sources)
    if n != total:
        raise ReplayError(
            f"{n} .raiiaf file(s) given for {total} image(s) (batch size x batch count): give "
            "one file per image, in order, or set batch size and count to match"
        )


def check_shape(plan: Plan, which: str, expected: tuple[int, ...], first: int, count: int) -> None:
    """Raise if a file's noise for pass ``which`` does not have shape ``expected``."""
    for k in range(first, first + count):
        src = plan.sources[k]
        arr = src.noise(which)
        if arr is None:
            if which == "first" or not plan.restore_seeds:
                raise ReplayError(
                    f"{src.name} holds no noise for the {which} pass; turn on 'use the stored "
                    "seeds' to let the webui draw it from the stored seed"
                )
            continue
        if tuple(arr.shape) != tuple(expected):
            what = "hires pass" if which == "hires" else "image"
            raise ReplayError(
                f"{src.name}: the stored noise has shape {shape_text(tuple(arr.shape))} but "
                f"this {what} needs {shape_text(tuple(expected))}; set width, height (and "
                "hires settings) as stored (the 'apply stored settings' button) or give "
                "another file"
            )


def stored_settings(src: Source) -> dict[str, Any]:
    """The settings the 'apply stored settings' button puts into the UI."""
    gen = src.settings
    a = src.a1111
    out = {
        "seed": a.get("seed", gen.get("seed")),
        "subseed": a.get("subseed"),
        "subseed_strength": a.get("subseed_strength"),
        "steps": gen.get("steps"),
        "sampler": gen.get("sampler"),
        "scheduler": gen.get("scheduler"),
        "cfg_scale": gen.get("cfg_scale"),
        "width": a.get("width"),
        "height": a.get("height"),
        "denoising_strength": a.get("denoising_strength"),
        "prompt": src.artifact.metadata.get("prompt"),
        "negative_prompt": src.artifact.metadata.get("negative_prompt"),
    }
    return {k: v for k, v in out.items() if v is not None}
