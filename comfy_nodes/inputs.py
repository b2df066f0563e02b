"""The input values nodes really ran with, recorded as ComfyUI executes them.

The API prompt says what a node's widget holds, not what a linked input received: a
CLIPTextEncode fed by StringConcatenate, a prompt list, a wildcard or an LLM node, or a
KSampler whose seed comes from another node, has only a link there. ComfyUI resolves
every input of a node just before running it, in ``execution.get_input_data`` (the same
function, with the same arguments, in ComfyUI 0.3.x and 0.33). This module wraps it and
keeps the plain values (strings, numbers, booleans) each node received, per list item.

Records are kept like captures (capture.py): under the node's *signature* (graph.signature,
what ComfyUI's cache keys on), the newest run replacing older ones, so a node ComfyUI
serves from its cache still has the inputs of the run that made its output, whatever id
it has now. Bounded in count and characters, oldest first out. Nothing here changes what
ComfyUI computes: the wrapper returns the original result untouched, and any failure in
recording is swallowed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from . import graph, host

MAX_RECORDS = 20000
MAX_CHARS = 32 * 2**20  # strings dominate; numbers count as a few characters


@dataclass
class Record:
    prompt_id: str
    exec_id: str
    values: dict[str, list[Any]]  # input name -> value per list item (plain values only)
    size: int


_lock = threading.Lock()
_store: OrderedDict[tuple[str, str], Record] = OrderedDict()
_chars = 0
# The running prompt and its nodes' signatures. The prompt itself is held, not its id():
# a freed prompt's id can come back for the next one, with other signatures.
_memo: tuple[dict | None, dict[str, str]] = (None, {})
_installed = False


def _plain(values: Any) -> list[Any] | None:
    """The per-item values of one input if they are all plain, else None."""
    if not isinstance(values, (list, tuple)) or not values:
        return None
    if all(isinstance(v, (str, int, float, bool)) for v in values):
        return list(values)
    return None


def _signature(prompt: dict, node_id: str) -> str:
    global _memo
    with _lock:
        if _memo[0] is not prompt:
            _memo = (prompt, {})
        memo = _memo[1]
    return graph.signature(prompt, node_id, memo)


def record(prompt: dict, exec_id: str, input_data: dict, prompt_id: str = "") -> None:
    """Keeps the plain inputs ``exec_id`` (a node of ``prompt`` or one it expanded into)
    ran with. ``input_data``: ComfyUI's resolved inputs, name -> list of values."""
    global _chars
    real = graph.real_id(exec_id)
    if real not in prompt:
        return
    values = {}
    for name, data in input_data.items():
        plain = _plain(data)
        if plain is not None:
            values[name] = plain
    size = sum(len(v) if isinstance(v, str) else 8 for vs in values.values() for v in vs)
    key = (_signature(prompt, real), str(exec_id)[len(real) :])
    rec = Record(prompt_id, str(exec_id), values, size)
    if size > MAX_CHARS:
        return
    with _lock:
        old = _store.pop(key, None)
        if old is not None:
            _chars -= old.size
        _store[key] = rec
        _chars += size
        while _store and (_chars > MAX_CHARS or len(_store) > MAX_RECORDS):
            _chars -= _store.popitem(last=False)[1].size


def recorded(prompt: dict, exec_id: str, memo: dict | None = None) -> Record | None:
    """The inputs ``exec_id`` (a node of ``prompt``, or one it expanded into) last ran
    with: in this prompt, or in the run whose output ComfyUI's cache serves, whatever id
    the node had then. None if no run of it is recorded."""
    real = graph.real_id(exec_id)
    if real not in prompt:
        return None
    key = (graph.signature(prompt, real, memo), str(exec_id)[len(real) :])
    with _lock:
        return _store.get(key)


def getter(
    prompt: dict, list_index: int = 0, memo: dict | None = None, literal: dict | None = None
) -> graph.Getter:
    """A graph.Getter for list item ``list_index``: the value a node's input had when
    it ran, else the literal widget in ``literal`` (default ``prompt``; pass the prompt
    with the nodes expanded at run time to read theirs)."""
    fallback = graph.literal_getter(literal if literal is not None else prompt)

    def get(node_id: str, name: str) -> tuple[bool, Any]:
        rec = recorded(prompt, node_id, memo)
        if rec is not None and name in rec.values:
            items = rec.values[name]
            return True, items[min(list_index, len(items) - 1)]
        return fallback(node_id, name)

    return get


def install() -> bool:
    """Wraps ``execution.get_input_data`` (once). Returns whether it is wrapped."""
    global _installed
    if _installed:
        return True
    try:
        import execution
    except Exception:
        return False
    original = getattr(execution, "get_input_data", None)
    if original is None:
        print("[raiiaf] this ComfyUI has no execution.get_input_data: prompts fed by links")
        return False

    def get_input_data(*args, **kwargs):
        result = original(*args, **kwargs)
        try:
            _after(args, kwargs, result)
        except Exception as e:  # recording must never break execution
            print(f"[raiiaf] could not record a node's inputs: {e}")
        return result

    get_input_data.__wrapped__ = original  # type: ignore[attr-defined]
    execution.get_input_data = get_input_data
    _installed = True
    return True


def _after(args: tuple, kwargs: dict, result: Any) -> None:
    """Records one node's resolved inputs, only for real executions (with an execution
    list and a dynamic prompt; validation and IS_CHANGED calls have no links resolved)."""
    names = ("inputs", "class_def", "unique_id", "execution_list", "dynprompt")
    bound = dict(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    if bound.get("execution_list") is None or bound.get("dynprompt") is None:
        return
    input_data = result[0] if isinstance(result, tuple) else None
    prompt = bound["dynprompt"].get_original_prompt()
    if not isinstance(input_data, dict) or not isinstance(prompt, dict):
        return
    record(prompt, str(bound["unique_id"]), input_data, host.prompt_id_of(prompt))
