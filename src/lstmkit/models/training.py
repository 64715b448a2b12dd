"""The training loop: mini-batches, forward, loss, backward, optimizer step,
metrics, validation, callbacks, a tqdm bar per epoch.

It serves Sequential and the functional lk.Model alike, and knows nothing of
specific layers. Data are lists: one array per model input (``xs``) and one
target array per output (``ys``). A model has one *head* per output: the
loss (or None), its weight, its metrics. The loop asks the model for:

  Sequential          forward(x, training, return_logits), backward(dout, from_logits),
                      output_mask, loss, metrics, head_activation
  functional Model    forward_heads(xs, training, fused) -> (outputs, masks),
                      backward_heads(douts, fused), heads, head_activations,
                      standardize_inputs(x), standardize_targets(y)

and from both trainable_params() / trainable_grads(). Where an output's final
activation is the one its loss can fuse with (sigmoid with binary
cross-entropy, softmax with the categorical ones), the loss works on that
output's logits, so its gradient is p - y exactly.

The parts: ``train_step`` (one update on one batch), ``batches`` (the
shuffled index batches of an epoch), ``fit`` (epochs, validation,
callbacks), ``evaluate`` and ``predict``.
"""
import copy
import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..callbacks import History
from . import checkpoint as ckpt
from .checks import as_array, first_bad_array, nonfinite_error


@dataclass
class Head:
    """What training does with one model output."""
    name: str                       # the output's name (keys its logs when a model has several outputs)
    loss: object                    # a losses.Loss, or None: the output is not trained
    weight: float = 1.0             # loss_weights: the total loss is sum(weight * loss)
    metrics: list = field(default_factory=list)


# ---- how a model is asked --------------------------------------------------------------
def _multi(model):
    return hasattr(model, "forward_heads")


def heads(model):
    if _multi(model):
        return model.heads
    return [Head("output", model.loss, 1.0, model.metrics)]


def _activations(model):
    return model.head_activations if _multi(model) else [model.head_activation]


def _fusable(loss, activation):
    return (loss is not None and not loss.from_logits and loss.fusable_activation is not None
            and activation == loss.fusable_activation)


def _fuse(model, loss):
    """Whether a Sequential's loss runs on its final layer's logits."""
    return _fusable(loss, model.head_activation)


def fused_heads(model):
    """Per output: whether its loss runs on the logits of its final layer (True), or on
    those of its unmasked steps only ("rows": a functional model's softmax head whose
    loss averages over real steps; the model computes nothing at padded steps)."""
    out = []
    for h, act in zip(heads(model), _activations(model)):
        fuse = _fusable(h.loss, act)
        out.append("rows" if fuse and _multi(model) and getattr(h.loss, "supports_rows", False) else fuse)
    return out


def _forward(model, xs, training, fused):
    if _multi(model):
        return model.forward_heads(xs, training=training, fused=fused)
    out = model.forward(xs[0], training=training, return_logits=fused[0])
    return [out], [model.output_mask]


def _backward(model, douts, fused):
    if _multi(model):
        model.backward_heads(douts, fused=fused)
    else:
        model.backward(douts[0], from_logits=fused[0])


def _log_names(model):
    """(loss key, [metric keys]) per head: Keras's names, prefixed by the output's name
    when the model has several outputs."""
    hs = heads(model)
    if len(hs) == 1:
        return [("loss", [m.name for m in hs[0].metrics])]
    return [(f"{h.name}_loss", [f"{h.name}_{m.name}" for m in h.metrics]) for h in hs]


# ---- data -----------------------------------------------------------------------------
def _check_compiled(model):
    if not getattr(model, "compiled", False):
        raise RuntimeError(f"model {model.name!r} must be compiled before training or evaluation: "
                           f"call model.compile(optimizer=..., loss=...) first")


def _check_xy(x, y):
    x, y = as_array(x, "x"), as_array(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same number of samples; got len(x)={len(x)} "
                         f"and len(y)={len(y)}")
    if len(x) == 0:
        raise ValueError("x and y are empty; nothing to train on")
    return x, y


