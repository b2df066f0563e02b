"""The front-end extension (comfy_nodes/web/raiiaf.js) and its routes (comfy_nodes/routes.py)
in the real ComfyUI (0.3.75 or 0.33.0) with its real front end, driven in Debian's Chromium by
Playwright (headless, loopback only: every other request is refused).

A .raiiaf written by running the save graph is dropped on the canvas: its workflow loads
node by node; running it makes the save node show what it saved; a file without a
workflow opens a "Load .raiiaf" node that shows what the file holds; a bad file gives a
message and changes nothing. Screenshots of each step go to test-artifacts/frontend/.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import raiiaf_rs
from PIL import Image

from .harness import COMFYUI_DIR, REPO, ComfyServer

sys.path.insert(0, str(REPO / "workflows"))
import graphs

HERE = Path(__file__).parent
ARTIFACTS = REPO / "test-artifacts" / "frontend"
CURRENT_FRONTEND = REPO / ".comfyui" / "frontend-current" / "static"
CHROMIUM = os.environ.get("RAIIAF_CHROMIUM") or shutil.which("chromium")
SEED, STEPS, SIZE = 31337, 4, 64
APP = "window.comfyAPI.app.app"


# --- HTTP ----------------------------------------------------------------------------------
def http(comfy, path: str, data: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON body, raw text) of a request to the server."""
    req = urllib.request.Request(comfy.url + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return status, body, text


def inspect(comfy, name: str):
    return http(comfy, "/api/raiiaf/inspect?" + urllib.parse.urlencode({"file": name}))


def upload(comfy, filename: str, content: bytes, field: str = "file"):
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; "
        f'name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content
    body += f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return http(comfy, "/api/raiiaf/upload", body, headers)


def input_dir(comfy) -> Path:
    return Path(comfy.base_dir) / "input"


# --- files -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(comfy) -> Path:
    """A .raiiaf written by the save graph, queued with its UI workflow as the page would."""
    nodes = graphs.save_ksampler(
        ckpt=comfy.ckpt, seed=SEED, steps=STEPS, width=SIZE, height=SIZE, prefix="fe_saved"
    )
    extra = {"extra_pnginfo": {"workflow": graphs.to_ui(nodes)}}
    entry = comfy.run(graphs.to_api(nodes), extra_data=extra, timeout=300)
    # The save node tells the front end which .raiiaf files it wrote (loader choices).
    (choice,) = entry["outputs"]["9"]["raiiaf"]
    assert choice.endswith(".raiiaf [output]")
    return comfy.output_dir / choice[: -len(" [output]")]


@pytest.fixture(scope="module")
def bare(saved, tmp_path_factory) -> Path:
    """The same image and noise without a workflow or prompt, recorded with another torch
    (can change pixels) and another Python (harmless)."""
    art = raiiaf_rs.read(saved)
    meta = {k: v for k, v in art.metadata.items() if k != "comfyui"}
    changed = {
        "torch": "name=torch;version=1.13.1;cuda=11.7",
        "python": "name=python;version=3.9.0",
    }
    env = raiiaf_rs.environment_document(
        (c["component_id"], changed.get(c["component_id"], c["cononical_str"]))
        for c in art.environment["components"]
    )
    path = tmp_path_factory.mktemp("bare") / "fe_bare.raiiaf"
    raiiaf_rs.write(path, art.latents, art.image, meta, environment=env)
    return path


# --- the routes --------------------------------------------------------------------------------
def test_inspect_describes_a_saved_file(comfy, saved):
    name = saved.name + " [output]"
    status, body, text = inspect(comfy, name)
    assert status == 200, text
    stored = raiiaf_rs.read(saved).metadata["comfyui"]
    assert body["name"] == name
    assert body["workflow"] == stored["workflow"] and body["prompt"] == stored["prompt"]
    s = body["summary"]
    assert (s["seed"], s["steps"], s["sampler"], s["scheduler"], s["cfg"]) == (
        SEED,
        STEPS,
        "euler",
        "normal",
        7.0,
    )
    assert (s["prompt"], s["negative"], s["model"]) == (
        graphs.POSITIVE,
        graphs.NEGATIVE,
        comfy.ckpt,
    )
    assert s["noise"] == [{"name": "initial_noise", "shape": [1, 4, 8, 8], "dtype": "float32"}]
    assert s["image"] == {"width": SIZE, "height": SIZE}
    # Saved by this very server: nothing in the environment differs.
    assert body["drift"] == []
    prefix = "data:image/png;base64,"
    assert body["thumbnail"].startswith(prefix)
    thumb = Image.open(io.BytesIO(base64.b64decode(body["thumbnail"][len(prefix) :])))
    assert thumb.size == (SIZE, SIZE)
    assert str(comfy.base_dir) not in text


def test_inspect_flags_environment_drift(comfy, bare):
    (input_dir(comfy) / "fe_drift.raiiaf").write_bytes(bare.read_bytes())
    status, body, text = inspect(comfy, "fe_drift.raiiaf")
    assert status == 200, text
    assert body["workflow"] is None and body["prompt"] is None
    drift = {d["component"]: d for d in body["drift"]}
    assert drift["torch"]["affects_pixels"] and drift["torch"]["kind"] == "changed"
    assert drift["torch"]["stored"] == "name=torch;version=1.13.1;cuda=11.7"
    assert not drift["python"]["affects_pixels"]
    assert body["drift"][0]["affects_pixels"]  # pixel-changing differences first


def test_inspect_reads_only_what_the_loader_may(comfy, saved):
    inputs = input_dir(comfy)
    secret = Path(comfy.base_dir) / "fe_secret.raiiaf"
    secret.write_bytes(saved.read_bytes())
    link = inputs / "fe_link.raiiaf"
    if not link.is_symlink():
        link.symlink_to(secret)
    (inputs / "fe_junk.raiiaf").write_bytes(b"junk" * 100)
    damaged = bytearray(saved.read_bytes())
    damaged[100] ^= 0xFF
    (inputs / "fe_damaged.raiiaf").write_bytes(bytes(damaged))
    cases = {
        "../fe_secret.raiiaf": "input or output director",
        "fe_link.raiiaf": "outside",
        "fe_missing.raiiaf": "does not exist",
        "fe_junk.raiiaf": "fe_junk.raiiaf: not a readable .raiiaf file",
        "fe_damaged.raiiaf": "fe_damaged.raiiaf: the file was altered or damaged",
        "": "no .raiiaf file selected",
    }
    for name, message in cases.items():
        status, body, text = inspect(comfy, name)
        assert status == 400 and message in body["error"], (name, text)
        assert str(comfy.base_dir) not in text and "/tmp" not in text, (name, text)
    status, body, _ = inspect(comfy, str(secret))  # an absolute path: refused
    assert status == 400 and "not a file in ComfyUI's input or output directory" in body["error"]


def test_upload_checks_and_stores_under_safe_names(comfy, saved, bare):
    inputs = input_dir(comfy)
    data = saved.read_bytes()
    status, body, text = upload(comfy, "../../fe up<load>:1.RAIIAF", data)
    assert status == 200, text
    assert body["name"] == "fe up_load__1.raiiaf"  # no folders, no odd characters
    assert (inputs / body["name"]).read_bytes() == data
    assert body["workflow"] == raiiaf_rs.read(saved).metadata["comfyui"]["workflow"]
    assert body["summary"]["seed"] == SEED
    # The same bytes again: the same file. Other bytes under that name: a new name.
    assert upload(comfy, "fe up_load__1.raiiaf", data)[1]["name"] == "fe up_load__1.raiiaf"
    other = upload(comfy, "fe up_load__1.raiiaf", bare.read_bytes())[1]
    assert other["name"] == "fe up_load__1 (1).raiiaf"
    assert upload(comfy, ".fe_hidden", data)[1]["name"] == "fe_hidden.raiiaf"

    before = sorted(os.listdir(inputs))
    damaged = bytearray(data)
    damaged[100] ^= 0xFF
    for name, content, message in (
        ("fe_bad.raiiaf", b"not a raiiaf file", "fe_bad.raiiaf: not a readable .raiiaf file"),
        ("fe_bad.raiiaf", bytes(damaged), "fe_bad.raiiaf: the file was altered or damaged"),
        ("fe_bad.raiiaf", data[:3000], "fe_bad.raiiaf: not a readable .raiiaf file (truncated"),
    ):
        status, body, text = upload(comfy, name, content)
        assert status == 400 and body["error"].startswith(message), text
        assert str(comfy.base_dir) not in text and ".part" not in text, text
    status, body, _ = upload(comfy, "fe_bad.raiiaf", data, field="image")
    assert status == 400 and "'file' field" in body["error"]
    # Nothing was stored, and no temporary file is left behind.
    assert sorted(os.listdir(inputs)) == before


# --- the page ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.fail(
            "no chromium on PATH: run dev/setup_browser.sh (make setup) or set RAIIAF_CHROMIUM",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # No name resolves: only the loopback server is reachable.
        args = [
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--disable-dev-shm-usage",
        ]
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


def open_page(browser, server):
    """A page of ``server``'s front end, once the pack's extension is set up; (context, page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A fresh ComfyUI user opens the template browser on first load: say it has been seen.
    json_type = {"Content-Type": "application/json"}
    http(server, "/settings/Comfy.TutorialCompleted", b"true", json_type)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    loopback = f"http://127.0.0.1:{server.port}/"
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(loopback) else route.abort()
        ),
    )
    context.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
    p = context.new_page()
    p.errors = []  # page errors, and console messages about the pack
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("console", lambda m: p.errors.append(m.text) if "raiiaf" in m.text.lower() else None)
    p.goto(server.url)
    p.wait_for_function(
        "window.comfyAPI?.app?.app?.handleFile?.raiiaf === true && !!window.comfyAPI.app.app.graph",
        timeout=90_000,
    )
    # The front end goes on loading its start-up graph after that (1.48.7: a file dropped at
    # once is replaced by it); once its requests are done, it is settled.
    p.wait_for_load_state("networkidle")
    return context, p


def shipped_frontend() -> str:
    """The front-end version the ComfyUI under test pins (its requirements.txt)."""
    reqs = (COMFYUI_DIR / "requirements.txt").read_text()
    found = re.search(r"^comfyui-frontend-package==([\w.]+)", reqs, re.M)
    assert found, f"no comfyui-frontend-package pin in {COMFYUI_DIR}/requirements.txt"
    return found.group(1)


@pytest.fixture(scope="module")
def page(comfy, browser):
    context, p = open_page(browser, comfy)
    # The front end this ComfyUI ships (0.3.75: 1.32.9; 0.33.0: 1.48.7).
    assert p.evaluate("window.__COMFYUI_FRONTEND_VERSION__") == shipped_frontend()
    yield p
    context.close()


def shot(page, name: str, clip: dict | None = None) -> None:
    page.wait_for_timeout(300)  # let the canvas and DOM widgets catch up
    page.screenshot(path=str(ARTIFACTS / name), clip=clip)


DROP = """async ([b64, name, nodeId]) => {
  const app = window.comfyAPI.app.app;
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name));
  const canvas = app.canvasEl ?? document.querySelector("#graph-canvas");
  const r = canvas.getBoundingClientRect();
  const ds = app.canvas.ds;  // litegraph: OffsetToCanvas is graph -> screen
  let at = null;
  if (nodeId !== null) {
    const n = app.graph.getNodeById(nodeId);
    at = ds.convertOffsetToCanvas([n.pos[0] + Math.min(n.size[0] / 2, 100), n.pos[1] + 10]);
  } else {  // an empty spot of the canvas
    for (let y = 0.1; y < 1 && !at; y += 0.1)
      for (let x = 0.1; x < 1 && !at; x += 0.1) {
        const p = [r.width * x, r.height * y];
        if (!app.graph.getNodeOnPos(...ds.convertCanvasToOffset(p))) at = p;
      }
  }
  const opts = { dataTransfer: dt, bubbles: true, cancelable: true,
                 clientX: r.left + at[0], clientY: r.top + at[1] };
  canvas.dispatchEvent(new DragEvent("dragover", opts));
  canvas.dispatchEvent(new DragEvent("drop", opts));
}"""


def drop(page, name: str, content: bytes, node_id: int | None = None) -> None:
    """Drop a file named ``name`` on the canvas (or on node ``node_id``), as a user would."""
    if node_id is not None:
        show_node(page, node_id)
    page.evaluate(DROP, [base64.b64encode(content).decode(), name, node_id])


def graph_nodes(page) -> list[dict]:
    """The canvas's nodes; ids as strings (numbers up to front end 1.3x, strings in 1.48)."""
    return page.evaluate(
        f"{APP}.graph.serialize().nodes.map(n => ({{id: String(n.id), type: n.type, "
        "widgets_values: n.widgets_values ?? []}))"
    )


