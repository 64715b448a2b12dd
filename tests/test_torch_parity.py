"""Parity with torch.nn.LSTM, GRU and RNN: outputs, final states and every
gradient (weights, biases, inputs, initial states) under a random upstream
gradient on the outputs and the final states. torch's gradients come from
autograd, lstmkit's from its hand-written backward passes."""
import zlib

import numpy as np
import pytest
import torch

from lstmkit.interop.torch import (from_torch, state_from_torch_layout, state_to_torch_layout,
                                   _directions)

TOL = {"float32": 1e-5, "float64": 1e-10}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}

# kind, B, T, D, H, num_layers, bidirectional, batch_first, bias, nonlinearity
FIXED = [
    ("lstm", 3, 5, 4, 6, 1, False, True, True, None),
    ("lstm", 1, 1, 3, 2, 1, False, True, True, None),          # batch 1, time 1
    ("lstm", 2, 4, 5, 3, 2, True, False, True, None),          # 2 layers, bidirectional, time-major
    ("lstm", 2, 3, 3, 4, 1, True, True, False, None),          # no bias
    ("gru", 3, 5, 4, 6, 1, False, False, True, None),
    ("gru", 1, 1, 2, 5, 2, False, True, True, None),
    ("gru", 2, 4, 3, 3, 2, True, True, True, None),
    ("gru", 2, 3, 4, 2, 1, False, True, False, None),
    ("rnn", 3, 6, 4, 5, 1, False, True, True, "tanh"),
    ("rnn", 2, 4, 3, 4, 2, True, False, True, "relu"),
    ("rnn", 1, 1, 5, 3, 1, True, True, False, "relu"),
]


def random_configs(n, seed=123):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kind = ["lstm", "gru", "rnn"][rng.integers(3)]
        out.append((kind, int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 6)),
                    int(rng.integers(1, 6)), int(rng.integers(1, 3)), bool(rng.integers(2)),
                    bool(rng.integers(2)), bool(rng.integers(2)), ["tanh", "relu"][rng.integers(2)]))
    return out


CONFIGS = FIXED + random_configs(6)


def make_module(kind, D, H, num_layers, bidirectional, batch_first, bias, nonlinearity, dtype, seed):
    torch.manual_seed(seed)
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if kind == "lstm":
        m = torch.nn.LSTM(D, H, **kwargs)
    elif kind == "gru":
        m = torch.nn.GRU(D, H, **kwargs)
    else:
        m = torch.nn.RNN(D, H, nonlinearity=nonlinearity, **kwargs)
    return m.to(TORCH_DTYPE[dtype])


def close(ours, theirs, tol):
    """max |ours - theirs| <= tol * max(1, max |theirs|): absolute for small
    values, relative for large sums."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape
    err = np.abs(ours - theirs).max() if ours.size else 0.0
    return err <= tol * max(1.0, np.abs(theirs).max() if theirs.size else 0.0), err


def run_both(module, x_bm, h0, dout_bm, dstate, lengths=None, engine="reference"):
    """Forward + backward in torch (autograd) and in lstmkit. x_bm, dout_bm are
    batch-major numpy arrays; h0 and dstate tuples in torch's layout."""
    dtype = TORCH_DTYPE[str(x_bm.dtype)]
    x_t = torch.tensor(x_bm, dtype=dtype, requires_grad=True)
    h0_t = [torch.tensor(h, dtype=dtype, requires_grad=True) for h in h0]
    inp = x_t if module.batch_first else x_t.transpose(0, 1)
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(inp, torch.tensor(lengths), batch_first=module.batch_first,
                                                      enforce_sorted=False)
    out_t, hn_t = module(inp, tuple(h0_t) if len(h0_t) > 1 else h0_t[0])
    if lengths is not None:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=module.batch_first,
                                                          total_length=x_bm.shape[1])
    if not module.batch_first:
        out_t = out_t.transpose(0, 1)
    hn_t = hn_t if isinstance(hn_t, tuple) else (hn_t,)
    loss = (out_t * torch.tensor(dout_bm)).sum() + sum((h * torch.tensor(d)).sum() for h, d in zip(hn_t, dstate))
    module.zero_grad()
    loss.backward()

    layer = from_torch(module, engine=engine)
    mask = None if lengths is None else np.arange(x_bm.shape[1])[None, :] < np.asarray(lengths)[:, None]
    out = layer.forward(x_bm, mask=mask, initial_state=state_from_torch_layout(layer, h0))
    dx = layer.backward(dout_bm, state_from_torch_layout(layer, dstate))
    ours = dict(out=out, x=dx, state=state_to_torch_layout(layer, layer.final_state),
                state_grad=state_to_torch_layout(layer, layer.initial_state_grad))
    theirs = dict(out=out_t, x=x_t.grad, state=hn_t, state_grad=[h.grad for h in h0_t])
    return layer, ours, theirs


