"""What the extension reads from the webui: versions, model identity, RNG options,
safe command-line flags. Every read is defensive (``getattr`` with defaults): the
attributes differ between A1111 1.6-1.10, its dev branch and Forge."""

from __future__ import annotations

import functools
import importlib
import math
import os
import sys
from typing import Any

from raiiaf_rs import host as raiiaf_host

#: Command-line flags that may change pixels and identify nothing: recorded as is.
#: Everything else in ``shared.cmd_opts`` (``--gradio-auth``, ``--api-auth``, paths,
#: tokens, ports, ...) is never read.
SAFE_FLAGS = (
    "xformers",
    "force_enable_xformers",
    "opt_sdp_attention",
    "opt_sdp_no_mem_attention",
    "opt_split_attention",
    "opt_sub_quad_attention",
    "disable_opt_split_attention",
    "no_half",
    "no_half_vae",
    "upcast_sampling",
    "precision",
    "use_cpu",
    "medvram",
    "lowvram",
    "opt_channelslast",
)

#: ``opts`` keys that decide the noise or the sampler's use of it (the webui's "Sampler
#: parameters" settings, the noise source and seed delta, Forge's reproduction mode).
#: All are recorded; replay restores them (or reports each difference).
NOISE_OPTS = (
    "randn_source",
    "eta_noise_seed_delta",
    "sgm_noise_multiplier",
    "no_dpmpp_sde_batch_determinism",
    "img2img_extra_noise",
    "initial_noise_multiplier",
    "eta_ancestral",
    "eta_ddim",
    "ddim_discretize",
    "s_churn",
    "s_tmin",
    "s_tmax",
    "s_noise",
    "s_min_uncond",
    "k_sched_type",
    "sigma_min",
    "sigma_max",
    "rho",
    "always_discard_next_to_last_sigma",
    "use_old_karras_scheduler_sigmas",
    "uni_pc_variant",
    "uni_pc_skip_type",
    "uni_pc_order",
    "uni_pc_lower_order_final",
    "sd_noise_schedule",
    "skip_early_cond",
    "beta_dist_alpha",
    "beta_dist_beta",
    "forge_try_reproduce",
    "CLIP_stop_at_last_layers",
    # Settings that change pixels through the prompt, the model or the VAE (each is in
    # the webui's infotext, or changes the image without being there).
    "emphasis",
    "use_old_emphasis_implementation",
    "tiling",
    "sd_vae_encode_method",
    "sd_vae_decode_method",
    "token_merging_ratio",
    "token_merging_ratio_img2img",
    "token_merging_ratio_hr",
    "pad_cond_uncond",
    "pad_cond_uncond_v0",
    "use_old_scheduling",
    "use_downcasted_alpha_bar",
    "s_min_uncond_all",
    "inpainting_mask_weight",
    "img2img_background_color",
    "sd_sampling",
)

#: Folder settings of the webui's outputs (txt2img/img2img/extras samples and grids, the
#: "Save" button's folder, init images): replay files named by path must lie in one of
#: them (or in the upload folder).
OUTDIR_OPTS = (
    "outdir_samples",
    "outdir_txt2img_samples",
    "outdir_img2img_samples",
    "outdir_extras_samples",
    "outdir_grids",
    "outdir_txt2img_grids",
    "outdir_img2img_grids",
    "outdir_save",
    "outdir_init_images",
)


def module(name: str) -> Any:
    """A webui module, or None where this webui version lacks it."""
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    try:
        return importlib.import_module(name)
    except Exception:  # absent or broken in this webui version: the fact is optional
        return None


def opts() -> Any:
    shared = module("modules.shared")
    return getattr(shared, "opts", None)


def opt(name: str, default: Any = None) -> Any:
    return getattr(opts(), name, default)


def is_forge() -> bool:
    if module("modules_forge") is not None:
        return True
    return str(version() or "").startswith("f")


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[str | None, str | None]:
    lu = module("modules.launch_utils")
    tag = commit = None
    try:
        tag = lu.git_tag() if lu is not None else None
    except Exception:  # no git, no CHANGELOG: unknown version
        tag = None
    try:
        commit = lu.commit_hash() if lu is not None else None
    except Exception:  # not a git checkout
        commit = None
    return (str(tag) if tag else None, str(commit) if commit and commit != "<none>" else None)


def version() -> str | None:
    return _versions()[0]


def commit() -> str | None:
    return _versions()[1]


