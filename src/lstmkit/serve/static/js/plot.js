// Small charts on a canvas: lines (linear or log y) and bars; hover reads values.
import { fmt, hideTip, showTip } from "./util.js";

export const PALETTE = ["#c0392b", "#2e86c1", "#1e8449", "#8e44ad", "#d68910", "#5d6d7e"];

function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

function setup(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = "12px system-ui, sans-serif";
  return ctx;
}

function frame(ctx, box, xticks, yticks, xpos, ypos, opt) {
  ctx.strokeStyle = "#e4e7ec";
  ctx.fillStyle = "#5d6778";
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of xticks) {
    const x = xpos(t);
    ctx.beginPath(); ctx.moveTo(x, box.top); ctx.lineTo(x, box.bottom); ctx.stroke();
    ctx.fillText(opt.xfmt ? opt.xfmt(t) : fmt(t, 2), x, box.bottom + 4);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of yticks) {
    const y = ypos(t);
    ctx.beginPath(); ctx.moveTo(box.left, y); ctx.lineTo(box.right, y); ctx.stroke();
    ctx.fillText(opt.yfmt ? opt.yfmt(t) : fmt(t, 2), box.left - 5, y);
  }
  ctx.strokeStyle = "#8a93a3";
  ctx.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  ctx.fillStyle = "#1c2330";
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  if (opt.title) { ctx.font = "600 13px system-ui, sans-serif"; ctx.fillText(opt.title, (box.left + box.right) / 2, 16); }
  ctx.font = "12px system-ui, sans-serif";
  if (opt.xLabel) ctx.fillText(opt.xLabel, (box.left + box.right) / 2, box.bottom + 34);
  if (opt.yLabel) {
    ctx.save(); ctx.translate(14, (box.top + box.bottom) / 2); ctx.rotate(-Math.PI / 2);
    ctx.fillText(opt.yLabel, 0, 0); ctx.restore();
  }
}

// series: [{label, xs, ys, color, dash}], opt: {logY, title, xLabel, yLabel}
export function lineChart(canvas, series, opt = {}) {
  const box = { left: 64, right: canvas.width - 16, top: 28, bottom: canvas.height - 48 };
  const pts = series.map((s) => s.xs.map((x, i) => [x, s.ys[i]]).filter(([, y]) =>
    y !== null && Number.isFinite(y) && (!opt.logY || y > 0)));
  const all = pts.flat();
  const draw = (hoverX) => {
    const ctx = setup(canvas);
    if (!all.length) { ctx.fillStyle = "#5d6778"; ctx.fillText("nothing to plot", 20, 30); return; }
    let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
    if (x0 === x1) x1 = x0 + 1;
    const tr = opt.logY ? Math.log10 : (v) => v;
    let y0 = Math.min(...all.map((p) => tr(p[1]))), y1 = Math.max(...all.map((p) => tr(p[1])));
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    const xpos = (x) => box.left + (x - x0) / (x1 - x0) * (box.right - box.left);
    const ypos = (v) => box.bottom - (v - y0) / (y1 - y0) * (box.bottom - box.top);
    const yticks = opt.logY ? niceTicks(y0, y1, 6).filter((t) => Number.isInteger(t)) : niceTicks(y0, y1, 6);
    frame(ctx, box, niceTicks(x0, x1, 8), yticks, xpos, ypos,
      { ...opt, yfmt: opt.logY ? (t) => `1e${t}` : undefined });
    ctx.save();
    ctx.beginPath(); ctx.rect(box.left, box.top, box.right - box.left, box.bottom - box.top); ctx.clip();
    series.forEach((s, k) => {
      ctx.strokeStyle = s.color || PALETTE[k % PALETTE.length];
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dash ? [6, 4] : []);
      ctx.beginPath();
      pts[k].forEach(([x, y], i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, xpos(x), ypos(tr(y))));
      ctx.stroke();
    });
    ctx.restore();
    ctx.setLineDash([]);
    // legend
    let ly = box.top + 8;
    series.forEach((s, k) => {
      ctx.fillStyle = s.color || PALETTE[k % PALETTE.length];
      ctx.fillRect(box.right - 150, ly - 5, 18, 3);
      ctx.fillStyle = "#1c2330"; ctx.textAlign = "left"; ctx.textBaseline = "middle";
      ctx.fillText(s.label, box.right - 126, ly);
      ly += 17;
    });
    if (hoverX !== undefined) {
      ctx.strokeStyle = "#1c2330"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(xpos(hoverX), box.top); ctx.lineTo(xpos(hoverX), box.bottom); ctx.stroke();
    }
    canvas._map = { x0, x1, box };
  };
  draw();
  canvas.onmousemove = (e) => {
    const m = canvas._map;
    if (!m) return;
    const r = canvas.getBoundingClientRect();
    const px = (e.clientX - r.left) * canvas.width / r.width;
    if (px < m.box.left || px > m.box.right) { hideTip(); draw(); return; }
    const xv = m.x0 + (px - m.box.left) / (m.box.right - m.box.left) * (m.x1 - m.x0);
    const lines = [`${opt.xLabel || "x"}: ${fmt(Math.round(xv), 0)}`];
    let snapped = null;
    series.forEach((s) => {
      let best = -1, bd = Infinity;
      s.xs.forEach((x, i) => { const d = Math.abs(x - xv); if (d < bd) { bd = d; best = i; } });
      if (best >= 0) { lines.push(`${s.label}: ${fmt(s.ys[best])}`); snapped = s.xs[best]; }
    });
    draw(snapped === null ? xv : snapped);
    showTip(e, lines.join("\n"));
  };
  canvas.onmouseleave = () => { hideTip(); draw(); };
}