def panel(page, node_id: int) -> dict:
    """What the raiiaf panel of node ``node_id`` shows."""
    return page.evaluate(
        """(id) => {
          const node = window.comfyAPI.app.app.graph.getNodeById(id);
          const div = node.widgets?.find((w) => w.name === "raiiaf_info")?.raiiafElement;
          if (!div) return null;
          const rows = {};
          for (const tr of div.querySelectorAll("tr")) rows[tr.dataset.key] = tr.cells[1].innerText;
          const img = div.querySelector("img");
          return { state: div.dataset.state, file: div.dataset.file, rows, text: div.innerText,
                   visible: div.getBoundingClientRect().height > 0,
                   image: img ? img.naturalWidth : 0,
                   pixels: [...div.querySelectorAll("[data-component].raiiaf-pixels")]
                     .map((e) => e.dataset.component),
                   harmless: [...div.querySelectorAll("[data-component].raiiaf-harmless")]
                     .map((e) => e.dataset.component) };
        }""",
        node_id,
    )


def wait_panel(page, node_id: int, file: str | None) -> dict:
    """The panel of node ``node_id`` once it shows ``file`` (None: any file)."""
    page.wait_for_function(
        """([id, file]) => {
          const n = window.comfyAPI.app.app.graph.getNodeById(id);
          const d = n?.widgets?.find((w) => w.name === "raiiaf_info")?.raiiafElement;
          const img = d?.querySelector("img");
          return d?.dataset.state === "ok" && (file === null || d.dataset.file === file)
            && (!img || img.complete);
        }""",
        arg=[node_id, file],
        timeout=30_000,
    )
    return panel(page, node_id)


