"""Where a cold start's compile CPU goes: the cold-start benchmark's script
(benchmarks/cold_start.py: import lstmkit, the seeds' model, one fit epoch of
64 samples, one predict) in a fresh process with an empty kernel cache,
without the compile-ahead helper (one process compiles everything), with
numba's compile steps timed in CPU seconds.

    PYTHONPATH=src python benchmarks/compile_profile.py [--repeats 3] [--json out.json]

Printed per kind of work (exclusive: a step nested in another counts only
once, in the innermost), and per function compiled: each numba compile event
(numba:compile, one per dispatcher and signature, an @overload's
implementation included) is charged the work done while it was the innermost
compile in progress; "loop" gives the top-level compile it happened under
(the kernel a call asked for), inclusive of everything it compiled inside.

The kinds:
    numba typing            type inference (typed_passes.BaseTypeInference)
    numba lowering          numba IR -> LLVM IR (NativeLowering, minus the LLVM work it starts)
    numba inline IR         inlining numba IR of inline="always" functions
    llvm function passes    per-function optimisation (CPUCodeLibrary._optimize_functions)
    llvm module passes      whole-module optimisation (_optimize_final_module)
    llvm machine code       code generation (JITCodeLibrary._finalize_specific)
    numba cache save        writing the kernel cache (caching.Cache.save_overload)
"""
import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
sys.path.insert(0, HERE)
import cold_start  # noqa: E402
import quiet  # noqa: E402

# Runs before the cold-start script, in the same process: wraps numba's steps.
PROBE = r'''
import collections, json, os, time
from numba.core import caching, codegen, event, inline_closurecall, typed_passes

KINDS = {}
kind_cpu = collections.Counter()
kind_calls = collections.Counter()
fn_cpu = collections.defaultdict(collections.Counter)      # innermost compile -> kind -> s
loop_cpu = collections.defaultdict(collections.Counter)    # outermost compile -> kind -> s
steps = []                                                 # [kind, start, nested time]
compiles = []                                              # names of the compiles in progress


def _wrap(owner, name, kind):
    f = getattr(owner, name)

    def timed(*args, **kwargs):
        steps.append([kind, time.process_time(), 0.0])
        try:
            return f(*args, **kwargs)
        finally:
            k, t0, nested = steps.pop()
            spent = time.process_time() - t0
            own = spent - nested
            kind_cpu[k] += own
            kind_calls[k] += 1
            fn_cpu[compiles[-1] if compiles else "(outside any compile)"][k] += own
            loop_cpu[compiles[0] if compiles else "(outside any compile)"][k] += own
            if steps:
                steps[-1][2] += spent
    setattr(owner, name, timed)


def _name(data):
    d = data["dispatcher"]
    f = getattr(d, "py_func", None)
    mod = getattr(f, "__module__", "") or ""
    q = getattr(f, "__qualname__", str(d)).replace(".<locals>", "")
    args = ", ".join(str(a).split("(")[0][:24] for a in data["args"])
    return f"{mod.replace('lstmkit.kernels.', '')}.{q}({args})"


class _Compiles(event.Listener):
    def on_start(self, ev):
        compiles.append(_name(ev.data))

    def on_end(self, ev):
        compiles.pop()


event.register("numba:compile", _Compiles())
_wrap(typed_passes.BaseTypeInference, "run_pass", "numba typing")
_wrap(typed_passes.NativeLowering, "run_pass", "numba lowering")
_wrap(inline_closurecall.InlineWorker, "inline_ir", "numba inline IR")
_wrap(codegen.CPUCodeLibrary, "_optimize_functions", "llvm function passes")
_wrap(codegen.CPUCodeLibrary, "_optimize_final_module", "llvm module passes")
_wrap(codegen.JITCodeLibrary, "_finalize_specific", "llvm machine code")
_wrap(caching.Cache, "save_overload", "numba cache save")


def _report():
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["COMPILE_PROFILE_OUT"], "w") as f:
        json.dump(dict(kinds=kind_cpu, calls=kind_calls, fns=fn_cpu, loops=loop_cpu,
                       cpu_s=own.ru_utime + own.ru_stime), f)
'''


