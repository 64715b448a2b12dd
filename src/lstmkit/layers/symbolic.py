"""Symbolic tensors and the nodes that record a functional graph.

    x = lk.Input(shape=(None, 8))              # a SymbolicTensor, shape (None, None, 8)
    out, h, c = lk.LSTM(16, return_state=True)(x)

Calling a layer on symbolic tensors runs no math: it builds the layer from the
input shapes, asks it for its output shapes (compute_output_shape) and
records a Node -- the layer, what it was called on, the constant keyword
arguments -- whose outputs are new symbolic tensors. lk.Model later walks the
nodes from its outputs back to its inputs and runs them (models/functional.py).

A node's call is stored as a structure: ``args`` is one tensor or a list of
tensors (merge layers, attention), and ``kwargs`` holds tensor structures
(``initial_state=[h, c]``) and plain constants (``return_attention_scores=True``).
"""
import inspect
import itertools

import numpy as np

from .base import Layer, register

_node_ids = itertools.count()


class SymbolicTensor:
    """A placeholder for an array in a graph: its shape (batch axis first, None
    where unknown), dtype, and where it comes from (node, output index)."""

    def __init__(self, shape, dtype, node=None, index=0, name=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def ref(self):
        """(layer name, index of the node among the layer's calls, output index), Keras's notation."""
        layer = self.node.layer
        return layer.name, layer._inbound_nodes.index(self.node), self.index

    def __repr__(self):
        name, n, i = self.ref
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype.name} from {name}[{n}][{i}]>"

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic: it has no values until a model built from it runs "
                        f"(lk.Model(inputs, outputs).predict(...))")

    def __bool__(self):
        raise TypeError(f"{self!r} is symbolic and has no truth value")

    def __iter__(self):
        raise TypeError(f"{self!r} is one tensor, not a list; a layer returns a list of tensors only "
                        f"when it has several outputs (return_state=True, return_attention_scores=True)")


def flatten(structure):
    """The leaves of a nest of lists/tuples/dicts, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in structure for leaf in flatten(structure[key])]
    return [structure]


def map_structure(f, structure):
    """The same nest with f applied to every leaf (tuples become lists)."""
    if isinstance(structure, (list, tuple)):
        return [map_structure(f, item) for item in structure]
    if isinstance(structure, dict):
        return {key: map_structure(f, value) for key, value in structure.items()}
    return f(structure)


def is_symbolic(structure):
    return any(isinstance(leaf, SymbolicTensor) for leaf in flatten(structure))


class Node:
    """One call of a layer in a graph: layer(args, **kwargs) -> outputs.

    ``tensor_kwargs``: the keyword arguments that hold symbolic tensors
    (initial_state); ``const_kwargs``: the others, passed to forward as they are.
    ``multi``: the layer returned a list (its outputs are then always a list).
    """

    def __init__(self, layer, args, tensor_kwargs, const_kwargs, output_shapes, output_dtype):
        self.id = next(_node_ids)            # creation order: a topological order of every graph
        self.layer = layer
        self.args = args
        self.tensor_kwargs = tensor_kwargs
        self.const_kwargs = const_kwargs
        self.multi = isinstance(output_shapes, list)
        shapes = output_shapes if self.multi else [output_shapes]
        self.outputs = [SymbolicTensor((None,) + tuple(s), output_dtype, self, i) for i, s in enumerate(shapes)]
        layer.__dict__.setdefault("_inbound_nodes", []).append(self)

    @property
    def inputs(self):
        """Every tensor the node reads: args first, then tensor kwargs."""
        return flatten(self.args) + flatten(self.tensor_kwargs)

    def output_structure(self):
        return list(self.outputs) if self.multi else self.outputs[0]

    def __repr__(self):
        return f"<Node {self.layer.name} #{self.layer._inbound_nodes.index(self)}>"


def _shape_of(structure):
    return map_structure(lambda t: tuple(t.shape[1:]), structure)


def _with_batch(shapes):
    """Shapes (without batch axis, tuples, possibly in a list) as the user sees them."""
    if isinstance(shapes, list):
        return [_with_batch(s) for s in shapes]
    return (None,) + tuple(shapes)


def _accepted(fn, kwargs):
    """The entries of kwargs that fn takes by name."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def call_symbolic(layer, args, kwargs):
    """layer(args, **kwargs) on symbolic tensors: build, infer shapes, record a Node."""
    what = f"{type(layer).__name__} {layer.name!r}"
    for leaf in flatten(args):
        if not isinstance(leaf, SymbolicTensor):
            raise TypeError(f"{what} was called on a mix of symbolic tensors and {type(leaf).__name__}; "
                            f"in a functional graph every input must come from lk.Input or another layer")
    if "mask" in kwargs:
        raise ValueError(f"{what}: mask= is not taken in a functional graph; masks travel with the tensors "
                         f"(Embedding(mask_zero=True) makes one)")
    tensor_kwargs = {k: v for k, v in kwargs.items() if is_symbolic(v)}
    const_kwargs = {k: v for k, v in kwargs.items() if k not in tensor_kwargs}
    for k, v in tensor_kwargs.items():
        bad = [type(leaf).__name__ for leaf in flatten(v) if not isinstance(leaf, SymbolicTensor)]
        if bad:
            raise TypeError(f"{what}: {k}= mixes symbolic tensors with {bad[0]}")
    input_shapes = _shape_of(args)
    if isinstance(args, tuple):
        args = list(args)
    _check_shapes(layer, input_shapes)
    if not layer.built:
        try:
            layer.build(input_shapes if not isinstance(input_shapes, list) else input_shapes)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what} cannot be built for inputs of shape "
                             f"{_with_batch(input_shapes)}: {e}") from None
    try:
        out_shapes = layer.compute_output_shape(input_shapes,
                                                **_accepted(layer.compute_output_shape, const_kwargs))
    except (TypeError, ValueError, IndexError) as e:
        raise ValueError(f"{what} cannot take inputs of shape "
                         f"{_with_batch(input_shapes)}: {e}") from None
    if isinstance(out_shapes, tuple) and out_shapes and isinstance(out_shapes[0], (tuple, list)):
        out_shapes = list(out_shapes)
    node = Node(layer, args, tensor_kwargs, const_kwargs, out_shapes, layer.dtype)
    return node.output_structure()


