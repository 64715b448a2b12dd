// Models: the run folders under --runs, their metrics and history, and links
// that open a run's model in the other pages.
import { lineChart } from "./plot.js";
import { $, api, el, fmt, runs, showError } from "./util.js";

const PAGE_NAMES = { gates: "Gates", generate: "Generate", translate: "Translate" };

export function init() {}

export async function show() {
  try {
    const data = await runs(true);
    $("models-root").textContent = data.runs_dir || "(no --runs folder)";
    const body = $("models-table").querySelector("tbody");
    body.replaceChildren(...data.runs.map((r) => {
      const metrics = Object.entries(r.headline).map(([k, v]) =>
        el("span", { class: "metric" }, `${k} `, el("b", { text: fmt(v) })));
      const buttons = r.pages.map((p) => el("button", { type: "button", class: "small", text: PAGE_NAMES[p],
        onclick: (e) => { e.stopPropagation(); location.hash = `#/${p}?run=${encodeURIComponent(r.id)}`; } }));
      return el("tr", { class: "clickable", "data-run": r.id, onclick: () => detail(r.id) },
        el("td", {}, el("code", { text: r.id })), el("td", { text: r.app || "?" }), el("td", { text: r.cell || "" }),
        el("td", { text: r.corpus || "" }), el("td", {}, metrics), el("td", { text: r.modified }), el("td", {}, buttons));
    }));
    if (!data.runs.length) {
      body.append(el("tr", {}, el("td", { colspan: 7, class: "muted",
        text: "no run folders here yet: train a model (lstmkit generate train, classify train, translate train) into this folder" })));
    }
    showError($("models-error"), null);
  } catch (e) { showError($("models-error"), e); }
}

async function detail(id) {
  try {
    const r = await api(`/api/run?id=${encodeURIComponent(id)}`);
    for (const tr of $("models-table").querySelectorAll("tbody tr")) tr.classList.toggle("chosen", tr.dataset.run === id);
    $("models-detail").hidden = false;
    $("models-detail-title").textContent = `${r.id} · ${r.app || "?"}${r.command ? " " + r.command : ""}`;
    const img = $("models-history-png"), canvas = $("models-history");
    img.hidden = !r.has_history_png;
    canvas.hidden = r.has_history_png || !r.history;
    if (r.has_history_png) img.src = `/api/run/history.png?id=${encodeURIComponent(r.id)}`;
    else if (r.history) {
      const series = Object.entries(r.history).map(([k, ys]) => ({ label: k, xs: ys.map((_, i) => i + 1), ys }));
      lineChart(canvas, series, { title: "training history", xLabel: "epoch" });
    }
    $("models-metrics").querySelector("tbody").replaceChildren(...Object.entries(r.metrics || {}).map(([k, v]) =>
      el("tr", {}, el("td", { text: k }), el("td", { class: typeof v === "number" ? "num" : "", text: fmt(v, 4) }))));
  } catch (e) { showError($("models-error"), e); }
}
