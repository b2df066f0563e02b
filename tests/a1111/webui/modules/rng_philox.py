"""The webui's "NV" noise source: normal noise that matches what CUDA's Philox generator
(``curand``, as torch uses it on NVIDIA GPUs) gives for a seed, computed with numpy on any
device. Written from the algorithm's description:

- Philox4x32 with 10 rounds: a 128-bit counter (four 32-bit words) and a 64-bit key (two
  words). A round multiplies counter words 0 and 2 by two fixed constants, keeping the
  high and low halves of the 64-bit products, and mixes them with words 1 and 3 and the
  key; the key is bumped by two other constants (the Weyl sequence) after each round.
- Per draw of ``n`` values: key = the seed (low word, high word); counter word 0 = the
  generator's offset (one more per draw), word 2 = the value's index, words 1 and 3 zero.
- Two output words become one normal value by Box-Muller (the sine branch) on uniform
  values strictly inside (0, 1), rounded to float32 at the end.
"""

from __future__ import annotations

import numpy as np

_MUL = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_WEYL = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))
_LOW32 = np.uint64(0xFFFFFFFF)
_INV_2_32 = np.float32(2.3283064e-10)  # 1 / 2**32


def _mulhilo(a: np.ndarray, b: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    product = a.astype(np.uint64) * b
    return (product >> np.uint64(32)).astype(np.uint32), (product & _LOW32).astype(np.uint32)


def philox4x32(counter: np.ndarray, key: np.ndarray, rounds: int = 10) -> np.ndarray:
    """counter (4, n) uint32, key (2, n) uint32 -> (4, n) uint32 random words."""
    c = counter.copy()
    k = key.copy()
    for r in range(rounds):
        hi0, lo0 = _mulhilo(c[0], _MUL[0])
        hi1, lo1 = _mulhilo(c[2], _MUL[1])
        c = np.stack([hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0])
        if r < rounds - 1:
            k = np.stack([k[0] + _WEYL[0], k[1] + _WEYL[1]])
    return c


def box_muller(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The sine branch of Box-Muller. The two scale constants are float32 values; the
    words times them (and everything after) are computed in float64, as numpy promotes
    uint32 x float32, and only the result is rounded to float32."""
    inv = np.float64(_INV_2_32)
    inv_2pi = np.float64(np.float32(2.3283064e-10 * 6.2831855))
    u = x.astype(np.float64) * inv + np.float64(np.float32(_INV_2_32 / np.float32(2.0)))
    half_2pi = np.float64(np.float32(np.float32(inv_2pi) / np.float32(2.0)))
    v = y.astype(np.float64) * inv_2pi + half_2pi
    radius = np.sqrt(-2.0 * np.log(u))
    return (radius * np.sin(v)).astype(np.float32)


class Generator:
    """``Generator(seed).randn(shape)``: float32 normal noise, the offset advancing by one
    per call (so consecutive draws differ, as a CUDA generator's do)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.offset = 0

    def randn(self, shape) -> np.ndarray:
        n = int(np.prod(shape))
        counter = np.zeros((4, n), dtype=np.uint32)
        counter[0] = self.offset
        counter[2] = np.arange(n, dtype=np.uint32)
        self.offset += 1
        key = np.empty((2, n), dtype=np.uint32)
        key[0] = self.seed & 0xFFFFFFFF
        key[1] = (self.seed >> 32) & 0xFFFFFFFF
        words = philox4x32(counter, key)
        return box_muller(words[0], words[1]).reshape(tuple(shape))