def standardize(model, x, y=None):
    """(xs, ys): one array per input, one target (or None) per output, all with
    the same number of samples. ys is None when y is."""
    if not _multi(model):
        if y is None:
            return [as_array(x, "x")], None
        x, y = _check_xy(x, y)
        return [x], [y]
    xs = model.standardize_inputs(x)
    if y is None:
        return xs, None
    ys = model.standardize_targets(y)
    n = len(xs[0])
    for h, t in zip(heads(model), ys):
        if t is not None and len(t) != n:
            raise ValueError(f"x and y must hold the same number of samples; got len(x)={n} and "
                             f"len(y)={len(t)} for output {h.name!r}")
    if n == 0:
        raise ValueError("x and y are empty; nothing to train on")
    return xs, ys


def _sample_weights(model, sample_weight, n):
    """One array (n,) or (n, T) per head, or None per head."""
    hs = heads(model)
    if sample_weight is None:
        return [None] * len(hs)
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - {h.name for h in hs})
        if unknown:
            raise ValueError(f"sample_weight names outputs {unknown}; the outputs are {[h.name for h in hs]}")
        sws = [sample_weight.get(h.name) for h in hs]
    elif isinstance(sample_weight, (list, tuple)) and len(hs) > 1:
        if len(sample_weight) != len(hs):
            raise ValueError(f"sample_weight as a list needs one entry per output ({len(hs)}); "
                             f"got {len(sample_weight)}")
        sws = list(sample_weight)
    else:
        sws = [sample_weight] * len(hs)
    out = []
    for h, sw in zip(hs, sws):
        if sw is not None:
            sw = np.asarray(sw, np.float64)
            if len(sw) != n:
                raise ValueError(f"sample_weight must have one weight per sample ({n}); got {len(sw)}"
                                 + (f" for output {h.name!r}" if len(hs) > 1 else ""))
        out.append(sw)
    return out


def _class_weights(y, class_weight):
    """One weight per sample from {class id: weight}; y holds class ids, 0/1 labels or one-hot rows."""
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        labels = y.argmax(-1)
    else:
        labels = np.round(y.reshape(len(y), -1)[:, 0]) if y.ndim > 1 else np.round(y)
    labels = labels.astype(np.int64)
    if labels.ndim > 1:
        raise ValueError("class_weight works on one label per sample; use sample_weight for sequences")
    missing = sorted(set(np.unique(labels).tolist()) - set(int(k) for k in class_weight))
    if missing:
        raise ValueError(f"class_weight has no weight for classes {missing}; it has {sorted(class_weight)}")
    table = {int(k): float(v) for k, v in class_weight.items()}
    return np.array([table[int(c)] for c in labels], np.float64)


def _take(arrays, idx):
    return [None if a is None else a[idx] for a in arrays]


def _slice(arrays, start, stop):
    return [None if a is None else a[start:stop] for a in arrays]


def batches(n, batch_size, shuffle, rng):
    """The index arrays of one epoch's batches (each sorted, so reads stay in order)."""
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield np.sort(order[start:start + batch_size])


# ---- one step --------------------------------------------------------------------------
def _losses(model, outs, masks, ys, sws, fused, backward):
    """Every head's loss on one batch; with backward=True the weighted gradients per
    output too, else the metrics updated. Returns (total, [loss per head], douts,
    (ys, masks) as the losses saw them -- compacted for "rows" heads, see _at_rows --
    which is what the metrics take after the update)."""
    total, values, douts = 0.0, [], []
    ys, sws, masks = _at_rows(model, ys, sws, masks)
    for k, h in enumerate(heads(model)):
        if h.loss is None or ys[k] is None:
            values.append(None)
            douts.append(None)
            continue
        y, sw, mask = ys[k], sws[k], masks[k]
        value = h.loss.forward(outs[k], y, sample_weight=sw, mask=mask,
                               from_logits=fused[k] or h.loss.from_logits)
        total += h.weight * value
        values.append(value)
        if backward:
            d = h.loss.backward()
            douts.append(d if h.weight == 1.0 else d * h.weight)
        if not backward:
            _update_metrics(h, y, mask)
    return total, values, douts, (ys, masks)


