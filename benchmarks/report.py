"""Ratios, targets, the table (text and Markdown) and atomic writes of the results."""
import json
import os
import tempfile

PEERS = ("torch_default", "torch_flush_denormal", "onnxruntime")
COLUMNS = ("lstmkit",) + PEERS


def summarize(entry):
    """Fill entry's best peer, ratio (best peer median / lstmkit median) and met."""
    fw = entry["frameworks"]
    mine = fw.get("lstmkit", {}).get("median")
    peers = {p: fw[p]["median"] for p in PEERS if "median" in fw.get(p, {})}
    entry["ratios"] = {p: v / mine for p, v in peers.items()} if mine else {}
    if mine and peers:
        best = min(peers, key=peers.get)
        entry.update(best_peer=best, ratio=peers[best] / mine)
        entry["met"] = entry["ratio"] >= entry["target"]
    else:
        entry.update(best_peer=None, ratio=None, met=None)
    return entry


def summarize_memory(entry):
    """Memory: ratio = torch / lstmkit training peak; met when lstmkit <= torch."""
    m = entry["frameworks"]
    mine, theirs = (m.get(k, {}).get("train_peak_mb") for k in ("lstmkit", "torch"))
    entry["ratio"] = theirs / mine if mine and theirs else None
    entry["met"] = None if entry["ratio"] is None else mine <= theirs
    return entry


def _cell(d, key="median"):
    if not d:
        return "-"
    if "error" in d:
        return "error"
    return f"{d[key]:.3g}" if d.get(key) is not None else "-"


def _flag(met):
    return {True: "yes", False: "NO", None: "-"}[met]


def _others(e):
    """Share of the CPU that other processes took while the case was timed."""
    return "-" if e.get("others_cpu") is None else f"{100 * e['others_cpu']:.0f}%"


BUSY = 0.10


def busy(results):
    return [e["id"] for e in results["cases"] if (e.get("others_cpu") or 0) > BUSY]


def rows(results):
    out = [("workload", "unit", "lstmkit", "torch default", "torch flush-denormal",
            "onnxruntime", "ratio", "target", "met", "others")]
    for e in results["cases"]:
        fw = e["frameworks"]
        out.append((e["id"], e["unit"], *(_cell(fw.get(c)) for c in COLUMNS),
                    "-" if e["ratio"] is None else f"{e['ratio']:.2f}x",
                    f">={e['target']:g}x", _flag(e["met"]), _others(e)))
    for e in results.get("memory", []):
        fw = e["frameworks"]
        out.append((f"{e['case']} peak memory", "MB", _cell(fw.get("lstmkit"), "train_peak_mb"),
                    _cell(fw.get("torch"), "train_peak_mb"), "-", "-",
                    "-" if e["ratio"] is None else f"{e['ratio']:.2f}x", "<= torch", _flag(e["met"]), "-"))
    return out


def notes(results):
    lines = []
    b = busy(results)
    if b:
        lines.append(f"WARNING: other processes took over {100 * BUSY:.0f}% of the CPU during "
                     f"{len(b)} case(s): {', '.join(b)}; their timings are unreliable")
    peak = results.get("sgemm", {}).get("gflops")
    for e in results["cases"]:
        g = e.get("gflops")
        if g and peak:
            parts = [f"{k} {v:.1f}" for k, v in g.items() if v]
            lines.append(f"{e['id']}: GFLOP/s {', '.join(parts)} (sgemm peak {peak:.1f}; "
                         f"lstmkit at {100 * (g.get('lstmkit') or 0) / peak:.0f}% of peak)")
    leaked = [e["id"] for e in results["cases"] if e.get("denormals_flushed_after")]
    if leaked:
        lines.append(f"WARNING: denormals were left flushed in the main thread after {', '.join(leaked)}")
    for e in results["cases"]:
        for fw, d in e["frameworks"].items():
            if "error" in d:
                lines.append(f"{e['id']} {fw}: {d['error']}")
    return lines


def text_table(results):
    table = rows(results)
    widths = [max(len(str(r[i])) for r in table) for i in range(len(table[0]))]
    fmt = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths))
    return "\n".join([fmt(table[0]), fmt(["-" * w for w in widths])] + [fmt(r) for r in table[1:]])


def markdown(results):
    table = rows(results)
    md = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    md += ["| " + " | ".join(str(v) for v in r) + " |" for r in table[1:]]
    m = results["meta"]
    head = [f"Benchmark run {m['finished']} ({'quick' if m['quick'] else 'full'}), "
            f"{m['threads']} threads, lstmkit api: {m['lstmkit']['api']}, engines: "
            + ", ".join(f"{k}={v}" for k, v in m["lstmkit"]["engines"].items()), "",
            "Medians; ms per call (C: us per step). ratio = best peer median / lstmkit median.", ""]
    return "\n".join(head + md + [""] + [f"- {n}" for n in notes(results)]) + "\n"


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(results, out_dir):
    write_atomic(os.path.join(out_dir, "latest.json"), json.dumps(results, indent=1) + "\n")
    write_atomic(os.path.join(out_dir, "latest.md"), markdown(results))
