"""``opts``, ``cmd_opts``, ``state``, the loaded model. Values are the webui's defaults
where the extension reads them; tests change them per case."""

from __future__ import annotations

from types import SimpleNamespace

from modules import devices

DEFAULT_OPTS = {
    "randn_source": "GPU",
    "eta_noise_seed_delta": 0,
    "sgm_noise_multiplier": False,
    "no_dpmpp_sde_batch_determinism": False,
    "img2img_extra_noise": 0.0,
    "initial_noise_multiplier": 1.0,
    "eta_ancestral": 1.0,
    "eta_ddim": 0.0,
    "always_discard_next_to_last_sigma": False,
    "disabled_extensions": [],
    "outdir_samples": "",
    "outdir_txt2img_samples": "outputs/txt2img-images",
    "outdir_img2img_samples": "outputs/img2img-images",
    "outdir_grids": "",
    "outdir_txt2img_grids": "outputs/txt2img-grids",
    "outdir_img2img_grids": "outputs/img2img-grids",
    "outdir_save": "log/images",
    "outdir_init_images": "outputs/init-images",
    "temp_dir": "",
    "s_churn": 0.0,
    "s_tmin": 0.0,
    "s_tmax": 0.0,
    "s_noise": 1.0,
    "CLIP_stop_at_last_layers": 1,
    "samples_save": True,
    "samples_format": "png",
    "samples_filename_pattern": "",
    "save_images_add_number": True,
    "save_images_replace_action": "Replace",
    "enable_pnginfo": True,
    "save_txt": False,
    "grid_save": True,
    "grid_format": "png",
    "grid_only_if_multiple": True,
    "save_images_before_highres_fix": False,
    "save_mask": False,
    "save_mask_composite": False,
    "save_incomplete_images": False,
    "cross_attention_optimization": "Automatic",
}


class Options:
    """The webui's ``Options``: ``data`` holds what ``config.json`` held (nothing on a fresh
    install), a key missing there reads as its default; ``set()`` is how the webui applies
    ``override_settings`` (``is_api=True``, no callbacks)."""

    def __init__(self, defaults: dict) -> None:
        object.__setattr__(self, "defaults", defaults)
        object.__setattr__(self, "data", {})

    def __getattr__(self, key):
        data = object.__getattribute__(self, "data")
        if key in data:
            return data[key]
        defaults = object.__getattribute__(self, "defaults")
        if key in defaults:
            return defaults[key]
        raise AttributeError(key)

    def __setattr__(self, key, value) -> None:
        self.data[key] = value

    def set(self, key, value, is_api=False, run_callbacks=True) -> bool:
        if self.data.get(key, None) == value:
            return False
        setattr(self, key, value)
        return True

    def get_default(self, key):
        return self.defaults.get(key)


opts = Options(DEFAULT_OPTS)
cmd_opts = SimpleNamespace()
device = devices.device
xformers_available = False
sd_model = None


class State:
    def __init__(self) -> None:
        self.interrupted = False
        self.skipped = False
        self.stopping_generation = False

    def interrupt(self) -> None:
        self.interrupted = True


state = State()


def reset() -> None:
    """Back to defaults (between tests)."""
    opts.data.clear()  # a fresh install: no config.json
    state.__init__()
