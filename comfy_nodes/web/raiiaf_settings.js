// raiiaf-rs: the settings panel's switch for the no-graph-change mode.
//
// With "raiiaf.SidecarAll" on, the server writes a .raiiaf beside every image that core
// Save Image (and savers built on it) writes, with no raiiaf node in the graph
// (comfy_nodes/autosave.py). The front end stores settings on the server
// (user/default/comfy.settings.json), which is where the server reads this one from, at
// each prompt. The environment variable RAIIAF_SIDECAR_ALL, when set on the server,
// takes precedence (1: always on, 0: always off).
//
// The server tells the client that queued a prompt when a sidecar could not be written
// or cannot regenerate its image exactly ("raiiaf.sidecar_warning"): shown as a toast,
// since Save Image's own output stays as core makes it.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

api.addEventListener("raiiaf.sidecar_warning", ({ detail }) => {
  const lines = Array.isArray(detail?.warnings) ? detail.warnings : [];
  if (!lines.length) return;
  const summary = `raiiaf: Save Image (node ${detail.node})`;
  const toast = app.extensionManager?.toast;
  if (typeof toast?.add === "function") {
    toast.add({ severity: "warn", summary, detail: lines.join("\n"), life: 15000 });
  } else {
    console.warn(summary, lines);
  }
});

app.registerExtension({
  name: "raiiaf.sidecarSetting",
  settings: [
    {
      id: "raiiaf.SidecarAll",
      category: ["raiiaf", "Sidecar files", "SidecarAll"],
      name: "Write a .raiiaf beside every saved image (Save Image too, no graph change)",
      tooltip:
        "Core Save Image and savers built on it also write a .raiiaf (exact initial " +
        "noise, settings, environment) beside each image. Counts from the next prompt. " +
        "The server's RAIIAF_SIDECAR_ALL environment variable, if set, decides instead.",
      type: "boolean",
      defaultValue: false,
    },
  ],
});
