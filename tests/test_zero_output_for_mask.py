"""zero_output_for_mask: what a recurrent layer outputs at a masked step.

False (Keras's default): the previous output, in reading order; 0 before the
first real step. True: 0 (PyTorch's padded outputs). Checked against a
reference made another way: each row run alone on its real steps only, with
no mask, then spread back over the time axis."""
import json

import numpy as np
import pytest

from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional, RNNStack, layer_from_config
from lstmkit.layers.masked_outputs import repeat_last_output, route_repeated_grads
from gradcheck_util import layer_gradient_errors

ENGINES = ["reference", "fast"]
CLASSES = [LSTM, GRU, SimpleRNN]
B, T, D, H = 4, 7, 3, 5
# a gap, trailing padding, leading padding, a row with a single real step
MASK = np.array([[1, 1, 0, 1, 1, 0, 0],
                 [0, 0, 1, 1, 0, 1, 1],
                 [1, 1, 1, 1, 1, 1, 1],
                 [0, 0, 0, 1, 0, 0, 0]], bool)


def expected_outputs(layer, x, mask, initial_state, zero_output):
    """Row by row: run the layer without a mask over the row's real steps
    (in reading order), then place each output at its step and fill the
    masked steps (the previous output, or 0)."""
    # go_backwards=False: the real steps are handed over in reading order already
    cfg = dict(layer.get_config(), name=layer.name + "_plain", return_state=False, stateful=False,
               go_backwards=False)
    plain = type(layer).from_config(cfg)
    plain.set_weights(layer.get_weights())
    rows = []
    order = np.arange(T)[::-1] if layer.go_backwards else np.arange(T)
    for b in range(x.shape[0]):
        real = [t for t in order if mask[b, t]]                     # reading order
        y = np.zeros((T, layer.units), layer.dtype)                  # reading order
        if real:
            state = None if initial_state is None else tuple(s[b:b + 1] for s in initial_state)
            ys = plain.forward(x[b:b + 1, real], initial_state=state)[0]   # (n_real, H)
        k, prev = 0, np.zeros(layer.units, layer.dtype)
        for i, t in enumerate(order):
            if mask[b, t]:
                prev = y[i] = ys[k]
                k += 1
            elif not zero_output:
                y[i] = prev
        rows.append(y)
    return np.stack(rows)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
def test_masked_steps_match_rows_run_alone(cls, engine, go_backwards, zero_output):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D))
    layer = cls(H, return_sequences=True, go_backwards=go_backwards, zero_output_for_mask=zero_output,
                dtype="float64", engine=engine, seed=1, bias_initializer="torch_uniform")
    init = tuple(rng.normal(scale=0.5, size=(B, H)) for _ in layer.state_names)
    out = layer.forward(x, mask=MASK, initial_state=init)
    want = expected_outputs(layer, x, MASK, init, zero_output)
    np.testing.assert_allclose(out, want, atol=1e-12)
    # leading masked steps give 0 even with a non-zero initial state (Keras's TF/torch backends)
    lead = ~np.maximum.accumulate(MASK[:, ::-1] if go_backwards else MASK, axis=1)
    assert lead.any() and np.all(out[lead] == 0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cls", CLASSES)
def test_default_repeats_the_previous_output(cls, engine):
    x = np.random.default_rng(1).normal(size=(B, T, D)).astype("float32")
    layer = cls(H, return_sequences=True, engine=engine, seed=2)
    assert layer.zero_output_for_mask is False
    out = layer.forward(x, mask=MASK)
    np.testing.assert_array_equal(out[0, 2], out[0, 1])        # the gap repeats step 1
    np.testing.assert_array_equal(out[0, 6], out[0, 4])        # padding repeats the last real step
    np.testing.assert_array_equal(out[0, 4], layer.final_state[0][0])
    assert np.all(out[1, :2] == 0) and np.abs(out[0, 1]).max() > 0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_by_finite_differences(cls, engine, go_backwards, zero_output, return_sequences):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D))
    layer = cls(H, return_sequences=return_sequences, go_backwards=go_backwards, two_biases=True,
                zero_output_for_mask=zero_output, dtype="float64", engine=engine, seed=3,
                bias_initializer="torch_uniform")
    init = tuple(rng.normal(scale=0.5, size=(B, H)) for _ in layer.state_names)
    errors = layer_gradient_errors(layer, x, initial_state=init, mask=MASK)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("engine", ENGINES)
