"""Dropout: in training, zero each unit with probability ``rate`` and scale the
rest by 1 / (1 - rate) ("inverted" dropout), so inference is the identity."""
import numpy as np

from .base import Layer, register


@register
class Dropout(Layer):
    supports_masking = True

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(rate, (int, float)) and 0.0 <= rate < 1.0):
            raise ValueError(f"rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self._keep = None
        self._dropout_rng = np.random.default_rng(self.seed)

    def build(self, input_shape):
        self._dropout_rng = np.random.default_rng(self.seed)      # (re)seeded with the layer
        super().build(input_shape)

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        if not training or self.rate == 0:
            self._keep = None
            return x
        keep = 1.0 - self.rate
        self._keep = (self._dropout_rng.random(x.shape) < keep).astype(x.dtype) / keep  # (B, ...)
        return x * self._keep

    def backward(self, dout):
        return dout if self._keep is None else dout * self._keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
