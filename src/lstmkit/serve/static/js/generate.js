// Generate: text streamed from the server as the model writes it (server-sent
// events read through fetch, so an error before the stream shows its message).
import { $, api, el, fillRunSelect, fmt, showError } from "./util.js";

let controller = null;
let poetry = false;

export function init() {
  $("gen-form").addEventListener("submit", (e) => { e.preventDefault(); start(); });
  $("gen-stop").addEventListener("click", stop);
  $("gen-run").addEventListener("change", checkRun);
  for (const r of document.querySelectorAll("input[name=gen-mode]")) r.addEventListener("change", modeChanged);
}

export async function show(params) {
  try {
    await fillRunSelect($("gen-run"), ["generate"], params.get("run"));
    await checkRun();
  } catch (e) { showError($("gen-error"), e); }
}

function mode() { return document.querySelector("input[name=gen-mode]:checked").value; }

async function checkRun() {
  const runId = $("gen-run").value;
  if (!runId) return;
  try {
    const info = await api(`/api/layers?run=${encodeURIComponent(runId)}`);
    poetry = info.poetry;
    for (const r of document.querySelectorAll("input[name=gen-mode]")) {
      r.disabled = r.value !== "text" && !poetry;
      if (r.disabled && r.checked) document.querySelector("input[name=gen-mode][value=text]").checked = true;
    }
    $("gen-topk").max = info.vocab || "";
    modeChanged();
    showError($("gen-error"), null);
  } catch (e) { showError($("gen-error"), e); }
}

function modeChanged() {
  $("gen-form").classList.toggle("poetry", mode() !== "text");
  $("gen-length").disabled = mode() !== "text";
}

function stop() {
  if (controller) controller.abort();
  controller = null;
  $("gen-stop").disabled = true;
  $("gen-go").disabled = false;
}

function parseEvent(block) {
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  return { event, data: data ? JSON.parse(data) : null };
}

async function start() {
  stop();
  const q = new URLSearchParams({ run: $("gen-run").value, mode: mode(), prime: $("gen-prime").value,
    temperature: $("gen-temperature").value, length: $("gen-length").value });
  if ($("gen-topk").value) q.set("top_k", $("gen-topk").value);
  if ($("gen-seed").value) q.set("seed", $("gen-seed").value);
  if (mode() !== "text" && $("gen-form-name").value) q.set("form", $("gen-form-name").value);
  if (mode() === "acrostic") q.set("heads", $("gen-heads").value);
  const out = $("gen-out");
  const stats = $("gen-stats");
  showError($("gen-error"), null);
  controller = new AbortController();
  $("gen-go").disabled = true;
  $("gen-stop").disabled = false;
  out.dataset.state = "waiting";
  stats.textContent = "";
  let written = 0, first = null;
  try {
    const response = await fetch(`/api/generate?${q}`, { signal: controller.signal });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `${response.status} ${response.statusText}`);
    }
    const primeSpan = el("span", { class: "prime" });
    const text = document.createTextNode("");
    out.replaceChildren(primeSpan, text);
    out.dataset.state = "streaming";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let k;
      while ((k = buffer.indexOf("\n\n")) >= 0) {
        const { event, data } = parseEvent(buffer.slice(0, k));
        buffer = buffer.slice(k + 2);
        if (event === "start") {
          primeSpan.textContent = data.prime;
        } else if (event === "token") {
          text.appendData(data.text);
          written += data.text.length;
          first ??= performance.now();
          if (written % 16 < data.text.length) {
            const s = (performance.now() - first) / 1000;
            stats.textContent = `${written} characters${s > 0 ? ` · ${fmt(written / s, 0)} characters/s` : ""}`;
          }
        } else if (event === "done") {
          stats.textContent = `${data.chars} characters, ${data.tokens} tokens in ${fmt(data.seconds, 2)} s: ` +
            `${fmt(data.chars_per_s, 0)} characters/s (server), one step of the model per token`;
          out.dataset.state = "done";
        } else if (event === "failed") {
          throw new Error(data.error);
        }
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") showError($("gen-error"), e);
    out.dataset.state = e.name === "AbortError" ? "stopped" : "failed";
  } finally {
    controller = null;
    $("gen-go").disabled = false;
    $("gen-stop").disabled = true;
  }
}
