// raiiaf-rs front end (plain JavaScript, loaded by ComfyUI from WEB_DIRECTORY).
//
// - Dropping a .raiiaf file on the canvas uploads it into ComfyUI's input directory
//   (POST /raiiaf/upload checks it first: an invalid file is never stored), then loads
//   the workflow stored in it, like dropping a PNG does, and selects the file in the
//   graph's "Load .raiiaf" nodes. A file with no workflow loads its API prompt, or else
//   a graph holding one "Load .raiiaf" node set to the file.
// - Dropping it on a "Load .raiiaf" node only selects it in that node.
// - "Load .raiiaf" shows what its file holds (GET /raiiaf/inspect), and "Save Image +
//   .raiiaf" what it saved: thumbnail, prompts, seed, sampler, steps, noise shape and
//   dtype, and the environment differences, in red where they can change the pixels.
//
// Hook: ComfyUI's drop handler and its "Open workflow" file picker pass each file to
// app.handleFile (front ends 1.32 to 1.58 at least). There is no file-type API for
// extensions, so setup() wraps that one method: .raiiaf files are handled here, anything
// else goes to the original untouched. The picker is also told to offer .raiiaf files.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
// The answers of the pack's routes, read as the archive browser reads them (one module,
// python/raiiaf_rs/web/answer.js, served by the pack's archive routes).
import { answer } from "../../api/raiiaf/archive/answer.js";

const SUFFIX = ".raiiaf";
const LOADER = "RaiiafLoad";
const SAVER = "RaiiafSaveImage";
// Nodes with a file widget listing .raiiaf files (the single and the batch loader).
const LOADERS = new Set([LOADER, "RaiiafLoadBatch"]);
const savedNow = []; // .raiiaf files saved since the page loaded, newest first
const PANEL = "raiiaf_info";

const isRaiiaf = (file) =>
  !!file && typeof file.name === "string" && file.name.toLowerCase().endsWith(SUFFIX);
const classOf = (node) => node?.comfyClass ?? node?.type;
const fileWidget = (node) => node?.widgets?.find((w) => w.name === "file");

// --- messages ----------------------------------------------------------------------------
export function toast(severity, summary, detail) {
  const t = app.extensionManager?.toast;
  if (typeof t?.add === "function") {
    t.add({ severity, summary, detail, life: severity === "error" ? 15000 : 4000 });
  } else if (severity === "error") {
    alert(`${summary}\n\n${detail}`);
  }
}

// --- server ------------------------------------------------------------------------------
async function upload(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  return answer(await api.fetchApi("/raiiaf/upload", { method: "POST", body }), "upload");
}

async function inspect(name) {
  const q = new URLSearchParams({ file: name });
  return answer(await api.fetchApi(`/raiiaf/inspect?${q}`, { cache: "no-store" }), "inspect");
}

// --- the panel on the nodes -------------------------------------------------------------
const STYLE = `
.raiiaf-info { box-sizing: border-box; overflow: auto; padding: 4px 6px; font: 11px/1.35 sans-serif;
  color: var(--input-text, #ddd); background: var(--comfy-input-bg, #222); border-radius: 6px; }
.raiiaf-info .raiiaf-head { display: flex; gap: 8px; }
.raiiaf-info img { width: 96px; height: 96px; object-fit: contain; flex: none; background: #000;
  border-radius: 4px; }
.raiiaf-info table { border-collapse: collapse; min-width: 0; }
.raiiaf-info th { text-align: left; font-weight: normal; opacity: 0.65; padding-right: 6px;
  vertical-align: top; white-space: nowrap; }
.raiiaf-info td { overflow-wrap: anywhere; }
.raiiaf-info .raiiaf-env { margin-top: 4px; }
.raiiaf-info .raiiaf-ok { color: #7c7; }
.raiiaf-info .raiiaf-pixels { color: #fff; background: #a33; border-radius: 3px; padding: 0 3px; margin: 1px 0; }
.raiiaf-info .raiiaf-harmless { opacity: 0.7; }
.raiiaf-info .raiiaf-warning { color: #fb3; }
.raiiaf-info .raiiaf-error { color: #f77; }
`;

