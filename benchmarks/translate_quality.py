"""Issue 11's quality study: lstmkit's translation model against its PyTorch anchor on the Ding
German-English test split, both trained for the same epochs from the same seeds.

    python benchmarks/translate_quality.py [--seeds 0,1,2] [--epochs 8] [--jobs 2] \
        [--runs DIR] [--out examples/translate-quality]

For each seed: `lstmkit.apps.translate.train` makes the split, the tokenizers and a run folder and
trains lstmkit's model; `benchmarks/translate_anchor.train_on_run` trains the PyTorch anchor on that
run's own split and tokenizers, from the same initial weights, on the same batch order (its one free
difference is its dropout masks). Plus lstmkit without attention on the first seed. Every model is
scored on its seed's test split with greedy and beam-5 decoding (BLEU and chrF, sacrebleu).

Each job is a separate process on one thread (BLAS, Numba, torch); `--jobs` of them run at once. The
table (mean and standard deviation over seeds, per side, greedy and beam) goes to OUT/results.md and
OUT/results.json with the command, the sizes, the epochs, the wall and CPU time of every job.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# one model, both sides: a real size (the issue's workload E shape), Luong "general" attention
SETTINGS = {"embed_dim": 256, "units": 256, "layers": 1, "cell": "lstm", "bidirectional": False,
            "attention": "general", "input_feeding": False, "dropout": 0.3, "label_smoothing": 0.1,
            "batch_size": 64, "learning_rate": 0.002, "clipnorm": 5.0, "src_vocab": 4000,
            "tgt_vocab": 4000, "max_len": 20, "beam": 5, "alpha": 0.6}


def _one_thread():
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[v] = "1"


def run_lstmkit(run, seed, epochs, attention):
    """Train and score lstmkit's model into the run folder `run`; returns its summary."""
    from lstmkit.apps import translate
    s = dict(SETTINGS, attention=attention)
    m, _ = translate.train(ding=True, out=run, attention=s["attention"], epochs=epochs, patience=0,
                           dropout=s["dropout"], label_smoothing=s["label_smoothing"],
                           learning_rate=s["learning_rate"], batch_size=s["batch_size"],
                           embed_dim=s["embed_dim"], units=s["units"], layers=s["layers"], cell=s["cell"],
                           src_vocab=s["src_vocab"], tgt_vocab=s["tgt_vocab"], max_len=s["max_len"],
                           beam=s["beam"], alpha=s["alpha"], clipnorm=s["clipnorm"], seed=seed, verbose=2)
    return {"greedy": m["greedy"], "beam": m["beam"], "copy_baseline": m["copy_baseline"],
            "val_loss": m["history"]["val_loss"], "tokens_per_s": m["history"]["tokens_per_s"],
            "final_val_nll": m["history"]["final_val_nll"],
            "train_pairs": m["train_pairs_used"], "test_pairs": m["test_pairs"],
            "greedy_seconds": m["greedy_seconds"], "beam_seconds": m["beam_seconds"]}


def run_anchor(run, seed, epochs):
    """Train and score the PyTorch anchor on lstmkit's run folder `run` (waits for its meta.json)."""
    import torch
    sys.path.insert(0, HERE)
    import translate_anchor
    torch.set_num_threads(1)
    while not os.path.exists(os.path.join(run, "src.spm.model")) or \
            not os.path.exists(os.path.join(run, "meta.json")):
        time.sleep(5)                         # lstmkit's job writes the split and tokenizers first
    r = translate_anchor.train_on_run(run, epochs=epochs, seed=seed, log=lambda m: print(m, flush=True))
    return {"greedy": r["greedy"], "beam": r["beam"], "copy_baseline": r["copy_baseline"],
            "val_loss": r["history"]["val_loss"], "tokens_per_s": r["history"]["tokens_per_s"],
            "greedy_seconds": r["greedy_seconds"], "beam_seconds": r["beam_seconds"]}


def job(name, runs, epochs):
    """One job in this process: 'lk-general-0', 'lk-none-0' or 'torch-general-0'."""
    _one_thread()
    side, attention, seed = name.split("-")
    seed = int(seed)
    run = os.path.join(runs, f"lk-{attention}-s{seed}")
    from threadpoolctl import threadpool_limits
    t0 = time.time()
    with threadpool_limits(1):
        res = run_lstmkit(run, seed, epochs, attention) if side == "lk" else run_anchor(run, seed, epochs)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res.update(job=name, side=side, attention=attention, seed=seed, epochs=epochs, run=run,
               wall_seconds=time.time() - t0, cpu_seconds=ru.ru_utime + ru.ru_stime)
    return res


