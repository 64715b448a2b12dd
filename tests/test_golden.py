"""Golden numbers: constant, formula-made weights and a fixed input pin the
outputs of every cell, so no rewrite of an engine can drift unnoticed.

The expected values were produced once by torch.nn.LSTM/GRU/RNN (float64)
with the same weights (weight_ih = W_x.T, weight_hh = W_h.T, bias_ih = b_x,
bias_hh = b_h) and are written out here so this test needs nothing but lstmkit.
"""
import numpy as np
import pytest

from lstmkit.engines import get_engine

GOLDEN_LAST_OUTPUT = {
    "lstm": [[0.0605014885, -0.0298086595, -0.053296206], [0.0571655092, 0.0488449094, -0.0949076387]],
    "gru": [[0.1167710726, -0.0432990297, -0.0497006317], [0.1071366654, 0.1058241439, -0.1643625779]],
    "simple_rnn": [[0.0902396571, -0.0782643944, -0.1523789733], [0.1954516351, 0.0232074096, -0.3192499883]],
}
N_GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def formula_weights(torch_shape, offset):
    # 0.1 * sin(k + offset), k running over the torch tensor in row-major order
    k = np.arange(np.prod(torch_shape), dtype=np.float64).reshape(torch_shape)
    return 0.1 * np.sin(k + offset)


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("cell", sorted(GOLDEN_LAST_OUTPUT))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_golden_outputs(cell, engine, dtype):
    D, H, G = 2, 3, N_GATES[cell]
    W_x = formula_weights((G * H, D), 0.0).T.astype(dtype)
    W_h = formula_weights((G * H, H), 1.0).T.astype(dtype)
    b_x = formula_weights((G * H,), 2.0).astype(dtype)
    b_h = formula_weights((G * H,), 3.0).astype(dtype)
    x = np.linspace(-1, 1, 12).reshape(2, 3, 2).astype(dtype)
    hs, state, _ = get_engine(cell, engine).forward(np.ascontiguousarray(x), np.ascontiguousarray(W_x),
                                                    np.ascontiguousarray(W_h), b_x, b_h)
    tol = 1e-9 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(hs[:, -1], GOLDEN_LAST_OUTPUT[cell], atol=tol, rtol=0)
    np.testing.assert_allclose(state[0], GOLDEN_LAST_OUTPUT[cell], atol=tol, rtol=0)
