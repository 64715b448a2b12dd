"""Losses. Each computes one loss value per item -- per sample (B,), or per
time step (B, T) for sequence outputs -- in ``per_item`` and its gradient in
``per_item_backward`` right below; the base class reduces the items to one
number (weighted by sample weights and a time mask) and routes the gradient.

Reductions. Per-sample items: sum_i w_i l_i / B (Keras's mean over the batch).
Per-time-step items (B, T), with mask m:
    "mean"           sum_{i,t} w_i m_it l_it / sum m_it    (average over real steps)
    "sum_over_time"  sum_{i,t} w_i m_it l_it / B           (the seeds' E = sum_t E_t, per sequence)

Cross-entropies work from logits when they can: with from_logits=True, or
when the model fuses them with its final sigmoid/softmax Dense. Then the loss
is written with log-sum-exp (never log(0)) and the gradient is p - y exactly.

Label smoothing (the categorical cross-entropies, ``label_smoothing=eps``): the
target becomes q = (1 - eps) y + eps / C over the C classes (Keras's
CategoricalCrossentropy, PyTorch's CrossEntropyLoss), so
    l = -sum_c q_c log p_c = (1 - eps) (-log p_y) + eps (-mean_c log p_c)   (one-hot y)
and the gradient from logits is p - q.

The sparse cross-entropy on logits runs as two compiled passes per row
(loss_kernels.py) instead of NumPy's five. With reduction="mean" the
categorical losses can also take the logits of the real (unmasked) steps only,
(N, C) with targets (N,): the functional training loop does that for a softmax
Dense head that a mask reaches, so padding costs no output projection
(``supports_rows``).
"""
import numpy as np

EPSILON = 1e-7                      # clip for probabilities given as input, as Keras does
REDUCTIONS = ("mean", "sum_over_time")


def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Loss:
    name = None
    fusable_activation = None          # the final activation whose logits this loss can take

    def __init__(self, from_logits=False, reduction="mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
        self.from_logits = bool(from_logits)
        self.reduction = reduction
        self.y_prob = None             # the predictions as probabilities, for metrics

    def __call__(self, y_pred, y_true, sample_weight=None, mask=None):
        return self.forward(y_pred, y_true, sample_weight, mask)

    def align(self, y_pred, y_true):
        """y_true as the shape per_item expects; (B,) targets meet a (B, 1) output."""
        y_true = np.asarray(y_true)
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y_true = y_true[..., None]
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: y_true has shape {y_true.shape} but the predictions have "
                             f"shape {y_pred.shape}")
        return y_true.astype(y_pred.dtype, copy=False)

    def forward(self, y_pred, y_true, sample_weight=None, mask=None, from_logits=None):
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float64)
        from_logits = self.from_logits if from_logits is None else from_logits
        y_true = self.align(y_pred, y_true)
        items = self.per_item(y_pred, y_true, from_logits)                        # (B,) or (B, T)
        B = items.shape[0]
        w = np.ones(items.shape, y_pred.dtype)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, y_pred.dtype)
            if sw.shape not in ((B,), items.shape):
                raise ValueError(f"sample_weight must have shape ({B},) or {items.shape}; got {sw.shape}")
            w = w * (sw if sw.shape == items.shape else sw.reshape((B,) + (1,) * (items.ndim - 1)))
        if mask is not None and items.ndim > 1:
            m = np.asarray(mask)
            if m.shape != items.shape:
                raise ValueError(f"mask must have shape {items.shape}; got {m.shape}")
            w = w * m
            raw = float(m.sum())
            count = max(raw, 1.0)
        else:
            raw = count = float(items.size)
        denom = B if (items.ndim == 1 or self.reduction == "sum_over_time") else count
        # what this batch's loss divided by, and the raw count behind it: data-parallel
        # training sums both over the ranks to get the loss of the whole global batch
        self.denominator = float(denom)
        self.count = float(B) if (items.ndim == 1 or self.reduction == "sum_over_time") else raw
        self._dl = w / denom                                                      # d loss / d item
        return float((w * items).sum() / denom)

    def backward(self):
        """Gradient of the last forward's loss with respect to its y_pred (or the logits)."""
        return self.per_item_backward(self._dl)

    def get_config(self):
        return {"from_logits": self.from_logits, "reduction": self.reduction}