function addStyle() {
  if (document.getElementById("raiiaf-style")) return;
  const style = document.createElement("style");
  style.id = "raiiaf-style";
  style.textContent = STYLE;
  document.head.append(style);
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

function panelOf(node, minHeight) {
  let w = node.widgets?.find((x) => x.name === PANEL);
  if (w) return w;
  if (typeof node.addDOMWidget !== "function") return null;
  addStyle();
  const div = el("div", { class: "raiiaf-info", "data-state": "empty" });
  const body = el("div");
  div.append(body);
  w = node.addDOMWidget(PANEL, "raiiaf-info", div, {
    serialize: false,
    hideOnZoom: false,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () =>
      div.dataset.state === "empty" ? 0 : Math.max(minHeight, div.raiiafHeight ?? 0),
  });
  w.serialize = false; // not in widgets_values: the workflow stays as without the pack's JS
  w.raiiafElement = div;
  w.raiiafBody = body;
  // The node grows to fit what the panel shows, once the browser has laid it out.
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(() => {
      // + the panel's padding and the margin ComfyUI leaves around DOM widgets
      const h = body.offsetHeight + 30;
      if (body.offsetHeight > 0 && h > (div.raiiafHeight ?? 0)) {
        div.raiiafHeight = h;
        fit(node);
      }
    }).observe(body);
  }
  return w;
}

// "name=torch;version=2.13.0;cuda=13.0" -> {version: "2.13.0", cuda: "13.0"}
function fields(canonical) {
  const out = {};
  for (const part of String(canonical ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i) !== "name") out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

// What differs, e.g. "version 1.13.1 → 2.14.1, cuda 11.7 → 13.0".
function difference(d) {
  if (d.kind === "missing_now") return `${d.stored ?? "?"} → not recorded here`;
  if (d.kind === "not_in_file") return `not recorded in the file → ${d.current ?? "?"}`;
  const [a, b] = [fields(d.stored), fields(d.current)];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
  if (!keys.length) return `${d.stored} → ${d.current}`;
  return keys.map((k) => `${k} ${a[k] ?? "-"} → ${b[k] ?? "-"}`).join(", ");
}

const fmt = (v) => (v === null || v === undefined || v === "" ? null : String(v));

function render(node, data, { thumbnail, more = 0, minHeight = 230 }) {
  const w = panelOf(node, minHeight);
  if (!w) return;
  const div = w.raiiafElement;
  const s = data.summary ?? {};
  const rows = [
    ["file", fmt(data.name) + (more ? ` (+${more} more)` : "")],
    ["prompt", fmt(s.prompt)],
    ["negative", fmt(s.negative)],
    ["seed", fmt(s.seed)],
    ["sampler", [s.sampler, s.scheduler].filter(Boolean).join(" / ") || null],
    ["steps", fmt(s.steps)],
    ["cfg", fmt(s.cfg)],
    ["model", s.model ? s.model + (s.model_hash ? ` (${s.model_hash})` : "") : null],
    ...(s.noise ?? []).map((n) => [n.name, `${n.dtype} [${n.shape.join(", ")}]`]),
  ];
  if (!(s.noise ?? []).length) rows.push(["noise", "none stored"]);
  if (s.image) rows.push(["image", s.image.refused ?? `${s.image.width}×${s.image.height}`]);
  const table = el(
    "table",
    {},
    ...rows
      .filter(([, v]) => v !== null)
      .map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))),
  );
  const head = el("div", { class: "raiiaf-head" });
  if (thumbnail && data.thumbnail) head.append(el("img", { src: data.thumbnail, alt: "image" }));
  head.append(table);

  const env = el("div", { class: "raiiaf-env" });
  const drift = data.drift ?? [];
  const pixels = drift.filter((d) => d.affects_pixels);
  if (!drift.length) {
    env.append(el("div", { class: "raiiaf-ok" }, "environment: same as this ComfyUI"));
  } else {
    const n = pixels.length;
    env.append(
      el(
        "div",
        { class: n ? "raiiaf-pixels" : "raiiaf-harmless" },
        n
          ? `environment: ${n} difference${n > 1 ? "s" : ""} can change the pixels`
          : "environment: harmless differences only",
      ),
    );
    for (const d of drift) {
      env.append(
        el(
          "div",
          {
            class: d.affects_pixels ? "raiiaf-pixels" : "raiiaf-harmless",
            "data-component": d.component,
            title: `${d.stored ?? "-"} → ${d.current ?? "-"}`,
          },
          `${d.component}: ${difference(d)}`,
        ),
      );
    }
  }
  div.raiiafHeight = 0;
  w.raiiafBody.replaceChildren(head, env);
  if (s.warning) w.raiiafBody.append(el("div", { class: "raiiaf-warning" }, s.warning));
  if (s.pre_noised) w.raiiafBody.append(el("div", {}, `pre-noised: ${s.pre_noised}`));
  div.dataset.state = "ok";
  div.dataset.file = data.name ?? "";
  div.title = data.name ?? "";
  fit(node);
}

