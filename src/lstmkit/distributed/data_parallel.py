"""Data-parallel training on PyTorch's distributed runtime (torch.distributed, gloo).

Every process (rank) holds the whole model and the whole data set, and takes
its shard of every global batch:

    global batch  idx (the same on every rank: the same shuffling seed)
    rank r        idx[r*n//W : (r+1)*n//W]          W = world size, n = len(idx)

Each rank runs forward, loss and BPTT on its shard, then one all-reduce (sum)
makes every rank's gradients the global batch's:

    flat = [ c_r * g_r  (every trainable gradient, packed end to end),
             c_r * loss_r (per output),  n_r (the raw normalisers),  stop flag ]

where c_r is the number the rank's loss divided by (its batch size, or its
count of real steps for a masked per-step loss) and n_r the raw count. After
the sum, dividing by sum_r n_r gives exactly the gradient of the loss over the
whole global batch -- the same numbers as one process on the whole batch,
up to the order of the additions. The flat buffer is a NumPy array that
torch sees through torch.from_numpy, without a copy; after the all-reduce the
optimizer reads the gradients as views of it. A model with several outputs
whose per-step losses are masked (their normalisers differ per output) first
sums the normalisers (a few bytes), so that each output's gradient is scaled
by its global count before the backward.

Rank 0 broadcasts its weights once at the start (every rank starts the same),
and its shuffling seed when none was given. Rank 0 writes checkpoints and
logs (callbacks with ``rank_zero_only = True``: ModelCheckpoint, CSVLogger)
and shows the progress bar; the others stay quiet. Validation runs on every
rank over the whole validation set, so every rank sees the same logs and
callbacks such as EarlyStopping decide the same. A callback that stops
training mid-epoch on one rank (a time budget) stops them all: the stop flag
rides in the next step's all-reduce (that step's update is then not applied).

The process group has a timeout (LSTMKIT_DIST_TIMEOUT seconds, default 300):
a rank that dies or hangs makes the others stop with DistributedError naming
the step, rather than wait forever.
"""
import atexit
import datetime
import os

import numpy as np

DEFAULT_TIMEOUT = 300.0


class DistributedError(RuntimeError):
    """Another rank stopped, or cannot be reached."""