def node_clip(page, node_id: int, pad: int = 12) -> dict:
    """The node's rectangle on the page, title bar included, for a cropped screenshot."""
    return page.evaluate(
        """([id, pad]) => {
          const app = window.comfyAPI.app.app;
          const n = app.graph.getNodeById(id);
          const canvas = app.canvasEl ?? document.querySelector("#graph-canvas");
          const r = canvas.getBoundingClientRect();
          const s = app.canvas.ds.scale, title = 30;
          const [x, y] = app.canvas.ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - title]);
          return { x: Math.max(0, r.left + x - pad), y: Math.max(0, r.top + y - pad),
                   width: n.size[0] * s + 2 * pad, height: (n.size[1] + title) * s + 2 * pad };
        }""",
        [node_id, pad],
    )


def show_node(page, node_id: int) -> None:
    """Scale 1, the node near the canvas's top left corner."""
    page.evaluate(
        """(id) => {
          const app = window.comfyAPI.app.app;
          const n = app.graph.getNodeById(id);
          app.canvas.ds.scale = 1;
          app.canvas.ds.offset = [120 - n.pos[0], 140 - n.pos[1]];
          app.canvas.setDirty(true, true);
        }""",
        node_id,
    )


def js_json(value) -> str:
    """A JavaScript string literal holding what JSON.stringify gives for ``value``."""
    return json.dumps(json.dumps(value, separators=(",", ":")))


def links(workflow: dict) -> list:
    return sorted(tuple(str(v) for v in link[1:6]) for link in workflow["links"])


def test_page_loads_the_extension(comfy, page):
    assert "/extensions/raiiaf-rs/raiiaf.js" in comfy.get_json("/extensions")
    assert page.evaluate(f"{APP}.handleFile.raiiaf") is True
    shot(page, "01-page.png")
    assert page.errors == []


def test_drop_loads_the_stored_workflow_node_by_node(comfy, page, saved):
    stored = raiiaf_rs.read(saved).metadata["comfyui"]["workflow"]
    drop(page, saved.name, saved.read_bytes())
    want = sorted((n["id"], n["type"]) for n in stored["nodes"])
    page.wait_for_function(
        f"JSON.stringify({APP}.graph.nodes.map(n => [String(n.id), n.type])"
        f".sort((a, b) => a[0] - b[0])) === {js_json([[str(i), t] for i, t in want])}",
        timeout=30_000,
    )
    page.get_by_text(f"Opened {saved.name}").first.wait_for(timeout=10_000)
    loaded = {n["id"]: n for n in graph_nodes(page)}
    for node in stored["nodes"]:
        got = loaded[str(node["id"])]
        assert got["type"] == node["type"]
        assert got["widgets_values"] == node["widgets_values"], node["type"]
    assert links(page.evaluate(f"{APP}.graph.serialize()")) == links(stored)
    # The dropped file was stored in the input directory for the loader.
    assert (input_dir(comfy) / saved.name).read_bytes() == saved.read_bytes()
    shot(page, "02-dropped-workflow.png")
    assert page.errors == []


