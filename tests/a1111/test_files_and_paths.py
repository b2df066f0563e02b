"""Replay files named by path are read only from the webui's folders; a saved image that
gets a number suffix keeps its own sidecar, and no ``.raiiaf`` is ever overwritten."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import raiiaf_rs

from .harness import pixels

BASE = {"prompt": "a cat", "steps": 5, "width": 64, "height": 64, "cfg_scale": 5.0}
KW = dict(BASE, sampler_name="Euler")


def test_a_path_outside_the_allowed_folders_is_refused(webui, tmp_path_factory):
    from lib_raiiaf.replay import ReplayError

    res = webui.txt2img(seed=10, outdir="src", **KW)
    outside = tmp_path_factory.mktemp("elsewhere") / "copy.raiiaf"
    shutil.copy(res.sidecar(res.images[0]), outside)
    with pytest.raises(ReplayError, match="not inside the webui's output folders"):
        webui.txt2img(seed=1, outdir="x", raiiaf={"replay_files": str(outside)}, **KW)
    # Dict (gradio 4 FileData) and tempfile-like names go through the same check.
    for given in ({"path": str(outside)}, type("F", (), {"name": str(outside)})()):
        with pytest.raises(ReplayError, match="not inside"):
            webui.txt2img(seed=1, outdir="x", raiiaf={"replay_files": [given]}, **KW)
    # A link inside the outputs pointing outside is judged by its target.
    link = webui.root / "src" / "link.raiiaf"
    link.symlink_to(outside)
    with pytest.raises(ReplayError, match="not inside"):
        webui.txt2img(seed=1, outdir="x", raiiaf={"replay_files": str(link)}, **KW)
    # Inside the outputs but not a .raiiaf file: refused too.
    with pytest.raises(ReplayError, match=r"not a \.raiiaf file"):
        webui.txt2img(seed=1, outdir="x", raiiaf={"replay_files": str(res.images[0])}, **KW)
    assert webui.errors.reported == []


def test_uploads_in_the_gradio_folder_are_read(webui, tmp_path, monkeypatch):
    upload_dir = tmp_path / "gradio-uploads"
    upload_dir.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload_dir))
    res = webui.txt2img(seed=10, outdir="src", **KW)
    upload = upload_dir / "abc123" / "x.raiiaf"
    upload.parent.mkdir()
    shutil.copy(res.sidecar(res.images[0]), upload)
    again = webui.txt2img(
        seed=1, outdir="again", raiiaf={"replay_files": [{"path": str(upload)}]}, **KW
    )
    assert (pixels(again.images[0]) == pixels(res.images[0])).all()


@pytest.mark.parametrize("mode", ["a1111-1.10", "forge"])
def test_number_suffix_keeps_both_sidecars(make_webui, mode):
    webui = make_webui(mode)
    webui.shared.opts.save_images_add_number = False  # same name twice
    webui.shared.opts.save_images_replace_action = "Add number suffix"
    one = webui.txt2img(seed=10, outdir="out", **KW)
    two = webui.txt2img(seed=10, outdir="out", **{**KW, "steps": 4})
    pngs = sorted(p.name for p in (webui.root / "out").glob("*.png"))
    sidecars = sorted(p.name for p in (webui.root / "out").glob("*.raiiaf"))
    assert pngs == ["10-a cat-1.png", "10-a cat.png"]
    assert sidecars == ["10-a cat-1.raiiaf", "10-a cat.raiiaf"]
    first = raiiaf_rs.read(webui.root / "out" / "10-a cat.raiiaf")
    second = raiiaf_rs.read(webui.root / "out" / "10-a cat-1.raiiaf")
    assert first.metadata["image_file"]["name"] == "10-a cat.png"
    assert first.metadata["a1111"]["steps"] == 5
    assert second.metadata["image_file"]["name"] == "10-a cat-1.png"
    assert second.metadata["a1111"]["steps"] == 4
    assert first.image == (webui.root / "out" / "10-a cat.png").read_bytes()
    assert second.image == (webui.root / "out" / "10-a cat-1.png").read_bytes()
    del one, two


def test_replace_mode_keeps_the_old_sidecar(webui):
    """ "Replace" replaces the image, never a sidecar: the new one takes the next free name
    and says which image it belongs to (the old one still names the same image, whose
    bytes it no longer matches)."""
    webui.shared.opts.save_images_add_number = False
    webui.txt2img(seed=10, outdir="out", **KW)
    old_png = (webui.root / "out" / "10-a cat.png").read_bytes()
    webui.txt2img(seed=10, outdir="out", **{**KW, "steps": 4})
    assert sorted(p.name for p in (webui.root / "out").iterdir()) == [
        "10-a cat-1.raiiaf",
        "10-a cat.png",
        "10-a cat.raiiaf",
    ]
    png = (webui.root / "out" / "10-a cat.png").read_bytes()
    old = raiiaf_rs.read(webui.root / "out" / "10-a cat.raiiaf")
    new = raiiaf_rs.read(webui.root / "out" / "10-a cat-1.raiiaf")
    assert old.metadata["a1111"]["steps"] == 5 and new.metadata["a1111"]["steps"] == 4
    assert old.image == old_png != png == new.image
    assert new.metadata["image_file"] == {"name": "10-a cat.png", "sha256": sha256(png)}
    assert old.metadata["image_file"] == {"name": "10-a cat.png", "sha256": sha256(old_png)}
    # A third run: the next free name again.
    webui.txt2img(seed=10, outdir="out", **{**KW, "steps": 3})
    third = raiiaf_rs.read(webui.root / "out" / "10-a cat-2.raiiaf")
    assert third.metadata["a1111"]["steps"] == 3


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
