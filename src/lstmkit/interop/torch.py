"""Exact conversion between torch.nn.LSTM / GRU / RNN and lstmkit layers.

Layout mapping (PyTorch -> lstmkit), for layer k and direction d ("" or
"_reverse"):

    weight_ih_l{k}{d}  (G*H, D_in)  ->  W_x = weight_ih.T   (D_in, G*H)
    weight_hh_l{k}{d}  (G*H, H)     ->  W_h = weight_hh.T   (H, G*H)
    bias_ih_l{k}{d}    (G*H,)       ->  b_x
    bias_hh_l{k}{d}    (G*H,)       ->  b_h   (two biases kept: conversion is exact)

Gate blocks keep PyTorch's order in both libraries: LSTM i, f, g, o; GRU
r, z, n (PyTorch's GRU is lstmkit's reset_after=True form); RNN one block,
nonlinearity tanh or relu -> SimpleRNN(activation=...).

Module shape -> lstmkit object:

    num_layers=1, one direction    ->  LSTM / GRU / SimpleRNN (return_sequences=True)
    num_layers=1, bidirectional    ->  Bidirectional(..., merge_mode="concat"), the
                                       backward copy with go_backwards=True
    num_layers>1                   ->  RNNStack of those, layer k reading layer k-1

lstmkit is always batch-major (B, T, D): a module with batch_first=False reads
(T, B, D), so transpose its input (x.transpose(1, 0, 2)) before passing it to
the converted object. to_torch() always returns batch_first=True.

Initial and final states: PyTorch stacks them as (num_layers * num_directions,
B, H) in the order layer 0 forward, layer 0 reverse, layer 1 forward, ...;
lstmkit nests them (a tuple of states per layer, a (forward, backward) pair
for Bidirectional, a list per layer for RNNStack). state_from_torch_layout()
and state_to_torch_layout() convert between the two, for states as well as
for their gradients (initial_state_grad has the same nesting).

Masks and packed sequences: torch marks variable lengths by packing
(pack_padded_sequence); lstmkit by a mask (B, T). The padded outputs torch
gives back (pad_packed_sequence) are zeros, and h_n is the state at each
sequence's last real step. from_torch() therefore sets
zero_output_for_mask=True (Keras's default, False, repeats the previous output
at masked steps instead), so that out, final_state and every gradient match
torch with mask = arange(T) < lengths. to_torch() ignores the setting: torch
has no masked steps to fill.

Whole models: to_torch(model) / from_torch(module) for a Sequential, in
lstmkit.interop.torch_model (the layers above are the recurrent part of it).

Not carried over: dropout between stacked layers (torch applies it only in
training; a warning says so); proj_size != 0 has no lstmkit equivalent and is
refused.
"""
import warnings

import numpy as np
import torch

from ..layers import LSTM, GRU, SimpleRNN, Bidirectional, RNNStack
from ..layers.recurrent import RNNLayer

_TORCH_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _to_numpy(a):
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _layer_kind(module):
    """(lstmkit class, its cell options) for a torch recurrent module."""
    if isinstance(module, torch.nn.LSTM):
        return LSTM, {"unit_forget_bias": False}
    if isinstance(module, torch.nn.GRU):
        return GRU, {"reset_after": True}
    if isinstance(module, torch.nn.RNN):
        return SimpleRNN, {"activation": module.nonlinearity}
    raise TypeError(f"from_torch expects torch.nn.LSTM, GRU or RNN; got {type(module).__name__}")


