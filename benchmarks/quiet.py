"""How much of the CPU other processes take while we measure.

From /proc/stat (all CPUs' busy time) minus /proc/self/stat (this process's
own time, all threads), both in clock ticks: the share of the machine's
capacity that other processes used, 0..1. Timings taken while it is high are
not to be trusted; wait_quiet() waits for a quiet moment first.
"""
import time


def _machine():
    with open("/proc/stat") as f:
        v = [int(n) for n in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]                       # total, idle + iowait


def _own():
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])          # utime + stime


class Meter:
    def __init__(self):
        self.t0, self.i0 = _machine()
        self.s0 = _own()

    def others(self):
        t, i = _machine()
        total, busy = t - self.t0, (t - self.t0) - (i - self.i0)
        if total <= 0:
            return 0.0
        return max(0.0, (busy - (_own() - self.s0)) / total)


def sample(seconds=0.5):
    m = Meter()
    time.sleep(seconds)
    return m.others()


def wait_quiet(max_seconds, threshold=0.1):
    """Wait (up to max_seconds) until others use < threshold of the machine; returns their last share."""
    deadline = time.time() + max_seconds
    share = sample()
    while share >= threshold and time.time() < deadline:
        share = sample(1.0)
    return share
