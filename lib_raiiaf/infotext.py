"""Parsing the webui's infotext (the PNG ``parameters`` text) into structured fields.

The format: the prompt (one or more lines), an optional ``Negative prompt: ...`` block,
and a last line of ``Key: value`` pairs separated by ``", "``; a value holding commas
is written in double quotes with JSON escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from raiiaf_rs import host as raiiaf_host

_PAIR = re.compile(r'\s*([^:,"]+?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_SIZE = re.compile(r"(\d+)x(\d+)")


def _value(key: str, text: str) -> Any:
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    stringy = key.lower().endswith(("hash", "hashes", "version"))
    if not stringy and _NUMBER.fullmatch(text) and not re.match(r"-?0\d", text):
        return float(text) if "." in text else int(text)
    return text


def _pairs(line: str) -> dict[str, Any] | None:
    """The ``Key: value`` pairs of a line, or None if the line is not made of them."""
    out: dict[str, Any] = {}
    pos = 0
    line = line.strip()
    while pos < len(line):
        m = _PAIR.match(line, pos)
        if m is None or m.end() == pos:
            return None
        key = m.group(1).strip()
        out[key] = _value(key, m.group(2))
        pos = m.end()
    return out or None


def parse(infotext: str) -> dict[str, Any]:
    """``{"prompt", "negative_prompt", "params": {key: value}}``; numbers become int or
    float, quoted values are unquoted, and ``WxH`` sizes also appear as ``sizes[key] =
    [w, h]``."""
    lines = infotext.strip("\n").split("\n") if infotext else []
    params: dict[str, Any] = {}
    if lines:
        last = _pairs(lines[-1])
        if last is not None and len(last) >= 2:
            params = last
            lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    out: dict[str, Any] = {
        "prompt": "\n".join(prompt_lines),
        "negative_prompt": "\n".join(negative_lines),
        "params": params,
    }
    for key in ("Size", "Hires resize", "Seed resize from"):
        value = params.get(key)
        m = _SIZE.fullmatch(str(value)) if value is not None else None
        if m:
            out.setdefault("sizes", {})[key] = [int(m.group(1)), int(m.group(2))]
    return out


_LORA = re.compile(r"<lora:([^<>]+)>")


def _strength(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None and text.strip() else default
    except ValueError:
        return default


def lora_hashes(value: Any) -> dict[str, str]:
    """The infotext's ``Lora hashes`` (``"name: hash, name2: hash2"``) as ``{name: hash}``."""
    out: dict[str, str] = {}
    for item in str(value or "").split(","):
        name, sep, short = item.rpartition(":")
        if sep and name.strip() and short.strip():
            out[name.strip()] = short.strip()
    return out


def loras(prompt: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Metadata ``loras`` from a prompt's ``<lora:name:te[:unet]>`` tags (also
    ``te=``/``unet=``; the unet weight defaults to the text encoder's, as in the webui's
    Lora network), each with its short hash from the infotext's ``Lora hashes`` when
    listed there; the full SHA-256 is not known here (null)."""
    hashes = lora_hashes((params or {}).get("Lora hashes"))
    out = []
    for m in _LORA.finditer(prompt or ""):
        name, *args = m.group(1).split(":")
        positional = [a for a in args if "=" not in a]
        named = dict(a.split("=", 1) for a in args if "=" in a)
        te = _strength(named.get("te", positional[0] if positional else None), 1.0)
        unet = _strength(named.get("unet", positional[1] if len(positional) > 1 else None), te)
        extra = {"short_hash": hashes[name]} if name in hashes else {}
        out.append(raiiaf_host.lora_entry(name, unet, te, **extra))
    return out
