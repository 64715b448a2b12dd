"""The Layer contract: explicit forward and backward, no autograd.

A layer owns ``params`` (name -> array) and ``grads`` (same names, filled by
backward). ``forward(x, training=False, mask=None)`` returns the output and
remembers what backward needs; ``backward(dout)`` fills ``grads`` and returns
the gradient for the input. ``get_config()`` plus the weights rebuild it.

Calling a layer, ``layer(x, **kwargs)``, runs forward on arrays; on symbolic
tensors (lk.Input and what layers made from it) it records a node of a
functional graph instead (layers/symbolic.py). A layer may take a list of
inputs (merge layers) and return a list of outputs (return_state=True); its
backward then takes a list of gradients, one per output (zeros for an output
that received none) and returns one gradient per input (None where the input
has none, e.g. token ids).
"""
import re
import threading

import numpy as np

LAYER_REGISTRY = {}


def register(cls):
    LAYER_REGISTRY[cls.__name__] = cls
    return cls


class Layer:
    supports_masking = False

    def __init__(self, name=None, dtype="float32", trainable=True, seed=None):
        self.name = name or self._auto_name()
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64; got {dtype!r}")
        self.trainable = trainable
        self.seed = seed
        self.params = {}
        self.grads = {}
        self.built = False
        self.input_shape = None              # without the batch axis
        self._inbound_nodes = []             # the calls on symbolic tensors (functional graphs)

    # Automatic names (lstm, lstm_1, ...) count per class name across the
    # process, as Keras's do; the lock makes two threads building layers at
    # once get different names. reset_names() starts the counts again.
    _counters = {}
    _names_lock = threading.Lock()

    def _auto_name(self):
        # CamelCase to snake_case keeping acronyms whole, as Keras names layers: LSTM -> lstm,
        # SimpleRNN -> simple_rnn, RNNStack -> rnn_stack
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", type(self).__name__).lower()
        with Layer._names_lock:
            n = Layer._counters.get(base, 0)
            Layer._counters[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    @staticmethod
    def reset_names():
        """Start the automatic layer names again (lstm, lstm_1, ...)."""
        with Layer._names_lock:
            Layer._counters.clear()

    def _rng(self):
        return np.random.default_rng(self.seed)

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, x, mask):
        # layers that keep the time axis pass the mask on; others drop it
        return mask if self.supports_masking else None

    def forward(self, x, training=False, mask=None):
        raise NotImplementedError

    def __call__(self, x, *args, **kwargs):
        """forward(x, ...) on arrays; on symbolic tensors, a node of a functional graph."""
        from .symbolic import call_symbolic, is_symbolic
        if is_symbolic(x) or any(is_symbolic(v) for v in kwargs.values()):
            if args:
                raise TypeError(f"{type(self).__name__} {self.name!r}: on symbolic tensors, pass "
                                f"arguments other than the inputs by keyword; got {len(args)} more")
            return call_symbolic(self, x, kwargs)
        return self.forward(x, *args, **kwargs)

    def _only_node(self, what):
        nodes = self.__dict__.get("_inbound_nodes", [])
        if not nodes:
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic tensor, so "
                                 f"it has no {what}")
        if len(nodes) > 1:
            raise AttributeError(f"layer {self.name!r} was called {len(nodes)} times, so its {what} is "
                                 f"ambiguous; use get_{what}_at(node_index)")
        return nodes[0]

    @property
    def output(self):
        """The symbolic output of the layer's only call (a list for several outputs)."""
        return self._only_node("output").output_structure()

    @property
    def input(self):
        """The symbolic input of the layer's only call."""
        node = self._only_node("input")
        return node.outputs[0] if isinstance(node.args, list) and not node.args else node.args

    def get_output_at(self, node_index):
        return self.__dict__.get("_inbound_nodes", [])[node_index].output_structure()

    def get_input_at(self, node_index):
        return self.__dict__.get("_inbound_nodes", [])[node_index].args

    def backward(self, dout):
        raise NotImplementedError

    def zero_grads(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def count_params(self):
        return int(sum(v.size for v in self.params.values()))

    def get_weights(self):
        return {k: v.copy() for k, v in self.params.items()}

    def set_weights(self, weights):
        for k, v in weights.items():
            if k not in self.params:
                raise ValueError(f"layer {self.name!r} has no weight {k!r}; it has {sorted(self.params)}")
            if self.params[k].shape != np.shape(v):
                raise ValueError(f"weight {k!r} of layer {self.name!r} must have shape "
                                 f"{self.params[k].shape}; got {np.shape(v)}")
            self.params[k][...] = v

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def layer_from_config(spec):
    """spec = {"class_name": ..., "config": {...}}, as written by serialize_layer.
    A malformed spec is a ValueError (or a TypeError for a bad argument) naming the layer class."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
            or not isinstance(spec.get("config"), dict):
        raise ValueError(f"a layer spec is a dict {{'class_name': str, 'config': dict}}; got "
                         f"{type(spec).__name__} {str(spec)[:80]}")
    cls = LAYER_REGISTRY.get(spec["class_name"])
    if cls is None:
        raise ValueError(f"unknown layer class {spec['class_name']!r}; known: {sorted(LAYER_REGISTRY)}")
    try:
        return cls.from_config(spec["config"])
    except (KeyError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        raise ValueError(f"the config of layer class {spec['class_name']!r} is malformed "
                         f"({type(e).__name__}: {str(e)[:80]})") from None


def serialize_layer(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}
