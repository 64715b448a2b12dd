"""lk.layers.RNN(cell): a cell written in NumPy, looped by the layer.

The built-in cells give the numbers of the LSTM/GRU/SimpleRNN layers (both
engines); a user cell whose output is not its state checks the layer's own
bookkeeping (masks, the repeated output, go_backwards, states) by finite
differences; save/load needs the cell class registered."""
import json

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.gradcheck import check_cell
from lstmkit.layers import (RNN, Cell, LSTMCell, GRUCell, SimpleRNNCell, StackedRNNCells, LSTM, GRU,
                            SimpleRNN, Bidirectional, RNNStack, register_cell, CELL_REGISTRY)
from gradcheck_util import layer_gradient_errors

B, T, D = 3, 5, 4
MASK = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
PAIRS = [
    pytest.param(LSTMCell, LSTM, {}, id="lstm"),
    pytest.param(LSTMCell, LSTM, {"two_biases": True, "unit_forget_bias": False}, id="lstm-two-biases"),
    pytest.param(GRUCell, GRU, {}, id="gru"),
    pytest.param(GRUCell, GRU, {"reset_after": False}, id="gru-reset-before"),
    pytest.param(SimpleRNNCell, SimpleRNN, {"activation": "relu"}, id="rnn-relu"),
    pytest.param(SimpleRNNCell, SimpleRNN, {"use_bias": False}, id="rnn-no-bias"),
]


class ProjectedRNNCell(Cell):
    """A test cell whose output is not its state: h_t = tanh(x W + h U + b),
    out_t = h_t V (output_size P), plus a second state counting steps (s_t = s + 1)."""

    def __init__(self, units, out_units):
        super().__init__()
        self.units, self.out_units = units, out_units
        self.state_size = (units, 1)
        self.output_size = out_units

    def build(self, input_dim):
        self.add_weight("W", (input_dim, self.units))
        self.add_weight("U", (self.units, self.units), "orthogonal")
        self.add_weight("b", (self.units,), "zeros")
        self.add_weight("V", (self.units, self.out_units))

    def call(self, x_t, states):
        h, s = states
        p = self.params
        h_new = np.tanh(x_t @ p["W"] + h @ p["U"] + p["b"])
        out = h_new @ p["V"]
        return out, (h_new, s + 1.0), (x_t, h, h_new)

    def backward(self, d_out, d_states, cache):
        x_t, h, h_new = cache
        dh_new, ds = d_states
        p, g = self.params, self.grads
        g["V"] += h_new.T @ d_out                      # backprop through out = h V
        dh_new = dh_new + d_out @ p["V"].T
        da = dh_new * (1 - h_new ** 2)                 # backprop through tanh
        g["W"] += x_t.T @ da
        g["U"] += h.T @ da
        g["b"] += da.sum(axis=0)
        return da @ p["W"].T, (da @ p["U"].T, ds)      # s_t = s + 1: ds passes through

    def get_config(self):
        return {"units": self.units, "out_units": self.out_units}


@pytest.mark.parametrize("engine", ["reference", "fast"])
@pytest.mark.parametrize("cell_cls, layer_cls, options", PAIRS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
def test_builtin_cells_equal_the_layers(cell_cls, layer_cls, options, engine, go_backwards, zero_output):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D))
    kw = dict(return_sequences=True, return_state=True, go_backwards=go_backwards,
              zero_output_for_mask=zero_output, dtype="float64", seed=11)
    ours = RNN(cell_cls(6, **options), **kw)
    theirs = layer_cls(6, engine=engine, **options, **kw)
    init = tuple(rng.normal(size=(B, 6)) for _ in theirs.state_names)
    a = ours.forward(x, mask=MASK, initial_state=init)
    b = theirs.forward(x, mask=MASK, initial_state=init)
    assert sorted(ours.params) == sorted(theirs.params)
    for k in theirs.params:                                   # the same seed draws the same weights
        np.testing.assert_array_equal(ours.params[k], theirs.params[k])
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=1e-12)
    dout = [rng.normal(size=u.shape) for u in a]
    np.testing.assert_allclose(ours.backward(dout), theirs.backward(dout), atol=1e-12)
    for k in theirs.params:
        np.testing.assert_allclose(ours.grads[k], theirs.grads[k], atol=1e-11)
    for u, v in zip(ours.initial_state_grad, theirs.initial_state_grad):
        np.testing.assert_allclose(u, v, atol=1e-12)


