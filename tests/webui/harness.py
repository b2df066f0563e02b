"""The real webuis (AUTOMATIC1111 1.10.1, Forge Classic), set up by ``dev/setup_webui.sh``,
with this repository installed as a user installs it, started headless on CPU
(``--api --nowebui``) and driven through their HTTP API only.

The extension is a ``git clone`` of this repository into the webui's ``extensions/`` folder
(its committed HEAD; on a working tree with uncommitted changes to tracked files, those are
applied on top and the session header says so, see :func:`clone_extension`). Its
``install.py`` is run by the webui's own ``launch_utils.run_extension_installer`` (the step
``launch.py`` runs at every start without ``--skip-install``), with ``RAIIAF_WHEEL`` naming
the raiiaf_rs wheel built from this tree (``tests/userenv.local_wheel``): the documented way
to install a wheel that is not on the index. raiiaf-rs is uninstalled from the webui's venv
first, so every session really installs it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXT_NAME = "raiiaf-rs"
#: The extension's arguments, in the order of scripts/raiiaf.py's ui().
ARG_ORDER = ("enabled", "save", "embed_image", "store_latent", "files", "on_mismatch", "restore")
STOP = "Stop with a message"
PROCEED = "Proceed without replay"


def hosts_dir() -> Path:
    """Where dev/setup_webui.sh installs the webuis (dev/hosts.sh's HOSTS_DIR)."""
    given = os.environ.get("RAIIAF_HOSTS_DIR")
    return Path(given) if given else Path.home() / ".cache" / "raiiaf-rs" / "hosts"


@dataclass(frozen=True)
class Spec:
    """One webui: its install folder under hosts_dir(), its tree, and its CPU flags."""

    name: str
    dest: str
    tree: str
    cpu_args: tuple[str, ...]
    hf_home: bool

    @property
    def root(self) -> Path:
        return hosts_dir() / self.dest

    @property
    def webui(self) -> Path:
        return self.root / self.tree

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def ckpt(self) -> Path:
        return self.webui / "models" / "Stable-diffusion" / "tiny-sd15.safetensors"


WEBUIS = {
    "a1111": Spec(
        "a1111",
        "a1111-1.10.1",
        "stable-diffusion-webui",
        ("--use-cpu", "all", "--no-half", "--precision", "full"),
        True,
    ),
    # Forge's own CPU switch: UNet and VAE in float32 on the CPU.
    "forge-classic": Spec(
        "forge-classic", "forge-classic", "sd-webui-forge-classic", ("--always-cpu",), False
    ),
}


def env_for(spec: Spec) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GIT_PYTHON_REFRESH="quiet")
    env.setdefault("OMP_NUM_THREADS", "1")
    if spec.hf_home:
        env["HF_HOME"] = str(spec.root / "hf-home")
    return env


def check_installed(spec: Spec) -> None:
    missing = [p for p in (spec.webui / "webui.py", spec.python, spec.ckpt) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"{spec.name} is not set up ({', '.join(map(str, missing))} missing): run "
            f"`bash dev/setup_webui.sh {spec.name}` (or `make webui-test`)"
        )


def clone_extension(spec: Spec) -> tuple[Path, str]:
    """``git clone`` of this repository into the webui's extensions/ folder, as a user does;
    returns (folder, what was cloned). Uncommitted changes to tracked files are applied on
    top (``git diff HEAD``) unless RAIIAF_WEBUI_HEAD_ONLY=1, so a local run tests the code
    being edited; CI's tree is clean, so there it is exactly the committed HEAD."""
    dest = spec.webui / "extensions" / EXT_NAME
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(
        ["git", "clone", "--quiet", str(REPO), str(dest)], check=True, capture_output=True
    )
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    what = f"HEAD {head}"
    if os.environ.get("RAIIAF_WEBUI_HEAD_ONLY") != "1":
        diff = subprocess.run(
            ["git", "-C", str(REPO), "diff", "HEAD", "--binary"], check=True, capture_output=True
        ).stdout
        if diff:
            subprocess.run(
                ["git", "-C", str(dest), "apply", "--whitespace=nowarn"], input=diff, check=True
            )
            what += " + uncommitted changes to tracked files"
    return dest, what


