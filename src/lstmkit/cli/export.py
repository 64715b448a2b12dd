"""`lstmkit export --onnx PATH --model RUN`: a trained model as an ONNX file."""
import os

import numpy as np

from ..apps.common import load_bundle
from ..data.errors import DataError
from ..interop import onnx as onnx_export
from .common import Formatter, add_common, say


def register(sub):
    p = sub.add_parser("export", help="write a trained model as ONNX (LSTM/GRU/RNN operators)",
                       formatter_class=Formatter,
                       description="Write the model of a run folder (classify/generate/forecast train) as an "
                                   "ONNX graph with the standard LSTM, GRU and RNN operators, for ONNX Runtime "
                                   "and other ONNX runners; then run it in onnxruntime, when installed, "
                                   "beside lstmkit on random inputs and print the largest difference. The "
                                   "tokenizer and settings stay in the run folder's meta.json.")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the ONNX file to write")
    p.add_argument("--model", required=True, help="run folder of a train command, or its model.safetensors")
    p.add_argument("--padding", choices=("auto", "pre", "post"), default="auto",
                   help="where the padding id 0 sits in the sequences of a masked model (auto: the run's "
                        "own setting, from meta.json)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or newer)")
    add_common(p, with_out=False)
    p.set_defaults(func=run)


def run(a):
    model, meta = load_bundle(a.model)
    padding = a.padding if a.padding != "auto" else meta.get("padding", "post")
    try:
        onnx_export.export_onnx(model, a.onnx, padding=padding, opset=a.opset)
    except onnx_export.ExportError as e:
        raise DataError(f"{a.model}: cannot export to ONNX: {e}") from None
    say(f"wrote {a.onnx} ({os.path.getsize(a.onnx):,} bytes, opset {a.opset}"
        + (f", padding {padding}" if onnx_export.has_mask(model) else "") + ")")
    diff = check(model, a.onnx, padding, meta, a.seed)
    if diff is not None:
        say(f"onnxruntime vs lstmkit on 8 random inputs: largest difference {diff:.2e}")


def check(model, path, padding, meta, seed):
    """Largest |onnxruntime - lstmkit| on a random batch, or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    x = onnx_export.random_input(model, rng, padding=padding, batch=8,
                                 length=meta.get("maxlen") or meta.get("seq_len") or 20)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    if isinstance(x, dict):                                   # a functional model: its inputs by name
        got = sess.run(None, x)
        want = model.predict([x[n] for n in model.input_names])
        want = want if isinstance(want, list) else [want]
        return float(max(np.abs(g - w).max() for g, w in zip(got, want)))
    got = sess.run(None, {"input": x})[0]
    return float(np.abs(got - model.predict(x)).max())