def json_value(value: Any) -> Any:
    """A setting as JSON can hold it (an infinite float as the string "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def noise_opts() -> dict[str, Any]:
    o = opts()
    out = {}
    for key in NOISE_OPTS:
        value = getattr(o, key, None)
        if isinstance(value, (bool, int, float, str)):
            out[key] = json_value(value)
    return out


def has_opt(name: str) -> bool:
    o = opts()
    data = getattr(o, "data", None)
    if isinstance(data, dict) and name in data:
        return True
    return hasattr(o, name)


def allowed_dirs() -> list[str]:
    """Real paths of the folders replay files may be read from: the webui's output
    folders (``outdir_*`` settings, relative ones against the working directory like the
    webui's own saves, and ``<data dir>/outputs``) and gradio's upload folder."""
    import tempfile

    folders = []
    for key in OUTDIR_OPTS:
        value = opt(key)
        if isinstance(value, str) and value.strip():
            folders.append(value.strip())
    paths = module("modules.paths_internal") or module("modules.paths")
    for attr in ("default_output_dir",):
        value = getattr(paths, attr, None)
        if isinstance(value, str) and value:
            folders.append(value)
    data_path = getattr(paths, "data_path", None)
    if isinstance(data_path, str) and data_path:
        folders.append(os.path.join(data_path, "outputs"))
    temp = opt("temp_dir")
    if isinstance(temp, str) and temp.strip():
        folders.append(temp.strip())
    folders.append(
        os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")
    )
    out = []
    for folder in folders:
        real = os.path.realpath(os.path.abspath(folder))
        if real not in out:
            out.append(real)
    return out


def safe_flags() -> dict[str, Any]:
    shared = module("modules.shared")
    cmd = getattr(shared, "cmd_opts", None)
    out = {}
    for key in SAFE_FLAGS:
        value = getattr(cmd, key, None)
        if isinstance(value, (bool, int, float, str)) and value not in (None, False, ""):
            out[key] = value
    return out


def attention() -> str | None:
    hijack = module("modules.sd_hijack")
    method = getattr(getattr(hijack, "model_hijack", None), "optimization_method", None)
    if method:
        return str(method)
    chosen = opt("cross_attention_optimization")
    return str(chosen) if chosen else None


def dtypes() -> dict[str, str]:
    devices = module("modules.devices")
    out = {}
    for key, attr in (("model", "dtype"), ("unet", "dtype_unet"), ("vae", "dtype_vae")):
        value = getattr(devices, attr, None)
        if value is not None:
            out[key] = str(value).replace("torch.", "")
    return out


def noise_device() -> str:
    source = opt("randn_source", "GPU")
    if opt("forge_try_reproduce") in ("ComfyUI", "DrawThings"):
        source = "CPU"
    return str(source)


def rng_device_type() -> str:
    """Where the webui's generators draw: "nv" (the Philox source, the same numbers on
    any device), "cpu", or the GPU source's device type ("cuda", "xpu"...; MPS draws on
    the CPU). Random numbers of the GPU source differ between device types."""
    source = noise_device()
    if source == "NV":
        return "nv"
    if source == "CPU":
        return "cpu"
    devices = module("modules.devices")
    device = getattr(devices, "device", None)
    kind = str(getattr(device, "type", "") or "cpu")
    return "cpu" if kind == "mps" else kind


def latent_channels() -> int:
    shared = module("modules.shared")
    model = getattr(shared, "sd_model", None)
    forge = getattr(
        getattr(getattr(model, "forge_objects", None), "vae", None), "latent_channels", None
    )
    if isinstance(forge, int):
        return forge
    value = getattr(model, "latent_channels", 4)
    return int(value) if isinstance(value, int) else 4


def model_identity(p: Any) -> dict[str, Any]:
    """Checkpoint and VAE names and hashes: names only, never paths."""
    shared = module("modules.shared")
    info = getattr(getattr(shared, "sd_model", None), "sd_checkpoint_info", None)
    model: dict[str, Any] = {
        "name": getattr(p, "sd_model_name", None) or getattr(info, "name_for_extra", None),
        "short_hash": getattr(p, "sd_model_hash", None) or getattr(info, "shorthash", None),
        "sha256": getattr(info, "sha256", None),
    }
    vae = {"name": getattr(p, "sd_vae_name", None), "short_hash": getattr(p, "sd_vae_hash", None)}
    return {
        "checkpoint": {k: v for k, v in model.items() if v},
        "vae": {k: v for k, v in vae.items() if v},
    }


def host() -> dict[str, Any]:
    return {
        "app": "Forge" if is_forge() else "AUTOMATIC1111",
        "version": version(),
        "commit": commit(),
    }


def host_info() -> raiiaf_host.Host:
    """This webui for the shared host layer (metadata ``host``, the environment)."""
    h = host()
    return raiiaf_host.Host(h["app"], h["version"], h["commit"])
