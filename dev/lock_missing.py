"""Prints the pins of a lock file (`name==version` lines) that the Python running this does
not see, one per line: what a venv layered on .venv still has to install.

Used by dev/setup_comfyui_latest.sh and dev/setup_diffusers.sh. What the running Python sees
is what it would import: its own packages first, then those of the venv it layers on (the
first distribution of a name on sys.path wins).
"""

import importlib.metadata as md
import re
import sys


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


seen: dict[str, str] = {}
for dist in md.distributions():  # sys.path order: the first of a name is the one imported
    seen.setdefault(norm(dist.metadata["Name"]), dist.version)
with open(sys.argv[1]) as lock:
    for line in lock:
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            if seen.get(norm(name)) != version.strip():
                print(line)