def _at_rows(model, ys, sws, masks):
    """Targets, sample weights and masks as the losses see them: for an output that came
    as the logits of its unmasked steps only, (N, V) (Model.compacted), its targets and
    weights at those steps, (N,), and no mask -- the plain mean over the N rows is the
    masked mean over real steps."""
    rows = getattr(model, "compacted", None) if _multi(model) else None
    if not rows or not any(rows):
        return ys, sws, masks
    ys, sws, masks = list(ys), list(sws), list(masks)
    for k, compact in enumerate(rows):
        if not compact or ys[k] is None:
            continue
        mask = masks[k]
        ys[k] = np.asarray(ys[k])[mask]
        sw = sws[k]
        if sw is not None:
            sw = np.asarray(sw)
            sws[k] = (sw if sw.shape == mask.shape else np.broadcast_to(
                sw.reshape(sw.shape + (1,) * (mask.ndim - sw.ndim)), mask.shape))[mask]
        masks[k] = None
    return ys, sws, masks


def _update_metrics(head, y, mask):
    for m in head.metrics:
        m.update(head.loss.y_prob, y, mask)


REMEDY = "try a lower learning rate or clipnorm (gradient clipping)"


def train_step(model, xs, ys, sws, where=None, on_nonfinite="stop"):
    """One update on one batch (lists as standardize gives them): forward, losses,
    backward, optimizer step. Returns (total loss, [loss per head]).

    A NaN or Inf in the loss or a gradient stops before the update (NonFiniteError naming the
    layer, the parameter and, from fit, the epoch and batch `where`), or with on_nonfinite='skip'
    leaves the weights as they were and returns None. A weight made non-finite by the update
    itself always stops."""
    fused = fused_heads(model)
    outs, masks = _forward(model, xs, True, fused)
    total, values, douts, (ys, masks) = _losses(model, outs, masks, ys, sws, fused, backward=True)
    if not np.isfinite(total):
        if on_nonfinite == "skip":
            return None
        raise nonfinite_error("loss", None, total, where, _blame(model, xs) + REMEDY +
                              "; the weights are those before this batch")
    _backward(model, douts, fused)
    grads = model.trainable_grads()
    bad = first_bad_array(grads)
    if bad is not None:
        if on_nonfinite == "skip":
            return None
        raise nonfinite_error("the gradient", *bad, where, REMEDY + "; the weights are those before this batch")
    params = model.trainable_params()
    model.optimizer.apply(params, grads)
    bad = first_bad_array(params)
    if bad is not None:
        raise nonfinite_error("the weight", *bad, where, "the update itself overflowed; " + REMEDY)
    for h, y, mask, v in zip(heads(model), ys, masks, values):
        if v is not None:
            _update_metrics(h, y, mask)          # each head's loss still holds this batch's y_prob
    return total, values


def train_batch(model, xb, yb, swb=None, where=None, on_nonfinite="stop"):
    """One update on one batch given as fit takes data; returns the batch loss (None when
    skipped for a NaN or Inf with on_nonfinite='skip')."""
    xs, ys = standardize(model, xb, yb)
    step = train_step(model, xs, ys, _sample_weights(model, swb, len(xs[0])), where, on_nonfinite)
    return None if step is None else step[0]


def _blame(model, xs):
    """Which layer's output first holds a NaN or Inf on this batch, and its largest weight, in words
    (for the message when the loss is not finite); '' where that cannot be told (a graph)."""
    layers = getattr(model, "layers", None)
    if not layers or _multi(model):
        return ""
    out, mask = xs[0], None
    try:
        for layer in layers:
            new = layer.forward(out, training=False, mask=mask)
            mask = layer.compute_mask(out, mask)
            out = new
            arr = out[0] if isinstance(out, (list, tuple)) else out
            if first_bad_array({"x": np.asarray(arr, np.float64)}) is not None:
                big = max(layer.params.items(), key=lambda kv: np.abs(kv[1]).max(), default=None)
                where = (f"; its largest weight is {big[0]!r} with |w| = {np.abs(big[1]).max():.3g}"
                         if big is not None else "")
                return f"the output of layer {layer.name!r} is the first to overflow{where}; "
    except Exception:                        # only a diagnosis: never hide the NaN itself
        return ""
    return ""