function renderError(node, name, message, minHeight = 60) {
  const w = panelOf(node, minHeight);
  if (!w) return;
  const div = w.raiiafElement;
  div.raiiafHeight = 0;
  w.raiiafBody.replaceChildren(el("div", { class: "raiiaf-error" }, message));
  div.dataset.state = "error";
  div.dataset.file = name ?? "";
  fit(node);
}

// Widgets that come later (the save node's image preview) can need more room than the
// node has once the panel shows: grow it again.
function keepFitted(node) {
  const div = node.widgets?.find((x) => x.name === PANEL)?.raiiafElement;
  if (!div || div.dataset.state === "empty") return;
  const min = node.computeSize?.();
  if (min && node.size[1] < min[1]) fit(node);
}

function fit(node) {
  const min = node.computeSize?.();
  if (min) node.setSize?.([Math.max(node.size[0], min[0], 360), Math.max(node.size[1], min[1])]);
  node.setDirtyCanvas?.(true, true);
  app.graph?.setDirtyCanvas?.(true, true);
}

// The loader's panel follows its file widget.
async function refreshLoader(node, data = null) {
  const name = fileWidget(node)?.value;
  if (!name || typeof name !== "string") return;
  if (node.raiiafShown === name && !data) return;
  node.raiiafShown = name;
  try {
    data = data ?? (await inspect(name));
    if (fileWidget(node)?.value === name) render(node, data, { thumbnail: true });
  } catch (e) {
    if (fileWidget(node)?.value === name) renderError(node, name, e.message);
  }
}

// Files saved since the page loaded head a loader's list (newest first, as the server
// lists them): the page's node definitions are those of page load.
function listSaved(node) {
  const values = fileWidget(node)?.options?.values;
  if (!Array.isArray(values)) return;
  for (const name of [...savedNow].reverse()) {
    const at = values.indexOf(name);
    if (at !== 0) {
      if (at > 0) values.splice(at, 1);
      values.unshift(name);
    }
  }
}

function offerFiles(files) {
  // A batch's files come in saving order: the last one is the newest.
  savedNow.unshift(...[...files].reverse().filter((f) => !savedNow.includes(f)));
  for (const node of app.graph?._nodes ?? []) {
    if (LOADERS.has(classOf(node))) listSaved(node);
  }
}

function selectFile(node, name, data = null) {
  const w = fileWidget(node);
  if (!w) return;
  const values = w.options?.values;
  if (Array.isArray(values) && !values.includes(name)) values.push(name);
  w.value = name;
  w.callback?.(name);
  refreshLoader(node, data);
}

// --- dropped files -----------------------------------------------------------------------
function isWorkflow(wf) {
  return !!wf && typeof wf === "object" && Array.isArray(wf.nodes);
}

function isApiPrompt(p) {
  return (
    !!p &&
    typeof p === "object" &&
    Object.keys(p).length > 0 &&
    Object.values(p).every((n) => n && typeof n === "object" && n.class_type)
  );
}

function loaderGraph(name) {
  return {
    last_node_id: 1,
    last_link_id: 0,
    nodes: [
      {
        id: 1,
        type: LOADER,
        pos: [100, 100],
        size: [420, 300],
        flags: {},
        order: 0,
        mode: 0,
        properties: { "Node name for S&R": LOADER },
        widgets_values: [name],
      },
    ],
    links: [],
    groups: [],
    config: {},
    extra: {},
    version: 0.4,
  };
}

