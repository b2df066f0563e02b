"""The main job end to end (`make demo`): a real ComfyUI, headless on the CPU
with a tiny generated SD1.5 model, runs the pack's save workflow (PNG +
.raiiaf), then the reload workflow, which regenerates the image from the
.raiiaf with a different seed on the KSampler, and checks that both images
are identical pixel for pixel.

Set-up (ComfyUI 0.3.75, its dependencies, the tiny model) is done by
`make demo` before this runs. Outputs stay in .comfyui/demo/output/.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "comfyui"), str(REPO / "workflows")]

import graphs  # noqa: E402
from harness import ComfyServer  # noqa: E402

STEPS, SIZE, SEED = 8, 128, 42


class Step:
    """`[n/5] what ... done (1.2 s)` with a spinner while it runs."""

    total = 5

    def __init__(self, n: int, what: str):
        self.n, self.what = n, what

    def __enter__(self):
        self.t0 = time.monotonic()
        self.done = threading.Event()
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()
        return self

    def _spin(self):
        frames = "|/-\\"
        i = 0
        while not self.done.wait(0.2):
            if sys.stdout.isatty():
                print(f"\r[{self.n}/{self.total}] {self.what} {frames[i % 4]}", end="", flush=True)
            i += 1

    def __exit__(self, exc_type, *_):
        self.done.set()
        self.spinner.join()
        status = "done" if exc_type is None else "FAILED"
        print(
            f"\r[{self.n}/{self.total}] {self.what} ... {status} "
            f"({time.monotonic() - self.t0:.1f} s)",
            flush=True,
        )


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


def main() -> int:
    base = REPO / ".comfyui" / "demo"
    shutil.rmtree(base / "output", ignore_errors=True)
    with Step(1, "starting ComfyUI 0.3.75 (headless, CPU, tiny SD1.5 model)"):
        server = ComfyServer(base)
        server.start()
    try:
        out = base / "output"
        with Step(2, f"generating {SIZE}x{SIZE}, {STEPS} steps, seed {SEED} (save workflow)"):
            save = graphs.save_ksampler(
                ckpt=server.ckpt, seed=SEED, steps=STEPS, width=SIZE, height=SIZE, prefix="raiiaf"
            )
            server.run(graphs.to_api(save), timeout=600)
        png, rec = out / "raiiaf_00001_.png", out / "raiiaf_00001_.raiiaf"
        with Step(3, "regenerating from the .raiiaf with KSampler seed 1234 (reload workflow)"):
            api = graphs.to_api(graphs.reload_ksampler(ckpt=server.ckpt))
            api["3"]["inputs"]["seed"] = 1234  # the noise must come from the file
            server.run(api, timeout=600)
        again = out / "regenerated_00001_.png"
        with Step(4, "comparing the two images"):
            identical = np.array_equal(pixels(png), pixels(again))
        with Step(5, "checking the .raiiaf (every SHA-256)"):
            check = subprocess.run(
                [sys.executable, "-m", "raiiaf_rs.cli", "verify", str(rec)],
                capture_output=True,
                text=True,
            )
    finally:
        server.stop()
    print()
    print(f"image:        {png}")
    print(f".raiiaf:      {rec}")
    print(f"regenerated:  {again}")
    print(f"verify:       {check.stdout.strip() or check.stderr.strip()}")
    print(f"identical:    {'YES, pixel for pixel' if identical else 'NO'}")
    print()
    sys.stdout.flush()
    subprocess.run([sys.executable, "-m", "raiiaf_rs.cli", "inspect", str(rec)])
    return 0 if identical and check.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
