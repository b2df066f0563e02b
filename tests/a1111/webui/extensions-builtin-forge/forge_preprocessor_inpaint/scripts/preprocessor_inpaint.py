"""Forge's built-in inpaint preprocessor, as far as the noise goes: in
``process_before_every_sampling`` it sets ``p.modified_noise`` to the drawn noise plus
the inpaint latent over the model's largest sigma (the ControlNet "inpaint" preprocessors
of ``extensions-builtin/forge_preprocessor_inpaint``). Active when a test puts a latent in
``p.harness_inpaint_latent`` (standing in for the ControlNet unit's settings).

Built-in extensions load before the user's, so this hook runs before any extension's."""

from __future__ import annotations

from modules import scripts, sd_models


class InpaintPreprocessorNoise(scripts.Script):
    def title(self):
        return "forge inpaint preprocessor (harness)"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return []

    def process_before_every_sampling(self, p, *args, **kwargs):
        latent = getattr(p, "harness_inpaint_latent", None)
        if latent is None or getattr(p, "is_hr_pass", False):
            return
        noise = kwargs["noise"]
        p.modified_noise = noise + latent.to(noise) / sd_models.SIGMA_MAX
