"""The core round trip in one run: write a .raiiaf holding an image, its
initial noise and settings; read it back bit-exactly; verify it; show what
the `raiiaf` CLI prints. Run with `make demo`.

(Until the ComfyUI node pack lands, this is the project's end-to-end job.)
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import raiiaf_rs


def png(width: int = 64, height: int = 64) -> bytes:
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 4 % 256, y * 4 % 256, (x + y) * 2 % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    noise = np.random.default_rng(42).standard_normal((1, 4, 8, 8), dtype=np.float32)
    metadata = {
        "model_name": "demo",
        "prompt": "a lighthouse at dusk",
        "generation_settings": {"seed": 42, "steps": 20, "sampler": "euler", "cfg_scale": 7.0},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("raw", "compact"):
            path = Path(tmp) / f"demo_{codec}.raiiaf"
            size = raiiaf_rs.write(path, {"initial_noise": noise}, png(), metadata, codec=codec)
            art = raiiaf_rs.read(path)
            same = art.latents["initial_noise"].tobytes() == noise.tobytes()
            print(
                f"[{codec:7}] wrote {path.name} ({size} bytes, format {art.version}); "
                f"noise read back bit-exact: {same}"
            )
            if not same:
                return 1
        raiiaf_rs.verify(path)
        print("\n$ raiiaf inspect demo_compact.raiiaf")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "raiiaf_rs.cli", "inspect", str(path)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
