"""ONNX Runtime side (inference only): the network written as an ONNX graph
with onnx.helper, from the same weights.

ONNX's recurrent ops are time-major (T, B, D) and order gates differently from
lstmkit/PyTorch: LSTM i, o, f, c (lstmkit i, f, g, o); GRU z, r, h (lstmkit
r, z, n). Weights are W [dirs, G*H, D], R [dirs, G*H, H], B [dirs, 2*G*H].
"""
import numpy as np

OPSET = 17
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
# block k of the ONNX layout is block ORDER[cell][k] of lstmkit's layout
ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}


def available():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def _reorder(a, cell, H):
    """Columns (last axis) in blocks of H, lstmkit gate order -> ONNX gate order."""
    return np.concatenate([a[..., k * H:(k + 1) * H] for k in ORDER[cell]], axis=-1)


def rnn_initializers(net, layer, prefix):
    from onnx import numpy_helper
    H = net.units
    W = _reorder(layer["W_x"], net.cell, H).T[None]                 # (1, G*H, D)
    R = _reorder(layer["W_h"], net.cell, H).T[None]                 # (1, G*H, H)
    b_x = _reorder(layer["b_x"], net.cell, H)
    b_h = layer.get("b_h")
    b_h = np.zeros_like(b_x) if b_h is None else _reorder(b_h, net.cell, H)
    B = np.concatenate([b_x, b_h])[None]                            # (1, 2*G*H)
    return [numpy_helper.from_array(np.ascontiguousarray(a, np.float32), f"{prefix}{n}")
            for n, a in (("W", W), ("R", R), ("B", B))]


def _rnn_node(net, prefix, x, outputs, extra_inputs=()):
    from onnx import helper
    attrs = {"hidden_size": net.units}
    if net.cell == "gru":
        attrs["linear_before_reset"] = 1                            # PyTorch's (reset_after) GRU
    inputs = [x, f"{prefix}W", f"{prefix}R", f"{prefix}B", *extra_inputs]
    return helper.make_node(ONNX_OP[net.cell], inputs, outputs, **attrs)


def sequence_model(net, w):
    """tokens (B, T) int64 -> probability (B, 1): Gather, Transpose, RNN layers, last h, Dense, Sigmoid."""
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(w["embedding"], "E"),
             numpy_helper.from_array(w["dense"]["W"], "Wd"),
             numpy_helper.from_array(w["dense"]["b"], "bd"),
             numpy_helper.from_array(np.array([1], np.int64), "axis1"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0")]
    nodes = [helper.make_node("Gather", ["E", "tokens"], ["emb"]),
             helper.make_node("Transpose", ["emb"], ["x0"], perm=[1, 0, 2])]
    x = "x0"
    for i, layer in enumerate(w["rnn"]):
        p = f"l{i}_"
        inits += rnn_initializers(net, layer, p)
        if i == net.layers - 1:
            # the last layer: only its final state is used, so only Y_h is asked
            # for (an empty name skips the Y output, as lstmkit skips writing hs)
            nodes.append(_rnn_node(net, p, x, ["", f"{p}Yh"]))
        else:
            nodes.append(_rnn_node(net, p, x, [f"{p}Y", f"{p}Yh"]))
            nodes.append(helper.make_node("Squeeze", [f"{p}Y", "axis1"], [f"{p}seq"]))   # (T, B, H)
            x = f"{p}seq"
    last = f"l{net.layers - 1}_Yh"
    nodes += [helper.make_node("Squeeze", [last, "axis0"], ["h"]),                   # (B, H)
              helper.make_node("MatMul", ["h", "Wd"], ["z0"]),
              helper.make_node("Add", ["z0", "bd"], ["z"]),
              helper.make_node("Sigmoid", ["z"], ["prob"])]
    graph = helper.make_graph(
        nodes, "seq_model",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["B", "T"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["B", net.out])], inits)
    return _model(graph)


def step_model(net, w):
    """C: x (1, B, D), h (1, B, H), c (1, B, H) -> h', c' for one LSTM step."""
    from onnx import TensorProto, helper
    inits = rnn_initializers(net, w["rnn"][0], "l0_")
    node = _rnn_node(net, "l0_", "x", ["", "h_out", "c_out"], ["", "h_in", "c_in"])
    f = TensorProto.FLOAT
    H, D = net.units, net.embed
    graph = helper.make_graph(
        [node], "lstm_step",
        [helper.make_tensor_value_info("x", f, [1, "B", D]),
         helper.make_tensor_value_info("h_in", f, [1, "B", H]),
         helper.make_tensor_value_info("c_in", f, [1, "B", H])],
        [helper.make_tensor_value_info("h_out", f, [1, "B", H]),
         helper.make_tensor_value_info("c_out", f, [1, "B", H])], inits)
    return _model(graph)


def _model(graph):
    import onnx
    from onnx import helper
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model, threads=2):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def runner(case, w, x, y, threads=2):
    net = case.net
    if case.kind == "train":
        return None                                                 # inference only
    if case.kind == "step":
        if net.cell != "lstm":
            return None
        sess = session(step_model(net, w), threads)
        H = net.units
        feed = {"x": x[None], "h_in": np.zeros((1, x.shape[0], H), np.float32),
                "c_in": np.zeros((1, x.shape[0], H), np.float32)}

        def step():
            feed["h_in"], feed["c_in"] = sess.run(None, feed)
            return feed["h_in"]
        return step
    if net.per_step:
        return None
    sess = session(sequence_model(net, w), threads)
    feed = {"tokens": x}
    return lambda: sess.run(None, feed)[0]


def versions():
    if not available():
        return {"onnxruntime": None}
    import onnx
    import onnxruntime
    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}
