"""stateful=True and reset_states(): the state carries from one batch to the
next, and the gradient stops at the batch boundary (truncated BPTT).

The reference is the other way of writing truncated BPTT: PyTorch over the
same windows, the state carried by hand and detach()ed between windows (as
char-rnn ports and torch's word_language_model do)."""
import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit.data.windows import stateful_windows
from lstmkit.interop.torch import to_torch
from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional, RNN, LSTMCell

ENGINES = ["reference", "fast"]
CLASSES = [LSTM, GRU, SimpleRNN]


def torch_state(layer, state):
    return tuple(torch.tensor(s[None]) for s in state)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cls", CLASSES)
def test_consecutive_windows_equal_torch_truncated_bptt(cls, engine):
    B, T, D, H, K = 3, 4, 2, 5, 4                                 # K windows of T steps
    rng = np.random.default_rng(0)
    layer = cls(H, return_sequences=True, stateful=True, two_biases=True, dtype="float64",
                engine=engine, seed=1, bias_initializer="torch_uniform")
    layer.build((T, D))
    module = to_torch(layer)
    xs = rng.normal(size=(K, B, T, D))
    ws = rng.normal(size=(K, B, T, H))                            # upstream gradient per window
    state = None
    for k in range(K):
        # lstmkit: the layer carries its own state
        out = layer.forward(xs[k], training=True)
        dx = layer.backward(ws[k])
        # torch: carried by hand, cut from the graph at the window boundary
        x_t = torch.tensor(xs[k], requires_grad=True)
        module.zero_grad()
        hx = None if state is None else tuple(s.detach() for s in state)
        out_t, hn = module(x_t, hx if hx is None or len(hx) > 1 else hx[0])
        (out_t * torch.tensor(ws[k])).sum().backward()
        state = hn if isinstance(hn, tuple) else (hn,)
        np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(dx, x_t.grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(layer.grads["W_x"], module.weight_ih_l0.grad.numpy().T, atol=1e-12)
        np.testing.assert_allclose(layer.grads["W_h"], module.weight_hh_l0.grad.numpy().T, atol=1e-12)
        np.testing.assert_allclose(layer.grads["b_h"], module.bias_hh_l0.grad.numpy(), atol=1e-12)
        for s, s_t in zip(layer.states, state):
            np.testing.assert_allclose(s, s_t.detach().numpy()[0], atol=1e-12)
    # without the carry, window 1 would start from zeros and differ
    layer.reset_states()
    assert layer.states is None
    fresh = layer.forward(xs[1])
    assert np.abs(fresh - out).max() > 1e-3 or K == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_over_a_text_equals_torch_truncated_bptt(engine):
    # char-rnn: a token stream laid out by stateful_windows, fit(shuffle=False) with SGD,
    # two epochs (the state restarts with the text at each epoch) -- against torch
    V, E, H, B, T = 7, 3, 4, 2, 5
    ids = np.random.default_rng(1).integers(0, V, size=64)
    X, Y = stateful_windows(ids, B, T)                            # 6 windows of 2 rows
    model = lk.Sequential([lk.Embedding(V, E, input_length=T, dtype="float64"),
                           lk.LSTM(H, return_sequences=True, stateful=True, engine=engine, two_biases=True,
                                   dtype="float64"),
                           lk.Dense(V, activation="softmax", dtype="float64")], seed=2)
    emb, lstm, dense = model.layers
    t_emb = torch.nn.Embedding(V, E).double()
    t_lstm = to_torch(lstm)
    t_dense = torch.nn.Linear(H, V).double()
    with torch.no_grad():
        t_emb.weight.copy_(torch.tensor(emb.params["embeddings"]))
        t_dense.weight.copy_(torch.tensor(dense.params["W"].T))
        t_dense.bias.copy_(torch.tensor(dense.params["b"]))
    params = list(t_emb.parameters()) + list(t_lstm.parameters()) + list(t_dense.parameters())
    opt = torch.optim.SGD(params, lr=0.5)
    for epoch in range(2):
        state = None                                              # each epoch starts the text again
        for i in range(len(X) // B):
            xb, yb = torch.tensor(X[i * B:(i + 1) * B]), torch.tensor(Y[i * B:(i + 1) * B])
            hx = None if state is None else tuple(s.detach() for s in state)
            out, state = t_lstm(t_emb(xb), hx)
            loss = torch.nn.functional.cross_entropy(t_dense(out).reshape(-1, V), yb.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.compile(optimizer=lk.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=B, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(emb.params["embeddings"], t_emb.weight.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(lstm.params["W_h"], t_lstm.weight_hh_l0.detach().numpy().T, atol=1e-10)
    np.testing.assert_allclose(dense.params["W"], t_dense.weight.detach().numpy().T, atol=1e-10)
    # and it is not the same as training without the carry
    plain = lk.Sequential([lk.Embedding(V, E, input_length=T, dtype="float64"),
                           lk.LSTM(H, return_sequences=True, engine=engine, two_biases=True, dtype="float64"),
                           lk.Dense(V, activation="softmax", dtype="float64")], seed=2)
    plain.compile(optimizer=lk.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    plain.fit(X, Y, batch_size=B, epochs=2, shuffle=False, verbose=0)
    assert np.abs(plain.layers[1].params["W_h"] - lstm.params["W_h"]).max() > 1e-6


def test_stateful_windows_layout():
    ids = np.arange(103)
    X, Y = stateful_windows(ids, batch_size=4, seq_len=5)
    L = 102 // 4                                                  # 25 tokens per stream, 5 windows
    assert X.shape == Y.shape == (5 * 4, 5)
    np.testing.assert_array_equal(Y, X + 1)                       # the next token
    for i in range(4):                                            # row b of batch i+1 continues row b of batch i
        for b in range(4):
            assert X[(i + 1) * 4 + b, 0] == X[i * 4 + b, -1] + 1
    np.testing.assert_array_equal(X[:4, 0], np.arange(4) * L)     # stream b starts at b * L
    with pytest.raises(ValueError, match="too short"):
        stateful_windows(np.arange(10), batch_size=4, seq_len=5)


@pytest.mark.parametrize("engine", ENGINES)
def test_state_carries_through_inference_and_reset(engine):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    whole = LSTM(4, seed=4, engine=engine)
    layer = LSTM(4, seed=4, engine=engine, stateful=True)
    want = whole.forward(x)
    layer.forward(x[:, :3])
    np.testing.assert_allclose(layer.forward(x[:, 3:]), want, atol=1e-6)   # two halves = the whole
    layer.reset_states()
    np.testing.assert_allclose(layer.forward(x[:, :3]), whole.forward(x[:, :3]), atol=1e-6)
    # reset_states(states) sets the state to continue from
    layer.reset_states(whole.final_state)
    h, c = whole.final_state
    np.testing.assert_allclose(layer.forward(x[:, 3:]), whole.forward(x[:, 3:], initial_state=(h, c)),
                               atol=1e-6)


@pytest.mark.parametrize("cls", CLASSES)
def test_stateful_inference_through_a_folded_embedding(cls):
    # Sequential folds Embedding into the recurrent layer at inference (forward_from_embedding):
    # the carried state goes through that path too
    ids = np.random.default_rng(10).integers(0, 9, size=(3, 8))
    make = lambda s: lk.Sequential([lk.Embedding(9, 4), cls(5, return_sequences=True, stateful=s),
                                    lk.Dense(2)], seed=3)
    whole, halves = make(False), make(True)
    assert halves._folds_embedding()
    want = whole.predict(ids)
    got = np.concatenate([halves.predict(ids[:, :4]), halves.predict(ids[:, 4:])], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_batch_size_is_fixed_until_reset():
    layer = GRU(3, stateful=True, seed=5)
    layer.forward(np.zeros((4, 2, 2), "float32"))
    with pytest.raises(ValueError, match=r"carries the state of 4 sequences.*got a batch of 3"):
        layer.forward(np.zeros((3, 2, 2), "float32"))
    layer.reset_states()
    layer.forward(np.zeros((3, 2, 2), "float32"))                  # a new batch size after a reset
    with pytest.raises(ValueError, match=r"state 'h' .* must have shape \(2, 3\)"):
        layer.reset_states(np.zeros((2, 4)))


def test_fit_checks_order_and_batch_size():
    model = lk.Sequential([lk.LSTM(3, stateful=True, input_shape=(4, 2)), lk.Dense(1)], seed=0)
    model.compile(loss="mse")
    x, y = np.zeros((6, 4, 2)), np.zeros((6, 1))
    with pytest.raises(ValueError, match="shuffle=False"):
        model.fit(x, y, batch_size=3, verbose=0)
    with pytest.raises(ValueError, match="6 samples, not a multiple of 4"):
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    with pytest.raises(ValueError, match="validation data have 5 samples"):
        model.fit(x, y, batch_size=3, shuffle=False, verbose=0, validation_data=(x[:5], y[:5]))
    model.fit(x, y, batch_size=3, shuffle=False, verbose=0, epochs=2, validation_data=(x, y))
    model.reset_states()
    assert model.layers[0].states is None


def test_custom_cell_layer_is_stateful_too():
    x = np.random.default_rng(6).normal(size=(2, 6, 3))
    layer = RNN(LSTMCell(3), return_sequences=True, stateful=True, seed=7, dtype="float64")
    whole = RNN(LSTMCell(3), return_sequences=True, seed=7, dtype="float64")
    full = whole.forward(x)
    np.testing.assert_allclose(layer.forward(x[:, :3]), full[:, :3], atol=1e-12)
    np.testing.assert_allclose(layer.forward(x[:, 3:]), full[:, 3:], atol=1e-12)   # continues
    layer.reset_states()
    np.testing.assert_allclose(layer.forward(x[:, :3]), full[:, :3], atol=1e-12)


def test_bidirectional_is_stateful_in_both_directions():
    # each direction carries its own final state into the next batch, as Keras
    x = np.random.default_rng(8).normal(size=(2, 6, 3))
    bi = Bidirectional(LSTM(3, return_sequences=True, stateful=True, seed=9, dtype="float64"))
    assert bi.stateful and bi.backward_layer.stateful
    bi.forward(x[:, :3])
    carried = (bi.forward_layer.states, bi.backward_layer.states)
    second = bi.forward(x[:, 3:])
    plain = Bidirectional(LSTM(3, return_sequences=True, seed=9, dtype="float64"))
    np.testing.assert_allclose(second, plain.forward(x[:, 3:], initial_state=carried), atol=1e-12)
    bi.reset_states()
    assert bi.forward_layer.states is None and bi.backward_layer.states is None


def test_stateful_is_saved(tmp_path):
    model = lk.Sequential([lk.GRU(3, stateful=True, return_sequences=True, input_shape=(4, 2))], seed=0)
    model.save(tmp_path / "m.lstmkit")
    assert lk.load_model(tmp_path / "m.lstmkit").layers[0].stateful is True
