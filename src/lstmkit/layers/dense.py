"""Dense: y = act(x W + b) on the last axis, so a 3-D input (B, T, D) gets the
same layer at every time step.

Each activation's backward sits right below its forward. ``logits`` keeps the
pre-activation z of the last forward and ``backward_logits(dz)`` starts the
backward pass from z: a sigmoid/softmax head fused with a cross-entropy loss
uses these so the gradient is p - y exactly (see lstmkit.losses).
``forward_rows(x, mask)`` gives those logits at the unmasked steps of a
sequence only, (N, U): a loss that needs nothing at padded steps (the
functional training loop's cross-entropy heads) then pays no output
projection there; backward_logits takes (N, U) and returns (B, T, D) with
zeros at the masked steps.
"""
import numpy as np

from .. import initializers
from ..kernels.threads import blas_matmul
from .base import Layer, register


def linear(z):
    return z


def linear_backward(dy, z, y):
    return dy


def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5           # = 1 / (1 + exp(-z)), never overflows


def sigmoid_backward(dy, z, y):
    return dy * y * (1.0 - y)


def tanh(z):
    return np.tanh(z)


def tanh_backward(dy, z, y):
    return dy * (1.0 - y * y)


def relu(z):
    return np.maximum(z, 0.0)


def relu_backward(dy, z, y):
    return dy * (z > 0)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # shifting by the max keeps exp finite
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, z, y):
    # Jacobian diag(y) - y y^T applied to dy, one row at a time
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


ACTIVATIONS = {"linear": (linear, linear_backward), "sigmoid": (sigmoid, sigmoid_backward),
               "tanh": (tanh, tanh_backward), "relu": (relu, relu_backward),
               "softmax": (softmax, softmax_backward)}


@register
class Dense(Layer):
    supports_masking = True                        # per time step: the mask passes through

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", input_dim=None, input_shape=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"units must be a positive integer; got {units!r}")
        activation = activation or "linear"
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None; got {activation!r}")
        self.units = int(units)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        initializers.get(kernel_initializer)
        initializers.get(bias_initializer)
        self.logits = None
        self._cache = None
        self._rows = None                          # (mask, input shape) after forward_rows
        if input_shape is not None:
            self.build(tuple(input_shape))
        elif input_dim is not None:
            self.build((int(input_dim),))

    def build(self, input_shape):
        D, rng = int(input_shape[-1]), self._rng()
        self.params = {"W": initializers.get(self.kernel_initializer)((D, self.units), rng, self.dtype,
                                                                       units=self.units)}  # (D, U)
        if self.use_bias:
            self.params["b"] = initializers.get(self.bias_initializer)((self.units,), rng, self.dtype,
                                                                        units=self.units)  # (U,)
        self.zero_grads()
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x, dtype=self.dtype)                                   # (..., D)
        if not self.built:
            self.build(x.shape[1:])
        D = self.params["W"].shape[0]
        if x.ndim < 2 or x.shape[-1] != D:
            raise ValueError(f"Dense {self.name!r} expects input of shape (batch, ..., {D}); got {x.shape}")
        # one 2-D product: a (B, T, D) @ (D, U) matmul runs as B separate products; a big one's
        # rows are split over the engine's threads when BLAS runs one (kernels/threads.py)
        z = blas_matmul(x.reshape(-1, D), self.params["W"]).reshape(x.shape[:-1] + (self.units,))  # (..., U)
        if self.use_bias:
            z = z + self.params["b"]
        y = ACTIVATIONS[self.activation][0](z)                                # (..., U)
        self.logits = z
        self._cache = (x, z, y)
        self._rows = None
        return y

    def forward_rows(self, x, mask):
        """x (B, T, D), mask (B, T) -> the pre-activation z at the True steps, (N, U),
        N = mask.sum(), in row-major order of (b, t); the activation is not applied."""
        x = np.asarray(x, dtype=self.dtype)
        if not self.built:
            self.build(x.shape[1:])
        mask = np.asarray(mask, bool)
        if x.ndim != 3 or mask.shape != x.shape[:2]:
            raise ValueError(f"Dense {self.name!r} forward_rows takes x (batch, time, features) and a mask "
                             f"(batch, time); got {x.shape} and {mask.shape}")
        rows = x[mask]                                                        # (N, D)
        z = blas_matmul(rows, self.params["W"])                               # (N, U)
        if self.use_bias:
            z += self.params["b"]
        self.logits = z
        self._cache = (rows, z, None)
        self._rows = (mask, x.shape)
        return z

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError(f"backward() called on layer {self.name!r} before forward()")
        x, z, y = self._cache
        dz = ACTIVATIONS[self.activation][1](dout, z, y)                      # (..., U)
        return self.backward_logits(dz)

    def backward_logits(self, dz):
        """Backward from the gradient of the pre-activation z (skips the activation)."""
        x = self._cache[0]
        D = x.shape[-1]
        dz2 = dz.reshape(-1, self.units)                                      # (N, U), N = B or B*T
        self.grads = {"W": blas_matmul(x.reshape(-1, D).T, dz2)}              # (D, U)
        if self.use_bias:
            self.grads["b"] = dz2.sum(axis=0)                                 # (U,)
        dx = blas_matmul(dz2, self.params["W"].T)                             # (N, D)
        rows = self._rows
        if rows is not None:                                                  # after forward_rows:
            mask, shape = rows
            full = np.zeros(shape, dx.dtype)                                  # masked steps get 0
            full[mask] = dx
            return full                                                       # (B, T, D)
        return dx.reshape(x.shape)                                            # (..., D)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                   kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        if self.built:
            cfg["input_shape"] = [None if d is None else int(d) for d in self.input_shape]
        return cfg
