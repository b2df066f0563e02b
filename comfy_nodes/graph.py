"""Reading human-readable settings out of ComfyUI's API prompt (the graph as
``{node_id: {"class_type", "inputs"}}``). The runtime values (seed, sigmas,
noise) come from the capture; this fills in names the runtime does not know:
scheduler, prompts, model files. Best effort: anything not found is omitted.
"""

from __future__ import annotations

from collections import deque
from typing import Any

# Input names that hold model files, and the ComfyUI folder each lives in.
MODEL_INPUTS = {
    "ckpt_name": "checkpoints",
    "unet_name": "diffusion_models",
    "vae_name": "vae",
    "lora_name": "loras",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
}


def _is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], (str, int))


def _node(prompt: dict, node_id: Any) -> dict:
    n = prompt.get(str(node_id))
    return n if isinstance(n, dict) else {}


def resolve(prompt: dict, value: Any, depth: int = 0) -> Any:
    """Follow a link to the widget value feeding it (through primitive and
    text nodes): the first non-link input of the upstream node."""
    if not _is_link(value) or depth > 8:
        return value
    inputs = _node(prompt, value[0]).get("inputs", {})
    for key in ("text", "value", "string", "seed", "noise_seed", "int", "float"):
        if key in inputs:
            return resolve(prompt, inputs[key], depth + 1)
    return None


def _text_of(prompt: dict, cond_link: Any) -> str | None:
    """The prompt text behind a CONDITIONING input (CLIPTextEncode and kin)."""
    seen = set()
    queue = deque([cond_link])
    while queue:
        link = queue.popleft()
        if not _is_link(link) or str(link[0]) in seen:
            continue
        seen.add(str(link[0]))
        inputs = _node(prompt, link[0]).get("inputs", {})
        for key in ("text", "text_g", "clip_l", "t5xxl"):
            if key in inputs:
                text = resolve(prompt, inputs[key])
                if isinstance(text, str):
                    return text
        for key in ("conditioning", "conditioning_1", "positive", "cond"):
            if key in inputs:
                queue.append(inputs[key])
    return None


def sampler_settings(prompt: dict, node_id: str) -> dict[str, Any]:
    """Settings of the sampler node ``node_id``: seed, steps, cfg, sampler,
    scheduler, denoise, prompts, for KSampler, KSamplerAdvanced, SamplerCustom
    and SamplerCustomAdvanced (through its NOISE/GUIDER/SAMPLER/SIGMAS nodes)."""
    node = _node(prompt, node_id)
    inputs = dict(node.get("inputs", {}))
    out: dict[str, Any] = {"class_type": node.get("class_type")}
    # SamplerCustomAdvanced: gather the inputs of the nodes feeding it.
    for key in ("noise", "guider", "sampler", "sigmas"):
        if _is_link(inputs.get(key)):
            for k, v in _node(prompt, inputs[key][0]).get("inputs", {}).items():
                inputs.setdefault(k, v)
    for src, dst in (
        ("seed", "seed"),
        ("noise_seed", "seed"),
        ("steps", "steps"),
        ("cfg", "cfg"),
        ("sampler_name", "sampler_name"),
        ("scheduler", "scheduler"),
        ("denoise", "denoise"),
        ("start_at_step", "start_at_step"),
        ("end_at_step", "end_at_step"),
        ("add_noise", "add_noise"),
    ):
        if src in inputs and dst not in out:
            value = resolve(prompt, inputs[src])
            if value is not None and not _is_link(value):
                out[dst] = value
    for key in ("positive", "negative"):
        if key in inputs:
            text = _text_of(prompt, inputs[key])
            if text is not None:
                out[f"{key}_prompt"] = text
    return out


def model_files(prompt: dict, node_id: str) -> list[tuple[str, str, str]]:
    """(input name, folder, file name) of every model file upstream of a node."""
    found: list[tuple[str, str, str]] = []
    seen = set()
    queue = deque([str(node_id)])
    while queue:
        nid = queue.popleft()
        if nid in seen:
            continue
        seen.add(nid)
        for key, value in _node(prompt, nid).get("inputs", {}).items():
            if _is_link(value):
                queue.append(str(value[0]))
            elif key in MODEL_INPUTS and isinstance(value, str):
                entry = (key, MODEL_INPUTS[key], value)
                if entry not in found:
                    found.append(entry)
    return found