def test_gradients_through_two_stacked_layers(engine):
    # the second layer reads the first one's repeated outputs (masked: ignored) -- and the stack's outputs
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, D))
    stack = RNNStack([LSTM(4, return_sequences=True, dtype="float64", engine=engine, seed=4),
                      GRU(3, return_sequences=True, dtype="float64", engine=engine, seed=5, go_backwards=True)])
    errors = layer_gradient_errors(stack, x, mask=MASK)
    assert max(errors.values()) < 1e-6, errors


def test_a_row_with_no_real_step_outputs_zero():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, D))
    mask = np.array([[1, 1, 0], [0, 0, 0]], bool)
    layer = LSTM(H, dtype="float64", seed=5)
    h0 = (rng.normal(size=(2, H)), rng.normal(size=(2, H)))
    out = layer.forward(x, mask=mask, initial_state=h0)
    assert np.all(out[1] == 0)                                   # nothing was read: no output
    np.testing.assert_array_equal(layer.final_state[0][1], h0[0][1])   # the state is carried
    errors = layer_gradient_errors(layer, x, initial_state=h0, mask=mask)
    assert max(errors.values()) < 1e-6, errors


def test_route_repeated_grads_is_the_transpose_of_the_repeat():
    # <repeat(out), d> = <out, route(d)> for random arrays and masks
    rng = np.random.default_rng(5)
    for _ in range(20):
        b, t, h = rng.integers(1, 5), rng.integers(1, 9), rng.integers(1, 4)
        mask = rng.random((b, t)) < 0.5
        out, d = rng.normal(size=(b, t, h)), rng.normal(size=(b, t, h))
        lhs = (repeat_last_output(out, mask) * d).sum()
        rhs = (out * route_repeated_grads(d, mask)).sum()
        assert abs(lhs - rhs) < 1e-12
        assert np.all(route_repeated_grads(d, mask)[~mask] == 0)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_forces_zero_output_when_returning_sequences(return_sequences):
    # as Keras: both directions output 0 at masked steps, whatever the wrapped layer said
    layer = LSTM(H, return_sequences=return_sequences, zero_output_for_mask=False, seed=6)
    bi = Bidirectional(layer)
    assert bi.forward_layer.zero_output_for_mask is return_sequences
    assert bi.backward_layer.zero_output_for_mask is return_sequences
    if return_sequences:
        x = np.random.default_rng(6).normal(size=(B, T, D)).astype("float32")
        out = bi.forward(x, mask=MASK)
        assert np.all(out[~MASK] == 0)
    again = layer_from_config(json.loads(json.dumps({"class_name": "Bidirectional",
                                                     "config": bi.get_config()})))
    assert again.forward_layer.zero_output_for_mask is return_sequences


def test_config_round_trip_and_files_from_before():
    layer = GRU(H, return_sequences=True)
    assert layer.get_config()["zero_output_for_mask"] is False
    assert GRU.from_config(layer.get_config()).zero_output_for_mask is False
    assert GRU.from_config({**layer.get_config(), "zero_output_for_mask": True}).zero_output_for_mask
    # a config written before the option existed: masked steps gave 0 then, and still do
    old = {k: v for k, v in layer.get_config().items() if k != "zero_output_for_mask"}
    assert GRU.from_config(old).zero_output_for_mask is True


def test_a_model_file_from_before_keeps_its_outputs(tmp_path):
    # a saved Sequential whose config has no zero_output_for_mask key loads with 0 at masked steps
    import lstmkit as lk
    from safetensors.numpy import load_file, save
    from lstmkit.io import read_safetensors_metadata
    model = lk.Sequential([lk.Embedding(10, 4, input_length=5, mask_zero=True),
                           lk.LSTM(3, return_sequences=True, zero_output_for_mask=True), lk.Flatten(),
                           lk.Dense(1)], seed=0)
    ids = np.array([[3, 4, 0, 0, 0], [1, 2, 3, 4, 5]])
    before = model.predict(ids)
    path = tmp_path / "old.lstmkit"
    model.save(path)
    meta = read_safetensors_metadata(path)
    cfg = json.loads(meta["model"])
    for spec in cfg["config"]["layers"]:
        spec["config"].pop("zero_output_for_mask", None)
    meta["model"] = json.dumps(cfg)
    path.write_bytes(save(load_file(str(path)), metadata=meta))
    loaded = lk.load_model(path)
    assert loaded.layers[1].zero_output_for_mask is True
    np.testing.assert_array_equal(loaded.predict(ids), before)
