"""Loading one script file as a module named by its basename (not in a package)."""

from __future__ import annotations

import importlib.util
import os


def load_module(path: str):
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
