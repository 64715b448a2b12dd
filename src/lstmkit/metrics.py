"""Metrics, accumulated over the batches of an epoch: reset(), update(y_prob,
y_true, mask), result(). They see probabilities (the loss hands them over even
when it worked on logits).

"accuracy" is resolved from the loss, as Keras does: binary (threshold 0.5)
for binary cross-entropy, argmax for categorical and sparse categorical.
"""
import numpy as np


class Metric:
    def __init__(self, name):
        self.name = name
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0.0

    def result(self):
        return self.total / self.count if self.count else 0.0

    def accumulate(self, values, mask):
        """values: per-item scores, (B,) or (B, T); mask (B, T) drops padded steps."""
        if mask is not None and values.ndim == 2 and np.shape(mask) == values.shape:
            m = np.asarray(mask, np.float64)
            self.total += float((values * m).sum())
            self.count += float(m.sum())
        else:
            self.total += float(values.sum())
            self.count += values.size


def _targets_like(y_prob, y_true):
    y = np.asarray(y_true)
    if y.ndim == y_prob.ndim - 1 and y_prob.shape[-1] == 1:
        y = y[..., None]
    return y


class BinaryAccuracy(Metric):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def update(self, y_prob, y_true, mask=None):
        y = _targets_like(y_prob, y_true)
        right = ((y_prob > self.threshold) == (y > 0.5)).mean(axis=-1)       # (B,) or (B, T)
        self.accumulate(right, mask)


class CategoricalAccuracy(Metric):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def update(self, y_prob, y_true, mask=None):
        self.accumulate((y_prob.argmax(-1) == np.asarray(y_true).argmax(-1)).astype(np.float64), mask)


class SparseCategoricalAccuracy(Metric):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def update(self, y_prob, y_true, mask=None):
        y = np.asarray(y_true)
        if y.ndim == y_prob.ndim:
            y = y[..., 0]
        self.accumulate((y_prob.argmax(-1) == y).astype(np.float64), mask)


class MeanAbsoluteError(Metric):
    def __init__(self, name="mae"):
        super().__init__(name)

    def update(self, y_prob, y_true, mask=None):
        self.accumulate(np.abs(y_prob - _targets_like(y_prob, y_true)).mean(axis=-1), mask)


class MeanSquaredError(Metric):
    def __init__(self, name="mse"):
        super().__init__(name)

    def update(self, y_prob, y_true, mask=None):
        self.accumulate(((y_prob - _targets_like(y_prob, y_true)) ** 2).mean(axis=-1), mask)


ACCURACY_FOR_LOSS = {"binary_crossentropy": BinaryAccuracy, "categorical_crossentropy": CategoricalAccuracy,
                     "sparse_categorical_crossentropy": SparseCategoricalAccuracy}
NAMED = {"binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
         "sparse_categorical_accuracy": SparseCategoricalAccuracy,
         "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
         "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError}


def get(metric, loss_name=None):
    """A metric from a name ("accuracy", "acc", "mae", ...) or a Metric; the name becomes its History key."""
    if isinstance(metric, Metric):
        return metric
    if metric in ("accuracy", "acc"):
        return ACCURACY_FOR_LOSS.get(loss_name, BinaryAccuracy)(name=metric)
    if isinstance(metric, str) and metric in NAMED:
        return NAMED[metric](name=metric)
    raise ValueError(f"unknown metric {metric!r}; expected a Metric or one of "
                     f"{sorted(['accuracy', 'acc', *NAMED])}")
