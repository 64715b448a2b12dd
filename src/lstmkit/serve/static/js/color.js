// Colour scales of the heat maps: a sequential one for gates (0..1) and a
// diverging one (blue, white, red) for signed values around 0.

const SEQUENTIAL = [   // dark blue -> teal -> green -> yellow
  [0.0, 22, 28, 78], [0.2, 45, 68, 142], [0.4, 38, 122, 160], [0.6, 46, 168, 134],
  [0.8, 150, 206, 82], [1.0, 250, 232, 52],
];
const DIVERGING = [    // blue -> white -> red
  [0.0, 33, 86, 166], [0.25, 118, 166, 211], [0.5, 246, 246, 246], [0.75, 231, 139, 114], [1.0, 171, 26, 42],
];

function ramp(stops, s) {
  s = Math.min(1, Math.max(0, Number.isFinite(s) ? s : 0.5));
  for (let k = 1; k < stops.length; k++) {
    if (s <= stops[k][0]) {
      const [a, r0, g0, b0] = stops[k - 1], [b, r1, g1, b1] = stops[k];
      const u = (s - a) / (b - a);
      return [Math.round(r0 + u * (r1 - r0)), Math.round(g0 + u * (g1 - g0)), Math.round(b0 + u * (b1 - b0))];
    }
  }
  const last = stops[stops.length - 1];
  return [last[1], last[2], last[3]];
}

// [r, g, b] of a value on a map of kind "gate" or "signed" with scale lo..hi
export function color(value, kind, lo, hi) {
  const s = (value - lo) / ((hi - lo) || 1);
  return ramp(kind === "gate" ? SEQUENTIAL : DIVERGING, s);
}

export function css(rgb) { return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`; }

// A small colour bar with its end values
export function legend(canvas, kind, lo, hi) {
  const w = canvas.width, h = canvas.height, ctx = canvas.getContext("2d");
  for (let x = 0; x < w; x++) {
    ctx.fillStyle = css(color(lo + (hi - lo) * x / (w - 1), kind, lo, hi));
    ctx.fillRect(x, 0, 1, h);
  }
}
