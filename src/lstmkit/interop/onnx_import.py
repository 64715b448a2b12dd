"""ONNX import: ``lk.from_onnx(path)`` reads a graph of the standard recurrent
operators into an lstmkit Sequential model.

What it reads: a graph with one input (token ids (B, T) feeding a Gather of an
embedding table, or float sequences) and one output, made of

    Gather(table, ids)                          -> Embedding
    LSTM / GRU / RNN                            -> LSTM / GRU / SimpleRNN (direction forward or
                                                   reverse), Bidirectional (direction bidirectional,
                                                   or a forward and a reverse node concatenated)
    Y -> Transpose/Squeeze/Reshape              -> return_sequences=True; merge of the directions
                                                   by concatenation or ReduceSum/Mean/Prod
    Y_h -> Transpose/Squeeze/Reshape, or Y[-1]  -> return_sequences=False
    Gemm, or MatMul [+ Add]  [+ activation]     -> Dense (Sigmoid, Tanh, Relu, Softmax)
    Flatten                                     -> Flatten
    Dropout, Identity, Cast                     -> nothing
    sequence_lens counted from the ids != 0     -> Embedding(mask_zero=True); pre-padded graphs
                                                   (ReverseSequence around the operators, as
                                                   lstmkit exports them) too
    Where(mask, Y, Y_h)                         -> zero_output_for_mask=False (lstmkit's export of
                                                   Keras's convention); the recurrent layers are
                                                   otherwise made with zero_output_for_mask=True,
                                                   because the operators output 0 past a length

with initial states left out or zeros (constants, or ConstantOfShape of a
shape computed from the input, as torch.onnx.export writes them), and the
shape arithmetic that goes with them. This is what torch.onnx.export (both
exporters) writes for Embedding -> nn.LSTM/GRU/RNN (stacked, bidirectional)
-> Linear, and what lstmkit's own export writes. Anything else -- another
operator, a graph that branches, a state other than zeros, clip, peepholes,
input_forget, other activations -- is refused with the node named.

A graph that reads time-major input (nn.LSTM's default batch_first=False)
becomes a model that reads (batch, time, ...): a warning says so.
"""
import warnings

import numpy as np

from ..layers import GRU, LSTM, SimpleRNN, Bidirectional, Dense, Embedding, Flatten
from .onnx import _require_onnx, reorder_gates

_CELLS = {"LSTM": LSTM, "GRU": GRU, "RNN": SimpleRNN}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softmax": "softmax"}


class OnnxImportError(ValueError):
    """The graph holds something lstmkit cannot rebuild."""


# ---- the values the interpreter tracks ---------------------------------------------------

class Const:
    def __init__(self, a):
        self.a = np.asarray(a)


class Dyn:
    """A value computed from a shape (sizes known only at run time)."""


class Zeros:
    """A tensor of zeros of a size computed at run time."""


class Data:
    """A tensor of the model's data path.

    kind: "ids" (B, T) | "seq" (B, T, F) or (T, B, F) | "vec" (B, F) | "Y", "Yh"
    (a recurrent node's outputs, axes named in `axes`) | "eq0", "mask", "lens"
    (the padding, from the ids).
    pos: how many layers the model had when this value was made; a layer may only
    be added on a value made after the last one (the model is a chain).
    """

    def __init__(self, kind, pos, **kw):
        self.kind, self.pos = kind, pos
        self.layout = kw.get("layout", "BT")     # seq: "BT" or "TB"
        self.frame = kw.get("frame", "normal")   # seq: normal | rev | front | front_rev | revop
        self.width = kw.get("width")
        self.level = kw.get("level")             # Y, Yh: the _Level
        self.axes = kw.get("axes")               # Y, Yh: axis names, e.g. ["T", "D", "B", "H"]
        self.merge = kw.get("merge")             # Y, Yh: merge mode once the directions were reduced
        self.dense = kw.get("dense")             # seq, vec: the Dense that made it (bias, activation may join)
        self.level_out = kw.get("level_out")     # seq: the _Level whose outputs these are directly
        self.parts = kw.get("parts")             # Yhs: the Yh of stacked levels, concatenated

    def but(self, **kw):
        """A copy with some fields changed; dense and level_out are not carried over unless given."""
        kind, pos = kw.pop("kind", self.kind), kw.pop("pos", self.pos)
        d = dict(layout=self.layout, frame=self.frame, width=self.width, level=self.level, axes=self.axes,
                 merge=self.merge, dense=None, level_out=None)
        d.update(kw)
        return Data(kind, pos, **d)


class _Level:
    """One recurrent operator (or a forward and a reverse one concatenated): the
    layers it becomes, added to the model once its outputs are used."""

    def __init__(self, node_name, layers, directions, pos, masked):
        self.node_name, self.layers, self.directions = node_name, layers, directions
        self.pos, self.masked = pos, masked
        self.frame = "normal"                     # the time frame of its input
        self.used = None                          # "sequences" or "state"
        self.added = None                         # the layer added to the model
        self.merged = None                        # a forward level: the level of it and its reverse partner


