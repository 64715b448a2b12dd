"""Workload E: translation, the model `lstmkit translate train` trains (the
functional lk.Model of lstmkit/seq2seq/graph.py, trained by Model.fit's step)
against its PyTorch anchor (benchmarks/translate_anchor.py, from_graph), both
with the same weights.

E-seq2seq-train  one training step (models.training.train_batch: forward,
                 loss on the real target tokens, backward, clipping, Adam)
                 of the encoder-decoder with Luong general attention:
                 embedding 256, LSTM 256, batch 64 real Ding sentence pairs
                 of at most 20 subwords per side (SentencePiece, 4000 per
                 side, fitted on the pairs); reported in ms per batch, and
                 target tokens per second. Before timing, the first step's
                 loss must agree between the two (the same function).
E-seq2seq-beam   beam search, beam 5, one sentence at a time, over 20 real
                 source sentences, through the graph's step decoder
                 (graph.GraphDecoder, what `lstmkit translate` decodes with);
                 reported in ms per sentence, and sentences per second. The
                 weights are the initial ones (no trained model ships with
                 the benchmark), so a translation usually runs to the length
                 cap, 2 S + 10 steps; both frameworks decode the same tokens
                 (tests/test_seq2seq_graph.py), so they do the same number of
                 steps, which is recorded.

The torch side projects only the real target tokens, as lstmkit does (its
fastest form; `train_step(real_only=False)` projects every position and
ignores padding in the loss), packs its encoder's and its decoder's sequences
(skipping padded steps; lstmkit's LSTM kernels skip them too,
kernels/skeleton.py), and
decodes with its own torch beam search.
"""
import numpy as np

MAX_TOKENS = 20
N_BEAM_SENTENCES = 20


def prepare(case, tiny=False, log=print):
    """(src_batch, tgt_batch, beam_sentences, vocab sizes, description) from real pairs."""
    from lstmkit.data import parallel, subwords
    if tiny:
        rng = np.random.default_rng(0)
        src = [list(rng.integers(4, 40, rng.integers(2, 7))) for _ in range(case.batch if case.kind == "train" else 4)]
        tgt = [list(rng.integers(4, 40, rng.integers(2, 7))) + [subwords.EOS] for _ in src]
        return src, tgt, 40, 40, {"data": "random ids (tiny)"}
    pairs = parallel.load_ding(None, log=log)
    codecs = [subwords.fit_codec("subword", side, 4000) for side in (pairs.src, pairs.tgt)]
    src = [codecs[0].encode(s) for s in pairs.src]
    tgt = [codecs[1].encode(t) + [subwords.EOS] for t in pairs.tgt]
    keep = [i for i in range(len(src)) if len(src[i]) <= MAX_TOKENS and len(tgt[i]) <= MAX_TOKENS]
    pick = np.random.default_rng(0).choice(keep, case.batch if case.kind == "train" else N_BEAM_SENTENCES,
                                           replace=False)
    src, tgt = [src[i] for i in pick], [tgt[i] for i in pick]
    return src, tgt, codecs[0].vocab_size, codecs[1].vocab_size, {"data": f"{len(keep)} Ding pairs of at most "
                                                                           f"{MAX_TOKENS} subwords"}


def runners(case, tiny=False, log=print):
    """({name: (fn, context)}, info) for run.py's timing loop."""
    import contextlib

    import torch

    import lstmkit as lk
    import peer_torch
    import translate_anchor as anchor
    from lstmkit.models.training import train_batch
    from lstmkit.seq2seq import graph, search

    src, tgt, vs, vt, info = prepare(case, tiny, log)
    E, H = case.net.embed, case.net.units
    model = graph.build(vs, vt, E, H, attention="general", dropout=0.0, seed=0)
    model.compile(optimizer=lk.Adam(0.001, clipnorm=5.0), loss=lk.losses.SparseCategoricalCrossentropy())
    tm = anchor.from_graph(model)
    plain = contextlib.nullcontext
    flush = lambda: peer_torch.flush_denormal(True)
    if case.kind == "train":
        arrays = graph.arrays(src, tgt)                       # source, BOS + target[:-1], target
        tokens = int((arrays[2] != 0).sum())
        t_arrays = [torch.as_tensor(a.astype(np.int64)) for a in arrays]
        t_opt = torch.optim.Adam([p for p in tm.parameters() if p.requires_grad], lr=0.001, eps=1e-7)
        tm.train()
        mine = lambda: train_batch(model, list(arrays[:2]), arrays[2])
        theirs = lambda: float(anchor.train_step(tm, t_opt, *t_arrays, 0.0, 5.0).detach())
        first = (float(mine()), theirs())                     # the same weights: the same loss
        if abs(first[0] - first[1]) > 1e-4 * abs(first[1]) + 1e-6:
            raise RuntimeError(f"E-seq2seq-train: lstmkit's first loss {first[0]} and the anchor's "
                               f"{first[1]} differ: not the same model")
        info.update(target_tokens_per_batch=tokens, src_len=int(arrays[0].shape[1]),
                    tgt_len=int(arrays[2].shape[1]), src_vocab=vs, tgt_vocab=vt,
                    real_src_tokens=int((arrays[0] != 0).sum()), first_loss=list(first),
                    model="seq2seq.graph (lk.Model)")
    else:
        decoder = graph.decoder_for(model)                    # made once per model, as translate does
        pads = [np.asarray([s], np.int64) for s in src]
        steps = sum(len(search.beam_search(decoder, p, beam=5)[0]) for p in pads)
        mine = lambda: [search.beam_search(decoder, p, beam=5) for p in pads]
        t_pads = [torch.as_tensor(p) for p in pads]
        theirs = lambda: [anchor.beam_search(tm, p, beam=5) for p in t_pads]
        info.update(sentences=len(pads), output_tokens=steps, src_vocab=vs, tgt_vocab=vt,
                    model="seq2seq.graph (lk.Model)")
    return {"lstmkit": (mine, plain), "torch_default": (theirs, plain),
            "torch_flush_denormal": (theirs, flush)}, info
