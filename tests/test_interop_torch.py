"""from_torch / to_torch: the object built, the round trip, lstmkit layers that
torch can run, and the errors for what cannot be converted."""
import numpy as np
import pytest
import torch

from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional, RNNStack
from lstmkit.interop.torch import from_torch, to_torch, state_from_torch_layout, state_to_torch_layout


def test_objects_built_for_each_shape_of_module():
    one = from_torch(torch.nn.GRU(3, 4))
    assert isinstance(one, GRU) and one.return_sequences and one.reset_after and one.two_biases
    bi = from_torch(torch.nn.RNN(3, 4, nonlinearity="relu", bidirectional=True))
    assert isinstance(bi, Bidirectional) and bi.merge_mode == "concat"
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    assert bi.forward_layer.activation == "relu"
    deep = from_torch(torch.nn.LSTM(3, 4, num_layers=3, bias=False).double())
    assert isinstance(deep, RNNStack) and len(deep.layers) == 3
    assert deep.layers[1].params["W_x"].shape == (4, 16) and "b_x" not in deep.layers[1].params
    assert deep.dtype == np.float64


@pytest.mark.parametrize("module", [
    torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True),
    torch.nn.GRU(2, 5, bias=False, batch_first=True),
    torch.nn.RNN(4, 3, num_layers=2, nonlinearity="relu"),
])
def test_round_trip_gives_the_same_module(module):
    back = to_torch(from_torch(module))
    assert back.batch_first and type(back) is type(module)
    assert (back.num_layers, back.bidirectional, back.bias) == (module.num_layers, module.bidirectional, module.bias)
    theirs = dict(module.named_parameters())
    for name, p in back.named_parameters():
        assert torch.equal(p, theirs[name]), name


@pytest.mark.parametrize("layer", [
    LSTM(4, return_sequences=True, seed=0, bias_initializer="torch_uniform"),            # one bias, Keras layout
    GRU(4, return_sequences=True, seed=1, bias_initializer="torch_uniform"),             # two biases, reset_after
    RNNStack([SimpleRNN(4, return_sequences=True, seed=2, activation="relu", bias_initializer="torch_uniform"),
              SimpleRNN(4, return_sequences=True, seed=3, activation="relu", bias_initializer="torch_uniform")]),
    Bidirectional(LSTM(3, return_sequences=True, seed=4, use_bias=False)),
])
def test_lstmkit_layers_run_in_torch(layer):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    ours = layer.forward(x)
    module = to_torch(layer)
    theirs, hn = module(torch.from_numpy(x))
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-6)
    hn = hn if isinstance(hn, tuple) else (hn,)
    mine = state_to_torch_layout(layer, layer.final_state)
    for a, b in zip(mine if isinstance(mine, tuple) else (mine,), hn):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-6)


def test_state_layout_round_trip():
    layer = from_torch(torch.nn.LSTM(3, 2, num_layers=2, bidirectional=True))
    h0, c0 = (np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2) + k for k in (0, 100))
    nested = state_from_torch_layout(layer, (h0, c0))
    # layer 1, reverse direction, cell state is torch's index 3 of c0
    np.testing.assert_array_equal(nested[1][1][1], c0[3])
    h, c = state_to_torch_layout(layer, nested)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(c, c0)


def test_what_cannot_be_converted_is_named():
    with pytest.raises(ValueError, match="proj_size=2 is not supported"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="torch.nn.LSTM, GRU or RNN; got Linear"):
        from_torch(torch.nn.Linear(3, 4))
    with pytest.warns(UserWarning, match="dropout=0.5 between stacked layers"):
        from_torch(torch.nn.GRU(3, 4, num_layers=2, dropout=0.5))
    with pytest.raises(ValueError, match="reset_after=False"):
        to_torch(GRU(3, reset_after=False, input_dim=2))
    with pytest.raises(ValueError, match="merge_mode='sum'"):
        to_torch(Bidirectional(LSTM(3, return_sequences=True, input_dim=2), merge_mode="sum"))
    with pytest.raises(ValueError, match="go_backwards=True"):
        to_torch(LSTM(3, go_backwards=True, input_dim=2))
    with pytest.raises(ValueError, match="alike"):
        to_torch(RNNStack([LSTM(3, return_sequences=True, input_dim=2), LSTM(4, return_sequences=True, input_dim=3)]))
    with pytest.raises(ValueError, match="not built yet"):
        to_torch(LSTM(3))
    with pytest.raises(ValueError, match="num_layers \\* num_directions = 2"):
        state_from_torch_layout(from_torch(torch.nn.GRU(3, 4, bidirectional=True)), np.zeros((1, 2, 4)))
