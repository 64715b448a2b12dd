"""ONNX export and import of lstmkit models, with the standard recurrent operators.

Export: ``export_onnx(model, path)`` (also ``model.export_onnx(path)``) writes
the model as an ONNX graph built with ``onnx.helper``: Embedding -> Gather,
SimpleRNN / LSTM / GRU -> the ONNX ``RNN`` / ``LSTM`` / ``GRU`` operators
(stacked layers one operator each, Bidirectional as direction="bidirectional"),
Dense -> MatMul + Add + its activation, Dropout -> nothing (inference), Flatten
-> Flatten. Opset 17 by default; ONNX Runtime runs its fused recurrent kernels.

The operators are time-major and order the gate blocks differently:

    lstmkit (= PyTorch)            ONNX
    LSTM  i, f, g, o               i, o, f, c       W (dirs, 4H, D), R (dirs, 4H, H)
    GRU   r, z, n                  z, r, h          B (dirs, 2*G*H) = [W_b, R_b]
    RNN   one block                one block

lstmkit's W_x (D, G*H) is the transpose of ONNX's W for one direction, its
b_x and b_h are ONNX's W_b and R_b. GRU reset_after=True is ONNX's
linear_before_reset=1 (R_bh inside r * (...)), reset_after=False is
linear_before_reset=0; both forms map exactly.

Masks. An Embedding(mask_zero=True) makes id 0 padding. The operators take
sequence lengths (``sequence_lens``), not masks: a step at or past the length
is skipped, its output is 0 and Y_h is the state at the last real step, which
is what lstmkit does at masked steps as long as the padding sits at one end of
each sequence. The graph counts the non-zero ids per sequence; padding="post"
(the real tokens first) feeds those counts straight to the operators;
padding="pre" (what `lstmkit classify` writes) first moves each sequence's real
steps to the front with two ReverseSequence nodes and moves the outputs back
after the recurrent layers. A 0 id between real tokens is not padding the
operators can skip: lstmkit skips that step, the exported graph does not.

What a masked step outputs (zero_output_for_mask): the operators give 0 past a
sequence's length. Keras's convention (zero_output_for_mask=False, the
default) repeats the previous output in reading order instead: with post
padding that is the last real output, which the graph puts back with a Where
on Y_h; with pre padding the padding is read before any real step, where the
previous output is 0, the operators' own answer. A go_backwards layer outside
a Bidirectional returns its sequence reversed, padding and all: refused with
a mask. Bidirectional outputs 0 at masked steps (Keras's rule), as the
operators do.
"""
import numpy as np

from ..layers.base import Layer
from ..layers.bidirectional import Bidirectional
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.flatten import Flatten
from ..layers.recurrent import GRU, LSTM, RNNLayer, SimpleRNN
from ..layers.rnn import RNN
from ..layers.stack import RNNStack
from .common import recurrent_levels

OPSET = 17
ONNX_OP = {LSTM: "LSTM", GRU: "GRU", SimpleRNN: "RNN"}
# block k of the ONNX layout is block ORDER[k] of lstmkit's layout
ORDER = {LSTM: (0, 3, 1, 2), GRU: (1, 0, 2), SimpleRNN: (0,)}
DENSE_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}
PADDINGS = ("post", "pre")
INT64_MIN = np.iinfo(np.int64).min


class ExportError(ValueError):
    """The model holds something the ONNX operators cannot express."""


def _require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export and import need the onnx package: pip install 'lstmkit[onnx]'") from None


def reorder_gates(a, cls, H, inverse=False):
    """Last axis in blocks of H: lstmkit's gate order -> ONNX's (or back with inverse=True)."""
    order = ORDER[cls]
    if inverse:
        order = tuple(int(i) for i in np.argsort(order))
    return np.concatenate([a[..., k * H:(k + 1) * H] for k in order], axis=-1)


# ---- a graph under construction ---------------------------------------------------------

