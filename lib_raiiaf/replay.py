"""Replay: reading the ``.raiiaf`` files a user gave, checking them against the run,
and the plan of which stored noise goes into which image of which pass."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import raiiaf_rs
from raiiaf_rs import replay as raiiaf_replay
from raiiaf_rs.allowed import inside as _inside
from raiiaf_rs.passes import Pass

from . import webui

#: Tensor names in the files this extension writes, by sampling pass.
PASS_NAMES = {"first": "initial_noise", "hires": "hires_noise"}

#: The sampler's starting latent where it is itself a random draw (the VAE encoder samples
#: its latent distribution from torch's global generator): img2img's ``init_latent``,
#: and the hires pass's input after a non-latent upscaler (or the Hires fix button).
START_NAMES = {"first": "init_latent", "hires": "hires_start_latent"}

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
    #: The file's sampler passes (raiiaf_rs.replay.passes), whichever host wrote it.
    passes: list[Pass] = field(default_factory=list)

    def noise_name(self, which: str) -> str | None:
        """The tensor of pass ``which`` (``first``/``hires``): the first pass unless the
        file starts with a hires pass (the Hires fix button), the first hires pass."""
        for p in self.passes:
            first = p.order == 0 and p.role != "hires"
            if (which == "first" and first) or (which == "hires" and p.role == "hires"):
                return p.noise
        return None

    def noise(self, which: str) -> np.ndarray | None:
        name = self.noise_name(which)
        arr = self.artifact.latents.get(name) if name else None
        if arr is None:
            return None
        if self.artifact.dtypes.get(name) != "float32":
            arr = np.asarray(arr, dtype=np.float32)
        return arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr

    def start(self, which: str) -> np.ndarray | None:
        """The stored starting latent of pass ``which`` (C, H, W), if any."""
        arr = self.artifact.latents.get(START_NAMES[which])
        if arr is None:
            return None
        arr = np.asarray(arr, dtype=np.float32)
        return arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr

    @property
    def a1111(self) -> dict[str, Any]:
        """The webui's settings of the file; for a file of another host, those its first
        pass and metadata give, in the webui's names (:func:`foreign_settings`)."""
        stored = self.artifact.metadata.get("a1111")
        if isinstance(stored, dict):
            return dict(stored)
        return foreign_settings(self.passes, self.artifact.metadata)

    def not_exact_here(self) -> list[raiiaf_replay.Difference]:
        """Why this file, if another host wrote it, does not regenerate bit for bit here."""
        return raiiaf_replay.cross_host_differences(self.passes, self.artifact.metadata, "webui")

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.artifact.metadata.get("generation_settings") or {})


def _webui_sampler(value: Any) -> Any:
    """A sampler name of any host (ComfyUI's, a diffusers scheduler class) as the webui's."""
    comfy = raiiaf_replay.comfyui_sampler(value)
    return raiiaf_replay.translate(comfy, raiiaf_replay.SAMPLERS_WEBUI_TO_COMFYUI, reverse=True)


def foreign_settings(found: list[Pass], meta: dict[str, Any]) -> dict[str, Any]:
    """The ``a1111`` view of a file another host wrote (ComfyUI, diffusers): mode, seed, steps,
    CFG, sampler and scheduler in the webui's names, size, denoising strength, and the
    hires pass's settings, so that replay checks them like a webui file's."""
    if not found:
        return {}
    first = raiiaf_replay.first_settings(meta, found)
    scheds = raiiaf_replay.SCHEDULERS_WEBUI_TO_COMFYUI
    out: dict[str, Any] = {
        "mode": "img2img" if found[0].role in ("img2img", "inpaint") else "txt2img",
        "seed": first.get("seed"),
        "steps": first.get("steps"),
        "cfg_scale": first.get("cfg"),
        "sampler": _webui_sampler(first.get("sampler")),
        "scheduler": raiiaf_replay.translate(first.get("scheduler"), scheds, reverse=True),
        "width": meta.get("width"),
        "height": meta.get("height"),
    }
    if out["mode"] == "img2img":
        out["denoising_strength"] = first.get("denoise")
    hires = [p for p in found if p.role == "hires"]
    if hires:
        h = hires[0].settings
        out["hires"] = {
            "hr_second_pass_steps": h.get("steps"),
            "hr_sampler_name": _webui_sampler(h.get("sampler")),
            "hr_scheduler": raiiaf_replay.translate(h.get("scheduler"), scheds, reverse=True),
            "hr_cfg": h.get("cfg"),
            "denoising_strength": h.get("denoise"),
        }
        out["hires"] = {k: v for k, v in out["hires"].items() if v is not None}
    return {k: v for k, v in out.items() if v is not None}


