"""Where the webui keeps things: its root, the data folder, the two extension folders.
The harness points them at a test's temporary webui root (``Webui(root)``)."""

from __future__ import annotations

import os

script_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data_path = script_path
extensions_dir = os.path.join(data_path, "extensions")
extensions_builtin_dir = os.path.join(script_path, "extensions-builtin")
default_output_dir = os.path.join(data_path, "outputs")


def set_data_path(path: str) -> None:
    global data_path, extensions_dir, default_output_dir
    data_path = str(path)
    extensions_dir = os.path.join(data_path, "extensions")
    default_output_dir = os.path.join(data_path, "outputs")
