"""The peephole LSTM of examples/custom-cell stays correct: its backward
against finite differences, and with closed peepholes it is lstmkit's LSTM."""
import numpy as np

import lstmkit as lk
from example_scripts import load_example as _load


def load_example():
    return _load("custom-cell/peephole.py", "peephole_example")


def test_peephole_backward_by_finite_differences():
    cell = load_example().PeepholeLSTMCell(4)
    errors = lk.gradcheck.check_cell(cell, input_dim=3)
    assert "step: p" in errors and "sequence: p" in errors
    assert max(errors.values()) < 1e-6, errors


def test_closed_peepholes_are_the_lstm_and_open_ones_are_not(tmp_path):
    Peephole = load_example().PeepholeLSTMCell
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    ours = lk.RNN(Peephole(4), return_sequences=True, seed=2, dtype="float64")
    ref = lk.LSTM(4, return_sequences=True, seed=2, dtype="float64")
    np.testing.assert_allclose(ours.forward(x, mask=mask), ref.forward(x, mask=mask), atol=1e-14)
    ours.params["p"][...] = 0.5
    assert np.abs(ours.forward(x, mask=mask) - ref.forward(x, mask=mask)).max() > 1e-3
    model = lk.Sequential([ours], seed=0)
    model.save(tmp_path / "p.lstmkit")
    again = lk.load_model(tmp_path / "p.lstmkit")               # the class registered itself on import
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
