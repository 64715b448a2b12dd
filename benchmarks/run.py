"""lstmkit against PyTorch (default and flush-denormal) and ONNX Runtime.

    python benchmarks/run.py [--quick] [--only A,C] [--tiny] [--out DIR]

Writes DIR/latest.json and DIR/latest.md (default benchmarks/results) and
prints the table. See benchmarks/README.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import envsetup  # noqa: E402  (must come before numpy, torch, numba)

ENV = envsetup.apply()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import data  # noqa: E402
import denormal_check  # noqa: E402
import peak  # noqa: E402
import quiet  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402
import weights  # noqa: E402
import workloads  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MEMORY_CASES = ("A-lstm-b32-train", "A-lstm-b128-train")
WARMUP_CALLS = 2               # untimed calls before a framework's timed repeats (C: one repeat of steps)
COLD_START = "F-cold-start"    # the cold-start (first use) measurement (cold_start.py), selected like a workload


def _import(name):
    try:
        return __import__(name), None
    except Exception as e:                          # a peer that cannot load is reported, not fatal
        return None, f"{type(e).__name__}: {e}"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _err(e):
    return {"error": f"{type(e).__name__}: {e}"[:400]}


def run_case(case, peers, args):
    repeats = args.repeats or (case.quick_repeats if args.quick else case.repeats)
    scale = 1e6 if case.unit == "us" else 1e3
    warmup = WARMUP_CALLS if case.kind != "step" else case.inner   # C: one repeat's worth of steps
    entry = {"id": case.id, "workload": case.workload, "kind": case.kind, "unit": case.unit,
             "target": case.target, "batch": case.batch, "length": case.length, "fresh": case.fresh,
             "net": vars(case.net), "frameworks": {}, "warmup_calls": warmup, "repeats": repeats,
             "calls_per_repeat": case.inner}
    if case.workload == "E":                        # translation: its own runners (seq2seq_bench.py)
        return run_seq2seq_case(case, entry, repeats, args)
    w = weights.make(case.net)
    x, y = data.make(case)
    if args.wait_quiet:
        entry["others_before"] = quiet.wait_quiet(args.wait_quiet)
    lk, torch_peer, ort_peer = peers["lstmkit"], peers["torch"], peers["onnxruntime"]
    plain = contextlib.nullcontext
    if torch_peer is not None:                      # the others never run with denormals flushed
        torch_peer.torch.set_flush_denormal(False)
    plan = [("lstmkit", lk, plain), ("torch_default", torch_peer, plain),
            ("torch_flush_denormal", torch_peer,
             (lambda: torch_peer.flush_denormal(True)) if torch_peer else plain),
            ("onnxruntime", ort_peer, plain)]
    runners = {}
    for name, mod, context in plan:
        if mod is None:
            entry["frameworks"][name] = {"error": peers["errors"].get(name, "not available")}
            continue
        try:
            fn = mod.runner(case, w, x, y)
            if isinstance(fn, tuple):
                fn, entry[f"{name}_api"] = fn
            if fn is not None:                      # None: this peer has no such measurement
                runners[name] = (fn, context)
        except Exception as e:
            entry["frameworks"][name] = _err(e)
    meter = quiet.Meter()
    if args.interleave:
        timed = timing.measure_interleaved(runners, repeats, warmup, case.inner, scale, settle=args.settle)
    else:
        timed = timing.measure_blocks(runners, repeats, warmup, case.inner, scale)
    entry["frameworks"].update(timed)
    entry["others_cpu"] = meter.others()        # share of the CPU other processes took meanwhile
    entry["denormals_flushed_after"] = denormal_check.flushed()
    if entry["denormals_flushed_after"]:            # a framework left FTZ/DAZ on: say so, then undo
        log(f"  WARNING: denormals are flushed in the main thread after {case.id}")
        if torch_peer is not None:
            torch_peer.torch.set_flush_denormal(False)
    for name, d in entry["frameworks"].items():
        log(f"  {case.id:22s} {name:22s} " + (f"{d['median']:.4g} {case.unit}" if "median" in d
                                                 else d.get("error", "")))
    if lk is not None:
        entry["engine"] = lk.engine_name(case.net.cell)
    # the work each framework does per call, counted as it does it (peak.work_flops)
    entry["flops"] = {k: peak.work_flops(case, "lstmkit" if k == "lstmkit" else "peer")
                      for k in entry["frameworks"]}
    entry["gflops"] = {k: entry["flops"][k] / (v["median"] / scale) / 1e9
                       for k, v in entry["frameworks"].items() if "median" in v}
    return report.summarize(entry)


def run_seq2seq_case(case, entry, repeats, args):
    """Workload E: lstmkit's Seq2Seq and its PyTorch anchor on real Ding pairs."""
    import seq2seq_bench
    try:
        runners, info = seq2seq_bench.runners(case, tiny=args.tiny, log=log)
    except Exception as e:
        entry["frameworks"]["lstmkit"] = _err(e)
        return report.summarize(entry)
    entry["seq2seq"] = info
    # E-beam times all its sentences per call: report ms per sentence
    scale = 1e3 / info["sentences"] if case.kind == "beam" else 1e3
    if args.wait_quiet:
        entry["others_before"] = quiet.wait_quiet(args.wait_quiet)
    meter = quiet.Meter()
    if args.interleave:
        timed = timing.measure_interleaved(runners, repeats, 2, 1, scale, settle=args.settle)
    else:
        timed = timing.measure_blocks(runners, repeats, 2, 1, scale)
    entry["frameworks"].update(timed)
    entry["others_cpu"] = meter.others()
    entry["denormals_flushed_after"] = denormal_check.flushed()
    per = {}
    for name, d in entry["frameworks"].items():
        if "median" in d:
            per[name] = (info["target_tokens_per_batch"] / (d["median"] / 1e3) if case.kind == "train"
                         else 1e3 / d["median"])
        log(f"  {case.id:22s} {name:22s} " + (f"{d['median']:.4g} ms" if "median" in d else d.get("error", "")))
    entry["throughput_unit"] = "target tokens/s" if case.kind == "train" else "sentences/s"
    entry["throughput"] = per
    return report.summarize(entry)


