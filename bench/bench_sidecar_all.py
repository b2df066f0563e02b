"""What the no-graph-change mode (RAIIAF_SIDECAR_ALL=1 / the settings panel's switch)
adds to a core SaveImage save of one 1024x1024 image: core SaveImage alone, SaveImage
with the pack's wrapper installed and the mode off, and with the mode on (PNG + .raiiaf
with the [1, 4, 128, 128] float32 initial noise, raw codec). Side by side in one process,
interleaved, median of RUNS. Run with `.venv/bin/python bench/bench_sidecar_all.py`.

The capture is made through the hook's real OUTER_SAMPLE wrapper with a stand-in
sampler (no model); the save is ComfyUI's real SaveImage.save_images, in-process, CPU.
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import benchlib

REPO = Path(__file__).resolve().parents[1]
COMFYUI = Path(os.environ.get("COMFYUI_PATH") or REPO / ".comfyui" / "ComfyUI")
SIZE = 1024
RUNS = 7


def load():
    """ComfyUI's nodes and the pack's modules, in-process (CPU only)."""
    sys.path.insert(0, str(REPO))
    sys.path.append(str(COMFYUI))
    from comfy.cli_args import args

    args.cpu = True
    import nodes

    autosave = importlib.import_module("comfy_nodes.autosave")
    capture = importlib.import_module("comfy_nodes.capture")
    return nodes, autosave, capture


def prompt(seed: int) -> dict:
    """The default txt2img graph (tests/comfyui/harness.py): KSampler "5" -> VAEDecode "6" ->
    SaveImage "7", at SIZE², 20 steps."""
    sys.path.insert(0, str(REPO / "tests" / "comfyui"))
    from harness import default_txt2img  # standard library only; never imports ComfyUI

    return default_txt2img(
        "model.safetensors", seed, 20, SIZE, SIZE, positive="a lighthouse", prefix="b"
    )


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    nodes, autosave, capture = load()
    import folder_paths
    import torch

    torch.set_num_threads(1)
    host = capture.host
    autosave.install()
    capture.capture_wanted.append(autosave.wants_capture)
    wrapped = nodes.SaveImage.save_images
    core = wrapped.__wrapped__

    # A photo-like image: smooth gradients plus grain (PNG neither trivial nor random).
    y, x = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
    base = torch.stack([x, y, (x + y) / 2], dim=-1)
    image = (base + 0.03 * torch.randn(base.shape, generator=torch.manual_seed(0))).clamp(0, 1)
    images = image.unsqueeze(0)
    shape = (1, 4, SIZE // 8, SIZE // 8)
    sigmas = torch.linspace(14.6, 0.0, 21)

    class Executor:
        class_obj = None

        def __call__(self, noise, latent, sampler, sigmas, *args, **kwargs):
            return torch.randn_like(latent)

    state = {"pid": "", "node": "5", "seed": 0}
    host.current_context = lambda: (state["pid"], state["node"], 0)
    host.running_prompt = lambda pid: prompt(state["seed"])

    def one(kind: str, seed: int, out: str) -> float:
        """Seconds the save takes (the capture before it is not timed: it happens at
        sampling time, and bench_capture.py measures it)."""
        os.environ[autosave.ENV] = "1" if kind == "on" else "0"
        state.update(pid=f"{kind}-{seed}", seed=seed, node="5")
        noise = torch.randn(shape, generator=torch.manual_seed(seed))
        capture.global_wrapper(Executor(), noise, torch.zeros(shape), None, sigmas, seed=seed)
        state["node"] = "7"
        node = nodes.SaveImage()
        node.output_dir = out
        fn = core if kind == "core" else wrapped
        p = prompt(seed)
        t = time.perf_counter()
        fn(node, images, f"{kind}_{seed}", prompt=p, extra_pnginfo={"workflow": {}})
        return time.perf_counter() - t

    kinds = ("core", "off", "on")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as out:
        folder_paths.set_output_directory(out)
        for k in kinds:  # warm-up: imports, first-touch allocations
            one(k, 99, out)
        for seed in range(RUNS):
            for k in kinds:  # interleaved: load on the machine hits all rows alike
                times[k].append(one(k, seed, out))
        files = os.listdir(out)
        png = os.path.getsize(os.path.join(out, "on_0_00001_.png"))
        side = os.path.getsize(os.path.join(out, "on_0_00001_.raiiaf"))
        assert not any(f.startswith(("core", "off")) and f.endswith(".raiiaf") for f in files)

    labels = {
        "core": "core SaveImage alone (no pack)",
        "off": "SaveImage, pack installed, mode off",
        "on": "SaveImage, mode on (PNG + .raiiaf)",
    }
    ref = statistics.median(times["core"])
    print(
        f"save cost of one {SIZE}x{SIZE} image (median of {RUNS}, interleaved; "
        f"PNG {png / 2**20:.2f} MiB, .raiiaf {side / 2**20:.2f} MiB)"
    )
    print()
    rows = []
    for k in kinds:
        med = statistics.median(times[k])
        rows.append(
            [labels[k], f"{med * 1e3:.1f}", f"{min(times[k]) * 1e3:.1f}", f"{med / ref:.2f}x"]
        )
    print(benchlib.md_table(["save", "median ms", "min ms", "vs core"], rows, "lrrr", pad=True))


if __name__ == "__main__":
    main()
