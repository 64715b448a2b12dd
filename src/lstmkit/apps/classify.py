"""Text classification, the seeds' sentiment model: Embedding -> LSTM (or GRU,
simple RNN, bidirectional) -> Dense(softmax over the classes).

Binary and multi-class work the same way: K output units with softmax and
sparse categorical cross-entropy (for K = 2 this equals a sigmoid unit with
binary cross-entropy, one unit more).
"""
import os

import numpy as np

from .. import plotting
from ..io import write_json, write_text
from ..data.errors import DataError
from ..data.labelled_text import check_classes, load_labelled, select_classes
from ..data.tokenizer import Tokenizer, WordTokenizer, pad_sequences
from .common import early_stopping, load_bundle, make_run_dir, recurrent_layer, save_bundle, to_jsonable
from .scores import confusion_matrix, format_report, per_class

KERAS_OOV = 2          # Keras imdb.npz ids: 0 padding, 1 start, 2 out of vocabulary


def encode(data, meta, tokenizer):
    """LabelledTexts -> (N, maxlen) ids with the saved tokenizer and padding."""
    cap = meta["max_tokens"]
    if data.ids is not None:
        if tokenizer is not None:
            raise DataError(f"{data.source}: holds word ids, but this model was trained on text; "
                            f"give it text (CSV or folder)")
        seqs = [[i if i < cap else KERAS_OOV for i in row] for row in data.ids]
    else:
        if tokenizer is None:
            raise DataError(f"{data.source}: holds text, but this model was trained on word ids "
                            f"(imdb.npz) and has no tokenizer for text")
        seqs = [tokenizer.encode(t) for t in data.texts]
    return pad_sequences(seqs, meta["maxlen"], meta["padding"], meta["truncating"])    # (N, maxlen)


