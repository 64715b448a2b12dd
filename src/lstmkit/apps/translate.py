"""Machine translation: an LSTM encoder-decoder with attention (lstmkit.seq2seq)
trained on sentence pairs -- the Ding dictionary's German-English example
sentences, or the user's own TSV/CSV -- and scored with BLEU and chrF
(sacrebleu) beside a copy-the-source baseline.

A run folder holds:
  model.safetensors        the lk.Model of seq2seq/graph.py (Seq2Seq with input feeding):
                           config + weights, lstmkit's format
  meta.json                app, settings, the tokenizers' files, data source
  src.spm.model, tgt.spm.model   (or src/tgt.vocab.json): the tokenizers
  splits/train.tsv, val.tsv, test.tsv   the pairs of each split (source<TAB>target)
  metrics.json             BLEU/chrF greedy and beam, the baseline, history, speed
  samples.txt              source, reference, output for test sentences
  history.png              loss per epoch
  attention/*.png          attention weights for a few test sentences
"""
import json
import math
import os
import time

import numpy as np

from .. import plotting
from ..callbacks import Callback
from ..data import parallel, subwords
from ..data.errors import DataError
from ..io import write_json, write_text
from .common import load_bundle, make_run_dir, save_bundle, to_jsonable

APP = "translate"


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise DataError("BLEU and chrF need the sacrebleu package: pip install 'lstmkit[translate]'") from None
    return sacrebleu


def scores(hyps, refs):
    """{'bleu', 'chrf'} of hypotheses against one reference each (sacrebleu's defaults)."""
    sb = _sacrebleu()
    return {"bleu": float(sb.corpus_bleu(hyps, [refs]).score),
            "chrf": float(sb.corpus_chrf(hyps, [refs]).score)}


def load_pairs(path=None, ding=None, src_col=0, tgt_col=1, header=None, keep_variants=False,
               encoding_errors="strict", log=print):
    """The user's file, or the Ding pairs (ding: a path, or True for the data cache)."""
    if path is not None:
        return parallel.read_pairs(path, src_col, tgt_col, header, encoding_errors=encoding_errors)
    return parallel.load_ding(None if ding is True else ding, keep_variants, log)


def _encode(codec, texts, eos=False):
    tail = [subwords.EOS] if eos else []
    return [codec.encode(t) + tail for t in texts]


def build_model(src_vocab, tgt_vocab, embed_dim=256, units=256, layers=1, cell="lstm",
                bidirectional=False, attention="general", input_feeding=False, dropout=0.2, seed=0,
                engine="auto"):
    """The functional lk.Model of seq2seq/graph.py; with input feeding (a recurrence
    through attention that a graph cannot express) the Seq2Seq container."""
    attention = None if attention == "none" else attention
    if not input_feeding:
        from ..seq2seq import graph
        return graph.build(src_vocab, tgt_vocab, embed_dim, units, layers, cell, bidirectional, attention,
                           dropout, seed, engine)
    from ..seq2seq import Seq2Seq
    return Seq2Seq(src_vocab, tgt_vocab, embed_dim=embed_dim, units=units, layers=layers, cell=cell,
                   bidirectional=bidirectional, attention=attention, input_feeding=input_feeding,
                   dropout=dropout, seed=seed, engine=engine, name="seq2seq")


