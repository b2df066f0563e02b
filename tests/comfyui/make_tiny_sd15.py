"""Write a tiny random-weight SD1.5-format checkpoint for the ComfyUI tests and demo.

Why: the tests run the real CheckpointLoaderSimple -> KSampler -> VAEDecode path, but no
weights can be downloaded here, and real ones (2 GB) would be slow on CPU. ComfyUI picks
the model class from a few shapes only, so a file with the original-LDM ("CompVis") SD1.x
key layout, the widths it matches on and minimal depth loads as SD1.5 (EPS):

  model.diffusion_model.*    UNet: model_channels 320 and context_dim 768, conv proj_in,
                             no label_emb (what ComfyUI matches for SD15). Depth is read
                             from the keys, so one level with one res block and one
                             transformer block per stage is enough (25.8 M params).
  first_stage_model.*        VAE: TAESD layout by default (2.4 M params, fast decode), or
                             the full SD VAE (83.7 M) with --vae sd.
  cond_stage_model.transformer.text_model.*
                             CLIP-L text encoder, full size (123 M): ComfyUI builds SD1
                             CLIP from a fixed config and leaves missing weights
                             uninitialised, so it cannot shrink.

Only numpy is used (no torch, no safetensors package): a .safetensors file is an 8-byte
header length, a JSON header and the raw little-endian tensors, so it is streamed one
tensor at a time. Seeded and deterministic: the same options give the same bytes.

The recipe is stored in the header; when --out already holds a file made with the same
recipe nothing is written (the fast path of dev/setup_comfyui.sh). The file is
written to a temporary name and renamed, so an interrupted run leaves no partial file.

  python tests/comfyui/make_tiny_sd15.py [--out PATH] [--seed 0] [--dtype fp16|fp32]
                                         [--vae taesd|sd] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[2] / ".comfyui" / "models" / "tiny-sd15.safetensors"
# Bump whenever the tensors written change, so cached files are regenerated.
RECIPE_VERSION = 1
META_KEY = "raiiaf_tiny_sd15_recipe"


class Spec:
    """Ordered tensor list (name -> shape, init); values are drawn only when written."""

    def __init__(self) -> None:
        self.tensors: dict[str, tuple[tuple[int, ...], str, float]] = {}

    def add(self, name: str, shape: tuple[int, ...], init: str, std: float = 0.0) -> None:
        assert name not in self.tensors, name
        self.tensors[name] = (shape, init, std)

    def norm(self, p: str, n: int) -> None:
        self.add(p + ".weight", (n,), "ones")
        self.add(p + ".bias", (n,), "zeros")

    def linear(self, p: str, n_out: int, n_in: int, bias: bool = True) -> None:
        self.add(p + ".weight", (n_out, n_in), "randn", 0.02)
        if bias:
            self.add(p + ".bias", (n_out,), "zeros")

    def conv(self, p: str, n_out: int, n_in: int, k: int, bias: bool = True) -> None:
        # std 1/sqrt(fan_in) keeps activations O(1) through the random network
        self.add(p + ".weight", (n_out, n_in, k, k), "randn", (n_in * k * k) ** -0.5)
        if bias:
            self.add(p + ".bias", (n_out,), "zeros")


def unet(s: Spec, p: str, ch: int = 320, ctx: int = 768, z: int = 4) -> None:
    temb = 4 * ch
    s.linear(p + "time_embed.0", temb, ch)
    s.linear(p + "time_embed.2", temb, temb)

    def res(q: str, c_in: int) -> None:
        s.norm(q + "in_layers.0", c_in)
        s.conv(q + "in_layers.2", ch, c_in, 3)
        s.linear(q + "emb_layers.1", ch, temb)
        s.norm(q + "out_layers.0", ch)
        s.conv(q + "out_layers.3", ch, ch, 3)
        if c_in != ch:
            s.conv(q + "skip_connection", ch, c_in, 1)

    def attn(q: str) -> None:  # SpatialTransformer with a conv proj_in (SD1.x, not SD2)
        s.norm(q + "norm", ch)
        s.conv(q + "proj_in", ch, ch, 1)
        t = q + "transformer_blocks.0."
        for a, kv in (("attn1", ch), ("attn2", ctx)):  # self-attention, cross-attention
            s.linear(t + a + ".to_q", ch, ch, bias=False)
            s.linear(t + a + ".to_k", ch, kv, bias=False)
            s.linear(t + a + ".to_v", ch, kv, bias=False)
            s.linear(t + a + ".to_out.0", ch, ch)
        s.linear(t + "ff.net.0.proj", 8 * ch, ch)  # GEGLU: two 4*ch halves
        s.linear(t + "ff.net.2", ch, 4 * ch)
        for n in ("norm1", "norm2", "norm3"):
            s.norm(t + n, ch)
        s.conv(q + "proj_out", ch, ch, 1)

    s.conv(p + "input_blocks.0.0", ch, z, 3)
    res(p + "input_blocks.1.0.", ch)
    attn(p + "input_blocks.1.1.")
    res(p + "middle_block.0.", ch)
    attn(p + "middle_block.1.")
    res(p + "middle_block.2.", ch)
    for i in (0, 1):  # num_res_blocks + 1 output blocks; the skip concat doubles c_in
        res(p + f"output_blocks.{i}.0.", 2 * ch)
        attn(p + f"output_blocks.{i}.1.")
    s.norm(p + "out.0", ch)
    s.conv(p + "out.2", z, ch, 3)


def taesd_vae(s: Spec, p: str, c: int = 64, z: int = 4) -> None:
    def block(q: str) -> None:  # conv-relu-conv-relu-conv, identity skip (c -> c)
        for i in (0, 2, 4):
            s.conv(q + f"conv.{i}", c, c, 3)

    e = p + "taesd_encoder."
    s.conv(e + "0", c, 3, 3)
    block(e + "1.")
    for i in (2, 6, 10):  # stride-2 conv (no bias), then 3 blocks
        s.conv(e + str(i), c, c, 3, bias=False)
        for k in (1, 2, 3):
            block(e + f"{i + k}.")
    s.conv(e + "14", z, c, 3)

    d = p + "taesd_decoder."  # 0 clamp, 1 conv, 2 relu, then 3x (3 blocks, upsample, conv)
    s.conv(d + "1", c, z, 3)
    for i in (3, 8, 13):
        for k in (0, 1, 2):
            block(d + f"{i + k}.")
        s.conv(d + str(i + 4), c, c, 3, bias=False)  # i + 3 is the (weightless) upsample
    block(d + "18.")
    s.conv(d + "19", 3, c, 3)
    s.add(p + "vae_scale", (), "ones")
    s.add(p + "vae_shift", (), "zeros")


def sd_vae(s: Spec, p: str, ch: int = 128, mult=(1, 2, 4, 4), n_res: int = 2, z: int = 4) -> None:
    def res(q: str, c_in: int, c_out: int) -> None:
        s.norm(q + "norm1", c_in)
        s.conv(q + "conv1", c_out, c_in, 3)
        s.norm(q + "norm2", c_out)
        s.conv(q + "conv2", c_out, c_out, 3)
        if c_in != c_out:
            s.conv(q + "nin_shortcut", c_out, c_in, 1)

    def mid(q: str, c: int) -> None:
        res(q + "block_1.", c, c)
        s.norm(q + "attn_1.norm", c)
        for n in ("q", "k", "v", "proj_out"):
            s.conv(q + "attn_1." + n, c, c, 1)
        res(q + "block_2.", c, c)

    e, c = p + "encoder.", ch
    s.conv(e + "conv_in", ch, 3, 3)
    for i, m in enumerate(mult):
        for j in range(n_res):
            res(e + f"down.{i}.block.{j}.", c, ch * m)
            c = ch * m
        if i != len(mult) - 1:
            s.conv(e + f"down.{i}.downsample.conv", c, c, 3)
    mid(e + "mid.", c)
    s.norm(e + "norm_out", c)
    s.conv(e + "conv_out", 2 * z, c, 3)
    s.conv(p + "quant_conv", 2 * z, 2 * z, 1)
    s.conv(p + "post_quant_conv", z, z, 1)

    d = p + "decoder."
    s.conv(d + "conv_in", c, z, 3)
    mid(d + "mid.", c)
    for i in reversed(range(len(mult))):
        for j in range(n_res + 1):
            res(d + f"up.{i}.block.{j}.", c, ch * mult[i])
            c = ch * mult[i]
        if i != 0:
            s.conv(d + f"up.{i}.upsample.conv", c, c, 3)
    s.norm(d + "norm_out", c)
    s.conv(d + "conv_out", 3, c, 3)


def clip_l(s: Spec, p: str, width: int = 768, layers: int = 12) -> None:
    s.add(p + "embeddings.token_embedding.weight", (49408, width), "randn", 0.02)
    s.add(p + "embeddings.position_embedding.weight", (77, width), "randn", 0.01)
    for i in range(layers):
        q = p + f"encoder.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s.linear(q + "self_attn." + n, width, width)
        s.norm(q + "layer_norm1", width)
        s.norm(q + "layer_norm2", width)
        s.linear(q + "mlp.fc1", 4 * width, width)
        s.linear(q + "mlp.fc2", width, 4 * width)
    s.norm(p + "final_layer_norm", width)


def build(vae: str) -> Spec:
    s = Spec()
    unet(s, "model.diffusion_model.")
    (taesd_vae if vae == "taesd" else sd_vae)(s, "first_stage_model.")
    clip_l(s, "cond_stage_model.transformer.text_model.")
    return s


def recipe(args: argparse.Namespace) -> str:
    return json.dumps(
        {"version": RECIPE_VERSION, "seed": args.seed, "dtype": args.dtype, "vae": args.vae},
        sort_keys=True,
    )


def read_header(path: Path) -> dict | None:
    """The safetensors JSON header, or None if the file is missing, truncated or not one."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"))
        return header if path.stat().st_size == 8 + n + end else None
    except (OSError, ValueError, KeyError, struct.error):
        return None


