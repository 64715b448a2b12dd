// Translate: the beam's hypotheses for one sentence and their attention.
import { color, css } from "./color.js";
import { $, api, el, fillRunSelect, fmt, hideTip, showError, showTip } from "./util.js";

let result = null;

export function init() {
  $("tr-form").addEventListener("submit", (e) => { e.preventDefault(); translate(); });
}

export async function show(params) {
  try {
    await fillRunSelect($("tr-run"), ["translate"], params.get("run"));
    if (!$("tr-text").value) $("tr-text").value = "Ich habe heute keine Zeit.";
  } catch (e) { showError($("tr-error"), e); }
}

async function translate() {
  $("tr-go").disabled = true;
  try {
    const t0 = performance.now();
    result = await api("/api/translate", { run: $("tr-run").value, text: $("tr-text").value,
      beam: Number($("tr-beam").value), alpha: Number($("tr-alpha").value) });
    showError($("tr-error"), null);
    const [src, tgt] = result.languages;
    $("tr-info").textContent = `${src || "?"} → ${tgt || "?"} · beam ${result.beam} · decoding ${fmt(result.decode_ms, 0)} ms, ` +
      `round trip ${fmt(performance.now() - t0, 0)} ms`;
    const best = result.hypotheses[0];
    $("tr-best").textContent = best ? best.text : "(no hypothesis)";
    const body = $("tr-hyps").querySelector("tbody");
    body.replaceChildren(...result.hypotheses.map((h, i) => {
      const tr = el("tr", { class: "clickable", "data-i": i, onclick: () => choose(i) },
        el("td", { text: i + 1 }), el("td", { text: h.text }), el("td", { class: "num", text: fmt(h.logprob, 2) }),
        el("td", { class: "num", text: fmt(h.score, 3) }), el("td", { text: h.finished ? "yes" : "cut at max length" }));
      return tr;
    }));
    $("tr-hyps").hidden = false;
    choose(0);
  } catch (e) {
    showError($("tr-error"), e);
  } finally {
    $("tr-go").disabled = false;
  }
}

function choose(i) {
  for (const tr of $("tr-hyps").querySelectorAll("tbody tr")) tr.classList.toggle("chosen", Number(tr.dataset.i) === i);
  const h = result.hypotheses[i];
  const panel = $("tr-attention");
  if (!h || !result.attention || !h.attention || !h.attention.length) {
    panel.hidden = !result.attention ? false : true;
    $("tr-attention-title").textContent = result.attention ? "" : "This model has no attention.";
    $("tr-attention-map").hidden = true;
    return;
  }
  panel.hidden = false;
  $("tr-attention-map").hidden = false;
  $("tr-attention-title").textContent = `Attention of hypothesis ${i + 1}: output tokens (rows) over source tokens (columns)`;
  drawAttention($("tr-attention-map"), result.source, h.pieces, h.attention);
}

function drawAttention(canvas, src, tgt, w) {
  const cell = 30;
  const ctx = canvas.getContext("2d");
  ctx.font = "13px system-ui, sans-serif";
  const left = 12 + Math.max(40, ...tgt.map((t) => ctx.measureText(t).width));
  const top = 12 + Math.max(30, ...src.map((t) => ctx.measureText(t).width)) * 0.72;
  canvas.width = left + src.length * cell + 20;
  canvas.height = top + tgt.length * cell + 10;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = "13px system-ui, sans-serif";
  for (let r = 0; r < tgt.length; r++) {
    for (let c = 0; c < src.length; c++) {
      ctx.fillStyle = css(color(w[r][c], "gate", 0, 1));
      ctx.fillRect(left + c * cell, top + r * cell, cell - 1, cell - 1);
    }
  }
  ctx.fillStyle = "#1c2330";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  tgt.forEach((t, r) => ctx.fillText(t, left - 6, top + r * cell + cell / 2));
  ctx.textAlign = "left";
  src.forEach((t, c) => {
    ctx.save();
    ctx.translate(left + c * cell + cell / 2, top - 6);
    ctx.rotate(-Math.PI / 4);
    ctx.fillText(t, 0, 0);
    ctx.restore();
  });
  canvas.onmousemove = (e) => {
    const rect = canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - rect.left - left) / cell), r = Math.floor((e.clientY - rect.top - top) / cell);
    if (r < 0 || c < 0 || r >= tgt.length || c >= src.length) { hideTip(); return; }
    showTip(e, `${JSON.stringify(tgt[r])} ← ${JSON.stringify(src[c])}\nweight ${w[r][c].toFixed(4)}`);
  };
  canvas.onmouseleave = hideTip;
}
