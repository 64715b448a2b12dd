"""Language model on any UTF-8 text (characters or words) and sampling from it:
the seeds' Tang-poetry generator and their 'imitate code' case.

Training uses the per-time-step loss: the model reads a window of T tokens
and predicts the next token at every position, sparse categorical
cross-entropy averaged over time. Windows are independent truncated-BPTT
segments of the text (gradients stop at window edges).
"""
import math
import os

import numpy as np

from .. import plotting
from ..io import write_json, write_text
from ..data.corpora import stdlib_source
from ..data.errors import DataError
from ..data.tang import corpus_text, load_tang
from ..data.textfile import read_text
from ..data.tokenizer import CharTokenizer, Tokenizer, WordLMTokenizer
from ..data.windows import chronological_split, lm_windows
from .common import early_stopping, load_bundle, make_run_dir, save_bundle, to_jsonable
from .sampling import sample_poem, sample_text
from .stepper import Stepper


def tang_file(log=print):
    """fortunes-zh's tang300 through the data cache (an installed fortunes-zh is used as it is)."""
    from .. import datasets
    return str(datasets.fetch("fortunes-zh", log=log) / datasets.SOURCES["fortunes-zh"].files["tang300"])


def load_corpus(path=None, corpus=None, tang_path=None, max_chars=None, log=print,
                encoding_errors="strict"):
    """-> (text, name). corpus: None (read path), 'tang' or 'stdlib'.
    tang_path None: the Tang poems come through the data cache (fetched on first use)."""
    if corpus == "tang":
        try:
            tang_path = tang_path or tang_file(log)
            poems = load_tang(tang_path)
            text = corpus_text(poems)
            log(f"Tang poems: {len(poems)} poems, {len(text)} characters from {tang_path}")
            return text[:max_chars] if max_chars else text, "tang"
        except DataError as e:
            log(f"note: {e}")
            log("falling back to Python's standard-library source (the seeds' 'imitate code' case)")
            corpus = "stdlib"
    if corpus == "stdlib":
        text = stdlib_source(max_chars or 200_000)
        log(f"Python standard-library source: {len(text)} characters")
        return text, "stdlib"
    if corpus is not None:
        raise DataError(f"unknown corpus {corpus!r}; expected 'tang' or 'stdlib'")
    if path is None:
        raise DataError("give a UTF-8 text file, or --corpus tang|stdlib")
    text = read_text(path, errors=encoding_errors, what="UTF-8 text file")
    return (text[:max_chars] if max_chars else text), os.path.basename(os.fspath(path))


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


def train(path=None, corpus=None, out=None, level="char", max_tokens=None, seq_len=64, embed_dim=64,
          units=128, layers=1, cell="lstm", epochs=5, batch_size=32, learning_rate=0.003, val_fraction=0.1,
          max_chars=None, samples=3, sample_length=300, temperature=0.8, top_k=None, line_chars=5,
          verses=4, dropout=0.0, patience=None, seed=0, tang_path=None, encoding_errors="strict",
          verbose=1, log=print):
    text, name = load_corpus(path, corpus, tang_path, max_chars, log, encoding_errors)
    if level == "char":
        tok = CharTokenizer(max_tokens=max_tokens)
    elif level == "word":
        tok = WordLMTokenizer(max_tokens=max_tokens or 10000)
    else:
        raise DataError(f"level must be 'char' or 'word'; got {level!r}")
    tok.fit([text])
    ids = np.array(tok.encode(text), np.int64)                                 # (N,)
    if len(ids) < 4 * (seq_len + 1):
        raise DataError(f"{name}: {len(ids)} {level}s is too little text for windows of {seq_len}; "
                        f"need at least {4 * (seq_len + 1)} (or a smaller --seq-len)")
    cut = chronological_split(len(ids), val_fraction)
    if len(ids) - cut < seq_len + 1:
        cut = len(ids) - seq_len - 1                                           # room for one validation window
    x_tr, y_tr = lm_windows(ids[:cut], seq_len)                                # (M, T) each
    x_va, y_va = lm_windows(ids[cut:], seq_len)
    out_dir = make_run_dir("generate", out)
    log(f"run folder: {out_dir}")
    log(f"{len(ids)} {level}s, vocabulary {tok.vocab_size}; {len(x_tr)} training and {len(x_va)} "
        f"validation windows of {seq_len}")
    model = build_model(tok.vocab_size, seq_len, embed_dim, units, layers, cell, seed, learning_rate, dropout)
    hist = model.fit(x_tr, y_tr, epochs=epochs, batch_size=batch_size, validation_data=(x_va, y_va),
                     verbose=verbose, seed=seed, callbacks=early_stopping(patience)).history
    val_loss = float(min(hist["val_loss"]) if patience else hist["val_loss"][-1])
    unit = "character" if level == "char" else "word"
    meta = {"app": "generate", "level": level, "corpus": name, "seq_len": seq_len, "cell": cell,
            "tokenizer": tok.to_dict()}
    model_path = save_bundle(model, meta, out_dir)
    plotting.history(hist, os.path.join(out_dir, "history.png"), f"language model on {name}")
    rng = np.random.default_rng(seed)
    texts = draw_samples(model, tok, name, rng, samples, sample_length, temperature, top_k, line_chars,
                         verses)
    write_text(os.path.join(out_dir, "samples.txt"), "\n\n".join(texts) + "\n")
    metrics = {"app": "generate", "command": "train", "corpus": name, "level": level,
               "tokens": int(len(ids)), "vocab": tok.vocab_size, "history": hist,
               "val_loss": val_loss, f"bits_per_{unit}": val_loss / math.log(2),
               "uniform_bits": math.log2(tok.vocab_size), "model": model_path}
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, texts, out_dir


def draw_samples(model, tok, corpus_name, rng, n, length, temperature, top_k, line_chars, verses, prime=None):
    stepper = Stepper(model)
    if corpus_name == "tang":
        return [sample_poem(stepper, tok, rng, line_chars, verses, prime or "", temperature, top_k)
                for _ in range(n)]
    return [sample_text(stepper, tok, rng, prime or "\n", length, temperature, top_k) for _ in range(n)]


def sample(model_path, out=None, n=3, length=300, prime=None, temperature=0.8, top_k=None, line_chars=5,
           verses=4, poem=None, seed=0, log=print):
    """poem: None = as trained (poems for a Tang model), True/False to force."""
    if temperature <= 0:
        raise DataError(f"temperature must be positive; got {temperature}")
    model, meta = load_bundle(model_path, "generate")
    tok = Tokenizer.from_dict(meta["tokenizer"])
    corpus = meta["corpus"] if poem is None else ("tang" if poem else "text")
    rng = np.random.default_rng(seed)
    texts = draw_samples(model, tok, corpus, rng, n, length, temperature, top_k, line_chars, verses, prime)
    out_dir = make_run_dir("generate-sample", out)
    write_text(os.path.join(out_dir, "samples.txt"), "\n\n".join(texts) + "\n")
    return texts, out_dir