def _reset_metrics(model):
    for h in heads(model):
        for m in h.metrics:
            m.reset()


def _step_logs(model, loss_sum, head_sums, seen, prefix=""):
    logs = {prefix + "loss": loss_sum / seen}
    multi = len(heads(model)) > 1
    for h, (loss_key, metric_keys), s in zip(heads(model), _log_names(model), head_sums):
        if multi and s is not None:
            logs[prefix + loss_key] = s / seen
        for m, key in zip(h.metrics, metric_keys):
            logs[prefix + key] = m.result()
    return logs


def _add_head_sums(sums, values, count):
    return [None if v is None else (s or 0.0) + v * count for s, v in zip(sums, values)]


# ---- fit, evaluate, predict --------------------------------------------------------------
def fit(model, x, y, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
        seed=None, on_nonfinite="stop", checkpoint_dir=None, checkpoint_every=None, keep_checkpoints=3,
        resume=False, distributed=None):
    """on_nonfinite: 'stop' (NonFiniteError naming layer, parameter, epoch and batch) or 'skip' (leave out
    a batch whose loss or gradients hold NaN/Inf; the count is in the logs as 'skipped_batches').

    checkpoint_dir: write a checkpoint there (models/checkpoint.py: weights, optimizer state, every
    random generator, the position, the epoch's running sums, History and callbacks' state) at each
    epoch end and, with checkpoint_every=N, every N batches; keep the newest keep_checkpoints.
    resume=True: go on from the newest checkpoint there that reads back whole (start afresh when the
    folder holds none); with the same data, batch size, callbacks and engine threads, the result is
    bit for bit that of a run never interrupted. Without resume, a folder already holding
    checkpoints is refused rather than mixed with a new run's.

    distributed: data-parallel training on torch.distributed (lstmkit.distributed, docs/multinode.md);
    None = when started by torchrun (RANK and WORLD_SIZE > 1 in the environment). Only rank 0 writes
    checkpoints; with resume every rank reads them (a folder all ranks see)."""
    _check_compiled(model)
    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip'; got {on_nonfinite!r}")
    for name, v, none_ok in (("checkpoint_every", checkpoint_every, True),
                             ("keep_checkpoints", keep_checkpoints, False)):
        if not (v is None and none_ok) and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                            or v <= 0):
            raise ValueError(f"{name} must be a positive integer{' or None' if none_ok else ''}; got {v!r}")
    if checkpoint_dir is None and (resume or checkpoint_every):
        raise ValueError(f"{'resume=True' if resume else 'checkpoint_every'} needs checkpoint_dir, the folder "
                         f"of the checkpoints")
    xs, ys = standardize(model, x, y)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    n = len(xs[0])
    sws = _sample_weights(model, sample_weight, n)
    if class_weight is not None:
        if len(ys) != 1:
            raise ValueError("class_weight works for a model with one output; use sample_weight per output")
        cw = _class_weights(ys[0], class_weight)
        sws = [cw if sws[0] is None else sws[0] * cw.reshape((-1,) + (1,) * (sws[0].ndim - 1))]

    if validation_data is not None:
        if len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight_val); "
                             f"got {len(validation_data)} items")
        vx, vy = standardize(model, validation_data[0], validation_data[1])
        val = (vx, vy, _sample_weights(model, validation_data[2] if len(validation_data) == 3 else None,
                                       len(vx[0])))
    elif validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1); got {validation_split!r}")
        # the last fraction, before any shuffling, as Keras does
        split_at = int(n * (1.0 - validation_split))
        if split_at == 0 or split_at == n:
            raise ValueError(f"validation_split={validation_split} leaves no training or no validation "
                             f"samples out of {n}")
        val = (_slice(xs, split_at, n), _slice(ys, split_at, n), [None] * len(ys))
        xs, ys, sws = _slice(xs, 0, split_at), _slice(ys, 0, split_at), _slice(sws, 0, split_at)
        n = split_at
    else:
        val = None

    stateful = _check_stateful(model, n, batch_size, shuffle, None if val is None else len(val[0][0]))

    if seed is None:
        seed = model.seed
    sync = None
    if distributed or (distributed is None and _launched()):
        from ..distributed.data_parallel import FitSync   # torch only here, only when asked for
        sync = FitSync(model)
        seed, verbose, callbacks = sync.setup(seed, verbose, callbacks)
    rng = np.random.default_rng(seed)
    if seed is not None:
        # training noise (dropout masks) from the same seed, so a run repeats exactly
        for k, layer in enumerate(_all_layers(model)):
            if hasattr(layer, "_dropout_rng"):
                layer._dropout_rng = np.random.default_rng([seed, k])

    history = History()
    cbs = [history] + list(callbacks or [])
    for cb in cbs:
        cb.set_model(model)
    model.history = history
    model.stop_training = False
    for cb in cbs:
        cb.on_train_begin()

    n_batches = (n + batch_size - 1) // batch_size
    start_epoch, skip, partial = initial_epoch, 0, None
    if checkpoint_dir is not None:
        setup = {"samples": int(n), "batch_size": int(batch_size), "shuffle": bool(shuffle)}
        if not model.built and hasattr(model, "build"):
            model.build(xs[0].shape[1:])              # so a checkpoint's weights have their place
        start_epoch, skip, partial = _resume(model, checkpoint_dir, resume, setup, rng, cbs, initial_epoch, epochs)

    def save_checkpoint(epoch_at, batch_at, rng_state, sums, finished=False):
        # the position is (epoch, batches done in it); rng_state is the shuffling generator
        # as it was when that epoch began, so resuming draws the epoch's order again
        tensors = ckpt.model_tensors(model)
        opt, layers = model.optimizer, _all_layers(model)
        lr = opt.learning_rate
        state = {"epoch": epoch_at, "batch": batch_at, "setup": setup, "finished": bool(finished),
                 "weights": list(model.params),
                 "iterations": int(opt.iterations),
                 "learning_rate": float(lr) if isinstance(lr, (int, float, np.number)) else None,
                 "rng": rng_state,
                 "generators": {k: g.bit_generator.state for k, g in ckpt.generators(model, layers).items()},
                 "stateful": ckpt.encode({str(k): l.states for k, l in enumerate(layers)
                                          if getattr(l, "stateful", False) and getattr(l, "states", None)},
                                         tensors, ckpt.STATE_PREFIX),
                 "callbacks": [[type(cb).__name__, None if cb.get_state() is None else
                                ckpt.encode(cb.get_state(), tensors, f"{ckpt.CALLBACK_PREFIX}{i}/")]
                               for i, cb in enumerate(cbs)],
                 "partial": ckpt.encode(sums, tensors, "__partial__/")}
        if sync is None or sync.rank == 0:                 # data-parallel: rank 0 writes
            ckpt.write(checkpoint_dir, epoch_at, batch_at, tensors, state, keep_checkpoints)

    for epoch in range(start_epoch, epochs):
        if partial is None:
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            _reset_metrics(model)
            if stateful:
                _reset_states(model)              # each epoch reads the sequences from their start
            loss_sum, head_sums, seen, skipped = 0.0, [None] * len(ys), 0, 0
        else:                                     # resumed in the middle of this epoch
            loss_sum, head_sums, seen, skipped = (partial[k] for k in ("loss_sum", "head_sums", "seen", "skipped"))
            for h, saved in zip(heads(model), partial["metrics"]):
                for m, (total, count) in zip(h.metrics, saved):
                    m.total, m.count = total, count
            partial = None
        epoch_rng_state = rng.bit_generator.state
        bar = tqdm(total=n_batches, initial=skip, desc=f"Epoch {epoch + 1}/{epochs}", file=sys.stderr,
                   disable=verbose != 1, unit="batch", dynamic_ncols=True, leave=True)
        for b, idx in enumerate(batches(n, batch_size, shuffle, rng)):
            if b < skip:
                continue                              # done before the checkpoint resumed from
            try:
                if sync is None:
                    step = train_step(model, _take(xs, idx), _take(ys, idx), _take(sws, idx),
                                      where=(epoch + 1, b + 1, n_batches), on_nonfinite=on_nonfinite)
                else:                                # this rank's shard, gradients summed over the ranks
                    step = sync.step(xs, ys, sws, idx, where=(epoch + 1, b + 1, n_batches),
                                     on_nonfinite=on_nonfinite)
                    if step is sync.STOPPED:
                        break                        # some rank's callback asked to stop
            except FloatingPointError:
                bar.close()
                raise
            if step is None:                         # on_nonfinite='skip'
                skipped += 1
                bar.update(1)
                continue
            value, values = step
            loss_sum += value * len(idx)
            head_sums = _add_head_sums(head_sums, values, len(idx))
            seen += len(idx)
            logs = _step_logs(model, loss_sum, head_sums, seen)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            bar.update(1)
            for cb in cbs:
                cb.on_batch_end(b, {"loss": value})
            if model.stop_training and sync is None:
                break                    # a callback asked to stop now (a time budget), as Keras does
                # (distributed: the flag rides the next step's all-reduce, so every rank stops there)
            if checkpoint_every and (epoch * n_batches + b + 1) % checkpoint_every == 0 and b + 1 < n_batches:
                save_checkpoint(epoch, b + 1, epoch_rng_state, {
                    "loss_sum": loss_sum, "head_sums": head_sums, "seen": seen, "skipped": skipped,
                    "metrics": [[(m.total, m.count) for m in h.metrics] for h in heads(model)]})
        skip = 0
        if sync is not None:
            sync.end_epoch()                         # metrics over every rank's shards
            if seen == 0 and model.stop_training:
                break
        if seen == 0:
            raise nonfinite_error("loss", None, float("nan"), (epoch + 1, n_batches, n_batches),
                                  f"every batch of the epoch was skipped; {REMEDY}")
        logs = _step_logs(model, loss_sum, head_sums, seen)
        if on_nonfinite == "skip":
            logs["skipped_batches"] = skipped
            if skipped:
                print(f"Epoch {epoch + 1}: skipped {skipped} of {n_batches} batches with a NaN or Inf "
                      f"in the loss or the gradients", file=sys.stderr)
        if val is not None:
            if stateful:
                _reset_states(model)              # validation sequences start from zeros too
            logs.update(evaluate_batches(model, *val, batch_size=batch_size, prefix="val_"))
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        bar.close()
        if verbose == 2:
            print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()),
                  file=sys.stderr)
        for cb in cbs:
            cb.on_epoch_end(epoch, logs)
        if sync is not None:
            model.stop_training = sync.any_stop(model.stop_training)   # every rank stops together
        if checkpoint_dir is not None:
            save_checkpoint(epoch + 1, 0, rng.bit_generator.state, None, finished=model.stop_training)
        if model.stop_training:
            break
    for cb in cbs:
        cb.on_train_end()
    return history