def _items(value: Any) -> list[Any]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, (list, tuple)):
        return [v for v in value if v is not None]
    return [value]


def _read_allowed(path: str) -> tuple[str, bytes]:
    """A replay file named by path (API input or an upload's temp file): only a
    ``.raiiaf`` file inside the webui's output folders or the upload folder is read.
    The folder check comes first and looks at the path's text alone (nothing on disk is
    touched for a path outside them, and every such path gets the same message, so a
    caller cannot learn whether it exists); the real path (links resolved) is then
    checked again before the file is opened."""
    name = os.path.basename(path)
    outside = ReplayError(
        f"{name!r} is not inside the webui's output folders or its upload folder, so it is "
        "not read; upload the file, pass its contents as base64, or move it into the "
        "outputs folder"
    )
    allowed = webui.allowed_dirs()
    plain = os.path.normpath(os.path.abspath(path))
    if not any(_inside(plain, d) for d in allowed):
        raise outside
    if not plain.lower().endswith(".raiiaf"):
        raise ReplayError(f"{name} is not a .raiiaf file (replay reads only .raiiaf files)")
    real = os.path.realpath(plain)
    if not any(_inside(real, d) for d in allowed):
        raise outside
    try:
        with open(real, "rb") as f:
            return name, f.read()
    except OSError as e:
        raise ReplayError(f"{name} cannot be read: {e.strerror or e}") from None


#: How base64 data of a replay file begins: the format's magic "raiiaf" (legacy "GEN5").
BASE64_MAGIC = ("cmFpaWFm", "R0VON")


def _looks_like_path(text: str) -> bool:
    """A path, not base64 data: every replay file starts with the format's magic, so its
    base64 does too (anything else is taken as a path, checked against the folders)."""
    return not text.startswith(BASE64_MAGIC)


def _load_bytes(item: Any) -> tuple[str, bytes]:
    """(display name, bytes) of one upload: bytes (gradio ``type="binary"``), a path, a
    base64 string (API), a dict with ``name``/``path``/``data``, or a tempfile wrapper.
    A path is only ever looked at through ``_read_allowed``."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return "uploaded file", bytes(item)
    if isinstance(item, dict):
        for key in ("path", "name"):
            if isinstance(item.get(key), str) and item[key].strip():
                return _read_allowed(item[key])
        if "data" in item:
            return _load_bytes(item["data"])
    name = getattr(item, "name", None)
    if isinstance(name, str) and not isinstance(item, str):
        return _read_allowed(name)
    if isinstance(item, str):
        text = item.strip()
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        elif _looks_like_path(text):
            return _read_allowed(text)
        try:
            return "base64 upload", base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ReplayError("the replay file is neither a .raiiaf path nor base64 data") from None
    raise ReplayError(f"cannot read a replay file from a {type(item).__name__}")


def _decode(name: str, data: bytes) -> Source:
    """Read and verify one file (raiiaf_rs.replay: the hosts' size limit and messages);
    a file of another host is refused here when the webui cannot run its passes."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        art = raiiaf_replay.read(data, name)
        found = raiiaf_replay.passes(art)
    except raiiaf_replay.ReadError as e:
        raise ReplayError(str(e)) from None
    if not any(p.noise in art.latents for p in found):
        raise ReplayError(f"{name} holds no initial_noise tensor: nothing to replay")
    why = raiiaf_replay.plain_graph_refusal(found, art.metadata)
    if why:
        raise ReplayError(f"{name} cannot be replayed in the webui: {why}")
    return Source(name=name, sha256=digest, artifact=art, passes=found)


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
    #: Passes whose replay was dropped (a hires shape that does not fit, "proceed").
    skip: set[str] = field(default_factory=set)
    #: The settings restored from the files: {label: (was, now)}.
    restored: dict[str, tuple[Any, Any]] = field(default_factory=dict)

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
        if arr is None and which == "first" and src.noise("hires") is not None:
            raise ReplayError(
                f"{src.name} was made with the 'Hires fix' button from an existing image: it "
                "holds no first-pass noise; replay it with the 'Hires fix' button on the same "
                "image"
            )
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
                raiiaf_replay.shape_mismatch(
                    src.name,
                    tuple(arr.shape),
                    tuple(expected),
                    f"this {what}",
                    "set width, height (and hires settings) as stored (the 'apply stored "
                    "settings' button) or give another file",
                )
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
        # a file of another host: its names in the webui's (foreign_settings)
        "sampler": a.get("sampler", gen.get("sampler")),
        "scheduler": a.get("scheduler", gen.get("scheduler")),
        "cfg_scale": gen.get("cfg_scale"),
        "width": a.get("width"),
        "height": a.get("height"),
        "denoising_strength": a.get("denoising_strength"),
        "prompt": src.artifact.metadata.get("prompt"),
        "negative_prompt": src.artifact.metadata.get("negative_prompt"),
    }
    if a.get("mode") == "txt2img":
        hires = a.get("hires")
        out["enable_hr"] = isinstance(hires, dict)
        for key, value in (hires or {}).items():
            if key.startswith("hr_") and not key.startswith("hr_upscale_to"):
                out[key] = value
    return {k: v for k, v in out.items() if v is not None}


