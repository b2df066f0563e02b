"""``Script`` (every hook with the v1.10.1 signatures), ``AlwaysVisible``, the hook
argument classes, and ``ScriptRunner`` with the webui's call pattern: each always-on
script gets ``p.script_args[args_from:args_to]``, and an exception in a hook is
reported and generation goes on.

``MODE`` picks the webui being reproduced: ``"a1111-1.10"`` (default), ``"forge"``
(hires hook twice, ``p.modified_noise``, ``PostprocessImageArgs.index``) or
``"a1111-1.9"`` (no ``process_before_every_sampling``, set before loading scripts).
"""

from __future__ import annotations

import sys
from typing import Any

from modules import errors, script_callbacks, script_loading

MODE = "a1111-1.10"
AlwaysVisible = object()


class PostprocessImageArgs:
    def __init__(self, image: Any, index: int | None = None):
        self.image = image
        if index is not None:
            self.index = index


class PostSampleArgs:
    def __init__(self, samples: Any):
        self.samples = samples


class PostprocessBatchListArgs:
    def __init__(self, images: list):
        self.images = images


class MaskBlendArgs:
    def __init__(
        self, current_latent, nmask, init_latent, mask, blended_latent, denoiser=None, sigma=None
    ):
        self.current_latent = current_latent
        self.nmask = nmask
        self.init_latent = init_latent
        self.mask = mask
        self.blended_latent = blended_latent


class Script:
    name = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    group = None
    infotext_fields = None
    paste_field_names = None
    section = None
    controls = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def after_extra_networks_activate(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def before_hr(self, p, *args):
        pass

    def post_sample(self, p, ps, *args):
        pass

    def on_mask_blend(self, p, mba, *args):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch_list(self, p, pp, *args, **kwargs):
        pass

    def postprocess_image(self, p, pp, *args):
        pass

    def postprocess_maskoverlay(self, p, ppmo, *args):
        pass

    def postprocess_image_after_composite(self, p, pp, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def before_component(self, component, **kwargs):
        pass

    def after_component(self, component, **kwargs):
        pass

    def describe(self):
        return ""

    def elem_id(self, item_id):
        return f"{'img2img' if self.is_img2img else 'txt2img'}_{item_id}"


_removed: dict[tuple[type, str], Any] = {}


def _strip_for_mode() -> None:
    """A1111 1.6-1.9 lacked process_before_every_sampling (restored for other modes)."""
    for (cls, name), value in list(_removed.items()):
        setattr(cls, name, value)
        del _removed[(cls, name)]
    if MODE == "a1111-1.9":
        for cls in (Script, ScriptRunner):
            _removed[(cls, "process_before_every_sampling")] = cls.__dict__[
                "process_before_every_sampling"
            ]
            delattr(cls, "process_before_every_sampling")


current_basedir = None
scripts_data: list[tuple[type, str, str, Any]] = []


def basedir() -> str:
    return current_basedir


def list_scripts(subdir: str, extension: str) -> list[tuple[str, str]]:
    """(extension folder, script path) of every active extension's ``<subdir>/*<ext>``,
    built-in extensions first, each extension's files sorted by name."""
    from modules import extensions

    out = []
    for ext in extensions.active():
        out.extend((ext.path, path) for path in ext.list_files(subdir, extension))
    return out


def load_scripts() -> None:
    """Discover the extensions, clear the callbacks, then import every extension's
    top-level ``scripts/*.py`` with the extension folder at the front of ``sys.path``
    (restored afterwards) and collect the ``Script`` subclasses; a script that fails to
    load is reported and skipped, as the webui does."""
    global current_basedir
    from modules import extensions

    _strip_for_mode()
    extensions.list_extensions()
    script_callbacks.clear_callbacks()
    scripts_data.clear()
    for ext, path in list_scripts("scripts", ".py"):
        saved = sys.path
        try:
            sys.path = [ext, *sys.path]
            current_basedir = ext
            module = script_loading.load_module(path)
            for obj in module.__dict__.values():
                if isinstance(obj, type) and issubclass(obj, Script) and obj is not Script:
                    scripts_data.append((obj, path, ext, module))
        except Exception:
            errors.report(f"Error loading script: {path}", exc_info=True)
        finally:
            sys.path = saved
            current_basedir = None


class ScriptRunner:
    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self.alwayson_scripts: list[Script] = []
        self.selectable_scripts: list[Script] = []
        self.inputs: list[Any] = [None]
        self.is_img2img = False

    def initialize_scripts(self, is_img2img: bool) -> None:
        self.is_img2img = is_img2img
        for cls, path, _ext, _module in scripts_data:
            script = cls()
            script.filename = path
            script.is_txt2img = not is_img2img
            script.is_img2img = is_img2img
            visibility = script.show(is_img2img)
            if visibility is AlwaysVisible:
                script.alwayson = True
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
            elif visibility:
                self.scripts.append(script)
                self.selectable_scripts.append(script)

    def setup_ui(self) -> None:
        for script in self.alwayson_scripts:
            script.name = script.title().lower()
            controls = script.ui(script.is_img2img) or []
            script.controls = controls
            script.args_from = len(self.inputs)
            self.inputs.extend(controls)
            script.args_to = len(self.inputs)

    def default_args(self) -> list[Any]:
        return [0] + [getattr(c, "value", None) for c in self.inputs[1:]]

    def _run(self, hook: str, p: Any, *lead: Any, **kwargs: Any) -> None:
        for script in self.alwayson_scripts:
            fn = getattr(script, hook, None)
            if fn is None:
                continue
            try:
                args = p.script_args[script.args_from : script.args_to]
                fn(p, *lead, *args, **kwargs)
            except Exception:
                errors.report(f"Error running {hook}: {script.filename}", exc_info=True)

    def setup_scrips(self, p, *, is_ui=True):
        self._run("setup", p)

    def before_process(self, p):
        self._run("before_process", p)

    def process(self, p):
        self._run("process", p)

    def before_process_batch(self, p, **kwargs):
        self._run("before_process_batch", p, **kwargs)

    def after_extra_networks_activate(self, p, **kwargs):
        self._run("after_extra_networks_activate", p, **kwargs)

    def process_batch(self, p, **kwargs):
        self._run("process_batch", p, **kwargs)

    def process_before_every_sampling(self, p, **kwargs):
        self._run("process_before_every_sampling", p, **kwargs)

    def before_hr(self, p):
        self._run("before_hr", p)

    def post_sample(self, p, ps):
        self._run("post_sample", p, ps)

    def postprocess_batch(self, p, images, **kwargs):
        self._run("postprocess_batch", p, images=images, **kwargs)

    def postprocess_batch_list(self, p, pp, **kwargs):
        self._run("postprocess_batch_list", p, pp, **kwargs)

    def postprocess_image(self, p, pp):
        self._run("postprocess_image", p, pp)

    def postprocess_maskoverlay(self, p, ppmo):
        self._run("postprocess_maskoverlay", p, ppmo)

    def postprocess_image_after_composite(self, p, pp):
        self._run("postprocess_image_after_composite", p, pp)

    def postprocess(self, p, processed):
        self._run("postprocess", p, processed)