def _check_shapes(layer, input_shapes):
    """A built layer called again (a shared layer) must get inputs whose last axis
    matches the one it was built for."""
    if not layer.built or isinstance(input_shapes, list) or not isinstance(layer.input_shape, tuple):
        return
    built, got = layer.input_shape, input_shapes
    if len(built) == len(got) and built and built[-1] is not None and got[-1] is not None \
            and built[-1] != got[-1]:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} was built for inputs of shape "
                         f"{(None,) + tuple(built)}; it is called on shape {(None,) + tuple(got)}")


@register
class InputLayer(Layer):
    """The layer behind lk.Input: it holds the input's shape and dtype and has one
    node, whose output is the input tensor. It runs no math."""

    def __init__(self, shape=None, dtype="float32", name=None, batch_size=None, batch_shape=None,
                 **kwargs):
        kwargs.pop("trainable", None)
        kwargs.pop("seed", None)
        super().__init__(name=name, **kwargs)
        if batch_shape is not None:
            if shape is not None:
                raise ValueError(f"Input takes shape or batch_shape, not both; got shape={shape!r} and "
                                 f"batch_shape={batch_shape!r}")
            batch_size, shape = batch_shape[0], batch_shape[1:]
        if shape is None:
            raise ValueError("Input needs a shape (without the batch axis), e.g. shape=(None, 8) for "
                             "sequences of 8 features; got shape=None")
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        try:
            shape = tuple(None if d is None else int(d) for d in shape)
        except (TypeError, ValueError):
            raise ValueError(f"Input shape must be a tuple of positive ints or None; got {shape!r}") from None
        if any(d is not None and d <= 0 for d in shape):
            raise ValueError(f"Input shape must be a tuple of positive ints or None; got {shape!r}")
        try:
            self.dtype = np.dtype(dtype)                  # inputs may be integer ids
        except TypeError:
            raise ValueError(f"Input dtype {dtype!r} is not a NumPy dtype") from None
        self.batch_size = None if batch_size is None else int(batch_size)
        self.input_shape = shape
        self.built = True
        self._inbound_nodes = []
        node = Node(self, [], {}, {}, shape, self.dtype)
        node.outputs[0].shape = (self.batch_size,) + shape
        node.outputs[0].name = self.name

    def compute_output_shape(self, input_shape):
        return self.input_shape

    def forward(self, x, training=False, mask=None):
        return x

    def backward(self, dout):
        return dout

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape), "dtype": self.dtype.name,
                "batch_size": self.batch_size}


def Input(shape=None, dtype="float32", name=None, batch_size=None, batch_shape=None):
    """A symbolic input tensor for a functional model (Keras's keras.Input).

    shape: without the batch axis, None where it varies, e.g. (None,) for token
    ids of any length, (None, 8) for sequences of 8 features, (32,) for vectors.
    dtype: "float32" (default), "float64", or an integer type for token ids.
    name: keys the input in dict inputs to fit/predict.
    """
    layer = InputLayer(shape=shape, dtype=dtype, name=name, batch_size=batch_size, batch_shape=batch_shape)
    return layer._inbound_nodes[0].outputs[0]
