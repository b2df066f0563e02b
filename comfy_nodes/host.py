"""Facts about the running ComfyUI, read defensively: newer and older
versions move things around, and none of this may break a save."""

from __future__ import annotations

import functools
from typing import Any

import raiiaf_rs
from raiiaf_rs import host as raiiaf_host


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


def host_info() -> raiiaf_host.Host:
    return raiiaf_host.Host("ComfyUI", comfyui_version())


def environment(caps: list[Any]) -> dict[str, Any]:
    """The ENVC document for a save: this process plus what the sampler used."""
    model_dtype = next(
        (c.extra.get("model_dtype") for c in caps if c.extra.get("model_dtype")), None
    )
    return raiiaf_host.capture_environment(
        host_info(),
        attention=attention_backend(),
        dtypes={"unet": model_dtype} if model_dtype else None,
        # comfy.sample.prepare_noise always draws on the CPU.
        noise_device="cpu",
    )


def drift(art: raiiaf_rs.Artifact) -> list[raiiaf_rs.Drift]:
    """Real differences between a file's environment and this ComfyUI process as
    the save node records it, pixel-changing first. The model dtype is known only
    once a sampler ran, so its absence now is no difference."""
    return raiiaf_host.environment_drift(art, environment([]), unknown_now=("dtype",))


def current_context() -> tuple[str, str, int]:
    """(prompt_id, node_id, list_index) of the node now executing; node_id is the
    executing id (expanded nodes have their own), list_index 0 outside list runs."""
    try:
        from comfy_execution.utils import get_executing_context

        ctx = get_executing_context()
    except Exception:  # ComfyUI without execution contexts
        ctx = None
    if ctx is None:
        return "", "", 0
    return str(ctx.prompt_id), str(ctx.node_id), int(ctx.list_index or 0)


def running_prompt(prompt_id: str) -> dict | None:
    """The API prompt being executed under ``prompt_id``, from the server's queue
    (None outside a server, or if ComfyUI moved it)."""
    try:
        from server import PromptServer

        running = PromptServer.instance.prompt_queue.currently_running
        # A plain read of the dict: the executing prompt's entry stays put while it runs.
        for item in list(running.values()):
            if len(item) > 2 and str(item[1]) == prompt_id and isinstance(item[2], dict):
                return item[2]
    except Exception:
        pass
    return None


def prompt_id_of(prompt: dict) -> str:
    """The id under which the server runs the API prompt ``prompt`` (this very dict),
    or "" when it is not running."""
    try:
        from server import PromptServer

        running = PromptServer.instance.prompt_queue.currently_running
        for item in list(running.values()):
            if len(item) > 2 and item[2] is prompt:
                return str(item[1])
    except Exception:
        pass
    return ""
