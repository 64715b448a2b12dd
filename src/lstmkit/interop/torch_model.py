"""Whole models to and from PyTorch: ``to_torch(model)`` gives a torch.nn.Module
computing what the lstmkit model computes, ``from_torch(module)`` reads such a
module (after training in torch, say) back into an lstmkit model.

The module (TorchModel) runs blocks in order, each taking and giving
``(x, mask)``; the lstmkit config rides along as ``module.lstmkit_config``:

    Embedding                 EmbeddingBlock: nn.Embedding; mask = ids != 0 with mask_zero
    LSTM / GRU / SimpleRNN    RecurrentBlock: nn.LSTM / nn.GRU / nn.RNN (batch_first, one layer;
    Bidirectional               bidirectional=True when both directions are alike, else one
    RNNStack                    module per direction); one block per stacked level
    Dense                     DenseBlock: nn.Linear + the activation
    Dropout                   nn.Dropout (same rate; torch draws its own masks)
    Flatten                   flatten(1)

Weights: torch keeps two biases (bias_ih, bias_hh) where lstmkit may keep one
(Keras's layout). A layer without b_h gets a bias_hh of zeros that does not
train (requires_grad=False), so a training step changes the same numbers on
both sides, and from_torch puts them back exactly.

Masks: lstmkit skips masked steps (the state is carried through them) wherever
they are. The block moves each sequence's real steps to the front in order
(a stable sort of the mask), runs the module on them as a packed sequence
(pack_padded_sequence), and scatters the outputs back to their places: the
same numbers for any mask, holes included, and the gradients flow through the
gather and the scatter. zero_output_for_mask=False (Keras's convention) then
repeats each sequence's previous output in reading order over its masked steps
(a cumulative max of the real steps' positions), as lstmkit does.

Not carried over: the dropout and recurrent_dropout inside recurrent layers
(nn.LSTM has no per-sequence input or recurrent dropout; a warning says so);
GRU(reset_after=False), which torch.nn.GRU cannot compute, and RNN(cell)
layers are refused. Stateful layers convert as stateless (a warning says so).
"""
import json
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..layers import LSTM, GRU, SimpleRNN, Bidirectional, RNNStack, Embedding, Dense, Dropout, Flatten
from ..layers.base import layer_from_config, serialize_layer
from ..layers.recurrent import RNNLayer
from ..layers.rnn import RNN
from .common import recurrent_levels

_TORCH_RNN = {LSTM: nn.LSTM, GRU: nn.GRU, SimpleRNN: nn.RNN}
_ACTIVATIONS = {"linear": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                "softmax": lambda z: torch.softmax(z, dim=-1)}


def _tensor(a, dtype):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def _numpy(t):
    return t.detach().cpu().numpy()


class TorchModel(nn.Module):
    """An lstmkit Sequential as torch modules (see the module docstring)."""

    def __init__(self, blocks, lstmkit_config):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.lstmkit_config = lstmkit_config            # JSON: the lstmkit model, for from_torch

    def forward(self, x):
        mask = None
        for block in self.blocks:
            x, mask = block(x, mask)
        return x


class EmbeddingBlock(nn.Module):
    def __init__(self, layer, dtype):
        super().__init__()
        self.embedding = nn.Embedding(layer.input_dim, layer.output_dim).to(dtype)
        self.mask_zero = layer.mask_zero
        with torch.no_grad():
            self.embedding.weight.copy_(_tensor(layer.params["embeddings"], layer.dtype))

    def forward(self, ids, mask):
        ids = torch.as_tensor(ids)
        return self.embedding(ids), (ids != 0) if self.mask_zero else None

    def lstmkit_weights(self):
        return [{"embeddings": _numpy(self.embedding.weight)}]


class DenseBlock(nn.Module):
    def __init__(self, layer, dtype):
        super().__init__()
        D, U = layer.params["W"].shape
        self.linear = nn.Linear(D, U, bias=layer.use_bias).to(dtype)
        self.activation = layer.activation
        with torch.no_grad():
            self.linear.weight.copy_(_tensor(layer.params["W"].T, layer.dtype))          # (U, D)
            if layer.use_bias:
                self.linear.bias.copy_(_tensor(layer.params["b"], layer.dtype))

    def forward(self, x, mask):
        return _ACTIVATIONS[self.activation](self.linear(x)), mask                       # per step: mask stays

    def lstmkit_weights(self):
        w = {"W": _numpy(self.linear.weight).T}
        if self.linear.bias is not None:
            w["b"] = _numpy(self.linear.bias)
        return [w]


