"""Gate activations read from the reference engine's cache."""
import numpy as np

import lstmkit as lk
from lstmkit.analysis.gates import first_recurrent, gate_activations
from lstmkit.cells.activations import sigmoid


def test_lstm_gates_match_a_hand_computed_first_step():
    model = lk.Sequential([lk.Embedding(10, 4, input_length=5), lk.LSTM(3), lk.Dense(2)], seed=0)
    ids = np.array([[1, 2, 3, 4, 5]])
    gates, cell = gate_activations(model, ids)
    assert cell == "lstm"
    assert set(gates) == {"input_gate", "forget_gate", "candidate", "output_gate", "cell_state_tanh"}
    assert all(v.shape == (5, 3) for v in gates.values())
    layer = model.layers[1]
    x0 = model.layers[0].forward(ids)[0, 0]                              # (4,) embedded first token
    z = x0 @ layer.params["W_x"] + layer.params["b_x"]                   # h_0 = 0
    assert np.allclose(gates["forget_gate"][0], sigmoid(z[3:6]), atol=1e-6)
    assert np.allclose(gates["candidate"][0], np.tanh(z[6:9]), atol=1e-6)
    assert ((gates["input_gate"] > 0) & (gates["input_gate"] < 1)).all()


def test_bidirectional_uses_the_forward_half_and_gru_names():
    model = lk.Sequential([lk.Embedding(10, 4, input_length=6), lk.Bidirectional(lk.GRU(3)), lk.Dense(2)], seed=0)
    _, layer = first_recurrent(model)
    assert layer is model.layers[1].forward_layer
    gates, cell = gate_activations(model, np.array([[1, 2, 3, 4, 5, 6]]))
    assert cell == "gru" and set(gates) == {"reset_gate", "update_gate", "candidate"}
