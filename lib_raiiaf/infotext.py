"""Parsing the webui's infotext (the PNG ``parameters`` text) into structured fields.

The format: the prompt (one or more lines), an optional ``Negative prompt: ...`` block,
and a last line of ``Key: value`` pairs separated by ``", "``; a value holding commas
is written in double quotes with JSON escapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

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