class DropoutBlock(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.dropout = nn.Dropout(layer.rate)

    def forward(self, x, mask):
        return self.dropout(x), mask

    def lstmkit_weights(self):
        return [{}]


class FlattenBlock(nn.Module):
    def forward(self, x, mask):
        return x.flatten(1), None

    def lstmkit_weights(self):
        return [{}]


def _make_rnn(layer, bidirectional, dtype):
    cls = _TORCH_RNN[type(layer)]
    kw = {"nonlinearity": layer.activation} if isinstance(layer, SimpleRNN) else {}
    D = layer.params["W_x"].shape[0]
    return cls(D, layer.units, num_layers=1, bias=layer.use_bias, batch_first=True,
               bidirectional=bidirectional, **kw).to(dtype)


def _load_direction(module, suffix, layer):
    """Copy one lstmkit direction's weights into the module's l0{suffix} parameters."""
    p = layer.params
    with torch.no_grad():
        getattr(module, f"weight_ih_l0{suffix}").copy_(_tensor(p["W_x"].T, layer.dtype))   # (GH, D)
        getattr(module, f"weight_hh_l0{suffix}").copy_(_tensor(p["W_h"].T, layer.dtype))   # (GH, H)
        if layer.use_bias:
            getattr(module, f"bias_ih_l0{suffix}").copy_(_tensor(p["b_x"], layer.dtype))
            b_hh = getattr(module, f"bias_hh_l0{suffix}")
            if "b_h" in p:
                b_hh.copy_(_tensor(p["b_h"], layer.dtype))
            else:
                # lstmkit has one bias here: torch's second stays 0 and does not train
                b_hh.zero_()
                b_hh.requires_grad_(False)


def _direction_weights(module, suffix, has_b_h):
    w = {"W_x": _numpy(getattr(module, f"weight_ih_l0{suffix}")).T,
         "W_h": _numpy(getattr(module, f"weight_hh_l0{suffix}")).T}
    if module.bias:
        w["b_x"] = _numpy(getattr(module, f"bias_ih_l0{suffix}"))
        if has_b_h:
            w["b_h"] = _numpy(getattr(module, f"bias_hh_l0{suffix}"))
    return w


def _alike(a, b):
    return (type(a) is type(b) and a.units == b.units and a.use_bias == b.use_bias
            and a.cell_options() == b.cell_options() and ("b_h" in a.params) == ("b_h" in b.params))


def _run(module, x, mask, hx=None):
    """module (batch_first, one layer) over x (B, T, D) from the states hx (None:
    zeros; h0, or (h0, c0) for the LSTM, each (dirs, B, H)), skipping masked steps.
    Returns the outputs (B, T, dirs*H) at the input's positions (0 at masked
    steps) and the final states as a tuple (h_n,) or (h_n, c_n)."""
    if mask is None:
        y, h = module(x, hx)
        return y, (h if isinstance(h, tuple) else (h,))
    B, T = mask.shape
    lens = mask.sum(dim=1)                                                          # (B,)
    # the real steps of each row first, in their order (a stable sort of "is padding")
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)              # (B, T)
    xc = torch.gather(x, 1, order[..., None].expand(-1, -1, x.shape[2]))
    packed = pack_padded_sequence(xc, lens.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    yp, h = module(packed, hx)
    h = h if isinstance(h, tuple) else (h,)
    yc, _ = pad_packed_sequence(yp, batch_first=True, total_length=T)               # (B, T, dirs*H)
    has = lens > 0                                                                  # an empty row: nothing ran
    yc = yc * has[:, None, None].to(yc.dtype)
    if hx is None:
        h = tuple(s * has[None, :, None].to(s.dtype) for s in h)
    else:                                                                           # its state is where it started
        h0 = hx if isinstance(hx, tuple) else (hx,)
        h = tuple(torch.where(has[None, :, None], s, s0) for s, s0 in zip(h, h0))
    y = torch.zeros_like(yc).scatter(1, order[..., None].expand_as(yc), yc)        # back to their places
    return y, h


def _repeat_last(y, mask):
    """Keras's masked outputs: y_t = the output of the last real step at or before t, 0 before any."""
    T = mask.shape[1]
    idx = torch.where(mask, torch.arange(T, device=mask.device), torch.full_like(mask, -1, dtype=torch.long))
    src = torch.cummax(idx, dim=1).values                                          # (B, T)
    out = torch.gather(y, 1, src.clamp(min=0)[..., None].expand_as(y))
    return out * (src >= 0)[..., None].to(y.dtype)


class RecurrentBlock(nn.Module):
    """One recurrent level: a layer, or a Bidirectional's two directions."""

    def __init__(self, fwd, bwd, merge_mode, dtype, allow_state=False):
        super().__init__()
        for l in [fwd] + ([bwd] if bwd is not None else []):
            _check(l, allow_state)
        self.return_sequences = fwd.return_sequences
        self.merge_mode = merge_mode
        self.bidirectional = bwd is not None
        self.lstm = isinstance(fwd, LSTM)
        self.reverse = bwd is None and fwd.go_backwards       # a go_backwards layer on its own
        self.repeat_last = bwd is None and not fwd.zero_output_for_mask
        self.has_b_h = ["b_h" in l.params for l in (fwd, bwd) if l is not None]
        self.fused = bwd is not None and _alike(fwd, bwd)
        if bwd is None or self.fused:
            self.rnn = _make_rnn(fwd, bwd is not None, dtype)
            _load_direction(self.rnn, "", fwd)
            if bwd is not None:
                _load_direction(self.rnn, "_reverse", bwd)
        else:                                                  # two kinds of cell: a module each
            self.rnn = _make_rnn(fwd, False, dtype)
            self.rnn_backward = _make_rnn(bwd, False, dtype)
            _load_direction(self.rnn, "", fwd)
            _load_direction(self.rnn_backward, "", bwd)

    def forward(self, x, mask):
        out, mask, _ = self.run(x, mask)
        return out, mask

    def _hx(self, states, n_dirs):
        """lstmkit's initial states (per direction: h, or h and c) -> torch's hx."""
        if states is None:
            return None
        per = 2 if self.lstm else 1
        states = list(states)
        if len(states) != per * n_dirs:
            raise ValueError(f"initial_state needs {per * n_dirs} tensors; got {len(states)}")
        stacked = [torch.stack([states[d * per + i] for d in range(n_dirs)]) for i in range(per)]
        return tuple(stacked) if self.lstm else stacked[0]

    def run(self, x, mask, initial_state=None):
        """-> (output, its mask, final states flat: [h_f, (c_f), h_b, (c_b)])."""
        if self.reverse:
            x = x.flip(1)                                      # read t = T-1 .. 0; outputs stay in that order
            mask = None if mask is None else mask.flip(1)
        n_dirs = 2 if self.bidirectional else 1
        if not self.bidirectional or self.fused:
            y, h = _run(self.rnn, x, mask, self._hx(initial_state, n_dirs))
            finals = [s[d] for d in range(n_dirs) for s in h]                         # h_f, c_f, h_b, c_b
        else:
            per = 2 if self.lstm else 1
            st = None if initial_state is None else list(initial_state)
            hx_f = None if st is None else self._hx(st[:per], 1)
            hx_b = None if st is None else self._hx(st[per:], 1)
            y_f, h_f = _run(self.rnn, x, mask, hx_f)
            y_b, h_b = _run(self.rnn_backward, x.flip(1), None if mask is None else mask.flip(1), hx_b)
            y = torch.cat([y_f, y_b.flip(1)], dim=-1)
            finals = [s[0] for s in h_f] + [s[0] for s in h_b]
        per = len(finals) // n_dirs
        if not self.return_sequences:
            h_last = [finals[0]] if not self.bidirectional else [finals[0], finals[per]]
            out = h_last[0] if not self.bidirectional else self._merge(*h_last)         # (B, H or 2H)
            return out, None, finals
        if mask is not None and self.repeat_last:
            y = _repeat_last(y, mask)
        if self.bidirectional:
            H = y.shape[-1] // 2
            y = self._merge(y[..., :H], y[..., H:])
        return y, mask, finals

    def _merge(self, a, b):
        if self.merge_mode == "concat":
            return torch.cat([a, b], dim=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        return 0.5 * (a + b)

    def lstmkit_weights(self):
        """One dict per direction, in the order forward, backward."""
        if not self.bidirectional:
            return [_direction_weights(self.rnn, "", self.has_b_h[0])]
        if self.fused:
            return [_direction_weights(self.rnn, "", self.has_b_h[0]),
                    _direction_weights(self.rnn, "_reverse", self.has_b_h[1])]
        return [_direction_weights(self.rnn, "", self.has_b_h[0]),
                _direction_weights(self.rnn_backward, "", self.has_b_h[1])]

def _check(layer, allow_state=False):
    if not isinstance(layer, RNNLayer):
        raise TypeError(f"layer {layer.name!r}: {type(layer).__name__} has no torch.nn counterpart "
                        f"(to_torch covers LSTM, GRU and SimpleRNN)")
    if isinstance(layer, GRU) and not layer.reset_after:
        raise ValueError(f"GRU {layer.name!r} has reset_after=False; torch.nn.GRU only has the "
                         f"reset_after=True form")
    if layer.return_state and not allow_state:
        raise ValueError(f"layer {layer.name!r}: return_state=True has no place in a one-output model")
    if layer.dropout or layer.recurrent_dropout:
        warnings.warn(f"layer {layer.name!r}: dropout={layer.dropout}, recurrent_dropout="
                      f"{layer.recurrent_dropout} are not carried over (torch.nn.{type(layer).__name__} has "
                      f"no per-sequence dropout); inference is the same", stacklevel=4)
    if layer.stateful:
        warnings.warn(f"layer {layer.name!r} is stateful; the torch module starts every call from zeros",
                      stacklevel=4)


def _blocks(layer, dtype):
    """The blocks of one lstmkit layer, and the lstmkit leaf layers they fill, in order."""
    if isinstance(layer, Embedding):
        return [EmbeddingBlock(layer, dtype)]
    if isinstance(layer, Dense):
        return [DenseBlock(layer, dtype)]
    if isinstance(layer, Dropout):
        return [DropoutBlock(layer)]
    if isinstance(layer, Flatten):
        return [FlattenBlock()]
    if isinstance(layer, RNN):
        raise TypeError(f"layer {layer.name!r}: RNN(cell) runs a cell written in Python; to_torch covers the "
                        f"LSTM, GRU and SimpleRNN layers")
    if isinstance(layer, (RNNLayer, Bidirectional, RNNStack)):
        return [RecurrentBlock(f, b, mode, dtype) for f, b, mode in recurrent_levels(layer)]
    raise TypeError(f"layer {layer.name!r}: {type(layer).__name__} has no torch conversion (covered: "
                    f"Embedding, SimpleRNN, LSTM, GRU, Bidirectional, RNNStack, Dense, Dropout, Flatten)")


def _leaves(layer):
    """The layers whose weights the blocks of layer hold, in the blocks' order."""
    if isinstance(layer, (RNNLayer, Bidirectional, RNNStack)):
        return [l for f, b, _ in recurrent_levels(layer) for l in (f, b) if l is not None]
    return [layer]


def model_to_torch(model):
    """A TorchModel (torch.nn.Module) computing what model computes."""
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet; call build() or predict() first")
    dtypes = {l.dtype for l in model.layers}
    if len(dtypes) > 1:
        raise ValueError(f"model {model.name!r} mixes dtypes {sorted(d.name for d in dtypes)}; torch "
                         f"modules take one")
    dtype = torch.float64 if dtypes == {np.dtype(np.float64)} else torch.float32
    blocks = [b for layer in model.layers for b in _blocks(layer, dtype)]
    return TorchModel(blocks, json.dumps(serialize_layer(model)))


def model_from_torch(module, model=None):
    """The lstmkit model of a TorchModel, with the module's current weights;
    model: an lstmkit model of the same structure to load them into instead."""
    if model is None:
        model = layer_from_config(json.loads(module.lstmkit_config))
        if not model.built:
            raise ValueError("the module's lstmkit config has no input shape, so the weights cannot be placed")
    leaves = [l for layer in model.layers for l in _leaves(layer)]
    weights = [w for block in module.blocks for w in block.lstmkit_weights()]
    if len(leaves) != len(weights):
        raise ValueError(f"the module holds {len(weights)} layers' weights but model {model.name!r} has "
                         f"{len(leaves)} layers to fill; convert a module made by to_torch(model)")
    _fill(leaves, weights)
    return model


def _fill(layers, weights):
    """Each layer's weights from its dict of arrays (the blocks' lstmkit_weights)."""
    for layer, w in zip(layers, weights):
        layer.set_weights({k: v.astype(layer.dtype) for k, v in w.items()})