class EpochClock(Callback):
    """Seconds per epoch (for target tokens per second), as a fit callback."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)


def validation_nll(model, x, y_in, y, batch_size=64):
    """Mean -log p(y_t | y_<t, x) over the real target tokens (no dropout, no smoothing)."""
    total, count = 0.0, 0
    for k in range(0, len(x), batch_size):
        p = model.predict([x[k:k + batch_size], y_in[k:k + batch_size]], batch_size=batch_size)  # (b, T, V)
        t = y[k:k + batch_size]
        real = t != 0
        total -= float(np.log(np.maximum(p[real, t[real]], 1e-30)).sum())
        count += int(real.sum())
    return total / max(count, 1)


def fit_graph(model, data, epochs, batch_size, learning_rate, clipnorm, label_smoothing, patience, seed,
              verbose, log, checkpoint=None):
    """Model.fit on padded arrays (seq2seq/graph.arrays): the sparse cross-entropy over
    the real target tokens, Adam with clipping, early stopping on the validation loss
    (best weights kept). Returns the history as seq2seq.training.fit gives it."""
    import lstmkit as lk
    from ..seq2seq import graph
    from .common import early_stopping
    model.compile(optimizer=lk.Adam(learning_rate, clipnorm=clipnorm),
                  loss=lk.losses.SparseCategoricalCrossentropy(label_smoothing=label_smoothing))
    x, y_in, y = graph.arrays(*data["train"])
    vx, vy_in, vy = graph.arrays(*data["val"])
    clock = EpochClock()
    h = model.fit([x, y_in], y, batch_size=batch_size, epochs=epochs, verbose=verbose, seed=seed,
                  validation_data=([vx, vy_in], vy), callbacks=early_stopping(patience) + [clock],
                  **(checkpoint or {})).history
    tokens = int((y != 0).sum())
    hist = {"loss": list(h["loss"]), "val_loss": list(h["val_loss"]),
            "epoch_seconds": list(clock.seconds),
            # the loss above is smoothed when label_smoothing > 0; this is the plain negative
            # log-likelihood per real target token (nats) of the weights fit ends with
            "final_val_nll": validation_nll(model, vx, vy_in, vy, batch_size)}
    # a resumed run times only the epochs it ran
    hist["tokens_per_s"] = [tokens / s for s in clock.seconds]
    if verbose:
        for e, (l, v) in enumerate(zip(hist["loss"], hist["val_loss"])):
            log(f"epoch {e + 1}/{epochs}: loss {l:.4f}, val_loss {v:.4f}")
        nll = hist["final_val_nll"]
        log(f"validation: {nll:.4f} nats per target token (perplexity {math.exp(min(nll, 50)):.1f}), unsmoothed")
    if patience and len(hist["val_loss"]) > 1 and hist["val_loss"][-1] > min(hist["val_loss"]):
        hist["restored_epoch"] = int(np.argmin(hist["val_loss"])) + 1
    return hist


def train(path=None, ding=None, out=None, src_col=0, tgt_col=1, header=None, tokens="subword",
          src_vocab=4000, tgt_vocab=4000, max_len=50, max_pairs=None, max_words=None, embed_dim=256, units=256,
          layers=1, cell="lstm", bidirectional=False, attention="general", input_feeding=False,
          dropout=0.2, label_smoothing=0.1, epochs=15, batch_size=64, learning_rate=0.002,
          clipnorm=5.0, patience=3, beam=5, alpha=0.6, val_fraction=0.05, test_fraction=0.05,
          samples=20, attention_maps=4, eval_limit=None, seed=0, encoding_errors="strict",
          verbose=1, log=print, checkpoint=None):
    """checkpoint: fit's checkpoint_dir / checkpoint_every / keep_checkpoints / resume; the
    tokenizers are kept in checkpoint_dir/tokenizers so that a resumed run uses its first start's."""
    import lstmkit as lk
    if checkpoint and input_feeding:
        raise DataError("checkpoints come with Model.fit, which trains the model without input feeding; "
                        "leave out --input-feeding or the checkpoint options")
    t_start = time.time()
    pairs = load_pairs(path, ding, src_col, tgt_col, header, encoding_errors=encoding_errors, log=log)
    log(f"{len(pairs)} sentence pairs from {pairs.source}")
    if max_words:
        keep = [i for i in range(len(pairs))
                if len(pairs.src[i].split()) <= max_words and len(pairs.tgt[i].split()) <= max_words]
        if not keep:
            raise DataError(f"{pairs.source}: no pair has at most {max_words} words on both sides")
        if len(keep) < len(pairs):
            log(f"using the {len(keep)} pairs of at most {max_words} words a side (--max-words); the "
                f"splits, scores and baseline are theirs")
            pairs = pairs.subset(keep)
    if max_pairs and len(pairs) > max_pairs:
        keep = np.sort(np.random.default_rng(seed).permutation(len(pairs))[:max_pairs])
        pairs = pairs.subset(keep)
        log(f"using {len(pairs)} of them (--max-pairs)")
    splits = parallel.split_pairs(pairs, val_fraction, test_fraction, seed)
    out_dir = make_run_dir(APP, out)
    log(f"run folder: {out_dir}")
    os.makedirs(os.path.join(out_dir, "splits"), exist_ok=True)
    for name, part in splits.items():
        parallel.write_split(os.path.join(out_dir, "splits", f"{name}.tsv"), part)
    tr = splits["train"]
    # with checkpoints the tokenizers are kept beside them too: a resumed run (whatever its --out)
    # encodes with the very tokenizers its weights were trained with
    tok_dir = os.path.join(checkpoint["checkpoint_dir"], "tokenizers") if checkpoint else None
    tok_file = tok_dir and os.path.join(tok_dir, "tokenizers.json")
    if checkpoint and checkpoint.get("resume") and os.path.exists(tok_file):
        with open(tok_file, encoding="utf-8") as f:
            specs = json.load(f)
        src_codec = subwords.load_codec(tok_dir, specs["src"])
        tgt_codec = subwords.load_codec(tok_dir, specs["tgt"])
    else:
        src_codec = subwords.fit_codec(tokens, tr.src, src_vocab, seed=seed)
        tgt_codec = subwords.fit_codec(tokens, tr.tgt, tgt_vocab, seed=seed)
        if tok_dir:
            os.makedirs(tok_dir, exist_ok=True)
            write_json(tok_file, {"src": src_codec.save(tok_dir, "src"), "tgt": tgt_codec.save(tok_dir, "tgt")})
    log(f"tokens: {tokens}; vocabulary {src_codec.vocab_size} ({pairs.src_lang}) and "
        f"{tgt_codec.vocab_size} ({pairs.tgt_lang})")
    data = {}
    for name, part in splits.items():
        s, t = _encode(src_codec, part.src), _encode(tgt_codec, part.tgt, eos=True)
        if name == "train":
            keep = [i for i in range(len(s)) if len(s[i]) <= max_len and len(t[i]) <= max_len + 1]
            if len(keep) < len(s):
                log(f"left out {len(s) - len(keep)} training pairs longer than {max_len} tokens")
            s, t = [s[i] for i in keep], [t[i] for i in keep]
            if not s:
                raise DataError(f"{pairs.source}: no training pair is at most {max_len} tokens long")
        data[name] = (s, t)
    log(f"splits: {len(data['train'][0])} train, {len(splits['val'])} validation, "
        f"{len(splits['test'])} test pairs (by source sentence; seed {seed})")
    meta = {"app": APP, "source": pairs.source, "src_lang": pairs.src_lang, "tgt_lang": pairs.tgt_lang,
            "tokens": tokens, "src_tokenizer": src_codec.save(out_dir, "src"),
            "tgt_tokenizer": tgt_codec.save(out_dir, "tgt"), "max_len": max_len, "beam": beam,
            "alpha": alpha, "seed": seed, "max_words": max_words,
            "settings": {"embed_dim": embed_dim, "units": units, "layers": layers, "cell": cell,
                         "bidirectional": bidirectional, "attention": attention,
                         "input_feeding": input_feeding, "dropout": dropout,
                         "label_smoothing": label_smoothing, "epochs": epochs, "batch_size": batch_size,
                         "learning_rate": learning_rate, "clipnorm": clipnorm, "patience": patience}}
    # the tokenizers and settings first, the model file once trained
    write_json(os.path.join(out_dir, "meta.json"), meta)
    model = build_model(src_codec.vocab_size, tgt_codec.vocab_size, embed_dim, units, layers, cell,
                        bidirectional, attention, input_feeding, dropout, seed)
    if input_feeding:
        from ..seq2seq import training
        hist = training.fit(model, data["train"], data["val"], lk.Adam(learning_rate, clipnorm=clipnorm),
                            epochs, batch_size, label_smoothing, patience, seed, verbose, log)
    else:
        hist = fit_graph(model, data, epochs, batch_size, learning_rate, clipnorm, label_smoothing, patience,
                         seed, verbose, log, checkpoint)
    model_path = save_bundle(model, meta, out_dir)
    what = "smoothed " if label_smoothing else ""
    plotting.history({"loss": hist["loss"], "val_loss": hist["val_loss"]},
                     os.path.join(out_dir, "history.png"),
                     f"translation {pairs.src_lang}->{pairs.tgt_lang}: {what}cross-entropy per target token")
    metrics = {"app": APP, "command": "train", "source": pairs.source, "pairs": len(pairs),
               "splits": {k: len(v) for k, v in splits.items()}, "train_pairs_used": len(data["train"][0]),
               "src_vocab": src_codec.vocab_size, "tgt_vocab": tgt_codec.vocab_size,
               "history": hist, "epochs_run": len(hist["loss"]),
               "val_loss": float(min(hist["val_loss"])), "train_seconds": time.time() - t_start,
               "tokens_per_s": float(np.median(hist["tokens_per_s"])) if hist["tokens_per_s"] else None,
               "model": model_path,
               "settings": meta["settings"], "seed": seed}
    ev = evaluate_run(model, src_codec, tgt_codec, splits["test"], out_dir, beam, alpha, samples,
                      attention_maps, eval_limit, log)
    metrics.update(ev)
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, out_dir