class BinaryCrossentropy(Loss):
    """l = -mean_k [y log p + (1 - y) log(1 - p)], p = sigmoid(z)."""
    name, fusable_activation = "binary_crossentropy", "sigmoid"

    def per_item(self, y_pred, y, from_logits):
        K = y_pred.shape[-1]
        if from_logits:
            z = y_pred
            p = sigmoid(z)
            # log(1 + exp(-|z|)) + max(z, 0) - z y: the same value, written so exp never overflows
            elem = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
            self._cache = (from_logits, p, y, None, K)
        else:
            p = np.clip(y_pred, EPSILON, 1 - EPSILON)
            elem = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)      # the clip passes no gradient
            self._cache = (from_logits, p, y, inside, K)
        self.y_prob = p if from_logits else y_pred
        return elem.mean(axis=-1)

    def per_item_backward(self, dl):
        from_logits, p, y, inside, K = self._cache
        dl = dl[..., None] / K
        if from_logits:
            return dl * (p - y)                                         # d/dz = p - y
        return dl * (-y / p + (1 - y) / (1 - p)) * inside


def _check_smoothing(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1); got {value!r}")
    return float(value)


class _Categorical(Loss):
    """What the two categorical cross-entropies share: label_smoothing, and taking the
    logits of the real steps only (N, C) when the reduction is a mean over them."""

    def __init__(self, from_logits=False, reduction="mean", label_smoothing=0.0):
        super().__init__(from_logits, reduction)
        self.label_smoothing = _check_smoothing(label_smoothing)

    @property
    def supports_rows(self):
        return self.reduction == "mean"

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(_Categorical):
    """l = -sum_c q_c log p_c, p = softmax(z), q = (1 - eps) y + eps / C; y one-hot
    (or any distribution), eps = label_smoothing."""
    name, fusable_activation = "categorical_crossentropy", "softmax"

    def per_item(self, y_pred, y, from_logits):
        eps = self.label_smoothing
        if eps:
            y = (1.0 - eps) * y + eps / y_pred.shape[-1]                # the smoothed target q
        if from_logits:
            logp = log_softmax(y_pred)                                  # (..., C)
            p = np.exp(logp)
            self._cache = (from_logits, p, y, None)
            self.y_prob = p
            return -(y * logp).sum(axis=-1)
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        self._cache = (from_logits, p, y, (y_pred > EPSILON) & (y_pred < 1 - EPSILON))
        self.y_prob = y_pred
        return -(y * np.log(p)).sum(axis=-1)

    def per_item_backward(self, dl):
        from_logits, p, y, inside = self._cache
        dl = dl[..., None]
        if from_logits:
            return dl * (p * y.sum(axis=-1, keepdims=True) - y)        # = p - y for a one-hot y
        return dl * (-y / p) * inside