def from_torch(module, engine="auto", model=None):
    """The lstmkit equivalent of a torch.nn.LSTM, GRU or RNN, with its weights;
    or, for a whole model made by to_torch(model) (a TorchModel, perhaps trained
    in torch since), the lstmkit model with the module's weights -- loaded into
    `model` when given (lstmkit.interop.torch_model)."""
    from .torch_model import TorchModel, model_from_torch
    if isinstance(module, TorchModel):
        return model_from_torch(module, model)
    from .torch_graph import TorchGraph, graph_from_torch
    if isinstance(module, TorchGraph):
        return graph_from_torch(module, model)
    cls, options = _layer_kind(module)
    if getattr(module, "proj_size", 0):
        raise ValueError(f"proj_size={module.proj_size} is not supported: lstmkit's LSTM has no "
                         f"projection of h; convert a module built with proj_size=0")
    dtype = _TORCH_DTYPES.get(module.weight_ih_l0.dtype)
    if dtype is None:
        raise TypeError(f"from_torch supports float32 and float64 modules; got {module.weight_ih_l0.dtype}")
    if module.num_layers > 1 and module.dropout > 0:
        warnings.warn(f"the module's dropout={module.dropout} between stacked layers (training only) "
                      f"is not carried over", stacklevel=2)
    H, n_dirs = module.hidden_size, 2 if module.bidirectional else 1

    def direction(k, suffix):
        D_in = module.input_size if k == 0 else n_dirs * H
        # zero_output_for_mask: padded outputs are 0, as pad_packed_sequence gives them
        layer = cls(H, return_sequences=True, go_backwards=suffix == "_reverse", use_bias=module.bias,
                    two_biases=module.bias, dtype=dtype, engine=engine, input_dim=D_in,
                    zero_output_for_mask=True, **options)
        w = {"W_x": _to_numpy(getattr(module, f"weight_ih_l{k}{suffix}")).T,     # (D_in, G*H)
             "W_h": _to_numpy(getattr(module, f"weight_hh_l{k}{suffix}")).T}     # (H, G*H)
        if module.bias:
            w["b_x"] = _to_numpy(getattr(module, f"bias_ih_l{k}{suffix}"))
            w["b_h"] = _to_numpy(getattr(module, f"bias_hh_l{k}{suffix}"))
        layer.set_weights(w)
        return layer

    layers = []
    for k in range(module.num_layers):
        if module.bidirectional:
            layers.append(Bidirectional(direction(k, ""), merge_mode="concat",
                                        backward_layer=direction(k, "_reverse")))
        else:
            layers.append(direction(k, ""))
    return layers[0] if len(layers) == 1 else RNNStack(layers)


# ---- back to torch ------------------------------------------------------------------

def _torch_levels(layer):
    """[[forward RNNLayer, (backward RNNLayer)], ...] per stacked level, checked."""
    if isinstance(layer, RNNStack):
        return [lvl for sub in layer.layers for lvl in _torch_levels(sub)]
    if isinstance(layer, Bidirectional):
        if layer.merge_mode != "concat":
            raise ValueError(f"torch's bidirectional modules concatenate the directions; this "
                             f"Bidirectional has merge_mode={layer.merge_mode!r}")
        f, b = layer.forward_layer, layer.backward_layer
        if f.go_backwards or not b.go_backwards:
            raise ValueError("to_torch needs a Bidirectional whose forward_layer reads forwards and "
                             "whose backward_layer has go_backwards=True")
        return [[f, b]]
    if isinstance(layer, RNNLayer):
        if layer.go_backwards:
            raise ValueError(f"layer {layer.name!r} has go_backwards=True; torch has no one-directional "
                             f"reversed RNN (wrap it in Bidirectional instead)")
        return [[layer]]
    raise TypeError(f"to_torch expects an LSTM, GRU, SimpleRNN, Bidirectional or RNNStack; "
                    f"got {type(layer).__name__}")


def _torch_class(layer):
    if isinstance(layer, LSTM):
        return torch.nn.LSTM, {}
    if isinstance(layer, GRU):
        if not layer.reset_after:
            raise ValueError(f"GRU {layer.name!r} has reset_after=False; torch.nn.GRU only has the "
                             f"reset_after=True form")
        return torch.nn.GRU, {}
    return torch.nn.RNN, {"nonlinearity": layer.activation}


