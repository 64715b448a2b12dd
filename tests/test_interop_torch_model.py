"""Whole models to and from PyTorch: to_torch(model) computes what the model
computes (masks with holes, both masked-output conventions, bidirectional
merges, float32 and float64), a training step on either side changes the same
weights by the same amounts, and from_torch reads them back."""
import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit.interop.torch import from_torch, to_torch
from lstmkit.interop.torch_model import TorchModel


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for v in model.params.values():
        v[...] = rng.normal(scale=scale, size=v.shape)
    return model


def ragged_ids(rng, batch=6, T=9, vocab=30):
    x = rng.integers(1, vocab, size=(batch, T))
    x[0, :3] = 0          # pre-padding
    x[1, 5:] = 0          # post-padding
    x[2, 2:4] = 0         # a hole in the middle
    x[3] = 0              # nothing at all
    return x


def classifier(dtype="float64", zero_output=False, cell=lk.LSTM):
    return lk.Sequential([
        lk.Embedding(30, 5, input_length=9, mask_zero=True, dtype=dtype),
        lk.Bidirectional(lk.GRU(4, return_sequences=True, dtype=dtype), merge_mode="sum"),
        cell(4, return_sequences=True, zero_output_for_mask=zero_output, dtype=dtype),
        lk.Bidirectional(lk.SimpleRNN(3, dtype=dtype), backward_layer=lk.LSTM(3, go_backwards=True, dtype=dtype)),
        lk.Dense(1, activation="sigmoid", dtype=dtype)])


def torch_out(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-12)])
@pytest.mark.parametrize("zero_output", [False, True])
def test_same_outputs_masked_bidirectional_stacked(dtype, tol, zero_output):
    rng = np.random.default_rng(1)
    model = randomize(classifier(dtype, zero_output))
    # a per-step head too: the masked outputs of the middle layer reach the output
    seq = randomize(lk.Sequential([
        lk.Embedding(30, 5, input_length=9, mask_zero=True, dtype=dtype),
        lk.LSTM(4, return_sequences=True, zero_output_for_mask=zero_output, dtype=dtype),
        lk.SimpleRNN(3, return_sequences=True, go_backwards=True, activation="relu",
                     zero_output_for_mask=zero_output, dtype=dtype),
        lk.Dropout(0.5, dtype=dtype), lk.Dense(4, activation="softmax", dtype=dtype)]), seed=2)
    x = ragged_ids(rng)
    for m in (model, seq):
        module = to_torch(m)
        assert isinstance(module, TorchModel)
        assert next(module.parameters()).dtype == (torch.float64 if dtype == "float64" else torch.float32)
        np.testing.assert_allclose(torch_out(module.eval(), x), m.predict(x), rtol=0, atol=tol)


def test_float_input_flatten_and_merge_modes():
    rng = np.random.default_rng(3)
    for mode in ("concat", "mul", "ave"):
        model = lk.Sequential([lk.Bidirectional(lk.LSTM(4, return_sequences=True), merge_mode=mode),
                               lk.GRU(3, return_sequences=True, use_bias=False), lk.Flatten(),
                               lk.Dense(2, activation="tanh")])
        model.build((6, 3))
        randomize(model)
        x = rng.normal(size=(4, 6, 3)).astype(np.float32)
        np.testing.assert_allclose(torch_out(to_torch(model), x), model.predict(x), atol=1e-6)


def test_a_bias_lstmkit_does_not_have_does_not_train():
    module = to_torch(classifier())
    lstm = module.blocks[2].rnn
    assert not lstm.bias_hh_l0.requires_grad and torch.all(lstm.bias_hh_l0 == 0)
    gru = module.blocks[1].rnn                   # the GRU keeps both biases, as lstmkit's does
    assert gru.bias_hh_l0.requires_grad


def lstmkit_step(model, x, y, lr):
    model.compile(optimizer=lk.SGD(learning_rate=lr), loss="binary_crossentropy")
    model.train_on_batch(x, y)


