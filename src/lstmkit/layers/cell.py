"""The cell protocol of ``lstmkit.layers.RNN``: a cell is one step of a
recurrent network, forward and backward, written in NumPy; the RNN layer
loops it over time (layers/rnn.py).

A cell (subclass ``Cell``) sets in ``__init__``

    state_size     int, or a tuple of ints (one per state: (units, units) for (h, c))
    output_size    int

and writes four methods:

    build(input_dim)                       make its weights with self.add_weight(name, shape, init)
    call(x_t, states) -> (out_t, new_states, cache)
        x_t (B, input_dim); states a tuple of (B, state_size[i]) arrays; out_t
        (B, output_size); new_states a tuple like states (new arrays: never
        write into the states given); cache: anything backward needs.
    backward(d_out, d_new_states, cache) -> (dx_t, d_states)
        the gradients of one step: d_out (B, output_size) and d_new_states (a
        tuple like new_states) in, the gradients of x_t and of the states
        given to call() out. The weight gradients are ADDED to self.grads
        (``self.grads["W"] += ...``): the layer zeroes them once per backward
        pass, and every step adds its share.
    get_config() -> dict                   the constructor's arguments, for saving

Keras's cells have the same state_size / output_size / build / call; backward
and the cache are lstmkit's, since there is no autograd. ``lstmkit.gradcheck.
check_cell`` compares a cell's backward with finite differences.

Saving: a model file stores the cell's class name and config, never code.
load_model finds the class in a registry: decorate your cell class with
``@register_cell`` (in code that runs before load_model).
"""
import numpy as np

from .. import initializers

CELL_REGISTRY = {}


def register_cell(cls):
    """Class decorator: let load_model rebuild cells of this class by name."""
    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        raise TypeError(f"register_cell takes a subclass of lstmkit.layers.Cell; got {cls!r}")
    CELL_REGISTRY[cls.__name__] = cls
    return cls


def serialize_cell(cell):
    return {"class_name": type(cell).__name__, "config": cell.get_config()}


def cell_from_config(spec):
    name = spec.get("class_name")
    cls = CELL_REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"the model uses the cell class {name!r}, which is not registered. lstmkit "
                         f"never imports code from a model file: import or define the class, decorate "
                         f"it with @lstmkit.layers.register_cell (or call register_cell({name})), then "
                         f"load again. Registered cells: {sorted(CELL_REGISTRY)}")
    return cls.from_config(spec.get("config", {}))


class Cell:
    """Base class of a recurrent cell; see the module docstring for the protocol."""

    state_size = None
    output_size = None

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.built = False
        self.input_dim = None                     # set by build_weights
        self.dtype = np.dtype("float32")
        self._rng = np.random.default_rng()

    # ---- what the layer reads ---------------------------------------------------------
    @property
    def state_sizes(self):
        """state_size as a tuple, one int per state."""
        s = self.state_size
        return (int(s),) if isinstance(s, (int, np.integer)) else tuple(int(v) for v in s)

    @property
    def state_names(self):
        n = len(self.state_sizes)
        return ("h",) if n == 1 else tuple(f"state{i}" for i in range(n))

    # ---- weights ------------------------------------------------------------------------
    def build_weights(self, input_dim, dtype, rng):
        """Called by the layer: fresh weights in dtype drawn from rng, then build()."""
        self.dtype, self._rng, self.input_dim = np.dtype(dtype), rng, int(input_dim)
        self.params, self.grads = {}, {}
        self.build(self.input_dim)
        self.built = True
        self.zero_grads()

    def add_weight(self, name, shape, initializer="glorot_uniform"):
        """A new weight self.params[name] of this shape, drawn by an initializer of
        lstmkit.initializers (a name or a callable init(shape, rng, dtype, **kw))."""
        shape = tuple(int(d) for d in np.atleast_1d(shape))
        value = initializers.get(initializer)(shape, self._rng, self.dtype, units=self.output_size)
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])
        return self.params[name]

    def zero_grads(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    # ---- the step (subclasses) -------------------------------------------------------
    def build(self, input_dim):
        raise NotImplementedError(f"{type(self).__name__}.build(input_dim) must make the weights")

    def call(self, x_t, states):
        raise NotImplementedError(f"{type(self).__name__}.call(x_t, states) must return "
                                  f"(out_t, new_states, cache)")

    def backward(self, d_out, d_states, cache):
        raise NotImplementedError(f"{type(self).__name__}.backward(d_out, d_states, cache) must "
                                  f"return (dx_t, d_states) and add the weight gradients to self.grads")

    # ---- saving -----------------------------------------------------------------------
    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def fresh_copy(self):
        """An unbuilt cell with the same settings (Bidirectional's other direction)."""
        return type(self).from_config(self.get_config())

    def __repr__(self):
        return f"{type(self).__name__}(state_size={self.state_size}, output_size={self.output_size})"


@register_cell
class StackedRNNCells(Cell):
    """Several cells as one (Keras's StackedRNNCells): cell i reads cell i-1's
    output at the same step; the output is the last cell's. The states are the
    cells' states one after another, flat (h1, c1, h2, c2 for two LSTM cells),
    and so are initial_state and the states returned with return_state.
    Weights are named "cell<i>/<name>"."""

    def __init__(self, cells):
        super().__init__()
        cells = [cell_from_config(c) if isinstance(c, dict) else c for c in cells]
        if not cells:
            raise ValueError("StackedRNNCells needs at least one cell; got an empty list")
        self.cells = cells
        self.state_size = tuple(s for c in cells for s in c.state_sizes)
        self.output_size = cells[-1].output_size

    @property
    def state_names(self):
        return tuple(f"{n}{i}" for i, c in enumerate(self.cells) for n in c.state_names)

    @property
    def params(self):
        return {f"cell{i}/{k}": v for i, c in enumerate(self.cells) for k, v in c.params.items()}

    @params.setter
    def params(self, value):
        if value:
            raise AttributeError("StackedRNNCells' params are its cells'; set them there")

    @property
    def grads(self):
        return {f"cell{i}/{k}": v for i, c in enumerate(self.cells) for k, v in c.grads.items()}

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("StackedRNNCells' grads are its cells'")

    def build_weights(self, input_dim, dtype, rng):
        self.dtype, self.input_dim = np.dtype(dtype), int(input_dim)
        for cell in self.cells:
            cell.build_weights(input_dim, dtype, rng)
            input_dim = cell.output_size                  # the next cell reads this one's output
        self.built = True

    def zero_grads(self):
        for cell in self.cells:
            cell.zero_grads()

    def _split(self, states):
        out, k = [], 0
        for cell in self.cells:
            n = len(cell.state_sizes)
            out.append(tuple(states[k:k + n]))
            k += n
        return out

    def call(self, x_t, states):
        new_states, caches = [], []
        for cell, st in zip(self.cells, self._split(states)):
            x_t, new, cache = cell.call(x_t, st)          # this cell's output feeds the next
            new_states += list(new)
            caches.append(cache)
        return x_t, tuple(new_states), caches

    def backward(self, d_out, d_states, cache):
        d_prev = []
        for cell, ds, c in reversed(list(zip(self.cells, self._split(d_states), cache))):
            d_out, dp = cell.backward(d_out, ds, c)     # backprop into the cell below
            d_prev = list(dp) + d_prev
        return d_out, tuple(d_prev)

    def get_config(self):
        return {"cells": [serialize_cell(c) for c in self.cells]}

    def fresh_copy(self):
        return StackedRNNCells([c.fresh_copy() for c in self.cells])