def to_torch(layer):
    """A torch.nn.LSTM / GRU / RNN (batch_first=True) computing what a recurrent
    layer computes; for a whole model (Sequential), a torch.nn.Module with the
    same outputs (lstmkit.interop.torch_model.TorchModel)."""
    from ..models.functional import Model
    from ..models.sequential import Sequential
    if isinstance(layer, Sequential):
        from .torch_model import model_to_torch
        return model_to_torch(layer)
    if isinstance(layer, Model):
        from .torch_graph import TorchGraph
        return TorchGraph(layer)
    levels = _torch_levels(layer)
    first = levels[0][0]
    for l in (l for lvl in levels for l in lvl):
        if not l.built:
            raise ValueError(f"layer {l.name!r} is not built yet; call forward() or build() first")
    cls, options = _torch_class(first)
    H, n_dirs = first.units, len(levels[0])
    for k, lvl in enumerate(levels):
        for l in lvl:
            if (type(l), l.units, l.use_bias, l.cell_options()) != (type(first), H, first.use_bias,
                                                                    first.cell_options()):
                raise ValueError(f"torch needs every stacked layer alike (cell, units, use_bias, options); "
                                 f"layer {l.name!r} differs from {first.name!r}")
        if len(lvl) != n_dirs:
            raise ValueError(f"level {k} has {len(lvl)} directions but level 0 has {n_dirs}")
    module = cls(first.params["W_x"].shape[0], H, num_layers=len(levels), bias=first.use_bias,
                 batch_first=True, bidirectional=n_dirs == 2, **options)
    module = module.to(torch.float64 if first.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for k, lvl in enumerate(levels):
            for l, suffix in zip(lvl, ("", "_reverse")):
                p = l.params
                getattr(module, f"weight_ih_l{k}{suffix}").copy_(torch.from_numpy(p["W_x"].T.copy()))
                getattr(module, f"weight_hh_l{k}{suffix}").copy_(torch.from_numpy(p["W_h"].T.copy()))
                if l.use_bias:
                    # one bias (Keras's layout) is b_x; torch's second bias is then 0
                    b_h = p.get("b_h", np.zeros_like(p["b_x"]))
                    getattr(module, f"bias_ih_l{k}{suffix}").copy_(torch.from_numpy(p["b_x"].copy()))
                    getattr(module, f"bias_hh_l{k}{suffix}").copy_(torch.from_numpy(b_h.copy()))
    return module


# ---- states between the two layouts ---------------------------------------------------

def _directions(layer):
    """The RNNLayers of layer in torch's state order (layer 0 fwd, layer 0 reverse, ...)."""
    if isinstance(layer, RNNStack):
        return [d for sub in layer.layers for d in _directions(sub)]
    if isinstance(layer, Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    return [layer]


def _nest(layer, flat):
    """Per-direction states (in torch order) -> lstmkit's nesting for layer; consumes flat."""
    if isinstance(layer, RNNStack):
        return [_nest(sub, flat) for sub in layer.layers]
    if isinstance(layer, Bidirectional):
        return (flat.pop(0), flat.pop(0))
    return flat.pop(0)


def _flatten(layer, nested):
    if isinstance(layer, RNNStack):
        return [s for sub, n in zip(layer.layers, nested) for s in _flatten(sub, n)]
    if isinstance(layer, Bidirectional):
        return [nested[0], nested[1]]
    return [nested]


def state_from_torch_layout(layer, hx):
    """torch's hx -- h0, or (h0, c0) for the LSTM, each (L * dirs, B, H), tensors
    or arrays -- as the initial_state (or dstate) nesting layer.forward expects."""
    arrays = [_to_numpy(a) for a in (hx if isinstance(hx, (tuple, list)) else (hx,))]
    dirs = _directions(layer)
    n_states = len(dirs[0].state_names)
    if len(arrays) != n_states:
        raise ValueError(f"hx must hold {n_states} arrays {dirs[0].state_names}; got {len(arrays)}")
    if arrays[0].shape[0] != len(dirs):
        raise ValueError(f"hx's first axis must be num_layers * num_directions = {len(dirs)}; "
                         f"got shape {arrays[0].shape}")
    flat = [tuple(np.ascontiguousarray(a[k], dtype=d.dtype) for a in arrays) for k, d in enumerate(dirs)]
    return _nest(layer, flat)


def state_to_torch_layout(layer, nested):
    """lstmkit's nested states (final_state, initial_state_grad) in torch's layout:
    h_n for GRU/RNN, (h_n, c_n) for the LSTM, each (L * dirs, B, H)."""
    flat = _flatten(layer, nested)
    stacked = tuple(np.stack([s[i] for s in flat]) for i in range(len(flat[0])))
    return stacked if len(stacked) > 1 else stacked[0]
