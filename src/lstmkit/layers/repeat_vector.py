"""RepeatVector(n): (B, D) -> (B, n, D), the same vector at each of n steps
(e.g. an encoder's summary fed to every step of a decoder). No mask."""
import numpy as np

from .base import Layer, register


@register
class RepeatVector(Layer):
    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"RepeatVector expects input of shape (batch, features); got "
                             f"{(None,) + tuple(input_shape)}")
        return (self.n,) + tuple(input_shape)

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"RepeatVector {self.name!r} expects input of shape (batch, features); "
                             f"got shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        return np.repeat(x[:, None, :], self.n, axis=1)                  # (B, n, D)

    def backward(self, dout):
        return np.asarray(dout).sum(axis=1)                              # backprop through the copies

    def get_config(self):
        return {**super().get_config(), "n": self.n}
