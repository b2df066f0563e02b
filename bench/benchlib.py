"""What every benchmark script of bench/ does the same way: its command line, its timing loop,
its Markdown tables and its scratch folder. Imported as ``benchlib`` (each script runs with
bench/ first on ``sys.path``, as ``python bench/bench_x.py``); the standard library only, so
that the scripts run in any of the project's venvs (bench_torch.py's worker: .venv-torch)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The script's argument parser, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0].strip() or None)


def timings(fn: Callable[[], Any], runs: int, warmup: int = 0) -> tuple[list[float], Any]:
    """The seconds each of ``runs`` calls of ``fn`` took, after ``warmup`` untimed calls, and
    what the last call returned."""
    result = None
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t)
    return seconds, result


class Table:
    """A Markdown table. ``align`` has a letter a column, ``l`` or ``r`` (right-aligned: the
    numbers). With ``widths``, the cells are padded to them, so that the table also reads as
    plain text; :meth:`head` and :meth:`row` give its lines one at a time, for the scripts that
    print each row as soon as it is measured."""

    def __init__(self, headers: Sequence[str], align: str, widths: Sequence[int] | None = None):
        if len(align) != len(headers) or set(align) - {"l", "r"}:
            raise ValueError(f"align {align!r} does not fit {len(headers)} columns")
        self.headers = list(headers)
        self.align = align
        self.widths = list(widths) if widths is not None else None

    def row(self, cells: Sequence[Any]) -> str:
        cells = [str(c) for c in cells]
        if self.widths is not None:
            cells = [
                c.ljust(w) if a == "l" else c.rjust(w)
                for c, w, a in zip(cells, self.widths, self.align)
            ]
        return "| " + " | ".join(cells) + " |"

    def head(self) -> str:
        """The header line and the line under it."""
        if self.widths is None:
            rule = ["---:" if a == "r" else "---" for a in self.align]
            return self.row(self.headers) + "\n" + "| " + " | ".join(rule) + " |"
        under = "|".join(
            "-" * (w + 1) + ":" if a == "r" else "-" * (w + 2)
            for w, a in zip(self.widths, self.align)
        )
        return self.row(self.headers) + "\n|" + under + "|"


def md_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str, pad: bool = False
) -> str:
    """A whole Markdown table (:class:`Table`); with ``pad``, each column as wide as its widest
    cell."""
    widths = None
    if pad:
        widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    table = Table(headers, align, widths)
    return "\n".join([table.head(), *(table.row(r) for r in rows)])


@contextlib.contextmanager
def scratch(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A new folder under /tmp for the block's files, removed afterwards unless ``keep``
    (then its path goes to stderr)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"\nKept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
