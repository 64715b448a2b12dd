// The page's router: #/gates, #/generate, #/translate, #/gradients, #/models (with ?run=ID).
import { color } from "./color.js";
import * as gates from "./gates.js";
import * as generate from "./generate.js";
import * as gradients from "./gradients.js";
import * as models from "./models.js";
import * as translate from "./translate.js";
import { $, api } from "./util.js";

const PAGES = { gates, generate, translate, gradients, models };
const started = {};

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const name = PAGES[path] ? path : "gates";
  for (const key of Object.keys(PAGES)) $(`page-${key}`).hidden = key !== name;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
  if (!started[name]) { PAGES[name].init(); started[name] = true; }
  PAGES[name].show(new URLSearchParams(query || ""));
}

window.lstmkit = { color };          // the colour scale, for tests that read the canvases
window.addEventListener("hashchange", route);
route();
api("/api/info").then((info) => {
  $("server").textContent = `lstmkit ${info.version} · runs from ${info.runs_dir || "(none)"}`;
}).catch(() => {});
