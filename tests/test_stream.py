"""RNNLayer.stream(): streaming inference one step per call, against the
reference engine run over the whole sequence."""
import copy
import pickle

import numpy as np
import pytest

from lstmkit.layers import GRU, LSTM, SimpleRNN

TOL = {np.float32: 1e-5, np.float64: 1e-10}
CELLS = [(LSTM, {}), (LSTM, {"two_biases": True}), (GRU, {}), (GRU, {"reset_after": False}),
         (SimpleRNN, {}), (SimpleRNN, {"activation": "relu"})]
IDS = ["lstm", "lstm-2b", "gru", "gru-before", "rnn", "rnn-relu"]


def make_layers(cls, options, dtype, D=5, H=4, seed=0):
    """The layer under test (engine auto) and a reference-engine twin with the
    same random weights, biases included."""
    rng = np.random.default_rng(seed)
    layer = cls(H, input_dim=D, dtype=dtype, **options)
    ref = cls(H, input_dim=D, dtype=dtype, engine="reference", return_sequences=True, **options)
    weights = {k: (rng.normal(size=v.shape) * 0.5).astype(dtype) for k, v in layer.params.items()}
    layer.set_weights(weights)
    ref.set_weights(weights)
    return layer, ref


def sequence(B, T, D, dtype, seed=1):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("cls,options", CELLS, ids=IDS)
def test_stream_matches_reference_over_20_steps(cls, options, batch, dtype):
    layer, ref = make_layers(cls, options, dtype)
    x = sequence(batch, 20, 5, dtype)
    expected = ref.forward(x)                                                # (B, T, H)
    s = layer.stream(batch=batch)
    out = np.empty((batch, 4), dtype)
    for t in range(20):
        if t % 2:
            h = s.step(np.ascontiguousarray(x[:, t]))                       # the fast path, a new array
        else:
            h = s.step(x[:, t], out=out)                                    # strided x: copied; into out
            assert h is out
        np.testing.assert_allclose(h, expected[:, t], rtol=0, atol=TOL[dtype])
    for got, want in zip(s.state, ref.final_state):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("cls,options", CELLS, ids=IDS)
