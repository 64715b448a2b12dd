"""More of issue 9, head-on: TimeDistributed around a recurrent layer (a 4-D input)
against PyTorch in float64 on both engines, and summary's "Connected to" column for
a layer called twice (one row, one inbound line per call, `layer[node][tensor]`
downstream, as Keras)."""
import numpy as np
import pytest
import torch

import lstmkit as lk
from gradcheck_util import rel_err


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_time_distributed_lstm_matches_pytorch(engine):
    rng = np.random.default_rng(7)
    B, T, T2, D, H = 2, 3, 4, 5, 3
    inner = lk.LSTM(H, engine=engine, seed=3, dtype="float64")
    layer = lk.TimeDistributed(inner)
    x = rng.normal(size=(B, T, T2, D))                        # (B, T, T2, D): a sequence per step
    out = layer.forward(x)                                    # (B, T, H): the last h of each inner sequence
    w = rng.normal(size=out.shape)
    dx = layer.backward(w)
    n = inner.name
    # PyTorch: the inner sequences as one batch, nn.LSTM with the same weights (gate order i, f, g, o)
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(layer.params[f"{n}/W_x"].T))
        lstm.weight_hh_l0.copy_(torch.tensor(layer.params[f"{n}/W_h"].T))
        lstm.bias_ih_l0.copy_(torch.tensor(layer.params[f"{n}/b_x"]))
        lstm.bias_hh_l0.zero_()
    xt = torch.tensor(x, requires_grad=True)
    seq, _ = lstm(xt.reshape(B * T, T2, D))
    ot = seq[:, -1].reshape(B, T, H)
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-12, atol=1e-12)
    (ot * torch.tensor(w)).sum().backward()
    errs = {"x": rel_err(dx, xt.grad.numpy()),
            "W_x": rel_err(layer.grads[f"{n}/W_x"], lstm.weight_ih_l0.grad.numpy().T),
            "W_h": rel_err(layer.grads[f"{n}/W_h"], lstm.weight_hh_l0.grad.numpy().T),
            "b_x": rel_err(layer.grads[f"{n}/b_x"], lstm.bias_ih_l0.grad.numpy())}
    assert max(errs.values()) < 1e-10, errs


def test_summary_connected_to_for_a_layer_called_twice(capsys):
    a, b = lk.Input(shape=(5, 3), name="a"), lk.Input(shape=(4, 3), name="b")
    enc = lk.LSTM(4, name="enc")
    out = lk.Dense(2, name="d")(lk.Concatenate(name="cat")([enc(a), enc(b)]))
    lk.Model([a, b], out).summary()
    lines = [l.rstrip() for l in capsys.readouterr().out.splitlines()]
    i = next(k for k, l in enumerate(lines) if l.startswith("enc (LSTM)"))
    assert lines[i].endswith("a[0][0]") and lines[i + 1].strip() == "b[0][0]"
    assert lines[i].split()[-2] == "128"                      # one set of weights: 4 * (3 + 4 + 1) * 4
    j = next(k for k, l in enumerate(lines) if l.startswith("cat (Concatenate)"))
    assert lines[j].endswith("enc[0][0]") and lines[j + 1].strip() == "enc[1][0]"
