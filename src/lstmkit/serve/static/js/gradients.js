// Gradients: gradient norm against distance for the simple RNN, GRU and LSTM,
// and the histogram of the diagonal of the LSTM's dc_t/dc_{t-1}.
import { histogram, lineChart, PALETTE } from "./plot.js";
import { $, api, el, fmt, showError } from "./util.js";

const COLORS = { simple_rnn: PALETTE[0], gru: PALETTE[2], lstm: PALETTE[1], lstm_c: PALETTE[1] };
let ran = false;

export function init() {
  $("gr-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
}

export function show() {
  if (!ran) run();
}

async function run() {
  ran = true;
  const cells = [...document.querySelectorAll("input[name=gr-cell]:checked")].map((c) => c.value);
  const body = { cells, steps: Number($("gr-steps").value), weight_scale: Number($("gr-scale").value),
    units: Number($("gr-units").value), forget_bias: Number($("gr-bias").value), seed: Number($("gr-seed").value) };
  $("gr-go").disabled = true;
  $("gr-info").textContent = "backpropagating…";
  try {
    const r = await api("/api/gradients", body);
    showError($("gr-error"), null);
    const xs = Array.from({ length: r.steps + 1 }, (_, d) => d);
    const series = Object.entries(r.norms).map(([k, ys]) => ({
      label: k === "lstm_c" ? "LSTM, ‖dL/dc‖" : `${r.labels[k]}, ‖dL/dh‖`, xs, ys, color: COLORS[k], dash: k === "lstm_c" }));
    lineChart($("gr-norms"), series, { logY: true, title: `mean gradient norm against distance from the loss (${r.units} units, W_h × ${r.weight_scale})`,
      xLabel: "distance from the loss (steps)", yLabel: "norm (log scale)" });
    if (r.jacobian) {
      const j = r.jacobian;
      histogram($("gr-hist"), j.edges, j.counts, { title: "LSTM: diagonal of dc_t / dc_(t-1)", xLabel: "value",
        yLabel: "count", marks: [[1, "1"], [j.mean, `mean ${fmt(j.mean)}`]] });
    } else {
      const ctx = $("gr-hist").getContext("2d");
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 440, 380);
      ctx.fillStyle = "#5d6778"; ctx.font = "13px system-ui"; ctx.fillText("tick LSTM to see dc_t / dc_(t-1)", 20, 40);
    }
    const dist = [1, 5, 10, 20, 50, 100, 200, 500, 1000].filter((d) => d <= r.steps);
    const table = $("gr-table");
    table.querySelector("thead").replaceChildren(el("tr", {}, el("th", { text: "distance" }),
      ...series.map((s) => el("th", { text: s.label }))));
    table.querySelector("tbody").replaceChildren(...dist.map((d) => el("tr", {}, el("td", { class: "num", text: d }),
      ...series.map((s) => el("td", { class: "num", text: fmt(s.ys[d]) })))));
    table.hidden = false;
    $("gr-info").textContent = `${fmt(r.seconds, 2)} s` + (r.jacobian
      ? ` · forget gate mean ${fmt(r.forget_gate_mean)} · dc_t/dc_(t-1) median ${fmt(r.jacobian.quantiles["50"])}, 5–95% ` +
        `[${fmt(r.jacobian.quantiles["5"])}, ${fmt(r.jacobian.quantiles["95"])}]` : "");
  } catch (e) {
    showError($("gr-error"), e);
    $("gr-info").textContent = "";
  } finally {
    $("gr-go").disabled = false;
  }
}
