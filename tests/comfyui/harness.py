"""Run a real ComfyUI server headless (CPU) and talk to it over its HTTP API.

Used by the ComfyUI tests (tests/comfyui/conftest.py) and the demo. Standard library
only, and it never imports ComfyUI: the server is a subprocess (`main.py`) of the
ComfyUI tree that dev/setup_comfyui.sh puts in .comfyui/ComfyUI (or $COMFYUI_PATH),
run with the current Python (the project's .venv) or $COMFYUI_PYTHON, the Python of
that tree's own environment (ComfyUI 0.33.0: dev/setup_comfyui_latest.sh).

    with ComfyServer(tmp_dir) as comfy:
        pid = comfy.queue(default_txt2img(TINY_CKPT, seed=1, steps=4))
        entry = comfy.wait(pid)
        image = entry["outputs"]["7"]["images"][0]
        png = comfy.view(image["filename"], image["subfolder"], image["type"])

The server gets a throw-away base directory (models, custom_nodes, input, output, temp,
user) holding symlinks to the tiny checkpoint and to the node pack (comfy_nodes/), so
nothing is written into the repository or the ComfyUI tree, and an in-memory database.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMFYUI_DIR = Path(os.environ.get("COMFYUI_PATH") or REPO / ".comfyui" / "ComfyUI")
# The Python that runs the server: a newer ComfyUI needs its own packages (another front
# end, transformers, comfy-kitchen, ...). It must import raiiaf_rs, as a user's would.
COMFYUI_PYTHON = os.environ.get("COMFYUI_PYTHON") or sys.executable
TINY_MODEL = REPO / ".comfyui" / "models" / "tiny-sd15.safetensors"
TINY_CKPT = "tiny-sd15.safetensors"  # its name in models/checkpoints/
NODE_PACK = REPO  # the repository root is the pack (root __init__.py)
NODE_PACK_NAME = "raiiaf-rs"  # its folder under custom_nodes/; not "raiiaf_rs", the package


def comfyui_version(comfy_dir: str | os.PathLike = COMFYUI_DIR) -> str:
    """The version of the ComfyUI tree (its comfyui_version.py), e.g. "0.3.75"."""
    text = (Path(comfy_dir) / "comfyui_version.py").read_text()
    match = re.search(r"__version__\s*=\s*[\"']([^\"']+)", text)
    if not match:
        raise ValueError(f"no __version__ in {comfy_dir}/comfyui_version.py")
    return match.group(1)


class ComfyError(RuntimeError):
    """The server failed to start, died, rejected a request or a prompt failed."""


class PromptRejected(ComfyError):
    """POST /prompt answered an HTTP error (400: validation); `body` is its JSON."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"/prompt rejected the prompt (HTTP {status}): {json.dumps(body)[:4000]}")
        self.status = status
        self.body = body


class ExecutionFailed(ComfyError):
    """The prompt ran and ended with status error; `entry` is its /history entry."""

    def __init__(self, prompt_id: str, entry: dict) -> None:
        self.entry = entry
        self.errors = [
            m[1] for m in entry.get("status", {}).get("messages", []) if m[0] == "execution_error"
        ]
        lines = [f"prompt {prompt_id} failed"]
        for e in self.errors:
            lines.append(
                f"node {e.get('node_id')} ({e.get('node_type')}): "
                f"{e.get('exception_type')}: {e.get('exception_message')}"
            )
            lines.append("".join(e.get("traceback", []))[-3000:])
        super().__init__("\n".join(lines))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Runs in the child before exec (Linux): SIGTERM the server when the process that
    # started it dies without cleaning up (e.g. SIGKILL), so no orphaned ComfyUI keeps
    # running in CI. (Tied to the starting thread: start servers from the main thread.)
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


try:  # loaded here, in the parent: loading a library after fork() is not safe
    import ctypes

    _LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None
except (ImportError, OSError):
    _LIBC = None


