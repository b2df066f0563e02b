"""The environment that produces an image, recorded in every ``.raiiaf`` file
(its ENVC chunk), and the drift between a file's environment and today's.

The Rust core captures the machine (OS, CPU, RAM, NVIDIA GPUs via NVML) once
per process; this module adds what only Python knows (Python, numpy and torch
versions, torch's determinism flags) and what only the host UI knows (its
name and version, attention backend, model dtypes, the noise device).

>>> env = capture(host={"app": "ComfyUI", "version": "0.3.75"}, attention="sdpa")
>>> for d in drift(raiiaf_rs.read("image.raiiaf")):
...     print(d.message, d.affects_pixels)
"""

from __future__ import annotations

import functools
import json
import platform
import socket
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raiiaf_rs._extension import native

__all__ = ["Drift", "capture", "drift", "hardware_info", "host_facts", "warn_drift"]


@functools.lru_cache(maxsize=2)
def _static_facts(with_torch: bool) -> tuple[tuple[str, Any], ...]:
    facts: dict[str, Any] = {"python": platform.python_version()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        facts["numpy"] = numpy.__version__
    if with_torch:
        import torch

        cudnn = None
        try:
            if torch.backends.cudnn.is_available():
                cudnn = str(torch.backends.cudnn.version())
        except Exception:  # cudnn probing can fail on broken installs; the fact is optional
            cudnn = None
        facts["torch"] = {
            "version": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": cudnn,
            "hip": getattr(torch.version, "hip", None),
        }
    return tuple(facts.items())


def host_facts(
    *,
    import_torch: bool = False,
    host: Mapping[str, Any] | None = None,
    attention: str | None = None,
    dtypes: Mapping[str, str] | None = None,
    noise_device: str | None = None,
) -> dict[str, Any]:
    """The facts only Python and the host know, for :func:`capture`.

    torch is described only if it is already imported (a UI process) unless
    ``import_torch=True``: importing it takes seconds. Versions are collected
    once per process; torch's determinism flags, which can change, every call.
    """
    torch = sys.modules.get("torch")
    if torch is None and import_torch:
        try:
            with warnings.catch_warnings():
                # torch's import can warn about unrelated packages (pynvml).
                warnings.simplefilter("ignore")
                import torch
        except ImportError:
            torch = None
    facts = dict(_static_facts(torch is not None))
    if torch is not None:
        facts["determinism"] = {
            "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        }
    if host:
        facts["host"] = {str(k): v for k, v in host.items() if v is not None}
    if attention is not None:
        facts["attention"] = attention
    if dtypes:
        facts["dtypes"] = {str(k): str(v) for k, v in dtypes.items()}
    if noise_device is not None:
        facts["noise_device"] = noise_device
    return facts


@functools.lru_cache(maxsize=64)
def _document(facts_json: str) -> str:
    return native._environment(facts_json)


def capture(
    *,
    import_torch: bool = False,
    host: Mapping[str, Any] | None = None,
    attention: str | None = None,
    dtypes: Mapping[str, str] | None = None,
    noise_device: str | None = None,
) -> dict[str, Any]:
    """The ENVC document (``env_version``, ``components``) for this process.

    The first five components (torch, numpy, python, cuda, os) are spelled as the
    reference ``raiiaf`` writes them; gpu (one per device), torch_backends, cpu,
    ram, host, attention, dtype, noise_device and determinism follow when known.
    Nothing identifies the user: no user or host name, no path, no GPU serial.
    """
    facts = host_facts(
        import_torch=import_torch,
        host=host,
        attention=attention,
        dtypes=dtypes,
        noise_device=noise_device,
    )
    return json.loads(_document(json.dumps(facts, sort_keys=True)))


def hardware_info(
    *, machine_name: str | bool = False, import_torch: bool = False
) -> dict[str, Any]:
    """The reference schema's ``hardware_info``, filled in automatically.

    ``machine_name`` stays empty unless asked for: ``True`` records this host's name,
    a string records that string.
    """
    name: str | None = None
    if machine_name is True:
        name = socket.gethostname()
    elif isinstance(machine_name, str) and machine_name:
        name = machine_name
    facts = host_facts(import_torch=import_torch)
    return json.loads(native._hardware_info(json.dumps(facts), name))


@dataclass(frozen=True)
class Drift:
    """One component that differs between a file's environment and the current one."""

    component: str
    #: ``changed``, ``missing_now`` (in the file only) or ``not_in_file`` (not recorded).
    kind: str
    stored: str | None
    current: str | None
    #: Whether this difference can change the generated pixels.
    affects_pixels: bool

    def to_json(self) -> dict:
        """The difference as a JSON object (what the ComfyUI routes and the archive answer)."""
        return {
            "component": self.component,
            "kind": self.kind,
            "stored": self.stored,
            "current": self.current,
            "affects_pixels": bool(self.affects_pixels),
        }

    @property
    def message(self) -> str:
        """The reference decoder's wording."""
        if self.kind == "changed":
            return (
                f"Environment component '{self.component}' differs:\n"
                f"  File: {self.stored}\n  Current: {self.current}"
            )
        if self.kind == "missing_now":
            return f"Environment component '{self.component}' missing in current system"
        return f"Environment component '{self.component}' missing in file"


def _environment_of(source: Any) -> dict[str, Any] | None:
    if isinstance(source, Mapping):
        return dict(source)
    env = getattr(source, "environment", None)
    if env is not None or hasattr(source, "environment"):
        return env
    from raiiaf_rs import read_metadata

    return read_metadata(source).environment


def drift(source: Any, current: Mapping[str, Any] | None = None) -> list[Drift]:
    """Differences between the environment recorded in ``source`` (a path, an
    :class:`~raiiaf_rs.Artifact` or an ENVC document) and ``current`` (default:
    :func:`capture` now). Identical environments give ``[]``; a file without an
    environment gives ``[]`` too (nothing to compare)."""
    stored = _environment_of(source)
    if stored is None:
        return []
    now = dict(current) if current is not None else capture()
    return [Drift(*row) for row in native._drift(json.dumps(stored), json.dumps(now))]


def warn_drift(drifts: list[Drift], stacklevel: int = 2) -> None:
    """Emit one ``UserWarning`` per real difference, worded like the reference
    decoder's. Components the file simply did not record are not warned about."""
    for d in drifts:
        if d.kind != "not_in_file":
            warnings.warn(d.message, UserWarning, stacklevel=stacklevel + 1)
