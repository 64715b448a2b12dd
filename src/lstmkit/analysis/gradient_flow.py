"""Gradient flow through time: the seeds' vanishing-gradient experiment.

A simple RNN, an LSTM and a GRU of the same size read the same random
sequences. The loss looks at the last step only, L = sum_b u . h_T[b], so
every earlier step matters to L only through the recurrence. Backpropagating
one step at a time with the reference engine gives dL/dh_k (and, for the
LSTM, dL/dc_k) for every k; their norms against the distance T - k from the
loss show how fast the signal fades: in a simple RNN through the product of
W_h^T diag(tanh') factors, in the LSTM along the cell state through the
product of forget gates (plus small terms through h), which stays near 1 when
the forget-gate bias starts at 1.

Everything runs in float64, so decay to 1e-30 is still resolved.
"""
from dataclasses import dataclass, field

import numpy as np

from ..engines import get_engine
from ..layers import GRU, LSTM, SimpleRNN

LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
LABELS = {"simple_rnn": "simple RNN", "lstm": "LSTM", "gru": "GRU"}


@dataclass
class FlowResult:
    """norms[name] (T+1,): mean over the batch of ||dL/dh_{T-d}|| for d = 0..T.
    LSTM also under "lstm_c" (dL/dc). forget (N,) sampled forget-gate values
    f_t and cell_jacobian_diag (N,) the diagonal of dc_t/dc_{t-1}."""
    steps: int
    units: int
    norms: dict = field(default_factory=dict)
    forget: np.ndarray = None
    cell_jacobian_diag: np.ndarray = None

    def table(self, distances=(1, 10, 50, 100, 150, 200, 300, 500)):
        """Rows of (distance, {series: norm}) for the distances within the sequence."""
        return [(d, {k: float(v[d]) for k, v in self.norms.items()}) for d in distances if d <= self.steps]

    def ratio(self, a, b, distance):
        return float(self.norms[a][distance] / self.norms[b][distance])


def make_layer(cell, units, input_dim, seed, forget_bias=1.0, weight_scale=1.0):
    """weight_scale multiplies the recurrent weights W_h (orthogonal at 1.0):
    the factor of every step's Jacobian that decides vanishing or exploding."""
    layer = LAYERS[cell](units, seed=seed, dtype="float64", input_shape=(None, input_dim))
    if cell == "lstm":
        layer.params["b_x"][units:2 * units] = forget_bias        # i, f, g, o blocks: f is the second
    if weight_scale != 1.0:
        layer.params["W_h"] *= weight_scale                       # in place: the packed views follow
    return layer


def step_by_step(engine, layer, x):
    """Forward one step at a time so each step keeps its own cache for backward."""
    p = layer.params
    B = x.shape[0]
    state = tuple(np.zeros((B, layer.units)) for _ in engine.STATE_NAMES)
    caches = []
    for t in range(x.shape[1]):
        _, state, cache = engine.forward(x[:, t:t + 1], p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"),
                                         state, **layer.cell_options())                   # (B, 1, D)
        caches.append(cache)
    return state, caches


def backprop_norms(engine, caches, dh_T):
    """Walk back from dL/dh_T; returns (T+1, n_states) mean norms, index d = distance."""
    n_states = len(engine.STATE_NAMES)
    dstate = (dh_T,) + tuple(np.zeros_like(dh_T) for _ in range(n_states - 1))
    norms = [[np.linalg.norm(s, axis=1).mean() for s in dstate]]
    for cache in reversed(caches):
        g = engine.backward(None, dstate, cache)
        dstate = tuple(g["state0"])                             # dL/d(state_{t-1}), each (B, H)
        norms.append([np.linalg.norm(s, axis=1).mean() for s in dstate])
    return np.array(norms)                                      # (T+1, n_states)


def lstm_cell_jacobian_diag(cache, W_h):
    """Diagonal of dc_t/dc_{t-1} for t >= 1 from a whole-sequence LSTM cache.

    c_t = f_t c_{t-1} + i_t g_t, and the gates read h_{t-1} = o_{t-1} tanh(c_{t-1}), so
    dc_t[j]/dc_{t-1}[j] = f_t[j] + dh_{t-1}[j]/dc_{t-1}[j] *
        (c_{t-1}[j] f'(.) W_h[j, f_j] + g_t[j] i'(.) W_h[j, i_j] + i_t[j] g'(.) W_h[j, g_j]).
    """
    gates = cache["gates"]                                      # (B, T, 4H) activated i, f, g, o
    H = W_h.shape[0]
    i, f, g = gates[:, 1:, :H], gates[:, 1:, H:2 * H], gates[:, 1:, 2 * H:3 * H]   # (B, T-1, H)
    o_prev = gates[:, :-1, 3 * H:]
    tanh_c_prev = cache["tanh_cs"][:, :-1]
    c_prev = cache["c_prevs"][:, 1:]
    dh_dc = o_prev * (1 - tanh_c_prev ** 2)                     # dh_{t-1}/dc_{t-1}, elementwise
    k = np.arange(H)
    through_h = (c_prev * f * (1 - f) * W_h[k, H + k] + g * i * (1 - i) * W_h[k, k]
                 + i * (1 - g ** 2) * W_h[k, 2 * H + k])
    return (f + dh_dc * through_h).ravel()


def gradient_flow(steps=200, units=64, input_dim=64, batch=32, seed=0, forget_bias=1.0,
                  cells=("simple_rnn", "lstm", "gru"), progress=None, weight_scale=1.0):
    """Run the experiment; progress(cell_name) is called before each cell if given.
    weight_scale: see make_layer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, input_dim))              # (B, T, D), the same for every cell
    u = rng.normal(size=units) / np.sqrt(units)                 # readout: L = sum_b u . h_T[b]
    dh_T = np.broadcast_to(u, (batch, units)).copy()            # (B, H) dL/dh_T
    result = FlowResult(steps=steps, units=units)
    for cell in cells:
        if progress:
            progress(cell)
        engine = get_engine(cell, "reference")
        layer = make_layer(cell, units, input_dim, seed, forget_bias, weight_scale)
        _, caches = step_by_step(engine, layer, x)
        norms = backprop_norms(engine, caches, dh_T)
        result.norms[cell] = norms[:, 0]
        if cell == "lstm":
            result.norms["lstm_c"] = norms[:, 1]
            p = layer.params
            _, _, cache = engine.forward(x, p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"))
            result.forget = cache["gates"][:, :, units:2 * units].ravel()
            result.cell_jacobian_diag = lstm_cell_jacobian_diag(cache, p["W_h"])
    return result
