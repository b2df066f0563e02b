"""Read and write ``.raiiaf`` files: an AI-generated image together with the
exact initial noise it came from, its latents, generation settings and
environment, so the image can be regenerated bit for bit.

>>> import numpy as np, raiiaf_rs
>>> noise = np.random.default_rng(0).standard_normal((1, 4, 64, 64), dtype=np.float32)
>>> raiiaf_rs.write("out.raiiaf", {"initial_noise": noise}, image=png_bytes,
...                 metadata={"prompt": "a cat", "seed": 42})
>>> art = raiiaf_rs.read("out.raiiaf")          # every SHA-256 verified
>>> art.latents["initial_noise"].shape
(1, 4, 64, 64)

The Rust core does the work (the GIL is released while it hashes,
compresses and does I/O); torch is optional and imported only when a torch
tensor is passed or ``as_torch=True`` is asked for. Torch tensors cross into
Rust as numpy views of their memory; the optional torch build
(:data:`LINKED_TORCH` is set) hands them over through libtorch instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Union

import numpy as np

from raiiaf_rs import environment, errors
from raiiaf_rs import environment as environment_module
from raiiaf_rs._extension import native
from raiiaf_rs.environment import Drift, drift
from raiiaf_rs.errors import (
    CorruptFileError,
    DecodedSizeLimitError,
    HashMismatchError,
    InternalError,
    InvalidArgumentError,
    LimitExceededError,
    RaiiafError,
    TargetExistsError,
    UnsupportedError,
)
from raiiaf_rs.indexing import CatalogTable, IndexReport, catalog, index

__version__: str = native.__version__
#: ``torch.__version__`` of the torch this build is linked against: set only by the
#: optional torch build (README, "The torch build"); ``None`` for the default wheel,
#: which works with any torch (or none).
LINKED_TORCH: str | None = native.LINKED_TORCH

__all__ = [
    "CODECS",
    "DEFAULT_MAX_DECODED_BYTES",
    "DTYPES",
    "LINKED_TORCH",
    "Artifact",
    "CatalogTable",
    "CorruptFileError",
    "DecodedSizeLimitError",
    "Drift",
    "Fingerprint",
    "HashMismatchError",
    "IndexReport",
    "InternalError",
    "InvalidArgumentError",
    "LimitExceededError",
    "RaiiafError",
    "TargetExistsError",
    "UnsupportedError",
    "__version__",
    "catalog",
    "drift",
    "encode_png",
    "environment",
    "environment_document",
    "errors",
    "fingerprint",
    "index",
    "read",
    "read_bytes",
    "read_metadata",
    "verify",
    "write",
    "write_bytes",
]

#: Tensor codecs, from the extension's registry (crates/raiiaf/src/format/codecs.rs): ``raw``
#: (default; files the reference ``raiiaf`` 1.1.0 reads), ``compact`` (lossless byte-plane zstd, ~15
#: % smaller for noise, format 1.1; files name it ``shuffle-zstd``, also accepted), ``zfp`` (the
#: reference's compressed mode; larger for noise, interop only).
CODECS: tuple[str, ...] = tuple(api for _, api, _, _ in native._codecs())
#: Every name ``codec=`` accepts: the names files record and their aliases.
_CODEC_NAMES = frozenset(n for name, _, aliases, _ in native._codecs() for n in (name, *aliases))
#: Default of ``max_decoded_bytes`` (:func:`read`, :func:`verify`): 1 GiB per file;
#: the environment variable ``RAIIAF_MAX_DECODED_BYTES`` (bytes, or e.g. ``4G``) replaces it.
DEFAULT_MAX_DECODED_BYTES = 1 << 30
#: Stored element types. numpy has no bfloat16: such tensors travel as
#: uint16 arrays holding the bit patterns (or as torch.bfloat16 tensors).
DTYPES = ("float32", "float16", "bfloat16")

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Any  # numpy.ndarray or torch.Tensor


@dataclass(frozen=True)
class Artifact:
    """The decoded contents of a ``.raiiaf`` file."""

    #: Tensors by name (``initial_noise``, ``final_latent``, …), in file order.
    #: bfloat16 tensors are uint16 arrays of bit patterns unless read with ``as_torch=True``.
    latents: dict[str, Any]
    #: Stored dtype of each tensor: ``float32``, ``float16`` or ``bfloat16``.
    dtypes: dict[str, str]
    #: The embedded image file (PNG bytes), or None.
    image: bytes | None
    #: Prompt, model, settings and every other metadata key, as written.
    metadata: dict[str, Any]
    #: The environment document (``env_version``, ``components``), or None.
    environment: dict[str, Any] | None
    #: The complete manifest JSON.
    manifest: dict[str, Any]
    #: Header fields (magic, version, offsets, sizes).
    header: dict[str, Any]
    path: str = field(default="")

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """The manifest's chunk records (type, offset, sizes, SHA-256, shape, …)."""
        root = self.manifest.get("raiiaf_metadata") or self.manifest.get("gen5_metadata") or {}
        return list(root.get("chunks", []))

    @property
    def version(self) -> str:
        """Format version of the file, e.g. ``"1.0"``."""
        return f"{self.header['version_major']}.{self.header['version_minor']}"


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _from_torch(name: str, t: Any, target: str | None) -> tuple[str, Any]:
    """(stored dtype, what the extension takes) for a torch tensor: a numpy view of
    its memory, or in the torch build the tensor itself."""
    import torch

    dtype = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(
        t.dtype
    )
    if dtype is None:
        raise InvalidArgumentError(
            f"latent {name!r}: torch dtype {t.dtype} cannot be stored losslessly; "
            "use float32, float16 or bfloat16"
        )
    if (
        LINKED_TORCH is not None
        and target in (None, dtype)
        # Plain dense tensors only: subclasses, sparse, meta or other devices take
        # the generic route below, which goes through their own dispatch.
        and type(t) in (torch.Tensor, torch.nn.Parameter)
        and t.layout == torch.strided
        and t.device.type in ("cpu", "cuda")
    ):
        return dtype, t
    if t.device.type == "meta":
        raise InvalidArgumentError(f"latent {name!r} is a meta tensor: it holds no values to store")
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()  # the one device-to-host copy
    if t.layout != torch.strided:
        t = t.to_dense()  # sparse: the same values, exactly
    t = t.contiguous()
    if dtype == "bfloat16":
        # Same bits, viewed as 16-bit integers: no copy, no rounding.
        return dtype, t.view(torch.int16).numpy().view(np.uint16)
    return dtype, t.numpy()


