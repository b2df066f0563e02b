"""The example graphs, defined once and emitted in both of ComfyUI's formats:
the UI workflow (the ``*.json`` files here, loadable by dragging them into
ComfyUI and listed in its template browser) and the API prompt the tests
queue. Regenerate the JSON files with ``python workflows/graphs.py``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CKPT = "tiny-sd15.safetensors"
POSITIVE = "a lighthouse on a cliff at dusk, oil painting"
NEGATIVE = "blurry, low quality"

# Output slots of the nodes used here: (name, type).
OUTPUTS = {
    "CheckpointLoaderSimple": [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
    "CLIPTextEncode": [("CONDITIONING", "CONDITIONING")],
    "EmptyLatentImage": [("LATENT", "LATENT")],
    "KSampler": [("LATENT", "LATENT")],
    "VAEDecode": [("IMAGE", "IMAGE")],
    "SaveImage": [],
    "RandomNoise": [("NOISE", "NOISE")],
    "KSamplerSelect": [("SAMPLER", "SAMPLER")],
    "BasicScheduler": [("SIGMAS", "SIGMAS")],
    "CFGGuider": [("GUIDER", "GUIDER")],
    "SamplerCustomAdvanced": [("output", "LATENT"), ("denoised_output", "LATENT")],
    "RaiiafSaveImage": [],
    "RaiiafReplayNoise": [("MODEL", "MODEL")],
    "LatentUpscaleBy": [("LATENT", "LATENT")],
    "RaiiafLoad": [
        ("raiiaf", "RAIIAF"),
        ("noise", "NOISE"),
        ("latent", "LATENT"),
        ("image", "IMAGE"),
        ("seed", "INT"),
        ("steps", "INT"),
        ("cfg", "FLOAT"),
        ("sampler_name", "COMBO"),
        ("scheduler", "COMBO"),
        ("positive", "STRING"),
        ("negative", "STRING"),
        ("summary", "STRING"),
    ],
}
OUTPUTS["RaiiafLoadBatch"] = OUTPUTS["RaiiafLoad"]
# Widgets whose UI value list carries an extra "control after generate" entry.
CONTROLLED = {"seed", "noise_seed"}


@dataclass
class Node:
    id: int
    type: str
    widgets: list[tuple[str, Any]] = field(default_factory=list)
    # name -> (type, source node id, source slot)
    links: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    pos: tuple[int, int] = (0, 0)


def to_api(nodes: list[Node]) -> dict[str, Any]:
    """The API prompt ``{id: {"class_type", "inputs"}}`` that POST /prompt takes."""
    prompt = {}
    for n in nodes:
        inputs: dict[str, Any] = dict(n.widgets)
        for name, (_type, src, slot) in n.links.items():
            inputs[name] = [str(src), slot]
        prompt[str(n.id)] = {"class_type": n.type, "inputs": inputs}
    return prompt


def to_ui(nodes: list[Node]) -> dict[str, Any]:
    """The UI workflow (litegraph serialisation, version 0.4)."""
    links = []
    by_id = {n.id: n for n in nodes}
    out_links: dict[tuple[int, int], list[int]] = {}
    in_link: dict[tuple[int, str], int] = {}
    for n in nodes:
        for name, (typ, src, slot) in n.links.items():
            link_id = len(links) + 1
            links.append([link_id, src, slot, n.id, None, typ])
            out_links.setdefault((src, slot), []).append(link_id)
            in_link[(n.id, name)] = link_id
    ui_nodes = []
    for order, n in enumerate(nodes):
        widget_names = {w for w, _ in n.widgets}
        inputs = []
        for name, (typ, _src, _slot) in n.links.items():
            entry: dict[str, Any] = {"name": name, "type": typ, "link": in_link[(n.id, name)]}
            if name in widget_names:
                entry["widget"] = {"name": name}
            inputs.append(entry)
        for slot, entry in enumerate(inputs):
            links[entry["link"] - 1][4] = slot
        values: list[Any] = []
        for name, value in n.widgets:
            values.append(value)
            if name in CONTROLLED:
                values.append("fixed")
        outputs = [
            {"name": name, "type": typ, "links": out_links.get((n.id, i), []), "slot_index": i}
            for i, (name, typ) in enumerate(OUTPUTS[n.type])
        ]
        ui_nodes.append(
            {
                "id": n.id,
                "type": n.type,
                "pos": list(n.pos),
                "size": [320, 120],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": inputs,
                "outputs": outputs,
                "properties": {"Node name for S&R": n.type},
                "widgets_values": values,
            }
        )
    assert all(link[3] in by_id for link in links)
    return {
        "last_node_id": max(n.id for n in nodes),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def _save(prefix: str, pos: tuple[int, int]) -> Node:
    """The pack's save node (id 9) on the decoded image of node 8."""
    return Node(
        9,
        "RaiiafSaveImage",
        [("filename_prefix", prefix), ("codec", "raw"), ("save_final_latent", False)],
        {"images": ("IMAGE", 8, 0)},
        pos,
    )


