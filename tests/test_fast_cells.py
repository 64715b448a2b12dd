"""Every fast cell kernel == its reference cell: outputs, final states and every
gradient, on the paths policy.plan can choose (fused or not, one thread or
several). One file for the three cells: they run in the same skeleton
(kernels/skeleton.py), so they are tested the same way."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit import engines
from lstmkit.cells import gru as ref_gru, lstm as ref_lstm, simple_rnn as ref_rnn
from lstmkit.kernels import gru, lstm, policy, simple_rnn
from test_fast_support import assert_close, compare_engines, make_case, mask_with_padding

DTYPES = [np.float32, np.float64]

# name: (reference module, fast module, gates, states, cell options)
CELLS = {
    "lstm": (ref_lstm, lstm, 4, 2, {}),
    "gru": (ref_gru, gru, 3, 1, {"reset_after": True}),
    "gru-reset_before": (ref_gru, gru, 3, 1, {"reset_after": False}),
    "rnn-tanh": (ref_rnn, simple_rnn, 1, 1, {"activation": "tanh"}),
    "rnn-relu": (ref_rnn, simple_rnn, 1, 1, {"activation": "relu"}),
}


def _case(name, dtype, B=3, T=5, D=4, H=6, **kw):
    ref, fast, G, S, opts = CELLS[name]
    return ref, fast, make_case(dtype, B, T, D, H, G, S, **kw), opts


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("fuse", [True, False])
def test_matches_reference(name, dtype, reverse, fuse):
    ref, fast, c, opts = _case(name, dtype)
    with policy.forced(fuse_input=fuse):
        compare_engines(ref, fast, c, dtype, reverse=reverse, **opts)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("fuse", [True, False])
def test_mask_with_padding_and_masked_row(name, dtype, reverse, fuse):
    B, T = 4, 7
    ref, fast, c, opts = _case(name, dtype, B=B, T=T)
    with policy.forced(fuse_input=fuse):
        compare_engines(ref, fast, c, dtype, mask=mask_with_padding(B, T), reverse=reverse, **opts)


@pytest.mark.parametrize("name", CELLS)
def test_boolean_mask(name):
    ref, fast, c, opts = _case(name, np.float64, B=4, T=6)
    compare_engines(ref, fast, c, np.float64, mask=mask_with_padding(4, 6).astype(bool), **opts)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b_x,b_h", [(True, False), (False, False), (False, True)])
def test_missing_biases(name, dtype, b_x, b_h):
    ref, fast, c, opts = _case(name, dtype, b_x=b_x, b_h=b_h)
    compare_engines(ref, fast, c, dtype, **opts)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_missing_output_gradients(name, dtype):
    ref, fast, c, opts = _case(name, dtype)
    S = len(c["state0"])
    compare_engines(ref, fast, c, dtype, use_dhs=False, **opts)
    compare_engines(ref, fast, c, dtype, dstate_used=(False,) * S, **opts)
    if S == 2:
        compare_engines(ref, fast, c, dtype, use_dhs=False, dstate_used=(True, False), **opts)
        compare_engines(ref, fast, c, dtype, dstate_used=(False, True), **opts)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,D,H", [(1, 6, 3, 5), (3, 1, 4, 2), (1, 1, 1, 1), (2, 4, 9, 3), (3, 0, 4, 2),
                                     (2, 3, 2, 40)])
def test_small_shapes(name, dtype, B, T, D, H):
    ref, fast, c, opts = _case(name, dtype, B=B, T=T, D=D, H=H)
    for fuse in (True, False):
        with policy.forced(fuse_input=fuse):
            compare_engines(ref, fast, c, dtype, **opts)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunks", [2, 3, 5])
def test_row_chunks_on_threads(name, dtype, chunks):
    """The batch split over up to 5 threads (more than this machine's cores):
    unequal chunks, masks, reverse -- still the reference's numbers."""
    B, T = 23, 6
    ref, fast, c, opts = _case(name, dtype, B=B, T=T, D=5, H=8)
    with policy.forced(chunks=chunks):
        compare_engines(ref, fast, c, dtype, mask=mask_with_padding(B, T), reverse=True, **opts)


def _run_all(fast, c, opts, mask):
    """Everything a kernel returns for one case: forward, backward, inference,
    folded inference -- flattened into one list of arrays."""
    args = (c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"])
    hs, st, cache = fast.forward(*args, mask=mask, **opts)
    g = fast.backward(c["dhs"], c["dstate"], cache)
    hs2, st2, _ = fast.forward(*args, mask=mask, need_cache=False, **opts)
    E = c["x"][0]                                              # any (V, D) table
    ids = np.arange(c["x"].shape[0] * c["x"].shape[1]).reshape(c["x"].shape[:2]) % E.shape[0]
    table_opts = {k: v for k, v in opts.items() if k == "reset_after"}
    lookup_opts = dict(opts, **({"b_h": c["b_h"]} if "reset_after" in opts else {}))
    table = fast.project_table(E, c["W_x"], c["b_x"], c["b_h"], **table_opts)
    hs3, st3 = fast.forward_lookup(ids, table, c["W_h"], c["state0"], mask=mask, **lookup_opts)
    return ([hs, *st, hs2, *st2, table, hs3, *st3, *g["state0"]]
            + [g[k] for k in ("x", "W_x", "W_h", "b_x", "b_h")])


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fuse", [True, False])
def test_thread_count_changes_no_bit(name, dtype, fuse):
    """lk.config.threads changes only speed (lk.config's docs): 1, 2, 3 and 4
    threads give the same bits, the batch rows split as the policy says (B = 37)
    and, forced, every whole-sequence product split too."""
    B, T, D, H = 37, 5, 7, 48
    ref, fast, c, opts = _case(name, dtype, B=B, T=T, D=D, H=H)
    mask = mask_with_padding(B, T)
    with policy.forced(fuse_input=fuse), lk.config(threads=1):
        first = _run_all(fast, c, opts, mask)
    for n in (2, 3, 4):
        with policy.forced(fuse_input=fuse), lk.config(threads=n):
            natural = _run_all(fast, c, opts, mask)        # the loops split as the policy says
        with policy.forced(fuse_input=fuse, chunks=n):
            everywhere = _run_all(fast, c, opts, mask)     # and every product too
        for how, result in (("policy", natural), ("forced", everywhere)):
            for i, (a, b) in enumerate(zip(first, result)):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_array_equal(a, b, err_msg=f"{n} threads ({how}), array {i}")


def test_policy_splits_with_the_threads_it_is_given():
    assert policy.loop_chunks(8, 8, 4) == 1                   # small: one thread
    assert policy.loop_chunks(policy.PARALLEL_MIN_BATCH, 8, 4) == 4
    assert policy.loop_chunks(64, 32, 16) == 16                # a 16-core machine splits 16 ways
    assert policy.loop_chunks(37, 32, 64) == 37 // policy.MIN_CHUNK_ROWS
    assert policy.loop_chunks(4, 4096, 8) == 1                 # big state, but one chunk of 4 rows
    assert policy.product_threads(100, policy.PARALLEL_MIN_WORK - 1, 8) == 1
    assert policy.product_threads(100, policy.PARALLEL_MIN_WORK, 8) == 8
    assert policy.fuse_input("lstm", 32) and not policy.fuse_input("lstm", 512)
    assert not policy.fuse_input("gru", 32)
    with policy.forced(fuse_input=True, chunks=3):
        assert policy.fuse_input("lstm", 512) and not policy.fuse_input("gru", 8)
        assert policy.loop_chunks(10, 8, 1) == 3
    assert policy.loop_chunks(10, 8, 1) == 1


@pytest.mark.parametrize("name", CELLS)
def test_contract_and_errors(name):
    ref, fast, c, opts = _case(name, np.float32)
    cell = {"lstm": "lstm", "gru": "gru"}.get(name.split("-")[0], "simple_rnn")
    assert engines.get_engine(cell, "auto") is fast
    assert engines.get_engine(cell, "fast") is fast
    assert (fast.N_GATES, fast.STATE_NAMES, fast.GATE_NAMES) == (ref.N_GATES, ref.STATE_NAMES,
                                                                 ref.GATE_NAMES)
    with pytest.raises(NotImplementedError, match="recurrent dropout"):
        fast.forward(c["x"], c["W_x"], c["W_h"], recurrent_mask=np.ones((3, 6), np.float32), **opts)
    with pytest.raises(ValueError):
        fast.forward(c["x"], c["W_x"][:, :-1], c["W_h"], **opts)
    with pytest.raises(TypeError):
        fast.forward(c["x"].astype(np.float16), c["W_x"].astype(np.float16),
                     c["W_h"].astype(np.float16), **opts)
    bad = {"gru": {"reset_after": "yes"}, "simple_rnn": {"activation": "sigmoid"}}.get(cell)
    if bad:
        with pytest.raises(ValueError):
            fast.forward(c["x"], c["W_x"], c["W_h"], **bad)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_of_another_dtype_is_converted(name, dtype):
    ref, fast, c, opts = _case(name, dtype)
    state = tuple(s.astype(np.float32).astype(dtype) for s in c["state0"])
    hs_f, _, _ = fast.forward(c["x"], c["W_x"], c["W_h"], state0=tuple(s.astype(np.float32) for s in state),
                              **opts)
    hs_r, _, _ = ref.forward(c["x"], c["W_x"], c["W_h"], state0=state, **opts)
    assert hs_f.dtype == dtype
    assert_close(hs_f, hs_r, dtype, "outputs")


@pytest.mark.parametrize("name", CELLS)
def test_large_hidden_size(name):
    """H = 160: five panels of the packed product per gate, the unfused path
    (policy's default from H = 128), rows split in two."""
    ref, fast, c, opts = _case(name, np.float64, B=18, T=4, D=3, H=160)
    compare_engines(ref, fast, c, np.float64, mask=mask_with_padding(18, 4), **opts)


@pytest.mark.parametrize("name", ["gru", "gru-reset_before"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_cacheless_forward_is_the_cached_one_bit_for_bit(name, dtype):
    """The GRU's training and inference steps are one compiled step over the
    same projections (docs/kernels.md, "Inference without caches")."""
    ref, fast, c, opts = _case(name, dtype, B=18, T=6)
    mask = mask_with_padding(18, 6)
    args = (c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"])
    hs, st, _ = fast.forward(*args, mask=mask, reverse=True, **opts)
    hs2, st2, _ = fast.forward(*args, mask=mask, reverse=True, need_cache=False, **opts)
    np.testing.assert_array_equal(hs2, hs)
    np.testing.assert_array_equal(st2[0], st[0])
