"""Finite-difference checks of hand-written backward passes (float64, central differences).

The loss is a random linear function of everything a cell or layer returns,
L = sum(w_out * out) + sum(w_s * s) over the final states, so every output
and every state receives a different, non-trivial upstream gradient. Each
function returns {what: relative error}; below 1e-6 in float64 is a correct
backward (a wrong one is off by far more, typically 1e-2 or worse).

    check_cell(cell, input_dim)     a cell of lstmkit.layers.RNN: one step, then a masked
                                    sequence through RNN(cell) both ways
    layer_gradient_errors(layer, x) any layer with forward/backward/params/grads
    cell_gradient_errors(module, ...) an engine module (lstmkit.cells.lstm, kernels...)
    numeric_grad(loss, a), rel_err(analytic, numeric)
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


def map_nested(f, nested):
    """Apply f to every array in a nest of tuples/lists (layers' state nesting); None stays None."""
    if isinstance(nested, (tuple, list)):
        return type(nested)(map_nested(f, n) for n in nested)
    return None if nested is None else f(nested)


def flatten_nested(nested):
    if isinstance(nested, (tuple, list)):
        return [a for n in nested for a in flatten_nested(n)]
    return [] if nested is None else [nested]


def _dot(a, b):
    """sum(a * b) over two nests of arrays with the same structure."""
    return float(sum((x * y).sum() for x, y in zip(flatten_nested(a), flatten_nested(b))))


def cell_gradient_errors(cell, x, W_x, W_h, b_x=None, b_h=None, state0=None, seed=0, **fwd_kwargs):
    """Run an engine's cell.forward/backward once (the contract of lstmkit.cells)
    and compare every returned gradient with finite differences. Returns
    {name: relative error}; names are x, W_x, W_h, b_x, b_h (when given) and state0[i]."""
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


def layer_gradient_errors(layer, x, initial_state=None, seed=0, **fwd_kwargs):
    """Same for a layer: forward(x, initial_state=..., **kw) -> out (an array or
    a list of arrays), backward(dout, dstate) -> dx; grads, initial_state_grad.
    The loss also reads the final states (layer.final_state), so their
    gradients are checked. Returns {name: relative error} for x, every param
    and every initial state."""
    rng = np.random.default_rng(seed)
    out = layer.forward(x, initial_state=initial_state, **fwd_kwargs)
    w = map_nested(lambda a: rng.normal(size=a.shape), out)
    w_state = map_nested(lambda s: rng.normal(size=s.shape), layer.final_state)
    dx = layer.backward(w, w_state)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    state_grads = [g.copy() for g in flatten_nested(layer.initial_state_grad)]

    def loss():
        out = layer.forward(x, initial_state=initial_state, **fwd_kwargs)
        return _dot(out, w) + _dot(layer.final_state, w_state)

    errors = {"x": rel_err(dx, numeric_grad(loss, x))}
    params = layer.params
    assert set(grads) == set(params), (sorted(grads), sorted(params))
    for k, p in params.items():
        errors[k] = rel_err(grads[k], numeric_grad(loss, p))
    if initial_state is not None:
        for i, (g, s0) in enumerate(zip(state_grads, flatten_nested(initial_state))):
            errors[f"initial_state[{i}]"] = rel_err(g, numeric_grad(loss, s0))
    return errors


def check_cell(cell, input_dim=None, batch=3, steps=4, seed=0):
    """Finite differences for a cell of lstmkit.layers.RNN (the protocol of
    lstmkit.layers.Cell), in float64. Builds the cell in float64 if it is not
    built yet (then input_dim is needed). Two checks:

    - one step: x_t, every state given to call() and every weight, under a
      random linear loss of out_t and new_states ("step: W" ...);
    - a sequence: RNN(cell) over `steps` steps with a mask holding a gap and
      padding, returning the sequence and the states, from a random initial
      state ("sequence: W" ...). This catches a backward that is right for
      one step but reads a cache that a later step overwrote.

    Returns {name: relative error}; every value should be below 1e-6.
    """
    rng = np.random.default_rng(seed)
    if input_dim is not None and cell.built and cell.input_dim != input_dim:
        raise ValueError(f"check_cell: the cell was built for {cell.input_dim} inputs; got input_dim={input_dim}")
    if not cell.built:
        if input_dim is None:
            raise ValueError("check_cell: the cell is not built yet; give input_dim")
        cell.build_weights(input_dim, np.float64, np.random.default_rng(seed))
    if cell.dtype != np.float64:
        raise ValueError(f"check_cell needs a float64 cell (finite differences in float32 are "
                         f"too coarse); this one is {cell.dtype}: build it with dtype float64")
    params = cell.params
    D = cell.input_dim
    sizes = cell.state_sizes
    # weights like a trained network's, not the zeros a bias may start with (a
    # wrong bias gradient would hide behind b = 0); put back at the end
    saved = {k: p.copy() for k, p in params.items()}
    for p in params.values():
        p += rng.normal(scale=0.1, size=p.shape)
    try:
        return _check_cell(cell, params, D, sizes, batch, steps, seed, rng)
    finally:
        for k, p in params.items():
            p[...] = saved[k]


def _check_cell(cell, params, D, sizes, batch, steps, seed, rng):
    from .layers.rnn import RNN                       # the layer that loops cells

    x = rng.normal(size=(batch, D))
    states = tuple(rng.normal(scale=0.5, size=(batch, s)) for s in sizes)
    out, new, cache = cell.call(x, states)
    w_out = rng.normal(size=np.shape(out))
    w_new = tuple(rng.normal(size=np.shape(s)) for s in new)
    cell.zero_grads()
    dx, d_states = cell.backward(w_out, w_new, cache)
    grads = {k: v.copy() for k, v in cell.grads.items()}

    def loss():
        o, n, _ = cell.call(x, states)
        return _dot(o, w_out) + _dot(tuple(n), w_new)

    errors = {"step: x_t": rel_err(dx, numeric_grad(loss, x))}
    for i, (d, s) in enumerate(zip(d_states, states)):
        errors[f"step: state {cell.state_names[i]}"] = rel_err(d, numeric_grad(loss, s))
    for k, p in params.items():
        errors[f"step: {k}"] = rel_err(grads[k], numeric_grad(loss, p))

    layer = RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    T = max(int(steps), 3)
    xs = rng.normal(size=(batch, T, D))
    mask = np.ones((batch, T), bool)
    mask[0, 1] = False                                # a gap
    mask[-1, T - 1] = False                           # padding at the end
    init = tuple(rng.normal(scale=0.5, size=(batch, s)) for s in sizes)
    for k, e in layer_gradient_errors(layer, xs, initial_state=init, mask=mask, seed=seed + 1).items():
        errors[f"sequence: {k}"] = e
    return errors

