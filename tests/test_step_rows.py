"""A decoding step's products for a few rows (beam search, batch 1 x beam 5):
the LSTM step's loops read the weights once for all rows (packed_cells.accumulate_rows)
and give accumulate's bits row by row; the output layer's product over a weight
packed once per decoding (seq2seq.model.output_logits with enc) equals BLAS's and
beam search decodes the same tokens with it."""
import numpy as np
import pytest

from lstmkit.kernels.packed_cells import accumulate, accumulate_rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [16, 19])
def test_accumulate_rows_is_accumulate_row_by_row(dtype, k):
    rng = np.random.default_rng(0)
    V = rng.standard_normal((5, k)).astype(dtype)
    W = rng.standard_normal((k + 7, 40)).astype(dtype)
    Z0 = rng.standard_normal((5, 40)).astype(dtype)
    want = Z0.copy()
    for r in range(5):
        accumulate(want, r, 0, 40, V, r, W, 3, 0)
    got = Z0.copy()
    accumulate_rows(got, 40, V, W, 3)
    assert np.array_equal(got, want)
    np.testing.assert_allclose(got, Z0 + V @ W[3:3 + k], rtol=1e-5, atol=1e-5)


def test_packed_output_projection_and_beam_search():
    import lstmkit as lk
    from lstmkit.seq2seq import graph, search
    from lstmkit.seq2seq.model import output_logits
    model = graph.build(50, 60, 16, 24, attention="general", dropout=0.0, seed=3)
    model.compile(optimizer="adam", loss=lk.losses.SparseCategoricalCrossentropy())
    dec = graph.GraphDecoder(model)
    src = np.array([[5, 9, 13, 7, 2]])
    enc = dec.encode(src).take(np.zeros(5, np.int64))
    x = np.random.default_rng(1).standard_normal((5, 24)).astype(np.float32)
    packed = output_logits(dec.output, x, enc)
    assert enc.packed is not None and enc.packed[0] is dec.output.params["W"]
    np.testing.assert_allclose(packed, output_logits(dec.output, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output_logits(dec.output, x, enc), packed, rtol=0, atol=0)  # packed once, reused
    # beam search with the packed product decodes what the row products decode
    with_pack = search.beam_search(dec, src, beam=5, n_best=True)
    real = graph.output_logits
    try:
        graph.output_logits = lambda dense, x, enc=None: real(dense, x)
        without = search.beam_search(dec, src, beam=5, n_best=True)
    finally:
        graph.output_logits = real
    assert [h.tokens for h in with_pack[0]] == [h.tokens for h in without[0]]
    np.testing.assert_allclose([h.logprob for h in with_pack[0]], [h.logprob for h in without[0]], rtol=1e-5)
