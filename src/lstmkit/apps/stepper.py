"""Run a trained Sequential one time step at a time, keeping the recurrent
state between calls: what sampling from a language model needs (feeding the
whole prefix again for every new token would cost O(n^2))."""
import numpy as np

from ..data.errors import DataError
from ..layers import Bidirectional, RNNLayer


class Stepper:
    def __init__(self, model):
        for layer in model.layers:
            if isinstance(layer, Bidirectional):
                raise DataError("a bidirectional model reads the whole text at once; it cannot "
                                "generate one step at a time")
        self.layers = model.layers
        self.states = {}

    def reset(self):
        self.states = {}

    def feed(self, ids):
        """ids (B,) -> the model's output for the next step, (B, V)."""
        x = np.asarray(ids, np.int64)[:, None]                                # (B, 1)
        for layer in self.layers:
            if isinstance(layer, RNNLayer):
                h, self.states[layer.name] = layer.step(x[:, 0], self.states.get(layer.name))   # (B, H)
                x = h[:, None]                                                # (B, 1, H)
            else:
                x = layer.forward(x, training=False)
        return x[:, 0]                                                         # (B, V)

    def feed_many(self, ids):
        """Feed a sequence of single ids (batch of 1); returns the last output (V,)."""
        out = None
        for i in ids:
            out = self.feed([i])[0]
        return out
