"""The training loop: mini-batches, forward, loss, backward, optimizer step,
metrics, validation, callbacks, a tqdm bar per epoch.

It knows nothing of specific layers. It asks the model for forward(x,
training, return_logits), backward(dout, from_logits), trainable_params(),
trainable_grads() and output_mask; when the model's final activation is the
one the loss can fuse with (sigmoid with binary cross-entropy, softmax with
the categorical ones) it asks for logits, so the loss gets p - y exactly.
"""
import sys

import numpy as np
from tqdm.auto import tqdm

from ..callbacks import History
from .checks import as_array, first_bad_array, nonfinite_error


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


def _fuse(model, loss):
    """Whether to run the loss on the final layer's logits."""
    return (not loss.from_logits and loss.fusable_activation is not None
            and model.head_activation == loss.fusable_activation)


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


def _step_logs(model, loss_sum, seen, prefix=""):
    logs = {prefix + "loss": loss_sum / seen}
    for m in model.metrics:
        logs[prefix + m.name] = m.result()
    return logs


REMEDY = "try a lower learning rate or clipnorm (gradient clipping)"


def train_batch(model, xb, yb, swb=None, where=None, on_nonfinite="stop"):
    """One update: forward, loss, backward, optimizer step. Returns the batch loss.

    A NaN or Inf in the loss or a gradient stops before the update (NonFiniteError naming the
    layer, the parameter and, from fit, the epoch and batch `where`), or with on_nonfinite='skip'
    leaves the weights as they were and returns None. A weight made non-finite by the update
    itself always stops."""
    loss = model.loss
    fused = _fuse(model, loss)
    out = model.forward(xb, training=True, return_logits=fused)
    value = loss.forward(out, yb, sample_weight=swb, mask=model.output_mask,
                         from_logits=fused or loss.from_logits)
    if not np.isfinite(value):
        if on_nonfinite == "skip":
            return None
        raise nonfinite_error("loss", None, value, where, _blame(model, xb) + REMEDY +
                              "; the weights are those before this batch")
    model.backward(loss.backward(), from_logits=fused)
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
    for m in model.metrics:
        m.update(loss.y_prob, yb, model.output_mask)
    return value


def _blame(model, xb):
    """Which layer's output first holds a NaN or Inf on this batch, and its largest weight, in words
    (for the message when the loss is not finite); '' where that cannot be told."""
    layers = getattr(model, "layers", None)
    if not layers:
        return ""
    out, mask = xb, None
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


def fit(model, x, y, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
        seed=None, on_nonfinite="stop"):
    """on_nonfinite: 'stop' (NonFiniteError naming layer, parameter, epoch and batch) or 'skip' (leave out
    a batch whose loss or gradients hold NaN/Inf; the count is in the logs as 'skipped_batches')."""
    _check_compiled(model)
    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip'; got {on_nonfinite!r}")
    x, y = _check_xy(x, y)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    sw = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if len(sw) != len(x):
        raise ValueError(f"sample_weight must have one weight per sample ({len(x)}); got {len(sw)}")
    if class_weight is not None:
        sw = sw * (_class_weights(y, class_weight).reshape((-1,) + (1,) * (sw.ndim - 1)))
    weighted = sample_weight is not None or class_weight is not None

    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be (x_val, y_val); got "
                             f"{len(validation_data)} items")
        x_val, y_val = _check_xy(*validation_data)
    elif validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1); got {validation_split!r}")
        # the last fraction, before any shuffling, as Keras does
        split_at = int(len(x) * (1.0 - validation_split))
        if split_at == 0 or split_at == len(x):
            raise ValueError(f"validation_split={validation_split} leaves no training or no validation "
                             f"samples out of {len(x)}")
        x, x_val, y, y_val, sw = x[:split_at], x[split_at:], y[:split_at], y[split_at:], sw[:split_at]
    else:
        x_val = y_val = None

    stateful = _check_stateful(model, len(x), batch_size, shuffle, None if x_val is None else len(x_val))

    if seed is None:
        seed = model.seed
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

    n = len(x)
    n_batches = (n + batch_size - 1) // batch_size
    for epoch in range(initial_epoch, epochs):
        for cb in cbs:
            cb.on_epoch_begin(epoch)
        for m in model.metrics:
            m.reset()
        if stateful:
            _reset_states(model)                  # each epoch reads the sequences from their start
        order = rng.permutation(n) if shuffle else np.arange(n)
        bar = tqdm(total=n_batches, desc=f"Epoch {epoch + 1}/{epochs}", file=sys.stderr,
                   disable=verbose != 1, unit="batch", dynamic_ncols=True, leave=True)
        loss_sum, seen, skipped = 0.0, 0, 0
        for b in range(n_batches):
            idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
            try:
                value = train_batch(model, x[idx], y[idx], sw[idx] if weighted else None,
                                    where=(epoch + 1, b + 1, n_batches), on_nonfinite=on_nonfinite)
            except FloatingPointError:
                bar.close()
                raise
            if value is None:                        # on_nonfinite='skip'
                skipped += 1
                bar.update(1)
                continue
            loss_sum += value * len(idx)
            seen += len(idx)
            logs = _step_logs(model, loss_sum, seen)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            bar.update(1)
            for cb in cbs:
                cb.on_batch_end(b, {"loss": value})
            if model.stop_training:
                break                    # a callback asked to stop now (a time budget), as Keras does
        if seen == 0:
            raise nonfinite_error("loss", None, float("nan"), (epoch + 1, n_batches, n_batches),
                                  f"every batch of the epoch was skipped; {REMEDY}")
        logs = _step_logs(model, loss_sum, seen)
        if on_nonfinite == "skip":
            logs["skipped_batches"] = skipped
            if skipped:
                print(f"Epoch {epoch + 1}: skipped {skipped} of {n_batches} batches with a NaN or Inf "
                      f"in the loss or the gradients", file=sys.stderr)
        if x_val is not None:
            if stateful:
                _reset_states(model)              # validation sequences start from zeros too
            logs.update(evaluate(model, x_val, y_val, batch_size=batch_size, prefix="val_"))
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        bar.close()
        if verbose == 2:
            print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()),
                  file=sys.stderr)
        for cb in cbs:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in cbs:
        cb.on_train_end()
    return history


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
    """The loss (mean over samples, weighted as in training) and metrics over (x, y)."""
    _check_compiled(model)
    x, y = _check_xy(x, y)
    loss = model.loss
    fused = _fuse(model, loss)
    for m in model.metrics:
        m.reset()
    loss_sum, seen = 0.0, 0
    for b in tqdm(range(0, len(x), batch_size), disable=verbose != 1, file=sys.stderr, desc="evaluate"):
        xb, yb = x[b:b + batch_size], y[b:b + batch_size]
        swb = None if sample_weight is None else np.asarray(sample_weight)[b:b + batch_size]
        out = model.forward(xb, training=False, return_logits=fused)
        loss_sum += loss.forward(out, yb, sample_weight=swb, mask=model.output_mask,
                                 from_logits=fused or loss.from_logits) * len(xb)
        seen += len(xb)
        for m in model.metrics:
            m.update(loss.y_prob, yb, model.output_mask)
    return _step_logs(model, loss_sum, seen, prefix)


def predict(model, x, batch_size=32, verbose=0):
    x = as_array(x, "x")
    outs = [model.forward(x[b:b + batch_size], training=False)
            for b in tqdm(range(0, len(x), batch_size), disable=verbose != 1, file=sys.stderr, desc="predict")]
    return np.concatenate(outs, axis=0)
