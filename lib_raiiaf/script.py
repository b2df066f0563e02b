"""The webui script: its UI, its hooks, and the callbacks ``scripts/raiiaf.py``
registers (that file only imports this module, so that a missing ``raiiaf_rs`` is
reported instead of breaking the webui's script loading)."""

from __future__ import annotations

import gradio as gr
from modules import scripts

from . import core, replay, rng_wrap, run_state, save_button, sidecar

try:  # A1111 >= 1.7 and Forge
    from modules.ui_components import InputAccordion
except ImportError:  # older: an accordion with a checkbox inside
    InputAccordion = None

#: ``process_before_every_sampling`` exists from A1111 1.10.0 (and in Forge); before it,
#: the initial noise is taken by wrapping ``p.rng``.
HAS_SAMPLING_HOOK = hasattr(scripts.Script, "process_before_every_sampling")
#: ``postprocess_image_after_composite`` (1.8.0+) gives the very image object saved next.
HAS_COMPOSITE_HOOK = hasattr(scripts.Script, "postprocess_image_after_composite")

#: Order of the script's arguments (UI values; API callers pass them in this order under
#: ``alwayson_scripts["raiiaf"]["args"]``).
ARGS = tuple(run_state.Options.__dataclass_fields__)

#: The UI components "apply stored settings" fills, by elem_id suffix, per tab.
SETTING_ELEMS = {
    "seed": "seed",
    "subseed": "subseed",
    "subseed_strength": "subseed_strength",
    "steps": "steps",
    "sampler": "sampling",
    "scheduler": "scheduler",
    "cfg_scale": "cfg_scale",
    "width": "width",
    "height": "height",
    "denoising_strength": "denoising_strength",
    "prompt": "prompt",
    "negative_prompt": "neg_prompt",
}
#: The txt2img tab's hires-fix components (full elem_ids, as in 1.10's ui.py).
HIRES_ELEMS = {
    "enable_hr": "txt2img_hr",
    "hr_upscaler": "txt2img_hr_upscaler",
    "hr_second_pass_steps": "txt2img_hires_steps",
    "hr_scale": "txt2img_hr_scale",
    "hr_resize_x": "txt2img_hr_resize_x",
    "hr_resize_y": "txt2img_hr_resize_y",
    "hr_sampler_name": "hr_sampler",
    "hr_scheduler": "hr_scheduler",
}


def _elem_ids(tab: str) -> dict[str, str]:
    out = {k: f"{tab}_{v}" for k, v in SETTING_ELEMS.items()}
    if tab == "txt2img":
        out.update(HIRES_ELEMS)
    return out


_components: dict[str, object] = {}


def remember_component(component, **kwargs):
    elem_id = kwargs.get("elem_id") or getattr(component, "elem_id", None)
    if isinstance(elem_id, str):
        _components[elem_id] = component


def apply_stored_settings(files, keys: list[str]):
    """Values for the ``keys`` components (seed, steps, sampler, cfg, size...) from the
    first file, then a status line; ``gr.update()`` (no change) where the file has none."""
    try:
        sources = replay.load_sources(files)
    except replay.ReplayError as e:
        return [gr.update() for _ in keys] + [f"raiiaf: {e}"]
    if not sources:
        return [gr.update() for _ in keys] + ["raiiaf: upload a .raiiaf file first"]
    stored = replay.stored_settings(sources[0])
    values = [gr.update(value=stored[k]) if k in stored else gr.update() for k in keys]
    summary = ", ".join(f"{k}: {stored[k]}" for k in keys if k in stored)
    status = f"raiiaf: applied from {sources[0].name}: {summary}"
    try:
        others = [d for d in replay.setting_differences(sources[:1], None) if d.kind == "opts"]
    except replay.ReplayError:
        others = []
    if others:
        status += (
            ". Settings of the file that differ from this webui's (restored for the "
            "generation with 'use the stored seeds and settings'): "
            + "; ".join(d.text() for d in others)
        )
    return [*values, status]


