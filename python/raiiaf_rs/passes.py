"""The sampler passes of a file, the same for every host (FORMAT.md, "Sampler passes").

Writers (the ComfyUI save node, the webui extension, the diffusers host) describe each
sampler pass upstream of the saved image with a :class:`Pass` and store
:func:`to_json` of the list under the metadata key ``passes``. Readers call
:func:`passes_of`, which also maps files written before the key existed (ComfyUI's
``captures``, the webui's ``initial_noise``/``hires_noise``, any other writer's lone
``initial_noise``), so a loader never guesses a pass from a tensor name.

The mapping rules are data-tested by ``tests/data/passes/*.json`` (metadata and tensor
names in, passes out), which the Rust catalog reads too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["HOSTS", "ROLES", "Pass", "from_capture", "from_json", "passes_of", "to_json"]

#: What a pass is for. ``txt2img``: the first pass, from an empty latent; ``img2img``: the
#: first pass, from an encoded image; ``inpaint``: the first pass with a mask; ``hires``: a
#: later pass on an upscaled latent or image; ``refiner``: a later pass with another model.
ROLES = ("txt2img", "img2img", "inpaint", "hires", "refiner", "other")

#: Hosts that write passes. ``None`` in ``source["host"]``: a file of another writer.
HOSTS = ("comfyui", "webui", "diffusers")

_FIELDS = (
    "order",
    "role",
    "noise",
    "input_latent",
    "adds_noise",
    "seed",
    "noise_shape",
    "noise_dtype",
    "sigmas",
    "timesteps",
    "settings",
    "source",
    "rng",
    "exact",
    "why_not_exact",
)


@dataclasses.dataclass(frozen=True)
class Pass:
    """One sampler pass of a file: what it ran, what it drew, where its tensors are.

    ``noise`` and ``input_latent`` are tensor names in the file (None: not stored).
    ``settings`` holds ``sampler``, ``scheduler``, ``steps``, ``cfg``, ``denoise`` (and
    ``start_step``/``end_step``) when known; unknown ones are left out. ``source`` says
    which host part ran it (``host``, then ComfyUI ``node_id``/``class_type``, webui
    ``pass``/``ui``, diffusers ``pipeline``/``scheduler``). ``rng``: state beyond the
    stored noise that a bit-exact rerun needs (None: the noise is all it needs).
    """

    order: int
    role: str
    noise: str | None = None
    input_latent: str | None = None
    adds_noise: bool = True
    seed: int | None = None
    noise_shape: tuple[int, ...] | None = None
    noise_dtype: str | None = None
    sigmas: tuple[float, ...] | None = None
    timesteps: tuple[float, ...] | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"host": None})
    rng: Mapping[str, Any] | None = None
    exact: bool = True
    why_not_exact: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"pass role {self.role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(self.order, int) or self.order < 0:
            raise ValueError(f"pass order must be an int >= 0, not {self.order!r}")
        if self.exact and self.why_not_exact:
            raise ValueError("a pass with reasons in why_not_exact cannot be exact")

    @property
    def host(self) -> str | None:
        """The host that wrote the pass (``comfyui``, ``webui``, ``diffusers``; None:
        unknown)."""
        return self.source.get("host")

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the file: every key, ``null`` when unknown."""
        out = {f: getattr(self, f) for f in _FIELDS}
        for key in ("noise_shape", "sigmas", "timesteps", "why_not_exact"):
            if out[key] is not None:
                out[key] = list(out[key])
        out["settings"] = dict(self.settings)
        out["source"] = dict(self.source)
        out["rng"] = dict(self.rng) if self.rng is not None else None
        return out


def to_json(passes: Iterable[Pass]) -> list[dict[str, Any]]:
    """The ``passes`` metadata value of a file, in run order."""
    return [p.to_json() for p in sorted(passes, key=lambda p: p.order)]


def _tuple(v: Any) -> tuple | None:
    return tuple(v) if isinstance(v, (list, tuple)) else None


def from_json(record: Mapping[str, Any]) -> Pass:
    """A stored record back as a :class:`Pass` (unknown keys ignored: later versions may
    add some). ValueError names what is wrong with a malformed record."""
    if not isinstance(record, Mapping):
        raise ValueError(f"a pass record must be an object, not {type(record).__name__}")
    try:
        return Pass(
            order=record["order"],
            role=record["role"],
            noise=record.get("noise"),
            input_latent=record.get("input_latent"),
            adds_noise=bool(record.get("adds_noise", True)),
            seed=record.get("seed"),
            noise_shape=_tuple(record.get("noise_shape")),
            noise_dtype=record.get("noise_dtype"),
            sigmas=_tuple(record.get("sigmas")),
            timesteps=_tuple(record.get("timesteps")),
            settings=dict(record.get("settings") or {}),
            source=dict(record.get("source") or {"host": None}),
            rng=record.get("rng"),
            exact=bool(record.get("exact", True)),
            why_not_exact=tuple(record.get("why_not_exact") or ()),
        )
    except KeyError as e:
        raise ValueError(f"a pass record lacks the key {e.args[0]!r}") from None