class ComfyServer:
    """A ComfyUI server subprocess on a free loopback port; a context manager.

    base_dir: created if needed; gets custom_nodes/<NODE_PACK_NAME> -> node_pack (when that
    directory exists) and models/checkpoints/<ckpt> -> ckpt_path (when that file exists).
    Outputs land in base_dir/output, the server log in base_dir/comfyui.log.
    python: the interpreter that runs main.py (default $COMFYUI_PYTHON, else this one).
    Attributes for tests: base_dir, output_dir, ckpt (the name graphs use), ckpt_path,
    port, url, log_path, start_seconds.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike,
        *,
        comfy_dir: str | os.PathLike = COMFYUI_DIR,
        ckpt_path: str | os.PathLike | None = TINY_MODEL,
        ckpt: str = TINY_CKPT,
        node_pack: str | os.PathLike | None = NODE_PACK,
        # Generous: importing torch and ComfyUI on a busy 2-core machine has taken over 2 min.
        start_timeout: float = 300.0,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        python: str | os.PathLike = COMFYUI_PYTHON,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.python = str(python)
        self.comfy_dir = Path(comfy_dir).resolve()
        self.ckpt_path = Path(ckpt_path).resolve() if ckpt_path else None
        self.ckpt = ckpt
        self.node_pack = Path(node_pack).resolve() if node_pack else None
        self.start_timeout = start_timeout
        self.extra_args = tuple(extra_args)
        self.env = env or {}
        self.log_path = self.base_dir / "comfyui.log"
        self.output_dir = self.base_dir / "output"
        self.port = 0
        self.start_seconds = 0.0
        self.client_id = uuid.uuid4().hex
        self._proc: subprocess.Popen | None = None

    # --- life cycle -------------------------------------------------------------------
    def __enter__(self) -> ComfyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _prepare_base(self) -> None:
        for sub in ("custom_nodes", "models/checkpoints", "input", "output"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        links = [
            (self.base_dir / "custom_nodes" / NODE_PACK_NAME, self.node_pack),
            (self.base_dir / "models" / "checkpoints" / self.ckpt, self.ckpt_path),
        ]
        for link, target in links:
            if target is not None and target.exists() and not link.is_symlink():
                link.symlink_to(target, target_is_directory=target.is_dir())

    def start(self) -> None:
        if not (self.comfy_dir / "main.py").is_file():
            raise ComfyError(
                f"no ComfyUI tree at {self.comfy_dir}: run dev/setup_comfyui.sh "
                "(make setup), or set COMFYUI_PATH"
            )
        self._prepare_base()
        env = dict(os.environ)
        env.update(
            # 1 thread: with 2 OpenMP threads on a 2-core box, any other busy process
            # makes sampling 10-40x slower (oversubscription).
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",  # the log file is readable while the server runs
            HF_HUB_OFFLINE="1",  # nothing may reach the network
            TRANSFORMERS_OFFLINE="1",
        )
        env.update(self.env)
        t0 = time.monotonic()
        for _attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            # The flags all exist in 0.3.75 and 0.33.0; the in-memory database keeps the
            # tree untouched.
            cmd = [self.python, "main.py", "--cpu", "--disable-auto-launch"]
            cmd += ["--listen", "127.0.0.1", "--port", str(self.port)]
            cmd += ["--base-directory", str(self.base_dir)]
            cmd += ["--database-url", "sqlite:///:memory:", *self.extra_args]
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    cmd,
                    cwd=self.comfy_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            if self._wait_ready(t0 + self.start_timeout):
                self.start_seconds = time.monotonic() - t0
                return
            if "address already in use" not in self.log_text()[-2000:].lower():
                break
        tail = self.log_text()[-6000:]
        self.stop()
        raise ComfyError(f"ComfyUI did not start (log {self.log_path}):\n{tail}")

    def _wait_ready(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            try:
                self.get_json("/object_info", timeout=10)
                return True
            except (OSError, ComfyError):
                time.sleep(0.25)
        return False

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- HTTP -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _request(
        self, path: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60
    ) -> bytes:
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except urllib.error.URLError as e:
            if isinstance(e, urllib.error.HTTPError) or self.alive():
                raise
            # A refused connection usually means the server crashed: say so, with its log.
            raise ComfyError(f"ComfyUI is not running ({e}):\n{self.log_text()[-6000:]}") from e

    def get_json(self, path: str, timeout: float = 60) -> object:
        return json.loads(self._request(path, timeout=timeout))

    def object_info(self, node_class: str | None = None) -> dict:
        path = "/object_info" + (f"/{urllib.parse.quote(node_class)}" if node_class else "")
        return self.get_json(path)

    def queue(self, prompt: dict, extra_data: dict | None = None) -> str:
        """POST /prompt (API-format graph); returns the prompt id."""
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data is not None:
            body["extra_data"] = extra_data
        try:
            raw = self._request(
                "/prompt", json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                err = json.loads(text)
            except ValueError:
                err = text
            raise PromptRejected(e.code, err) from None
        return json.loads(raw)["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 120.0) -> dict:
        """Poll /history/<id> until the prompt is done; returns its history entry.

        Raises ExecutionFailed if it ended in error, ComfyError on timeout or if the
        server died (both with the log tail)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            status = (entry or {}).get("status", {})
            if status.get("completed") is not None or status.get("status_str") == "error":
                if status.get("status_str") != "success":
                    raise ExecutionFailed(prompt_id, entry)
                return entry
            if not self.alive():
                raise ComfyError(
                    f"ComfyUI died while running {prompt_id}:\n{self.log_text()[-6000:]}"
                )
            if time.monotonic() > deadline:
                raise ComfyError(
                    f"prompt {prompt_id} not done after {timeout:.0f} s:\n{self.log_text()[-4000:]}"
                )
            time.sleep(0.05)

    def run(self, prompt: dict, extra_data: dict | None = None, timeout: float = 120.0) -> dict:
        """queue() then wait(): the finished history entry."""
        return self.wait(self.queue(prompt, extra_data), timeout)

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        return self._request("/view?" + q)

    def upload(self, path: str | os.PathLike, overwrite: bool = True) -> dict:
        """POST /upload/image into the input folder; returns {name, subfolder, type}."""
        path = Path(path)
        boundary = uuid.uuid4().hex
        fields = [
            ("type", None, b"input"),
            ("overwrite", None, b"true" if overwrite else b"false"),
            ("image", path.name, path.read_bytes()),
        ]
        body = b""
        for name, filename, value in fields:
            disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
            body += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
            if filename:
                body += b"Content-Type: application/octet-stream\r\n"
            body += b"\r\n" + value + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return json.loads(self._request("/upload/image", body, headers))


def default_txt2img(
    ckpt: str,
    seed: int,
    steps: int,
    width: int = 64,
    height: int = 64,
    batch: int = 1,
    sampler: str = "euler",
    scheduler: str = "normal",
    cfg: float = 7.0,
    save_class: str = "SaveImage",
    prefix: str = "test",
    positive: str = "a red cube on a table",
    negative: str = "blurry",
) -> dict:
    """API-format txt2img graph. Node ids: "1" CheckpointLoaderSimple, "2"/"3" positive/
    negative CLIPTextEncode, "4" EmptyLatentImage, "5" KSampler, "6" VAEDecode,
    "7" <save_class> (inputs: images, filename_prefix)."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": batch},
        },
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "seed": seed,
                "steps": steps,
                "cfg": cfg,
                "sampler_name": sampler,
                "scheduler": scheduler,
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": save_class, "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }
