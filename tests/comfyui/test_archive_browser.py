"""The archive browser's two homes in headless Chromium (test_frontend.py's browser): the page of
``raiiaf serve`` and the ComfyUI sidebar tab, on ComfyUI 0.3.75's front end and the newest one
(--front-end-root), each over a generated catalog of 300,000 rows (tests/archive_data.py: a few
real files, the rest Parquet rows). Every query the page makes (open, prompt text, filters,
sort, next page) is timed in the page (performance.now around fetch + JSON + render) and must
answer in under 100 ms (best of 3: the machine is shared; the first search, made while the page
starts, is reported). The detail view shows settings, drift and passes; "Regenerate" gives the
webui's inputs (serve) or loads the workflow with the loader set to the file (ComfyUI).
Screenshots: test-artifacts/archive/; with RAIIAF_UPDATE_SCREENSHOTS=1 the README's own,
docs/archive-serve.png and docs/archive-comfyui.png (a test run leaves the checkout clean).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import raiiaf_rs

from . import test_frontend
from .harness import REPO, ComfyServer
from .test_frontend import APP, CURRENT_FRONTEND, HERE, open_page

sys.path.insert(0, str(REPO / "tests"))
from archive_data import big_catalog, write_files

browser = test_frontend.browser  # the fixture: headless Chromium, loopback only

ROWS = 300_000
LIMIT_MS = 100.0
ARTIFACTS = REPO / "test-artifacts" / "archive"
#: Where the screenshots go: the README's own only when asked to update them.
SHOTS = REPO / "docs" if os.environ.get("RAIIAF_UPDATE_SCREENSHOTS") == "1" else ARTIFACTS
TIMES: dict[str, dict[str, float]] = {}  # home -> query -> ms, printed at the end


def make_archive(folder: Path, catalog: Path) -> Path:
    """Real files under ``folder`` and a catalog of ROWS rows of them and generated ones."""
    write_files(folder)
    real = folder.parent / f"{folder.name}-real.parquet"
    raiiaf_rs.index([folder], real)
    catalog.parent.mkdir(parents=True, exist_ok=True)
    return big_catalog(real, catalog, rows=ROWS)


# --- driving the page ------------------------------------------------------------------------
def queries_done(page, root: str) -> int:
    return int(page.evaluate(f"Number(document.querySelector({root!r})?.dataset.queries ?? 0)"))


def timed(page, root: str, what: str, action, repeats: int = 1) -> dict:
    """Do ``action`` and wait for the query it makes; its timing, as the page measured it.
    With ``repeats``, the same query is made that many times in all (the page's own search
    function, same parameters): the machine running the tests is shared, so a query's time
    is its best of those; ``all`` has each."""
    runs = []
    for i in range(repeats):
        before = queries_done(page, root)
        if i == 0:
            action()
        else:
            page.evaluate(f"document.querySelector({root!r}).raiiafSearch('repeat')")
        page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel)?.dataset.queries ?? 0) > n",
            arg=[root, before],
            timeout=30_000,
        )
        runs.append(page.evaluate(f"document.querySelector({root!r}).raiiafTimings.at(-1)"))
    best = dict(min(runs, key=lambda t: t["ms"]))
    best["action"] = what
    best["all"] = [round(t["ms"], 1) for t in runs]
    return best


def drive(page, root: str) -> list[dict]:
    """The queries a user makes, each timed: text, filters, sort, next page, grouping."""
    at = lambda sel: page.locator(f"{root} {sel}")  # noqa: E731

    def fill(sel: str, value: str, event: str):
        def act():
            at(sel).fill(value)
            if event == "change":
                at(sel).dispatch_event("change")

        return act

    steps = [
        ("text search", fill("input[name=text]", "red fox", "input")),
        ("next page", lambda: at("button[name=next]").click()),
        ("sampler filter", lambda: at("select[name=sampler]").select_option("euler")),
        ("sort by seed", lambda: at("select[name=sort]").select_option("seed")),
        ("sort direction", lambda: at("button[name=descending]").click()),
        ("model filter", fill("input[name=model]", "flux", "change")),
        ("next page 2", lambda: at("button[name=next]").click()),
        ("drift filter", lambda: at("select[name=drift]").select_option("pixels")),
        ("group batches", lambda: at("input[name=group]").check()),
        ("clear text", fill("input[name=text]", "", "input")),
        ("min width", fill("input[name=min_width]", "1024", "change")),
        ("date range", fill("input[name=date_from]", "2023-11-20", "change")),
    ]
    return [timed(page, root, what, act, repeats=3) for what, act in steps]


def check_times(home: str, opened: dict, times: list[dict]) -> None:
    TIMES[home] = {t["action"]: round(t["ms"], 1) for t in [opened, *times]}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^\w.]+", "_", home)
    (ARTIFACTS / f"runs-{slug}.json").write_text(json.dumps([opened, *times], indent=1))
    print(f"\n{home}: query times in the page (ms): {json.dumps(TIMES[home])}")
    for t in [opened, *times]:
        parts = ", ".join(f"{k} {t[k]:.1f}" for k in ("fetch", "json", "render"))
        runs = t.get("all", [round(t["ms"], 1)])
        print(f"  {t['action']}: {t['ms']:.1f} ms ({parts}), runs {runs}, {t['total']} rows")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "times.json").write_text(json.dumps(TIMES, indent=1))
    assert opened["total"] == ROWS
    by = {t["action"]: t for t in times}
    assert 0 < by["text search"]["total"] < ROWS  # each step narrows or reorders something real
    assert by["next page"]["page"] == 1 and by["next page 2"]["page"] == 1
    assert by["sampler filter"]["total"] < by["text search"]["total"]
    # The page's first search runs while the page itself starts (script, styles, first
    # layout): reported, not a query a user makes.
    slow = {k: v for k, v in TIMES[home].items() if v >= LIMIT_MS and k != "open"}
    assert not slow, f"{home}: queries over {LIMIT_MS} ms: {slow}"


def clear_filters(page, root: str) -> None:
    """Every filter emptied (the sort kept), without searching."""
    page.evaluate(
        """(root) => {
          for (const e of document.querySelectorAll(`${root} .rarc-bar [name]`)) {
            if (e.type === "checkbox") e.checked = false;
            else if (e.tagName !== "BUTTON" && e.name !== "sort") e.value = "";
          }
        }""",
        root,
    )


def open_detail(page, root: str, seed: str) -> None:
    """Show the real file with ``seed`` (cleared filters, searched by seed) in the detail view."""
    clear_filters(page, root)
    timed(
        page,
        root,
        "seed",
        lambda: (
            page.locator(f"{root} input[name=seed]").fill(seed)
            or page.locator(f"{root} input[name=seed]").dispatch_event("change")
        ),
    )
    page.locator(f"{root} .rarc-card").first.click()
    page.locator(f"{root} [data-testid=detail] h3").first.wait_for(timeout=15_000)


# --- raiiaf serve ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`raiiaf serve` (the real command, its own process) on the test archive; its URL."""
    base = tmp_path_factory.mktemp("serve")
    catalog = make_archive(base / "files", base / "cache" / "catalog.parquet")
    cmd = [sys.executable, "-m", "raiiaf_rs.cli", "serve", str(base / "files"), "--port", "0"]
    cmd += ["--catalog", str(catalog), "--cache", str(base / "cache"), "--no-index"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        line = proc.stdout.readline()  # printed once the catalog is loaded and it listens
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, f"raiiaf serve did not start: {line}{proc.stdout.read()}"
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_page_searches_300k_rows_fast(browser, served):
    url = served
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort())
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url)
        root = "#archive"
        page.wait_for_function("Number(document.querySelector('#archive').dataset.queries) >= 1")
        opened = page.evaluate("document.querySelector('#archive').raiiafTimings[0]")
        opened["action"] = "open"
        check_times("raiiaf serve", opened, drive(page, root))
        # The detail of a real file: settings, drift (torch differs: red), passes, regenerate.
        open_detail(page, root, "1003")
        detail = page.locator(f"{root} [data-testid=detail]")
        assert detail.get_attribute("data-name") == "day1/img_003.raiiaf"
        assert detail.locator("[data-component=torch].rarc-pixels").count() == 1
        assert detail.locator("[data-component=python].rarc-harmless").count() == 1
        assert detail.locator("[data-passes=tensors]").count() == 1
        assert detail.locator("tr[data-key=seed] td").first.inner_text() == "1003"
        command = detail.locator("[data-testid=command]").inner_text()
        assert "alwayson_scripts" in command and "img_003.raiiaf" in command
        page.wait_for_function(
            "() => document.querySelector('#archive [data-testid=detail] img')?.naturalWidth === 96"
        )
        page.screenshot(path=str(ARTIFACTS / "serve-detail.png"))
        detail.locator("button[name=close]").click()
        # The file with passes shows them.
        open_detail(page, root, "1005")
        assert detail.locator("[data-passes=passes] tr[data-key=role] td").inner_text() == "txt2img"
        detail.locator("button[name=close]").click()
        timed(
            page,
            root,
            "clear",
            lambda: (
                page.locator(f"{root} input[name=seed]").fill("")
                or page.locator(f"{root} input[name=seed]").dispatch_event("change")
            ),
        )
        page.wait_for_timeout(500)  # thumbnails
        page.screenshot(path=str(SHOTS / "archive-serve.png"))
        assert errors == []
    finally:
        context.close()


