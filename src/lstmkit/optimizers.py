"""Optimizers: update the model's parameter arrays in place from its gradients.

``apply(params, grads)`` takes two dicts with the same keys (the model's
"<layer>/<param>" names); per-parameter state (momentum, moments) is kept
under the same keys. Formulas follow torch.optim, which with a constant
learning rate give the same steps as Keras's (defaults are Keras's).

clipnorm: rescale all gradients together so their global L2 norm is at most
clipnorm (Keras calls this global_clipnorm). clipvalue: clip each element to
[-clipvalue, clipvalue]. Both happen before the update.

Each parameter is updated by one compiled pass (lstmkit.kernels.optim) that
also applies the clipnorm scale, so a step allocates nothing the size of the
parameters.
"""
import numpy as np

from . import schedules
from .kernels import optim as kernels
from .kernels import policy, threads
from .settings import config

DTYPES = (np.float32, np.float64)


def _flat(*arrays):
    """Flat views of C-contiguous arrays, for the kernels (no copy)."""
    return [a.reshape(-1) for a in arrays]


class Optimizer:
    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None):
        if not (callable(learning_rate) or (isinstance(learning_rate, (int, float)) and learning_rate > 0)):
            raise ValueError(f"learning_rate must be a positive number or a schedule; got {learning_rate!r}")
        for name, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive or None; got {v!r}")
        self.learning_rate = learning_rate
        self.clipnorm, self.clipvalue = clipnorm, clipvalue
        self.iterations = 0            # updates done so far
        self.state = {}

    @property
    def current_learning_rate(self):
        lr = self.learning_rate
        return float(lr(self.iterations) if callable(lr) else lr)

    def clip(self, grads):
        """The gradients as the update sees them: clipped by value, then scaled by clipnorm."""
        grads, scale = self.clip_scale(grads)
        if scale != 1.0:
            grads = {k: g * g.dtype.type(scale) for k, g in grads.items()}
        return grads

    def clip_scale(self, grads):
        """(grads clipped by value, the clipnorm factor to multiply them by).
        The factor is applied inside the update kernels instead of in a copy."""
        if self.clipvalue is not None:
            grads = {k: np.clip(g, -self.clipvalue, self.clipvalue) for k, g in grads.items()}
        scale = 1.0
        if self.clipnorm is not None:
            # float64 sum without a float64 copy of each gradient
            norm = np.sqrt(sum(kernels.sum_squares(np.ascontiguousarray(g).reshape(-1))
                               for g in grads.values()))
            if norm > self.clipnorm:
                scale = self.clipnorm / norm
        return grads, scale

    def apply(self, params, grads):
        if set(params) != set(grads):
            raise ValueError(f"params and grads must have the same keys; missing grads for "
                             f"{sorted(set(params) - set(grads))}, extra {sorted(set(grads) - set(params))}")
        grads, scale = self.clip_scale(grads)
        lr = self.current_learning_rate
        for k, p in params.items():
            if p.dtype not in DTYPES:
                raise TypeError(f"parameter {k!r} must be float32 or float64; got dtype {p.dtype}")
            g = np.ascontiguousarray(grads[k], dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"gradient {k!r} must have the parameter's shape {p.shape}; got {g.shape}")
            if p.flags.c_contiguous:
                self.update(k, p, g, lr, scale)
            else:                             # e.g. a transposed view: update a C copy, write it back
                work = np.ascontiguousarray(p)
                self.update(k, work, g, lr, scale)
                p[...] = work
        self.iterations += 1

    def slot(self, key, p, name):
        """Per-parameter state array (zeros at first), e.g. slot(k, p, "m"):
        p's shape and dtype, C-contiguous so the kernels can take a flat view."""
        s = self.state.setdefault(key, {})
        a = s.get(name)
        if a is None:
            a = s[name] = np.zeros(p.shape, p.dtype)
        elif a.dtype != p.dtype or not a.flags.c_contiguous:      # e.g. set from outside: keep the values
            a = s[name] = np.ascontiguousarray(a, p.dtype)
        if a.shape != p.shape:
            raise ValueError(f"optimizer state {name!r} of {key!r} must have the parameter's shape "
                             f"{p.shape}; got {a.shape}")
        return a

    def update(self, key, p, g, lr, scale=1.0):
        """Update p in place from g times scale. p and g are C-contiguous arrays
        of one dtype and shape (p may be a copy that apply() writes back)."""
        raise NotImplementedError

    def get_config(self):
        lr = self.learning_rate
        lr = schedules.serialize(lr) if isinstance(lr, schedules.Schedule) else lr
        return {"learning_rate": lr, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue}