#: ``p`` attributes the samplers read (the webui fills them from the settings of the
#: same name when a generation starts).
P_SAMPLER_ATTRS = ("eta", "s_churn", "s_tmin", "s_tmax", "s_noise")

#: Settings never restored: ``initial_noise_multiplier`` is img2img's own (stored noise is
#: taken after it).
NOT_RESTORED = ("initial_noise_multiplier",)

#: Names as the webui's settings page shows them.
LABELS = {
    "eta_noise_seed_delta": "ENSD",
    "randn_source": "Random number generator source",
    "sgm_noise_multiplier": "SGM noise multiplier",
    "no_dpmpp_sde_batch_determinism": "Do not make DPM++ SDE deterministic across batch sizes",
    "eta_ancestral": "Eta for k-diffusion samplers",
    "eta_ddim": "Eta for DDIM",
    "img2img_extra_noise": "Extra noise multiplier for img2img and hires fix",
    "CLIP_stop_at_last_layers": "Clip skip",
    "forge_try_reproduce": "Try to reproduce the results from external software",
    "eta": "Eta of this generation",
    "s_churn": "sigma churn",
    "s_tmin": "sigma tmin",
    "s_tmax": "sigma tmax",
    "s_noise": "sigma noise",
}


def label(key: str) -> str:
    """``Label (key)``: the settings page's name and the key the API and config use."""
    return f"{LABELS[key]} ({key})" if key in LABELS else key


def _norm(value: Any) -> Any:
    value = webui.json_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(value)


def _as_setting(value: Any) -> Any:
    """A stored value back as the webui holds it ("inf" as an infinite float)."""
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    return value


@dataclass(frozen=True)
class Difference(raiiaf_replay.Difference):
    """raiiaf_rs.replay's difference with the webui's labels (settings page name and
    key) and wording. Kinds: ``opts``, ``p``, and the webui's own ``gen`` (a generation
    setting the UI restores) and ``fixed`` (one the user must change)."""

    def __post_init__(self) -> None:
        if self.label is None:
            object.__setattr__(self, "label", label(self.key))

    def text(self, here: str = "this webui") -> str:
        return super().text(here)


def _stored_values(src: Source) -> tuple[dict[str, Any], dict[str, Any]]:
    a = src.a1111
    stored_opts = {
        k: v
        for k, v in dict(a.get("opts") or {}).items()
        if k in webui.NOISE_OPTS and k not in NOT_RESTORED
    }
    stored_p = {k: a.get(k) for k in P_SAMPLER_ATTRS}
    return stored_opts, stored_p


