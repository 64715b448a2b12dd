"""Small run folders for the web page's tests, made in a second: the layout
lstmkit's commands write (model.safetensors, meta.json, metrics.json), with
small models trained for a few steps on fixture text (the numbers the tests
check come from the library, not from training quality)."""
import os

import numpy as np

import lstmkit as lk
from lstmkit.apps.common import save_bundle
from lstmkit.apps.generate import build_model as build_lm
from lstmkit.data import subwords
from lstmkit.data.tokenizer import CharTokenizer, WordTokenizer
from lstmkit.data.windows import lm_windows
from lstmkit.io import write_json
from poetry_fixture import POEMS

ENGLISH = ("the quick brown fox jumps over the lazy dog. " * 3 + "a cat sat on the mat and the dog sat too. " * 3
           + "when the sun rose the birds sang and the river ran to the sea. " * 3)
PAIRS = os.path.join(os.path.dirname(__file__), "data", "pairs_de_en.tsv")


def poem_text():
    return "\n\n".join("\n".join(lines) for _, _, lines in POEMS) + "\n"


def _lm_run(folder, text, corpus, cell="lstm", units=16, layers=1, epochs=2, seed=0):
    tok = CharTokenizer().fit([text])
    ids = np.array(tok.encode(text), np.int64)
    x, y = lm_windows(ids, 16)
    model = build_lm(tok.vocab_size, 16, 8, units, layers, cell, seed, 0.01)
    hist = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, seed=seed).history
    os.makedirs(folder, exist_ok=True)
    meta = {"app": "generate", "level": "char", "corpus": corpus, "seq_len": 16, "cell": cell,
            "tokenizer": tok.to_dict()}
    save_bundle(model, meta, folder)
    write_json(os.path.join(folder, "metrics.json"),
               {"app": "generate", "command": "train", "corpus": corpus, "val_loss": 2.5,
                "bits_per_character": 3.6, "history": {k: [float(v) for v in vs] for k, vs in hist.items()}})
    with open(os.path.join(folder, "samples.txt"), "w", encoding="utf-8") as f:
        f.write(text[:200] + "\n\n" + text[200:400] + "\n")
    return model, tok


def _classify_run(folder, seed=0):
    texts = ["a good fine film", "great and good acting", "bad dull plot", "a terrible bad film"] * 8
    labels = np.array([1, 1, 0, 0] * 8)
    tok = WordTokenizer(max_tokens=100).fit(texts)
    from lstmkit.data.tokenizer import pad_sequences
    x = pad_sequences([tok.encode(t) for t in texts], 8, "pre", "pre")
    model = lk.Sequential([lk.Embedding(tok.vocab_size, 8, input_length=8, mask_zero=True),
                           lk.Bidirectional(lk.GRU(6)), lk.Dense(2, activation="softmax")], seed=seed)
    model.compile(optimizer=lk.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, labels, epochs=2, batch_size=8, verbose=0, seed=seed).history
    os.makedirs(folder, exist_ok=True)
    meta = {"app": "classify", "labels": ["neg", "pos"], "max_tokens": tok.vocab_size, "maxlen": 8,
            "padding": "pre", "truncating": "pre", "cell": "gru", "bidirectional": True,
            "text_col": "text", "label_col": "label", "tokenizer": tok.to_dict()}
    save_bundle(model, meta, folder)
    write_json(os.path.join(folder, "metrics.json"),
               {"app": "classify", "command": "train", "val_accuracy": 0.75, "majority_baseline": 0.5,
                "history": {k: [float(v) for v in vs] for k, vs in hist.items()}})
    return model, tok


def _translate_run(folder, seed=0):
    from lstmkit.seq2seq import graph
    src, tgt = [], []
    with open(PAIRS, encoding="utf-8") as f:
        for line in f:
            en, de = line.rstrip("\n").split("\t")[:2]
            src.append(de)
            tgt.append(en)
    os.makedirs(os.path.join(folder, "splits"), exist_ok=True)
    src_codec = subwords.fit_codec("word", src)
    tgt_codec = subwords.fit_codec("word", tgt)
    model = graph.build(src_codec.vocab_size, tgt_codec.vocab_size, embed_dim=8, units=12, layers=1,
                        bidirectional=True, attention="general", dropout=0.0, seed=seed)
    meta = {"app": "translate", "source": "fixture", "src_lang": "de", "tgt_lang": "en", "tokens": "word",
            "src_tokenizer": src_codec.save(folder, "src"), "tgt_tokenizer": tgt_codec.save(folder, "tgt"),
            "max_len": 50, "beam": 3, "alpha": 0.6, "seed": seed}
    save_bundle(model, meta, folder)
    with open(os.path.join(folder, "splits", "val.tsv"), "w", encoding="utf-8") as f:
        f.writelines(f"{s}\t{t}\n" for s, t in zip(src[:40], tgt[:40]))
    write_json(os.path.join(folder, "metrics.json"),
               {"app": "translate", "command": "train", "bleu": 12.5, "chrf": 30.0,
                "history": {"loss": [3.0, 2.0], "val_loss": [3.1, 2.4]}})
    return model, src_codec, tgt_codec


def make_runs(root):
    """Run folders under root; returns {name: run id}."""
    root = str(root)
    _lm_run(os.path.join(root, "generate-english"), ENGLISH, "stdlib", units=16)
    _lm_run(os.path.join(root, "generate-tang"), poem_text(), "tang", units=16)
    _lm_run(os.path.join(root, "more", "generate-rnn"), ENGLISH, "stdlib", cell="rnn", units=8, layers=2)
    _classify_run(os.path.join(root, "classify-gru"))
    _translate_run(os.path.join(root, "translate-de-en"))
    os.makedirs(os.path.join(root, "gradients-1"), exist_ok=True)
    write_json(os.path.join(root, "gradients-1", "metrics.json"), {"app": "gradients", "steps": 50})
    return {"english": "generate-english", "tang": "generate-tang", "rnn": "more/generate-rnn",
            "classify": "classify-gru", "translate": "translate-de-en", "gradients": "gradients-1"}


class ServerThread:
    """The app under uvicorn on 127.0.0.1 and a free port, in a thread of the
    test process; stop() ends it. url: http://127.0.0.1:PORT"""

    def __init__(self, app):
        import socket
        import threading
        import time
        import uvicorn
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
