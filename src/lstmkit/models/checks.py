"""Input checks for the model entry points (fit, evaluate, predict, train_on_batch):
one clear ValueError or TypeError naming the argument, what was expected and
what came, instead of a NumPy error deep inside a layer.

And the finite-number checks of the training loop: a NaN or Inf in the loss,
the gradients or the weights is named by layer, parameter, epoch and batch.
"""
import numpy as np


def as_array(a, what):
    """a as an ndarray of numbers with a sample axis, or a ValueError/TypeError naming `what`."""
    if a is None:
        raise TypeError(f"{what} must be an array of numbers; got None")
    try:
        arr = np.asarray(a)
    except ValueError:
        raise ValueError(f"{what} is ragged (its rows differ in length); pad the sequences to one "
                         f"length first (lk.data.pad_sequences, or a tokenizer's maxlen)") from None
    if arr.dtype == object:
        raise ValueError(f"{what} is ragged or holds non-numbers (dtype object); expected a rectangular "
                         f"array of numbers")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers; got dtype {arr.dtype} (values such as "
                        f"{arr.ravel()[0].item()!r})" if arr.size else f"{what} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a sample axis; got a scalar")
    if len(arr) == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}); expected at least one sample")
    if arr.ndim >= 2 and 0 in arr.shape[1:]:
        raise ValueError(f"{what} has an empty axis (shape {arr.shape}); expected at least one time step "
                         f"and one feature")
    if arr.dtype.kind == "f":
        bad = first_nonfinite(arr)
        if bad is not None:
            idx, value, count = bad
            raise ValueError(f"{what} holds {value} at index {idx} ({count} of {arr.size} values are not "
                             f"finite); clean or impute the data first")
    return arr


def first_nonfinite(arr):
    """None if every value of arr is finite, else (index, value, how many are not). Fast when all are:
    a NaN or Inf anywhere makes the float64 sum non-finite."""
    if np.isfinite(np.sum(arr, dtype=np.float64)):
        return None
    mask = ~np.isfinite(arr)
    if not mask.any():                       # the float64 sum overflowed on finite (huge) values
        return None
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    return idx, arr[idx], int(mask.sum())


class NonFiniteError(FloatingPointError):
    """A NaN or Inf in training: .what ('loss', 'gradient', 'weight'), .layer, .param, .epoch, .batch
    (1-based; None outside fit)."""

    def __init__(self, message, what, layer=None, param=None, epoch=None, batch=None):
        super().__init__(message)
        self.what, self.layer, self.param, self.epoch, self.batch = what, layer, param, epoch, batch


def split_key(key):
    """'lstm/W_h' -> ('lstm', 'W_h'); the layer part may hold '/' itself (bidirectional/forward)."""
    layer, _, param = key.rpartition("/")
    return layer or "?", param


def first_bad_array(arrays):
    """The first (key, (index, value, count)) of a dict of arrays holding a NaN or Inf, else None."""
    for key, arr in arrays.items():
        bad = first_nonfinite(arr)
        if bad is not None:
            return key, bad
    return None


def nonfinite_error(what, key, bad, where, remedy):
    """A NonFiniteError naming the layer, the parameter, the epoch and the batch."""
    epoch = batch = None
    place = ""
    if where is not None:
        epoch, batch, n_batches = where
        place = f" at epoch {epoch}, batch {batch} of {n_batches}"
    if key is None:                                     # the loss: no parameter to name
        return NonFiniteError(f"the loss became {bad}{place}; {remedy}", what, epoch=epoch, batch=batch)
    layer, param = split_key(key)
    idx, value, count = bad
    return NonFiniteError(f"{what} of layer {layer!r}, parameter {param!r} holds {value} at index {idx} "
                          f"({count} non-finite values){place}; {remedy}", what, layer, param, epoch, batch)
