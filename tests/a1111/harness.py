"""Driving the harness webui (``webui/``) with the extension installed.

``Webui(root, mode=...)`` puts ``webui/`` (and the gradio stand-in) on ``sys.path``
like the webui's own process has its root there, installs this repository as
``<root>/extensions/raiiaf-rs`` (links to the working tree's files, or a given ``git clone``),
loads every extension's ``scripts/*.py`` through the webui's discovery and loader (in
Forge mode after the built-in extensions of ``webui/extensions-builtin-forge/``), builds
the txt2img and img2img tabs (the built-in seed/steps/sampler/size components first, then
the always-on scripts' UIs),
and runs generations with ``process_images`` exactly as a UI click does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXTENSION_NAME = "raiiaf-rs"
WEBUI_DIR = HERE / "webui"
FORGE_BUILTIN_DIR = WEBUI_DIR / "extensions-builtin-forge"
STUBS_DIR = HERE / "stubs"

#: The tab components the webui creates before the scripts' UIs (elem_id suffixes).
BUILTIN_ELEMS = {
    "seed": -1,
    "subseed": -1,
    "subseed_strength": 0.0,
    "steps": 20,
    "sampling": "DPM++ 2M",
    "scheduler": "Automatic",
    "cfg_scale": 7.0,
    "width": 512,
    "height": 512,
    "denoising_strength": 0.75,
    "prompt": "",
    "neg_prompt": "",
}
#: The txt2img tab's hires-fix components (full elem_ids, as in 1.10's ui.py).
HIRES_ELEMS = {
    "txt2img_hr": False,
    "txt2img_hr_upscaler": "Latent",
    "txt2img_hires_steps": 0,
    "txt2img_hr_scale": 2.0,
    "txt2img_hr_resize_x": 0,
    "txt2img_hr_resize_y": 0,
    "hr_sampler": "Use same sampler",
    "hr_scheduler": "Use same scheduler",
}
_OWN_MODULES = ("modules", "launch", "gradio", "lib_raiiaf", "k_diffusion")


def link_working_tree(target: Path) -> None:
    """``target`` as a clone of the working tree would look: a folder holding links to
    the repository's top-level files and folders that git tracks or would track (not
    target/, .venv...), so uncommitted work is tested and build outputs are not seen."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = sorted({line.split("/", 1)[0] for line in out.splitlines() if line})
    target.mkdir(parents=True)
    for name in names:
        if (REPO / name).exists():
            (target / name).symlink_to(REPO / name)