def test_the_save_node_shows_what_it_saved(page, saved):
    page.evaluate(f"{APP}.graph.clear()")
    drop(page, saved.name, saved.read_bytes())
    page.wait_for_function(f"{APP}.graph.nodes.some(n => n.type === 'RaiiafSaveImage')")
    # Run the save graph from the page. It is the prompt the file came from, so ComfyUI
    # may answer from its cache: the name of the file is not known here.
    page.evaluate(f"{APP}.queuePrompt(0, 1)")
    got = wait_panel(page, 9, None)
    assert re.fullmatch(r"fe_saved_\d{5}_\.raiiaf \[output\]", got["file"]), got["file"]
    assert got["visible"] and got["image"] == 0  # the node's own preview shows the image
    assert got["rows"]["seed"] == str(SEED) and got["rows"]["steps"] == str(STEPS)
    assert got["rows"]["initial_noise"] == "float32 [1, 4, 8, 8]"
    assert "same as this ComfyUI" in got["text"]
    show_node(page, 9)
    shot(page, "03-save-node.png")
    assert page.errors == []


def test_the_open_workflow_picker_takes_raiiaf_files(page, bare):
    picker = "#comfy-file-input"  # the "Open workflow" button's file input
    assert ".raiiaf" in page.get_attribute(picker, "accept").split(",")
    page.evaluate(f"{APP}.graph.clear()")
    page.set_input_files(
        picker,
        files=[{"name": bare.name, "mimeType": "", "buffer": bare.read_bytes()}],
    )
    page.wait_for_function(f"{APP}.graph.nodes[0]?.type === 'RaiiafLoad'", timeout=30_000)
    (node_id,) = page.evaluate(f"{APP}.graph.nodes.map(n => n.id)")
    assert wait_panel(page, node_id, bare.name)["rows"]["seed"] == str(SEED)
    assert page.errors == []


def test_drop_without_workflow_opens_a_loader_showing_the_file(page, bare):
    page.evaluate(f"{APP}.graph.clear()")  # so that the wait below sees the new graph
    drop(page, bare.name, bare.read_bytes())
    page.wait_for_function(
        f"{APP}.graph.nodes.length === 1 && {APP}.graph.nodes[0].type === 'RaiiafLoad'",
        timeout=30_000,
    )
    (node_id,) = page.evaluate(f"{APP}.graph.nodes.map(n => n.id)")
    got = wait_panel(page, node_id, bare.name)
    assert page.evaluate(f"{APP}.graph.getNodeById({node_id}).widgets[0].value") == bare.name
    rows = got["rows"]
    assert rows["prompt"] == graphs.POSITIVE and rows["negative"] == graphs.NEGATIVE
    assert rows["seed"] == str(SEED) and rows["steps"] == str(STEPS)
    assert rows["sampler"] == "euler / normal" and rows["cfg"] == "7"
    assert rows["initial_noise"] == "float32 [1, 4, 8, 8]"
    assert got["image"] == SIZE and got["visible"]  # the thumbnail, loaded
    assert "torch" in got["pixels"] and "python" in got["harmless"]
    assert "difference can change the pixels" in got["text"]
    show_node(page, node_id)
    shot(page, "04-loader.png")
    shot(page, "loader-node.png", clip=node_clip(page, node_id))
    assert page.errors == []


def test_drop_with_only_an_api_prompt_loads_that(page, saved, tmp_path):
    """A file saved from a prompt queued through the API has no UI workflow: its prompt
    is loaded instead, as ComfyUI does for such PNGs."""
    art = raiiaf_rs.read(saved)
    meta = dict(art.metadata, comfyui={**art.metadata["comfyui"], "workflow": None})
    path = tmp_path / "fe_api.raiiaf"
    raiiaf_rs.write(path, art.latents, art.image, meta, environment=art.environment)
    page.evaluate(f"{APP}.graph.clear()")
    drop(page, path.name, path.read_bytes())
    want = sorted(n["class_type"] for n in meta["comfyui"]["prompt"].values())
    page.wait_for_function(
        f"JSON.stringify({APP}.graph.nodes.map(n => n.type).sort()) === {js_json(want)}",
        timeout=30_000,
    )
    assert page.errors == []