def _ms(xs):
    xs = np.asarray(xs, dtype=float)
    return {"mean": float(xs.mean()), "sd": float(xs.std(ddof=1)) if len(xs) > 1 else 0.0, "n": int(len(xs)),
            "values": [float(x) for x in xs]}


def final_nll(r):
    """The unsmoothed validation NLL per target token (nats) of the final weights: the anchor's val_loss is
    unsmoothed already; lstmkit's val_loss includes label smoothing, so its run folder's final_val_nll."""
    if r["side"] != "lk":
        return r["val_loss"][-1]
    if "final_val_nll" not in r:                  # a job file written before the field was recorded
        with open(os.path.join(r["run"], "metrics.json")) as fh:
            r["final_val_nll"] = json.load(fh)["history"]["final_val_nll"]
    return r["final_val_nll"]


def summarize(results):
    rows = {}
    for r in results:
        key = ("lstmkit" if r["side"] == "lk" else "PyTorch anchor") + \
              (", attention" if r["attention"] != "none" else ", no attention")
        rows.setdefault(key, []).append(r)
    table = {}
    for key, rs in rows.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        table[key] = {"seeds": [r["seed"] for r in rs],
                      "bleu_greedy": _ms([r["greedy"]["bleu"] for r in rs]),
                      "bleu_beam": _ms([r["beam"]["bleu"] for r in rs]),
                      "chrf_greedy": _ms([r["greedy"]["chrf"] for r in rs]),
                      "chrf_beam": _ms([r["beam"]["chrf"] for r in rs]),
                      "final_val_nll": _ms([final_nll(r) for r in rs]),
                      "train_tokens_per_s": _ms([float(np.median(r["tokens_per_s"])) for r in rs])}
    copies = {r["seed"]: r["copy_baseline"] for r in results if r["side"] == "lk"}
    table["copy the source (baseline)"] = {
        "seeds": sorted(copies), "bleu_greedy": _ms([copies[s]["bleu"] for s in sorted(copies)]),
        "chrf_greedy": _ms([copies[s]["chrf"] for s in sorted(copies)])}
    return table


