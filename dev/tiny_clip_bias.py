"""Give a tiny random SD1.x checkpoint's CLIP text encoder a final LayerNorm bias, in place.

Why: the tiny checkpoints the webui tests run (made by the host snapshots' generators) have a
final LayerNorm of weight 1 and bias 0, so every token of the conditioning has mean 0 up to
rounding. A1111's and Forge's default emphasis ("Original") rescale the conditioning by
``original_mean / new_mean``; when the rounding sums to exactly 0.0, which depends on the prompt
and on which SIMD kernels torch picks for the CPU it runs on, that is 0/0 and the whole
generation is NaN. A1111 then refuses it (NansException), Forge silently returns one flat
image for every seed. Real CLIP weights have a bias there, so real users never meet this; a bias
of mean 0.25 makes the tiny model behave the same way on every CPU.

The bias is the same size as the zeros it replaces, so it is written over them where they lie
in the file (nothing else moves). Idempotent: a file that already holds this bias is left
alone, mtime included.

    python dev/tiny_clip_bias.py CHECKPOINT.safetensors
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np

KEY = "cond_stage_model.transformer.text_model.final_layer_norm.bias"
DTYPES = {"F16": "<f2", "F32": "<f4", "BF16": None}


def bias(n: int, dtype: str) -> bytes:
    values = 0.25 + 0.05 * np.random.default_rng(0).standard_normal(n)
    return values.astype(dtype).tobytes()


def patch(path: str) -> str:
    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        if KEY not in header:
            raise SystemExit(f"{path}: no tensor {KEY}: not an SD1.x checkpoint in the LDM layout")
        info = header[KEY]
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise SystemExit(f"{path}: {KEY} is {info['dtype']}, expected F16 or F32")
        (n,) = info["shape"]
        begin, end = info["data_offsets"]
        want = bias(n, dtype)
        assert len(want) == end - begin
        f.seek(8 + size + begin)
        if f.read(end - begin) == want:
            return "already has the bias"
        f.seek(8 + size + begin)
        f.write(want)
    return f"wrote {KEY} (mean 0.25)"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.rsplit("\n\n", 1)[-1])
    print(f"tiny_clip_bias: {sys.argv[1]}: {patch(sys.argv[1])}")