def _as_stored(name: str, value: ArrayLike, target: str | None) -> tuple[str, Any]:
    """(stored dtype, C-contiguous little-endian array) for one latent; in the
    torch build a torch tensor the extension takes as it is."""
    if target is not None and target not in DTYPES:
        raise InvalidArgumentError(
            f"latent {name!r}: unknown dtype {target!r}; use one of {DTYPES}"
        )
    if _is_torch_tensor(value):
        dtype, arr = _from_torch(name, value, target)
        if not isinstance(arr, np.ndarray):
            return dtype, arr
    else:
        arr = np.asarray(value)
        kind = arr.dtype.newbyteorder("=") if arr.dtype.byteorder == ">" else arr.dtype
        if arr.dtype.byteorder == ">":
            arr = arr.astype(kind)  # byte swap: exact
        if arr.dtype == np.float32:
            dtype = "float32"
        elif arr.dtype == np.float16:
            dtype = "float16"
        elif arr.dtype.name == "bfloat16":  # ml_dtypes.bfloat16
            dtype, arr = "bfloat16", arr.view(np.uint16)
        elif arr.dtype == np.uint16 and target == "bfloat16":
            dtype = "bfloat16"  # bit patterns, as numpy users carry bf16
        elif arr.dtype == np.uint16:
            raise InvalidArgumentError(
                f"latent {name!r} is uint16: pass dtype='bfloat16' if it holds bfloat16 bits"
            )
        else:
            raise InvalidArgumentError(
                f"latent {name!r}: numpy dtype {arr.dtype} cannot be stored losslessly; "
                "use float32, float16 or bfloat16 (cast explicitly if a lossy cast is intended)"
            )
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # (not for 0-d arrays: it would make them 1-d)
    if target is None or target == dtype:
        return dtype, arr
    if dtype == "float32":
        # The one lossy step, taken only on request; refuses values that
        # would overflow to infinity.
        return target, native._convert_f32(arr, target)
    if target == "float32":
        # Widening is exact.
        if dtype == "float16":
            return target, arr.astype(np.float32)
        return target, (arr.astype(np.uint32) << 16).view(np.float32)
    raise InvalidArgumentError(
        f"latent {name!r}: converting {dtype} to {target} is lossy; convert to float32 first "
        "if that is really wanted"
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{what} cannot be stored as JSON: {e}") from None


def write(
    path: PathLike,
    latents: Mapping[str, ArrayLike],
    image: bytes | bytearray | memoryview | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    environment: Mapping[str, Any] | str | None = "auto",
    codec: str = "raw",
    dtype: str | Mapping[str, str] | None = None,
    image_extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    fsync: bool = False,
) -> int:
    """Write a ``.raiiaf`` file atomically and return its size in bytes.

    Args:
        path: Target file. An existing file is an error unless ``overwrite=True``.
        latents: ``{name: array}``; numpy arrays or torch tensors (CPU or CUDA) of
            float32, float16 or bfloat16 (uint16 bit patterns with ``dtype="bfloat16"``),
            1 to 8 dimensions. By convention the initial noise is ``initial_noise``.
            Contiguous CPU tensors are read in place, CUDA tensors copied to the host
            once, bit for bit.
        image: The encoded image file (PNG bytes), stored byte for byte.
        metadata: JSON-serialisable dict. ``model_name``, ``model_version``, ``date``,
            ``prompt``, ``tags``, ``generation_settings`` and ``hardware_info`` fill the
            reference format's ``model_info``; every other key is kept as well.
        environment: ``"auto"`` (default) records this process's environment
            (:func:`raiiaf_rs.environment.capture`) and fills ``hardware_info`` if the
            metadata lacks it; a host UI passes its own ``environment.capture(...)``
            document; ``None`` records none.
        codec: ``"raw"`` (default, readable by the reference ``raiiaf`` 1.1.0),
            ``"compact"`` (lossless, smallest; format 1.1) or ``"zfp"``.
        dtype: Stored dtype for all latents or per name. Converting float32 to
            float16/bfloat16 is lossy and happens only when asked; values that would
            overflow to infinity are refused.
        image_extra: Extra fields of the image record (e.g. width, height).
        fsync: Flush to disk before returning (slower; survives power loss).
    """
    return native._write(
        os.fspath(path),
        *_write_args(latents, image, metadata, environment, codec, dtype, image_extra),
        overwrite,
        fsync,
    )


def write_bytes(
    latents: Mapping[str, ArrayLike],
    image: bytes | bytearray | memoryview | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    environment: Mapping[str, Any] | str | None = "auto",
    codec: str = "raw",
    dtype: str | Mapping[str, str] | None = None,
    image_extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The ``.raiiaf`` file :func:`write` would write, returned as bytes (no file, no
    temporary file). Arguments as for :func:`write`."""
    return native._write_bytes(
        *_write_args(latents, image, metadata, environment, codec, dtype, image_extra)
    )


def _write_args(
    latents: Mapping[str, ArrayLike],
    image: bytes | bytearray | memoryview | None,
    metadata: Mapping[str, Any] | None,
    environment: Mapping[str, Any] | str | None,
    codec: str,
    dtype: str | Mapping[str, str] | None,
    image_extra: Mapping[str, Any] | None,
) -> tuple[Any, ...]:
    """The native writers' arguments after ``path``, checked and converted."""
    if not isinstance(latents, Mapping):
        raise InvalidArgumentError("latents must be a mapping {name: array}")
    if codec not in _CODEC_NAMES:
        raise InvalidArgumentError(f"unknown codec {codec!r}; use one of {CODECS}")
    items = []
    for name, value in latents.items():
        target = dtype.get(name) if isinstance(dtype, Mapping) else dtype
        stored, arr = _as_stored(str(name), value, target)
        items.append((str(name), stored, arr))
    if image is not None and not isinstance(image, bytes):
        image = bytes(image)
    metadata = dict(metadata or {})
    if isinstance(environment, str):
        if environment != "auto":
            raise InvalidArgumentError(
                f"environment must be 'auto', None or an ENVC document, not {environment!r}"
            )
        environment = environment_module.capture()
        metadata.setdefault("hardware_info", environment_module.hardware_info())
    return (
        items,
        image,
        _dumps(dict(image_extra or {}), "image_extra"),
        _dumps(metadata, "metadata"),
        None if environment is None else _dumps(dict(environment), "environment"),
        codec,
    )


def read(
    path: PathLike | BinaryIO,
    *,
    verify: bool = True,
    names: Iterable[str] | None = None,
    image: bool = True,
    as_torch: bool = False,
    warn_drift: bool = False,
    max_decoded_bytes: int | None = None,
) -> Artifact:
    """Read a ``.raiiaf`` (or legacy ``.gen5``) file: a path, or a binary file-like
    object (anything with ``read()``, e.g. an upload stream; read to its end).

    Args:
        verify: Check every chunk's SHA-256 (default). ``False`` is for forensics on
            damaged files only.
        names: Decode only these latents (``[]`` for none: metadata only).
        image: Also return the embedded image.
        as_torch: Return CPU torch tensors of the stored dtype (bfloat16 included),
            decoded in place: ``torch.from_numpy`` views of the decoded arrays, or in
            the torch build tensors libtorch allocated.
        warn_drift: Emit a ``UserWarning`` per environment component that differs
            from the current environment, as the reference decoder does
            (see :func:`raiiaf_rs.drift` for the structured differences).
        max_decoded_bytes: The most bytes this read may decode: the declared sizes of
            the tensors, image and environment it returns, added up, are checked against
            it before anything is allocated, so a small file cannot make it allocate
            gigabytes. Default: ``$RAIIAF_MAX_DECODED_BYTES`` if set (e.g. ``4G``), else
            :data:`DEFAULT_MAX_DECODED_BYTES` (1 GiB). Beyond it:
            :class:`LimitExceededError`.
    """
    native_torch = as_torch and LINKED_TORCH is not None
    names_list = None if names is None else [str(n) for n in names]
    limit = _limit(max_decoded_bytes)
    if hasattr(path, "read"):
        data = path.read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError("read() of a file-like object must return bytes")
        raw = native._read_bytes(bytes(data), verify, names_list, image, native_torch, limit)
        label = str(getattr(path, "name", ""))
    else:
        raw = native._read(os.fspath(path), verify, names_list, image, native_torch, limit)
        label = os.fspath(path)
    return _artifact(raw, as_torch, native_torch, warn_drift, label)


def read_bytes(
    data: bytes | bytearray | memoryview,
    *,
    verify: bool = True,
    names: Iterable[str] | None = None,
    image: bool = True,
    as_torch: bool = False,
    warn_drift: bool = False,
    max_decoded_bytes: int | None = None,
) -> Artifact:
    """Read a ``.raiiaf`` file held in memory (``bytes`` are read in place; other buffers
    are copied once). Arguments as for :func:`read`; ``Artifact.path`` is empty."""
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise InvalidArgumentError(
                f"read_bytes takes bytes, bytearray or memoryview, not {type(data).__name__}"
            )
        data = bytes(data)
    native_torch = as_torch and LINKED_TORCH is not None
    raw = native._read_bytes(
        data,
        verify,
        None if names is None else [str(n) for n in names],
        image,
        native_torch,
        _limit(max_decoded_bytes),
    )
    return _artifact(raw, as_torch, native_torch, warn_drift, "")


def _artifact(
    raw: dict[str, Any], as_torch: bool, native_torch: bool, warn_drift: bool, path: str
) -> Artifact:
    latents: dict[str, Any] = {}
    dtypes: dict[str, str] = {}
    for name, stored, arr in raw["latents"]:
        dtypes[name] = stored
        latents[name] = arr
    if as_torch and not native_torch:
        import torch

        for name, arr in latents.items():
            if dtypes[name] == "bfloat16":
                latents[name] = torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
            else:
                latents[name] = torch.from_numpy(arr)
    env = raw["environment"]
    if warn_drift and env is not None:
        environment_module.warn_drift(drift(json.loads(env)), stacklevel=3)
    return Artifact(
        latents=latents,
        dtypes=dtypes,
        image=raw["image"],
        metadata=json.loads(raw["metadata"]),
        environment=None if env is None else json.loads(env),
        manifest=json.loads(raw["manifest"]),
        header=dict(raw["header"]),
        path=path,
    )


def read_metadata(path: PathLike, *, max_decoded_bytes: int | None = None) -> Artifact:
    """Read only the manifest, metadata and environment (no tensors, no image)."""
    return read(path, names=[], image=False, max_decoded_bytes=max_decoded_bytes)


def verify(path: PathLike, *, max_decoded_bytes: int | None = None) -> None:
    """Decode every chunk and check every SHA-256; raise a :class:`RaiiafError` if any fails.
    ``max_decoded_bytes`` as for :func:`read`."""
    native._verify(os.fspath(path), _limit(max_decoded_bytes))


def _limit(max_decoded_bytes: int | None) -> int | None:
    if max_decoded_bytes is None:
        return None
    if isinstance(max_decoded_bytes, bool) or not isinstance(max_decoded_bytes, int):
        raise InvalidArgumentError(
            f"max_decoded_bytes must be an int (bytes) or None, not {max_decoded_bytes!r}"
        )
    if max_decoded_bytes < 0:
        raise InvalidArgumentError(f"max_decoded_bytes must be >= 0, not {max_decoded_bytes}")
    return max_decoded_bytes


@dataclass(frozen=True)
class Fingerprint:
    """A model file's identity: its name (never its path), SHA-256 and short hash."""

    name: str
    sha256: str
    size: int
    #: Whether the hash came from the on-disk cache.
    cached: bool

    @property
    def short(self) -> str:
        """The first 10 hex digits, as A1111 and model sites show them."""
        return self.sha256[:10]

    def as_metadata(self) -> dict[str, Any]:
        """``{"name", "sha256", "short_hash"}`` for a file's metadata."""
        return {"name": self.name, "sha256": self.sha256, "short_hash": self.short}


def fingerprint(path: PathLike, *, cache_dir: PathLike | None = None) -> Fingerprint:
    """SHA-256 of a checkpoint, VAE or LoRA file, cached by (path, size, mtime) in
    ``cache_dir`` (default ``$RAIIAF_CACHE_DIR`` or ``~/.cache/raiiaf-rs``), so each
    file is hashed once. The GIL is released while hashing."""
    sha, size, cached = native._fingerprint(
        os.fspath(path), None if cache_dir is None else os.fspath(cache_dir)
    )
    return Fingerprint(os.path.basename(os.fspath(path)), sha, size, cached)


def environment_document(components: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build an ENVC document from ``(component_id, canonical_string)`` pairs, e.g.
    ``[("torch", "name=torch;version=2.13.0;cuda=13.0")]``; SHA-256 digests are filled in."""
    return json.loads(native._environment_document([(str(a), str(b)) for a, b in components]))


def encode_png(
    image: ArrayLike,
    text: Mapping[str, str] | None = None,
    *,
    level: str = "fast",
) -> bytes:
    """Encode one image as PNG bytes: the file ComfyUI's ``SaveImage`` writes, much faster.

    Args:
        image: A ComfyUI ``IMAGE`` slice (``images[i]``): a numpy array or torch tensor
            (CPU or CUDA) of shape ``(H, W, C)``, ``C`` 1 (grayscale), 3 (RGB) or 4
            (RGBA), float32 in [0, 1] or uint8; ``(H, W)`` is grayscale. Floats become
            bytes exactly as ``SaveImage`` makes them,
            ``np.clip(255. * x, 0, 255).astype(np.uint8)`` (truncation; NaN gives 0);
            float16/float64 arrays go through that very numpy expression, bfloat16
            tensors are widened to float32 first. uint8 is stored as is.
        text: ``{keyword: text}`` PNG text chunks (ComfyUI writes ``prompt`` and
            ``workflow`` JSON), written in order as Pillow's ``PngInfo.add_text`` does:
            ``tEXt`` for Latin-1 text, ``iTXt`` (UTF-8) otherwise. Keywords are 1 to
            79 Latin-1 characters.
        level: ``"fast"`` (default: fdeflate, ~30x faster than Pillow's level 4 and
            ~6 % larger on generated images), ``"balanced"`` or ``"high"`` (DEFLATE
            levels 6 and 9: as slow as Pillow, smaller than "fast" on flat graphics only).

    The GIL is released while the image is converted and compressed.
    """
    if _is_torch_tensor(image):
        import torch

        t = image.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()  # numpy has no bfloat16; widening is exact
        arr = t.contiguous().numpy()
    else:
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        hint = "; pass one image of a batch, e.g. images[0]" if arr.ndim == 4 else ""
        raise InvalidArgumentError(f"image must have shape (H, W, C), not {arr.shape}{hint}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize != 4:
        # float16 / float64: SaveImage's own expression, at the array's precision.
        with np.errstate(invalid="ignore"):
            arr = np.clip(255.0 * arr, 0, 255).astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = np.ascontiguousarray(arr, dtype=np.float32)  # also swaps big-endian bytes
    elif arr.dtype == np.uint8:
        arr = np.ascontiguousarray(arr)
    else:
        raise InvalidArgumentError(
            f"image dtype {arr.dtype} is not supported; use float32 in [0, 1] or uint8"
        )
    pairs = []
    for key, value in (text or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError(
                f"PNG text must map str to str, not {type(key).__name__} to {type(value).__name__}"
            )
        pairs.append((key, value))
    return native._encode_png(arr, pairs, level)