def is_current(path: Path, want: str) -> bool:
    header = read_header(path)
    return header is not None and header.get("__metadata__", {}).get(META_KEY) == want


def write(path: Path, spec: Spec, dtype: np.dtype, seed: int, meta: dict[str, str]) -> None:
    code = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}[dtype]
    header: dict[str, object] = {"__metadata__": meta}
    offset = 0
    for name, (shape, _, _) in spec.tensors.items():
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {
            "dtype": code,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format pads the header to 8-byte alignment

    rng = np.random.Generator(np.random.PCG64(seed))  # one stream, drawn in key order
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(blob)) + blob)
            for shape, init, std in spec.tensors.values():
                if init == "randn":
                    a = rng.standard_normal(shape, dtype=np.float32)
                    a *= std
                else:
                    a = np.full(shape, 1.0 if init == "ones" else 0.0, np.float32)
                f.write(a.astype(dtype.newbyteorder("<")).tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16")
    ap.add_argument("--vae", choices=("taesd", "sd"), default="taesd")
    ap.add_argument("--force", action="store_true", help="rewrite even if the file is current")
    args = ap.parse_args(argv)

    want = recipe(args)
    if not args.force and is_current(args.out, want):
        print(f"tiny SD1.5 checkpoint up to date: {args.out}")
        return 0
    t0 = time.perf_counter()
    spec = build(args.vae)
    dtype = np.dtype(np.float16 if args.dtype == "fp16" else np.float32)
    meta = {META_KEY: want, "note": "random-weight tiny SD1.5 test model (raiiaf-rs tests)"}
    write(args.out, spec, dtype, args.seed, meta)
    n = sum(int(np.prod(shape)) for shape, _, _ in spec.tensors.values())
    print(
        f"wrote {args.out}: {n / 1e6:.1f} M params, {args.out.stat().st_size / 1e6:.0f} MB, "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