def run_memory(case_id, args):
    entry = {"case": case_id, "frameworks": {}}
    for fw in ("lstmkit", "torch"):
        cmd = [sys.executable, os.path.join(HERE, "memprobe.py"), fw, case_id]
        if args.tiny:
            cmd.append("--tiny")
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ.copy())
            if p.returncode != 0:
                entry["frameworks"][fw] = {"error": p.stderr.strip().splitlines()[-1][:400]
                                           if p.stderr.strip() else f"exit {p.returncode}"}
            else:
                entry["frameworks"][fw] = json.loads(p.stdout.strip().splitlines()[-1])
        except Exception as e:
            entry["frameworks"][fw] = _err(e)
        d = entry["frameworks"][fw]
        log(f"  {case_id:22s} memory {fw:15s} " + (f"{d['train_peak_mb']:.1f} MB" if "train_peak_mb" in d
                                                   else d.get("error", "")))
    return report.summarize_memory(entry)


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                              text=True).stdout.strip() or None
    except OSError:
        return None


def _git_dirty():
    """True when the measured checkout has uncommitted changes to tracked files."""
    try:
        # the result files and the tables a run regenerates do not count
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                              ":!benchmarks/results", ":!README.md", ":!benchmarks/README.md"],
                             cwd=os.path.dirname(HERE), capture_output=True, text=True).stdout
        return bool(out.strip())
    except OSError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--only", default="", help="comma list of workloads or case ids, e.g. A,C or B-lstm-infer")
    ap.add_argument("--tiny", action="store_true", help="miniature shapes (smoke test)")
    ap.add_argument("--repeats", type=int, default=0, help="override the repeats of every case")
    ap.add_argument("--wait-quiet", type=float, default=20.0,
                    help="seconds to wait, before each case, for other processes to leave the CPU (0: no wait)")
    ap.add_argument("--interleave", action="store_true",
                    help="frameworks take turns repeat by repeat (robust to a drifting load) instead of "
                         "each running its repeats in one block right after its warm-up (the default)")
    ap.add_argument("--settle", type=float, default=0.1,
                    help="with --interleave: seconds of sleep before each sample, letting other pools go idle")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=None,
                    help="directory for latest.json/.md (default results/ for a complete run, which also "
                         "regenerates the README tables; results/partial/ with --only or --tiny)")
    ap.add_argument("--cold-repeats", type=int, default=None, help="cold-start repeats (default 5, --quick 3)")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    cold = not only or any(COLD_START.startswith(o) for o in only)
    only_cases = [o for o in only if not COLD_START.startswith(o)]
    cases = workloads.select(only_cases) if (only_cases or not only) else []
    if args.tiny:
        cases = [workloads.tiny(c) for c in cases]
    complete = not only and not args.tiny and args.repeats == 0
    if args.out is None:
        args.out = os.path.join(HERE, "results") if complete else os.path.join(HERE, "results", "partial")

    peers, errors = {}, {}
    peers["lstmkit"], errors["lstmkit"] = _import("peer_lstmkit")
    peers["torch"], err = _import("peer_torch")
    errors["torch_default"] = errors["torch_flush_denormal"] = err
    ort_ok = _import("peer_onnx")[0]
    if ort_ok is not None and not ort_ok.available():
        ort_ok, errors["onnxruntime"] = None, "onnxruntime/onnx not installed"
    peers["onnxruntime"] = ort_ok
    peers["errors"] = {k: v for k, v in errors.items() if v}
    threads = envsetup.limit_threads()

    started = time.time()
    meta = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
            "tiny": args.tiny, "interleave": args.interleave, "settle_s": args.settle, "threads": envsetup.THREADS, "env": ENV, "thread_info": threads,
            "python": platform.python_version(), "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "git_commit": _git_commit(), "git_dirty": _git_dirty()}
    try:
        with open("/proc/cpuinfo") as f:
            meta["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    meta["lstmkit"] = peers["lstmkit"].versions() if peers["lstmkit"] else {"api": None, "engines": {}}
    for name in ("torch", "onnxruntime"):
        if peers[name] is not None:
            meta.update(peers[name].versions())
    log(f"threads: {json.dumps(threads)}")

    results = {"schema": 2, "meta": meta, "cases": [], "memory": []}
    log("machine limits ...")
    results["sgemm"] = peak.sgemm_gflops(256 if args.tiny else 2048, repeats=10)
    results["fma"] = {"one_core": peak.fma_gflops(1), "all_threads": peak.fma_gflops(envsetup.THREADS)}
    log(f"  sgemm {results['sgemm']['gflops']:.1f} GFLOP/s; FMA peak one core "
        f"{results['fma']['one_core']['gflops']:.1f}, {envsetup.THREADS} threads "
        f"{results['fma']['all_threads']['gflops']:.1f} GFLOP/s")
    for case in cases:
        log(f"{case.id} (batch {case.batch}, length {case.length})")
        results["cases"].append(run_case(case, peers, args))
    if not args.no_memory:
        ids = {c.id for c in cases}
        for cid in MEMORY_CASES:
            if cid in ids:
                log(f"memory {cid}")
                results["memory"].append(run_memory(cid, args))
    if cold:
        import cold_start
        log(f"{COLD_START} (fresh processes, empty kernel cache)")
        results["cold_start"] = cold_start.measure(
            args.cold_repeats or (1 if args.tiny else 3 if args.quick else 5),
            torch=peers["torch"] is not None, log=log)
    # the peaks again at the end; the better stands (a busy moment only lowers them)
    again = peak.sgemm_gflops(256 if args.tiny else 2048, repeats=10)
    results["sgemm"]["gflops_start_end"] = [results["sgemm"]["gflops"], again["gflops"]]
    results["sgemm"]["gflops"] = max(results["sgemm"]["gflops"], again["gflops"])
    for key, threads in (("one_core", 1), ("all_threads", envsetup.THREADS)):
        again = peak.fma_gflops(threads)
        if again["gflops"] > results["fma"][key]["gflops"]:
            results["fma"][key] = again
    limit = results["fma"]["all_threads"]["gflops"]
    for e in results["cases"]:
        e["percent_of_fma_peak"] = {k: 100 * v / limit for k, v in e.get("gflops", {}).items()}
    meta["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    meta["seconds"] = round(time.time() - started, 1)
    report.write(results, args.out)
    print(report.text_table(results))
    for n in report.notes(results):
        print(n)
    print(f"wrote {os.path.join(args.out, 'latest.json')} and latest.md in {meta['seconds']} s")
    if complete and args.out == os.path.join(HERE, "results"):
        for path in report.update_docs(results):
            print(f"updated the table in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
