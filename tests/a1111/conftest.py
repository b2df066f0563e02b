"""Fixtures for the extension tests: a fresh harness webui per test, in a tmp dir."""

from __future__ import annotations

import os

import pytest

from .harness import Webui, uninstall

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module", autouse=True)
def _harness_modules():
    yield
    uninstall()


@pytest.fixture
def webui(tmp_path):
    return Webui(tmp_path)


@pytest.fixture
def make_webui(tmp_path):
    def make(mode: str = "a1111-1.10", **kwargs):
        return Webui(tmp_path, mode=mode, **kwargs)

    return make
