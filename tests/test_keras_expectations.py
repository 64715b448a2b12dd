"""Keras's own expectations for its recurrent layers (keras/src/layers/rnn/
*_test.py: constant initializers 0.01 / 0.02 / 0.03, inputs arange(24)),
for the conventions issue 9 brought over: masked steps repeat the previous
output by default, zero_output_for_mask=True writes 0, stateful layers carry
their state, Bidirectional with merge_mode=None and a flat initial_state.
The numbers are Keras's; with constant weights the gate order does not
matter, and Keras's LSTM sets the forget bias to 1 as unit_forget_bias does here."""
import numpy as np
import pytest

from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional, RNN, LSTMCell, GRUCell, SimpleRNNCell

ENGINES = ["reference", "fast"]
TOL = 1e-5
KINDS = {"LSTM": (LSTM, LSTMCell), "GRU": (GRU, GRUCell), "SimpleRNN": (SimpleRNN, SimpleRNNCell)}


def constant(value):
    return lambda shape, rng, dtype, **_: np.full(shape, value, dtype)


def keras_like(kind, units, engine, **kw):
    """Keras's layer with Constant(0.01) kernel, Constant(0.02) recurrent kernel,
    Constant(0.03) bias; engine "cell" = RNN(<kind>Cell) instead of the layer."""
    inits = dict(kernel_initializer=constant(0.01), recurrent_initializer=constant(0.02),
                 bias_initializer=constant(0.03))
    layer_cls, cell_cls = KINDS[kind]
    if engine == "cell":
        return RNN(cell_cls(units, **inits), **kw)
    return layer_cls(units, engine=engine, **inits, **kw)


def seq(shape):
    return np.arange(24).reshape(shape).astype("float32")


MASKING = {   # kind: (mask, repeated outputs (sample 0, sample 1), go_backwards last output)
    "LSTM": ([[1, 1, 1, 0], [1, 1, 0, 0]],
             [[0.01588910, 0.05552048, 0.11755939, 0.11755939], [0.14185596, 0.28556206, 0.28556206, 0.28556206]],
             None),
    "GRU": ([[1, 1, 0, 1], [1, 0, 0, 1]],
            [[0.03606692, 0.09497581, 0.09497581, 0.19393763], [0.16051409, 0.16051409, 0.16051409, 0.30818558]],
            [0.11669192, 0.28380975]),
    "SimpleRNN": ([[1, 1, 0, 1], [1, 0, 0, 1]],
                  [[0.0599281, 0.15122814, 0.15122814, 0.32394567], [0.3969304, 0.3969304, 0.3969304, 0.608085]],
                  None),
}


@pytest.mark.parametrize("engine", ENGINES + ["cell"])
@pytest.mark.parametrize("kind", sorted(MASKING))
def test_masking(kind, engine):
    mask, repeated, _ = MASKING[kind]
    mask = np.array(mask, bool)
    x = seq((2, 4, 3))
    want = np.repeat(np.array(repeated)[..., None], 2, axis=-1)               # (2, 4, 2): units alike
    out = keras_like(kind, 2, engine, return_sequences=True).forward(x, mask=mask)
    np.testing.assert_allclose(out, want, atol=TOL)
    zero = keras_like(kind, 2, engine, return_sequences=True, zero_output_for_mask=True).forward(x, mask=mask)
    np.testing.assert_allclose(zero, np.where(mask[..., None], want, 0), atol=TOL)
    last = keras_like(kind, 2, engine).forward(x, mask=mask)
    np.testing.assert_allclose(last, want[:, -1], atol=TOL)


@pytest.mark.parametrize("engine", ENGINES + ["cell"])
def test_masking_go_backwards(engine):
    x = seq((2, 4, 3))
    lstm = keras_like("LSTM", 2, engine, go_backwards=True)
    np.testing.assert_allclose(lstm.forward(x, mask=np.array([[0, 1, 1, 1], [0, 0, 1, 1]], bool)),
                               [[0.15341201] * 2, [0.3844719] * 2], atol=TOL)
    gru = keras_like("GRU", 2, engine, go_backwards=True)
    np.testing.assert_allclose(gru.forward(x, mask=np.array(MASKING["GRU"][0], bool)),
                               [[0.11669192] * 2, [0.28380975] * 2], atol=TOL)
    rnn = keras_like("SimpleRNN", 4, engine, go_backwards=True)
    np.testing.assert_allclose(rnn.forward(x, mask=np.array(MASKING["SimpleRNN"][0], bool)),
                               [[0.07376196] * 4, [0.43645123] * 4], atol=TOL)


