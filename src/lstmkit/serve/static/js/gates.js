// Gates: heat maps of what one recurrent layer computes at each token, the
// unit view (where one unit fires), and LSTMVis's pattern search.
import { color, css, legend } from "./color.js";
import { lineChart } from "./plot.js";
import { $, api, decodeFloats, el, fillRunSelect, fmt, hideTip, showError, showTip, showToken } from "./util.js";

const EXAMPLES = {
  poetry: "春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。",
  generate: "def main(argv):\n    for name in sorted(argv):\n        if name.startswith('-'):\n            print(name)\n",
  classify: "the film starts slowly, but the acting is wonderful and the ending is a great surprise",
  translate: "Ich habe heute keine Zeit.",
};
const MAX_CANVAS = 32000;          // px: browsers refuse larger canvases

const state = { data: null, values: {}, unit: null, sel: null, dragging: false, info: null };

export function init() {
  $("gates-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  $("gates-run").addEventListener("change", () => loadLayers());
  $("gates-rowh").addEventListener("input", () => state.data && render());
  $("gates-colw").addEventListener("input", () => state.data && render());
  $("gates-stretch").addEventListener("change", () => state.data && render());
  $("gates-unit-map").addEventListener("change", () => showUnit(state.unit));
  $("gates-search-go").addEventListener("click", () => search());
  document.addEventListener("mouseup", () => { state.dragging = false; });
}

export async function show(params) {
  try {
    await fillRunSelect($("gates-run"), ["generate", "classify", "translate"], params.get("run"));
    await loadLayers();
  } catch (e) { showError($("gates-error"), e); }
}

async function loadLayers() {
  const runId = $("gates-run").value;
  const select = $("gates-layer");
  select.replaceChildren();
  if (!runId) return;
  try {
    const info = await api(`/api/layers?run=${encodeURIComponent(runId)}`);
    state.info = info;
    info.layers.forEach((label, i) => select.append(el("option", { value: i, text: label })));
    const text = $("gates-text");
    if (!text.value.trim() || Object.values(EXAMPLES).includes(text.value)) {
      text.value = info.poetry ? EXAMPLES.poetry : EXAMPLES[info.app] || "";
    }
    showError($("gates-error"), null);
  } catch (e) { showError($("gates-error"), e); }
}

async function run() {
  const body = { run: $("gates-run").value, text: $("gates-text").value, layer: Number($("gates-layer").value || 0) };
  $("gates-go").disabled = true;
  $("gates-info").textContent = "computing…";
  try {
    const t0 = performance.now();
    const data = await api("/api/gates", body);
    state.data = data;
    state.text = body.text;
    state.values = {};
    for (const m of data.maps) state.values[m.name] = decodeFloats(m.data);
    state.unit = null;
    state.sel = null;
    render();
    $("gates-info").textContent = `${data.shape[0]} tokens × ${data.units} units · ${data.cell.toUpperCase()} · ` +
      `model ${fmt(data.compute_ms, 1)} ms, round trip ${fmt(performance.now() - t0, 0)} ms`;
    showError($("gates-error"), null);
    $("gates-unit").hidden = true;
    $("gates-search").hidden = false;
    fillSearchMaps();
    updateSelection();
  } catch (e) {
    showError($("gates-error"), e);
    $("gates-info").textContent = "";
  } finally {
    $("gates-go").disabled = false;
  }
}

// the colour scale of a map: its fixed range, or its own min..max ("stretch")
function scale(m) {
  if (!$("gates-stretch").checked || m.max <= m.min) return [m.lo, m.hi];
  if (m.kind === "gate") return [m.min, m.max];
  const a = Math.max(Math.abs(m.min), Math.abs(m.max));
  return [-a, a];
}

function sizes() {
  const [T] = state.data.shape;
  const colw = Math.max(1, Math.min(Number($("gates-colw").value), Math.floor(MAX_CANVAS / T)));
  return { colw, rowh: Number($("gates-rowh").value) };
}

function render() {
  const d = state.data;
  const [T, H] = d.shape;
  const { colw, rowh } = sizes();
  const box = $("gates-maps");
  const wrap = el("div", { class: "mapscroll" });
  const tokens = el("div", { class: "tokens", id: "gates-tokens" });
  d.tokens.forEach((t, i) => {
    const span = el("span", { "data-i": i, title: `${i}: ${JSON.stringify(t)}${d.oov[i] ? " (not in the vocabulary)" : ""}`,
      class: d.oov[i] ? "oov" : null, text: showToken(t) });
    span.style.width = `${colw}px`;
    span.addEventListener("mousedown", (e) => {
      e.preventDefault();
      state.dragging = true; state.anchor = i; state.sel = [i, i]; updateSelection();
    });
    span.addEventListener("mouseenter", () => {
      if (state.dragging) { state.sel = [Math.min(state.anchor, i), Math.max(state.anchor, i)]; updateSelection(); }
    });
    tokens.append(span);
  });
  wrap.append(tokens);
  for (const m of d.maps) {
    const [lo, hi] = scale(m);
    const bar = el("canvas", { class: "legend", width: 120, height: 10 });
    legend(bar, m.kind, lo, hi);
    const title = el("div", { class: "title" }, el("b", { text: m.title }), el("span", { text: fmt(lo, 2) }), bar,
      el("span", { text: fmt(hi, 2) }), el("span", { text: `values ${fmt(m.min)} to ${fmt(m.max)}` }));
    const canvas = el("canvas", { class: "heat", width: T * colw, height: H * rowh, "data-map": m.name,
      "data-rows": H, "data-cols": T, "data-colw": colw, "data-rowh": rowh, "data-lo": lo, "data-hi": hi,
      "data-kind": m.kind });
    canvas.addEventListener("mousemove", (e) => hover(e, m, canvas));
    canvas.addEventListener("mouseleave", hideTip);
    canvas.addEventListener("click", (e) => { const c = cellAt(e, canvas); if (c) showUnit(c.u); });
    wrap.append(el("div", { class: "map", "data-map": m.name }, title, canvas));
    drawMap(canvas, m);
  }
  box.replaceChildren(wrap);
  updateSelection();
}

function drawMap(canvas, m) {
  const [T, H] = state.data.shape;
  const v = state.values[m.name];
  const colw = Number(canvas.dataset.colw), rowh = Number(canvas.dataset.rowh);
  const lo = Number(canvas.dataset.lo), hi = Number(canvas.dataset.hi);
  if (!canvas._image) {
    // one pixel per (unit, token), scaled up without smoothing: every cell one flat colour
    const off = document.createElement("canvas");
    off.width = T; off.height = H;
    const octx = off.getContext("2d");
    const img = octx.createImageData(T, H);
    for (let t = 0; t < T; t++) {
      for (let u = 0; u < H; u++) {
        const [r, g, b] = color(v[t * H + u], m.kind, lo, hi);
        const p = (u * T + t) * 4;
        img.data[p] = r; img.data[p + 1] = g; img.data[p + 2] = b; img.data[p + 3] = 255;
      }
    }
    octx.putImageData(img, 0, 0);
    canvas._image = off;
  }
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas._image, 0, 0, T * colw, H * rowh);
  if (state.unit !== null) {
    ctx.strokeStyle = "#ff2d95";
    ctx.lineWidth = 2;
    ctx.strokeRect(1, state.unit * rowh - 1, T * colw - 2, rowh + 2);
  }
  if (state.sel) {
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 2]);
    ctx.strokeRect(state.sel[0] * colw + 0.5, 0.5, (state.sel[1] - state.sel[0] + 1) * colw - 1, H * rowh - 1);
    ctx.setLineDash([]);
  }
}