def _resume(model, directory, resume, setup, rng, cbs, initial_epoch, epochs):
    """Put the newest usable checkpoint of directory into the model, the generators and the
    callbacks; returns (first epoch, batches of it already done, its running sums or None)."""
    ckpt.remove_leftovers(directory)
    files = ckpt.listing(directory)
    if not resume:
        if files:
            raise ckpt.CheckpointError(
                f"{str(directory)!r} already holds checkpoints of an earlier run (newest {files[-1][2].name}); "
                f"pass resume=True (CLI: --resume) to go on from them, or delete them to start afresh")
        return initial_epoch, 0, None
    refused = []
    found = ckpt.latest(directory, refused=refused)
    if found is None:
        if files:
            raise ckpt.CheckpointError(f"none of the {len(files)} checkpoints in {str(directory)!r} reads back "
                                       f"whole, so there is nothing to resume from (the newest, {refused[0]})")
        print(f"lstmkit: no checkpoint in {str(directory)!r} yet; starting from the beginning", file=sys.stderr)
        return initial_epoch, 0, None
    path, tensors, state = found
    if state["setup"] != setup:
        differ = ", ".join(f"{k}={state['setup'].get(k)!r} there, {setup.get(k)!r} here"
                           for k in sorted(set(setup) | set(state["setup"])) if state["setup"].get(k) != setup.get(k))
        raise ckpt.CheckpointError(f"{str(path)!r} belongs to another fit ({differ}): resume with the same "
                                   f"data, batch_size and shuffle")
    ckpt.restore_model(model, tensors, path, state.get("weights"))
    opt = model.optimizer
    opt.iterations = state["iterations"]
    if state["learning_rate"] is not None:
        opt.learning_rate = state["learning_rate"]
    rng.bit_generator.state = state["rng"]
    layers = _all_layers(model)
    gens = ckpt.generators(model, layers)
    if sorted(gens) != sorted(state["generators"]):
        raise ckpt.CheckpointError(f"{str(path)!r} holds random generators {sorted(state['generators'])}; this "
                                   f"model has {sorted(gens)}")
    for k, g in gens.items():
        g.bit_generator.state = state["generators"][k]
    for k, states in ckpt.decode(state["stateful"], tensors).items():
        layers[int(k)].states = tuple(states)
    for i, (name, saved) in enumerate(state["callbacks"]):
        if saved is None:
            continue
        if i >= len(cbs) or type(cbs[i]).__name__ != name:
            raise ckpt.CheckpointError(f"{str(path)!r} holds the state of callback {name} in place {i}; this "
                                       f"fit's callbacks are {[type(cb).__name__ for cb in cbs[1:]]}: resume "
                                       f"with the same callbacks")
        cbs[i].set_state(ckpt.decode(saved, tensors))
    print(f"lstmkit: resuming from {path.name} (epoch {state['epoch'] + 1}, batch {state['batch']})",
          file=sys.stderr)
    if state["finished"]:
        return epochs, 0, None              # that run had stopped (early stopping): nothing left to train
    partial = ckpt.decode(state["partial"], tensors)
    return state["epoch"], state["batch"], partial


