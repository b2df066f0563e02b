// raiiaf-rs: reading an answer of the pack's and the archive's servers, one module for every
// page that asks them. Served by both homes through raiiaf_rs/archive_api.py, at
// /raiiaf/archive/answer.js (ComfyUI adds it under /api too):
// - the archive browser (archive.js) imports it beside itself ("./answer.js"), under
//   `raiiaf serve` and in the ComfyUI sidebar tab alike;
// - the ComfyUI pack's front end (comfy_nodes/web/raiiaf.js, raiiaf_archive.js), loaded from
//   /extensions/<pack>/, imports it from "../../api/raiiaf/archive/answer.js", the way it
//   imports ComfyUI's own "../../scripts/app.js" (so a base path ComfyUI runs under is kept).

// The JSON body of `resp`; an Error saying what failed when the request failed: the server's
// own `{"error": message}`, or else "<what> failed (HTTP <status> <status text>)" (an HTTP
// error page, or the server is gone).
export async function answer(resp, what) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // not JSON: an HTTP error page, or the server is gone
  }
  if (!resp.ok || !body || body.error) {
    const status = [resp.status, resp.statusText].filter(Boolean).join(" ");
    throw new Error(body?.error || `${what} failed (HTTP ${status})`);
  }
  return body;
}
