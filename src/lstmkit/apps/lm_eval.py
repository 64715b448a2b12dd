"""Bits per token of a language model on a held-out text, with the recurrent
state carried along the text (as the model is used when it generates), and a
callback that draws the learning curve of a long training run.

Training windows start from a zero state; evaluating on such windows charges
the model for the missing context at every window start. Here the text is cut
into `rows` contiguous pieces read side by side (a batch), window after
window, each window starting from the state the previous one ended in: every
token but the first of each piece has its whole piece before it as context.
"""
import csv
import math
import os
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from .. import plotting
from ..callbacks import Callback
from ..data.tokenizer import PAD
from ..io import atomic_path
from ..layers import RNNLayer


def stream_bits(model, ids, rows=32, seq_len=128, verbose=0, desc="held-out bits"):
    """Mean bits per token for ids[1:], each predicted from the tokens before
    it in its piece (state carried between windows). Returns (bits, tokens)."""
    ids = np.asarray(ids, np.int64)
    n = len(ids) - 1                                       # predictions
    if n < 1:
        raise ValueError(f"need at least 2 tokens to evaluate; got {len(ids)}")
    rows = max(1, min(rows, n // 2 or 1))
    L = -(-n // rows)                                      # per row, rounded up
    L = -(-L // seq_len) * seq_len                         # whole windows
    x = np.full(rows * L, PAD, np.int64)
    y = np.full(rows * L, -1, np.int64)                    # -1: padding, not scored
    x[:n], y[:n] = ids[:-1], ids[1:]
    x, y = x.reshape(rows, L), y.reshape(rows, L)          # (R, L): row r is piece r
    states, total, count = {}, 0.0, 0
    for a in tqdm(range(0, L, seq_len), disable=verbose != 1, desc=desc, file=sys.stderr, unit="window"):
        h = x[:, a:a + seq_len]                            # (R, T)
        for layer in model.layers:
            if isinstance(layer, RNNLayer):
                h = layer.forward(h, training=False, initial_state=states.get(layer.name))
                states[layer.name] = layer.final_state     # carried into the next window
            else:
                h = layer.forward(h, training=False)
        p = h                                              # (R, T, V) probabilities
        t = y[:, a:a + seq_len]
        keep = t >= 0
        picked = np.take_along_axis(p, np.maximum(t, 0)[..., None], axis=-1)[..., 0][keep]
        total -= np.log2(np.maximum(picked.astype(np.float64), 1e-45)).sum()
        count += int(keep.sum())
    return total / count, count


def _machine_ticks():
    """(all CPU ticks, idle ticks) from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(n) for n in f.readline().split()[1:9]]
        return sum(v), v[3] + v[4]
    except (OSError, ValueError):
        return None


class LMCurve(Callback):
    """During fit: every `every` seconds of training, the mean training loss
    since the last point and the loss on a fixed validation sample, in bits per
    token, against tokens trained; after `max_seconds`, stops training (at the
    end of the batch). Evaluation time is not counted as training time, so
    tokens_per_second is the training throughput."""

    def __init__(self, x_val, y_val, tokens_per_batch, n_train, batch_size, every=60.0, max_seconds=None,
                 log=None):
        self.x_val, self.y_val = x_val, y_val
        self.seq_len = x_val.shape[1]
        self.n_train, self.batch_size = n_train, batch_size
        self.every, self.max_seconds, self.log = every, max_seconds, log
        self.points = []            # (train seconds, tokens, train bits, val bits)

    def on_train_begin(self, logs=None):
        self.cpu0, self.machine0 = time.process_time(), _machine_ticks()
        self.t0 = self.last = time.perf_counter()
        self.eval_seconds = 0.0
        self.ended = None                    # (train seconds, cpu report) frozen at the end
        self.tokens = 0
        self.loss_sum = self.loss_n = 0.0
        self.stopped_by_budget = False
        self._point()

    def train_seconds(self):
        if self.ended:
            return self.ended[0]
        return time.perf_counter() - self.t0 - self.eval_seconds

    def on_batch_end(self, batch, logs=None):
        windows = min(self.batch_size, self.n_train - batch * self.batch_size)
        self.tokens += windows * self.seq_len
        self.loss_sum += logs["loss"] * windows
        self.loss_n += windows
        if time.perf_counter() - self.last >= self.every:
            self._point()
        if self.max_seconds and self.train_seconds() >= self.max_seconds:
            self.stopped_by_budget = True
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.loss_n:
            self._point()
        self.ended = (self.train_seconds(), self.cpu_report())

    def _point(self):
        t = time.perf_counter()
        seconds = self.train_seconds()
        val = self.model.evaluate(self.x_val, self.y_val, batch_size=64, return_dict=True)["loss"]
        train = self.loss_sum / self.loss_n if self.loss_n else float("nan")
        point = (seconds, self.tokens, train / math.log(2), val / math.log(2))
        self.points.append(point)
        self.loss_sum = self.loss_n = 0.0
        self.eval_seconds += time.perf_counter() - t
        self.last = time.perf_counter()
        if self.log and self.tokens:
            self.log(f"  {point[0] / 60:5.1f} min, {self.tokens:,} tokens: train {point[2]:.3f} bits, "
                     f"validation sample {point[3]:.3f} bits")

    def cpu_report(self):
        """This process's CPU seconds during training (all its threads) and the
        share of the machine's CPU time that other processes used meanwhile."""
        if self.ended:
            return self.ended[1]
        wall = time.perf_counter() - self.t0
        cpu = time.process_time() - self.cpu0
        out = {"wall_seconds": wall, "process_cpu_seconds": cpu, "cores": os.cpu_count()}
        m0, m1 = self.machine0, _machine_ticks()
        if m0 and m1 and m1[0] > m0[0]:
            total, busy = m1[0] - m0[0], (m1[0] - m0[0]) - (m1[1] - m0[1])
            hz = os.sysconf("SC_CLK_TCK")
            out["machine_busy_share"] = busy / total
            out["others_share"] = max(0.0, busy / total - cpu * hz / total)
        return out

    @property
    def tokens_per_second(self):
        s = self.train_seconds() if self.points else 0.0
        return self.tokens / s if s > 0 else float("nan")

    def save(self, out_dir, title, baseline=None):
        """curve.csv and curve.png in out_dir; baseline: {label: bits} drawn flat."""
        path = os.path.join(out_dir, "curve.csv")
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["train_seconds", "tokens", "train_bits", "val_sample_bits"])
            for row in self.points:
                w.writerow([f"{row[0]:.1f}", row[1], f"{row[2]:.4f}", f"{row[3]:.4f}"])
        plotting.lm_curve(self.points, os.path.join(out_dir, "curve.png"), title, baseline or {})
        return path