def _launched():
    import os
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def _check_stateful(model, n, batch_size, shuffle, n_val):
    """Whether the model has stateful layers (stateful=True: batch i continues
    the sequences of batch i-1); if so, fit must keep the order of the samples
    and every batch must be full."""
    layers = [l for l in _all_layers(model) if getattr(l, "stateful", False)]
    if not layers:
        return False
    name = layers[0].name
    if shuffle:
        raise ValueError(f"layer {name!r} is stateful: batch i continues the sequences of batch i-1, "
                         f"so fit needs shuffle=False")
    for what, count in (("training", n), ("validation", n_val)):
        if count and count % batch_size:
            raise ValueError(f"layer {name!r} is stateful, so every batch must hold batch_size={batch_size} "
                             f"sequences; the {what} data have {count} samples, not a multiple of "
                             f"{batch_size} (lstmkit.data.windows.stateful_windows lays a text out so)")
    return True


def _reset_states(model):
    for layer in _all_layers(model):
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_states"):
            layer.reset_states()


def _all_layers(layer):
    out = [layer]
    for _, sub in (layer.sublayers() if hasattr(layer, "sublayers") else []):
        out += _all_layers(sub)
    return out


def evaluate(model, x, y, batch_size=32, sample_weight=None, verbose=0, prefix=""):
    """The loss (mean over samples, weighted as in training), per-output losses
    (several outputs) and metrics over (x, y)."""
    _check_compiled(model)
    xs, ys = standardize(model, x, y)
    return evaluate_batches(model, xs, ys, _sample_weights(model, sample_weight, len(xs[0])),
                            batch_size=batch_size, verbose=verbose, prefix=prefix)