class SparseCategoricalCrossentropy(_Categorical):
    """Categorical cross-entropy with integer class ids: y (B,) or (B, T), predictions (..., C);
    with label_smoothing eps the target is q = (1 - eps) onehot(y) + eps / C."""
    name, fusable_activation = "sparse_categorical_crossentropy", "softmax"

    # the probabilities of the compiled path are made only when a metric asks for them
    @property
    def y_prob(self):
        if self._y_prob is None and getattr(self, "_kernel", None) is not None:
            z, _, lse, shape = self._kernel
            self._y_prob = np.exp(z - lse[:, None].astype(z.dtype)).reshape(shape)
        return self._y_prob

    @y_prob.setter
    def y_prob(self, value):
        self._y_prob = value

    def align(self, y_pred, y_true):
        y = np.asarray(y_true)
        if y.ndim == y_pred.ndim and y.shape[-1] == 1:
            y = y[..., 0]
        if y.shape != y_pred.shape[:-1]:
            raise ValueError(f"{self.name}: y_true (class ids) must have shape {y_pred.shape[:-1]} for "
                             f"predictions of shape {y_pred.shape}; got {y.shape}")
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise TypeError(f"{self.name}: y_true must hold integer class ids; got non-integer values")
        y = y.astype(np.int64)
        C = y_pred.shape[-1]
        if y.size and (y.min() < 0 or y.max() >= C):
            raise ValueError(f"{self.name}: class id {int(y.max()) if y.max() >= C else int(y.min())} "
                             f"out of range for {C} classes (ids must lie in [0, {C - 1}])")
        return y

    def per_item(self, y_pred, y, from_logits):
        eps, C = self.label_smoothing, y_pred.shape[-1]
        self._kernel = None
        if from_logits and y_pred.dtype in (np.float32, np.float64) and y.size:
            # the compiled passes (loss_kernels.py): log-sum-exp, loss and NLL per row
            from .loss_kernels import xent_forward
            z = np.ascontiguousarray(y_pred).reshape(-1, C)                     # (N, C)
            ids = np.ascontiguousarray(y, dtype=np.int64).reshape(-1)           # (N,)
            lse, items, nll = (np.empty(len(ids)) for _ in range(3))
            xent_forward(z, ids, eps, lse, items, nll)
            self._kernel = (z, ids, lse, y_pred.shape)
            self._cache = (from_logits, None, None, None)
            self.y_prob = None                                                  # made when asked for
            return items.reshape(y.shape).astype(y_pred.dtype)
        idx = y[..., None]                                              # (..., 1)
        if from_logits:
            logp = log_softmax(y_pred)
            p = np.exp(logp)
            self._cache = (from_logits, p, idx, None)
            self.y_prob = p
            nll = -np.take_along_axis(logp, idx, axis=-1)[..., 0]
            return (1.0 - eps) * nll - eps * logp.mean(axis=-1) if eps else nll
        p_true = np.take_along_axis(y_pred, idx, axis=-1)[..., 0]
        self._cache = (from_logits, y_pred, idx, p_true)
        self.y_prob = y_pred
        nll = -np.log(np.clip(p_true, EPSILON, 1 - EPSILON))
        if eps:
            return (1.0 - eps) * nll - eps * np.log(np.clip(y_pred, EPSILON, 1 - EPSILON)).mean(axis=-1)
        return nll

    def per_item_backward(self, dl):
        eps = self.label_smoothing
        if self._kernel is not None:
            from .loss_kernels import xent_backward
            z, ids, lse, shape = self._kernel
            out = np.empty_like(z)                                              # (N, C)
            xent_backward(z, ids, eps, lse, np.ascontiguousarray(dl, dtype=np.float64).reshape(-1), out)
            return out.reshape(shape)
        from_logits, p, idx, p_true = self._cache
        C = p.shape[-1]
        if from_logits:
            g = p - eps / C if eps else p.copy()
            # p - q, q = (1 - eps) onehot(y) + eps / C
            np.put_along_axis(g, idx, np.take_along_axis(g, idx, axis=-1) - (1.0 - eps), axis=-1)
            return dl[..., None] * g
        if eps:
            # backprop through -sum_c q_c log clip(p_c): -q_c / p_c inside the clip
            q = np.full(p.shape, eps / C)
            np.put_along_axis(q, idx, eps / C + (1.0 - eps), axis=-1)
            inside = (p > EPSILON) & (p < 1 - EPSILON)
            return (dl[..., None] * np.where(inside, -q / np.clip(p, EPSILON, None), 0.0)).astype(p.dtype)
        g = np.zeros_like(p)
        inside = (p_true > EPSILON) & (p_true < 1 - EPSILON)
        d_true = np.where(inside, -1.0 / np.clip(p_true, EPSILON, None), 0.0)
        np.put_along_axis(g, idx, (dl * d_true)[..., None].astype(p.dtype), axis=-1)
        return g


class MeanSquaredError(Loss):
    """l = mean_k (p - y)^2"""
    name = "mean_squared_error"

    def per_item(self, y_pred, y, from_logits):
        self._cache = (y_pred - y, y_pred.shape[-1])
        self.y_prob = y_pred
        return (self._cache[0] ** 2).mean(axis=-1)

    def per_item_backward(self, dl):
        diff, K = self._cache
        return dl[..., None] * 2.0 * diff / K