// Opens what a checked file holds (an upload's or the archive's answer: {name, workflow,
// prompt}): its workflow, else its API prompt, else a graph holding one loader, with the
// file selected in every "Load .raiiaf" node. Throws when the workflow cannot be loaded.
export async function openFileData(data, title) {
  if (isWorkflow(data.workflow)) {
    await app.loadGraphData(data.workflow, true, true, title);
  } else if (isApiPrompt(data.prompt) && typeof app.loadApiJson === "function") {
    await app.loadApiJson(data.prompt, title);
  } else {
    await app.loadGraphData(loaderGraph(data.name), true, true, title);
  }
  for (const node of app.graph?.nodes ?? []) {
    if (classOf(node) === LOADER) selectFile(node, data.name, data.summary ? data : null);
  }
}

async function openRaiiaf(file) {
  let data;
  try {
    data = await upload(file);
  } catch (e) {
    toast("error", `Cannot open ${file.name}`, e.message);
    return;
  }
  try {
    await openFileData(data, file.name.replace(/\.raiiaf$/i, ""));
  } catch (e) {
    toast("error", `Cannot load the workflow stored in ${file.name}`, String(e?.message ?? e));
    return;
  }
  toast("success", `Opened ${file.name}`, `stored in the input folder as ${data.name}`);
}

const draggingFile = (e) => [...(e?.dataTransfer?.items ?? [])].some((i) => i.kind === "file");

// --- the extension -----------------------------------------------------------------------
app.registerExtension({
  name: "raiiaf.frontend",

  async setup() {
    const original = app.handleFile;
    if (typeof original !== "function" || original.raiiaf) return;
    const handleFile = async function (file, ...rest) {
      if (isRaiiaf(file)) return openRaiiaf(file);
      return original.call(this, file, ...rest);
    };
    handleFile.raiiaf = true;
    app.handleFile = handleFile;
    const picker = document.getElementById("comfy-file-input");
    if (picker?.accept && !picker.accept.split(",").includes(SUFFIX)) picker.accept += `,${SUFFIX}`;
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    const proto = nodeType.prototype;
    if (LOADERS.has(nodeData?.name)) {
      const created = proto.onNodeCreated;
      proto.onNodeCreated = function () {
        const r = created?.apply(this, arguments);
        const w = fileWidget(this);
        listSaved(this);
        if (w) {
          const cb = w.callback;
          const node = this;
          w.callback = function () {
            const out = cb?.apply(this, arguments);
            refreshLoader(node);
            return out;
          };
        }
        panelOf(this, 230);
        // A loaded workflow sets the widget after creation: look once it has.
        setTimeout(() => refreshLoader(this), 0);
        return r;
      };
      const drawn = proto.onDrawForeground;
      proto.onDrawForeground = function () {
        const r = drawn?.apply(this, arguments);
        const name = fileWidget(this)?.value;
        if (name && name !== this.raiiafShown) refreshLoader(this);
        keepFitted(this);
        return r;
      };
      // A .raiiaf dropped on the node is selected in it; other files go on to the app.
      const over = proto.onDragOver;
      proto.onDragOver = function (e) {
        return over?.apply(this, arguments) || draggingFile(e);
      };
      const drop = proto.onDragDrop;
      proto.onDragDrop = async function (e) {
        const file = [...(e?.dataTransfer?.files ?? [])].find(isRaiiaf);
        if (!file) return drop ? drop.apply(this, arguments) : false;
        try {
          const data = await upload(file);
          selectFile(this, data.name, data);
        } catch (err) {
          toast("error", `Cannot open ${file.name}`, err.message);
        }
        return true;
      };
    } else if (nodeData?.name === SAVER) {
      const drawn = proto.onDrawForeground;
      proto.onDrawForeground = function () {
        const r = drawn?.apply(this, arguments);
        keepFitted(this);
        return r;
      };
      const executed = proto.onExecuted;
      proto.onExecuted = function (output) {
        const r = executed?.apply(this, arguments);
        const files = output?.raiiaf;
        for (const warning of output?.raiiaf_warning ?? []) {
          toast("warn", "Save Image + .raiiaf", warning);
        }
        if (Array.isArray(files) && files.length) {
          offerFiles(files);
          const [name] = files;
          inspect(name)
            .then((data) =>
              render(this, data, { thumbnail: false, more: files.length - 1, minHeight: 200 }),
            )
            .catch((e) => renderError(this, name, e.message));
        }
        return r;
      };
    }
  },

  loadedGraphNode(node) {
    if (LOADERS.has(classOf(node))) refreshLoader(node);
  },
});