function redrawAll() {
  for (const canvas of document.querySelectorAll("#gates-maps canvas.heat")) {
    drawMap(canvas, state.data.maps.find((m) => m.name === canvas.dataset.map));
  }
}

function cellAt(e, canvas) {
  const r = canvas.getBoundingClientRect();
  const t = Math.floor((e.clientX - r.left) / Number(canvas.dataset.colw));
  const u = Math.floor((e.clientY - r.top) / Number(canvas.dataset.rowh));
  const [T, H] = state.data.shape;
  return t >= 0 && t < T && u >= 0 && u < H ? { t, u } : null;
}

function hover(e, m, canvas) {
  const c = cellAt(e, canvas);
  if (!c) { hideTip(); return; }
  const H = state.data.shape[1];
  const v = state.values[m.name][c.t * H + c.u];
  showTip(e, `${m.title}\nunit ${c.u}, token ${c.t} ${JSON.stringify(state.data.tokens[c.t])}\n${v.toFixed(4)}`);
}

// ---- one unit: where it fires ---------------------------------------------------------------
function showUnit(u) {
  if (u === null || u === undefined) return;
  state.unit = u;
  redrawAll();
  const d = state.data, H = d.shape[1];
  const select = $("gates-unit-map");
  if (!select.options.length || select.dataset.for !== d.maps.map((m) => m.name).join()) {
    select.replaceChildren(...d.maps.map((m) => el("option", { value: m.name, text: m.title })));
    select.value = d.maps.some((m) => m.name === "hidden") ? "hidden" : d.maps[0].name;
    select.dataset.for = d.maps.map((m) => m.name).join();
  }
  const m = d.maps.find((x) => x.name === select.value) || d.maps[0];
  const v = state.values[m.name];
  const ys = d.tokens.map((_, t) => v[t * H + u]);
  $("gates-unit").hidden = false;
  $("gates-unit-title").textContent = `Unit ${u} of ${H}`;
  const text = $("gates-unit-text");
  text.replaceChildren(...d.tokens.map((tok, t) => {
    const rgb = color(ys[t], m.kind, ...scale(m));
    const span = el("span", { title: `${JSON.stringify(tok)}: ${ys[t].toFixed(4)}`, text: (t && d.joiner ? d.joiner : "") + tok,
      "data-value": ys[t] });
    span.style.background = css(rgb);
    const light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    span.style.color = light < 120 ? "#fff" : "#111";
    return span;
  }));
  lineChart($("gates-unit-plot"), [{ label: `unit ${u}`, xs: ys.map((_, t) => t), ys }],
    { title: `${m.title}, unit ${u}`, xLabel: "token", yLabel: "value" });
}

