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


#: The role each of those inputs' files plays, as metadata ``models`` names it.
MODEL_ROLES = {
    "ckpt_name": "checkpoint",
    "unet_name": "unet",
    "vae_name": "vae",
    "lora_name": "lora",
    "clip_name": "text_encoder",
    "clip_name1": "text_encoder",
    "clip_name2": "text_encoder",
}


def is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], (str, int))


def _node(prompt: dict, node_id: Any) -> dict:
    n = prompt.get(str(node_id))
    return n if isinstance(n, dict) else {}


def resolve(prompt: dict, value: Any, depth: int = 0) -> Any:
    """Follow a link to the widget value feeding it (through primitive and
    text nodes): the first non-link input of the upstream node."""
    if not is_link(value) or depth > 8:
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
        if not is_link(link) or str(link[0]) in seen:
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
        if is_link(inputs.get(key)):
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
            if value is not None and not is_link(value):
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
            if is_link(value):
                queue.append(str(value[0]))
            elif key in MODEL_INPUTS and isinstance(value, str):
                entry = (key, MODEL_INPUTS[key], value)
                if entry not in found:
                    found.append(entry)
    return found


def loras(prompt: dict, node_id: str) -> list[dict[str, Any]]:
    """The LoRA loaders upstream of a node (LoraLoader, LoraLoaderModelOnly and any
    node with a ``lora_name`` file), the first applied first: ``{"name",
    "strength_model", "strength_clip"}`` (``strength_clip`` None for model-only ones, a
    strength None where the graph does not say it)."""
    depth = upstream(prompt, node_id)
    out = []
    for nid in sorted(depth, key=lambda n: (-depth[n], len(n), n)):
        inputs = _node(prompt, nid).get("inputs", {})
        name = inputs.get("lora_name")
        if not isinstance(name, str) or not name:
            continue
        strengths = []
        for key in ("strength_model", "strength_clip"):
            value = resolve(prompt, inputs.get(key))
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            strengths.append(float(value) if ok else None)
        model, clip = strengths
        out.append({"name": name, "strength_model": model, "strength_clip": clip})
    return out


# --- the graph around a node ------------------------------------------------------------
# Core nodes that sample; nodes of other packs count as samplers once they have been seen
# sampling (capture.seen_sampler_classes).
SAMPLER_CLASSES = frozenset(
    {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"}
)


def real_id(node_id: str) -> str:
    """The prompt node an executing id belongs to: nodes expanded at run time
    (detailers, loops) get ids ``<parent>.<call>.<graph>.<id>``; prompt ids,
    subgraph ones (``12:5``) included, never contain a dot."""
    return str(node_id).split(".", 1)[0]


def upstream(prompt: dict, node_id: str, inputs: tuple[str, ...] | None = None) -> dict[str, int]:
    """Every node upstream of ``node_id`` (through ``inputs`` only, if given), with its
    depth: the longest path from it to ``node_id``. Deeper nodes ran earlier."""
    start = _node(prompt, node_id).get("inputs", {})
    first = [str(v[0]) for k, v in start.items() if is_link(v) and (inputs is None or k in inputs)]
    depth: dict[str, int] = {}
    # Longest path by relaxation in a DAG: revisit a node only when found deeper.
    stack = [(nid, 1) for nid in first]
    while stack:
        nid, d = stack.pop()
        if depth.get(nid, 0) >= d or d > len(prompt) + 1:
            continue
        depth[nid] = d
        for v in _node(prompt, nid).get("inputs", {}).values():
            if is_link(v):
                stack.append((str(v[0]), d + 1))
    return depth


def downstream(prompt: dict, node_id: str) -> dict[str, int]:
    """Every node downstream of ``node_id``, with its depth (longest path from it)."""
    consumers: dict[str, list[str]] = {}
    for nid, node in prompt.items():
        if isinstance(node, dict):
            for v in node.get("inputs", {}).values():
                if is_link(v):
                    consumers.setdefault(str(v[0]), []).append(str(nid))
    depth: dict[str, int] = {}
    stack = [(c, 1) for c in consumers.get(str(node_id), [])]
    while stack:
        nid, d = stack.pop()
        if depth.get(nid, 0) >= d or d > len(prompt) + 1:
            continue
        depth[nid] = d
        stack.extend((c, d + 1) for c in consumers.get(nid, []))
    return depth


def class_of(prompt: dict, node_id: str) -> str:
    return str(_node(prompt, node_id).get("class_type", ""))


def signature(prompt: dict, node_id: str, memo: dict[str, str] | None = None) -> str:
    """What ComfyUI's cache keys a node's output on, from the prompt alone: its class
    and inputs, with each link replaced by the signature of the node it comes from.
    Two nodes with equal signatures give equal outputs, so ComfyUI serves one from the
    other's (or an earlier prompt's) cache; a capture kept under the signature is the
    one that produced the cached output."""
    import hashlib
    import json

    memo = {} if memo is None else memo
    order: list[str] = []
    stack = [str(node_id)]
    while stack:  # iterative post-order: deep graphs must not hit the recursion limit
        nid = stack[-1]
        if nid in memo:
            stack.pop()
            continue
        pending = [
            str(v[0])
            for v in _node(prompt, nid).get("inputs", {}).values()
            if is_link(v) and str(v[0]) not in memo and str(v[0]) not in order
        ]
        if pending and nid not in order:
            order.append(nid)
            stack.extend(pending)
            continue
        node = _node(prompt, nid)
        items = []
        for k, v in sorted(node.get("inputs", {}).items()):
            if is_link(v):
                items.append([k, memo.get(str(v[0]), "cycle"), v[1]])
            else:
                items.append([k, v])
        text = json.dumps([node.get("class_type"), items], sort_keys=True, default=str)
        memo[nid] = hashlib.sha256(text.encode()).hexdigest()[:32]
        stack.pop()
    return memo[str(node_id)]