def test_drop_selects_the_file_in_the_workflows_loader(page, saved, tmp_path):
    """A stored workflow that has "Load .raiiaf" nodes gets the dropped file selected in them."""
    art = raiiaf_rs.read(saved)
    workflow = graphs.to_ui(graphs.reload_ksampler(file="elsewhere.raiiaf"))
    meta = dict(art.metadata, comfyui={**art.metadata["comfyui"], "workflow": workflow})
    path = tmp_path / "fe_reload.raiiaf"
    raiiaf_rs.write(path, art.latents, art.image, meta, environment=art.environment)
    page.evaluate(f"{APP}.graph.clear()")
    drop(page, path.name, path.read_bytes())
    got = wait_panel(page, 10, path.name)  # node 10: the loader of graphs.reload_ksampler
    assert got["rows"]["seed"] == str(SEED)
    assert page.evaluate(f"{APP}.graph.nodes.length") == len(workflow["nodes"])
    assert page.evaluate(f"{APP}.graph.getNodeById(10).widgets[0].value") == path.name
    assert page.errors == []


def test_drop_on_a_loader_node_selects_the_file_there(page, saved, bare):
    page.evaluate(f"{APP}.graph.clear()")  # so that the wait below sees the new graph
    drop(page, bare.name, bare.read_bytes())  # a graph holding one loader
    page.wait_for_function(f"{APP}.graph.nodes[0]?.type === 'RaiiafLoad'", timeout=30_000)
    (node_id,) = page.evaluate(f"{APP}.graph.nodes.map(n => n.id)")
    wait_panel(page, node_id, bare.name)
    drop(page, saved.name, saved.read_bytes(), node_id=node_id)
    got = wait_panel(page, node_id, saved.name)
    assert page.evaluate(f"{APP}.graph.nodes.length") == 1  # no workflow was loaded
    assert got["pixels"] == [] and "same as this ComfyUI" in got["text"]
    assert page.errors == []