def run_installer(spec: Spec, ext: Path, wheel: Path) -> str:
    """The extension's install.py, run by the webui's own run_extension_installer (what
    launch.py does at start without --skip-install); returns its console output."""
    subprocess.run(
        [str(spec.python), "-m", "pip", "uninstall", "-y", "-q", "raiiaf-rs"],
        capture_output=True,
        env=env_for(spec),
    )
    code = (
        "import sys; sys.argv = ['launch.py']\n"
        "from modules import launch_utils\n"
        f"launch_utils.run_extension_installer({str(ext)!r})\n"
    )
    env = env_for(spec) | {"RAIIAF_WHEEL": str(wheel)}
    out = subprocess.run(
        [str(spec.python), "-c", code],
        cwd=spec.webui,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out.stdout + out.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


@dataclass
class Result:
    """One API generation: its images (the grid left out), its info, the files it saved."""

    images: list[np.ndarray]
    info: dict[str, Any]
    saved: list[Path] = field(default_factory=list)

    @property
    def pngs(self) -> list[Path]:
        return sorted(p for p in self.saved if p.suffix == ".png")

    @property
    def sidecars(self) -> list[Path]:
        return sorted(p for p in self.saved if p.suffix == ".raiiaf")

    @property
    def comments(self) -> str:
        """What the run tells an API caller in words: the infotexts, and the extension's
        warnings (``extra_generation_params["raiiaf warnings"]``: 1.10's API answer has no
        ``comments``)."""
        warnings = (self.info.get("extra_generation_params") or {}).get("raiiaf warnings", [])
        return "\n".join(
            [str(self.info.get("comments", "")), *self.info["infotexts"], *map(str, warnings)]
        )


def pixels(image: Image.Image | Path) -> np.ndarray:
    if isinstance(image, Path):
        image = Image.open(image)
    return np.asarray(image.convert("RGB"), dtype=np.int16)


class Server:
    """One headless webui process for a test session, with the extension installed."""

    def __init__(self, spec: Spec, workdir: Path, wheel: Path):
        check_installed(spec)
        self.spec = spec
        self.workdir = workdir
        self.out = workdir / "outputs"
        self.log_path = workdir / f"{spec.name}.log"
        t = time.monotonic()
        self.ext, self.cloned = clone_extension(spec)
        self.install_log = run_installer(spec, self.ext, wheel)
        self.install_s = time.monotonic() - t
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A settings file of our own that does not exist yet: the webui starts as a fresh
        # install does (no config.json), and the tree's own settings are never touched.
        args = [
            str(spec.python),
            "launch.py",
            "--skip-prepare-environment",
            "--skip-install",
            "--skip-torch-cuda-test",
            "--skip-version-check",
            *spec.cpu_args,
            "--api",
            "--nowebui",
            "--server-name",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-settings-file",
            str(workdir / "config.json"),
            "--ckpt",
            str(spec.ckpt),
        ]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (open for the server's life)
        t = time.monotonic()
        self.proc = subprocess.Popen(
            args,
            cwd=spec.webui,
            env=env_for(spec),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_up(600)
        self.start_s = time.monotonic() - t

    # -- process ------------------------------------------------------------------------
    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def _wait_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited at start:\n{self.log()[-6000:]}")
            try:
                self.get("/sdapi/v1/options")
                return
            except (OSError, ApiError):
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not answer in {timeout}s:\n{self.log()[-6000:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._log.close()

    # -- HTTP ---------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode(errors="replace")) from None

    def get(self, path: str) -> Any:
        return self.request("GET", path, timeout=10)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    # -- generation ---------------------------------------------------------------------
    def files(self) -> set[Path]:
        return {p for p in self.out.rglob("*") if p.is_file()} if self.out.exists() else set()

    def generate(self, kind: str, raiiaf: dict | None = None, **payload) -> Result:
        """txt2img or img2img through the API; ``raiiaf`` holds the extension's arguments
        by name (ARG_ORDER), enabled unless said otherwise."""
        body = {
            "prompt": "a red cube",
            "negative_prompt": "",
            "steps": 4,
            "width": 64,
            "height": 64,
            "cfg_scale": 5,
            "seed": 1,
            "sampler_name": "Euler",
            "batch_size": 1,
            "n_iter": 1,
            "save_images": True,
        }
        body.update(payload)
        if raiiaf is not None:
            given = {
                "enabled": True,
                "save": True,
                "embed_image": True,
                "store_latent": False,
                "files": None,
                "on_mismatch": STOP,
                "restore": True,
            } | raiiaf
            args = [given[k] for k in ARG_ORDER]
            body.setdefault("alwayson_scripts", {})["raiiaf"] = {"args": args}
        before = self.files()
        res = self.post(f"/sdapi/v1/{kind}", body)
        info = json.loads(res["info"])
        first = int(info.get("index_of_first_image", 0))
        images = [pixels(Image.open(io.BytesIO(base64.b64decode(b)))) for b in res["images"]]
        # A flat image is what a NaN in sampling becomes where the webui does not check for one
        # (Forge): every test comparing it would compare the same flat image whatever the noise.
        flat = [i for i, im in enumerate(images) if im.min() == im.max()]
        assert not flat, (
            f"{self.spec.name} returned flat images {flat} (all pixels {images[flat[0]].min()}): "
            f"NaN in sampling? log {self.log_path}"
        )
        saved = sorted(self.files() - before)
        return Result(images=images[first:], info=info, saved=saved)

    def txt2img(self, raiiaf: dict | None = None, **payload) -> Result:
        return self.generate("txt2img", raiiaf, **payload)

    def img2img(self, init: Path | np.ndarray, raiiaf: dict | None = None, **payload) -> Result:
        if isinstance(init, np.ndarray):
            buf = io.BytesIO()
            Image.fromarray(init.astype(np.uint8)).save(buf, format="PNG")
            data = buf.getvalue()
        else:
            data = init.read_bytes()
        payload.setdefault("denoising_strength", 0.6)
        return self.generate(
            "img2img", raiiaf, init_images=[base64.b64encode(data).decode()], **payload
        )


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
