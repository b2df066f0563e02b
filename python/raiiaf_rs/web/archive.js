// raiiaf-rs archive browser: one ES module for both homes (plain JavaScript, no build step,
// nothing downloaded). `raiiaf serve DIR` loads it from its page (archive.html); the ComfyUI
// pack's sidebar tab (comfy_nodes/web/raiiaf_archive.js) imports it from the pack's route.
//
//   mount(element, { fetchApi, url, regenerate, title })
//
// fetchApi(path, options) -> Response and url(path) -> string map the API's paths
// ("/raiiaf/archive/...", raiiaf_rs/archive_api.py) to the home's server; regenerate(detail)
// is the home's "Regenerate" (absent: the detail's `regenerate` block is shown instead).
// Every query is timed in the page (fetch + JSON + render) and the times are kept in
// element.raiiafTimings and window.raiiafArchiveTimings, newest last.

import { answer } from "./answer.js"; // served beside this module by both homes

const API = "/raiiaf/archive/";
const PER_PAGE = 60;

const STYLE = `
.rarc { box-sizing: border-box; display: flex; flex-direction: column; height: 100%; min-height: 0;
  font: 13px/1.4 system-ui, sans-serif; color: var(--fg-color, #ddd); background: var(--bg-color, #1c1c1f); }
.rarc * { box-sizing: border-box; }
.rarc-bar { display: flex; flex-wrap: wrap; gap: 6px; padding: 8px; border-bottom: 1px solid #333; }
.rarc-bar input, .rarc-bar select, .rarc-bar button, .rarc-detail button {
  font: inherit; color: inherit; background: #2a2a2e; border: 1px solid #444; border-radius: 4px; padding: 3px 6px; }
.rarc-bar input[name=text] { flex: 1 1 100%; font-size: 14px; padding: 5px 8px; }
.rarc-bar input[type=number] { width: 6.5em; }
.rarc-bar label { display: inline-flex; gap: 4px; align-items: center; opacity: 0.9; }
.rarc-status { padding: 4px 8px; opacity: 0.75; font-size: 12px; display: flex; gap: 8px; align-items: center; }
.rarc-status .rarc-error { color: #f77; opacity: 1; }
.rarc-grid { flex: 1 1 auto; overflow: auto; padding: 8px; display: grid; gap: 8px;
  grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); grid-auto-rows: max-content;
  align-content: start; }
.rarc-card { background: #26262a; border: 1px solid #333; border-radius: 6px; overflow: hidden; cursor: pointer;
  display: flex; flex-direction: column; }
.rarc-card:hover { border-color: #6a8; }
.rarc-thumb { width: 100%; height: 140px; object-fit: cover; background: #111; display: block; flex: none; }
.rarc-nothumb { width: 100%; height: 140px; flex: none; background: repeating-linear-gradient(45deg, #1a1a1d 0 8px, #202024 8px 16px);
  display: flex; align-items: center; justify-content: center; opacity: 0.6; font-size: 11px; }
.rarc-meta { padding: 4px 6px; font-size: 11px; }
.rarc-prompt { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.rarc-tags { display: flex; flex-wrap: wrap; gap: 3px; margin-top: 3px; }
.rarc-tag { background: #333; border-radius: 3px; padding: 0 4px; }
.rarc-drift { background: #a33; color: #fff; }
.rarc-err { background: #744; color: #fff; }
.rarc-pager { display: flex; gap: 8px; justify-content: center; padding: 6px; border-top: 1px solid #333; }
.rarc-pager button { font: inherit; color: inherit; background: #2a2a2e; border: 1px solid #444; border-radius: 4px; padding: 3px 10px; }
.rarc-detail { position: absolute; inset: 0; background: var(--bg-color, #1c1c1f); overflow: auto; padding: 10px; z-index: 5;
  font: 12px/1.4 system-ui, sans-serif; color: var(--fg-color, #ddd); overflow-wrap: anywhere; }
.rarc-detail h3 { margin: 10px 0 4px; font-size: 13px; }
.rarc-detail img { max-width: 100%; max-height: 320px; display: block; background: #111; border-radius: 4px; }
.rarc-detail table { border-collapse: collapse; width: 100%; font-size: 12px; }
.rarc-detail th { text-align: left; font-weight: normal; opacity: 0.65; padding: 1px 8px 1px 0; vertical-align: top; white-space: nowrap; }
.rarc-detail td { overflow-wrap: anywhere; padding: 1px 0; }
.rarc-detail pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #111; padding: 6px; border-radius: 4px; font-size: 11px; }
.rarc-pixels { color: #fff; background: #a33; border-radius: 3px; padding: 0 3px; margin: 1px 0; }
.rarc-harmless { opacity: 0.7; }
.rarc-ok { color: #7c7; }
.rarc-actions { display: flex; gap: 8px; margin: 6px 0; }
`;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k === "name" || k === "type" || k === "placeholder")
      e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

