"""Memory the ComfyUI capture hook keeps: RSS over 20 prompts sampling a
(1, 16, 21, 60, 104) float32 video latent (8.4 MB), through the hook's real
OUTER_SAMPLE wrapper (comfy_nodes/capture.py), with and without a raiiaf save node in
the prompt. Run with `make bench` or `.venv/bin/python bench/bench_capture.py`.

The sampler itself is a stand-in (returns a fresh latent): only what the hook keeps is
measured. Each prompt has another seed, so each capture is kept under its own key, as
when a user queues new seeds; the byte bound (RAIIAF_CAPTURE_MAX_MB) caps the total.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import subprocess
import sys
from pathlib import Path

import benchlib

REPO = Path(__file__).resolve().parents[1]
COMFYUI = Path(os.environ.get("COMFYUI_PATH") or REPO / ".comfyui" / "ComfyUI")
SHAPE = (1, 16, 21, 60, 104)
PROMPTS = 20


def rss_mb() -> float:
    """Resident memory after handing freed heap back (glibc keeps freed chunks of
    8 MB tensors mapped otherwise, which says more about malloc than about the hook)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_capture():
    """comfy_nodes.capture inside ComfyUI's import path (CPU only)."""
    sys.path.insert(0, str(REPO))
    sys.path.append(str(COMFYUI))
    from comfy.cli_args import args

    args.cpu = True
    return importlib.import_module("comfy_nodes.capture")


def prompt(seed: int, save: str | None, final: bool) -> dict:
    p = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "video.safetensors"}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": seed}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0]}},
    }
    if save:
        p["7"] = {
            "class_type": save,
            "inputs": {"images": ["6", 0], "save_final_latent": final},
        }
    return p


def scenario(capture, torch, save: str | None, final: bool, hook: bool) -> tuple[float, float]:
    """(RSS growth in MB after PROMPTS prompts, MB the hook holds)."""
    host = capture.host
    capture._store.clear()
    capture._by_sig.clear()
    capture._bytes = 0
    capture._plans.clear()
    gc.collect()

    class Executor:
        class_obj = None

        def __call__(self, noise, latent, sampler, sigmas, *args, **kwargs):
            return torch.randn_like(latent)

    sigmas = torch.linspace(14.6, 0.0, 21)
    state = {"seed": 0}
    host.current_context = lambda: (f"prompt-{state['seed']}", "5", 0)
    host.running_prompt = lambda pid: prompt(state["seed"], save, final)
    # Warm-up: allocator pools, first-touch costs.
    for seed in range(2):
        state["seed"] = 10_000 + seed
        noise, latent = torch.randn(SHAPE), torch.zeros(SHAPE)
        Executor()(noise, latent, None, sigmas)
    capture._store.clear()
    capture._by_sig.clear()
    capture._bytes = 0
    gc.collect()
    before = rss_mb()
    for seed in range(PROMPTS):
        state["seed"] = seed
        noise, latent = torch.randn(SHAPE), torch.zeros(SHAPE)
        if hook:
            capture.global_wrapper(Executor(), noise, latent, None, sigmas, seed=seed)
        else:
            Executor()(noise, latent, None, sigmas)
        del noise, latent
    gc.collect()
    return rss_mb() - before, capture.stored_bytes() / 2**20


ROWS = [
    ("no hook (baseline)", None, False, False),
    ("hook, no raiiaf save node", "SaveImage", False, True),
    ("hook, raiiaf save node", "RaiiafSaveImage", False, True),
    ("hook, raiiaf save node, save_final_latent on", "RaiiafSaveImage", True, True),
]


def one(row: int) -> None:
    """One scenario in this (fresh) process: prints RSS growth and MB kept."""
    capture = load_capture()
    import torch

    torch.set_num_threads(1)
    _label, save, final, hook = ROWS[row]
    grew, kept = scenario(capture, torch, save, final, hook)
    print(f"{grew} {kept} {capture.MAX_BYTES / 2**20}")


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mb = 1
    for n in SHAPE:
        mb *= n
    print(
        f"capture hook memory: {PROMPTS} prompts, latent {SHAPE} float32 ({mb * 4 / 2**20:.1f} MiB)"
    )
    print("(each row in a fresh process; RSS growth over the prompts, after malloc_trim)")
    print()
    table = benchlib.Table(
        ["prompt", "bound MiB", "RSS growth MiB", "kept MiB"], "lrrr", [46, 9, 14, 8]
    )
    print(table.head())
    for bound in (None, "64"):
        for row, (label, *_rest) in enumerate(ROWS):
            env = dict(os.environ)
            if bound:
                env["RAIIAF_CAPTURE_MAX_MB"] = bound
            done = subprocess.run(
                [sys.executable, __file__, "--one", str(row)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            grew, kept, limit = (float(x) for x in done.stdout.split()[-3:])
            print(table.row([label, f"{limit:.0f}", f"{grew:.1f}", f"{kept:.1f}"]))


def listing() -> None:
    """The loader's file list (comfy_nodes/paths.py) with 10,000 files in output/:
    the walk before (os.walk, realpath per file, sorted by name) and now (scandir,
    one stat per file, newest first)."""
    import statistics
    import tempfile

    capture = load_capture()  # puts ComfyUI on the path
    del capture
    import folder_paths

    paths = importlib.import_module("comfy_nodes.paths")

    def before(root: str) -> list[str]:
        found = []
        for dirpath, _dirs, files in os.walk(root, followlinks=False):
            for f in files:
                if f.endswith(".raiiaf"):
                    full = os.path.join(dirpath, f)
                    if paths._inside(full, root):
                        found.append(os.path.relpath(full, root))
        return sorted(found)

    print()
    print("loader list, 10,000 .raiiaf files in output/ (median of 5, warm cache)")
    print()
    head = ("files", "before (os.walk + realpath) ms", "now (scandir, newest first) ms")
    table = benchlib.Table(head, "rrr", [6, 30, 30])
    print(table.head())
    for n in (1_000, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "output")
            os.makedirs(os.path.join(out, "sub"))
            for i in range(n):
                folder = out if i % 2 else os.path.join(out, "sub")
                open(os.path.join(folder, f"ComfyUI_{i:05}_.raiiaf"), "wb").close()
            folder_paths.set_output_directory(out)
            folder_paths.set_input_directory(os.path.join(tmp, "input"))
            times = {}
            for name, fn in (("before", functools.partial(before, out)), ("now", paths.list_files)):
                runs, got = benchlib.timings(fn, 5)
                assert len(got) == n
                times[name] = statistics.median(runs) * 1e3
            print(table.row([n, f"{times['before']:.1f}", f"{times['now']:.1f}"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        one(int(sys.argv[2]))
    else:
        main()
        listing()
