"""Shared plumbing for layers made of sub-layers: their params and grads are
the sub-layers' arrays (the same objects) under prefixed names, so an optimizer
that updates ``params`` in place updates the sub-layers."""
from .base import Layer


class Container(Layer):
    def sublayers(self):
        """[(prefix, layer), ...]"""
        raise NotImplementedError

    @property
    def params(self):
        return {f"{prefix}/{k}": v for prefix, layer in self.sublayers() for k, v in layer.params.items()}

    @params.setter
    def params(self, value):
        if value:
            raise AttributeError("a container's params are its sub-layers'; set them there")

    @property
    def grads(self):
        return {f"{prefix}/{k}": v for prefix, layer in self.sublayers() for k, v in layer.grads.items()}

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("a container's grads are its sub-layers'")

    def zero_grads(self):
        for _, layer in self.sublayers():
            layer.zero_grads()

    def reset_states(self):
        """Forget the carried state of every stateful recurrent layer inside
        (stateful=True; see layers/stateful.py)."""
        for _, layer in self.sublayers():
            if hasattr(layer, "reset_states"):
                layer.reset_states()

    def set_weights(self, weights):
        for prefix, layer in self.sublayers():
            mine = {k[len(prefix) + 1:]: v for k, v in weights.items() if k.startswith(prefix + "/")}
            layer.set_weights(mine)
        unknown = set(weights) - set(self.params)
        if unknown:
            raise ValueError(f"layer {self.name!r} has no weights {sorted(unknown)}")