def evaluate_batches(model, xs, ys, sws, batch_size=32, verbose=0, prefix=""):
    """evaluate on data as standardize gives it (lists), with sample weights per head."""
    n = len(xs[0])
    fused = fused_heads(model)
    _reset_metrics(model)
    loss_sum, head_sums, seen = 0.0, [None] * len(ys), 0
    for b in tqdm(range(0, n, batch_size), disable=verbose != 1, file=sys.stderr, desc="evaluate"):
        xb, yb, swb = _slice(xs, b, b + batch_size), _slice(ys, b, b + batch_size), _slice(sws, b, b + batch_size)
        outs, masks = _forward(model, xb, False, fused)
        total, values, _, _ = _losses(model, outs, masks, yb, swb, fused, backward=False)
        count = len(xb[0])
        loss_sum += total * count
        head_sums = _add_head_sums(head_sums, values, count)
        seen += count
    return _step_logs(model, loss_sum, head_sums, seen, prefix)


def predict(model, x, batch_size=32, verbose=0):
    """The outputs over x in batches: one array, or a list for several outputs."""
    xs, _ = standardize(model, x)
    n = len(xs[0])
    parts = []
    for b in tqdm(range(0, n, batch_size), disable=verbose != 1, file=sys.stderr, desc="predict"):
        xb = _slice(xs, b, b + batch_size)
        if _multi(model):
            outs, _ = model.forward_heads(xb, training=False)
        else:
            outs = [model.forward(xb[0], training=False)]
        parts.append(outs)
    outs = [np.concatenate([p[k] for p in parts], axis=0) for k in range(len(parts[0]))]
    return outs if _multi(model) and model.multi_output else outs[0]