class _Importer:
    def __init__(self, proto):
        self.proto = proto
        self.graph = proto.graph
        self.values = {}
        self.layers = []
        self.input_time_major = False
        self.output_time_major = False
        self.embedding = None

    # ---- errors and helpers ----
    def fail(self, node, why):
        raise OnnxImportError(f"ONNX node {node.name or node.op_type!r} ({node.op_type}): {why}")

    def attrs(self, node):
        from onnx import helper
        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [s.decode() for s in v]
            out[a.name] = v
        return out

    def get(self, name):
        if name == "":
            return None
        if name not in self.values:
            raise OnnxImportError(f"tensor {name!r} is used before it is made (the graph is not in "
                                  f"topological order, or refers to an unknown tensor)")
        return self.values[name]

    def const(self, node, name, what):
        v = self.get(name)
        if not isinstance(v, Const):
            self.fail(node, f"{what} must be a constant")
        return v.a

    def data(self, node, value, kinds, what="input"):
        if not isinstance(value, Data) or value.kind not in kinds:
            self.fail(node, f"its {what} is not one lstmkit can follow here (expected {'/'.join(kinds)}, "
                            f"got {_describe(value)})")
        return value

    def add_layer(self, node, value, layer):
        """Append layer to the model; value is the tensor it reads (must be the chain's end)."""
        if value.pos != len(self.layers):
            self.fail(node, "the graph branches (it reads a tensor that an earlier layer made, "
                            "not the latest one); lstmkit builds a chain of layers (Sequential)")
        self.layers.append(layer)
        return len(self.layers)

    # ---- the walk ----
    def run(self):
        from onnx import numpy_helper
        g = self.graph
        inits = {t.name for t in g.initializer}
        for t in g.initializer:
            self.values[t.name] = Const(numpy_helper.to_array(t))
        if not any(n.op_type in _CELLS for n in g.node) and any(n.op_type == "MatMul" for n in g.node) \
                and sum(n.op_type in ("Tanh", "Sigmoid") for n in g.node) > 4:
            raise OnnxImportError("the graph has no LSTM, GRU or RNN operator but many per-step MatMul/Tanh "
                                  "nodes: an exporter unrolled the recurrence (torch.onnx.export(dynamo=True) "
                                  "does so for nn.RNN); export with dynamo=False to keep the operator")
        inputs = [i for i in g.input if i.name not in inits]
        if len(inputs) != 1 or len(g.output) != 1:
            raise OnnxImportError(f"the graph has {len(inputs)} inputs and {len(g.output)} outputs; an "
                                  f"lstmkit Sequential model has one of each")
        inp = inputs[0]
        tt = inp.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        is_int = tt.elem_type in (6, 7, 2, 3, 4, 5, 12, 13)           # the integer types
        self.input_dims = dims
        if is_int:
            if len(dims) != 2:
                raise OnnxImportError(f"the graph input {inp.name!r} holds integers of rank {len(dims)}; "
                                      f"token ids have shape (batch, time)")
            self.values[inp.name] = Data("ids", 0)
        else:
            if len(dims) != 3:
                raise OnnxImportError(f"the graph input {inp.name!r} has rank {len(dims)}; lstmkit reads "
                                      f"sequences (batch, time, features) or token ids (batch, time)")
            self.values[inp.name] = Data("seq", 0, width=dims[2])
        self.input_name = inp.name
        self.input_time_major = _time_major_input(g, inp.name)
        layout = "TB" if self.input_time_major else "BT"
        self.values[inp.name].layout = layout
        for node in g.node:
            self.step(node)
        out = self.get(g.output[0].name)
        if not isinstance(out, Data) or out.kind not in ("seq", "vec"):
            raise OnnxImportError(f"the graph output {g.output[0].name!r} is {_describe(out)}; expected the "
                                  f"model's output sequence or vectors")
        if out.pos != len(self.layers):
            raise OnnxImportError(f"the graph output {g.output[0].name!r} is not made by the last layer")
        if out.kind == "seq":
            if out.frame != "normal":
                raise OnnxImportError(f"the graph output {g.output[0].name!r} is left in a reordered time "
                                      f"frame ({out.frame})")
            self.output_time_major = out.layout == "TB"
        return self.build()

    def build(self):
        from ..models.sequential import Sequential
        if not self.layers:
            raise OnnxImportError("the graph holds no layer lstmkit recognises")
        dims = self.input_dims
        model = Sequential(self.layers)
        if isinstance(self.layers[0], Embedding):
            T = dims[0] if self.input_time_major else dims[1]
            model.build((T,))
        else:
            model.build((None, dims[2]))
        for layer in _all_layers(self.layers):
            weights = getattr(layer, "_onnx_weights", None)
            if weights is not None:
                _set_weights(layer, weights)
                del layer._onnx_weights
        if self.input_time_major:
            warnings.warn("the ONNX graph reads time-major input (time, batch, ...); the lstmkit model reads "
                          "(batch, time, ...): transpose the input", stacklevel=3)
        if self.output_time_major:
            warnings.warn("the ONNX graph writes time-major output (time, batch, ...); the lstmkit model "
                          "writes (batch, time, ...)", stacklevel=3)
        return model

    def step(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            self.fail(node, f"operator domain {node.domain!r} is not the standard one")
        ins = [self.get(n) for n in node.input]
        handler = getattr(self, "op_" + op, None)
        if op == "Constant":
            from onnx import numpy_helper
            a = node.attribute[0]
            if a.name == "value":
                val = numpy_helper.to_array(a.t)
            else:
                val = np.array(self.attrs(node)[a.name])
            self.values[node.output[0]] = Const(val)
            return
        data = [v for v in ins if isinstance(v, Data)]
        if not data:
            outs = self.fold(node, ins)
        elif handler is None:
            self.fail(node, f"{op} on the model's data is not among the operators lstmkit reads "
                            f"(see lstmkit.interop.onnx_import)")
        else:
            outs = handler(node, ins)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        for name, v in zip(node.output, outs):
            if name:
                self.values[name] = v

    # ---- constants, shapes, zeros ----
    def fold(self, node, ins):
        op, at = node.op_type, self.attrs(node)
        present = [v for v in ins if v is not None]
        if op == "ConstantOfShape":
            value = at.get("value")
            from onnx import numpy_helper
            v = 0.0 if value is None else numpy_helper.to_array(value).ravel()[0]
            if isinstance(ins[0], Const):
                return Const(np.full(tuple(int(d) for d in ins[0].a), v))
            return Zeros() if v == 0 else Dyn()
        if all(isinstance(v, Const) for v in present):
            try:
                return [Const(a) for a in _eval(op, [None if v is None else v.a for v in ins], at,
                                                 len(node.output))]
            except NotImplementedError:
                return [Dyn() for _ in node.output]
        zero = lambda v: isinstance(v, Zeros) or (isinstance(v, Const) and not np.any(v.a))
        if (op in _SHAPING and zero(ins[0])) or (op == "Concat" and all(map(zero, present))):
            return Zeros()                         # zeros moved, reshaped, expanded: still zeros
        return [Dyn() for _ in node.output]

    # ---- the data path ----
    def op_Identity(self, node, ins):
        return ins[0].but(dense=ins[0].dense, level_out=ins[0].level_out)

    op_Dropout = op_Identity

    def op_Cast(self, node, ins):
        v = ins[0]
        to = self.attrs(node)["to"]
        if v.kind == "ids" and to in (6, 7):
            return v
        if v.kind in ("mask", "eq0", "lens"):
            return v
        if v.kind in ("seq", "vec") and to in (1, 11):
            return v.but(dense=v.dense, level_out=v.level_out)
        self.fail(node, f"a cast of {_describe(v)} to type {to}")

    def op_Shape(self, node, ins):
        return Dyn()

    def op_Gather(self, node, ins):
        table, idx = ins
        axis = self.attrs(node).get("axis", 0)
        if isinstance(table, Const) and isinstance(idx, Data) and idx.kind == "ids":
            if table.a.ndim != 2 or axis != 0:
                self.fail(node, "an embedding lookup needs a (vocabulary, features) table gathered on axis 0")
            V, E = table.a.shape
            layer = Embedding(V, E, dtype=_float_dtype(table.a))
            layer._onnx_weights = {"embeddings": table.a}
            self.embedding = layer
            pos = self.add_layer(node, idx, layer)
            return Data("seq", pos, layout=idx.layout, width=E)
        v = self.data(node, table, ("seq", "Yh", "Y", "Yhs"))
        i = self.const(node, node.input[1], "the index")
        if i.ndim != 0:
            self.fail(node, "only a single index (a scalar) is read")
        i = int(i)
        if v.kind == "Yhs":
            n_last = len(v.parts[-1].level.layers)
            total = sum(len(p.level.layers) for p in v.parts)
            if axis != 0 or i not in (-1, total - 1):
                self.fail(node, "only the last layer's final state is read from stacked final states")
            if n_last != 1:
                self.fail(node, "one direction's final state of a bidirectional layer (h_n[-1] is the "
                                "backward direction's) has no lstmkit equivalent")
            v = v.parts[-1]
        if v.kind == "seq":
            time_axis = 1 if v.layout == "BT" else 0
            if axis not in (time_axis, time_axis - 3):
                self.fail(node, f"a gather on axis {axis} of a sequence; only the last step is read")
            T = self._time_dim()
            if i != -1 and not (T is not None and i == T - 1):
                self.fail(node, f"index {i} on the time axis; only the last step (-1) is read")
            lvl = v.level_out
            if lvl is None or v.frame != "normal":
                self.fail(node, "the last step of a sequence lstmkit reads only straight from a recurrent "
                                "layer's outputs")
            if len(lvl.layers) != 1 or lvl.directions[0] != "forward":
                self.fail(node, "the last output step of a bidirectional or reverse layer is not its final "
                                "state (the backward direction's last output is its first step); lstmkit's "
                                "return_sequences=False returns the final states, so this has no equivalent")
            if lvl.added is None or lvl.added is not self.layers[-1] or v.pos != len(self.layers):
                self.fail(node, "the recurrent layer's outputs are used elsewhere too")
            lvl.added.return_sequences = False
            return Data("vec", v.pos, width=lvl.added.units)
        if v.kind == "Yh":
            d_axis = v.axes.index("D")
            if axis not in (d_axis, d_axis - len(v.axes)):
                self.fail(node, f"a gather on axis {axis} of the final states")
            n = len(v.level.layers) if v.merge is None else 1
            if n != 1:
                self.fail(node, "one direction's final state of a bidirectional layer (h_n[-1] is the "
                                "backward direction's) has no lstmkit equivalent")
            axes = [a for a in v.axes if a != "D"]
            return self._finish_state(node, v, axes)
        self.fail(node, "a gather of a recurrent node's output sequence; read it through Transpose/Reshape")

    def _time_dim(self):
        dims = self.input_dims
        return dims[0] if self.input_time_major else dims[1]

    def op_Transpose(self, node, ins):
        v = self.data(node, ins[0], ("seq", "Y", "Yh"))
        perm = list(self.attrs(node).get("perm", []))
        if v.kind == "seq":
            if perm != [1, 0, 2]:
                self.fail(node, f"a transpose {perm} of a sequence; only swapping batch and time is read")
            return v.but(layout="TB" if v.layout == "BT" else "BT", level_out=v.level_out)
        if len(perm) != len(v.axes):
            self.fail(node, f"perm {perm} does not fit rank {len(v.axes)}")
        return v.but(axes=[v.axes[p] for p in perm])

    def op_Squeeze(self, node, ins):
        v = self.data(node, ins[0], ("Y", "Yh"))
        axes = self.attrs(node).get("axes")
        if axes is None:
            axes = [] if len(node.input) < 2 else self.const(node, node.input[1], "axes").tolist()
        axes = [a % len(v.axes) for a in np.atleast_1d(axes)]
        if [v.axes[a] for a in axes] != ["D"]:
            self.fail(node, "only the directions axis of a recurrent output is squeezed")
        if v.merge is None and len(v.level.layers) != 1:
            self.fail(node, "a squeeze of the directions axis of a bidirectional output")
        rest = [a for a in v.axes if a != "D"]
        if v.kind == "Y":
            return self._finish_sequence(node, v, rest)
        return self._finish_state(node, v, rest)

    def op_Reshape(self, node, ins):
        v = self.data(node, ins[0], ("Y", "Yh", "seq"))
        shape = self.get(node.input[1])
        target = shape.a.tolist() if isinstance(shape, Const) else None
        if v.kind == "seq":
            self.fail(node, "a reshape of a sequence (use Flatten)")
        rank = 3 if v.kind == "Y" else 2
        if target is not None and len(target) != rank:
            self.fail(node, f"a reshape of a recurrent output to rank {len(target)}; expected {rank}")
        if target is None and rank != 3:
            self.fail(node, "a reshape to a shape computed at run time")
        if v.kind == "Y":
            keep = [a for a in v.axes if a in ("T", "B")]
            if v.axes[2:] != ["D", "H"] or len(keep) != 2:
                self.fail(node, "a reshape of a recurrent output whose axes are not (time/batch, batch/time, "
                                "directions, hidden)")
            return self._finish_sequence(node, v, keep + ["H"], concat=True, target=target)
        if v.axes[1:] == ["D", "H"] and v.axes[0] == "B":
            return self._finish_state(node, v, ["B", "H"], concat=True, target=target)
        if v.axes == ["D", "B", "H"] and (v.merge is not None or len(v.level.layers) == 1):
            return self._finish_state(node, v, ["B", "H"], target=target)
        self.fail(node, "a reshape of the final states that does not give (batch, directions * hidden)")

    def _reduce(self, node, ins, mode):
        v = self.data(node, ins[0], ("Y", "Yh", "mask"))
        at = self.attrs(node)
        axes = at.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.const(node, node.input[1], "axes").tolist()
        keep = at.get("keepdims", 1)
        if v.kind == "mask":
            if mode != "sum" or list(np.atleast_1d(axes)) not in ([1], [-1]) or keep:
                self.fail(node, "the padding mask is read only as a count of the real steps (ReduceSum on "
                                "axis 1)")
            return Data("lens", v.pos)
        axes = [a % len(v.axes) for a in np.atleast_1d(axes)] if axes is not None else None
        if axes is None or [v.axes[a] for a in axes] != ["D"]:
            self.fail(node, "only the directions axis of a recurrent output is reduced")
        if v.merge is not None or len(v.level.layers) != 2:
            self.fail(node, "a reduction over the directions of a one-direction output")
        if keep:
            return v.but(merge=mode)
        rest = [a for a in v.axes if a != "D"]
        v = v.but(merge=mode)
        return self._finish_sequence(node, v, rest) if v.kind == "Y" else self._finish_state(node, v, rest)

    def op_ReduceSum(self, node, ins):
        return self._reduce(node, ins, "sum")

    def op_ReduceMean(self, node, ins):
        return self._reduce(node, ins, "ave")

    def op_ReduceProd(self, node, ins):
        return self._reduce(node, ins, "mul")

    def op_Concat(self, node, ins):
        axis = self.attrs(node)["axis"]
        vals = [v for v in ins if v is not None]
        if (len(vals) >= 2 and all(isinstance(v, Data) and v.kind == "Yh" and v.axes == ["D", "B", "H"]
                                   for v in vals) and axis in (0, -3)
                and len({v.level.pos for v in vals}) == len(vals)):
            # the final states of stacked layers, as torch's h_n (layers * dirs, B, H): only
            # the last entry can be read (h_n[-1])
            return Data("Yhs", vals[-1].pos, parts=vals)
        if len(vals) == 2 and all(isinstance(v, Data) and v.kind in ("Y", "Yh") for v in vals):
            a, b = vals
            if a.kind != b.kind or a.axes != b.axes or a.axes[axis % len(a.axes)] != "D":
                self.fail(node, "a concatenation of recurrent outputs that is not along their directions axis")
            la, lb = a.level, b.level
            if la.directions != ["forward"] or lb.directions != ["reverse"] or la.pos != lb.pos:
                self.fail(node, "two recurrent nodes concatenated must be a forward and a reverse one over "
                                "the same input")
            if la.merged is None or la.merged is not lb.merged:
                if la.merged is not None or lb.merged is not None or la.used or lb.used:
                    self.fail(node, "a recurrent node read both alone and concatenated with another")
                la.merged = lb.merged = _merge_levels(la, lb)
            return a.but(level=la.merged)
        self.fail(node, "a concatenation of data tensors lstmkit cannot follow (a functional model?)")

    def op_Equal(self, node, ins):
        a, b = ins
        if isinstance(a, Data) and a.kind == "ids" and isinstance(b, Const) and np.all(b.a == 0):
            return Data("eq0", a.pos)
        self.fail(node, "a comparison other than ids == 0 (padding)")

    def op_Unsqueeze(self, node, ins):
        v = self.data(node, ins[0], ("mask",))
        axes = self.attrs(node).get("axes")
        if axes is None:
            axes = self.const(node, node.input[1], "axes")
        if list(np.atleast_1d(axes)) not in ([2], [-1]):
            self.fail(node, "the padding mask is read unsqueezed on its last axis only")
        return Data("mask3", v.pos)

    def op_Where(self, node, ins):
        """Where(mask (B, T, 1), outputs, last output (B, 1, H)): a masked step repeats the
        last real output -- Keras's zero_output_for_mask=False, post-padded, as lstmkit exports it."""
        cond, seq, last = ins
        self.data(node, cond, ("mask3",), "condition")
        seq = self.data(node, seq, ("seq",), "outputs")
        last = self.data(node, last, ("Yh",), "fill")
        lvl = seq.level_out
        if (lvl is None or last.level is not lvl or lvl.directions != ["forward"] or seq.layout != "BT"
                or seq.frame != "normal" or last.axes != ["B", "D", "H"]):
            self.fail(node, "a Where lstmkit reads only as a one-way layer's masked steps repeating its "
                            "last real output")
        lvl.added.zero_output_for_mask = False
        return seq.but(level_out=lvl)

    def op_Not(self, node, ins):
        v = self.data(node, ins[0], ("eq0",))
        return Data("mask", v.pos)

    def op_Slice(self, node, ins):
        v = self.data(node, ins[0], ("seq",))
        starts, ends = (self.const(node, n, "slice bounds") for n in node.input[1:3])
        axes = self.const(node, node.input[3], "axes") if len(node.input) > 3 and node.input[3] else None
        steps = self.const(node, node.input[4], "steps") if len(node.input) > 4 and node.input[4] else None
        time_axis = 1 if v.layout == "BT" else 0
        ok = (steps is not None and steps.tolist() == [-1] and starts.tolist() == [-1]
              and ends.tolist()[0] <= -(2 ** 31) and axes is not None and int(axes[0]) % 3 == time_axis)
        if not ok:
            self.fail(node, "a slice of a sequence other than reversing its time axis")
        nxt = {"normal": "rev", "front_rev": "normal", "revop": "normal"}.get(v.frame)
        if nxt is None:
            self.fail(node, f"a time reversal of a sequence in the {v.frame!r} frame")
        return v.but(frame=nxt)

    def op_ReverseSequence(self, node, ins):
        v = self.data(node, ins[0], ("seq",))
        self.data(node, ins[1], ("lens",), "sequence lengths")              # checked: the padding counts
        at = self.attrs(node)
        if (at.get("batch_axis", 1), at.get("time_axis", 0)) != ((0, 1) if v.layout == "BT" else (1, 0)):
            self.fail(node, "batch and time axes that do not fit the sequence")
        nxt = {"rev": "front", "front": "front_rev"}.get(v.frame)
        if nxt is None:
            self.fail(node, f"a ReverseSequence in the {v.frame!r} frame (lstmkit reads the pre-padding "
                            f"pattern of its own export)")
        return v.but(frame=nxt)

    # ---- Dense ----
    def _dense(self, node, x, W, b, use_bias):
        v = self.data(node, x, ("seq", "vec"))
        D, U = W.shape
        if v.width is not None and v.width != D:
            self.fail(node, f"weights of shape {W.shape} on {v.width} features")
        layer = Dense(U, use_bias=use_bias, dtype=_float_dtype(W), input_dim=D)
        layer._onnx_weights = {"W": W, "b": np.zeros(U, W.dtype) if b is None else b}
        layer._onnx_bias_set = b is not None
        pos = self.add_layer(node, v, layer)
        return v.but(pos=pos, width=U, dense=layer, level=None, axes=None)

    def op_Gemm(self, node, ins):
        at = self.attrs(node)
        if at.get("transA", 0):
            self.fail(node, "transA=1")
        W = self.const(node, node.input[1], "the weight matrix")
        W = W.T if at.get("transB", 0) else W
        W = W * at.get("alpha", 1.0)
        b = None
        if len(node.input) > 2 and node.input[2]:
            b = self.const(node, node.input[2], "the bias") * at.get("beta", 1.0)
            if b.size not in (1, W.shape[1]) or (b.ndim == 2 and b.shape[0] != 1):
                self.fail(node, f"a bias of shape {b.shape} for {W.shape[1]} units")
            b = np.broadcast_to(b.reshape(-1), (W.shape[1],)).astype(W.dtype)
        return self._dense(node, ins[0], W, b, b is not None)

    def op_MatMul(self, node, ins):
        W = self.const(node, node.input[1], "the right-hand side (weights)")
        if W.ndim != 2:
            self.fail(node, f"weights of rank {W.ndim}")
        return self._dense(node, ins[0], W, None, True)

    def op_Add(self, node, ins):
        v = next((x for x in ins if isinstance(x, Data)), None)
        c = next((x for x in ins if isinstance(x, Const)), None)
        dense = getattr(v, "dense", None)
        if dense is None or c is None or dense is not self.layers[-1] or v.pos != len(self.layers):
            self.fail(node, "an addition lstmkit reads only as the bias of a MatMul just before it")
        if dense.activation != "linear" or dense._onnx_bias_set:
            self.fail(node, "a second bias, or a bias after the activation")
        b = c.a.reshape(-1)
        if b.size != dense.units:
            self.fail(node, f"a bias of shape {c.a.shape} for {dense.units} units")
        dense._onnx_weights["b"] = dense._onnx_weights["b"] + b
        dense._onnx_bias_set = True
        return v.but(dense=dense)

    def _activation(self, node, ins):
        v = self.data(node, ins[0], ("seq", "vec"))
        dense = v.dense
        if dense is None or dense is not self.layers[-1] or v.pos != len(self.layers) \
                or dense.activation != "linear":
            self.fail(node, "an activation lstmkit reads only right after a Dense (Gemm or MatMul [+ Add])")
        if node.op_type == "Softmax":
            axis = self.attrs(node).get("axis", -1)
            rank = 3 if v.kind == "seq" else 2
            if axis % rank != rank - 1:
                self.fail(node, f"softmax over axis {axis}; lstmkit's is over the features (last axis)")
        dense.activation = _ACTIVATIONS[node.op_type]
        return v.but()

    op_Sigmoid = op_Tanh = op_Relu = op_Softmax = _activation

    def op_Flatten(self, node, ins):
        v = self.data(node, ins[0], ("seq", "vec"))
        if self.attrs(node).get("axis", 1) != 1:
            self.fail(node, "Flatten with axis other than 1")
        if v.kind == "vec":
            return v.but()
        if v.layout != "BT" or v.frame != "normal":
            self.fail(node, "Flatten of a time-major or reordered sequence")
        pos = self.add_layer(node, v, Flatten())
        T = self._time_dim()
        return Data("vec", pos, width=None if T is None or v.width is None else T * v.width)

    # ---- the recurrent operators ----
    def op_RNN(self, node, ins):
        op, at = node.op_type, self.attrs(node)
        x = self.data(node, ins[0], ("seq",))
        if x.layout != "TB":
            self.fail(node, "its input is batch-major; the operator reads (time, batch, features)")
        if at.get("layout", 0) != 0:
            self.fail(node, "layout=1 (batch-major recurrent operators)")
        for key in ("clip", "activation_alpha", "activation_beta"):
            if key in at:
                self.fail(node, f"attribute {key} has no lstmkit equivalent")
        if at.get("input_forget", 0):
            self.fail(node, "input_forget=1 (coupled input and forget gates) has no lstmkit equivalent")
        direction = at.get("direction", "forward")
        n_dirs = 2 if direction == "bidirectional" else 1
        acts = at.get("activations")
        if op == "RNN":
            acts = acts or ["Tanh"] * n_dirs
            if len(set(acts)) != 1 or acts[0] not in ("Tanh", "Relu"):
                self.fail(node, f"activations {acts}; lstmkit's SimpleRNN has tanh or relu")
        elif acts is not None and acts != _DEFAULT_ACTS[op] * n_dirs:
            self.fail(node, f"activations {acts}; lstmkit's {op} has {_DEFAULT_ACTS[op]}")
        W = self.const(node, node.input[1], "W")
        R = self.const(node, node.input[2], "R")
        B = ins[3].a if len(ins) > 3 and ins[3] is not None else None
        if len(ins) > 3 and ins[3] is not None and not isinstance(ins[3], Const):
            self.fail(node, "B must be a constant")
        lens = ins[4] if len(ins) > 4 else None
        masked = False
        if lens is not None:
            if not (isinstance(lens, Data) and lens.kind == "lens"):
                self.fail(node, f"sequence_lens is {_describe(lens)}; lstmkit reads lengths only as the count "
                                f"of non-zero ids (an Embedding with mask_zero=True)")
            if self.embedding is None:
                self.fail(node, "sequence lengths without an embedding of token ids")
            self.embedding.mask_zero = True
            masked = True
        if x.frame not in ("normal", "front") or (x.frame == "front" and not masked):
            self.fail(node, f"its input is in a reordered time frame ({x.frame})")
        for k in range(5, len(ins)):
            s = ins[k]
            if s is None:
                continue
            zero = isinstance(s, Zeros) or (isinstance(s, Const) and not np.any(s.a))
            if not zero:
                what = "P (peepholes)" if k == 7 else "the initial state"
                self.fail(node, f"{what} is not zeros; lstmkit's layers start from zero states here")
        H = at["hidden_size"]
        G = W.shape[1] // H
        cls = _CELLS[op]
        options = {}
        if op == "GRU":
            options["reset_after"] = bool(at.get("linear_before_reset", 0))
        if op == "RNN":
            options["activation"] = acts[0].lower()
        if op == "LSTM":
            options["unit_forget_bias"] = False
        D = W.shape[2]
        dtype = _float_dtype(W)
        dirs = ["forward", "reverse"] if n_dirs == 2 else [direction]
        layers = []
        for d, name in enumerate(dirs):
            # zero_output_for_mask: the operators output 0 past a sequence's length
            layer = cls(H, return_sequences=True, go_backwards=name == "reverse", use_bias=B is not None,
                        two_biases=B is not None, dtype=dtype, input_dim=D, zero_output_for_mask=True,
                        **options)
            w = {"W_x": reorder_gates(W[d].T, cls, H, inverse=True),               # (D, GH)
                 "W_h": reorder_gates(R[d].T, cls, H, inverse=True)}               # (H, GH)
            if B is not None:
                w["b_x"] = reorder_gates(B[d][:G * H], cls, H, inverse=True)
                w["b_h"] = reorder_gates(B[d][G * H:], cls, H, inverse=True)
            layer._onnx_weights = w
            layers.append(layer)
        if x.pos != len(self.layers):
            self.fail(node, "the graph branches (it reads a tensor an earlier layer made); lstmkit builds "
                            "a chain of layers (Sequential)")
        level = _Level(node.name, layers, dirs, x.pos, masked)
        level.frame = x.frame
        if len(node.output) > 2 and node.output[2]:
            self.values[node.output[2]] = Data("Yc", x.pos)          # using the cell state is refused
        return [Data("Y", x.pos, axes=["T", "D", "B", "H"], level=level),
                Data("Yh", x.pos, axes=["D", "B", "H"], level=level)]

    op_LSTM = op_GRU = op_RNN

    def _level_layer(self, node, v, used):
        """The layer a recurrent level becomes, added to the model (once)."""
        level = v.level
        if level.merged is not None:
            self.fail(node, "a recurrent node read both alone and concatenated with another")
        if level.used is not None and level.used != used:
            self.fail(node, "both the output sequence and the final state of a recurrent layer are used; "
                            "a Sequential layer gives one of them")
        if level.added is not None:
            self.fail(node, "a recurrent layer's outputs are read twice")
        level.used = used
        if len(level.layers) == 1:
            layer = level.layers[0]
        else:
            merge = v.merge or "concat"
            layer = Bidirectional(level.layers[0], merge_mode=merge, backward_layer=level.layers[1])
        for l in level.layers:
            l.return_sequences = used == "sequences"
        if isinstance(layer, Bidirectional):
            layer.return_sequences = used == "sequences"
        pos = self.add_layer(node, Data("seq", level.pos), layer)
        level.added = layer
        return level, layer, pos

    def _finish_sequence(self, node, v, axes, concat=False, target=None):
        """Y with its directions merged -> the layer's output sequence, (T, B, F) or (B, T, F)."""
        n = len(v.level.layers)
        if n == 2 and v.merge is None and not concat:
            self.fail(node, "the two directions are neither concatenated nor reduced")
        level, layer, pos = self._level_layer(node, v, "sequences")
        H = level.layers[0].units
        width = 2 * H if n == 2 and v.merge is None else H
        if target is not None and target[-1] not in (-1, width):
            self.fail(node, f"a reshape to {target}; expected the last axis to hold {width}")
        layout = "TB" if axes[0] == "T" else "BT"
        frame = level.frame
        if level.directions == ["reverse"]:
            if frame != "normal":
                self.fail(node, "a reverse-direction layer with padding outside a Bidirectional")
            frame = "revop"          # lstmkit's go_backwards layer returns these reversed
        return Data("seq", pos, layout=layout, frame=frame, width=width, level_out=level)

    def _finish_state(self, node, v, axes, concat=False, target=None):
        level, layer, pos = self._level_layer(node, v, "state")
        H = level.layers[0].units
        n = len(level.layers)
        width = 2 * H if n == 2 and v.merge is None else H
        if target is not None and target[-1] not in (-1, width):
            self.fail(node, f"a reshape to {target}; expected the last axis to hold {width}")
        return Data("vec", pos, width=width)


def _time_major_input(graph, name):
    """Whether the graph input reaches the first recurrent node without a
    transpose: then it is time-major (nn.LSTM's batch_first=False)."""
    same = {name}
    for node in graph.node:
        if node.op_type in _CELLS:
            return node.input[0] in same
        if node.op_type not in ("Transpose", "Shape") and any(i in same for i in node.input):
            same.update(node.output)
    return False


def _merge_levels(forward, reverse):
    level = _Level(forward.node_name, forward.layers + reverse.layers, ["forward", "reverse"], forward.pos,
                   forward.masked)
    level.frame = forward.frame
    return level


def _describe(v):
    if isinstance(v, Data):
        return {"ids": "the token ids", "seq": "a sequence", "vec": "vectors (batch, features)",
                "Y": "a recurrent node's output sequence", "Yh": "a recurrent node's final states",
                "Yc": "an LSTM node's final cell state", "eq0": "a padding test", "mask": "the padding mask",
                "lens": "the sequence lengths", "mask3": "the padding mask", "Yhs": "the final states of stacked layers"}[v.kind]
    if isinstance(v, Const):
        return f"a constant of shape {v.a.shape}"
    if isinstance(v, Zeros):
        return "zeros"
    if v is None:
        return "absent"
    return "a value computed from shapes"


def _all_layers(layers):
    for layer in layers:
        yield layer
        if hasattr(layer, "sublayers"):
            yield from _all_layers([sub for _, sub in layer.sublayers()])


def _float_dtype(a):
    return "float64" if a.dtype == np.float64 else "float32"


def _set_weights(layer, weights):
    layer.set_weights({k: np.asarray(v, layer.dtype) for k, v in weights.items()})


# ---- constant folding (shape arithmetic) --------------------------------------------------

_SHAPING = {"Slice", "Reshape", "Unsqueeze", "Squeeze", "Expand", "Transpose", "Identity", "Cast", "Gather",
            "Tile"}


def _eval(op, xs, at, n_out):
    """A few operators on constants, enough for the shape arithmetic exporters write."""
    if op == "Identity":
        return [xs[0]]
    if op == "Cast":
        from onnx import helper
        return [xs[0].astype(helper.tensor_dtype_to_np_dtype(at["to"]))]
    if op == "Unsqueeze":
        axes = at.get("axes", xs[1] if len(xs) > 1 else None)
        out = xs[0]
        for a in sorted(int(a) % (out.ndim + len(np.atleast_1d(axes))) for a in np.atleast_1d(axes)):
            out = np.expand_dims(out, a)
        return [out]
    if op == "Squeeze":
        axes = at.get("axes", xs[1] if len(xs) > 1 else None)
        return [np.squeeze(xs[0]) if axes is None else np.squeeze(xs[0], tuple(int(a) for a in np.atleast_1d(axes)))]
    if op == "Concat":
        return [np.concatenate([x for x in xs if x is not None], axis=at["axis"])]
    if op == "Gather":
        return [np.take(xs[0], xs[1], axis=at.get("axis", 0))]
    if op == "Reshape":
        shape = [s if s != 0 else xs[0].shape[i] for i, s in enumerate(xs[1].tolist())]
        return [xs[0].reshape(shape)]
    if op == "Transpose":
        return [np.transpose(xs[0], at.get("perm"))]
    if op in ("Add", "Sub", "Mul", "Div"):
        f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        return [f(xs[0], xs[1])]
    if op == "Neg":
        return [-xs[0]]
    raise NotImplementedError(op)


def from_onnx(path_or_proto):
    """An lstmkit Sequential from an ONNX file (or onnx.ModelProto) of the operators
    listed in this module's docstring, with the weights it holds."""
    _require_onnx()
    import onnx
    proto = path_or_proto
    if not isinstance(proto, onnx.ModelProto):
        try:
            proto = onnx.load(str(path_or_proto))
        except FileNotFoundError:
            raise OnnxImportError(f"{path_or_proto}: no such file") from None
        except Exception as e:                   # a protobuf decode error: not an ONNX file
            raise OnnxImportError(f"{path_or_proto}: not an ONNX model ({type(e).__name__}: {e})") from None
    return _Importer(proto).run()