def evaluate_run(model, src_codec, tgt_codec, test, out_dir, beam=5, alpha=0.6, samples=20,
                 attention_maps=4, limit=None, log=print):
    """BLEU/chrF of greedy and beam decoding on `test`, the copy baseline,
    samples.txt and attention maps in out_dir. Returns the metrics."""
    from ..seq2seq import search
    src, refs = list(test.src), list(test.tgt)
    if limit and len(src) > limit:
        src, refs = src[:limit], refs[:limit]
    ids = _encode(src_codec, src)
    t0 = time.time()
    greedy_ids = search.translate_ids(model, ids, beam=1)
    t_greedy = time.time() - t0
    greedy_txt = [tgt_codec.decode(o) for o in greedy_ids]
    res = {"test_pairs": len(src), "greedy": scores(greedy_txt, refs),
           "copy_baseline": scores(src, refs), "greedy_seconds": t_greedy}
    hyps = greedy_txt
    if beam and beam > 1:
        t0 = time.time()
        beam_ids = search.translate_ids(model, ids, beam=beam, alpha=alpha)
        res["beam_seconds"] = time.time() - t0
        hyps = [tgt_codec.decode(o) for o in beam_ids]
        res["beam"] = scores(hyps, refs)
        res["beam_width"], res["alpha"] = beam, alpha
    best = res.get("beam", res["greedy"])
    res["bleu"], res["chrf"] = best["bleu"], best["chrf"]
    log(f"test ({len(src)} pairs): BLEU {res['greedy']['bleu']:.2f} greedy"
        + (f", {res['beam']['bleu']:.2f} beam {beam}" if "beam" in res else "")
        + f"; chrF {best['chrf']:.1f}; copy-the-source baseline BLEU {res['copy_baseline']['bleu']:.2f}, "
          f"chrF {res['copy_baseline']['chrf']:.1f}")
    if out_dir is not None:
        lines = []
        for s, r, h in list(zip(src, refs, hyps))[:samples]:
            lines.append(f"source:    {s}\nreference: {r}\noutput:    {h}\n")
        write_text(os.path.join(out_dir, "samples.txt"), "\n".join(lines))
        res["attention_maps"] = attention_pictures(model, src_codec, tgt_codec, src[:attention_maps],
                                                    os.path.join(out_dir, "attention"))
    return res


