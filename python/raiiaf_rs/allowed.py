"""Which files a server may read, by name: the one allow-list rule the ComfyUI loader, the
webui replay and the archive browser share.

A client names a file relative to one of the allowed directories (``cat.raiiaf``,
``sub/cat.raiiaf [output]``: a tag says which directory). The name is checked by its text
first (no absolute paths, no ``..``, no drive), then its real path (symlinks resolved) must
still be inside the directory, so a link pointing elsewhere is refused too.

>>> roots = [(" [output]", "/srv/out"), ("", "/srv/in")]
>>> resolve("cat.raiiaf [output]", roots, where="the output folder")  # /srv/out/cat.raiiaf
"""

from __future__ import annotations

import os
from collections.abc import Sequence

SUFFIX = ".raiiaf"


def inside(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` (a real path) or below it
    (case-insensitive where the file system is, e.g. Windows; another drive is never inside)."""
    a, b = os.path.normcase(path), os.path.normcase(folder)
    try:
        return os.path.commonpath([a, b]) == b
    except ValueError:  # different drives, or one relative and one absolute
        return False


def split(name: str, roots: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(directory, relative name) of ``name``: the first root whose tag ends it (put the
    untagged root last)."""
    for tag, root in roots:
        if name.endswith(tag):
            return root, name[: len(name) - len(tag)] if tag else name
    raise ValueError(f"{name!r} names no allowed directory")


def resolve(
    name: str,
    roots: Sequence[tuple[str, str]],
    *,
    where: str,
    hint: str = "pick a file from the list",
    suffix: str = SUFFIX,
) -> str:
    """The real path of the file ``name`` (module docstring); ValueError, with a message
    naming ``where`` (the directories, in the user's words) and never a path on the
    server, for anything outside the ``roots`` ((tag, directory) pairs), not ending in
    ``suffix``, or missing."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"no {suffix} file selected")
    root, rel = split(name, roots)
    parts = rel.replace("\\", "/").split("/")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ValueError(f"{name!r} is not a file in {where}; {hint}")
    path = os.path.join(root, *parts)
    if not inside(os.path.realpath(path), os.path.realpath(root)):
        raise ValueError(f"{name!r} resolves outside {where}")
    if not rel.lower().endswith(suffix):
        raise ValueError(f"{name!r} is not a {suffix} file")
    if not os.path.isfile(path):
        raise ValueError(f"{name!r} does not exist in {where}")
    return os.path.realpath(path)


def name_of(path: str, roots: Sequence[tuple[str, str]]) -> str | None:
    """The client's name for the absolute ``path`` (the inverse of :func:`resolve`, by
    text: the first root holding it), or None when no root does."""
    for tag, root in roots:
        if inside(os.path.normpath(path), os.path.normpath(root)):
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            return rel + tag
    return None
