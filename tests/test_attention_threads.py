"""Attention's forward and backward in batch-row parts on the engine's threads (layers/attention.py,
policy.ATTENTION_MIN_WORK): the same bits as in one part, for every option the parts handle."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.kernels import policy, threads

B, TQ, TV, D = 7, 5, 6, 8


def run(layer_args, call, threads_n, inputs, masks, grads_out, training):
    layer = lk.Attention(seed=3, dtype="float32", **layer_args)
    with lk.config(threads=threads_n):
        out = layer.forward(inputs, mask=masks, training=training, **call)
        dx = layer.backward(grads_out if isinstance(out, list) else grads_out[0])
    outs = out if isinstance(out, list) else [out]
    return outs, dx, {k: g.copy() for k, g in layer.grads.items()}


CASES = [
    ({"score_mode": "general"}, {}, False, False),
    ({"score_mode": "general", "use_scale": True}, {"return_attention_scores": True}, True, False),
    ({"score_mode": "dot"}, {"use_causal_mask": True}, True, True),
    ({"score_mode": "dot", "use_scale": True, "dropout": 0.3}, {}, False, True),
    ({"score_mode": "general", "dropout": 0.2}, {"return_attention_scores": True, "use_causal_mask": True}, True,
     True),
]


@pytest.mark.parametrize("layer_args,call,masked,with_key", CASES)
def test_parts_give_the_same_bits(layer_args, call, masked, with_key, monkeypatch):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, TQ, D)).astype(np.float32)
    v = rng.standard_normal((B, TV, D)).astype(np.float32)
    inputs = [q, v] + ([rng.standard_normal((B, TV, D)).astype(np.float32)] if with_key else [])
    masks = None
    if masked:
        masks = [np.arange(TQ)[None, :] < rng.integers(1, TQ + 1, B)[:, None],
                 np.arange(TV)[None, :] < rng.integers(1, TV + 1, B)[:, None]]
    grads_out = [rng.standard_normal((B, TQ, D)).astype(np.float32),
                 rng.standard_normal((B, TQ, TV)).astype(np.float32)]
    training = "dropout" in layer_args
    calls = []
    real = threads.run
    monkeypatch.setattr(threads, "run", lambda kernel, parts, *a: (calls.append(len(parts)),
                                                                   real(kernel, parts, *a)))
    monkeypatch.setattr(policy, "ATTENTION_MIN_WORK", 0)       # parts even at this small size
    got = [run(layer_args, call, n, inputs, masks, grads_out, training) for n in (1, 2, 3)]
    assert calls == [2, 2, 3, 3]                              # forward and backward, in parts from 2 threads
    for outs, dx, g in got[1:]:
        for x, y in zip(outs + list(dx), got[0][0] + list(got[0][1])):
            assert np.array_equal(x, y)
        assert g.keys() == got[0][2].keys() and all(np.array_equal(g[k], got[0][2][k]) for k in g)


def test_small_batches_and_other_scores_stay_whole(monkeypatch):
    calls = []
    real = threads.run
    monkeypatch.setattr(threads, "run", lambda kernel, parts, *a: (calls.append(len(parts)),
                                                                   real(kernel, parts, *a)))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, TQ, D)).astype(np.float32)
    with lk.config(threads=2):
        lk.Attention(score_mode="general", dtype="float32").forward([x, x])      # below ATTENTION_MIN_WORK
        monkeypatch.setattr(policy, "ATTENTION_MIN_WORK", 0)
        lk.Attention(score_mode="concat", dtype="float32").forward([x, x])
        lk.AdditiveAttention(dtype="float32").forward([x, x])
    assert calls == []
    # workload E's attention (batch 64, 20 x 20 steps, 256 features) is above the threshold
    assert policy.attention_threads(64, 64 * 20 * 20 * 256, 2) == 2
