// Shared helpers of the pages: the API, DOM building, the run lists, the tooltip.

export async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function $(id) { return document.getElementById(id); }

export function showError(box, error) {
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

let runsPromise = null;

// The server's list of runs (fetched again when `fresh`).
export function runs(fresh = false) {
  if (fresh || !runsPromise) runsPromise = api("/api/runs").catch((e) => { runsPromise = null; throw e; });
  return runsPromise;
}

// Fill a <select> with the runs of some apps that have a model; keeps or sets the choice.
export async function fillRunSelect(select, apps, wanted) {
  const data = await runs(true);
  const current = wanted || select.value;
  select.replaceChildren();
  const usable = data.runs.filter((r) => r.has_model && apps.includes(r.app));
  for (const r of usable) {
    const label = `${r.id} (${r.app}${r.cell ? ", " + r.cell : ""})`;
    select.append(el("option", { value: r.id, text: label }));
  }
  if (!usable.length) {
    select.append(el("option", { value: "", text: `no ${apps.join(" or ")} run under ${data.runs_dir || "--runs"}` }));
  }
  if (current && usable.some((r) => r.id === current)) select.value = current;
  return usable;
}

const tip = () => $("tooltip");

export function showTip(event, text) {
  const t = tip();
  t.textContent = text;
  t.hidden = false;
  const pad = 14;
  let x = event.clientX + pad, y = event.clientY + pad;
  const w = t.offsetWidth, h = t.offsetHeight;
  if (x + w > window.innerWidth - 4) x = event.clientX - w - pad;
  if (y + h > window.innerHeight - 4) y = event.clientY - h - pad;
  t.style.left = `${x}px`;
  t.style.top = `${y}px`;
}

export function hideTip() { tip().hidden = true; }

export function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

// How a token shows in a narrow cell: visible marks for spaces and line breaks.
export function showToken(t) {
  return t.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/^ $/, "␣");
}

// base64 of little-endian float32 -> Float32Array
export function decodeFloats(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}