class _Graph:
    """Nodes and initializers, with fresh tensor names."""

    def __init__(self, opset):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes, self.inits, self._n = [], [], 0
        self._consts = {}

    def name(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def init(self, array, hint):
        name = self.name(hint)
        a = np.asarray(array)                         # (np.ascontiguousarray would make a 0-d array 1-d)
        self.inits.append(self.numpy_helper.from_array(a if a.flags.c_contiguous else a.copy(order="C"), name))
        return name

    def const(self, values, dtype=np.int64):
        """A small constant, shared by every node that asks for the same one."""
        key = (np.dtype(dtype).str, tuple(np.ravel(values).tolist()), np.ndim(values))
        if key not in self._consts:
            self._consts[key] = self.init(np.array(values, dtype), "const")
        return self._consts[key]

    def node(self, op, inputs, n_out=1, hint=None, **attrs):
        outs = [self.name(hint or op.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def reduce(self, op, x, axes, keepdims):
        """ReduceSum/Mean/Prod over axes: an attribute before opset 18 (13 for
        ReduceSum), an input from then on."""
        as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if as_input:
            return self.node(op, [x, self.const(axes)], keepdims=keepdims)
        return self.node(op, [x], axes=list(axes), keepdims=keepdims)

    def reverse_time(self, x):
        """x (B, T, ...) with its time axis reversed."""
        return self.node("Slice", [x, self.const([-1]), self.const([INT64_MIN]), self.const([1]),
                                   self.const([-1])])


# ---- the tensor flowing between layers -----------------------------------------------

class _Flow:
    """What the export knows of the current tensor: its name, its kind ("ids"
    (B, T), "seq" (B, T, F), "vec" (B, F)), the padding it carries (a _Mask or
    None) and whether pre-padded steps were moved to the front (shifted)."""

    def __init__(self, name, kind, mask=None, shifted=False):
        self.name, self.kind, self.mask, self.shifted = name, kind, mask, shifted

    def to(self, name, kind=None):
        kind = kind or self.kind
        if kind != "seq":
            return _Flow(name, kind)
        return _Flow(name, kind, self.mask, self.shifted)


class _Mask:
    """The padding of the sequences: the lengths (B,) for the operators, and
    where the padding sits ("post" or "pre")."""

    def __init__(self, g, ids, padding):
        self.padding = padding
        self.mask = mask = g.node("Not", [g.node("Equal", [ids, g.const(0)])], hint="mask")    # (B, T) bool
        self.lens64 = g.reduce("ReduceSum", g.node("Cast", [mask], to=7), [1], keepdims=0)     # (B,) int64
        self.lens = g.node("Cast", [self.lens64], to=6, hint="seq_lens")                       # (B,) int32

    def to_front(self, g, x):
        """Pre-padded (B, T, F) -> the real steps first: reverse all steps, then the first L."""
        return g.node("ReverseSequence", [g.reverse_time(x), self.lens64], batch_axis=0, time_axis=1)

    def to_back(self, g, x):
        """The inverse of to_front."""
        return g.reverse_time(g.node("ReverseSequence", [x, self.lens64], batch_axis=0, time_axis=1))


def _unshift(g, flow):
    if flow.kind == "seq" and flow.shifted:
        return _Flow(flow.mask.to_back(g, flow.name), "seq", flow.mask, shifted=False)
    return flow


def _recurrent_levels(layer):
    """recurrent_levels, with Keras's Bidirectional masked-output rule checked."""
    try:
        levels = recurrent_levels(layer)
    except ValueError as e:
        raise ExportError(str(e)) from None
    for f, b, _ in levels:
        if b is not None and f.return_sequences and not (f.zero_output_for_mask and b.zero_output_for_mask):
            raise ExportError(f"Bidirectional {layer.name!r}: a direction with zero_output_for_mask=False "
                              f"(Bidirectional sets it True when it returns sequences, as Keras does)")
    return levels


def _check_recurrent(layer, graph=False):
    cls = type(layer)
    if cls not in ONNX_OP:
        raise ExportError(f"layer {layer.name!r}: {cls.__name__} is not one of the recurrent layers the "
                          f"ONNX operators cover (LSTM, GRU, SimpleRNN)")
    if layer.return_state and not graph:
        raise ExportError(f"layer {layer.name!r}: return_state=True has no place in a one-output model graph")
    if layer.stateful:
        raise ExportError(f"layer {layer.name!r}: stateful=True carries the state from one call to the next; "
                          f"the exported graph starts every call from zeros (export a copy built with "
                          f"stateful=False)")


def _direction_weights(layer):
    """ONNX W (G*H, D), R (G*H, H), B (2*G*H,) or None for one direction, float32."""
    cls, H, p = type(layer), layer.units, layer.params
    W = reorder_gates(p["W_x"], cls, H).T                                  # (GH, D)
    R = reorder_gates(p["W_h"], cls, H).T                                  # (GH, H)
    B = None
    if layer.use_bias:
        b_x = reorder_gates(p["b_x"], cls, H)
        b_h = p.get("b_h")
        b_h = np.zeros_like(b_x) if b_h is None else reorder_gates(b_h, cls, H)
        B = np.concatenate([b_x, b_h])                                     # (2GH,) = [W_b, R_b]
    return [None if a is None else np.asarray(a, np.float32) for a in (W, R, B)]


def _op_attrs(layer, direction):
    attrs = {"hidden_size": layer.units, "direction": direction}
    if isinstance(layer, GRU):
        attrs["linear_before_reset"] = int(layer.reset_after)
    if isinstance(layer, SimpleRNN):
        n = 2 if direction == "bidirectional" else 1
        attrs["activations"] = [layer.activation.capitalize()] * n            # "Tanh" / "Relu"
    return attrs


def _same_op(a, b):
    return (type(a) is type(b) and a.units == b.units and a.use_bias == b.use_bias
            and a.cell_options() == b.cell_options())


def _recurrent_op(g, x_tbd, layers, direction, lens, initial=None, want_c=False):
    """One ONNX recurrent node over x (T, B, D), its directions' layers in the
    operator's order; initial: (initial_h, initial_c or None), each (dirs, B, H).
    Returns Y (T, dirs, B, H), Y_h (dirs, B, H) and, with want_c, Y_c."""
    ws = [_direction_weights(l) for l in layers]
    first = layers[0]
    h0, c0 = initial if initial is not None else (None, None)
    inputs = [x_tbd, g.init(np.stack([w[0] for w in ws]), "W"), g.init(np.stack([w[1] for w in ws]), "R"),
              g.init(np.stack([w[2] for w in ws]), "B") if first.use_bias else "", lens or "", h0 or "", c0 or ""]
    while inputs[-1] == "":
        inputs.pop()
    op = ONNX_OP[type(first)]
    return g.node(op, inputs, n_out=3 if want_c else 2, hint=op.lower(), **_op_attrs(first, direction))


def _initial(g, states, n_dirs, lstm):
    """lstmkit's flat initial states ([h, c] per direction, as a Bidirectional takes
    them) -> (initial_h, initial_c) of shape (dirs, B, H), or None."""
    if not states:
        return None
    per = 2 if lstm else 1
    if len(states) != per * n_dirs:
        raise ExportError(f"initial_state needs {per * n_dirs} tensors here; got {len(states)}")
    stacked = []
    for i in range(per):
        parts = [g.node("Unsqueeze", [states[d * per + i], g.const([0])]) for d in range(n_dirs)]   # (1, B, H)
        stacked.append(parts[0] if n_dirs == 1 else g.node("Concat", parts, axis=0))
    return stacked[0], (stacked[1] if lstm else None)


def _export_level(g, flow, fwd, bwd, merge_mode, initial_state=None, graph=False):
    """One recurrent level: a layer, or the two directions of a Bidirectional.
    initial_state: ONNX names, flat as lstmkit takes them. Returns the output flow,
    and with return_state the final states as flows (flat: h_f, c_f, h_b, c_b)."""
    layers = [fwd] if bwd is None else [fwd, bwd]
    for l in layers:
        _check_recurrent(l, graph)
    if flow.kind != "seq":
        raise ExportError(f"layer {fwd.name!r} expects a sequence (batch, time, features); the layer before "
                          f"it gives {'token ids' if flow.kind == 'ids' else 'vectors (batch, features)'}")
    mask = flow.mask
    reverse_alone = bwd is None and fwd.go_backwards
    if reverse_alone and fwd.return_sequences:
        flow = _unshift(g, flow)
        if mask is not None:
            raise ExportError(f"layer {fwd.name!r}: go_backwards=True outside a Bidirectional returns its "
                              f"sequence reversed, padding and all; the export covers masks only for "
                              f"layers whose outputs stay in input order")
    if mask is not None and mask.padding == "pre" and not flow.shifted:
        flow = flow.to(mask.to_front(g, flow.name))                        # real steps first
        flow.shifted = True
    x_tbd = g.node("Transpose", [flow.name], perm=[1, 0, 2])               # (T, B, D)
    lens = None if mask is None else mask.lens
    lstm = isinstance(fwd, LSTM)
    want_c = lstm and fwd.return_state
    if bwd is None or _same_op(fwd, bwd):
        direction = ("reverse" if fwd.go_backwards else "forward") if bwd is None else "bidirectional"
        outs = _recurrent_op(g, x_tbd, layers, direction, lens, _initial(g, initial_state, len(layers), lstm),
                             want_c)
        y, y_h = outs[0], outs[1]
        y_c = outs[2] if want_c else None
    else:                                        # two cells of different kinds: one node per direction
        if initial_state or fwd.return_state:
            raise ExportError(f"Bidirectional {fwd.name!r} of two different cells with initial_state or "
                              f"return_state")
        (y_f, h_f), (y_b, h_b) = (_recurrent_op(g, x_tbd, [fwd], "forward", lens),
                                  _recurrent_op(g, x_tbd, [bwd], "reverse", lens))
        y, y_h, y_c = g.node("Concat", [y_f, y_b], axis=1), g.node("Concat", [h_f, h_b], axis=0), None
    states = []
    if fwd.return_state:
        for d in range(len(layers)):
            for s_all in ([y_h, y_c] if lstm else [y_h]):
                one = g.node("Gather", [s_all, g.const(d)], axis=0)                   # (B, H)
                states.append(_Flow(one, "vec"))
    H, n_dirs = fwd.units, len(layers)
    width = n_dirs * H if merge_mode in (None, "concat") else H
    if fwd.return_sequences:
        out = g.node("Transpose", [y], perm=[2, 0, 1, 3])                  # (B, T, dirs, H)
        if merge_mode not in (None, "concat"):
            out = _reduce_dirs(g, out, merge_mode, axis=2)                 # (B, T, 1, H)
        out = g.node("Reshape", [out, g.const([0, 0, width])])             # (B, T, width)
        if mask is not None and not fwd.zero_output_for_mask and bwd is None and mask.padding == "post":
            # Keras's convention: a masked step repeats the previous output. Post-padding
            # comes after the real steps, so that is the last real output, Y_h (0 for a
            # sequence with no real step, whatever its initial state); pre-padding comes
            # before any, where the previous output is 0, as the operator gives
            last = g.node("Transpose", [y_h], perm=[1, 0, 2])              # (B, 1, H)
            if initial_state:
                some = g.node("Unsqueeze", [g.node("Greater", [mask.lens64, g.const(0)]), g.const([1, 2])])
                last = g.node("Where", [some, last, g.const(0.0, np.float32)])
            real = g.node("Unsqueeze", [mask.mask, g.const([2])])          # (B, T, 1)
            out = g.node("Where", [real, out, last], hint="repeat_last")
        if reverse_alone:
            out = g.reverse_time(out)                                      # lstmkit returns it reversed
        return flow.to(out), states
    out = g.node("Transpose", [y_h], perm=[1, 0, 2])                       # (B, dirs, H) final states
    if merge_mode not in (None, "concat"):
        out = _reduce_dirs(g, out, merge_mode, axis=1)                     # (B, 1, H)
    return flow.to(g.node("Reshape", [out, g.const([0, width])]), "vec"), states   # (B, width)


def _reduce_dirs(g, x, mode, axis):
    """Bidirectional's sum / mul / ave over the directions axis (kept, size 1)."""
    op = {"sum": "ReduceSum", "mul": "ReduceProd", "ave": "ReduceMean"}[mode]
    return g.reduce(op, x, [axis], keepdims=1)


def _export_layer(g, layer, flow, padding):
    if isinstance(layer, Embedding):
        if flow.kind != "ids":
            raise ExportError(f"Embedding {layer.name!r} must be the first layer (it reads token ids)")
        E = g.init(np.asarray(layer.params["embeddings"], np.float32), "embeddings")
        mask = _Mask(g, flow.name, padding) if layer.mask_zero else None
        return _Flow(g.node("Gather", [E, flow.name], axis=0, hint="embedded"), "seq", mask)
    if isinstance(layer, RNN):
        raise ExportError(f"layer {layer.name!r}: RNN(cell) runs a cell written in Python; the ONNX operators "
                          f"cover the LSTM, GRU and SimpleRNN layers (build the model with those)")
    if isinstance(layer, (RNNLayer, Bidirectional, RNNStack)):
        for fwd, bwd, mode in _recurrent_levels(layer):
            flow, _ = _export_level(g, flow, fwd, bwd, mode)
        return flow
    if isinstance(layer, Dense):
        if flow.kind == "ids":
            raise ExportError(f"Dense {layer.name!r} cannot read token ids; put an Embedding first")
        y = g.node("MatMul", [flow.name, g.init(np.asarray(layer.params["W"], np.float32), "W")])
        if layer.use_bias:
            y = g.node("Add", [y, g.init(np.asarray(layer.params["b"], np.float32), "b")])
        if layer.activation in DENSE_OPS:
            extra = {"axis": -1} if layer.activation == "softmax" else {}
            y = g.node(DENSE_OPS[layer.activation], [y], **extra)
        return flow.to(y)                                                  # per step: the padding stays
    if isinstance(layer, Dropout):
        return flow                                                        # the identity in inference
    if isinstance(layer, Flatten):
        flow = _unshift(g, flow)
        return flow.to(g.node("Flatten", [flow.name], axis=1), "vec")
    raise ExportError(f"layer {layer.name!r}: {type(layer).__name__} has no ONNX export (covered: Embedding, "
                      f"SimpleRNN, LSTM, GRU, Bidirectional, RNNStack, Dense, Dropout, Flatten)")


# ---- functional models (lk.Model) ------------------------------------------------------------

NEG = 1.0e9                       # what attention subtracts from the scores of masked steps, as lstmkit


def _expand_to(g, flows, rank):
    """Keras's merge rule: size-1 axes after the batch axis until the ranks match."""
    out = []
    for f in flows:
        r = 3 if f.kind == "seq" else 2
        out.append(f.name if r == rank else g.node("Unsqueeze", [f.name, g.const(list(range(1, 1 + rank - r)))]))
    return out


def _or_masks(g, masks):
    """The mask of an elementwise merge: the OR of the inputs' masks when every input has one."""
    if not masks or any(m is None for m in masks):
        return None
    out = masks[0].mask
    for m in masks[1:]:
        out = g.node("Or", [out, m.mask])
    return _DerivedMask(out, masks[0])


class _DerivedMask:
    """A mask made from others (a merge): its (B, T) bool tensor. Recurrent layers cannot read it
    as lengths (an OR of two paddings need not be one run of real steps)."""

    def __init__(self, mask, like):
        self.mask, self.padding = mask, like.padding
        self.lens = self.lens64 = None
        self.derived = True


def _merge_node(g, layer, flows):
    kind = type(layer).__name__
    masks = [f.mask for f in flows]
    if kind == "Concatenate":
        axis = layer.axis
        rank = 3 if flows[0].kind == "seq" else 2
        if axis % rank == 1 and rank == 3 and any(m is not None for m in masks):
            raise ExportError(f"Concatenate {layer.name!r}: masked sequences joined along time")
        out = g.node("Concat", [f.name for f in flows], axis=axis)
        mask = None                        # an input without a mask counts as all real: no mask
        if rank == 3 and all(m is not None for m in masks):
            mask = masks[0] if all(m is masks[0] for m in masks) else _or_masks(g, masks)
        return _Flow(out, "seq" if rank == 3 else "vec", mask)
    if kind == "Dot":
        return _Flow(_dot(g, layer, flows), "vec" if all(f.kind == "vec" for f in flows) else "seq")
    rank = max(3 if f.kind == "seq" else 2 for f in flows)
    names = _expand_to(g, flows, rank)
    if kind == "Multiply":
        factors = []
        for n, m in zip(names, masks):
            if m is not None:
                n = g.node("Where", [g.node("Unsqueeze", [m.mask, g.const([2])]), n, g.const(1.0, np.float32)])
            factors.append(n)
        out = factors[0]
        for n in factors[1:]:
            out = g.node("Mul", [out, n])
        mask = _or_masks(g, masks)
        if mask is not None:
            out = g.node("Where", [g.node("Unsqueeze", [mask.mask, g.const([2])]), out, g.const(0.0, np.float32)])
    else:
        out = names[0]
        for n in names[1:]:
            out = g.node("Sub" if kind == "Subtract" else "Add", [out, n])
        if kind == "Average":
            out = g.node("Mul", [out, g.const(1.0 / len(names), np.float32)])
        mask = _or_masks(g, masks)
    if mask is not None and all(m is masks[0] for m in masks):
        mask = masks[0]                    # one padding for all: the lengths stay usable
    return _Flow(out, "seq" if rank == 3 else "vec", mask)


def _dot(g, layer, flows):
    a, b = flows
    ra, rb = (3 if f.kind == "seq" else 2 for f in flows)
    pair = [layer.axes, layer.axes] if isinstance(layer.axes, int) else list(layer.axes)
    a1, a2 = pair[0] % ra, pair[1] % rb
    xa, xb = a.name, b.name
    if layer.normalize:
        def unit(x, axis):
            ss = g.reduce("ReduceSum", g.node("Mul", [x, x]), [axis], keepdims=1)
            return g.node("Div", [x, g.node("Sqrt", [g.node("Max", [ss, g.const(1e-14, np.float32)])])])
        xa, xb = unit(xa, a1), unit(xb, a2)
    letters_a = "b" + "ij"[:ra - 1]
    letters_b = "b" + "kl"[:rb - 1]
    letters_b = letters_b[:a2] + letters_a[a1] + letters_b[a2 + 1:]
    out_letters = "b" + "".join(c for i, c in enumerate(letters_a) if i not in (0, a1)) + \
        "".join(c for i, c in enumerate(letters_b) if i not in (0, a2))
    out = g.node("Einsum", [xa, xb], equation=f"{letters_a},{letters_b}->{out_letters}")
    if len(out_letters) == 1:
        out = g.node("Unsqueeze", [out, g.const([1])])                    # (B,) -> (B, 1), as Keras
    return out


def _attention_node(g, layer, flows, return_scores, causal):
    q, v = flows[0], flows[1]
    k = flows[2] if len(flows) == 3 else v
    p = layer.params
    f32 = lambda a: np.asarray(a, np.float32)
    from ..layers.attention import AdditiveAttention
    if isinstance(layer, AdditiveAttention) or layer.score_mode == "concat":
        e = g.node("Add", [g.node("Unsqueeze", [q.name, g.const([2])]), g.node("Unsqueeze", [k.name, g.const([1])])])
        if isinstance(layer, AdditiveAttention):                           # sum_d w_d tanh(q + k)
            t = g.node("Tanh", [e])
            if layer.use_scale:
                t = g.node("Mul", [t, g.init(f32(p["scale"]), "scale")])
            s = g.reduce("ReduceSum", t, [3], keepdims=0)
        else:                                                              # c sum_d tanh(scale (q + k))
            if layer.use_scale:
                e = g.node("Mul", [e, g.init(f32(p["scale"]), "scale")])
            s = g.reduce("ReduceSum", g.node("Tanh", [e]), [3], keepdims=0)
            s = g.node("Mul", [s, g.init(f32(p["concat_score_weight"]), "concat_score_weight")])
    else:
        qw = g.node("MatMul", [q.name, g.init(f32(p["W"]), "W")]) if layer.score_mode == "general" else q.name
        s = g.node("MatMul", [qw, g.node("Transpose", [k.name], perm=[0, 2, 1])])      # (B, Tq, Tv)
        if layer.use_scale:
            s = g.node("Mul", [s, g.init(f32(p["scale"]), "scale")])
    hide = None
    if v.mask is not None:
        hide = g.node("Not", [g.node("Unsqueeze", [v.mask.mask, g.const([1])])])        # (B, 1, Tv)
    if causal:
        tq = g.node("Gather", [g.node("Shape", [q.name]), g.const(1)], axis=0)
        tv = g.node("Gather", [g.node("Shape", [k.name]), g.const(1)], axis=0)
        rq = g.node("Range", [g.const(0), tq, g.const(1)])
        rv = g.node("Range", [g.const(0), tv, g.const(1)])
        future = g.node("Greater", [g.node("Unsqueeze", [rv, g.const([0])]), g.node("Unsqueeze", [rq, g.const([1])])])
        future = g.node("Unsqueeze", [future, g.const([0])])                             # (1, Tq, Tv)
        hide = future if hide is None else g.node("Or", [hide, future])
    if hide is not None:
        s = g.node("Where", [hide, g.node("Sub", [s, g.const(NEG, np.float32)]), s])
    a = g.node("Softmax", [s], axis=-1)
    out = g.node("MatMul", [a, v.name])                                                  # (B, Tq, dv)
    if q.mask is not None:
        out = g.node("Where", [g.node("Unsqueeze", [q.mask.mask, g.const([2])]), out, g.const(0.0, np.float32)])
    outs = [_Flow(out, "seq", q.mask)]
    if return_scores:
        outs.append(_Flow(a, "seq"))
    return outs


def _graph_nodes(g, model, padding):
    """Every node of an lk.Model, in order; returns {id(tensor): _Flow}."""
    from ..layers.attention import Attention
    from ..layers.merge import Add, Average, Concatenate, Dot, Multiply, Subtract
    from ..layers.repeat_vector import RepeatVector
    from ..layers.time_distributed import TimeDistributed
    from ..layers.symbolic import flatten
    flows = {}
    for t, name in zip(model.inputs, model.input_names):
        flows[id(t)] = _Flow(name, "ids" if t.dtype.kind in "iu" else ("seq" if len(t.shape) == 3 else "vec"))
    for node in model._nodes:
        layer = node.layer
        args = [flows[id(t)] for t in flatten(node.args)]
        consts = node.const_kwargs
        if isinstance(layer, (RNNLayer, Bidirectional)):
            if isinstance(layer, Bidirectional) and layer.merge_mode is None:
                raise ExportError(f"Bidirectional {layer.name!r} has merge_mode=None")
            init = [_unshift(g, flows[id(t)]).name for t in flatten(node.tensor_kwargs.get("initial_state", []))]
            (fwd, bwd, mode), = _recurrent_levels(layer)
            x = args[0]
            if x.mask is not None and getattr(x.mask, "derived", False):
                raise ExportError(f"layer {layer.name!r} reads a mask made by merging others; the operators "
                                  f"take sequence lengths, which only an Embedding's padding gives here")
            out, states = _export_level(g, x, fwd, bwd, mode, init or None, graph=True)
            outs = [out] + states if layer.return_state else [out]
        elif isinstance(layer, Attention):
            outs = _attention_node(g, layer, [_unshift(g, f) for f in args],
                                   consts.get("return_attention_scores", False), consts.get("use_causal_mask", False))
        elif isinstance(layer, (Add, Subtract, Average, Multiply, Concatenate, Dot)):
            outs = [_merge_node(g, layer, [_unshift(g, f) for f in args])]
        elif isinstance(layer, RepeatVector):
            x = g.node("Unsqueeze", [args[0].name, g.const([1])])
            outs = [_Flow(g.node("Tile", [x, g.const([1, layer.n, 1])]), "seq")]
        elif isinstance(layer, TimeDistributed):
            if not isinstance(layer.layer, (Dense, Dropout)):
                raise ExportError(f"TimeDistributed {layer.name!r} wraps {type(layer.layer).__name__}; the export "
                                  f"covers TimeDistributed(Dense) and (Dropout)")
            out = _export_layer(g, layer.layer, args[0], padding)
            outs = [_Flow(out.name, out.kind, None)]                       # no mask after it, as Keras
        else:
            outs = [_export_layer(g, layer, args[0], padding)]
        for t, f in zip(node.outputs, outs):
            flows[id(t)] = f
    return flows


def _graph_to_onnx(model, g, padding, helper, TensorProto):
    ins = []
    for t, name in zip(model.inputs, model.input_names):
        dims = ["batch"] + [f"{name}_{i}" if d is None else int(d) for i, d in enumerate(t.shape[1:], 1)]
        elem = TensorProto.INT64 if t.dtype.kind in "iu" else TensorProto.FLOAT
        ins.append(helper.make_tensor_value_info(name, elem, dims))
    flows = _graph_nodes(g, model, padding)
    outs = []
    for t, name in zip(model.outputs, model.output_names):
        f = _unshift(g, flows[id(t)])
        g.nodes.append(helper.make_node("Identity", [f.name], [name]))
        dims = ["batch"] + [f"{name}_{i}" if d is None else int(d) for i, d in enumerate(t.shape[1:], 1)]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    return ins, outs


def _layers_of(model):
    from ..models.sequential import Sequential
    if isinstance(model, Sequential):
        return model.layers
    if isinstance(model, Layer):
        return [model]
    raise TypeError(f"export_onnx expects an lstmkit model or layer; got {type(model).__name__}")


def to_onnx(model, padding="post", opset=OPSET, name=None):
    """The model as an onnx.ModelProto (see the module docstring); checked with onnx.checker."""
    _require_onnx()
    import onnx
    from onnx import TensorProto, helper
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}; got {padding!r}")
    if not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an integer >= 17; got {opset!r}")
    if hasattr(model, "_nodes"):                                           # a functional lk.Model
        g = _Graph(opset)
        if padding == "pre" and _has_mask(model.layers):
            raise ExportError("the export of functional models covers post-padding (the real tokens first); "
                              "pre-padding is covered for Sequential models")
        ins, outs = _graph_to_onnx(model, g, padding, helper, TensorProto)
        graph = helper.make_graph(g.nodes, name or model.name, ins, outs, g.inits)
        opsets = [helper.make_opsetid("", opset)]
        proto = helper.make_model(graph, opset_imports=opsets, producer_name="lstmkit",
                                  ir_version=helper.find_min_ir_version_for(opsets))
        onnx.checker.check_model(proto, full_check=True)
        return proto
    layers = _layers_of(model)
    if not layers:
        raise ExportError(f"model {model.name!r} has no layers")
    if not getattr(model, "built", False) or model.input_shape is None:
        raise ExportError(f"model {model.name!r} is not built, so its input shape is unknown: give the "
                          f"first layer input_length/input_shape, or call build() or predict() once")
    g = _Graph(opset)
    in_shape = tuple(model.input_shape)
    fixed_time = any(isinstance(l, Flatten) for l in layers)
    time = in_shape[0] if fixed_time and in_shape and in_shape[0] is not None else "time"
    if isinstance(layers[0], Embedding):
        inp = helper.make_tensor_value_info("input", TensorProto.INT64, ["batch", time])
        flow = _Flow("input", "ids")
    else:
        if len(in_shape) != 2:
            raise ExportError(f"model {model.name!r} reads inputs of shape {(None,) + in_shape}; the export "
                              f"covers (batch, time, features) sequences and token ids")
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", time, int(in_shape[1])])
        flow = _Flow("input", "seq")
    for layer in layers:
        flow = _export_layer(g, layer, flow, padding)
    flow = _unshift(g, flow)
    g.nodes.append(helper.make_node("Identity", [flow.name], ["output"]))
    out_shape = list(model.compute_output_shape(in_shape))
    if flow.kind == "seq":
        out_shape[0] = time
    out_shape = ["batch"] + [d if isinstance(d, str) else (None if d is None else int(d)) for d in out_shape]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(g.nodes, name or model.name, [inp], [out], g.inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="lstmkit",
                              ir_version=helper.find_min_ir_version_for(opsets))
    if _has_mask(layers):
        helper.set_model_props(proto, {"lstmkit.padding": padding})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _has_mask(layers):
    return any(isinstance(l, Embedding) and l.mask_zero for l in layers)


def has_mask(model):
    """Whether the model reads padded sequences (an Embedding with mask_zero=True)."""
    if hasattr(model, "_nodes"):
        return _has_mask(model.layers)
    return _has_mask(_layers_of(model))


def _random_ids(rng, vocab, masked, padding, batch, T):
    x = rng.integers(1, vocab, size=(batch, T))
    if masked:
        for row, n in zip(x, rng.integers(1, T + 1, size=batch)):
            if padding == "post":
                row[n:] = 0
            else:
                row[:T - n] = 0
    return x.astype(np.int64)


def random_input(model, rng, padding="post", batch=8, length=20):
    """A batch the model reads: token ids in [1, vocabulary) -- padded with 0 at
    random lengths on the given side if the model masks -- or normal float
    sequences. The time length is the model's own where it has one. For a
    functional model, a dict by input name."""
    if hasattr(model, "_nodes"):
        feeds = {}
        for t, name in zip(model.inputs, model.input_names):
            shape = [length if d is None else d for d in t.shape[1:]]
            if t.dtype.kind in "iu":
                emb = next((n.layer for n in model._nodes if isinstance(n.layer, Embedding) and n.args is t), None)
                if emb is None:
                    raise ExportError(f"input {name!r} holds integers but no Embedding reads it")
                feeds[name] = _random_ids(rng, emb.input_dim, emb.mask_zero, padding, batch, shape[0])
            else:
                feeds[name] = rng.normal(size=[batch] + shape).astype(np.float32)
        return feeds
    layers = _layers_of(model)
    T = model.input_shape[0] if model.input_shape and model.input_shape[0] is not None else int(length)
    if isinstance(layers[0], Embedding):
        return _random_ids(rng, layers[0].input_dim, layers[0].mask_zero, padding, batch, T)
    return rng.normal(size=(batch, T, model.input_shape[-1])).astype(np.float32)


def export_onnx(model, path, padding="post", opset=OPSET):
    """Write the model to path as ONNX (see the module docstring). padding: where
    the padding id 0 sits in the sequences of a mask_zero model, "post" or "pre".
    Returns the path."""
    from .. import io
    proto = to_onnx(model, padding=padding, opset=opset)
    io.atomic_write_bytes(path, proto.SerializeToString())
    return path
