"""The PyTorch anchor for `lstmkit translate`: the same encoder-decoder with
attention, written the way a PyTorch user writes it (nn.Embedding, nn.LSTM
with packed padded sources and targets, batched products for attention, nn.Linear,
F.cross_entropy with label smoothing, torch.optim.Adam, clip_grad_norm_), and
its own greedy and beam search, step by step in torch.

    from_lstmkit(model)          -> TorchSeq2Seq with lstmkit's weights copied in
    python benchmarks/translate_anchor.py --run RUN [--epochs N]
        trains the anchor on a lstmkit run's own splits and tokenizers, from the
        same initial weights (lstmkit's model built with the run's seed: the
        lk.Model of seq2seq/graph.py, or Seq2Seq with input feeding), and scores it
        on the run's test split.

    from_graph(model)            -> TorchSeq2Seq with the lk.Model's weights copied in

The recipe is lstmkit's (lstmkit/seq2seq): dropout on both embeddings, between
stacked layers and on the attentional state; the loss on real target tokens
only, mean over tokens; Adam with epsilon 1e-7 (Keras's, lstmkit's default);
clipping of the global gradient norm. lstmkit's LSTM has one bias where
PyTorch has two: the anchor keeps bias_hh at zero and frozen, so both train the
same parameters.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class TorchSeq2Seq(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, embed_dim=256, units=256, layers=1, cell="lstm",
                 bidirectional=False, attention="general", input_feeding=False, dropout=0.2):
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        E, H, L = embed_dim, units, layers
        self.cell, self.units, self.layers, self.bidirectional = cell, H, L, bidirectional
        self.attention, self.input_feeding = attention, input_feeding
        self.src_embedding = nn.Embedding(src_vocab, E)
        self.tgt_embedding = nn.Embedding(tgt_vocab, E)
        self.encoder = rnn(E, H // 2 if bidirectional else H, num_layers=L, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if L > 1 else 0.0)
        self.decoder = rnn(E + H if input_feeding else E, H, num_layers=L, batch_first=True,
                           dropout=dropout if L > 1 else 0.0)
        if attention == "general":
            self.W_a = nn.Linear(H, H, bias=False)
        elif attention == "additive":
            self.W_q = nn.Linear(H, H, bias=False)
            self.W_k = nn.Linear(H, H, bias=False)
            self.v = nn.Linear(H, 1, bias=False)
        if attention is not None:
            self.W_c = nn.Linear(2 * H, H, bias=False)
        self.output = nn.Linear(H, tgt_vocab)
        self.drop = nn.Dropout(dropout)

    # ---- encoder ---------------------------------------------------------------------------
    def encode(self, src):
        """src (B, S) long -> (memory (B, S, H), keys, mask (B, S), decoder start state)."""
        mask = src != PAD
        lengths = mask.sum(1).cpu()
        x = self.drop(self.src_embedding(src))
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        if self.bidirectional:                          # (2L, B, H/2) -> (L, B, H): [fwd; bwd] per layer
            join = lambda s: s.view(self.layers, 2, s.shape[1], s.shape[2]).permute(0, 2, 1, 3).reshape(
                self.layers, s.shape[1], self.units)
            state = tuple(join(s) for s in state) if isinstance(state, tuple) else join(state)
        keys = None
        if self.attention == "general":
            keys = self.W_a(memory)
        elif self.attention == "additive":
            keys = self.W_k(memory)
        elif self.attention == "dot":
            keys = memory
        return memory, keys, mask, state

    def attend(self, h, keys, memory, mask):
        """h (B, T, H) -> h~ (B, T, H), weights (B, T, S)."""
        if self.attention == "additive":
            s = self.v(torch.tanh(self.W_q(h).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
        else:
            s = torch.bmm(h, keys.transpose(1, 2))
        s = s.masked_fill(~mask.unsqueeze(1), float("-inf"))
        a = torch.softmax(s, dim=-1)
        c = torch.bmm(a, memory)
        return torch.tanh(self.W_c(torch.cat([c, h], dim=-1))), a

    # ---- teacher forcing -----------------------------------------------------------------------
    def forward(self, src, tgt_in):
        memory, keys, mask, state = self.encode(src)
        y = self.drop(self.tgt_embedding(tgt_in))
        if not self.input_feeding:
            # packed like the encoder, so neither side computes the padded target steps
            # (lstmkit's LSTM skips them over a trailing-padding mask)
            lengths = (tgt_in != PAD).sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(y, lengths, batch_first=True, enforce_sorted=False)
            h, _ = self.decoder(packed, state)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=tgt_in.shape[1])
            if self.attention is not None:
                h, _ = self.attend(h, keys, memory, mask)
            return self.drop(h)
        B, T, _ = y.shape
        feed = y.new_zeros(B, self.units)
        outs = []
        for t in range(T):
            h, state = self.decoder(torch.cat([y[:, t], feed], -1).unsqueeze(1), state)
            h_att, _ = self.attend(h, keys, memory, mask)
            outs.append(h_att)
            feed = self.drop(h_att[:, 0])
        return self.drop(torch.cat(outs, 1))

    # ---- one step ----------------------------------------------------------------------------
    def step(self, memory, keys, mask, state, feed, prev):
        x = self.tgt_embedding(prev).unsqueeze(1)
        if self.input_feeding:
            x = torch.cat([x, feed.unsqueeze(1)], -1)
        h, state = self.decoder(x, state)
        weights = None
        if self.attention is not None:
            h, weights = self.attend(h, keys, memory, mask)
            weights = weights[:, 0]
        h = h[:, 0]
        logits = self.output(h)
        logits[:, [PAD, BOS]] = float("-inf")            # never a target: never written (as lstmkit)
        return logits, weights, state, (h if self.input_feeding else None)


# ---- weights from lstmkit ------------------------------------------------------------------------
def _t(a):
    return torch.tensor(np.ascontiguousarray(a))


def _copy_rnn(torch_rnn, layer, suffix):
    p = layer.params
    getattr(torch_rnn, f"weight_ih_{suffix}").data.copy_(_t(p["W_x"].T))
    getattr(torch_rnn, f"weight_hh_{suffix}").data.copy_(_t(p["W_h"].T))
    getattr(torch_rnn, f"bias_ih_{suffix}").data.copy_(_t(p["b_x"]))
    b_hh = getattr(torch_rnn, f"bias_hh_{suffix}")
    if "b_h" in p:
        b_hh.data.copy_(_t(p["b_h"]))
    else:                                         # one bias in lstmkit: the second stays 0
        b_hh.data.zero_()
        b_hh.requires_grad_(False)


def from_lstmkit(model):
    """A TorchSeq2Seq holding a copy of a lstmkit Seq2Seq's weights (float32 or float64)."""
    from lstmkit.layers import Bidirectional
    m = TorchSeq2Seq(model.src_vocab, model.tgt_vocab, model.embed_dim, model.units, model.n_layers,
                     model.cell, model.bidirectional, model.attention_score, model.input_feeding, model.dropout)
    if model.dtype == np.float64:
        m = m.double()
    with torch.no_grad():
        m.src_embedding.weight.copy_(_t(model.src_embedding.params["embeddings"]))
        m.tgt_embedding.weight.copy_(_t(model.tgt_embedding.params["embeddings"]))
        for i, layer in enumerate(model.encoder):
            if isinstance(layer, Bidirectional):
                _copy_rnn(m.encoder, layer.forward_layer, f"l{i}")
                _copy_rnn(m.encoder, layer.backward_layer, f"l{i}_reverse")
            else:
                _copy_rnn(m.encoder, layer, f"l{i}")
        for i, layer in enumerate(model.decoder):
            _copy_rnn(m.decoder, layer, f"l{i}")
        if model.attention is not None:
            a = model.attention.params
            if "W_a" in a:
                m.W_a.weight.copy_(_t(a["W_a"].T))
            if "W_q" in a:
                m.W_q.weight.copy_(_t(a["W_q"].T))
                m.W_k.weight.copy_(_t(a["W_k"].T))
                m.v.weight.copy_(_t(a["v"][None, :]))
            m.W_c.weight.copy_(_t(a["W_c"].T))
        m.output.weight.copy_(_t(model.output_layer.params["W"].T))
        m.output.bias.copy_(_t(model.output_layer.params["b"]))
    return m


