"""Extension discovery as the webui does it: every folder of ``extensions-builtin/`` and
``extensions/`` (sorted by name; ``opts.disabled_extensions`` skipped) is an extension,
its folder name its name unless ``metadata.ini`` ``[Extension] Name`` says otherwise;
``list_files("scripts", ".py")`` is the sorted top-level ``.py`` files of its
``scripts/`` folder."""

from __future__ import annotations

import configparser
import os

from modules import paths_internal, shared

extensions: list[Extension] = []


class Extension:
    def __init__(self, name: str, path: str, enabled: bool = True, is_builtin: bool = False):
        self.name = name
        self.path = path
        self.enabled = enabled
        self.is_builtin = is_builtin
        self.metadata = configparser.ConfigParser()
        ini = os.path.join(path, "metadata.ini")
        if os.path.isfile(ini):
            self.metadata.read(ini, encoding="utf8")
        self.canonical_name = self.metadata.get("Extension", "Name", fallback=name).lower()

    def list_files(self, subdir: str, extension: str) -> list[str]:
        folder = os.path.join(self.path, subdir)
        if not os.path.isdir(folder):
            return []
        return [
            os.path.join(folder, name)
            for name in sorted(os.listdir(folder))
            if os.path.splitext(name)[1].lower() == extension
            and os.path.isfile(os.path.join(folder, name))
        ]


def active() -> list[Extension]:
    return [x for x in extensions if x.enabled]


def list_extensions() -> None:
    extensions.clear()
    disabled = set(getattr(shared.opts, "disabled_extensions", []) or [])
    for folder, builtin in (
        (paths_internal.extensions_builtin_dir, True),
        (paths_internal.extensions_dir, False),
    ):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not os.path.isdir(path) or name.startswith("."):
                continue
            extensions.append(Extension(name, path, name not in disabled, builtin))
