"""Peak memory of training steps, one framework per process (run by run.py).

tracemalloc does not see PyTorch's allocations, so memory is read from the
kernel: VmRSS after the imports (baseline), then, after one warm-up step
(JIT compilation included in it), the peak-RSS mark VmHWM is reset through
/proc/self/clear_refs and read again after `steps` more training steps.

Reported: train_peak_mb = peak RSS during the steps minus the RSS after the
imports (weights, optimizer state, data, activations and, for lstmkit,
compiled kernels: what training costs beyond loading the library);
step_peak_mb = the same peak minus the RSS just before the steps (what one
step allocates on top); process_peak_mb = VmHWM before the reset (imports,
building and the warm-up step included). getrusage's ru_maxrss is not used:
a child inherits its parent's value across fork.

    python memprobe.py FRAMEWORK CASE_ID [--tiny] [--steps N]   (FRAMEWORK: lstmkit | torch)
"""
import argparse
import json
import re
import sys

import envsetup

envsetup.apply()


def _status(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1)) / 1024.0   # MB


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("framework", choices=["lstmkit", "torch"])
    ap.add_argument("case")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args(argv)
    import resource

    import numpy as np  # noqa: F401
    if args.framework == "torch":
        import peer_torch as peer
    else:
        import peer_lstmkit as peer
    envsetup.limit_threads()
    import data
    import weights
    import workloads
    case = next(c for c in workloads.CASES if c.id == args.case)
    if args.tiny:
        case = workloads.tiny(case)
    rss_imports = _status("VmRSS")
    w = weights.make(case.net)
    x, y = data.make(case)
    fn = peer.runner(case, w, x, y)
    fn = fn[0] if isinstance(fn, tuple) else fn
    del w
    fn()                                                    # warm-up (and JIT compilation)
    rss_ready = _status("VmRSS")
    process_peak = _status("VmHWM")
    reset = _reset_peak()
    for _ in range(args.steps):
        fn()
    peak = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"framework": args.framework, "case": case.id, "steps": args.steps,
           "rss_after_imports_mb": rss_imports, "rss_ready_mb": rss_ready, "peak_rss_mb": peak,
           "train_peak_mb": peak - rss_imports, "step_peak_mb": peak - rss_ready,
           "process_peak_mb": process_peak,
           "method": "VmHWM reset via clear_refs" if reset else "ru_maxrss (clear_refs unavailable)"}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
