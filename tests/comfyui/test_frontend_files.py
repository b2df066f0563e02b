"""The loader's file list in the browser: a file saved in this session heads every
loader's list (those on the canvas and those added afterwards) without reloading the
page. Real ComfyUI (0.3.75 or 0.33.0) and its front end in headless Chromium (test_frontend.py's
browser and page set-up)."""

from __future__ import annotations

import json

import pytest

from .test_frontend import APP, browser, graphs, open_page  # noqa: F401 (browser: fixture)


@pytest.fixture(scope="module")
def page(comfy, browser):  # noqa: F811
    context, p = open_page(browser, comfy)
    yield p
    context.close()


FILES = """([cls]) => {
  const app = window.comfyAPI.app.app;
  return app.graph.nodes.filter((n) => n.type === cls)
    .map((n) => n.widgets.find((w) => w.name === "file").options.values[0]);
}"""

ADD_LOADER = """([cls]) => {
  const app = window.comfyAPI.app.app;
  const n = window.LiteGraph.createNode(cls);
  app.graph.add(n);
  return n.widgets.find((w) => w.name === "file").options.values[0];
}"""


def test_a_file_saved_now_heads_every_loader_list(comfy, page):
    nodes = graphs.save_ksampler(ckpt=comfy.ckpt, steps=2, width=64, height=64, prefix="fe_new")
    nodes.append(graphs.Node(30, "RaiiafLoad", [("file", "")], pos=(0, 900)))
    workflow = graphs.to_ui(nodes)
    page.evaluate(f"(wf) => {APP}.loadGraphData(wf)", workflow)
    page.evaluate(f"{APP}.queuePrompt(0, 1)")
    want = "fe_new_00001_.raiiaf [output]"
    # The loader on the canvas (set to no file: ComfyUI fingerprints it NaN, which the
    # prompt then carries) lists it first once the save has run.
    page.wait_for_function(
        f"(want) => ({FILES})(['RaiiafLoad'])[0] === want", arg=want, timeout=120_000
    )
    # Loaders added afterwards list it first too, the batch loader as well.
    for cls in ("RaiiafLoad", "RaiiafLoadBatch"):
        assert page.evaluate(ADD_LOADER, [cls]) == want, cls
    assert not [e for e in page.errors if "error" in json.dumps(e).lower()]
