"""What every host UI does with ``.raiiaf`` files, in one place: the ComfyUI nodes and
the AUTOMATIC1111 / Forge extension both use it, and a further host (SD.Next, InvokeAI,
a diffusers script) needs only the part that reads its own settings.

- :func:`capture_environment`: the environment document (ENVC) a host records, with
  its name and version, attention backend, dtypes and noise device;
- :func:`write_sidecar`: ``<image stem>.raiiaf`` beside an image, atomically, never
  replacing an existing file (the first free ``<stem>-1.raiiaf``, ``-2``... instead),
  recording which image it belongs to (``image_file``: name and SHA-256);
- :func:`build_metadata`: the manifest metadata from a host's settings, with the same
  keys in every host (what catalogs and the loaders read);
- :func:`environment_drift` and :func:`drift_summary`: how a file's environment differs
  from the current one, as the short text the UIs show.
- :func:`check_image`: whether the embedded image may be decoded, from its header
  (:func:`image_header`) against the same limit as the tensors, before a host decodes it.

>>> from raiiaf_rs import host
>>> me = host.Host("MyScript", "1.0")
>>> env = host.capture_environment(me, attention="sdpa", noise_device="cpu")
>>> meta = host.build_metadata(
...     me, prompt="a cat", model_name="sd15.safetensors", tags=["myscript"],
...     generation=host.Generation(seed=1, steps=20, sampler="euler", cfg_scale=7.0),
...     width=512, height=512)
>>> path = host.write_sidecar("out/cat.png", {"initial_noise": noise}, metadata=meta,
...                           environment=env)
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import io
import math
import os
import re
import struct
import tempfile
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import raiiaf_rs
from raiiaf_rs import environment as _environment
from raiiaf_rs.environment import Drift
from raiiaf_rs.errors import TargetExistsError

__all__ = [
    "DISPLAY_BYTES_PER_PIXEL",
    "NORMALISED_KEYS",
    "SIDECAR_SUFFIX",
    "Generation",
    "Host",
    "ImageCheck",
    "ImageHeader",
    "build_metadata",
    "capture_environment",
    "check_image",
    "decode_limit",
    "drift_summary",
    "environment_drift",
    "image_file",
    "image_header",
    "lora_entry",
    "model_entry",
    "parse_byte_size",
    "sidecar_candidates",
    "write_new_file",
    "write_sidecar",
]

PathLike = Union[str, "os.PathLike[str]"]

SIDECAR_SUFFIX = ".raiiaf"
#: How many numbered names :func:`write_sidecar` tries before giving up.
MAX_NUMBERED = 10_000

#: Top-level metadata keys :func:`build_metadata` always writes (``batch_id`` and
#: ``generation_settings`` only when known). The first five fill the reference
#: format's ``model_info``.
NORMALISED_KEYS = (
    "prompt",
    "model_name",
    "tags",
    "generation_settings",
    "negative_prompt",
    "denoise",
    "width",
    "height",
    "batch_index",
    "batch_size",
    "batch_id",
    "models",
    "loras",
    "image_file",
    "host",
)


# --- the host ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Host:
    """The application that makes the images: its name (``ComfyUI``, ``AUTOMATIC1111``,
    ``Forge``...), version and, where it is a git checkout, commit. Nothing else: no
    path, user or machine name."""

    app: str
    version: str | None = None
    commit: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """``{"app", "version"}``, for metadata ``host`` (the commit is in the
        environment document)."""
        return {"app": self.app, "version": self.version}


# --- environment ---------------------------------------------------------------------------
def capture_environment(
    host: Host,
    *,
    attention: str | None = None,
    dtypes: Mapping[str, str] | None = None,
    noise_device: str | None = None,
) -> dict[str, Any]:
    """The ENVC document a host records with each image: this process (OS, CPU, RAM,
    GPUs, Python, numpy, torch and its determinism flags) plus what only the host knows
    (``host`` app/version/commit, ``attention`` backend, model ``dtypes`` by role, the
    device the initial noise is drawn on).

    Cheap to call per save: the machine is probed once per process and each distinct
    document is built once (:mod:`raiiaf_rs.environment`); only torch's determinism
    flags, which a script can change, are read every call. Hosts cache their own probes
    as they need (a version read once, the attention backend or dtypes per save when a
    model switch can change them). Nothing identifies the user: no user or machine name,
    no path, no GPU serial.
    """
    return _environment.capture(
        host={"app": host.app, "version": host.version, "commit": host.commit},
        attention=attention,
        dtypes=dict(dtypes) if dtypes else None,
        noise_device=noise_device,
    )


def environment_drift(
    stored: Any,
    current: Mapping[str, Any],
    *,
    unknown_now: Collection[str] = (),
) -> list[Drift]:
    """The real differences between the environment ``stored`` (an
    :class:`~raiiaf_rs.Artifact`, a path or an ENVC document) and ``current`` (the
    host's :func:`capture_environment` now), those that can change pixels first.

    Components the file did not record are no differences; nor is a component in
    ``unknown_now`` that is missing now (e.g. ComfyUI knows the model dtype only once a
    sampler ran)."""
    drifts = [
        d
        for d in _environment.drift(stored, current)
        if d.kind != "not_in_file" and not (d.kind == "missing_now" and d.component in unknown_now)
    ]
    return sorted(drifts, key=lambda d: not d.affects_pixels)


def drift_summary(
    drifts: Sequence[Drift], *, recorded: bool = True, pixels_only: bool = False
) -> str:
    """The lines a UI shows for :func:`environment_drift`'s result, pixel-changing first::

        environment drift [CAN CHANGE PIXELS] torch: <file's> -> <current>
        environment drift [harmless] ram: <file's> -> <current>

    ``environment: not recorded`` when the file has no environment (``recorded`` false),
    ``environment: matches this machine`` when nothing differs. ``pixels_only``: only the
    differences that can change pixels ("" when there are none), for a warning."""
    if not recorded:
        return "" if pixels_only else "environment: not recorded"
    shown = [d for d in drifts if d.affects_pixels or not pixels_only]
    if not shown:
        return "" if pixels_only else "environment: matches this machine"
    lines = []
    for d in sorted(shown, key=lambda d: not d.affects_pixels):
        flag = "CAN CHANGE PIXELS" if d.affects_pixels else "harmless"
        stored = "(none)" if d.stored is None else d.stored
        current = "(none)" if d.current is None else d.current
        lines.append(f"environment drift [{flag}] {d.component}: {stored} -> {current}")
    return "\n".join(lines)


# --- writing -----------------------------------------------------------------------------
def write_new_file(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``, which must not exist yet (``FileExistsError``
    otherwise), atomically: a unique temporary file beside it, then a hard link, which
    fails if another writer took the name first. Where hard links are unsupported (FAT,
    some network shares), an exclusive create instead (not atomic against crashes,
    still never overwrites). For the image a host saves beside its sidecar."""
    folder, name = os.path.split(os.fspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            with open(path, "xb") as f:
                f.write(data)
    finally:
        os.unlink(tmp)


def image_file(name: str, data: bytes) -> dict[str, str]:
    """Metadata ``image_file``: the image's base name (never a path) and the SHA-256 of
    its bytes, so that a sidecar whose own name moved on (``<stem>-1.raiiaf``) still
    says which image it belongs to."""
    return {
        "name": os.path.basename(str(name).replace("\\", "/")),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def sidecar_candidates(image_path: PathLike) -> Iterator[str]:
    """``<stem>.raiiaf`` beside the image, then ``<stem>-1.raiiaf``, ``<stem>-2.raiiaf``...
    (at most :data:`MAX_NUMBERED` numbered names)."""
    stem = os.path.splitext(os.fspath(image_path))[0]
    yield stem + SIDECAR_SUFFIX
    for n in range(1, MAX_NUMBERED + 1):
        yield f"{stem}-{n}{SIDECAR_SUFFIX}"


def write_sidecar(
    image_path: PathLike,
    latents: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any],
    environment: Mapping[str, Any] | None,
    image_bytes: bytes | None = None,
    embed_image: bool = True,
    codec: str = "raw",
    image_extra: Mapping[str, Any] | None = None,
    numbered: bool = True,
) -> str:
    """Write the ``.raiiaf`` of the image at ``image_path`` beside it and return the path
    written.

    The file is written atomically and never replaces an existing file: when
    ``<stem>.raiiaf`` is taken, the first free ``<stem>-1.raiiaf``, ``<stem>-2.raiiaf``...
    is used (``numbered=False``: :class:`~raiiaf_rs.TargetExistsError` instead, for a
    host that moves the image to its next free name and tries again). The metadata gets
    ``image_file`` (the image's name and SHA-256), which says which image a sidecar
    belongs to whatever its own name.

    ``image_bytes``: the image file's bytes, read from ``image_path`` when not given.
    ``embed_image``: store the image in the file too (PNG only: the format stores PNG).
    """
    path = os.fspath(image_path)
    if image_bytes is None:
        with open(path, "rb") as f:
            image_bytes = f.read()
    meta = dict(metadata)
    meta["image_file"] = image_file(path, image_bytes)
    png = image_bytes if embed_image and image_bytes[:8] == b"\x89PNG\r\n\x1a\n" else None
    last: TargetExistsError | None = None
    for target in sidecar_candidates(path):
        try:
            raiiaf_rs.write(
                target,
                latents,
                png,
                meta,
                environment=None if environment is None else dict(environment),
                codec=codec,
                image_extra=image_extra,
                overwrite=False,
            )
        except TargetExistsError as e:
            if not numbered:
                raise
            last = e
            continue
        return target
    raise TargetExistsError(
        f"no free sidecar name beside {os.path.basename(path)} "
        f"({MAX_NUMBERED} numbered names taken)"
    ) from last


# --- settings ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    """The sampler settings that fill the reference format's ``generation_settings``."""

    seed: int
    steps: int
    sampler: str
    cfg_scale: float
    scheduler: str = ""

    def as_metadata(self) -> dict[str, Any]:
        return {
            "seed": int(self.seed),
            "steps": int(self.steps),
            "sampler": str(self.sampler or ""),
            "scheduler": str(self.scheduler or ""),
            "cfg_scale": float(self.cfg_scale),
        }


def model_entry(role: str, name: str, sha256: str | None = None, **extra: Any) -> dict[str, Any]:
    """One entry of metadata ``models``: ``{"role", "name", "sha256"}`` (``sha256``
    None when unknown) plus host detail (``short_hash``...). ``role`` is ``checkpoint``,
    ``unet``, ``vae``, ``text_encoder``, ``lora``...; ``name`` a base name, never a path."""
    return {
        "role": str(role),
        "name": os.path.basename(str(name).replace("\\", "/")),
        "sha256": sha256 or None,
        **extra,
    }


def lora_entry(
    name: str,
    strength_model: float | None,
    strength_clip: float | None = None,
    sha256: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of metadata ``loras``: ``{"name", "sha256", "strength_model",
    "strength_clip"}`` (``sha256`` None when unknown, ``strength_clip`` None when the
    LoRA patches the model only, a strength None where the host cannot tell it) plus
    host detail."""
    return {
        "name": os.path.basename(str(name).replace("\\", "/")),
        "sha256": sha256 or None,
        "strength_model": None if strength_model is None else float(strength_model),
        "strength_clip": None if strength_clip is None else float(strength_clip),
        **extra,
    }


def build_metadata(
    host: Host,
    *,
    prompt: str = "",
    negative_prompt: str = "",
    model_name: str = "",
    tags: Iterable[str] = (),
    generation: Generation | None = None,
    denoise: float | None = None,
    width: int | None = None,
    height: int | None = None,
    batch_index: int = 0,
    batch_size: int = 1,
    batch_id: str | None = None,
    models: Iterable[Mapping[str, Any]] = (),
    loras: Iterable[Mapping[str, Any]] = (),
    image_file: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest metadata of one image, with the same keys from every host.

    ``prompt``, ``model_name``, ``tags`` and ``generation_settings`` (``seed``, ``steps``,
    ``sampler``, ``scheduler``, ``cfg_scale``; only when ``generation`` is known) go to
    the reference format's ``model_info``; ``negative_prompt``, ``denoise``, ``width``,
    ``height``, ``batch_index``, ``batch_size``, ``batch_id`` (when the host has one),
    ``models`` (:func:`model_entry`), ``loras`` (:func:`lora_entry`), ``image_file``
    (name and SHA-256, filled by :func:`write_sidecar`) and ``host`` (``app``,
    ``version``) are top-level metadata. ``extra``: the host's own keys (its detail
    under its own key, e.g. ``comfyui`` or ``a1111``); it may not redefine a normalised
    key (ValueError).
    """
    meta: dict[str, Any] = {
        "prompt": str(prompt or ""),
        "model_name": str(model_name or ""),
        "tags": [str(t) for t in tags],
    }
    if generation is not None:
        meta["generation_settings"] = generation.as_metadata()
    meta.update(
        negative_prompt=str(negative_prompt or ""),
        denoise=_number(denoise, float),
        width=_number(width, int),
        height=_number(height, int),
        batch_index=int(batch_index),
        batch_size=int(batch_size),
    )
    if batch_id:
        meta["batch_id"] = str(batch_id)
    meta["models"] = [_entry(m, model_entry, "role", "name") for m in models]
    meta["loras"] = [_entry(lo, lora_entry, "name", "strength_model") for lo in loras]
    meta["image_file"] = dict(image_file) if image_file else None
    meta["host"] = host.as_metadata()
    clash = sorted(set(extra or {}) & set(NORMALISED_KEYS))
    if clash:
        raise ValueError(f"extra metadata may not redefine the normalised keys {clash}")
    meta.update(extra or {})
    return meta


def _number(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (int or float) when it is a finite number, else None (a
    host's setting that is missing or not numeric is unknown, not an error)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value) if math.isfinite(value) else None


def _entry(value: Mapping[str, Any], make: Any, *required: str) -> dict[str, Any]:
    """A models/loras entry through its constructor: the fixed keys always present."""
    value = dict(value)
    missing = [k for k in required if k not in value]
    if missing:
        raise ValueError(f"{make.__name__} needs {missing}: {value}")
    return make(**value)


# --- embedded images -----------------------------------------------------------------------
#: Bytes per pixel of an image decoded for display: PIL holds RGB and RGBA at 4 bytes a
#: pixel (and every 8-bit mode at no more).
DISPLAY_BYTES_PER_PIXEL = 4

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding a pixel."""

    format: str  # "PNG", "JPEG", ...
    width: int
    height: int


@dataclass(frozen=True)
class ImageCheck:
    """:func:`check_image`'s answer: the header (None when it cannot be read), the bytes a
    decode would take, and why the image must not be decoded (None: it may be)."""

    header: ImageHeader | None
    decoded_bytes: int
    refused: str | None


def parse_byte_size(text: str) -> int:
    """A byte count as ``RAIIAF_MAX_DECODED_BYTES`` takes it: ``1073741824``, ``512MiB``,
    ``4G`` (K, M, G, T: powers of 1024, with or without ``B``/``iB``). ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not m or (m.group(3) and m.group(3).lower() == "ib" and not m.group(2)):
        raise ValueError(f"{text!r} is not a byte count such as 1073741824, 512MiB or 4G")
    return int(m.group(1)) << (10 * " kmgt".index(m.group(2).lower() or " "))


def decode_limit(max_decoded_bytes: int | None = None) -> int:
    """The decoded-size limit a read with ``max_decoded_bytes`` uses: that value, else
    ``$RAIIAF_MAX_DECODED_BYTES``, else :data:`raiiaf_rs.DEFAULT_MAX_DECODED_BYTES` (1 GiB)."""
    if max_decoded_bytes is not None:
        return int(max_decoded_bytes)
    text = os.environ.get("RAIIAF_MAX_DECODED_BYTES")
    return parse_byte_size(text) if text else raiiaf_rs.DEFAULT_MAX_DECODED_BYTES


def image_header(data: bytes) -> ImageHeader:
    """The format and size of an encoded image, from its header only: a PNG's IHDR (the
    format stores PNG), other formats through PIL's lazy open, which reads no pixels.
    ValueError (the reason) when no size can be read."""
    if data[:8] == _PNG_SIGNATURE:
        # IHDR is the first chunk: length 13, "IHDR", width and height (big-endian u32).
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ValueError("a PNG without its IHDR header")
        width, height = struct.unpack(">II", data[16:24])
    else:
        try:
            from PIL import Image
        except ImportError:
            raise ValueError("not a PNG (and PIL, which reads other formats, is missing)") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's bomb warning: the caller checks sizes
                with Image.open(io.BytesIO(data)) as img:  # lazy: the header only
                    fmt, (width, height) = img.format or "image", img.size
        except Exception as e:  # not an image, or one PIL calls a decompression bomb
            raise ValueError(f"not an image file PIL reads ({type(e).__name__})") from None
        return ImageHeader(fmt, width, height)
    if width == 0 or height == 0:
        raise ValueError(f"a PNG of {width}x{height} pixels")
    return ImageHeader("PNG", width, height)


def check_image(
    data: bytes,
    *,
    max_decoded_bytes: int | None = None,
    bytes_per_pixel: int = DISPLAY_BYTES_PER_PIXEL,
    decoded_already: int = 0,
) -> ImageCheck:
    """Whether a host may decode the embedded image ``data`` (``Artifact.image``): its
    decoded size (``bytes_per_pixel`` per pixel, for what the host makes of it), added to
    the ``decoded_already`` bytes of the same file's tensors, against the same limit as the
    tensors (:func:`decode_limit` of ``max_decoded_bytes``). Reads the header only, so a
    small file holding a huge image costs nothing; every host checks here before decoding,
    and a refused image leaves the file's noise and settings usable."""
    limit = decode_limit(max_decoded_bytes)
    try:
        header = image_header(data)
    except ValueError as e:
        return ImageCheck(None, 0, f"the embedded image is not shown: {e}")
    need = header.width * header.height * bytes_per_pixel
    if decoded_already + need <= limit:
        return ImageCheck(header, need, None)
    tensors = f" (with the tensors' {decoded_already:,})" if decoded_already else ""
    return ImageCheck(
        header,
        need,
        f"the embedded image ({header.format}, {header.width}x{header.height}) is not shown: "
        f"it would decode to {need:,} bytes{tensors}, more than the limit of {limit:,} "
        "(set RAIIAF_MAX_DECODED_BYTES to raise it)",
    )


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON can carry it, for the servers' answers (the ComfyUI routes, the
    archive): NaN and infinities as null (``json.dumps`` would write ``NaN``, which browsers
    refuse), ``Decimal`` (the catalog's seeds) as text (JavaScript numbers stop at 2**53),
    dates as ISO text, tuples as lists; containers converted throughout."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