class ModelMethods:
    """fit, evaluate, predict, train_on_batch, predict_on_batch and save, the same
    for Sequential and the functional Model (both run this module's loop)."""

    def fit(self, x, y, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, seed=None, on_nonfinite="stop", checkpoint_dir=None, checkpoint_every=None,
            keep_checkpoints=3, resume=False, distributed=None):
        return fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                   validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                   class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
                   seed=seed, on_nonfinite=on_nonfinite, checkpoint_dir=checkpoint_dir,
                   checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, resume=resume,
                   distributed=distributed)

    def evaluate(self, x, y, batch_size=32, verbose=0, sample_weight=None, return_dict=False):
        """The loss (and per-output losses, metrics): a number, a list, or a dict with return_dict."""
        logs = evaluate(self, x, y, batch_size=batch_size, sample_weight=sample_weight, verbose=verbose)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x, batch_size=32, verbose=0):
        return predict(self, x, batch_size=batch_size, verbose=verbose)

    def train_on_batch(self, x, y, sample_weight=None):
        """One optimizer step on one batch (forward, loss, BPTT, update); returns the batch loss."""
        _check_compiled(self)
        xs, ys = standardize(self, x, y)
        _reset_metrics(self)
        return train_step(self, xs, ys, _sample_weights(self, sample_weight, len(xs[0])))[0]

    def predict_on_batch(self, x):
        """The model's output for one batch, with no batching or progress bar."""
        return self.forward(x if _multi(self) else as_array(x, "x"), training=False)

    def save(self, path):
        from .saving import save_model
        save_model(self, path)

    def export_onnx(self, path, padding="post", opset=17):
        """Write the model as ONNX with the standard LSTM/GRU/RNN operators (and MatMul,
        Softmax, Concat ... for attention and merges), lstmkit.interop.onnx; needs the
        onnx package. padding: where id 0 sits in the sequences of a mask_zero model,
        "post" or "pre" (functional models: "post")."""
        from ..interop.onnx import export_onnx
        return export_onnx(self, path, padding=padding, opset=opset)


def clone_loss(loss):
    """A separate Loss object with the same settings (losses keep per-batch state)."""
    return copy.copy(loss)