def build_model(vocab, n_classes, maxlen, embed_dim, units, cell, bidirectional, seed, lr):
    import lstmkit as lk
    model = lk.Sequential([
        lk.Embedding(vocab, embed_dim, input_length=maxlen, mask_zero=True),
        recurrent_layer(cell, units, bidirectional),
        lk.Dense(n_classes, activation="softmax"),
    ], seed=seed)
    model.compile(optimizer=lk.Adam(lr, clipnorm=5.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def score(model, x, y, labels, out_dir, log, title, batch_size=256):
    """Accuracy, per-class report, confusion matrix (printed and PNG)."""
    prob = model.predict(x, batch_size=batch_size)                            # (N, K)
    pred = prob.argmax(axis=1)
    m = confusion_matrix(y, pred, len(labels))
    scores = per_class(m, labels)
    acc = float((pred == y).mean())
    log(f"{title} accuracy: {acc:.4f} on {len(y)} examples")
    log(format_report(m, labels, scores))
    plotting.confusion(m, labels, os.path.join(out_dir, "confusion.png"), f"{title}: accuracy {acc:.3f}")
    return {"accuracy": acc, "n": int(len(y)), "per_class": scores, "confusion": m.tolist(),
            "labels": list(labels)}


def train(data_path, out=None, text_col="text", label_col="label", classes=None, max_tokens=10000,
          maxlen=500, padding="pre", truncating="pre", cell="lstm", bidirectional=False, embed_dim=32,
          units=32, epochs=3, batch_size=64, learning_rate=0.005, val_split=0.2, max_examples=None,
          patience=None, seed=0, encoding_errors="strict", verbose=1, log=print, checkpoint=None):
    """checkpoint: fit's checkpoint_dir / checkpoint_every / resume (interrupted training goes on)."""
    data = load_labelled(data_path, text_col, label_col, "train", encoding_errors)
    data = select_classes(data, classes)
    labels = check_classes(data, label_col)
    y_all = np.array([labels.index(l) for l in data.labels])                 # (N,)
    order = np.random.default_rng(seed).permutation(len(data))
    if max_examples:
        order = order[:max_examples]
    n_val = int(round(len(order) * val_split))
    if n_val < 1 or n_val >= len(order):
        raise DataError(f"{data.source}: {len(order)} examples are too few for a validation split of "
                        f"{val_split}; need at least one example on each side")
    val_idx, train_idx = order[:n_val], order[n_val:]

    tokenizer = None
    if data.texts is not None:
        tokenizer = WordTokenizer(max_tokens=max_tokens).fit(data.texts[i] for i in train_idx)
    vocab = tokenizer.vocab_size if tokenizer else max_tokens
    meta = {"app": "classify", "labels": labels, "max_tokens": vocab, "maxlen": maxlen,
            "padding": padding, "truncating": truncating, "cell": cell, "bidirectional": bidirectional,
            "text_col": text_col, "label_col": label_col,
            "tokenizer": tokenizer.to_dict() if tokenizer else None}
    x_all = encode(data, meta, tokenizer)                                     # (N, maxlen)
    x_tr, y_tr, x_va, y_va = x_all[train_idx], y_all[train_idx], x_all[val_idx], y_all[val_idx]
    out_dir = make_run_dir("classify", out)
    log(f"run folder: {out_dir}")
    log(f"{len(train_idx)} training and {n_val} validation examples, classes {labels}, "
        f"vocabulary {vocab}, length {maxlen}")

    model = build_model(vocab, len(labels), maxlen, embed_dim, units, cell, bidirectional, seed, learning_rate)
    hist = model.fit(x_tr, y_tr, epochs=epochs, batch_size=batch_size, validation_data=(x_va, y_va),
                     verbose=verbose, seed=seed, callbacks=early_stopping(patience), **(checkpoint or {})).history
    model_path = save_bundle(model, meta, out_dir)
    plotting.history(hist, os.path.join(out_dir, "history.png"), "classifier training")
    result = score(model, x_va, y_va, labels, out_dir, log, "validation")
    metrics = {"app": "classify", "command": "train", "source": data.source, "history": hist,
               "val_accuracy": result["accuracy"], "validation": result,
               "majority_baseline": float(np.bincount(y_va, minlength=len(labels)).max() / len(y_va)),
               "model": model_path}
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, out_dir


def evaluate(model_path, data_path, out=None, split="test", encoding_errors="strict", log=print):
    model, meta = load_bundle(model_path, "classify")
    tokenizer = Tokenizer.from_dict(meta["tokenizer"]) if meta.get("tokenizer") else None
    data = load_labelled(data_path, meta["text_col"], meta["label_col"], split, encoding_errors)
    labels = meta["labels"]
    unknown = sorted(set(data.labels) - set(labels))
    if unknown:
        raise DataError(f"{data.source}: labels {unknown} were not seen in training; the model knows {labels}")
    x = encode(data, meta, tokenizer)
    y = np.array([labels.index(l) for l in data.labels])
    out_dir = make_run_dir("classify-eval", out)
    log(f"run folder: {out_dir}")
    result = score(model, x, y, labels, out_dir, log, "evaluation")
    metrics = {"app": "classify", "command": "eval", "source": data.source, "model": os.fspath(model_path),
               **result}
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, out_dir


def predict(model_path, lines, out=None, log=print):
    """lines: texts; returns [(label, probability, text)] and writes predictions.tsv."""
    model, meta = load_bundle(model_path, "classify")
    if not meta.get("tokenizer"):
        raise DataError(f"{model_path}: trained on word ids (imdb.npz), so it cannot read text")
    lines = [l for l in (s.rstrip("\r\n") for s in lines) if l.strip()]
    if not lines:
        raise DataError("no text to classify: give lines on stdin or with --input FILE")
    tokenizer = Tokenizer.from_dict(meta["tokenizer"])
    x = pad_sequences([tokenizer.encode(t) for t in lines], meta["maxlen"], meta["padding"],
                      meta["truncating"])                                      # (N, maxlen)
    prob = model.predict(x, batch_size=256)                                    # (N, K)
    labels = meta["labels"]
    rows = [(labels[k], float(prob[i, k]), lines[i]) for i, k in enumerate(prob.argmax(axis=1))]
    out_dir = make_run_dir("classify-predict", out)
    tsv = "label\tprobability\ttext\n" + "".join(f"{l}\t{p:.4f}\t{t}\n" for l, p, t in rows)
    write_text(os.path.join(out_dir, "predictions.tsv"), tsv)
    return rows, out_dir