def test_reset_and_set_state(cls, options):
    layer, ref = make_layers(cls, options, np.float64)
    x = sequence(2, 6, 5, np.float64)
    s = layer.stream(batch=2)
    first = [s.step(np.ascontiguousarray(x[:, t])) for t in range(6)]
    assert not np.allclose(s.state[0], 0)
    s.reset()
    assert all(np.all(a == 0) for a in s.state)
    again = [s.step(np.ascontiguousarray(x[:, t])) for t in range(6)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    # start from a given state: the reference with initial_state agrees
    state0 = tuple(np.random.default_rng(5).normal(size=(2, 4)) for _ in layer.state_names)
    s.reset(state0)
    expected = ref.forward(x, initial_state=state0)
    for t in range(6):
        np.testing.assert_allclose(s.step(x[:, t]), expected[:, t], rtol=0, atol=1e-10)
    state0[0][...] = 99                                                      # the stream copied it
    s.state = state0 if len(state0) > 1 else state0[0]
    np.testing.assert_array_equal(s.state[0], 99)
    s.state[0][...] = 0                                                      # state returns copies
    np.testing.assert_array_equal(s.state[0], 99)


def one_step(layer, x_t, state):
    """A reference step with the layer's current weights."""
    ref = type(layer).from_config({**layer.get_config(), "name": "twin", "engine": "reference"})
    ref.set_weights(layer.get_weights())
    h, _ = ref.step(x_t, state)
    return h


def test_in_place_param_updates_show_at_the_next_step():
    layer, _ = make_layers(LSTM, {}, np.float64)
    x_t = sequence(1, 1, 5, np.float64)[:, 0]
    s = layer.stream()
    s.step(x_t)
    state = s.state
    stale = one_step(layer, x_t, state)
    layer.params["W_h"] *= 0.5                                               # as an optimizer does
    layer.set_weights({"b_x": np.full(16, 0.3)})
    fresh = one_step(layer, x_t, state)
    assert not np.allclose(fresh, stale)
    np.testing.assert_allclose(s.step(x_t), fresh, rtol=0, atol=1e-10)


def test_replaced_params_are_re_read_and_stay_shared():
    layer, _ = make_layers(GRU, {}, np.float64)
    x_t = sequence(1, 1, 5, np.float64)[:, 0]
    s = layer.stream()
    new = np.random.default_rng(9).normal(size=layer.params["W_x"].shape)
    layer.params["W_x"] = new                                                # a new array, not a view
    expected = one_step(layer, x_t, s.state)
    np.testing.assert_allclose(s.step(x_t), expected, rtol=0, atol=1e-10)
    # the stream re-packed: the param is a view of the buffer again, so in-place edits still count
    assert layer.params["W_x"] is not new
    assert np.shares_memory(layer.params["W_x"], layer.packed_weights().array)
    np.testing.assert_array_equal(layer.params["W_x"], new)
    layer.params["W_x"][...] = 0
    expected = one_step(layer, x_t, s.state)
    np.testing.assert_allclose(s.step(x_t), expected, rtol=0, atol=1e-10)


def test_params_are_views_of_one_c_contiguous_buffer():
    layer = LSTM(4, input_dim=3, two_biases=True)
    pack = layer.packed_weights().array
    assert pack.shape == (3 + 4 + 2, 16) and pack.flags.c_contiguous
    assert pack.ctypes.data % 64 == 0                                        # whole cache lines for vector loads
    for name, p in layer.params.items():
        assert np.shares_memory(p, pack) and p.flags.c_contiguous, name
    np.testing.assert_array_equal(pack[3 + 4, 4:8], 1.0)                    # unit forget bias, in the buffer
    bare = SimpleRNN(4, input_dim=3, use_bias=False)
    assert sorted(bare.params) == ["W_h", "W_x"]
    assert np.all(bare.packed_weights().array[-2:] == 0)                    # absent biases read as zeros


def test_a_copied_layer_streams_its_own_weights():
    layer, _ = make_layers(LSTM, {}, np.float32)
    x_t = np.ones((1, 5), np.float32)
    before = layer.stream().step(x_t)
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        twin.params["W_x"][...] = 0                                          # in place, on the copy only
        np.testing.assert_array_equal(layer.stream().step(x_t), before)
        assert not np.allclose(twin.stream().step(x_t), before)
        np.testing.assert_allclose(twin.stream().step(x_t), one_step(twin, x_t, None), atol=1e-5)


def test_layer_step_fast_and_checked_paths_agree_with_the_stream():
    layer, ref = make_layers(LSTM, {}, np.float32)
    x = sequence(3, 5, 5, np.float32)
    expected = ref.forward(x)
    s = layer.stream(batch=3)
    state = tuple(np.zeros((3, 4), np.float32) for _ in range(2))
    for t in range(5):
        x_t = np.ascontiguousarray(x[:, t])
        h, state = layer.step(x_t, state, out=state)                         # fast path, in place
        np.testing.assert_allclose(h, expected[:, t], rtol=0, atol=1e-5)
        np.testing.assert_array_equal(h, s.step(x_t))
    h64, _ = layer.step(x[:, 0].astype(np.float64), state)                   # float64 in: converted
    assert h64.dtype == np.float32


def test_stream_rejects_bad_inputs_with_clear_messages():
    layer = LSTM(4, input_dim=3)
    s = layer.stream(batch=2)
    with pytest.raises(ValueError, match=r"x_t must have shape \(2, 3\).*got \(1, 3\)"):
        s.step(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"x_t must have shape \(2, 3\).*got \(3,\)"):
        s.step(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="x_t must have dtype float32.*got float64"):
        s.step(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 4\).*got \(2, 3\)"):
        s.step(np.zeros((2, 3), np.float32), out=np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="out must have dtype float32.*got int64"):
        s.step(np.zeros((2, 3), np.float32), out=np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match="out must be a numpy array"):
        s.step(np.zeros((2, 3), np.float32), out=[[0.0] * 4] * 2)
    with pytest.raises(ValueError, match=r"state 'c' must have shape \(2, 4\); got \(1, 4\)"):
        s.state = (np.zeros((2, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"must be 2 array\(s\)"):
        s.state = np.zeros((2, 4))
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        layer.stream(batch=0)
    with pytest.raises(ValueError, match="not built"):
        LSTM(4).stream()
    assert np.all(s.state[0] == 0)                                           # nothing ran
    s.step([[1.0, 2.0, 3.0]] * 2)                                           # a list becomes an array


def test_layer_step_names_what_does_not_fit():
    layer = GRU(4, input_dim=3)
    x_t = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"x_t must have shape \(2, 3\).*got \(2, 5\)"):
        layer.step(np.zeros((2, 5), np.float32), (np.zeros((2, 4), np.float32),))
    with pytest.raises(ValueError, match=r"state 'h' must have shape \(2, 4\).*got \(2, 3\)"):
        layer.step(x_t, (np.zeros((2, 3), np.float32),))
    with pytest.raises(ValueError, match=r"out 'h' must be a writeable float32 array of shape \(2, 4\); got float64"):
        layer.step(x_t, (np.zeros((2, 4), np.float32),), out=(np.zeros((2, 4)),))
    h_f = np.asfortranarray(np.zeros((2, 4), np.float32))                   # another layout: written through a copy
    h, (h_new,) = layer.step(x_t + 1, (np.zeros((2, 4), np.float32),), out=(h_f,))
    assert h is h_f and h_new is h_f and np.any(h_f != 0)
    with pytest.raises(ValueError, match="params\\['W_h'\\] has shape"):
        layer.params["W_h"] = np.zeros((3, 3))
        layer.step(x_t, (np.zeros((2, 4), np.float32),))


def test_odd_inputs_compile_no_new_specialisations():
    # strided, read-only, float64-for-float32 and list inputs are converted or
    # refused before they reach compiled code: one signature per dtype stays
    from lstmkit.kernels import packed
    for dtype in (np.float32, np.float64):
        layer = LSTM(4, input_dim=3, dtype=dtype)
        xs = np.zeros((2, 5, 3), dtype)
        frozen = np.zeros((2, 3), dtype)
        frozen.flags.writeable = False
        state = (np.zeros((2, 4), dtype), np.zeros((2, 4), dtype))
        for x_t in (xs[:, 1], frozen, xs[:, 0].astype(np.float64), xs[:, 0].tolist()):
            layer.step(x_t, state)
            layer.step(x_t, tuple(np.asfortranarray(s) for s in state))
            if not (isinstance(x_t, np.ndarray) and x_t.dtype != dtype):
                layer.stream(batch=2).step(x_t)
    assert len(packed.stream_lstm.signatures) <= 2
    for dtype in (np.float32, np.float64):
        assert len(packed.step_kernel("lstm", dtype).signatures) == 1


def test_stream_never_writes_into_a_read_only_out():
    s = LSTM(4, input_dim=3).stream()
    frozen = np.zeros((1, 4), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out must be a writeable"):
        s.step(np.ones((1, 3), np.float32), out=frozen)
    assert np.all(frozen == 0) and np.all(s.state[0] == 0)
    s2 = LSTM(4, input_dim=3).stream(batch=2)
    with pytest.raises(ValueError, match="out must be a writeable"):
        s2.step(np.ones((2, 3), np.float32), out=np.zeros((4, 2), np.float32).T)   # not C order