def test_builtin_cell_in_float32_equals_the_fast_layer():
    x = np.random.default_rng(1).normal(size=(B, T, D)).astype("float32")
    ours = RNN(LSTMCell(8), return_sequences=True, seed=3)
    theirs = LSTM(8, return_sequences=True, seed=3, engine="fast")
    np.testing.assert_allclose(ours.forward(x, mask=MASK), theirs.forward(x, mask=MASK), atol=1e-5)


@pytest.mark.parametrize("cell", [lambda: LSTMCell(3), lambda: GRUCell(3), lambda: GRUCell(3, reset_after=False),
                                  lambda: SimpleRNNCell(3, activation="relu"), lambda: ProjectedRNNCell(3, 2),
                                  lambda: StackedRNNCells([LSTMCell(3), ProjectedRNNCell(2, 4)])],
                         ids=["lstm", "gru", "gru-reset-before", "rnn-relu", "projected", "stacked"])
def test_check_cell_passes_for_correct_cells(cell):
    errors = check_cell(cell(), input_dim=D)
    assert any(k.startswith("step:") for k in errors) and any(k.startswith("sequence:") for k in errors)
    assert max(errors.values()) < 1e-6, errors


def test_check_cell_catches_a_wrong_backward():
    class Wrong(ProjectedRNNCell):
        def backward(self, d_out, d_states, cache):
            dx, (dh, ds) = super().backward(d_out, d_states, cache)
            self.grads["U"] *= 1.01                    # a 1% error in one weight gradient
            return dx, (dh, ds)
    errors = check_cell(Wrong(3, 2), input_dim=D)
    assert errors["step: U"] > 1e-3 and errors["step: W"] < 1e-6


def test_check_cell_leaves_the_weights_as_they_were():
    cell = LSTMCell(3)
    cell.build_weights(D, np.float64, np.random.default_rng(0))
    before = {k: v.copy() for k, v in cell.params.items()}
    check_cell(cell)
    for k in before:
        np.testing.assert_array_equal(cell.params[k], before[k])
    with pytest.raises(ValueError, match="float64"):
        c32 = LSTMCell(3)
        c32.build_weights(D, np.float32, np.random.default_rng(0))
        check_cell(c32)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
def test_layer_gradients_with_a_user_cell(return_sequences, go_backwards, zero_output):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D))
    layer = RNN(ProjectedRNNCell(3, 2), return_sequences=return_sequences, return_state=True,
                go_backwards=go_backwards, zero_output_for_mask=zero_output, dtype="float64", seed=4)
    mask = MASK.copy()
    mask[0] = False                                   # and a row with no real step
    init = (rng.normal(size=(B, 3)), rng.normal(size=(B, 1)))
    errors = layer_gradient_errors(layer, x, initial_state=init, mask=mask)
    assert max(errors.values()) < 1e-6, errors
    out = layer.forward(x, mask=mask, initial_state=init)
    assert np.all(out[0][0] == 0)                     # nothing read: the output is 0
    np.testing.assert_array_equal(out[2][0], init[1][0])   # ... and the state is carried
    np.testing.assert_array_equal(out[2][2], init[1][2] + T)   # the counter counts real steps


def test_stacked_cells_equal_stacked_layers():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, D))
    stacked = RNN([LSTMCell(4), GRUCell(3)], return_sequences=True, return_state=True, dtype="float64",
                  seed=5)
    stacked.build((T, D))
    assert stacked.state_names == ("h0", "c0", "h1") and sorted(stacked.params)[0] == "cell0/W_h"
    l1 = LSTM(4, return_sequences=True, dtype="float64")
    l2 = GRU(3, return_sequences=True, dtype="float64")
    l1.build((T, D))
    l2.build((T, 4))
    l1.set_weights({k[6:]: v for k, v in stacked.params.items() if k.startswith("cell0/")})
    l2.set_weights({k[6:]: v for k, v in stacked.params.items() if k.startswith("cell1/")})
    init = [rng.normal(size=(B, 4)), rng.normal(size=(B, 4)), rng.normal(size=(B, 3))]
    out, h0, c0, h1 = stacked.forward(x, mask=MASK, initial_state=init)
    want = RNNStack([l1, l2]).forward(x, mask=MASK, initial_state=[tuple(init[:2]), (init[2],)])
    np.testing.assert_allclose(out, want, atol=1e-12)
    np.testing.assert_allclose(h1, l2.final_state[0], atol=1e-12)
    np.testing.assert_allclose(c0, l1.final_state[1], atol=1e-12)
    errors = layer_gradient_errors(stacked, x, initial_state=init, mask=MASK)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_bidirectional_of_a_user_cell(merge_mode):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(B, T, D))
    bi = Bidirectional(RNN(ProjectedRNNCell(3, 2), return_sequences=True, dtype="float64", seed=6),
                       merge_mode=merge_mode)
    assert bi.backward_layer.go_backwards and bi.backward_layer.cell is not bi.forward_layer.cell
    out = bi.forward(x, mask=MASK)
    assert not np.allclose(bi.forward_layer.params["W"], bi.backward_layer.params["W"])
    first = out if merge_mode else out[0]
    assert first.shape[-1] == (4 if merge_mode else 2)
    errors = layer_gradient_errors(bi, x, mask=MASK)
    assert max(errors.values()) < 1e-6, errors