def compare_all(module, layer, ours, theirs, tol):
    """{what: max abs error}; fails listing everything that is off."""
    as_tuple = lambda s: s if isinstance(s, tuple) else (s,)
    pairs = [("out", ours["out"], theirs["out"]), ("dx", ours["x"], theirs["x"])]
    pairs += [(f"final_state[{i}]", a, b) for i, (a, b) in enumerate(zip(as_tuple(ours["state"]), theirs["state"]))]
    pairs += [(f"d_initial_state[{i}]", a, b)
              for i, (a, b) in enumerate(zip(as_tuple(ours["state_grad"]), theirs["state_grad"]))]
    n_dirs = 2 if module.bidirectional else 1
    for k, d in enumerate(_directions(layer)):
        suffix = f"_l{k // n_dirs}" + ("_reverse" if k % n_dirs else "")
        pairs += [(f"dweight_ih{suffix}", d.grads["W_x"].T, getattr(module, "weight_ih" + suffix).grad),
                  (f"dweight_hh{suffix}", d.grads["W_h"].T, getattr(module, "weight_hh" + suffix).grad)]
        if module.bias:
            pairs += [(f"dbias_ih{suffix}", d.grads["b_x"], getattr(module, "bias_ih" + suffix).grad),
                      (f"dbias_hh{suffix}", d.grads["b_h"], getattr(module, "bias_hh" + suffix).grad)]
    errors, bad = {}, []
    for name, a, b in pairs:
        ok, errors[name] = close(a, b, tol)
        if not ok:
            bad.append(name)
    assert not bad, {k: errors[k] for k in bad}
    # every parameter of the module was compared
    assert sum(1 for n in errors if n.startswith("d") and n[1:] != "x" and "state" not in n) == \
        len(list(module.parameters()))
    return errors


def random_problem(module, B, T, dtype, seed):
    rng = np.random.default_rng(seed)
    n_dirs = 2 if module.bidirectional else 1
    H, L = module.hidden_size, module.num_layers
    n_states = 2 if isinstance(module, torch.nn.LSTM) else 1
    x = rng.normal(size=(B, T, module.input_size)).astype(dtype)
    h0 = tuple(rng.normal(scale=0.5, size=(L * n_dirs, B, H)).astype(dtype) for _ in range(n_states))
    dout = rng.normal(size=(B, T, n_dirs * H)).astype(dtype)
    dstate = tuple(rng.normal(size=(L * n_dirs, B, H)).astype(dtype) for _ in range(n_states))
    return x, h0, dout, dstate


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c))
def test_parity_with_torch(config, dtype, engine):
    kind, B, T, D, H, L, bi, batch_first, bias, nonlinearity = config
    module = make_module(kind, D, H, L, bi, batch_first, bias, nonlinearity, dtype, seed=zlib.crc32(repr(config).encode()) % 1000)
    x, h0, dout, dstate = random_problem(module, B, T, dtype, seed=7)
    layer, ours, theirs = run_both(module, x, h0, dout, dstate, engine=engine)
    compare_all(module, layer, ours, theirs, TOL[dtype])


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_mask_parity_with_packed_sequences(kind, bidirectional, dtype, engine):
    # variable lengths, trailing padding: lstmkit's mask against pack_padded_sequence
    B, T, D, H = 4, 6, 3, 5
    module = make_module(kind, D, H, 2 if kind == "lstm" else 1, bidirectional, True, True, "tanh", dtype, seed=3)
    x, h0, dout, dstate = random_problem(module, B, T, dtype, seed=11)
    lengths = [6, 2, 4, 1]
    for b, n in enumerate(lengths):
        x[b, n:] = 100.0                               # padding must not leak into anything
    layer, ours, theirs = run_both(module, x, h0, dout, dstate, lengths=lengths, engine=engine)
    # torch's padded outputs are zeros: from_torch sets the matching zero_output_for_mask
    assert all(d.zero_output_for_mask for d in _directions(layer))
    errors = compare_all(module, layer, ours, theirs, TOL[dtype])
    assert errors["out"] <= TOL[dtype]
    for b, n in enumerate(lengths):
        assert np.all(ours["out"][b, n:] == 0) and np.all(ours["x"][b, n:] == 0)


def test_the_parity_check_can_fail():
    # the same comparison on a module whose weights changed after conversion must fail
    module = make_module("gru", 3, 4, 1, False, True, True, None, "float64", seed=0)
    x, h0, dout, dstate = random_problem(module, 2, 3, "float64", seed=0)
    layer, ours, theirs = run_both(module, x, h0, dout, dstate)
    with torch.no_grad():
        module.bias_hh_l0[8:] += 1e-3                  # the n block, which sits inside r * (...)
    _, _, theirs2 = run_both(module, x, h0, dout, dstate)
    with pytest.raises(AssertionError, match="out"):
        compare_all(module, layer, ours, theirs2, 1e-10)