def _shape(shapes: Mapping[str, Any], name: str | None) -> tuple[int, ...] | None:
    s = shapes.get(name) if name else None
    return tuple(int(d) for d in s) if s is not None else None


def from_capture(
    record: Mapping[str, Any],
    order: int,
    first: bool,
    shapes: Mapping[str, Any],
    dtypes: Mapping[str, str],
) -> Pass:
    """The pass of one ComfyUI ``captures`` record (FORMAT.md §4.7, rule 1): ``first``
    whether it is the first pass (``txt2img``/``img2img``; later ones are ``hires``).
    The save node builds its ``passes`` from this too, so both agree."""
    name = record.get("name")
    settings = dict(record.get("settings") or {})
    mapped = {
        "sampler": settings.get("sampler_name", record.get("sampler")),
        "scheduler": settings.get("scheduler"),
        "steps": settings.get("steps"),
        "cfg": settings.get("cfg", record.get("cfg")),
        "denoise": settings.get("denoise"),
    }
    input_latent = record.get("input_latent")
    if first:
        started = input_latent or settings.get("denoise", 1.0) != 1.0
        role = "img2img" if started else "txt2img"
    else:
        role = "hires"
    return Pass(
        order=order,
        role=role,
        noise=name if name in shapes else None,
        input_latent=input_latent if input_latent in shapes else None,
        adds_noise=not record.get("all_zero", False),
        seed=record.get("seed"),
        noise_shape=_tuple(record.get("shape")) or _shape(shapes, name),
        noise_dtype=dtypes.get(name),
        sigmas=_tuple(record.get("sigmas")),
        settings={k: v for k, v in mapped.items() if v is not None},
        source={
            "host": "comfyui",
            "node_id": record.get("node_id"),
            "class_type": record.get("class_type"),
        },
    )


def _from_captures(captures: list, shapes: Mapping[str, Any], dtypes: Mapping[str, str]):
    """ComfyUI files before ``passes``: one pass per ``captures`` record, record order."""
    out = []
    for i, rec in enumerate(captures):
        if isinstance(rec, Mapping):
            out.append(from_capture(rec, len(out), i == 0, shapes, dtypes))
    return out


def _from_names(metadata: Mapping[str, Any], shapes: Mapping[str, Any], dtypes) -> list[Pass]:
    """Files of the webui before ``passes`` and of every other writer: by tensor name."""
    a1111 = metadata.get("a1111")
    webui = isinstance(a1111, Mapping)
    gen = metadata.get("generation_settings") or {}
    first_role = "img2img" if webui and a1111.get("mode") == "img2img" else "txt2img"
    out = []
    for name, role, which in (
        ("initial_noise", first_role, "first"),
        ("hires_noise", "hires", "hires"),
    ):
        if name not in shapes or (name == "hires_noise" and not webui):
            continue
        settings = {}
        if which == "first" and isinstance(gen, Mapping):
            for key, src in (
                ("sampler", "sampler"),
                ("scheduler", "scheduler"),
                ("steps", "steps"),
                ("cfg", "cfg_scale"),
            ):
                if gen.get(src) is not None:
                    settings[key] = gen[src]
        out.append(
            Pass(
                order=len(out),
                role=role,
                noise=name,
                seed=gen.get("seed") if which == "first" and isinstance(gen, Mapping) else None,
                noise_shape=_shape(shapes, name),
                noise_dtype=dtypes.get(name),
                settings=settings,
                source={"host": "webui", "pass": which} if webui else {"host": None},
            )
        )
    return out


def passes_of(
    metadata: Mapping[str, Any],
    shapes: Mapping[str, Iterable[int]],
    dtypes: Mapping[str, str] | None = None,
) -> list[Pass]:
    """The passes of a file, in run order, from its metadata view and its tensors' shapes
    (``Artifact.metadata``, ``{name: shape}`` of ``Artifact.latents``, and optionally
    ``Artifact.dtypes``). Files with a ``passes`` key give it back as stored; older files
    are mapped by the rules in FORMAT.md. ValueError for a malformed ``passes`` value.
    """
    dtypes = dtypes or {}
    stored = metadata.get("passes")
    if stored is not None:
        if not isinstance(stored, list):
            raise ValueError(f"metadata 'passes' must be a list, not {type(stored).__name__}")
        return sorted((from_json(r) for r in stored), key=lambda p: p.order)
    captures = metadata.get("captures")
    if isinstance(captures, list) and captures:
        return _from_captures(captures, shapes, dtypes)
    return _from_names(metadata, shapes, dtypes)
