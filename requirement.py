"""The one Python requirement of the UI integrations: the ``raiiaf_rs`` wheel.

Both hosts install it from ``requirements.txt`` (ComfyUI-Manager and the Comfy registry
run ``pip install -r requirements.txt``; the webui's ``install.py`` hands the same line to
its own pip), and both check at start-up that the installed version fits the same range,
so the range is written once, in ``requirements.txt``, and read from there.

Plain standard-library code: it runs before anything is installed, inside whatever
Python the host uses (the Windows portable ComfyUI's embedded 3.12/3.13 included).
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
DISTRIBUTION = "raiiaf-rs"

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|<|>)\s*([0-9][0-9.]*)\s*$")


def requirement_line(path: str = REQUIREMENTS) -> str:
    """The ``raiiaf-rs ...`` line of requirements.txt, e.g. ``raiiaf-rs>=0.1.0,<0.2``."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if re.match(rf"^{re.escape(DISTRIBUTION)}(\s|[<>=!~;]|$)", line, re.IGNORECASE):
                return line
    raise RuntimeError(f"{path} names no {DISTRIBUTION} requirement")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def version_problem(installed: str, line: str | None = None) -> str | None:
    """Why ``installed`` does not satisfy the requirement line, or None if it does."""
    line = requirement_line() if line is None else line
    spec = line[len(DISTRIBUTION) :].split(";", 1)[0]
    have = _version(installed)
    checks = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
    }
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = _CLAUSE.match(clause)
        if m is None:
            raise RuntimeError(f"unsupported clause {clause!r} in {line!r}")
        op, want = m.groups()
        if not checks[op](have, _version(want)):
            return f"raiiaf_rs {installed} is installed, this version of the pack needs {line}"
    return None


def install_hint() -> str:
    """The exact command that installs the wheel into the Python running now."""
    return f'"{sys.executable}" -m pip install -r "{REQUIREMENTS}"'


def problem() -> str | None:
    """What stops the pack from working in this Python, as one line, or None."""
    try:
        import raiiaf_rs
    except ImportError as e:
        return (
            f"raiiaf_rs (this pack's prebuilt Rust extension) is not installed in this Python "
            f"({e}); install it with {install_hint()} and restart"
        )
    reason = version_problem(raiiaf_rs.__version__)
    if reason is not None:
        return f"{reason}; update it with {install_hint()} and restart"
    return None