@pytest.mark.parametrize("engine", ENGINES + ["cell"])
def test_statefulness(engine):
    x = seq((2, 3, 4))
    layer = keras_like("LSTM", 4, engine, stateful=True)
    want = [[0.3124785] * 4, [0.6863672] * 4]
    layer.forward(x)
    np.testing.assert_allclose(layer.forward(x), want, atol=TOL)
    layer.reset_states()
    layer.forward(x)
    np.testing.assert_allclose(layer.forward(x), want, atol=TOL)


@pytest.mark.parametrize("engine", ENGINES + ["cell"])
def test_bidirectional(engine):
    x = seq((2, 3, 4))
    fwd, bwd = [[0.39687276] * 2, [0.7237238] * 2], [[0.10004295] * 2, [0.53391594] * 2]
    out1, out2 = Bidirectional(keras_like("SimpleRNN", 2, engine), merge_mode=None).forward(x)
    np.testing.assert_allclose(out1, fwd, atol=TOL)
    np.testing.assert_allclose(out2, bwd, atol=TOL)
    both = Bidirectional(keras_like("SimpleRNN", 2, engine)).forward(x)
    np.testing.assert_allclose(both, np.concatenate([fwd, bwd], axis=1), atol=TOL)
    np.testing.assert_allclose(Bidirectional(keras_like("SimpleRNN", 2, engine), merge_mode="ave").forward(x),
                               [[0.24845785] * 2, [0.6288199] * 2], atol=TOL)


@pytest.mark.parametrize("engine", ENGINES + ["cell"])
def test_bidirectional_flat_initial_state(engine):
    x = seq((2, 4, 3))
    init = [np.arange(4).reshape((2, 2)).astype("float32") * k for k in (1, 2, 3, 4)]   # h_f, c_f, h_b, c_b
    out = Bidirectional(keras_like("LSTM", 2, engine)).forward(x, initial_state=init)
    np.testing.assert_allclose(out, [[0.20794602, 0.4577124, 0.14046375, 0.48191673],
                                     [0.6682636, 0.6711909, 0.60943645, 0.60950446]], atol=TOL)


@pytest.mark.parametrize("engine", ENGINES + ["cell"])
def test_bidirectional_statefulness_masking_and_return_state(engine):
    x = seq((2, 4, 3))
    bi = Bidirectional(keras_like("LSTM", 2, engine, stateful=True))
    want = [[0.26234663, 0.26234663, 0.16959146, 0.16959146], [0.6137073, 0.6137073, 0.5381646, 0.5381646]]
    bi.forward(x)
    np.testing.assert_allclose(bi.forward(x), want, atol=TOL)
    bi.reset_states()
    bi.forward(x)
    np.testing.assert_allclose(bi.forward(x), want, atol=TOL)
    masked = Bidirectional(keras_like("GRU", 2, engine)).forward(
        x, mask=np.array([[1, 1, 0, 1], [1, 0, 0, 1]], bool))
    np.testing.assert_allclose(masked, [[0.19393763, 0.19393763, 0.11669192, 0.11669192],
                                        [0.30818558, 0.30818558, 0.28380975, 0.28380975]], atol=TOL)
    out, h1, c1, h2, c2 = Bidirectional(keras_like("LSTM", 2, engine, return_state=True)).forward(x)
    np.testing.assert_allclose(out, [[0.1990008, 0.1990008, 0.12659755, 0.12659755],
                                     [0.52335435, 0.52335435, 0.44717982, 0.44717982]], atol=TOL)
    np.testing.assert_allclose(c1, [[0.35567185] * 2, [1.0492687] * 2], atol=TOL)
    np.testing.assert_allclose(c2, [[0.2501858] * 2, [0.941473] * 2], atol=TOL)
    np.testing.assert_allclose(h2, [[0.12659755] * 2, [0.44717982] * 2], atol=TOL)