def profile_once(log=print):
    """One fresh process, empty cache, no helper -> {kinds, calls, fns, loops, cpu_s, others}."""
    folder = tempfile.mkdtemp(prefix="lstmkit-profile-")
    out = os.path.join(folder, "profile.json")
    code = PROBE + cold_start.CHILD_LSTMKIT + "\n_report()\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
               LSTMKIT_CACHE_DIR=os.path.join(folder, "cache"), NO_HELPER="1",
               COMPILE_PROFILE_OUT=out)
    env.pop("NUMBA_CACHE_DIR", None)
    meter = quiet.Meter()
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           timeout=900)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip()[-2000:])
        with open(out) as f:
            rec = json.load(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rec["others"] = meter.others()
    return rec


def _median_table(recs, field):
    """{row: {kind: median s}} over the repeats (a missing entry counts as 0)."""
    rows = set().union(*(r[field] for r in recs))
    kinds = set().union(*(d for r in recs for d in r[field].values()))
    return {row: {k: statistics.median(r[field].get(row, {}).get(k, 0.0) for r in recs)
                  for k in kinds} for row in rows}


def report(recs, top=25, out=print):
    n = len(recs)
    kinds = collections.Counter()
    for k in set().union(*(r["kinds"] for r in recs)):
        kinds[k] = statistics.median(r["kinds"].get(k, 0.0) for r in recs)
    order = [k for k, _ in kinds.most_common()]
    cpu = [r["cpu_s"] for r in recs]
    out(f"{n} run(s), median process CPU {statistics.median(cpu):.2f} s (min {min(cpu):.2f}, "
        f"max {max(cpu):.2f}); others' share of the machine {100 * statistics.median(r['others'] for r in recs):.0f} %")
    out("\nCPU s by kind of work (medians; spread min-max)")
    for k in order:
        v = [r["kinds"].get(k, 0.0) for r in recs]
        calls = statistics.median(r["calls"].get(k, 0) for r in recs)
        out(f"  {kinds[k]:6.2f}  ({min(v):.2f}-{max(v):.2f})  {calls:5.0f}x  {k}")
    out(f"  {sum(kinds.values()):6.2f}  in all; outside numba/LLVM steps: "
        f"{statistics.median(cpu) - sum(kinds.values()):.2f}")
    short = [k.split(" ", 1)[1][:10] for k in order]
    for field, title in (("loops", "by top-level compile (inclusive)"),
                         ("fns", f"by function, innermost compile (exclusive; top {top})")):
        table = _median_table(recs, field)
        out(f"\nCPU s {title}")
        out("  " + "".join(s.rjust(11) for s in short) + "        sum  function")
        rows = sorted(table.items(), key=lambda kv: -sum(kv[1].values()))
        for name, d in rows[:top]:
            out("  " + "".join(f"{d.get(k, 0.0):11.2f}" for k in order)
                + f"{sum(d.values()):11.2f}  {name[:110]}")
        if len(rows) > top:
            rest = sum(sum(d.values()) for _, d in rows[top:])
            out(f"  {'':>{11 * len(order)}}{rest:11.2f}  ({len(rows) - top} more)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--top", type=int, default=25, help="functions listed")
    ap.add_argument("--json", default=None, help="write every run's record to this file")
    args = ap.parse_args(argv)
    recs = []
    for i in range(args.repeats):
        recs.append(profile_once())
        print(f"  run {i + 1}/{args.repeats}: CPU {recs[-1]['cpu_s']:.2f} s, "
              f"others {100 * recs[-1]['others']:.0f} %", file=sys.stderr)
    report(recs, args.top)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(recs, f, indent=1)


if __name__ == "__main__":
    main()
