"""Finite differences for the gradient checks (float64, central differences).

The loss is a random linear function of everything a cell or layer returns,
L = sum(w_out * out) + sum(w_s * s) over the final states, so every output
and every state receives a different, non-trivial upstream gradient.
"""
import numpy as np

EPS = 1e-6


def numeric_grad(loss, a, eps=EPS):
    """dloss/da by central differences, perturbing the array a in place."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = loss()
        a[idx] = old - eps
        down = loss()
        a[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def rel_err(analytic, numeric):
    """Largest absolute difference, relative to the largest entry of either."""
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


def cell_gradient_errors(cell, x, W_x, W_h, b_x=None, b_h=None, state0=None, seed=0, **fwd_kwargs):
    """Run cell.forward/backward once and compare every returned gradient with
    finite differences. Returns {name: relative error}; names are x, W_x, W_h,
    b_x, b_h (when given) and state0[i]."""
    rng = np.random.default_rng(seed)
    hs, state, cache = cell.forward(x, W_x, W_h, b_x, b_h, state0, **fwd_kwargs)
    w_hs = rng.normal(size=hs.shape)                           # upstream gradient of the outputs
    w_state = [rng.normal(size=s.shape) for s in state]        # ... and of the final states
    grads = cell.backward(w_hs, tuple(w_state), cache)

    def loss():
        out, st, _ = cell.forward(x, W_x, W_h, b_x, b_h, state0, **fwd_kwargs)
        return float((out * w_hs).sum() + sum((s * w).sum() for s, w in zip(st, w_state)))

    arrays = {"x": x, "W_x": W_x, "W_h": W_h, "b_x": b_x, "b_h": b_h}
    errors = {}
    for name, a in arrays.items():
        if a is None:
            assert grads[name] is None, f"{name} was not given, its gradient must be None"
            continue
        errors[name] = rel_err(grads[name], numeric_grad(loss, a))
    for i, s0 in enumerate(state0 or ()):
        errors[f"state0[{i}]"] = rel_err(grads["state0"][i], numeric_grad(loss, s0))
    return errors


def map_nested(f, nested):
    """Apply f to every array in a nest of tuples/lists (layers' state nesting)."""
    if isinstance(nested, (tuple, list)):
        return type(nested)(map_nested(f, n) for n in nested)
    return f(nested)


def flatten_nested(nested):
    if isinstance(nested, (tuple, list)):
        return [a for n in nested for a in flatten_nested(n)]
    return [nested]


def layer_gradient_errors(layer, x, initial_state=None, seed=0, **fwd_kwargs):
    """Same for a layer: forward(x, initial_state=..., **kw) -> out,
    backward(dout, dstate) -> dx; grads, initial_state_grad. The loss also
    reads the final states (layer.final_state), so their gradients are checked.
    Returns {name: relative error} for x, every param and every initial state."""
    rng = np.random.default_rng(seed)
    out = layer.forward(x, initial_state=initial_state, **fwd_kwargs)
    w = rng.normal(size=out.shape)
    w_state = map_nested(lambda s: rng.normal(size=s.shape), layer.final_state)
    dx = layer.backward(w, w_state)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    state_grads = [g.copy() for g in flatten_nested(layer.initial_state_grad)]

    def loss():
        out = layer.forward(x, initial_state=initial_state, **fwd_kwargs)
        states = zip(flatten_nested(layer.final_state), flatten_nested(w_state))
        return float((out * w).sum() + sum((s * ws).sum() for s, ws in states))

    errors = {"x": rel_err(dx, numeric_grad(loss, x))}
    params = layer.params
    assert set(grads) == set(params)
    for k, p in params.items():
        errors[k] = rel_err(grads[k], numeric_grad(loss, p))
    if initial_state is not None:
        for i, (g, s0) in enumerate(zip(state_grads, flatten_nested(initial_state))):
            errors[f"initial_state[{i}]"] = rel_err(g, numeric_grad(loss, s0))
    return errors