def attention_pictures(model, src_codec, tgt_codec, sentences, folder):
    """A heat map per sentence (greedy decoding): source tokens across, output tokens down."""
    from ..seq2seq import search
    from ..seq2seq.graph import decoder_for
    if decoder_for(model).attention is None or not sentences:
        return []
    ids = _encode(src_codec, sentences)
    outs, maps = search.translate_ids(model, ids, beam=1, return_attention=True)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k, (s, o, w) in enumerate(zip(ids, outs, maps)):
        if w is None or not o:
            continue
        path = os.path.join(folder, f"sentence{k + 1}.png")
        plotting.attention_map(w[:len(o), :len(s)], src_codec.id_pieces(s), tgt_codec.id_pieces(o), path,
                               title=" ".join(tgt_codec.decode(o).split())[:80])
        paths.append(path)
    return paths


def load_run(run):
    """(model, src codec, tgt codec, meta) from a run folder."""
    model, meta = load_bundle(run, APP)
    folder = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    src = subwords.load_codec(folder, meta["src_tokenizer"])
    tgt = subwords.load_codec(folder, meta["tgt_tokenizer"])
    return model, src, tgt, meta


def evaluate(run, data=None, out=None, beam=None, alpha=None, src_col=0, tgt_col=1, header=None,
             samples=20, limit=None, log=print):
    """Score a trained run on its own test split, or on a file of pairs."""
    model, src_codec, tgt_codec, meta = load_run(run)
    folder = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    if data is None:
        test = parallel.read_split(os.path.join(folder, "splits", "test.tsv"))
    else:
        test = parallel.read_pairs(data, src_col, tgt_col, header)
    beam = meta.get("beam", 5) if beam is None else beam
    alpha = meta.get("alpha", 0.6) if alpha is None else alpha
    out_dir = make_run_dir("translate-eval", out)
    res = evaluate_run(model, src_codec, tgt_codec, test, out_dir, beam, alpha, samples, 4, limit, log)
    res.update(app=APP, command="eval", model=os.fspath(run), data=data or "test split")
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(res))
    return res, out_dir


def translate_lines(run, lines, beam=None, alpha=None, batch_size=32):
    """Translate texts with a trained run (its folder, or what load_run returned);
    errors name the line (1-based)."""
    from ..seq2seq import search
    model, src_codec, tgt_codec, meta = run if isinstance(run, tuple) else load_run(run)
    ids = []
    for n, line in enumerate(lines, 1):
        src_codec.check_text(line, where=f"line {n}")
        ids.append(src_codec.encode(line.strip()))
    beam = meta.get("beam", 5) if beam is None else beam
    alpha = meta.get("alpha", 0.6) if alpha is None else alpha
    outs = search.translate_ids(model, ids, beam=beam, alpha=alpha, batch_size=batch_size)
    return [tgt_codec.decode(o) for o in outs]