def _common(ckpt: str, width: int, height: int, batch: int) -> list[Node]:
    return [
        Node(4, "CheckpointLoaderSimple", [("ckpt_name", ckpt)], pos=(0, 200)),
        Node(6, "CLIPTextEncode", [("text", POSITIVE)], {"clip": ("CLIP", 4, 1)}, (400, 0)),
        Node(7, "CLIPTextEncode", [("text", NEGATIVE)], {"clip": ("CLIP", 4, 1)}, (400, 250)),
        Node(
            5,
            "EmptyLatentImage",
            [("width", width), ("height", height), ("batch_size", batch)],
            pos=(400, 500),
        ),
    ]


def save_ksampler(
    ckpt=CKPT,
    seed=42,
    steps=20,
    width=512,
    height=512,
    batch=1,
    sampler="euler",
    scheduler="normal",
    cfg=7.0,
    prefix="raiiaf",
):
    """The default txt2img graph with SaveImage replaced by the pack's save node."""
    return [
        *_common(ckpt, width, height, batch),
        Node(
            3,
            "KSampler",
            [
                ("seed", seed),
                ("steps", steps),
                ("cfg", cfg),
                ("sampler_name", sampler),
                ("scheduler", scheduler),
                ("denoise", 1.0),
            ],
            {
                "model": ("MODEL", 4, 0),
                "positive": ("CONDITIONING", 6, 0),
                "negative": ("CONDITIONING", 7, 0),
                "latent_image": ("LATENT", 5, 0),
            },
            (850, 100),
        ),
        Node(8, "VAEDecode", [], {"samples": ("LATENT", 3, 0), "vae": ("VAE", 4, 2)}, (1250, 100)),
        _save(prefix, (1500, 100)),
    ]


def _loaded_prompts(y: int) -> list[Node]:
    """Text encoders fed by the loader's (node 10) positive and negative outputs."""
    return [
        Node(
            6,
            "CLIPTextEncode",
            [("text", "")],
            {"clip": ("CLIP", 4, 1), "text": ("STRING", 10, 9)},
            (400, y),
        ),
        Node(
            7,
            "CLIPTextEncode",
            [("text", "")],
            {"clip": ("CLIP", 4, 1), "text": ("STRING", 10, 10)},
            (400, y + 250),
        ),
    ]


