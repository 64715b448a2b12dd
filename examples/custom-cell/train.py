"""Write a cell, check it, train it: a peephole LSTM (peephole.py) as a
character-level language model of Python's standard-library source, trained
statefully (truncated BPTT over consecutive windows, as char-rnn), against
lstmkit's own LSTM and a character n-gram model.

    python examples/custom-cell/train.py              # about 10-20 minutes on 2 cores
    python examples/custom-cell/train.py --quick      # a minute: smaller, fewer epochs
"""
import argparse
import json
import math
import os
import sys
import time
from collections import Counter

import numpy as np

import lstmkit as lk
from lstmkit.data.corpora import stdlib_source
from lstmkit.data.tokenizer import CharTokenizer
from lstmkit.data.windows import stateful_windows

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peephole import PeepholeLSTMCell                               # noqa: E402  (registers the cell)


def check_the_cell():
    """1. The backward against finite differences, before any training."""
    errors = lk.gradcheck.check_cell(PeepholeLSTMCell(5), input_dim=4)
    print("finite differences (float64), relative error of each gradient:")
    for name, e in errors.items():
        print(f"  {name:<28}{e:.1e}")
    worst = max(errors.values())
    if worst > 1e-6:
        sys.exit(f"the backward is wrong somewhere: largest error {worst:.1e}")
    # with closed peepholes (p = 0) the cell is lstmkit's LSTM: the same seed draws the same weights
    x = np.random.default_rng(0).normal(size=(3, 7, 4))
    ours = lk.RNN(PeepholeLSTMCell(5), return_sequences=True, seed=1, dtype="float64")
    ref = lk.LSTM(5, return_sequences=True, seed=1, dtype="float64")
    gap = np.abs(ours.forward(x) - ref.forward(x)).max()
    print(f"with p = 0, |peephole - lk.LSTM| = {gap:.1e}")
    return errors


def ngram_bits(train_ids, val_ids, V, n, k=0.05):
    """Bits per character of an order-n character model with add-k smoothing."""
    ctx_counts, counts = Counter(), Counter()
    for i in range(n - 1, len(train_ids)):
        ctx = tuple(train_ids[i - n + 1:i])
        ctx_counts[ctx] += 1
        counts[ctx + (train_ids[i],)] += 1
    total = 0.0
    for i in range(n - 1, len(val_ids)):
        ctx = tuple(val_ids[i - n + 1:i])
        p = (counts[ctx + (val_ids[i],)] + k) / (ctx_counts[ctx] + k * V)
        total -= math.log2(p)
    return total / (len(val_ids) - n + 1)


MODELS = {"peephole": "peephole LSTM (RNN cell)", "cell": "LSTMCell (RNN cell)", "lstm": "lk.LSTM (fast engine)"}


def build(kind, V, units, T, seed):
    layers = {"peephole": lambda: lk.RNN(PeepholeLSTMCell(units), return_sequences=True, stateful=True),
              "cell": lambda: lk.RNN(lk.LSTMCell(units), return_sequences=True, stateful=True),
              "lstm": lambda: lk.LSTM(units, return_sequences=True, stateful=True)}
    model = lk.Sequential([lk.Embedding(V, 32, input_length=T), layers[kind](),
                           lk.Dense(V, activation="softmax")], seed=seed)
    model.compile(optimizer=lk.Adam(0.003, clipnorm=5.0), loss="sparse_categorical_crossentropy")
    return model


