"""dc_t/dc_{t-1}: the backward pass, the seeds' closed form and finite
differences agree; the diagonal diag(f_t) alone is not the whole story."""
import numpy as np
import pytest

from lstmkit.analysis import lstm_cell_state_jacobian, lstm_cell_state_jacobian_analytic
from lstmkit.analysis.jacobian import _state_before
from lstmkit.cells import lstm

B, T, D, H = 2, 5, 3, 4


def random_point(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D))
    W_x = rng.normal(scale=0.7, size=(D, 4 * H))
    W_h = rng.normal(scale=0.7, size=(H, 4 * H))
    b_x = rng.normal(scale=0.3, size=(4 * H,))
    b_h = rng.normal(scale=0.3, size=(4 * H,))
    state0 = (rng.normal(size=(B, H)), rng.normal(size=(B, H)))
    return x, W_x, W_h, b_x, b_h, state0


@pytest.mark.parametrize("t", [1, 2, T - 1])
def test_backward_pass_equals_closed_form(t):
    args = random_point(seed=t)
    J = lstm_cell_state_jacobian(*args, t=t)
    J_closed = lstm_cell_state_jacobian_analytic(*args, t=t)
    assert J.shape == (B, H, H)
    np.testing.assert_allclose(J, J_closed, rtol=0, atol=1e-10)

    # the gate terms matter: diag(f_t) alone is off by much more than the tolerance
    forget_gate = lstm.forward(args[0][:, t:t + 1], *args[1:5],
                               _state_before(*args, t)[:2])[2]["gates"][:, 0, H:2 * H]
    diagonal_only = np.zeros_like(J)
    diagonal_only[:, np.arange(H), np.arange(H)] = forget_gate
    assert np.abs(J - diagonal_only).max() > 1e-2


def test_jacobian_matches_finite_differences():
    x, W_x, W_h, b_x, b_h, state0 = args = random_point(seed=5)
    t, eps = 3, 1e-6
    h_prev, c_prev, o_prev = _state_before(*args, t)

    def c_next(c):
        h = o_prev * np.tanh(c)                                # h_{t-1} follows c_{t-1}
        return lstm.forward(x[:, t:t + 1], W_x, W_h, b_x, b_h, (h, c))[1][1]

    J_fd = np.empty((B, H, H))
    for j in range(H):
        step = np.zeros((B, H))
        step[:, j] = eps
        J_fd[:, :, j] = (c_next(c_prev + step) - c_next(c_prev - step)) / (2 * eps)
    np.testing.assert_allclose(lstm_cell_state_jacobian(*args, t=t), J_fd, rtol=0, atol=1e-8)


def test_forget_gate_near_one_keeps_the_jacobian_near_identity():
    # a large forget bias and small recurrent weights: the cell state is a conveyor belt
    x, W_x, W_h, b_x, b_h, state0 = random_point(seed=3)
    b_x = b_x.copy()
    b_x[H:2 * H] = 8.0
    J = lstm_cell_state_jacobian_analytic(x, W_x, 0.01 * W_h, b_x, b_h, state0, t=2)
    np.testing.assert_allclose(J, np.broadcast_to(np.eye(H), J.shape), atol=1e-2)


def test_step_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"t must be an integer step with 1 <= t < 5.*got 0"):
        lstm_cell_state_jacobian(*random_point(), t=0)
