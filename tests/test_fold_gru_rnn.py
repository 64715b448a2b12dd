"""The embedding folded into the GRU and SimpleRNN input side for inference
(project_table + forward_lookup) gives the results of the unfolded fast engine
and of the reference engine, and a model's folded table follows its weights."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.cells import gru as ref_gru, simple_rnn as ref_rnn
from lstmkit.kernels import gru as fast_gru, simple_rnn as fast_rnn
from test_fast_support import assert_close

DTYPES = [np.float32, np.float64]
# (reference cell, fast kernel, gates, options of forward, of project_table, of forward_lookup)
CELLS = {
    "gru-reset_after": (ref_gru, fast_gru, 3, {"reset_after": True}, {"reset_after": True},
                        {"reset_after": True}),
    "gru-reset_before": (ref_gru, fast_gru, 3, {"reset_after": False}, {"reset_after": False},
                         {"reset_after": False}),
    "rnn-tanh": (ref_rnn, fast_rnn, 1, {"activation": "tanh"}, {}, {"activation": "tanh"}),
    "rnn-relu": (ref_rnn, fast_rnn, 1, {"activation": "relu"}, {}, {"activation": "relu"}),
}
V, D, H, T = 17, 5, 6, 9


def _case(cell, dtype, B, masked, seed=0):
    """Token ids with padding (id 0) where masked, an embedding table and
    weights; biases large enough that misplacing one shows."""
    G = CELLS[cell][2]
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, V, (B, T))
    if masked:
        ids[:, T - 3:] = 0                                 # trailing padding in every row
        ids[0, 2] = 0                                      # and a hole
        if B > 2:
            ids[2] = 0                                     # a row that is all padding
    mask = (ids != 0) if masked else None
    E = rng.standard_normal((V, D)).astype(dtype)
    W_x = (0.5 * rng.standard_normal((D, G * H))).astype(dtype)
    W_h = (0.5 * rng.standard_normal((H, G * H))).astype(dtype)
    b_x, b_h = (rng.standard_normal(G * H).astype(dtype) for _ in range(2))
    state0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    return ids, mask, E, W_x, W_h, b_x, b_h, (state0,)


def _folded(cell, ids, mask, E, W_x, W_h, b_x, b_h, state0, reverse, need_outputs=True):
    _, fast, _, _, table_opts, lookup_opts = CELLS[cell]
    if cell.startswith("gru"):
        lookup_opts = dict(lookup_opts, b_h=b_h)           # b_hn may stay out of the table
    table = fast.project_table(E, W_x, b_x, b_h, **table_opts)
    return fast.forward_lookup(ids, table, W_h, state0, mask=mask, reverse=reverse,
                               need_outputs=need_outputs, **lookup_opts)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("B", [1, 70])                     # 70 rows: split over threads
def test_forward_lookup_equals_unfolded_and_reference(cell, dtype, reverse, masked, B):
    ref, fast, _, options, _, _ = CELLS[cell]
    ids, mask, E, W_x, W_h, b_x, b_h, state0 = _case(cell, dtype, B, masked)
    x = E[ids]                                             # (B, T, D) the embedded sequence
    hs_ref, (h_ref,), _ = ref.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask, reverse=reverse,
                                      **options)
    hs_fast, (h_fast,), _ = fast.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask,
                                         reverse=reverse, need_cache=False, **options)
    hs, (h,) = _folded(cell, ids, mask, E, W_x, W_h, b_x, b_h, state0, reverse)
    for want, name in ((hs_fast, "unfolded fast"), (hs_ref, "reference")):
        assert_close(hs, want, dtype, f"outputs vs {name}")
    for want, name in ((h_fast, "unfolded fast"), (h_ref, "reference")):
        assert_close(h, want, dtype, f"final state vs {name}")
    hs_none, (h_only,) = _folded(cell, ids, mask, E, W_x, W_h, b_x, b_h, state0, reverse,
                                 need_outputs=False)
    assert hs_none is None
    np.testing.assert_array_equal(h_only, h)               # same loop, the outputs just not kept
    if masked:
        assert not hs[ids == 0].any()                      # padded steps output 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_reset_after_keeps_b_hn_out_of_the_table(dtype):
    """With reset_after, b_hn is multiplied by r: folding it into the table
    like the other biases would be wrong, and by more than the tolerance."""
    ids, mask, E, W_x, W_h, b_x, b_h, state0 = _case("gru-reset_after", dtype, 4, False)
    _, (h,) = _folded("gru-reset_after", ids, mask, E, W_x, W_h, b_x, b_h, state0, False)
    _, (h_ref,), _ = ref_gru.forward(E[ids], W_x, W_h, b_x, b_h, state0, reset_after=True)
    assert_close(h, h_ref, dtype, "final state")
    wrong_table = fast_gru.project_table(E, W_x, b_x + b_h, None)   # b_hn outside r
    _, (h_wrong,) = fast_gru.forward_lookup(ids, wrong_table, W_h, state0)
    assert np.abs(h_wrong - h_ref).max() > 1e-2


def test_forward_lookup_checks_its_arguments():
    ids, _, E, W_x, W_h, b_x, b_h, _ = _case("gru-reset_after", np.float32, 3, False)
    table = fast_gru.project_table(E, W_x, b_x, b_h)
    with pytest.raises(ValueError, match="ids must lie"):
        fast_gru.forward_lookup(ids + V, table, W_h, b_h=b_h)
    with pytest.raises(ValueError, match="b_h must have shape"):
        fast_gru.forward_lookup(ids, table, W_h, b_h=b_h[:H])
    with pytest.raises(ValueError, match="do not agree"):
        fast_gru.forward_lookup(ids, table[:, :H], W_h)
    with pytest.raises(ValueError, match="mask"):
        fast_gru.forward_lookup(ids, table, W_h, mask=np.ones((3, T + 1), bool))
    with pytest.raises(ValueError, match="reset_after"):
        fast_gru.project_table(E, W_x, reset_after="yes")
    rnn_table = fast_rnn.project_table(E, W_x[:, :H])
    with pytest.raises(ValueError, match="ids must lie"):
        fast_rnn.forward_lookup(ids - V, rnn_table, W_h[:, :H])
    with pytest.raises(ValueError, match="activation"):
        fast_rnn.forward_lookup(ids, rnn_table, W_h[:, :H], activation="sigmoid")


# ---- through the model ---------------------------------------------------------------

LAYERS = {
    "gru-reset_after": lambda **kw: lk.GRU(H, reset_after=True, **kw),
    "gru-reset_before": lambda **kw: lk.GRU(H, reset_after=False, two_biases=True, **kw),
    "rnn-tanh": lambda **kw: lk.SimpleRNN(H, activation="tanh", two_biases=True, **kw),
    "rnn-relu": lambda **kw: lk.SimpleRNN(H, activation="relu", **kw),
}


def _model(cell, dtype, engine="auto", return_sequences=False, go_backwards=False, mask_zero=True):
    rnn = LAYERS[cell](return_sequences=return_sequences, go_backwards=go_backwards,
                       engine=engine, dtype=dtype)
    return lk.Sequential([lk.Embedding(V, D, mask_zero=mask_zero, dtype=dtype), rnn,
                          lk.Dense(2, activation="sigmoid", dtype=dtype)], seed=11)


def _with_random_biases(model):
    """Zero-initialised biases would hide a misplaced bias; give them values."""
    rng = np.random.default_rng(12)
    for name, p in model.layers[1].params.items():
        if name.startswith("b_"):
            p[...] = rng.standard_normal(p.shape)
    return model


def _unfolded(model, ids):
    """The layers one by one, cached forward: no folding, no cacheless loop."""
    emb, rnn, head = model.layers
    return head.forward(rnn.forward(emb.forward(ids), training=True,
                                    mask=emb.compute_mask(ids, None)))


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, True),
                                                           (False, True)])
@pytest.mark.parametrize("mask_zero", [False, True])
@pytest.mark.parametrize("B", [1, 70])
def test_model_predict_folds_and_matches(cell, dtype, return_sequences, go_backwards, mask_zero, B):
    ids, *_ = _case(cell, np.float32, B, masked=mask_zero, seed=13)
    model = _with_random_biases(_model(cell, dtype, return_sequences=return_sequences,
                                       go_backwards=go_backwards, mask_zero=mask_zero))
    got = model.predict_on_batch(ids)
    assert model.layers[1]._fold is not None               # the folded path ran
    reference = _model(cell, dtype, engine="reference", return_sequences=return_sequences,
                       go_backwards=go_backwards, mask_zero=mask_zero)
    reference.build((T,))
    for layer, twin in zip(model.layers, reference.layers):
        twin.set_weights(layer.get_weights())
    tol_dtype = np.dtype(dtype).type
    assert_close(got, _unfolded(model, ids), tol_dtype, "folded vs unfolded fast")
    assert_close(got, reference.predict_on_batch(ids), tol_dtype, "folded vs reference")
    assert reference.layers[1]._fold is None               # the reference engine has nothing to fold


@pytest.mark.parametrize("cell", list(LAYERS))
def test_folded_table_follows_weight_changes(cell):
    model = _with_random_biases(_model(cell, "float32"))
    rnn = model.layers[1]
    ids, *_ = _case(cell, np.float32, 3, masked=True, seed=14)
    before = model.predict_on_batch(ids)
    table = rnn._fold[3]
    np.testing.assert_array_equal(model.predict_on_batch(ids), before)
    assert rnn._fold[3] is table                            # unchanged weights: the table is reused
    emb, H_ = model.layers[0].params["embeddings"], rnn.units

    def edit_embedding():
        emb[ids[0, 0]] += 1.0

    def edit_kernel():
        rnn.params["W_x"] *= 0.5

    def edit_bias():
        rnn.params["b_x"] += 0.75

    def edit_second_bias():
        rnn.params["b_h"][:H_] += 1.5                      # a block folded into the table

    def edit_b_hn():
        rnn.params["b_h"][2 * H_:] += 1.5                  # in the table only when reset_after=False
    edits = [edit_embedding, edit_kernel, edit_bias]
    if "b_h" in rnn.params:
        edits.append(edit_second_bias)
        if rnn.cell == "gru":
            edits.append(edit_b_hn)
    for edit in edits:                                     # in place, as an optimizer would
        previous = model.predict_on_batch(ids)
        edit()
        after = model.predict_on_batch(ids)
        assert not np.allclose(after, previous, rtol=0, atol=1e-4)
        assert_close(after, _unfolded(model, ids), np.float32, "after an edit")


def test_gru_table_follows_reset_after():
    """reset_after decides whether b_hn is in the table: the cache is keyed on it too."""
    model = _with_random_biases(_model("gru-reset_after", "float32"))
    ids, *_ = _case("gru-reset_after", np.float32, 3, masked=False, seed=15)
    model.predict_on_batch(ids)
    model.layers[1].reset_after = False
    got = model.predict_on_batch(ids)
    assert model.layers[1]._fold[2] == {"reset_after": False}
    assert_close(got, _unfolded(model, ids), np.float32, "after switching reset_after")