class RaiiafScript(scripts.Script):
    def title(self):
        return "raiiaf"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        tab = "img2img" if is_img2img else "txt2img"
        label = "raiiaf: .raiiaf noise files (save / replay)"
        if InputAccordion is not None:
            accordion = InputAccordion(False, label=label, elem_id=f"{tab}_raiiaf")
            enabled = accordion
        else:
            accordion = gr.Accordion(label, open=False)
            enabled = None
        with accordion:
            if enabled is None:
                enabled = gr.Checkbox(False, label="Enable", elem_id=f"{tab}_raiiaf_enabled")
            with gr.Row():
                save = gr.Checkbox(
                    True, label="Save a .raiiaf beside each image", elem_id=f"{tab}_raiiaf_save"
                )
                embed = gr.Checkbox(True, label="Embed the image", elem_id=f"{tab}_raiiaf_embed")
                latent = gr.Checkbox(
                    False, label="Store the final latent", elem_id=f"{tab}_raiiaf_latent"
                )
            files = gr.File(
                label="Replay: .raiiaf file(s), one per image of the run, in order",
                file_count="multiple",
                file_types=[".raiiaf"],
                type="binary",
                elem_id=f"{tab}_raiiaf_files",
            )
            with gr.Row():
                on_mismatch = gr.Radio(
                    list(replay.ON_MISMATCH),
                    value=replay.STOP,
                    label="If a file does not fit (shape, damaged, altered)",
                    elem_id=f"{tab}_raiiaf_on_mismatch",
                )
                restore = gr.Checkbox(
                    True,
                    label=(
                        "Use the stored seeds and settings (ENSD, RNG source, eta, sigma "
                        "noise...; ancestral/SDE samplers and hires need them)"
                    ),
                    elem_id=f"{tab}_raiiaf_restore_seeds",
                )
            with gr.Row():
                apply = gr.Button("Apply stored settings", elem_id=f"{tab}_raiiaf_apply")
                status = gr.Markdown("", elem_id=f"{tab}_raiiaf_status")
        # The tab's own components, created before the scripts' UI (elem_ids as in 1.10).
        elem_ids = _elem_ids(tab)
        keys = [k for k, e in elem_ids.items() if e in _components]
        targets = [_components[elem_ids[k]] for k in keys]
        apply.click(
            fn=lambda f: apply_stored_settings(f, keys),
            inputs=[files],
            outputs=[*targets, status],
        )
        self.infotext_fields = []
        return [enabled, save, embed, latent, files, on_mismatch, restore]

    def before_process(self, p, *args):
        core.prepare(p, run_state.Options.from_args(args))

    def process(self, p, *args):
        core.start(p, getattr(p, "raiiaf", None))

    def before_process_batch(self, p, *args, **kwargs):
        core.before_batch(p, getattr(p, "raiiaf", None), HAS_SAMPLING_HOOK)

    def process_before_every_sampling(self, p, *args, **kwargs):
        which = "hires" if getattr(p, "is_hr_pass", False) else "first"
        core.on_noise(p, getattr(p, "raiiaf", None), which, kwargs.get("noise"), kwargs.get("x"))

    def before_hr(self, p, *args):
        # Webuis without process_before_every_sampling (1.6-1.9): a stopped run's hires
        # pass (the Hires fix button) stops at its sampler.
        run = getattr(p, "raiiaf", None)
        if run is not None and run.stop is not None:
            rng_wrap.stop_sampler(p, run)

    def post_sample(self, p, ps, *args):
        core.on_samples(p, getattr(p, "raiiaf", None), getattr(ps, "samples", None))

    def postprocess_image(self, p, pp, *args):
        sidecar.tag_image(p, getattr(p, "raiiaf", None), getattr(pp, "image", None))

    def postprocess_image_after_composite(self, p, pp, *args):
        sidecar.tag_image(p, getattr(p, "raiiaf", None), getattr(pp, "image", None))

    def postprocess(self, p, processed, *args):
        run = getattr(p, "raiiaf", None)
        core.finish(p, run)
        sidecar.check_saved(p, run)
        if run is not None and run.options.save and run.stop is None:
            save_button.remember(p, run)
        if run is None or not run.warnings:
            return
        if hasattr(processed, "comments"):  # shown under the images in the UI
            extra = "\n".join(w for w in run.warnings if w not in processed.comments)
            processed.comments = "\n".join(x for x in (processed.comments, extra) if x)
        params = getattr(processed, "extra_generation_params", None)
        if isinstance(params, dict):  # in the API response's info
            params["raiiaf warnings"] = list(run.warnings)


def on_image_saved(params):
    sidecar.on_saved(params, tagging=HAS_COMPOSITE_HOOK)


def on_before_image_saved(params):
    sidecar.before_saved(params)