def test_bidirectional_of_builtin_cells_equals_bidirectional_lstm():
    x = np.random.default_rng(5).normal(size=(B, T, D))
    a = Bidirectional(RNN(LSTMCell(3), return_sequences=True, dtype="float64", seed=7))
    b = Bidirectional(LSTM(3, return_sequences=True, dtype="float64", seed=7))
    a.build((T, D))
    b.build((T, D))
    assert sorted(a.params) == sorted(b.params)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(a.forward(x, mask=MASK), b.forward(x, mask=MASK), atol=1e-12)


def test_save_and_load_needs_the_cell_registered(tmp_path):
    class Unregistered(ProjectedRNNCell):
        pass
    x = np.random.default_rng(6).normal(size=(2, T, D)).astype("float32")
    model = lk.Sequential([RNN(Unregistered(3, 2), input_shape=(T, D)), lk.Dense(1)], seed=0)
    model.save(tmp_path / "m.lstmkit")
    with pytest.raises(ValueError, match=r"cell class 'Unregistered'.*register_cell"):
        lk.load_model(tmp_path / "m.lstmkit")
    try:
        register_cell(Unregistered)
        loaded = lk.load_model(tmp_path / "m.lstmkit")
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        assert type(loaded.layers[0].cell) is Unregistered
    finally:
        CELL_REGISTRY.pop("Unregistered", None)


def test_builtin_and_stacked_cells_round_trip_through_json(tmp_path):
    layer = RNN([LSTMCell(4, unit_forget_bias=False), GRUCell(3, reset_after=False)], return_sequences=True,
                stateful=True, zero_output_for_mask=True, input_shape=(T, D), seed=1)
    spec = json.loads(json.dumps({"class_name": "RNN", "config": layer.get_config()}))
    again = lk.layers.layer_from_config(spec)
    assert [type(c) for c in again.cell.cells] == [LSTMCell, GRUCell]
    assert again.cell.cells[1].reset_after is False and again.stateful and again.zero_output_for_mask
    assert sorted(again.params) == sorted(layer.params)


def test_fit_trains_a_model_with_a_user_cell():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 6, 2)).astype("float32")
    y = x[:, :, 0].sum(axis=1, keepdims=True)                 # the sum of the first feature
    model = lk.Sequential([RNN(ProjectedRNNCell(8, 4), input_shape=(6, 2)), lk.Dense(1)], seed=0)
    model.compile(optimizer=lk.Adam(0.01), loss="mse")
    hist = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < 0.2 * hist.history["loss"][0]


def test_clear_errors():
    with pytest.raises(TypeError, match="RNN needs a cell"):
        RNN(LSTM(3))

    class BadShape(ProjectedRNNCell):
        def call(self, x_t, states):
            out, new, cache = super().call(x_t, states)
            return out[:, :1], new, cache
    with pytest.raises(ValueError, match=r"BadShape.call returned an output of shape \(3, 1\)"):
        RNN(BadShape(3, 2)).forward(np.zeros((B, T, D)))

    class NotATuple(ProjectedRNNCell):
        def call(self, x_t, states):
            out, new, cache = super().call(x_t, states)
            return out, new[0], cache
    with pytest.raises(ValueError, match="new_states as a tuple of 2 arrays"):
        RNN(NotATuple(3, 2)).forward(np.zeros((B, T, D)))
    with pytest.raises(ValueError, match=r"initial_state 'state1' .* must have shape \(3, 1\)"):
        RNN(ProjectedRNNCell(3, 2)).forward(np.zeros((B, T, D)),
                                              initial_state=(np.zeros((B, 3)), np.zeros((B, 2))))
    with pytest.raises(NotImplementedError, match="must make the weights"):
        RNN(Cell()).forward(np.zeros((B, T, D)))