def complete_png(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except (OSError, SyntaxError):  # not there yet, or still being written
        return False


RELINK = """([from, to]) => {
  const app = window.comfyAPI.app.app;
  const loader = app.graph.getNodeById(from), sampler = app.graph.getNodeById(to);
  const made = {};
  for (const name of ["sampler_name", "scheduler"]) {
    const input = sampler.inputs.find((i) => i.name === name);
    if (input?.link != null) sampler.disconnectInput(sampler.inputs.indexOf(input));
    const slot = loader.outputs.findIndex((o) => o.name === name);
    // What dragging the output onto the input does: the front end checks the types.
    const link = loader.connect(slot, sampler, sampler.inputs.indexOf(input));
    const origin = link ? app.graph.links[link.id ?? link]?.origin_id : null;
    made[name] = origin == null ? null : String(origin);  // a number or a string: by version
  }
  return made;
}"""


def test_the_loaders_sampler_and_scheduler_link_into_ksampler(comfy, page, saved):
    """The loader's sampler_name and scheduler outputs connect to KSampler's combo inputs in
    this front end, and the graph queued from the page regenerates the saved image (ComfyUI
    >= 0.8 refused these links at /prompt while the outputs were typed "COMBO")."""
    choice = saved.name + " [output]"
    nodes = graphs.reload_ksampler(file=choice, ckpt=comfy.ckpt, prefix="fe_relinked")
    page.evaluate(f"(wf) => {APP}.loadGraphData(wf)", graphs.to_ui(nodes))
    page.wait_for_function(f"{APP}.graph.getNodeById(10)?.type === 'RaiiafLoad'")
    assert page.evaluate(RELINK, [10, 3]) == {"sampler_name": "10", "scheduler": "10"}
    prompt = page.evaluate(f"async () => (await {APP}.graphToPrompt()).output")
    assert prompt["3"]["inputs"]["sampler_name"] == ["10", 7]
    assert prompt["3"]["inputs"]["scheduler"] == ["10", 8]
    page.evaluate(f"{APP}.queuePrompt(0, 1)")
    again = comfy.output_dir / "fe_relinked_00001_.png"
    deadline = time.monotonic() + 120
    while not complete_png(again):  # refused at /prompt, it never comes
        assert time.monotonic() < deadline, f"no {again.name}: {page.errors}"
        page.wait_for_timeout(250)
    original = Image.open(saved.with_suffix(".png")).convert("RGB")
    assert Image.open(again).convert("RGB").tobytes() == original.tobytes()
    assert page.errors == []
    # The SaveImage node goes on resizing to show the image: leave a still canvas behind.
    page.evaluate(f"{APP}.graph.clear()")


def test_a_bad_file_shows_a_message_and_changes_nothing(comfy, page, saved):
    before = page.evaluate(f"JSON.stringify({APP}.graph.serialize().nodes)")
    stored = sorted(os.listdir(input_dir(comfy)))
    drop(page, "fe_broken.raiiaf", b"this is not a raiiaf file")
    page.get_by_text("Cannot open fe_broken.raiiaf").first.wait_for(timeout=30_000)
    page.get_by_text("fe_broken.raiiaf: not a readable .raiiaf file").first.wait_for(timeout=5_000)
    shot(page, "05-bad-file.png")
    assert page.evaluate(f"JSON.stringify({APP}.graph.serialize().nodes)") == before
    assert sorted(os.listdir(input_dir(comfy))) == stored
    # The page still works: other files still reach ComfyUI's own handler, .raiiaf ours.
    workflow = REPO / "workflows" / "raiiaf_reload_ksampler.json"
    drop(page, workflow.name, workflow.read_bytes())
    want = sorted(n["type"] for n in json.loads(workflow.read_text())["nodes"])
    page.wait_for_function(
        f"JSON.stringify({APP}.graph.nodes.map(n => n.type).sort()) === {js_json(want)}",
        timeout=30_000,
    )
    drop(page, saved.name, saved.read_bytes())
    page.wait_for_function(f"{APP}.graph.nodes.some(n => n.type === 'RaiiafSaveImage')")
    assert page.errors == []


def test_a_current_front_end_works_too(browser, saved, bare, tmp_path_factory):
    """The same extension with the newest front end (tests/comfyui/frontend-current.txt),
    served by a second server: the hook (app.handleFile) and the panel work there too."""
    version = re.search(r"==([\w.]+)", (HERE / "frontend-current.txt").read_text()).group(1)
    if not (CURRENT_FRONTEND / "index.html").is_file():
        pytest.fail(f"no front end in {CURRENT_FRONTEND}: run dev/setup_browser.sh", pytrace=False)
    root = ("--front-end-root", str(CURRENT_FRONTEND))
    with ComfyServer(tmp_path_factory.mktemp("current_frontend"), extra_args=root) as server:
        context, page = open_page(browser, server)
        try:
            assert page.evaluate("window.__COMFYUI_FRONTEND_VERSION__") == version
            stored = raiiaf_rs.read(saved).metadata["comfyui"]["workflow"]
            drop(page, saved.name, saved.read_bytes())
            want = sorted(n["type"] for n in stored["nodes"])
            page.wait_for_function(
                f"JSON.stringify({APP}.graph.nodes.map(n => n.type).sort()) === {js_json(want)}",
                timeout=30_000,
            )
            page.evaluate(f"{APP}.graph.clear()")
            drop(page, bare.name, bare.read_bytes())
            page.wait_for_function(f"{APP}.graph.nodes[0]?.type === 'RaiiafLoad'", timeout=30_000)
            (node_id,) = page.evaluate(f"{APP}.graph.nodes.map(n => n.id)")
            got = wait_panel(page, node_id, bare.name)
            assert got["rows"]["seed"] == str(SEED) and got["image"] == SIZE
            assert got["rows"]["initial_noise"] == "float32 [1, 4, 8, 8]"
            assert "torch" in got["pixels"]
            drop(page, "fe_broken.raiiaf", b"this is not a raiiaf file")
            page.get_by_text("fe_broken.raiiaf: not a readable .raiiaf file").first.wait_for(
                timeout=30_000
            )
            show_node(page, node_id)
            shot(page, f"06-frontend-{version}.png")
            assert page.errors == []
        finally:
            context.close()
