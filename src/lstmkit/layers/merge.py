"""Merge layers: several inputs in, one out. Concatenate, Add, Subtract,
Average, Multiply, Dot (Keras's merging layers).

Each takes a list of arrays and its backward returns a list of gradients, one
per input. Shapes follow Keras: an input of lower rank is given axes of size 1
after the batch axis until the ranks match, then NumPy broadcasting applies;
a gradient is summed back over the axes it was broadcast along.

Masks (Keras 3): Add, Subtract, Average and Multiply give the OR of the input
masks when every input has one, else no mask. Multiply also treats a masked
step of an input as 1 (it does not change the product) and writes 0 where
every input is masked. Concatenate on the feature axis gives a step the mask
True if any input has it True (an input without a mask counts as True
everywhere); on the time axis it concatenates the masks. Dot gives no mask.
"""
import numpy as np

from .base import Layer, register


def _expand_ranks(xs):
    """Axes of size 1 after the batch axis until all ranks match (Keras's merge rule)."""
    n = max(x.ndim for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (n - x.ndim) + x.shape[1:]) for x in xs]


def _unbroadcast(g, shape):
    """Sum g (the gradient of a broadcast result) back to an operand of `shape`."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _elementwise_shape(shapes, what):
    """The output shape (without batch axis) of an elementwise op, as Keras computes it."""
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(f"{what} needs inputs of the same shape (or broadcastable); got shapes "
                             f"{[(None,) + tuple(s) for s in shapes]}")
        if None in dims and not known:
            out.append(None)
        else:
            out.append(known.pop() if known else 1)
    return tuple(out)


class _Merge(Layer):
    """Base of the elementwise merges: forward/backward over a list of inputs."""

    supports_masking = True
    min_inputs = 1
    max_inputs = None

    def _check_inputs(self, xs):
        what = f"{type(self).__name__} {self.name!r}"
        if not isinstance(xs, (list, tuple)):
            raise ValueError(f"{what} takes a list of inputs; got one {type(xs).__name__}")
        if len(xs) < self.min_inputs or (self.max_inputs and len(xs) > self.max_inputs):
            want = (f"{self.min_inputs}" if self.min_inputs == self.max_inputs else
                    f"at least {self.min_inputs}")
            raise ValueError(f"{what} takes {want} inputs; got {len(xs)}")
        xs = [np.asarray(x) for x in xs]
        xs = [x if x.dtype.kind == "f" else x.astype(self.dtype) for x in xs]
        if len({len(x) for x in xs}) > 1:
            raise ValueError(f"{what}: the inputs hold different numbers of samples: "
                             f"{[x.shape for x in xs]}")
        return xs

    def build(self, input_shape):
        if not isinstance(input_shape, list):
            raise ValueError(f"{type(self).__name__} takes a list of inputs; got one of shape {input_shape}")
        self.compute_output_shape(input_shape)           # checks the shapes
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < self.min_inputs:
            raise ValueError(f"{type(self).__name__} takes a list of at least {self.min_inputs} inputs; "
                             f"got {input_shape}")
        return _elementwise_shape(input_shape, type(self).__name__)

    def compute_mask(self, x, mask):
        if mask is None or not isinstance(mask, (list, tuple)) or any(m is None for m in mask):
            return None
        return np.logical_or.reduce([np.asarray(m, bool) for m in mask])

    def forward(self, x, training=False, mask=None):
        xs = self._check_inputs(x)
        self._shapes = [a.shape for a in xs]
        out, self._cache = self._merge(_expand_ranks(xs), mask)
        return out

    def backward(self, dout):
        grads = self._merge_backward(np.asarray(dout), self._cache)
        return [_unbroadcast(g, s[:1] + (1,) * (len(dout.shape) - len(s)) + s[1:]).reshape(s)
                if g is not None else None for g, s in zip(grads, self._shapes)]

    def _merge(self, xs, mask):
        raise NotImplementedError

    def _merge_backward(self, dout, cache):
        raise NotImplementedError


@register
class Add(_Merge):
    """out = x_1 + x_2 + ..."""

    def _merge(self, xs, mask):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out, len(xs)

    def _merge_backward(self, dout, n):
        return [dout] * n                                              # backprop through the sum


@register
class Subtract(_Merge):
    """out = x_1 - x_2"""
    min_inputs = max_inputs = 2

    def _merge(self, xs, mask):
        return xs[0] - xs[1], None

    def _merge_backward(self, dout, cache):
        return [dout, -dout]                                           # backprop through x_1 - x_2


@register
class Average(_Merge):
    """out = (x_1 + ... + x_n) / n"""

    def _merge(self, xs, mask):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out / len(xs), len(xs)

    def _merge_backward(self, dout, n):
        return [dout / n] * n                                          # backprop through the mean


@register
class Multiply(_Merge):
    """out = x_1 * x_2 * ...; a masked step of an input counts as 1 (Keras 3)."""

    def _merge(self, xs, mask):
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(xs)
        ones = []
        factors = []
        for x, m in zip(xs, masks):
            if m is not None:
                m = np.broadcast_to(np.asarray(m, bool)[..., None], x.shape)   # (B, T) -> x's shape
                x = np.where(m, x, 1.0).astype(x.dtype)
            ones.append(m)
            factors.append(x)
        out = factors[0]
        for x in factors[1:]:
            out = out * x
        keep = None
        if all(m is not None for m in ones):
            keep = np.logical_or.reduce(ones)                              # some input is real here
            out = np.where(keep, out, 0.0).astype(out.dtype)
        return out, (factors, ones, keep)

    def _merge_backward(self, dout, cache):
        factors, ones, keep = cache
        if keep is not None:
            dout = np.where(keep, dout, 0.0)                               # backprop through the zeroing
        grads = []
        for i, m in enumerate(ones):
            g = dout
            for j, x in enumerate(factors):
                if j != i:
                    g = g * x                                              # d(prod)/dx_i = prod of the others
            if m is not None:
                g = np.where(m, g, 0.0)                                    # a masked step was the constant 1
            grads.append(g)
        return grads


@register
class Concatenate(_Merge):
    """Concatenation along `axis` (counted with the batch axis, as Keras: -1 the
    features, 1 the time steps of (batch, time, features) inputs)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"axis must be a nonzero integer (axis 0 is the batch); got {axis!r}")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or not input_shape:
            raise ValueError(f"Concatenate takes a list of inputs; got {input_shape}")
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            raise ValueError(f"Concatenate needs inputs of one rank; got shapes "
                             f"{[(None,) + tuple(s) for s in input_shape]}")
        rank = ranks.pop() + 1
        ax = self.axis % rank
        if ax == 0:
            raise ValueError(f"Concatenate cannot join along the batch axis (axis={self.axis})")
        out = list(input_shape[0])
        for s in input_shape[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i == ax - 1:
                    out[i] = None if a is None or b is None else a + b
                elif a is not None and b is not None and a != b:
                    raise ValueError(f"Concatenate(axis={self.axis}) needs inputs whose shapes match except "
                                     f"on that axis; got shapes {[(None,) + tuple(s) for s in input_shape]}")
                elif a is None:
                    out[i] = b
        return tuple(out)

    def compute_mask(self, x, mask):
        if mask is None or not isinstance(mask, (list, tuple)) or all(m is None for m in mask):
            return None
        full = []
        for xi, m in zip(x, mask):
            xi = np.asarray(xi)
            if m is None:
                full.append(np.ones(xi.shape, bool))
            else:
                m = np.asarray(m, bool)
                full.append(np.broadcast_to(m[..., None], xi.shape) if m.ndim < xi.ndim else m)
        return np.concatenate(full, axis=self.axis).any(axis=-1)

    def forward(self, x, training=False, mask=None):
        xs = self._check_inputs(x)
        if len({a.ndim for a in xs}) != 1:
            raise ValueError(f"Concatenate {self.name!r} needs inputs of one rank; got {[a.shape for a in xs]}")
        self._sizes = [a.shape[self.axis] for a in xs]
        return np.concatenate(xs, axis=self.axis)

    def backward(self, dout):
        cuts = np.cumsum(self._sizes)[:-1]
        return np.split(np.asarray(dout), cuts, axis=self.axis)               # backprop through the join

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _l2_normalize(x, axis, eps=1e-7):
    """x / ||x|| along axis, with the squared norm kept >= eps^2 (Keras's normalize)."""
    s = (x * x).sum(axis=axis, keepdims=True)
    r = 1.0 / np.sqrt(np.maximum(s, eps * eps))
    return x * r, (x, r, s > eps * eps)


def _l2_normalize_backward(dy, cache, axis):
    x, r, inside = cache
    # y = x r, r = s^(-1/2): dx = r dy - r^3 x sum(dy x) where the clamp is inactive
    return r * dy - np.where(inside, r ** 3 * (dy * x).sum(axis=axis, keepdims=True), 0.0) * x


@register
class Dot(_Merge):
    """Batch-wise dot product of two inputs over `axes` (Keras's Dot): for
    (B, n, d) and (B, m, d) with axes=2 the output is (B, n, m); two (B, d)
    give (B, 1). normalize=True divides each input by its L2 norm along the
    axis first, so the output is the cosine similarity."""
    min_inputs = max_inputs = 2
    supports_masking = False

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(isinstance(a, (int, np.integer)) for a in axes):
                raise ValueError(f"axes must be an int or a pair of ints; got {axes!r}")
            axes = [int(a) for a in axes]
        elif isinstance(axes, bool) or not isinstance(axes, (int, np.integer)):
            raise ValueError(f"axes must be an int or a pair of ints; got {axes!r}")
        else:
            axes = int(axes)
        self.axes = axes
        self.normalize = bool(normalize)

    def _axes(self, ranks):
        pair = [self.axes, self.axes] if isinstance(self.axes, int) else list(self.axes)
        pair = [a % r if a < 0 else a for a, r in zip(pair, ranks)]
        if 0 in pair or any(a >= r for a, r in zip(pair, ranks)):
            raise ValueError(f"Dot axes {self.axes!r} do not fit inputs of ranks {ranks} (axis 0 is the batch)")
        return pair

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2:
            raise ValueError(f"Dot takes a list of 2 inputs; got {input_shape}")
        s1, s2 = [(None,) + tuple(s) for s in input_shape]
        a1, a2 = self._axes([len(s1), len(s2)])
        if s1[a1] is not None and s2[a2] is not None and s1[a1] != s2[a2]:
            raise ValueError(f"Dot axes {self.axes!r}: sizes {s1[a1]} and {s2[a2]} differ "
                             f"(input shapes {s1} and {s2})")
        out = [d for i, d in enumerate(s1[1:], 1) if i != a1] + [d for i, d in enumerate(s2[1:], 1) if i != a2]
        return tuple(out) if out else (1,)

    def compute_mask(self, x, mask):
        return None

    def forward(self, x, training=False, mask=None):
        a, b = self._check_inputs(x)
        a1, a2 = self._axes([a.ndim, b.ndim])
        norm = None
        if self.normalize:
            a, na = _l2_normalize(a, a1)
            b, nb = _l2_normalize(b, a2)
            norm = (na, nb)
        A = np.moveaxis(a, a1, -1)                                   # (B, ..., d)
        Bm = np.moveaxis(b, a2, 1)                                    # (B, d, ...)
        A3 = A.reshape(A.shape[0], -1, A.shape[-1])                    # (B, n, d)
        B3 = Bm.reshape(Bm.shape[0], Bm.shape[1], -1)                  # (B, d, m)
        out = A3 @ B3                                                  # (B, n, m)
        shape = (a.shape[0],) + A.shape[1:-1] + Bm.shape[2:]
        self._cache = (A3, B3, A.shape, Bm.shape, (a1, a2), norm)
        return out.reshape(shape if len(shape) > 1 else shape + (1,))

    def backward(self, dout):
        A3, B3, a_shape, b_shape, (a1, a2), norm = self._cache
        d = np.asarray(dout).reshape(A3.shape[0], A3.shape[1], B3.shape[2])      # (B, n, m)
        dA = np.moveaxis((d @ B3.transpose(0, 2, 1)).reshape(a_shape), -1, a1)   # backprop through A3 @ B3
        dB = np.moveaxis((A3.transpose(0, 2, 1) @ d).reshape(b_shape), 1, a2)
        if norm is not None:
            dA = _l2_normalize_backward(dA, norm[0], a1)
            dB = _l2_normalize_backward(dB, norm[1], a2)
        return [dA, dB]

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def concatenate(inputs, axis=-1, **kwargs):
    """Concatenate(axis)(inputs)."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