def torch_step(module, x, y, lr):
    module.train()
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=lr)
    out = module(torch.from_numpy(x))
    loss = torch.nn.functional.binary_cross_entropy(out, torch.from_numpy(y).to(out.dtype)[:, None])
    opt.zero_grad()
    loss.backward()
    opt.step()
    module.eval()


@pytest.mark.parametrize("cell", [lk.LSTM, lk.GRU, lk.SimpleRNN])
def test_a_training_step_on_each_side_gives_the_same_weights(cell):
    rng = np.random.default_rng(4)
    x = ragged_ids(rng)
    y = rng.integers(0, 2, size=len(x)).astype(np.float64)
    ours = randomize(classifier("float64", cell=cell), seed=5)
    theirs = to_torch(ours)
    before = {k: v.copy() for k, v in ours.params.items()}
    lstmkit_step(ours, x, y, lr=0.5)
    torch_step(theirs, x, y, lr=0.5)
    back = from_torch(theirs)
    moved = 0.0
    for k, v in ours.params.items():
        np.testing.assert_allclose(back.params[k], v, rtol=0, atol=1e-10, err_msg=k)
        moved = max(moved, np.abs(v - before[k]).max())
    assert moved > 1e-3                          # the step did change the weights
    # and the other way: the stepped lstmkit model, converted again, equals the stepped module
    np.testing.assert_allclose(torch_out(to_torch(ours), x), torch_out(theirs, x), atol=1e-12)
    np.testing.assert_allclose(back.predict(x), ours.predict(x), atol=1e-12)


def test_per_step_training_parity_and_loading_into_a_given_model():
    rng = np.random.default_rng(6)
    make = lambda: lk.Sequential([lk.Embedding(12, 6, input_length=7, dtype="float64"),
                                  lk.LSTM(8, return_sequences=True, dtype="float64"),
                                  lk.GRU(5, return_sequences=True, dtype="float64"),
                                  lk.Dense(12, activation="softmax", dtype="float64")])
    ours = randomize(make(), seed=7)
    theirs = to_torch(ours)
    x = rng.integers(0, 12, size=(4, 7))
    y = rng.integers(0, 12, size=(4, 7))
    ours.compile(optimizer=lk.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    opt = torch.optim.Adam([p for p in theirs.parameters() if p.requires_grad], lr=0.01, eps=1e-7)  # Keras's eps
    for _ in range(3):
        ours.train_on_batch(x, y)
        theirs.train()
        p = theirs(torch.from_numpy(x))
        loss = torch.nn.functional.nll_loss(torch.log(p).reshape(-1, 12), torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    target = randomize(make(), seed=8)
    from_torch(theirs, model=target)
    for (k, v), w in zip(ours.params.items(), target.params.values()):
        np.testing.assert_allclose(w, v, rtol=0, atol=1e-9, err_msg=k)


def test_what_to_torch_refuses():
    with pytest.raises(ValueError, match="reset_after=False"):
        to_torch(lk.Sequential([lk.GRU(3, reset_after=False, input_shape=(None, 2))]))
    with pytest.raises(TypeError, match="RNN\\(cell\\) runs a cell written in Python"):
        to_torch(lk.Sequential([lk.layers.RNN(lk.layers.GRUCell(3), input_shape=(None, 2))]))
    with pytest.raises(ValueError, match="not built"):
        to_torch(lk.Sequential([lk.LSTM(3)]))
    with pytest.warns(UserWarning, match="recurrent_dropout=0.2 are not carried over"):
        to_torch(lk.Sequential([lk.LSTM(3, recurrent_dropout=0.2, input_shape=(None, 2))]))
    other = lk.Sequential([lk.LSTM(3, input_shape=(None, 2)), lk.Dense(1)])
    module = to_torch(lk.Sequential([lk.LSTM(3, input_shape=(None, 2))]))
    with pytest.raises(ValueError, match="holds 1 layers' weights but model"):
        from_torch(module, model=other)