def _effective_opt(p: Any, key: str) -> Any:
    """A setting's value for this generation: the caller's ``override_settings`` (which
    the webui applies after ``before_process``), else the webui's."""
    overrides = getattr(p, "override_settings", None)
    if isinstance(overrides, dict) and key in overrides:
        return overrides[key]
    return webui.opt(key)


#: The values k-diffusion's samplers use when none is given (the webui's ``Sampler``).
SAMPLER_DEFAULTS = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0}


def sampler_value(p: Any, key: str) -> Any:
    """What the sampler will really use for ``key`` of ``P_SAMPLER_ATTRS``, read at
    ``before_process``. Since A1111 1.10 (and in Forge/reForge) ``p.s_*`` are still None
    there: ``fill_fields_from_opts`` fills them from the settings later (``s_tmax`` 0
    meaning no limit). The sampler then lets a setting that is not its default win over
    ``p``'s value. ``eta`` is ``p``'s own (None: the sampler's eta setting)."""
    value = getattr(p, key, None)
    if key not in SAMPLER_DEFAULTS:
        return value
    setting = _effective_opt(p, key)
    if key == "s_tmax":
        setting = setting or float("inf")
    if value is None:
        value = setting
    elif key == "s_tmax":
        value = value or float("inf")
    is_number = isinstance(setting, (int, float)) and not isinstance(setting, bool)
    if is_number and float(setting) != SAMPLER_DEFAULTS[key]:
        return setting
    return value


def setting_differences(sources: list[Source], p: Any) -> list[Difference]:
    """Every pixel-relevant setting the files hold that differs from this webui's (or
    this generation's); raises ReplayError when the files disagree among themselves."""
    if not sources:
        return []
    first_opts, first_p = _stored_values(sources[0])
    for src in sources[1:]:
        o, q = _stored_values(src)
        for key in sorted(set(first_opts) | set(o)):
            if _norm(first_opts.get(key)) != _norm(o.get(key)):
                raise ReplayError(
                    f"the files were made with different settings ({label(key)}: "
                    f"{sources[0].name} {first_opts.get(key)!r}, {src.name} {o.get(key)!r}); "
                    "replay them in separate runs"
                )
        for key in P_SAMPLER_ATTRS:
            if _norm(first_p.get(key)) != _norm(q.get(key)):
                raise ReplayError(
                    f"the files were made with different settings ({label(key)}: "
                    f"{sources[0].name} {first_p.get(key)!r}, {src.name} {q.get(key)!r}); "
                    "replay them in separate runs"
                )
    out = []
    for key, value in first_opts.items():
        if not webui.has_opt(key):
            if key == "forge_try_reproduce" and value in ("ComfyUI", "DrawThings"):
                # Forge drew on the CPU whatever randn_source said: the CPU source here.
                current = _effective_opt(p, "randn_source")
                if current != "CPU":
                    out.append(Difference("randn_source", "opts", "CPU", current))
            continue
        current = _effective_opt(p, key)
        if _norm(current) != _norm(value):
            out.append(Difference(key, "opts", value, webui.json_value(current)))
    for key, value in first_p.items():
        current = sampler_value(p, key)
        if value is None and (current is None or key != "eta"):
            # The webui always fills the sigma values (a file without one says nothing
            # about it); eta is None unless set for the generation.
            continue
        if _norm(current) != _norm(value):
            out.append(Difference(key, "p", value, webui.json_value(current)))
    # One difference per setting (forge_try_reproduce may name randn_source twice).
    unique: dict[tuple[str, str], Difference] = {}
    for d in out:
        unique.setdefault((d.kind, d.key), d)
    return list(unique.values())


def restore(p: Any, differences: list[Difference]) -> dict[str, tuple[Any, Any]]:
    """Put the stored values in place for this generation: webui settings through
    ``p.override_settings`` (the webui applies them for the run and puts the old values
    back afterwards), the generation's own values on ``p``."""
    done = {}
    overrides = getattr(p, "override_settings", None)
    if not isinstance(overrides, dict):
        overrides = {}
        p.override_settings = overrides
    for d in differences:
        if d.kind == "opts":
            overrides[d.key] = _as_setting(d.stored)
        else:
            setattr(p, d.key, _as_setting(d.stored))
        done[label(d.key)] = (d.current, d.stored)
    return done
