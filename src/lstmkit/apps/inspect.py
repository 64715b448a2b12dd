"""Look inside a trained model: heat maps of each gate's activations over the
tokens of one input text (first recurrent layer, reference engine)."""
import os

import numpy as np

from .. import plotting
from ..analysis.gates import gate_activations
from ..io import write_json
from ..data.errors import DataError
from ..data.tokenizer import Tokenizer
from .common import load_bundle, make_run_dir, to_jsonable

TITLES = {"input_gate": "input gate i_t", "forget_gate": "forget gate f_t", "candidate": "candidate g_t",
          "output_gate": "output gate o_t", "reset_gate": "reset gate r_t", "update_gate": "update gate z_t",
          "cell_state_tanh": "tanh(cell state c_t)", "hidden": "hidden state h_t"}


def run(model_path, text, out=None, max_tokens=200, log=print):
    model, meta = load_bundle(model_path)
    if meta.get("app") not in ("classify", "generate"):
        raise DataError(f"{model_path}: inspect reads text models (classify, generate); this one is "
                        f"'{meta.get('app')}'")
    if not meta.get("tokenizer"):
        raise DataError(f"{model_path}: trained on word ids without a tokenizer, so it cannot read text")
    tok = Tokenizer.from_dict(meta["tokenizer"])
    ids = tok.encode(text)[-max_tokens:]
    if not ids:
        raise DataError("the input text has no tokens the model can read; give some text with --text")
    tokens = [tok.vocab[i] for i in ids]
    gates, cell = gate_activations(model, np.array([ids], np.int64))          # name -> (T, H)
    out_dir = make_run_dir("inspect", out)
    log(f"run folder: {out_dir}")
    if any(ord(c) >= 0x2E80 for c in text):
        plotting.use_cjk_font(fetch=True, log=log)        # Chinese (Japanese, Korean) tick labels
    log(f"{len(ids)} tokens through the first {cell.upper()} layer")
    summary = {}
    for name, values in gates.items():
        path = os.path.join(out_dir, f"gate_{name}.png")
        plotting.gate_heatmap(values, tokens, path, f"{TITLES.get(name, name)} over the input ({cell.upper()})")
        summary[name] = {"mean": float(values.mean()), "std": float(values.std()), "plot": path}
        log(f"  {name:<16} mean {values.mean():.3f}  std {values.std():.3f}  -> {path}")
    write_json(os.path.join(out_dir, "metrics.json"),
               to_jsonable({"app": "inspect", "model": os.fspath(model_path), "cell": cell, "tokens": tokens,
                            "gates": summary}))
    return summary, out_dir
