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
