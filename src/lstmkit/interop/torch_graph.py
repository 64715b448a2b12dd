"""Functional models (lk.Model) to and from PyTorch: the graph of layer calls
as a torch.nn.Module that runs the same calls in the same order.

TorchGraph keeps one block per lstmkit layer (a shared layer is one block,
called at each of its nodes) and the wiring of the nodes: which tensors each
call reads (arguments and initial_state), the constant keyword arguments
(return_attention_scores, use_causal_mask), which tensors it makes. Masks
travel with the tensors as in lstmkit (Keras 3's rules), computed in torch.

Blocks beyond those of Sequential models (torch_model.py):

    Attention, AdditiveAttention   the scores, the value mask (-1e9), softmax, dropout in
                                   training, the query mask zeroing output rows
    Concatenate, Add, Subtract,    torch.cat / + / - / mean / * with Keras's rank rule and
    Average, Multiply, Dot         masks (Multiply treats a masked step as 1); Dot with
                                   axes and normalize
    RepeatVector, TimeDistributed  expand; the inner block on the (B*T, ...) steps
    LSTM/GRU/SimpleRNN,            as in Sequential models, plus initial_state (a
    Bidirectional                  Bidirectional's flat [h_f, c_f, h_b, c_b]) and
                                   return_state
"""
import json

import numpy as np
import torch
from torch import nn

from ..layers import Bidirectional, Dense, Dropout, Embedding, Flatten, RNNStack
from ..layers.attention import AdditiveAttention, Attention
from ..layers.base import layer_from_config, serialize_layer
from ..layers.merge import Add, Average, Concatenate, Dot, Multiply, Subtract
from ..layers.recurrent import RNNLayer
from ..layers.repeat_vector import RepeatVector
from ..layers.symbolic import InputLayer, map_structure
from ..layers.time_distributed import TimeDistributed
from .torch_model import RecurrentBlock, _blocks, _fill, _leaves, _numpy, _tensor, recurrent_levels

NEG = 1.0e9


class _Block(nn.Module):
    """A graph block: call(args, masks, **const_kwargs) -> (outputs, output masks), lists."""

    def lstmkit_weights(self):
        return [{}]