def reload_ksampler(file="raiiaf_00001_.raiiaf [output]", ckpt=CKPT, prefix="regenerated"):
    """Regenerate with a standard KSampler: the loader drives the settings and
    prompts, the replay patch makes the KSampler use the stored noise."""
    return [
        Node(10, "RaiiafLoad", [("file", file)], pos=(0, 600)),
        Node(4, "CheckpointLoaderSimple", [("ckpt_name", ckpt)], pos=(0, 200)),
        Node(
            11,
            "RaiiafReplayNoise",
            [],
            {"model": ("MODEL", 4, 0), "raiiaf": ("RAIIAF", 10, 0)},
            (400, 0),
        ),
        *_loaded_prompts(200),
        Node(
            3,
            "KSampler",
            [
                ("seed", 0),
                ("steps", 20),
                ("cfg", 7.0),
                ("sampler_name", "euler"),
                ("scheduler", "normal"),
                ("denoise", 1.0),
            ],
            {
                "model": ("MODEL", 11, 0),
                "positive": ("CONDITIONING", 6, 0),
                "negative": ("CONDITIONING", 7, 0),
                "latent_image": ("LATENT", 10, 2),
                "seed": ("INT", 10, 4),
                "steps": ("INT", 10, 5),
                "cfg": ("FLOAT", 10, 6),
                "sampler_name": ("COMBO", 10, 7),
                "scheduler": ("COMBO", 10, 8),
            },
            (850, 100),
        ),
        Node(8, "VAEDecode", [], {"samples": ("LATENT", 3, 0), "vae": ("VAE", 4, 2)}, (1250, 100)),
        Node(
            9, "SaveImage", [("filename_prefix", prefix)], {"images": ("IMAGE", 8, 0)}, (1500, 100)
        ),
    ]


def _custom(ckpt, noise_node: Node, steps, sampler, scheduler, cfg, model_src, latent_src):
    return [
        noise_node,
        Node(12, "KSamplerSelect", [("sampler_name", sampler)], pos=(850, 300)),
        Node(
            13,
            "BasicScheduler",
            [("scheduler", scheduler), ("steps", steps), ("denoise", 1.0)],
            {"model": ("MODEL", *model_src)},
            (850, 450),
        ),
        Node(
            14,
            "CFGGuider",
            [("cfg", cfg)],
            {
                "model": ("MODEL", *model_src),
                "positive": ("CONDITIONING", 6, 0),
                "negative": ("CONDITIONING", 7, 0),
            },
            (850, 600),
        ),
        Node(
            15,
            "SamplerCustomAdvanced",
            [],
            {
                "noise": ("NOISE", noise_node.id, 1 if noise_node.type == "RaiiafLoad" else 0),
                "guider": ("GUIDER", 14, 0),
                "sampler": ("SAMPLER", 12, 0),
                "sigmas": ("SIGMAS", 13, 0),
                "latent_image": ("LATENT", *latent_src),
            },
            (1250, 300),
        ),
        Node(8, "VAEDecode", [], {"samples": ("LATENT", 15, 0), "vae": ("VAE", 4, 2)}, (1600, 300)),
    ]


def save_custom_advanced(
    ckpt=CKPT,
    seed=42,
    steps=20,
    width=512,
    height=512,
    batch=1,
    sampler="euler",
    scheduler="normal",
    cfg=7.0,
    prefix="raiiaf_custom",
):
    """SamplerCustomAdvanced with RandomNoise, saved with the pack's save node."""
    return [
        *_common(ckpt, width, height, batch),
        *_custom(
            ckpt,
            Node(16, "RandomNoise", [("noise_seed", seed)], pos=(850, 0)),
            steps,
            sampler,
            scheduler,
            cfg,
            (4, 0),
            (5, 0),
        ),
        _save(prefix, (1900, 300)),
    ]


def reload_custom_advanced(
    file="raiiaf_custom_00001_.raiiaf [output]",
    ckpt=CKPT,
    steps=20,
    sampler="euler",
    scheduler="normal",
    cfg=7.0,
    prefix="regenerated_custom",
):
    """SamplerCustomAdvanced fed by the loader's NOISE and LATENT."""
    loader = Node(10, "RaiiafLoad", [("file", file)], pos=(0, 600))
    return [
        Node(4, "CheckpointLoaderSimple", [("ckpt_name", ckpt)], pos=(0, 200)),
        *_loaded_prompts(0),
        *_custom(ckpt, loader, steps, sampler, scheduler, cfg, (4, 0), (10, 2)),
        Node(
            9, "SaveImage", [("filename_prefix", prefix)], {"images": ("IMAGE", 8, 0)}, (1900, 300)
        ),
    ]


