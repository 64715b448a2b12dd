"""Flatten: (B, d1, d2, ...) -> (B, d1*d2*...). Drops any time mask."""
import numpy as np

from .base import Layer, register


@register
class Flatten(Layer):
    def compute_output_shape(self, input_shape):
        if any(d is None for d in input_shape):
            return (None,)
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)                          # (B, d1*d2*...)

    def backward(self, dout):
        return dout.reshape(self._shape)
