"""Which .raiiaf files the loader may read: files in ComfyUI's input
directory, and in its output directory as ``name [output]``, nothing else.
Paths are checked after resolving symlinks, so a link pointing outside the
directories is refused too.
"""

from __future__ import annotations

import os

import folder_paths

SUFFIX = ".raiiaf"
OUTPUT_TAG = " [output]"


def _roots() -> dict[str, str]:
    return {
        "input": folder_paths.get_input_directory(),
        "output": folder_paths.get_output_directory(),
    }


def _inside(path: str, root: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(root)
    return real == root or real.startswith(root + os.sep)


def list_files() -> list[str]:
    """Choices for the loader: input files by relative path, output files tagged."""
    names = []
    for kind, root in _roots().items():
        if not os.path.isdir(root):
            continue
        found = []
        for dirpath, _dirs, files in os.walk(root, followlinks=False):
            for f in files:
                if f.endswith(SUFFIX):
                    full = os.path.join(dirpath, f)
                    if _inside(full, root):
                        found.append(os.path.relpath(full, root).replace(os.sep, "/"))
        found.sort()
        names += found if kind == "input" else [n + OUTPUT_TAG for n in found]
    return names


def resolve(name: str) -> str:
    """The real path of a loader choice; ValueError for anything outside the
    input/output directories (``..``, absolute paths, symlinks out)."""
    if not isinstance(name, str) or not name:
        raise ValueError("no .raiiaf file selected")
    root = _roots()["input"]
    rel = name
    if name.endswith(OUTPUT_TAG):
        root, rel = _roots()["output"], name[: -len(OUTPUT_TAG)]
    elif name.endswith(" [input]"):
        rel = name[: -len(" [input]")]
    parts = rel.replace("\\", "/").split("/")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ValueError(
            f"{name!r} is not a file in ComfyUI's input or output directory; "
            "pick a .raiiaf from the list or upload one"
        )
    path = os.path.join(root, *parts)
    if not _inside(path, root):
        raise ValueError(f"{name!r} resolves outside ComfyUI's input/output directories")
    if not rel.endswith(SUFFIX):
        raise ValueError(f"{name!r} is not a .raiiaf file")
    if not os.path.isfile(path):
        raise ValueError(f"{name!r} does not exist in ComfyUI's input or output directory")
    return os.path.realpath(path)