// Bars over bins: edges (n+1), counts (n)
export function histogram(canvas, edges, counts, opt = {}) {
  const ctx = setup(canvas);
  const box = { left: 64, right: canvas.width - 16, top: 28, bottom: canvas.height - 48 };
  const x0 = edges[0], x1 = edges[edges.length - 1] === x0 ? x0 + 1 : edges[edges.length - 1];
  const ymax = Math.max(1, ...counts);
  const xpos = (x) => box.left + (x - x0) / (x1 - x0) * (box.right - box.left);
  const ypos = (y) => box.bottom - y / ymax * (box.bottom - box.top);
  frame(ctx, box, niceTicks(x0, x1, 6), niceTicks(0, ymax, 5), xpos, ypos, opt);
  ctx.fillStyle = opt.color || "#2e86c1";
  counts.forEach((c, i) => {
    const a = xpos(edges[i]), b = xpos(edges[i + 1]);
    ctx.fillRect(a + 0.5, ypos(c), Math.max(1, b - a - 1), box.bottom - ypos(c));
  });
  if (opt.marks) {
    for (const [x, label] of opt.marks) {
      if (x < x0 || x > x1) continue;
      ctx.strokeStyle = "#c0392b"; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(xpos(x), box.top); ctx.lineTo(xpos(x), box.bottom); ctx.stroke();
      ctx.setLineDash([]); ctx.fillStyle = "#c0392b"; ctx.textAlign = "left";
      ctx.fillText(label, xpos(x) + 4, box.top + 12);
    }
  }
  canvas.onmousemove = (e) => {
    const r = canvas.getBoundingClientRect();
    const px = (e.clientX - r.left) * canvas.width / r.width;
    const i = edges.findIndex((ed, k) => k < counts.length && px >= xpos(ed) && px < xpos(edges[k + 1]));
    if (i < 0) { hideTip(); return; }
    showTip(e, `${fmt(edges[i])} to ${fmt(edges[i + 1])}: ${counts[i]}`);
  };
  canvas.onmouseleave = hideTip;
}
