"""Facts about the running ComfyUI, read defensively: newer and older
versions move things around, and none of this may break a save."""

from __future__ import annotations

import functools
from typing import Any

import raiiaf_rs


@functools.lru_cache(maxsize=1)
def comfyui_version() -> str:
    try:
        import comfyui_version

        return str(comfyui_version.__version__)
    except Exception:
        return "unknown"


def metadata_disabled() -> bool:
    try:
        from comfy.cli_args import args

        return bool(getattr(args, "disable_metadata", False))
    except Exception:
        return False


def current_prompt_id() -> str:
    try:
        from comfy_execution.utils import get_executing_context

        ctx = get_executing_context()
        return "" if ctx is None else str(ctx.prompt_id)
    except Exception:
        return ""


@functools.lru_cache(maxsize=1)
def attention_backend() -> str:
    try:
        import comfy.model_management as mm

        for name, probe in (
            ("sage", "sage_attention_enabled"),
            ("flash", "flash_attention_enabled"),
            ("xformers", "xformers_enabled"),
            ("sdpa", "pytorch_attention_enabled"),
        ):
            fn = getattr(mm, probe, None)
            if fn is not None and fn():
                return name
        return "split"
    except Exception:
        return "unknown"


def environment(caps: list[Any]) -> dict[str, Any]:
    """The ENVC document for a save: this process plus what the sampler used."""
    dtypes = {}
    model_dtype = next(
        (c.extra.get("model_dtype") for c in caps if c.extra.get("model_dtype")), None
    )
    if model_dtype:
        dtypes["unet"] = model_dtype
    return raiiaf_rs.environment.capture(
        host={"app": "ComfyUI", "version": comfyui_version()},
        attention=attention_backend(),
        dtypes=dtypes or None,
        # comfy.sample.prepare_noise always draws on the CPU.
        noise_device="cpu",
    )


def drift(art: raiiaf_rs.Artifact) -> list[raiiaf_rs.Drift]:
    """Real differences between a file's environment and this ComfyUI process as
    the save node records it, pixel-changing first. Components the file did not
    record are not differences, and the model dtype is known only once a sampler
    ran, so its absence now is none either."""
    now = environment([])
    return sorted(
        (
            d
            for d in raiiaf_rs.drift(art, now)
            if d.kind != "not_in_file" and not (d.kind == "missing_now" and d.component == "dtype")
        ),
        key=lambda d: not d.affects_pixels,
    )
