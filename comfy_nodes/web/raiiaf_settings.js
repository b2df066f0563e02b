// raiiaf-rs: the settings panel's switch for the no-graph-change mode.
//
// With "raiiaf.SidecarAll" on, the server writes a .raiiaf beside every image that core
// Save Image (and savers built on it) writes, with no raiiaf node in the graph
// (comfy_nodes/autosave.py). The front end stores settings on the server
// (user/default/comfy.settings.json), which is where the server reads this one from, at
// each prompt. The environment variable RAIIAF_SIDECAR_ALL, when set on the server,
// takes precedence (1: always on, 0: always off).

import { app } from "../../scripts/app.js";

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
