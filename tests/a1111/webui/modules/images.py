"""``save_image`` with the webui's naming (``NNNNN-<seed>-<prompt>[suffix].png``, the
number one more than the largest leading number in the folder), the
``on_before_image_saved`` / ``on_image_saved`` callbacks around an atomic write, and
``already_saved_as``; ``image_grid`` for the grid."""

from __future__ import annotations

import math
import os
import re

from PIL import Image, PngImagePlugin

from modules import script_callbacks, shared

_BAD = re.compile(r'[\\/:*?"<>|\r\n\t]')
_LEADING = re.compile(r"^(\d+)")


def _prompt_part(prompt: str | None) -> str:
    text = _BAD.sub("", prompt or "").strip()
    return text[:128].rstrip(" .")


def get_next_sequence_number(path: str, basename: str) -> int:
    highest = -1
    prefix = f"{basename}-" if basename else ""
    for name in os.listdir(path):
        if not name.startswith(prefix):
            continue
        m = _LEADING.match(name[len(prefix) :])
        if m:
            highest = max(highest, int(m.group(1)))
    return highest + 1


def _name(seed, prompt, short_filename: bool, suffix: str) -> str:
    pattern = shared.opts.samples_filename_pattern
    if pattern:
        text = pattern.replace("[seed]", str(seed)).replace("[prompt_spaces]", _prompt_part(prompt))
    elif short_filename or seed is None:
        text = f"{seed}" if seed is not None else ""
    else:
        text = f"{seed}-{_prompt_part(prompt)}"
    return text + suffix


def save_image(
    image,
    path,
    basename,
    seed=None,
    prompt=None,
    extension="png",
    info=None,
    short_filename=False,
    no_prompt=False,
    grid=False,
    pnginfo_section_name="parameters",
    p=None,
    existing_info=None,
    forced_filename=None,
    suffix="",
    save_to_dirs=None,
):
    os.makedirs(path, exist_ok=True)
    if forced_filename is None:
        name = _name(seed, None if no_prompt else prompt, short_filename, suffix)
        if shared.opts.save_images_add_number:
            number = get_next_sequence_number(path, basename)
            stem = f"{number:05}" + (f"-{name}" if name else "")
        else:
            stem = name or "image"
        if basename:
            stem = f"{basename}-{stem}"
        fullfn = os.path.join(path, f"{stem}.{extension}")
    else:
        fullfn = os.path.join(path, f"{forced_filename}.{extension}")

    pnginfo = dict(existing_info or {})
    if info is not None:
        pnginfo[pnginfo_section_name] = info
    params = script_callbacks.ImageSaveParams(image, p, fullfn, pnginfo)
    script_callbacks.before_image_saved_callback(params)
    image = params.image
    fullfn = params.filename
    info = params.pnginfo.get(pnginfo_section_name, None)

    target = fullfn
    if shared.opts.save_images_replace_action != "Replace":
        stem, ext = os.path.splitext(fullfn)
        n = 0
        while os.path.exists(target):
            n += 1
            target = f"{stem}-{n}{ext}"
    tmp = target + ".tmp"
    if extension.lower() == "png":
        png = PngImagePlugin.PngInfo()
        if shared.opts.enable_pnginfo:
            for key, value in params.pnginfo.items():
                png.add_text(key, str(value))
        image.save(tmp, format="PNG", pnginfo=png)
    else:
        image.convert("RGB").save(tmp, format=extension.upper().replace("JPG", "JPEG"))
    os.replace(tmp, target)
    # A1111 keeps the name asked for, not the renamed one; Forge the name written.
    from modules import scripts

    if scripts.MODE == "forge":
        fullfn = target
    image.already_saved_as = fullfn

    txt_fullfn = None
    if shared.opts.save_txt and info is not None:
        txt_fullfn = f"{os.path.splitext(fullfn)[0]}.txt"
        with open(txt_fullfn, "w", encoding="utf8") as f:
            f.write(f"{info}\n")
    script_callbacks.image_saved_callback(params)
    return fullfn, txt_fullfn


def image_grid(imgs, batch_size=1, rows=None):
    rows = rows or max(1, round(math.sqrt(len(imgs))))
    cols = math.ceil(len(imgs) / rows)
    w, h = imgs[0].size
    grid = Image.new("RGB", (cols * w, rows * h), color="black")
    for i, img in enumerate(imgs):
        grid.paste(img, box=(i % cols * w, i // cols * h))
    return grid
