"""Save node: SaveImage's PNGs, plus one ``.raiiaf`` per image holding the
image, its slice of the captured initial noise, and how it was made."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import folder_paths
import raiiaf_rs
import torch
from comfy_api.latest import io, ui
from raiiaf_rs import host as raiiaf_host
from raiiaf_rs import passes as raiiaf_passes

from . import capture, graph, host, inputs, pass_schema, paths
from .passes import pass_name, path_nodes


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


def _fingerprint(folder: str, name: str) -> raiiaf_rs.Fingerprint | None:
    path = (
        folder_paths.get_full_path(folder, name)
        if folder in folder_paths.folder_names_and_paths
        else None
    )
    return raiiaf_rs.fingerprint(path) if path else None


def _models(prompt: dict, node_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Metadata ``models`` and ``loras`` of the model files upstream of a sampler."""
    models, hashes = [], {}
    for key, folder, name in graph.model_files(prompt, node_id):
        fp = _fingerprint(folder, name)
        extra = {"short_hash": fp.short} if fp else {}
        role = graph.MODEL_ROLES.get(key, key)
        models.append(raiiaf_host.model_entry(role, name, fp and fp.sha256, input=key, **extra))
        hashes[(role, name)] = fp and fp.sha256
    return models, [
        raiiaf_host.lora_entry(sha256=hashes.get(("lora", lo["name"])), **lo)
        for lo in graph.loras(prompt, node_id)
    ]


@dataclass
class Pass:
    """One sampler pass on the path to the saved images: its node in this graph and
    what was captured of it (None: not captured, ``missing`` says why)."""

    position: int
    node_id: str
    class_type: str
    capture: capture.Capture | None
    missing: str = ""

    @property
    def name(self) -> str:
        """Latent name in the file: the first pass along the path is ``initial_noise``."""
        return pass_name(self.position, self.node_id)


def passes_for(prompt: dict, save_id: str, list_index: int, prompt_id: str) -> list[Pass]:
    """The sampler runs upstream of the save node's ``images`` input, in path order
    (upstream first): only those reach the file, whichever branch ran last."""
    out: list[Pass] = []
    memo: dict[str, str] = {}
    for nid in path_nodes(prompt, save_id):
        cls = graph.class_of(prompt, nid)
        caps = capture.lookup(prompt, nid, list_index, prompt_id, memo)
        for cap in caps:
            out.append(Pass(len(out), nid, cls, cap))
        if not caps and cls in capture.seen_sampler_classes:
            out.append(Pass(len(out), nid, cls, None, capture.why_missing(prompt, nid, memo)))
    return out


#: Loader outputs and the file's settings they come from, for the unknown list.
LOADER_SETTINGS = (
    "seed",
    "steps",
    "cfg",
    "sampler_name",
    "scheduler",
    "denoise",
    "positive_prompt",
    "negative_prompt",
)


def _settings_prompt(prompt: dict, dynprompt: Any) -> dict:
    """The prompt plus the nodes expanded at run time (their settings live there)."""
    extra = getattr(dynprompt, "ephemeral_prompt", None)
    return {**prompt, **extra} if isinstance(extra, dict) else prompt


