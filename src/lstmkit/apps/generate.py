"""Language model on any UTF-8 text (characters or words) and sampling from it:
the seeds' Tang-poetry generator and their 'imitate code' case.

Training uses the per-time-step loss: the model reads a window of T tokens
and predicts the next token at every position, sparse categorical
cross-entropy averaged over time. Windows are independent truncated-BPTT
segments of the text (gradients stop at window edges).
"""
import math
import os
import time

import numpy as np

from .. import plotting
from ..io import write_json, write_text
from ..data.errors import DataError
from ..data.tokenizer import OOV, CharTokenizer, Tokenizer, WordLMTokenizer
from ..data.windows import lm_windows
from . import text_corpora
from .common import early_stopping, load_bundle, make_run_dir, save_bundle, to_jsonable
from .lm_eval import LMCurve, stream_bits
from .sampling import has_form, layout, poem_lines, sample_poems, sample_text
from .stepper import Stepper
from .text_corpora import tang_file  # noqa: F401  (the demo fetches the small Tang set through it)


def build_model(vocab, seq_len, embed_dim, units, layers, cell, seed, lr, dropout=0.0):
    import lstmkit as lk
    from .common import recurrent_layer
    stack = [lk.Embedding(vocab, embed_dim, input_length=seq_len)]
    stack += [recurrent_layer(cell, units, return_sequences=True) for _ in range(layers)]
    if dropout:
        stack.append(lk.Dropout(dropout))          # the small corpora here overfit quickly
    stack.append(lk.Dense(vocab, activation="softmax"))                      # per time step
    model = lk.Sequential(stack, seed=seed)
    model.compile(optimizer=lk.Adam(lr, clipnorm=5.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def make_tokenizer(level, train_text, max_tokens=None, min_count=1):
    """A tokenizer fitted on the training text. min_count > 1 leaves the rarer
    characters out of the vocabulary: they become the unknown-token id, which
    then also occurs in training (the n-gram baseline needs that)."""
    if level == "char":
        if min_count > 1:
            from collections import Counter
            kept = sum(1 for c in Counter(train_text).values() if c >= min_count) + 2
            max_tokens = min(max_tokens, kept) if max_tokens else kept
        tok = CharTokenizer(max_tokens=max_tokens)
    elif level == "word":
        tok = WordLMTokenizer(max_tokens=max_tokens or 10000)
    else:
        raise DataError(f"level must be 'char' or 'word'; got {level!r}")
    return tok.fit([train_text])


def _encode(tok, text):
    return np.array(tok.encode(text), np.int64)                               # (N,)


def train(path=None, corpus=None, out=None, level="char", max_tokens=None, seq_len=64, embed_dim=64,
          units=128, layers=1, cell="lstm", epochs=5, batch_size=32, learning_rate=0.003, val_fraction=None,
          max_chars=None, samples=3, sample_length=300, temperature=0.8, top_k=None, line_chars=5,
          verses=4, dropout=0.0, patience=None, seed=0, tang_path=None, encoding_errors="strict",
          corpus_dir=None, script="traditional", test_fraction=0.05, min_count=None, baseline=None,
          kn_orders=(2, 3, 4), max_minutes=None, curve_every=60.0, form=None, form_check=None,
          eval_rows=32, init_from=None, verbose=1, log=print, checkpoint=None):
    """Train a language model; report bits per token on held-out text beside a
    Kneser-Ney n-gram baseline (character level), with a learning curve, the
    training throughput and samples. Returns (metrics, samples, run folder).

    baseline: None = on for the split corpora (tang-full, linux); form_check:
    how many poems to sample to measure the share with the requested form
    (None = 100 for tang-full); max_minutes: stop training after that long;
    init_from: a run folder of `generate train` to go on training (its
    model, tokenizer and window length; a fresh optimizer)."""
    c = text_corpora.load(path, corpus, corpus_dir=corpus_dir, tang_path=tang_path, max_chars=max_chars,
                          val_fraction=val_fraction, test_fraction=test_fraction, script=script, seed=seed,
                          encoding_errors=encoding_errors, log=log)
    split = c.test is not None                    # held-out parts chosen by poem or by file
    if min_count is None:
        min_count = 2 if split else 1
    start = None
    if init_from is not None:
        start, start_meta = load_bundle(init_from, "generate")
        if start_meta.get("level") != level or start_meta.get("corpus") != c.name:
            raise DataError(f"{init_from}: a {start_meta.get('level')} model of {start_meta.get('corpus')!r}; "
                            f"this run is {level} on {c.name!r}")
        tok = Tokenizer.from_dict(start_meta["tokenizer"])
        if seq_len != start_meta["seq_len"]:
            log(f"note: windows of {start_meta['seq_len']}, as the model of {init_from} was built")
            seq_len = start_meta["seq_len"]
        cell = start_meta.get("cell", cell)
    else:
        tok = make_tokenizer(level, c.train, max_tokens, min_count)
    if split:
        ids_tr, ids_va, ids_te = _encode(tok, c.train), _encode(tok, c.val), _encode(tok, c.test)
    else:                                          # the old layout: the tail of the token stream held out
        ids = _encode(tok, c.train + c.val)
        if len(ids) < 4 * (seq_len + 1):
            raise DataError(f"{c.name}: {len(ids)} {level}s is too little text for windows of {seq_len}; "
                            f"need at least {4 * (seq_len + 1)} (or a smaller --seq-len)")
        cut = min(len(_encode(tok, c.train)), len(ids) - seq_len - 1)   # room for one validation window
        ids_tr, ids_va, ids_te = ids[:cut], ids[cut:], None
    for part, a in (("training", ids_tr), ("validation", ids_va)):
        if len(a) < seq_len + 1:
            raise DataError(f"{c.name}: the {part} text has {len(a)} {level}s, too little for one window "
                            f"of {seq_len}; need at least {seq_len + 1} (or a smaller --seq-len)")
    name, unit = c.name, ("character" if level == "char" else "word")
    x_tr, y_tr = lm_windows(ids_tr, seq_len)                                   # (M, T) each
    x_va, y_va = lm_windows(ids_va, seq_len)
    out_dir = make_run_dir("generate", out)
    log(f"run folder: {out_dir}")
    n_tokens = len(ids_tr) + len(ids_va) + (len(ids_te) if ids_te is not None else 0)
    log(f"{n_tokens:,} {level}s, vocabulary {tok.vocab_size:,}; {len(x_tr):,} training and {len(x_va):,} "
        f"validation windows of {seq_len}")
    if start is None:
        model = build_model(tok.vocab_size, seq_len, embed_dim, units, layers, cell, seed, learning_rate, dropout)
    else:
        import lstmkit as lk
        model = start
        model.compile(optimizer=lk.Adam(learning_rate, clipnorm=5.0), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        log(f"going on training the model of {init_from} (a fresh Adam, learning rate {learning_rate})")
        from ..layers import RNNLayer
        rnn = [l for l in model.layers if isinstance(l, RNNLayer)]
        layers, units, embed_dim = len(rnn), rnn[0].units, model.layers[0].output_dim
    # the epoch-end validation and the curve read a sample of the validation windows
    rng = np.random.default_rng(seed)
    va_pick = np.sort(rng.permutation(len(x_va))[:512])
    curve_pick = va_pick[:128]
    curve = LMCurve(x_va[curve_pick], y_va[curve_pick], batch_size * seq_len, len(x_tr), batch_size,
                    every=curve_every, max_seconds=max_minutes * 60 if max_minutes else None,
                    log=log if verbose else None)
    t0 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, epochs=epochs, batch_size=batch_size, validation_data=(x_va[va_pick], y_va[va_pick]),
                     verbose=verbose, seed=seed, callbacks=early_stopping(patience) + [curve],
                     **(checkpoint or {})).history
    wall = time.perf_counter() - t0
    val_loss = float(min(hist["val_loss"]) if patience else hist["val_loss"][-1])
    meta = {"app": "generate", "level": level, "corpus": name, "seq_len": seq_len, "cell": cell,
            "tokenizer": tok.to_dict(), "script": c.info.get("script")}
    model_path = save_bundle(model, meta, out_dir)
    plotting.history(hist, os.path.join(out_dir, "history.png"), f"language model on {name}")

    # held-out bits with the state carried along the text, beside the n-gram baseline
    held = {"val": stream_bits(model, ids_va, eval_rows, seq_len, verbose, "validation bits")[0]}
    if ids_te is not None:
        held["test"] = stream_bits(model, ids_te, eval_rows, seq_len, verbose, "test bits")[0]
    metrics = {"app": "generate", "command": "train", "corpus": name, "level": level, "split": c.split,
               "corpus_info": c.info, "tokens": int(n_tokens), "train_tokens": int(len(ids_tr)),
               "vocab": tok.vocab_size, "min_count": min_count,
               "oov_share": {k: float(np.mean(a == 1)) for k, a in (("val", ids_va), ("test", ids_te))
                             if a is not None},
               "init_from": None if init_from is None else os.fspath(init_from),
               "model_config": {"layers": layers, "units": units, "embed_dim": embed_dim, "cell": cell,
                                "seq_len": seq_len, "batch_size": batch_size, "learning_rate": learning_rate,
                                "dropout": dropout, "params": int(model.count_params())},
               "history": hist, "val_loss": val_loss, f"bits_per_{unit}": val_loss / math.log(2),
               "heldout_bits": held, "uniform_bits": math.log2(tok.vocab_size),
               "training": {"seconds": wall, "train_seconds": curve.train_seconds(),
                            "tokens_trained": curve.tokens, "epochs_run": len(hist.get("loss", [])),
                            "epochs_of_data": curve.tokens / max(1, len(x_tr) * seq_len),
                            f"{unit}s_per_second": curve.tokens_per_second,
                            "stopped_by_time_budget": curve.stopped_by_budget, "cpu": curve.cpu_report(),
                            "engine": model.layers[1].engine if len(model.layers) > 1 else None},
               "model": model_path}
    want_baseline = split if baseline is None else baseline
    kn = None
    if want_baseline and level == "char":
        from .ngram import choose_and_score
        log("Kneser-Ney n-gram baseline (nltk.lm) on the same characters:")
        # the unknown-character id must occur in the counts, or a held-out character
        # outside the vocabulary gets probability 0 from the n-gram model
        kn_train = ids_tr if (ids_tr == OOV).any() else np.append(ids_tr, OOV)
        kn = choose_and_score(kn_train, ids_va, ids_te, orders=kn_orders, log=log, verbose=verbose)
        metrics["baseline_kneser_ney"] = kn
    curve.save(out_dir, f"{name}: {layers}x{units} {cell.upper()}",
               {f"Kneser-Ney {kn['order']}-gram, validation": kn["val_bits"]} if kn else None)
    metrics["curve"] = {"csv": os.path.join(out_dir, "curve.csv"), "png": os.path.join(out_dir, "curve.png"),
                        "points": curve.points}

    rng = np.random.default_rng(seed)
    stepper = Stepper(model)
    if c.poetry:
        n_chars, n_lines = layout(form, line_chars, verses)
        texts = sample_poems(stepper, tok, rng, samples, n_chars, n_lines, "", temperature, top_k)
        check = form_check if form_check is not None else (100 if name == "tang-full" else 0)
        if check:
            metrics["form_check"] = form_share(model, tok, rng, check, n_chars, n_lines, temperature, top_k)
    else:
        texts = [sample_text(stepper, tok, rng, "\n", sample_length, temperature, top_k) for _ in range(samples)]
    write_text(os.path.join(out_dir, "samples.txt"), "\n\n".join(texts) + "\n")
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, texts, out_dir


def form_share(model, tok, rng, n, line_chars, verses, temperature=0.8, top_k=None, acrostic=None):
    """Sample n poems with the constrained sampler and n letting the model lay
    them out; the share of each whose lines all have line_chars characters
    (and that have `verses` lines)."""
    out = {"poems": n, "line_chars": line_chars, "lines": verses, "temperature": temperature, "top_k": top_k}
    for mode, constrained in (("constrained", True), ("free", False)):
        poems = sample_poems(Stepper(model), tok, rng, n, line_chars, verses, "", temperature, top_k,
                             acrostic, constrained=constrained)
        out[mode] = sum(has_form(p, line_chars, verses) for p in poems) / n
        out[mode + "_example"] = poems[0]
    return out


def sample(model_path, out=None, n=3, length=300, prime=None, temperature=0.8, top_k=None, line_chars=5,
           verses=4, poem=None, seed=0, form=None, acrostic=None, free=False, return_stats=False, log=print):
    """poem: None = as trained (poems for a Tang model), True/False to force.
    form: jueju5|jueju7|lushi5|lushi7 (sets line_chars and verses); acrostic:
    the characters the lines begin with; free: let the model lay out the poem
    (the form is then measured, not imposed). Returns (texts, run folder), and
    with return_stats the share of poems with the requested form too."""
    if temperature <= 0:
        raise DataError(f"temperature must be positive; got {temperature}")
    model, meta = load_bundle(model_path, "generate")
    tok = Tokenizer.from_dict(meta["tokenizer"])
    poetry = meta["corpus"] in text_corpora.POETRY if poem is None else poem
    if (form or acrostic) and not poetry:
        raise DataError("--form and --acrostic lay out a poem; this model was not trained on poems "
                        "(use --poem to force it)")
    rng = np.random.default_rng(seed)
    stepper = Stepper(model)
    stats = {}
    if poetry:
        n_chars, n_lines = layout(form, line_chars, verses)
        if acrostic and not form:
            n_lines = len("".join(acrostic.split()))
            if n_lines not in (4, 8):
                raise DataError(f"the acrostic {acrostic!r} has {n_lines} characters; give 4 (a quatrain) "
                                f"or 8 (regulated verse), or pass --form")
        texts = sample_poems(stepper, tok, rng, n, n_chars, n_lines, prime or "", temperature, top_k,
                             acrostic, constrained=not free)
        ok = sum(has_form(t, n_chars, n_lines) for t in texts)
        stats = {"poems": n, "line_chars": n_chars, "lines": n_lines, "with_form": ok, "share": ok / n,
                 "mode": "free" if free else "constrained", "form": form, "acrostic": acrostic}
        if acrostic:
            heads = "".join(acrostic.split())
            stats["acrostic_share"] = sum([l[:1] for l in poem_lines(t)] == list(heads) for t in texts) / n
    else:
        texts = [sample_text(stepper, tok, rng, prime or "\n", length, temperature, top_k) for _ in range(n)]
    out_dir = make_run_dir("generate-sample", out)
    write_text(os.path.join(out_dir, "samples.txt"), "\n\n".join(texts) + "\n")
    if stats:
        write_json(os.path.join(out_dir, "form.json"), to_jsonable(stats))
    return (texts, out_dir, stats) if return_stats else (texts, out_dir)