def from_graph(model):
    """A TorchSeq2Seq holding a copy of the weights of lstmkit's translation lk.Model
    (lstmkit/seq2seq/graph.py; no input feeding), float32 or float64."""
    from lstmkit.seq2seq import graph
    d = graph.describe(model)
    get = model.get_layer
    m = TorchSeq2Seq(d["src_vocab"], d["tgt_vocab"], d["embed_dim"], d["units"], d["layers"], d["cell"],
                     d["bidirectional"], d["attention"], False, 0.0)
    if get("output").params["W"].dtype == np.float64:
        m = m.double()
    with torch.no_grad():
        m.src_embedding.weight.copy_(_t(get("src_embedding").params["embeddings"]))
        m.tgt_embedding.weight.copy_(_t(get("tgt_embedding").params["embeddings"]))
        for i in range(d["layers"]):
            layer = get(f"encoder{i}")
            if d["bidirectional"]:
                _copy_rnn(m.encoder, layer.forward_layer, f"l{i}")
                _copy_rnn(m.encoder, layer.backward_layer, f"l{i}_reverse")
            else:
                _copy_rnn(m.encoder, layer, f"l{i}")
            _copy_rnn(m.decoder, get(f"decoder{i}"), f"l{i}")
        if d["attention"] == "general":            # s = h W m^T: torch's W_a(m) = m W^T
            m.W_a.weight.copy_(_t(get("attention").params["W"]))
        if d["attention"] == "additive":
            m.W_q.weight.copy_(_t(get("query_proj").params["W"].T))
            m.W_k.weight.copy_(_t(get("key_proj").params["W"].T))
            m.v.weight.copy_(_t(get("attention").params["scale"][None, :]))
        if d["attention"] is not None:
            m.W_c.weight.copy_(_t(get("combine").params["W"].T))
        m.output.weight.copy_(_t(get("output").params["W"].T))
        m.output.bias.copy_(_t(get("output").params["b"]))
    return m


