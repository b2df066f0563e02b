""" "Load .raiiaf batch": every file of the batch a chosen file was saved in, as one
batched NOISE/LATENT/IMAGE, to regenerate the whole batch at once (with the replay
patch, or SamplerCustomAdvanced)."""

from __future__ import annotations

import os
import re

import raiiaf_rs
import torch
from comfy_api.latest import io

from . import load, paths

# The save node names a batch's files <prefix>_<counter>_.raiiaf, one counter each.
_COUNTER = re.compile(r"_(\d{5,})_\.raiiaf$")


def _counter(name: str) -> int | None:
    m = _COUNTER.search(name)
    return int(m.group(1)) if m else None


def siblings(file: str) -> list[str]:
    """Loader choices of the files saved in the same batch as ``file`` (the same
    ``batch_id``, in the same folder), in batch order; just ``file`` alone when it
    has no batch id."""
    path = paths.resolve(file)
    meta = raiiaf_rs.read_metadata(path).metadata
    batch_id = meta.get("batch_id")
    size = meta.get("batch_size", 1)
    if not batch_id or not isinstance(size, int) or size <= 1:
        return [file]
    tag = paths.OUTPUT_TAG if file.endswith(paths.OUTPUT_TAG) else ""
    folder = os.path.dirname(file[: -len(tag)] if tag else file)
    here = _counter(os.path.basename(path))

    # A batch's files have consecutive counters (another save with the same prefix at
    # the same time can push some further): read the nearest first, stop when complete.
    def distance(name: str) -> int:
        c = _counter(name)
        return abs(c - here) if c is not None and here is not None else 1 << 62

    names = sorted(
        (e.name for e in os.scandir(os.path.dirname(path)) if e.name.endswith(paths.SUFFIX)),
        key=distance,
    )
    found: dict[int, str] = {}
    for name in names:
        if len(found) == size:
            break
        try:
            other = raiiaf_rs.read_metadata(os.path.join(os.path.dirname(path), name)).metadata
        except raiiaf_rs.RaiiafError:
            continue
        index = other.get("batch_index")
        if other.get("batch_id") == batch_id and isinstance(index, int):
            found.setdefault(index, (f"{folder}/{name}" if folder else name) + tag)
    return [found[i] for i in sorted(found)]


def _concat(stored: list[load.Stored]) -> load.Stored:
    first = stored[0]
    for s in stored[1:]:
        if [p.name for p in s.passes] != [p.name for p in first.passes] or [
            tuple(p.noise.shape[1:]) for p in s.passes
        ] != [tuple(p.noise.shape[1:]) for p in first.passes]:
            raise ValueError(f"{s.name} holds other passes than {first.name}: not one batch")
    passes = []
    for k, p in enumerate(first.passes):
        inputs = [s.passes[k].input_latent for s in stored]
        passes.append(
            load.StoredPass(
                name=p.name,
                node_id=p.node_id,
                class_type=p.class_type,
                noise=torch.cat([s.passes[k].noise for s in stored]),
                seed=p.seed,
                input_latent=None if inputs[0] is None else torch.cat(inputs),
                latent_shapes=p.latent_shapes,
            )
        )
    return load.Stored(
        name=", ".join(s.name for s in stored),
        passes=passes,
        metadata=first.metadata,
        batch_size=first.batch_size,
        rows=tuple(s.rows[0] for s in stored),
    )


class LoadRaiiafBatch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        schema = load.LoadRaiiaf.define_schema()
        schema.node_id = "RaiiafLoadBatch"
        schema.display_name = "Load .raiiaf batch"
        schema.description = (
            "Loads every .raiiaf saved in the same batch as the chosen file (found beside "
            "it), to generate the whole batch again at once."
        )
        return schema

    @classmethod
    def validate_inputs(cls, file):
        return load.LoadRaiiaf.validate_inputs(file)

    @classmethod
    def fingerprint_inputs(cls, file):
        try:
            return [load.LoadRaiiaf.fingerprint_inputs(f) for f in siblings(file)]
        except (ValueError, OSError, raiiaf_rs.RaiiafError):
            return float("nan")

    @classmethod
    def execute(cls, file):
        files = siblings(file)
        read = [load.read_stored(f) for f in files]
        stored = [s for _, s in read]
        seeds = {s.passes[0].seed for s in stored}
        if len(seeds) > 1:
            raise ValueError(f"{file}: its batch's files hold different seeds {sorted(seeds)}")
        batch = _concat(stored)
        image = torch.cat([load._image(art.image) for art, _ in read])
        size = batch.batch_size
        rows = list(batch.rows)
        head = f"{len(files)} of {size} images of the batch (indices {rows})"
        if len(files) < size:
            missing = sorted(set(range(size)) - set(rows))
            head += f"; images {missing} were not found beside {file}"
        summary = head + "\n" + load._summary(read[0][0], files[0])
        return load.outputs(batch, image, summary)
