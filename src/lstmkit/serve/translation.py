"""The Translate page: the beam's hypotheses for one sentence, best first,
each with its attention matrix (output tokens x source tokens)."""
import time

import numpy as np

from ..seq2seq.search import beam_search
from ..seq2seq.training import pad
from .params import RequestError


def _finite(x):
    return float(x) if np.isfinite(x) else None


def translate(run, text, beam, alpha):
    """The hypotheses of a beam of width `beam` (1: greedy) for one sentence."""
    run.src.check_text(text, where="text")               # DataError: empty, or another script
    ids = run.src.encode(text.strip())
    if not ids:
        raise RequestError("text: no tokens in it; type a sentence")
    t0 = time.perf_counter()
    with run.lock:
        hyps = beam_search(run.model, pad([ids]), beam=beam, alpha=alpha, return_attention=True,
                           n_best=True)[0]
    seconds = time.perf_counter() - t0
    out = []
    for h in hyps:
        att = None if h.attention is None else np.round(np.asarray(h.attention, np.float64), 5).tolist()
        out.append({"text": run.tgt.decode(h.tokens), "pieces": run.tgt.id_pieces(h.tokens),
                    "logprob": _finite(h.logprob), "score": _finite(h.score), "finished": h.finished,
                    "attention": att})
    return {"run": run.info.id, "source": run.src.id_pieces(ids), "beam": beam, "alpha": alpha,
            "attention": run.model.attention is not None, "hypotheses": out, "decode_ms": seconds * 1e3,
            "languages": [run.meta.get("src_lang"), run.meta.get("tgt_lang")]}