# --- the ComfyUI sidebar tab ----------------------------------------------------------------------
TAB = "raiiaf-archive"
TAB_ROOT = ".rarc"  # the mounted page's element is its parent


def tab_page(browser, server) -> tuple:
    """A page of ``server`` with the archive tab open; (context, page, root selector)."""
    context, page = open_page(browser, server)
    page.locator(f".{TAB}-tab-button, [data-testid={TAB}-tab-button]").first.click()
    page.wait_for_function(
        "Number(document.querySelector('.rarc')?.parentElement?.dataset.queries ?? 0) >= 1",
        timeout=60_000,
    )
    page.evaluate("document.querySelector('.rarc').parentElement.id = 'raiiaf-tab'")
    return context, page, "#raiiaf-tab"


def comfy_archive(server) -> None:
    """The test archive in ``server``'s output directory, its catalog where the tab reads it,
    loaded (as it is at start-up when the catalog exists then)."""
    catalog = Path(server.base_dir) / "user" / "raiiaf" / "catalog.parquet"
    make_archive(server.output_dir / "archive", catalog)
    with urllib.request.urlopen(server.url + "/api/raiiaf/archive/facets", timeout=600) as r:
        assert "euler" in json.load(r)["samplers"]


def checkpoint(page) -> str:
    return page.evaluate(
        f"{APP}.graph.nodes.find(n => n.type === 'CheckpointLoaderSimple').widgets[0].value"
    )