def sample(model, tok, prime, n, temperature, seed):
    """Generate with the state kept by the stateful layer: one character per call."""
    rng = np.random.default_rng(seed)
    model.reset_states()
    out = list(prime)
    ids = tok.encode(prime)
    for i in ids[:-1]:
        model.predict(np.array([[i]]))                        # feed the prime; the state carries
    x = ids[-1]
    for _ in range(n):
        p = model.predict(np.array([[x]]))[0, -1].astype(np.float64)
        p = np.exp(np.log(p + 1e-12) / temperature)
        x = int(rng.choice(len(p), p=p / p.sum()))
        out.append(tok.decode([x]))
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-chars", type=int, default=200_000)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=1, help="runs per model, with seeds 0, 1, ...")
    ap.add_argument("--models", default="peephole,cell,lstm",
                    help="which to train: peephole (the cell here), cell (RNN(LSTMCell)), lstm (lk.LSTM)")
    ap.add_argument("--out", default="runs/custom-cell")
    ap.add_argument("--quick", action="store_true", help="40k characters, 64 units, 2 epochs")
    a = ap.parse_args()
    kinds = a.models.split(",")
    if "peephole" not in kinds or not set(kinds) <= set(MODELS):
        sys.exit(f"--models: a comma-separated subset of {sorted(MODELS)} with peephole in it; got {a.models!r}")
    if a.quick:
        a.max_chars, a.units, a.epochs = 40_000, 64, 2
    os.makedirs(a.out, exist_ok=True)

    errors = check_the_cell()

    # 2. the data: one long text, the last 10 % for validation, laid out for stateful training
    text = stdlib_source(a.max_chars)
    tok = CharTokenizer()
    tok.fit([text])
    ids = np.array(tok.encode(text))
    V, cut = tok.vocab_size, int(len(ids) * 0.9)
    B, T = a.batch_size, a.seq_len
    X, Y = stateful_windows(ids[:cut], B, T)
    Xv, Yv = stateful_windows(ids[cut:], B, T)
    print(f"\n{len(text):,} characters of stdlib source, {V} symbols; {len(X) // B} batches of {B} x {T} "
          f"per epoch, {len(Xv) // B} for validation")

    # 3. the baseline: character n-grams, the best order on the validation text (a generous baseline)
    ngram = {n: ngram_bits(ids[:cut].tolist(), ids[cut:].tolist(), V, n) for n in range(1, 6)}
    best_n = min(ngram, key=ngram.get)
    print("n-gram bits/char on validation: " + ", ".join(f"{n}: {b:.3f}" for n, b in ngram.items()))

    # 4. train the three recurrent models alike
    results, curves = {}, {}
    for key in kinds:
        kind, finals, times, cpu = MODELS[key], [], [], []
        for seed in range(a.seeds):
            model = build(key, V, a.units, T, seed)
            t0, c0 = time.perf_counter(), time.process_time()
            hist = model.fit(X, Y, batch_size=B, epochs=a.epochs, shuffle=False, validation_data=(Xv, Yv),
                             verbose=2, seed=seed).history
            times.append((time.perf_counter() - t0) / a.epochs)
            cpu.append((time.process_time() - c0) / a.epochs)          # all threads: honest under load
            bits = [v / math.log(2) for v in hist["val_loss"]]
            finals.append(bits[-1])
            curves.setdefault(kind, []).append(bits)
            print(f"{kind}, seed {seed}: {bits[-1]:.3f} bits/char, {times[-1]:.1f} s/epoch "
                  f"({cpu[-1]:.1f} s of CPU)")
            if key == "peephole" and seed == 0:
                peep = model
        results[kind] = {"bits_per_char": finals, "seconds_per_epoch": times, "cpu_seconds_per_epoch": cpu,
                         "curves": curves[kind]}

    # 5. save and load the model with the user cell (the class is registered by importing peephole.py)
    path = os.path.join(a.out, "peephole.lstmkit")
    peep.save(path)
    again = lk.load_model(path)
    probe = Xv[:B]
    peep.reset_states(), again.reset_states()
    same = np.abs(peep.predict(probe) - again.predict(probe)).max()
    p = peep.layers[1].params["p"]
    print(f"\nsaved and loaded {path}: predictions differ by {same:.1e}")
    print(f"learned peepholes, mean |p| per gate: input {np.abs(p[0]).mean():.3f}, "
          f"forget {np.abs(p[1]).mean():.3f}, output {np.abs(p[2]).mean():.3f}")
    text_out = sample(peep, tok, "def ", 300, 0.6, seed=0)
    print("\nsample at temperature 0.6:\n" + text_out)

    # 6. the table and the plot
    print(f"\nvalidation bits per character after {a.epochs} epochs (median of {a.seeds} seed(s)):")
    print(f"  {'model':<28}{'bits/char':>10}{'s/epoch':>10}{'CPU s/epoch':>13}")
    for kind, r in results.items():
        print(f"  {kind:<28}{np.median(r['bits_per_char']):>10.3f}{np.median(r['seconds_per_epoch']):>10.1f}"
              f"{np.median(r['cpu_seconds_per_epoch']):>13.1f}")
    print(f"  {f'{best_n}-gram (add-0.05)':<28}{ngram[best_n]:>10.3f}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for kind, runs in curves.items():
        ax.plot(range(1, a.epochs + 1), np.median(runs, axis=0), marker="o", label=kind)
    ax.axhline(ngram[best_n], color="gray", ls="--", label=f"{best_n}-gram")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation bits per character")
    ax.set_title("stdlib source, stateful char-level models")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "bits_per_char.png"), dpi=120)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"gradcheck": errors, "ngram_bits_per_char": ngram, "models": results,
                   "settings": vars(a), "sample": text_out}, f, indent=1)
    print(f"wrote {a.out}/bits_per_char.png and results.json")


if __name__ == "__main__":
    main()