def launched():
    """Whether the environment describes a multi-process run (torchrun sets RANK and WORLD_SIZE)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def env_rank():
    try:
        return int(os.environ.get("RANK", "0")) if launched() else 0
    except ValueError:
        return 0


def _torch_dist():
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise ImportError("distributed training runs on torch.distributed: pip install 'lstmkit[torch]'") from None
    return torch, dist


def init(timeout=None):
    """Join the process group described by the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT, as torchrun sets them), on gloo, once per process."""
    torch, dist = _torch_dist()
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(f"distributed training needs the environment torchrun sets; {missing} "
                               f"{'is' if len(missing) == 1 else 'are'} not set (start with torchrun "
                               f"--nproc-per-node N ...)")
    if timeout is None:
        timeout = float(os.environ.get("LSTMKIT_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    try:
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout))
    except Exception as e:
        raise DistributedError(f"rank {os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')} could not join "
                               f"the process group at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
                               f"within {timeout:g} s: {' '.join(str(e).split())}") from None
    # leave the group when the process ends: a gloo group left open can keep the
    # process from exiting after its work is done
    atexit.register(_leave, dist)
    return dist.get_rank(), dist.get_world_size()


def _leave(dist):
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:
        pass


class DataParallel:
    """One rank's side of data-parallel training (see the module docstring)."""

    def __init__(self, timeout=None):
        self.torch, self.dist = _torch_dist()
        self.rank, self.world = init(timeout)
        self._flat = None
        self._layout = None
        self.step = 0

    # ---- the start -----------------------------------------------------------------------
    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except Exception as e:
            raise DistributedError(f"rank {self.rank} of {self.world}: {what} failed -- another rank stopped "
                                   f"or cannot be reached ({' '.join(str(e).split())[:300]}); stopping") from None

    def broadcast_weights(self, params):
        """Rank 0's weights to every rank, in place (one broadcast of them packed)."""
        keys = sorted(params)
        flat = np.concatenate([np.asarray(params[k], np.float64).ravel() for k in keys]) if keys else np.zeros(0)
        self._call("the broadcast of the initial weights", self.dist.broadcast, self.torch.from_numpy(flat), 0)
        at = 0
        for k in keys:
            p = params[k]
            p[...] = flat[at:at + p.size].reshape(p.shape)
            at += p.size

    def broadcast_seed(self, seed):
        """Rank 0's seed (drawn now if None) on every rank: the same shuffling everywhere."""
        s = np.array([np.random.SeedSequence(seed).generate_state(1)[0] if seed is None else seed], np.int64)
        self._call("the broadcast of the shuffling seed", self.dist.broadcast, self.torch.from_numpy(s), 0)
        return int(s[0])

    def shard(self, idx):
        """This rank's part of a global batch of indices."""
        n = len(idx)
        return idx[self.rank * n // self.world:(self.rank + 1) * n // self.world]

    # ---- the step ------------------------------------------------------------------------
    def _buffer(self, grads, n_heads):
        """The flat buffer (reused while the gradients keep their shapes) and the views into it."""
        layout = tuple((k, g.shape, g.dtype.str) for k, g in grads.items()) + (n_heads,)
        if layout != self._layout:
            dtype = np.result_type(*[g.dtype for g in grads.values()]) if grads else np.float64
            size = sum(g.size for g in grads.values())
            self._flat = np.zeros(size + n_heads + 2, dtype)
            views, at = {}, 0
            for k, g in grads.items():
                views[k] = self._flat[at:at + g.size].reshape(g.shape)
                at += g.size
            self._views, self._grad_size, self._layout = views, size, layout
        return self._flat, self._views

    def all_reduce(self, grads, weight, head_terms, count, stop=False):
        """One all-reduce (sum) of everything a step shares, in one flat buffer:
        weight * each local gradient, the per-output loss terms, the raw count,
        the stop flag. Returns (gradients: views of the buffer, divided by the
        summed count unless count is None; the summed loss terms, divided the
        same way; whether any rank asked to stop)."""
        heads = len(head_terms)
        flat, views = self._buffer(grads, heads)
        for k, g in grads.items():
            np.multiply(g, weight, out=views[k])                    # weight * g_r into the buffer
        tail = flat[self._grad_size:]
        tail[:heads] = [0.0 if t is None else t for t in head_terms]
        tail[heads] = 0.0 if count is None else count
        tail[-1] = 1.0 if stop else 0.0
        self.step += 1
        self._call(f"the all-reduce of step {self.step}", self.dist.all_reduce,
                   self.torch.from_numpy(flat))                     # zero-copy: torch reads the NumPy memory
        divisor = 1.0 if count is None else max(float(tail[heads]), 1.0)
        if divisor != 1.0:
            for v in views.values():
                v /= divisor
        terms = [None if t is None else float(tail[i] / divisor) for i, t in enumerate(head_terms)]
        return views, terms, bool(tail[-1] > 0)

    def all_sum(self, numbers, what="a sum over the ranks"):
        """A few floats summed over the ranks (normalisers, metric totals, flags)."""
        a = np.asarray(numbers, np.float64).copy()
        self._call(what, self.dist.all_reduce, self.torch.from_numpy(a))
        return a

    def reduce_metrics(self, metrics):
        """Each metric's (total, count) summed over the ranks, in place, so result() is global."""
        if not metrics:
            return
        a = self.all_sum([x for m in metrics for x in (m.total, m.count)], "the all-reduce of the metrics")
        for i, m in enumerate(metrics):
            m.total, m.count = float(a[2 * i]), float(a[2 * i + 1])


# ---- what fit runs (models/training.py calls these when it trains distributed) ---------------

class FitSync:
    """fit's side of data-parallel training: the set-up, the step, the epoch's end."""

    STOPPED = object()                   # what step() returns when some rank asked to stop

    def __init__(self, model, timeout=None):
        from ..models import training
        self.training = training
        self.dp = DataParallel(timeout)
        self.rank, self.world = self.dp.rank, self.dp.world
        self.model = model

    def setup(self, seed, verbose, callbacks):
        """Every rank on rank 0's weights and shuffling seed; the progress bar and the
        callbacks that write files on rank 0 only. Returns (seed, verbose, callbacks)."""
        model = self.model
        stateful = [l.name for l in self.training._all_layers(model) if getattr(l, "stateful", False)]
        if stateful:
            raise DistributedError(f"layer {stateful[0]!r} is stateful: each batch continues the sequences of "
                                   f"the one before, which data-parallel sharding breaks; train it in one process")
        self.dp.broadcast_weights(model.params)
        seed = self.dp.broadcast_seed(seed)
        if self.rank != 0:
            verbose = 0
            callbacks = [cb for cb in (callbacks or []) if not getattr(cb, "rank_zero_only", False)]
        return seed, verbose, callbacks

    def step(self, xs, ys, sws, idx, where=None, on_nonfinite="stop"):
        """One update on this rank's shard of the global batch idx; returns what
        training.train_step returns (the global losses), None for a skipped batch,
        or STOPPED when a rank asked to stop (the update is then not applied)."""
        t, model = self.training, self.model
        local = self.dp.shard(idx)
        xs, ys, sws = t._take(xs, local), t._take(ys, local), t._take(sws, local)
        heads = t.heads(model)
        live = [k for k, h in enumerate(heads) if h.loss is not None and ys[k] is not None]
        fused = t.fused_heads(model)
        stop = bool(model.stop_training)
        masks = None
        if len(local):
            outs, masks = t._forward(model, xs, True, fused)
            _, values, douts, (ys, masks) = t._losses(model, outs, masks, ys, sws, fused, backward=True)
            denoms = [heads[k].loss.denominator if k in live else 0.0 for k in range(len(heads))]
            counts = [heads[k].loss.count if k in live else 0.0 for k in range(len(heads))]
        else:                                                   # more ranks than samples in this batch
            values, douts = [None] * len(heads), [None] * len(heads)
            denoms = counts = [0.0] * len(heads)
        if len(live) == 1:
            # one loss: weight the gradients by what the local loss divided by, sum, divide
            # by the global count -- one all-reduce
            weight, count = denoms[live[0]], counts[live[0]]
            scale = [weight] * len(heads)
        else:
            # several losses with their own counts: the global counts first, then each
            # output's gradient scaled to them before the backward
            totals = self.dp.all_sum(counts, "the all-reduce of the losses' counts")
            scale = [denoms[k] / max(totals[k], 1.0) if k in live else 0.0 for k in range(len(heads))]
            douts = [None if d is None else d * s for d, s in zip(douts, scale)]
            weight, count = 1.0, None
        # each live output's share of its global loss (0 from an empty shard); None: no loss
        terms = [(0.0 if values[k] is None else values[k] * scale[k]) if k in live else None
                 for k in range(len(heads))]
        if len(local):
            t._backward(model, douts, fused)
            grads = model.trainable_grads()
        else:
            grads = {k: np.zeros_like(p) for k, p in model.trainable_params().items()}
        grads, terms, any_stop = self.dp.all_reduce(grads, weight, terms, count, stop)
        if any_stop:
            model.stop_training = True
            return self.STOPPED
        values = [terms[k] if k in live else None for k in range(len(heads))]
        total = sum(heads[k].weight * values[k] for k in live)
        if not np.isfinite(total):
            if on_nonfinite == "skip":
                return None
            raise t.nonfinite_error("loss", None, total, where, t.REMEDY + "; the weights are those before "
                                    "this batch (the sum over every rank's shard)")
        bad = t.first_bad_array(grads)
        if bad is not None:
            if on_nonfinite == "skip":
                return None
            raise t.nonfinite_error("the gradient", *bad, where, t.REMEDY + "; the weights are those before "
                                    "this batch")
        params = model.trainable_params()
        model.optimizer.apply(params, grads)
        bad = t.first_bad_array(params)
        if bad is not None:
            raise t.nonfinite_error("the weight", *bad, where, "the update itself overflowed; " + t.REMEDY)
        if len(local):
            for k in live:
                t._update_metrics(heads[k], ys[k], masks[k])       # this shard's predictions
        return total, values

    def end_epoch(self):
        """The metrics of every rank's shards summed, so every rank logs the same."""
        self.dp.reduce_metrics([m for h in self.training.heads(self.model) for m in h.metrics])

    def any_stop(self, stop):
        """Whether some rank's callbacks asked to stop (so that all stop together)."""
        return bool(self.dp.all_sum([1.0 if stop else 0.0], "the all-reduce of the stop flag")[0] > 0)
