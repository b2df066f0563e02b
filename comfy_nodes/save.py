"""Save node: SaveImage's PNGs, plus one ``.raiiaf`` per image holding the
image, its slice of the captured initial noise, and how it was made."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import folder_paths
import raiiaf_rs
import torch
from comfy_api.latest import io, ui

from . import capture, graph, host, paths


def _png_text(prompt: Any, extra_pnginfo: Any) -> dict[str, str]:
    """The same text chunks SaveImage writes (unless --disable-metadata)."""
    if host.metadata_disabled():
        return {}
    text = {}
    if prompt is not None:
        text["prompt"] = json.dumps(prompt)
    for key, value in (extra_pnginfo or {}).items():
        text[key] = json.dumps(value)
    return text


def _write_new(path: str, data: bytes) -> None:
    """Writes a file that must not exist yet, atomically: a unique temporary
    file, then a hard link, which fails if another writer took the name first.
    Where hard links are unsupported (FAT, some network shares), an exclusive
    create instead (not atomic against crashes, still never overwrites)."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            with open(path, "xb") as f:
                f.write(data)
    finally:
        os.unlink(tmp)


def _slice(t: torch.Tensor, index: int, batch: int) -> torch.Tensor:
    """Image ``index``'s part of a captured tensor (whole if not batched alike)."""
    return t[index : index + 1] if t.dim() > 0 and t.shape[0] == batch and batch > 1 else t


def _models(prompt: dict, node_id: str) -> list[dict[str, Any]]:
    out = []
    for key, folder, name in graph.model_files(prompt, node_id):
        entry: dict[str, Any] = {"role": key, "name": os.path.basename(name)}
        path = (
            folder_paths.get_full_path(folder, name)
            if folder in folder_paths.folder_names_and_paths
            else None
        )
        if path:
            fp = raiiaf_rs.fingerprint(path)
            entry.update(sha256=fp.sha256, short_hash=fp.short)
        out.append(entry)
    return out


def build_record(
    caps: list[capture.Capture],
    index: int,
    batch: int,
    prompt: dict | None,
    extra_pnginfo: dict | None,
    save_final_latent: bool,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Latents and metadata of image ``index`` of a batch of ``batch``."""
    prompt = prompt or {}
    latents: dict[str, torch.Tensor] = {}
    records = []
    for cap in caps:
        latents[cap.name] = _slice(cap.noise, index, batch)
        records.append(
            {
                "name": cap.name,
                "node_id": cap.node_id,
                "order": cap.order,
                "seed": cap.seed,
                "sampler": cap.sampler,
                "cfg": cap.cfg,
                "sigmas": cap.sigmas,
                "all_zero": cap.is_zero,
                **cap.extra,
            }
        )
    if save_final_latent and caps and caps[-1].final_latent is not None:
        latents["final_latent"] = _slice(caps[-1].final_latent, index, batch)

    metadata: dict[str, Any] = {"tags": ["comfyui"], "batch_index": index, "batch_size": batch}
    if caps:
        first = caps[0]
        settings = graph.sampler_settings(prompt, first.node_id)
        models = _models(prompt, first.node_id)
        checkpoints = [m for m in models if m["role"] in ("ckpt_name", "unet_name")]
        steps = len(first.sigmas) - 1
        gen = {
            "seed": first.seed if first.seed is not None and first.seed >= 0 else 0,
            "steps": max(int(settings.get("steps", steps) or steps), 1),
            "sampler": str(settings.get("sampler_name", first.sampler)),
            "cfg_scale": float(first.cfg if first.cfg is not None else settings.get("cfg", 0.0)),
            "scheduler": str(settings.get("scheduler", "")),
        }
        metadata.update(
            model_name=checkpoints[0]["name"] if checkpoints else "",
            prompt=settings.get("positive_prompt", ""),
            negative_prompt=settings.get("negative_prompt", ""),
            generation_settings=gen,
            denoise=settings.get("denoise", 1.0),
            sigmas=first.sigmas,
            models=models,
        )
    else:
        metadata["warning"] = (
            "no sampler ran in this prompt (its result came from ComfyUI's cache), "
            "so no noise was captured; change the seed or re-queue to capture it"
        )
    metadata["captures"] = records
    metadata["comfyui"] = {
        "version": host.comfyui_version(),
        "prompt": prompt,
        "workflow": (extra_pnginfo or {}).get("workflow"),
    }
    return latents, metadata


class SaveImageRaiiaf(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="RaiiafSaveImage",
            display_name="Save Image + .raiiaf",
            category="image/raiiaf",
            description=(
                "Saves the images to your ComfyUI output directory like Save Image, and beside "
                "each PNG a .raiiaf file with the exact initial noise, settings and environment "
                "needed to generate it again."
            ),
            inputs=[
                io.Image.Input("images", tooltip="The images to save."),
                io.String.Input("filename_prefix", default="ComfyUI"),
                io.Combo.Input(
                    "codec",
                    options=["raw", "compact"],
                    default="raw",
                    tooltip="raw: readable by the reference raiiaf package; compact: ~15% smaller.",
                ),
                io.Boolean.Input(
                    "save_final_latent",
                    default=False,
                    tooltip="Also store the sampler's output latent (doubles the tensor data).",
                ),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo, io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix="ComfyUI", codec="raw", save_final_latent=False):
        prompt = cls.hidden.prompt
        extra = cls.hidden.extra_pnginfo
        prompt_id = host.current_prompt_id()
        caps = capture.captures_for(prompt_id)
        out_dir = folder_paths.get_output_directory()
        batch = int(images.shape[0])
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, out_dir, images[0].shape[1], images[0].shape[0]
        )
        text = _png_text(prompt, extra)
        environment = host.environment(caps)
        results = []
        files = []  # loader choices of the .raiiaf files, for the front end's summary
        for index in range(batch):
            png = raiiaf_rs.encode_png(images[index], text)
            latents, metadata = build_record(caps, index, batch, prompt, extra, save_final_latent)
            # Another save with the same prefix may take a counter between
            # ComfyUI's scan and these writes: never overwrite, take the next.
            while True:
                stem = f"{filename.replace('%batch_num%', str(index))}_{counter:05}_"
                try:
                    _write_new(os.path.join(folder, stem + ".png"), png)
                except FileExistsError:
                    counter += 1
                    continue
                try:
                    raiiaf_rs.write(
                        os.path.join(folder, stem + ".raiiaf"),
                        latents,
                        png,
                        metadata,
                        environment=environment,
                        codec=codec,
                        image_extra={"width": int(images.shape[2]), "height": int(images.shape[1])},
                    )
                except raiiaf_rs.TargetExistsError:
                    os.unlink(os.path.join(folder, stem + ".png"))
                    counter += 1
                    continue
                break
            results.append(ui.SavedResult(stem + ".png", subfolder, io.FolderType.output))
            files.append(f"{subfolder}/{stem}.raiiaf" if subfolder else f"{stem}.raiiaf")
            counter += 1
        saved = ui.SavedImages(results).as_dict()
        return io.NodeOutput(ui={**saved, "raiiaf": [f + paths.OUTPUT_TAG for f in files]})