def check_tab(browser, server, home: str, shot: Path | None) -> None:
    context, page, root = tab_page(browser, server)
    try:
        opened = page.evaluate(f"document.querySelector({root!r}).raiiafTimings[0]")
        opened["action"] = "open"
        check_times(home, opened, drive(page, root))
        # The list, smallest seeds first (the real files, with thumbnails).
        clear_filters(page, root)
        timed(
            page,
            root,
            "list",
            lambda: page.evaluate(f"document.querySelector({root!r}).raiiafSearch('list')"),
        )
        page.wait_for_timeout(1000)  # thumbnails
        if shot is not None:
            page.screenshot(path=str(shot))
        open_detail(page, root, "1003")
        detail = page.locator(f"{root} [data-testid=detail]")
        name = "archive/day1/img_003.raiiaf [output]"
        assert detail.get_attribute("data-name") == name
        assert detail.locator("[data-component=torch].rarc-pixels").count() == 1
        assert "null" not in detail.inner_text()
        page.screenshot(path=str(ARTIFACTS / f"tab-detail-{shot.stem if shot else 'x'}.png"))
        # Regenerate: one click loads the reload workflow, the loader set to the file.
        detail.locator("button[name=regenerate]").click()
        page.wait_for_function(
            f"{APP}.graph.nodes.some(n => n.type === 'RaiiafLoad' "
            f"&& n.widgets[0].value === {json.dumps(name)})",
            timeout=30_000,
        )
        file = server.output_dir / "archive" / "day1" / "img_003.raiiaf"
        assert checkpoint(page) == raiiaf_rs.read(file).metadata["model_name"]
        # A file whose stored workflow has a loader: that workflow, the loader set to the file.
        page.locator(f"{root} [data-testid=detail] button[name=close]").click()
        open_detail(page, root, "1007")
        name = "archive/day2/img_007.raiiaf [output]"
        page.locator(f"{root} [data-testid=detail] button[name=regenerate]").click()
        page.wait_for_function(
            f"{APP}.graph.nodes.some(n => n.type === 'RaiiafLoad' "
            f"&& n.widgets[0].value === {json.dumps(name)})",
            timeout=30_000,
        )
        stored = json.loads((REPO / "workflows" / "raiiaf_reload_ksampler.json").read_text())
        assert page.evaluate(f"{APP}.graph.nodes.length") == len(stored["nodes"])
        (ckpt,) = [n for n in stored["nodes"] if n["type"] == "CheckpointLoaderSimple"]
        assert checkpoint(page) == ckpt["widgets_values"][0]  # the stored workflow as it is
        assert page.errors == [], page.errors
    finally:
        context.close()


def test_comfyui_tab_searches_300k_rows_fast(comfy, browser):
    comfy_archive(comfy)
    check_tab(browser, comfy, "ComfyUI 0.3.75 tab", SHOTS / "archive-comfyui.png")


def test_comfyui_tab_on_the_newest_front_end(browser, tmp_path_factory):
    version = re.search(r"==([\w.]+)", (HERE / "frontend-current.txt").read_text()).group(1)
    if not (CURRENT_FRONTEND / "index.html").is_file():
        pytest.fail(f"no front end in {CURRENT_FRONTEND}: run dev/setup_browser.sh", pytrace=False)
    root = ("--front-end-root", str(CURRENT_FRONTEND))
    with ComfyServer(tmp_path_factory.mktemp("archive_frontend"), extra_args=root) as server:
        comfy_archive(server)
        check_tab(
            browser, server, f"ComfyUI tab, front end {version}", ARTIFACTS / f"tab-{version}.png"
        )