// ---- pattern search -------------------------------------------------------------------------
function fillSearchMaps() {
  const select = $("gates-search-map");
  const keep = select.value;
  select.replaceChildren(...state.data.maps.map((m) => el("option", { value: m.name, text: m.title })));
  select.value = state.data.maps.some((m) => m.name === keep) ? keep
    : (state.data.maps.some((m) => m.name === "hidden") ? "hidden" : state.data.maps[0].name);
}

function updateSelection() {
  const spans = document.querySelectorAll("#gates-tokens span");
  spans.forEach((s, i) => s.classList.toggle("sel", !!state.sel && i >= state.sel[0] && i <= state.sel[1]));
  const label = $("gates-selection");
  if (!state.sel || !state.data) {
    label.textContent = "no selection";
    $("gates-search-go").disabled = true;
    return;
  }
  const [a, b] = state.sel;
  const piece = state.data.tokens.slice(a, b + 1).join(state.data.joiner);
  label.textContent = `tokens ${a}–${b}: ${JSON.stringify(piece)}`;
  $("gates-search-go").disabled = false;
  if (state.data) redrawAll();
}

async function search() {
  if (!state.sel) return;
  const body = { run: state.data.run, text: state.text, layer: state.data.layer, map: $("gates-search-map").value,
    start: state.sel[0], end: state.sel[1], threshold: Number($("gates-threshold").value), top: 15 };
  const list = $("gates-search-results");
  list.replaceChildren(el("li", { class: "muted", text: "searching…" }));
  try {
    const r = await api("/api/gates/search", body);
    const chips = $("gates-search-units");
    chips.replaceChildren(el("span", { class: "muted", text: r.units.length ? `${r.units.length} units on all through the selection:` : "" }),
      ...r.units.map((u) => el("button", { type: "button", text: u, onclick: () => showUnit(u) })));
    if (r.message) { list.replaceChildren(el("li", { class: "muted", text: r.message })); return; }
    if (!r.matches.length) {
      list.replaceChildren(el("li", { class: "muted", text: `no passage keeps these units on (searched ${r.corpus.tokens} tokens)` }));
      return;
    }
    const j = state.data.joiner;
    list.replaceChildren(...r.matches.map((m) => {
      const li = el("li", {},
        el("span", { class: "ctx", text: m.before.join(j) + (m.before.length ? j : "") }),
        el("span", { class: "hit", text: m.match.join(j) }),
        el("span", { class: "ctx", text: (m.after.length ? j : "") + m.after.join(j) }),
        el("span", { class: "meta", text: `${(100 * m.score).toFixed(0)}% · ${m.shared} of ${r.units.length} units` +
          `${m.extra ? `, ${m.extra} others` : ""} · ${m.source}${m.source === "your text" ? ` @${m.start}` : ""}` }));
      return li;
    }));
    list.append(el("li", { class: "muted", text: `searched ${r.corpus.tokens} tokens in ${r.corpus.documents} passages (${r.corpus.sources.join(", ")})` }));
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: e.message }));
  }
}
