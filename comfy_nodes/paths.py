"""Which .raiiaf files the loader may read: files in ComfyUI's input
directory, and in its output directory as ``name [output]``, nothing else.
Paths are checked after resolving symlinks, so a link pointing outside the
directories is refused too.
"""

from __future__ import annotations

import os

import folder_paths
from raiiaf_rs import allowed

SUFFIX = allowed.SUFFIX
OUTPUT_TAG = " [output]"
WHERE = "ComfyUI's input or output directory"


def _roots() -> dict[str, str]:
    return {
        "input": folder_paths.get_input_directory(),
        "output": folder_paths.get_output_directory(),
    }


def _inside(path: str, root: str) -> bool:
    return allowed.inside(os.path.realpath(path), os.path.realpath(root))


def _scan(root: str) -> list[tuple[float, str]]:
    """(mtime, path relative to ``root``) of every .raiiaf under ``root``. One
    ``scandir`` per directory and one ``stat`` per .raiiaf: fast with tens of
    thousands of files. Symlinks are followed only when they stay inside ``root``."""
    found: list[tuple[float, str]] = []
    real_root = os.path.realpath(root)
    skip = len(os.path.join(root, ""))  # scandir paths are root + sep + relative path
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                    continue
                if not e.name.endswith(SUFFIX):
                    continue
                if e.is_symlink() and not _inside(e.path, real_root):
                    continue
                found.append((e.stat().st_mtime, e.path[skip:]))
            except OSError:  # vanished or unreadable meanwhile
                continue
    return found


def list_files() -> list[str]:
    """Choices for the loader, newest first: input files by relative path, output
    files tagged ``[output]``."""
    found: list[tuple[float, str]] = []
    for kind, root in _roots().items():
        if os.path.isdir(root):
            tag = "" if kind == "input" else OUTPUT_TAG
            found += [(t, rel.replace(os.sep, "/") + tag) for t, rel in _scan(root)]
    found.sort(key=lambda f: (-f[0], f[1]))
    return [name for _t, name in found]


def roots() -> list[tuple[str, str]]:
    """The loader's directories as :mod:`raiiaf_rs.allowed` takes them: (tag, directory)."""
    r = _roots()
    return [(OUTPUT_TAG, r["output"]), (" [input]", r["input"]), ("", r["input"])]


def resolve(name: str) -> str:
    """The real path of a loader choice; ValueError for anything outside the
    input/output directories (``..``, absolute paths, symlinks out)."""
    return allowed.resolve(
        name, roots(), where=WHERE, hint="pick a .raiiaf from the list or upload one"
    )
