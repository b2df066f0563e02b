// raiiaf-rs: the archive browser as a sidebar tab of the ComfyUI front end.
//
// The page is the same module `raiiaf serve` uses (raiiaf_rs/web/archive.js), served by the
// pack's routes (comfy_nodes/archive_routes.py) and mounted in the tab. Its "Regenerate" loads
// the file's workflow (or the pack's reload workflow) with the "Load .raiiaf" node set to the
// file, in one click, through the same code as dropping a .raiiaf on the canvas (raiiaf.js).
//
// The front end's extension API: app.extensionManager.registerSidebarTab with a "custom"
// tab whose render(element) is called each time the tab opens (front ends 1.32 to 1.58).

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { answer } from "../../api/raiiaf/archive/answer.js";
import { openFileData, toast } from "./raiiaf.js";

const TAB = "raiiaf-archive";

async function regenerate(detail) {
  const q = new URLSearchParams({ file: detail.name });
  let data;
  try {
    const resp = await api.fetchApi(`/raiiaf/archive/workflow?${q}`, { cache: "no-store" });
    data = await answer(resp, "regenerate");
    await openFileData(data, detail.name.replace(/\.raiiaf( \[\w+\])?$/i, ""));
  } catch (e) {
    toast("error", `Cannot regenerate ${detail.name}`, String(e?.message ?? e));
    return;
  }
  const how = data.source === "stored" ? "its workflow" : `the ${data.source} workflow`;
  toast("success", `Loaded ${detail.name}`, `${how}, with the loader set to the file: Queue it`);
}

app.registerExtension({
  name: "raiiaf.archive",
  async setup() {
    const manager = app.extensionManager;
    if (typeof manager?.registerSidebarTab !== "function") return;
    manager.registerSidebarTab({
      id: TAB,
      icon: "pi pi-images",
      title: "raiiaf",
      tooltip: "raiiaf archive: search and regenerate your .raiiaf files",
      type: "custom",
      render: (element) => {
        element.style.height = "100%";
        import(api.apiURL("/raiiaf/archive/app.js"))
          .then(({ mount }) =>
            mount(element, {
              fetchApi: (path, options) => api.fetchApi(path, options),
              url: (path) => api.apiURL(path),
              regenerate,
            }),
          )
          .catch((e) => {
            element.textContent = `The raiiaf archive could not load: ${e?.message ?? e}`;
          });
      },
    });
  },
});
