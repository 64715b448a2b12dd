"""NaN and Inf in training: stopped with a message naming the layer, the parameter, the epoch and the
batch, weights left as before the bad batch (and a saved checkpoint untouched), or skipped and counted;
the clipping example shows the remedy."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.models.checks import NonFiniteError

from example_scripts import load_example


def small(seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(64, 6, 2)), rng.normal(size=(64, 1))
    m = lk.Sequential([lk.LSTM(4, name="lstm", input_shape=(6, 2)), lk.Dense(1, name="head")], seed=1)
    m.compile(optimizer=lk.SGD(0.01), loss="mse")
    return m, x, y


class PoisonGradient(lk.Callback):
    """Makes the backward of layer 'lstm' write a NaN into W_h's gradient at chosen batches."""

    def __init__(self, model, at):
        self.at, self.count = set(at), 0
        layer = model.layers[0]
        original = layer.backward

        def backward(dout):
            dx = original(dout)
            self.count += 1
            if self.count in self.at:
                layer.grads["W_h"][1, 2] = np.nan
            return dx
        layer.backward = backward


def test_nan_gradient_stops_naming_layer_parameter_epoch_and_batch(tmp_path):
    m, x, y = small()
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    m.save(tmp_path / "good.lstmkit")
    before = (tmp_path / "good.lstmkit").read_bytes()
    PoisonGradient(m, at=[4 + 3])                       # epoch 2 (4 batches an epoch), batch 3
    weights = {}

    class Keep(lk.Callback):
        def on_batch_end(self, batch, logs=None):
            weights.update(self.model.get_weights())
    with pytest.raises(NonFiniteError) as e:
        m.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False,
              callbacks=[Keep(), lk.ModelCheckpoint(tmp_path / "good.lstmkit")])
    err = e.value
    assert (err.what, err.layer, err.param, err.batch) == ("the gradient", "lstm", "W_h", 3)
    assert err.epoch == 2
    assert ("the gradient of layer 'lstm', parameter 'W_h' holds nan at index (1, 2) (1 non-finite values) at "
            "epoch 2, batch 3 of 4") in str(err)
    for k, v in m.get_weights().items():                # the bad update was not applied
        np.testing.assert_array_equal(v, weights[k])
    # the checkpoint written at the end of epoch 1 is the last good one, intact
    assert lk.load_model(tmp_path / "good.lstmkit").get_weights().keys() == m.get_weights().keys()
    assert (tmp_path / "good.lstmkit").read_bytes() != before   # epoch 1 of this fit saved it, then no more


def test_skip_counts_and_reports_bad_batches(capsys):
    m, x, y = small()
    PoisonGradient(m, at=[2, 5, 6])
    h = m.fit(x, y, epochs=2, batch_size=16, verbose=0, on_nonfinite="skip")
    assert h.history["skipped_batches"] == [1, 2]
    assert "Epoch 2: skipped 2 of 4 batches" in capsys.readouterr().err
    assert all(np.isfinite(v).all() for v in m.get_weights().values())


def test_nan_loss_names_the_layer_that_overflows():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(32, 30, 2)), rng.normal(size=(32, 1))
    m = lk.Sequential([lk.SimpleRNN(8, activation="relu", name="rnn", input_shape=(30, 2)), lk.Dense(1)], seed=0)
    m.layers[0].params["W_h"][...] *= 1e3               # finite weights, a forward that overflows over 30 steps
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NonFiniteError, match=r"the loss became (nan|inf) at epoch 1, batch 1 of 2; the output "
                                             r"of layer 'rnn' is the first to overflow; its largest weight is "
                                             r"'W_h' with \|w\| = \d"):
        m.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_train_on_batch_names_the_parameter_without_an_epoch():
    m, x, y = small()
    PoisonGradient(m, at=[1])
    with pytest.raises(NonFiniteError, match=r"parameter 'W_h' holds nan at index \(1, 2\) \(1 non-finite "
                                             r"values\); try a lower"):
        m.train_on_batch(x[:8], y[:8])


def test_clipping_example_without_and_with_clipnorm():
    clipping = load_example("gradient-clipping/clipping.py", "clipping")
    _, err, _ = clipping.train(clipnorm=None, epochs=3)
    assert isinstance(err, NonFiniteError) and err.epoch == 1 and "simple_rnn" in str(err)
    losses, err, _ = clipping.train(clipnorm=5.0, epochs=3)
    assert err is None and losses[-1] < 0.5 * clipping.baseline() and losses[-1] < losses[0]


def test_nan_stop_leaves_the_last_good_fit_checkpoint(tmp_path):
    """fit(checkpoint_dir=...): the stop comes before the bad update and before any checkpoint of that
    batch, so the newest checkpoint is the state after the last good batch, and resuming from it with
    the poison gone trains on."""
    from lstmkit.models import checkpoint as ckpt
    m, x, y = small()
    PoisonGradient(m, at=[6])                           # epoch 2, batch 2
    weights = {}

    class Keep(lk.Callback):
        def on_batch_end(self, batch, logs=None):
            weights.update(self.model.get_weights())
    with pytest.raises(NonFiniteError):
        m.fit(x, y, epochs=3, batch_size=16, verbose=0, checkpoint_dir=tmp_path, checkpoint_every=1,
              callbacks=[Keep()])
    path, tensors, state = ckpt.latest(tmp_path, log=pytest.fail)
    assert (state["epoch"], state["batch"]) == (1, 1)
    for k, v in weights.items():
        assert tensors[k].tobytes() == v.tobytes()
    m2, _, _ = small()
    m2.fit(x, y, epochs=3, batch_size=16, verbose=0, checkpoint_dir=tmp_path, checkpoint_every=1,
           callbacks=[Keep()], resume=True)
    assert all(np.isfinite(v).all() for v in m2.get_weights().values())