class SimpleBlock(_Block):
    """A Sequential block (one tensor in, one out) in a graph."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x, mask, **kw):
        out, m = self.inner(x, mask)
        return [out], [m]

    def lstmkit_weights(self):
        return self.inner.lstmkit_weights()


class RecurrentLayerBlock(_Block):
    """One LSTM/GRU/SimpleRNN or Bidirectional call, with initial_state and return_state."""

    def __init__(self, layer, dtype):
        super().__init__()
        (fwd, bwd, mode), = recurrent_levels(layer)
        self.level = RecurrentBlock(fwd, bwd, mode, dtype, allow_state=True)
        self.return_state = fwd.return_state
        self.n_states = len(fwd.state_names)

    def call(self, x, mask, initial_state=None, **kw):
        out, out_mask, states = self.level.run(x, mask, initial_state)
        if not self.return_state:
            return [out], [out_mask]
        return [out, *states], [out_mask] + [None] * len(states)

    def lstmkit_weights(self):
        return self.level.lstmkit_weights()


class AttentionBlock(_Block):
    def __init__(self, layer, dtype):
        super().__init__()
        self.additive = isinstance(layer, AdditiveAttention)
        self.score_mode = "additive" if self.additive else layer.score_mode
        self.use_scale = layer.use_scale
        self.dropout = layer.dropout
        self.names = list(layer.params)
        self.weights_ = nn.ParameterDict({k: nn.Parameter(_tensor(v, layer.dtype).clone())      # its own copy
                                        for k, v in layer.params.items()})

    def _scores(self, q, k):
        p = self.weights_
        if self.additive:
            t = torch.tanh(q[:, :, None, :] + k[:, None, :, :])                       # (B, Tq, Tv, d)
            return (t * p["scale"]).sum(-1) if self.use_scale else t.sum(-1)
        if self.score_mode == "concat":
            e = q[:, :, None, :] + k[:, None, :, :]
            u = p["scale"] * e if self.use_scale else e
            return p["concat_score_weight"] * torch.tanh(u).sum(-1)
        qw = q @ p["W"] if self.score_mode == "general" else q
        s = qw @ k.transpose(1, 2)                                                     # (B, Tq, Tv)
        return s * p["scale"] if self.use_scale else s

    def call(self, xs, masks, return_attention_scores=False, use_causal_mask=False, **kw):
        q, v = xs[0], xs[1]
        k = xs[2] if len(xs) == 3 else v
        q_mask, v_mask = (list(masks) + [None, None])[:2]
        s = self._scores(q, k)
        hide = None
        if v_mask is not None:
            hide = ~v_mask[:, None, :]
        if use_causal_mask:
            Tq, Tv = s.shape[1:]
            future = torch.arange(Tv)[None, :] > torch.arange(Tq)[:, None]
            hide = future[None] if hide is None else (hide | future[None])
        if hide is not None:
            s = torch.where(hide, s - NEG, s)
        a = torch.softmax(s, dim=-1)
        if self.training and self.dropout > 0:
            a = nn.functional.dropout(a, self.dropout, training=True)
        out = a @ v
        if q_mask is not None:
            out = torch.where(q_mask[:, :, None], out, torch.zeros((), dtype=out.dtype))
        outs = [out, a] if return_attention_scores else [out]
        return outs, [q_mask] + [None] * (len(outs) - 1)

    def lstmkit_weights(self):
        return [{k: _numpy(v) for k, v in self.weights_.items()}]


def _expand_ranks(xs):
    n = max(x.dim() for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (n - x.dim()) + x.shape[1:]) for x in xs]


class MergeBlock(_Block):
    def __init__(self, layer):
        super().__init__()
        self.kind = type(layer).__name__
        self.axis = getattr(layer, "axis", None)
        self.axes = getattr(layer, "axes", None)
        self.normalize = getattr(layer, "normalize", False)

    def call(self, xs, masks, **kw):
        masks = list(masks) if masks is not None else [None] * len(xs)
        if self.kind == "Concatenate":
            out = torch.cat(list(xs), dim=self.axis)
            return [out], [self._concat_mask(xs, masks)]
        if self.kind == "Dot":
            return [self._dot(*xs)], [None]
        ys = _expand_ranks(list(xs))
        if self.kind == "Multiply":
            factors = []
            for y, m in zip(ys, masks):
                if m is not None:
                    m = m[..., None].expand_as(y)
                    y = torch.where(m, y, torch.ones((), dtype=y.dtype))
                factors.append(y)
            out = factors[0]
            for y in factors[1:]:
                out = out * y
            if all(m is not None for m in masks):
                keep = masks[0]
                for m in masks[1:]:
                    keep = keep | m
                out = torch.where(keep[..., None].expand_as(out), out, torch.zeros((), dtype=out.dtype))
        else:
            out = ys[0]
            for y in ys[1:]:
                out = out - y if self.kind == "Subtract" else out + y
            if self.kind == "Average":
                out = out / len(ys)
        mask = None
        if masks and all(m is not None for m in masks):
            mask = masks[0]
            for m in masks[1:]:
                mask = mask | m
        return [out], [mask]

    def _concat_mask(self, xs, masks):
        if all(m is None for m in masks):
            return None
        full = []
        for x, m in zip(xs, masks):
            if m is None:
                full.append(torch.ones(x.shape, dtype=torch.bool))
            else:
                full.append(m[..., None].expand(x.shape) if m.dim() < x.dim() else m)
        return torch.cat(full, dim=self.axis).any(dim=-1)

    def _dot(self, a, b):
        pair = [self.axes, self.axes] if isinstance(self.axes, int) else list(self.axes)
        a1, a2 = [ax % r for ax, r in zip(pair, (a.dim(), b.dim()))]
        if self.normalize:
            a = a / torch.sqrt(torch.clamp((a * a).sum(a1, keepdim=True), min=1e-14))
            b = b / torch.sqrt(torch.clamp((b * b).sum(a2, keepdim=True), min=1e-14))
        A = a.movedim(a1, -1)
        Bm = b.movedim(a2, 1)
        out = A.reshape(A.shape[0], -1, A.shape[-1]) @ Bm.reshape(Bm.shape[0], Bm.shape[1], -1)
        shape = (a.shape[0],) + tuple(A.shape[1:-1]) + tuple(Bm.shape[2:])
        return out.reshape(shape if len(shape) > 1 else shape + (1,))


class RepeatVectorBlock(_Block):
    def __init__(self, layer):
        super().__init__()
        self.n = layer.n

    def call(self, x, mask, **kw):
        return [x[:, None, :].expand(-1, self.n, -1)], [None]


class TimeDistributedBlock(_Block):
    def __init__(self, layer, dtype):
        super().__init__()
        self.inner = graph_block(layer.layer, dtype)

    def call(self, x, mask, **kw):
        B, T = x.shape[:2]
        (y,), _ = self.inner.call(x.reshape((B * T,) + tuple(x.shape[2:])), None)
        return [y.reshape((B, T) + tuple(y.shape[1:]))], [None]

    def lstmkit_weights(self):
        return self.inner.lstmkit_weights()


def graph_block(layer, dtype):
    """The block of one lstmkit layer in a graph."""
    if isinstance(layer, (Attention, AdditiveAttention)):
        return AttentionBlock(layer, dtype)
    if isinstance(layer, (Add, Subtract, Average, Multiply, Concatenate, Dot)):
        return MergeBlock(layer)
    if isinstance(layer, RepeatVector):
        return RepeatVectorBlock(layer)
    if isinstance(layer, TimeDistributed):
        return TimeDistributedBlock(layer, dtype)
    if isinstance(layer, (RNNLayer, Bidirectional)):
        return RecurrentLayerBlock(layer, dtype)
    if isinstance(layer, (Embedding, Dense, Dropout, Flatten, RNNStack)):
        blocks = _blocks(layer, dtype)
        if len(blocks) == 1:
            return SimpleBlock(blocks[0])
        return SimpleBlock(_Chain(blocks))
    raise TypeError(f"layer {layer.name!r}: {type(layer).__name__} has no torch conversion in a graph")


class _Chain(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x, mask):
        for b in self.blocks:
            x, mask = b(x, mask)
        return x, mask

    def lstmkit_weights(self):
        return [w for b in self.blocks for w in b.lstmkit_weights()]


class TorchGraph(nn.Module):
    """An lk.Model as torch modules: module(x1, x2, ...) -> output, or a list of outputs."""

    def __init__(self, model):
        super().__init__()
        dtypes = {l.dtype for l in model.layers if not isinstance(l, InputLayer)}
        if len(dtypes) > 1:
            raise ValueError(f"model {model.name!r} mixes dtypes {sorted(d.name for d in dtypes)}; torch "
                             f"modules take one")
        dtype = torch.float64 if dtypes == {np.dtype(np.float64)} else torch.float32
        self.blocks = nn.ModuleDict()
        for layer in model.layers:
            if not isinstance(layer, InputLayer):
                self.blocks[layer.name] = graph_block(layer, dtype)
        ids = {}

        def tid(t):
            return ids.setdefault(id(t), len(ids))

        self.input_ids = [tid(t) for t in model.inputs]
        self.nodes = []
        for node in model._nodes:
            args = _map(tid, node.args)
            kwargs = {k: _map(tid, v) for k, v in node.tensor_kwargs.items()}
            consts = {k: v for k, v in node.const_kwargs.items() if k != "training"}
            self.nodes.append((node.layer.name, args, kwargs, consts, [tid(t) for t in node.outputs]))
        self.output_ids = [tid(t) for t in model.outputs]
        self.multi_output = model.multi_output
        self.lstmkit_config = json.dumps(serialize_layer(model))

    def forward(self, *xs):
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = tuple(xs[0])
        if len(xs) != len(self.input_ids):
            raise ValueError(f"the model takes {len(self.input_ids)} inputs; got {len(xs)}")
        values = {i: torch.as_tensor(x) for i, x in zip(self.input_ids, xs)}
        masks = {i: None for i in self.input_ids}
        for name, args, kwargs, consts, outs in self.nodes:
            block = self.blocks[name]
            x = _map(values.__getitem__, args)
            m = _map(masks.__getitem__, args)
            kw = {k: _map(values.__getitem__, v) for k, v in kwargs.items()}
            results, out_masks = block.call(x, m, **kw, **consts)
            for i, r, om in zip(outs, results, out_masks):
                values[i], masks[i] = r, om
        outs = [values[i] for i in self.output_ids]
        return outs if self.multi_output else outs[0]


_map = map_structure


def graph_from_torch(module, model=None):
    if model is None:
        model = layer_from_config(json.loads(module.lstmkit_config))
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            continue
        if layer.name not in module.blocks:
            raise ValueError(f"the module has no block for layer {layer.name!r}; convert a module made by "
                             f"to_torch(model)")
        leaves = _graph_leaves(layer)
        weights = module.blocks[layer.name].lstmkit_weights()
        if len(leaves) != len(weights):
            raise ValueError(f"block {layer.name!r} holds {len(weights)} layers' weights; layer "
                             f"{layer.name!r} has {len(leaves)}")
        _fill(leaves, weights)
    return model


def _graph_leaves(layer):
    if isinstance(layer, TimeDistributed):
        return _graph_leaves(layer.layer)
    return _leaves(layer)