const esc = (v) =>
  String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const text = (v) => (v === null || v === undefined || v === "" ? null : String(v));
const shortDate = (iso) => (iso ? String(iso).slice(0, 16).replace("T", " ") : null);

function option(value, label = value) {
  return el("option", { value }, label);
}

export function mount(root, opts = {}) {
  const fetchApi = opts.fetchApi ?? ((p, o) => fetch(p, o));
  const url = opts.url ?? ((p) => p);
  if (!document.getElementById("rarc-style")) {
    document.head.append(el("style", { id: "rarc-style", textContent: STYLE }));
  }
  const timings = [];
  window.raiiafArchiveTimings = window.raiiafArchiveTimings ?? [];
  root.raiiafTimings = timings;
  const state = { page: 0, sort: "date", descending: true, seq: 0, shown: 0 };

  // --- the toolbar -----------------------------------------------------------------------
  const f = {
    text: el("input", { name: "text", type: "search", placeholder: "Search prompts…" }),
    model: el("input", { name: "model", placeholder: "model or hash", size: 12 }),
    seed: el("input", { name: "seed", placeholder: "seed", size: 10 }),
    sampler: el("select", { name: "sampler" }, option("", "any sampler")),
    host: el("select", { name: "host" }, option("", "any host")),
    date_from: el("input", { name: "date_from", type: "date", title: "from" }),
    date_to: el("input", { name: "date_to", type: "date", title: "to" }),
    min_width: el("input", { name: "min_width", type: "number", placeholder: "min width" }),
    min_height: el("input", { name: "min_height", type: "number", placeholder: "min height" }),
    drift: el(
      "select",
      { name: "drift", title: "environment drift against this machine" },
      option("", "any environment"),
      option("pixels", "drift that can change pixels"),
      option("none", "no pixel drift"),
    ),
  };
  const sort = el(
    "select",
    { name: "sort" },
    ...["date", "name", "seed", "model", "sampler", "steps", "cfg", "size"].map((s) =>
      option(s, `sort: ${s}`),
    ),
  );
  const dir = el("button", { name: "descending", type: "button", title: "sort direction" }, "↓");
  const group = el("input", { name: "group", type: "checkbox" });
  const reindex = el("button", { name: "index", type: "button" }, "Re-index");
  const bar = el(
    "div",
    { class: "rarc-bar" },
    ...Object.values(f),
    sort,
    dir,
    el("label", {}, group, "group batches"),
    reindex,
  );
  const status = el("div", { class: "rarc-status", "data-testid": "status" });
  const grid = el("div", { class: "rarc-grid", "data-testid": "grid" });
  const prev = el("button", { name: "prev", type: "button" }, "‹ Previous");
  const next = el("button", { name: "next", type: "button" }, "Next ›");
  const pageInfo = el("span", { "data-testid": "page" });
  const pager = el("div", { class: "rarc-pager" }, prev, pageInfo, next);
  const shell = el("div", { class: "rarc" }, bar, status, grid, pager);
  root.style.position = root.style.position || "relative";
  root.replaceChildren(shell);

  // --- search ------------------------------------------------------------------------------
  function params() {
    const p = new URLSearchParams();
    for (const [k, input] of Object.entries(f)) if (input.value) p.set(k, input.value);
    p.set("sort", state.sort);
    p.set("descending", state.descending ? "1" : "0");
    if (group.checked) p.set("group", "1");
    p.set("page", String(state.page));
    p.set("per_page", String(PER_PAGE));
    return p;
  }

  // One page of cards as one HTML string (escaped): one parse instead of hundreds of
  // element calls, so that a page renders in a few milliseconds. Clicks are delegated.
  function card(row) {
    const tags = [
      text(row.model_name),
      row.seed !== null ? `seed ${row.seed}` : null,
      text(row.sampler),
      row.width ? `${row.width}×${row.height}` : null,
    ]
      .filter(Boolean)
      .map((t) => `<span class="rarc-tag">${esc(t)}</span>`);
    if (row.batch_count > 1 && group.checked) {
      tags.push(`<span class="rarc-tag" data-batch="${row.batch_count}">batch of ${row.batch_count}</span>`);
    }
    if (row.pixel_drift?.length) {
      tags.push(`<span class="rarc-tag rarc-drift" title="differs from this machine">drift: ${esc(row.pixel_drift.join(", "))}</span>`);
    }
    if (row.error) tags.push(`<span class="rarc-tag rarc-err" title="${esc(row.error)}">error</span>`);
    tags.push(`<span class="rarc-tag">${esc(shortDate(row.date) ?? "")}</span>`);
    const thumb = url(`${API}thumbnail?${new URLSearchParams({ file: row.name })}`);
    const img = row.has_thumbnail
      ? `<img class="rarc-thumb" loading="lazy" alt="" src="${esc(thumb)}">`
      : `<div class="rarc-nothumb">${row.error ? "unreadable" : "no image"}</div>`;
    return (
      `<div class="rarc-card" data-name="${esc(row.name)}" title="${esc(row.name)}">${img}` +
      `<div class="rarc-meta"><div class="rarc-prompt">${esc(row.prompt ?? row.name)}</div>` +
      `<div class="rarc-tags">${tags.join("")}</div></div></div>`
    );
  }
  grid.addEventListener("click", (e) => {
    const c = e.target.closest(".rarc-card");
    if (c) showDetail(c.dataset.name);
  });

  async function search(what = "search") {
    const seq = ++state.seq;
    const t0 = performance.now();
    let body, t1, t2;
    try {
      const resp = await fetchApi(`${API}search?${params()}`, { cache: "no-store" });
      t1 = performance.now();
      body = await answer(resp, "search");
      t2 = performance.now();
    } catch (e) {
      if (seq === state.seq) status.replaceChildren(el("span", { class: "rarc-error" }, e.message));
      return;
    }
    if (seq !== state.seq) return; // a newer query has been asked meanwhile
    const scrolled = grid.scrollTop > 0; // read before the change: no forced layout
    grid.innerHTML = body.rows.map(card).join("");
    if (scrolled) grid.scrollTop = 0;
    const ms = performance.now() - t0;
    const pages = Math.max(1, body.pages);
    pageInfo.textContent = `page ${body.page + 1} of ${pages}`;
    prev.disabled = body.page === 0;
    next.disabled = body.page + 1 >= pages;
    status.replaceChildren(
      el("span", { "data-total": body.total }, `${body.total.toLocaleString("en")} files`),
      el("span", { "data-ms": ms.toFixed(1) }, `${ms.toFixed(1)} ms`),
    );
    const entry = {
      what,
      ms,
      fetch: t1 - t0,
      json: t2 - t1,
      render: performance.now() - t2,
      total: body.total,
      rows: body.rows.length,
      page: body.page,
    };
    timings.push(entry);
    window.raiiafArchiveTimings.push(entry);
    state.shown += 1;
    root.dataset.queries = String(state.shown);
  }

  let typing = null;
  const fresh = (what) => () => {
    state.page = 0;
    search(what);
  };
  f.text.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(fresh("text"), 200);
  });
  for (const [k, input] of Object.entries(f)) {
    if (k !== "text") input.addEventListener("change", fresh(k));
  }
  group.addEventListener("change", fresh("group"));
  sort.addEventListener("change", () => {
    state.sort = sort.value;
    fresh("sort")();
  });
  dir.addEventListener("click", () => {
    state.descending = !state.descending;
    dir.textContent = state.descending ? "↓" : "↑";
    fresh("sort")();
  });
  prev.addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    search("page");
  });
  next.addEventListener("click", () => {
    state.page += 1;
    search("page");
  });
  reindex.addEventListener("click", async () => {
    reindex.disabled = true;
    status.replaceChildren(el("span", {}, "indexing…"));
    try {
      const r = await answer(await fetchApi(`${API}index`, { method: "POST" }), "index");
      status.replaceChildren(el("span", {}, `indexed: ${r.files} files, ${r.read} read`));
      await loadFacets();
      await search("index");
    } catch (e) {
      status.replaceChildren(el("span", { class: "rarc-error" }, e.message));
    } finally {
      reindex.disabled = false;
    }
  });

  async function loadFacets() {
    try {
      const facets = await answer(await fetchApi(`${API}facets`, { cache: "no-store" }), "facets");
      for (const [key, input] of [["samplers", f.sampler], ["hosts", f.host]]) {
        const keep = input.value;
        input.replaceChildren(input.firstChild, ...(facets[key] ?? []).map((v) => option(v)));
        input.value = keep;
      }
    } catch {
      // no catalog yet: the search says so
    }
  }

  // --- one file ----------------------------------------------------------------------------
  function table(rows) {
    return el(
      "table",
      {},
      ...rows
        .filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, String(v)))),
    );
  }

  function driftView(d) {
    if (!d.recorded) return el("div", { class: "rarc-harmless" }, "environment: not recorded");
    if (!d.differences.length) return el("div", { class: "rarc-ok" }, "environment: same as this machine");
    return el(
      "div",
      {},
      ...d.differences.map((x) =>
        el(
          "div",
          { class: x.affects_pixels ? "rarc-pixels" : "rarc-harmless", "data-component": x.component },
          `${x.component}: ${x.stored ?? "—"} → ${x.current ?? "—"}`,
        ),
      ),
    );
  }

  function passesView(detail) {
    if (detail.passes_source === "tensors") {
      return el(
        "div",
        { "data-passes": "tensors" },
        el("div", { class: "rarc-harmless" }, "no pass records in this file (older format); stored tensors:"),
        table(detail.tensors.map((t) => [t.name, `${t.dtype} [${(t.shape ?? []).join(", ")}] ${t.codec ?? ""}`])),
      );
    }
    return el(
      "div",
      { "data-passes": detail.passes_source },
      detail.passes_source === "captures"
        ? el("div", { class: "rarc-harmless" }, "captures (written before pass records):")
        : null,
      ...detail.passes.map((p, i) =>
        table(
          Object.entries(p)
            .filter(([k]) => k !== "sigmas" && k !== "timesteps" && k !== "rng")
            .map(([k, v]) => [k, typeof v === "object" && v !== null ? JSON.stringify(v) : v])
            .concat([["#", i]]),
        ),
      ),
    );
  }

  function regenerateView(detail) {
    const r = detail.regenerate;
    if (!r) return null;
    return el(
      "div",
      { "data-testid": "regenerate" },
      el("h3", {}, "Regenerate in AUTOMATIC1111 / Forge"),
      el("ol", {}, ...r.steps.map((s) => el("li", {}, s))),
      table(Object.entries(r.settings)),
      el("h3", {}, "Command line (the webui's API)"),
      el("pre", { "data-testid": "command" }, r.command),
    );
  }

  async function showDetail(name) {
    const box = el("div", { class: "rarc-detail", "data-testid": "detail", "data-name": name }, "loading…");
    root.append(box);
    let d;
    try {
      d = await answer(
        await fetchApi(`${API}detail?${new URLSearchParams({ file: name })}`, { cache: "no-store" }),
        "detail",
      );
    } catch (e) {
      box.replaceChildren(el("div", { class: "rarc-error" }, e.message), closeButton(box));
      return;
    }
    const row = d.row ?? {};
    const s = d.settings ?? {};
    const gen = s.generation_settings ?? {};
    const regen = opts.regenerate
      ? el("button", { name: "regenerate", type: "button", onclick: () => opts.regenerate(d) }, "Regenerate")
      : null;
    const parts = [
      el("div", { class: "rarc-actions" }, closeButton(box), regen),
      el("div", { "data-testid": "detail-name" }, name),
      row.image_sha256
        ? el("img", { src: url(`${API}thumbnail?${new URLSearchParams({ file: name })}`), alt: "" })
        : null,
      el("h3", {}, "Settings"),
      table([
        ["prompt", s.prompt],
        ["negative", s.negative_prompt],
        ["seed", row.seed ?? gen.seed],
        ["steps", row.steps],
        ["sampler", [row.sampler, row.scheduler].filter(Boolean).join(" / ")],
        ["cfg", row.cfg],
        ["denoise", row.denoise],
        ["size", row.width ? `${row.width}×${row.height}` : null],
        ["model", row.model_name],
        ["model sha256", row.model_sha256],
        ["batch", row.batch_id ? `${row.batch_id} (${(row.batch_index ?? 0) + 1} of ${row.batch_size ?? "?"})` : null],
        ["host", [row.host_app, row.host_version].filter(Boolean).join(" ")],
        ["date", shortDate(row.date)],
        ["file", name],
      ]),
      el("h3", {}, "Environment"),
      driftView(d.drift),
      el("h3", {}, "Passes"),
      passesView(d),
      regenerateView(d),
    ];
    box.replaceChildren(...parts.filter(Boolean));
  }

  function closeButton(box) {
    return el("button", { name: "close", type: "button", onclick: () => box.remove() }, "← Back");
  }

  root.raiiafShowDetail = showDetail;
  root.raiiafSearch = search; // the same query again (the tests time repeats)
  loadFacets();
  search("open");
  return { search, showDetail };
}