class MeanAbsoluteError(Loss):
    """l = mean_k |p - y|"""
    name = "mean_absolute_error"

    def per_item(self, y_pred, y, from_logits):
        self._cache = (y_pred - y, y_pred.shape[-1])
        self.y_prob = y_pred
        return np.abs(self._cache[0]).mean(axis=-1)

    def per_item_backward(self, dl):
        diff, K = self._cache
        return dl[..., None] * np.sign(diff) / K


class Pinball(Loss):
    """Quantile (pinball) loss for the quantile levels tau_1 .. tau_Q.

    The predictions hold Q values per target, target-major: for y_true
    (..., K) the model outputs (..., K * Q), and [k*Q : (k+1)*Q] are the Q
    quantiles of target k (a Dense(K * Q) head; reshape to (..., K, Q)).

        u = y - p                                   residual, > 0 when p is low
        l = mean_{k,q} max(tau_q u, (tau_q - 1) u)

    Its slope in p is -tau where u > 0 and 1 - tau where u < 0, so the loss is
    lowest when a fraction tau of the targets falls below p: p is the
    tau-quantile. tau = 0.5 gives half the absolute error. At u = 0 the loss
    has a kink; the backward uses the slope 1 - tau there (a subgradient).
    """
    name = "pinball"

    def __init__(self, quantiles=(0.5,), reduction="mean"):
        super().__init__(from_logits=False, reduction=reduction)
        q = np.atleast_1d(np.asarray(quantiles, np.float64))
        if q.ndim != 1 or len(q) == 0 or not np.all((q > 0) & (q < 1)):
            raise ValueError(f"quantiles must be numbers in (0, 1); got {quantiles!r}")
        self.quantiles = q

    def align(self, y_pred, y_true):
        y_true = np.asarray(y_true)
        Q = len(self.quantiles)
        if y_true.ndim == y_pred.ndim - 1:
            y_true = y_true[..., None]                                  # (B,) targets, one per sample
        if y_true.shape[:-1] != y_pred.shape[:-1] or y_pred.shape[-1] != y_true.shape[-1] * Q:
            raise ValueError(f"{self.name}: {Q} quantiles of targets shaped {y_true.shape} need "
                             f"predictions of shape {y_true.shape[:-1] + (y_true.shape[-1] * Q,)}; "
                             f"got {y_pred.shape}")
        return y_true.astype(y_pred.dtype, copy=False)

    def per_item(self, y_pred, y, from_logits):
        Q = len(self.quantiles)
        tau = self.quantiles.astype(y_pred.dtype)                       # (Q,)
        p = y_pred.reshape(y.shape + (Q,))                              # (..., K, Q)
        u = y[..., None] - p                                            # (..., K, Q)
        elem = np.maximum(tau * u, (tau - 1) * u)
        self._cache = (u, tau, y_pred.shape)
        self.y_prob = y_pred
        return elem.reshape(y.shape[:-1] + (-1,)).mean(axis=-1)

    def per_item_backward(self, dl):
        u, tau, shape = self._cache
        n = u.shape[-1] * u.shape[-2]                                   # K * Q values per item
        # backprop through max(tau u, (tau - 1) u) and u = y - p: d/dp = -tau or 1 - tau
        slope = np.where(u > 0, -tau, 1 - tau)                          # (..., K, Q)
        return (dl[..., None, None] * slope / n).reshape(shape)

    def get_config(self):
        return {"quantiles": self.quantiles.tolist(), "reduction": self.reduction}


LOSSES = {"binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
          "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
          "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
          "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
          "pinball": Pinball, "quantile": Pinball}


def get(loss):
    """A loss from its name ("binary_crossentropy", "mse", ...) or a Loss object."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"loss must be a Loss object or one of {sorted(LOSSES)}; got {loss!r}")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(spec):
    classes = {cls.__name__: cls for cls in set(LOSSES.values())}
    if spec["class_name"] not in classes:
        raise ValueError(f"unknown loss class {spec['class_name']!r}; known: {sorted(classes)}")
    return classes[spec["class_name"]](**spec["config"])
