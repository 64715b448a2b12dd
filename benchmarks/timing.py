"""Time a callable: warm-up calls (excluded), then repeats; medians and spread."""
import gc
import time

import numpy as np


def stats(samples):
    s = np.asarray(samples, dtype=float)
    q1, med, q3 = np.percentile(s, [25, 50, 75])
    return {"median": float(med), "min": float(s.min()), "q1": float(q1), "q3": float(q3),
            "iqr": float(q3 - q1), "repeats": int(s.size), "samples": [float(v) for v in s]}


def measure(fn, repeats, warmup=2, inner=1, scale=1e3):
    """Run fn() `warmup` times untimed, then `repeats` timed repeats of `inner`
    calls each; each sample is the time per call, multiplied by `scale`
    (1e3: milliseconds, 1e6: microseconds). The garbage collector is run
    before and paused during the timed repeats, the same for every framework."""
    for _ in range(warmup):
        fn()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter() - t0) / inner * scale)
    finally:
        if enabled:
            gc.enable()
    return stats(samples)


def measure_interleaved(runners, repeats, warmup=2, inner=1, scale=1e3, settle=0.0):
    """Time several frameworks on the same case, taking turns: each repeat
    times every runner once (the order rotating from repeat to repeat), so a
    change in the machine's load hits all of them alike.

    runners: {name: (fn, context)} where context() gives a context manager
    entered around each of that runner's warm-up calls and samples.
    settle: seconds of sleep before each sample, so that the thread pools of
    the framework that ran before (OpenMP, OpenBLAS, ONNX Runtime spin for a
    while after a call) are idle when the next one starts.
    Returns {name: stats or {"error": ...}}."""
    out, live = {}, []
    for name, (fn, context) in runners.items():
        try:
            with context():
                for _ in range(warmup):
                    fn()
            live.append(name)
        except Exception as e:
            out[name] = {"error": f"{type(e).__name__}: {e}"[:400]}
    samples = {name: [] for name in live}
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            for k in range(len(live)):
                name = live[(r + k) % len(live)]
                fn, context = runners[name]
                if settle:
                    time.sleep(settle)
                with context():
                    t0 = time.perf_counter()
                    for _ in range(inner):
                        fn()
                    samples[name].append((time.perf_counter() - t0) / inner * scale)
    finally:
        if enabled:
            gc.enable()
    out.update({name: stats(s) for name, s in samples.items()})
    return out


def measure_blocks(runners, repeats, warmup=2, inner=1, scale=1e3):
    """Time several frameworks one after the other: each one's warm-up calls
    right before its own repeats, so its threads and caches are warm, as when
    it runs alone. Returns {name: stats or {"error": ...}}."""
    out = {}
    for name, (fn, context) in runners.items():
        try:
            with context():
                out[name] = measure(fn, repeats, warmup, inner, scale)
        except Exception as e:
            out[name] = {"error": f"{type(e).__name__}: {e}"[:400]}
    return out