def build_record(
    passes: list[Pass],
    index: int,
    batch: int,
    prompt: dict | None,
    extra_pnginfo: dict | None,
    save_final_latent: bool,
    settings_prompt: dict | None = None,
    batch_id: str = "",
    size: tuple[int, int] | None = None,
    list_index: int = 0,
    save_id: str = "",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Latents and metadata of image ``index`` of a batch of ``batch`` (``size``: the
    image's width and height; ``list_index``: the save's item in a list run)."""
    prompt = prompt or {}
    settings_prompt = settings_prompt or prompt
    latents: dict[str, torch.Tensor] = {}
    records = []
    missing = []
    schema: list[raiiaf_passes.Pass] = []  # the ``passes`` key, every pass in run order
    memo: dict[str, str] = {}
    get = inputs.getter(prompt, list_index, memo, settings_prompt)

    def settings_of(p: Pass) -> dict[str, Any]:
        # The capture's executing id, moved onto this graph's node (re-created nodes
        # and subgraphs give the node a new id; what it expanded into keeps its part).
        exec_id = p.node_id + capture.rel_id(p.capture.exec_id)
        return graph.sampler_settings(settings_prompt, exec_id, get)

    first_row: tuple[int, int] | None = None  # (row, batch) of a picked image
    whole: list[str] = []

    def part(t: torch.Tensor, row: int | None, ran: int) -> torch.Tensor:
        if row is None or t.dim() == 0 or ran <= 1:
            return t
        return t[row + index : row + index + 1]

    for p in passes:
        cap = p.capture
        if cap is None:
            missing.append(
                {
                    "name": p.name,
                    "node_id": p.node_id,
                    "class_type": p.class_type,
                    "reason": p.missing,
                }
            )
            schema.append(pass_schema.missing(p.position, missing[-1]))
            continue
        ran = int(cap.noise.shape[0]) if cap.noise.dim() > 0 else 1
        if save_id:
            row, why = graph.picked_rows(prompt, p.node_id, save_id, ran, batch, get)
        else:  # no graph to follow: as batched alike, else whole
            row, why = (0 if ran == batch else None), ""
        whole_before = len(whole)
        if save_id and row is None:
            whole.append(
                f"pass {p.name} (node {p.node_id}) holds the initial noise of the whole batch "
                f"of {ran} its sampler ran, not this image's slice: {why}"
            )
        elif row is not None and ran != batch and first_row is None:
            first_row = (row + index, ran)
        latents[p.name] = part(cap.noise, row, ran)
        settings = settings_of(p)
        rec = {
            "name": p.name,
            "node_id": p.node_id,
            "class_type": p.class_type,
            "order": p.position,
            "seed": cap.seed,
            "sampler": cap.sampler,
            "cfg": cap.cfg,
            "sigmas": cap.sigmas,
            "all_zero": cap.is_zero,
            "shape": list(latents[p.name].shape),
            "settings": {k: v for k, v in settings.items() if k != "class_type"},
            **cap.extra,
        }
        if cap.exec_id != p.node_id:
            rec["exec_id"] = cap.exec_id
        if cap.prompt_id != host.current_prompt_id():
            rec["cached"] = True  # ComfyUI served the node from its cache; this is its run
        if cap.latent_shapes:
            rec["latent_shapes"] = [[1 if batch > 1 else s[0], *s[1:]] for s in cap.latent_shapes]
        if cap.input_latent is not None:
            # No noise added (pre-noised latent): the replay starts from this latent.
            rec["input_latent"] = f"{p.name}_input_latent"
            latents[rec["input_latent"]] = part(cap.input_latent, row, ran)
        records.append(rec)
        why = whole[-1] if len(whole) > whole_before else None
        schema.append(pass_schema.captured(p.position, rec, latents, why))
    done = [p for p in passes if p.capture is not None]
    if save_final_latent and done and done[-1].capture.final_latent is not None:
        final = done[-1].capture.final_latent
        latents["final_latent"] = final[index : index + 1] if final.shape[0] == batch > 1 else final

    extra: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    generation = None
    models: list[dict[str, Any]] = []
    loras: list[dict[str, Any]] = []
    if done:
        first = done[0]
        cap = first.capture
        settings = settings_of(first)
        unknown = dict(settings.get("unknown", {}))
        # The run's own values where it has them (the seed and cfg sampling really used).
        if cap.seed is not None:
            settings["seed"] = cap.seed
            unknown.pop("seed", None)
        if cap.cfg is not None:
            settings["cfg"] = cap.cfg
            unknown.pop("cfg", None)
        for key in LOADER_SETTINGS:
            # (denoise: KSamplerAdvanced and kin have none; their steps say it all)
            if key not in settings and key not in unknown and key != "denoise":
                unknown[key] = "no input of the sampler (or the nodes feeding it) holds it"
        models, loras = _models(prompt, first.node_id)
        if all(k in settings for k in ("seed", "steps", "sampler_name")):
            generation = raiiaf_host.Generation(
                seed=max(int(settings["seed"]), 0),
                steps=max(int(settings["steps"]), 1),
                sampler=str(settings["sampler_name"]),
                cfg_scale=float(settings.get("cfg", 0.0)),
                scheduler=str(settings.get("scheduler", "")),
            )
        extra["sigmas"] = cap.sigmas
        if any(r["all_zero"] for r in records):
            extra["pre_noised"] = (
                "a sampler added no noise (add_noise off: its latent came in noised); the file "
                "holds that input latent, which the replay starts from"
            )
        if unknown:
            # Never a guessed or empty value: the file names what it does not know.
            extra["unknown_settings"] = unknown
    checkpoints = [m for m in models if m["role"] in ("checkpoint", "unet")]
    metadata = raiiaf_host.build_metadata(
        host.host_info(),
        prompt=settings.get("positive_prompt"),
        negative_prompt=settings.get("negative_prompt"),
        model_name=checkpoints[0]["name"] if checkpoints else "",
        tags=["comfyui"],
        generation=generation,
        denoise=settings.get("denoise"),
        width=size[0] if size else None,
        height=size[1] if size else None,
        # A picked image (LatentFromBatch...) is its row of the batch its sampler ran:
        # what a replay of it alone needs for ancestral and SDE per-step noise.
        batch_index=first_row[0] if first_row else index,
        batch_size=first_row[1] if first_row else batch,
        batch_id=batch_id or None,
        models=models,
        loras=loras,
        extra=extra,
    )
    gen = metadata.get("generation_settings")
    if gen is not None:  # the reference format requires seed, steps, sampler only
        for key, setting in (("cfg_scale", "cfg"), ("scheduler", "scheduler")):
            if setting not in settings:
                del gen[key]
    if "negative_prompt" in unknown:
        del metadata["negative_prompt"]  # ("prompt" stays "": the format requires it)
    if not passes:
        metadata["warning"] = (
            "no sampler ran upstream of this save node (nothing was sampled, or it ran "
            "without a capture), so no noise was captured; change the seed or re-queue to "
            "capture it"
        )
    elif missing or whole:
        if missing:
            metadata["missing_passes"] = missing
        if whole:
            metadata["whole_batch"] = whole
        metadata["warning"] = "this file cannot regenerate its image exactly: " + "; ".join(
            [
                f"pass {m['name']} (node {m['node_id']}, {m['class_type']}) is missing, "
                f"{m['reason']}"
                for m in missing
            ]
            + whole
        )
    metadata["captures"] = records  # kept for loaders of earlier versions (FORMAT.md §4.4)
    metadata["passes"] = raiiaf_passes.to_json(schema)
    metadata["comfyui"] = {
        "version": host.comfyui_version(),
        # ComfyUI writes its cache fingerprints into the prompt while it runs
        # ("is_changed", NaN for always-rerun nodes): runtime state, not the graph.
        "prompt": {
            nid: {k: v for k, v in node.items() if k != "is_changed"}
            if isinstance(node, dict)
            else node
            for nid, node in prompt.items()
        },
        "workflow": (extra_pnginfo or {}).get("workflow"),
    }
    return latents, metadata


def _failure(e: Exception, out_dir: str) -> str:
    """Why a sidecar could not be written, without the server's paths."""
    message = str(e) or type(e).__name__
    for root in sorted({out_dir, os.path.realpath(out_dir)}, key=len, reverse=True):
        message = message.replace(root + os.sep, "").replace(root, "<output>")
    return f"{type(e).__name__}: {message}"


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
            hidden=[
                io.Hidden.prompt,
                io.Hidden.extra_pnginfo,
                io.Hidden.unique_id,
                io.Hidden.dynprompt,
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix="ComfyUI", codec="raw", save_final_latent=False):
        prompt = cls.hidden.prompt
        extra = cls.hidden.extra_pnginfo
        prompt_id, _, list_index = host.current_context()
        passes = passes_for(prompt or {}, str(cls.hidden.unique_id), list_index, prompt_id)
        caps = [p.capture for p in passes if p.capture is not None]
        settings_prompt = _settings_prompt(prompt or {}, cls.hidden.dynprompt)
        batch_id = uuid.uuid4().hex
        out_dir = folder_paths.get_output_directory()
        batch = int(images.shape[0])
        size = (int(images.shape[2]), int(images.shape[1]))
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, out_dir, images[0].shape[1], images[0].shape[0]
        )
        text = _png_text(prompt, extra)
        environment = host.environment(caps)
        results = []
        files = []  # loader choices of the .raiiaf files, for the front end's summary
        warnings: list[str] = []
        for index in range(batch):
            png = raiiaf_rs.encode_png(images[index], text)
            try:
                latents, metadata = build_record(
                    passes,
                    index,
                    batch,
                    prompt,
                    extra,
                    save_final_latent,
                    settings_prompt,
                    batch_id,
                    size,
                    list_index,
                    str(cls.hidden.unique_id),
                )
            except Exception as e:  # a failed sidecar must never break the save
                metadata, reason = None, _failure(e, out_dir)
            # Another save with the same prefix may take a counter between ComfyUI's
            # scan and these writes: never overwrite, take the next for both files.
            while True:
                stem = f"{filename.replace('%batch_num%', str(index))}_{counter:05}_"
                png_path = os.path.join(folder, stem + ".png")
                try:
                    raiiaf_host.write_new_file(png_path, png)
                except FileExistsError:
                    counter += 1
                    continue
                if metadata is None:
                    break
                try:
                    raiiaf_host.write_sidecar(
                        png_path,
                        latents,
                        metadata=metadata,
                        environment=environment,
                        image_bytes=png,
                        codec=codec,
                        image_extra={"width": size[0], "height": size[1]},
                        numbered=False,
                    )
                except raiiaf_rs.TargetExistsError:
                    os.unlink(png_path)
                    counter += 1
                    continue
                except Exception as e:  # the PNG stays, as SaveImage would have saved it
                    metadata, reason = None, _failure(e, out_dir)
                break
            results.append(ui.SavedResult(stem + ".png", subfolder, io.FolderType.output))
            if metadata is None:
                warnings.append(f"{stem}.png was saved without its .raiiaf: {reason}")
                print(f"[raiiaf] ERROR {warnings[-1]}")
            else:
                files.append(f"{subfolder}/{stem}.raiiaf" if subfolder else f"{stem}.raiiaf")
                if metadata.get("warning") and not any(metadata["warning"] in w for w in warnings):
                    warnings.append(metadata["warning"])
                    print(f"[raiiaf] {filename_prefix}: {metadata['warning']}")
            counter += 1
        saved = ui.SavedImages(results).as_dict()
        out = {**saved, "raiiaf": [f + paths.OUTPUT_TAG for f in files]}
        if warnings:
            out["raiiaf_warning"] = warnings
        return io.NodeOutput(ui=out)
