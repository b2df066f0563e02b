"""Tiny SD- and SDXL-shaped diffusers pipelines built from configs, saved to a folder and
loaded back with ``from_pretrained`` (as a user loads a real model), nothing downloaded.

The tokenizer is a byte-level CLIP vocabulary (every byte, alone and word-final, no
merges) written as ``vocab.json``/``merges.txt`` and loaded with ``from_pretrained``:
``CLIPTokenizer(vocab_file=...)`` silently builds a 3-token vocabulary under
transformers 5. Weights are random but seeded, so every build is the same model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import diffusers
import numpy as np
import torch

SD = "sd"
SDXL = "sdxl"


def _bytes_to_unicode() -> list[str]:
    """CLIP's printable stand-in for each byte (the GPT-2 table)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def save_tokenizer(folder: Path) -> int:
    """Write a byte-level CLIP tokenizer folder; return its vocabulary size."""
    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    from transformers import CLIPTokenizer

    # The class reads the two files; save_pretrained adds its config files.
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(str(folder))
    loaded = CLIPTokenizer.from_pretrained(str(folder))
    assert len(loaded) == len(tokens), f"tokenizer has {len(loaded)} tokens, not {len(tokens)}"
    return len(tokens)


def _text_config(vocab: int, projection: bool):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab,
        max_position_embeddings=77,
        projection_dim=32 if projection else 512,
        hidden_act="gelu",
    )


def build(kind: str, folder: Path) -> Path:
    """Save a tiny ``kind`` (``sd`` or ``sdxl``) pipeline into ``folder`` (once) and
    return it."""
    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(0)
    tmp = folder.with_name(folder.name + ".tmp")
    vocab = save_tokenizer(tmp / "tok")
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp / "tok"))
    vae = AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    common = dict(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )
    if kind == SD:
        unet = UNet2DConditionModel(cross_attention_dim=32, attention_head_dim=4, **common)
        text_encoder = CLIPTextModel(_text_config(vocab, projection=False))
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    elif kind == SDXL:
        unet = UNet2DConditionModel(
            cross_attention_dim=64,  # the two text encoders' hidden states side by side
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled
            **common,
        )
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=CLIPTextModel(_text_config(vocab, projection=False)),
            text_encoder_2=CLIPTextModelWithProjection(_text_config(vocab, projection=True)),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=unet,
            scheduler=scheduler,
        )
    else:
        raise ValueError(f"kind must be {SD!r} or {SDXL!r}, not {kind!r}")
    pipe.save_pretrained(str(tmp / "pipe"))
    os.replace(tmp / "pipe", folder)
    return folder


# --- what the tests share -------------------------------------------------------------------
PIPES = {
    SD: (diffusers.StableDiffusionPipeline, diffusers.StableDiffusionImg2ImgPipeline),
    SDXL: (diffusers.StableDiffusionXLPipeline, diffusers.StableDiffusionXLImg2ImgPipeline),
}
SCHEDULERS = {
    "euler": diffusers.EulerDiscreteScheduler,
    "euler_a": diffusers.EulerAncestralDiscreteScheduler,
    "dpmpp_sde": diffusers.DPMSolverSDEScheduler,
}


_loaded: dict[str, object] = {}


def pipeline(models: dict[str, Path], kind: str, mode: str, scheduler: str):
    """The tiny ``kind`` pipeline for ``mode`` (``txt2img``/``img2img``) with a fresh
    ``scheduler`` (the components are loaded once per session and shared)."""
    if kind not in _loaded:
        pipe = PIPES[kind][0].from_pretrained(str(models[kind]))
        pipe.set_progress_bar_config(disable=True)
        _loaded[kind] = pipe
    base = _loaded[kind]
    pipe = base if mode == "txt2img" else PIPES[kind][1].from_pipe(base)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = SCHEDULERS[scheduler].from_config(base.scheduler.config)
    return pipe


def call_args(mode: str, **extra):
    """A small call: 64x64, 3 steps (img2img: 4 at strength 0.7 on a fixed image)."""
    if mode == "img2img":
        image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
        return dict(prompt="a cat", image=image, strength=0.7, num_inference_steps=4, **extra)
    return dict(prompt="a cat", height=64, width=64, num_inference_steps=3, **extra)


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))