def install_paths() -> None:
    for path in (str(STUBS_DIR), str(WEBUI_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)


def uninstall() -> None:
    """Forget the harness's modules (so other test packages see a clean interpreter)."""
    for name in list(sys.modules):
        if name.split(".")[0] in _OWN_MODULES:
            del sys.modules[name]
    for path in (str(STUBS_DIR), str(WEBUI_DIR)):
        while path in sys.path:
            sys.path.remove(path)


def raiiaf_args(**kwargs: Any) -> list[Any]:
    """The extension's script args in order (what the UI or the API passes)."""
    order = [
        "enabled",
        "save",
        "embed_image",
        "store_latent",
        "replay_files",
        "on_mismatch",
        "restore_seeds",
    ]
    defaults = {
        "enabled": True,
        "save": True,
        "embed_image": True,
        "store_latent": False,
        "replay_files": None,
        "on_mismatch": "Stop with a message",
        "restore_seeds": True,
    }
    defaults.update(kwargs)
    unknown = set(kwargs) - set(order)
    assert not unknown, unknown
    return [defaults[k] for k in order]


@dataclass
class Result:
    processed: Any
    p: Any
    outdir: Path
    saved: list[Path] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        """The main images saved, in order (no grid, no -before-/-mask copies)."""
        out = []
        for path in self.saved:
            stem = path.stem
            secondary = "-before-" in stem or "-mask" in stem or path.parent.name == "grids"
            if path.suffix == ".png" and not secondary:
                out.append(path)
        return out

    def sidecar(self, image: Path) -> Path:
        return image.with_suffix(".raiiaf")


def pixels(path_or_bytes: Any) -> np.ndarray:
    from PIL import Image

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        return np.asarray(im.convert("RGB")).copy()


class Webui:
    def __init__(
        self,
        root: Path,
        mode: str = "a1111-1.10",
        cmd_opts: dict | None = None,
        extension: Path | None = None,
    ):
        """``extension``: a folder already in ``<root>/extensions/`` (a clone); by default
        ``<root>/extensions/raiiaf-rs`` links to this working tree."""
        install_paths()
        import gradio
        from modules import (
            errors,
            paths_internal,
            script_callbacks,
            scripts,
            sd_models,
            shared,
        )

        self.root = Path(root)
        paths_internal.set_data_path(str(self.root))
        paths_internal.extensions_builtin_dir = str(
            FORGE_BUILTIN_DIR if mode == "forge" else self.root / "extensions-builtin"
        )
        if extension is None:
            extension = self.root / "extensions" / EXTENSION_NAME
            if not extension.exists():
                link_working_tree(extension)
        self.extension = Path(extension)
        # Another copy of the extension may have been loaded before: its helpers go.
        for name in list(sys.modules):
            if name.split(".")[0] == "lib_raiiaf":
                del sys.modules[name]
        self.scripts = scripts
        self.shared = shared
        self.errors = errors
        errors.reported.clear()
        scripts.MODE = mode
        shared.reset()
        shared.cmd_opts.__dict__.clear()
        shared.cmd_opts.__dict__.update(cmd_opts or {})
        shared.opts.outdir_samples = str(self.root)  # the webui's output folder
        shared.sd_model = sd_models.load_model()
        scripts.load_scripts()
        gradio._after_component_hooks[:] = [script_callbacks.after_component_callback]
        self.tabs: dict[str, Any] = {}
        self.components: dict[str, dict[str, Any]] = {}
        for is_img2img in (False, True):
            tab = "img2img" if is_img2img else "txt2img"
            with gradio.Blocks():
                self.components[tab] = {
                    k: gradio.Number(v, elem_id=f"{tab}_{k}") for k, v in BUILTIN_ELEMS.items()
                }
                if not is_img2img:
                    for elem_id, v in HIRES_ELEMS.items():
                        self.components[tab][elem_id] = gradio.Number(v, elem_id=elem_id)
                runner = scripts.ScriptRunner()
                runner.initialize_scripts(is_img2img)
                runner.setup_ui()
            self.tabs[tab] = runner

    def lib(self, name: str):
        """A module of the loaded extension's ``lib_raiiaf`` package."""
        import importlib

        return importlib.import_module(f"lib_raiiaf.{name}")

    def script(self, tab: str = "txt2img"):
        (script,) = [s for s in self.tabs[tab].alwayson_scripts if s.title() == "raiiaf"]
        return script

    def _run(self, cls, tab: str, raiiaf: dict | None, outdir: str, **kwargs: Any) -> Result:
        from modules import processing, script_callbacks

        runner = self.tabs[tab]
        args = runner.default_args()
        loaded = [s for s in runner.alwayson_scripts if s.title() == "raiiaf"]
        for script in loaded:  # none when the extension did not load
            args[script.args_from : script.args_to] = raiiaf_args(**(raiiaf or {}))
        out = self.root / outdir
        p = cls(
            outpath_samples=str(out),
            outpath_grids=str(out / "grids"),
            scripts=runner,
            script_args=args,
            **kwargs,
        )
        saved: list[Path] = []

        def record(params):
            saved.append(Path(params.filename))

        script_callbacks.on_image_saved(record)
        try:
            with closing(p):  # as the webui's txt2img/img2img and its API
                processed = processing.process_images(p)
        finally:
            script_callbacks._callbacks["image_saved"].remove(record)
        return Result(processed=processed, p=p, outdir=out, saved=saved)

    def txt2img(self, raiiaf: dict | None = None, outdir: str = "out", **kwargs: Any) -> Result:
        from modules import processing

        return self._run(
            processing.StableDiffusionProcessingTxt2Img, "txt2img", raiiaf, outdir, **kwargs
        )

    def img2img(self, raiiaf: dict | None = None, outdir: str = "out", **kwargs: Any) -> Result:
        from modules import processing

        return self._run(
            processing.StableDiffusionProcessingImg2Img, "img2img", raiiaf, outdir, **kwargs
        )


def files_in(folder: Path, suffix: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == suffix) if folder.is_dir() else []


def read_bytes(path: os.PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()