class SGD(Optimizer):
    """v = momentum v + g;  p -= lr v   (nesterov: p -= lr (g + momentum v))."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0; got momentum=0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, key, p, g, lr, scale=1.0):
        c = p.dtype.type                     # scalars in p's dtype: float32 stays float32
        if self.momentum == 0:
            kernels.sgd(*_flat(p, g), c(scale), c(lr))
            return
        v = self.slot(key, p, "velocity")
        kernels.sgd_momentum(*_flat(p, g, v), c(scale), c(lr), c(self.momentum), self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + epsilon)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, key, p, g, lr, scale=1.0):
        m, v = self.slot(key, p, "m"), self.slot(key, p, "v")
        t = self.iterations + 1
        # bias correction (m and v start at 0) folded into two scalars, as torch does:
        # lr m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) = step_size m / (sqrt(v)/sqrt(1-b2^t) + eps)
        step_size = lr / (1 - self.beta_1 ** t)
        bc2_sqrt = (1 - self.beta_2 ** t) ** 0.5
        c = p.dtype.type
        args = (*_flat(p, g, m, v), c(scale), c(1 - self.beta_1), c(1 - self.beta_2), c(self.beta_1),
                c(self.beta_2), c(step_size), c(bc2_sqrt), c(self.epsilon))
        # over ranges of elements, split over the threads for big arrays: each element alone, the same numbers
        threads.run(kernels.adam_range, threads.bounds(p.size, policy.optim_threads(p.size, config.threads), 16),
                    *args)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW:
    p -= lr * weight_decay * p, then the Adam step from the gradient alone.
    Unlike an L2 term added to the loss, the decay does not pass through Adam's
    per-weight scaling: every weight shrinks by the same fraction per step.
    Default weight_decay 0.004 (Keras's AdamW; torch's default is 0.01)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
        self.weight_decay = float(weight_decay)

    def update(self, key, p, g, lr, scale=1.0):
        if self.weight_decay:
            p *= p.dtype.type(1 - lr * self.weight_decay)     # decay first, from the old weights (in place)
        super().update(key, p, g, lr, scale)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2;  p -= lr g / (sqrt(v) + epsilon)
    (with momentum: buf = momentum buf + g / (sqrt(v) + epsilon); p -= lr buf)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)

    def update(self, key, p, g, lr, scale=1.0):
        v = self.slot(key, p, "v")
        c = p.dtype.type
        args = (c(scale), c(1 - self.rho), c(self.rho), c(lr), c(self.epsilon))
        if self.momentum > 0:
            buf = self.slot(key, p, "momentum")
            kernels.rmsprop_momentum(*_flat(p, g, v, buf), *args, c(self.momentum))
        else:
            kernels.rmsprop(*_flat(p, g, v), *args)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get(optimizer):
    """An optimizer from its name ("adam", "sgd", "rmsprop", Keras's defaults) or an Optimizer."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"optimizer must be an Optimizer or one of {sorted(OPTIMIZERS)}; got {optimizer!r}")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(spec):
    classes = {cls.__name__: cls for cls in OPTIMIZERS.values()}
    if spec["class_name"] not in classes:
        raise ValueError(f"unknown optimizer {spec['class_name']!r}; known: {sorted(classes)}")
    cfg = dict(spec["config"])
    if isinstance(cfg.get("learning_rate"), dict):
        cfg["learning_rate"] = schedules.deserialize(cfg["learning_rate"])
    return classes[spec["class_name"]](**cfg)
