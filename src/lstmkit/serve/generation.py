"""The Generate page: text sampled token by token as the model writes it.

Every token is one call of the compiled step kernel per recurrent layer
(apps.stepper.Stepper over RNNLayer.step), holding the run's lock for that
one step only, so other requests for the same model slip in between tokens.
Free text comes from apps.sampling.iter_text_ids; Tang poems and acrostics
(藏头诗) from apps.sampling.iter_poem, the same constrained sampler as
`lstmkit generate sample --form/--acrostic`.
"""
import numpy as np

from ..apps.sampling import FORMS, iter_poem, iter_text_ids, layout
from ..apps.stepper import Stepper
from ..data.errors import DataError
from . import params as P

MODES = ("text", "poem", "acrostic")


class LockedStepper(Stepper):
    """A Stepper whose every step holds the run's lock."""

    def __init__(self, model, lock):
        super().__init__(model)
        self.lock = lock

    def feed(self, ids):
        with self.lock:
            return super().feed(ids)


def read_request(q, run, limits):
    """The generation settings from a query (dict of strings), checked."""
    mode = P.choice(q, "mode", MODES, "text")
    vocab = run.tok.vocab_size
    s = {"mode": mode, "prime": P.text(q, "prime", limits.prime_chars, required=False),
         "temperature": P.number(q, "temperature", 0.05, 5.0, 0.8),
         "top_k": P.optional_integer(q, "top_k", 1, vocab),
         "length": P.integer(q, "length", 1, limits.generate_tokens, 300),
         "seed": P.optional_integer(q, "seed", 0, 2**32 - 1),
         "form": None, "heads": None}
    if mode != "text":
        if not run.poetry:
            raise P.RequestError(f"mode: {mode} lays out a Tang poem; run {run.info.id!r} was trained on "
                                 f"{run.meta.get('corpus')!r}, not on poems (use mode=text)")
        form = q.get("form") or None
        s["form"] = None if form is None else P.choice(q, "form", tuple(FORMS))
    if mode == "acrostic":
        s["heads"] = "".join(P.text(q, "heads", 16).split())
        if not s["heads"]:
            raise P.RequestError("heads: give the characters the lines begin with (4 or 8)")
    return s


def pieces(run, s):
    """A generator of text pieces, one per token as the model writes it (the
    prime of free text is not repeated). Errors in the settings (an acrostic character
    the model does not know, say) come at the first next()."""
    tok = run.tok
    rng = np.random.default_rng(s["seed"])
    stepper = LockedStepper(run.model, run.lock)
    if s["mode"] == "text":
        return _text(tok, stepper, rng, s)
    line_chars, verses = layout(s["form"], 5, 4)
    if s["mode"] == "acrostic" and not s["form"]:
        verses = len(s["heads"])
        if verses not in (4, 8):
            raise DataError(f"heads: {s['heads']!r} has {verses} characters; give 4 (a quatrain) or 8 "
                            f"(regulated verse), or choose a form")
    return iter_poem(stepper, tok, rng, line_chars, verses, s["prime"], s["temperature"], s["top_k"],
                     s["heads"])


def _text(tok, stepper, rng, s):
    prime = s["prime"] or "\n"
    prev = None
    for i in iter_text_ids(stepper, tok, rng, prime, s["length"], s["temperature"], s["top_k"]):
        cur = tok.vocab[i]
        # the tokenizer's own join decides the spacing between two tokens
        yield cur if prev is None else tok.join([prev, cur])[len(tok.join([prev])):]
        prev = cur