def torch_grads_as_graph(model, m):
    """The anchor's gradients under the names and layouts of the graph's parameters."""
    from lstmkit.seq2seq import graph
    d = graph.describe(model)
    T = lambda p: p.grad.detach().numpy()
    g = {"src_embedding/embeddings": T(m.src_embedding.weight), "tgt_embedding/embeddings": T(m.tgt_embedding.weight),
         "output/W": T(m.output.weight).T, "output/b": T(m.output.bias)}

    def rnn(prefix, trnn, suffix, layer):
        g[f"{prefix}/W_x"] = T(getattr(trnn, f"weight_ih_{suffix}")).T
        g[f"{prefix}/W_h"] = T(getattr(trnn, f"weight_hh_{suffix}")).T
        g[f"{prefix}/b_x"] = T(getattr(trnn, f"bias_ih_{suffix}"))
        if "b_h" in layer.params:
            g[f"{prefix}/b_h"] = T(getattr(trnn, f"bias_hh_{suffix}"))
    for i in range(d["layers"]):
        layer = model.get_layer(f"encoder{i}")
        if d["bidirectional"]:
            rnn(f"encoder{i}/forward", m.encoder, f"l{i}", layer.forward_layer)
            rnn(f"encoder{i}/backward", m.encoder, f"l{i}_reverse", layer.backward_layer)
        else:
            rnn(f"encoder{i}", m.encoder, f"l{i}", layer)
        rnn(f"decoder{i}", m.decoder, f"l{i}", model.get_layer(f"decoder{i}"))
    if d["attention"] == "general":
        g["attention/W"] = T(m.W_a.weight)
    if d["attention"] == "additive":
        g["query_proj/W"], g["key_proj/W"] = T(m.W_q.weight).T, T(m.W_k.weight).T
        g["attention/scale"] = T(m.v.weight)[0]
    if d["attention"] is not None:
        g["combine/W"] = T(m.W_c.weight).T
    return g


# ---- training step and decoding --------------------------------------------------------------------
def train_step(m, opt, src, tgt_in, tgt_out, label_smoothing=0.0, clipnorm=5.0, real_only=True):
    """One update; real_only=False projects every position and ignores padding in the loss."""
    opt.zero_grad(set_to_none=True)
    out = m(src, tgt_in)
    if real_only:
        real = tgt_out != PAD
        loss = F.cross_entropy(m.output(out[real]), tgt_out[real], label_smoothing=label_smoothing)
    else:
        logits = m.output(out)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD,
                               label_smoothing=label_smoothing)
    loss.backward()
    if clipnorm:
        nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], clipnorm)
    opt.step()
    return loss


def _take_state(state, rows):
    if isinstance(state, tuple):
        return tuple(s[:, rows] for s in state)
    return state[:, rows]