def write_report(out, results, table, meta):
    from lstmkit.io import write_json, write_text
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "results.json"), {"meta": meta, "table": table, "jobs": results})
    f = lambda d: f"{d['mean']:.2f} ± {d['sd']:.2f}" if d else ""
    lines = [
        "# Translation quality: lstmkit against its PyTorch anchor (issue 11)", "",
        f"Command: `{meta['command']}`", "",
        f"Data: Ding German-English pairs through the data cache; each seed draws its own split "
        f"(5% validation, 5% test by source sentence) and its own SentencePiece tokenizers "
        f"({SETTINGS['src_vocab']}/{SETTINGS['tgt_vocab']}); training pairs up to {SETTINGS['max_len']} "
        "subwords a side; the full test split (about 810 pairs) is scored.", "",
        "Model and recipe, identical on both sides: embedding {embed_dim}, LSTM {units} (1 layer), Luong "
        "general attention, dropout {dropout}, label smoothing {label_smoothing}, Adam {learning_rate} "
        "(epsilon 1e-7), gradient norm clipped at {clipnorm}, batch {batch_size}, ".format(**SETTINGS)
        + f"{meta['epochs']} epochs (no early stopping), beam {SETTINGS['beam']} with length penalty "
        f"alpha {SETTINGS['alpha']}. The anchor trains on the lstmkit run's split and tokenizers, from "
        "the same initial weights, on the same batch order; its dropout masks are its own.", "",
        "Mean ± standard deviation over seeds (sample sd).", "",
        "| model | seeds | BLEU greedy | BLEU beam 5 | chrF greedy | chrF beam 5 | final val NLL (nats/token, unsmoothed) "
        "| train target tokens/s (1 thread, wall clock on the shared machine) |",
        "|---|---|---|---|---|---|---|---|"]
    for key, t in table.items():
        lines.append(f"| {key} | {','.join(map(str, t['seeds']))} | {f(t['bleu_greedy'])} | "
                     f"{f(t.get('bleu_beam'))} | {f(t['chrf_greedy'])} | {f(t.get('chrf_beam'))} | "
                     f"{f(t.get('final_val_nll'))} | "
                     + (f"{t['train_tokens_per_s']['mean']:.0f}" if "train_tokens_per_s" in t else "") + " |")
    lines += ["", "Per job:", "",
              "| job | BLEU greedy | BLEU beam | chrF greedy | chrF beam | val loss by epoch (lk: with label smoothing; "
              "torch: unsmoothed) | final val NLL | wall s | CPU s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: r["job"]):
        lines.append(f"| {r['job']} | {r['greedy']['bleu']:.2f} | {r['beam']['bleu']:.2f} | "
                     f"{r['greedy']['chrf']:.1f} | {r['beam']['chrf']:.1f} | "
                     f"{' '.join(f'{v:.2f}' for v in r['val_loss'])} | {final_nll(r):.3f} | {r['wall_seconds']:.0f} | "
                     f"{r['cpu_seconds']:.0f} |")
    wall = "" if meta["wall_minutes"] is None else f", {meta['wall_minutes']:.1f} minutes wall"
    lines += ["", f"Total: {meta['cpu_minutes']:.1f} CPU-minutes{wall} with {meta['jobs']} jobs at once; "
              f"machine: {meta['machine']}; load average when the table was made {meta['load_end']}.", ""]
    if meta.get("notes"):
        lines += [meta["notes"], ""]
    write_text(os.path.join(out, "results.md"), "\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2, help="processes at once (each on one thread)")
    ap.add_argument("--no-attention-seeds", default=None, help="default: the first seed")
    ap.add_argument("--runs", default=os.path.join("runs", "translate-quality"),
                    help="folder for the run folders and job results")
    ap.add_argument("--out", default=os.path.join("examples", "translate-quality"))
    ap.add_argument("--job", default=None, help=argparse.SUPPRESS)        # one job, in a child process
    ap.add_argument("--report-only", action="store_true", help="rebuild the table from RUNS/*.json")
    a = ap.parse_args(argv)
    if a.job:
        res = job(a.job, a.runs, a.epochs)
        from lstmkit.io import write_json
        write_json(os.path.join(a.runs, f"{a.job}.json"), res)
        return 0
    seeds = [int(s) for s in a.seeds.split(",")]
    plain = [int(s) for s in (a.no_attention_seeds or str(seeds[0])).split(",") if s != ""]
    names = [n for s in seeds for n in (f"lk-general-{s}", f"torch-general-{s}")] + [f"lk-none-{s}" for s in plain]
    os.makedirs(a.runs, exist_ok=True)
    t0, load0 = time.time(), os.getloadavg()
    if not a.report_only:
        queue, running = list(names), {}
        while queue or running:
            while queue and len(running) < a.jobs:
                n = queue.pop(0)
                cmd = [sys.executable, os.path.abspath(__file__), "--job", n, "--runs", a.runs,
                       "--epochs", str(a.epochs)]
                log = open(os.path.join(a.runs, f"{n}.log"), "w")
                running[n] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
                print(f"{time.strftime('%H:%M:%S')} started {n}", flush=True)
            time.sleep(2)
            for n, (p, log) in list(running.items()):
                if p.poll() is not None:
                    log.close()
                    del running[n]
                    print(f"{time.strftime('%H:%M:%S')} {n} finished (exit {p.returncode})", flush=True)
                    if p.returncode:
                        print(f"  see {os.path.join(a.runs, n + '.log')}", flush=True)
    results = []
    for n in names:
        path = os.path.join(a.runs, f"{n}.json")
        if os.path.exists(path):
            with open(path) as fh:
                results.append(json.load(fh))
    table = summarize(results)
    cmd = (f"python benchmarks/translate_quality.py --seeds {a.seeds} --epochs {a.epochs} --jobs {a.jobs}"
           + (f" --no-attention-seeds {a.no_attention_seeds}" if a.no_attention_seeds else ""))
    meta = {"command": cmd, "epochs": a.epochs, "seeds": seeds, "no_attention_seeds": plain, "jobs": a.jobs,
            "settings": SETTINGS, "cpu_minutes": sum(r["cpu_seconds"] for r in results) / 60,
            "wall_minutes": (time.time() - t0) / 60 if not a.report_only else None,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_start": " ".join(f"{x:.1f}" for x in load0),
            "load_end": " ".join(f"{x:.1f}" for x in os.getloadavg()), "finished_jobs": len(results),
            "jobs_asked": len(names)}
    write_report(a.out, results, table, meta)
    print(open(os.path.join(a.out, "results.md")).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
