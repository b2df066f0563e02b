"""Reading human-readable settings out of ComfyUI's API prompt (the graph as
``{node_id: {"class_type", "inputs"}}``). The runtime values (seed, sigmas,
noise) come from the capture; this fills in names the runtime does not know:
scheduler, prompts, model files. Linked inputs are read through a getter that knows
the values nodes really ran with (inputs.py); anything not known is left out and said
so, never guessed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
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


#: Inputs along which a CONDITIONING flows back to its text encoders.
COND_INPUTS = (
    "conditioning",
    "conditioning_1",
    "conditioning_2",
    "conditioning_to",
    "conditioning_from",
    "cond",
)
#: The text input of a text encoder, first found first (SDXL: text_g; Flux: clip_l).
TEXT_INPUTS = ("text", "text_g", "clip_l", "t5xxl")

#: get(node_id, input_name) -> (known, value): the value an input had; (True, None)
#: when the node has no such input, (False, None) when it is unknown.
Getter = Callable[[str, str], tuple[bool, Any]]


def literal_getter(prompt: dict) -> Getter:
    """The values the prompt itself holds: widgets; a linked input is unknown."""

    def get(node_id: str, name: str) -> tuple[bool, Any]:
        inputs = _node(prompt, node_id).get("inputs", {})
        if name not in inputs:
            return True, None
        return (False, None) if is_link(inputs[name]) else (True, inputs[name])

    return get


def _encoders(prompt: dict, cond_link: Any) -> list[str]:
    """The text-encoding nodes whose conditioning reaches a CONDITIONING input, through
    combine/concat/area/timestep nodes. A node passing positive and negative on (e.g.
    ControlNetApplyAdvanced) is followed along the side the link takes: output 0 is its
    positive, output 1 its negative."""
    found: list[str] = []
    seen = set()
    queue = deque([cond_link])
    while queue:
        link = queue.popleft()
        if not is_link(link) or (str(link[0]), link[1]) in seen:
            continue
        seen.add((str(link[0]), link[1]))
        nid = str(link[0])
        inputs = _node(prompt, nid).get("inputs", {})
        if any(k in inputs for k in TEXT_INPUTS):
            if nid not in found:
                found.append(nid)
            continue
        if "positive" in inputs and "negative" in inputs:
            queue.append(inputs["negative" if link[1] == 1 else "positive"])
        elif "positive" in inputs:
            queue.append(inputs["positive"])
        queue.extend(inputs[k] for k in COND_INPUTS if k in inputs)
    return found


def prompt_text(prompt: dict, cond_link: Any, get: Getter) -> tuple[str | None, str]:
    """(text, "") for the one prompt text behind a CONDITIONING input, or (None, why
    not) when it is not one known text: no text encoder found, a text input whose
    value was not recorded, or several encoders combined."""
    encoders = _encoders(prompt, cond_link)
    if not encoders:
        return None, "no text encoder with a text input is upstream of it"
    if len(encoders) > 1:
        return None, (
            f"it combines the conditioning of {len(encoders)} text encoders (nodes "
            f"{', '.join(encoders)}), which no single prompt text reproduces"
        )
    nid = encoders[0]
    inputs = _node(prompt, nid).get("inputs", {})
    key = next(k for k in TEXT_INPUTS if k in inputs)
    known, text = get(nid, key)
    if not known or not isinstance(text, str):
        return None, (
            f"the {key} of node {nid} ({class_of(prompt, nid)}) came through a link and no "
            "run of that node was recorded"
        )
    return text, ""


#: The settings a reload outputs, and the input names each comes from.
SETTINGS = (
    ("seed", ("seed", "noise_seed")),
    ("steps", ("steps",)),
    ("cfg", ("cfg",)),
    ("sampler_name", ("sampler_name",)),
    ("scheduler", ("scheduler",)),
    ("denoise", ("denoise",)),
)
EXTRA_SETTINGS = ("start_at_step", "end_at_step", "add_noise")


def sampler_settings(prompt: dict, node_id: str, get: Getter | None = None) -> dict[str, Any]:
    """Settings of the sampler node ``node_id``: seed, steps, cfg, sampler, scheduler,
    denoise, prompts, for KSampler, KSamplerAdvanced, SamplerCustom and
    SamplerCustomAdvanced (through its NOISE/GUIDER/SAMPLER/SIGMAS nodes), each read
    through ``get`` (default: the prompt's literal widgets). A setting whose input
    exists but whose value is not known is left out and listed, with why, under
    ``unknown``; a setting no input holds is simply absent."""
    get = get or literal_getter(prompt)
    node = _node(prompt, node_id)
    inputs = node.get("inputs", {})
    out: dict[str, Any] = {"class_type": node.get("class_type")}
    unknown: dict[str, str] = {}
    # SamplerCustomAdvanced: the nodes feeding it hold its settings.
    feeding = [inputs.get(k) for k in ("noise", "guider", "sampler", "sigmas")]
    sources = [str(node_id)] + [str(v[0]) for v in feeding if is_link(v)]
    wanted = [*SETTINGS, *((k, (k,)) for k in EXTRA_SETTINGS)]
    for dst, names in wanted:
        for nid in sources:
            name = next((n for n in names if n in _node(prompt, nid).get("inputs", {})), None)
            if name is None:
                continue
            known, value = get(nid, name)
            if known and value is not None:
                out[dst] = value
            elif not known:
                unknown[dst] = (
                    f"input {name} of node {nid} ({class_of(prompt, nid)}) came through a "
                    "link and no run of that node was recorded"
                )
            break
    # The conditioning inputs: positive/negative (KSampler, CFGGuider), or a guider's
    # single conditioning (BasicGuider: the positive only).
    conds: dict[str, Any] = {}
    for nid in sources:
        ins = _node(prompt, nid).get("inputs", {})
        if "positive" in ins:
            conds = {k: ins[k] for k in ("positive", "negative") if k in ins}
            break
        if nid != str(node_id) and "conditioning" in ins:
            conds = {"positive": ins["conditioning"]}
            break
    for key, link in conds.items():
        text, why = prompt_text(prompt, link, get)
        if text is not None:
            out[f"{key}_prompt"] = text
        else:
            unknown[f"{key}_prompt"] = why
    if unknown:
        out["unknown"] = unknown
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


#: Nodes that pick images out of a batch: (batch_index, length) inputs, as ComfyUI
#: clamps them (the index to the last image, the length to what is left).
PICKERS = ("LatentFromBatch", "ImageFromBatch")


def picked_rows(
    prompt: dict, sampler_id: str, save_id: str, ran: int, saved: int, get: Getter
) -> tuple[int | None, str]:
    """(the row of the sampler's batch of ``ran`` that the save's image 0 comes from,
    "") when the rows between them are known, else (None, why not). Image ``i`` of the
    save's batch of ``saved`` is row + i."""
    between = set(upstream(prompt, save_id, ("images",))) & set(downstream(prompt, sampler_id))
    pickers = sorted(n for n in between if class_of(prompt, n) in PICKERS)
    if not pickers:
        if ran == saved:
            return 0, ""
        return None, (
            f"its sampler ran a batch of {ran} and this save got a batch of {saved}: a node "
            "between them changed the batch"
        )
    if len(pickers) > 1:
        return None, f"several batch pickers (nodes {', '.join(pickers)}) are between them"
    node = pickers[0]
    known, start = get(node, "batch_index")
    known_len, length = get(node, "length")
    if not (known and known_len and isinstance(start, int) and isinstance(length, int)):
        return None, f"the batch_index or length of node {node} is not known"
    start = max(min(ran - 1, start), 0)
    if min(ran - start, length) != saved:
        return None, (
            f"node {node} picks {min(ran - start, length)} images but this save got {saved}"
        )
    return start, ""