@torch.inference_mode()
def greedy(m, src, max_len=None):
    m.eval()
    src = torch.as_tensor(src)
    B = src.shape[0]
    memory, keys, mask, state = m.encode(src)
    feed = memory.new_zeros(B, m.units) if m.input_feeding else None
    prev = torch.full((B,), BOS, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    out = []
    for _ in range(max_len or 2 * src.shape[1] + 10):
        logits, _, state, feed = m.step(memory, keys, mask, state, feed, prev)
        prev = logits.argmax(-1)
        out.append(prev.masked_fill(done, PAD))
        done |= prev == EOS
        if bool(done.all()):
            break
    rows = torch.stack(out, 1).tolist()
    return [[t for t in r[:r.index(EOS)] if t != PAD] if EOS in r else [t for t in r if t != PAD] for r in rows]


@torch.inference_mode()
def beam_search(m, src, beam=5, alpha=0.6, max_len=None):
    """The algorithm of lstmkit.seq2seq.search.beam_search, in torch."""
    m.eval()
    src = torch.as_tensor(src)
    B, S = src.shape
    k = beam
    memory, keys, mask, state = m.encode(src)
    rep = torch.arange(B).repeat_interleave(k)
    memory, mask = memory[rep], mask[rep]
    keys = None if keys is None else keys[rep]
    state = _take_state(state, rep)
    feed = memory.new_zeros(B * k, m.units) if m.input_feeding else None
    scores = torch.full((B, k), float("-inf"), dtype=torch.float64)
    scores[:, 0] = 0.0
    tokens = torch.zeros((B, k, 0), dtype=torch.long)
    lengths = torch.zeros((B, k), dtype=torch.long)
    finished = torch.zeros((B, k), dtype=torch.bool)
    prev = torch.full((B * k,), BOS, dtype=torch.long)
    base = (torch.arange(B) * k).unsqueeze(1)
    for _ in range(max_len or 2 * S + 10):
        logits, _, state, feed = m.step(memory, keys, mask, state, feed, prev)
        V = logits.shape[-1]
        logp = torch.log_softmax(logits.double(), -1).view(B, k, V)
        logp = logp.masked_fill(finished.unsqueeze(-1), float("-inf"))
        logp[..., PAD] = logp[..., PAD].masked_fill(finished, 0.0)
        cand = (scores.unsqueeze(-1) + logp).view(B, k * V)
        scores, top = cand.topk(k, dim=1)
        origin, token = top // V, top % V
        was_finished = finished.gather(1, origin)
        finished = was_finished | (token == EOS)
        lengths = lengths.gather(1, origin) + (~was_finished).long()
        tokens = torch.cat([tokens.gather(1, origin.unsqueeze(-1).expand(-1, -1, tokens.shape[2])),
                            token.unsqueeze(-1)], 2)
        rows = (base + origin).view(-1)
        state = _take_state(state, rows)
        if feed is not None:
            feed = feed[rows]
        prev = token.view(-1)
        if bool(finished.all()):
            break
    best = (scores / ((5.0 + lengths.double()) / 6.0) ** alpha).argmax(1)
    out = []
    for b in range(B):
        n = int(lengths[b, best[b]])
        out.append([int(t) for t in tokens[b, best[b], :n] if int(t) not in (EOS, PAD)])
    return out


def translate_ids(m, seqs, beam=5, alpha=0.6, batch_size=32):
    from lstmkit.seq2seq.training import pad
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = [None] * len(seqs)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        src = torch.as_tensor(pad([seqs[i] for i in idx]))
        res = beam_search(m, src, beam, alpha) if beam > 1 else greedy(m, src)
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out


# ---- training on a lstmkit run's data --------------------------------------------------------------
def train_on_run(run, epochs=None, seed=None, out=None, log=print):
    from lstmkit.apps import translate
    from lstmkit.data import parallel
    from lstmkit.seq2seq import training
    with open(os.path.join(run, "meta.json")) as f:
        meta = json.load(f)
    st = meta["settings"]
    seed = meta["seed"] if seed is None else seed
    epochs = st["epochs"] if epochs is None else epochs
    from lstmkit.data import subwords
    src_codec = subwords.load_codec(run, meta["src_tokenizer"])
    tgt_codec = subwords.load_codec(run, meta["tgt_tokenizer"])
    splits = {n: parallel.read_split(os.path.join(run, "splits", f"{n}.tsv")) for n in ("train", "val", "test")}
    enc = lambda c, texts, eos: [c.encode(t) + ([EOS] if eos else []) for t in texts]
    tr_s, tr_t = enc(src_codec, splits["train"].src, False), enc(tgt_codec, splits["train"].tgt, True)
    keep = [i for i in range(len(tr_s)) if len(tr_s[i]) <= meta["max_len"] and len(tr_t[i]) <= meta["max_len"] + 1]
    tr_s, tr_t = [tr_s[i] for i in keep], [tr_t[i] for i in keep]
    va_s, va_t = enc(src_codec, splits["val"].src, False), enc(tgt_codec, splits["val"].tgt, True)
    # the same initial weights as lstmkit's run: its Seq2Seq built from the same seed
    lk_model = translate.build_model(src_codec.vocab_size, tgt_codec.vocab_size, st["embed_dim"], st["units"],
                                     st["layers"], st["cell"], st["bidirectional"], st["attention"],
                                     st["input_feeding"], st["dropout"], seed)
    torch.manual_seed(seed)
    from lstmkit.seq2seq import graph
    m = from_graph(lk_model) if graph.is_graph(lk_model) else from_lstmkit(lk_model)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=st["learning_rate"], eps=1e-7)
    # batches of similar length (seq2seq/training.make_batches); lstmkit's Model.fit draws plain
    # shuffled batches, so the two see the same data and epochs in different batches
    rng = np.random.default_rng(seed)
    hist = {"loss": [], "val_loss": [], "tokens_per_s": []}
    t_start = time.time()
    for epoch in range(epochs):
        m.train()
        t0, total, tokens = time.perf_counter(), 0.0, 0
        for idx in training.make_batches(tr_s, tr_t, st["batch_size"], rng):
            s, tin, tout = (torch.as_tensor(a) for a in training.batch_arrays(tr_s, tr_t, idx))
            loss = train_step(m, opt, s, tin, tout, st["label_smoothing"], st["clipnorm"])
            n = int((tout != PAD).sum())
            total += float(loss) * n
            tokens += n
        secs = time.perf_counter() - t0
        m.eval()
        vt, vn = 0.0, 0
        with torch.inference_mode():
            for idx in training.make_batches(va_s, va_t, st["batch_size"]):
                s, tin, tout = (torch.as_tensor(a) for a in training.batch_arrays(va_s, va_t, idx))
                real = tout != PAD
                vt += float(F.cross_entropy(m.output(m(s, tin)[real]), tout[real], reduction="sum"))
                vn += int(real.sum())
        hist["loss"].append(total / tokens)
        hist["val_loss"].append(vt / vn)
        hist["tokens_per_s"].append(tokens / secs)
        log(f"torch epoch {epoch + 1}/{epochs}: loss {total / tokens:.4f}, val_loss {vt / vn:.4f}, "
            f"{tokens / secs:.0f} target tokens/s")
    test = splits["test"]
    ids = enc(src_codec, test.src, False)
    res = {"run": run, "seed": seed, "epochs": epochs, "history": hist, "train_seconds": time.time() - t_start}
    t0 = time.time()
    res["greedy"] = translate.scores([tgt_codec.decode(o) for o in translate_ids(m, ids, beam=1)], test.tgt)
    res["greedy_seconds"] = time.time() - t0
    t0 = time.time()
    res["beam"] = translate.scores([tgt_codec.decode(o) for o in translate_ids(m, ids, meta["beam"], meta["alpha"])],
                                   test.tgt)
    res["beam_seconds"] = time.time() - t0
    res["copy_baseline"] = translate.scores(list(test.src), list(test.tgt))
    log(f"torch anchor test: BLEU {res['greedy']['bleu']:.2f} greedy, {res['beam']['bleu']:.2f} beam")
    if out:
        from lstmkit.io import write_json
        write_json(out, res)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder of `lstmkit translate train`")
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", default=None, help="JSON file for the results (default RUN/torch_anchor.json)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    res = train_on_run(a.run, a.epochs, out=a.out or os.path.join(a.run, "torch_anchor.json"))
    print(json.dumps({k: res[k] for k in ("greedy", "beam", "copy_baseline", "train_seconds")}))


if __name__ == "__main__":
    sys.exit(main())
