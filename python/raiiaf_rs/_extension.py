"""Loads the native extension ``raiiaf_rs._raiiaf_rs``: the package's modules
take it from here (``from raiiaf_rs._extension import native``).

The default build needs nothing but numpy. The optional torch build links the
libraries of the torch it was built against (README, "The torch build"); they
are found only once ``import torch`` has loaded them, and another torch version
would not match their C++ ABI, so both are checked here with a clear message.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_REBUILD = (
    "reinstall raiiaf-rs (the default wheel works with every torch version), or rebuild the "
    "torch build against this torch (dev/setup_torch.sh)"
)


def load() -> ModuleType:
    try:
        ext = importlib.import_module("raiiaf_rs._raiiaf_rs")
    except ImportError as first:
        if "torch" not in str(first) and "c10" not in str(first):
            raise
        # The torch build: its libraries come with `import torch`.
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"raiiaf_rs is the torch build but torch cannot be imported: {first}; " + _REBUILD
            ) from first
        try:
            ext = importlib.import_module("raiiaf_rs._raiiaf_rs")
        except ImportError as second:
            raise ImportError(
                f"raiiaf_rs is the torch build and does not load with torch "
                f"{torch.__version__}: {second}; {_REBUILD}"
            ) from second
    if ext.LINKED_TORCH is not None:
        import torch

        if torch.__version__ != ext.LINKED_TORCH:
            raise ImportError(
                f"raiiaf_rs is the torch build linked against torch {ext.LINKED_TORCH}, "
                f"but torch {torch.__version__} is installed; {_REBUILD}"
            )
    return ext


native = load()