def _ksampler(id_, seed, steps, sampler, denoise, model, latent, pos, extra_links=None):
    return Node(
        id_,
        "KSampler",
        [
            ("seed", seed),
            ("steps", steps),
            ("cfg", 7.0),
            ("sampler_name", sampler),
            ("scheduler", "normal"),
            ("denoise", denoise),
        ],
        {
            "model": ("MODEL", *model),
            "positive": ("CONDITIONING", 6, 0),
            "negative": ("CONDITIONING", 7, 0),
            "latent_image": ("LATENT", *latent),
            **(extra_links or {}),
        },
        pos,
    )


def _hires(model, latent, steps, sampler, seed, seed2, extra_links=None):
    """First pass, latent upscale x1.5, second pass at half strength, decode."""
    return [
        _ksampler(3, seed, steps, sampler, 1.0, model, latent, (850, 100), extra_links),
        Node(
            17,
            "LatentUpscaleBy",
            [("upscale_method", "nearest-exact"), ("scale_by", 1.5)],
            {"samples": ("LATENT", 3, 0)},
            (1250, 100),
        ),
        _ksampler(18, seed2, steps, sampler, 0.5, model, (17, 0), (1600, 100)),
        Node(8, "VAEDecode", [], {"samples": ("LATENT", 18, 0), "vae": ("VAE", 4, 2)}, (2000, 100)),
    ]


def save_hires(
    ckpt=CKPT,
    seed=42,
    seed2=43,
    steps=20,
    width=512,
    height=512,
    batch=1,
    sampler="euler",
    prefix="raiiaf_hires",
):
    """Hires fix: two KSamplers with a latent upscale between; the file holds both passes."""
    return [
        *_common(ckpt, width, height, batch),
        *_hires((4, 0), (5, 0), steps, sampler, seed, seed2),
        _save(prefix, (2300, 100)),
    ]


def reload_hires(
    file="raiiaf_hires_00001_.raiiaf [output]",
    ckpt=CKPT,
    steps=20,
    sampler="euler",
    prefix="regenerated_hires",
):
    """The hires graph with the replay patch on both samplers: each gets its stored pass."""
    return [
        Node(10, "RaiiafLoad", [("file", file)], pos=(0, 600)),
        Node(4, "CheckpointLoaderSimple", [("ckpt_name", ckpt)], pos=(0, 200)),
        Node(
            11,
            "RaiiafReplayNoise",
            [],
            {"model": ("MODEL", 4, 0), "raiiaf": ("RAIIAF", 10, 0)},
            (400, 0),
        ),
        *_loaded_prompts(200),
        *_hires((11, 0), (10, 2), steps, sampler, 0, 0, {"seed": ("INT", 10, 4)}),
        Node(
            9, "SaveImage", [("filename_prefix", prefix)], {"images": ("IMAGE", 8, 0)}, (2300, 100)
        ),
    ]


def reload_batch(file="raiiaf_00001_.raiiaf [output]", ckpt=CKPT, prefix="regenerated_batch"):
    """Regenerate a whole batch at once from its files (pick any one of them)."""
    nodes = reload_ksampler(file=file, ckpt=ckpt, prefix=prefix)
    nodes[0] = Node(10, "RaiiafLoadBatch", [("file", file)], pos=(0, 600))
    return nodes


WORKFLOWS = {
    "raiiaf_save_ksampler": save_ksampler,
    "raiiaf_reload_ksampler": reload_ksampler,
    "raiiaf_save_sampler_custom_advanced": save_custom_advanced,
    "raiiaf_reload_sampler_custom_advanced": reload_custom_advanced,
    "raiiaf_save_hires": save_hires,
    "raiiaf_reload_hires": reload_hires,
    "raiiaf_reload_batch": reload_batch,
}


def render(name: str) -> str:
    return json.dumps(to_ui(WORKFLOWS[name]()), indent=2) + "\n"


if __name__ == "__main__":
    for name in WORKFLOWS:
        (HERE / f"{name}.json").write_text(render(name))
        print(f"wrote workflows/{name}.json", file=sys.stderr)
